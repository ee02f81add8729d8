"""How long ``kdl train`` trains a table by default: enough optimizer steps.

Issue 23: on small tables the default 20 epochs are too few optimizer steps
(iris: 108 training rows at batch 32 are 4 steps an epoch, 80 steps in all),
so the default MLP stopped underfitted behind a logistic regression (0.83
against 0.97 on iris). A table of n training rows gets at least
:data:`MIN_STEPS` steps (at most :data:`MAX_EPOCHS` epochs), and early
stopping waits at least :data:`PATIENCE_STEPS` steps, so a tiny validation
part cannot stop a run after a few dozen steps. Large tables keep 20 epochs
and a patience of 5. Only feature-vector tables: an epoch of images or
series windows costs far more, and those defaults were measured on their own
(docs/benchmarks.md, "Your own data").
"""

from __future__ import annotations

import math

__all__ = ["EPOCHS", "MIN_STEPS", "MAX_EPOCHS", "PATIENCE", "PATIENCE_STEPS", "plan"]

EPOCHS = 20
PATIENCE = 5
MIN_STEPS = 1000
PATIENCE_STEPS = 100
MAX_EPOCHS = 500


def plan(rows: int, batch_size: int, validation_split: float) -> tuple[int, int]:
    """(epochs, patience) for ``rows`` training rows of a table.

    Args:
        rows: int. Rows given to training, validation part included.
        batch_size: int. The batch size.
        validation_split: float. The fraction held out for validation.
    """
    trained = max(1, int(rows * (1.0 - validation_split)))
    steps = math.ceil(trained / batch_size)  # optimizer steps per epoch
    epochs = min(MAX_EPOCHS, max(EPOCHS, math.ceil(MIN_STEPS / steps)))
    patience = max(PATIENCE, math.ceil(PATIENCE_STEPS / steps))
    return epochs, patience
