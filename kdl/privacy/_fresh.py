"""Signs that a model's weights were already trained (issue 30).

``make_private`` refuses a model whose optimizer took steps: its weights may
encode the private data. A model loaded with ``compile=False`` (or
recompiled) has a new optimizer at step 0, so the weights themselves are
checked against what their initializers can produce:

- a bias whose initializer gives constants (``zeros``, ``ones``,
  ``Constant``) but whose values differ from them: training moves biases;
- a kernel whose uniform initializer (``glorot_uniform``, ``he_uniform``,
  ``RandomUniform``, ...) bounds its values, holding values outside the bound.

A model built fresh passes; a trained one almost never does (it would need
every bias untouched and every kernel inside its initial range). This is a
check against mistakes, not proof: weights can be made to pass it.
"""

from __future__ import annotations

import math

import numpy as np

from kdl._model_utils import walk_layers
from kdl.backend import keras

__all__ = ["trained_signs"]

_CONSTANT = (keras.initializers.Zeros, keras.initializers.Ones,
             keras.initializers.Constant)  # fmt: skip


def _uniform_bound(initializer, shape) -> float | None:
    """The largest |value| ``initializer`` can draw for ``shape``, if bounded."""
    if isinstance(initializer, keras.initializers.RandomUniform):
        return max(abs(initializer.minval), abs(initializer.maxval))
    if not isinstance(initializer, keras.initializers.VarianceScaling):
        return None
    if initializer.distribution != "uniform" or len(shape) < 1:
        return None
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in = shape[-2] * receptive if len(shape) > 1 else shape[0]
    fan_out = shape[-1] * receptive
    fan = {"fan_in": fan_in, "fan_out": fan_out,
           "fan_avg": (fan_in + fan_out) / 2.0}[initializer.mode]  # fmt: skip
    return math.sqrt(3.0 * initializer.scale / max(1.0, fan))


def _cells(layer):
    """``layer`` and the layers it wraps (RNN cells, Bidirectional halves)."""
    yield layer
    for name in ("cell", "layer", "forward_layer", "backward_layer"):
        inner = getattr(layer, name, None)
        if isinstance(inner, keras.layers.Layer):
            yield from _cells(inner)


def _layer_signs(layer) -> list[str]:
    signs = []
    bias = getattr(layer, "bias", None)
    init = getattr(layer, "bias_initializer", None)
    forget = getattr(layer, "unit_forget_bias", False)  # ones in one gate
    if hasattr(bias, "numpy") and isinstance(init, _CONSTANT) and not forget:
        expected = np.asarray(init(tuple(bias.shape), dtype=bias.dtype))
        if not np.array_equal(np.asarray(bias.numpy()), expected):
            signs.append(f"{layer.name}: bias differs from its initializer")
    for name in ("kernel", "embeddings"):
        weight = getattr(layer, name, None)
        init = getattr(layer, f"{name}_initializer", None)
        if (
            not hasattr(weight, "numpy")
            or init is None
            or not weight.shape.num_elements()
        ):
            continue
        bound = _uniform_bound(init, tuple(weight.shape))
        if bound is not None and np.max(np.abs(weight.numpy())) > bound * 1.0001:
            signs.append(f"{layer.name}: {name} outside its initializer's range")
    return signs


def trained_signs(model) -> list[str]:
    """Why ``model``'s weights look trained (empty when they look fresh)."""
    signs = []
    for layer in walk_layers(model):
        for one in _cells(layer):
            signs += _layer_signs(one)
    return signs


# --- Weights DP training produced, process-wide (issue 30, review 2) ---
#
# A private model's trained weights copied into a fresh model (set_weights,
# a no-bias model the initializer-range check cannot judge) or a new model
# over its layers would start a second private run from weights that already
# encode the data. Each weight tensor a private fit left is remembered by its
# fingerprint (farmhash64, kdl.privacy._ledger); make_private and
# compile_private refuse a model holding one. Tensors whose values are all
# equal (a frozen zero bias) are not remembered: a fresh model has them too.

_TRAINED: set[int] = set()


def _distinct_tensors(model) -> list:
    from kdl.privacy import _ledger

    weights = [w for w in _ledger.parameters(model) if w.shape.num_elements()]
    weights = [w for w in weights if np.ptp(np.asarray(w.numpy())) > 0]
    return [int(x) for x in _ledger.fingerprint(weights).numpy()]


def remember_trained(model) -> None:
    """Remembers ``model``'s weights as weights training produced."""
    _TRAINED.update(_distinct_tensors(model))


def trained_elsewhere(model) -> int:
    """How many of ``model``'s weight tensors a private fit produced."""
    return sum(one in _TRAINED for one in _distinct_tensors(model))
