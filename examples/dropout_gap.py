"""Dropout: does it narrow the gap between training and test accuracy?

A wide MLP trained on a few hundred of scikit-learn's digits memorizes them:
training accuracy reaches 1.0 while test accuracy stays behind. Dropout
switches units off at random during training only, so the script measures
training accuracy the way the model is used, in inference mode (dropout off,
``model.evaluate`` on the training data), not from ``history["accuracy"]``,
which Keras records with dropout on and which would make the gap look smaller
than it is. Each dropout rate is trained from 3 seeds; the script prints
mean ± standard deviation over the seeds of the training accuracy, the test
accuracy and their gap, and then says, from these numbers, whether the gap
narrowed and whether test accuracy improved by more than the seed spread.
The plot shows both accuracies per epoch (inference mode) for the first seed.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/dropout_gap.py

Writes saved_models/dropout_gap/train_val_gap.png.
"""

from __future__ import annotations

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
from kdl import datasets

RATES = (0.0, 0.3, 0.6)
TRAIN_SIZE = 250  # small enough for a wide MLP to memorize it


def accuracy(model, x, y) -> float:
    """Accuracy in inference mode (dropout off)."""
    return model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]


def train_one(rate, seed, data, epochs):
    """One MLP trained with dropout `rate`; accuracies per epoch, inference mode."""
    x_train, y_train, x_test, y_test = data
    kdl.set_seed(seed)
    model = kdl.build_mlp(x_train.shape[1:], 10, dense_units=(512, 512), dropout=rate)
    curves = {"train": [], "test": []}
    for _ in range(epochs // 5 or 1):  # measure every 5 epochs
        model.fit(x_train, y_train, epochs=min(5, epochs), batch_size=32, verbose=0)
        curves["train"].append(accuracy(model, x_train, y_train))
        curves["test"].append(accuracy(model, x_test, y_test))
    return curves


def verdict(results) -> str:
    """What the numbers say about each rate against no dropout."""
    base = results[0.0]
    lines = []
    for rate in RATES[1:]:
        r = results[rate]
        gap, base_gap = mean_spread(r["gap"])[0], mean_spread(base["gap"])[0]
        narrowed = (
            f"the gap narrowed from {base_gap:+.3f} to {gap:+.3f}"
            if beyond_spread(base["gap"], r["gap"])
            else f"the gap did not narrow beyond the seed spread "
            f"({base_gap:+.3f} without, {gap:+.3f} with)"
        )
        delta = mean_spread(r["test"])[0] - mean_spread(base["test"])[0]
        if beyond_spread(r["test"], base["test"]):
            test = f"test accuracy improved by {delta:+.3f}, beyond the seed spread"
        elif beyond_spread(base["test"], r["test"]):
            test = f"test accuracy got worse by {delta:+.3f}, beyond the seed spread"
        else:
            test = f"test accuracy changed by {delta:+.3f}, within the seed spread"
        lines.append(f"dropout {rate}: {narrowed}; {test}.")
    return "\n".join(lines)


def main() -> None:
    banner()
    out = out_dir("dropout_gap")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    data = (x[:TRAIN_SIZE], y[:TRAIN_SIZE], x_test, y_test)
    epochs = pick(150, 2)
    print(
        f"{TRAIN_SIZE} training digits, {len(x_test)} test digits, MLP (512, 512), "
        f"{epochs} epochs, seeds {list(seeds())}; accuracies in inference mode"
    )

    fig, axes = plt.subplots(1, len(RATES), figsize=(12, 3.5), sharey=True)
    results = {}
    for ax, rate in zip(axes, RATES):
        runs = [train_one(rate, seed, data, epochs) for seed in seeds()]
        train = [run["train"][-1] for run in runs]
        test = [run["test"][-1] for run in runs]
        gap = [a - b for a, b in zip(train, test)]
        results[rate] = {"train": train, "test": test, "gap": gap}
        print(
            f"dropout {rate:.1f}: training accuracy {show(train)}, "
            f"test {show(test)}, gap {show(gap)}"
        )
        steps = [5 * (i + 1) for i in range(len(runs[0]["train"]))]
        ax.plot(steps, runs[0]["train"], label="training (dropout off)")
        ax.plot(steps, runs[0]["test"], label="test")
        ax.set(title=f"dropout {rate}: gap {show(gap)}", xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend()
    save_figure(fig, out / "train_val_gap.png")
    print(verdict(results))


if __name__ == "__main__":
    main()
