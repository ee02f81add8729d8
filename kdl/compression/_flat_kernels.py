"""Convolutions whose kernel is a matrix while they are pruned in blocks.

TF-MOT's block sparsity takes 2-D weights only, so it prunes Dense kernels
in blocks and convolution kernels weight by weight. A convolution computes
the same with its kernel stored as a matrix: kernel positions and input
channels as rows (in the order of the Keras kernel, input channels fastest),
filters as columns. TFLite stores a convolution kernel filter by filter in
that same row order, so a block of rows pruned together is a run of zeros in
the file, which gzip packs tightly (issue 15: the digits CNN's conv2 in
blocks of 16 rows took pruned + int8 from 11.7x to 13.6x smaller gzipped
than the float file, pruned + clustered from 15.2x to 17.3x, same accuracy).

Private to :mod:`kdl.compression`: ``pruning`` swaps the convolutions it
prunes in blocks for these before wrapping them, and back after.
"""

from __future__ import annotations

import numpy as np

from kdl.backend import keras, tf

__all__ = ["FLATTENABLE", "flat_copy", "is_flat", "plain_copy"]

# Convolutions whose kernel ends with its filters. Exact types: a transposed
# convolution's kernel ends with its inputs.
FLATTENABLE = (keras.layers.Conv1D, keras.layers.Conv2D)


def _flat_class(base):
    class Flat(base):
        """``base`` keeping its kernel as a (positions x inputs, filters) matrix."""

        def add_weight(self, name=None, shape=None, **kwargs):
            if name == "kernel":
                self.kernel_shape = tuple(int(d) for d in shape)
                shape = (int(np.prod(shape[:-1])), int(shape[-1]))
            return super().add_weight(name=name, shape=shape, **kwargs)

        def convolution_op(self, inputs, kernel):
            kernel = tf.reshape(kernel, self.kernel_shape)
            return super().convolution_op(inputs, kernel)

    Flat.__name__ = Flat.__qualname__ = f"FlatKernel{base.__name__}"
    # registered, so that a model holding one goes through get_config and back
    return keras.utils.register_keras_serializable(package="kdl")(Flat)


_FLAT = {base: _flat_class(base) for base in FLATTENABLE}
_PLAIN = {flat: base for base, flat in _FLAT.items()}


def is_flat(layer) -> bool:
    return type(layer) in _PLAIN


def _copy_as(cls, layer):
    """A built ``cls`` with ``layer``'s config and weights, the kernel
    reshaped to ``cls``'s own kernel shape."""
    copy = cls.from_config(layer.get_config())
    copy.build(layer.input_shape)
    kernel, *rest = layer.get_weights()
    copy.set_weights([kernel.reshape(copy.kernel.shape), *rest])
    return copy


def flat_copy(layer):
    """A flat-kernel copy of a built Conv1D or Conv2D, with its weights."""
    return _copy_as(_FLAT[type(layer)], layer)


def plain_copy(layer):
    """``layer`` itself, or for a flat-kernel layer a plain copy of it."""
    return _copy_as(_PLAIN[type(layer)], layer) if is_flat(layer) else layer
