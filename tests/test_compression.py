"""kdl.compression: pruning, clustering, quantization-aware training, sparsity."""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import compression
from kdl.backend import keras, tf
from kdl.errors import UnsupportedModelError


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _plain_tf_keras(model):
    """True when every layer is a tf_keras class (no TF-MOT wrapper left)."""
    return all(type(layer).__module__.startswith("tf_keras.") for layer in model.layers)


def _trained_mlp(digits_flat, epochs=8):
    (x, y), _ = digits_flat
    model = kdl.build_mlp((64,), 10, dense_units=(64,))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


# === Pruning ===


@pytest.mark.parametrize("schedule", ["polynomial", "constant"])
def test_prune_reaches_target_and_leaves_the_original_alone(digits_flat, schedule):
    (x, y), (x_test, y_test) = digits_flat
    model = _trained_mlp(digits_flat)
    before = _weights(model)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]

    pruned = compression.prune(
        model, x, y, target_sparsity=0.75, schedule=schedule, epochs=4, verbose=0
    )

    assert _same(before, model.get_weights())  # the original is untouched
    assert compression.sparsity(model)["overall"] == 0.0
    measured = compression.sparsity(pruned)
    assert abs(measured["overall"] - 0.75) <= 0.01
    assert set(measured["layers"]) == {"dense1", "predictions"}
    for fraction in measured["layers"].values():
        assert abs(fraction - 0.75) <= 0.01
    # Biases are not pruned.
    assert np.count_nonzero(pruned.get_layer("dense1").bias.numpy()) > 32
    # A plain, compiled model: no wrappers, same loss, fresh optimizer.
    assert _plain_tf_keras(pruned)
    assert [layer.name for layer in pruned.layers] == [
        layer.name for layer in model.layers
    ]
    assert pruned is not model and pruned.optimizer is not model.optimizer
    assert isinstance(pruned.optimizer, type(model.optimizer))
    assert int(pruned.optimizer.iterations) == 0
    assert pruned.loss == model.loss
    # Held-out accuracy survives 75% sparsity after fine-tuning.
    pruned_accuracy = pruned.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.9 and pruned_accuracy > accuracy - 0.06


def test_block_pruning_zeroes_whole_blocks_of_dense_kernels(digits_flat):
    model = _trained_mlp(digits_flat, epochs=2)
    (x, y), _ = digits_flat
    pruned = compression.prune(
        model,
        x,
        y,
        target_sparsity=0.75,
        epochs=1,
        schedule="constant",
        block_size=(4, 1),
        verbose=0,
    )
    kernel = pruned.get_layer("dense1").get_weights()[0]  # (64, 64)
    blocks = kernel.reshape(16, 4, 64) == 0
    # every block of 4 rows in a column is all zero or all non-zero
    assert np.all(blocks.all(axis=1) | ~blocks.any(axis=1))
    assert (kernel == 0).mean() == pytest.approx(0.75, abs=0.01)
    with pytest.raises(
        ValueError,
        match=r"'block_size' parameter of "
        r"kdl.compression.prune",
    ):
        compression.prune(model, x, y, block_size=(1, 2, 3), verbose=0)


def test_default_pruning_zeroes_blocks_of_rows_in_large_kernels(digits_image, tmp_path):
    (x, y), (x_test, _) = digits_image
    model = kdl.build_cnn((8, 8, 1), 10)  # conv2: 3x3x32 = 288 inputs a filter
    pruned = compression.prune(
        model, x[:512], y[:512], epochs=1, schedule="constant", verbose=0
    )

    conv2 = pruned.get_layer("conv2")
    assert type(conv2) is keras.layers.Conv2D  # a plain convolution again
    matrices = {
        64: conv2.kernel.numpy().reshape(-1, 64),  # (3 x 3 x 32, 64)
        128: pruned.get_layer("dense1").kernel.numpy(),  # (256, 128)
    }
    for units, matrix in matrices.items():
        rows = matrix.reshape(-1, 16, units) == 0  # 16 consecutive inputs
        assert np.all(rows.all(axis=1) | ~rows.any(axis=1))
        assert (matrix == 0).mean() == pytest.approx(0.8, abs=0.01)
    # the head reads 128 inputs, 8 blocks: pruned weight by weight
    head = pruned.get_layer("predictions").kernel.numpy().reshape(8, 16, 10) == 0
    assert not np.all(head.all(axis=1) | ~head.any(axis=1))
    kdl.save(pruned, tmp_path / "pruned.keras")
    again = kdl.load(tmp_path / "pruned.keras")
    np.testing.assert_allclose(
        again.predict(x_test, verbose=0), pruned.predict(x_test, verbose=0), atol=1e-6
    )


