"""Recurrent networks: simple RNN, LSTM and GRU, optionally bidirectional."""

from __future__ import annotations

from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _blocks, _compile, _normalize, _strategy, _target

CELLS = ("simple", "lstm", "gru")
_LAYERS = {
    "simple": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


def recurrent_layer(
    cell,
    units,
    *,
    return_sequences=False,
    return_state=False,
    bidirectional=False,
    regularizer=None,
    name,
):
    """One recurrent layer, wrapped in ``Bidirectional`` when asked."""
    layer = _LAYERS[cell](
        units,
        return_sequences=return_sequences,
        return_state=return_state,
        kernel_regularizer=regularizer,
        recurrent_regularizer=regularizer,
        name=name,
    )
    if bidirectional:
        return keras.layers.Bidirectional(layer, name=f"bi_{name}")
    return layer


def rnn_body(
    x,
    *,
    cell="gru",
    units=(64,),
    bidirectional=False,
    dropout=0.0,
    regularizer=None,
    batch_norm=False,
):
    """Stacked recurrent layers; the last one returns its final output only."""
    for i, n in enumerate(units):
        last = i == len(units) - 1
        x = recurrent_layer(
            cell,
            n,
            return_sequences=not last,
            bidirectional=bidirectional,
            regularizer=regularizer,
            name=f"{cell}{i + 1}",
        )(x)
        if batch_norm:
            x = _blocks.batch_norm_layer(f"{cell}{i + 1}_bn")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{cell}{i + 1}_dropout")(x)
    return x


def _dense_layers(x, dense_units, *, dropout, regularizer):
    """The dense layers between the recurrent body and the head."""
    for i, n in enumerate(dense_units):
        x = _blocks.dense_block(
            x,
            n,
            activation="relu",
            dropout=dropout,
            regularizer=regularizer,
            batch_norm=False,
            name=f"dense{i + 1}",
        )
    return x


def _check_input_shape(input_shape, func):
    input_shape = v.check_input_shape(
        input_shape, "input_shape", func, ranks=(2,), allow_none_dims=True
    )
    if input_shape[-1] is None:
        v.fail(
            func,
            "input_shape",
            "a shape (steps, features) with a known number of features",
            input_shape,
        )
    return input_shape


def _build(
    func,
    input_shape,
    num_outputs,
    *,
    cell,
    task,
    units,
    bidirectional,
    dense_units,
    dropout,
    l1,
    l2,
    batch_norm,
    augmentation,
    normalize,
    optimizer,
    learning_rate,
    metrics,
    name,
    loss=None,
    normalize_target=None,
    residual="auto",
):
    input_shape = _check_input_shape(input_shape, func)
    _compile.check_common(
        func,
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
    _normalize.check_normalize(normalize, input_shape, func)
    v.check_choice(cell, "cell", func, CELLS)
    units = v.check_int_tuple(units, "units", func)
    v.check_bool(bidirectional, "bidirectional", func)
    dense_units = v.check_int_tuple(dense_units, "dense_units", func, min_len=0)
    feature = _target.resolve(
        func,
        residual=residual,
        input_shape=input_shape,
        task=task,
        num_outputs=num_outputs,
        normalize=normalize,
        normalize_target=normalize_target,
    )

    reg = _compile.regularizer(l1, l2)
    inputs, x = _blocks.inputs_with_augmentation(
        input_shape, augmentation, func, normalize=normalize
    )
    x = rnn_body(
        x,
        cell=cell,
        units=units,
        bidirectional=bidirectional,
        dropout=dropout,
        regularizer=reg,
        batch_norm=batch_norm,
    )
    x = _dense_layers(x, dense_units, dropout=dropout, regularizer=reg)
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
        normalize=normalize,
        normalize_target=normalize_target,
        residual=feature,
    )


@_strategy.distributable
def build_rnn(
    input_shape,
    num_outputs: int,
    *,
    cell: str = "simple",
    task: str = "classification",
    units: int | tuple[int, ...] = (64,),
    bidirectional: bool = False,
    dense_units: int | tuple[int, ...] = (),
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    augmentation=None,
    normalize=None,
    normalize_target=None,
    residual="auto",
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    loss=None,
    name: str = "rnn",
    strategy=None,
):
    """Builds a compiled recurrent network over (steps, features) sequences.

    Args:
        input_shape: tuple. (steps, features); steps may be None.
        num_outputs: int. Classes for "classification", outputs otherwise.
        cell: str. "simple", "lstm" or "gru". Defaults to `"simple"`.
        task: str. "classification", "binary" or "regression". Defaults to
            `"classification"`.
        units: int or tuple of int. Units of each stacked recurrent layer
            (an int: one layer). Defaults to `(64,)`.
        bidirectional: bool. Read each sequence both ways. Defaults to
            `False`.
        dense_units: int or tuple of int. Dense layers before the head.
            Defaults to `()`.
        dropout: float. Dropout after each layer. Defaults to `0.0`.
        l1: float. L1 penalty on kernels and recurrent kernels. Defaults to
            `0.0`.
        l2: float. L2 penalty on kernels and recurrent kernels. Defaults to
            `0.0`.
        batch_norm: bool. Batch normalization after each recurrent layer.
            Defaults to `False`.
        augmentation: None, dict of `kdl.augment.sequence` options, or a layer.
            Defaults to `None`.
        normalize: array, tf.data.Dataset or None. Training inputs: the model
            starts with a Normalization layer adapted on them (mean and
            variance per feature or channel), so it takes raw inputs, saved
            and exported too. Defaults to `None`.
        normalize_target: array or None. Training targets of a regression
            (task="regression"): the head learns standardized targets and
            the model un-scales its output with their mean and variance (a
            Normalization layer with `invert=True`), so `predict` returns
            raw units, saved and exported too. With a residual (below), the
            statistics are those of the change from the last value, taken
            with the `normalize=` windows, which must then be given. None
            scales nothing: the head must learn the raw units itself.
            Defaults to `None`.
        residual: "auto", None or int. The input feature whose last value in
            the window the output is added to, so the model learns the change
            from the naive forecast "next = last value". "auto": for a
            regression with one output over windows of known length, the
            only feature of a one-feature series; with several features, the
            one whose last value is nearest the targets (found from the
            `normalize=` windows and `normalize_target=` targets, and only if
            it forecasts them better than their mean); otherwise none. None
            turns it off. Defaults to `"auto"`.
        optimizer: str or optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: tuple or None. Defaults to `None`.
        loss: str, a kdl.keras loss or None. The loss to compile with, as
            in Keras' ``compile``; None: the task's (sparse categorical
            cross-entropy, binary cross-entropy or mean squared error).
            Defaults to `None`.
        name: str. Defaults to `"rnn"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.

    Returns:
        A compiled `kdl.keras.Model`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_rnn((8, 8), 10, cell="lstm", bidirectional=True)
        >>> model.output_shape
        (None, 10)
    """
    del strategy  # entered by @_strategy.distributable
    return _build(
        "build_rnn",
        input_shape,
        num_outputs,
        cell=cell,
        task=task,
        units=units,
        bidirectional=bidirectional,
        dense_units=dense_units,
        dropout=dropout,
        l1=l1,
        l2=l2,
        batch_norm=batch_norm,
        augmentation=augmentation,
        normalize=normalize,
        normalize_target=normalize_target,
        residual=residual,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        loss=loss,
        name=name,
    )


@_strategy.distributable
def build_lstm(
    input_shape,
    num_outputs: int,
    *,
    task: str = "classification",
    units: int | tuple[int, ...] = (64,),
    bidirectional: bool = False,
    dense_units: int | tuple[int, ...] = (),
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    augmentation=None,
    normalize=None,
    normalize_target=None,
    residual="auto",
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    loss=None,
    name: str = "lstm",
    strategy=None,
):
    """Builds a compiled LSTM network: `build_rnn` with ``cell="lstm"``.

    Args are those of `build_rnn`, without `cell`.

    Example:
        >>> model = build_lstm((8, 8), 10, units=(32,))
    """
    del strategy  # entered by @_strategy.distributable
    return _build(
        "build_lstm",
        input_shape,
        num_outputs,
        cell="lstm",
        task=task,
        units=units,
        bidirectional=bidirectional,
        dense_units=dense_units,
        dropout=dropout,
        l1=l1,
        l2=l2,
        batch_norm=batch_norm,
        augmentation=augmentation,
        normalize=normalize,
        normalize_target=normalize_target,
        residual=residual,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        loss=loss,
        name=name,
    )


@_strategy.distributable
def build_gru(
    input_shape,
    num_outputs: int,
    *,
    task: str = "classification",
    units: int | tuple[int, ...] = (64,),
    bidirectional: bool = False,
    dense_units: int | tuple[int, ...] = (),
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    augmentation=None,
    normalize=None,
    normalize_target=None,
    residual="auto",
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    loss=None,
    name: str = "gru",
    strategy=None,
):
    """Builds a compiled GRU network: `build_rnn` with ``cell="gru"``.

    Args are those of `build_rnn`, without `cell`.

    Example:
        >>> (x, y), _ = kdl.datasets.sunspots(window=24)
        >>> model = build_gru(
        ...     (24, 1), 1, task="regression", normalize=x, normalize_target=y
        ... )
    """
    del strategy  # entered by @_strategy.distributable
    return _build(
        "build_gru",
        input_shape,
        num_outputs,
        cell="gru",
        task=task,
        units=units,
        bidirectional=bidirectional,
        dense_units=dense_units,
        dropout=dropout,
        l1=l1,
        l2=l2,
        batch_norm=batch_norm,
        augmentation=augmentation,
        normalize=normalize,
        normalize_target=normalize_target,
        residual=residual,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        loss=loss,
        name=name,
    )
