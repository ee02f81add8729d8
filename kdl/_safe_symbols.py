"""Config arguments that name code: tf_keras' op layers (issue 29).

The first round (issue 19) checked the classes a model file names. Some
allowed tf_keras classes take the code they run from their *arguments*:
``TFOpLambda(function="io.write_file")`` and ``ClassMethod(cls_symbol=...,
method_name=...)`` look a TensorFlow symbol up by name
(``tf_export.get_symbol_from_name``), ``InstanceMethod`` and
``InstanceProperty`` call ``getattr(tensor, attr_name)``. Called on constants
from the file (``_CONSTANT_VALUE`` inbound nodes) they even run while the
model is loading: a crafted ``.keras`` wrote a file of its choosing.

This module checks each such argument against what tf_keras itself creates:

- ``ClassMethod``, ``InstanceMethod``, ``InstanceProperty`` and
  ``SlicingOpLambda``: the class, methods, properties and slicing ops that
  tf_keras' ``tf_op_layer.py`` registers dispatchers for, read from that file's
  source (the lists at its end), so a new tf_keras release is followed.
- ``TFOpLambda``: a TensorFlow *function* (not a class) whose code lives in
  TensorFlow's math, array, neural-network, linear-algebra, image, signal and
  string op modules, and whose public name is not in a namespace with side
  effects (``io``, ``gfile``, ``py_function``, ``print``, ``summary``,
  ``debugging``, random seeding, ``config``, ``raw_ops``, ...). The op
  modules are the ones that hold the ops the first round allowed by name;
  TensorFlow puts file, Python-calling, printing and seeding ops in other
  modules (``gen_io_ops``, ``script_ops``, ``logging_ops``, ``random_seed``).
- every op layer must be called on a tensor of the model (an inbound node
  naming a layer), never on constants only: that call would run eagerly while
  loading (and could allocate any amount of memory, ``tf.zeros([2**40])``).

``ModuleWrapper`` (wraps any object's method), ``ReloadedLayer`` (loads the
SavedModel at a path the file names, unchecked) and ``DenseFeatures`` (its
feature columns resolve functions by name) are refused outright.
:data:`SYMBOL_LAYERS` lists every tf_keras layer whose code resolves a name
from its configuration; ``tests/test_safe_symbols.py`` finds them by reading
tf_keras' source and fails when a release adds one this module does not know.
"""

from __future__ import annotations

import ast
import inspect

from kdl._safe_common import refuse
from kdl.backend import keras

__all__ = [
    "SYMBOL_LAYERS",
    "op_table",
    "check_symbol_layer",
    "symbol_layer_kind",
    "tf_function_problem",
]

# Every tf_keras layer class whose code resolves a name taken from its config,
# and what kdl does with it: "checked" (its arguments, by this module) or
# "refused" (with the reason). Lambda is refused by kdl._safe_load.
SYMBOL_LAYERS = {
    "TFOpLambda": "checked",
    "SlicingOpLambda": "checked",
    "ClassMethod": "checked",
    "InstanceMethod": "checked",
    "InstanceProperty": "checked",
    "Lambda": "refused",
    "ModuleWrapper": "refused",
    "ReloadedLayer": "refused",
    "DenseFeatures": "refused",
}
_REFUSED = {
    "ModuleWrapper": "calls a method it names on an object",
    "ReloadedLayer": "loads the SavedModel at a path the file names, unchecked",
    "DenseFeatures": "its feature columns resolve functions by name",
}

