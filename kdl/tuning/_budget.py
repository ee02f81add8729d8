"""kdl.tune under budgets: several objectives and constraints, with Optuna.

KerasTuner's oracles optimize one number; a question like "the most accurate
model under 20 KB that answers in 0.1 ms" needs several objectives and
constraints, so this path uses Optuna (its TPE sampler handles both, with
``constraints_func``) through its ask-and-tell interface. Each trial builds
the model, trains it, compresses it when the space says so, exports it
(int8 by default under a size or latency budget), and measures the exported
file in LiteRT on the validation data. Every trial is recorded in its folder
(``trials/trial_NNNN/kdl_trial.json``, with its ``model.tflite``), infeasible
ones too; Optuna's study lives in ``optuna.db`` (SQLite) beside them, so a
killed search resumes: a trial that was in flight is run again.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import time
from collections.abc import Mapping
from pathlib import Path

from kdl import _files
from kdl import _validation as v
from kdl.tuning import _budget_output as output
from kdl.tuning import _front as fr
from kdl.tuning import _job as jobs
from kdl.tuning import _private_search as private
from kdl.tuning import _search_space as spaces

FUNC = jobs.FUNC
STORAGE = "optuna.db"
RECORD = "kdl_trial.json"
TFLITE = "model.tflite"
# Settings of the space (or of fixed) that are not builder arguments.
COMPRESSION = ("quantization", "prune_sparsity", "shrink")
QUANTIZATIONS = (None, "dynamic", "float16", "int8")
ALGORITHMS = ("bayesian", "random")  # Optuna's TPE, or its random sampler


class BudgetError(ValueError):
    """A mistake every trial would make (an objective no trial measures)."""


@dataclasses.dataclass
class Budget:
    """What a search under budgets optimizes, within what, for how long."""

    objectives: tuple
    constraints: dict
    space: dict  # builder arguments and compression settings together
    compression: dict  # fixed compression settings
    max_trials: int
    max_time: float | None
    algorithm: str
    directory: Path
    privacy_plan: dict | None = None  # a private builder's (_private_search)


# === Checks (all before any import of Optuna or training) ===


def _names(value, arg: str) -> None:
    for name in value:
        if not isinstance(name, str) or not name:
            v.fail(FUNC, arg, "names of measured quantities or metrics", name)
        if name == "epsilon" and arg == "objectives":
            # One cost for the whole search, the same for every trial.
            v.fail(FUNC, arg, "without 'epsilon': a private search's epsilon "
                   "is one budget for all its trials, give it as "
                   "constraints={'epsilon': ...}", name)  # fmt: skip


def check_objectives(objectives, constraints) -> tuple[tuple, dict]:
    """The objectives (default: accuracy, then size) and the constraints."""
    if constraints is None:
        constraints = {}
    if not isinstance(constraints, Mapping):
        v.fail(FUNC, "constraints", "a dict {quantity: limit}", constraints)
    _names(constraints, "constraints")
    for name, limit in constraints.items():
        v.check_float(limit, f"constraints[{name!r}]", FUNC, min_value=None)
    if objectives is None:
        objectives = ("accuracy", "tflite_kb")
    if isinstance(objectives, str) or not isinstance(objectives, (list, tuple)):
        v.fail(FUNC, "objectives", "a list of quantity or metric names", objectives)
    if not objectives or len(set(objectives)) != len(objectives):
        v.fail(FUNC, "objectives", "a non-empty list without repeats", objectives)
    _names(objectives, "objectives")
    return tuple(objectives), {k: float(val) for k, val in constraints.items()}


def parse_time(value) -> float | None:
    """Seconds of a max_time: a number of seconds, or "90s", "10m", "2h"."""
    if value is None:
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9.]+)\s*([smh]?)\s*", value)
        if match:
            try:
                return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]
            except ValueError:
                pass
        v.fail(FUNC, "max_time", 'seconds, or a str like "90s", "10m", "2h"', value)
    return v.check_float(value, "max_time", FUNC, strict_min=True)


def split_space(space, fixed) -> tuple[dict, dict, dict, dict]:
    """(builder space, builder fixed, compression space, fixed compression)."""
    space = dict(space) if isinstance(space, Mapping) else space
    fixed = {} if fixed is None else fixed
    fixed = dict(fixed) if isinstance(fixed, Mapping) else fixed
    if not isinstance(space, dict) or not isinstance(fixed, dict):
        return space, fixed, {}, {}  # check_builder says what is wrong
    squeeze = {k: space.pop(k) for k in COMPRESSION if k in space}
    held = {k: fixed.pop(k) for k in COMPRESSION if k in fixed}
    for name, value in held.items():
        _check_setting(name, value, f"fixed[{name!r}]")
    for name, spec in squeeze.items():
        if isinstance(spec, spaces.Choice):
            for value in spec.values:
                _check_setting(name, value, f"space[{name!r}]")
        elif name == "quantization" or not isinstance(spec, spaces.Float):
            v.fail(FUNC, f"space[{name!r}]", "a kdl.Choice (or kdl.Float)", spec)
    return space, fixed, squeeze, held


def _check_setting(name: str, value, arg: str) -> None:
    if name == "quantization":
        if not isinstance(value, (str, type(None))) or value not in QUANTIZATIONS:
            v.fail(FUNC, arg, "None, 'dynamic', 'float16' or 'int8'", value)
    else:
        v.check_float(value, arg, FUNC, min_value=0.0, allow_none=True)
        if value is not None and value >= 1:
            v.fail(FUNC, arg, "a fraction in [0, 1)", value)


# === One trial ===


class OptunaHP:
    """KerasTuner's ``hp`` calls, answered by an Optuna trial.

    The kdl specs (Int, Float, Choice, Boolean) declare themselves through
    ``hp.Int(...)`` etc. (kdl.tuning._search_space): this adapter lets the
    same specs drive Optuna.
    """

    def __init__(self, trial):
        self.trial = trial

    def Int(self, name, low, high, step=1):  # noqa: N802 (KerasTuner's names)
        return self.trial.suggest_int(name, low, high, step=step)

    def Float(self, name, low, high, step=None, sampling="linear"):  # noqa: N802
        log = sampling == "log"
        return self.trial.suggest_float(
            name, low, high, step=None if log else step, log=log
        )

    def Choice(self, name, values):  # noqa: N802
        return self.trial.suggest_categorical(name, list(values))

    def Boolean(self, name):  # noqa: N802
        return self.trial.suggest_categorical(name, [False, True])


def trial_params(trial, budget: Budget) -> dict:
    hp = OptunaHP(trial)
    return {
        name: spaces.decode(spec, spaces.declare(spec, hp, name))
        for name, spec in budget.space.items()
    }


def trial_epsilon(model) -> float | None:
    """The epsilon a private trial's file states (the search's whole cost,
    :mod:`kdl.tuning._private_search`); None for a model that is not private."""
    if not private.is_private_model(model):
        return None
    from kdl import privacy

    return float(privacy.statement(model).epsilon)


def _build(job, budget: Budget, params: dict):
    """Builds one trial's model; plans a private search at its first model."""
    from kdl.backend import keras

    if job.fit.seed is not None:
        keras.utils.set_random_seed(job.fit.seed)
    model = job.call_builder(params)
    v.check_keras_model(model, "build_fn", FUNC)
    if budget.privacy_plan is None:
        budget.privacy_plan = private.plan_search(job, budget, model, BudgetError)
    elif budget.privacy_plan:
        private.check_trial_model(model, budget.privacy_plan)
    return model


