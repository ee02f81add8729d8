"""A model file is data, second round (issue 29): arguments that name code, the
SavedModel graph, and what loading may extract or allocate.

Every crafted file starts from a real ``kdl.save`` file; the check is that
``kdl.load`` refuses it *and* that nothing was written.
"""

from __future__ import annotations

import ast
import io
import json
import zipfile
from pathlib import Path

import h5py
import pytest

import kdl
from kdl import _safe_load, _safe_symbols
from kdl.backend import keras, tf

_EVIL_SYMBOLS = [
    ("ClassMethod", {"cls_symbol": "io.write_file", "method_name": "__call__"}),
    ("ClassMethod", {"cls_symbol": "io.gfile.remove", "method_name": "__call__"}),
    ("ClassMethod", {"cls_symbol": "RaggedTensor", "method_name": "__init__"}),
    ("TFOpLambda", {"function": "io.write_file"}),
    ("TFOpLambda", {"function": "compat.v1.write_file"}),
    ("TFOpLambda", {"function": "py_function"}),
    ("TFOpLambda", {"function": "print"}),
    ("TFOpLambda", {"function": "random.set_seed"}),
    ("TFOpLambda", {"function": "raw_ops.WriteFile"}),
    ("SlicingOpLambda", {"function": "io.write_file"}),
    ("InstanceMethod", {"attr_name": "numpy"}),
    ("InstanceProperty", {"attr_name": "__class__"}),
]


