"""What a saved configuration names, found without importing anything.

Split from :mod:`kdl._safe_load` (issue 27: no module over 600 lines): the
tables of tf_keras' own objects by name, the caller's allowed objects
(:class:`AllowList`) and :func:`resolve`, which mirrors tf_keras' lookup of a
``{"module": ..., "class_name": ...}`` entry without ever importing a module.
"""

from __future__ import annotations

import inspect
import json
import sys

from kdl.backend import keras

__all__ = ["AllowList", "describe", "keras_tables", "resolve"]

_NOT_OBJECTS = ("get", "serialize", "deserialize")


# === Keras' own objects, found without importing anything ===


def _by_name() -> dict:
    """Name -> object for what tf_keras' deserializers find by name."""
    src = keras.src
    src.layers.serialization.populate_deserializable_objects()
    src.initializers.populate_deserializable_objects()
    by_name = dict(src.layers.serialization.LOCAL.ALL_OBJECTS)
    by_name.update(src.initializers.LOCAL.ALL_OBJECTS)
    modules = (
        src.activations,
        src.losses,
        src.metrics,
        src.regularizers,
        src.constraints,
        keras.optimizers,
        keras.optimizers.legacy,
        keras.optimizers.schedules,
        keras.mixed_precision,
    )
    for module in modules:
        for name, obj in vars(module).items():
            if name.startswith("_") or name in _NOT_OBJECTS:
                continue
            if isinstance(obj, type) or (
                callable(obj) and getattr(obj, "__module__", "") == module.__name__
            ):
                by_name.setdefault(name, obj)
    by_name.update(
        Functional=src.engine.functional.Functional,
        Sequential=keras.Sequential,
        Model=keras.Model,
    )
    return by_name


def keras_tables():
    """What tf_keras deserializes by name, its base classes, activation names."""
    if "by_name" in _TABLES:
        return _TABLES
    by_name = _by_name()
    activations = keras.src.activations
    _TABLES["activations"] = frozenset(
        name
        for name, obj in vars(activations).items()
        if callable(obj)
        and not isinstance(obj, type)
        # tf_keras also takes TensorFlow's own math by these names
        # (leaky_relu, relu6, silu, log_softmax from tf.nn).
        and (
            getattr(obj, "__module__", "") == activations.__name__
            or getattr(obj, "__module__", "").startswith("tensorflow.python.ops.nn_")
        )
        and name not in _NOT_OBJECTS
        and not name.startswith("_")
    )
    _TABLES["bases"] = (
        keras.layers.Layer,
        keras.losses.Loss,
        keras.metrics.Metric,
        keras.optimizers.Optimizer,
        keras.optimizers.legacy.Optimizer,
        keras.optimizers.schedules.LearningRateSchedule,
        keras.initializers.Initializer,
        keras.regularizers.Regularizer,
        keras.constraints.Constraint,
        keras.mixed_precision.Policy,
    )
    _TABLES["ids"] = {id(obj) for obj in by_name.values()}
    _TABLES["by_name"] = by_name  # set last: a filled table is a complete one
    return _TABLES


_TABLES: dict = {}


def _is_native(obj) -> bool:
    """True for tf_keras' own classes and functions that configs may name."""
    tables = keras_tables()
    if obj is keras.layers.Lambda:
        return False
    if id(obj) in tables["ids"]:
        return True
    module = getattr(obj, "__module__", "") or ""
    if not module.startswith("tf_keras."):
        return False
    if isinstance(obj, type):
        return issubclass(obj, tables["bases"])
    name = getattr(obj, "__name__", "")
    kinds = ("tf_keras.src.activations", "tf_keras.src.losses", "tf_keras.src.metrics")
    return callable(obj) and module.startswith(kinds) and name not in _NOT_OBJECTS


def _symbol(api_name):
    """The tf_keras public symbol ``api_name`` (``keras.layers.Dense``), or None."""
    if "__internal__.legacy" in api_name:
        api_name = "compat.v1." + api_name
    tf_export = keras.src.saving.serialization_lib.tf_export
    return tf_export.get_symbol_from_name(api_name)


# === What an entry names, found without importing anything ===


def _registries() -> tuple:
    """Keras' global registry and the active ``custom_object_scope`` objects."""
    scoped = keras.src.saving.object_registration._THREAD_LOCAL_CUSTOM_OBJECTS
    return keras.saving.get_custom_objects(), dict(vars(scoped))