def test_prune_bidirectional_gru_prunes_both_directions(digits_sequence):
    (x, y), _ = digits_sequence
    x, y = x[:256], y[:256]
    model = kdl.build_gru((8, 8), 10, units=(16,), bidirectional=True)
    before = _weights(model)

    pruned = compression.prune(
        model, x, y, target_sparsity=0.6, epochs=1, batch_size=64, verbose=0
    )

    assert _same(before, model.get_weights())
    layer = pruned.get_layer("bi_gru1")
    assert isinstance(layer, keras.layers.Bidirectional)
    for direction in (layer.forward_layer, layer.backward_layer):
        recurrent = direction.cell.recurrent_kernel.numpy()  # fan-in 16
        assert abs(np.mean(recurrent == 0) - 0.6) <= 0.01
        assert np.all(direction.cell.kernel.numpy() != 0)  # fan-in 8: dense
    # the recurrent kernels hold two thirds of the layer's kernel weights
    assert abs(compression.sparsity(pruned)["layers"]["bi_gru1"] - 0.4) <= 0.01
    assert _plain_tf_keras(pruned)
    assert pruned.predict(x[:4], verbose=0).shape == (4, 10)


def test_prune_takes_a_dataset_and_refuses_a_model_without_kernels(digits_flat):
    (x, y), _ = digits_flat
    dataset = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(64)
    model = kdl.build_mlp((64,), 10, dense_units=(16,))
    pruned = compression.prune(
        model, dataset, None, target_sparsity=0.5, epochs=2, verbose=0
    )
    assert abs(compression.sparsity(pruned)["overall"] - 0.5) <= 0.01

    inputs = keras.Input((64,))
    kernel_free = keras.Model(inputs, keras.layers.Softmax()(inputs))
    kernel_free.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(
        UnsupportedModelError, match="at least one layer TF-MOT can prune"
    ):
        compression.prune(kernel_free, x, y, verbose=0)
    with pytest.raises(
        UnsupportedModelError, match="at least one layer TF-MOT can cluster"
    ):
        compression.cluster(kernel_free, x, y, verbose=0)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(10, activation="softmax")

    def call(self, inputs):
        return self.dense(inputs)


@pytest.mark.parametrize("transform", ["prune", "cluster", "quantize_aware"])
def test_subclassed_models_are_unsupported(digits_flat, transform):
    (x, y), _ = digits_flat
    model = _Subclassed()
    model.compile("adam", "sparse_categorical_crossentropy")
    model(x[:2])
    with pytest.raises(UnsupportedModelError, match="subclassed"):
        getattr(compression, transform)(model, x, y, verbose=0)


