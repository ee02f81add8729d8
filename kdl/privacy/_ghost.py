"""Per-example gradient norms without per-example gradients (upstream issue 16).

Each registry function runs one layer and returns a :class:`LayerNorms`:
``base``, the tensors the loss gradient is taken with respect to (a linear
layer's output before its activation, or probes of a recurrent layer);
``outputs``, the layer's output; ``sqr_norm_fn``, which maps the gradient of
the summed loss with respect to ``base`` to each example's squared gradient
norm for the layer's weights; and ``grad_fn``, which maps that gradient scaled
per example (by the clip factors) to the layer's weight gradients. With both,
one forward and one backward pass give the clipped gradient ("book-keeping"
ghost clipping, Bu et al. 2022): no second pass, as TensorFlow Privacy's fast
path needs.

Layers applied at many positions (Dense on sequences, convolutions, recurrent
kernels over time) use the ghost-norm identity: for a kernel gradient
``sum_p a_p^T g_p`` the per-example squared norm is
``sum_{p,q} <a_p, a_q> <g_p, g_q>``; when the direct product ``A^T G`` is
smaller (few positions and wide layers) it is computed instead.

:func:`tf_privacy_registry` gives the same functions as TensorFlow Privacy's
``LayerRegistry`` (its Dense and Embedding entries plus kdl's convolution and
recurrent entries), for ``make_dp_model_class(..., layer_registry=...)``.
"""

from __future__ import annotations

import sys

from kdl.backend import keras, tf
from kdl.privacy import _norms_rnn
from kdl.privacy._norms import LayerNorms, flat_positions, position_sqr_norms

sys.skip_tf_privacy_import = True

from tensorflow_privacy.privacy.fast_gradient_clipping import (  # noqa: E402
    layer_registry,
)

__all__ = [
    "REGISTRY",
    "supported",
    "lookup",
    "tf_privacy_registry",
]


def _linear_call(layer, args, kwargs, tape):
    """Runs ``layer`` without its activation; returns (base, outputs)."""
    if len(args) != 1 or any(val is not None for val in kwargs.values()):
        raise NotImplementedError(f"{layer.name}: one input and no options")
    activation = layer.activation
    layer.activation = None
    try:
        base = layer(args[0])
    finally:
        layer.activation = activation
    tape.watch(base)
    outputs = activation(base) if activation is not None else base
    return base, outputs


def _local_grad_fn(layer, base, tape):
    """Weight gradients of ``base`` (which depends on them only through
    this layer) for output gradients ``scaled``."""

    def grad_fn(scaled):
        weights = layer.trainable_weights
        grads = tape.gradient(base, weights, output_gradients=scaled)
        return list(zip(weights, grads))

    return grad_fn


# === Dense ===


def dense(layer, args, kwargs, tape):
    """Dense (also on sequences: a kernel applied at every position)."""
    base, outputs = _linear_call(layer, args, kwargs, tape)
    a = flat_positions(tf.cast(args[0], base.dtype))

    def sqr_norm_fn(grads):
        g = flat_positions(grads)
        norms = position_sqr_norms(a, g)
        if layer.use_bias:
            norms += tf.reduce_sum(tf.square(tf.reduce_sum(g, axis=1)), axis=1)
        return norms

    return LayerNorms(base, outputs, sqr_norm_fn, _local_grad_fn(layer, base, tape))


# === Embedding ===


def embedding(layer, args, kwargs, tape):
    """Embedding: per-example norms of the rows an example looks up."""
    if len(args) != 1 or getattr(layer, "sparse", False):
        raise NotImplementedError(f"{layer.name}: dense lookups of one input")
    ids = tf.cast(args[0], tf.int32)
    table = layer.embeddings
    outputs = tf.nn.embedding_lookup(table, ids)
    base = outputs
    tape.watch(base)
    vocab = tf.cast(layer.input_dim, tf.int32)

    def one_hot_sums(grads):
        """(B, vocab, dim) summed output gradients per looked-up id."""
        flat_ids = tf.reshape(ids, [tf.shape(ids)[0], -1])
        g = flat_positions(grads)
        return tf.einsum("bpv,bpd->bvd", tf.one_hot(flat_ids, vocab, dtype=g.dtype), g)

    def sqr_norm_fn(grads):
        flat_ids = tf.reshape(ids, [tf.shape(ids)[0], -1])
        same = tf.cast(
            tf.equal(flat_ids[:, :, None], flat_ids[:, None, :]), grads.dtype
        )
        g = flat_positions(grads)
        gg = tf.matmul(g, g, transpose_b=True)
        return tf.reduce_sum(same * gg, axis=[1, 2])

    def grad_fn(scaled):
        return [(table, tf.reduce_sum(one_hot_sums(scaled), axis=0))]

    return LayerNorms(base, outputs, sqr_norm_fn, grad_fn)


# === Convolutions ===


