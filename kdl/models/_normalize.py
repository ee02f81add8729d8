"""``normalize=``: a Normalization layer adapted on training inputs, inside the model.

The model then takes raw features, the way a device reads them: the mean and
variance live in the model's weights, so they survive ``kdl.save`` /
``kdl.load``, the compression transforms and TFLite export (upstream issue
12 of kdl: "Raw inputs in, raw inputs out").
"""

from __future__ import annotations

import numpy as np

from kdl import _validation as v
from kdl.backend import keras, tf

__all__ = ["check_normalize", "normalization_layer", "LAYER_NAME"]

LAYER_NAME = "normalize"
_REQUIREMENT = "None, an array of training inputs or a tf.data.Dataset of them"


def _dataset_shape(dataset) -> tuple:
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        spec = spec[0]
    if not isinstance(spec, tf.TensorSpec):
        return None
    return tuple(spec.shape[1:])


def _fits(shape, input_shape) -> bool:
    return len(shape) == len(input_shape) and all(
        want is None or have is None or want == have
        for want, have in zip(input_shape, shape)
    )


def check_normalize(normalize, input_shape, func: str) -> None:
    """Checks ``normalize`` against the builder's input shape, before any layer.

    Args:
        normalize: None, an array (examples, *input_shape), or a batched
            ``tf.data.Dataset`` of such inputs (or of (inputs, targets)).
        input_shape: tuple. The builder's checked input shape.
        func: str. The builder's name, for the message.
    """
    if normalize is None:
        return
    wanted = f"inputs of shape (examples, {', '.join(map(str, input_shape))})"
    if isinstance(normalize, tf.data.Dataset):
        shape = _dataset_shape(normalize)
        if shape is None or not _fits(shape, input_shape):
            v.fail(
                func,
                "normalize",
                f"a dataset of batched {wanted}",
                f"a dataset of {normalize.element_spec}",
            )
        return
    if isinstance(normalize, (list, tuple, dict)) or not hasattr(normalize, "shape"):
        v.fail(func, "normalize", _REQUIREMENT, normalize, error=TypeError)
    array = np.asarray(normalize)
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        v.fail(
            func,
            "normalize",
            "an array of numbers",
            f"an array of dtype {array.dtype}",
            error=TypeError,
        )
    if array.ndim != len(input_shape) + 1 or not _fits(array.shape[1:], input_shape):
        v.fail(func, "normalize", wanted, f"an array of shape {array.shape}")
    if len(array) < 1 or not np.isfinite(array).all():
        v.fail(
            func,
            "normalize",
            f"{wanted}, at least one, all finite",
            f"an array of shape {array.shape} with NaN or infinite values"
            if len(array)
            else "an empty array",
        )


def normalization_layer(normalize):
    """A Normalization layer (per last axis) with the statistics of ``normalize``.

    Keras' ``adapt`` computes the mean and variance. A feature that is
    constant in the training inputs (variance 0, e.g. a border pixel of the
    digits) keeps the variance 1 instead: Keras would divide by 1e-7 there,
    and a new example with any other value would give a huge input (the
    digits test loss rose to 550). The statistics are passed to the layer as
    its ``mean`` and ``variance`` arguments, so they are part of its config and
    every saved and exported form carries them.
    """
    scratch = keras.layers.Normalization(axis=-1)
    if isinstance(normalize, tf.data.Dataset):
        if isinstance(normalize.element_spec, tuple):
            normalize = normalize.map(lambda x, *rest: x)
        scratch.adapt(normalize)
    else:
        scratch.adapt(np.asarray(normalize, dtype="float32"))
    mean = np.asarray(scratch.mean, dtype="float64").reshape(-1)
    variance = np.asarray(scratch.variance, dtype="float64").reshape(-1)
    variance = np.where(variance > 1e-10 * (1.0 + mean**2), variance, 1.0)
    return keras.layers.Normalization(
        axis=-1, mean=mean.tolist(), variance=variance.tolist(), name=LAYER_NAME
    )
