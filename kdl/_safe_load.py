"""A model file is data: what kdl checks before Keras reads one (issues 19, 29).

tf_keras resolves every ``{"module": ..., "class_name": ...}`` entry of a saved
configuration by importing the module the file names, even with
``safe_mode=True`` (the pattern of Keras 3's CVE-2025-1550, fixed there in 3.9
and not in tf_keras). So before Keras deserializes anything, kdl reads the
configuration itself (``config.json`` of a ``.keras`` zip, the
``model_config`` and ``training_config`` of an ``.h5`` file, the Keras metadata
of a SavedModel) and refuses every entry that does not resolve, *without
importing anything*, to one of:

- tf_keras' own layers, activations, initializers, regularizers, constraints,
  losses, metrics, optimizers and learning-rate schedules (what
  ``keras.layers.deserialize`` and friends find by name);
- kdl's registered classes (``kdl>...``: kdl.augment's layers, kdl.privacy's
  model and optimizers) and the TF-MOT classes kdl.compression loads;
- the objects the caller passes in ``custom_objects`` or registered itself
  (``keras.saving.register_keras_serializable``, ``custom_object_scope``):
  Keras layers, losses, metrics, ... and functions, never another class.

``Lambda`` layers and Python lambdas are refused as well, and so are
arguments that name code in allowed classes (issue 29, :mod:`kdl._safe_symbols`:
``TFOpLambda``, ``ClassMethod``, ``InstanceMethod``, ...). The file itself is
read by :mod:`kdl._safe_files` without extracting anything (entry names, zip
bombs, the total size and count of entries against the file's size, tensors
and inputs far larger than the file), and a SavedModel's graph by
:mod:`kdl._safe_graph` (no op that may act outside the model).

:func:`check_loaded` makes sure what a loader returns is a Keras model (or an
object of kdl's own classes, such as its TFLite model), never a function or
another object a crafted file chose; :func:`check_activations` that no layer
of it would output absurdly many values when it predicts.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

from kdl import _safe_symbols
from kdl._model_format import model_format
from kdl._safe_common import corrupt, real_bytes, refuse
from kdl._safe_files import (  # noqa: F401
    MAX_ENTRIES,
    MAX_INPUT_VALUES,
    TENSOR_RATIO,
    TENSOR_SLACK,
    nodes,
    read_configs,
)
from kdl._safe_files import check_claims as _check_claims
from kdl._safe_names import AllowList, describe, keras_tables, resolve
from kdl.backend import keras, tf

__all__ = [
    "check_model_file",
    "check_config",
    "check_loaded",
    "check_activations",
    "warn_unsafe",
    "variable_budget",
]

# Handled by Keras before it looks at "module": plain data.
_DATA_FIRST = ("__tensor__", "__numpy__", "__bytes__")
# Plain data in the legacy JSON (h5, SavedModel) when no module is named.
_LEGACY_DATA = ("__tuple__", "__ellipsis__", "TensorShape", "TypeSpec")
_STRING_KINDS = (
    ("activation", "activation"),
    ("_initializer", "initializer"),
    ("_regularizer", "regularizer"),
    ("_constraint", "constraint"),
)


# tf_keras layers that allocate, outside any variable, a tensor whose size the
# file names (hostile review: DynamicLookup(vocabulary_size=2**27) took
# 3.4 GB in from_config).
_ALLOCATING_LAYERS = {
    "DynamicLookup": "builds a random vocabulary of the size the file names "
    "while loading, outside the weight budget",
    "DynamicEmbedding": "builds a random vocabulary of the size the file names "
    "while loading, outside the weight budget",
}

_refuse = refuse
_corrupt = corrupt


def _requested_bytes(kwargs) -> int:
    """Bytes a variable about to be created asks for (0 when not known)."""
    shape, initial = kwargs.get("shape"), kwargs.get("initial_value")
    if shape is None and isinstance(initial, functools.partial) and initial.args:
        shape = initial.args[0]  # Keras' add_weight: partial(initializer, shape)
    if shape is None:
        shape = getattr(initial, "shape", None)
    dims = tf.TensorShape(shape) if shape is not None else None
    if dims is None or dims.rank is None or not dims.is_fully_defined():
        return 0
    itemsize = tf.as_dtype(kwargs.get("dtype") or tf.float32).size
    return int(dims.num_elements()) * itemsize


@contextlib.contextmanager
def variable_budget(path, func: str = "kdl.load"):
    """Refuses, before it is allocated, a variable that would take the weights
    created while loading ``path`` past the budget of its size.

    The configuration check estimates the weights a config implies, but a
    layer's weights depend on shapes only building it reveals (a Dense
    kernel's input width, attention heads x key size, a convolution's kernel
    over many channels): a 7 KB file asked Keras for a 32 GiB kernel. TF's
    variable creator scope sees each variable's shape before its initializer
    runs, so the budget (TENSOR_RATIO x the file's size + TENSOR_SLACK, the
    same as for tensors the file declares) holds for every layer type.
    """
    path = Path(path)
    limit = TENSOR_RATIO * real_bytes(path, func) + TENSOR_SLACK
    total = 0

    def creator(next_creator, **kwargs):
        nonlocal total
        total += _requested_bytes(kwargs)
        if total > limit:
            refuse(
                func,
                path,
                f"building it would allocate more than {limit:,} bytes of weights "
                f"(variable {kwargs.get('name')!r} takes the total to {total:,}; "
                f"the budget is {TENSOR_RATIO}x the file's size plus "
                f"{TENSOR_SLACK:,}).",
            )
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        yield


def warn_unsafe(path, func: str = "kdl.load") -> None:
    """Warns that ``path`` is loaded without kdl's checks (``safe_mode=False``)."""
    warnings.warn(
        f"{func} is loading {str(path)!r} with safe_mode=False: the file may "
        "import modules and run code it names. Only do this for files you trust.",
        UserWarning,
        stacklevel=3,
    )


