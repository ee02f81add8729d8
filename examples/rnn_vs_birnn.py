"""RNN against bidirectional RNN on digits read row by row.

``datasets.digits(layout="sequence")`` turns each 8x8 image into a sequence of
8 rows of 8 pixels. A one-directional recurrent layer has read only the top
rows when it reaches the middle of the image; a bidirectional one reads it
from both ends and joins the two summaries. The script trains a simple RNN
and a GRU, each one- and bidirectional, and plots their validation accuracy.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/rnn_vs_birnn.py

Writes saved_models/rnn_vs_birnn/accuracy.png.
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets


def main() -> None:
    banner()
    out = out_dir("rnn_vs_birnn")
    (x, y), (x_test, y_test) = datasets.digits(layout="sequence")  # (n, 8, 8)
    epochs = pick(20, 1)
    cells = pick(("simple", "gru"), ("simple",))

    fig, ax = plt.subplots(figsize=(6, 4))
    for cell in cells:
        for bidirectional in (False, True):
            kdl.set_seed(0)
            model = kdl.build_rnn(
                x.shape[1:], 10, cell=cell, units=(32,), bidirectional=bidirectional
            )
            history = model.fit(
                x,
                y,
                validation_data=(x_test, y_test),
                epochs=epochs,
                batch_size=32,
                verbose=0,
            ).history
            label = f"{'bi-' if bidirectional else ''}{cell}"
            print(
                f"{label:10s} {model.count_params():6,} weights, test accuracy "
                f"{history['val_accuracy'][-1]:.3f}"
            )
            ax.plot(history["val_accuracy"], label=label)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="digits read row by row")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out / "accuracy.png")


if __name__ == "__main__":
    main()
