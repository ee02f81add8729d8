"""A search under budgets over private trials: its whole cost, planned and stated.

When the builder returns a private model (``kdl.privacy.make_private``),
every trial trains with DP-SGD on the same private data, and choosing among
the trials looks at all of them: what the chosen model reveals is bounded by
every trial's training composed (:mod:`kdl.privacy.search_cost`), never by
its own training alone (issue 24, item 5).

The number of trials a search runs is bounded (``max_trials``, or fewer when
``constraints={"epsilon": B}`` allows fewer), so its cost is known before the
first trial trains: each trial is planned as one fit of ``epochs`` epochs in
batches of ``batch_size`` over the distinct training rows, at the builder's
noise multiplier. Each trial's ``.tflite`` file states the search's cost
when it was written: the trials that ran, as they ran, and the trials still
to come, as planned. A trial may train less than its plan (early stopping:
fewer steps), never more: a trial whose recorded training exceeds the plan
(more steps, less noise, a higher sampling rate) voids the statements of the
files written after it. A search that stops early (``max_time``, failures)
states more than it cost, never less.

Selection among trials reads the held-out validation data, as checkpoint
selection does in ``kdl.train``: the statement covers the training data.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from kdl import _files
from kdl import _validation as v

__all__ = [
    "plan_search",
    "check_trial_model",
    "is_private_model",
    "resume_plan",
    "void_among_plain",
    "trial_privacy",
    "state_search_cost",
    "PLAN_FILE",
]

FUNC = "kdl.tune"
PLAN_FILE = "privacy_plan.json"
# Compression a private trial cannot have: each reads the training data
# without DP-SGD's noise (int8 calibration ranges; fine-tuning).
_NOT_PRIVATE = {
    "int8": "int8 calibrates its ranges on the training data without noise",
    "prune_sparsity": "pruning fine-tunes on the training data without DP-SGD",
    "shrink": "shrinking fine-tunes on the training data without DP-SGD",
}


def is_private_model(model) -> bool:
    if not hasattr(model, "privacy"):  # cheap test before importing kdl.privacy
        return False
    from kdl import privacy

    return privacy.is_private(model)


def _trial_plan(job, model, error=ValueError) -> dict:
    """One trial's planned session: what every trial may train at most."""
    fit = job.fit
    if not isinstance(fit.x, np.ndarray) or not isinstance(fit.y, np.ndarray):
        v.fail(FUNC, "x", "NumPy arrays x and y for a private search (its plan "
               "counts the rows)", type(fit.x).__name__, error=error)  # fmt: skip
    from kdl.privacy import search_cost

    n, copies = search_cost.row_counts(fit.x, fit.y)
    batch = min(n, int(fit.batch_size or 32))  # what model.fit uses
    return {
        "num_examples": n,
        "batch_size": batch,
        "epochs": int(fit.epochs),
        "steps": int(fit.epochs) * math.ceil(len(fit.x) / batch),
        "noise_multiplier": float(model.privacy["noise_multiplier"]),
        "multiplicity": copies,  # rows repeated: a group (kdl.privacy)
        "elements": len(fit.x),
        "planned": True,
    }


def _epsilon(sessions: list, delta: float) -> float:
    from kdl.privacy import accounting

    runs = [
        (s["num_examples"], s["batch_size"], s["steps"], s["noise_multiplier"],
         s.get("multiplicity"), s.get("elements"))
        for s in sessions
    ]  # fmt: skip
    return accounting.epsilon_of_sessions(None, runs, delta)


def _step(session: dict) -> tuple[float, float]:
    """(sampling rate, noise multiplier) one step of ``session`` is accounted at."""
    from kdl.privacy import accounting

    noise = float(session.get("noise_multiplier") or 0.0)
    copies = int(session.get("multiplicity") or 1)
    if copies > 1:
        return accounting.group_step(
            noise,
            batch_size=session["batch_size"],
            elements=session["elements"],
            copies=copies,
        )
    return min(1.0, session["batch_size"] / session["num_examples"]), noise