@pytest.fixture(scope="module")
def functional(tmp_path_factory):
    """A functional model saved by kdl.save as .keras and .h5."""
    folder = tmp_path_factory.mktemp("functional")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    return {fmt: kdl.save(model, folder / f"f.{fmt}") for fmt in ("keras", "h5")}


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """``src`` with its model config passed through ``edit`` (in place)."""
    if src.suffix == ".keras":
        with zipfile.ZipFile(src) as archive:
            entries = {n: archive.read(n) for n in archive.namelist()}
        config = json.loads(entries["config.json"])
        edit(config)
        entries["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(dst, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        return dst
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return dst


def _add_layer(kind, config, inbound):
    def edit(model_config):
        entry = {
            "class_name": kind,
            "name": "op",
            "config": {"name": "op", "trainable": True, **config},
            "inbound_nodes": inbound,
        }
        if "module" in json.dumps(model_config["config"]["layers"][0]):
            entry.update(module="tf_keras.src.layers.core.tf_op_layer")
            entry.update(registered_name=kind)
        model_config["config"]["layers"].append(entry)

    return edit


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_the_pwned_exploit_of_the_issue_writes_nothing(functional, tmp_path, fmt):
    target = tmp_path / "PWNED.txt"
    inbound = [[["_CONSTANT_VALUE", -1, str(target), {"kwargs": {"contents": "x"}}]]]
    edit = _add_layer(
        "ClassMethod",
        {"cls_symbol": "io.write_file", "method_name": "__call__"},
        inbound,
    )
    path = _rewrite(functional[fmt], tmp_path / f"evil.{fmt}", edit)
    with pytest.raises(ValueError, match=r"ClassMethod layer whose 'cls_symbol' names "
                       r"'io\.write_file', which has side effects"):  # fmt: skip
        kdl.load(path)
    assert not target.exists()
    # The CLI loads through kdl.load: the same refusal, one line, exit 2.
    from kdl.cli import main

    assert main(["info", str(path)]) == 2
    assert not target.exists()


@pytest.mark.parametrize("kind, config", _EVIL_SYMBOLS)
def test_arguments_naming_code_are_refused(functional, tmp_path, kind, config):
    inbound = [[["dense", 0, 0, {}]]]  # called on a model tensor
    path = _rewrite(
        functional["keras"], tmp_path / "evil.keras", _add_layer(kind, config, inbound)
    )
    name = config.get("method_name") if "RaggedTensor" in config.values() else None
    name = name or next(iter(config.values()))  # the argument that is refused
    with pytest.raises(ValueError, match=rf"{kind} layer whose '\w+' names '{name}'"):
        _safe_load.check_model_file(path)


@pytest.mark.parametrize("decoy", [False, True])
def test_an_allowed_op_called_on_constants_only_is_refused(functional, tmp_path, decoy):
    inbound = [[["_CONSTANT_VALUE", -1, [2**20, 2**20], {}]]]
    if decoy:  # a second call on a model tensor does not excuse the first
        inbound.append([["dense", 0, 0, {}]])
    edit = _add_layer("TFOpLambda", {"function": "zeros"}, inbound)
    path = _rewrite(functional["h5"], tmp_path / "zeros.h5", edit)
    with pytest.raises(ValueError, match=r"called on constants only, which would run"):
        kdl.load(path)


@pytest.mark.parametrize("kind", ["ModuleWrapper", "ReloadedLayer", "DenseFeatures"])
def test_layers_that_run_what_they_name_are_refused(tmp_path, kind):
    config = {"class_name": kind, "config": {"name": "x", "filepath": str(tmp_path)}}
    modules = {
        "ReloadedLayer": "tf_keras.src.export.export_lib",
        "ModuleWrapper": "tf_keras.src.engine.functional",
    }
    if kind in modules:  # where tf_keras would find it
        config["module"] = modules[kind]
    with pytest.raises(ValueError, match=rf"is a {kind} layer, which"):
        _safe_load.check_config(config, source="crafted")


@pytest.mark.parametrize("kind", ["DynamicLookup", "DynamicEmbedding"])
def test_layers_allocating_what_the_file_names_are_refused(kind):
    # Hostile review: DynamicLookup(vocabulary_size=2**27) took 3.4 GB while
    # its config was read, in a random tensor no weight budget sees.
    config = {
        "module": "tf_keras.layers.experimental",
        "class_name": kind,
        "config": {
            "name": "x",
            "vocabulary_size": 2**27,
            "initial_vocabulary": "int64",
        },
    }
    with pytest.raises(ValueError, match=rf"is a {kind} layer, which builds a random"):
        _safe_load.check_config(config, source="crafted")


def test_ragged_class_methods_and_properties_of_a_real_model_pass(tmp_path):
    values = keras.Input((), dtype="float32")
    lengths = keras.Input((), dtype="int64")
    ragged = tf.RaggedTensor.from_row_lengths(values, lengths)
    model = keras.Model([values, lengths], ragged.flat_values * 2.0)
    path = kdl.save(model, tmp_path / "ragged.keras")
    kinds = {layer["class_name"] for layer in model.get_config()["layers"]}
    assert {"ClassMethod", "InstanceProperty"} <= kinds
    loaded = kdl.load(path)
    x = [tf.constant([1.0, 2.0, 3.0]), tf.constant([2, 1], dtype="int64")]
    assert loaded(x).numpy().tolist() == [2.0, 4.0, 6.0]


# === Every symbol-resolving layer of tf_keras is known ===

_RESOLVERS = {"get_symbol_from_name", "import_module", "__import__", "func_load"}


def _constant_names(cls_node) -> set:
    """Loop variables over literal lists/tuples, and names bound to such tuples."""
    literal = set()
    for node in ast.walk(cls_node):
        if isinstance(node, ast.Assign) and isinstance(
            node.value, (ast.Tuple, ast.List)
        ):
            literal.update(t.id for t in node.targets if isinstance(t, ast.Name))
    names = set()
    for node in ast.walk(cls_node):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            it = node.iter
            if isinstance(it, (ast.Tuple, ast.List)) or (
                isinstance(it, ast.Name) and it.id in literal
            ):
                names.add(node.target.id)
    return names


def _resolves_a_name(cls_node) -> bool:
    """True if the class's code looks a symbol up by a name it was not born with."""
    constant = _constant_names(cls_node)
    for node in ast.walk(cls_node):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in _RESOLVERS or (
            isinstance(func, ast.Name) and name in ("eval", "exec")
        ):
            return True
        if name == "getattr" and len(node.args) >= 2:
            target, key = node.args[0], node.args[1]
            if isinstance(key, ast.Constant) or ast.unparse(target) == "self":
                continue
            if isinstance(key, ast.Name) and key.id in constant:
                continue
            return True
    return False


def _tf_keras_layer_classes(root=None, package="tf_keras.src"):
    """Every Layer subclass under ``root`` (tf_keras' source) that resolves a name."""
    import inspect

    root = root or Path(keras.__file__).parent / "src"
    found = {}
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        if rel.endswith("_test.py") or "testing_infra" in rel or "benchmarks" in rel:
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ClassDef) and _resolves_a_name(node):
                found.setdefault(node.name, []).append(rel)
    layers = set()
    for name, files in found.items():
        for rel in files:
            module = f"{package}." + rel[:-3].replace("/", ".")
            try:
                cls = getattr(__import__(module, fromlist=[name]), name)
            except Exception:  # noqa: BLE001 - optional dependencies
                continue
            if inspect.isclass(cls) and issubclass(cls, keras.layers.Layer):
                layers.add(name)
    return layers