# TensorFlow modules of pure math / array ops (the home of every op the first
# round allowed by name, plus signal, string and ragged ops).
_PURE_MODULES = frozenset(
    "tensorflow.python.ops." + name
    for name in (
        "math_ops gen_math_ops special_math_ops bincount_ops clip_ops "
        "array_ops gen_array_ops array_ops_stack tensor_getitem_override sort_ops "
        "nn_ops gen_nn_ops nn_impl nn_impl_distribute ctc_ops embedding_ops "
        "linalg_ops gen_linalg_ops linalg.linalg_impl image_ops_impl "
        "gen_image_ops gen_spectral_ops signal.fft_ops signal.shape_ops "
        "string_ops gen_string_ops confusion_matrix "
        "ragged.ragged_getitem ragged.ragged_array_ops ragged.ragged_math_ops "
        "ragged.ragged_string_ops ragged.ragged_concat_ops"
    ).split()
)
# Namespaces of the public name that are refused whatever module holds the
# function, each with what it does (the first segment that matches wins).
_SIDE_EFFECTS = (
    (
        {"io", "gfile", "write_file", "read_file", "saved_model", "train"},
        "reads or writes files",
    ),
    ({"summary", "data", "lookup"}, "reads or writes files"),
    (
        {
            "py_function",
            "numpy_function",
            "py_func",
            "eager_py_func",
            "autograph",
            "function",
            "map_fn",
            "while_loop",
            "cond",
            "switch_case",
        },
        "runs Python code",
    ),
    (
        {"print", "Print", "logging", "get_logger", "debugging"},
        "prints or changes the debugging state",
    ),
    (
        {"random", "set_random_seed", "set_seed"},
        "uses or changes the random seeding state",
    ),
    (
        {
            "config",
            "distribute",
            "sysconfig",
            "test",
            "profiler",
            "raw_ops",
            "experimental",
            "tpu",
            "xla",
        },
        "controls the process, the devices or TensorFlow itself",
    ),
)
_CONSTANT = "_CONSTANT_VALUE"


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _loops(tree):
    """(called name, first argument, the loop's items) of each module-level loop."""
    for loop in tree.body:
        if not (isinstance(loop, ast.For) and isinstance(loop.iter, ast.List)):
            continue
        items = [
            elt.value if isinstance(elt, ast.Constant) else _dotted(elt)
            for elt in loop.iter.elts
        ]
        for node in ast.walk(loop):
            if isinstance(node, ast.Call):
                name = _dotted(node.func).split(".")[-1]
                first = _dotted(node.args[0]) if node.args else ""
                yield name, first, items


def op_table() -> dict:
    """What tf_keras' ``tf_op_layer.py`` registers, read from its source.

    Returns:
        dict with ``properties`` and ``methods`` (per KerasTensor class
        name), ``class_methods`` ({TF class name: methods}) and ``slicing``
        (TF public names of the slicing ops), each a frozenset.
    """
    if _TABLE:
        return _TABLE
    module = keras.src.layers.core.tf_op_layer
    tree = ast.parse(inspect.getsource(module))
    table = {"properties": set(), "methods": set(), "slicing": set()}
    class_methods = {}
    for name, first, items in _loops(tree):
        if name == "_delegate_property":
            table["properties"].update(items)
        elif name == "_delegate_method":
            table["methods"].update(items)
        elif name == "TFClassMethodDispatcher":
            cls = first.removeprefix("tf.")
            class_methods.setdefault(cls, set()).update(items)
        elif name == "TFSlicingOpDispatcher":
            table["slicing"].update(item.removeprefix("tf.") for item in items)
    _TABLE.update({k: frozenset(v) for k, v in table.items()})
    _TABLE["class_methods"] = {k: frozenset(v) for k, v in class_methods.items()}
    return _TABLE


_TABLE: dict = {}


def _side_effect(name: str):
    """What the public TF name ``name`` does outside the model, or None."""
    segments = name.replace("compat.v1.", "", 1).split(".")
    for segment in segments:
        for names, what in _SIDE_EFFECTS:
            if segment in names:
                return what
    return None


