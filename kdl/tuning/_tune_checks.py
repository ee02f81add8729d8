"""kdl.tune's checks and its search folder, all before keras_tuner is imported.

Split from :mod:`kdl.tuning._tune` (issue 27: no module over 600 lines).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kdl import _keras_names
from kdl import _validation as v
from kdl._constants import ALGORITHMS
from kdl.tuning import _job as jobs

FUNC = jobs.FUNC
DIRECTIONS = ("min", "max")
DEFAULT_ROOT = Path("saved_models")
# The validation split when neither validation_split nor validation_data is given.
DEFAULT_SPLIT = 0.2


# === Builder arguments (all checks run before keras_tuner is imported) ===


def _direction(objective: str, direction: str | None) -> str:
    """The objective's direction, given or read from its name.

    Read here, not by KerasTuner, so that a bad objective fails before the
    6-second keras_tuner import.
    """
    if direction is not None:
        return v.check_choice(direction, "direction", FUNC, DIRECTIONS)
    name = objective[4:] if objective.startswith("val_") else objective
    if name.endswith(("loss", "error", "crossentropy")) or name in (
        "mse",
        "mae",
        "mape",
        "msle",
        "rmse",
        "logcosh",
        "ce",
    ):
        return "min"
    if name.endswith(("accuracy", "acc", "auc", "precision", "recall")):
        return "max"
    v.fail(
        FUNC,
        "direction",
        f'"min" or "max" for the metric {objective!r} '
        "(its direction cannot be read from its name)",
        direction,
    )


def check_fit(
    x,
    y,
    *,
    objective,
    direction,
    epochs,
    batch_size,
    patience,
    validation_data,
    validation_split,
    seed,
    verbose,
) -> jobs.FitSpec:
    """Checks how each trial trains: data, objective, epochs, early stopping."""
    v.check_str(objective, "objective", FUNC)
    direction = _direction(objective, direction)
    v.check_int(epochs, "epochs", FUNC)
    v.check_int(batch_size, "batch_size", FUNC)
    v.check_int(patience, "patience", FUNC, min_value=0, allow_none=True)
    v.check_int(seed, "seed", FUNC, min_value=0, allow_none=True)
    verbose = v.check_verbose(verbose, FUNC)
    if validation_split is None:
        validation_split = 0.0 if validation_data is not None else DEFAULT_SPLIT
    data = v.check_data(
        FUNC,
        x,
        y,
        validation_data=validation_data,
        validation_split=validation_split,
    )
    _check_objective_data(objective, data, validation_split)
    return jobs.FitSpec(
        x=x,
        y=y,
        validation_data=data.validation_data,
        validation_split=float(validation_split),
        epochs=epochs,
        batch_size=batch_size,
        # None: no early stop, but still the weights of the best epoch.
        patience=epochs if patience is None else patience,
        objective=objective,
        direction=direction,
        seed=seed,
        verbose=verbose,
    )


# fit arguments each trial sets itself (the rest of fit's pass on, issue 31).
_OWNED = ("x", "y", "validation_data", "validation_split", "epochs",
          "initial_epoch", "batch_size", "callbacks", "verbose")  # fmt: skip


def with_fit_extras(fit: jobs.FitSpec, callbacks, fit_kwargs) -> jobs.FitSpec:
    """``fit`` with the user's callbacks and other ``fit`` arguments."""
    callbacks = _keras_names.check_callbacks(callbacks, FUNC, allow_none=True)
    fit_kwargs = _keras_names.check_fit_kwargs(fit_kwargs, FUNC, _OWNED)
    if fit_kwargs.get("sample_weight") is not None and fit.validation_split:
        v.fail(FUNC, "sample_weight", "given with validation_data, not with "
               "validation_split (kdl holds the split out itself)",
               "an array")  # fmt: skip
    return dataclasses.replace(fit, callbacks=tuple(callbacks), fit_kwargs=fit_kwargs)


# Fewer validation examples than this make an accuracy objective coarse: one
# example moves it by more than a percent, and trials tie (kdl issue 11).
COARSE_BELOW = 100


