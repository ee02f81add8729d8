"""``strategy=`` for every builder: build and compile inside a tf.distribute scope."""

from __future__ import annotations

import contextlib
import functools

from kdl import _validation as v
from kdl.backend import tf

NAMES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def resolve(strategy, func: str):
    """A ``tf.distribute.Strategy`` for a name or an instance; None stays None."""
    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if not isinstance(strategy, str):
        v.fail(
            func,
            "strategy",
            "None, a tf.distribute.Strategy or one of " + ", ".join(NAMES),
            strategy,
            error=TypeError,
        )
    v.check_choice(strategy, "strategy", func, NAMES)
    from kdl import distribute

    return distribute.strategy(strategy)


def distributable(builder):
    """Decorates a builder whose signature ends in ``strategy=None``.

    The builder's own body never reads ``strategy``: this wrapper checks it
    (before any layer is built), enters its scope, and calls the builder
    there, so every variable and the optimizer live on the strategy's devices
    (TensorFlow requires model creation and ``compile`` inside the scope).
    """

    @functools.wraps(builder)
    def build(*args, **kwargs):
        strategy = resolve(kwargs.get("strategy"), builder.__name__)
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            return builder(*args, **kwargs)

    return build
