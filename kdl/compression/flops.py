"""Counting the multiply-adds a model does per example."""

from __future__ import annotations

import numpy as np

from kdl import _validation as v
from kdl.backend import keras
from kdl.compression import _common as c

__all__ = ["multiply_adds"]

L = keras.layers
_GATES = {L.SimpleRNN: 1, L.LSTM: 4, L.GRU: 3}


def _size(dims) -> int:
    """Product of dimensions; an unknown one (None) counts as 1."""
    return int(np.prod([1 if d is None else int(d) for d in dims]))


def _shape(layer, attribute: str):
    try:
        shape = getattr(layer, attribute)
    except (AttributeError, RuntimeError):
        return None
    return shape[0] if isinstance(shape, list) else shape


def _recurrent(layer, input_shape) -> int:
    if isinstance(layer, L.Bidirectional):
        return _recurrent(layer.forward_layer, input_shape) + _recurrent(
            layer.backward_layer, input_shape
        )
    units, features = layer.units, input_shape[-1]
    steps = _size(input_shape[1:-1])
    return steps * _GATES[type(layer)] * (features * units + units * units)


def _layer_count(layer) -> int:
    """Multiply-adds of one layer for one example (0 for layers without any)."""
    layer = c.unwrapped(layer)
    inputs, outputs = _shape(layer, "input_shape"), _shape(layer, "output_shape")
    if inputs is None or outputs is None:
        return 0
    if isinstance(layer, L.Bidirectional) or type(layer) in _GATES:
        return _recurrent(layer, inputs)
    if isinstance(layer, L.Dense):
        return _size(inputs[1:-1]) * _size(inputs[-1:]) * layer.units
    if isinstance(layer, L.DepthwiseConv2D):
        window = _size(layer.kernel_size)
        return (
            _size(outputs[1:-1]) * window * _size(inputs[-1:]) * layer.depth_multiplier
        )
    if isinstance(layer, L.SeparableConv2D) or isinstance(layer, L.SeparableConv1D):
        channels = _size(inputs[-1:]) * layer.depth_multiplier
        depthwise = _size(outputs[1:-1]) * _size(layer.kernel_size) * channels
        return depthwise + _size(outputs[1:-1]) * channels * layer.filters
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose)):
        per_input = _size(layer.kernel_size) * layer.filters * _size(inputs[-1:])
        return _size(inputs[1:-1]) * per_input
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        per_output = _size(layer.kernel_size) * _size(inputs[-1:]) // layer.groups
        return _size(outputs[1:-1]) * per_output * layer.filters
    return 0


def multiply_adds(model) -> dict:
    """Multiply-adds per example, per layer and in all (the FLOPs / 2 of a model).

    Counts the matrix products of Dense layers (per position for a sequence
    input), convolutions (Conv1D/2D/3D, depthwise, separable, transposed) and
    recurrent layers (SimpleRNN, LSTM, GRU, in both directions of a
    ``Bidirectional``: steps x gates x (inputs + units) x units). Bias adds,
    activations, normalization, pooling and embeddings count 0. A dimension
    of unknown size (a sequence of any length) counts as 1: the count is then
    per step. TF-MOT wrappers count as the layer they wrap; zeroed weights
    still count (:func:`prune` keeps the computation; :func:`shrink` removes
    it).

    Args:
        model: kdl.keras.Model. A built model; it is not changed.

    Returns:
        dict: ``{"total": int, "layers": {layer name: int}}`` with every layer
        that does any.

    Raises:
        TypeError: if ``model`` is not a kdl.keras model.

    Example:
        >>> multiply_adds(build_mlp((64,), 10, dense_units=(32,)))["total"]
        2368
    """
    func = "kdl.compression.multiply_adds"
    v.check_keras_model(model, "model", func)
    if not model.built:
        v.fail(func, "model", "a built model", model.name)
    layers = {}
    for layer in c.layers(model):
        count = _layer_count(layer)
        if count:
            layers[c.unwrapped(layer).name] = int(count)
    return {"total": int(sum(layers.values())), "layers": layers}