def _check_entry(entry, where, allow, names, path, func):
    class_name = entry["class_name"]
    if not isinstance(class_name, str):
        _refuse(
            func,
            path,
            f"its config entry {where} has a class_name that is "
            f"not a string ({class_name!r}).",
        )
    module = entry.get("module")
    if class_name in _DATA_FIRST or (class_name in _LEGACY_DATA and not module):
        return
    if class_name == "__lambda__":
        _refuse(
            func,
            path,
            f"its config entry {where} is a Python lambda, whose "
            "code would run while loading.",
        )
    obj = resolve(entry, allow)
    if (obj is None or not allow.allowed(obj)) and allow.extend(entry):
        obj = resolve(entry, allow)
    if class_name == "Lambda" or obj is keras.layers.Lambda:
        _refuse(
            func,
            path,
            f"its config entry {where} is a Lambda layer, whose "
            "Python code would run while loading.",
        )
    if obj is None or not allow.allowed(obj):
        why = (
            "kdl does not import modules a file names"
            if obj is None
            else "it is not a tf_keras, kdl, TF-MOT or TF Privacy class or function"
        )
        _refuse(
            func,
            path,
            f"its config entry {where} names {describe(entry)}; "
            f"{why}, and it is not a registered custom object.",
        )
    if getattr(obj, "__name__", None) in _ALLOCATING_LAYERS and str(
        getattr(obj, "__module__", "")
    ).startswith("tf_keras."):
        _refuse(
            func,
            path,
            f"its config entry {where} is a {obj.__name__} layer, which "
            f"{_ALLOCATING_LAYERS[obj.__name__]}.",
        )
    kind = _safe_symbols.symbol_layer_kind(obj)
    if kind is not None:  # an allowed class whose arguments name code (issue 29)
        _safe_symbols.check_symbol_layer(kind, entry, where, names, path, func)


def _check_string(key, value, where, allow, path, func):
    """Refuses an unknown name where Keras deserializes a string by name."""
    kind = next((k for suffix, k in _STRING_KINDS if key.endswith(suffix)), None)
    if kind is None:
        return
    tables = keras_tables()
    known = tables["activations"] if kind == "activation" else tables["by_name"]
    if value in known:
        return
    found = allow.registered(value)
    if found and all(allow.allowed(obj) for obj in found):
        return
    _refuse(
        func,
        path,
        f"its config entry {where} names the {kind} {value!r}, "
        f"which is not a Keras {kind} name nor a registered custom object.",
    )


def check_config(
    config,
    *,
    custom_objects=None,
    more_objects=None,
    source="<config>",
    func: str = "kdl.load",
) -> None:
    """Refuses a parsed model configuration that names anything outside the allow-list.

    Args:
        config: dict or list. A parsed configuration (``config.json``,
            ``model_config``, ...).
        custom_objects: dict or None. Further allowed names (name -> object).
        more_objects: callable or None. ``more_objects(names)`` returns a dict
            of further allowed objects for an entry that is not allowed
            otherwise (``names``: JSON of its module, class_name and
            registered_name).
        source: str or Path. What the error calls the file.
        func: str. The public function named in the error.

    Raises:
        ValueError: naming the entry (a path such as
            ``config.layers[2].config.activation``), its module and class.
    """
    allow = AllowList(custom_objects, more_objects)
    _check_tree(config, "", allow, source, func)


