"""Data augmentation layer sets, active in training only.

Every layer here is an identity at inference time, so ``model.predict`` stays
deterministic; kdl's exporters leave them out of TFLite graphs.

Example:
    >>> from kdl import augment, build_cnn
    >>> model = build_cnn((8, 8, 1), 10, augmentation=augment.image(flip=None))
"""

from __future__ import annotations

from kdl import _validation as v
from kdl.backend import keras, tf

__all__ = [
    "image",
    "sequence",
    "RandomScale",
    "TimeMask",
    "is_augmentation_layer",
    "PREFIX",
]

PREFIX = "augment_"
_IMAGE_DEFAULTS = dict(
    flip="horizontal", rotation=0.1, zoom=0.1, translation=0.1, contrast=0.0
)
_SEQUENCE_DEFAULTS = dict(noise=0.01, scale=0.0, time_mask=0)
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")


def _check_image(func, flip, rotation, zoom, translation, contrast):
    if flip is not None:
        v.check_choice(flip, "flip", func, FLIPS)
    for arg, value in (
        ("rotation", rotation),
        ("zoom", zoom),
        ("translation", translation),
        ("contrast", contrast),
    ):
        v.check_fraction(value, arg, func)


def image_layers(
    *,
    flip="horizontal",
    rotation=0.1,
    zoom=0.1,
    translation=0.1,
    contrast=0.0,
    seed=None,
) -> list:
    """The list of layers behind :func:`image` (checked by the caller)."""
    layers = []
    if flip is not None:
        layers.append(keras.layers.RandomFlip(flip, seed=seed, name=PREFIX + "flip"))
    if rotation:
        layers.append(
            keras.layers.RandomRotation(
                rotation, fill_mode="constant", seed=seed, name=PREFIX + "rotation"
            )
        )
    if zoom:
        layers.append(
            keras.layers.RandomZoom(
                zoom, fill_mode="constant", seed=seed, name=PREFIX + "zoom"
            )
        )
    if translation:
        layers.append(
            keras.layers.RandomTranslation(
                translation,
                translation,
                fill_mode="constant",
                seed=seed,
                name=PREFIX + "translation",
            )
        )
    if contrast:
        layers.append(
            keras.layers.RandomContrast(contrast, seed=seed, name=PREFIX + "contrast")
        )
    return layers


def image(
    *,
    flip: str | None = "horizontal",
    rotation: float = 0.1,
    zoom: float = 0.1,
    translation: float = 0.1,
    contrast: float = 0.0,
    seed: int | None = None,
):
    """Image augmentation layers for (height, width, channels) inputs.

    Args:
        flip: str or None. "horizontal", "vertical", "horizontal_and_vertical",
            or None for no flips. Defaults to `"horizontal"` (use None for
            digits and text, which a mirror changes).
        rotation: float. Largest rotation, as a fraction of a full turn.
            Defaults to `0.1`.
        zoom: float. Largest zoom in or out, as a fraction. Defaults to `0.1`.
        translation: float. Largest shift, as a fraction of height and width.
            Defaults to `0.1`.
        contrast: float. Largest contrast change. Defaults to `0.0` (off).
        seed: int or None. Seed of the random transforms. Defaults to `None`.

    Returns:
        A `kdl.keras.Sequential` named "augmentation" (identity in inference).

    Raises:
        ValueError, TypeError: for a bad option, naming it.

    Example:
        >>> aug = image(flip=None, rotation=0.05)
    """
    _check_image("kdl.augment.image", flip, rotation, zoom, translation, contrast)
    return keras.Sequential(
        image_layers(
            flip=flip,
            rotation=rotation,
            zoom=zoom,
            translation=translation,
            contrast=contrast,
            seed=seed,
        ),
        name="augmentation",
    )


