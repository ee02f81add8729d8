"""CNN kernels and pooling: max against average pooling, and the kernels drawn.

Two CNNs that differ only in their pooling layers (``pooling="max"`` keeps the
strongest response in each 2x2 window, ``pooling="average"`` its mean) are
trained on scikit-learn's 8x8 digits. The script prints both test accuracies
and draws the 3x3 kernels the first convolution learned, and what a few of
them make of one digit (the feature maps before and after each pooling).

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/cnn_pooling.py

Writes saved_models/cnn_pooling/kernels.png and feature_maps.png.
"""

from __future__ import annotations

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets, keras


def draw_kernels(model, path) -> None:
    kernels = model.get_layer("conv1").get_weights()[0]  # (3, 3, 1, filters)
    count = kernels.shape[-1]
    fig, axes = plt.subplots(4, count // 4, figsize=(count // 4, 4.4))
    limit = np.abs(kernels).max()
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(kernels[..., 0, i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.axis("off")
    fig.suptitle("first-layer 3x3 kernels (red +, blue -)")
    save_figure(fig, path)


def draw_feature_maps(models, image, path) -> None:
    """Row per pooling: the digit, 4 maps after conv1, the same after pool1."""
    fig, axes = plt.subplots(2, 9, figsize=(12, 3))
    for row, (pool, model) in zip(axes, models.items()):
        probe = keras.Model(
            model.input,
            [model.get_layer("conv1").output, model.get_layer("pool1").output],
        )
        conv, pooled = (a[0] for a in probe(image[None], training=False))
        row[0].imshow(image[..., 0], cmap="gray_r")
        row[0].set_title(pool, fontsize=9)
        for i in range(4):
            row[1 + i].imshow(conv[..., i], cmap="viridis")
            row[5 + i].imshow(pooled[..., i], cmap="viridis")
        row[1].set_title("conv1 (8x8)", fontsize=8)
        row[5].set_title("after pooling (4x4)", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    save_figure(fig, path)


def main() -> None:
    banner()
    out = out_dir("cnn_pooling")
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    epochs = pick(15, 1)
    models = {}
    for pool in ("max", "average"):
        kdl.set_seed(0)
        model = kdl.build_cnn((8, 8, 1), 10, filters=(16, 32), pooling=pool)
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        print(f"pool={pool!r:10s} test accuracy {accuracy['accuracy']:.3f}")
        models[pool] = model
    draw_kernels(models["max"], out / "kernels.png")
    draw_feature_maps(models, x_test[0], out / "feature_maps.png")


if __name__ == "__main__":
    main()
