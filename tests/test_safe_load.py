"""A model file is data (issue 19): crafted files are refused before Keras reads them.

Every crafted file starts from a real ``kdl.save`` file; only its config (and,
for the size cases, its weights) is edited. A canary module made by the test
writes a file when imported: it must never appear.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import warnings
import zipfile

import h5py
import numpy as np
import pytest

import kdl
from kdl import _safe_load
from kdl.backend import keras, tf

# === Crafted files ===


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """A module that writes a file when imported; yields (module name, that file)."""
    name = f"kdl_canary_{uuid.uuid4().hex[:8]}"
    hit = tmp_path / "canary-was-imported"
    folder = tmp_path / "canary_path"
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        f"open({str(hit)!r}, 'w').write('imported')\n"
        "class Evil:\n"
        "    @classmethod\n"
        "    def from_config(cls, config):\n"
        "        return cls()\n"
        "def evil(*args, **kwargs):\n"
        "    return args\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    yield name, hit
    sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small MLP saved by kdl.save as .keras and .h5."""
    folder = tmp_path_factory.mktemp("saved")
    model = kdl.build_mlp((4,), 3, dense_units=(5,))
    return {fmt: kdl.save(model, folder / f"mlp.{fmt}") for fmt in ("keras", "h5")}


def _layers(config, fmt):
    root = config if fmt == "keras" else config["model_config"]
    return root["config"]["layers"]


def _dense(config, fmt):
    """Index and entry of the first Dense layer."""
    for i, layer in enumerate(_layers(config, fmt)):
        if layer["class_name"] == "Dense":
            return i, layer
    raise AssertionError("no Dense layer")


def _read_configs(path, fmt):
    if fmt == "keras":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    with h5py.File(path, "r") as f:
        return {"model_config": json.loads(f.attrs["model_config"])}


