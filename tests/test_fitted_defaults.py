"""Builder defaults fitted to the data (issue 23, asks 1 and 2).

Images of any size get a CNN whose head does not grow with the pixel count;
regression models scale their targets inside the model (``normalize_target``)
and recurrent ones forecast the change from the last value (``residual``).
Data of the tests' own: generated shapes (tests/_shapes.py) and statsmodels'
quarterly US macro series.
"""

from __future__ import annotations

import numpy as np
import pytest
from _shapes import shapes

import kdl
from kdl import datasets


def _dense_inputs(model) -> int:
    return int(model.get_layer("dense1").kernel.shape[0])


def test_cnn_head_does_not_grow_with_the_pixel_count():
    small = kdl.build_cnn((64, 64, 3), 3)
    large = kdl.build_cnn((256, 256, 3), 3)
    assert _dense_inputs(small) == 4 * 4 * 128 == _dense_inputs(large)
    assert large.count_params() < 2 * small.count_params() < 10**6
    # 8x8 digits: the architecture of the earlier default, unchanged
    digits = kdl.build_cnn((8, 8, 1), 10)
    convs = [la.filters for la in digits.layers if type(la).__name__ == "Conv2D"]
    assert convs == [32, 64] and _dense_inputs(digits) == 2 * 2 * 64
    # explicit arguments win over the fitted defaults
    explicit = kdl.build_cnn((64, 64, 3), 3, filters=(8, 16), global_pool=False)
    assert _dense_inputs(explicit) == 16 * 16 * 16
    pooled = kdl.build_cnn((64, 64, 3), 3, filters=(8, 16))
    assert _dense_inputs(pooled) == 16  # a 16x16 map is pooled globally


def test_resnet_parameters_do_not_depend_on_the_image_size():
    counts = {kdl.build_resnet((s, s, 3), 3).count_params() for s in (32, 96)}
    assert len(counts) == 1


@pytest.mark.slow
def test_default_cnn_on_64px_shapes():
    # Measured: 0.983 (seed 0); 1,100 s on 2 cores shared at load 21, the
    # costliest test here. 600 images and 10 epochs gave 0.56.
    x, y = shapes(1000, seed=1)
    x_test, y_test = shapes(300, seed=2)
    kdl.set_seed(0)
    model = kdl.build_cnn((64, 64, 3), 3, normalize=x)
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    assert accuracy >= 0.9


# === Regression targets in raw units ===


def _raw_regression(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (9000.0 + 800.0 * x @ np.array([1.0, -0.5, 0.3, 0.0])).astype("float32")
    return x, y[:, None]


def test_normalize_target_predicts_raw_units_and_survives_safe_load(tmp_path):
    x, y = _raw_regression()
    kdl.set_seed(0)
    model = kdl.build_mlp((4,), 1, task="regression", normalize=x, normalize_target=y)
    assert [la.name for la in model.layers][-2:] == ["head", "predictions"]
    model.fit(x[:300], y[:300], epochs=30, batch_size=32, verbose=0)
    predicted = model.predict(x[300:], verbose=0)
    mae = float(np.mean(np.abs(predicted - y[300:])))
    assert mae < 0.1 * float(np.std(y))  # the mean alone: about 0.8 std
    reloaded = kdl.load(kdl.save(model, tmp_path / "m.keras"))  # safe mode
    np.testing.assert_allclose(reloaded.predict(x[300:], verbose=0), predicted)


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (
            lambda y: kdl.build_mlp((4,), 2, normalize_target=y),
            ValueError,
            r"'normalize_target' parameter of build_mlp.*task=\"regression\"",
        ),
        (
            lambda y: kdl.build_cnn(
                (8, 8, 1), 2, task="regression", normalize_target=y
            ),
            ValueError,
            r"'normalize_target' parameter of build_cnn.*\(examples, 2\)",
        ),
        (
            lambda y: kdl.build_gru((8, 1), 1, task="regression", normalize_target=y),
            ValueError,
            r"'normalize_target' parameter of build_gru.*normalize= set",
        ),
        (
            lambda y: kdl.build_gru((8, 3), 1, task="regression", residual=3),
            ValueError,
            r"'residual' parameter of build_gru.*below 3",
        ),
        (
            lambda y: kdl.build_gru((8, 3), 2, residual=True),
            TypeError,
            r"'residual' parameter of build_gru",
        ),
    ],
)
def test_target_arguments_are_checked(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call(np.ones((10, 1), "float32"))


def test_residual_gru_starts_at_the_naive_forecast():
    x = np.random.default_rng(0).normal(size=(20, 6, 3)).astype("float32") * 50
    model = kdl.build_gru((6, 3), 1, task="regression", residual=2)
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    np.testing.assert_allclose(model.predict(x, verbose=0)[:, 0], x[:, -1, 2])
    assert "last_value" not in [la.name for la in kdl.build_gru((6, 3), 2).layers]
    off = kdl.build_gru((6, 1), 1, task="regression", residual=None)
    assert [la.name for la in off.layers][-1] == "predictions"
    assert "last_value" not in [la.name for la in off.layers]


def _macro(column, window=8):
    import statsmodels.api as sm

    series = sm.datasets.macrodata.load_pandas().data[[column]]
    return datasets.load(series.to_numpy("float32"), window=window)


@pytest.mark.slow
@pytest.mark.parametrize("column", ["unemp", "realgdp"])
def test_default_gru_beats_last_value_on_macro_series(column, tmp_path):
    (x, y), (x_test, y_test) = _macro(column)
    kdl.set_seed(0)
    model = kdl.build_gru(
        x.shape[1:], 1, task="regression", normalize=x, normalize_target=y
    )
    kdl.train(
        model,
        x,
        y,
        validation_split=0.1,  # the last windows, as kdl train does
        epochs=100,
        verbose=0,
        run_dir=tmp_path / "run",
    )
    mae = float(np.mean(np.abs(model.predict(x_test, verbose=0) - y_test)))
    naive = float(np.mean(np.abs(x_test[:, -1, 0] - y_test[:, 0])))
    assert mae <= naive, (mae, naive)
    assert column == "unemp" or mae < 200  # GDP 13,000-15,000: not off by 1000s


@pytest.mark.slow
def test_scaled_residual_gru_through_prune_tflite_and_lite(tmp_path):
    from kdl import compression, export, lite

    (x, y), (x_test, y_test) = _macro("realgdp")
    kdl.set_seed(0)
    model = kdl.build_gru(
        x.shape[1:], 1, task="regression", normalize=x, normalize_target=y
    )
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    expected = model.predict(x_test, verbose=0)
    assert np.abs(expected - y_test).mean() < 1000  # raw units, not off by 1000s
    pruned = compression.prune(model, x, y, target_sparsity=0.5, epochs=1, verbose=0)
    assert np.abs(pruned.predict(x_test, verbose=0) - expected).mean() < 1000
    path = export.to_tflite(model, tmp_path / "m.tflite", check_data=x_test, verbose=0)
    np.testing.assert_allclose(lite.load(path).predict(x_test), expected, rtol=1e-4)
