"""Model inputs and outputs as NumPy arrays, shared by both sides of kdl.

A leaf module on NumPy alone: the TensorFlow side (:mod:`kdl.export`,
:mod:`kdl.report`) and the device side (:mod:`kdl.lite`, which must run
without TensorFlow) turn user inputs into ``{input name: array}`` and score
predictions with the same code.

An input "spec" is a tuple ``(name, numpy dtype, shape without the batch
axis)``, with None for a dimension of any size.
"""

from __future__ import annotations

import re

import numpy as np

from kdl._validation import fail

__all__ = ["fail", "safe_name", "as_inputs", "take", "count", "metric_rows"]


def safe_name(name) -> str:
    """A signature-safe tensor name (letters, digits and underscores)."""
    name = re.sub(r"\W", "_", str(name))
    return name if re.match(r"[A-Za-z_]", name) else f"x_{name}"


def _values(specs, data, func: str, arg: str) -> list:
    """The user's data as one value per input, in the order of ``specs``."""
    names = [name for name, _, _ in specs]
    if isinstance(data, dict):
        keys = {safe_name(k): k for k in data}
        if sorted(keys) != sorted(names):
            fail(func, arg, f"a dict with keys {names}", sorted(data))
        return [data[keys[name]] for name in names]
    if isinstance(data, (list, tuple)) and len(specs) > 1:
        if len(data) != len(specs):
            fail(
                func,
                arg,
                f"a list of {len(specs)} arrays, one per input {names}",
                f"{len(data)} items",
            )
        return list(data)
    if len(specs) > 1:
        fail(
            func,
            arg,
            f"a list or dict of {len(specs)} arrays (inputs {names})",
            type(data).__name__,
            error=TypeError,
        )
    return [data]


def _shape_text(shape) -> str:
    return "(n, " + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _array(spec, value, func: str, arg: str) -> np.ndarray:
    """One input checked against its spec and cast to its dtype."""
    name, dtype, shape = spec
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = None
    if (
        array is None
        or array.dtype == object
        or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool)
    ):
        fail(
            func,
            arg,
            f"numeric arrays (input {name!r} takes {np.dtype(dtype).name})",
            type(value).__name__,
            error=TypeError,
        )
    if array.ndim != len(shape) + 1 or any(
        d is not None and d != a for d, a in zip(shape, array.shape[1:])
    ):
        fail(
            func,
            arg,
            f"an array of shape {_shape_text(shape)} for input {name!r}",
            f"an array of shape {array.shape}",
        )
    if (
        np.issubdtype(dtype, np.integer)
        and np.issubdtype(array.dtype, np.floating)
        and not np.all(np.mod(array, 1) == 0)
    ):
        fail(
            func,
            arg,
            f"whole numbers for input {name!r} ({np.dtype(dtype).name}, e.g. "
            "token ids)",
            f"an array of {array.dtype} with fractions",
        )
    return array.astype(dtype, copy=False)


def as_inputs(specs, data, func: str, arg: str) -> dict[str, np.ndarray]:
    """Turns an array, a list of arrays or a dict into ``{input name: array}``.

    Args:
        specs: list of (name, dtype, shape without batch) tuples, in the
            model's input order.
        data: one array (single-input models), a list in input order, or a
            dict by input name.
        func: str. The public function, for error messages.
        arg: str. The argument name, for error messages.

    Returns:
        dict: input name -> array of the input's dtype.

    Raises:
        TypeError: for data that is not numeric, or not a list or dict for a
            model with several inputs.
        ValueError: for a wrong shape (naming the input and the shape it
            takes), different numbers of examples, or fractions given to an
            integer input.
    """
    out, size = {}, None
    for spec, value in zip(specs, _values(specs, data, func, arg)):
        array = _array(spec, value, func, arg)
        if len(array) == 0 or (size is not None and len(array) != size):
            fail(
                func,
                arg,
                "arrays with the same number (>= 1) of examples",
                f"an array of shape {array.shape}",
            )
        size = len(array)
        out[spec[0]] = array
    return out


def take(inputs: dict, limit: int) -> dict:
    """The first ``limit`` examples of every input."""
    return {name: value[:limit] for name, value in inputs.items()}


def count(inputs: dict) -> int:
    """The number of examples in ``{name: array}``."""
    return len(next(iter(inputs.values())))


def metric_rows(kind: str, predictions, labels) -> dict[str, float]:
    """{metric: value} of one output: accuracy, or mae and mse for regression.

    For token sequences (classification outputs of rank 3), label 0 is
    padding and is skipped.
    """
    predictions = np.asarray(predictions, "float32")
    labels = np.asarray(labels)
    if kind == "classification" and predictions.shape[-1] > 1:
        if labels.shape == predictions.shape:  # one-hot labels
            labels = labels.argmax(-1)
        labels = labels.reshape(predictions.shape[:-1])
        hits = predictions.argmax(-1) == labels
        if predictions.ndim > 2:
            hits = hits[labels != 0]
        return {"accuracy": float(np.mean(hits))}
    labels = labels.reshape(predictions.shape).astype("float32")
    if kind in ("classification", "binary"):
        return {"accuracy": float(np.mean((predictions > 0.5) == (labels > 0.5)))}
    error = predictions - labels
    return {"mae": float(np.mean(np.abs(error))), "mse": float(np.mean(error**2))}
