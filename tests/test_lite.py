"""Tests of kdl.lite: kdl's .tflite files on a device, without TensorFlow.

The files are written by kdl.export.to_tflite (TensorFlow side); kdl.lite
runs them with NumPy and LiteRT only. A subprocess in which importing
tensorflow, tf_keras and keras fails runs them and must get the predictions
kdl.export gets.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from kdl import export, lite

REPO = Path(__file__).resolve().parents[1]
DIGITS = [str(i) for i in range(10)]


def _fit(model, x, y, epochs=1):
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


# === Files of several builders, exported once for the module ===


def _mlp_int8_io(data, folder):
    # conftest's shared file: the digits MLP (10 epochs) in full int8 with
    # integer_io=True and labels "0"-"9"
    (_, _), (xt, _) = data["flat"]
    return data["mlp_int8_io"], xt[:50]


def _cnn(data, folder):
    from kdl import build_cnn

    (x, y), (xt, _) = data["image"]
    model = _fit(build_cnn((8, 8, 1), 10, filters=(8,), dense_units=(16,)), x, y)
    return export.to_tflite(model, folder / "cnn.tflite", check_data=xt, verbose=0), xt[
        :50
    ]


def _bi_lstm(data, folder):
    from kdl import build_lstm

    (x, y), (xt, _) = data["sequence"]
    model = _fit(build_lstm((8, 8), 10, units=(8,), bidirectional=True), x, y)
    return export.to_tflite(
        model,
        folder / "bi_lstm.tflite",
        quantization="dynamic",
        check_data=xt[:50],
        verbose=0,
    ), xt[:20]


def _seq2seq(data, folder):
    from kdl import build_seq2seq, datasets

    task = datasets.toy_translation(num_examples=200, max_length=5, vocab_size=8)
    model = build_seq2seq(
        task.input_vocab_size, task.output_vocab_size, units=8, embedding_dim=4
    )
    (src, dec), target = task.train
    model.fit([src, dec], target, epochs=1, batch_size=32, verbose=0)
    (src_t, dec_t), _ = task.test
    path = export.to_tflite(
        model, folder / "seq2seq.tflite", check_data=[src_t, dec_t], verbose=0
    )
    return path, [src_t[:10], dec_t[:10]]


def _multitask(data, folder):
    from kdl import build_multitask

    (x, y), (xt, _) = data["flat"]
    model = build_multitask(
        (64,),
        {"digit": ("classification", 10), "is_even": ("binary", 1)},
        trunk_kwargs={"dense_units": (16,)},
    )
    targets = {"digit": y, "is_even": (y % 2 == 0).astype("float32")}
    model = _fit(model, x, targets, 6)
    path = export.to_tflite(
        model,
        folder / "multitask.tflite",
        check_data=xt,
        verbose=0,
        labels={"digit": DIGITS, "is_even": ["odd", "even"]},
    )
    return path, xt[:50]


FILES = {
    "mlp_int8_io": _mlp_int8_io,
    "cnn": _cnn,
    "bi_lstm": _bi_lstm,
    "seq2seq": _seq2seq,
    "multitask": _multitask,
}


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory, digits_flat, digits_image, digits_sequence, digits_mlp_int8
):
    """{name: (path, test inputs)} for one file of each builder in FILES."""
    from kdl.backend import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("lite")
    data = {"flat": digits_flat, "image": digits_image, "sequence": digits_sequence}
    data["mlp_int8_io"] = digits_mlp_int8
    return {name: make(data, folder) for name, make in FILES.items()}


# In the child, importing TensorFlow or any Keras fails: kdl.lite must not
# need them, directly or through another kdl module.
_DEVICE_SCRIPT = """
import json, sys
for name in ("tensorflow", "tf_keras", "keras"):
    sys.modules[name] = None
import numpy as np
from kdl import lite

jobs = json.loads(sys.argv[1])
for name, (path, inputs) in jobs.items():
    data = np.load(inputs)
    x = [data[k] for k in sorted(data.files)]
    model = lite.load(path, num_threads=1)
    out = model.predict(x[0] if len(x) == 1 else x)
    out = out if isinstance(out, dict) else {"output": out}
    np.savez(path + ".device.npz", **out)
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("tensorflow", "tf_keras", "keras")
               and sys.modules[m] is not None)
