"""Shared pieces of kdl's per-example norm registry (upstream issue 16).

A registry function runs one layer and returns :class:`LayerNorms`; the
maths here is shared by the linear, convolution and recurrent entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from kdl.backend import tf

__all__ = ["LayerNorms", "position_sqr_norms", "kernel_grad", "scale_rows",
           "flat_positions"]  # fmt: skip


@dataclasses.dataclass
class LayerNorms:
    """What a registry function returns for one layer call (see module doc)."""

    base: object
    outputs: object
    sqr_norm_fn: Callable
    grad_fn: Callable  # scaled base grads -> [(variable, gradient), ...]


def position_sqr_norms(a, g):
    """Per-example ||sum_p a_p^T g_p||^2 for a (B, P, K) and g (B, P, G).

    Ghost norm (Gram matrices over positions) when P (K + G) < K G, else the
    per-example product itself; both are exact.
    """
    positions, k, n = a.shape[1], a.shape[2], g.shape[2]
    if positions is not None and positions * (k + n) < k * n:
        aa = tf.matmul(a, a, transpose_b=True)
        gg = tf.matmul(g, g, transpose_b=True)
        return tf.reduce_sum(aa * gg, axis=[1, 2])
    per_example = tf.matmul(a, g, transpose_a=True)
    return tf.reduce_sum(tf.square(per_example), axis=[1, 2])


def kernel_grad(a, g):
    """sum over examples and positions of a_p^T g_p: (B, P, K), (B, P, G) -> (K, G)."""
    k, n = tf.shape(a)[-1], tf.shape(g)[-1]
    return tf.matmul(tf.reshape(a, [-1, k]), tf.reshape(g, [-1, n]), transpose_a=True)


def scale_rows(tensor, factors):
    """Multiplies each example's slice of ``tensor`` by its factor."""
    shape = tf.concat([[-1], tf.ones([tf.rank(tensor) - 1], tf.int32)], axis=0)
    return tensor * tf.reshape(tf.cast(factors, tensor.dtype), shape)


def flat_positions(t):
    """(B, ..., C) -> (B, P, C), with P static when the shape is known."""
    inner = t.shape[1:-1]
    positions = inner.num_elements() if inner.is_fully_defined() else -1
    return tf.reshape(t, [tf.shape(t)[0], positions, t.shape[-1]])
