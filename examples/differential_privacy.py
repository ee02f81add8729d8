"""Differential privacy: what epsilon costs, and a private model against a plain one.

Part 1 is arithmetic only: ``kdl.privacy.epsilon`` gives the privacy budget a
DP-SGD run spends for a noise level, batch size and number of epochs, and the
plot shows how it grows with the epochs for a few noise multipliers (more
noise, smaller epsilon: stronger privacy). Part 2 trains the same MLP on
scikit-learn's digits normally and with DP-SGD calibrated to epsilon = 8,
prints the privacy statement and runs the membership-inference audit on both
(AUC 0.5 means an attacker cannot tell training examples from others).
``examples/private_digits.py`` and ``examples/notebooks/3_privacy.ipynb`` go
further (run folders, the accuracy/epsilon trade-off).

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/differential_privacy.py

Writes saved_models/differential_privacy/ (epsilon_curves.png, privacy.txt).
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets, privacy

BATCH_SIZE, DELTA = 64, 1e-5


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


def build():
    kdl.set_seed(0)
    # Plain SGD with a large step is DP-SGD's usual companion (see README).
    return kdl.build_mlp(
        (64,), 10, dense_units=(64,), optimizer="sgd", learning_rate=0.5
    )


def main() -> None:
    banner()
    out = out_dir("differential_privacy")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    plot_budget(len(x), out / "epsilon_curves.png")

    epochs = pick(15, 1)
    plain = build()
    plain.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0)
    private = privacy.make_private(
        build(),
        l2_norm_clip=1.0,
        target_epsilon=8.0,
        delta=DELTA,
        num_examples=len(x),
        batch_size=BATCH_SIZE,
        epochs=epochs,
    )
    private.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0)

    statement = privacy.statement(private)
    (out / "privacy.txt").write_text(statement.text + "\n")
    print(statement.text)
    for name, model in (("plain", plain), ("private", private)):
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        audit = privacy.audit(model, x, y, x_test, y_test, max_examples=pick(2000, 300))
        print(
            f"{name:8s} test accuracy {accuracy['accuracy']:.3f}; membership "
            f"attack AUC {audit.auc:.3f}, advantage {audit.advantage:.3f}"
        )


if __name__ == "__main__":
    main()
