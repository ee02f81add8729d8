"""Per-example gradient norms without per-example gradients (upstream issue 16).

DP-SGD clips each example's gradient, so it needs each example's gradient
norm. kdl computes it from each layer's inputs and backpropagated gradients
(ghost norms) for Dense, Embedding, Conv1D, Conv2D, SimpleRNN, GRU, LSTM and
Bidirectional layers: :func:`gradient_norms` gives them, and
``make_private(method="auto")`` uses the same registry to train at nearly
the cost of plain training (:func:`unsupported_layers` says what stops it).
TensorFlow Privacy is imported only when a norm is computed.
"""

from __future__ import annotations

import numpy as np

from kdl import _validation as v
from kdl._model_utils import walk_layers
from kdl.backend import tf

__all__ = ["gradient_norms", "unsupported_layers", "tf_privacy_registry"]


def _call_options(layer) -> list[str]:
    """Options a layer is called with that the registry does not handle."""
    options = []
    for node in getattr(layer, "inbound_nodes", []):
        kwargs = getattr(node, "call_kwargs", {}) or {}
        options += [k for k, val in kwargs.items()
                    if val is not None and k != "training"]  # fmt: skip
    try:
        masked = any(m is not None for m in tf.nest.flatten(layer.input_mask))
    except (AttributeError, RuntimeError, ValueError):
        masked = False
    return options + (["mask"] if masked else [])


def unsupported_layers(model) -> list[str]:
    """Trainable layers of ``model`` kdl's per-example norm registry cannot do.

    Args:
        model: kdl.keras.Model.

    Returns:
        list of str: "name (Class)" for each such layer (a layer type not in
        the registry, recurrent dropout or returned states, a mask or an
        initial state, a layer called more than once); empty when
        ``make_private(method="auto")`` takes the fast path.

    Example:
        >>> unsupported_layers(build_cnn((8, 8, 1), 10))
        []
    """
    from kdl.privacy import _ghost

    v.check_keras_model(model, "model", "kdl.privacy.unsupported_layers")
    out = []
    for layer in walk_layers(model):
        if not layer.trainable_weights:
            continue
        why = [] if _ghost.supported(layer) else ["not in the registry"]
        if len(layer.inbound_nodes) > 1:
            why.append("called more than once")
        why += [f"called with {opt}" for opt in _call_options(layer)]
        if why:
            out.append(f"{layer.name} ({type(layer).__name__}: {', '.join(why)})")
    return out


def gradient_norms(model, x, y, *, sample_weight=None) -> np.ndarray:
    """Each example's loss-gradient L2 norm, over all trainable weights.

    Computed the way ``make_private``'s fast path clips: from each layer's
    inputs and backpropagated gradients, never materializing per-example
    gradients.

    Args:
        model: kdl.keras.Model. A compiled single-output model with one loss
            (e.g. a builder's, or a private model).
        x: array. A batch of inputs.
        y: array. Their targets.
        sample_weight: array or None. Per-example loss weights. Defaults to
            `None`.

    Returns:
        numpy array of shape (len(x),).

    Raises:
        ValueError, TypeError: for a bad argument; ValueError naming the
            layers the registry cannot handle.

    Example:
        >>> gradient_norms(model, x[:8], y[:8]).shape
        (8,)
    """
    func = "kdl.privacy.gradient_norms"
    v.check_keras_model(model, "model", func)
    if getattr(model, "loss", None) is None or len(model.outputs) != 1:
        v.fail(func, "model", "a compiled single-output model", model.name)
    unsupported = unsupported_layers(model)
    if unsupported:
        requirement = "a model whose trainable layers kdl's norm registry covers"
        v.fail(func, "model", f"{requirement}, not " + "; ".join(unsupported),
               model.name)  # fmt: skip
    from kdl.privacy import _fast_step

    weights = None if sample_weight is None else tf.constant(sample_weight)
    norms = _fast_step.gradient_norms(
        model, tf.nest.map_structure(tf.constant, x), tf.constant(y), weights
    )
    return norms.numpy()


def tf_privacy_registry():
    """TensorFlow Privacy's ``LayerRegistry`` with kdl's entries added.

    For ``make_dp_model_class(...)(..., layer_registry=...)`` or
    ``clip_grads.compute_gradient_norms``: TensorFlow Privacy's own Dense and
    Embedding functions plus kdl's Conv1D, Conv2D, SimpleRNN, GRU, LSTM and
    Bidirectional ones.

    Example:
        >>> registry = tf_privacy_registry()
        >>> registry.is_elem(kdl.keras.layers.Conv2D(4, 3))
        True
    """
    from kdl.privacy import _ghost

    return _ghost.tf_privacy_registry()