def rewrite_keras(src, dst, *, config=None, entries=(), skip=()):
    """Copies the .keras archive ``src`` to ``dst`` with a new config.json and
    extra entries ``(name, bytes, compress_type)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for info in zin.infolist():
                if info.filename in skip:
                    continue
                data = zin.read(info.filename)
                if info.filename == "config.json" and config is not None:
                    data = json.dumps(config).encode()
                zout.writestr(info.filename, data)
            for name, data, compress_type in entries:
                zout.writestr(zipfile.ZipInfo(name), data, compress_type=compress_type)
    return dst


def craft(saved, tmp_path, fmt, edit):
    """A copy of the saved ``fmt`` file with ``edit(config, fmt)`` applied."""
    src = saved[fmt]
    config = _read_configs(src, fmt)
    edit(config, fmt)
    dst = tmp_path / f"crafted.{fmt}"
    if fmt == "keras":
        return rewrite_keras(src, dst, config=config)
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["model_config"] = json.dumps(config["model_config"]).encode()
    return dst


def _entry(module, name, kind):
    if kind == "function":
        return {
            "module": module,
            "class_name": "function",
            "config": name,
            "registered_name": name,
        }
    return {"module": module, "class_name": name, "config": {}, "registered_name": None}


def name_as(place, module, cls, fn):
    """An edit that names ``module`` in ``place`` of the config."""

    def edit(config, fmt):
        i, dense = _dense(config, fmt)
        root = config if fmt == "keras" else config["model_config"]
        if place == "model":
            root.update(module=module, class_name=cls, registered_name=None)
        elif place == "layer":
            dense.update(module=module, class_name=cls, registered_name=None)
        elif place == "activation":
            dense["config"]["activation"] = _entry(module, fn, "function")
        elif place == "initializer":
            dense["config"]["kernel_initializer"] = _entry(module, cls, "class")

    return edit


def _where(place, config_fmt, index):
    prefix = "" if config_fmt == "keras" else "model_config."
    layer = f"{prefix}config.layers[{index}]"
    return {
        "model": "(the model)" if config_fmt == "keras" else "model_config",
        "layer": layer,
        "activation": f"{layer}.config.activation",
        "initializer": f"{layer}.config.kernel_initializer",
    }[place]


PLACES = ("model", "layer", "activation", "initializer")
FORMATS = ("keras", "h5")
TARGETS = {  # name -> (module, class name, function name)
    "canary": (None, "Evil", "evil"),
    "subprocess.run": ("subprocess", "run", "run"),
    "os.system": ("os", "system", "system"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_file_naming_a_module_is_refused_without_importing_it(
    saved, tmp_path, canary, fmt, place, target
):
    module, cls, fn = TARGETS[target]
    module = module or canary[0]
    path = craft(saved, tmp_path, fmt, name_as(place, module, cls, fn))
    index, _ = _dense(_read_configs(saved[fmt], fmt), fmt)
    where = _where(place, fmt, index)
    pattern = (
        rf"refused to load .*crafted\.{fmt}.*{re.escape(where)} names "
        rf".*of module '{module}'.*safe_mode=False"
    )
    with pytest.raises(ValueError, match=pattern):
        _safe_load.check_model_file(path)
    assert not canary[1].exists()
    assert canary[0] not in sys.modules


def _set(path_in_dense, value):
    def edit(config, fmt):
        _, dense = _dense(config, fmt)
        target = dense
        *parents, last = path_in_dense
        for key in parents:
            target = target[key]
        target[last] = value

    return edit


def _lambda_layer(config, fmt):
    _, dense = _dense(config, fmt)
    dense.update(module="keras.layers", class_name="Lambda")
    dense["config"]["function"] = {
        "class_name": "__lambda__",
        "config": {"value": "not code", "closure": None, "defaults": None},
    }


def _tf_op(config, fmt):
    _, dense = _dense(config, fmt)
    dense["class_name"] = "TFOpLambda"
    if fmt == "keras":
        dense.update(
            module="tf_keras.src.layers.core.tf_op_layer", registered_name=None
        )
    dense["config"] = {"name": "w", "function": "io.write_file", "trainable": True}


def _registered_elsewhere(registered_name):
    """A kdl layer's name with a module and registered name the file chose."""

    def edit(config, fmt):
        _, dense = _dense(config, fmt)
        dense.update(
            module="kdl_canary_absent",
            class_name="kdl>RandomScale",
            registered_name=registered_name,
        )
        dense["config"] = {"name": "s", "scale": 0.1}

    return edit


