"""Multi-layer perceptron."""

from __future__ import annotations

from kdl import _keras_names
from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _blocks, _compile, _normalize, _strategy, _target

FUNC = "build_mlp"


def mlp_body(
    x,
    *,
    dense_units=(64, 64),
    activation="relu",
    dropout=0.0,
    regularizer=None,
    batch_norm=False,
    prefix="dense",
):
    """Flatten, then one dense block per entry of ``dense_units``."""
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units):
        x = _blocks.dense_block(
            x,
            units,
            activation=activation,
            dropout=dropout,
            regularizer=regularizer,
            batch_norm=batch_norm,
            name=f"{prefix}{i + 1}",
        )
    return x


@_strategy.distributable
def build_mlp(
    input_shape,
    num_outputs: int,
    *,
    task: str = "classification",
    dense_units: int | tuple[int, ...] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    augmentation=None,
    normalize=None,
    normalize_target=None,
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    loss=None,
    name: str = "mlp",
    strategy=None,
    hidden_units=_keras_names.UNSET,
):
    """Builds a compiled multi-layer perceptron.

    Args:
        input_shape: tuple. Shape of one example, any rank (it is flattened).
        num_outputs: int. Classes for "classification", outputs otherwise.
        task: str. "classification" (softmax, sparse categorical
            cross-entropy), "binary" (sigmoid, binary cross-entropy) or
            "regression" (linear, mean squared error). Defaults to
            `"classification"`.
        dense_units: int or tuple of int. Units of each hidden dense layer
            (an int: one layer; `()`: none). Defaults to `(64, 64)`.
        activation: str. Hidden activation. Defaults to `"relu"`.
        dropout: float. Dropout rate after each hidden layer. Defaults to `0.0`.
        l1: float. L1 penalty on every kernel. Defaults to `0.0`.
        l2: float. L2 penalty on every kernel. Defaults to `0.0`.
        batch_norm: bool. Batch normalization in each hidden layer. Defaults to
            `False`.
        augmentation: None, dict or layer. Training-only augmentation: a dict
            of `kdl.augment.image` options (3-D inputs) or
            `kdl.augment.sequence` options, or a layer. Defaults to `None`.
        normalize: array, tf.data.Dataset or None. Training inputs: the model
            starts with a Normalization layer adapted on them (mean and
            variance per feature or channel), so it takes raw inputs, saved
            and exported too. Defaults to `None`.
        normalize_target: array or None. Training targets of a regression
            (task="regression"), shape (examples,) or (examples, num_outputs):
            the head learns standardized targets and the model un-scales its
            output with their mean and variance (a Normalization layer with
            `invert=True` after the head, which stays named "head"; the
            output layer is still "predictions"), so `predict` and the
            metrics are in raw units, saved and exported too. The loss is
            the mean squared error in raw units. None scales nothing (the
            head must learn the raw units itself). Defaults to `None`.
        optimizer: str or optimizer. "sgd", "momentum", "adam", "rmsprop" or a
            `kdl.keras` optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: tuple or None. None gives the task's default metrics.
            Defaults to `None`.
        loss: str, a kdl.keras loss or None. The loss to compile with, as
            in Keras' ``compile``; None: the task's (sparse categorical
            cross-entropy, binary cross-entropy or mean squared error).
            Defaults to `None`.
        name: str. Model name. Defaults to `"mlp"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.
        hidden_units: deprecated name of `dense_units` (issue 31); removed in
            the next release.

    Returns:
        A compiled `kdl.keras.Model`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_mlp((64,), 10, dense_units=(32,), dropout=0.1)
        >>> model.output_shape
        (None, 10)
    """
    del strategy  # entered by @_strategy.distributable
    input_shape = v.check_input_shape(input_shape, "input_shape", FUNC, ranks=(1, 2, 3))
    _compile.check_common(
        FUNC,
        task=task,
        num_outputs=num_outputs,
        dropout=dropout,
        l1=l1,
        l2=l2,
        batch_norm=batch_norm,
        augmentation=augmentation,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        loss=loss,
        name=name,
        input_rank=len(input_shape),
    )
    _normalize.check_normalize(normalize, input_shape, FUNC)
    _target.check_normalize_target(
        normalize_target, task=task, num_outputs=num_outputs, func=FUNC
    )
    dense_units = _keras_names.renamed(
        FUNC,
        "hidden_units",
        "dense_units",
        hidden_units,
        dense_units,
        (64, 64),
        note="kdl's one name for dense widths",
    )
    dense_units = v.check_int_tuple(dense_units, "dense_units", FUNC, min_len=0)
    v.check_activation(activation, "activation", FUNC)

    reg = _compile.regularizer(l1, l2)
    inputs, x = _blocks.inputs_with_augmentation(
        input_shape, augmentation, FUNC, normalize=normalize
    )
    x = mlp_body(
        x,
        dense_units=dense_units,
        activation=activation,
        dropout=dropout,
        regularizer=reg,
        batch_norm=batch_norm,
    )
    return _blocks.single_head_model(
        inputs,
        x,
        num_outputs,
        task=task,
        regularizer=reg,
        name=name,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        loss=loss,
        normalize_target=normalize_target,
    )
