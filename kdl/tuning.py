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
through its documented extension point: a ``BaseTuner`` subclass
(:mod:`kdl._kt`) whose ``run_trial`` builds the model with the builder, trains
it with tf_keras ``model.fit`` (early stopping inside each trial) and returns
the objective, and whose ``load_model`` rebuilds the model and loads its
weights.

``keras_tuner`` takes seconds to import (it imports Keras 3): :mod:`kdl._kt`
is imported inside :func:`tune` only, never by ``import kdl`` or
``import kdl.tuning``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kdl import _files
from kdl import _search_space as spaces
from kdl import _tune_job as jobs
from kdl import _validation as v
from kdl._search_space import Boolean, Choice, Float, Int

__all__ = ["Int", "Float", "Choice", "Boolean", "TuneResult", "tune"]

FUNC = jobs.FUNC
ALGORITHMS = ("bayesian", "random", "grid", "hyperband")
DIRECTIONS = ("min", "max")
DEFAULT_ROOT = Path("saved_models")
TRIALS_CSV = jobs.TRIALS_CSV
# The validation split when neither validation_split nor validation_data is given.
DEFAULT_SPLIT = 0.2


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
        if not isinstance(spec, spaces.SPECS):
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
        if algorithm == "grid" and not spaces.is_discrete(spec):
            v.fail(
                FUNC,
                f"space[{name!r}]",
                "discrete for a grid search (give kdl.Float a step, or use kdl.Choice)",
                spec,
            )
    return dict(space)


def _task(signature, fixed) -> str | None:
    """The builder's task: from fixed, else its default; None when unknown."""
    if "task" in fixed:
        return fixed["task"]
    param = signature.parameters.get("task")
    if param is not None and isinstance(param.default, str):
        return param.default
    return None if param is None else "classification"


