"""kdl.save / kdl.load: round trips, safety, clear errors, atomic saves."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import kdl
from kdl.backend import keras

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(digits_flat):
    """A small MLP trained for one epoch, and some held-out inputs."""
    (x, y), (x_test, _) = digits_flat
    keras.utils.set_random_seed(0)
    model = kdl.build_mlp((64,), 10, dense_units=(16,))
    model.fit(x, y, epochs=1, verbose=0)
    return model, x_test[:64]


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model"])
def test_round_trip_is_bit_for_bit(trained, tmp_path, name):
    model, x = trained
    before = model.predict(x, verbose=0)
    path = kdl.save(model, tmp_path / name)
    assert path == tmp_path / name and path.exists()
    loaded = kdl.load(path)
    assert isinstance(loaded, keras.Model)
    assert loaded is not model
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    # Compiled with the saved optimizer, so training can go on.
    assert loaded.optimizer is not None
    # Nothing but the target is left in the folder (no temporary files).
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_saving_again_replaces_the_earlier_file(trained, tmp_path, digits_flat):
    model, x = trained
    path = tmp_path / "model.keras"
    kdl.save(model, path)
    other = kdl.build_mlp((64,), 10, dense_units=(8,))
    kdl.save(other, path)
    np.testing.assert_array_equal(
        kdl.load(path).predict(x, verbose=0), other.predict(x, verbose=0)
    )
    folder = tmp_path / "sm"
    kdl.save(model, folder)
    kdl.save(other, folder)
    np.testing.assert_array_equal(
        kdl.load(folder).predict(x, verbose=0), other.predict(x, verbose=0)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "sm"]


@pytest.mark.slow
def test_tflite_round_trip(trained, tmp_path):
    from kdl import lite

    model, x = trained
    path = kdl.save(model, tmp_path / "model.tflite")
    loaded = kdl.load(path)
    # the device-side runner, with the metadata kdl.save's export wrote
    assert isinstance(loaded, lite.LiteModel)
    assert loaded.metadata["model"] == model.name
    assert loaded.metadata["check"]["passed"] is True
    np.testing.assert_allclose(
        loaded.predict(x), model.predict(x, verbose=0), atol=1e-5
    )
    # a truncated file is refused with a clear error, not a struct.error
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        kdl.load(path)


def test_a_savedmodel_not_written_by_keras_loads_as_a_predictor(tmp_path):
    from kdl.backend import tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def serve(self, x):
            return {"y": x * 2.0}

    module = Doubler()
    tf.saved_model.save(
        module, str(tmp_path / "plain"), signatures={"serving_default": module.serve}
    )
    loaded = kdl.load(tmp_path / "plain")
    assert isinstance(loaded, kdl.io.SavedModelPredictor)
    x = np.arange(600, dtype="float32").reshape(200, 3)
    np.testing.assert_array_equal(loaded.predict(x, batch_size=64), x * 2.0)


def _lambda_model():
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0 + 1.0, name="double")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(loss="mse")
    return model


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5"])
def test_lambda_layer_is_refused_unless_safe_mode_is_off(tmp_path, name):
    model = _lambda_model()
    path = kdl.save(model, tmp_path / name)
    with pytest.raises(ValueError, match=r"Lambda layer.*safe_mode=False"):
        kdl.load(path)
    loaded = kdl.load(path, safe_mode=False)
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), x * 2.0 + 1.0)


def test_missing_path_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="found no file or folder"):
        kdl.load(tmp_path / "nothing.keras")


@pytest.mark.parametrize("name", ["notes.keras", "notes.h5", "notes.tflite"])
def test_a_file_that_is_not_a_model_gives_a_clear_error(tmp_path, name):
    path = tmp_path / name
    path.write_text("these are my notes, not a model\n")
    with pytest.raises(ValueError, match="corrupt|not a model"):
        kdl.load(path)


def test_a_zip_without_a_model_config_gives_a_clear_error(tmp_path):
    path = tmp_path / "archive.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="no config.json"):
        kdl.load(path)


def test_a_folder_that_is_not_a_savedmodel_gives_a_clear_error(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a SavedModel"):
        kdl.load(tmp_path / "folder")


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_a_truncated_file_gives_a_clear_error(trained, tmp_path, name):
    model, _ = trained
    path = kdl.save(model, tmp_path / name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        kdl.load(path)


def test_unknown_extension_gives_a_clear_error(trained, tmp_path):
    model, _ = trained
    with pytest.raises(ValueError, match="cannot tell the model format.*'.pt'"):
        kdl.save(model, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


def test_unknown_extension_is_refused_by_load(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="'.keras'"):
        kdl.load(tmp_path / "model.pt")


BAD_ARGUMENTS = [
    ("save", {"model": "not a model"}, TypeError, "'model' parameter of kdl.save"),
    ("save", {"path": 3}, TypeError, "'path' parameter of kdl.save"),
    ("save", {"path": ""}, TypeError, "'path' parameter of kdl.save"),
    ("save", {"path": "a_folder.keras"}, ValueError, "not a folder"),
    ("load", {"safe_mode": "no"}, TypeError, "'safe_mode' parameter of kdl.load"),
    ("load", {"compile": 1}, TypeError, "'compile' parameter of kdl.load"),
    ("load", {"path": ""}, TypeError, "'path' parameter of kdl.load"),
    ("load", {"path": None}, TypeError, "'path' parameter of kdl.load"),
]


@pytest.mark.parametrize(("call", "kwargs", "error", "match"), BAD_ARGUMENTS)
def test_bad_arguments(trained, tmp_path, call, kwargs, error, match):
    (tmp_path / "a_folder.keras").mkdir()
    kwargs = dict(kwargs)
    path = kwargs.pop("path", "m.keras" if call == "save" else tmp_path)
    if isinstance(path, str) and path:
        path = tmp_path / path
    with pytest.raises(error, match=match):
        if call == "save":
            kdl.save(kwargs.pop("model", trained[0]), path)
        else:
            kdl.load(path, **kwargs)
    assert not (tmp_path / "m.keras").exists()


# Models holding kdl's own layer (TimeMask) and TF-MOT quantization wrappers,
# loaded in a fresh process where nothing but `import kdl` has run: no
# custom_objects are needed, and only the module the model needs is imported.
_LOAD_SCRIPT = """
import sys
import numpy as np
import kdl
x = np.load(sys.argv[1])
for name in sys.argv[2:]:
    model = kdl.load(name + ".keras")
    np.save(name + ".out.npy", model.predict(x, verbose=0))
    print(sorted({type(layer).__name__ for layer in model.layers}))