def _layer_names(config) -> set:
    """Every layer name in ``config`` (what an inbound node may refer to)."""
    names = set()
    for node, _ in nodes(config, ""):
        if isinstance(node, dict) and "class_name" in node:
            inner = node.get("config")
            inner = inner.get("name") if isinstance(inner, dict) else None
            for name in (node.get("name"), inner):
                if isinstance(name, str):
                    names.add(name)
    return names


# Config arguments whose string value is a path Keras reads while loading
# (StringLookup / IntegerLookup / TextVectorization ``vocabulary``: an in-line
# list is data, a string is a file anywhere on disk).
_PATH_KEYS = frozenset({"vocabulary", "vocabulary_file", "vocab_file", "filepath"})
_PATH_SUFFIXES = ("_file", "_filename", "_path", "_dir")


def _check_paths(entry, where, path, func):
    """Refuses an entry whose config names a file Keras would read (issue 29)."""
    config = entry.get("config")
    if not isinstance(config, dict):
        return
    for key, value in config.items():
        if not (isinstance(key, str) and isinstance(value, str) and value):
            continue
        if key in _PATH_KEYS or key.endswith(_PATH_SUFFIXES):
            _refuse(
                func,
                path,
                f"its config entry {where} ({entry['class_name']!r} layer "
                f"{config.get('name')!r}) names the file {value!r} as its "
                f"{key!r} argument; Keras would read that file while loading "
                "(an in-line list is loaded safely).",
            )


# Counts of lookup/encoding layers that size what loading builds or predicting
# outputs (issue 29: num_oov_indices=2**26 made loading run for minutes).
MAX_COUNTS = {
    "num_oov_indices": 1000,
    "max_tokens": 10**6,
    "num_tokens": 10**6,
    "num_bins": 10**6,
}


def _check_counts(entry, where, path, func):
    """Refuses a layer config whose count argument is past :data:`MAX_COUNTS`."""
    config = entry.get("config")
    if not isinstance(config, dict):
        return
    for key, limit in MAX_COUNTS.items():
        value = config.get(key)
        if isinstance(value, (int, float)) and value > limit:
            _refuse(
                func,
                path,
                f"its config entry {where} ({entry['class_name']!r} layer "
                f"{config.get('name')!r}) sets {key!r} to {value!r} (at most "
                f"{limit:,}); loading or predicting would build that many.",
            )


def _check_tree(config, label, allow, path, func, names=frozenset()):
    names = _layer_names(config) | names
    for node, where in nodes(config, label):
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            _check_entry(node, where or "(the model)", allow, names, path, func)
            _check_paths(node, where or "(the model)", path, func)
            _check_counts(node, where or "(the model)", path, func)
        for key, value in node.items():
            if isinstance(value, str) and isinstance(key, str):
                sub = f"{where}.{key}" if where else key
                _check_string(key, value, sub, allow, path, func)


# === The two checks kdl.load runs ===


