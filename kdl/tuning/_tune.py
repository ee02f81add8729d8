"""kdl.tune itself: its checks, the search folder and the result (see kdl.tuning)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kdl import _files, _keras_names
from kdl import _validation as v
from kdl._constants import ALGORITHMS
from kdl.tuning import _builder_args as builder_args
from kdl.tuning import _job as jobs
from kdl.tuning._search_space import Boolean, Choice, Float, Int
from kdl.tuning._tune_checks import (
    KERASTUNER_ENV,
    check_fit,
    check_search,
    hold_out,
    prepare_directory,
    with_fit_extras,
)

__all__ = ["Int", "Float", "Choice", "Boolean", "TuneResult", "tune"]

FUNC = jobs.FUNC
TRIALS_CSV = jobs.TRIALS_CSV


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
    max_consecutive_failed_trials: int = 3,
    directory: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int | None = None,
    verbose: int = 1,
    distributed: bool = False,
    objectives: list | tuple | None = None,
    constraints: Mapping[str, float] | None = None,
    max_time: float | str | None = None,
    callbacks=None,
    max_consecutive_failures=_keras_names.UNSET,
    **fit_kwargs,
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
        max_consecutive_failed_trials: int. The search stops with
            RuntimeError after this many failed trials in a row (KerasTuner's
            name). Defaults to `3`.
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
        objectives: list of str or None. Search under budgets (an Optuna
            search, kdl.tuning._budget): quantities to optimize together,
            measured on each trial's exported .tflite file: "accuracy" (or
            "mae", of the file in LiteRT on the validation data),
            "tflite_kb" (gzipped) or "tflite_raw_kb", "latency_ms" (LiteRT,
            one thread, median per example), "params", "macs", or a Keras
            metric of the best epoch ("val_accuracy"). The first one ranks
            `BudgetResult.best`. `space` may then also hold "quantization",
            "prune_sparsity" and "shrink" (or `fixed` may). Defaults to
            `None` (["accuracy", "tflite_kb"] when `constraints` is given).
        constraints: dict or None. Quantity -> limit, a ceiling (a floor for
            "accuracy" and other more-is-better metrics), e.g.
            `{"tflite_kb": 20, "latency_ms": 0.1}`. A size or latency named
            exports int8 unless "quantization" is set. Trials over a limit
            are kept as infeasible. Defaults to `None`.
        max_time: float, str or None. With objectives or constraints: no
            trial starts after this many seconds (or "90s", "10m", "2h");
            the one in flight finishes. Defaults to `None`.
        callbacks: list of kdl.keras callbacks or None. Passed to every
            trial's ``fit`` after kdl's early stopping (a fresh copy per
            trial, as KerasTuner does). Defaults to `None`.
        max_consecutive_failures: deprecated name of
            ``max_consecutive_failed_trials`` (DeprecationWarning; removed in
            the next release).
        **fit_kwargs: other arguments of ``Model.fit`` for every trial
            (``class_weight``, ``sample_weight``, ``steps_per_epoch``, ...),
            as KerasTuner's ``search(**fit_kwargs)``. ``sample_weight`` needs
            ``validation_data`` (kdl holds a split out itself).

    Returns:
        A :class:`TuneResult` with the best model, its arguments, its score
        and the table of all trials (also written to
        `directory / "trials.csv"`); None on a worker of a distributed search.
        With objectives or constraints, a :class:`BudgetResult`: the Pareto
        front (settings, figures, folder and .tflite of each point), every
        trial, `best(max_size_kb=..., max_latency_ms=...)` and the plot
        front.png.

    Raises:
        TypeError: for an argument of the wrong type, or a builder that does
            not return a `kdl.keras` model.
        ValueError: for a bad argument, checked before any trial: class
            labels that are not integers 0..K-1 (strings, 1..K: encode them
            with `kdl.datasets.load`), an argument
            the builder does not take, an empty `kdl.Choice`, `high` <= `low`,
            an argument both fixed and searched, a continuous space for grid
            search, or a folder holding another search.
        RuntimeError: if `max_consecutive_failed_trials` trials fail in a row, or
            no trial completes.

    Example:
        >>> from kdl import Choice, Float, build_mlp, datasets, tune
        >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
        >>> result = tune(build_mlp, x, y, algorithm="random", max_trials=3,
        ...               epochs=3, space={"dense_units": Choice([(32,), (64,)]),
        ...               "learning_rate": Float(1e-3, 1e-2, log=True)},
        ...               directory="/tmp/kdl_tune_example", resume=False,
        ...               verbose=0)
        >>> model = build_mlp(x.shape[1:], 10, **result.best_params)
    """
    if objectives is not None or constraints is not None or max_time is not None:
        return _tune_under_budgets(dict(locals()))
    v.check_choice(algorithm, "algorithm", FUNC, ALGORITHMS)
    v.check_bool(resume, "resume", FUNC)
    max_failed = _keras_names.renamed(
        FUNC, "max_consecutive_failures", "max_consecutive_failed_trials",
        max_consecutive_failures, max_consecutive_failed_trials, 3,
    )  # fmt: skip
    fit = check_fit(
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
    fit = with_fit_extras(fit, callbacks, fit_kwargs)
    build = builder_args.check_builder(build_fn, space, fixed, algorithm, x, y)
    search = check_search(
        algorithm,
        max_trials,
        factor,
        max_failed,
        directory,
        f"tune_{build.name}_{algorithm}",
        distributed,
    )
    job = jobs.Job(build, hold_out(fit), search)
    worker = search.role == "worker"
    from kdl import _run_folder
    from kdl.tuning import _kt  # imports keras_tuner (seconds): only when searching

    # One process per search folder (issue 29). Workers share the chief's
    # folder: only the chief (or a local search) locks and prepares it.
    with _run_folder.FolderLock(FUNC, "search folder") as lock:
        resuming = False if worker else prepare_directory(job, resume, lock)
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


def _with_search_cost(tuner, model, best_trial):
    """A private best model's statement composes every trial (issue 30)."""
    from kdl.privacy import search_cost

    records = {tid: tuner.record(tid) for tid in tuner.oracle.trials}
    return search_cost.with_search_cost(model, records, best_trial.trial_id)


def _result(job: jobs.Job, tuner, best_trial) -> TuneResult:
    """The TuneResult of a finished search: table, best arguments and model."""
    oracle = tuner.oracle
    table = jobs.write_table(tuner, oracle)
    best_params = job.params(best_trial.hyperparameters.values)
    best_model = _with_search_cost(tuner, tuner.load_model(best_trial), best_trial)
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


# === Under budgets: several objectives and constraints (kdl.tuning._budget) ===


def _tune_under_budgets(call: dict):
    """kdl.tune with objectives, constraints or max_time: an Optuna search.

    ``call`` holds tune's arguments by name.
    """
    from kdl import _run_folder
    from kdl.tuning import _budget

    job, budget = _budget_job(call, _budget)
    with _run_folder.FolderLock(FUNC, "search folder") as lock:
        _budget.prepare(job, budget, call["resume"], lock)
        return _budget.search(job, budget)


def _budget_job(call: dict, _budget):
    """Checks a search under budgets: the job and the budget, before any trial."""
    objectives, constraints = call["objectives"], call["constraints"]
    x, y, algorithm = call["x"], call["y"], call["algorithm"]
    if objectives is None and constraints is None:
        v.fail(
            FUNC, "max_time", "given with objectives or constraints", call["max_time"]
        )
    objectives, constraints = _budget.check_objectives(objectives, constraints)
    max_time = _budget.parse_time(call["max_time"])
    v.check_choice(algorithm, "algorithm", FUNC, _budget.ALGORITHMS)
    v.check_bool(call["resume"], "resume", FUNC)
    if call["distributed"]:
        v.fail(FUNC, "distributed", "False with objectives or constraints", True)
    extra = call["fit_kwargs"] or call["callbacks"]
    if extra:  # not passed on to the budget search's trials yet: say so
        v.fail(FUNC, "fit_kwargs", "empty with objectives or constraints", extra)
    fit_args = ("objective", "direction", "epochs", "batch_size", "patience")
    fit_args += ("validation_data", "validation_split", "seed", "verbose")
    fit = hold_out(check_fit(x, y, **{name: call[name] for name in fit_args}))
    if not isinstance(fit.validation_data, tuple):
        v.fail(FUNC, "validation_data", "arrays (x_val, y_val) here", "a dataset")
    space, fixed, squeeze, held = _budget.split_space(call["space"], call["fixed"])
    build = builder_args.check_builder(call["build_fn"], space, fixed, algorithm, x, y)
    if build.takes_hp:
        v.fail(FUNC, "build_fn", "a builder with named arguments here", build.name)
    sized = {"tflite_kb", "tflite_raw_kb", "latency_ms"} & {*objectives, *constraints}
    if sized and "quantization" not in {*squeeze, *held}:
        # A size or latency budget: int8 by default ("dynamic" for a private
        # builder, whose int8 calibration would read the private data).
        held["quantization"] = "int8"
        held["default_quantization"] = True
    search = check_search(
        algorithm,
        10 if call["max_trials"] is None else call["max_trials"],
        3,
        _keras_names.renamed(
            FUNC,
            "max_consecutive_failures",
            "max_consecutive_failed_trials",
            call["max_consecutive_failures"],
            call["max_consecutive_failed_trials"],
            3,
        ),  # fmt: skip
        call["directory"],
        f"tune_{build.name}_budgets",
        False,
    )
    budget = _budget.Budget(
        objectives=objectives,
        constraints=constraints,
        space={**build.space, **squeeze},
        compression=held,
        max_trials=search.max_trials,
        max_time=max_time,
        algorithm=algorithm,
        directory=search.directory,
    )
    return jobs.Job(build, fit, search), budget
