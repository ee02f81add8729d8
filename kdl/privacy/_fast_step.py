"""kdl's fast DP-SGD step: per-example norms and clipped gradients in one pass.

TensorFlow Privacy's fast path computes the per-example norms with one
forward and backward pass, then runs a second forward and backward pass on
the loss reweighted by the clip factors. Here the registry functions of
:mod:`kdl.privacy._ghost` also map the backpropagated gradients, scaled by
each example's clip factor, to the weight gradients ("book-keeping" ghost
clipping): one forward pass and one backward pass, plus the norms. Each
example's loss only reaches its own activations (no BatchNormalization,
which ``make_private`` refuses), so scaling an example's backpropagated
gradient by its factor is exactly clipping its weight gradient.
"""

from __future__ import annotations

import inspect
import sys

from kdl.backend import keras, tf
from kdl.privacy import _ghost
from kdl.privacy._losses import loss_object, per_example_loss
from kdl.privacy._norms import scale_rows

sys.skip_tf_privacy_import = True

from tensorflow_privacy.privacy.fast_gradient_clipping import (  # noqa: E402
    gradient_clipping_utils,
)

__all__ = ["forward", "clipped_gradients", "gradient_norms", "train_step"]


def _accepts_training(layer) -> bool:
    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def _generator(tape):
    """Calls each layer: through kdl's registry when it has trainable weights."""

    def generator_fn(layer, args, kwargs):
        if layer.trainable_weights:
            if not _ghost.supported(layer):
                raise NotImplementedError(
                    f"{layer.name} ({type(layer).__name__}) is not in kdl's "
                    "per-example norm registry"
                )
            result = _ghost.lookup(layer)(layer, args, kwargs, tape)
            return result.outputs, result
        if _accepts_training(layer) and kwargs.get("training") is None:
            kwargs = {**kwargs, "training": True}  # dropout as in fit
        return layer(*args, **kwargs), None

    return generator_fn


def forward(model, x, y, weights, tape):
    """(predictions, per-example losses, registry records), recorded on tape."""
    outputs, records = gradient_clipping_utils.model_forward_pass(
        model, x, generator_fn=_generator(tape)
    )
    # A builder's model compiled with a loss name has no Loss object yet.
    loss = loss_object(model.loss, "kdl.privacy.gradient_norms")
    losses = per_example_loss(loss)(y, outputs, weights)
    if losses.shape.rank > 1:  # e.g. one loss per time step: mean per example
        losses = tf.reduce_mean(losses, axis=list(range(1, losses.shape.rank)))
    return outputs, losses, [r for r in records if r is not None]


def _norms(tape, total, records):
    base_grads = tape.gradient(
        total,
        [r.base for r in records],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    squares = tf.add_n([r.sqr_norm_fn(g) for r, g in zip(records, base_grads)])
    return tf.sqrt(tf.maximum(squares, 0.0)), base_grads


def clipped_gradients(model, x, y, weights, l2_norm_clip):
    """(sum of clipped per-example gradients, predictions, norms)."""
    with tf.GradientTape(persistent=True) as tape:
        outputs, losses, records = forward(model, x, y, weights, tape)
        total = tf.reduce_sum(losses)
    norms, base_grads = _norms(tape, total, records)
    factors = l2_norm_clip / tf.maximum(l2_norm_clip, norms)
    summed = {}
    for record, grads in zip(records, base_grads):
        scaled = tf.nest.map_structure(lambda g: scale_rows(g, factors), grads)
        for var, grad in record.grad_fn(scaled):
            grad = tf.convert_to_tensor(grad)
            key = var.ref()
            summed[key] = summed[key] + grad if key in summed else grad
    del tape
    grads = [summed.get(var.ref(), tf.zeros_like(var))
             for var in model.trainable_variables]  # fmt: skip
    return grads, outputs, norms


def gradient_norms(model, x, y, weights=None):
    """Each example's loss-gradient L2 norm (all trainable weights)."""
    with tf.GradientTape(persistent=True) as tape:
        _, losses, records = forward(model, x, y, weights, tape)
        total = tf.reduce_sum(losses)
    norms, _ = _norms(tape, total, records)
    del tape
    return norms


def train_step(model, data, clip: float, noise: float):
    """One DP-SGD step of ``model`` (a PrivateModel) with kdl's registry, with
    clip norm ``clip`` and noise multiplier ``noise`` (which the caller
    records as what the step used)."""
    x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
    grads, y_pred, _ = clipped_gradients(model, x, y, weights, clip)
    batch = tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.float32)
    if noise > 0:
        grads = [g + tf.random.normal(tf.shape(g), stddev=noise * clip) for g in grads]
    grads = [g / batch for g in grads]  # the mean, as the compiled loss
    if model.losses:  # regularization: data independent, not clipped
        with tf.GradientTape() as tape:
            penalty = tf.add_n(model.losses)
        extra = tape.gradient(
            penalty,
            model.trainable_variables,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        grads = [g + e for g, e in zip(grads, extra)]
    model.compiled_loss(
        y, y_pred, sample_weight=weights, regularization_losses=model.losses
    )
    model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
    model.compiled_metrics.update_state(y, y_pred, weights)
    return {m.name: m.result() for m in model.metrics}