def _check_objective_data(objective: str, data, validation_split: float) -> None:
    """A val_ objective needs validation data; accuracy on few examples warns."""
    if not objective.startswith("val_"):
        return
    if data.validation_data is None and not validation_split:
        v.fail(
            FUNC,
            "validation_split",
            f"> 0 (or validation_data given) for the objective {objective!r}",
            validation_split,
        )
    count = _validation_count(data, validation_split)
    accuracy = objective.endswith(("accuracy", "acc"))
    if accuracy and count is not None and count < COARSE_BELOW:
        warnings.warn(
            f"kdl.tune: the objective {objective!r} is computed on only {count} "
            f"validation examples, so it moves in steps of {100 / count:.1f}% "
            "and many trials tie. Prefer objective='val_loss', or give more "
            "validation data.",
            UserWarning,
            stacklevel=3,
        )


def hold_out(fit: jobs.FitSpec) -> jobs.FitSpec:
    """kdl's own validation split, not Keras' last rows (issue 23, kdl._holdout)."""
    if not fit.validation_split or fit.validation_data is not None or fit.y is None:
        return fit
    from kdl import _holdout

    parts = _holdout.split(
        fit.x, fit.y, fit.validation_split, seed=fit.seed or 0, task=None, func=FUNC
    )
    return dataclasses.replace(
        fit,
        x=parts.x,
        y=parts.y,
        validation_data=parts.validation,
        validation_split=0.0,
    )


def _validation_count(data, validation_split: float) -> int | None:
    """How many validation examples Keras will use (None for a dataset)."""
    if data.num_examples is not None and validation_split:
        # Keras keeps floor(n * (1 - split)) for training.
        n = data.num_examples
        return n - int(np.floor(n * (1.0 - validation_split)))
    if isinstance(data.validation_data, tuple):
        first = data.validation_data[0]
        if isinstance(first, Mapping):
            first = next(iter(first.values()))
        elif isinstance(first, (list, tuple)):
            first = first[0]
        return int(np.shape(first)[0])
    return None


def check_search(
    algorithm, max_trials, factor, max_failures, directory, default_name, distributed
) -> jobs.SearchSpec:
    v.check_choice(algorithm, "algorithm", FUNC, ALGORITHMS)
    v.check_int(max_trials, "max_trials", FUNC, allow_none=True)
    if max_trials is None and algorithm in ("random", "bayesian"):
        max_trials = 10
    v.check_int(factor, "factor", FUNC, min_value=2)
    v.check_int(max_failures, "max_consecutive_failed_trials", FUNC)
    if directory is None:
        path = DEFAULT_ROOT / default_name
    else:
        path = v.check_path(directory, "directory", FUNC)
    if path.exists() and not path.is_dir():
        v.fail(FUNC, "directory", "a folder, not a file", str(path))
    role = _distributed_role(distributed)
    return jobs.SearchSpec(algorithm, max_trials, factor, max_failures, path, role)


# KerasTuner's own switches for its chief/worker mode (docs/design.md).
KERASTUNER_ENV = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
)


def _distributed_role(distributed) -> str | None:
    """None for a local search, else "chief" or "worker" (KerasTuner's rule).

    KerasTuner's environment variables turn a search distributed even with
    ``distributed=False``, as they do for its own tuners.
    """
    v.check_bool(distributed, "distributed", FUNC)
    given = [name for name in KERASTUNER_ENV if os.environ.get(name)]
    if not distributed and not given:
        return None
    if len(given) < len(KERASTUNER_ENV):
        missing = ", ".join(name for name in KERASTUNER_ENV if name not in given)
        v.fail(
            FUNC,
            "distributed",
            "False, or True with KerasTuner's environment variables "
            f"{', '.join(KERASTUNER_ENV)} set in every process (missing: "
            f"{missing})",
            distributed,
        )
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        v.fail(
            FUNC,
            "distributed",
            "True with KERASTUNER_ORACLE_PORT a port number (1-65535)",
            port,
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def prepare_directory(job: jobs.Job, resume: bool, lock) -> bool:
    """Readies the search folder; returns True when an earlier search resumes.

    Only a folder holding a kdl search is ever resumed or replaced: any other
    non-empty folder is refused. A search that is not resumed is moved aside
    to ``<name>.old-<timestamp>`` (kdl's one run-folder policy, as in
    kdl.train), never deleted.
    """
    path = job.directory
    state = jobs.open_folder(
        path, lock, job.description(), resume, verbose=job.fit.verbose,
        has_state=lambda: (path / "oracle.json").exists(),
    )  # fmt: skip
    return state == "same"