print("privacy imported:", "tensorflow_privacy" in sys.modules)
"""


def _run(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kwargs,
    )


@pytest.mark.slow
def test_kdl_layers_and_qat_wrappers_load_in_a_fresh_process(tmp_path, digits_sequence):
    (x, y), (x_test, _) = digits_sequence
    model = kdl.build_mlp(
        (8, 8), 10, dense_units=(8,), augmentation={"noise": 0.0, "time_mask": 2}
    )
    model.fit(x[:256], y[:256], epochs=1, verbose=0)
    plain = kdl.build_mlp((8, 8), 10, dense_units=(8,))
    qat = kdl.compression.quantize_aware(plain, x[:256], y[:256], epochs=1, verbose=0)
    models = {"with_kdl_layer": model, "qat": qat}
    for name, m in models.items():
        kdl.save(m, tmp_path / f"{name}.keras")
    np.save(tmp_path / "x.npy", x_test[:32])
    script = tmp_path / "load.py"
    script.write_text(_LOAD_SCRIPT)
    done = _run(
        [
            str(script),
            str(tmp_path / "x.npy"),
            *(str(tmp_path / name) for name in models),
        ]
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TimeMask" in done.stdout
    assert "QuantizeWrapperV2" in done.stdout
    assert "privacy imported: False" in done.stdout
    for name, m in models.items():
        np.testing.assert_array_equal(
            np.load(tmp_path / f"{name}.out.npy"), m.predict(x_test[:32], verbose=0)
        )


# Saves a model whose saving stalls halfway through writing the file (after
# the archive or HDF5 file is opened and partly written), so the test can kill
# the process with SIGKILL at that moment.
_STALLING_SAVE = """
import sys, time
import kdl
from kdl.backend import keras

FORMAT = sys.argv[2]

def stall():
    print("HALFWAY", flush=True)
    time.sleep(600)

class Stall(keras.layers.Layer):
    def call(self, x):
        return x

    def get_config(self):
        if FORMAT == "h5":   # HDF5: config is written after the file is opened
            stall()
        return super().get_config()

    def save_own_variables(self, store):   # .keras: after config.json
        stall()

inputs = keras.Input((64,))
x = keras.layers.Dense(32, name="wide")(inputs)
outputs = Stall(name="stall")(x)
model = keras.Model(inputs, outputs)
kdl.save(model, sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_a_save_killed_halfway_leaves_the_earlier_file_intact(trained, tmp_path, name):
    model, x = trained
    path = kdl.save(model, tmp_path / name)
    before_bytes = hashlib.sha256(path.read_bytes()).hexdigest()
    before = model.predict(x, verbose=0)

    script = tmp_path / "stall.py"
    script.write_text(textwrap.dedent(_STALLING_SAVE))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), name.split(".")[-1]],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # blocks until the save is halfway
        assert line.strip() == "HALFWAY"
        # The new model is being written, to a temporary name next to path.
        partial = [
            p for p in tmp_path.rglob("*") if p.is_file() and ".kdl-tmp-" in str(p)
        ]
        assert partial and partial[0].stat().st_size > 0
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before_bytes
    np.testing.assert_array_equal(kdl.load(path).predict(x, verbose=0), before)
