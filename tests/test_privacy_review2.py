"""kdl.privacy, hostile review of issue 30 (round 2): paths that started a
private run from weights already trained, or bound a statement to weights no
DP step produced. Each ends in a refusal or a void statement; where a
statement stays valid, its epsilon is checked against dp_accounting.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import kdl
from kdl import privacy
from kdl.backend import keras, tf

N, DELTA = 200, 1e-5


def _true_epsilon(n, batch, steps, noise, delta=DELTA):
    """One session on dp_accounting alone (RDP, Poisson sampling)."""
    import dp_accounting
    from dp_accounting import rdp

    event = dp_accounting.PoissonSampledDpEvent(
        batch / n, dp_accounting.GaussianDpEvent(noise)
    )
    return rdp.RdpAccountant().compose(event, steps).get_epsilon(delta)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _mlp():
    return kdl.build_mlp((8,), 2, dense_units=(8,), optimizer="sgd",
                         learning_rate=0.1)  # fmt: skip


def _trained_private(x, y):
    private = privacy.make_private(_mlp(), noise_multiplier=1.0, delta=DELTA)
    private.fit(x, y, batch_size=50, epochs=1, verbose=0)
    return private


def _dp_sgd():
    return privacy.dp_optimizer("sgd", noise_multiplier=1.0, learning_rate=0.1)


def _compile_private(model):
    return privacy.compile_private(
        model, _dp_sgd(), loss="sparse_categorical_crossentropy"
    )


def test_compile_private_refuses_layers_a_private_fit_trained(data):
    # Review item 1 (C7): a second private model over p's trained layers
    # would state 1 session although its weights carry p's as well.
    x, y = data
    private = _trained_private(x, y)
    with pytest.raises(ValueError, match=r"compile_private.*trained"):
        _compile_private(keras.Model(private.inputs, private.outputs))
    # p itself still states its own session, exactly.
    s = privacy.statement(private)
    assert s.epsilon == pytest.approx(_true_epsilon(N, 50, 4, 1.0), rel=1e-3)


@pytest.mark.parametrize("how", ["shared", "clone"])
def test_compile_private_refuses_weights_trained_without_dp(data, how):
    # Review item 2 (C19, C20): trained without DP (true epsilon: infinite).
    x, y = data
    plain = _mlp()
    plain.fit(x, y, batch_size=50, epochs=3, verbose=0)
    if how == "shared":
        model = keras.Model(plain.inputs, plain.outputs)
    else:
        model = keras.models.clone_model(plain)
        model.set_weights(plain.get_weights())
    with pytest.raises(ValueError, match=r"compile_private.*prior training"):
        _compile_private(model)


def _no_bias_mlp():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(8, activation="relu", use_bias=False)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", use_bias=False)(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss="sparse_categorical_crossentropy")  # fmt: skip
    return model


def test_make_private_refuses_dp_trained_weights_copied_to_a_fresh_model(data):
    # Review item 12 (C4): no bias, kernels inside their initializer's
    # range: only the registry of DP-trained weights can tell.
    x, y = data
    private = privacy.make_private(_no_bias_mlp(), noise_multiplier=1.0)
    private.fit(x, y, batch_size=50, epochs=1, verbose=0)
    copy = _no_bias_mlp()
    copy.set_weights(private.get_weights())
    with pytest.raises(ValueError, match=r"make_private.*private fit"):
        privacy.make_private(copy, noise_multiplier=1.0)
    # Declared public: accepted, and the statement says so.
    again = privacy.make_private(copy, noise_multiplier=1.0, public_pretraining=True)
    assert privacy.privacy_params(again)["public_pretraining"] is True
    # A fresh model of the same shape is still accepted.
    privacy.make_private(_no_bias_mlp(), noise_multiplier=1.0)


def test_fine_tune_result_voids_weights_no_dp_step_produced(data):
    # Review item 3 (G4): a model trained without DP handed as final_model.
    x, y = data
    private = _trained_private(x, y)
    plain = _mlp()
    plain.fit(x, y, batch_size=50, epochs=2, verbose=0)
    result = privacy.private_fine_tune_result(private, plain)
    s = privacy.statement(result)
    assert s.void and math.isinf(s.epsilon)
    # The DP-trained model's own weights (as a functional copy) stay valid.
    same = privacy.private_fine_tune_result(
        private, keras.Model(private.inputs, private.outputs)
    )
    s = privacy.statement(same)
    assert not s.void
    assert s.epsilon == pytest.approx(_true_epsilon(N, 50, 4, 1.0), rel=1e-3)


def test_bind_post_processing_keeps_a_void_from_training(data):
    # Review item 4 (G5): plain training through shared layers voids the
    # statement; a later "post-processing" must not make it valid again.
    x, y = data
    private = _trained_private(x, y)
    plain = keras.Model(private.inputs, private.outputs)
    plain.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss="sparse_categorical_crossentropy")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(x, y, epochs=1, verbose=0)
    assert privacy.statement(private).void

    def rounding(model):
        model.set_weights([np.round(w, 2) for w in model.get_weights()])

    privacy.bind_post_processing(private, "rounding", rounding)
    s = privacy.statement(private)
    assert s.void and math.isinf(s.epsilon)


def test_bind_post_processing_applies_a_data_free_transform(data):
    x, y = data
    private = _trained_private(x, y)
    before = [np.round(w, 2) for w in private.get_weights()]

    def rounding(model):
        model.set_weights([np.round(w, 2) for w in model.get_weights()])

    privacy.bind_post_processing(private, "rounding", rounding)
    for got, want in zip(private.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    s = privacy.statement(private)
    assert not s.void and "rounding" in s.text
    assert s.epsilon == pytest.approx(_true_epsilon(N, 50, 4, 1.0), rel=1e-3)
    with pytest.raises(TypeError, match="transform.*bind_post_processing"):
        privacy.bind_post_processing(private, "rounding", None)


class _RunningMean(keras.layers.Layer):
    """The reviewer's layer (H2): a running mean of the inputs, updated from
    each training batch without noise."""

    def build(self, shape):
        self.mean = self.add_weight(name="mean", shape=(shape[-1],),
                                    initializer="zeros", trainable=False)  # fmt: skip

    def call(self, inputs, training=None):
        if training:
            self.mean.assign(0.9 * self.mean + 0.1 * tf.reduce_mean(inputs, 0))
        return inputs - self.mean


def _running_mean_model():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(8, activation="relu")(_RunningMean()(inputs))
    outputs = keras.layers.Dense(2, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss="sparse_categorical_crossentropy")  # fmt: skip
    return model


def test_layers_with_state_updated_in_training_are_refused():
    # Review item 5 (H2): the running mean is a raw data statistic (true
    # epsilon: infinite); refused like BatchNormalization.
    with pytest.raises(ValueError, match=r"make_private.*running mean"):
        privacy.make_private(_running_mean_model(), noise_multiplier=1.0)
    with pytest.raises(ValueError, match=r"compile_private.*running mean"):
        _compile_private(_running_mean_model())
    # Frozen layers (non-trainable weights of a frozen layer) stay accepted.
    frozen = _mlp()
    frozen.layers[1].trainable = False
    frozen.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    privacy.make_private(frozen, noise_multiplier=1.0)


class _KeepLowestTrainingLoss(keras.callbacks.Callback):
    """The reviewer's callback (G16): selection on the training loss (here
    the first epoch under a loose threshold, so the pick is not the last)."""

    def __init__(self):
        super().__init__()
        self.best, self.kept = math.inf, None

    def on_epoch_end(self, epoch, logs=None):
        if self.kept is None and logs["loss"] < 10.0:
            self.best, self.kept = logs["loss"], self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.kept)


def test_weights_selected_by_an_unknown_callback_void_the_statement(data):
    # Review item 11 (G16): an earlier epoch's DP weights chosen on the
    # training loss: the choice is not private (true epsilon: infinite).
    x, y = data
    private = privacy.make_private(_mlp(), noise_multiplier=1.0, delta=DELTA)
    keep = _KeepLowestTrainingLoss()
    private.fit(x, y, batch_size=50, epochs=3, verbose=0, callbacks=[keep])
    s = privacy.statement(private)
    last = keep.best < math.inf and all(
        np.array_equal(a, b) for a, b in zip(keep.kept, private.get_weights())
    )
    assert s.void and math.isinf(s.epsilon)
    assert last  # the callback did restore its pick
    # Without the callback the same run states its epsilon exactly.
    plain = privacy.make_private(_mlp(), noise_multiplier=1.0, delta=DELTA)
    plain.fit(x, y, batch_size=50, epochs=3, verbose=0)
    s = privacy.statement(plain)
    assert s.epsilon == pytest.approx(_true_epsilon(N, 50, 12, 1.0), rel=1e-3)


def test_validation_rows_an_earlier_session_trained_on_are_refused(data):
    # Review item 8 (I1): session 1 trains on all rows; kdl.train then
    # selects on rows 0-39 (true epsilon of the selection: infinite).
    x, y = data
    private = privacy.make_private(_mlp(), noise_multiplier=1.0, delta=DELTA)
    private.fit(x, y, batch_size=50, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"validation_data.*training rows"):
        kdl.train(private, x[40:], y[40:], validation_data=(x[:40], y[:40]),
                  epochs=2, batch_size=40, run_dir=False, verbose=0)  # fmt: skip
    # Fresh rows as validation data are accepted, and both sessions count.
    rng = np.random.default_rng(7)
    xv = rng.normal(size=(40, 8)).astype("float32")
    yv = (xv[:, 0] + xv[:, 1] > 0).astype("int64")
    private.fit(x, y, batch_size=50, epochs=1, verbose=0, validation_data=(xv, yv))
    s = privacy.statement(private)
    assert s.epsilon == pytest.approx(_true_epsilon(N, 50, 8, 1.0), rel=1e-3)


def test_kept_epoch_wording_names_the_last_session(data):
    # Review text bug (B1): two fits of one epoch each said "after epoch 1 of
    # the 2 trained", which describes weights after the first epoch.
    x, y = data
    private = _trained_private(x, y)
    private.fit(x, y, batch_size=50, epochs=1, verbose=0)
    s = privacy.statement(private)
    assert "after epoch 1 of the last session (1 epoch(s) in it, 2 in all)" in s.text
    assert s.epsilon == pytest.approx(_true_epsilon(N, 50, 8, 1.0), rel=1e-3)