def test_every_symbol_resolving_layer_of_tf_keras_is_checked_or_refused():
    found = _tf_keras_layer_classes()
    # tf_keras' own base class resolves its own attributes only.
    found.discard("Layer")
    subclasses = {"SlicingOpLambda"}  # inherits TFOpLambda's resolution
    known = set(_safe_symbols.SYMBOL_LAYERS)
    assert found | subclasses <= known, f"new in tf_keras: {sorted(found - known)}"
    assert {"TFOpLambda", "ClassMethod", "InstanceMethod", "ModuleWrapper"} <= found
    for name, verdict in _safe_symbols.SYMBOL_LAYERS.items():
        assert verdict in ("checked", "refused")
        if verdict == "refused":
            with pytest.raises(ValueError, match=rf"(is a {name} layer|{name})"):
                _safe_load.check_config(
                    {"class_name": name, "config": {"name": "x"}}, source="crafted"
                )


_FAKE_RELEASE = """
from tf_keras.src.engine.base_layer import Layer
from tensorflow.python.util import tf_export


class TFGatherLambda(Layer):  # resolves a symbol the way TFOpLambda does
    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = tf_export.get_symbol_from_name(function)


class FromModule(Layer):  # the way Keras' deserializers import a module
    def __init__(self, module, name_in_module, **kwargs):
        import importlib

        super().__init__(**kwargs)
        self.fn = getattr(importlib.import_module(module), name_in_module)


class Plain(Layer):  # resolves nothing: must not be reported
    def call(self, x):
        return getattr(self, "scale", 1.0) * x
"""


def test_the_source_scan_notices_a_new_symbol_resolving_layer(tmp_path, monkeypatch):
    # A fake "next tf_keras release": the guard above must fail on it.
    package = tmp_path / "fake_tf_keras_release"
    (package / "layers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers" / "__init__.py").write_text("")
    (package / "layers" / "new_op_layer.py").write_text(_FAKE_RELEASE)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = _tf_keras_layer_classes(package, "fake_tf_keras_release")
    assert found == {"TFGatherLambda", "FromModule"}
    new = found - set(_safe_symbols.SYMBOL_LAYERS)
    assert new == found  # what the guard test reports as "new in tf_keras"


def test_the_op_table_is_read_from_tf_keras_source():
    table = _safe_symbols.op_table()
    assert "from_row_splits" in table["class_methods"]["RaggedTensor"]
    assert {"flat_values", "dense_shape"} <= table["properties"]
    assert {"to_tensor", "with_values"} <= table["methods"]
    assert {"__operators__.getitem", "boolean_mask"} <= table["slicing"]
    for name in ("math.add", "nn.relu", "reshape", "concat", "einsum", "stack"):
        assert _safe_symbols.tf_function_problem(name) is None, name
    for name in ("io.write_file", "print", "py_function", "numpy_function"):
        assert _safe_symbols.tf_function_problem(name) is not None, name


# === Arguments that name a file ===

_LOOKUPS = {
    "StringLookup": (["b", "a"], "string", [["a"], ["z"]]),
    "IntegerLookup": ([7, 3], "int64", [[3], [9]]),
    "TextVectorization": (["b", "a"], "string", [["a b"], ["z"]]),
}


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("kind", sorted(_LOOKUPS))
def test_a_vocabulary_file_is_refused_and_an_inline_one_loads(tmp_path, kind, fmt):
    vocabulary, dtype, x = _LOOKUPS[kind]
    inputs = keras.Input((1,), dtype=dtype)
    layer = getattr(keras.layers, kind)(vocabulary=vocabulary, name="lookup")
    model = keras.Model(inputs, layer(inputs))
    path = kdl.save(model, tmp_path / f"inline.{fmt}")
    loaded = kdl.load(path)  # an in-line vocabulary is data
    x = tf.constant(x, dtype=dtype)
    assert loaded.predict(x, verbose=0).tolist() == model.predict(x, verbose=0).tolist()

    secret = tmp_path / "secret.txt"  # any file the loading user may read
    secret.write_text("\n".join(map(str, vocabulary)))

    def edit(config):
        config["config"]["layers"][1]["config"]["vocabulary"] = str(secret)

    evil = _rewrite(path, tmp_path / f"evil.{fmt}", edit)
    pattern = rf"'{kind}' layer 'lookup'\) names the file '.*secret\.txt' as its "
    with pytest.raises(ValueError, match=pattern + "'vocabulary' argument"):
        kdl.load(evil)
    secret.unlink()  # had Keras read it, the load would have succeeded
    with pytest.raises(ValueError, match=pattern):
        kdl.load(evil)


