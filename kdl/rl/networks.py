"""The Q-network (plain or dueling, with observation scaling) and a NumPy copy of it.

The network is one chain of layers, so that every saved and exported form
(`.keras`, TFLite) carries the whole policy and a NumPy forward pass can
replay it:

    inputs -> normalize_observations (fixed Dense, only with scaling)
           -> dense1 ... denseK (kdl's `mlp_body`, ReLU)
           -> value_advantage (Dense, 1 + num_actions units; dueling only)
           -> predictions (Dense: the Q-values)

Observation scaling is a non-trainable Dense layer with a diagonal kernel
(`(x - mean) / std`) rather than Keras' Normalization layer: its statistics
are weights that can be set after the warm-up, which Normalization keeps as
constants of its config. The dueling head (Wang et al., 2016) estimates a
state value V and action advantages A; `predictions` is then a fixed,
non-trainable linear map giving `Q = V + A - mean(A)`.

`NumpyPolicy` is the greedy policy evaluated in NumPy on a folded copy of
the weights (consecutive linear layers multiplied into one): for one
observation it costs microseconds, far less than any TensorFlow call, and
acting is most of the per-step cost of a small DQN.
"""

from __future__ import annotations

import numpy as np

from kdl.backend import keras

__all__ = ["NumpyPolicy", "build_q_network", "set_observation_scaling"]

SCALING_LAYER = "normalize_observations"


def build_q_network(
    observation_shape, num_actions, *, dense_units, optimizer, dueling, scaling
):
    """The compiled Q-network (see the module docstring for its layers).

    Args:
        observation_shape: tuple of int. One observation's shape (1-D).
        num_actions: int. Outputs.
        dense_units: tuple of int. Hidden ReLU (dense) layers.
        optimizer: keras optimizer.
        dueling: bool. Value and advantage heads.
        scaling: bool. Start with the observation scaling layer (identity
            until `set_observation_scaling`).
    """
    from kdl.models.mlp import mlp_body

    dim = observation_shape[0]
    inputs = keras.Input(shape=observation_shape, name="inputs")
    x = inputs
    if scaling:
        layer = keras.layers.Dense(dim, trainable=False, name=SCALING_LAYER)
        x = layer(x)
        layer.set_weights([np.eye(dim, dtype=np.float32), np.zeros(dim, np.float32)])
    x = mlp_body(x, dense_units=dense_units)
    if dueling:
        x = keras.layers.Dense(1 + num_actions, name="value_advantage")(x)
        head = keras.layers.Dense(
            num_actions, use_bias=False, trainable=False, name="predictions"
        )
        outputs = head(x)
        # row 0 adds V to every action; rows 1: subtract the mean advantage
        aggregate = np.vstack(
            [
                np.ones((1, num_actions)),
                np.eye(num_actions) - 1.0 / num_actions,
            ]
        ).astype(np.float32)
        head.set_weights([aggregate])
    else:
        outputs = keras.layers.Dense(num_actions, name="predictions")(x)
    model = keras.Model(inputs, outputs, name="q_network")
    model.compile(optimizer=optimizer, loss="mse")
    return model


def set_observation_scaling(model, mean, std) -> None:
    """Sets the scaling layer of `model` to `(x - mean) / std`."""
    std = np.asarray(std, np.float32)
    mean = np.asarray(mean, np.float32)
    model.get_layer(SCALING_LAYER).set_weights([np.diag(1.0 / std), -mean / std])


class NumpyPolicy:
    """The greedy policy of a Q-network computed with NumPy.

    Consecutive linear layers (scaling, the dueling head) are multiplied into
    one, so the forward pass is one matrix product per hidden layer plus one.

    Args:
        model: keras Model. A chain of Dense and Activation layers (as
            `build_q_network` makes).

    Raises:
        ValueError: for a layer it cannot replay.
    """

    _ACTIVATIONS = {"linear": None, "relu": "relu"}

    def __init__(self, model):
        self.model = model
        self.sync()

    def sync(self) -> None:
        """Copies (and folds) the model's current weights."""
        layers = []  # [kernel, bias, activation]
        for layer in self.model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.layers.Dense):
                weights = layer.get_weights()
                kernel = weights[0]
                bias = weights[1] if len(weights) > 1 else np.zeros(kernel.shape[1])
                if layers and layers[-1][2] is None:
                    prev = layers[-1]
                    prev[0], prev[1] = prev[0] @ kernel, prev[1] @ kernel + bias
                else:
                    layers.append([kernel, bias, None])
                self._activate(layers, layer.activation.__name__, layer.name)
            elif isinstance(layer, keras.layers.Activation):
                self._activate(layers, layer.activation.__name__, layer.name)
            else:
                raise ValueError(f"NumpyPolicy cannot replay layer {layer.name!r}")
        self.layers = [
            (k.astype(np.float32), b.astype(np.float32), a) for k, b, a in layers
        ]

    def _activate(self, layers, name: str, layer_name: str) -> None:
        if name not in self._ACTIVATIONS:
            raise ValueError(f"NumpyPolicy cannot replay activation {name!r}")
        if self._ACTIVATIONS[name] is not None:
            if layers[-1][2] is not None:
                raise ValueError(f"two activations in a row at {layer_name!r}")
            layers[-1][2] = "relu"

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        """Q-values of a batch (or of one observation)."""
        x = observations
        for kernel, bias, activation in self.layers:
            x = x @ kernel + bias
            if activation == "relu":
                x = np.maximum(x, 0.0)
        return x

    def __call__(self, observation: np.ndarray) -> int:
        """The greedy action of one observation."""
        return int(np.argmax(self.q_values(observation)))
