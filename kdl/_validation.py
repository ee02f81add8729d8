"""Argument checks shared by every public function.

This module imports neither TensorFlow nor Keras at import time (the ``kdl``
command checks its arguments before TensorFlow loads; ``kdl.lite`` runs on
devices without it): the checks that need them import ``kdl.backend`` inside.

Every message has one format, after scikit-learn::

    The 'units' parameter of build_gru must be a positive int. Got -3 instead.

``ValueError`` for a bad value, ``TypeError`` for a wrong type. Checks run
before any layer is built or any file is written.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "fail",
    "check_bool",
    "check_int",
    "check_float",
    "check_fraction",
    "check_choice",
    "check_str",
    "check_int_tuple",
    "check_input_shape",
    "check_activation",
    "check_keras_model",
    "check_keras2",
    "check_verbose",
    "check_path",
    "check_data",
    "check_targets",
    "DataInfo",
]


def _got(value) -> str:
    text = repr(value)
    if len(text) <= 120:
        return text
    # Keep both ends: a long path's file name is at its end.
    return text[:58] + "..." + text[-59:]


def fail(func: str, arg: str, requirement: str, value, *, error=ValueError):
    """Raises ``error`` with kdl's single message format."""
    raise error(
        f"The '{arg}' parameter of {func} must be {requirement}. "
        f"Got {_got(value)} instead."
    )


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_bool(value, arg: str, func: str) -> bool:
    if not isinstance(value, bool):
        fail(func, arg, "a bool", value, error=TypeError)
    return value


def check_int(
    value, arg: str, func: str, *, min_value: int | None = 1, allow_none=False
) -> int | None:
    """Checks an int, by default a positive one (``min_value=1``)."""
    if value is None and allow_none:
        return None
    if min_value == 1:
        requirement = "a positive int"
    elif min_value == 0:
        requirement = "a non-negative int"
    elif min_value is None:
        requirement = "an int"
    else:
        requirement = f"an int >= {min_value}"
    if allow_none:
        requirement += " or None"
    if not _is_int(value):
        fail(func, arg, requirement, value, error=TypeError)
    if min_value is not None and value < min_value:
        fail(func, arg, requirement, value)
    return int(value)


