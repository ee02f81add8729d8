"""The result of a search under budgets: its trials, its Pareto front, its plot.

Read by :mod:`kdl.tuning._budget` from the per-trial records
(``trials/trial_NNNN/kdl_trial.json``), so that a result can be rebuilt from
the search folder alone, without re-running a trial.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

from kdl import _files
from kdl import _validation as v

FUNC = "kdl.tune"
FRONT_PLOT = "front.png"

# Quantities measured on each trial's exported file (and its Keras model),
# with the direction that is better. Keras metrics ("val_accuracy", ...) come
# from the trial's best epoch, their direction read from their name.
MEASURED = {
    "accuracy": "max",  # of the .tflite file in LiteRT, on the validation data
    "mae": "min",  # the same, for regression
    "tflite_kb": "min",  # gzipped .tflite size, KB (1000 bytes)
    "tflite_raw_kb": "min",  # plain .tflite size, KB
    "latency_ms": "min",  # LiteRT, one thread, median per example
    "params": "min",
    "macs": "min",  # multiply-adds per example (kdl.compression.multiply_adds)
    "epsilon": "min",  # of a private trial (hook: see _budget.trial_epsilon)
}


def direction(name: str) -> str:
    """ "max" or "min": a measured quantity's, or read from a metric's name."""
    if name in MEASURED:
        return MEASURED[name]
    base = name[4:] if name.startswith("val_") else name
    if base.endswith(("accuracy", "acc", "auc", "precision", "recall")):
        return "max"
    return "min"  # losses and errors (kdl.tune's rule for its objective)


def violations(figures: Mapping, constraints: Mapping) -> dict:
    """Constraint name -> how far the trial is over it (<= 0: met)."""
    out = {}
    for name, limit in constraints.items():
        value = figures.get(name)
        if value is None or not math.isfinite(value):
            out[name] = math.inf
        elif direction(name) == "max":
            out[name] = float(limit - value)  # a floor, e.g. accuracy >= 0.95
        else:
            out[name] = float(value - limit)  # a ceiling, e.g. tflite_kb <= 20
    return out


def _dominates(a: Mapping, b: Mapping, objectives) -> bool:
    better = False
    for name in objectives:
        sign = 1 if direction(name) == "max" else -1
        if sign * a[name] < sign * b[name]:
            return False
        better = better or sign * a[name] > sign * b[name]
    return better


def pareto(records: list, objectives) -> list:
    """The feasible completed records no other feasible one dominates.

    A few dozen points: the plain pairwise test is clear and fast enough
    (Optuna's own front function is private).
    """
    pool = [r for r in records if r["status"] == "completed" and r["feasible"]]
    front = [
        r
        for r in pool
        if not any(_dominates(o["figures"], r["figures"], objectives) for o in pool)
    ]
    return sorted(front, key=lambda r: r["number"])


@dataclasses.dataclass(frozen=True, repr=False)
class BudgetResult:
    """What :func:`kdl.tune` found under budgets (objectives or constraints).

    Attributes:
        front: list of dict. The Pareto front of the feasible trials, one
            dict per point: "trial", "params" (builder and compression
            settings), "figures" (every measured quantity), "folder" (the
            trial's folder) and "tflite" (the exported file).
        trials: pandas.DataFrame. Every trial, infeasible and failed ones
            included, with its settings, figures, "feasible" and "status".
            Also in `directory / "trials.csv"`.
        objectives: tuple of str. What was optimized, the first one first.
        constraints: dict. Quantity -> limit (a ceiling, or a floor for a
            quantity where more is better, like accuracy).
        directory: Path. The search folder (resumable).
        stopped: str. "max_trials" or "max_time": why the search ended.
        plot: Path or None. The front's plot (front.png), when drawn.
    """

    front: list
    trials: object
    objectives: tuple
    constraints: dict
    directory: Path
    stopped: str
    plot: Path | None
    records: list = dataclasses.field(default_factory=list, compare=False)

    def best(
        self,
        max_size_kb: float | None = None,
        max_latency_ms: float | None = None,
        *,
        limits: Mapping | None = None,
    ) -> dict | None:
        """The best point under (tighter) limits, without re-running a trial.

        Picks, among the feasible completed trials within the limits, the one
        best by the first objective (ties: the smaller file). That point is on
        the front of the trials within the limits.

        Args:
            max_size_kb: float or None. Largest gzipped .tflite size, KB.
            max_latency_ms: float or None. Largest LiteRT latency, ms.
            limits: dict or None. More limits, quantity -> limit (a floor for
                a quantity where more is better), as in `constraints`.

        Returns:
            A dict like the points of `front`, or None when no trial fits.
        """
        func = "BudgetResult.best"
        v.check_float(max_size_kb, "max_size_kb", func, allow_none=True)
        v.check_float(max_latency_ms, "max_latency_ms", func, allow_none=True)
        wanted = dict(limits or {})
        if max_size_kb is not None:
            wanted["tflite_kb"] = max_size_kb
        if max_latency_ms is not None:
            wanted["latency_ms"] = max_latency_ms
        for name in wanted:
            if name not in MEASURED and not any(
                name in r["figures"] for r in self.records
            ):
                v.fail(func, "limits", "quantities the trials measured", name)
        fits = [
            r
            for r in self.records
            if r["status"] == "completed"
            and r["feasible"]
            and all(x <= 0 for x in violations(r["figures"], wanted).values())
        ]
        if not fits:
            return None
        first = self.objectives[0]
        sign = 1 if direction(first) == "max" else -1
        best = max(
            fits, key=lambda r: (sign * r["figures"][first], -r["figures"]["tflite_kb"])
        )
        return point(best, self.directory)

    def __repr__(self) -> str:
        return (
            f"BudgetResult(front={len(self.front)} point(s), "
            f"trials={len(self.trials)}, "
            f"objectives={list(self.objectives)}, constraints={self.constraints}, "
            f"directory='{self.directory}')"
        )


def point(record: Mapping, directory: Path) -> dict:
    """A front point of a trial's record."""
    folder = directory / record["folder"]
    return {
        "trial": record["number"],
        "params": dict(record["params"]),
        "figures": dict(record["figures"]),
        "folder": folder,
        "tflite": folder / record["tflite"] if record.get("tflite") else None,
    }


def table(records: list):
    """Every trial as a pandas DataFrame, in order."""
    import pandas as pd

    rows = []
    for r in records:
        row = {"trial": r["number"], "status": r["status"]}
        row.update({k: _cell(val) for k, val in r["params"].items()})
        row.update(r.get("figures", {}))
        row["feasible"] = r.get("feasible", False)
        row["train_seconds"] = r.get("train_seconds", math.nan)
        row["measure_seconds"] = r.get("measure_seconds", math.nan)
        row["error"] = r.get("error") or ""
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value):
    return repr(value) if isinstance(value, (tuple, list)) else value


def write_table(records: list, directory: Path, name: str):
    frame = table(records)
    _files.write_text(directory / name, frame.to_csv(index=False))
    return frame


def plot(records: list, front: list, objectives, constraints, path: Path):
    """Accuracy (the first objective) against size and against latency.

    Every completed trial is a dot (an infeasible one a cross), the front is
    highlighted and the size and latency constraints are drawn as lines.
    Returns the PNG's path, or None without Matplotlib or without trials.
    """
    done = [r for r in records if r["status"] == "completed"]
    if not done:
        return None
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = objectives[0]
    axes_of = [("tflite_kb", "gzipped .tflite size (KB)")]
    axes_of.append(("latency_ms", "LiteRT latency per example (ms, one thread)"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    on_front = {r["number"] for r in front}
    for ax, (name, label) in zip(axes, axes_of, strict=True):
        for feasible, marker in ((True, "o"), (False, "x")):
            pts = [r for r in done if r["feasible"] is feasible]
            ax.scatter(
                [r["figures"][name] for r in pts],
                [r["figures"][first] for r in pts],
                marker=marker,
                c="0.6",
                label="feasible" if feasible else "infeasible",
            )
        pts = sorted((r for r in done if r["number"] in on_front), key=_by(name))
        ax.plot(
            [r["figures"][name] for r in pts],
            [r["figures"][first] for r in pts],
            "o-",
            c="tab:red",
            label="front",
        )
        if name in constraints:
            ax.axvline(constraints[name], ls="--", c="k", label=f"{name} limit")
        ax.set_xlabel(label)
        ax.set_ylabel(first)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"kdl.tune: {first} against size and latency")
    fig.tight_layout()
    with _files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _by(name):
    return lambda r: r["figures"][name]
