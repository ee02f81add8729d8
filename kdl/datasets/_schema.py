"""What data a model reads, kept beside the model file as JSON.

``write_schema("wine.keras", data.schema)`` writes ``wine.keras.data.json``
(atomically, through ``kdl._files``): the source's kind, the columns and their
encoding, the class names in label order, the task, the window of a series,
the image size. ``kdl predict``, ``kdl evaluate`` and ``kdl export`` read it
back with :func:`read_schema` to encode new data the same way and to name
classes, and refuse data that does not match with :func:`check_compatible`.
A sidecar file rather than Keras model metadata, because one format serves
``.keras``, ``.h5``, SavedModel folders and ``.tflite`` files alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from kdl import _files
from kdl import _validation as v
from kdl.datasets import _table

__all__ = [
    "SCHEMA_SUFFIX",
    "schema_path",
    "write_schema",
    "read_schema",
    "describe",
    "check_compatible",
    "check_fits",
]

SCHEMA_SUFFIX = ".data.json"


def schema_path(model_path) -> Path:
    """The sidecar of a model: ``<model path>.data.json`` beside it."""
    path = Path(model_path)
    return path.with_name(path.name.rstrip("/") + SCHEMA_SUFFIX)


def write_schema(model_path, schema: dict) -> Path:
    """Writes ``schema`` (a ``Data.schema``) beside the model at ``model_path``.

    Args:
        model_path: str or PathLike. The saved model file or folder.
        schema: dict. ``data.schema`` from :func:`kdl.datasets.load`, to which
            you may add keys of your own (e.g. "epsilon").

    Returns:
        The sidecar's path.

    Example:
        >>> write_schema("wine.keras", data.schema)  # doctest: +SKIP
        PosixPath('wine.keras.data.json')
    """
    func = "kdl.datasets.write_schema"
    if not isinstance(model_path, (str, os.PathLike)) or not str(model_path):
        v.fail(func, "model_path", "a str or PathLike", model_path, error=TypeError)
    if not isinstance(schema, dict) or "kind" not in schema:
        v.fail(
            func,
            "schema",
            "the .schema dict of a kdl.datasets.load result",
            schema,
            error=TypeError,
        )
    return _files.write_json(schema_path(model_path), schema)


def read_schema(model_path) -> dict | None:
    """The schema saved beside a model, or None when it has none."""
    return _files.read_json(schema_path(model_path))


def describe(schema: dict) -> str:
    """One phrase saying what data a schema describes."""
    parts = [schema.get("kind", "data")]
    names = schema.get("feature_names")
    if names:
        parts.append(f"{len(names)} features")
    elif schema.get("input_shape"):
        parts.append(f"inputs of shape {tuple(schema['input_shape'])}")
    task = schema.get("task")
    if task:
        classes = schema.get("classes")
        parts.append(f"{task} into {len(classes)} classes" if classes else task)
    return f"{schema.get('source', 'data')} ({', '.join(parts)})"


def _differences(expected: dict, given: dict) -> list:
    found = []
    if expected.get("kind") != given.get("kind"):
        found.append(f"it is {given.get('kind')} data, not {expected.get('kind')}")
    for key in ("task", "feature_names", "input_shape", "window", "horizon"):
        a, b = expected.get(key), given.get(key)
        if a is not None and b is not None and list(_listed(a)) != list(_listed(b)):
            found.append(
                f"its {key.replace('_', ' ')} {_short(b)} differ from {_short(a)}"
                if key != "task"
                else f"its task is {b!r}, not {a!r}"
            )
    a, b = expected.get("classes"), given.get("classes")
    if (
        a is not None
        and b is not None
        and ([_table.class_key(c) for c in a] != [_table.class_key(c) for c in b])
    ):
        found.append(f"its classes {_short(b)} differ from {_short(a)}")
    return found


def _listed(value):
    return value if isinstance(value, (list, tuple)) else [value]


def _short(value) -> str:
    value = list(_listed(value))
    return repr(value if len(value) <= 6 else value[:6] + ["..."])


def check_compatible(expected: dict, given, func: str, *, arg: str = "data") -> None:
    """Refuses data unlike the data a model was trained on.

    Args:
        expected: dict. The model's schema (see :func:`read_schema`).
        given: dict or Data. The schema of the data at hand, or the data.
        func: str. The public function or command, for the message.
        arg: str. The argument that gave the data, for the message.
            Defaults to `"data"`.

    Raises:
        ValueError: naming what differs: kind, task, features, shape, classes.
    """
    given = getattr(given, "schema", given)
    found = _differences(expected, given)
    if found:
        v.fail(
            func,
            "data",
            f"data like the model's training data, "
            f"{describe(expected)}; {'; '.join(found)}",
            describe(given),
        )


def check_fits(
    data, input_shape, num_outputs: int, func: str, *, model: str = "the model"
) -> None:
    """Refuses data whose example shape or classes the model cannot take.

    Args:
        data: Data. From :func:`kdl.datasets.load`.
        input_shape: tuple. The model's input shape without the batch axis
            (None for a free dimension).
        num_outputs: int. The model's output units.
        func: str. For the message.
        model: str. How to name the model in the message.

    Raises:
        ValueError: when the shapes or the number of classes differ.
    """
    shape = tuple(data.input_shape)
    wanted = tuple(input_shape)
    fits = len(shape) == len(wanted) and all(
        w is None or w == s for w, s in zip(wanted, shape)
    )
    if not fits:
        v.fail(
            func,
            "data",
            f"examples of shape {wanted} as {model} takes",
            f"{describe(data.schema)} with examples of shape {shape}",
        )
    outputs = data.num_outputs if data.task != "binary" else 1
    if data.task == "binary" and num_outputs == 2:
        return  # two softmax outputs for two classes
    if outputs != num_outputs:
        v.fail(
            func,
            "data",
            f"{num_outputs} classes or targets as {model} predicts",
            f"{describe(data.schema)} with {outputs}",
        )
