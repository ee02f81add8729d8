"""Convolutional network: convolution kernels with max or average pooling."""

from __future__ import annotations

from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _blocks, _compile, _normalize, _strategy
from kdl.models.mlp import mlp_body

FUNC = "build_cnn"
POOLS = ("max", "average", "none")


def _pool(x, pool, name):
    """2x pooling over every spatial axis still longer than 1."""
    spatial = x.shape[1:-1]
    if pool == "none" or min(spatial) < 2:
        return x
    if len(spatial) == 1:
        layer = {
            "max": keras.layers.MaxPooling1D,
            "average": keras.layers.AveragePooling1D,
        }[pool]
    else:
        layer = {
            "max": keras.layers.MaxPooling2D,
            "average": keras.layers.AveragePooling2D,
        }[pool]
    return layer(2, name=name)(x)


def cnn_body(
    x,
    *,
    filters=(32, 64),
    kernel_size=3,
    pool="max",
    dense_units=(128,),
    global_pool=False,
    activation="relu",
    dropout=0.0,
    regularizer=None,
    batch_norm=False,
):
    """Conv blocks, each followed by pooling, then dense layers."""
    for i, f in enumerate(filters):
        x = _blocks.conv_block(
            x,
            f,
            kernel_size=kernel_size,
            activation=activation,
            regularizer=regularizer,
            batch_norm=batch_norm,
            name=f"conv{i + 1}",
        )
        x = _pool(x, pool, name=f"pool{i + 1}")
    if global_pool:
        x = (
            keras.layers.GlobalAveragePooling1D(name="global_pool")
            if len(x.shape) == 3
            else keras.layers.GlobalAveragePooling2D(name="global_pool")
        )(x)
    elif dropout:
        x = keras.layers.Dropout(dropout, name="conv_dropout")(x)
    return mlp_body(
        x,
        hidden_units=dense_units,
        activation=activation,
        dropout=dropout,
        regularizer=regularizer,
        batch_norm=batch_norm,
    )


@_strategy.distributable
def build_cnn(
    input_shape,
    num_outputs: int,
    *,
    task: str = "classification",
    filters: tuple[int, ...] = (32, 64),
    kernel_size: int = 3,
    pool: str = "max",
    dense_units: tuple[int, ...] = (128,),
    global_pool: bool = False,
    activation: str = "relu",
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    augmentation=None,
    normalize=None,
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    name: str = "cnn",
    strategy=None,
):
    """Builds a compiled convolutional network.

    Images (height, width, channels) get 2-D convolutions; sequences
    (steps, features) get 1-D ones. Each convolution block is followed by a 2x
    pooling while the feature map is still larger than 1.

    Args:
        input_shape: tuple. (height, width, channels) or (steps, features).
        num_outputs: int. Classes for "classification", outputs otherwise.
        task: str. "classification", "binary" or "regression". Defaults to
            `"classification"`.
        filters: tuple of int. Filters of each convolution block. Defaults to
            `(32, 64)`.
        kernel_size: int. Size of every convolution kernel. Defaults to `3`.
        pool: str. "max", "average" or "none". Defaults to `"max"`.
        dense_units: tuple of int. Dense layers after the convolutions.
            Defaults to `(128,)`.
        global_pool: bool. Global average pooling instead of flattening.
            Defaults to `False`.
        activation: str. Defaults to `"relu"`.
        dropout: float. Dropout before and after the dense layers. Defaults to
            `0.0`.
        l1: float. L1 penalty on every kernel. Defaults to `0.0`.
        l2: float. L2 penalty on every kernel. Defaults to `0.0`.
        batch_norm: bool. Batch normalization after each convolution. Defaults
            to `False`.
        augmentation: None, dict or layer. See `build_mlp`. Defaults to `None`.
        normalize: array, tf.data.Dataset or None. Training inputs: the model
            starts with a Normalization layer adapted on them (mean and
            variance per feature or channel), so it takes raw inputs, saved
            and exported too. Defaults to `None`.
        optimizer: str or optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: tuple or None. Defaults to `None` (the task's defaults).
        name: str. Defaults to `"cnn"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.

    Returns:
        A compiled `kdl.keras.Model`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_cnn((8, 8, 1), 10, filters=(16, 32), pool="average")
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
        name=name,
        input_rank=len(input_shape),
    )
    _normalize.check_normalize(normalize, input_shape, FUNC)
    filters = v.check_int_tuple(filters, "filters", FUNC)
    v.check_int(kernel_size, "kernel_size", FUNC)
    v.check_choice(pool, "pool", FUNC, POOLS)
    dense_units = v.check_int_tuple(dense_units, "dense_units", FUNC, min_len=0)
    v.check_bool(global_pool, "global_pool", FUNC)
    v.check_activation(activation, "activation", FUNC)

    reg = _compile.regularizer(l1, l2)
    inputs, x = _blocks.inputs_with_augmentation(
        input_shape, augmentation, FUNC, normalize=normalize
    )
    x = cnn_body(
        x,
        filters=filters,
        kernel_size=kernel_size,
        pool=pool,
        dense_units=dense_units,
        global_pool=global_pool,
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
    )
