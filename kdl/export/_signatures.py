"""A Keras model's inputs and outputs as kdl's export and report see them.

Shared by :mod:`kdl.export` and :mod:`kdl.report` (kdl's input/output
helpers that need no TensorFlow live in :mod:`kdl._arrays`). Inputs are
described by specs ``(name, numpy dtype, shape without batch)`` with
signature-safe names; outputs by their names and their kind
("classification", "binary" or "regression"), read from the activation of
the layer that makes them.
"""

from __future__ import annotations

import numpy as np

from kdl import _arrays
from kdl import _validation as v
from kdl._model_utils import walk_layers
from kdl.backend import keras

__all__ = [
    "input_specs",
    "output_names",
    "output_kinds",
    "output_shapes",
    "activation_name",
    "synthetic_inputs",
    "keras_outputs",
    "layers_of",
    "has_layer",
]


def input_specs(model, func: str) -> list[tuple[str, np.dtype, tuple]]:
    """(name, numpy dtype, shape without batch) of each model input, in order."""
    if not getattr(model, "inputs", None):
        v.fail(
            func,
            "model",
            "a built model with known inputs (a functional model from a kdl "
            "builder, or one called on data once)",
            model.name,
        )
    names = [_arrays.safe_name(n) for n in model.input_names]
    return [
        (name, np.dtype(t.dtype.as_numpy_dtype), tuple(t.shape[1:]))
        for name, t in zip(names, model.inputs)
    ]


def output_names(model) -> list[str]:
    """The model's output names, signature-safe, in order."""
    return [_arrays.safe_name(n) for n in model.output_names]


def output_shapes(model) -> dict[str, list]:
    """Output name -> shape as a list (None for the batch and unknown sizes)."""
    return {
        name: [None if d is None else int(d) for d in tensor.shape]
        for name, tensor in zip(output_names(model), model.outputs)
    }


def activation_name(layer) -> str:
    """The name of a layer's activation, looking through kdl's wrappers."""
    # unwrap TF-MOT wrappers (prune, cluster, quantize) and Keras wrappers
    while hasattr(layer, "layer") and isinstance(layer.layer, keras.layers.Layer):
        layer = layer.layer
    activation = getattr(layer, "activation", None)
    # QAT replaces activations with QuantizeAwareActivation(.activation)
    while activation is not None and hasattr(activation, "activation"):
        activation = activation.activation
    return getattr(activation, "__name__", "") if activation is not None else ""


def output_kinds(model) -> dict[str, str]:
    """Output name -> "classification", "binary" or "regression", from its layer."""
    kinds = {}
    for name, tensor in zip(output_names(model), model.outputs):
        history = getattr(tensor, "_keras_history", None)
        activation = activation_name(history.layer) if history else ""
        kinds[name] = {"softmax": "classification", "sigmoid": "binary"}.get(
            activation, "regression"
        )
    return kinds


def layers_of(model):
    """Every layer of ``model`` (``walk_layers``) and the layers they wrap.

    Wrappers (Bidirectional, TimeDistributed, TF-MOT's prune, cluster and
    quantize wrappers) hold their layer in ``.layer``.
    """
    for layer in walk_layers(model):
        yield layer
        while isinstance(getattr(layer, "layer", None), keras.layers.Layer):
            layer = layer.layer
            yield layer


def has_layer(model, layer_class) -> bool:
    """True when a layer of ``model`` (nested or wrapped) is a ``layer_class``."""
    return any(isinstance(layer, layer_class) for layer in layers_of(model))


def synthetic_inputs(model, specs, size: int) -> dict[str, np.ndarray]:
    """Uniform [0, 1) floats, or token ids below the smallest embedding size."""
    rng = np.random.default_rng(0)
    vocab = [
        m.input_dim for m in layers_of(model) if isinstance(m, keras.layers.Embedding)
    ]
    out = {}
    for name, dtype, shape in specs:
        shape = (size, *(8 if d is None else d for d in shape))
        if np.issubdtype(dtype, np.integer):
            high = min(vocab) if vocab else 2
            out[name] = rng.integers(1 if high > 1 else 0, high, shape).astype(dtype)
        else:
            out[name] = rng.random(shape).astype(dtype)
    return out


def keras_outputs(model, inputs: dict) -> dict[str, np.ndarray]:
    """``model.predict`` on ``{input: array}`` as ``{output name: array}``."""
    values = list(inputs.values())
    outputs = model.predict(
        values[0] if len(values) == 1 else values, batch_size=64, verbose=0
    )
    names = output_names(model)
    if isinstance(outputs, dict):
        return {_arrays.safe_name(k): np.asarray(o) for k, o in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return {name: np.asarray(o) for name, o in zip(names, outputs)}
    return {names[0]: np.asarray(outputs)}