print("heavy modules:", heavy)
"""


@pytest.mark.slow
def test_files_run_without_tensorflow_as_kdl_export_runs_them(exported, tmp_path):
    jobs = {}
    for name, (path, x) in exported.items():
        arrays = x if isinstance(x, list) else [x]
        inputs = tmp_path / f"{name}.npz"
        np.savez(inputs, **{f"x{i}": a for i, a in enumerate(arrays)})
        jobs[name] = (str(path), str(inputs))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _DEVICE_SCRIPT, json.dumps(jobs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "heavy modules: []" in done.stdout
    for name, (path, x) in exported.items():
        expected = export.load_tflite(path).predict(x)
        expected = expected if isinstance(expected, dict) else {"output": expected}
        device = np.load(f"{path}.device.npz")
        assert sorted(device.files) == sorted(expected), name
        for key, value in expected.items():
            np.testing.assert_array_equal(device[key], value, err_msg=name)


@pytest.mark.slow
def test_every_file_describes_itself(exported):
    for name, (path, _) in exported.items():
        metadata = lite.load(path).metadata
        assert metadata["format"] == "kdl" and metadata["version"] == 2, name
        assert metadata["check"]["passed"] is True, name
        assert metadata["check"]["examples"] > 0, name
        assert metadata["versions"]["tensorflow"], name
        created = datetime.strptime(metadata["created"], "%Y-%m-%dT%H:%M:%SZ")
        assert created.year >= 2024
    seq2seq = lite.load(exported["seq2seq"][0])
    # Keras input order, not the signature's alphabetical one
    assert [i["name"] for i in seq2seq.metadata["inputs"]] == seq2seq.input_names
    assert seq2seq.metadata["inputs"][0]["dtype"].startswith("int")
    assert seq2seq.batch_size == 1 and seq2seq.metadata["batch_size"] == 1
    mlp = lite.load(exported["mlp_int8_io"][0])
    assert mlp.metadata["quantization"] == "int8" and mlp.metadata["integer_io"]
    assert mlp.metadata["check"]["outputs"]["predictions"]["agreement"] >= 0.98
    assert mlp.metadata["outputs"][0]["meaning"].startswith("probabilities of 10")
    assert mlp.metadata["task"] == "classification"
    assert mlp.metadata["inputs"] == [
        {"name": "inputs", "shape": [None, 64], "dtype": "float32"}
    ]
    assert "no Normalization layer" in mlp.metadata["preprocessing"]


@pytest.mark.slow
def test_int8_interface_file_takes_floats_and_classifies_with_labels(
    exported, digits_flat
):
    _, (x_test, y_test) = digits_flat
    model = lite.load(exported["mlp_int8_io"][0])
    assert model.input_details["inputs"]["dtype"] == np.int8
    probabilities = model.predict(x_test)
    assert probabilities.dtype == np.float32
    names = model.classify(x_test)
    assert list(names[:5]) == [DIGITS[i] for i in probabilities[:5].argmax(-1)]
    # held-out accuracy of the int8 file, through its labels
    assert np.mean(names == np.array(DIGITS)[y_test]) >= 0.85


@pytest.mark.slow
def test_multitask_file_classifies_every_head(exported, digits_flat):
    _, (x_test, y_test) = digits_flat
    model = lite.load(exported["multitask"][0])
    assert model.metadata["task"] == "multitask"
    result = model.classify(x_test)
    assert sorted(result) == ["digit", "is_even"]
    assert set(result["is_even"]) <= {"odd", "even"}
    predicted = model.predict(x_test)
    np.testing.assert_array_equal(
        result["is_even"] == "even", predicted["is_even"][:, 0] > 0.5
    )
    np.testing.assert_array_equal(
        result["digit"], np.array(DIGITS)[predicted["digit"].argmax(-1)]
    )
    assert np.mean(result["digit"] == np.array(DIGITS)[y_test]) >= 0.7


@pytest.mark.slow
def test_recurrent_state_is_reset_between_calls(exported):
    path, x = exported["bi_lstm"]
    model = lite.load(path)
    first = model.predict(x)
    # the same examples again, one by one and in reverse: no state carried over
    again = np.concatenate(
        [model.predict(x[i : i + 1]) for i in reversed(range(len(x)))]
    )[::-1]
    np.testing.assert_array_equal(first, again)


@pytest.mark.slow
def test_training_run_and_normalization_go_into_the_file(digits_flat, tmp_path):
    import kdl

    (x, y), (x_test, _) = digits_flat
    model = kdl.build_mlp((64,), 10, dense_units=(16,), normalize=x)
    history = kdl.train(
        model, x, y, epochs=1, run_dir=tmp_path / "run", validation_split=0.1, verbose=0
    )
    path = export.to_tflite(
        model, tmp_path / "m.tflite", check_data=x_test, preprocessing=None, verbose=0
    )
    metadata = lite.load(path).metadata
    run_json = (history.run_dir / "run.json").read_bytes()
    assert metadata["run"]["run_json_sha256"] == hashlib.sha256(run_json).hexdigest()
    assert metadata["normalization_in_model"] is True
    assert metadata["preprocessing"].startswith("Normalization is inside")
    assert metadata["privacy"] is None


@pytest.mark.slow
def test_private_model_file_carries_epsilon_and_delta(digits_flat, tmp_path):
    from kdl import build_mlp, privacy

    (x, y), (x_test, _) = digits_flat
    private = privacy.make_private(
        build_mlp((64,), 10, dense_units=(16,)),
        noise_multiplier=1.1,
        num_examples=256,
        batch_size=32,
        epochs=1,
    )
    private.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)
    path = export.to_tflite(
        private, tmp_path / "private.tflite", check_data=x_test, verbose=0
    )
    recorded = lite.load(path).metadata["privacy"]
    expected = privacy.statement(private)
    assert recorded["epsilon"] == pytest.approx(expected.epsilon)
    assert recorded["delta"] == pytest.approx(expected.delta)
    assert recorded["noise_multiplier"] == pytest.approx(1.1)


# === Errors ===


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    from kdl import build_mlp

    folder = tmp_path_factory.mktemp("small")
    model = build_mlp((4,), 3, dense_units=(5,))
    return export.to_tflite(model, folder / "m.tflite", verbose=0)


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (None, FileNotFoundError, "No .tflite file"),
        (b"", ValueError, "not a TFLite flatbuffer"),
        (b"these are my notes, not a model\n", ValueError, "not a TFLite flatbuffer"),
        ("half", ValueError, "truncated or corrupt"),
        ("head", ValueError, "truncated or corrupt"),
    ],
)
def test_files_that_cannot_run_give_clear_errors(
    small_file, tmp_path, content, error, match
):
    path = tmp_path / "bad.tflite"
    data = small_file.read_bytes()
    if content == "half":
        content = data[: len(data) // 2]
    elif content == "head":
        content = data[:24]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match):
        lite.load(path)


BAD_INPUTS = [
    (
        np.zeros((3, 5), "float32"),
        ValueError,
        r"LiteModel\.predict must be an array of shape \(n, 4\) for input 'inputs'",
    ),
    (np.zeros((3, 4, 1), "float32"), ValueError, r"shape \(n, 4\)"),
    (np.array([["a"] * 4]), TypeError, "numeric arrays.*'inputs' takes float32"),
    (np.zeros((0, 4), "float32"), ValueError, "same number \\(>= 1\\)"),
    ({"other": np.zeros((2, 4))}, ValueError, r"a dict with keys \['inputs'\]"),
]


@pytest.mark.parametrize(("x", "error", "match"), BAD_INPUTS)
def test_wrong_inputs_name_the_input_and_its_shape(small_file, x, error, match):
    model = lite.load(small_file)
    with pytest.raises(error, match=match):
        model.predict(x)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": ""}, TypeError, "'path' parameter of kdl.lite.load"),
        ({"path": 3}, TypeError, "'path' parameter of kdl.lite.load"),
        ({"num_threads": 0}, ValueError, "'num_threads' parameter"),
        ({"num_threads": 1.5}, TypeError, "'num_threads' parameter"),
    ],
)
def test_bad_arguments_are_named(small_file, kwargs, error, match):
    kwargs = {"path": small_file, **kwargs}
    with pytest.raises(error, match=match):
        lite.load(**kwargs)


def test_fractions_for_token_inputs_are_refused(tmp_path):
    from kdl.backend import keras

    inputs = keras.Input((5,), dtype="int32", name="tokens")
    hidden = keras.layers.Embedding(8, 4)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling1D()(hidden)
    )
    model = keras.Model(inputs, outputs)
    path = export.to_tflite(model, tmp_path / "t.tflite", verbose=0)
    file = lite.load(path)
    tokens = np.array([[1, 2, 3, 4, 5]])
    np.testing.assert_allclose(
        file.predict(tokens.astype("float32")), file.predict(tokens)
    )
    with pytest.raises(ValueError, match="whole numbers for input 'tokens'"):
        file.predict(tokens + 0.5)


def test_classify_needs_a_classification_output(tmp_path):
    from kdl import build_mlp

    model = build_mlp((4,), 1, task="regression", dense_units=(4,))
    file = lite.load(export.to_tflite(model, tmp_path / "r.tflite", verbose=0))
    assert file.metadata["outputs"][0]["kind"] == "regression"
    with pytest.raises(ValueError, match="no classification output"):
        file.classify(np.zeros((2, 4), "float32"))


def test_kdl_lite_imports_no_tensorflow(small_file):
    # the fast check of what the slow test above checks for five builders
    script = (
        "import sys\n"
        "for name in ('tensorflow', 'tf_keras', 'keras'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from kdl import lite\n"
        "print(lite.load(sys.argv[1]).predict(np.ones((2, 4))).shape)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(small_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(2, 3)"


def test_predict_accepts_keras_verbose(exported):
    """Issue 31: code written for Keras' predict(x, verbose=0) runs on a file."""
    path, x = exported["cnn"]
    model = lite.load(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x))
    assert model.predict(x, verbose="auto").shape == model.predict(x).shape
    with pytest.raises(ValueError, match="'verbose' parameter of LiteModel.predict"):
        model.predict(x, verbose=5)