def _kernels_by_fan_in(model) -> dict:
    """{"large": kernels whose units read 16 inputs or more, "small": the
    others}, as arrays: prune leaves the small ones dense."""
    found = {"large": [], "small": []}
    for weight in model.weights:
        if weight.name.split("/")[-1].split(":")[0] in (
            "kernel",
            "recurrent_kernel",
            "embeddings",
        ):
            size = "large" if np.prod(weight.shape[:-1]) >= 16 else "small"
            found[size].append(weight.numpy())
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["cnn_augmented", "resnet", "lstm", "multitask", "seq2seq"]
)
def test_prune_works_on_every_builder(case, digits_image, digits_sequence):
    (xi, y), _ = digits_image
    (xs, _), _ = digits_sequence
    xi, xs, y = xi[:128], xs[:128], y[:128]
    if case == "cnn_augmented":
        model = kdl.build_cnn(
            (8, 8, 1), 10, filters=(8,), dense_units=(16,), augmentation={"flip": None}
        )
        x, targets = xi, y
    elif case == "resnet":
        model = kdl.build_resnet((8, 8, 1), 10, stages=(1, 1), filters=(8, 16))
        x, targets = xi, y
    elif case == "lstm":
        model = kdl.build_lstm((8, 8), 10, units=(8,), augmentation={"noise": 0.05})
        x, targets = xs, y
    elif case == "multitask":
        model = kdl.build_multitask(
            (8, 8),
            {"digit": ("classification", 10), "even": ("binary", 1)},
            trunk="rnn",
            trunk_kwargs={"units": (8,), "bidirectional": True},
        )
        x, targets = xs, {"digit": y, "even": (y % 2 == 0).astype("float32")}
    else:
        task = kdl.datasets.toy_translation(num_examples=160)
        (source, decoder_input), target = task.train
        model = kdl.build_seq2seq(
            task.input_vocab_size,
            task.output_vocab_size,
            units=8,
            embedding_dim=4,
            bidirectional_encoder=True,
            attention=True,
        )
        x, targets = [source, decoder_input], target
    before = _weights(model)

    pruned = compression.prune(
        model, x, targets, target_sparsity=0.5, epochs=1, batch_size=128, verbose=0
    )

    assert _same(before, model.get_weights())
    kernels = _kernels_by_fan_in(pruned)
    # small fan-ins stay dense, unless the model has no larger kernel (lstm)
    chosen, dense = kernels["large"], kernels["small"]
    if not chosen:
        chosen, dense = dense, []
    assert all(abs(np.mean(k == 0) - 0.5) <= 0.02 for k in chosen)
    assert all(np.mean(k == 0) <= 0.02 for k in dense)
    assert _plain_tf_keras(pruned)
    assert [layer.name for layer in pruned.layers] == [
        layer.name for layer in model.layers
    ]  # augmentation layers kept
    assert pruned.output_shape == model.output_shape
    outputs = tf.nest.flatten(pruned.predict(x, verbose=0))
    assert all(np.isfinite(out).all() for out in outputs)


# === Sparsity ===


def test_sparsity_counts_zeros_in_kernels_only():
    model = kdl.build_mlp((4,), 3, dense_units=(5,))
    dense1, head = model.get_layer("dense1"), model.get_layer("predictions")
    kernel = np.ones((4, 5), "float32")
    kernel[:2] = 0.0  # 10 of 20 zeros
    dense1.kernel.assign(kernel)
    head.kernel.assign(np.ones((5, 3), "float32"))  # 0 of 15 zeros
    dense1.bias.assign(np.zeros(5, "float32"))  # biases do not count
    before = _weights(model)

    measured = compression.sparsity(model)

    assert measured["layers"] == {"dense1": 0.5, "predictions": 0.0}
    assert measured["overall"] == pytest.approx(10 / 35)
    assert _same(before, model.get_weights())


# === Clustering ===


def test_cluster_leaves_at_most_n_values_per_kernel(digits_image):
    (x, y), (x_test, y_test) = digits_image
    model = kdl.build_cnn((8, 8, 1), 10, filters=(8, 16), dense_units=(32,))
    model.fit(x, y, epochs=4, verbose=0)
    before = _weights(model)

    clustered = compression.cluster(model, x, y, clusters=8, epochs=1, verbose=0)

    assert _same(before, model.get_weights())
    assert _plain_tf_keras(clustered)
    kernels = {
        layer.name: layer.kernel.numpy()
        for layer in clustered.layers
        if hasattr(layer, "kernel")
    }
    assert set(kernels) == {"conv1", "conv2", "dense1", "predictions"}
    for name, kernel in kernels.items():
        assert 2 <= len(np.unique(kernel)) <= 8, name
    # The original kernels had thousands of distinct values.
    assert len(np.unique(model.get_layer("dense1").kernel.numpy())) > 1000
    assert clustered.evaluate(x_test, y_test, verbose=0)[1] > 0.8


