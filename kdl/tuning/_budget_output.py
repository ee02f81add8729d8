"""What a search under budgets prints: its start, each trial, the front.

Split from :mod:`kdl.tuning._budget` (issue 27: no module over 600 lines).
"""

from __future__ import annotations

from collections.abc import Mapping

from kdl.tuning import _front as fr
from kdl.tuning import _job as jobs


def announce(job, budget, done: int) -> None:
    if not job.fit.verbose:
        return
    limits = ", ".join(f"{k} <= {val:g}" for k, val in budget.constraints.items())
    print(
        f"kdl.tune: {budget.algorithm} search of {job.build.name} for "
        f"{', '.join(budget.objectives)}"
        + (f" under {limits}" if limits else "")
        + f", up to {budget.max_trials} trials, in {budget.directory}",
        flush=True,
    )
    if done:
        print(f"kdl.tune: resuming, {done} trial(s) already finished", flush=True)


def report(job, budget, record: Mapping) -> None:
    if not job.fit.verbose:
        return
    args = ", ".join(
        f"{k}={jobs.format_value(val)}" for k, val in record["params"].items()
    )
    if record["status"] != "completed":
        outcome = f"failed: {record['error']}"
    else:
        shown = list(budget.objectives) + [
            k for k in budget.constraints if k not in budget.objectives
        ]
        outcome = ", ".join(f"{k}={record['figures'][k]:.4g}" for k in shown)
        outcome += "" if record["feasible"] else " (infeasible)"
    print(f"trial {record['number']}: {args} -> {outcome}", flush=True)


def summary(found: fr.BudgetResult) -> None:
    import pandas as pd

    print(
        f"\nkdl.tune: {len(found.trials)} trials, stopped by {found.stopped}; "
        f"the front ({len(found.front)} point(s)):",
        flush=True,
    )
    rows = [
        {"trial": p["trial"], **{k: p["figures"][k] for k in found.objectives}}
        for p in found.front
    ]
    with pd.option_context("display.width", 200):
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    print(f"(every trial in {found.directory / jobs.TRIALS_CSV})", flush=True)
