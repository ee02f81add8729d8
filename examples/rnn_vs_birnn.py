"""RNN against bidirectional RNN on digits read row by row, at equal weights.

``datasets.digits(layout="sequence")`` turns each 8x8 image into a sequence of
8 rows of 8 pixels, and the models classify from the recurrent layer's last
state. A forward layer reads the rows top to bottom, so its last state has
seen the bottom rows last, and what it keeps of the top rows must survive
seven more steps. A bidirectional layer adds a backward pass whose last state
has seen the top rows last, and classifies from both: each end of the image
is fresh in one half of the summary. One would expect that to matter most
where memory is short (a simple RNN) and least where gates carry the top rows
along (a GRU); the printed numbers, not this expectation, say what happened
(at full settings, see docs/benchmarks.md, "Example claims (issue 31)").

A bidirectional layer has two sets of weights, so a fair comparison gives
the one-directional layer more units: enough that its weight count is close
to the bidirectional one (both counts are printed). Each model is trained
from 3 seeds; the script prints mean ± standard deviation of the test
accuracy and says, from these numbers, whether the bidirectional layer won by
more than the seed spread — or plainly that it did not.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/rnn_vs_birnn.py

Writes saved_models/rnn_vs_birnn/accuracy.png.
"""

from __future__ import annotations

from functools import cache

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
from kdl import datasets

BI_UNITS = 32  # units of each direction of the bidirectional layer


def build(cell, units, bidirectional, seed=0):
    kdl.set_seed(seed)
    return kdl.build_rnn(
        (8, 8), 10, cell=cell, units=(units,), bidirectional=bidirectional
    )


@cache
def weights(cell, units, bidirectional) -> int:
    """The weight count of a model; each size is built once."""
    return build(cell, units, bidirectional).count_params()


def matched_units(cell, target: int) -> int:
    """Units of a one-directional layer whose model has about `target` weights."""
    low, high = 1, 4 * BI_UNITS  # the weight count grows with the units
    while high - low > 1:
        middle = (low + high) // 2
        if weights(cell, middle, False) < target:
            low = middle
        else:
            high = middle
    counts = {u: weights(cell, u, False) for u in (low, high)}
    return min(counts, key=lambda u: abs(counts[u] - target))


def train(cell, units, bidirectional, data, epochs):
    """Test accuracy per epoch, one list per seed."""
    x, y, x_test, y_test = data
    curves = []
    for seed in seeds():
        model = build(cell, units, bidirectional, seed)
        history = model.fit(
            x,
            y,
            validation_data=(x_test, y_test),
            epochs=epochs,
            batch_size=32,
            verbose=0,
        ).history
        curves.append(history["val_accuracy"])
    return curves


def verdict(cell, uni, bi) -> str:
    delta = mean_spread(bi)[0] - mean_spread(uni)[0]
    if beyond_spread(bi, uni):
        return f"{cell}: bidirectional wins by {delta:+.3f}, beyond the seed spread."
    if beyond_spread(uni, bi):
        return (
            f"{cell}: the effect does not appear; the one-directional layer wins "
            f"by {-delta:+.3f}, beyond the seed spread."
        )
    return (
        f"{cell}: the effect does not appear at equal weights; the difference "
        f"({delta:+.3f}) is within the seed spread."
    )


def main() -> None:
    banner()
    out = out_dir("rnn_vs_birnn")
    (x, y), (x_test, y_test) = datasets.digits(layout="sequence")  # (n, 8, 8)
    data = (x, y, x_test, y_test)
    epochs = pick(20, 1)
    cells = pick(("simple", "gru"), ("simple",))
    print(f"{epochs} epochs, seeds {list(seeds())}; test accuracy after the last")

    fig, ax = plt.subplots(figsize=(6, 4))
    lines = []
    for cell in cells:
        target = weights(cell, BI_UNITS, True)
        units = matched_units(cell, target)
        finals = {}
        for bidirectional, n in ((False, units), (True, BI_UNITS)):
            curves = train(cell, n, bidirectional, data, epochs)
            finals[bidirectional] = [curve[-1] for curve in curves]
            label = f"{'bi-' if bidirectional else ''}{cell} ({n} units)"
            print(
                f"{label:20s} {weights(cell, n, bidirectional):6,} weights, test "
                f"accuracy "
                f"{show(finals[bidirectional])}"
            )
            ax.plot(np.mean(curves, axis=0), label=label)
        lines.append(verdict(cell, finals[False], finals[True]))
    print("\n".join(lines))
    ax.set(
        xlabel="epoch",
        ylabel="test accuracy (mean over seeds)",
        title="digits read row by row, equal weights",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out / "accuracy.png")


if __name__ == "__main__":
    main()
