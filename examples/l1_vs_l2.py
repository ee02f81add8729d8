"""L1 against L2 regularization: what each penalty does to the weights.

Three copies of one MLP are trained on scikit-learn's digits: without a
penalty, with an L1 penalty (the sum of absolute weights) and with an L2
penalty (the sum of squared weights). The histograms of the first layer's
weights show the difference: L2 shrinks every weight towards zero a little,
L1 pushes many weights to (almost) exactly zero, a sparse model.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/l1_vs_l2.py

Writes saved_models/l1_vs_l2/weight_histograms.png.
"""

from __future__ import annotations

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets

PENALTIES = {"none": {}, "L1 = 1e-3": {"l1": 1e-3}, "L2 = 1e-3": {"l2": 1e-3}}


def main() -> None:
    banner()
    out = out_dir("l1_vs_l2")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    epochs = pick(40, 2)

    fig, axes = plt.subplots(1, len(PENALTIES), figsize=(12, 3.5), sharey=True)
    bins = np.linspace(-0.6, 0.6, 61)
    for ax, (label, penalty) in zip(axes, PENALTIES.items()):
        kdl.set_seed(0)
        model = kdl.build_mlp(x.shape[1:], 10, dense_units=(64,), **penalty)
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        # The first Dense kernel: 64 inputs (pixels) x 64 units.
        kernel = model.get_layer("dense1").get_weights()[0].ravel()
        near_zero = np.mean(np.abs(kernel) < 1e-3)
        print(
            f"{label:10s} test accuracy {accuracy['accuracy']:.3f}, "
            f"|w| mean {np.abs(kernel).mean():.4f}, "
            f"{near_zero:.0%} of weights within 1e-3 of zero"
        )
        ax.hist(np.clip(kernel, bins[0], bins[-1]), bins=bins)
        ax.set(title=f"{label}: {near_zero:.0%} near 0", xlabel="weight")
    axes[0].set_ylabel("count (first layer)")
    save_figure(fig, out / "weight_histograms.png")


if __name__ == "__main__":
    main()
