"""kdl.tune benchmarks: the cost of a trial, and what each algorithm finds.

Run from the repository root (several minutes on a CPU):

    .venv/bin/python benchmarks/search.py [--out /work/notes/bench-search.md]

1. Per-trial overhead: seconds per trial of ``kdl.tune`` (grid search over
   ``dropout``, one trial per value) against a plain loop that builds and fits
   the same models with the same arguments (validation split, early stopping,
   batch size, epochs), split into the trial itself (build, fit, saving the
   best weights) and the bookkeeping between trials. KerasTuner's import
   (about 6 s) is paid before timing.
2. Search quality: the best validation loss and the test accuracy of the best
   model reached by grid, random, Bayesian and Hyperband searches of one
   discrete space on the digits, each given the same budget (``TRIALS`` trials
   of ``EPOCHS`` epochs; Hyperband gets as many trials as the budget's epochs
   allow), over three seeds. The epochs each search really ran are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import kdl
from kdl import build_mlp, datasets
from kdl.backend import keras

EPOCHS = 8
TRIALS = 8
SEEDS = (0, 1, 2)
# 4 x 6 x 3 = 72 combinations: a budget of 8 trials sees a ninth of them.
SPACE = {
    "dense_units": kdl.Choice([(16,), (64,), (128,), (64, 64)]),
    "learning_rate": kdl.Choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]),
    "dropout": kdl.Choice([0.0, 0.2, 0.4]),
}
ALGORITHMS = ("grid", "random", "bayesian", "hyperband")


def _plain_fit(x, y, dropout: float, *, epochs: int, seed: int) -> None:
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_mlp(x.shape[1:], 10, dropout=dropout)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=3, restore_best_weights=True
    )
    model.fit(
        x,
        y,
        validation_split=0.2,
        epochs=epochs,
        batch_size=32,
        callbacks=[stopper, keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )


def overhead(x, y, *, trials: int = 6, epochs: int = 3, rounds: int = 3) -> list:
    """Seconds per trial: kdl.tune vs the same fits in a plain loop.

    The machine is shared, so plain and tuned rounds alternate; each round's
    figures are reported.
    """
    import keras_tuner  # noqa: F401  (its import is not a per-trial cost)

    dropouts = [round(0.05 * i, 2) for i in range(trials)]
    _plain_fit(x, y, 0.0, epochs=1, seed=0)  # warm-up: tracing, first graph
    results = []
    for _ in range(rounds):
        plain = []
        for dropout in dropouts:
            start = time.perf_counter()
            _plain_fit(x, y, dropout, epochs=epochs, seed=0)
            plain.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = kdl.tune(
                build_mlp,
                x,
                y,
                space={"dropout": kdl.Choice(dropouts)},
                algorithm="grid",
                epochs=epochs,
                seed=0,
                directory=Path(tmp) / "search",
                verbose=0,
            )
            wall = time.perf_counter() - start
        inside = result.trials["seconds"]
        figures = {
            "plain": statistics.median(plain),
            "trial": float(inside.median()),
            "between": (wall - float(inside.sum())) / trials,
            "tune": wall / trials,
        }
        results.append(figures)
    return results


def quality(x, y, x_test, y_test, algorithm: str, seed: int) -> dict:
    """One search: best val_loss, test accuracy, epochs run, seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = kdl.tune(
            build_mlp,
            x,
            y,
            space=SPACE,
            algorithm=algorithm,
            max_trials=TRIALS if algorithm != "hyperband" else None,
            epochs=EPOCHS,
            seed=seed,
            directory=Path(tmp) / "search",
            verbose=0,
        )
        seconds = time.perf_counter() - start
    predictions = np.argmax(result.best_model.predict(x_test, verbose=0), axis=1)
    return {
        "val_loss": result.best_score,
        "accuracy": float(np.mean(predictions == y_test)),
        "trials": len(result.trials),
        "epochs": int(result.trials["epochs"].sum()),
        "seconds": seconds,
    }


def report(over: list, rows: dict) -> str:
    lines = [
        "# kdl.tune benchmarks",
        "",
        "Digits MLP on a shared 2-core CPU, measured with `benchmarks/search.py` "
        f"on {time.strftime('%Y-%m-%d')}.",
        "",
        "## Per-trial overhead",
        "",
        "| seconds per trial | "
        + " | ".join(f"round {i + 1}" for i in range(len(over)))
        + " |",
        "| --- |" + " --- |" * len(over),
    ]
    rows_over = [
        ("plain loop: build + fit (median)", "plain"),
        ("kdl.tune trial: build + fit + save weights (median)", "trial"),
        ("kdl.tune between trials: oracle, state files, trials.csv", "between"),
        ("kdl.tune, whole call / trials", "tune"),
    ]
    for label, key in rows_over:
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:.2f}" for r in over) + " |")
    lines.append(
        "| whole call / plain | "
        + " | ".join(f"{r['tune'] / r['plain']:.2f}x" for r in over)
        + " |"
    )
    lines += [
        "",
        f"## Best objective for the same budget ({TRIALS} trials x {EPOCHS} epochs)",
        "",
        "Space: dense_units in (16,), (64,), (128,), (64, 64); learning_rate "
        "in 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2; dropout in 0, 0.2, 0.4 (72 "
        "combinations). Mean (min-max) over seeds "
        f"{', '.join(map(str, SEEDS))}; a search's seed also seeds every "
        "trial, so two searches that pick the same arguments score the same.",
        "",
        "| algorithm | best val_loss | test accuracy | trials | epochs run | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for algorithm, runs in rows.items():

        def cell(key, fmt, runs=runs):
            values = [run[key] for run in runs]
            return (
                f"{statistics.mean(values):{fmt}} "
                f"({min(values):{fmt}}-{max(values):{fmt}})"
            )

        lines.append(
            f"| {algorithm} | {cell('val_loss', '.4f')} | {cell('accuracy', '.3f')} "
            f"| {cell('trials', '.1f')} | {cell('epochs', '.0f')} "
            f"| {cell('seconds', '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--algorithms", nargs="*", default=ALGORITHMS, choices=ALGORITHMS
    )
    args = parser.parse_args(argv)
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    over = overhead(x, y)
    print(over, flush=True)
    rows = {}
    for algorithm in args.algorithms:
        rows[algorithm] = [
            quality(x, y, x_test, y_test, algorithm, seed) for seed in SEEDS
        ]
        print(algorithm, rows[algorithm], flush=True)
    text = report(over, rows)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