def check_float(
    value,
    arg: str,
    func: str,
    *,
    min_value: float | None = 0.0,
    max_value: float | None = None,
    strict_min: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Checks a real number within optional bounds (non-negative by default)."""
    if value is None and allow_none:
        return None
    parts = []
    if min_value is not None:
        parts.append(f"{'>' if strict_min else '>='} {min_value}")
    if max_value is not None:
        parts.append(f"<= {max_value}")
    requirement = "a number" + (" " + " and ".join(parts) if parts else "")
    if allow_none:
        requirement += " or None"
    if not _is_real(value):
        fail(func, arg, requirement, value, error=TypeError)
    value = float(value)
    if value != value:  # NaN
        fail(func, arg, requirement, value)
    if min_value is not None and (
        value < min_value or (strict_min and value == min_value)
    ):
        fail(func, arg, requirement, value)
    if max_value is not None and value > max_value:
        fail(func, arg, requirement, value)
    return value


def check_fraction(value, arg: str, func: str, *, allow_one=False) -> float:
    """Checks a rate in [0, 1) (or [0, 1] with ``allow_one``)."""
    upper = "1]" if allow_one else "1)"
    requirement = f"a number in [0, {upper}"
    if not _is_real(value):
        fail(func, arg, requirement, value, error=TypeError)
    value = float(value)
    if not (0.0 <= value < 1.0 or (allow_one and value == 1.0)):
        fail(func, arg, requirement, value)
    return value


def check_str(value, arg: str, func: str, *, allow_none=False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        fail(func, arg, "a non-empty str", value, error=TypeError)
    return value


def check_choice(value, arg: str, func: str, options: Iterable[str]) -> str:
    """Checks that ``value`` is one of the string ``options``."""
    options = tuple(options)
    requirement = "one of " + ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        fail(func, arg, requirement, value, error=TypeError)
    if value not in options:
        fail(func, arg, requirement, value)
    return value


def check_int_tuple(
    value, arg: str, func: str, *, min_len: int = 1, min_value: int = 1
) -> tuple[int, ...]:
    """Checks a sequence of positive ints (a single int is accepted too)."""
    given = value
    if _is_int(value):
        value = (value,)
    requirement = f"a tuple of ints >= {min_value}" + (
        f" with at least {min_len} item(s)" if min_len else ""
    )
    if not isinstance(value, Sequence) or isinstance(value, str):
        fail(func, arg, requirement, given, error=TypeError)
    if any(not _is_int(v) for v in value):
        fail(func, arg, requirement, given, error=TypeError)
    if len(value) < min_len or any(v < min_value for v in value):
        fail(func, arg, requirement, given)
    return tuple(int(v) for v in value)


def check_input_shape(
    value, arg: str, func: str, *, ranks: Sequence[int], allow_none_dims=False
) -> tuple:
    """Checks a per-example input shape (no batch axis) of an allowed rank."""
    if _is_int(value):
        value = (value,)
    ranks = tuple(ranks)
    names = {1: "(features,)", 2: "(steps, features)", 3: "(height, width, channels)"}
    requirement = "a shape " + " or ".join(names.get(r, f"of rank {r}") for r in ranks)
    if not isinstance(value, Sequence) or isinstance(value, str):
        fail(func, arg, requirement, value, error=TypeError)
    if len(value) not in ranks:
        fail(func, arg, requirement, value)
    for dim in value:
        if dim is None and allow_none_dims:
            continue
        if not _is_int(dim):
            fail(func, arg, requirement + " of positive ints", value, error=TypeError)
        if dim < 1:
            fail(func, arg, requirement + " of positive ints", value)
    return tuple(None if d is None else int(d) for d in value)


def check_activation(value, arg: str, func: str) -> str:
    """Checks an activation name known to Keras (or a callable)."""
    if callable(value):
        return value
    if not isinstance(value, str):
        fail(func, arg, "an activation name or callable", value, error=TypeError)
    try:
        from kdl.backend import keras

        keras.activations.get(value)
    except (ValueError, TypeError):
        fail(func, arg, "an activation known to Keras, e.g. 'relu'", value)
    return value


def check_keras2(value, arg: str, func: str) -> None:
    """TypeError when ``value`` is a Keras 3 object instead of a kdl.keras one."""
    from kdl.backend import require_keras2

    require_keras2(value, arg, func)


def check_keras_model(model, arg: str, func: str):
    """Checks a tf_keras model (and rejects Keras 3 models with a clear TypeError)."""
    from kdl.backend import keras, require_keras2

    require_keras2(model, arg, func)
    if not isinstance(model, keras.Model):
        fail(func, arg, "a kdl.keras.Model", model, error=TypeError)
    return model


def check_verbose(value, func: str, *, arg: str = "verbose") -> int:
    """Checks a Keras-style verbosity: 0 (silent), 1 or 2 (a bool counts as 0/1)."""
    if isinstance(value, bool):
        return int(value)
    if not _is_int(value):
        fail(func, arg, "0, 1 or 2", value, error=TypeError)
    if value not in (0, 1, 2):
        fail(func, arg, "0, 1 or 2", value)
    return int(value)


def check_path(
    value,
    arg: str,
    func: str,
    *,
    suffixes: Iterable[str] | None = None,
    must_exist: bool = False,
) -> Path:
    """Checks a file or folder path (a non-empty str or PathLike); returns a Path.

    Args:
        suffixes: the allowed suffixes (lower case, with the dot), or None.
        must_exist: raise ``FileNotFoundError`` when nothing is at the path.
    """
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        fail(func, arg, "a non-empty path (str or PathLike)", value, error=TypeError)
    path = Path(value)
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            fail(func, arg, "a path ending in " + " or ".join(suffixes), str(path))
    if must_exist and not path.exists():
        fail(
            func, arg, "an existing file or folder", str(path), error=FileNotFoundError
        )
    return path


# === Training data ===========================================================


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What :func:`check_data` learned about the training data.

    Attributes:
        num_examples: int or None. Training examples (None for a tf.data input).
        is_dataset: bool. ``x`` is a ``tf.data.Dataset``.
        validation_data: None, a ``tf.data.Dataset``, or a tuple
            ``(x_val, y_val)`` / ``(x_val, y_val, sample_weight)``.
        x_leaves: list. The arrays of ``x`` ([] for a dataset).
        y_leaves: list. The arrays of ``y`` ([] when there is none).
    """

    num_examples: int | None
    is_dataset: bool
    validation_data: object
    x_leaves: list
    y_leaves: list


_ARRAYS = (
    "a NumPy array (or a list, tuple or dict of arrays), a tf.Tensor or a "
    "tf.data.Dataset"
)


def _is_dataset(value) -> bool:
    """A ``tf.data.Dataset`` (never true before TensorFlow is imported)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


def _flatten(data) -> list:
    # tf.nest.flatten's order (dict keys sorted), without importing TensorFlow.
    if isinstance(data, Mapping):
        return [leaf for key in sorted(data) for leaf in _flatten(data[key])]
    if isinstance(data, (list, tuple)):
        return [leaf for item in data for leaf in _flatten(item)]
    return [data]


def _leaves(data) -> list:
    """The arrays of ``data``: one array, or a list/tuple/dict of arrays."""
    if isinstance(data, (Mapping, list, tuple)):
        leaves = _flatten(data)
        if leaves and all(np.ndim(leaf) > 0 for leaf in leaves):
            return leaves
    return [data]


def _num_examples(data, arg: str, func: str) -> tuple[int, list]:
    """The common length of the arrays in ``data`` and the arrays."""
    leaves = _leaves(data)
    for leaf in leaves:
        array_like = hasattr(leaf, "__len__") or hasattr(leaf, "shape")
        if isinstance(leaf, (str, bytes)) or not array_like:
            fail(func, arg, _ARRAYS, data, error=TypeError)
        if np.ndim(leaf) == 0:
            fail(func, arg, "an array with a batch axis, not a scalar", data)
    lengths = sorted({int(np.shape(leaf)[0]) for leaf in leaves})
    if len(lengths) > 1:
        fail(func, arg, "arrays of one length", f"lengths {lengths}")
    if lengths[0] == 0:
        fail(func, arg, "a non-empty array", "0 examples")
    return lengths[0], leaves


def _check_same_length(n: int, data, arg: str, of: str, func: str) -> list:
    m, leaves = _num_examples(data, arg, func)
    if m != n:
        fail(func, arg, f"as long as {of} ({n} examples)", f"{m} examples")
    return leaves


def _check_validation(validation_data, validation_split, func: str):
    if validation_data is None:
        return None
    if validation_split:
        fail(
            func,
            "validation_split",
            "0.0 when validation_data is given",
            validation_split,
        )
    if _is_dataset(validation_data):
        return validation_data
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (
        2,
        3,
    ):
        fail(
            func,
            "validation_data",
            "a tuple (x_val, y_val), (x_val, y_val, "
            "sample_weight) or a tf.data.Dataset",
            validation_data,
            error=TypeError,
        )
    n, _ = _num_examples(validation_data[0], "validation_data", func)
    for part in validation_data[1:]:
        _check_same_length(n, part, "validation_data", "its x", func)
    return tuple(validation_data)


def check_data(
    func: str,
    x,
    y=None,
    *,
    validation_data=None,
    validation_split: float = 0.0,
    y_required: bool = True,
) -> DataInfo:
    """The one check of training data, shared by every entry point that trains.

    ``x`` is an array, a list/tuple/dict of arrays, a ``tf.Tensor`` or a
    ``tf.data.Dataset`` yielding ``(x, y)`` (then ``y`` must be None and
    ``validation_split`` 0). ``y`` has as many examples as ``x``.
    ``validation_data`` is ``(x_val, y_val)``, ``(x_val, y_val, weights)`` or
    a dataset, and excludes ``validation_split``.

    Returns:
        DataInfo.
    """
    if x is None:
        fail(func, "x", _ARRAYS, x, error=TypeError)
    split = check_fraction(validation_split, "validation_split", func)
    if _is_dataset(x):
        if y is not None:
            fail(
                func,
                "y",
                "None when x is a tf.data.Dataset (the dataset yields (x, y) pairs)",
                type(y).__name__,
            )
        if split:
            fail(
                func,
                "validation_split",
                "0.0 when x is a tf.data.Dataset (pass validation_data instead)",
                validation_split,
            )
        validation = _check_validation(validation_data, split, func)
        return DataInfo(None, True, validation, [], [])
    n, x_leaves = _num_examples(x, "x", func)
    y_leaves = []
    if y is None and y_required:
        fail(
            func,
            "y",
            "the targets (an array, or a dict of arrays for a multi-output model)",
            y,
            error=TypeError,
        )
    if y is not None:
        y_leaves = _check_same_length(n, y, "y", "x", func)
    if split and n * split < 1:
        fail(
            func,
            "validation_split",
            f"large enough to hold one of the {n} examples",
            validation_split,
        )
    validation = _check_validation(validation_data, split, func)
    return DataInfo(n, False, validation, x_leaves, y_leaves)


_LABEL_HINT = (
    "kdl.datasets.load(..., target=...) encodes labels as 0..K-1 and keeps their "
    "names in .classes"
)


def _found(labels: np.ndarray) -> str:
    values = np.unique(labels)
    shown = ", ".join(repr(x.item() if hasattr(x, "item") else x) for x in values[:8])
    return f"labels [{shown}{', ...' if len(values) > 8 else ''}]"


def check_targets(func: str, y, *, task: str, num_classes: int | None, arg="y"):
    """Checks class targets before any work (arrays only; datasets pass).

    For ``task="classification"`` the labels must be integers in
    ``0..num_classes-1`` (strings, floats such as 0.5 and 1..K labels are
    refused with a pointer to :func:`kdl.datasets.load`); for
    ``task="binary"`` they must lie in [0, 1]. Regression targets pass.
    """
    if task not in ("classification", "binary") or y is None:
        return y
    if _is_dataset(y):
        return y
    labels = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if labels.dtype.kind in "OUS":
        fail(
            func,
            arg,
            "integer class labels 0..K-1 (" + _LABEL_HINT + ")",
            _found(labels),
        )
    if task == "binary":
        if labels.size and (labels.min() < 0 or labels.max() > 1):
            fail(
                func,
                arg,
                "binary targets in [0, 1] (" + _LABEL_HINT + ")",
                _found(labels),
            )
        return y
    _check_class_labels(func, arg, labels, num_classes)
    return y


def _check_class_labels(func, arg, labels, num_classes) -> None:
    flat = labels.reshape(-1) if labels.ndim <= 1 or labels.shape[-1] == 1 else None
    if flat is None:
        fail(
            func,
            arg,
            "one integer class label per example (shape (n,) or "
            "(n, 1)), not one-hot rows",
            f"shape {labels.shape}",
        )
    if flat.dtype.kind == "f" and not np.all(
        np.isfinite(flat) & (flat == np.round(flat))
    ):
        fail(
            func, arg, "integer class labels 0..K-1 (" + _LABEL_HINT + ")", _found(flat)
        )
    if flat.size == 0:
        return
    low, high = flat.min(), flat.max()
    limit = f"0..{num_classes - 1}" if num_classes else "0..K-1"
    # Without a model to ask, labels that never use 0 (UCI's 1..K) would give a
    # class that does not exist: refuse them too.
    unknown_start = num_classes is None and low > 0
    if low < 0 or unknown_start or (num_classes is not None and high >= num_classes):
        model = f" for a model with {num_classes} classes" if num_classes else ""
        fail(func, arg, f"class labels in {limit}{model} ({_LABEL_HINT})", _found(flat))
