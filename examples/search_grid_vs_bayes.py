"""Grid, random and Bayesian search on one space, with fewer trials than the grid.

``kdl.tune`` searches a builder's own arguments. The space here is a grid of
4 widths x 4 learning rates = 16 combinations, and every search gets a budget
of 8 trials: too few for the grid to visit every combination. A grid search
walks its combinations in a fixed order: first the first value of every
argument, then like an odometer, the last argument (the learning rate)
changing fastest; within 8 trials it visits the first two widths only, with
every learning rate. Random search draws combinations at random; Bayesian
optimization (a Gaussian process over the trials so far) picks each next
point where it expects the best objective, after a few random trials to
start from (kdl gives it half the budget, at most 3 per argument: here 4 of
the 8; with the same seed they can be the random search's own first draws,
and the script says how many trials the two shared). All three optimize the
validation accuracy.

The script counts, for each search and seed, the trials it took to reach a
target: 95% of the best validation accuracy that any of the three found with
that seed (trial k means the k-th trial was the first to reach it; a search
that never reaches it within the budget counts as budget + 1). Over 3 seeds
(the seed moves the validation split, the weights' initialization and the
random and Bayesian draws; the grid's order never changes) it prints the
mean ± spread of trials-to-target and of the best validation accuracy, the
test accuracy of each search's best model, and says whether any method
reached the target sooner beyond the seed spread. It plots the best-so-far
validation accuracy per trial (seed 0).
``examples/tune_digits.py`` shows one search in more depth (resume,
distributed workers); ``examples/notebooks/4_search.ipynb`` adds Hyperband.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run: one
seed, 2 trials of 1 epoch each on 400 images):

    python examples/search_grid_vs_bayes.py

Writes saved_models/search_grid_vs_bayes/ (one folder per search, each with
trials.csv: grid/, random/, bayesian/ for seed 0, grid-seed1/ and so on for
the other seeds; and objective_per_trial.png).
"""

from __future__ import annotations

import numpy as np
from _quick import (
    banner,
    beyond_spread,
    mean_spread,
    out_dir,
    pick,
    plt,
    save_figure,
    seeds,
    show,
)

import kdl
from kdl import build_mlp, datasets

# One discrete space for all three: 4 x 4 = 16 combinations.
SPACE = {
    "dense_units": kdl.Choice([(8,), (16,), (64,), (128,)]),
    "learning_rate": kdl.Choice([1e-4, 3e-4, 1e-3, 1e-2]),
}
ALGORITHMS = ("grid", "random", "bayesian")
TARGET = 0.95  # a fraction of the best validation accuracy found with the seed


def trials_to_target(accuracies, target: float) -> int:
    """The number of the first trial at or above `target`, else len + 1."""
    for number, value in enumerate(accuracies, start=1):
        if value >= target:
            return number
    return len(accuracies) + 1


def main() -> None:
    banner()
    out = out_dir("search_grid_vs_bayes")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    if pick(False, True):
        x, y = x[:400], y[:400]
    budget = pick(8, 2)
    combinations = int(np.prod([len(c.values) for c in SPACE.values()]))
    print(f"{combinations} combinations, a budget of {budget} trials per search")

    reached = {a: [] for a in ALGORITHMS}  # trials to the target, per seed
    best_val = {a: [] for a in ALGORITHMS}
    test_acc = {a: [] for a in ALGORITHMS}
    fig, ax = plt.subplots(figsize=(7, 4))
    for seed in seeds():
        curves, tried = {}, {}
        for algorithm in ALGORITHMS:
            folder = algorithm if seed == 0 else f"{algorithm}-seed{seed}"
            result = kdl.tune(
                build_mlp,
                x,
                y,
                space=SPACE,
                algorithm=algorithm,
                objective="val_accuracy",
                max_trials=budget,
                epochs=pick(10, 1),
                directory=out / folder,
                resume=False,  # start over each run (an old search is moved aside)
                seed=seed,
                verbose=0,
            )
            table = result.trials
            curves[algorithm] = table["val_accuracy"].to_numpy(dtype=float)
            tried[algorithm] = list(zip(*(table[k].astype(str) for k in SPACE)))
            if seed == 0:
                print(f"\n{algorithm} (seed 0), trials in the order they ran:")
                print(table[["trial", *SPACE, "val_accuracy"]].to_string(index=False))
            best_val[algorithm].append(np.nanmax(curves[algorithm]))
            test = result.best_model.evaluate(
                x_test, y_test, verbose=0, return_dict=True
            )
            test_acc[algorithm].append(test["accuracy"])
        widths = sorted({w for w, _ in tried["grid"]}, key=lambda w: (len(w), w))
        shared = next(
            (
                i
                for i, (a, b) in enumerate(zip(tried["random"], tried["bayesian"]))
                if a != b
            ),
            min(len(tried["random"]), len(tried["bayesian"])),
        )
        print(
            f"seed {seed}: the grid visited {len(set(tried['grid']))} of "
            f"{combinations} combinations (widths {', '.join(widths)}); random "
            f"and Bayesian search began with the same {shared} trial(s)"
        )
        target = TARGET * max(np.nanmax(c) for c in curves.values())
        for algorithm, accuracies in curves.items():
            reached[algorithm].append(
                trials_to_target(np.nan_to_num(accuracies), target)
            )
        print(
            f"seed {seed}: target {target:.3f}; trials to reach it: "
            + ", ".join(f"{a} {reached[a][-1]}" for a in ALGORITHMS)
        )
        if seed == 0:
            for algorithm, accuracies in curves.items():
                trials = range(1, len(accuracies) + 1)
                dots = ax.plot(trials, accuracies, "o", alpha=0.6, label=algorithm)
                ax.plot(
                    trials,
                    np.fmax.accumulate(np.nan_to_num(accuracies)),
                    color=dots[0].get_color(),
                )
            ax.axhline(target, color="gray", linestyle="--", label="target")

    print(
        f"\nover {len(seeds())} seed(s), a budget of {budget} trials "
        f"({budget} + 1 = not reached), target {TARGET:.0%} of the best:"
    )
    for algorithm in ALGORITHMS:
        print(
            f"{algorithm:9s} trials to target {show(reached[algorithm], 1)}   "
            f"best val accuracy {show(best_val[algorithm])}   "
            f"best model's test accuracy {show(test_acc[algorithm])}"
        )
    # Fewer trials is better: a method is sooner when the others' mean minus
    # its own exceeds the sum of the spreads.
    sooner = [
        a
        for a in ALGORITHMS
        if all(beyond_spread(reached[b], reached[a]) for b in ALGORITHMS if b != a)
    ]
    if sooner:
        print(
            f"{sooner[0]} reached the target sooner than both others, beyond the "
            "seed spread"
        )
    else:
        means = {a: mean_spread(reached[a])[0] for a in ALGORITHMS}
        print(
            "no method reached the target sooner than both others beyond the "
            "seed spread: the effect does not appear (means: "
            + ", ".join(f"{a} {m:.1f}" for a, m in means.items())
            + ")"
        )

    ax.set(
        xlabel="trial",
        ylabel="validation accuracy",
        title="each trial (dots) and the best so far (line), seed 0",
    )
    ax.legend()
    save_figure(fig, out / "objective_per_trial.png")


if __name__ == "__main__":
    main()