def tf_function_problem(name) -> str | None:
    """Why the TensorFlow public name ``name`` may not be a TFOpLambda, or None.

    ``name`` is looked up in TensorFlow's table of exported names (nothing is
    imported). Allowed: a function defined in a pure op module whose name has
    no side-effect namespace.
    """
    from tensorflow.python.util import tf_decorator, tf_export

    if not isinstance(name, str):
        return "is not a name"
    symbol = tf_export.get_symbol_from_name(name)
    if symbol is None:
        return "is not a public TensorFlow symbol"
    effect = _side_effect(name)
    if effect:
        return f"has side effects: it {effect}"
    target = tf_decorator.unwrap(symbol)[1]
    if isinstance(target, type) or not callable(target):
        return "is not a function"
    if getattr(target, "__module__", None) not in _PURE_MODULES:
        return "is not a math or array op"
    return None


def _names_a_layer(node, layer_names) -> bool:
    """True if ``node`` (inbound-node JSON) holds a reference to a model layer."""
    if isinstance(node, dict):
        return any(_names_a_layer(v, layer_names) for v in node.values())
    if not isinstance(node, list):
        return False
    if (
        len(node) >= 3
        and isinstance(node[0], str)
        and node[0] != _CONSTANT
        and node[0] in layer_names
        and all(isinstance(i, int) for i in node[1:3])
    ):
        return True
    return any(_names_a_layer(v, layer_names) for v in node)


def _argument_problem(kind, config) -> tuple[str, object, str | None]:
    """(argument, value, problem or None) for an op layer's config."""
    table = op_table()
    if kind in ("InstanceProperty", "InstanceMethod"):
        allowed = table["properties" if kind == "InstanceProperty" else "methods"]
        value = config.get("attr_name")
        ok = isinstance(value, str) and value in allowed
        return "attr_name", value, None if ok else "is not one tf_keras delegates"
    if kind == "ClassMethod":
        cls, method = config.get("cls_symbol"), config.get("method_name")
        methods = table["class_methods"].get(cls) if isinstance(cls, str) else None
        if methods is None:
            why = _side_effect(cls) if isinstance(cls, str) else None
            return (
                "cls_symbol",
                cls,
                (
                    f"has side effects: it {why}"
                    if why
                    else "is not a class tf_keras "
                    f"dispatches class methods of ({', '.join(table['class_methods'])})"
                ),
            )
        ok = isinstance(method, str) and method in methods
        return "method_name", method, None if ok else f"is not a method of {cls}"
    value = config.get("function")
    if kind == "SlicingOpLambda":
        ok = isinstance(value, str) and value in table["slicing"]
        return "function", value, None if ok else "is not a slicing op"
    return "function", value, tf_function_problem(value)


# Op layers whose output size is read from a tensor's values (issue 29:
# tf.range(n) with n computed from the input allocated GBs at predict; review
# h29: tf.eye, tf.sequence_mask, tf.math.bincount). These take their size from
# their first (tensor) argument: refused, unless the keyword that caps the
# size is given as a constant (tf.sequence_mask(lengths, maxlen=10)).
_SIZE_FIRST = {
    **dict.fromkeys(("range", "fill", "zeros", "ones", "eye", "linalg.eye")),
    **dict.fromkeys(("random.uniform", "random.normal", "random.truncated_normal")),
    "sequence_mask": "maxlen",
    "math.bincount": "maxlength",
    "bincount": "maxlength",
}
# Allow-list: the op layers that may take a tensor as a keyword argument,
# because their output is never larger than their inputs (element-wise and
# broadcasting math, reductions, slicing, gathering, matmul). Any other op
# layer given a tensor keyword argument is refused: that argument may be a
# size (tf.one_hot depth, tf.image.resize size, tf.repeat repeats, tf.pad
# paddings, tf.tile multiples, tf.reshape shape, tf.eye num_columns, ...).
_TENSOR_KWARGS_OK = frozenset(
    "add subtract multiply divide truediv floordiv floor_div floormod mod "
    "maximum minimum pow squared_difference equal not_equal less less_equal "
    "greater greater_equal logical_and logical_or logical_xor divide_no_nan "
    "multiply_no_nan xdivy xlogy atan2 scalar_mul truncatediv truncatemod "
    "realdiv bias_add matmul where where_v2 gather gather_nd batch_gather "
    "concat stack add_n clip_by_value reduce_sum reduce_mean reduce_max "
    "reduce_min reduce_prod reduce_any reduce_all reduce_logsumexp reduce_std "
    "reduce_variance reduce_euclidean_norm argmax argmin cumsum cumprod top_k "
    "l2_normalize softmax log_softmax expand_dims squeeze transpose slice "
    "strided_slice boolean_mask cast dropout roll reverse sort argsort".split()
)