def _trials_within(plan: dict, delta: float, limit: float | None, most: int) -> int:
    """How many planned trials fit under epsilon ``limit`` (all when None)."""
    if limit is None:
        return most
    fits = 0
    while fits < most and _epsilon([plan] * (fits + 1), delta) <= limit:
        fits += 1
    return fits


def _check_compression(budget, error) -> None:
    settings = dict(budget.compression)
    for name, spec in budget.space.items():
        values = getattr(spec, "values", None)
        settings[name] = values if values is not None else [spec]
    for name, why in _NOT_PRIVATE.items():
        key = "quantization" if name == "int8" else name
        values = settings.get(key)
        values = values if isinstance(values, (list, tuple)) else [values]
        if any(value == name if key == "quantization" else value for value in values):
            arg = "fixed" if key in budget.compression else "space"
            hint = ("use None, 'dynamic' or 'float16'" if key == "quantization"
                    else "leave it out")  # fmt: skip
            v.fail(FUNC, arg, f"free of {key}={values!r} for a private "
                   f"builder ({why}; {hint})", key, error=error)  # fmt: skip


def _private_compression(budget, error) -> None:
    if budget.compression.pop("default_quantization", False):
        budget.compression["quantization"] = "dynamic"  # int8 would calibrate
    _check_compression(budget, error)


def _fit_of(job) -> dict:
    """What a plan was made for: a resumed search must train the same."""
    fit = job.fit
    digest = hashlib.sha256()
    for part in (fit.x, fit.y):
        digest.update(np.ascontiguousarray(part).tobytes())
    return {"epochs": int(fit.epochs), "batch_size": fit.batch_size,
            "rows": len(fit.x), "data": digest.hexdigest()[:16]}  # fmt: skip


def resume_plan(job, budget, error=ValueError) -> dict:
    """The saved plan of a private search being resumed ({} when none).

    A resumed search keeps its plan: files written before already state it.
    Other epochs, batch size or data are refused; more trials than planned
    are not run (the search ends at the plan's count).
    """
    path = budget.directory / PLAN_FILE
    saved = _files.read_json(path) if path.exists() else None
    if not saved:
        return {}
    now = _fit_of(job)
    for key, value in saved.get("fit", {}).items():
        if now.get(key) != value:
            arg = {"rows": "x", "data": "x"}.get(key, key)
            v.fail(FUNC, arg, f"the same as when this private search started "
                   f"(its files state a plan made for {key}={value!r}; start "
                   "a new search in another directory)", now.get(key),
                   error=error)  # fmt: skip
    if budget.max_trials > saved["trials"] and job.fit.verbose:
        print(f"kdl.tune: the privacy plan allows {saved['trials']} trial(s)",
              flush=True)  # fmt: skip
    budget.max_trials = min(budget.max_trials, saved["trials"])
    _private_compression(budget, error)
    return saved


def plan_search(job, budget, model, error=ValueError) -> dict:
    """The search's privacy plan ({} for a builder that is not private).

    Made when the first trial's model is built, before it trains; kept in the
    search folder so a resumed search keeps its plan. Caps ``max_trials`` at
    the trials that fit ``constraints["epsilon"]``.
    """
    limit = budget.constraints.get("epsilon")
    if not is_private_model(model):
        if limit is not None:
            v.fail(FUNC, "constraints", "without 'epsilon' for a builder that "
                   "does not return a private model (kdl.privacy.make_private)",
                   "epsilon", error=error)  # fmt: skip
        return {}  # decided: not a private search
    # A saved plan was read by resume_plan when the search (re)started.
    _private_compression(budget, error)
    from kdl.privacy import accounting

    trial = _trial_plan(job, model, error)
    # The delta the statement will use (its default depends on the examples).
    delta = model.privacy.get("delta") or accounting.default_delta(
        trial["num_examples"]
    )
    trials = _trials_within(trial, delta, limit, budget.max_trials)
    if trials == 0:
        one = _epsilon([trial], delta)
        v.fail(FUNC, "constraints", f"an epsilon budget one trial fits in (one "
               f"trial as planned costs epsilon {one:.3g}: fewer epochs, more "
               "noise or a smaller batch)", limit, error=error)  # fmt: skip
    if trials < budget.max_trials and job.fit.verbose:
        print(f"kdl.tune: epsilon {limit:g} allows {trials} trial(s) of this plan, "
              f"not {budget.max_trials}", flush=True)  # fmt: skip
    budget.max_trials = trials
    plan = {"trial": trial, "trials": trials, "delta": delta, "fit": _fit_of(job)}
    plan["epsilon"] = _epsilon([trial] * trials, delta)
    _files.write_json(budget.directory / PLAN_FILE, plan)
    return plan


