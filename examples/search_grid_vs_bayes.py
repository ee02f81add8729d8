"""Grid search against Bayesian optimization on the same search space.

``kdl.tune`` searches a builder's own arguments. A grid search visits every
combination of a small, discrete space; Bayesian optimization (a Gaussian
process over the trials so far) chooses each next point where it expects the
best objective, and can search continuous ranges. Both runs use the same
budget of trials and the same seed; the script prints both trial tables and
plots the validation loss of every trial, with the best so far.
``examples/tune_digits.py`` shows one search in more depth (resume,
distributed workers); ``examples/notebooks/4_search.ipynb`` adds Hyperband.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/search_grid_vs_bayes.py

Writes saved_models/search_grid_vs_bayes/ (one folder per search, each with
trials.csv, and objective_per_trial.png).
"""

from __future__ import annotations

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import build_mlp, datasets

# Grid: every combination of discrete values (3 x 3 = 9 trials).
GRID = {
    "dense_units": kdl.Choice([(16,), (64,), (128,)]),
    "learning_rate": kdl.Choice([1e-3, 3e-3, 1e-2]),
}
# Bayesian: the same units, and the learning rate as a continuous range.
BAYESIAN = {
    "dense_units": kdl.Choice([(16,), (64,), (128,)]),
    "learning_rate": kdl.Float(1e-3, 1e-2, log=True),
}


def main() -> None:
    banner()
    out = out_dir("search_grid_vs_bayes")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    if pick(False, True):
        x, y = x[:400], y[:400]
    trials = pick(9, 2)

    fig, ax = plt.subplots(figsize=(7, 4))
    for algorithm, space in (("grid", GRID), ("bayesian", BAYESIAN)):
        result = kdl.tune(
            build_mlp,
            x,
            y,
            space=space,
            algorithm=algorithm,
            max_trials=trials,
            epochs=pick(15, 1),
            directory=out / algorithm,
            resume=False,  # start over each run (an old search is moved aside)
            seed=0,
            verbose=0,
        )
        table = result.trials
        print(
            f"\n{algorithm}: best {result.best_params} val_loss {result.best_score:.4f}"
        )
        print(table[["trial", "status", *space, "val_loss"]].to_string(index=False))
        accuracy = result.best_model.evaluate(
            x_test, y_test, verbose=0, return_dict=True
        )
        print(f"{algorithm}: best model test accuracy {accuracy['accuracy']:.3f}")
        losses = table["val_loss"].to_numpy(dtype=float)
        line = ax.plot(range(1, len(losses) + 1), losses, "o", label=algorithm)[0]
        ax.plot(
            range(1, len(losses) + 1),
            np.fmin.accumulate(losses),
            color=line.get_color(),
        )
    ax.set(
        xlabel="trial",
        ylabel="validation loss",
        yscale="log",
        title="each trial (dots) and the best so far (line)",
    )
    ax.legend()
    save_figure(fig, out / "objective_per_trial.png")


if __name__ == "__main__":
    main()
