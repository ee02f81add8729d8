"""Search an MLP's arguments on the digits and compare with the defaults.

Run it from the repository root (about a minute on a laptop CPU; add
``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    .venv/bin/python examples/tune_digits.py             # Bayesian optimization
    .venv/bin/python examples/tune_digits.py hyperband   # or grid, random

The search lives in saved_models/tune_digits_<algorithm>/ with a trials.csv.
Run the script again and it resumes there: finished trials are not repeated
(stop it with Ctrl-C half-way through to see it).

The same script runs as a distributed search (KerasTuner's chief/worker mode):
start it once as the chief, which serves the search and runs no trial, and
once per worker, all with the chief's address:

    export KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000
    KERASTUNER_TUNER_ID=chief  .venv/bin/python examples/tune_digits.py random &
    KERASTUNER_TUNER_ID=tuner1 .venv/bin/python examples/tune_digits.py random &
    KERASTUNER_TUNER_ID=tuner2 .venv/bin/python examples/tune_digits.py random

The workers print their own trials and stop when none is left; the chief
prints the table and the comparison.
"""

from __future__ import annotations

import sys

import numpy as np
from _quick import banner, pick

import kdl
from kdl import build_mlp, datasets, keras


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def main(algorithm: str = "bayesian") -> None:
    banner()
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    n = pick(None, 400)  # a few hundred examples in the short mode
    x, y = x[:n], y[:n]
    epochs = pick(9, 2)
    space = {
        "dense_units": kdl.Choice([(32,), (128,), (64, 64)]),
        "dropout": kdl.Float(0.0, 0.4, step=0.2),
        "learning_rate": kdl.Choice([1e-4, 1e-3, 1e-2]),
    }
    if algorithm != "grid":
        space["learning_rate"] = kdl.Float(1e-4, 3e-2, log=True)
    result = kdl.tune(
        build_mlp,
        x,
        y,
        space=space,
        algorithm=algorithm,
        max_trials=pick(None if algorithm in ("grid", "hyperband") else 8, 2),
        epochs=epochs,
        patience=3,
        seed=0,
        directory=f"saved_models/tune_digits_{algorithm}",
    )
    if result is None:  # a worker of a distributed search: the chief reports
        return

    # The builder's defaults, trained the same way, for comparison.
    keras.utils.set_random_seed(0)
    baseline = build_mlp(x.shape[1:], 10)
    baseline.fit(
        x,
        y,
        validation_split=0.2,
        epochs=epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
        ],
    )
    print(f"\nbest arguments: {result.best_params}")
    print(
        f"test accuracy: tuned {accuracy(result.best_model, x_test, y_test):.3f}, "
        f"defaults {accuracy(baseline, x_test, y_test):.3f}"
    )


if __name__ == "__main__":
    main(*[arg for arg in sys.argv[1:] if arg != "--quick"][:1])