def _kwargs_name_a_layer(node, layer_names) -> bool:
    """True if a keyword-argument dict inside ``node`` references a layer."""
    if isinstance(node, dict):
        return _names_a_layer(node, layer_names)
    if isinstance(node, list):
        return any(_kwargs_name_a_layer(v, layer_names) for v in node)
    return False


def _constant_kwarg(node, key) -> bool:
    """True if every call in ``node`` passes ``key`` as a constant integer."""
    found = []

    def walk(part):
        if isinstance(part, dict):
            found.append(part.get(key))
        elif isinstance(part, list):
            for item in part:
                walk(item)

    walk(node)
    return bool(found) and all(isinstance(v, int) for v in found)


def _size_problem(value, nodes, layer_names) -> str | None:
    """Why a TFOpLambda calling tf.``value`` has an unbounded size, or None."""
    if not isinstance(value, str):
        return None
    if value in _SIZE_FIRST:
        cap = _SIZE_FIRST[value]
        if cap is None or not all(_constant_kwarg(n, cap) for n in nodes):
            return "a size computed from a tensor (not a constant)"
    if value.startswith("__operators__."):
        return None
    short = value.rsplit(".", 1)[-1]
    if short not in _TENSOR_KWARGS_OK and _kwargs_name_a_layer(nodes, layer_names):
        return (
            "a size computed from a tensor (a tensor keyword argument, and "
            "not an op whose output is bounded by its inputs)"
        )
    return None


def _check_value_sized(value, nodes, where, layer_names, path, func):
    problem = _size_problem(value, nodes, layer_names)
    if problem:
        refuse(
            func,
            path,
            f"its config entry {where} is a TFOpLambda layer calling "
            f"tf.{value} with {problem}; its output size would be read from "
            "the data while predicting.",
        )


def check_symbol_layer(kind, entry, where, layer_names, path, func) -> None:
    """Refuses an op layer entry whose arguments name code outside the allow-list.

    Args:
        kind: str. The tf_keras class the entry resolves to (a key of
            :data:`SYMBOL_LAYERS`).
        entry: dict. The layer's config entry.
        where: str. Its path in the configuration, for the message.
        layer_names: set of str. The layer names of the configuration.
        path, func: the file and the public function, for the message.
    """
    if SYMBOL_LAYERS.get(kind) == "refused":
        refuse(
            func,
            path,
            f"its config entry {where} is a {kind} layer, which "
            f"{_REFUSED.get(kind, 'runs code it names')}.",
        )
    config = entry.get("config")
    config = config if isinstance(config, dict) else {}
    argument, value, problem = _argument_problem(kind, config)
    if problem:
        refuse(
            func,
            path,
            f"its config entry {where} is a {kind} layer whose {argument!r} "
            f"names {value!r}, which {problem}.",
        )
    nodes = entry.get("inbound_nodes")
    nodes = nodes if isinstance(nodes, list) else []  # Sequential: no nodes
    if not all(_names_a_layer(node, layer_names) for node in nodes):
        refuse(
            func,
            path,
            f"its config entry {where} is a {kind} layer ({argument} {value!r}) "
            "called on constants only, which would run while the file loads.",
        )
    if kind == "TFOpLambda":
        _check_value_sized(value, nodes, where, layer_names, path, func)


def symbol_layer_kind(obj) -> str | None:
    """The :data:`SYMBOL_LAYERS` key of class ``obj`` (or of its base), or None."""
    if not isinstance(obj, type):
        return None
    for cls in obj.__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module.startswith("tf_keras.") and cls.__name__ in SYMBOL_LAYERS:
            return cls.__name__
    return None
