"""kdl.datasets.load on the user's own data: CSV tables and series, image
folders, .npz files and arrays, each written by the test from real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import WINE_CLASSES, write_digit_pngs, write_sunspots, write_wine

import kdl
from kdl import datasets


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("wine") / "wine.csv"
    write_wine(path)
    return path


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    return write_digit_pngs(tmp_path_factory.mktemp("pngs") / "digits")


# === CSV tables ===


def test_csv_string_target_and_text_column(wine_csv):
    data = datasets.load(wine_csv, target="label")
    (x, y), (x_test, y_test) = data
    assert data.task == "classification"
    assert data.classes == sorted(WINE_CLASSES.tolist())
    assert "region=north" in data.feature_names and "label" not in str(
        data.feature_names
    )
    assert x.shape == (142, 15) and x_test.shape == (36, 15)
    assert x.dtype == np.float32 and y.dtype == np.int64
    # stratified: each class keeps its share in the test part (59/71/48 of 178)
    assert np.bincount(y_test).tolist() == [10, 12, 14]
    # rows point back into the file: row r is line r + 1
    frame = pd.read_csv(wine_csv)
    row = data.rows[1][0]
    assert frame["label"][row - 1] == data.classes[y_test[0]]
    assert x_test[0][0] == pytest.approx(frame["alcohol"][row - 1])


def test_csv_trains_to_held_out_accuracy(wine_csv):
    data = datasets.load(wine_csv, target="label")
    (x, y), (x_test, y_test) = data
    model = kdl.build_mlp(
        data.input_shape, data.num_outputs, normalize=x, dense_units=(32,)
    )
    model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert model.evaluate(x_test, y_test, verbose=0)[1] >= 0.9


def test_schema_reads_new_rows_the_same_way(wine_csv, tmp_path):
    data = datasets.load(wine_csv, target="label")
    new = tmp_path / "new.csv"
    frame = pd.read_csv(wine_csv).iloc[[5, 70, 150]].drop(columns="label")
    frame.to_csv(new, index=False)
    again = datasets.load(new, schema=data.schema, test_size=0.0)
    (x_new, y_new), (x_none, _) = again
    assert y_new is None and len(x_none) == 0
    full = datasets.load(wine_csv, target="label", test_size=0.0)
    np.testing.assert_array_equal(x_new, full.train[0][[5, 70, 150]])
    assert again.feature_names == data.feature_names

    saved = datasets.write_schema(tmp_path / "m.keras", data.schema)
    assert saved.name == "m.keras.data.json"
    assert datasets.read_schema(tmp_path / "m.keras")["classes"] == data.classes


def test_csv_as_dataset_gives_batched_pipelines(wine_csv):
    arrays = datasets.load(wine_csv, target="label")
    data = datasets.load(wine_csv, target="label", as_dataset=True, batch_size=16)
    (train, none), (test, _) = data
    assert none is None and data.classes == arrays.classes
    x, y = next(iter(test))
    assert x.shape == (16, 15)
    batches = list(test)
    np.testing.assert_array_equal(
        np.concatenate([b[1] for b in batches]), arrays.test[1]
    )  # same split, test in order
    assert sum(len(b[0]) for b in train) == 142


def test_missing_values_dropped_when_asked(tmp_path):
    path = tmp_path / "gaps.csv"
    frame = write_wine(path)
    frame.loc[[3, 9], "malic_acid"] = np.nan
    frame.to_csv(path, index=False)
    data = datasets.load(path, target="label", missing="drop", test_size=0.0)
    assert len(data.train[0]) == 176 and 4 not in data.rows[0]


def test_integer_and_numeric_targets_infer_the_task():
    x = np.random.default_rng(0).random((60, 3)).astype("float32")
    binary = datasets.load((x, (x[:, 0] > 0.5).astype(int)))
    assert binary.task == "binary" and binary.num_outputs == 1
    regression = datasets.load((x, x.sum(axis=1)))
    assert regression.task == "regression" and regression.train[1].shape[1] == 1
    forced = datasets.load((x, np.arange(60) % 3), task="classification")
    assert forced.classes == [0, 1, 2]


# === series ===


def test_series_csv_windows_in_time_order(tmp_path):
    path = tmp_path / "sunspots.csv"
    series = write_sunspots(path)
    data = datasets.load(path, window=12, horizon=1)
    (x, y), (x_test, y_test) = data
    assert data.task == "regression" and data.feature_names == ["sunspots"]
    assert x.shape[1:] == (12, 1) and y.shape[1:] == (1,)
    # window i reads rows i..i+11 and predicts row i+12
    np.testing.assert_array_equal(
        x[:, :, 0], np.lib.stride_tricks.sliding_window_view(series, 12)[: len(x)]
    )
    np.testing.assert_array_equal(y[:, 0], series[12 : 12 + len(y)])
    # the test windows come after every training window
    assert data.rows[0].max() < data.rows[1].min()
    np.testing.assert_array_equal(x_test[0, :, 0], series[len(x) : len(x) + 12])


def test_series_horizon_and_sunspots_share_the_windowing(tmp_path):
    path = tmp_path / "sunspots.csv"
    series = write_sunspots(path)
    data = datasets.load(path, window=6, horizon=3, test_size=0.0)
    (x, y), _ = data
    np.testing.assert_array_equal(y[:, 0], series[6 + 2 : 6 + 2 + len(y)])
    (xs, ys), _ = datasets.sunspots(window=6, horizon=3)
    scale = series[: len(xs) + 6].max()
    np.testing.assert_allclose(xs[:, :, 0] * scale, x[: len(xs), :, 0], rtol=1e-5)


@pytest.mark.slow
def test_gru_on_series_csv_beats_last_value(tmp_path):
    path = tmp_path / "sunspots.csv"
    write_sunspots(path)
    (x, y), (x_test, y_test) = datasets.load(path, window=12)
    kdl.set_seed(0)
    model = kdl.build_gru(
        x.shape[1:],
        1,
        task="regression",
        units=(16,),
        dense_units=(16,),
        normalize=x,  # raw sunspot counts in, raw counts out
        learning_rate=0.02,
    )
    model.fit(x, y, epochs=60, batch_size=32, verbose=0)
    mae = float(np.mean(np.abs(model.predict(x_test, verbose=0) - y_test)))
    naive = float(np.mean(np.abs(x_test[:, -1, :] - y_test)))
    assert mae < naive, (mae, naive)


def test_series_array_with_target_column():
    t = np.arange(100, dtype="float32")
    array = np.stack([t, np.sin(t)], axis=1)
    data = datasets.load(array, window=5, target=1, test_size=0.2)
    (x, y), _ = data
    assert x.shape == (76, 5, 2)
    np.testing.assert_allclose(y[:, 0], np.sin(t[5:81]), rtol=1e-6)


# === .npz and arrays ===


def test_npz_default_named_and_presplit_keys(tmp_path, digits_flat):
    (x, y), (x_test, y_test) = digits_flat
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    np.savez(tmp_path / "named.npz", pixels=x, digit=y)
    np.savez(tmp_path / "split.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    plain = datasets.load(tmp_path / "plain.npz")
    named = datasets.load(tmp_path / "named.npz", features="pixels", target="digit")
    np.testing.assert_array_equal(plain.train[0], named.train[0])
    assert plain.classes == list(range(10)) and plain.task == "classification"
    split = datasets.load(tmp_path / "split.npz")
    np.testing.assert_array_equal(split.test[0], x_test)
    np.testing.assert_array_equal(split.test[1], y_test)


# === image folders ===


@pytest.mark.slow
def test_image_folder_trains_a_cnn_like_the_arrays(digit_folder, digits_image):
    data = datasets.load(digit_folder, image_size=(8, 8), color_mode="grayscale")
    (x, y), (x_test, y_test) = data
    assert data.classes == [f"digit_{i}" for i in range(10)]
    assert x.shape[1:] == (8, 8, 1) and x.max() > 200  # raw pixel values
    assert np.bincount(y_test).min() >= 34  # stratified: 36 +- 2 of each
    assert str(data.rows[1][0]).startswith("digit_")
    kdl.set_seed(0)
    cnn = kdl.build_cnn((8, 8, 1), 10, filters=(16, 32), normalize=x)
    cnn.fit(x, y, epochs=8, verbose=0)
    from_files = cnn.evaluate(x_test, y_test, verbose=0)[1]
    (xa, ya), (xa_test, ya_test) = digits_image
    kdl.set_seed(0)
    cnn = kdl.build_cnn((8, 8, 1), 10, filters=(16, 32))
    cnn.fit(xa, ya, epochs=8, verbose=0)
    from_arrays = cnn.evaluate(xa_test, ya_test, verbose=0)[1]
    assert from_files >= from_arrays - 0.03 and from_files > 0.9, (
        from_files,
        from_arrays,
    )


@pytest.mark.slow
def test_image_dataset_trains_through_train_and_tune(digit_folder, tmp_path):
    data = datasets.load(
        digit_folder,
        image_size=(8, 8),
        color_mode="grayscale",
        as_dataset=True,
        batch_size=32,
    )
    (train, none), (test, _) = data
    assert none is None
    images, labels = next(iter(train))
    assert images.shape[1:] == (8, 8, 1) and labels.shape[0] == 32
    model = kdl.build_cnn(data.input_shape, 10, filters=(16, 32), normalize=train)
    kdl.train(
        model,
        train,
        validation_data=test,
        epochs=6,
        run_dir=tmp_path / "r",
        seed=0,
        verbose=0,
    )
    assert model.evaluate(test, verbose=0)[1] > 0.8
    result = kdl.tune(
        kdl.build_cnn,
        train,
        validation_data=test,
        space={"filters": kdl.Choice([(8,), (16,)])},
        fixed={
            "input_shape": data.input_shape,
            "num_outputs": data.num_outputs,
            "normalize": train,
        },
        algorithm="grid",
        epochs=1,
        directory=tmp_path / "tune",
        seed=0,
        verbose=0,
    )
    assert result.best_model.evaluate(test, verbose=0)[1] > 0.3  # 1 epoch


# === mistakes ===


def _bad_value_csv(tmp_path):
    path = tmp_path / "bad.csv"
    frame = write_wine(path)
    frame["magnesium"] = frame["magnesium"].astype(object)
    frame.loc[6, "magnesium"] = "high"
    frame.to_csv(path, index=False)
    return path


def _gap_csv(tmp_path):
    path = tmp_path / "gap.csv"
    frame = write_wine(path)
    frame.loc[11, "ash"] = np.nan
    frame.to_csv(path, index=False)
    return path


def _flat_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), "uint8")).save(folder / "a.png")
    return folder


BAD = [
    (
        lambda p: (p / "nowhere.csv", {"target": "label"}),
        FileNotFoundError,
        "found no file or folder at .*nowhere.csv",
    ),
    (
        lambda p: (
            write_wine(p / "w.csv") is not None and p / "w.csv",
            {"target": "colour"},
        ),
        ValueError,
        r"'target' parameter .* column names of .*w\.csv.*Got 'colour'",
    ),
    (
        lambda p: (write_wine(p / "w.csv") is not None and p / "w.csv", {}),
        TypeError,
        r"'target' parameter .* column to predict",
    ),
    (
        lambda p: (_bad_value_csv(p), {"target": "label"}),
        ValueError,
        r"column 'magnesium' holds numbers: row 7 \(line 8 .*'high'.*bad\.csv",
    ),
    (
        lambda p: (_gap_csv(p), {"target": "label"}),
        ValueError,
        r"column 'ash': row 12 \(line 13 of the file\) is empty.*missing='drop'",
    ),
    (
        lambda p: (
            write_wine(p / "w.csv") is not None and p / "w.csv",
            {"target": "label", "task": "regression"},
        ),
        ValueError,
        "'task' parameter .* text target 'label'",
    ),
    (
        lambda p: (_flat_folder(p), {}),
        ValueError,
        "one subfolder of images .* per class .*images lie in the folder itself",
    ),
    (
        lambda p: (np.savez(p / "d.npz", a=np.ones(3)) or p / "d.npz", {}),
        ValueError,
        r"'features' parameter .* array in .*d\.npz .*\['a'\]",
    ),
    (
        lambda p: (np.arange(30.0), {"window": 40}),
        ValueError,
        "'window' parameter .* at most 28",
    ),
    (lambda p: ((np.ones((10, 2)), np.ones(9)), {}), ValueError, r"y of shape \(10,\)"),
    (
        lambda p: ("digits", {"test_size": 0.95}),
        ValueError,
        "'test_size' parameter of kdl.datasets.load",
    ),
    (lambda p: ("digits", {"image_size": (8,)}), ValueError, "'image_size'"),
    (lambda p: (p / "x.parquet", {}), FileNotFoundError, "x.parquet"),
]


@pytest.mark.parametrize("make, error, pattern", BAD)
def test_bad_data_is_refused_naming_what(make, error, pattern, tmp_path):
    source, kwargs = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(error, match=pattern):
        datasets.load(source, **kwargs)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_training_rows_come_shuffled_and_new_data_is_not_split(tmp_path):
    frame = write_wine(tmp_path / "wine.csv")  # sorted by class, as sklearn's
    data = datasets.load(tmp_path / "wine.csv", target="label", seed=4)
    (x, y), (x_test, y_test) = data
    assert len(set(y[-15:].tolist())) > 1  # not the last class only
    assert len(set(y[:15].tolist())) > 1
    assert sorted(data.rows[0].tolist() + data.rows[1].tolist()) == list(range(1, 179))
    again = datasets.load(tmp_path / "wine.csv", target="label", seed=4)
    np.testing.assert_array_equal(again.rows[0], data.rows[0])  # seeded
    # each training example is still its file row
    row = data.rows[0][0]
    assert data.classes[y[0]] == frame["label"].iloc[row - 1]

    # new rows read with the schema: every one, in the file's order
    frame.iloc[:20].drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    (x_new, y_new), (x_none, _) = datasets.load(
        tmp_path / "new.csv", schema=data.schema
    )
    assert len(x_new) == 20 and len(x_none) == 0 and y_new is None
    new = datasets.load(tmp_path / "new.csv", schema=data.schema)
    assert new.rows[0].tolist() == list(range(1, 21))
    # a number still splits (kdl evaluate re-creates the model's test part)
    split = datasets.load(tmp_path / "wine.csv", schema=data.schema, test_size=0.2)
    assert len(split.test[0]) == 36