def _infer_args(signature, fixed, space, x, y, builder: str) -> dict:
    """Values of the builder's required arguments that neither fixed nor space give.

    `input_shape` is read from x; `num_outputs` from y: the number of classes
    for a classification task (labels are checked to be 0..K-1 first), the
    width of y otherwise.
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
            shape = tuple(y.shape)
            if (_task(signature, fixed) or "classification") == "classification":
                inferred[name] = int(np.max(y)) + 1
            else:
                inferred[name] = 1 if len(shape) == 1 else int(shape[-1])
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


# === The three records of a search: model, training, search ===


def _check_builder(build_fn, space, fixed, algorithm: str, x, y) -> jobs.BuildSpec:
    """Checks the builder, its space and fixed arguments; reads the rest."""
    if not callable(build_fn):
        v.fail(FUNC, "build_fn", "a builder function", build_fn, error=TypeError)
    v.check_keras2(build_fn, "build_fn", FUNC)
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
    name = getattr(build_fn, "__name__", type(build_fn).__name__)
    if fixed is not None and not isinstance(fixed, Mapping):
        v.fail(
            FUNC, "fixed", "a dict of builder arguments or None", fixed, error=TypeError
        )
    fixed = dict(fixed or {})
    if _takes_hp(build_fn):
        _check_hp_function(space, fixed)
        return jobs.BuildSpec(build_fn, name, signature, True, {}, {}, {})
    _check_fixed(fixed, signature, name)
    space = _check_space(space, fixed, signature, name, algorithm)
    _check_targets(signature, fixed, space, y)
    inferred = _infer_args(signature, fixed, space, x, y, name)
    return jobs.BuildSpec(build_fn, name, signature, False, space, fixed, inferred)


def _check_hp_function(space, fixed) -> None:
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


def _check_fixed(fixed: dict, signature, builder: str) -> None:
    params = signature.parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for name in fixed:
        if not accepts_any and name not in params:
            v.fail(
                FUNC,
                "fixed",
                f"a dict of arguments {builder} takes ({', '.join(params)})",
                name,
            )


def _check_targets(signature, fixed, space, y) -> None:
    """Class labels must be 0..K-1 before any model is built (kdl issue 11).

    Labels 1..3 would otherwise give a 4-class model with a class that does
    not exist.
    """
    if "task" in space or "num_outputs" in space or y is None:
        return
    task = _task(signature, fixed)
    num_classes = fixed.get("num_outputs")
    param = signature.parameters.get("num_outputs")
    if task is None and param is not None and param.default is param.empty:
        # No task argument: tune reads num_outputs as a number of classes.
        task = None if num_classes is not None else "classification"
    if task is None or not isinstance(num_classes, (int, type(None))):
        return
    v.check_targets(FUNC, y, task=task, num_classes=num_classes)


def _check_fit(
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


def _hold_out(fit: jobs.FitSpec) -> jobs.FitSpec:
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


def _check_search(
    algorithm, max_trials, factor, max_failures, directory, default_name, distributed
) -> jobs.SearchSpec:
    v.check_choice(algorithm, "algorithm", FUNC, ALGORITHMS)
    v.check_int(max_trials, "max_trials", FUNC, allow_none=True)
    if max_trials is None and algorithm in ("random", "bayesian"):
        max_trials = 10
    v.check_int(factor, "factor", FUNC, min_value=2)
    v.check_int(max_failures, "max_consecutive_failures", FUNC)
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


def _prepare_directory(job: jobs.Job, resume: bool) -> bool:
    """Readies the search folder; returns True when an earlier search resumes.

    Only a folder holding a kdl search is ever resumed or replaced: any other
    non-empty folder is refused. A search that is not resumed is moved aside
    to ``<name>.old-<timestamp>`` (kdl's one run-folder policy, as in
    kdl.train), never deleted.
    """
    path = job.directory
    marker = path / jobs.SEARCH_FILE
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
    if resume:
        earlier = _files.read_json(marker)
        if earlier != job.description():
            v.fail(
                FUNC,
                "directory",
                "a folder holding this same search to resume "
                f"(it holds {earlier}); pick another directory or pass "
                "resume=False to start over",
                str(path),
            )
        if (path / "oracle.json").exists():
            return True
    moved = _files.move_aside(path)
    if job.fit.verbose:
        print(f"kdl.tune: the earlier search was moved to {moved}", flush=True)
    return False


# === The search ===


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
    patience: int | None = 3,
    validation_data=None,
    validation_split: float | None = None,
    factor: int = 3,
    max_consecutive_failures: int = 3,
    directory: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int | None = None,
    verbose: int = 1,
    distributed: bool = False,
) -> TuneResult | None:
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
        patience: int or None. Early stopping inside each trial: a trial
            stops after `patience` epochs without improvement of `objective`,
            and keeps (and is scored by) the weights of its best epoch. None
            runs every trial for all `epochs`, still keeping its best epoch.
            Defaults to `3`.
        validation_data: tuple or None. (x_val, y_val) or (x_val, y_val,
            sample_weight), or a tf.data.Dataset; replaces `validation_split`.
            Defaults to `None`.
        validation_split: float or None. Fraction of `x` held out for
            validation by kdl (stratified by class for integer labels, the
            last windows for 3-D inputs, else at random; seeded by `seed`).
            None means 0.2 without `validation_data` and 0 with it; giving
            both is an error. An accuracy objective on fewer than 100
            validation examples warns that it is coarse. Defaults to `None`.
        factor: int. Hyperband's reduction factor (2 or more). Defaults to
            `3`.
        max_consecutive_failures: int. The search stops with RuntimeError
            after this many failed trials in a row. Defaults to `3`.
        directory: str, PathLike or None. Folder of the search; None means
            `saved_models/tune_<builder>_<algorithm>`. It must be new, empty
            or hold a kdl search. Defaults to `None`.
        resume: bool. Continue the search found in `directory`. False starts
            over: an earlier search there is moved aside to
            `<directory>.old-<timestamp>`, never deleted (the same policy as
            `kdl.train`). Defaults to `True`.
        seed: int or None. Seeds the algorithm and every trial (each trial
            starts from this seed, so trials differ by their arguments only).
            Sets the global Python, NumPy and TensorFlow seeds. Defaults to
            `None`.
        verbose: int. 0 silent, 1 one line per trial and a final table, 2
            also one line per epoch. Defaults to `1`.
        distributed: bool. Run the search in KerasTuner's chief/worker mode:
            the same script runs in one chief process and any number of
            worker processes, told apart by KerasTuner's environment
            variables `KERASTUNER_TUNER_ID` ("chief" for the chief, e.g.
            "tuner1" for workers), `KERASTUNER_ORACLE_IP` and
            `KERASTUNER_ORACLE_PORT` (the chief's address), which must be set
            (when they are, the search is distributed even with `False`).
            The chief serves the algorithm over gRPC and runs no trial; the
            workers run the trials. All share `directory` (one folder on one
            host, or a shared file system). A worker that stops answering for
            60 s (`KDL_TUNE_WORKER_TIMEOUT`) loses its trial, which another
            worker runs again once, then is marked failed. The chief returns
            the same TuneResult as a local search; a worker returns None when
            no trial is left. Defaults to `False`.

    Returns:
        A :class:`TuneResult` with the best model, its arguments, its score
        and the table of all trials (also written to
        `directory / "trials.csv"`); None on a worker of a distributed search.

    Raises:
        TypeError: for an argument of the wrong type, or a builder that does
            not return a `kdl.keras` model.
        ValueError: for a bad argument, checked before any trial: class
            labels that are not integers 0..K-1 (strings, 1..K: encode them
            with `kdl.datasets.load`), an argument
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
    v.check_choice(algorithm, "algorithm", FUNC, ALGORITHMS)
    v.check_bool(resume, "resume", FUNC)
    fit = _check_fit(
        x,
        y,
        objective=objective,
        direction=direction,
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        validation_data=validation_data,
        validation_split=validation_split,
        seed=seed,
        verbose=verbose,
    )
    build = _check_builder(build_fn, space, fixed, algorithm, x, y)
    search = _check_search(
        algorithm,
        max_trials,
        factor,
        max_consecutive_failures,
        directory,
        f"tune_{build.name}_{algorithm}",
        distributed,
    )
    job = jobs.Job(build, _hold_out(fit), search)
    worker = search.role == "worker"
    # Workers share the chief's folder: only the chief (or a local search)
    # prepares it.
    resuming = False if worker else _prepare_directory(job, resume)

    from kdl import _kt  # imports keras_tuner (seconds): only when searching

    tuner = _kt.make_tuner(job)
    if not worker:
        _files.write_json(job.directory / jobs.SEARCH_FILE, job.description())
    _announce(job, _kt.finished_trials(tuner), resuming)
    job.started = time.perf_counter()
    _kt.run_search(tuner)
    if worker:
        return None
    return _result(job, tuner, _kt.best_trial(tuner))


def _announce(job: jobs.Job, done: int, resuming: bool) -> None:
    if not job.fit.verbose:
        return
    search, space = job.search, job.build.space
    what = f"{search.algorithm} search of {job.build.name}"
    if space:
        what += f" over {', '.join(space)}"
    limit = f", up to {search.max_trials} trials" if search.max_trials else ""
    print(
        f"kdl.tune: {what}{limit}, {jobs.plural(job.fit.epochs, 'epoch')} each, "
        f"in {job.directory}",
        flush=True,
    )
    if search.role is not None:
        tuner_id = os.environ["KERASTUNER_TUNER_ID"]
        address = ":".join(os.environ[name] for name in KERASTUNER_ENV[1:])
        what = (
            "serving the search to workers (the chief runs no trial)"
            if search.role == "chief"
            else "running trials for the chief"
        )
        print(f"kdl.tune: {tuner_id} at {address}: {what}", flush=True)
    if resuming:
        print(f"kdl.tune: resuming, {done} trial(s) already finished", flush=True)


def _result(job: jobs.Job, tuner, best_trial) -> TuneResult:
    """The TuneResult of a finished search: table, best arguments and model."""
    oracle = tuner.oracle
    table = jobs.write_table(tuner, oracle)
    best_params = job.params(best_trial.hyperparameters.values)
    best_model = tuner.load_model(best_trial)
    if job.fit.verbose:
        jobs.print_summary(job, table, best_trial, best_params, oracle)
    return TuneResult(
        best_model=best_model,
        best_params=best_params,
        best_score=float(best_trial.score),
        objective=job.objective,
        trials=table,
        directory=job.directory,
        _rebuild=job.rebuild,
    )
