"""What one kdl.tune search is, and how its trials are reported.

:func:`kdl.tune` checks its arguments into three small records (the model to
build, how to train each trial, how to search) gathered in a :class:`Job`.
The KerasTuner side (:mod:`kdl.tuning._kt`) reads the job; this module never imports
KerasTuner at the top, so ``import kdl.tuning`` stays light.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kdl import _files
from kdl import _validation as v
from kdl.tuning import _search_space as spaces

FUNC = "kdl.tune"
# Files a search writes in its folder, next to KerasTuner's own.
SEARCH_FILE = "kdl_search.json"
TRIAL_FILE = "kdl_trial.json"
WEIGHTS_FILE = "weights.h5"
TRIALS_CSV = "trials.csv"


@dataclasses.dataclass(frozen=True)
class BuildSpec:
    """How a trial's model is built: the builder and its arguments."""

    build_fn: Callable
    name: str
    signature: inspect.Signature
    takes_hp: bool
    space: dict
    fixed: dict
    inferred: dict


@dataclasses.dataclass(frozen=True)
class FitSpec:
    """How a trial is trained and scored."""

    x: Any
    y: Any
    validation_data: Any
    validation_split: float
    epochs: int
    batch_size: int
    patience: int
    objective: str
    direction: str
    seed: int | None
    verbose: int
    # The user's callbacks and other fit arguments (issue 31).
    callbacks: tuple = ()
    fit_kwargs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """How the search runs: algorithm, budget, folder, and its role.

    ``role`` is None for a local search, "chief" for the process serving the
    oracle of a distributed search and "worker" for one running trials.
    """

    algorithm: str
    max_trials: int | None
    factor: int
    max_failures: int
    directory: Path
    role: str | None = None


@dataclasses.dataclass
class Job:
    """Everything a trial needs: the model, the training and the search."""

    build: BuildSpec
    fit: FitSpec
    search: SearchSpec
    started: float = dataclasses.field(default_factory=time.perf_counter)

    # The fields read most often, under short names.
    @property
    def objective(self) -> str:
        return self.fit.objective

    @property
    def directory(self) -> Path:
        return self.search.directory

    def params(self, values: Mapping) -> dict:
        """The builder arguments of a trial's hyperparameter values."""
        if self.build.takes_hp:
            return {k: val for k, val in values.items() if not k.startswith("tuner/")}
        return {
            name: spaces.decode(spec, values[name])
            for name, spec in self.build.space.items()
        }

    def call_builder(self, params: Mapping):
        """Calls the builder with the inferred, fixed and searched arguments."""
        kwargs = {**self.build.inferred, **self.build.fixed, **params}
        args = []
        for name, param in self.build.signature.parameters.items():
            if param.kind is param.POSITIONAL_ONLY and name in kwargs:
                args.append(kwargs.pop(name))
        return self.build.build_fn(*args, **kwargs)

    def rebuild(self, params: Mapping):
        """A new model from builder arguments (or hp values for build(hp))."""
        if not self.build.takes_hp:
            return self.call_builder(params)
        import keras_tuner as kt

        hp = kt.HyperParameters()
        hp.values.update(params)
        return self.build.build_fn(hp)

    def check_model(self, model, kt) -> None:
        """A builder that returns no compiled kdl.keras model stops the search."""
        try:
            v.check_keras_model(model, "build_fn", FUNC)
        except TypeError as err:
            raise kt.errors.FatalTypeError(str(err)) from err
        if not getattr(model, "_is_compiled", False):
            raise kt.errors.FatalValueError(
                f"The 'build_fn' parameter of {FUNC} must return a compiled model. "
                f"Got an uncompiled {type(model).__name__} from {self.build.name} "
                "instead."
            )

    def description(self) -> dict:
        """What identifies the search in its folder (kdl_search.json)."""
        return {
            "builder": self.build.name,
            "algorithm": self.search.algorithm,
            "objective": self.fit.objective,
            "space": {name: repr(spec) for name, spec in self.build.space.items()},
            "fixed": sorted(self.build.fixed),
        }


# === Reporting ===


def open_folder(path: Path, lock, expected: dict, resume: bool, *, verbose,
                has_state=lambda: True) -> str:  # fmt: skip
    """Locks a search folder and checks what it holds before a search writes
    there (kdl.tune and its search under budgets alike).

    Returns "empty", "same" (this same search, to resume: ``expected`` equals
    the folder's description and ``has_state()``) or "moved" (an earlier kdl
    search, moved aside to ``<name>.old-<timestamp>``, kdl's run-folder
    policy, never deleted). Any other non-empty folder, or another search
    given to resume, is refused.
    """
    marker = path / SEARCH_FILE
    lock.acquire(path)  # a kdl._run_folder.FolderLock
    if not any(entry.name != lock.LOCK_FILE for entry in path.iterdir()):
        return "empty"
    if not marker.exists():
        v.fail(FUNC, "directory", "a new or empty folder, or one holding a kdl "
               "search (it would be overwritten)", str(path))  # fmt: skip
    if resume:
        earlier = _files.read_json(marker)
        if earlier != expected:
            v.fail(FUNC, "directory", "a folder holding this same search to "
                   f"resume (it holds {earlier}); pick another directory or "
                   "pass resume=False to start over", str(path))  # fmt: skip
        if has_state():
            return "same"
    moved = lock.move_aside()
    if verbose:
        print(f"kdl.tune: the earlier search was moved to {moved}", flush=True)
    return "moved"


