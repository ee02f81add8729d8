"""kdl.tune under a size budget: the digits' most accurate CNN in 20 KB.

Run from the repository root (a few minutes on a CPU):

    .venv/bin/python benchmarks/search_budgets.py [--trials 10] [--write]

A search of ``build_cnn``'s filters, dense units and learning rate, and of
pruning (none or 80%, fine-tuned as many epochs as training), on the digits
(8x8 images), for objectives (accuracy, gzipped int8 .tflite size)
under the constraint ``tflite_kb <= 20``, with as many trials as kdl.tune's
default for a plain accuracy search (10). Every front point's exported file
is then measured on the held-out test set in LiteRT.

Goals (issue 24):

1. The front holds a model of at most 20 KB (int8, gzipped) with held-out
   accuracy of at least 0.97.
2. The bookkeeping per trial (export + LiteRT check) costs at most 20% of
   the trial's training time (median over trials; the first trial, which
   starts the converter's worker process, is shown apart).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

import kdl  # noqa: E402
from kdl import build_cnn, datasets, export  # noqa: E402

LIMIT_KB = 20.0
# Wide models pruned 80% compete with narrow ones under the same budget.
SPACE = {
    "filters": kdl.Choice([(8, 16), (16, 32), (32, 64)]),
    "dense_units": kdl.Choice([(32,), (64,), (128,)]),
    "learning_rate": kdl.Float(1e-3, 1e-2, log=True),
    "prune_sparsity": kdl.Choice([0.0, 0.8]),
}


def run(trials: int, epochs: int, directory: Path, resume: bool) -> dict:
    (x, y), (x_test, y_test) = datasets.digits()
    started = time.perf_counter()
    result = kdl.tune(
        build_cnn,
        x,
        y,
        space=SPACE,
        objectives=["accuracy", "tflite_kb"],
        constraints={"tflite_kb": LIMIT_KB},
        max_trials=trials,
        epochs=epochs,
        patience=6,
        seed=0,
        directory=directory,
        resume=resume,
        verbose=1,
    )
    seconds = time.perf_counter() - started
    rows = []
    for point in result.front:
        test = export.evaluate_tflite(point["tflite"], x_test, y_test)
        rows.append((point, test["accuracy"]))
    return {"result": result, "rows": rows, "seconds": seconds}


def standard(directory: Path, epochs: int) -> list[dict]:
    """report.standard_variants of the default CNN, trained as a user would
    (kdl.train, its defaults but the epochs), measured on the test set."""
    from kdl import report as kdl_report

    (x, y), (x_test, y_test) = datasets.digits()
    model = build_cnn(x.shape[1:], 10)
    kdl.train(model, x, y, epochs=epochs, seed=0, run_dir=False, verbose=0)
    variants = kdl_report.standard_variants(model, x, y, directory / "variants")
    table = kdl_report.compare(variants, x_test, y_test, verbose=0)
    return [row for row in table.rows if str(row["source"]).endswith(".tflite")]


def _dominated(row: dict, rows: list) -> tuple | None:
    """The front point that is at least as accurate and as small (gzipped
    .tflite) as the variant ``row``, or None."""
    kb = row["gzip_bytes"] / 1000.0
    for point, accuracy in rows:
        if accuracy >= row["metric"] and point["figures"]["tflite_kb"] <= kb:
            return point["trial"], accuracy, point["figures"]["tflite_kb"]
    return None


def dominance_lines(variants: list, rows: list) -> list[str]:
    table = []
    for row in variants:
        by = _dominated(row, rows)
        table.append((
            row["variant"], f"{row['metric']:.4f}",
            f"{row['gzip_bytes'] / 1000:.1f}",
            "no" if by is None else f"trial {by[0]} ({by[1]:.4f}, {by[2]:.1f} KB)",
        ))  # fmt: skip
    lines = ["", "The default CNN's standard variants (report.standard_variants, "
             "test set, LiteRT) against the front:", ""]  # fmt: skip
    lines += _common.table(
        ["variant", "test acc", "KB (gz)", "dominated by a front point"], table
    )
    met = all(row[3] != "no" for row in table)
    lines += ["", _common.goal(met, "every standard variant is dominated (at "
                               "least as accurate and as small) by a front "
                               "point."), ""]  # fmt: skip
    return lines


def report(found: dict, trials: int, epochs: int) -> str:
    result, rows = found["result"], found["rows"]
    lines = ["## Search under a size budget (kdl.tune, issue 24)", ""]
    lines += _common.header()
    lines += [
        "",
        f"build_cnn on the digits, {trials} trials of up to {epochs} epochs, "
        f"objectives accuracy and gzipped int8 size, constraint tflite_kb <= "
        f"{LIMIT_KB:g}; search time {found['seconds']:.0f} s.",
        "",
    ]
    lines += _common.table(
        ["trial", "settings", "KB (int8, gz)", "ms", "val acc", "test acc"],
        [
            (
                p["trial"],
                ", ".join(f"{k}={v}" for k, v in p["params"].items()),
                f"{p['figures']['tflite_kb']:.1f}",
                f"{p['figures']['latency_ms']:.3f}",
                f"{p['figures']['accuracy']:.4f}",
                f"{acc:.4f}",
            )
            for p, acc in rows
        ],
    )
    fits = [acc for p, acc in rows if p["figures"]["tflite_kb"] <= LIMIT_KB]
    met = bool(fits) and max(fits) >= 0.97
    table = result.trials[result.trials["status"] == "completed"]
    shares = list(table["measure_seconds"] / table["train_seconds"])
    later = statistics.median(shares[1:]) if len(shares) > 1 else None
    lines += [
        "",
        _common.goal(
            met,
            f"a front model <= {LIMIT_KB:g} KB with test accuracy "
            f">= 0.97 (best {max(fits, default=0):.4f}).",
        ),
        "",
        _common.goal(
            None if later is None else later <= 0.2,
            "bookkeeping (export + LiteRT) <= 20% of training time per trial: "
            f"median {later if later is not None else float('nan'):.0%} "
            f"after the first trial ({shares[0]:.0%} for the first, which "
            "starts the converter's process).",
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--directory", type=Path, help="keep (and resume) the search folder here"
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also build the default CNN's standard variants and check that "
        "the front dominates them",
    )
    _common.add_write_flag(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.directory or Path(tmp) / "search"
        found = run(args.trials, args.epochs, directory, args.directory is not None)
        text = report(found, args.trials, args.epochs)
        if args.variants:
            variants = standard(Path(tmp), args.epochs)
            text += "\n".join(dominance_lines(variants, found["rows"]))
    print(text)
    if args.write:
        print(f"written to {_common.write_section(text)}")


if __name__ == "__main__":
    main()
