"""Gradient descent: plain SGD against momentum, Adam and RMSprop on one model.

The same MLP (same seed, same starting weights) is trained on scikit-learn's
digits with each optimizer, and the training and validation loss curves are
drawn in one plot. Plain SGD creeps; momentum adds speed along consistent
directions; Adam and RMSprop scale each weight's step by its gradient history
and get there in a few epochs.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/gradient_descent.py

Writes saved_models/gradient_descent/loss_curves.png.
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets

# One learning rate per optimizer: each is a usual value for that method.
OPTIMIZERS = {"sgd": 0.01, "momentum": 0.01, "adam": 0.001, "rmsprop": 0.001}


def main() -> None:
    banner()
    out = out_dir("gradient_descent")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    epochs = pick(30, 2)

    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, learning_rate in OPTIMIZERS.items():
        kdl.set_seed(0)  # the same initial weights for every optimizer
        model = kdl.build_mlp(
            x.shape[1:], 10, optimizer=name, learning_rate=learning_rate
        )
        history = model.fit(
            x, y, validation_split=0.2, epochs=epochs, batch_size=32, verbose=0
        )
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        print(
            f"{name:9s} lr={learning_rate:<6g} final training loss "
            f"{history.history['loss'][-1]:.3f}, test accuracy "
            f"{accuracy['accuracy']:.3f}"
        )
        ax_train.plot(history.history["loss"], label=name)
        ax_val.plot(history.history["val_loss"], label=name)

    for ax, title in ((ax_train, "training loss"), (ax_val, "validation loss")):
        ax.set(title=title, xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3)
    ax_train.set_ylabel("cross-entropy")
    ax_val.legend()
    save_figure(fig, out / "loss_curves.png")


if __name__ == "__main__":
    main()
