"""The search-space specs of kdl.tune: Int, Float, Choice and Boolean.

Each spec knows how to declare itself to KerasTuner's ``HyperParameters``
(:func:`declare`) and how to turn the value KerasTuner hands back into the
builder argument (:func:`decode`). KerasTuner itself is never imported here:
``hp`` is passed in by :mod:`kdl.tuning._kt`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from kdl import _validation as v

__all__ = ["Int", "Float", "Choice", "Boolean", "SPECS", "declare", "decode"]


def is_real(value) -> bool:
    """True for a real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Int:
    """An integer argument searched from `low` to `high`, both included.

    Args:
        low: int. Smallest value.
        high: int. Largest value; greater than `low`.
        step: int. Distance between candidate values. Defaults to `1`.

    Raises:
        TypeError: if a bound or the step is not an int.
        ValueError: if `high` is not greater than `low`, or `step` < 1.

    Example:
        >>> units = Int(16, 128, step=16)
        >>> units.high
        128
    """

    low: int
    high: int
    _: dataclasses.KW_ONLY
    step: int = 1

    def __post_init__(self):
        func = "kdl.Int"
        v.check_int(self.low, "low", func, min_value=None)
        v.check_int(self.high, "high", func, min_value=None)
        v.check_int(self.step, "step", func)
        if self.high <= self.low:
            v.fail(func, "high", f"greater than low ({self.low})", self.high)

    def _declare(self, hp, name: str):
        return hp.Int(name, self.low, self.high, step=self.step)

    def _decode(self, value):
        return int(value)

    def _is_discrete(self) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class Float:
    """A real argument searched between `low` and `high`.

    Args:
        low: float. Smallest value.
        high: float. Largest value; greater than `low`.
        log: bool. Sample on a log scale (for learning rates, penalties);
            needs `low` > 0. Defaults to `False`.
        step: float or None. Distance between candidate values (multiplicative
            when `log=True`); grid search needs it. Defaults to `None`
            (continuous).

    Raises:
        TypeError: if a bound or the step is not a number.
        ValueError: if `high` is not greater than `low`, `low` <= 0 with
            `log=True`, or `step` <= 0.

    Example:
        >>> rate = Float(1e-4, 1e-2, log=True)
        >>> rate.log
        True
    """

    low: float
    high: float
    _: dataclasses.KW_ONLY
    log: bool = False
    step: float | None = None

    def __post_init__(self):
        func = "kdl.Float"
        v.check_float(self.low, "low", func, min_value=None)
        v.check_float(self.high, "high", func, min_value=None)
        v.check_bool(self.log, "log", func)
        v.check_float(
            self.step, "step", func, min_value=0.0, strict_min=True, allow_none=True
        )
        for arg in ("low", "high"):
            if not math.isfinite(getattr(self, arg)):
                v.fail(func, arg, "a finite number", getattr(self, arg))
        if self.high <= self.low:
            v.fail(func, "high", f"greater than low ({self.low})", self.high)
        if self.log and self.low <= 0:
            v.fail(func, "low", "> 0 when log=True", self.low)

    def _declare(self, hp, name: str):
        return hp.Float(
            name,
            float(self.low),
            float(self.high),
            step=self.step,
            sampling="log" if self.log else "linear",
        )

    def _decode(self, value):
        # KerasTuner's log scale gives e.g. 0.030000000000000002 for 0.03.
        return float(f"{float(value):.12g}")

    def _is_discrete(self) -> bool:
        return self.step is not None


def _plain(value):
    """A hashable, plain-Python version of one Choice value."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return tuple(_plain(item) for item in value)
    return value


@dataclasses.dataclass(frozen=True)
class Choice:
    """An argument searched over a list of values, in the given order.

    Values may be anything the builder takes: numbers, strings, None or tuples
    (e.g. `dense_units`). Lists are stored as tuples.

    Args:
        values: sequence. The candidates; at least one, no duplicates.

    Raises:
        TypeError: if `values` is not a list or tuple, or holds an unhashable
            value.
        ValueError: if `values` is empty or holds a value twice.

    Example:
        >>> layers = Choice([(32,), (64, 64)])
        >>> layers.values
        ((32,), (64, 64))
    """

    values: tuple

    def __post_init__(self):
        func = "kdl.Choice"
        if not isinstance(self.values, (list, tuple, range)):
            v.fail(
                func,
                "values",
                "a list or tuple of candidate values",
                self.values,
                error=TypeError,
            )
        values = tuple(_plain(value) for value in self.values)
        if not values:
            v.fail(func, "values", "a non-empty list of candidate values", values)
        try:
            unique = len(set(values)) == len(values)
        except TypeError:
            v.fail(
                func,
                "values",
                "a list of hashable values (numbers, strings, None or tuples)",
                values,
                error=TypeError,
            )
        # 1 == 1.0 == True in a set: compare (type, value) pairs as well.
        if not unique or len({(type(x), x) for x in values}) != len(values):
            v.fail(func, "values", "a list without duplicates", values)
        object.__setattr__(self, "values", values)

    def _keys(self) -> tuple:
        """What KerasTuner sees: the values themselves when it can hold them.

        KerasTuner's Choice takes scalars of one type only (int, float, str or
        bool). Other candidates (tuples, None, mixed types) are handed to it as
        their repr strings and mapped back by :meth:`_decode`.
        """
        kinds = {type(value) for value in self.values}
        if len(kinds) == 1 and kinds.pop() in (int, float, str, bool):
            return self.values
        return tuple(repr(value) for value in self.values)

    def _declare(self, hp, name: str):
        return hp.Choice(name, list(self._keys()))

    def _decode(self, key):
        return dict(zip(self._keys(), self.values, strict=True))[key]

    def _is_discrete(self) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class Boolean:
    """A bool argument searched over False and True.

    Example:
        >>> Boolean()
        Boolean()
    """

    def _declare(self, hp, name: str):
        return hp.Boolean(name)

    def _decode(self, value):
        return bool(value)

    def _is_discrete(self) -> bool:
        return True


_SPECS = (Int, Float, Choice, Boolean)


SPECS = (Int, Float, Choice, Boolean)


def declare(spec, hp, name: str):
    """Declares ``spec`` as hyperparameter ``name`` of KerasTuner's ``hp``."""
    return spec._declare(hp, name)


def decode(spec, value):
    """The builder argument for the value KerasTuner chose for ``spec``."""
    return spec._decode(value)


def is_discrete(spec) -> bool:
    """True when ``spec`` has finitely many values (grid search needs it)."""
    return spec._is_discrete()