# === SavedModel graphs ===


class _Writer(tf.saved_model.experimental.TrackableResource):
    """A resource whose initializer (run while loading) writes a file."""

    def __init__(self, target):
        self.target = str(target)
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="w")

    def _initialize(self):
        tf.io.write_file(self.target, "x")


def _save_module(path, target, *, in_initializer):
    module = tf.Module()
    if in_initializer:
        module.resource = _Writer(target)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def serve(x):
        if not in_initializer:
            tf.io.write_file(str(target), "x")
        return {"y": x * 2.0}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


@pytest.mark.parametrize("in_initializer", [True, False])
def test_a_savedmodel_that_writes_a_file_is_refused(tmp_path, in_initializer):
    target = tmp_path / "SM_PWNED.txt"
    path = _save_module(tmp_path / "sm", target, in_initializer=in_initializer)
    assert not target.exists()
    with pytest.raises(ValueError, match=r"runs the op 'WriteFile', an op that reads"):
        kdl.load(path)
    assert not target.exists()
    with pytest.warns(UserWarning, match="safe_mode=False"):
        loaded = kdl.load(path, safe_mode=False)  # trusted: it loads, and writes
    if not in_initializer:
        loaded.predict([[1.0, 2.0]])
    assert target.exists()


_N = 6000  # [N, N] float32 = 144 MB: over a tiny file's budget, harmless if run


def _allocating(kind, stored):
    """A tensor of N x N values, computed the way ``kind`` says."""
    if kind == "fill":
        return tf.fill([_N, _N], 1.0)
    if kind == "zeros":
        return tf.zeros([_N, _N])
    if kind == "tile":
        return tf.tile(tf.ones([1, 1]), [_N, _N])
    if kind == "broadcast_to":
        return tf.broadcast_to(1.0, [_N, _N])
    if kind == "range":
        return tf.cast(tf.range(_N * _N), tf.float32)
    if kind == "random":
        return tf.random.uniform([_N, _N])
    if kind == "outer":  # [N, 1] + [1, N]: two tiny constants, broadcast
        return tf.ones([_N, 1]) + tf.ones([1, _N])
    if kind == "resize":  # an image op whose output size is an argument
        return tf.image.resize(tf.ones([1, 2, 2, 1]), [_N, _N])
    if kind == "einsum":  # an outer product: its size is not read, but constant
        return tf.einsum("i,j->ij", tf.ones([_N]), tf.ones([_N]))
    if kind == "while_growth":  # doubles a tensor 26 times in a loop

        def body(i, t):
            return i + 1, tf.concat([t, t], 0)

        invariants = [tf.TensorShape([]), tf.TensorShape([None])]
        loop = tf.while_loop(
            lambda i, t: i < 26, body, [0, tf.ones([1])], shape_invariants=invariants
        )
        return loop[1]
    if kind == "stored_shape":  # the shape is a variable's value, from the file
        return tf.fill(stored.read_value(), 1.0)
    # "folded": TensorFlow computes the constant shape argument while it
    # imports the function, whether or not the function ever runs.
    total = tf.reduce_sum(tf.fill([_N, _N], 1.0)) * 0.0 + 4.0
    return tf.reshape(tf.ones([4]), tf.stack([tf.cast(total, tf.int32)]))


class _Allocator(tf.saved_model.experimental.TrackableResource):
    """A resource whose initializer (run while loading) computes a big tensor."""

    def __init__(self, kind, stored):
        super().__init__()
        self.kind, self.stored = kind, stored  # stored: tracked by the module

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="a")

    def _initialize(self):
        total = tf.reduce_sum(_allocating(self.kind, self.stored))
        tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=total)