def check_model_file(
    path, *, custom_objects=None, more_objects=None, func: str = "kdl.load"
) -> None:
    """Refuses a model file that is not plain data, before Keras reads it.

    Reads the configuration (``config.json`` of a ``.keras`` zip, the
    ``model_config`` / ``training_config`` of an ``.h5`` file, the Keras
    metadata of a SavedModel) and the container, and imports nothing the file
    names. A ``.tflite`` file holds no Python names and passes; so does a
    SavedModel that Keras did not write.

    Args:
        path: str or Path. The model file or SavedModel folder.
        custom_objects: dict or None. Names (and objects) the caller allows on
            top of tf_keras' and kdl's own. Defaults to `None`.
        more_objects: callable or None. ``more_objects(names)`` returns a dict
            of further allowed objects; it is called only for an entry that is
            not allowed otherwise, with ``names`` the JSON text of that entry's
            module, class_name and registered_name (kdl.io passes the TF-MOT
            or TF Privacy classes they point to, which are slow to import).
            Defaults to `None`.
        func: str. The public function named in errors. Defaults to `"kdl.load"`.

    Raises:
        FileNotFoundError: if nothing exists at ``path``.
        ValueError: for an entry outside the allow-list (the message names the
            file, the entry's path in the configuration and its module and
            class, and how to load a trusted file), a ``Lambda`` layer, an
            unsafe or oversized archive entry, a tensor far larger than the
            file, or a corrupt file.

    Example:
        >>> check_model_file("model.keras")  # returns None or raises
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{func} found no file or folder at {str(path)!r}.")
    fmt = model_format(path)
    if fmt == "tflite":
        return
    if fmt != "savedmodel" and path.is_dir():
        _corrupt(func, path, fmt, "it is a folder, not a file.")
    configs, stored = read_configs(path, fmt, func)
    if not configs:
        return
    allow = AllowList(custom_objects, more_objects)
    # A SavedModel keeps each layer's config apart: an op layer's inbound
    # node names a layer of another entry (review of issue 29).
    names = set().union(*(_layer_names(config) for _, config in configs))
    for label, config in configs:
        _check_tree(config, label, allow, path, func, names)
    _check_claims(configs, stored, path, func)


def check_loaded(obj, path, func: str = "kdl.load"):
    """Returns ``obj`` if it is a Keras model or an object of kdl's own classes.

    A crafted ``.keras`` file can make tf_keras return any importable object
    (``subprocess.run`` named as the model was returned as is); kdl.load
    returns models only: a ``kdl.keras.Model``, or an object of a kdl class
    with a ``predict`` method (kdl.lite's TFLite model, kdl.io's
    ``SavedModelPredictor``).

    Raises:
        ValueError: for anything else (a function, a class, another object).
    """
    if isinstance(obj, keras.Model):
        return obj
    cls = type(obj)
    module = getattr(cls, "__module__", "") or ""
    is_kdl = module.split(".")[0] == "kdl" and not isinstance(obj, type)
    if is_kdl and callable(getattr(obj, "predict", None)):
        return obj  # kdl.lite's TFLite model, kdl.io's SavedModelPredictor
    what = getattr(obj, "__qualname__", None) or cls.__qualname__
    where = getattr(obj, "__module__", None) or module
    raise ValueError(
        f"{func} refused what {str(path)!r} loaded as: {where}.{what} "
        f"({cls.__name__}), not a Keras model. A model file must describe a "
        "model; this one names another object."
    )


def check_activations(model, path, func: str = "kdl.load") -> None:
    """Refuses a loaded model a layer of which outputs absurdly many values.

    Loading builds the model on symbolic tensors, so a layer such as
    ``RepeatVector(n=2**34)`` or ``tf.tile`` by ``2**34`` allocates nothing
    until the first ``predict``; this catches it before that, with the same
    per-example budget as an input (``MAX_INPUT_VALUES``).
    """
    if not isinstance(model, keras.Model):
        return
    _check_op_layers_traced(model, path, func)
    for layer in model.layers:
        try:
            outputs = tf.nest.flatten(layer.output)
        except (AttributeError, RuntimeError, ValueError):
            continue  # a layer called several times: its inputs were checked
        for tensor in outputs:
            dims = [d for d in getattr(tensor, "shape", [])[1:] if d]
            values = 1
            for d in dims:
                values *= int(d)
            if values > MAX_INPUT_VALUES:
                refuse(
                    func,
                    path,
                    f"its layer {layer.name!r} outputs a tensor of shape "
                    f"{tuple(tensor.shape)}: {values:,} values per example, more "
                    f"than {MAX_INPUT_VALUES:,}; predicting would allocate them.",
                )


def _check_op_layers_traced(model, path, func) -> None:
    """Refuses op layers that would compute more than MAX_INPUT_VALUES from one row.

    An op layer's output shape hides what it does to the batch dimension:
    ``tf.tile(x, [2**14, 2**14])`` on ``(None, 3)`` reports ``(None, 49152)``
    per example, yet allocates 3.2 GB for one row. Tracing the model on one
    example (a graph, nothing runs) gives every op's static shape. Only models
    with op layers are traced; a model that cannot be traced on one example
    is left to the per-layer check.
    """
    checked = {k for k, v in _safe_symbols.SYMBOL_LAYERS.items() if v == "checked"}
    if not any(
        _safe_symbols.symbol_layer_kind(type(layer)) in checked
        for layer in model.layers
    ):
        return
    specs = [tf.TensorSpec([1, *t.shape[1:]], t.dtype) for t in model.inputs]
    try:
        graph = (
            tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]))
            .get_concrete_function(*specs)
            .graph
        )
    except Exception:  # noqa: BLE001 - not traceable on one row: per-layer check
        return
    for op in graph.get_operations():
        for tensor in op.outputs:
            shape = tensor.shape
            if shape.rank is None or not shape.is_fully_defined():
                continue
            if shape.num_elements() > MAX_INPUT_VALUES:
                refuse(
                    func,
                    path,
                    f"its op {op.name!r} ({op.type}) computes a tensor of shape "
                    f"{shape.as_list()} from one example: {shape.num_elements():,} "
                    f"values, more than {MAX_INPUT_VALUES:,}; predicting would "
                    "allocate them.",
                )
