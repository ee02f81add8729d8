"""Data augmentation: random rotations, zooms and shifts of the training images.

``kdl.augment.image`` gives Keras preprocessing layers that change each
training image a little every epoch (they do nothing at inference). The script
draws a few digits as the model sees them during training, then trains the
same CNN on a small training set with and without augmentation and compares
their test accuracy: with few images, augmentation usually helps.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/augmentation.py

Writes saved_models/augmentation/augmented_samples.png and accuracy.png.
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import augment, datasets

# Digits must not be mirrored: flip=None (a mirrored 2 is no 2).
OPTIONS = {"flip": None, "rotation": 0.08, "zoom": 0.15, "translation": 0.1}


def draw_samples(x, path) -> None:
    """Each row: one digit, then five random augmentations of it."""
    layer = augment.image(**OPTIONS, seed=0)
    fig, axes = plt.subplots(4, 6, figsize=(6, 4))
    for row, image in zip(axes, x[:4]):
        row[0].imshow(image[..., 0], cmap="gray_r")
        row[0].set_title("original" if row is axes[0] else "", fontsize=8)
        for ax in row[1:]:
            ax.imshow(layer(image[None], training=True)[0, ..., 0], cmap="gray_r")
    for ax in axes.ravel():
        ax.axis("off")
    save_figure(fig, path)


def main() -> None:
    banner()
    out = out_dir("augmentation")
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    draw_samples(x, out / "augmented_samples.png")

    x_small, y_small = x[: pick(200, 100)], y[: pick(200, 100)]
    epochs = pick(60, 2)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, augmentation in (("plain", None), ("augmented", OPTIONS)):
        kdl.set_seed(0)
        model = kdl.build_cnn((8, 8, 1), 10, augmentation=augmentation)
        history = model.fit(
            x_small,
            y_small,
            validation_data=(x_test, y_test),
            epochs=epochs,
            batch_size=32,
            verbose=0,
        ).history
        print(
            f"{label:9s} trained on {len(x_small)} images: test accuracy "
            f"{history['val_accuracy'][-1]:.3f}"
        )
        ax.plot(history["val_accuracy"], label=label)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="200 training images")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out / "accuracy.png")


if __name__ == "__main__":
    main()
