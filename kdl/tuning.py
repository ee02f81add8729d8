"""Hyperparameter search on any builder: grid, random, Bayesian and Hyperband.

The search space is written in the builder's own argument names::

    result = kdl.tune(
        build_mlp, x, y,
        space={"hidden_units": kdl.Choice([(32,), (64, 64)]),
               "dropout": kdl.Float(0.0, 0.5),
               "learning_rate": kdl.Float(1e-4, 1e-2, log=True)},
        algorithm="bayesian", max_trials=10, epochs=20,
    )
    model = build_mlp(x.shape[1:], 10, **result.best_params)

KerasTuner does the searching. Its stock tuners reject tf_keras models
(keras-tuner issue 1039), so kdl uses KerasTuner's oracles (the algorithms)
through its documented extension point: a ``BaseTuner`` subclass whose
``run_trial`` builds the model with the builder, trains it with tf_keras
``model.fit`` (early stopping inside each trial) and returns the objective, and
whose ``load_model`` rebuilds the model and loads its weights.

``keras_tuner`` takes seconds to import (it imports Keras 3): it is imported
inside :func:`tune` only, never by ``import kdl`` or ``import kdl.tuning``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import io
import json
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kdl import _validation as v
from kdl.backend import keras
from kdl.io import atomic_path

__all__ = ["Int", "Float", "Choice", "Boolean", "TuneResult", "tune"]

FUNC = "kdl.tune"
ALGORITHMS = ("bayesian", "random", "grid", "hyperband")
DIRECTIONS = ("min", "max")
DEFAULT_ROOT = Path("saved_models")

# Builder arguments tune() fills from the data when `fixed` does not give them.
_INFERRED = ("input_shape", "num_outputs")
# Files tune() writes in its directory (next to KerasTuner's own).
_SEARCH_FILE = "kdl_search.json"
_TRIAL_FILE = "kdl_trial.json"
_WEIGHTS_FILE = "weights.h5"
TRIALS_CSV = "trials.csv"


# === Search-space specs ===


def _is_real(value) -> bool:
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
    (e.g. `hidden_units`). Lists are stored as tuples.

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


# === Result ===


@dataclasses.dataclass(frozen=True, repr=False)
class TuneResult:
    """What :func:`tune` found.

    Attributes:
        best_model: the best trial's trained, compiled `kdl.keras.Model`
            (weights of its best epoch).
        best_params: dict. The best arguments, ready for the builder:
            `builder(input_shape, num_outputs, **fixed, **best_params)`. For
            a `build(hp)` function, the hyperparameter values it chose.
        best_score: float. The best trial's objective value.
        objective: str. The metric that was optimized, e.g. "val_loss".
        trials: pandas.DataFrame. One row per trial: trial number, status
            ("completed" or "failed"), the arguments, the objective, epochs
            run, seconds, and the error of a failed trial. Also in
            `directory / "trials.csv"`.
        directory: Path. The folder holding the search (resumable).
    """

    best_model: Any
    best_params: dict
    best_score: float
    objective: str
    trials: Any
    directory: Path
    _rebuild: Callable = dataclasses.field(default=None, compare=False)

    def build(self):
        """Returns a new, untrained compiled model with the best arguments.

        Use it to retrain from scratch, e.g. on all the data.

        Returns:
            A compiled `kdl.keras.Model`.
        """
        return self._rebuild(self.best_params)

    def __repr__(self) -> str:
        return (
            f"TuneResult(best_params={self.best_params!r}, "
            f"best_score={self.best_score:.6g} ({self.objective}), "
            f"trials={len(self.trials)}, directory='{self.directory}')"
        )


# === Argument checks (all before keras_tuner is imported) ===


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


def _takes_hp(build_fn) -> bool:
    """True for a KerasTuner-style `build(hp)` function."""
    params = list(inspect.signature(build_fn).parameters)
    return params == ["hp"]


def _check_space(space, fixed, signature, builder: str, algorithm: str) -> dict:
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    names = [
        name
        for name, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not isinstance(space, Mapping):
        v.fail(
            FUNC,
            "space",
            "a dict of builder argument names to kdl.Int, "
            "kdl.Float, kdl.Choice or kdl.Boolean",
            space,
            error=TypeError,
        )
    if not space:
        v.fail(FUNC, "space", f"a dict with at least one argument of {builder}", space)
    for name, spec in space.items():
        if not isinstance(name, str):
            v.fail(
                FUNC,
                "space",
                "a dict keyed by argument names (str)",
                name,
                error=TypeError,
            )
        if not accepts_any and name not in names:
            v.fail(
                FUNC,
                "space",
                f"a dict of arguments {builder} takes ({', '.join(names)})",
                name,
            )
        if name in fixed:
            v.fail(FUNC, "space", "free of the arguments given in fixed", name)
        if not isinstance(spec, _SPECS):
            hint = (
                " (wrap a list of candidates in kdl.Choice)"
                if isinstance(spec, (list, tuple))
                else ""
            )
            v.fail(
                FUNC,
                f"space[{name!r}]",
                f"a kdl.Int, kdl.Float, kdl.Choice or kdl.Boolean{hint}",
                spec,
                error=TypeError,
            )
        if algorithm == "grid" and not spec._is_discrete():
            v.fail(
                FUNC,
                f"space[{name!r}]",
                "discrete for a grid search (give kdl.Float a step, or use kdl.Choice)",
                spec,
            )
    return dict(space)


def _infer_args(signature, fixed, space, x, y, builder: str) -> dict:
    """Values of the builder's required arguments that neither fixed nor space give.

    `input_shape` is read from x; `num_outputs` from y: the number of classes
    for a classification task, the width of y otherwise.
    """
    inferred = {}
    for name, param in signature.parameters.items():
        if (
            param.default is not param.empty
            or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            or name in fixed
            or name in space
        ):
            continue
        if name == "input_shape" and hasattr(x, "shape"):
            inferred[name] = tuple(int(d) for d in x.shape[1:])
        elif name == "num_outputs" and y is not None and hasattr(y, "shape"):
            task = fixed.get("task", "classification")
            task_param = signature.parameters.get("task")
            if (
                "task" not in fixed
                and task_param is not None
                and isinstance(task_param.default, str)
            ):
                task = task_param.default
            y = np.asarray(y)
            if task == "classification":
                inferred[name] = int(np.max(y)) + 1
            else:
                inferred[name] = 1 if y.ndim == 1 else int(y.shape[-1])
        else:
            v.fail(
                FUNC,
                "fixed",
                f"a dict giving {builder}'s required argument "
                f"{name!r} (it is not in space and cannot be read from the "
                "data)",
                dict(fixed),
            )
    return inferred


def _check_data(x, y, validation_data, validation_split, objective):
    if x is None:
        v.fail(
            FUNC,
            "x",
            "training inputs (an array, or a list or dict of arrays)",
            x,
            error=TypeError,
        )
    if hasattr(x, "shape") and hasattr(y, "shape") and len(x) != len(y):
        v.fail(FUNC, "y", f"as long as x ({len(x)} examples)", f"{len(y)} examples")
    if validation_data is not None and (
        not isinstance(validation_data, (tuple, list))
        or len(validation_data) not in (2, 3)
    ):
        v.fail(
            FUNC,
            "validation_data",
            "a tuple (x_val, y_val) or None",
            validation_data,
            error=TypeError,
        )
    v.check_fraction(validation_split, "validation_split", FUNC)
    if (
        objective.startswith("val_")
        and validation_data is None
        and (validation_split == 0.0)
    ):
        v.fail(
            FUNC,
            "validation_split",
            f"> 0 (or validation_data given) for the objective {objective!r}",
            validation_split,
        )


def _check_directory(directory, default_name: str) -> Path:
    if directory is None:
        return DEFAULT_ROOT / default_name
    if not isinstance(directory, (str, os.PathLike)) or not str(directory):
        v.fail(
            FUNC,
            "directory",
            "a folder path (str or PathLike) or None",
            directory,
            error=TypeError,
        )
    path = Path(directory)
    if path.exists() and not path.is_dir():
        v.fail(FUNC, "directory", "a folder, not a file", str(path))
    return path


# === The search (keras_tuner imported from here on) ===


def _write_atomic(path, text: str) -> None:
    """Writes text to a temporary file, then renames it over `path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _short_error(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


@dataclasses.dataclass
class _Job:
    """Everything a trial needs, gathered and checked by tune()."""

    build_fn: Callable
    takes_hp: bool
    space: dict
    fixed: dict
    inferred: dict
    signature: inspect.Signature
    builder: str
    algorithm: str
    objective: str
    direction: str
    x: Any
    y: Any
    validation_data: Any
    validation_split: float
    epochs: int
    batch_size: int
    patience: int
    seed: int | None
    verbose: int
    max_trials: int | None
    directory: Path
    started: float = 0.0

    def params(self, values: Mapping) -> dict:
        """The builder arguments of a trial's hyperparameter values."""
        if self.takes_hp:
            return {k: val for k, val in values.items() if not k.startswith("tuner/")}
        return {name: spec._decode(values[name]) for name, spec in self.space.items()}

    def call_builder(self, params: Mapping):
        """Calls the builder with the inferred, fixed and searched arguments."""
        kwargs = {**self.inferred, **self.fixed, **params}
        args = []
        for name, param in self.signature.parameters.items():
            if param.kind is param.POSITIONAL_ONLY and name in kwargs:
                args.append(kwargs.pop(name))
        return self.build_fn(*args, **kwargs)

    def rebuild(self, params: Mapping):
        """A new model from builder arguments (or hp values for build(hp))."""
        if not self.takes_hp:
            return self.call_builder(params)
        import keras_tuner as kt

        hp = kt.HyperParameters()
        hp.values.update(params)
        return self.build_fn(hp)

    def check_model(self, model, kt) -> None:
        """A builder that returns no compiled kdl.keras model stops the search."""
        try:
            v.check_keras_model(model, "build_fn", FUNC)
        except TypeError as err:
            raise kt.errors.FatalTypeError(str(err)) from err
        if not getattr(model, "_is_compiled", False):
            raise kt.errors.FatalValueError(
                f"The 'build_fn' parameter of {FUNC} must return a compiled model. "
                f"Got an uncompiled {type(model).__name__} from {self.builder} "
                "instead."
            )


@functools.cache
def _kt_classes():
    """keras_tuner, the oracle classes by algorithm, and the tuner class.

    Defined on first use so that keras_tuner is imported only by tune().
    """
    import keras_tuner as kt
    from keras_tuner.engine import base_tuner

    class ResumableOracle:
        """Oracle mixin: atomic state files, and no finished trial run twice.

        KerasTuner writes its JSON state in place, and ends a trial by saving
        the trial's file and then the oracle's: a process killed between the
        two reloads the finished trial as "ongoing" and runs it again. Here
        each file is written to a temporary name and renamed, and on reload a
        trial whose own file says it finished is recorded as finished.
        """

        def save(self):
            _write_atomic(self._get_oracle_fname(), json.dumps(self.get_state()))

        def _save_trial(self, trial):
            path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
            _write_atomic(path, json.dumps(trial.get_state()))

        def reload(self):
            super().reload()
            for trial_id in list(self._retry_queue):
                if self.trials[trial_id].status in ("COMPLETED", "FAILED"):
                    self._retry_queue.remove(trial_id)
                    self._run_times[trial_id] += 1
                    if trial_id not in self.end_order:
                        self.end_order.append(trial_id)
                    self._recovered(trial_id)

        def _recovered(self, trial_id):
            """Hook: a finished trial found on reload."""

    class GridOracle(ResumableOracle, kt.oracles.GridSearchOracle):
        """KerasTuner's grid oracle, with its walk saved so that it resumes.

        KerasTuner 1.4.8 does not save the grid walk (`_ordered_ids`,
        `_populate_next`; keras-tuner issue 1055): a reloaded grid search
        fails with KeyError or stops early. The walk is saved with the state.
        """

        def get_state(self):
            state = super().get_state()
            links, order = self._ordered_ids, []
            index = links._next_index[None]
            while index is not None:
                order.append(links._memory[index])
                index = links._next_index[index]
            state["kdl_grid_order"] = order
            state["kdl_grid_populate_next"] = list(self._populate_next)
            return state

        def set_state(self, state):
            super().set_state(state)
            self._ordered_ids = type(self._ordered_ids)()
            for trial_id in state.get("kdl_grid_order", []):
                self._ordered_ids.insert(trial_id)
            self._populate_next = list(state.get("kdl_grid_populate_next", []))

        def _recovered(self, trial_id):
            self._populate_next.append(trial_id)

    class BayesianOracle(ResumableOracle, kt.oracles.BayesianOptimizationOracle):
        """KerasTuner's Bayesian oracle, never running the same arguments twice.

        In a small discrete space its Gaussian process often proposes a point
        already tried, and KerasTuner 1.4.8 runs it again, spending the budget
        on repeats; such a proposal is replaced by an untried random point.
        """

        def populate_space(self, trial_id):
            response = super().populate_space(trial_id)
            values = response.get("values")
            if values is not None and self._duplicate(values):
                return self._random_populate_space()
            return response

    oracles = {
        "grid": GridOracle,
        "random": type(
            "RandomOracle", (ResumableOracle, kt.oracles.RandomSearchOracle), {}
        ),
        "bayesian": BayesianOracle,
        "hyperband": type(
            "HyperbandOracle", (ResumableOracle, kt.oracles.HyperbandOracle), {}
        ),
    }

    class SearchTuner(base_tuner.BaseTuner):
        """Runs each trial with the kdl builder and tf_keras `model.fit`."""

        def __init__(self, oracle, job: _Job, **kwargs):
            self.job = job
            hypermodel = job.build_fn if job.takes_hp else None
            super().__init__(oracle, hypermodel=hypermodel, **kwargs)

        # --- files ---

        def _weights_path(self, trial_id) -> str:
            return os.path.join(self.get_trial_dir(trial_id), _WEIGHTS_FILE)

        def _record_path(self, trial_id) -> str:
            return os.path.join(self.get_trial_dir(trial_id), _TRIAL_FILE)

        def record(self, trial_id) -> dict:
            try:
                with open(self._record_path(trial_id)) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {}

        def save(self):
            if not self._is_worker():
                self.oracle.save()
            _write_atomic(self._get_tuner_fname(), json.dumps(self.get_state()))

        # --- trials ---

        def _build(self, hp):
            job = self.job
            keras.backend.clear_session()
            if job.seed is not None:
                # Every trial starts from the same seed: trials differ by their
                # arguments only, and a rebuild with the same seed repeats one.
                keras.utils.set_random_seed(job.seed)
            try:
                if job.takes_hp:
                    model = self.hypermodel.build(hp)
                else:
                    model = job.call_builder(job.params(hp.values))
            except Exception as err:
                raise kt.errors.FailedTrialError(_short_error(err)) from err
            job.check_model(model, kt)
            return model

        def run_trial(self, trial):
            job = self.job
            hp = trial.hyperparameters
            values = hp.values
            record = {"epochs": 0, "seconds": None, "error": None}
            start = time.perf_counter()
            try:
                model = self._build(hp)
                if "tuner/trial_id" in values:
                    # Hyperband: continue from the earlier round's weights.
                    model.load_weights(self._weights_path(values["tuner/trial_id"]))
                stopper = keras.callbacks.EarlyStopping(
                    monitor=job.objective,
                    mode=job.direction,
                    patience=job.patience,
                    restore_best_weights=True,
                )
                history = model.fit(
                    job.x,
                    job.y,
                    validation_data=job.validation_data,
                    validation_split=(
                        0.0 if job.validation_data is not None else job.validation_split
                    ),
                    epochs=int(values.get("tuner/epochs", job.epochs)),
                    initial_epoch=int(values.get("tuner/initial_epoch", 0)),
                    batch_size=job.batch_size,
                    callbacks=[stopper, keras.callbacks.TerminateOnNaN()],
                    verbose=2 if job.verbose >= 2 else 0,
                )
                record["epochs"] = len(history.epoch)
                scores = history.history.get(job.objective)
                if scores is None:
                    raise kt.errors.FatalValueError(
                        f"The 'objective' parameter of {FUNC} must be a metric the "
                        f"model logs ({', '.join(history.history)}). Got "
                        f"{job.objective!r} instead."
                    )
                scores = np.asarray(scores, dtype="float64")
                if not np.isfinite(scores).any():
                    raise kt.errors.FailedTrialError(
                        f"{job.objective} was never finite (training diverged)"
                    )
                best = (
                    np.nanmin(scores) if job.direction == "min" else np.nanmax(scores)
                )
                # EarlyStopping restored the best epoch's weights.
                with atomic_path(self._weights_path(trial.trial_id)) as tmp:
                    model.save_weights(str(tmp))
                return {job.objective: float(best)}
            except Exception as err:
                failed = isinstance(err, kt.errors.FailedTrialError)
                record["error"] = str(err) if failed else _short_error(err)
                raise
            finally:
                record["seconds"] = round(time.perf_counter() - start, 3)
                _write_atomic(self._record_path(trial.trial_id), json.dumps(record))

        def load_model(self, trial):
            model = self._build(trial.hyperparameters)
            model.load_weights(self._weights_path(trial.trial_id))
            return model

        def on_trial_end(self, trial):
            try:
                super().on_trial_end(trial)
            finally:
                _report_trial(self, trial)

    return kt, oracles, SearchTuner


def _trial_number(tuner, trial_id) -> int:
    return tuner.oracle.start_order.index(trial_id) + 1


def _format(value) -> str:
    if _is_real(value) and not isinstance(value, numbers.Integral):
        return f"{value:.4g}"
    return value if isinstance(value, str) else repr(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _report_trial(tuner, trial) -> None:
    """Prints one line for a finished trial and rewrites trials.csv."""
    job = tuner.job
    _write_table(tuner)
    if job.verbose < 1:
        return
    record = tuner.record(trial.trial_id)
    total = f"/{job.max_trials}" if job.max_trials else ""
    params = job.params(trial.hyperparameters.values)
    args = ", ".join(f"{k}={_format(val)}" for k, val in params.items())
    if trial.status == "COMPLETED":
        best = tuner.oracle.get_best_trials(1)
        outcome = (
            f"{job.objective}={trial.score:.4f} in "
            f"{_plural(record.get('epochs', 0), 'epoch')}, "
            f"{record.get('seconds', 0):.1f} s "
            f"(best {best[0].score:.4f})"
        )
    else:
        outcome = f"failed: {record.get('error') or 'see trial.json'}"
    print(
        f"trial {_trial_number(tuner, trial.trial_id)}{total}: {args} -> {outcome}",
        flush=True,
    )


def _table(tuner):
    """The trials as a pandas DataFrame, in the order they started."""
    import pandas as pd

    job = tuner.job
    rows = []
    for trial_id in tuner.oracle.start_order:
        trial = tuner.oracle.trials[trial_id]
        values = trial.hyperparameters.values
        record = tuner.record(trial_id)
        status = {"COMPLETED": "completed", "RUNNING": "running"}.get(
            trial.status, "failed"
        )
        row = {"trial": _trial_number(tuner, trial_id), "status": status}
        row.update(job.params(values))
        row[job.objective] = trial.score if status == "completed" else math.nan
        row["epochs"] = record.get("epochs", 0)
        row["seconds"] = record.get("seconds", math.nan)
        if job.algorithm == "hyperband":
            parent = values.get("tuner/trial_id")
            row["continues"] = (
                _trial_number(tuner, parent) if parent is not None else None
            )
        row["error"] = record.get("error") or ""
        rows.append(row)
    table = pd.DataFrame(rows)
    if "continues" in table:
        table["continues"] = table["continues"].astype("Int64")
    return table


def _write_table(tuner):
    table = _table(tuner)
    _write_atomic(tuner.job.directory / TRIALS_CSV, table.to_csv(index=False))
    return table


def _search_description(job: _Job) -> dict:
    return {
        "builder": job.builder,
        "algorithm": job.algorithm,
        "objective": job.objective,
        "space": {name: repr(spec) for name, spec in job.space.items()},
        "fixed": sorted(job.fixed),
    }


def _prepare_directory(job: _Job, resume: bool) -> bool:
    """Checks the search folder; returns True when an earlier search resumes.

    Only a folder holding a kdl search is ever resumed or replaced: any other
    non-empty folder is refused, so nothing unrelated is deleted.
    """
    path = job.directory
    marker = path / _SEARCH_FILE
    if not path.exists() or not any(path.iterdir()):
        return False
    if not marker.exists():
        v.fail(
            FUNC,
            "directory",
            "a new or empty folder, or one holding a kdl "
            "search (it would be overwritten)",
            str(path),
        )
    if not resume:
        return False
    with open(marker) as f:
        earlier = json.load(f)
    if earlier != _search_description(job):
        v.fail(
            FUNC,
            "directory",
            "a folder holding this same search to resume "
            f"(it holds {earlier}); pick another directory or pass "
            "resume=False to start over",
            str(path),
        )
    return (path / "oracle.json").exists()


def _make_oracle(
    job: _Job, kt, oracles, hyperparameters, max_failures: int, factor: int
):
    kt_objective = kt.Objective(job.objective, direction=job.direction)
    # KerasTuner treats seed=0 as "no seed": shift by one.
    seed = None if job.seed is None else job.seed + 1
    common = dict(
        objective=kt_objective,
        seed=seed,
        hyperparameters=hyperparameters,
        max_consecutive_failed_trials=max_failures,
    )
    if job.algorithm == "hyperband":
        oracle = oracles["hyperband"](max_epochs=job.epochs, factor=factor, **common)
        oracle.max_trials = job.max_trials  # a cap on top of the brackets
        return oracle
    if job.algorithm == "bayesian":
        # KerasTuner starts with max(3 * dimensions, 3) random trials; in a
        # small budget that leaves no trial to the Gaussian process, so at
        # most half of the budget is random here.
        dims = len(job.space) if job.space else 1
        initial = max(2, min(3 * dims, job.max_trials // 2))
        return oracles["bayesian"](
            max_trials=job.max_trials, num_initial_points=initial, **common
        )
    return oracles[job.algorithm](max_trials=job.max_trials, **common)


@contextlib.contextmanager
def _quiet_keras_tuner(*, print_: bool = False):
    """Silences KerasTuner's tracebacks of failed trials (kdl prints a line).

    Its other prints ("Reloading Tuner from ...") are swallowed unless
    `print_`: during the search they are off anyway (oracle verbose 0) and
    stdout must stay open for Keras' epoch lines.
    """
    from keras_tuner.src import config as kt_config

    debug = kt_config.DEBUG
    kt_config.DEBUG = False
    try:
        with (
            warnings.catch_warnings(),
            (
                contextlib.nullcontext()
                if print_
                else contextlib.redirect_stdout(io.StringIO())
            ),
        ):
            # The Bayesian oracle's Gaussian-process fits warn about length
            # scales on every trial of a small search.
            warnings.filterwarnings("ignore", module=r"sklearn\.gaussian_process")
            yield
    finally:
        kt_config.DEBUG = debug


def tune(
    build_fn: Callable,
    x,
    y=None,
    *,
    space: Mapping[str, Int | Float | Choice | Boolean] | None = None,
    fixed: Mapping[str, Any] | None = None,
    algorithm: str = "bayesian",
    objective: str = "val_loss",
    direction: str | None = None,
    max_trials: int | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    patience: int = 3,
    validation_data=None,
    validation_split: float = 0.2,
    factor: int = 3,
    max_consecutive_failures: int = 3,
    directory: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int | None = None,
    verbose: int = 1,
) -> TuneResult:
    """Searches a builder's arguments for the best model.

    Each trial builds a model with `build_fn`, trains it with early stopping
    on `objective` (validation data or split honoured) and keeps the weights
    of its best epoch. The search runs in `directory`, where it can be
    resumed: a search that was stopped, even killed, picks up where it was
    and does not repeat finished trials.

    Args:
        build_fn: callable. A kdl builder (or any function with named
            arguments returning a compiled `kdl.keras` model), called as
            `build_fn(input_shape, num_outputs, **fixed, **arguments)`;
            `input_shape` and `num_outputs` are read from `x` and `y` unless
            `fixed` gives them. Or a KerasTuner-style `build(hp)` function,
            which declares its own space (`space` and `fixed` stay None).
        x: array, or list or dict of arrays. Training inputs.
        y: array or None. Training targets.
        space: dict. Builder argument name -> `kdl.Int`, `kdl.Float`,
            `kdl.Choice` or `kdl.Boolean`. Required for a builder.
        fixed: dict or None. Builder arguments that do not vary. Defaults to
            `None`.
        algorithm: str. "bayesian" (Gaussian-process Bayesian optimization),
            "random", "grid" (every combination of a discrete space, once) or
            "hyperband". Defaults to `"bayesian"`.
        objective: str. The logged metric to optimize, e.g. "val_loss" or
            "val_accuracy". Defaults to `"val_loss"`.
        direction: str or None. "min" or "max"; None reads it from the
            metric's name. Defaults to `None`.
        max_trials: int or None. Most trials to run. None runs the whole grid
            ("grid"), lets Hyperband's brackets decide, and means 10 for
            "random" and "bayesian". Defaults to `None`.
        epochs: int. Most epochs per trial (Hyperband's largest budget).
            Defaults to `10`.
        batch_size: int. Defaults to `32`.
        patience: int. Epochs without improvement of `objective` before a
            trial stops early. Defaults to `3`.
        validation_data: tuple or None. (x_val, y_val); replaces
            `validation_split` when given. Defaults to `None`.
        validation_split: float. Fraction of the end of `x` held out for
            validation when `validation_data` is None. Defaults to `0.2`.
        factor: int. Hyperband's reduction factor (2 or more). Defaults to
            `3`.
        max_consecutive_failures: int. The search stops with RuntimeError
            after this many failed trials in a row. Defaults to `3`.
        directory: str, PathLike or None. Folder of the search; None means
            `saved_models/tune_<builder>_<algorithm>`. It must be new, empty
            or hold a kdl search. Defaults to `None`.
        resume: bool. Continue the search found in `directory`; False deletes
            it and starts over. Defaults to `True`.
        seed: int or None. Seeds the algorithm and every trial (each trial
            starts from this seed, so trials differ by their arguments only).
            Sets the global Python, NumPy and TensorFlow seeds. Defaults to
            `None`.
        verbose: int. 0 silent, 1 one line per trial and a final table, 2
            also one line per epoch. Defaults to `1`.

    Returns:
        A :class:`TuneResult` with the best model, its arguments, its score
        and the table of all trials (also written to
        `directory / "trials.csv"`).

    Raises:
        TypeError: for an argument of the wrong type, or a builder that does
            not return a `kdl.keras` model.
        ValueError: for a bad argument, checked before any trial: an argument
            the builder does not take, an empty `kdl.Choice`, `high` <= `low`,
            an argument both fixed and searched, a continuous space for grid
            search, or a folder holding another search.
        RuntimeError: if `max_consecutive_failures` trials fail in a row, or
            no trial completes.

    Example:
        >>> from kdl import Choice, Float, build_mlp, datasets, tune
        >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
        >>> result = tune(build_mlp, x, y, algorithm="random", max_trials=3,
        ...               epochs=3, space={"hidden_units": Choice([(32,), (64,)]),
        ...               "learning_rate": Float(1e-3, 1e-2, log=True)},
        ...               directory="/tmp/kdl_tune_example", resume=False,
        ...               verbose=0)
        >>> model = build_mlp(x.shape[1:], 10, **result.best_params)
    """
    # === Arguments ===
    if not callable(build_fn):
        v.fail(FUNC, "build_fn", "a builder function", build_fn, error=TypeError)
    v.check_keras2(build_fn, "build_fn", FUNC)
    v.check_choice(algorithm, "algorithm", FUNC, ALGORITHMS)
    v.check_str(objective, "objective", FUNC)
    direction = _direction(objective, direction)
    v.check_int(max_trials, "max_trials", FUNC, allow_none=True)
    if max_trials is None and algorithm in ("random", "bayesian"):
        max_trials = 10
    v.check_int(epochs, "epochs", FUNC)
    v.check_int(batch_size, "batch_size", FUNC)
    v.check_int(patience, "patience", FUNC, min_value=0)
    v.check_int(factor, "factor", FUNC, min_value=2)
    v.check_int(max_consecutive_failures, "max_consecutive_failures", FUNC)
    v.check_bool(resume, "resume", FUNC)
    v.check_int(seed, "seed", FUNC, min_value=0, allow_none=True)
    v.check_int(verbose, "verbose", FUNC, min_value=0)
    if verbose > 2:
        v.fail(FUNC, "verbose", "0, 1 or 2", verbose)
    _check_data(x, y, validation_data, validation_split, objective)

    try:
        signature = inspect.signature(build_fn)
    except (TypeError, ValueError):
        v.fail(
            FUNC,
            "build_fn",
            "a function whose signature can be read",
            build_fn,
            error=TypeError,
        )
    builder = getattr(build_fn, "__name__", type(build_fn).__name__)
    takes_hp = _takes_hp(build_fn)
    if fixed is not None and not isinstance(fixed, Mapping):
        v.fail(
            FUNC, "fixed", "a dict of builder arguments or None", fixed, error=TypeError
        )
    fixed = dict(fixed or {})
    if takes_hp:
        if space is not None:
            v.fail(
                FUNC,
                "space",
                "None for a build(hp) function (it declares its "
                "own hyperparameters with hp.Int, hp.Choice, ...)",
                space,
            )
        if fixed:
            v.fail(FUNC, "fixed", "None for a build(hp) function", fixed)
        space, inferred = {}, {}
    else:
        names = set(signature.parameters)
        accepts_any = any(
            p.kind is p.VAR_KEYWORD for p in signature.parameters.values()
        )
        for name in fixed:
            if not accepts_any and name not in names:
                v.fail(
                    FUNC,
                    "fixed",
                    f"a dict of arguments {builder} takes "
                    f"({', '.join(signature.parameters)})",
                    name,
                )
        space = _check_space(space, fixed, signature, builder, algorithm)
        inferred = _infer_args(signature, fixed, space, x, y, builder)
    path = _check_directory(directory, f"tune_{builder}_{algorithm}")

    job = _Job(
        build_fn=build_fn,
        takes_hp=takes_hp,
        space=space,
        fixed=fixed,
        inferred=inferred,
        signature=signature,
        builder=builder,
        algorithm=algorithm,
        objective=objective,
        direction=direction,
        x=x,
        y=y,
        validation_data=(
            tuple(validation_data) if validation_data is not None else None
        ),
        validation_split=validation_split,
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        seed=seed,
        verbose=verbose,
        max_trials=max_trials,
        directory=path,
    )
    resuming = _prepare_directory(job, resume)

    # === Search ===
    kt, oracles, tuner_class = _kt_classes()
    hyperparameters = None
    if not takes_hp:
        hyperparameters = kt.HyperParameters()
        for name, spec in space.items():
            spec._declare(hyperparameters, name)
    if algorithm == "grid" and hyperparameters is not None:
        size = math.prod(len(list(h.values)) for h in hyperparameters.space)
        job.max_trials = size if max_trials is None else min(size, max_trials)
    oracle = _make_oracle(
        job, kt, oracles, hyperparameters, max_consecutive_failures, factor
    )
    with _quiet_keras_tuner():
        tuner = tuner_class(
            oracle,
            job,
            directory=str(path.parent),
            project_name=path.name,
            overwrite=not resuming,
        )
        tuner.oracle.verbose = 0
    _write_atomic(path / _SEARCH_FILE, json.dumps(_search_description(job)))

    done = len(tuner.oracle.end_order)
    if verbose:
        what = (
            f"{algorithm} search of {builder} over {', '.join(space)}"
            if space
            else f"{algorithm} search of {builder}"
        )
        limit = f", up to {job.max_trials} trials" if job.max_trials else ""
        print(
            f"kdl.tune: {what}{limit}, {_plural(epochs, 'epoch')} each, in {path}",
            flush=True,
        )
        if resuming:
            print(f"kdl.tune: resuming, {done} trial(s) already finished", flush=True)
    job.started = time.perf_counter()
    try:
        with _quiet_keras_tuner(print_=True):
            tuner.search()
    except kt.errors.FatalError as err:
        raise (err.__cause__ or err) from None
    except RuntimeError as err:
        if "consecutive failures" not in str(err):
            raise
        raise RuntimeError(
            f"tune stopped: {max_consecutive_failures} trials in a row failed "
            f"(see {path / TRIALS_CSV}). The last error: "
            f"{_last_error(tuner)}"
        ) from None

    # === Result ===
    table = _write_table(tuner)
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        raise RuntimeError(
            f"tune finished without a completed trial (see "
            f"{path / TRIALS_CSV}). The last error: "
            f"{_last_error(tuner)}"
        )
    best_trial = best[0]
    best_params = job.params(best_trial.hyperparameters.values)
    best_model = tuner.load_model(best_trial)
    if verbose:
        _print_summary(
            job,
            table,
            _trial_number(tuner, best_trial.trial_id),
            best_trial.score,
            best_params,
        )
    return TuneResult(
        best_model=best_model,
        best_params=best_params,
        best_score=float(best_trial.score),
        objective=objective,
        trials=table,
        directory=path,
        _rebuild=job.rebuild,
    )


def _last_error(tuner) -> str:
    for trial_id in reversed(tuner.oracle.end_order):
        error = tuner.record(trial_id).get("error")
        if error:
            return error
    return "unknown"


def _print_summary(
    job: _Job, table, best_number: int, best_score: float, best_params: Mapping
) -> None:
    import pandas as pd

    counts = table["status"].value_counts()
    seconds = time.perf_counter() - job.started
    args = ", ".join(f"{k}={_format(val)}" for k, val in best_params.items())
    shown = table.copy()
    shown["error"] = shown["error"].str.slice(0, 48)
    for name in best_params:
        if name in shown:
            shown[name] = shown[name].map(_format)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        text = shown.to_string(index=False, float_format=lambda f: f"{f:.4g}")
    print(
        f"\nkdl.tune: {len(table)} trials ({counts.get('completed', 0)} "
        f"completed, {counts.get('failed', 0)} failed) in {seconds:.1f} s; "
        f"best {job.objective}={best_score:.4f} (trial {best_number}) with "
        f"{args}\n{text}\n(also in {job.directory / TRIALS_CSV})",
        flush=True,
    )
