"""kdl's per-example gradient norms (ghost norms) and its one-pass DP-SGD step.

Exactness, per layer type and per builder (upstream issue 16): with noise 0
and a clip norm below every example's gradient norm, one DP step equals the
mean of the per-example gradients clipped by hand (a per-example loop with
GradientTape), and the norms equal the loop's norms.
"""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import privacy
from kdl.backend import keras, tf

CLIP = 1e-3  # below every example's gradient norm in these tiny models
LR = 100.0  # a step large enough for float32 differences of the weights
L = keras.layers


def _loop(model, x, y):
    """Each example's gradient and its norm, one example at a time."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    grads, norms = [], []
    for i in range(len(y)):
        with tf.GradientTape() as tape:
            loss = loss_fn(y[i : i + 1], model(x[i : i + 1], training=True))
        g = [
            tf.convert_to_tensor(t).numpy()
            for t in tape.gradient(loss, model.trainable_variables)
        ]
        grads.append(g)
        norms.append(np.sqrt(sum(float((t**2).sum()) for t in g)))
    return grads, np.array(norms)


def _check_exact(model, x, y):
    """Norms and one DP step of make_private(method="auto") against the loop."""
    model.compile(optimizer=keras.optimizers.SGD(LR), loss=model.loss)
    private = privacy.make_private(model, l2_norm_clip=CLIP, noise_multiplier=0.0)
    assert private.privacy["method"] == "fast"
    grads, norms = _loop(private, x, y)
    assert norms.min() > CLIP
    np.testing.assert_allclose(privacy.gradient_norms(private, x, y), norms, rtol=1e-4)
    want = [
        np.mean([g[k] * CLIP / n for g, n in zip(grads, norms)], axis=0)
        for k in range(len(grads[0]))
    ]
    before = [w.numpy() for w in private.trainable_variables]
    private.fit(x, y, batch_size=len(y), epochs=1, verbose=0, shuffle=False)
    for b, w, expected in zip(before, private.trainable_variables, want):
        step = (b - w.numpy()) / LR
        scale = np.abs(expected).max()
        np.testing.assert_allclose(step, expected, atol=1e-4 * scale + 1e-12)


def _one_layer(input_shape, layer, ids=False):
    """Input -> layer -> flatten -> softmax over 3 classes, compiled."""
    inputs = keras.Input(input_shape, dtype="int32" if ids else "float32")
    x = layer(inputs)
    if len(x.shape) > 2:
        x = L.Flatten()(x)
    outputs = L.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _data(shape, ids=False, n=4):
    rng = np.random.default_rng(0)
    if ids:
        x = rng.integers(0, 7, size=(n, *shape)).astype("int32")
    else:
        x = rng.normal(size=(n, *shape)).astype("float32")
    return x, rng.integers(0, 3, size=n)


LAYERS = {
    "dense": ((5,), lambda: L.Dense(4, activation="relu"), False),
    "dense_on_sequence": ((4, 3), lambda: L.Dense(4, activation="tanh"), False),
    "embedding_repeated_ids": ((5,), lambda: L.Embedding(7, 3), True),
    "conv1d_same": ((9, 2), lambda: L.Conv1D(3, 3, padding="same"), False),
    "conv1d_valid_stride2_no_bias": (
        (9, 2), lambda: L.Conv1D(3, 3, strides=2, use_bias=False), False),
    "conv1d_causal_dilated": (
        (9, 2), lambda: L.Conv1D(3, 2, padding="causal", dilation_rate=2), False),
    "conv2d_same": ((6, 6, 2), lambda: L.Conv2D(3, 3, padding="same",
                                                activation="relu"), False),
    "conv2d_valid_stride2": ((7, 7, 1), lambda: L.Conv2D(4, (3, 2), strides=2),
                             False),
    "conv2d_dilated_no_bias": (
        (7, 7, 2), lambda: L.Conv2D(2, 3, dilation_rate=2, use_bias=False), False),
    "conv2d_1x1_wide": ((3, 3, 8), lambda: L.Conv2D(16, 1), False),
    "simple_rnn": ((5, 3), lambda: L.SimpleRNN(4), False),
    "gru_sequences": ((5, 3), lambda: L.GRU(4, return_sequences=True), False),
    "gru_backwards_no_bias": ((5, 3), lambda: L.GRU(4, go_backwards=True,
                                                    use_bias=False), False),
    "lstm": ((5, 3), lambda: L.LSTM(4), False),
    "lstm_sequences_backwards": (
        (5, 3), lambda: L.LSTM(3, return_sequences=True, go_backwards=True), False),
    "bidirectional_gru_concat": ((5, 3), lambda: L.Bidirectional(L.GRU(3)), False),
    "bidirectional_lstm_sum_sequences": (
        (5, 3), lambda: L.Bidirectional(L.LSTM(3, return_sequences=True),
                                        merge_mode="sum"), False),
}  # fmt: skip


def _params(table, slow_words=("rnn", "gru", "lstm")):
    """Recurrent cases are slow (seconds of eager loops each): marked slow."""
    return [
        pytest.param(name, marks=pytest.mark.slow)
        if any(word in name for word in slow_words)
        else name
        for name in table
    ]


@pytest.mark.parametrize("name", _params(LAYERS))
def test_one_dp_step_equals_hand_clipped_mean_per_layer_type(name):
    shape, make_layer, ids = LAYERS[name]
    x, y = _data(shape, ids)
    _check_exact(_one_layer(shape, make_layer(), ids), x, y)


BUILDERS = {
    "mlp": (lambda: kdl.build_mlp((8, 8, 1), 10, dense_units=(8,)), "image"),
    "cnn": (lambda: kdl.build_cnn((8, 8, 1), 10, filters=(3, 4),
                                  dense_units=(8,)), "image"),
    "cnn_1d_average_pool": (lambda: kdl.build_cnn((8, 8), 10, filters=(3,),
                                                  pooling="average"), "rows"),
    "resnet_no_batch_norm": (lambda: kdl.build_resnet(
        (8, 8, 1), 10, stages=(1, 1), filters=(3, 4), batch_norm=False), "image"),
    "simple_rnn": (lambda: kdl.build_rnn((8, 8), 10, cell="simple", units=(4,)),
                   "rows"),
    "stacked_lstm": (lambda: kdl.build_lstm((8, 8), 10, units=(4, 3)), "rows"),
    "bidirectional_gru": (lambda: kdl.build_gru((8, 8), 10, units=(3,),
                                                bidirectional=True), "rows"),
}  # fmt: skip


@pytest.mark.parametrize("name", _params(BUILDERS))
def test_one_dp_step_equals_hand_clipped_mean_per_builder(name, digits_image):
    build, layout = BUILDERS[name]
    (x, y), _ = digits_image
    x = x[:4].astype("float32")
    _check_exact(build(), x[..., 0] if layout == "rows" else x, y[:4])


def test_clipped_step_noise_zero_trains_with_large_clip(digits_image):
    # Clip above every norm: the DP step is the plain mean gradient step.
    (x, y), _ = digits_image
    x, y = x[:8].astype("float32"), y[:8]
    model = kdl.build_cnn((8, 8, 1), 10, filters=(3,), dense_units=())
    model.compile(optimizer=keras.optimizers.SGD(LR), loss=model.loss)
    private = privacy.make_private(model, l2_norm_clip=1e6, noise_multiplier=0.0)
    plain = keras.models.clone_model(private)
    plain.set_weights(private.get_weights())
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy()(y, plain(x))
    want = tape.gradient(loss, plain.trainable_variables)
    before = [w.numpy() for w in private.trainable_variables]
    private.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for b, w, g in zip(before, private.trainable_variables, want):
        np.testing.assert_allclose((b - w.numpy()) / LR, g.numpy(), atol=1e-5)


def test_tf_privacy_registry_gives_the_same_norms(digits_image):
    # kdl's entries in TensorFlow Privacy's own LayerRegistry and norm code.
    # The registry first: kdl sets TF Privacy's import switch before importing
    # it (its package __init__ imports the removed estimator API otherwise).
    registry = privacy.tf_privacy_registry()
    from tensorflow_privacy.privacy.fast_gradient_clipping import clip_grads

    (x, y), _ = digits_image
    x, y = x[:6].astype("float32"), y[:6]
    model = kdl.build_cnn((8, 8, 1), 10, filters=(3,), dense_units=(5,))
    loss = keras.losses.SparseCategoricalCrossentropy(reduction="none")
    theirs = clip_grads.compute_gradient_norms(
        model, registry, x, y, per_example_loss_fn=loss
    )
    np.testing.assert_allclose(
        theirs.numpy(), privacy.gradient_norms(model, x, y), rtol=1e-5
    )


UNSUPPORTED = [
    (lambda: _one_layer((5, 3), L.GRU(3, recurrent_dropout=0.2)), "not in the reg"),
    (lambda: _one_layer((5, 3), L.GRU(3, reset_after=False)), "not in the reg"),
    (lambda: _one_layer((4, 4, 1), L.DepthwiseConv2D(3)), "DepthwiseConv2D"),
]


@pytest.mark.parametrize("make_model, match", UNSUPPORTED)
def test_layers_outside_the_registry_fall_back(make_model, match):
    model = make_model()
    assert any(match in s for s in privacy.unsupported_layers(model))
    with pytest.raises(ValueError, match="kdl's fast gradient clipping supports"):
        privacy.make_private(model, noise_multiplier=1.0, method="fast")
    auto = privacy.make_private(model, noise_multiplier=1.0)
    assert auto.privacy["method"] in ("vectorized", "optimizer")
    with pytest.raises(ValueError, match="kdl's norm registry covers"):
        privacy.gradient_norms(model, np.zeros((2, *model.input_shape[1:])), [0, 1])


def test_batch_norm_stays_refused_with_its_reason():
    model = kdl.build_resnet((8, 8, 1), 10, stages=(1,), filters=(4,))
    with pytest.raises(ValueError, match="batch statistics mix examples"):
        privacy.make_private(model, noise_multiplier=1.0)


# Documented settings (README, /work/notes/readme-privacy-fast.md): epsilon 8 at
# delta 1e-5 on the 1,437 digits training images, batch 64, clip 1.0.
CNN_SETTINGS = {"filters": (16, 32), "dense_units": (32,), "activation": "tanh",
                "optimizer": "adam", "learning_rate": 0.005}  # fmt: skip
CNN_EPOCHS = 30


@pytest.mark.slow
def test_private_cnn_reaches_093_on_held_out_digits_at_epsilon_8(digits_image):
    (x, y), (x_test, y_test) = digits_image
    model = kdl.build_cnn((8, 8, 1), 10, **CNN_SETTINGS)
    private = privacy.make_private(
        model, target_epsilon=8.0, delta=1e-5, num_examples=len(x), batch_size=64,
        epochs=CNN_EPOCHS,
    )  # fmt: skip
    assert private.privacy["method"] == "fast"
    private.fit(x, y, batch_size=64, epochs=CNN_EPOCHS, verbose=0)
    assert privacy.statement(private).epsilon <= 8.0
    assert private.evaluate(x_test, y_test, verbose=0)[1] >= 0.93


def test_sample_weights_scale_each_examples_norm():
    x, y = _data((5,))
    model = _one_layer((5,), L.Dense(4, activation="relu"))
    weights = np.array([0.0, 1.0, 2.0, 0.5], "float32")
    plain = privacy.gradient_norms(model, x, y)
    weighted = privacy.gradient_norms(model, x, y, sample_weight=weights)
    np.testing.assert_allclose(weighted, plain * weights, rtol=1e-5, atol=1e-7)


def test_seq2seq_with_masks_and_states_falls_back_to_the_dp_optimizer():
    model = kdl.build_seq2seq(12, 12, units=4, embedding_dim=3)
    reasons = " ".join(privacy.unsupported_layers(model))
    assert "mask" in reasons
    assert privacy.make_private(model, noise_multiplier=1.0).privacy["method"] == (
        "optimizer"
    )