def _conv_patches(layer, inputs):
    """(B, P, kernel_size x in_channels) patches the convolution multiplies."""
    if isinstance(layer, keras.layers.Conv1D):
        (k,), (s,), (d,) = layer.kernel_size, layer.strides, layer.dilation_rate
        padding = layer.padding.upper()
        if padding == "CAUSAL":
            inputs = tf.pad(inputs, [[0, 0], [(k - 1) * d, 0], [0, 0]])
            padding = "VALID"
        images = inputs[:, None]
        sizes, strides, rates = [1, 1, k, 1], [1, 1, s, 1], [1, 1, d, 1]
    else:
        images = inputs
        sizes = [1, *layer.kernel_size, 1]
        strides = [1, *layer.strides, 1]
        rates = [1, *layer.dilation_rate, 1]
        padding = layer.padding.upper()
    patches = tf.image.extract_patches(images, sizes, strides, rates, padding)
    return flat_positions(patches)


def conv_supported(layer) -> bool:
    """Conv1D/Conv2D as kdl's builders make them: channels last, one group."""
    return (
        type(layer) in (keras.layers.Conv1D, keras.layers.Conv2D)
        and layer.data_format == "channels_last"
        and layer.groups == 1
    )


def conv(layer, args, kwargs, tape):
    """Conv1D and Conv2D, any strides, padding ("same", "valid", "causal")
    and dilation."""
    base, outputs = _linear_call(layer, args, kwargs, tape)
    a = _conv_patches(layer, tf.cast(args[0], base.dtype))

    def sqr_norm_fn(grads):
        g = flat_positions(grads)
        norms = position_sqr_norms(a, g)
        if layer.use_bias:
            norms += tf.reduce_sum(tf.square(tf.reduce_sum(g, axis=1)), axis=1)
        return norms

    return LayerNorms(base, outputs, sqr_norm_fn, _local_grad_fn(layer, base, tape))


# === The registry ===


def _entries():
    rnn = _norms_rnn
    return {
        keras.layers.Dense: (dense, lambda layer: True),
        keras.layers.Embedding: (
            embedding,
            lambda layer: not getattr(layer, "sparse", False),
        ),
        keras.layers.Conv1D: (conv, conv_supported),
        keras.layers.Conv2D: (conv, conv_supported),
        keras.layers.SimpleRNN: (rnn.recurrent, rnn.supported),
        keras.layers.GRU: (rnn.recurrent, rnn.supported),
        keras.layers.LSTM: (rnn.recurrent, rnn.supported),
        keras.layers.Bidirectional: (rnn.bidirectional, rnn.bidirectional_supported),
    }


REGISTRY = _entries()


def _is_pruning_wrapper(layer) -> bool:
    """TF-MOT's PruneLowMagnitude (told by name: importing TF-MOT is slow)."""
    return type(layer).__name__ == "PruneLowMagnitude" and hasattr(layer, "pruning_obj")


def pruning_wrapper(layer, args, kwargs, tape):
    """TF-MOT's PruneLowMagnitude in training: its step and mask updates, as
    its own ``call`` makes them, then the wrapped layer's registry function
    (the gradient reaches the whole kernel, as in TF-MOT)."""
    layer.pruning_step.assign_add(1)
    tf.debugging.assert_greater_equal(layer.pruning_step, tf.constant(1, tf.int64))
    layer.pruning_obj.conditional_mask_update()
    layer.pruning_obj.weight_mask_op()
    kwargs = {k: val for k, val in kwargs.items() if k != "training"}
    return lookup(layer.layer)(layer.layer, args, kwargs, tape)


def supported(layer) -> bool:
    """True when kdl's registry computes this layer's per-example norms."""
    if _is_pruning_wrapper(layer):
        return supported(layer.layer)
    entry = REGISTRY.get(type(layer))
    return entry is not None and bool(entry[1](layer))


def lookup(layer):
    """The registry function for ``layer`` (see :func:`supported`)."""
    if _is_pruning_wrapper(layer):
        return pruning_wrapper
    return REGISTRY[type(layer)][0]


def _as_tf_privacy(function):
    def registry_function(layer, args, kwargs, tape, num_microbatches=None):
        if num_microbatches is not None:
            raise NotImplementedError("kdl's registry clips per example")
        result = function(layer, args, kwargs, tape)
        return result.base, result.outputs, result.sqr_norm_fn

    return registry_function


def tf_privacy_registry():
    """TensorFlow Privacy's default LayerRegistry plus kdl's entries.

    Its Dense and Embedding functions stay; convolutions and recurrent
    layers are kdl's (TensorFlow Privacy 0.9.0 has none).
    """
    registry = layer_registry.make_default_layer_registry()
    for cls, (function, _) in REGISTRY.items():
        if cls not in (keras.layers.Dense, keras.layers.Embedding):
            registry.insert(cls, _as_tf_privacy(function))
    return registry