def check_trial_model(model, plan: dict) -> None:
    """Refuses, before it trains, a trial's model that would spend more than
    its plan: files written earlier already state the plan for this trial."""
    if not is_private_model(model):
        raise ValueError(
            f"{FUNC}: this trial's model is not private (kdl.privacy."
            "make_private), in a search whose files state a private plan; "
            "not trained"
        )
    noise = float(model.privacy.get("noise_multiplier") or 0.0)
    planned = plan["trial"]["noise_multiplier"]
    if noise < planned * (1 - 1e-6):
        raise ValueError(
            f"{FUNC}: this trial's noise multiplier {noise:g} is below the "
            f"search's plan ({planned:g}, its first trial's); not trained"
        )


def void_among_plain(model) -> None:
    """A private model chosen among trials that trained without DP-SGD: its
    statement cannot hold for the search."""
    if is_private_model(model):
        model.privacy["void"] = (
            "the model comes from a search whose first trial trained without "
            "DP-SGD on the same data"
        )


def _exceeds(session: dict, plan: dict) -> bool:
    """A step that leaks more than a planned one: a higher sampling rate or
    less noise (the sampled Gaussian's loss grows with one, falls with the
    other, at every Renyi order)."""
    rate, noise = _step(session)
    planned_rate, planned_noise = _step(plan)
    # float32 noise and rates recorded by the step: a relative tolerance
    return rate > planned_rate * (1 + 1e-6) or noise < planned_noise * (1 - 1e-6)


def trial_privacy(model, plan: dict) -> dict:
    """A trial's privacy record; void when it trained beyond the plan."""
    from kdl.privacy import search_cost

    record = search_cost.trial_record(model) or {"private": False}
    sessions = record.get("sessions") or []
    steps = sum(int(s.get("steps") or 0) for s in sessions)
    if record.get("private") and (
        steps > plan["trial"]["steps"]
        or any(_exceeds(s, plan["trial"]) for s in sessions)
    ):
        record["void"] = (
            f"a trial trained beyond the search's privacy plan ({steps} steps; "
            f"planned {plan['trial']['steps']} at noise "
            f"{plan['trial']['noise_multiplier']:g})"
        )
    return record


def planned_record(plan: dict) -> dict:
    """The record of a trial that failed or has not run: its plan."""
    return {"private": True, "sessions": [dict(plan["trial"])], "void": None}


def state_search_cost(model, plan: dict, earlier: list, own: dict) -> int:
    """Puts the search's whole cost on ``model`` before its file is written:
    ``earlier`` trials' records as they ran, its own, the rest as planned.
    Returns how many trials are counted as planned."""
    from kdl.privacy import search_cost

    records = {str(r["number"]): r for r in earlier}
    records["this"] = {"privacy": own}
    planned = max(0, plan["trials"] - len(records))
    for k in range(planned):
        records[f"planned {k + 1}"] = {"privacy": planned_record(plan)}
    search_cost.with_search_cost(model, records, "this")
    model.privacy["planned_trials"] = planned
    return planned
