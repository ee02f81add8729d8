"""Argument checks shared by every public function.

Every message has one format, after scikit-learn::

    The 'units' parameter of build_gru must be a positive int. Got -3 instead.

``ValueError`` for a bad value, ``TypeError`` for a wrong type. Checks run
before any layer is built or any file is written.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

from kdl.backend import keras, require_keras2

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
]


def _got(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
    requirement = (
        f"a tuple of ints >= {min_value}"
        + (f" with at least {min_len} item(s)" if min_len else "")
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
        keras.activations.get(value)
    except (ValueError, TypeError):
        fail(func, arg, "an activation known to Keras, e.g. 'relu'", value)
    return value


def check_keras2(value, arg: str, func: str) -> None:
    """TypeError when ``value`` is a Keras 3 object instead of a kdl.keras one."""
    require_keras2(value, arg, func)


def check_keras_model(model, arg: str, func: str):
    """Checks a tf_keras model (and rejects Keras 3 models with a clear TypeError)."""
    require_keras2(model, arg, func)
    if not isinstance(model, keras.Model):
        fail(func, arg, "a kdl.keras.Model", model, error=TypeError)
    return model