def _with_batch_norms():
    """Conv -> BN and Dense -> BN pairs with random statistics, a transposed
    convolution and a convolution read by two layers (neither folded)."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    conv = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.ReLU()(layers.BatchNormalization(name="conv_bn")(conv))
    shared = layers.Conv2D(4, 3, padding="same", name="shared")(x)
    x = layers.Add()([layers.BatchNormalization(name="shared_bn")(shared), shared])
    x = layers.Conv2DTranspose(4, 3, padding="same", name="transposed")(x)
    x = layers.BatchNormalization(name="transposed_bn")(x)
    x = layers.Dense(6, name="dense")(layers.Flatten()(x))
    x = layers.BatchNormalization(name="dense_bn")(x)
    model = keras.Model(inputs, layers.Dense(3, name="out")(x))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, gamma.shape),
                    rng.normal(size=beta.shape),
                    rng.normal(size=mean.shape),
                    rng.uniform(0.2, 3, variance.shape),
                ]
            )
    return model


def test_folding_batch_norms_keeps_what_the_model_computes():
    from kdl.compression.clustering import fold_batch_norms

    model = _with_batch_norms()
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 1)).astype("float32")
    before = model.predict(x, verbose=0)

    assert fold_batch_norms(model) == ["conv", "dense"]

    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-4)
    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert frozen == {"conv_bn", "dense_bn"}
    assert np.all(model.get_layer("conv_bn").gamma.numpy() == 1)


@pytest.mark.slow
def test_clusters_of_a_batch_normalized_cnn_survive_its_int8_file(
    digits_image, tmp_path
):
    from _helpers import kernel_value_counts

    from kdl import export

    (x, y), (x_test, y_test) = digits_image
    model = kdl.build_cnn(
        (8, 8, 1), 10, filters=(8, 16), dense_units=(32,), batch_norm=True
    )
    model.fit(x, y, epochs=6, verbose=0)

    clustered = compression.cluster(model, x, y, clusters=8, epochs=2, verbose=0)

    assert [layer.name for layer in clustered.layers] == [
        layer.name for layer in model.layers
    ]
    assert not clustered.get_layer("conv2_bn").trainable
    assert clustered.evaluate(x_test, y_test, verbose=0)[1] > 0.9
    path = export.to_tflite(
        clustered,
        tmp_path / "clustered.tflite",
        quantization="int8",
        representative_data=x[:200],
        check_data=x_test,
        per_channel=False,
        verbose=0,
    )
    # conv2 and dense1: 8 centroids (9 values with a zero), after the
    # converter folded the normalizations
    counts = kernel_value_counts(path)
    assert len(counts) == 2 and max(counts) <= 9


# === Quantization-aware training ===


UNQUANTIZABLE = {
    "gru": (
        lambda: kdl.build_gru((8, 8), 10, units=(8,)),
        r"gru1 \(GRU\).*quantization=\"dynamic\"",
    ),
    "bidirectional": (
        lambda: kdl.build_lstm((8, 8), 10, units=(8,), bidirectional=True),
        r"bi_lstm1 \(Bidirectional\)",
    ),
    "conv1d": (
        lambda: kdl.build_cnn((8, 8), 10, filters=(8,), dense_units=()),
        r"conv1 \(Conv1D\).*kdl.export.to_tflite",
    ),
}


@pytest.mark.parametrize("case", sorted(UNQUANTIZABLE))
def test_quantize_aware_refuses_unquantizable_layers_before_any_work(
    digits_sequence, capsys, case
):
    (x, y), _ = digits_sequence
    make, match = UNQUANTIZABLE[case]
    with pytest.raises(UnsupportedModelError, match=match):
        compression.quantize_aware(make(), x, y, verbose=1)
    assert capsys.readouterr().out == ""  # no training started


def test_quantize_aware_leaves_augmentation_out(digits_image):
    (x, y), _ = digits_image
    x, y = x[:128], y[:128]
    nested = kdl.build_mlp(
        (8, 8, 1), 10, dense_units=(8,), augmentation=kdl.augment.image(flip=None)
    )
    sequential = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.RandomRotation(0.1, name="augment_rotation"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="predictions"),
        ]
    )
    sequential.compile("adam", "sparse_categorical_crossentropy")
    for model in (nested, sequential):
        qat = compression.quantize_aware(
            model, x, y, epochs=1, batch_size=128, verbose=0
        )
        names = [layer.name for layer in qat.layers]
        assert "quant_predictions" in names
        assert not any(name.startswith("augment") for name in names)
        inference = qat.predict(x[:8], verbose=0)
        np.testing.assert_allclose(inference.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_quantize_aware_trains_and_round_trips_through_kdl_load(tmp_path, digits_image):
    (x, y), (x_test, y_test) = digits_image
    augmentation = {"flip": None, "rotation": 0.05, "zoom": 0.0, "translation": 0.0}
    model = kdl.build_cnn(
        (8, 8, 1), 10, filters=(8, 16), dense_units=(32,), augmentation=augmentation
    )
    model.fit(x, y, epochs=8, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    before = _weights(model)

    qat = compression.quantize_aware(model, x, y, epochs=2, verbose=0)

    assert _same(before, model.get_weights())
    names = [layer.name for layer in qat.layers]
    assert "quantize_layer" in names and "quant_conv1" in names
    assert not any(name.startswith("augment_") for name in names)
    # Kernels inside the quantization wrappers count under their own names.
    assert set(compression.sparsity(qat)["layers"]) == {
        "conv1",
        "conv2",
        "dense1",
        "predictions",
    }
    assert accuracy > 0.75
    assert qat.evaluate(x_test, y_test, verbose=0)[1] > accuracy - 0.03
    expected = qat.predict(x_test, verbose=0)
    for name in ("qat.keras", "qat.h5"):
        kdl.save(qat, tmp_path / name)
        restored = kdl.load(tmp_path / name)
        np.testing.assert_allclose(
            restored.predict(x_test, verbose=0), expected, atol=1e-6
        )


# === Arguments ===


def _uncompiled():
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])


def _keras3_model():
    import keras as keras3  # Keras 3, installed beside tf_keras

    return keras3.Sequential([keras3.Input((64,)), keras3.layers.Dense(10)])


# (transform, model maker or None for the digits MLP, kwargs, error, match)
BAD_ARGUMENTS = [
    (
        "prune",
        None,
        dict(target_sparsity=1.0),
        ValueError,
        r"'target_sparsity' parameter of kdl.compression.prune must be a number in "
        r"\[0, 1\)",
    ),
    ("prune", None, dict(target_sparsity="0.5"), TypeError, "'target_sparsity'"),
    (
        "prune",
        None,
        dict(schedule="linear"),
        ValueError,
        "'schedule'.*'polynomial', 'constant'",
    ),
    (
        "prune",
        None,
        dict(epochs=-1),
        ValueError,
        "'epochs' parameter of kdl.compression.prune must be a non-negative int",
    ),
    (
        "cluster",
        None,
        dict(epochs=0),
        ValueError,
        "'epochs' parameter of kdl.compression.cluster must be a positive int",
    ),
    (
        "prune",
        None,
        dict(y=slice(10)),
        ValueError,
        r"'y' .*as long as x \(1437 examples\)",
    ),
    ("prune", None, dict(verbose=3), ValueError, "'verbose'"),
    (
        "cluster",
        None,
        dict(clusters=1),
        ValueError,
        r"'clusters' parameter of kdl.compression.cluster must be an int >= 2. Got 1",
    ),
    ("quantize_aware", None, dict(learning_rate="fast"), TypeError, "'learning_rate'"),
    ("prune", _uncompiled, {}, ValueError, "a compiled model"),
    (
        "prune",
        None,
        dict(y=lambda y: y + 1),
        ValueError,
        r"'y' parameter of kdl.compression.prune must be class labels in 0..9",
    ),
    ("prune", _keras3_model, {}, TypeError, r"'model' .*Keras 3.*kdl.keras"),
    ("cluster", _keras3_model, {}, TypeError, r"'model' .*Keras 3.*kdl.keras"),
    ("quantize_aware", _keras3_model, {}, TypeError, r"'model' .*Keras 3.*kdl.keras"),
]


@pytest.mark.parametrize(
    "transform, make_model, kwargs, error, match",
    BAD_ARGUMENTS,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_ARGUMENTS)],
)
def test_bad_arguments_give_clear_errors(
    digits_flat, transform, make_model, kwargs, error, match, capsys
):
    (x, y), _ = digits_flat
    model = make_model() if make_model else kdl.build_mlp((64,), 10, dense_units=(8,))
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("y"), slice):
        kwargs["y"] = y[kwargs["y"]]
    elif callable(kwargs.get("y")):
        kwargs["y"] = kwargs["y"](y)
    kwargs = {"y": y, **kwargs}
    with pytest.raises(error, match=match):
        getattr(compression, transform)(model, x, **kwargs)
    assert capsys.readouterr().out == ""  # refused before any work


@pytest.mark.parametrize("model", ["model.keras", "keras3"])
def test_sparsity_refuses_what_is_not_a_kdl_keras_model(model):
    model = _keras3_model() if model == "keras3" else model
    with pytest.raises(TypeError, match=r"'model'.*kdl.keras"):
        compression.sparsity(model)


def test_one_shot_pruning_without_fine_tuning(digits_flat):
    model = _trained_mlp(digits_flat, epochs=3)
    before = _weights(model)
    pruned = compression.prune(model, None, None, target_sparsity=0.6, epochs=0)
    assert _same(before, _weights(model))
    report = compression.sparsity(pruned)
    assert all(
        value == pytest.approx(0.6, abs=0.01) for value in report["layers"].values()
    )
    # the weights kept are the largest of each kernel, unchanged
    kept = pruned.get_layer("dense1").get_weights()[0]
    original = model.get_layer("dense1").get_weights()[0]
    assert np.abs(original[kept == 0]).max() <= np.abs(original[kept != 0]).min()
    np.testing.assert_array_equal(kept[kept != 0], original[kept != 0])
    assert pruned.optimizer is not None
    with pytest.raises(
        ValueError,
        match=r"'block_size' parameter of "
        r"kdl.compression.prune .*epochs=0",
    ):
        compression.prune(model, None, None, epochs=0, block_size=(4, 1))


@pytest.mark.parametrize(
    ("hidden", "dense"),
    [((32,), {"dense1"}), ((8,), set())],
    ids=["small-fan-in-kept", "all-small-all-pruned"],
)
def test_kernels_of_small_fan_in_stay_dense_when_larger_ones_exist(hidden, dense):
    # dense1 reads 4 inputs: pruned 80% most of its units would read none
    model = kdl.build_mlp((4,), 3, dense_units=hidden)
    pruned = compression.prune(model, None, None, target_sparsity=0.8, epochs=0)
    for name, value in compression.sparsity(pruned)["layers"].items():
        assert value == (0.0 if name in dense else pytest.approx(0.8, abs=0.02))


@pytest.mark.slow
def test_pruned_and_shrunk_sunspots_gru_keep_their_mae():
    (x, y), (x_test, y_test) = kdl.datasets.sunspots(window=24)
    kdl.set_seed(0)
    model = kdl.build_gru((24, 1), 1, task="regression")
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)

    def mae(m):
        return float(np.mean(np.abs(m.predict(x_test, verbose=0) - y_test)))

    # The GRU itself forecasts: it beats repeating the last year's value
    # (measured 0.086-0.089 against 0.163 on model seeds 0-2).
    naive = float(np.mean(np.abs(x_test[:, -1, 0] - y_test[:, 0])))
    assert mae(model) < naive, (mae(model), naive)
    # 30 epochs (210 steps) instead of the default 1,500 steps: MAE ratios
    # measured on model seeds 0-2, prune 0.98/1.00/0.96, shrink 1.00/1.02/1.01
    pruned = compression.prune(model, x, y, epochs=30, verbose=0)
    cell = pruned.get_layer("gru1").cell
    # one input feature: the input kernel (fan-in 1) stays dense
    assert np.mean(cell.kernel.numpy() == 0) == 0
    assert np.mean(cell.recurrent_kernel.numpy() == 0) == pytest.approx(0.8, abs=0.01)
    assert mae(pruned) <= 1.05 * mae(model)
    shrunk = compression.shrink(model, x, y, epochs=30, verbose=0)
    assert mae(shrunk) <= 1.05 * mae(model)


# === Collaborative optimization (issue 15) ===


@pytest.fixture(scope="module")
def pruned_cnn(digits_image):
    """A small digits CNN pruned to 75%, and the pruned model's accuracy."""
    (x, y), (x_test, y_test) = digits_image
    keras.utils.set_random_seed(0)
    model = kdl.build_cnn((8, 8, 1), 10, filters=(16, 32), dense_units=(32,))
    model.fit(x, y, epochs=10, verbose=0)
    pruned = compression.prune(model, x, y, target_sparsity=0.75, epochs=4, verbose=0)
    return pruned, pruned.evaluate(x_test, y_test, verbose=0)[1]