_ALLOCATIONS = [
    *((kind, True) for kind in ("fill", "zeros", "tile", "broadcast_to", "range")),
    *((kind, True) for kind in ("random", "outer", "stored_shape", "folded")),
    *((kind, True) for kind in ("einsum", "while_growth")),
    *((kind, False) for kind in ("fill", "outer", "stored_shape", "folded")),
    ("resize", False),
]


@pytest.mark.parametrize("kind, in_initializer", _ALLOCATIONS)
def test_a_savedmodel_computing_a_huge_tensor_is_refused(
    tmp_path, kind, in_initializer
):
    module = tf.Module()
    module.stored = tf.Variable([_N, _N])
    if in_initializer:
        module.resource = _Allocator(kind, module.stored)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def serve(x):
        if in_initializer:
            return {"y": x * 2.0}
        return {"y": x * tf.reduce_sum(_allocating(kind, module.stored))}

    module.serve = serve
    path = tmp_path / "sm"
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 2**20
    pattern = r"runs the op '\w+'(, a loop in a function| computing a tensor (of "
    pattern += r"shape \[(None, )?6000, 6000|of shape \[36000000\]|whose size is "
    pattern += r"(computed from constants|read from values stored)|whose size kdl "
    pattern += r"cannot read statically))"
    with pytest.raises(ValueError, match=pattern):
        kdl.load(path)


