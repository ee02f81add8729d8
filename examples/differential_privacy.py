"""Differential privacy: what epsilon costs, and a private model against a plain one.

Part 1 is arithmetic only: ``kdl.privacy.epsilon`` gives the privacy budget a
DP-SGD run spends for a noise level, batch size and number of epochs, and the
plot shows how it grows with the epochs for a few noise multipliers (more
noise, smaller epsilon: stronger privacy). Part 2 trains the same wide MLP on
300 of scikit-learn's digits for many epochs, normally and with DP-SGD
calibrated to epsilon = 8, from 3 seeds. The plain model memorizes its small
training set, which is what a membership-inference attacker feeds on; the
script prints the privacy statement, the test accuracy and the audit of both
(AUC 0.5 means an attacker cannot tell training examples from others) as
mean ± standard deviation over the seeds, and says from these numbers whether
the plain model leaks and whether DP-SGD reduced the leak.
``examples/private_digits.py`` and ``examples/notebooks/3_privacy.ipynb`` go
further (run folders, the accuracy/epsilon trade-off).

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/differential_privacy.py

Writes saved_models/differential_privacy/ (epsilon_curves.png, privacy.txt).
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
from kdl import datasets, privacy

BATCH_SIZE, DELTA, EPSILON = 64, 1e-5, 8.0
TRAIN_SIZE = 300


def plot_budget(num_examples: int, path) -> None:
    epochs = range(1, 31, pick(1, 6))  # the accountant takes ~0.1 s a point
    fig, ax = plt.subplots(figsize=(6, 4))
    for noise in (0.7, 1.0, 1.5, 2.0):
        eps = [
            privacy.epsilon(
                num_examples=num_examples,
                batch_size=BATCH_SIZE,
                epochs=e,
                noise_multiplier=noise,
                delta=DELTA,
            )
            for e in epochs
        ]
        ax.plot(list(epochs), eps, label=f"noise multiplier {noise}")
    ax.set(xlabel="epochs", ylabel=f"epsilon (delta = {DELTA:g})", yscale="log")
    ax.set_title(f"{num_examples} examples, batches of {BATCH_SIZE}")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def build(seed):
    kdl.set_seed(seed)
    # Wide enough to memorize a small training set. Plain SGD with a large
    # step is DP-SGD's usual companion (see README).
    return kdl.build_mlp(
        (64,), 10, dense_units=(256,), optimizer="sgd", learning_rate=0.5
    )


def train_pair(seed, data, epochs):
    """A plain and a private model from the same seed; their scores."""
    x, y, x_test, y_test = data
    plain = build(seed)
    plain.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0)
    private = privacy.make_private(
        build(seed),
        l2_norm_clip=1.0,
        target_epsilon=EPSILON,
        delta=DELTA,
        num_examples=len(x),
        batch_size=BATCH_SIZE,
        epochs=epochs,
    )
    private.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0)
    scores = {}
    for name, model in (("plain", plain), ("private", private)):
        logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        audit = privacy.audit(model, x, y, x_test, y_test, seed=seed)
        scores[name] = (logs["accuracy"], audit.auc, audit.advantage)
    return scores, private


def verdict(auc) -> str:
    plain, private = mean_spread(auc["plain"])[0], mean_spread(auc["private"])[0]
    if not beyond_spread(auc["plain"], [0.5]):
        return (
            f"The plain model barely leaks here (AUC {plain:.3f}): these settings "
            "cannot show what DP buys."
        )
    if beyond_spread(auc["plain"], auc["private"]):
        return (
            f"The plain model leaks (AUC {plain:.3f}); DP-SGD brings the attack "
            f"down to AUC {private:.3f}."
        )
    return (
        f"The plain model leaks (AUC {plain:.3f}), but the private one leaks as "
        f"much within the seed spread (AUC {private:.3f})."
    )


def main() -> None:
    banner()
    out = out_dir("differential_privacy")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    # A small training set trained for many epochs: the plain model memorizes
    # it, which is what a membership-inference attack feeds on.
    data = (x[:TRAIN_SIZE], y[:TRAIN_SIZE], x_test, y_test)
    plot_budget(TRAIN_SIZE, out / "epsilon_curves.png")

    epochs = pick(100, 1)
    print(
        f"{TRAIN_SIZE} training digits (members), {len(x_test)} test digits "
        f"(non-members), {epochs} epochs, seeds {list(seeds())}"
    )
    columns = {name: ([], [], []) for name in ("plain", "private")}
    for seed in seeds():
        scores, private = train_pair(seed, data, epochs)
        for name, values in scores.items():
            for column, value in zip(columns[name], values):
                column.append(value)

    statement = privacy.statement(private)
    (out / "privacy.txt").write_text(statement.text + "\n")
    print(statement.text)
    for name, (accuracy, auc, advantage) in columns.items():
        print(
            f"{name:8s} test accuracy {show(accuracy)}; membership attack "
            f"AUC {show(auc)}, advantage {show(advantage)}"
        )
    print(verdict({name: column[1] for name, column in columns.items()}))


if __name__ == "__main__":
    main()
