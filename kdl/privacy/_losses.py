"""Per-example losses, which both TensorFlow Privacy paths and the audit need.

A light module (Keras only): the DP model classes, make_private and the
membership-inference audit all use it without importing each other.
"""

from __future__ import annotations

from kdl import _validation as v
from kdl.backend import keras

__all__ = ["LOSS_CLASSES", "per_example_loss", "loss_object"]

# Builder loss names -> the Loss class whose reduction can be turned off, which
# both TensorFlow Privacy paths need to get one loss per example.
LOSS_CLASSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mse": "MeanSquaredError",
    "mean_squared_error": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "mean_absolute_error": "MeanAbsoluteError",
    "huber": "Huber",
}


def per_example_loss(loss):
    """The Loss object ``loss`` with reduction "none": one value per example."""
    config = loss.get_config()
    config["reduction"] = keras.losses.Reduction.NONE
    return type(loss).from_config(config)


def loss_object(loss, func, arg="model"):
    """A fresh Loss object for a compiled loss (a Loss or a builder loss name)."""
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config(loss.get_config())
    if isinstance(loss, str) and loss in LOSS_CLASSES:
        return getattr(keras.losses, LOSS_CLASSES[loss])()
    v.fail(
        func,
        arg,
        "compiled with one loss: a kdl.keras.losses.Loss or one of "
        + ", ".join(repr(k) for k in LOSS_CLASSES),
        loss,
    )
