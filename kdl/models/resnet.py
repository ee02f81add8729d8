"""Residual network: stages of residual blocks, architecture as data."""

from __future__ import annotations

from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _blocks, _compile, _normalize, _strategy, _target

FUNC = "build_resnet"


def resnet_body(
    x,
    *,
    stages=(2, 2, 2),
    filters=(16, 32, 64),
    kernel_size=3,
    activation="relu",
    dropout=0.0,
    regularizer=None,
    batch_norm=True,
):
    """A stem convolution, then ``stages[i]`` residual blocks of ``filters[i]``.

    Every stage after the first halves the spatial size (while it is > 1).
    """
    x = _blocks.conv_block(
        x,
        filters[0],
        kernel_size=kernel_size,
        activation=activation,
        regularizer=regularizer,
        batch_norm=batch_norm,
        name="stem",
    )
    for s, (blocks, f) in enumerate(zip(stages, filters, strict=False)):
        for b in range(blocks):
            downsample = s > 0 and b == 0 and min(x.shape[1:-1]) > 1
            x = _blocks.residual_block(
                x,
                f,
                kernel_size=kernel_size,
                strides=2 if downsample else 1,
                activation=activation,
                regularizer=regularizer,
                batch_norm=batch_norm,
                name=f"stage{s + 1}_block{b + 1}",
            )
    pool = (
        keras.layers.GlobalAveragePooling1D
        if len(x.shape) == 3
        else keras.layers.GlobalAveragePooling2D
    )
    x = pool(name="global_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return x


@_strategy.distributable
def build_resnet(
    input_shape,
    num_outputs: int,
    *,
    task: str = "classification",
    stages: tuple[int, ...] = (2, 2, 2),
    filters: tuple[int, ...] = (16, 32, 64),
    kernel_size: int = 3,
    activation: str = "relu",
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = True,
    augmentation=None,
    normalize=None,
    normalize_target=None,
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    loss=None,
    name: str = "resnet",
    strategy=None,
):
    """Builds a compiled residual network (basic blocks, as in ResNet-18).

    Args:
        input_shape: tuple. (height, width, channels) or (steps, features).
        num_outputs: int. Classes for "classification", outputs otherwise.
        task: str. "classification", "binary" or "regression". Defaults to
            `"classification"`.
        stages: tuple of int. Residual blocks in each stage. Defaults to
            `(2, 2, 2)`.
        filters: tuple of int. Filters of each stage, as many as `stages`.
            Defaults to `(16, 32, 64)`.
        kernel_size: int. Defaults to `3`.
        activation: str. Defaults to `"relu"`.
        dropout: float. Dropout before the head. Defaults to `0.0`.
        l1: float. Defaults to `0.0`.
        l2: float. Defaults to `0.0`.
        batch_norm: bool. Defaults to `True`.
        augmentation: None, dict or layer. See `build_mlp`. Defaults to `None`.
        normalize: array, tf.data.Dataset or None. Training inputs: the model
            starts with a Normalization layer adapted on them (mean and
            variance per feature or channel), so it takes raw inputs, saved
            and exported too. Defaults to `None`.
        normalize_target: array or None. Training targets of a regression:
            the model un-scales its output with their mean and variance, so
            the head learns standardized targets and `predict` returns raw
            units. See `build_mlp`. Defaults to `None`.
        optimizer: str or optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: tuple or None. Defaults to `None`.
        loss: str, a kdl.keras loss or None. The loss to compile with, as
            in Keras' ``compile``; None: the task's (sparse categorical
            cross-entropy, binary cross-entropy or mean squared error).
            Defaults to `None`.
        name: str. Defaults to `"resnet"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.

    Returns:
        A compiled `kdl.keras.Model`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_resnet((8, 8, 1), 10, stages=(1, 1), filters=(8, 16))
        >>> model.output_shape
        (None, 10)
    """
    del strategy  # entered by @_strategy.distributable
    input_shape = v.check_input_shape(input_shape, "input_shape", FUNC, ranks=(2, 3))
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
    stages = v.check_int_tuple(stages, "stages", FUNC)
    filters = v.check_int_tuple(filters, "filters", FUNC)
    if len(filters) != len(stages):
        v.fail(FUNC, "filters", f"a tuple as long as stages ({len(stages)})", filters)
    v.check_int(kernel_size, "kernel_size", FUNC)
    v.check_activation(activation, "activation", FUNC)

    reg = _compile.regularizer(l1, l2)
    inputs, x = _blocks.inputs_with_augmentation(
        input_shape, augmentation, FUNC, normalize=normalize
    )
    x = resnet_body(
        x,
        stages=stages,
        filters=filters,
        kernel_size=kernel_size,
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