class AllowList:
    """The objects a configuration may name: Keras', kdl's and the caller's.

    The caller's objects are those in ``custom_objects``, and those its own
    code registered (``keras.saving.register_keras_serializable`` or an active
    ``custom_object_scope``): a file can only name what is already
    registered, and classes must be Keras layers, losses, metrics, ...

    ``more_objects(names)`` is called only for an entry that is not allowed
    otherwise, with ``names`` a short JSON text of that entry's ``module``,
    ``class_name`` and ``registered_name``; it returns a dict of further
    allowed objects. kdl.io passes the classes of kdl.compression (TF-MOT) or
    kdl.privacy (TF Privacy) that the names point to: those libraries are
    slow to import, so each is imported only for a file that needs it.
    """

    def __init__(self, custom_objects, more_objects):
        import kdl.augment  # noqa: F401  (registers kdl's own layers)

        self.custom = dict(custom_objects or {})
        self.more = more_objects
        self.asked = set()
        self.trusted = {id(obj) for obj in self.custom.values()}
        self._add_registered()

    def _add_registered(self):
        bases = keras_tables()["bases"]
        for registry in _registries():
            for obj in registry.values():
                keras_class = isinstance(obj, type) and issubclass(obj, bases)
                if keras_class or inspect.isfunction(obj):
                    self.trusted.add(id(obj))

    def extend(self, entry) -> bool:
        """Adds what ``more_objects`` gives for ``entry``; False if not asked."""
        keys = ("module", "class_name", "registered_name")
        names = json.dumps({key: entry.get(key) for key in keys}, default=str)
        if self.more is None or names in self.asked:
            return False
        self.asked.add(names)
        extra = dict(self.more(names) or {})
        self.custom = {**extra, **self.custom}
        self.trusted.update(id(obj) for obj in extra.values())
        self._add_registered()
        return True

    def allowed(self, obj) -> bool:
        return id(obj) in self.trusted or _is_native(obj)

    def registered(self, key) -> list:
        """Every object a loader may find under ``key`` in custom objects."""
        if not isinstance(key, str):
            return []
        found = [self.custom[key]] if key in self.custom else []
        found += [reg[key] for reg in _registries() if key in reg]
        return found


def _entry_name(entry):
    class_name = entry["class_name"]
    if class_name == "function":
        return entry.get("config")
    if class_name == "__typespec__":
        return entry.get("spec_name")
    return class_name


def resolve(entry, allow):
    """The object a Keras loader would take for ``entry``, or None.

    Mirrors tf_keras' ``_retrieve_class_or_fn`` (registered objects first, then
    the public Keras API, then the module) and the legacy loaders (lookup by
    class name), but never imports: a module that is not imported yet is a
    module the file chose, and the entry is refused.
    """
    name = _entry_name(entry)
    if not isinstance(name, str):
        return None
    class_name = entry["class_name"]
    module = entry.get("module")
    is_function = class_name == "function"
    keys = {name, class_name, entry.get("registered_name")}
    found = [obj for key in keys for obj in allow.registered(key)]
    refused = [obj for obj in found if not allow.allowed(obj)]
    if refused:  # whichever key a loader uses, each object must be allowed
        return refused[0]
    if module:
        # The one key tf_keras looks up before importing ``module``: the
        # function's name, or the registered name (None when the file says so).
        key = name if is_function else entry.get("registered_name", class_name)
        found = allow.registered(key)
        if found:
            return found[0]
        return _from_module(name, entry.get("registered_name"), module, is_function)
    if found:
        return found[0]
    by_name = keras_tables()["by_name"]
    return by_name.get(name) or by_name.get(name.removeprefix("Custom>"))


def _from_module(name, registered, module, is_function):
    if not isinstance(module, str):
        return None
    if module in ("tf_keras", "keras") or module.startswith(("keras.", "tf_keras.")):
        obj = _symbol(f"{module}.{name}")
        if obj is not None:
            return obj
    if is_function and module == "builtins":
        for sub in keras.src.saving.serialization_lib.BUILTIN_MODULES:
            obj = _symbol(f"keras.{sub}.{name}")
            if obj is not None:
                return obj
    if module.startswith("keras"):
        module = "tf_" + module
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    if namespace is None:  # Keras would import it: never done here
        return None
    obj = namespace.get(name)
    if obj is None and isinstance(registered, str):
        obj = namespace.get(registered)
    if obj is None and name.count(".") == 1:
        outer, inner = name.split(".")
        obj = getattr(namespace.get(outer), inner, None)
    return obj


def describe(entry):
    name = _entry_name(entry)
    kind = "function" if entry["class_name"] == "function" else "class"
    text = f"the {kind} {name!r}"
    if entry.get("module"):
        text += f" of module {entry['module']!r}"
    registered = entry.get("registered_name")
    if registered and registered != name:
        text += f" (registered name {registered!r})"
    return text
