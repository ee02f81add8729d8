"""Dropout: how it narrows the gap between training and validation accuracy.

A wide MLP trained on a small part of scikit-learn's digits memorizes it:
training accuracy reaches 1.0 while validation accuracy stays behind. With
dropout (units switched off at random during training only) the gap is
smaller. The plot shows both curves for each dropout rate.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/dropout_gap.py

Writes saved_models/dropout_gap/train_val_gap.png.
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets

RATES = (0.0, 0.3, 0.6)


def main() -> None:
    banner()
    out = out_dir("dropout_gap")
    (x, y), _ = datasets.digits(layout="flat")
    # A small training set makes over-fitting visible.
    x_train, y_train, x_val, y_val = x[:300], y[:300], x[300:], y[300:]
    epochs = pick(60, 2)

    fig, axes = plt.subplots(1, len(RATES), figsize=(12, 3.5), sharey=True)
    for ax, rate in zip(axes, RATES):
        kdl.set_seed(0)
        model = kdl.build_mlp(x.shape[1:], 10, dense_units=(256, 256), dropout=rate)
        history = model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=epochs,
            batch_size=32,
            verbose=0,
        ).history
        gap = history["accuracy"][-1] - history["val_accuracy"][-1]
        print(
            f"dropout {rate:.1f}: training accuracy {history['accuracy'][-1]:.3f}, "
            f"validation {history['val_accuracy'][-1]:.3f}, gap {gap:+.3f}"
        )
        ax.plot(history["accuracy"], label="training")
        ax.plot(history["val_accuracy"], label="validation")
        ax.set(title=f"dropout {rate}: gap {gap:+.3f}", xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend()
    save_figure(fig, out / "train_val_gap.png")


if __name__ == "__main__":
    main()