def _train(job, model):
    """Trains one model; returns it and its best epoch's logs."""
    from kdl.backend import keras

    fit = job.fit
    mode = "max" if fr.direction(fit.objective) == "max" else "min"
    stop = keras.callbacks.EarlyStopping(
        monitor=fit.objective,
        mode=mode,
        patience=fit.patience,
        restore_best_weights=True,
    )
    history = model.fit(
        fit.x,
        fit.y,
        validation_data=fit.validation_data,
        epochs=fit.epochs,
        batch_size=fit.batch_size,
        callbacks=[stop],
        verbose=2 if fit.verbose >= 2 else 0,
    )
    logs = history.history
    values = logs[fit.objective]
    best = values.index(max(values) if mode == "max" else min(values))
    return model, {name: float(series[best]) for name, series in logs.items()}


def _compress(model, job, settings: Mapping):
    from kdl import compression

    fit = job.fit
    common = dict(
        epochs=fit.epochs,
        batch_size=fit.batch_size,
        validation_data=fit.validation_data,
        verbose=0,
    )
    if settings.get("shrink"):
        model = compression.shrink(
            model, fit.x, fit.y, fraction=settings["shrink"], **common
        )
    if settings.get("prune_sparsity"):
        model = compression.prune(
            model, fit.x, fit.y, target_sparsity=settings["prune_sparsity"], **common
        )
    return model