BAD_CONFIGS = {  # case -> (edit, error pattern)
    # tf_keras looks up registered_name (None here), then imports the module
    "kdl class name, registered_name null": (
        _registered_elsewhere(None),
        r"'kdl>RandomScale' of module 'kdl_canary_absent'",
    ),
    "kdl class name, registered_name unknown": (
        _registered_elsewhere("evil>X"),
        r"'kdl>RandomScale' of module 'kdl_canary_absent' \(registered name 'evil>X'",
    ),
    "Lambda layer": (_lambda_layer, r"Lambda layer, whose Python code.*safe_mode"),
    "lambda activation": (
        _set(
            ("config", "activation"),
            {"class_name": "__lambda__", "config": {"value": "x"}},
        ),
        r"config\.activation is a Python lambda",
    ),
    "activation string": (
        _set(("config", "activation"), "os.system"),
        r"config\.activation names the activation 'os\.system'",
    ),
    "initializer string": (
        _set(("config", "kernel_initializer"), "subprocess.run"),
        r"names the initializer 'subprocess\.run'",
    ),
    "TFOpLambda io.write_file": (
        _tf_op,
        r"TFOpLambda layer whose 'function' names 'io\.write_file', which has "
        "side effects",
    ),
    "huge Dense": (
        _set(("config", "units"), 10**9),
        r"implies weights of at least [\d,]+ bytes .*would allocate",
    ),
    "class_name not a string": (
        _set(("config", "kernel_initializer"), {"class_name": ["os", "system"]}),
        r"class_name that is not a string",
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_unsafe_configs_are_refused(saved, tmp_path, fmt, case):
    edit, pattern = BAD_CONFIGS[case]
    path = craft(saved, tmp_path, fmt, edit)
    with pytest.raises(ValueError, match=pattern):
        _safe_load.check_model_file(path)


# === The .keras container ===


def _h5_bytes(build):
    """The bytes of an HDF5 file made by ``build(h5py.File)``."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        build(f)
    return buffer.getvalue()


def _huge_dataset(f):
    f.create_dataset("layers/dense/vars/0", shape=(10**11,), dtype="float32")


def _external_link(f):
    f["layers"] = h5py.ExternalLink("/etc/passwd", "/")


STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
BAD_ARCHIVES = {  # case -> (entries added, entries dropped, error pattern)
    "parent path": ([("../evil.txt", b"x", STORED)], (), r"'\.\./evil\.txt' points"),
    "nested parent path": (
        [("assets/../../evil.txt", b"x", STORED)],
        (),
        r"points outside the archive",
    ),
    "absolute path": ([("/tmp/evil.txt", b"x", STORED)], (), r"'/tmp/evil\.txt'"),
    "drive path": ([("C:/evil.txt", b"x", STORED)], (), r"'C:/evil\.txt' points"),
    "duplicate config": (
        [("config.json", b'{"class_name": "Functional"}', STORED)],
        (),
        r"holds the entry 'config\.json' twice",
    ),
    "config zip bomb": (
        lambda: [("config.json", b" " * (20 * 2**20), DEFLATED)],
        ("config.json",),
        r"'config\.json' would inflate from [\d,]+ to 20,971,520 bytes \(a zip bomb",
    ),
    "weights zip bomb": (
        lambda: [("model.weights.h5", b"\0" * (20 * 2**20), DEFLATED)],
        ("model.weights.h5",),
        r"'model\.weights\.h5' would inflate .* \(a zip bomb",
    ),
    "weights declare a huge tensor": (
        lambda: [("model.weights.h5", _h5_bytes(_huge_dataset), STORED)],
        ("model.weights.h5",),
        r"declares a tensor of shape \(100000000000,\) \(400,000,000,000 bytes\)",
    ),
    "weights link another file": (
        lambda: [("model.weights.h5", _h5_bytes(_external_link), STORED)],
        ("model.weights.h5",),
        r"link to the file '/etc/passwd'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_unsafe_archives_are_refused_without_extracting(saved, tmp_path, case):
    entries, dropped, pattern = BAD_ARCHIVES[case]
    entries = entries() if callable(entries) else entries
    path = rewrite_keras(
        saved["keras"], tmp_path / "crafted.keras", entries=entries, skip=dropped
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match=pattern):
        _safe_load.check_model_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path.parent / "evil.txt").exists()


def test_an_h5_model_declaring_a_huge_tensor_is_refused(saved, tmp_path):
    path = shutil.copy(saved["h5"], tmp_path / "crafted.h5")
    with h5py.File(path, "r+") as f:
        _huge_dataset(f["model_weights"])
    with pytest.raises(ValueError, match=r"declares a tensor of shape \(10+,\)"):
        _safe_load.check_model_file(path)


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("notes.keras", b"my notes", "corrupt or not a model"),
        ("notes.h5", b"my notes", "corrupt or not a model"),
        ("half.keras", None, "truncated or corrupt"),
    ],
)
def test_corrupt_files_get_the_load_messages(saved, tmp_path, name, content, pattern):
    path = tmp_path / name
    if content is None:
        data = saved["keras"].read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=pattern):
        _safe_load.check_model_file(path)


# === The allow-list: custom objects, lazily loaded kdl classes ===


class Doubler(keras.layers.Layer):  # deliberately not registered
    def call(self, inputs):
        return inputs * 2.0


@keras.saving.register_keras_serializable(package="kdl_test_safe_load")
class Tripler(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 3.0


def test_a_class_passes_only_when_the_caller_allows_it(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Doubler(name="double")(inputs))
    path = kdl.save(model, tmp_path / "doubler.keras")
    with pytest.raises(ValueError, match=r"'Doubler' of module '[\w.]*test_safe_load'"):
        _safe_load.check_model_file(path)
    _safe_load.check_model_file(path, custom_objects={"Doubler": Doubler})


def test_classes_the_caller_registered_pass(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Tripler(name="triple")(inputs))
    path = kdl.save(model, tmp_path / "tripler.keras")
    _safe_load.check_model_file(path)
    with keras.utils.custom_object_scope({"Doubler": Doubler}):
        model = keras.Model(inputs, Doubler(name="double")(inputs))
        _safe_load.check_model_file(kdl.save(model, tmp_path / "doubler.keras"))


def test_more_objects_is_only_called_when_an_entry_needs_it(saved, tmp_path, canary):
    def fail(names):
        raise AssertionError(f"more_objects was called for a plain model: {names}")

    _safe_load.check_model_file(saved["keras"], more_objects=fail)
    calls = []
    path = craft(saved, tmp_path, "keras", name_as("layer", canary[0], "Evil", "evil"))
    with pytest.raises(ValueError, match="names the class 'Evil'"):
        _safe_load.check_model_file(path, more_objects=lambda n: calls.append(n) or {})
    assert len(calls) == 1 and "Evil" in calls[0] and canary[0] in calls[0]


@pytest.mark.parametrize(
    "obj",
    [subprocess.run, os.system, keras.Model, {"a": 1}, "model"],
    ids=["subprocess.run", "os.system", "a class", "a dict", "a string"],
)
def test_check_loaded_refuses_anything_but_a_model(obj):
    with pytest.raises(ValueError, match="not a Keras model"):
        _safe_load.check_loaded(obj, "model.keras")


def test_check_loaded_returns_a_model():
    model = kdl.build_mlp((4,), 2, dense_units=(3,))
    assert _safe_load.check_loaded(model, "model.keras") is model


def test_a_savedmodel_naming_a_module_is_refused(tmp_path, canary):
    from tf_keras.protobuf import saved_metadata_pb2

    path = kdl.save(kdl.build_mlp((4,), 3, dense_units=(5,)), tmp_path / "mlp")
    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString((path / "keras_metadata.pb").read_bytes())
    node = next(n for n in metadata.nodes if n.node_path.startswith("root.layer_with"))
    entry = json.loads(node.metadata)
    entry.update(module=canary[0], class_name="Evil")
    node.metadata = json.dumps(entry)
    (path / "keras_metadata.pb").write_bytes(metadata.SerializeToString())
    pattern = rf"{re.escape(node.node_path)} names the class 'Evil' of module"
    with pytest.raises(ValueError, match=pattern):
        _safe_load.check_model_file(path)
    assert not canary[1].exists()


def test_check_config_walks_a_parsed_config():
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"units": 2, "activation": "relu"}},
                {"module": "os", "class_name": "system", "config": {}},
            ]
        },
    }
    with pytest.raises(
        ValueError,
        match=r"'mine': .*config\.layers\[1\] names "
        r"the class 'system' of module 'os'",
    ):
        _safe_load.check_config(config, source="mine")
    del config["config"]["layers"][1]
    _safe_load.check_config(config, source="mine")


def test_tf_math_and_slicing_ops_pass(tmp_path):
    from kdl.backend import tf

    inputs = keras.Input((4,))
    hidden = tf.math.square(inputs)[:, :3]
    outputs = keras.layers.Dense(2)(tf.reshape(hidden, (-1, 3)))
    model = keras.Model(inputs, outputs)
    path = kdl.save(model, tmp_path / "ops.keras")
    config = _read_configs(path, "keras")
    names = {layer["class_name"] for layer in config["config"]["layers"]}
    assert {"TFOpLambda", "SlicingOpLambda"} <= names
    _safe_load.check_model_file(path)


# === Every legitimate kdl model passes ===


def _assert_same_weights(loaded, model):
    assert isinstance(loaded, keras.Model)
    got, expected = loaded.get_weights(), model.get_weights()
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def _never(names):
    raise AssertionError(f"a plain kdl model needed more classes: {names}")


BUILDERS = {
    "mlp": lambda: kdl.build_mlp(
        (4,), 3, dense_units=(5,), batch_norm=True, dropout=0.1, l1=1e-4
    ),
    "cnn": lambda: kdl.build_cnn(
        (8, 8, 1), 3, filters=(2,), dense_units=(4,), augmentation={"rotation": 0.1}
    ),
    "resnet": lambda: kdl.build_resnet((8, 8, 1), 3, stages=(1,), filters=(2,)),
    "rnn": lambda: kdl.build_rnn((5, 3), 2, units=(3,), task="regression"),
    "lstm bidirectional": lambda: kdl.build_lstm(
        (5, 3),
        2,
        units=(3,),
        bidirectional=True,
        augmentation={"noise": 0.01, "scale": 0.1, "time_mask": 1},
    ),
    "gru bidirectional": lambda: kdl.build_gru(
        (5, 3), 1, task="binary", units=(3, 3), bidirectional=True
    ),
    "seq2seq": lambda: kdl.build_seq2seq(7, 8, units=4, embedding_dim=3),
    "seq2seq attention": lambda: kdl.build_seq2seq(
        7, 8, units=4, embedding_dim=3, attention=True
    ),
    "multitask": lambda: kdl.build_multitask(
        (4,), {"digit": ("classification", 3), "size": ("regression", 1)}
    ),
}


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_every_builder_passes_and_loads_in_safe_mode(tmp_path, builder, fmt):
    model = BUILDERS[builder]()
    path = kdl.save(model, tmp_path / f"model.{fmt}")
    _safe_load.check_model_file(path, more_objects=_never)
    _assert_same_weights(kdl.load(path), model)


@pytest.mark.parametrize(
    "builder",
    ["mlp"]
    + [
        pytest.param(name, marks=pytest.mark.slow)
        for name in ("lstm bidirectional", "cnn", "seq2seq", "seq2seq attention")
    ],
)
def test_keras_savedmodels_pass(tmp_path, builder):
    path = kdl.save(BUILDERS[builder](), tmp_path / "model")
    _safe_load.check_model_file(path, more_objects=_never)
    assert isinstance(kdl.load(path), keras.Model)


def _kdl_objects(names):
    """What kdl.io gives check_model_file as more_objects (all of them here)."""
    from kdl import compression, privacy

    return {**compression.custom_objects(), **privacy.custom_objects()}


def _variant(name):
    from kdl import compression, privacy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.integers(0, 3, 32)
    base = kdl.build_mlp((4,), 3, dense_units=(8,))
    if name == "pruned":
        return compression.prune(base, x, y, epochs=0, verbose=0)
    if name == "clustered":
        return compression.cluster(base, x, y, clusters=4, epochs=1, verbose=0)
    if name == "quantize-aware":
        return compression.quantize_aware(base, x, y, epochs=1, verbose=0)
    if name == "private":
        return privacy.make_private(base, noise_multiplier=1.0)
    gru = kdl.build_gru((5, 3), 2, units=(3,))
    return privacy.make_private(gru, noise_multiplier=1.0, method="optimizer")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize(
    "variant", ["pruned", "clustered", "quantize-aware", "private", "private gru"]
)
def test_compressed_and_private_models_pass_and_load(tmp_path, variant, fmt):
    model = _variant(variant)
    path = kdl.save(model, tmp_path / f"model.{fmt}")
    _safe_load.check_model_file(path, more_objects=_kdl_objects)
    _assert_same_weights(kdl.load(path), model)


# === Through kdl.load (these need the kdl.io patch of issue 19) ===

LOAD_CASES = [
    ("keras", "model", "canary"),
    ("keras", "layer", "canary"),
    ("h5", "model", "canary"),
    ("h5", "activation", "canary"),
    ("keras", "model", "subprocess.run"),
    ("keras", "initializer", "os.system"),
]


@pytest.mark.parametrize("fmt, place, target", LOAD_CASES)
def test_kdl_load_refuses_crafted_files_before_importing(
    saved, tmp_path, canary, fmt, place, target
):
    module, cls, fn = TARGETS[target]
    module = module or canary[0]
    path = craft(saved, tmp_path, fmt, name_as(place, module, cls, fn))
    with pytest.raises(ValueError, match=rf"of module '{module}'.*safe_mode=False"):
        kdl.load(path)
    assert not canary[1].exists()


def test_kdl_load_never_returns_what_the_file_names(saved, tmp_path):
    path = craft(saved, tmp_path, "keras", name_as("model", "subprocess", "run", ""))
    with pytest.warns(UserWarning, match="safe_mode=False"):
        with pytest.raises(ValueError, match=r"subprocess\.run .*not a Keras model"):
            kdl.load(path, safe_mode=False)


def test_the_cli_refuses_a_crafted_file(saved, tmp_path, canary, capsys):
    from kdl import cli

    path = craft(saved, tmp_path, "keras", name_as("model", canary[0], "Evil", ""))
    assert cli.main(["info", str(path)]) == 2
    assert re.search(r"refused to load .*safe_mode=False", capsys.readouterr().err)
    assert not canary[1].exists()


def _legit_keras_models():
    from kdl.backend import keras

    layers = keras.layers
    ids = keras.Input((12,), dtype="int32")
    embedded = layers.Embedding(50, 16)(ids)
    words = keras.Input((1,), dtype="string")
    norm = layers.Normalization()
    norm.adapt(np.random.default_rng(0).random((8, 3)))
    wide = keras.Input((10,))
    rng = np.random.default_rng(1)
    return {
        "augmenting CNN": (
            kdl.build_cnn((8, 8, 1), 10, augmentation={"flip": None, "zoom": 0.1}),
            rng.random((4, 8, 8, 1), dtype=np.float32),
        ),
        "attention": (
            keras.Model(ids, layers.MultiHeadAttention(2, 8)(embedded, embedded)),
            rng.integers(0, 50, (3, 12)).astype("int32"),
        ),
        "lookup": (
            keras.Model(
                words,
                layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")(
                    words
                ),
            ),
            np.array([["a"], ["b"], ["c"]]),
        ),
        "adapted normalization": (
            keras.Sequential([layers.Input((3,)), norm, layers.Dense(1)]),
            rng.random((4, 3), dtype=np.float32),
        ),
        "slice of an input": (
            keras.Model(wide, layers.Dense(1, activation="leaky_relu")(wide[:, :3])),
            rng.random((4, 10), dtype=np.float32),
        ),
    }


@pytest.mark.slow
def test_ordinary_keras_savedmodels_load_in_safe_mode(tmp_path):
    # A README-only review of issue 29 found these refused as SavedModels
    # (sizes read from weights, adapt_step's iterator, an op layer whose
    # input is another entry of the metadata, tf.nn activation names).
    for name, (model, x) in _legit_keras_models().items():
        path = tmp_path / name.replace(" ", "_")
        model.save(path, save_format="tf")
        loaded = kdl.load(path)
        np.testing.assert_allclose(
            np.asarray(loaded.predict(x, verbose=0)),
            model.predict(x, verbose=0),
            atol=1e-5,
            err_msg=name,
        )


def test_a_hole_before_a_keras_archive_gets_no_budget(saved, tmp_path):
    path = tmp_path / "sparse.keras"
    with open(path, "wb") as f:  # 1 GiB of hole (no disk), then the archive
        f.truncate(1 << 30)
        f.seek(1 << 30)
        f.write(saved["keras"].read_bytes())
    with pytest.raises(ValueError, match=r"starts at byte 1,073,741,824"):
        _safe_load.check_model_file(path)


def test_a_symlink_in_a_savedmodel_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "variables" / "pad").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=r"holds the symlink 'variables/pad'"):
        kdl.load(folder)


def test_a_sparse_file_counts_its_real_bytes(tmp_path):
    from kdl._safe_common import real_bytes

    path = tmp_path / "sparse.h5"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    assert real_bytes(path) < 1 << 20


def test_a_huge_config_json_is_refused_before_parsing(saved, tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(saved["keras"]) as zin:
        entries = {n: zin.read(n) for n in zin.namelist()}
    entries["config.json"] = entries["config.json"] + b" " * (4 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries.items():
            zout.writestr(name, data)
    with pytest.raises(ValueError, match=r"its config.json is [\d,]+ bytes of JSON"):
        _safe_load.check_model_file(path)


def test_tensor_lists_pass_the_size_check():
    from tensorflow.core.protobuf import meta_graph_pb2

    from kdl import _safe_sizes
    from kdl.backend import tf

    @tf.function(input_signature=[tf.TensorSpec([None, 3])])
    def loop(x):
        raw = tf.raw_ops
        items = raw.EmptyTensorList(
            element_shape=[3], max_num_elements=-1, element_dtype=tf.float32
        )
        items = raw.TensorListPushBack(input_handle=items, tensor=x[0])
        return raw.TensorListStack(
            input_handle=items,
            element_shape=[3],
            element_dtype=tf.float32,
            num_elements=-1,
        )

    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(loop.get_concrete_function().graph.as_graph_def())
    ops = {n.op for n in meta.graph_def.node} | {
        n.op for f in meta.graph_def.library.function for n in f.node_def
    }
    assert "EmptyTensorList" in ops
    _safe_sizes.check_sizes(meta, 0, "loop", "kdl.load", 10**6)


@pytest.mark.parametrize("key", ["num_oov_indices", "num_tokens"])
def test_huge_lookup_counts_are_refused(saved, tmp_path, key):
    def edit(config, fmt):
        _dense(config, fmt)[1]["config"][key] = 2**26

    path = craft(saved, tmp_path, "keras", edit)
    with pytest.raises(
        ValueError, match=rf"layer 'dense\w*'\) sets '{key}' to 67108864"
    ):
        _safe_load.check_model_file(path)


def _huge_fill_tflite(path):
    """A .tflite file of a few KB whose Fill has a constant 256 MiB shape."""

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def serve(x):
        return tf.reduce_sum(tf.fill([2**13, 2**13], x[0, 0]))[None] + x

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], tf.Module()
    )
    path.write_bytes(converter.convert())
    assert path.stat().st_size < 2**16
    return path


def test_a_tflite_file_whose_tensors_exceed_the_budget_is_refused(tmp_path):
    # review h29: Fill([32768, 32768]) in 2 KB loaded; predict took 4.9 GB
    path = _huge_fill_tflite(tmp_path / "fill.tflite")
    pattern = r"refused to load .*its tensors take [\d,]+ bytes together .*shape "
    pattern += r"\[8192, 8192\]"
    with pytest.raises(ValueError, match="kdl.load " + pattern):
        kdl.load(path)
    with pytest.raises(ValueError, match="kdl.lite.load " + pattern):
        kdl.lite.load(path)
    with pytest.warns(UserWarning, match="safe_mode=False"):
        assert kdl.load(path, safe_mode=False).size == path.stat().st_size


def test_a_tf1_savedmodel_is_refused_at_its_saver(tmp_path):
    # A TF1 SavedModel (no object graph) restores through checkpoint ops in
    # its free-form top-level graph: refused, as the README documents.
    path, graph = tmp_path / "tf1", tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        weights = tf.compat.v1.get_variable("w", initializer=tf.ones([4, 2]))
        y = tf.matmul(x, weights, name="y")
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(str(path))
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(
            session, ["serve"], signature_def_map={"serving_default": signature}
        )
        builder.save()
    pattern = r"^kdl.load refused .*the top-level graph.* runs the op "
    pattern += r"'(ShardedFilename|RestoreV2|SaveV2|MergeV2Checkpoints)'"
    with pytest.raises(ValueError, match=pattern):
        kdl.load(path)