class _LoadTimeWork(tf.saved_model.experimental.TrackableResource):
    """A table whose initializer (run while loading) loops or fills it up."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def _create_resource(self):
        return tf.raw_ops.MutableHashTableV2(key_dtype=tf.int64, value_dtype=tf.int64)

    def _initialize(self):
        table, n = self.resource_handle, 2**19  # keys of 4 MiB: under the budget

        def insert(j):
            keys = tf.range(n, dtype=tf.int64) + tf.cast(j, tf.int64) * n
            return tf.raw_ops.LookupTableInsertV2(
                table_handle=table, keys=keys, values=keys
            )

        if self.kind == "many_inserts":  # no loop: 40 inserts of 4 MiB each
            with tf.control_dependencies([insert(j) for j in range(40)]):
                return tf.constant(0)
        if self.kind == "endless_loop":
            return tf.while_loop(lambda i: i >= 0, lambda i: i + 1 - 1, [0])

        def body(i, items):
            if self.kind == "insert_loop":
                with tf.control_dependencies([insert(i)]):
                    return i + 1, items
            element = tf.ones([n]) * tf.cast(i, tf.float32)
            return i + 1, tf.raw_ops.TensorListPushBack(
                input_handle=items, tensor=element
            )

        items = tf.raw_ops.EmptyTensorList(
            element_shape=tf.constant([n], tf.int32),
            max_num_elements=-1,
            element_dtype=tf.float32,
        )
        return tf.while_loop(lambda i, _: i < 100000, body, [0, items])[0]


@pytest.mark.parametrize(
    "kind", ["list_loop", "insert_loop", "endless_loop", "many_inserts"]
)
def test_a_savedmodel_working_while_loading_is_refused(tmp_path, kind):
    module = tf.Module()
    module.table = _LoadTimeWork(kind)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def serve(x):
        return {"y": x * 2.0}

    module.serve = serve
    path = tmp_path / "sm"
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 2**20
    pattern = r"runs the op '(While|StatelessWhile)', a loop in a function"
    if kind == "many_inserts":
        pattern = r"runs functions while loading .* that allocate [\d,]+ bytes in"
    with pytest.raises(ValueError, match=pattern):
        kdl.load(path)


def test_a_compressed_constant_of_a_huge_shape_is_refused(tmp_path):
    # A Const's proto may hold one value for any shape: TensorFlow expands it.
    from tensorflow.core.protobuf import saved_model_pb2

    module = tf.Module()
    module.serve = tf.function(lambda x: {"y": x + tf.ones([4])}).get_concrete_function(
        tf.TensorSpec([None, 4], tf.float32)
    )
    path = tmp_path / "sm"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    for function in saved.meta_graphs[0].graph_def.library.function:
        for node in function.node_def:
            if node.op == "Const" and node.attr["value"].tensor.tensor_shape.dim:
                node.attr["value"].tensor.tensor_shape.dim[0].size = _N * _N
    (path / "saved_model.pb").write_bytes(saved.SerializeToString())
    with pytest.raises(ValueError, match=r"op 'Const' computing a tensor of shape"):
        kdl.load(path)


def test_a_keras_savedmodel_with_tables_embeddings_and_lstm_loads(tmp_path):
    inputs = keras.Input((3,), dtype="string")
    x = keras.layers.StringLookup(vocabulary=["a", "b", "c"])(inputs)
    x = keras.layers.Embedding(5, 4)(x)
    model = keras.Model(inputs, keras.layers.LSTM(2)(x))
    path = kdl.save(model, tmp_path / "sm")
    x = tf.constant([["a", "c", "z"], ["b", "b", "a"]])
    expected = model.predict(x, verbose=0)
    assert kdl.load(path).predict(x, verbose=0).tolist() == expected.tolist()


# === What loading may extract and allocate ===


def test_a_zip_bomb_of_small_entries_is_refused(functional, tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(functional["keras"]) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        zeros = bytes(8 * 2**20)  # under the per-entry limit, 1000x compressible
        for i in range(12):
            dst.writestr(f"assets/pad{i}", zeros, compress_type=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    with pytest.raises(ValueError, match=r"would extract to [\d,]+ bytes from a file"):
        kdl.load(path)


def test_too_many_entries_are_refused(functional, tmp_path):
    path = tmp_path / "many.keras"
    with zipfile.ZipFile(functional["keras"]) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        for i in range(_safe_load.MAX_ENTRIES):
            dst.writestr(f"assets/{i}", b"")
    with pytest.raises(ValueError, match=r"holds [\d,]+ entries \(at most"):
        kdl.load(path)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_an_input_of_2_to_the_34_values_is_refused(functional, tmp_path, fmt):
    def edit(config):
        layer = config["config"]["layers"][0]
        for key in ("batch_shape", "batch_input_shape"):
            if key in layer["config"]:
                layer["config"][key] = [None, 2**34]

    path = _rewrite(functional[fmt], tmp_path / f"huge.{fmt}", edit)
    with pytest.raises(ValueError, match=r"input of shape \[None, 17179869184\]"):
        kdl.load(path)


def test_legitimate_files_still_pass_the_budget(functional):
    for path in functional.values():
        assert isinstance(kdl.load(path), keras.Model)


def test_an_npz_weights_bomb_is_refused(functional, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as npz:
        with npz.open("kernel.npy", "w", force_zip64=True) as member:
            chunk = bytes(2**20)
            for _ in range(200):  # 200 MiB of zeros, about 200 kB deflated
                member.write(chunk)
    path = tmp_path / "npz.keras"
    with zipfile.ZipFile(functional["keras"]) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            if name != "model.weights.h5":
                dst.writestr(name, src.read(name))
        dst.writestr("model.weights.npz", inner.getvalue())
    with pytest.raises(ValueError, match=r"'model\.weights\.npz' holds 1 arrays"):
        kdl.load(path)


def test_a_layer_that_would_output_2_to_the_34_values_is_refused(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.RepeatVector(8)(inputs))
    path = kdl.save(model, tmp_path / "repeat.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace(
            '"n": 8', '"n": 4294967296'
        )
    with pytest.raises(ValueError, match=r"layer 'repeat_vector\w*' outputs a tensor"):
        kdl.load(path)


def test_an_op_layer_multiplying_the_batch_dimension_is_refused(tmp_path):
    # Hostile review: (None, 3) tiled by [2**14, 2**14] reports 49,152 values
    # per example, yet one row would allocate 3.2 GB when predicting.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, tf.tile(inputs, [2, 2]))
    path = kdl.save(model, tmp_path / "tile.keras")
    assert kdl.load(path).predict(tf.ones([1, 3]), verbose=0).shape == (2, 6)

    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "TFOpLambda":
                layer["inbound_nodes"][0][3]["multiples"] = [2**14, 2**14]

    evil = _rewrite(path, tmp_path / "evil.keras", edit)
    with pytest.raises(ValueError, match=r"\(Tile\) computes a tensor of shape "):
        kdl.load(evil)


def test_a_savedmodel_declaring_a_huge_variable_is_refused(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    module = tf.Module()
    module.v = tf.Variable(tf.zeros([4]))
    path = tmp_path / "sm"
    tf.saved_model.save(module, str(path))
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    for node in saved.meta_graphs[0].object_graph_def.nodes:
        if node.WhichOneof("kind") == "variable":
            node.variable.shape.dim[0].size = 2**34
    (path / "saved_model.pb").write_bytes(saved.SerializeToString())
    with pytest.raises(ValueError, match=r"declares variables of [\d,]+ bytes"):
        kdl.load(path)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_weights_only_building_reveals_are_refused_before_allocation(
    functional, tmp_path, fmt
):
    # A hostile review's break: an input under the input limit times a Dense
    # layer's units asked Keras for a 32 GiB kernel from a 7 KB file.
    def edit(config):
        layers = config["config"]["layers"]
        for key in ("batch_shape", "batch_input_shape"):
            if key in layers[0]["config"]:
                layers[0]["config"][key] = [None, 2**27]
        layers[1]["config"]["units"] = 64
        layers[1].pop("build_config", None)

    path = _rewrite(functional[fmt], tmp_path / f"wide.{fmt}", edit)
    # one line: the refusal itself, not "could not load ...: ValueError: ..."
    pattern = r"^kdl.load refused to load .* would allocate more than [\d,]+ bytes"
    with pytest.raises(ValueError, match=pattern):
        kdl.load(path)


def _sized_by_values(op, inputs):
    """An op layer whose output size is a value computed inside the model."""
    n = tf.cast(tf.reduce_max(inputs), tf.int32)  # a size read from the data
    if op == "range":
        return tf.cast(tf.reduce_sum(tf.range(n)), tf.float32) * inputs
    if op == "reshape":
        return tf.reshape(inputs, tf.shape(inputs))
    if op == "eye":
        return tf.reduce_sum(tf.eye(n)) * inputs
    if op == "sequence_mask":
        mask = tf.sequence_mask(tf.reshape(n, [1]), dtype=tf.float32)
        return tf.reduce_sum(mask) * inputs
    if op == "repeat":
        return tf.reduce_sum(tf.repeat(inputs, repeats=n, axis=1)) * inputs
    if op == "pad":
        paddings = tf.stack([tf.stack([0, 0]), tf.stack([0, n])])
        return tf.reduce_sum(tf.pad(inputs, paddings)) * inputs
    if op == "bincount":
        counts = tf.math.bincount(tf.cast(inputs, tf.int32), minlength=n)
        return tf.cast(tf.reduce_sum(counts), tf.float32) * inputs
    if op == "resize":
        image = tf.reshape(inputs, [-1, 2, 2, 1])
        resized = tf.image.resize(image, tf.stack([n, n]))
        return tf.reduce_sum(resized) * inputs
    hot = tf.one_hot(tf.cast(inputs[:, 0], tf.int32), depth=n)  # "one_hot"
    return tf.reduce_sum(hot) * inputs


_VALUE_SIZED = ["range", "reshape", "eye", "sequence_mask", "repeat", "pad"]
_VALUE_SIZED += ["bincount", "resize", "one_hot"]


@pytest.mark.parametrize("op", _VALUE_SIZED)
def test_op_layers_sized_by_tensor_values_are_refused(tmp_path, op):
    # review h29: each loaded from a few KB, then predict allocated 4 GiB
    inputs = keras.Input((4,))
    sized = _sized_by_values(op, inputs)
    path = tmp_path / "sized.keras"
    keras.Model(inputs, keras.layers.Dense(2)(sized)).save(path)
    name = {"pad": "compat.v1.pad", "bincount": "math.bincount"}.get(op, op)
    name = "image.resize" if op == "resize" else name
    with pytest.raises(ValueError, match=rf"calling tf.{name} with a size computed"):
        _safe_load.check_model_file(path)


def test_op_layers_bounded_by_their_inputs_pass(tmp_path):
    inputs = keras.Input((4,))
    mask = tf.sequence_mask(tf.cast(inputs[:, 0], tf.int32), maxlen=4)
    picked = tf.gather(inputs, indices=tf.argmax(inputs, axis=1), axis=0)
    mixed = tf.math.multiply(inputs, tf.cast(mask, tf.float32)) + picked
    path = tmp_path / "bounded.keras"
    keras.Model(inputs, keras.layers.Dense(2)(mixed)).save(path)
    _safe_load.check_model_file(path)


def test_an_op_layer_of_constant_size_passes(tmp_path):
    inputs = keras.Input((4,))
    shaped = tf.reshape(tf.tile(inputs, [1, 2]), [-1, 2, 4])
    path = tmp_path / "constant.keras"
    keras.Model(inputs, keras.layers.Flatten()(shaped)).save(path)
    _safe_load.check_model_file(path)