def _measure(model, path: Path, job) -> dict:
    """The figures of one exported file, measured in LiteRT on validation data."""
    from kdl import export
    from kdl.compression import multiply_adds

    x_val, y_val = job.fit.validation_data[:2]
    found = export.evaluate_tflite(path, x_val, y_val, latency_samples=100)
    data = path.read_bytes()
    figures = {k: float(found[k]) for k in ("accuracy", "mae") if k in found}
    figures.update(
        tflite_kb=len(gzip.compress(data, 9)) / 1000.0,
        tflite_raw_kb=len(data) / 1000.0,
        latency_ms=float(found["latency_ms_median"]),
        params=int(model.count_params()),
        macs=int(multiply_adds(model)["total"]),
    )
    figures["epsilon"] = trial_epsilon(model)
    return figures


def run_trial(job, budget: Budget, trial, folder: Path, earlier: list) -> dict:
    """Trains, compresses, exports and measures one trial; returns its record."""
    from kdl import export

    params = trial_params(trial, budget)
    settings = {
        **budget.compression,
        **{k: params[k] for k in COMPRESSION if k in params},
    }
    builder = {k: val for k, val in params.items() if k not in COMPRESSION}
    record = {"number": trial.number + 1, "folder": _relative(folder), "params": params}
    started = time.perf_counter()
    model, logs = _train(job, _build(job, budget, builder))
    model = _compress(model, job, settings)
    record["train_seconds"] = time.perf_counter() - started
    if not budget.privacy_plan:  # a search that is not private
        private.void_among_plain(model)
    else:  # the search's cost, on the file
        record["privacy"] = private.trial_privacy(model, budget.privacy_plan)
        private.state_search_cost(
            model, budget.privacy_plan, earlier, record["privacy"]
        )
    started = time.perf_counter()
    x_train, x_val = job.fit.x, job.fit.validation_data[0]
    path = export.to_tflite(
        model,
        folder / TFLITE,
        quantization=settings.get("quantization"),
        representative_data=x_train[:256],
        check_data=x_val,
        # A search measures each file's own accuracy in LiteRT, quantization
        # loss included: a quantized file that agrees less with its Keras
        # model scores lower, it is not refused (a float file is still checked).
        min_agreement=0.0,
        regression_tolerance=1e9,
        verbose=0,
    )
    figures = _measure(model, path, job)
    figures.update({k: val for k, val in logs.items() if k not in figures})
    record["measure_seconds"] = time.perf_counter() - started
    missing = [name for name in budget.objectives if figures.get(name) is None]
    if missing:
        v.fail(
            FUNC,
            "objectives",
            f"quantities the trials measure ({', '.join(sorted(figures))})",
            missing[0],
            error=BudgetError,
        )
    over = fr.violations(figures, budget.constraints)
    record.update(
        status="completed",
        figures=figures,
        tflite=TFLITE,
        violations=over,
        feasible=all(x <= 0 for x in over.values()),
    )
    return record


def json_params(params: Mapping) -> dict:
    return {
        k: list(val) if isinstance(val, tuple) else val for k, val in params.items()
    }


def load_records(directory: Path) -> list:
    """Every trial's record, in order (tuples restored in the settings)."""
    records = []
    for path in sorted((directory / "trials").glob(f"trial_*/{RECORD}")):
        record = _files.read_json(path)
        if record is None:
            continue
        record["params"] = {
            k: tuple(val) if isinstance(val, list) else val
            for k, val in record["params"].items()
        }
        records.append(record)
    return records


# === The search ===

# Optuna's own prefix of a trial's constraint values (what
# Trial.set_constraint stores), written for a trial finished by _recover.
CONSTRAINTS_KEY = "constraints:"