def _fake_quantized_zeros(qat, x) -> float:
    """Fraction of zeros in the int8 kernels a QAT model computes with.

    An eager call leaves the fake-quantized kernels in the wrapped layers'
    attributes (the variables underneath may drift; what converts is these).
    """
    qat(x[:1], training=False)
    kernels = [
        np.asarray(layer.layer.kernel)
        for layer in qat.layers
        if hasattr(getattr(layer, "layer", None), "kernel")
    ]
    return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


def _distinct(model, name):
    return np.unique(model.get_layer(name).kernel.numpy())


def test_sparsity_preserving_clustering_keeps_the_zeros(digits_image, pruned_cnn):
    (x, y), (x_test, y_test) = digits_image
    pruned, accuracy = pruned_cnn
    zeros = {
        name: pruned.get_layer(name).kernel.numpy() == 0
        for name in ("conv2", "dense1", "predictions")
    }

    kept = compression.cluster(
        pruned, x, y, clusters=8, epochs=2, preserve_sparsity=True, verbose=0
    )
    lost = compression.cluster(pruned, x, y, clusters=8, epochs=1, verbose=0)

    for name, mask in zeros.items():
        assert np.all(kept.get_layer(name).kernel.numpy()[mask] == 0), name
        assert len(_distinct(kept, name)) <= 9, name  # 8 centroids and zero
    # conv1 (3x3x1, fan-in 9) stays dense: 75% of the other kernels
    assert compression.sparsity(kept)["overall"] >= 0.72
    assert compression.sparsity(lost)["overall"] < 0.5  # plain clustering
    assert kept.evaluate(x_test, y_test, verbose=0)[1] > accuracy - 0.05


