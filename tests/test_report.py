"""Tests of kdl.report: one table of variants, measured on the exported files."""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pytest

from kdl import export, report


@pytest.fixture(scope="module")
def trained_mlp(digits_flat):
    from kdl import build_mlp
    from kdl.backend import keras

    keras.utils.set_random_seed(0)
    (x, y), _ = digits_flat
    model = build_mlp((64,), 10, hidden_units=(64,))
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    return model


@pytest.mark.slow
def test_compare_user_variants_with_epsilons(trained_mlp, digits_flat, tmp_path):
    (x, _), (x_test, y_test) = digits_flat
    float_file = export.to_tflite(
        trained_mlp, tmp_path / "float.tflite", check_data=x_test, verbose=0
    )
    int8_file = export.to_tflite(
        trained_mlp,
        tmp_path / "int8.tflite",
        quantization="int8",
        representative_data=x[:200],
        check_data=x_test,
        verbose=0,
    )
    table = report.compare(
        {
            "keras float": trained_mlp,
            "tflite float": float_file,
            "int8": str(int8_file),
        },
        x_test,
        y_test,
        epsilons={"int8": 2.5},
        output_dir=tmp_path / "out",
        latency_samples=10,
        verbose=0,
    )

    keras_accuracy = float(
        np.mean(trained_mlp.predict(x_test, verbose=0).argmax(-1) == y_test)
    )
    base, lite, int8 = table.rows
    assert table.baseline == "keras float" and table.metric_name == "accuracy"
    assert base["metric"] == pytest.approx(keras_accuracy)
    assert base["gzip_ratio"] == 1.0 and base["metric_ratio"] == 1.0
    assert lite["metric"] == pytest.approx(keras_accuracy, abs=1e-9)
    # sizes are those of the files, gzipped as written
    data = int8_file.read_bytes()
    assert int8["bytes"] == len(data)
    assert int8["gzip_bytes"] == len(gzip.compress(data, 9))
    assert int8["gzip_ratio"] == pytest.approx(int8["gzip_bytes"] / base["gzip_bytes"])
    assert int8["gzip_ratio"] < 0.5
    assert int8["epsilon"] == 2.5 and base["epsilon"] is None
    assert int8["latency_ms_median"] > 0

    markdown = table.paths["markdown"].read_text()
    assert "| epsilon |" in markdown and "| 2.5 |" in markdown and "—" in markdown
    rows = list(csv.DictReader(io.StringIO(table.paths["csv"].read_text())))
    assert [r["variant"] for r in rows] == ["keras float", "tflite float", "int8"]
    assert rows[2]["epsilon"] == "2.5" and rows[0]["epsilon"] == ""
    assert table.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_standard_variants_from_one_float_model(trained_mlp, digits_flat, tmp_path):
    (x, y), (x_test, y_test) = digits_flat
    weights = [w.copy() for w in trained_mlp.get_weights()]
    variants = report.standard_variants(
        trained_mlp,
        x,
        y,
        tmp_path,
        check_data=x_test,
        prune_kwargs={"epochs": 3},
        verbose=0,
    )
    assert list(variants) == list(report.STANDARD_VARIANTS)
    assert variants["keras float"] is trained_mlp
    for name in report.STANDARD_VARIANTS[1:]:
        assert variants[name].suffix == ".tflite" and variants[name].is_file()
    for before, after in zip(weights, trained_mlp.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)

    table = report.compare(variants, x_test, y_test, latency_samples=5, verbose=0)
    base = table.row("keras float")
    for name in ("int8", "pruned + int8", "clustered + int8", "QAT + int8"):
        row = table.row(name)
        assert row["metric"] >= base["metric"] - 0.05, name
        assert row["bytes_ratio"] < 0.5, name
    assert table.row("pruned + int8")["gzip_bytes"] < table.row("int8")["gzip_bytes"]


_KERAS3 = type("Model", (), {"__module__": "keras.src"})()
BAD_COMPARE_ARGUMENTS = [
    (
        {"epsilons": {"b": 1.0}},
        ValueError,
        "'epsilons' parameter of kdl.report.compare",
    ),
    ({"epsilons": {"a": -1.0}}, ValueError, r"'epsilons\['a'\]' parameter"),
    ({"baseline": "z"}, ValueError, "'baseline' parameter"),
    ({"variants": {}}, ValueError, "'variants' parameter"),
    (
        {"variants": {"f": "missing.tflite"}},
        ValueError,
        r"'variants\['f'\]' parameter.*\.tflite",
    ),
    ({"variants": {"k3": _KERAS3}}, TypeError, "kdl.keras"),
    ({"metric": "f1"}, ValueError, "'metric' parameter"),
    ({"verbose": "1"}, TypeError, "'verbose' parameter"),
    ({"output_dir": ""}, TypeError, "'output_dir' parameter"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_COMPARE_ARGUMENTS)
def test_compare_bad_arguments_are_named(trained_mlp, tmp_path, kwargs, error, match):
    x = np.zeros((4, 64), "float32")
    y = np.zeros(4, "int64")
    kwargs = {"variants": {"a": trained_mlp}, "verbose": 0, **kwargs}
    variants = kwargs.pop("variants")
    if "f" in variants:
        variants = {"f": tmp_path / variants["f"]}
    with pytest.raises(error, match=match):
        report.compare(variants, x, y, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"include": ("int4",)}, ValueError, "'include' parameter"),
        ({"include": "int8"}, TypeError, "'include' parameter"),
        ({"prune_kwargs": 3}, TypeError, "'prune_kwargs' parameter"),
        ({"output_dir": 3}, TypeError, "'output_dir' parameter"),
        ({"verbose": -1}, ValueError, "'verbose' parameter"),
    ],
)
def test_standard_variants_bad_arguments_are_named(
    trained_mlp, tmp_path, kwargs, error, match
):
    x = np.zeros((4, 64), "float32")
    y = np.zeros(4, "int64")
    kwargs = {"output_dir": tmp_path, **kwargs}
    with pytest.raises(error, match=match):
        report.standard_variants(trained_mlp, x, y, **kwargs)
    assert not any(tmp_path.iterdir())


def test_standard_variants_lets_a_bad_transform_argument_through(
    trained_mlp, digits_flat, tmp_path
):
    # a bad value inside prune_kwargs is the caller's mistake, not a variant
    # this model cannot have: it raises instead of becoming a "skipped" warning
    (x, y), _ = digits_flat
    with pytest.raises(ValueError, match="'target_sparsity' parameter"):
        report.standard_variants(
            trained_mlp,
            x[:64],
            y[:64],
            tmp_path,
            include=("pruned + int8",),
            prune_kwargs={"target_sparsity": 1.5},
            verbose=0,
        )


@pytest.mark.slow
def test_standard_variants_skips_what_the_model_cannot_be(digits_sequence, tmp_path):
    # full int8 of a GRU crashes the converter (docs/design.md#tflite): an
    # UnsupportedModelError, so that variant is skipped and the others built
    from kdl import build_gru

    (x, y), (x_test, _) = digits_sequence
    model = build_gru((8, 8), 10, units=(4,))
    with pytest.warns(UserWarning, match="skipped 'int8'.*crashed"):
        variants = report.standard_variants(
            model,
            x[:64],
            y[:64],
            tmp_path,
            include=("dynamic range", "int8"),
            check_data=x_test[:20],
            verbose=0,
        )
    assert list(variants) == ["dynamic range"]
    assert variants["dynamic range"].is_file()
