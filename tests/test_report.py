"""Tests of kdl.report: one table of variants, measured on the exported files."""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pytest

from kdl import export, report


# The slow tests' model (its size is in their assertions); the fast tests use
# conftest's shared digits_mlp.
@pytest.fixture(scope="module")
def trained_mlp(digits_flat):
    from kdl import build_mlp
    from kdl.backend import keras

    keras.utils.set_random_seed(0)
    (x, y), _ = digits_flat
    model = build_mlp((64,), 10, dense_units=(64,))
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
        sources={"int8": trained_mlp},
        run_dir=tmp_path / "out",
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
    # parameters and multiply-adds: counted from the Keras model, and from
    # the model a file came from when it is given; blank otherwise
    assert base["parameters"] == trained_mlp.count_params() == 64 * 65 + 65 * 10
    assert base["multiply_adds"] == 64 * 64 + 64 * 10
    assert int8["parameters"] == base["parameters"]
    assert int8["multiply_adds_ratio"] == 1.0
    assert lite["parameters"] is None and lite["multiply_adds"] is None

    markdown = table.paths["markdown"].read_text()
    assert "| epsilon |" in markdown and "| 2.5 |" in markdown and "—" in markdown
    assert "| parameters | multiply-adds |" in markdown and "| 4,736 (1x) |" in markdown
    assert "without the Keras model it came from" in markdown
    rows = list(csv.DictReader(io.StringIO(table.paths["csv"].read_text())))
    assert [r["variant"] for r in rows] == ["keras float", "tflite float", "int8"]
    assert rows[2]["epsilon"] == "2.5" and rows[0]["epsilon"] == ""
    assert rows[0]["multiply_adds"] == "4736" and rows[1]["multiply_adds"] == ""
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
        shrink_kwargs={"epochs": 3},
        distill_kwargs={"epochs": 3},
        verbose=0,
    )
    assert list(variants) == list(report.STANDARD_VARIANTS)
    assert variants["keras float"] is trained_mlp
    for name in report.STANDARD_VARIANTS[1:]:
        assert variants[name].suffix == ".tflite" and variants[name].is_file()
        assert name in variants.sources
    for before, after in zip(weights, trained_mlp.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)

    table = report.compare(variants, x_test, y_test, latency_samples=5, verbose=0)
    base = table.row("keras float")
    for name in report.STANDARD_VARIANTS[4:]:
        row = table.row(name)
        assert row["metric"] >= base["metric"] - 0.05, name
        assert row["bytes_ratio"] < 0.5, name
    pruned = table.row("pruned + int8")
    assert pruned["gzip_bytes"] < table.row("int8")["gzip_bytes"]
    assert table.row("pruned + clustered + int8")["gzip_bytes"] < pruned["gzip_bytes"]
    # zeroed or shared weights still compute; removed units do not
    for name in ("pruned + int8", "pruned + clustered + int8", "QAT + int8"):
        assert table.row(name)["multiply_adds_ratio"] == 1.0, name
        assert table.row(name)["parameters"] == base["parameters"], name
    for name in ("shrunk + int8", "distilled + int8"):
        assert table.row(name)["multiply_adds_ratio"] <= 0.55, name


def test_a_per_kernel_file_that_fails_its_check_is_made_per_channel(
    digits_mlp, digits_flat, tmp_path, monkeypatch
):
    (x, y), (x_test, _) = digits_flat
    real, asked = export.to_tflite, []

    def per_kernel_fails(model, path, **kwargs):
        asked.append(kwargs["per_channel"])
        if not kwargs["per_channel"]:
            raise export.ExportCheckError("top-1 agreement 90% (required 98%)")
        return real(model, path, **kwargs)

    monkeypatch.setattr(export, "to_tflite", per_kernel_fails)
    variants = report.standard_variants(
        digits_mlp,
        x,
        y,
        tmp_path,
        include=("keras float", "pruned + int8"),
        check_data=x_test,
        prune_kwargs={"epochs": 1},
        verbose=0,
    )
    assert asked == [False, True]
    assert variants["pruned + int8"].is_file()
    assert export.load_tflite(variants["pruned + int8"]).metadata["per_channel"] is True


def test_plot_labels_of_variants_sharing_a_size_do_not_overlap(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.set_xscale("log")
    points = [(1000, 0.95)] * 5 + [(1010, 0.951), (5000, 0.9), (5000, 0.9)]
    ax.scatter(*zip(*points, strict=True))
    ax.set_xlim(500, 20000)
    ax.set_ylim(0.85, 1.0)
    labels = [f"variant number {i}" for i in range(len(points))]
    notes = report.place_labels(ax, points, labels)
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(note, renderer) for note in notes]
    plt.close(fig)
    assert [note.get_text() for note in notes] == labels
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)

    rows = tuple(
        {"variant": label, "gzip_bytes": size, "metric": metric, "epsilon": None}
        for label, (size, metric) in zip(labels, points, strict=True)
    )
    table = report.Report(rows=rows, metric_name="accuracy", baseline=labels[0])
    path = table.plot(tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_of_several_models_logs_no_retracing_warning(digits_flat):
    # TensorFlow keys its retracing detector by code, which every model's
    # predict function shares (issue 13)
    import logging

    from kdl import build_mlp
    from kdl.backend import tf

    (x, y), (x_test, y_test) = digits_flat
    models = {f"m{i}": build_mlp((64,), 10, dense_units=(4 + i,)) for i in range(6)}
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        table = report.compare(
            models, x_test[:70], y_test[:70], latency_samples=2, verbose=0
        )
    finally:
        tf.get_logger().removeHandler(handler)
    assert len(table.rows) == 6
    assert [r.getMessage() for r in records if "retracing" in r.getMessage()] == []


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
    ({"sources": [1]}, TypeError, "'sources' parameter"),
    ({"sources": {"z": None}}, ValueError, "'sources' parameter"),
    ({"sources": {"a": _KERAS3}}, TypeError, "kdl.keras"),
    ({"verbose": "1"}, TypeError, "'verbose' parameter"),
    ({"run_dir": ""}, TypeError, "'run_dir' parameter"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_COMPARE_ARGUMENTS)
def test_compare_bad_arguments_are_named(digits_mlp, tmp_path, kwargs, error, match):
    x = np.zeros((4, 64), "float32")
    y = np.zeros(4, "int64")
    kwargs = {"variants": {"a": digits_mlp}, "verbose": 0, **kwargs}
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
        ({"shrink_kwargs": [1]}, TypeError, "'shrink_kwargs' parameter"),
        ({"student": "small"}, TypeError, "'student' parameter"),
        ({"run_dir": 3}, TypeError, "'run_dir' parameter"),
        ({"verbose": -1}, ValueError, "'verbose' parameter"),
    ],
)
def test_standard_variants_bad_arguments_are_named(
    digits_mlp, tmp_path, kwargs, error, match
):
    x = np.zeros((4, 64), "float32")
    y = np.zeros(4, "int64")
    kwargs = {"run_dir": tmp_path, **kwargs}
    with pytest.raises(error, match=match):
        report.standard_variants(digits_mlp, x, y, **kwargs)
    assert not any(tmp_path.iterdir())


def test_standard_variants_lets_a_bad_transform_argument_through(
    digits_mlp, digits_flat, tmp_path
):
    # a bad value inside prune_kwargs is the caller's mistake, not a variant
    # this model cannot have: it raises instead of becoming a "skipped" warning
    (x, y), _ = digits_flat
    with pytest.raises(ValueError, match="'target_sparsity' parameter"):
        report.standard_variants(
            digits_mlp,
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
