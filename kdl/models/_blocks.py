"""Small building blocks shared by the builders, with deterministic layer names."""

from __future__ import annotations

from kdl import augment
from kdl.backend import keras
from kdl.models._compile import compile_model, head_activation
from kdl.models._normalize import normalization_layer
from kdl.models._target import target_output


def inputs_with_augmentation(
    input_shape, augmentation, func, *, name="inputs", normalize=None
):
    """An Input, a Normalization layer adapted on ``normalize``, and augmentation.

    Normalization comes first, so that augmentation (noise, contrast) acts on
    standardized values whatever the scale of the raw inputs.

    Returns:
        (inputs, x): the Input tensor and the tensor after augmentation.
    """
    inputs = keras.Input(shape=input_shape, name=name)
    kind = "image" if len(input_shape) == 3 else "sequence"
    x = inputs
    if normalize is not None:
        x = normalization_layer(normalize)(x)
    for layer in augment.resolve(augmentation, kind, func):
        x = layer(x)
    return inputs, x


def batch_norm_layer(name):
    """BatchNormalization with momentum 0.9 instead of Keras' 0.99.

    With 0.99 the moving statistics need a few hundred steps to leave their
    initial values; on small data (the digits: 45 steps an epoch) inference
    and validation then see wrong statistics for several epochs, and early
    stopping restored a 0.33-accuracy epoch in the demo. 0.9 settles within
    the first epoch.
    """
    return keras.layers.BatchNormalization(momentum=0.9, name=name)


def dense_block(x, units, *, activation, dropout, regularizer, batch_norm, name):
    """Dense -> [BatchNorm] -> activation -> [Dropout]."""
    x = keras.layers.Dense(
        units, kernel_regularizer=regularizer, use_bias=not batch_norm, name=name
    )(x)
    if batch_norm:
        x = batch_norm_layer(f"{name}_bn")(x)
    x = keras.layers.Activation(activation, name=f"{name}_act")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def conv_layer(rank):
    """Conv1D for (steps, features) inputs, Conv2D for images."""
    return keras.layers.Conv1D if rank == 2 else keras.layers.Conv2D


def conv_block(
    x, filters, *, kernel_size, activation, regularizer, batch_norm, name, strides=1
):
    """Conv -> [BatchNorm] -> activation, "same" padding."""
    conv = conv_layer(len(x.shape) - 1)
    x = conv(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        kernel_regularizer=regularizer,
        use_bias=not batch_norm,
        name=name,
    )(x)
    if batch_norm:
        x = batch_norm_layer(f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=f"{name}_act")(x)


def residual_block(
    x, filters, *, kernel_size, strides, activation, regularizer, batch_norm, name
):
    """A basic residual block (two convolutions and a shortcut), as in ResNet-18.

    The shortcut is a 1x1 convolution when the shape changes, else identity.
    """
    conv = conv_layer(len(x.shape) - 1)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv(
            filters,
            1,
            strides=strides,
            use_bias=not batch_norm,
            kernel_regularizer=regularizer,
            name=f"{name}_shortcut",
        )(x)
        if batch_norm:
            shortcut = batch_norm_layer(f"{name}_shortcut_bn")(shortcut)
    y = conv_block(
        x,
        filters,
        kernel_size=kernel_size,
        activation=activation,
        regularizer=regularizer,
        batch_norm=batch_norm,
        name=f"{name}_conv1",
        strides=strides,
    )
    y = conv(
        filters,
        kernel_size,
        padding="same",
        use_bias=not batch_norm,
        kernel_regularizer=regularizer,
        name=f"{name}_conv2",
    )(y)
    if batch_norm:
        y = batch_norm_layer(f"{name}_conv2_bn")(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation(activation, name=f"{name}_out")(y)


def head(x, num_outputs, task, *, regularizer=None, name="predictions"):
    """The output layer of ``task``: softmax, sigmoid or linear."""
    return keras.layers.Dense(
        num_outputs,
        activation=head_activation(task),
        kernel_regularizer=regularizer,
        name=name,
    )(x)


def single_head_model(
    inputs,
    x,
    num_outputs,
    *,
    task,
    regularizer,
    name,
    optimizer,
    learning_rate,
    metrics,
    normalize=None,
    normalize_target=None,
    residual=None,
    loss=None,
):
    """Puts the task's head on ``x`` and returns the compiled model.

    ``normalize_target`` (regression targets) and ``residual`` (an input
    feature index, from ``_target.residual_feature``) add the un-scaling and
    the last value after the head (``_target.target_output``); the model's
    output layer is then the last of those, still named "predictions", and
    the Dense head is named "head".
    """
    transformed = normalize_target is not None or residual is not None
    outputs = head(
        x,
        num_outputs,
        task,
        regularizer=regularizer,
        name="head" if transformed else "predictions",
    )
    if transformed:
        outputs = target_output(
            inputs,
            outputs,
            normalize=normalize,
            normalize_target=normalize_target,
            feature=residual,
        )
    model = keras.Model(inputs, outputs, name=name)
    return compile_model(
        model,
        task=task,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        loss=loss,
    )
