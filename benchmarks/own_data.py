"""Data kdl was not tuned on: one default ``kdl train`` per dataset, against baselines.

Run from the repository root (tens of minutes on a busy machine)::

    .venv/bin/python benchmarks/own_data.py [--only NAME ...] [--write]

Each dataset ships with scikit-learn or statsmodels, or is generated here
(nothing downloads). It is written to a file the way a user would have it (a
CSV table, a CSV series, a folder of PNG images) and trained with ONE
``kdl train`` command, defaults only: the default model (``mlp``) for tables,
``--model gru --window 8`` for series, ``--model cnn --image-size 64 64``
for images. The command's JSON output holds the test metrics and the
baselines of :mod:`kdl.baselines` fitted on the same training part and scored
on the same test part: the trivial one (majority class; mean; last value for
series) and, for tables, a linear model (LogisticRegression / Ridge).

The goal of issue 23, per row: the default run beats the trivial baseline;
on tables it is within 1.5 points of accuracy (or 10% of MAE) of the linear
model or better; on the 64 px shapes the CNN reaches 0.9; a series model is
at least as good as "next = last value".

``--write`` replaces this benchmark's section of docs/benchmarks.md. Each
row is also printed to stderr as one JSON line; ``--previous FILE`` (such
lines of an earlier run) fills the rows of datasets not run now (with
``--only``), marked as such in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
import pandas as pd

SECTION = "## Your own data: default runs against baselines"
TIMEOUT = 1800  # seconds per kdl train


# === The datasets, written as a user would have them ===


def _table(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def _sklearn_table(loader, folder, name, *, sort=False) -> Path:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={bunch.target.name: "target"})
    if sort:  # the file a user exported sorted by its label
        frame = frame.sort_values("target", kind="stable")
    return _table(frame, folder, name)


def _generated(x, y, folder, name) -> Path:
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["target"] = y
    return _table(frame, folder, name)


def breast_cancer(folder):
    from sklearn.datasets import load_breast_cancer

    return _sklearn_table(load_breast_cancer, folder, "breast_cancer")


def wine(folder):
    from sklearn.datasets import load_wine

    return _sklearn_table(load_wine, folder, "wine", sort=True)


def iris(folder):
    from sklearn.datasets import load_iris

    return _sklearn_table(load_iris, folder, "iris", sort=True)


def imbalanced(folder):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        1000, 20, n_informative=6, weights=[0.85, 0.15], random_state=0
    )
    return _generated(x, y, folder, "imbalanced")


def moons(folder):
    from sklearn.datasets import make_moons

    x, y = make_moons(600, noise=0.25, random_state=0)
    return _generated(x, y, folder, "moons")


def diabetes(folder):
    from sklearn.datasets import load_diabetes

    return _sklearn_table(load_diabetes, folder, "diabetes")


def linear_regression(folder):
    from sklearn.datasets import make_regression

    x, y = make_regression(600, 10, n_informative=6, noise=10.0, random_state=0)
    return _generated(x, y + 500.0, folder, "linear_regression")


def friedman(folder):
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(800, noise=0.5, random_state=0)
    return _generated(x, y, folder, "friedman")


def _statsmodels(name: str) -> pd.DataFrame:
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data


def macro_unemployment(folder):
    frame = _statsmodels("macrodata")[["realgdp", "infl", "unemp"]]
    return _table(frame, folder, "macro_unemployment")


def macro_gdp(folder):
    return _table(_statsmodels("macrodata")[["realgdp"]], folder, "macro_gdp")


def co2(folder):
    frame = _statsmodels("co2")  # weekly, with gaps: monthly means
    frame.index = pd.to_datetime(frame.index)
    monthly = frame.resample("MS").mean().interpolate()
    return _table(monthly.reset_index(drop=True), folder, "co2_monthly")


def nile(folder):
    return _table(_statsmodels("nile")[["volume"]], folder, "nile")


def elnino(folder):
    frame = _statsmodels("elnino").drop(columns="YEAR")
    values = frame.to_numpy().reshape(-1)  # monthly sea temperature, in order
    return _table(pd.DataFrame({"temperature": values}), folder, "elnino")


def shapes(folder, size=64, per_class=100):
    """Generated 64 px colour images of circles, squares and triangles."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    root = folder / "shapes64"
    for shape in ("circle", "square", "triangle"):
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            back = tuple(int(c) for c in rng.integers(0, 120, 3))
            fill = tuple(int(c) for c in rng.integers(130, 256, 3))
            image = Image.new("RGB", (size, size), back)
            draw = ImageDraw.Draw(image)
            r = rng.integers(size // 6, size // 3)
            cx, cy = rng.integers(r, size - r, 2)
            box = [cx - r, cy - r, cx + r, cy + r]
            if shape == "circle":
                draw.ellipse(box, fill=fill)
            elif shape == "square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill)
            image.save(root / shape / f"{i:03d}.png")
    return root


SERIES = ("--model", "gru", "--window", "8")
# name -> (kind, writer, kdl train arguments after the file)
DATASETS = {
    "breast_cancer": ("table", breast_cancer, ("--target", "target")),
    "wine (sorted)": ("table", wine, ("--target", "target")),
    "iris (sorted)": ("table", iris, ("--target", "target")),
    "imbalanced 85/15": ("table", imbalanced, ("--target", "target")),
    "moons": ("table", moons, ("--target", "target")),
    "diabetes": ("table", diabetes, ("--target", "target")),
    "linear regression +500": ("table", linear_regression, ("--target", "target")),
    "friedman1": ("table", friedman, ("--target", "target")),
    "macro unemployment": (
        "series",
        macro_unemployment,
        (*SERIES, "--target", "unemp"),
    ),
    "macro real GDP": ("series", macro_gdp, SERIES),
    "co2 monthly": ("series", co2, SERIES),
    "nile": ("series", nile, SERIES),
    "elnino monthly": ("series", elnino, SERIES),
    "shapes 64 px": ("images", shapes, ("--model", "cnn", "--image-size", "64x64")),
}


# === Running one kdl train and judging it ===


def _output(stdout: str) -> dict:
    """The command's JSON result: from the last line that is "{" on."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    return json.loads("\n".join(lines[start:]))


def run_one(name: str, folder: Path) -> dict:
    kind, writer, extra = DATASETS[name]
    path = writer(folder)
    slug = "".join(c if c.isalnum() else "_" for c in name)
    argv = ["train", str(path), *extra, "--quiet", "--run-dir", str(folder / slug)]
    env = dict(os.environ, PYTHONPATH=str(_common.ROOT))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "kdl.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    seconds = time.perf_counter() - start
    shown = "kdl train " + " ".join([Path(path).name, *extra])
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
        return {"name": name, "kind": kind, "command": shown, "error": error}
    result = _output(done.stdout)
    return {
        "name": name,
        "kind": kind,
        "command": shown,
        "seconds": seconds,
        "result": result,
    }


def judge(row: dict) -> tuple[bool, str]:
    """(goal met, why) for one row, by the rules of the module docstring."""
    b = row["result"]["baselines"]
    model, higher = b["model"], b["metric"] == "accuracy"
    if not b["beats_trivial"]:
        return False, "does not beat the trivial baseline"
    linear = next(
        (b[k] for k in ("logistic regression", "ridge regression") if k in b), None
    )
    if row["kind"] == "table" and linear is not None:
        close = model >= linear - 0.015 if higher else model <= 1.1 * linear
        if not close:
            return False, "behind the linear model"
    if row["kind"] == "images" and model < 0.9:
        return False, "below 0.9"
    return True, ""


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def markdown(rows: list[dict]) -> str:
    lines = [SECTION, "", *_common.header(), ""]
    lines.append(
        "One `kdl train FILE ...` per dataset, defaults only (tables: at least "
        "1,000 optimizer steps, at most 500 epochs; series and images: 20 epochs "
        "at most; early stopping on kdl's validation split); scores on the "
        "held-out 20% test part. Baselines fitted on the same training part "
        "(kdl.baselines). Accuracy: higher is better; MAE: lower is better."
    )
    lines.append("")
    table = []
    met_count = 0
    for row in rows:
        if "error" in row:
            table.append([row["name"], f"`{row['command']}`", "error", "", "", "", ""])
            table[-1].append(f"failed: {row['error']}")
            continue
        b = row["result"]["baselines"]
        trivial = next(
            (
                f"{_fmt(b[k])} ({k})"
                for k in ("majority class", "mean", "last value")
                if k in b
            ),
            "—",
        )
        linear = next(
            (_fmt(b[k]) for k in ("logistic regression", "ridge regression") if k in b),
            "—",
        )
        met, why = judge(row)
        met_count += met
        table.append(
            [
                row["name"],
                f"`{row['command']}`",
                b["metric"],
                _fmt(b["model"]),
                trivial,
                linear,
                f"{row['seconds']:.0f}",
                "met" if met else f"**missed**: {why}",
            ]
        )
    head = ["dataset", "command", "metric", "kdl", "trivial", "linear", "s", "goal"]
    lines += _common.table(head, table)
    if any("(earlier run)" in row["name"] for row in rows):
        lines += [
            "",
            "Rows marked (earlier run) come from an earlier run of this script "
            "(`--previous`), the others from this one.",
        ]
    lines += [
        "",
        _common.goal(
            met_count == len(rows),
            f"{met_count} of {len(rows)} datasets meet issue 23's goal (beat the "
            "trivial baseline; tables within 1.5 points / 10% of the linear model; "
            "0.9 on the shapes).",
        ),
    ]
    return "\n".join(lines) + "\n"


def _with_previous(rows: list[dict], path: Path) -> list[dict]:
    """``rows`` plus an earlier run's rows of the other datasets, in order."""
    now = {row["name"]: row for row in rows}
    earlier = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        row["name"] = row["name"] + " (earlier run)"
        earlier[row["name"].replace(" (earlier run)", "")] = row
    return [
        now.get(name) or earlier[name]
        for name in DATASETS
        if name in now or name in earlier
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="dataset names (default: all)")
    parser.add_argument("--previous", help="JSON lines of an earlier run's rows")
    _common.add_write_flag(parser)
    args = parser.parse_args()
    names = args.only or list(DATASETS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kdl-own-data-") as tmp:
        for name in names:
            try:
                row = run_one(name, Path(tmp))
            except subprocess.TimeoutExpired:
                row = {"name": name, "kind": "", "command": name, "error": "timeout"}
            print(json.dumps(row, default=str), file=sys.stderr, flush=True)
            rows.append(row)
    if args.previous:
        rows = _with_previous(rows, Path(args.previous))
    text = markdown(rows)
    print(text)
    if args.write:
        _common.write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