@pytest.mark.parametrize("preserve", ["sparsity", "sparse_clusters"])
def test_quantize_aware_preserves_sparsity_and_clusters(
    digits_image, pruned_cnn, preserve
):
    (x, y), (x_test, y_test) = digits_image
    source, accuracy = pruned_cnn
    if preserve == "sparse_clusters":
        source = compression.cluster(
            source, x, y, clusters=8, epochs=1, preserve_sparsity=True, verbose=0
        )
    plain = compression.quantize_aware(source, x, y, epochs=1, verbose=0)
    kept = compression.quantize_aware(
        source, x, y, epochs=1, preserve=preserve, verbose=0
    )

    zeros = compression.sparsity(source)["overall"]  # ~0.73: conv1 stays dense
    assert _fake_quantized_zeros(kept, x) >= zeros - 0.01
    assert _fake_quantized_zeros(plain, x) < zeros - 0.01  # plain QAT loses zeros
    assert kept.evaluate(x_test, y_test, verbose=0)[1] > accuracy - 0.05
    if preserve == "sparse_clusters":
        dense = np.asarray(kept.get_layer("quant_dense1").layer.kernel)
        assert len(np.unique(dense)) <= 9


def test_quantize_aware_preserve_must_be_known(digits_image):
    (x, y), _ = digits_image
    model = kdl.build_cnn((8, 8, 1), 10, filters=(8,), dense_units=())
    with pytest.raises(ValueError, match="'preserve' .*'sparsity', 'clusters'"):
        compression.quantize_aware(model, x, y, preserve="zeros", verbose=0)


# === Multiply-adds ===


def test_multiply_adds_counts_each_layer():
    mlp = kdl.build_mlp((64,), 10, dense_units=(32,))
    assert compression.multiply_adds(mlp) == {
        "total": 64 * 32 + 32 * 10,
        "layers": {"dense1": 64 * 32, "predictions": 32 * 10},
    }
    cnn = kdl.build_cnn((8, 8, 1), 10, filters=(4,), dense_units=())
    counts = compression.multiply_adds(cnn)["layers"]
    assert counts["conv1"] == 8 * 8 * 3 * 3 * 1 * 4  # "same" padding
    assert counts["predictions"] == 4 * 4 * 4 * 10  # after 2x2 pooling
    gru = kdl.build_gru((5, 3), 2, units=(4,), bidirectional=True)
    assert compression.multiply_adds(gru)["layers"]["bi_gru1"] == (
        2 * 5 * 3 * (3 * 4 + 4 * 4)
    )
