"""``strategy=`` for every builder: build and compile inside a tf.distribute scope."""

from __future__ import annotations

import contextlib
import functools

from kdl import _validation as v
from kdl._constants import STRATEGIES as NAMES
from kdl.backend import tf

_BY_NAME: dict = {}


# The class each name stands for (kdl.distribute.strategy makes them).
_CLASS_NAMES = {
    "default": "_DefaultDistributionStrategy",
    "one_device": "OneDeviceStrategy",
    "mirrored": "MirroredStrategy",
    "multi_worker": "MultiWorkerMirroredStrategy",
}


def _check(strategy, func: str) -> None:
    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return
    if not isinstance(strategy, str):
        v.fail(
            func,
            "strategy",
            "None, a tf.distribute.Strategy or one of " + ", ".join(NAMES),
            strategy,
            error=TypeError,
        )
    v.check_choice(strategy, "strategy", func, NAMES)


def resolve(strategy, func: str):
    """A ``tf.distribute.Strategy`` for a name or an instance; None stays None."""
    _check(strategy, func)
    if not isinstance(strategy, str):
        return strategy
    if strategy not in _BY_NAME:
        from kdl import distribute

        # One strategy per name and process: models built with the same name
        # can then train together (distillation, TensorFlow refuses to mix
        # strategy objects), and a multi-worker strategy is created only once.
        _BY_NAME[strategy] = distribute.strategy(strategy)
    return _BY_NAME[strategy]


def resolve_kind(strategy, func: str):
    """Checks ``strategy``; returns the instance, or the name ("auto" resolved).

    Unlike :func:`resolve` it creates no strategy (a MultiWorkerMirroredStrategy
    can only be created at program start).
    """
    _check(strategy, func)
    if strategy == "auto":
        several_gpus = len(tf.config.list_logical_devices("GPU")) > 1
        return "mirrored" if several_gpus else "default"
    return strategy


def same_kind(built, wanted) -> bool:
    """Whether strategy ``built`` is ``wanted`` (an instance, or a kind's name)."""
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return type(built).__name__ == _CLASS_NAMES[wanted]
    return built is wanted


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
