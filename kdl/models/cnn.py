"""Convolutional network: convolution kernels with max or average pooling."""

from __future__ import annotations

import numpy as np

from kdl import _keras_names
from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _blocks, _compile, _normalize, _strategy, _target
from kdl.models.mlp import mlp_body

FUNC = "build_cnn"
POOLS = ("max", "average", "none")
# The input-fitted defaults (see build_cnn's docstring).
BASE_FILTERS = (32, 64)
MAX_SIDE = 4  # blocks are added until every side of the feature map is <= 4
FLATTEN_POSITIONS = 16  # larger final feature maps are pooled globally


def _map_after(spatial, stages, pool):
    """The feature map's spatial sides after ``stages`` conv blocks."""
    spatial = list(spatial)
    for _ in range(stages):
        if pool != "none" and min(spatial) >= 2:
            spatial = [side // 2 for side in spatial]
    return spatial


def _fitted_filters(spatial, pool):
    # A final map of at most 16 positions: 4x4 for images, 16 steps.
    max_side = MAX_SIDE if len(spatial) == 2 else FLATTEN_POSITIONS
    if pool == "none" or max(_map_after(spatial, 2, pool)) <= max_side:
        return BASE_FILTERS
    filters = [16]
    while (
        max(_map_after(spatial, len(filters), pool)) > max_side
        and min(_map_after(spatial, len(filters), pool)) >= 2
    ):
        filters.append(min(filters[-1] * 2, 128))
    return tuple(filters)


def fitted_defaults(input_shape, filters, global_pool, pool):
    """``filters`` and ``global_pool`` fitted to the input, where not given.

    See build_cnn's docstring: the final feature map has at most 4x4
    positions, so the dense head's size does not grow with the pixel count.
    """
    spatial = input_shape[:-1]
    if filters is None:
        filters = _fitted_filters(spatial, pool)
    if global_pool is None:
        positions = int(np.prod(_map_after(spatial, len(filters), pool)))
        global_pool = positions > FLATTEN_POSITIONS
    return filters, global_pool


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
        dense_units=dense_units,
        activation=activation,
        dropout=dropout,
        regularizer=regularizer,
        batch_norm=batch_norm,
    )


def _check_pooling(pooling, pool) -> str:
    """``pooling`` (``pool`` is its deprecated name); Keras' "avg" is "average"."""
    pooling = _keras_names.renamed(FUNC, "pool", "pooling", pool, pooling, "max")
    pooling = {"avg": "average"}.get(pooling, pooling)
    return v.check_choice(pooling, "pooling", FUNC, (*POOLS, "avg"))


@_strategy.distributable
def build_cnn(
    input_shape,
    num_outputs: int,
    *,
    task: str = "classification",
    filters: tuple[int, ...] | None = None,
    kernel_size: int = 3,
    pooling: str = "max",
    dense_units: int | tuple[int, ...] = (128,),
    global_pool: bool | None = None,
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
    name: str = "cnn",
    strategy=None,
    pool=_keras_names.UNSET,
):
    """Builds a compiled convolutional network.

    Images (height, width, channels) get 2-D convolutions; sequences
    (steps, features) get 1-D ones. Each convolution block is followed by a 2x
    pooling while the feature map is still larger than 1.

    Defaults fitted to the input (explicit arguments always win): `filters`
    is (32, 64) when two blocks bring every side of the feature map to 4 or
    less (inputs up to 16x16, such as the 8x8 digits); larger inputs get one
    block per halving needed to get there, with 16 filters doubling up to
    128: (16, 32, 64) for 32x32 images, (16, 32, 64, 128) for 64x64, six
    blocks for 224x224 (sequences: until at most 16 steps remain, so (32,
    64) up to 64 steps). `global_pool` flattens a final map of at most 16
    positions and averages larger ones globally (only with `pooling="none"` or
    explicit `filters`). So the dense head's size does not grow with the
    pixel count (a 64x64 image flattened from a 16x16x64 map fed a 2M-weight
    dense layer and overfit).

    Args:
        input_shape: tuple. (height, width, channels) or (steps, features).
        num_outputs: int. Classes for "classification", outputs otherwise.
        task: str. "classification", "binary" or "regression". Defaults to
            `"classification"`.
        filters: tuple of int or None. Filters of each convolution block.
            Defaults to `None`: fitted to the input, see above.
        kernel_size: int. Size of every convolution kernel. Defaults to `3`.
        pooling: str. "max", "average" (or Keras' "avg") or "none": the
            pooling after each convolution block. Defaults to `"max"`.
        dense_units: int or tuple of int. Dense layers after the
            convolutions. Defaults to `(128,)`.
        global_pool: bool or None. Global average pooling instead of
            flattening. Defaults to `None`: fitted to the input, see above.
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
        normalize_target: array or None. Training targets of a regression:
            the model un-scales its output with their mean and variance, so
            the head learns standardized targets and `predict` returns raw
            units. See `build_mlp`. Defaults to `None`.
        optimizer: str or optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: tuple or None. Defaults to `None` (the task's defaults).
        loss: str, a kdl.keras loss or None. The loss to compile with, as
            in Keras' ``compile``; None: the task's (sparse categorical
            cross-entropy, binary cross-entropy or mean squared error).
            Defaults to `None`.
        name: str. Defaults to `"cnn"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.
        pool: deprecated name of ``pooling`` (DeprecationWarning; removed in
            the next release).

    Returns:
        A compiled `kdl.keras.Model`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_cnn((8, 8, 1), 10, filters=(16, 32), pooling="avg")
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
    if filters is not None:
        filters = v.check_int_tuple(filters, "filters", FUNC)
    v.check_int(kernel_size, "kernel_size", FUNC)
    pool = _check_pooling(pooling, pool)
    dense_units = v.check_int_tuple(dense_units, "dense_units", FUNC, min_len=0)
    if global_pool is not None:
        v.check_bool(global_pool, "global_pool", FUNC)
    v.check_activation(activation, "activation", FUNC)
    _target.check_normalize_target(
        normalize_target, task=task, num_outputs=num_outputs, func=FUNC
    )
    filters, global_pool = fitted_defaults(input_shape, filters, global_pool, pool)

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
        loss=loss,
        normalize_target=normalize_target,
    )