def short_error(err: BaseException) -> str:
    """``"ValueError: <first line>"``, for the trials table."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def format_value(value) -> str:
    if spaces.is_real(value) and not isinstance(value, numbers.Integral):
        return f"{value:.4g}"
    return value if isinstance(value, str) else repr(value)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def trial_number(oracle, trial_id) -> int:
    """1 for the first trial started, 2 for the next, ..."""
    if trial_id in oracle.start_order:
        return oracle.start_order.index(trial_id) + 1
    return int(trial_id) + 1  # KerasTuner numbers trials from 0, in order


def report_trial(tuner, trial, *, oracle=None) -> None:
    """Prints one line for a finished trial; rewrites trials.csv when it can.

    ``oracle`` is the real oracle (the chief's in a distributed search); a
    worker has none and prints its own trials only.
    """
    job = tuner.job
    if oracle is not None:
        write_table(tuner, oracle)
    if job.fit.verbose < 1:
        return
    record = tuner.record(trial.trial_id)
    total = f"/{job.search.max_trials}" if job.search.max_trials else ""
    params = job.params(trial.hyperparameters.values)
    args = ", ".join(f"{k}={format_value(val)}" for k, val in params.items())
    if trial.status == "COMPLETED":
        best = f" (best {oracle.get_best_trials(1)[0].score:.4f})" if oracle else ""
        # A worker's trial has no score: the chief's oracle computes it.
        score = trial.score if trial.score is not None else record.get("score")
        outcome = (
            f"{job.objective}={math.nan if score is None else score:.4f} in "
            f"{plural(record.get('epochs', 0), 'epoch')}, "
            f"{record.get('seconds') or 0:.1f} s{best}"
        )
    else:
        outcome = f"failed: {record.get('error') or trial.message or 'see trial.json'}"
    number = trial_number(oracle, trial.trial_id) if oracle else int(trial.trial_id) + 1
    print(f"trial {number}{total}: {args} -> {outcome}", flush=True)


def table(tuner, oracle):
    """The trials as a pandas DataFrame, in the order they started."""
    import pandas as pd

    job = tuner.job
    rows = []
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        values = trial.hyperparameters.values
        record = tuner.record(trial_id)
        status = {"COMPLETED": "completed", "RUNNING": "running"}.get(
            trial.status, "failed"
        )
        row = {"trial": trial_number(oracle, trial_id), "status": status}
        row.update(job.params(values))
        row[job.objective] = trial.score if status == "completed" else math.nan
        row["epochs"] = record.get("epochs", 0)
        row["seconds"] = record.get("seconds", math.nan)
        if job.search.algorithm == "hyperband":
            parent = values.get("tuner/trial_id")
            row["continues"] = (
                trial_number(oracle, parent) if parent is not None else None
            )
        row["error"] = record.get("error") or ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "continues" in frame:
        frame["continues"] = frame["continues"].astype("Int64")
    return frame


def write_table(tuner, oracle):
    """Writes trials.csv atomically; returns the table."""
    frame = table(tuner, oracle)
    _files.write_text(tuner.job.directory / TRIALS_CSV, frame.to_csv(index=False))
    return frame


def last_error(tuner, oracle) -> str:
    """The error of the last failed trial, for the message that stops a search."""
    for trial_id in reversed(oracle.end_order):
        error = tuner.record(trial_id).get("error")
        if error:
            return error
    return "unknown"


def print_summary(job: Job, frame, best_trial, best_params: Mapping, oracle) -> None:
    """The final table of a search, with its best trial."""
    import pandas as pd

    counts = frame["status"].value_counts()
    seconds = time.perf_counter() - job.started
    args = ", ".join(f"{k}={format_value(val)}" for k, val in best_params.items())
    shown = frame.copy()
    shown["error"] = shown["error"].str.slice(0, 48)
    for name in best_params:
        if name in shown:
            shown[name] = shown[name].map(format_value)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        text = shown.to_string(index=False, float_format=lambda f: f"{f:.4g}")
    print(
        f"\nkdl.tune: {len(frame)} trials ({counts.get('completed', 0)} "
        f"completed, {counts.get('failed', 0)} failed) in {seconds:.1f} s; "
        f"best {job.objective}={best_trial.score:.4f} (trial "
        f"{trial_number(oracle, best_trial.trial_id)}) with "
        f"{args}\n{text}\n(also in {job.directory / TRIALS_CSV})",
        flush=True,
    )
