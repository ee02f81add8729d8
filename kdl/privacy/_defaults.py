"""DP-aware training defaults: the plan make_private picks when given none.

Issue 23: a default builder model made private at epsilon 8 and trained
with ``kdl.train``'s defaults (10 epochs, batch 32, Adam at 1e-3) reached
0.54-0.77 on the digits. DP-SGD wants larger batches (the noise is added
once per batch, so its share of the mean gradient falls with the batch
size), more epochs, and a larger step than plain training. So:

- ``make_private(model, target_epsilon=..., num_examples=n)`` without
  ``batch_size`` and ``epochs`` plans them itself (:func:`fill_plan`), and
  a model compiled at the builders' default rate (1e-3) trains at
  :data:`LEARNING_RATE` instead (:func:`dp_learning_rate`);
- ``kdl.train`` without ``epochs`` / ``batch_size`` trains a private model
  as its noise was planned (it reads the plan from ``model.privacy``).

Explicit arguments always win. Measured in docs/benchmarks.md ("Private
training by default").
"""

from __future__ import annotations

import math

__all__ = ["BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "fill_plan", "dp_learning_rate"]

BATCH_SIZE = 256  # at most a quarter of the examples (see fill_plan)
EPOCHS = 40
LEARNING_RATE = 0.01  # replaces the builders' default rate (DEFAULT_RATE)
DEFAULT_RATE = 1e-3  # every kdl builder's (and Keras Adam's) default
MIN_BATCH = 16


def planned_batch_size(num_examples: int) -> int:
    """BATCH_SIZE, or a quarter of a small data set (at least MIN_BATCH)."""
    return max(1, min(BATCH_SIZE, max(MIN_BATCH, num_examples // 4), num_examples))


def fill_plan(settings: dict) -> bool:
    """Fills ``batch_size`` and ``epochs`` of make_private's checked settings
    when a ``target_epsilon`` came without them; True when it did.

    Only when both are None (a user who gives one of them plans the run) and
    ``num_examples`` is known (the noise depends on it).
    """
    s = settings
    if s["target_epsilon"] is None or s["num_examples"] is None:
        return False
    if s["batch_size"] is not None or s["epochs"] is not None:
        return False
    s["batch_size"] = planned_batch_size(s["num_examples"])
    s["epochs"] = EPOCHS
    return True


def dp_learning_rate(optimizer, settings: dict) -> float | None:
    """The learning rate a private copy of a model compiled with
    ``optimizer`` trains at when make_private planned its training
    (``settings``): None (keep the model's) unless the model has the
    builders' default, Adam at 1e-3.

    A constant rate: a cosine decay to a tenth over the planned steps did
    worse on the digits (CNN 0.85-0.87 against 0.89-0.93).
    """
    del settings  # the plan: kept for rules that depend on it
    if type(optimizer).__name__ != "Adam":  # the builders' default optimizer
        return None
    rate = optimizer.get_config().get("learning_rate")  # built or not
    if isinstance(rate, dict):  # a schedule: the user chose it
        return None
    value = float(rate)
    return LEARNING_RATE if math.isclose(value, DEFAULT_RATE, rel_tol=1e-6) else None