@keras.saving.register_keras_serializable(package="kdl")
class RandomScale(keras.layers.Layer):
    """Multiplies each training sequence by a random factor in [1-s, 1+s]."""

    def __init__(self, scale: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.seed = seed

    def call(self, inputs, training=None):
        if not training or not self.scale:
            return inputs
        shape = tf.concat(
            [tf.shape(inputs)[:1], tf.ones([tf.rank(inputs) - 1], tf.int32)], 0
        )
        factor = tf.random.uniform(
            shape,
            1.0 - self.scale,
            1.0 + self.scale,
            dtype=inputs.dtype,
            seed=self.seed,
        )
        return inputs * factor

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kdl")
class TimeMask(keras.layers.Layer):
    """Zeroes one random run of up to ``width`` steps of each training sequence."""

    def __init__(self, width: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.seed = seed

    def call(self, inputs, training=None):
        if not training or not self.width:
            return inputs
        batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
        width = tf.random.uniform(
            [batch, 1], 0, self.width + 1, tf.int32, seed=self.seed
        )
        start = tf.random.uniform(
            [batch, 1], 0, tf.maximum(steps, 1), tf.int32, seed=self.seed
        )
        t = tf.range(steps)[tf.newaxis, :]
        keep = tf.logical_or(t < start, t >= start + width)
        return inputs * tf.cast(keep, inputs.dtype)[:, :, tf.newaxis]

    def get_config(self):
        return {**super().get_config(), "width": self.width, "seed": self.seed}


def _check_sequence(func, noise, scale, time_mask):
    v.check_float(noise, "noise", func)
    v.check_fraction(scale, "scale", func)
    v.check_int(time_mask, "time_mask", func, min_value=0)


def sequence_layers(*, noise=0.01, scale=0.0, time_mask=0, seed=None) -> list:
    """The list of layers behind :func:`sequence` (checked by the caller)."""
    layers = []
    if noise:
        layers.append(
            keras.layers.GaussianNoise(noise, seed=seed, name=PREFIX + "noise")
        )
    if scale:
        layers.append(RandomScale(scale, seed=seed, name=PREFIX + "scale"))
    if time_mask:
        layers.append(TimeMask(time_mask, seed=seed, name=PREFIX + "time_mask"))
    return layers


def sequence(
    *,
    noise: float = 0.01,
    scale: float = 0.0,
    time_mask: int = 0,
    seed: int | None = None,
):
    """Augmentation layers for (steps, features) sequences.

    Args:
        noise: float. Standard deviation of added Gaussian noise. Defaults to
            `0.01`.
        scale: float. Largest random amplitude change, as a fraction. Defaults
            to `0.0` (off).
        time_mask: int. Longest run of steps zeroed at random. Defaults to `0`
            (off).
        seed: int or None. Defaults to `None`.

    Returns:
        A `kdl.keras.Sequential` named "augmentation" (identity in inference).

    Example:
        >>> aug = sequence(noise=0.05, time_mask=2)
    """
    _check_sequence("kdl.augment.sequence", noise, scale, time_mask)
    return keras.Sequential(
        sequence_layers(noise=noise, scale=scale, time_mask=time_mask, seed=seed),
        name="augmentation",
    )


_AUGMENT_TYPES = (
    keras.layers.RandomFlip,
    keras.layers.RandomRotation,
    keras.layers.RandomZoom,
    keras.layers.RandomTranslation,
    keras.layers.RandomContrast,
    keras.layers.GaussianNoise,
    RandomScale,
    TimeMask,
)


def is_augmentation_layer(layer) -> bool:
    """True for a layer that only acts in training (augmentation)."""
    return layer.name.startswith(PREFIX) or isinstance(layer, _AUGMENT_TYPES)


def check_options(augmentation, kind: str, func: str) -> None:
    """Checks a builder's ``augmentation`` dict of ``kind`` options, if a dict.

    Args:
        augmentation: the builder's argument; only dicts are checked here.
        kind: "image" (options of :func:`image`) or "sequence" (of
            :func:`sequence`).
        func: the builder's name, for error messages.
    """
    if not isinstance(augmentation, dict):
        return
    defaults = dict(_IMAGE_DEFAULTS if kind == "image" else _SEQUENCE_DEFAULTS)
    unknown = sorted(set(augmentation) - set(defaults))
    if unknown:
        v.fail(
            func,
            "augmentation",
            f"a dict of kdl.augment.{kind} options {sorted(defaults)}",
            augmentation,
        )
    defaults.update(augmentation)
    if kind == "image":
        _check_image(func, **defaults)
    else:
        _check_sequence(func, **defaults)


def resolve(augmentation, kind: str, func: str) -> list:
    """Turns a builder's ``augmentation`` argument into a list of layers.

    Args:
        augmentation: None, a dict of options for :func:`image` (kind "image")
            or :func:`sequence` (kind "sequence"), or a layer.
        kind: "image" or "sequence".
        func: the builder's name, for error messages.
    """
    if augmentation is None:
        return []
    if isinstance(augmentation, dict):
        check_options(augmentation, kind, func)
        maker = image_layers if kind == "image" else sequence_layers
        return maker(**augmentation)
    return [augmentation]
