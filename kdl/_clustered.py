"""Does a model look clustered? ``to_tflite`` picks its weight scales by it.

A kernel of ``kdl.compression.cluster`` holds few distinct values (16 by
default, 17 with the zero of ``preserve_sparsity``). int8 export with one
scale per output channel maps them to 50-80 distinct int8 values per kernel;
one scale per kernel keeps them few, so gzip stores each in a few bits
(digits CNN pruned 80% and clustered: 14.4x smaller gzipped per channel, 17x
per kernel, same accuracy; issue 23). Private to kdl: ``kdl.export`` calls
:func:`looks_clustered` when ``per_channel`` is left to it.
"""

from __future__ import annotations

import numpy as np

from kdl._model_utils import walk_layers

__all__ = ["looks_clustered"]

MAX_VALUES = 64  # distinct values of a clustered kernel (cluster(clusters=64))
MIN_SIZE = 256  # smaller kernels say little (a 3x3x1x8 kernel has 72 values)


def _kernels(model):
    """Every kernel (Dense, convolution, recurrent) with MIN_SIZE weights or more."""
    for layer in walk_layers(model):
        for weight in layer.weights:
            name = weight.name.split("/")[-1].split(":")[0]
            if name.endswith("kernel") and int(np.prod(weight.shape)) >= MIN_SIZE:
                yield np.asarray(weight.numpy())


def looks_clustered(model) -> bool:
    """True when most kernel weights (by count) sit in kernels of at most
    MAX_VALUES distinct values."""
    clustered = total = 0
    for kernel in _kernels(model):
        total += kernel.size
        if np.unique(kernel).size <= MAX_VALUES:
            clustered += kernel.size
    return total > 0 and clustered * 2 >= total
