"""Tests of kdl.export: SavedModel and TFLite files, checked in LiteRT.

Every .tflite file here is run in the LiteRT interpreter (ai_edge_litert), the
runtime of edge devices, never in TensorFlow.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from _helpers import kernel_value_counts

from kdl import export
from kdl.backend import keras, tf
from kdl.errors import UnsupportedModelError

SEQ2SEQ_TASK = dict(num_examples=200, max_length=5, vocab_size=8)


def _gz(path) -> int:
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), 9))


def _fit(model, x, y, epochs=1):
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


# === One table of builders: (name, build and train, test inputs) ===


def _mlp(data):
    from kdl import build_mlp

    (x, y), (xt, yt) = data["flat"]
    return _fit(build_mlp((64,), 10, dense_units=(32,)), x, y, 2), xt


def _cnn(data):
    from kdl import build_cnn

    (x, y), (xt, yt) = data["image"]
    model = build_cnn(
        (8, 8, 1),
        10,
        filters=(8, 16),
        dense_units=(32,),
        augmentation={"flip": None, "rotation": 0.05},
    )
    return _fit(model, x, y, 2), xt


def _resnet(data):
    from kdl import build_resnet

    (x, y), (xt, yt) = data["image"]
    model = build_resnet((8, 8, 1), 10, stages=(1, 1), filters=(8, 16))
    return _fit(model, x, y, 2), xt


def _simple_rnn(data):
    from kdl import build_rnn

    (x, y), (xt, yt) = data["sequence"]
    return _fit(build_rnn((8, 8), 10, units=(16,)), x, y, 2), xt


def _bi_lstm(data):
    from kdl import build_lstm

    (x, y), (xt, yt) = data["sequence"]
    return _fit(build_lstm((8, 8), 10, units=(16,), bidirectional=True), x, y, 2), xt


def _gru_regression(data):
    from kdl import build_gru, datasets

    (x, y), (xt, yt) = datasets.sunspots(window=12)
    model = build_gru(
        (12, 1), 1, task="regression", units=(8,), augmentation={"noise": 0.05}
    )
    return _fit(model, x, y, 2), xt


def _bi_gru(data):
    from kdl import build_gru

    (x, y), (xt, yt) = data["sequence"]
    return _fit(build_gru((8, 8), 10, units=(16,), bidirectional=True), x, y, 2), xt


def _seq2seq(data):
    from kdl import build_seq2seq, datasets

    task = datasets.toy_translation(**SEQ2SEQ_TASK)
    model = build_seq2seq(
        task.input_vocab_size,
        task.output_vocab_size,
        units=16,
        embedding_dim=8,
        attention=True,
    )
    (src, dec), target = task.train
    model.fit([src, dec], target, epochs=1, batch_size=32, verbose=0)
    (src_t, dec_t), _ = task.test
    return model, [src_t, dec_t]


def _multitask(data):
    from kdl import build_multitask

    (x, y), (xt, yt) = data["flat"]
    model = build_multitask(
        (64,),
        {"digit": ("classification", 10), "is_even": ("binary", 1)},
        trunk_kwargs={"dense_units": (32,)},
    )
    return _fit(
        model, x, {"digit": y, "is_even": (y % 2 == 0).astype("float32")}, 2
    ), xt


BUILDERS = {
    "mlp": _mlp,
    "cnn": _cnn,
    "resnet": _resnet,
    "simple_rnn": _simple_rnn,
    "bi_lstm": _bi_lstm,
    "gru_regression": _gru_regression,
    "bi_gru": _bi_gru,
    "seq2seq": _seq2seq,
    "multitask": _multitask,
}


@pytest.fixture(scope="module")
def digits_all(digits_image, digits_flat, digits_sequence):
    return {"image": digits_image, "flat": digits_flat, "sequence": digits_sequence}


def _keras_dict(model, x):
    out = model.predict(x, verbose=0)
    if isinstance(out, dict):
        return out
    return {model.output_names[0]: out}


@pytest.mark.slow
@pytest.mark.parametrize("builder", list(BUILDERS))
def test_every_builder_exports_float_and_dynamic(builder, digits_all, tmp_path):
    model, x_test = BUILDERS[builder](digits_all)
    weights = [w.copy() for w in model.get_weights()]
    expected = _keras_dict(model, x_test)
    for quantization in (None, "dynamic"):
        path = export.to_tflite(
            model,
            tmp_path / f"{builder}.tflite",
            quantization=quantization,
            check_data=x_test,
            verbose=0,
        )
        lite = export.load_tflite(path)
        assert not [op for op in lite.op_names if "RANDOM" in op.upper()]
        got = lite.predict(x_test)
        got = got if isinstance(got, dict) else {lite.output_names[0]: got}
        assert sorted(got) == sorted(expected)
        for name, value in expected.items():
            assert got[name].shape == value.shape
            if quantization is None:
                np.testing.assert_allclose(got[name], value, atol=1e-4)
    # recurrent models are converted with a fixed batch of one
    recurrent = builder in (
        "simple_rnn",
        "bi_lstm",
        "gru_regression",
        "bi_gru",
        "seq2seq",
    )
    assert (lite.batch_size == 1) == recurrent
    # the model given is left as it was
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["mlp", "cnn"])
def test_cnn_and_mlp_export_to_int8_and_float16(
    builder, digits_all, digits_mlp, tmp_path
):
    from kdl import build_cnn

    layout = "flat" if builder == "mlp" else "image"
    (x, y), (x_test, y_test) = digits_all[layout]
    # trained to confident predictions: int8 must agree on 98% of them
    if builder == "mlp":
        model = digits_mlp  # the shared one: 10 epochs, hidden (32,)
    else:
        model = _fit(
            build_cnn((8, 8, 1), 10, filters=(8, 16), dense_units=(32,)), x, y, 8
        )
    keras_accuracy = float(
        np.mean(model.predict(x_test, verbose=0).argmax(-1) == y_test)
    )
    for quantization in ("float16", "int8"):
        path = export.to_tflite(
            model,
            tmp_path / f"{quantization}.tflite",
            quantization=quantization,
            representative_data=x[:200],
            check_data=x_test,
            verbose=0,
        )
        result = export.evaluate_tflite(path, x_test, y_test, latency_samples=20)
        assert abs(result["accuracy"] - keras_accuracy) <= 0.02
        assert 0 < result["latency_ms_median"] <= result["latency_ms_p90"]
        assert result["bytes"] == os.path.getsize(path)
    lite = export.load_tflite(path)
    # the int8 file is integer inside with a float interface by default
    assert lite.input_details["inputs"]["dtype"] == np.float32
    assert any(d["dtype"] == np.int8 for d in lite.interpreter.get_tensor_details())
    assert os.path.getsize(path) < os.path.getsize(tmp_path / "float16.tflite")


@pytest.mark.slow
def test_int8_with_integer_inputs_and_outputs(digits_flat, digits_mlp, digits_mlp_int8):
    # the shared file: quantization="int8", integer_io=True (conftest.py)
    (x, y), (x_test, y_test) = digits_flat
    model = digits_mlp
    lite = export.load_tflite(digits_mlp_int8)
    assert lite.input_details["inputs"]["dtype"] == np.int8
    # floats go in (quantized by load_tflite), dequantized floats come out
    probabilities = lite.predict(x_test)
    assert probabilities.dtype == np.float32
    agreement = np.mean(
        probabilities.argmax(-1) == model.predict(x_test, verbose=0).argmax(-1)
    )
    assert agreement >= 0.98


@pytest.mark.slow
def test_pruned_int8_cnn_is_much_smaller_and_as_accurate(
    digits_image, digits_cnn, tmp_path
):
    from kdl import compression

    (x, y), (x_test, y_test) = digits_image
    model = digits_cnn  # batch_norm=True, 15 epochs (conftest.py)
    # the Keras float model's size: its float32 weights in a float .tflite file
    # (within 1% of a .keras file without optimizer state)
    float_path = export.to_tflite(
        model, tmp_path / "float.tflite", check_data=x_test, verbose=0
    )
    float_accuracy = export.evaluate_tflite(
        float_path, x_test, y_test, latency_samples=0
    )["accuracy"]
    # prune's defaults: 80%, blocks of 16 input rows in conv2 (288 inputs a
    # filter) and dense1 (256): runs of zeros in the file, which gzip packs.
    # 12 epochs instead of the default 37 (1,500 steps): on model seeds 0-2
    # the int8 files lost 0.3 points or none, 13.5-13.7x and 16.6-16.9x smaller
    pruned = compression.prune(model, x, y, epochs=12, verbose=0)
    assert compression.sparsity(pruned)["overall"] == pytest.approx(0.8, abs=0.01)
    clustered = compression.cluster(pruned, x, y, preserve_sparsity=True, verbose=0)
    # the goals of issue 15: 10x and 15x
    for variant, smaller in ((pruned, 10), (clustered, 15)):
        path = export.to_tflite(
            variant,
            tmp_path / "variant.tflite",
            quantization="int8",
            representative_data=x[:200],
            check_data=x_test,
            per_channel=False,
            verbose=0,
        )
        accuracy = export.evaluate_tflite(path, x_test, y_test, latency_samples=0)[
            "accuracy"
        ]
        assert accuracy >= float_accuracy - 0.01
        # measured 13.5-13.6x and 16.6-16.8x (benchmarks/compression.py)
        assert _gz(float_path) >= smaller * _gz(path)


@pytest.mark.slow
def test_per_kernel_scales_keep_a_clustered_model_small(digits_image, tmp_path):
    from kdl import build_cnn, compression

    (x, y), (x_test, y_test) = digits_image
    model = _fit(build_cnn((8, 8, 1), 10), x, y, 10)
    clustered = compression.cluster(model, x, y, clusters=16, epochs=3, verbose=0)
    paths = {
        per_channel: export.to_tflite(
            clustered,
            tmp_path / f"clustered_{per_channel}.tflite",
            quantization="int8",
            representative_data=x[:200],
            check_data=x_test,
            per_channel=per_channel,
            verbose=0,
        )
        for per_channel in (True, False)
    }
    # one scale per kernel: the 16 centroids stay 16 int8 values (17 with
    # zero); one per channel turns them into many more
    assert max(kernel_value_counts(paths[False])) <= 17
    assert max(kernel_value_counts(paths[True])) > 17
    assert _gz(paths[False]) < 0.9 * _gz(paths[True])
    accuracy = {
        key: export.evaluate_tflite(path, x_test, y_test, latency_samples=0)["accuracy"]
        for key, path in paths.items()
    }
    assert accuracy[False] >= accuracy[True] - 0.01
    assert export.load_tflite(paths[False]).metadata["per_channel"] is False


@pytest.mark.slow
def test_savedmodel_reload_predicts_what_keras_predicts(digits_image, tmp_path):
    from kdl import build_cnn

    (x, y), (x_test, _) = digits_image
    model = _fit(
        build_cnn(
            (8, 8, 1), 10, filters=(8,), dense_units=(16,), augmentation={"flip": None}
        ),
        x,
        y,
        1,
    )
    folder = export.to_savedmodel(model, tmp_path / "served", verbose=0)
    served = tf.saved_model.load(str(folder))
    out = served.signatures["serving_default"](inputs=tf.constant(x_test))
    np.testing.assert_allclose(
        out["predictions"].numpy(), model.predict(x_test, verbose=0), atol=1e-5
    )
    # also a Keras SavedModel
    reloaded = keras.models.load_model(str(folder))
    np.testing.assert_allclose(
        reloaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0), atol=1e-5
    )
    # exporting again replaces it whole, and leaves no temporary folder
    export.to_savedmodel(model, folder, verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]


def test_savedmodel_refuses_a_folder_it_did_not_write(tmp_path):
    from kdl import build_mlp

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="does not delete other folders"):
        export.to_savedmodel(build_mlp((4,), 2), folder, verbose=0)
    assert (folder / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_failed_check_raises_and_leaves_no_file(digits_flat, digits_mlp, tmp_path):
    (x, y), (x_test, _) = digits_flat
    model = digits_mlp
    path = tmp_path / "model.tflite"
    path.write_bytes(b"an older export")
    # calibrated on inputs 50 times too small: real inputs saturate in int8
    with pytest.raises(export.ExportCheckError, match="failed its LiteRT check"):
        export.to_tflite(
            model,
            path,
            quantization="int8",
            representative_data=x[:200] * 0.02,
            check_data=x_test,
            verbose=0,
        )
    assert path.read_bytes() == b"an older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


@pytest.mark.slow
def test_converter_crash_gives_clear_error_and_next_export_works(
    digits_sequence, tmp_path
):
    from kdl import build_gru

    (x, _), (x_test, _) = digits_sequence
    model = build_gru((8, 8), 10, units=(4,))
    path = tmp_path / "gru.tflite"
    # full int8 conversion of a GRU segfaults the converter
    # (docs/design.md#tflite)
    with pytest.raises(
        export.ConverterCrashError, match=r"crashed \(SIGSEGV\).*'gru'.*'int8'"
    ):
        export.to_tflite(
            model, path, quantization="int8", representative_data=x[:20], verbose=0
        )
    assert not path.exists()
    # a model that cannot be exported this way, which batch helpers skip
    assert isinstance(export.ConverterCrashError("x"), RuntimeError)
    assert isinstance(export.ConverterCrashError("x"), UnsupportedModelError)
    # this process lives on, and the next conversion gets a fresh converter
    export.to_tflite(model, path, check_data=x_test, verbose=0)
    assert path.exists()


# === Arguments ===


@pytest.fixture(scope="module")
def small_mlp():
    from kdl import build_mlp

    return build_mlp((4,), 3, dense_units=(5,))


_FUNC = "kdl.export.to_tflite"
BAD_TFLITE_ARGUMENTS = [
    (
        {"quantization": "int4"},
        ValueError,
        f"'quantization' parameter of {_FUNC} must be one of 'dynamic', "
        "'float16', 'int8'. Got 'int4'",
    ),
    (
        {"quantization": "int8"},
        ValueError,
        "'representative_data' parameter.*calibrate int8",
    ),
    (
        {"quantization": "int8", "representative_data": np.full((8, 4), np.nan)},
        ValueError,
        "'representative_data' parameter.*finite values.*32 non-finite",
    ),
    (
        {"check_data": np.zeros((3, 5))},
        ValueError,
        r"shape \(n, 4\) for input 'inputs'",
    ),
    ({"path": "m.bin"}, ValueError, r"'path' parameter.*ending in \.tflite"),
    ({"path": 3}, TypeError, "'path' parameter"),
    ({"path": ""}, TypeError, "'path' parameter"),
    ({"integer_io": True}, ValueError, "'integer_io' parameter"),
    ({"per_channel": False}, ValueError, "'per_channel' parameter.*'int8'"),
    ({"per_channel": "no"}, TypeError, "'per_channel' parameter"),
    ({"model": "model"}, TypeError, "kdl.keras.Model"),
    ({"min_agreement": 1.5}, ValueError, "'min_agreement' parameter"),
    ({"verbose": "1"}, TypeError, "'verbose' parameter"),
    ({"labels": ["a", "b"]}, ValueError, "'labels' parameter.*3 class names"),
    ({"labels": "abc"}, TypeError, "'labels' parameter.*list of 3 class names"),
    (
        {"labels": {"other": ["a", "b", "c"]}},
        ValueError,
        "'labels' parameter.*classification outputs",
    ),
    ({"preprocessing": 3}, TypeError, "'preprocessing' parameter"),
    (
        {"model": "regression", "labels": ["a"]},
        ValueError,
        "'labels' parameter.*no classification output",
    ),
    ({"run_dir": "no_such_run"}, ValueError, "'run_dir' parameter.*run.json"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_TFLITE_ARGUMENTS)
def test_bad_arguments_are_named(small_mlp, tmp_path, kwargs, error, match):
    kwargs = dict(kwargs)
    model = kwargs.pop("model", small_mlp)
    if model == "regression":
        from kdl import build_mlp

        model = build_mlp((4,), 1, task="regression", dense_units=(5,))
    path = kwargs.pop("path", "m.tflite")
    path = tmp_path / path if isinstance(path, str) and path else path
    with pytest.raises(error, match=match):
        export.to_tflite(model, path, **{"verbose": 0, **kwargs})
    assert not any(tmp_path.iterdir())


def test_savedmodel_refuses_an_existing_file(small_mlp, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="existing file"):
        export.to_savedmodel(small_mlp, tmp_path / "file")


@pytest.mark.parametrize("call", ["to_tflite", "to_savedmodel"])
def test_keras3_model_is_refused_naming_kdl_keras(tmp_path, call):
    keras3_model = type("Model", (), {"__module__": "keras.src.models.model"})()
    with pytest.raises(TypeError, match="kdl.keras"):
        getattr(export, call)(keras3_model, tmp_path / "m.tflite")


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (None, FileNotFoundError, "No .tflite file"),
        (b"not a flatbuffer at all", ValueError, "not a TFLite flatbuffer"),
    ],
)
def test_load_tflite_rejects_missing_and_foreign_files(tmp_path, content, error, match):
    path = tmp_path / "m.tflite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match):
        export.load_tflite(path)


@pytest.mark.slow
def test_evaluate_tflite_checks_labels_and_reports_mae(tmp_path):
    from kdl import build_mlp

    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype("float32")
    y = x.sum(1, keepdims=True)
    model = _fit(build_mlp((4,), 1, task="regression", dense_units=(8,)), x, y, 3)
    path = export.to_tflite(model, tmp_path / "r.tflite", verbose=0)
    result = export.evaluate_tflite(path, x, y, latency_samples=5)
    keras_mae = float(np.mean(np.abs(model.predict(x, verbose=0) - y)))
    assert result["mae"] == pytest.approx(keras_mae, abs=1e-4)
    assert "accuracy" not in result
    with pytest.raises(ValueError, match="labels for the 64 examples"):
        export.evaluate_tflite(path, x, y[:10])


@pytest.mark.slow
def test_quantize_aware_model_exports_int8_with_its_learned_ranges(
    digits_flat, digits_mlp, tmp_path
):
    from kdl import compression

    (x, y), (x_test, y_test) = digits_flat
    qat = compression.quantize_aware(digits_mlp, x, y, epochs=1, verbose=0)
    path = export.to_tflite(
        qat, tmp_path / "qat.tflite", quantization="int8", check_data=x_test, verbose=0
    )
    lite = export.load_tflite(path)
    assert any(d["dtype"] == np.int8 for d in lite.interpreter.get_tensor_details())
    accuracy = export.evaluate_tflite(path, x_test, y_test, latency_samples=0)[
        "accuracy"
    ]
    keras_accuracy = float(np.mean(qat.predict(x_test, verbose=0).argmax(-1) == y_test))
    assert accuracy >= keras_accuracy - 0.02


@pytest.mark.slow
def test_qat_batchnorm_cnn_int8_with_representative_data(
    digits_image, digits_cnn, tmp_path
):
    # Re-calibrating a QAT model on representative data broke its folded
    # batch-norm ranges (48% agreement); its learned ranges must be used.
    from kdl import compression

    (x, y), (x_test, y_test) = digits_image
    qat = compression.quantize_aware(digits_cnn, x, y, epochs=1, verbose=0)
    path = export.to_tflite(
        qat,
        tmp_path / "qat.tflite",
        quantization="int8",
        representative_data=x[:200],
        check_data=x_test,
        verbose=0,
    )
    keras_accuracy = qat.evaluate(x_test, y_test, verbose=0)[1]
    lite = export.evaluate_tflite(path, x_test, y_test, latency_samples=0)
    assert lite["accuracy"] >= keras_accuracy - 0.02
