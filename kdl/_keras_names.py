"""Keras' names and habits where kdl passes a value on (issue 31).

Shared by kdl.train, kdl.tune, the compression transforms, the builders and
kdl.load: the old kdl name of an argument that now has Keras' (or
KerasTuner's) name keeps working for one release with a DeprecationWarning;
``fit`` keyword arguments kdl does not own pass through to ``fit``; the
user's callbacks are checked once, the same way everywhere.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence

from kdl import _validation as v

__all__ = ["UNSET", "renamed", "check_callbacks", "check_fit_kwargs"]


class _Unset:
    """The default of a deprecated keyword: "not given" (None may be a value)."""

    def __repr__(self) -> str:
        return "<not given>"


UNSET = _Unset()


def renamed(
    func: str,
    old: str,
    new: str,
    old_value,
    new_value,
    default,
    *,
    note: str = "the Keras name",
):
    """The value of ``new``, taking the deprecated ``old`` when only it is given.

    Args:
        func: the public function's name, for the messages.
        old, new: the deprecated and the current argument names.
        old_value: what was passed as ``old`` (:data:`UNSET` when nothing).
        new_value: what was passed as ``new``.
        default: ``new``'s default (to tell "not given" from a value).
        note: why ``new`` is the name, for the warning.

    Returns:
        The value to use.

    Raises:
        ValueError: when both are given with different values.
    """
    if old_value is UNSET:
        return new_value
    warnings.warn(
        f"{func}: '{old}' is deprecated and will be removed in the next "
        f"release; use '{new}' ({note}).",
        DeprecationWarning,
        stacklevel=3,
    )
    if new_value != default and new_value != old_value:
        v.fail(func, old, f"left out when '{new}' is given (its new name)",
               old_value)  # fmt: skip
    return old_value


def check_callbacks(callbacks, func: str, *, allow_none: bool = False) -> list:
    """A list of kdl.keras callbacks (None -> [] when ``allow_none``)."""
    from kdl.backend import keras

    if callbacks is None and allow_none:
        return []
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        v.fail(func, "callbacks", "a list or tuple of kdl.keras callbacks",
               callbacks, error=TypeError)  # fmt: skip
    for cb in callbacks:
        v.check_keras2(cb, "callbacks", func)
        if not isinstance(cb, keras.callbacks.Callback):
            v.fail(func, "callbacks", "a list of kdl.keras.callbacks.Callback",
                   cb, error=TypeError)  # fmt: skip
    return list(callbacks)


def check_fit_kwargs(fit_kwargs: dict, func: str, owned: Sequence[str]) -> dict:
    """``fit`` keyword arguments to pass on: each must be one of ``fit``'s.

    Args:
        fit_kwargs: the extra keyword arguments given.
        func: the public function's name.
        owned: ``fit`` arguments the function sets itself (its own
            parameters carry them, so they never arrive here; listed to say so
            in the message).

    Raises:
        TypeError: for a name ``fit`` does not take.
    """
    from kdl.backend import keras

    accepted = set(inspect.signature(keras.Model.fit).parameters) - {"self"}
    for name in fit_kwargs:
        if name not in accepted or name in owned:
            v.fail(func, name, "an argument of Model.fit (extra keywords pass on "
                   f"to fit; it takes {', '.join(sorted(accepted - set(owned)))})",
                   fit_kwargs[name], error=TypeError)  # fmt: skip
    return dict(fit_kwargs)
