"""What the example scripts share: the short mode, the output folder, plots.

Every example runs in two modes:

- the full mode (default): enough epochs, trials or steps for the numbers in
  the script's docstring;
- the short mode (``KDL_QUICK=1`` in the environment, or ``--quick`` on the
  command line): a few seconds of work that still runs every line, for the
  tests (``tests/test_examples.py``) and for a first look.

Outputs go to ``saved_models/<example>/`` under the current folder, like the
other examples (``KDL_OUT`` changes the root). Plots are written as PNG files
with Matplotlib's Agg backend: no display is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

QUICK = os.environ.get("KDL_QUICK", "0") not in ("", "0") or "--quick" in sys.argv


def pick(full, quick):
    """`quick` in the short mode, else `full` (epochs, trials, steps, sizes)."""
    return quick if QUICK else full


def out_dir(name: str) -> Path:
    """The example's output folder, ``saved_models/<name>``, created if needed."""
    folder = Path(os.environ.get("KDL_OUT", "saved_models")) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_figure(fig, path: Path) -> Path:
    """Writes `fig` as a PNG file, closes it, and says where it is."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"plot: {path}")
    return Path(path)


def seeds() -> range:
    """The seeds a comparison repeats over: 3 in the full mode, 1 in the short."""
    return range(pick(3, 1))


def mean_spread(values) -> tuple[float, float]:
    """Mean and sample standard deviation (the spread over seeds) of `values`."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), spread


def show(values, digits: int = 3) -> str:
    """``"0.912 ± 0.010"``: mean ± standard deviation over seeds."""
    mean, spread = mean_spread(values)
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def beyond_spread(better, worse) -> bool:
    """Whether mean(`better`) - mean(`worse`) exceeds the sum of their spreads.

    A deliberately cautious test for a handful of seeds: a difference smaller
    than the seed-to-seed noise is not called an effect.
    """
    (m1, s1), (m2, s2) = mean_spread(better), mean_spread(worse)
    return m1 - m2 > s1 + s2


def banner() -> None:
    """One line telling which mode runs."""
    if QUICK:
        print("short mode (KDL_QUICK=1 or --quick): numbers are not meaningful")