def _study(job, budget: Budget, finished: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = job.fit.seed
    # A resumed search draws new points, not the first ones again.
    seed = None if seed is None else seed + finished
    if budget.algorithm == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=min(10, max(2, budget.max_trials // 3)),
            multivariate=True,
        )
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{(budget.directory / STORAGE).resolve()}"
    )
    directions = [
        "maximize" if fr.direction(name) == "max" else "minimize"
        for name in budget.objectives
    ]
    study = optuna.create_study(
        storage=storage,
        study_name="kdl",
        directions=directions,
        sampler=sampler,
        load_if_exists=True,
    )
    return study, storage


def _recover(study, storage, budget: Budget) -> None:
    """Ends the trials a killed search left running.

    The folder lock guarantees no other process runs this search, so a
    running trial is one whose process died. A trial whose record was
    written is finished from it; any other is marked failed and queued to
    run again with the same settings.
    """
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name("kdl")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            study_id, trial.number
        )
        path = budget.directory / "trials" / _folder_name(trial.number) / RECORD
        record = _files.read_json(path) if path.exists() else None
        if record is not None and record["status"] == "completed":
            for name, over in record["violations"].items():
                storage.set_trial_system_attr(trial_id, CONSTRAINTS_KEY + name, over)
            values = [record["figures"][name] for name in budget.objectives]
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values)
            continue
        storage.set_trial_user_attr(trial_id, "kdl_killed", True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if record is None:
            study.enqueue_trial(trial.params, user_attrs={"kdl_rerun_of": trial.number})


def _relative(folder: Path) -> str:
    return f"{folder.parent.name}/{folder.name}"


def _folder_name(number: int) -> str:
    return f"trial_{number + 1:04d}"


def _one(job, budget: Budget, study, earlier: list) -> dict:
    """Asks Optuna for one trial, runs it, records it, tells Optuna."""
    from optuna.trial import TrialState

    trial = study.ask()
    folder = budget.directory / "trials" / _folder_name(trial.number)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        record = run_trial(job, budget, trial, folder, earlier)
    except BudgetError:
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as err:  # a failed trial is recorded, the search goes on
        record = {
            "number": trial.number + 1,
            "folder": _relative(folder),
            "params": _params_or_empty(trial, budget),
            "status": "failed",
            "error": jobs.short_error(err),
            "figures": {},
            "violations": {},
            "feasible": False,
        }
        if budget.privacy_plan:  # it may have trained: its plan
            record["privacy"] = private.planned_record(budget.privacy_plan)
    _files.write_json(
        folder / RECORD, {**record, "params": json_params(record["params"])}
    )
    if record["status"] == "completed":
        for name, over in record["violations"].items():
            trial.set_constraint(name, over)  # Optuna's c-TPE reads them
        study.tell(trial, [record["figures"][name] for name in budget.objectives])
    else:
        study.tell(trial, state=TrialState.FAIL)
    return record


def _params_or_empty(trial, budget: Budget) -> dict:
    try:
        return trial_params(trial, budget)
    except Exception:  # noqa: BLE001 - the settings are only for the table
        return {}


def search(job, budget: Budget) -> fr.BudgetResult:
    """Runs (or resumes) the search until max_trials or max_time."""
    started = time.perf_counter()
    records = load_records(budget.directory)
    study, storage = _study(job, budget, len(records))
    _recover(study, storage, budget)
    records = load_records(budget.directory)
    budget.privacy_plan = private.resume_plan(job, budget, BudgetError) or None
    output.announce(job, budget, len(records))
    stopped, failures = "max_trials", 0
    while len(records) < budget.max_trials:
        elapsed = time.perf_counter() - started
        if budget.max_time is not None and elapsed >= budget.max_time:
            stopped = "max_time"
            break
        record = _one(job, budget, study, records)
        records.append(record)
        fr.write_table(records, budget.directory, jobs.TRIALS_CSV)
        output.report(job, budget, record)
        failures = 0 if record["status"] == "completed" else failures + 1
        if failures >= job.search.max_failures:
            raise RuntimeError(
                f"{FUNC}: {failures} trials failed in a row; the last: "
                f"{record['error']} (see {budget.directory / jobs.TRIALS_CSV})"
            )
    return result(job, budget, records, stopped)


def result(job, budget: Budget, records: list, stopped: str) -> fr.BudgetResult:
    front = fr.pareto(records, budget.objectives)
    frame = fr.write_table(records, budget.directory, jobs.TRIALS_CSV)
    plot = fr.plot(
        records,
        front,
        budget.objectives,
        budget.constraints,
        budget.directory / fr.FRONT_PLOT,
    )
    found = fr.BudgetResult(
        front=[fr.point(r, budget.directory) for r in front],
        trials=frame,
        objectives=budget.objectives,
        constraints=dict(budget.constraints),
        directory=budget.directory,
        stopped=stopped,
        plot=plot,
        records=records,
    )
    if job.fit.verbose:
        output.summary(found)
    return found


# === The folder ===


def description(job, budget: Budget) -> dict:
    """What identifies a search under budgets in its folder."""
    return {
        "builder": job.build.name,
        "algorithm": budget.algorithm,
        "objectives": list(budget.objectives),
        "constraints": budget.constraints,
        "space": {name: repr(spec) for name, spec in budget.space.items()},
        "fixed": sorted(job.build.fixed),
        "compression": json_params(budget.compression),
        "validation": job.fit.objective,
    }


def prepare(job, budget: Budget, resume: bool, lock) -> None:
    """Readies the search folder: resumes this same search, or starts anew.

    Only a folder holding a kdl search is resumed or replaced; one that is
    not resumed is moved aside (kdl's run-folder policy), never deleted.
    """
    expected = description(job, budget)
    state = jobs.open_folder(budget.directory, lock, expected, resume,
                             verbose=job.fit.verbose)  # fmt: skip
    if state != "same":
        _files.write_json(budget.directory / jobs.SEARCH_FILE, expected)
