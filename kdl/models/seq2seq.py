"""Encoder-decoder (sequence to sequence) with optional attention."""

from __future__ import annotations

import numpy as np

from kdl import _validation as v
from kdl.backend import keras
from kdl.models import _compile, _strategy
from kdl.models.rnn import CELLS, recurrent_layer

FUNC = "build_seq2seq"


def _encoder(
    input_vocab_size,
    *,
    cell,
    units,
    embedding_dim,
    bidirectional,
    attention,
    dropout,
    regularizer,
):
    """The source Input, the encoder outputs and the states that start the decoder."""
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    x = keras.layers.Embedding(
        input_vocab_size, embedding_dim, mask_zero=True, name="encoder_embedding"
    )(source)
    if dropout:
        x = keras.layers.Dropout(dropout, name="encoder_dropout")(x)
    encoder = recurrent_layer(
        cell,
        units,
        return_sequences=attention,
        return_state=True,
        bidirectional=bidirectional,
        regularizer=regularizer,
        name="encoder",
    )
    encoded, *states = encoder(x)
    if bidirectional:
        half = len(states) // 2
        states = [
            keras.layers.Concatenate(name=f"encoder_state{i + 1}")(
                [states[i], states[half + i]]
            )
            for i in range(half)
        ]
    return source, encoded, states


def _check_units(units) -> int:
    """The encoder width: an int, or a tuple of one int as the RNN builders take."""
    widths = v.check_int_tuple(units, "units", FUNC)
    if len(widths) > 1:
        v.fail(FUNC, "units", "an int or a one-element tuple (the encoder and "
               "the decoder are one recurrent layer each; build_gru stacks "
               "layers)", units)  # fmt: skip
    return widths[0]


@_strategy.distributable
def build_seq2seq(
    input_vocab_size: int,
    output_vocab_size: int,
    *,
    cell: str = "gru",
    units: int | tuple[int, ...] = (128,),
    embedding_dim: int = 64,
    bidirectional_encoder: bool = False,
    attention: bool = False,
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    optimizer="adam",
    learning_rate=1e-3,
    metrics=None,
    name: str = "seq2seq",
    strategy=None,
):
    """Builds a compiled encoder-decoder for token sequences (teacher forcing).

    The model takes ``[source_tokens, decoder_input_tokens]`` (int arrays,
    0 = padding) and predicts the next target token at every decoder step. The
    encoder's final state starts the decoder; with ``attention`` the decoder
    also attends (dot-product, Luong style) to every encoder output. Decode
    new sequences with :func:`greedy_decode`. The task is always token
    classification, so the builder has no ``task``, ``batch_norm`` or
    ``augmentation`` arguments.

    Args:
        input_vocab_size: int. Source vocabulary size, padding id 0 included.
        output_vocab_size: int. Target vocabulary size, padding, start and end
            ids included.
        cell: str. "simple", "lstm" or "gru". Defaults to `"gru"`.
        units: int or a one-element tuple of int. Encoder units (the decoder
            has twice as many with a bidirectional encoder), as `units` of
            `build_gru`; the encoder and the decoder are one layer each, so a
            longer tuple is refused. Defaults to `(128,)`.
        embedding_dim: int. Size of both embeddings. Defaults to `64`.
        bidirectional_encoder: bool. Defaults to `False`.
        attention: bool. Defaults to `False`.
        dropout: float. Dropout after the embeddings and the decoder.
            Defaults to `0.0`.
        l1: float. Defaults to `0.0`.
        l2: float. Defaults to `0.0`.
        optimizer: str or optimizer. Defaults to `"adam"`.
        learning_rate: float or schedule. Defaults to `1e-3`.
        metrics: tuple or None. Defaults to `None` (token accuracy).
        name: str. Defaults to `"seq2seq"`.
        strategy: None, a `tf.distribute.Strategy` or a name ("auto",
            "mirrored", "multi_worker", ...; see `kdl.distribute.strategy`).
            The model is built and compiled in its scope. Defaults to `None`.

    Returns:
        A compiled `kdl.keras.Model` with inputs "source" and "decoder_input".

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> model = build_seq2seq(13, 15, units=32, attention=True)
        >>> model.output_shape
        (None, None, 15)
    """
    del strategy  # entered by @_strategy.distributable
    v.check_int(input_vocab_size, "input_vocab_size", FUNC, min_value=2)
    v.check_int(output_vocab_size, "output_vocab_size", FUNC, min_value=3)
    v.check_choice(cell, "cell", FUNC, CELLS)
    units = _check_units(units)
    v.check_int(embedding_dim, "embedding_dim", FUNC)
    v.check_bool(bidirectional_encoder, "bidirectional_encoder", FUNC)
    v.check_bool(attention, "attention", FUNC)
    _compile.check_common(
        FUNC,
        dropout=dropout,
        l1=l1,
        l2=l2,
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
        name=name,
    )

    reg = _compile.regularizer(l1, l2)
    source, encoded, states = _encoder(
        input_vocab_size,
        cell=cell,
        units=units,
        embedding_dim=embedding_dim,
        bidirectional=bidirectional_encoder,
        attention=attention,
        dropout=dropout,
        regularizer=reg,
    )

    # === Decoder ===
    decoder_input = keras.Input(shape=(None,), dtype="int32", name="decoder_input")
    y = keras.layers.Embedding(
        output_vocab_size, embedding_dim, mask_zero=True, name="decoder_embedding"
    )(decoder_input)
    if dropout:
        y = keras.layers.Dropout(dropout, name="decoder_embedding_dropout")(y)
    decoder_units = units * (2 if bidirectional_encoder else 1)
    decoder = recurrent_layer(
        cell, decoder_units, return_sequences=True, regularizer=reg, name="decoder"
    )
    y = decoder(y, initial_state=states)
    if attention:
        context = keras.layers.Attention(name="attention")([y, encoded])
        y = keras.layers.Concatenate(name="attention_concat")([y, context])
    if dropout:
        y = keras.layers.Dropout(dropout, name="decoder_dropout")(y)

    # === Head ===
    outputs = keras.layers.Dense(
        output_vocab_size,
        activation="softmax",
        kernel_regularizer=reg,
        name="predictions",
    )(y)
    model = keras.Model([source, decoder_input], outputs, name=name)
    return _compile.compile_model(
        model,
        task="classification",
        optimizer=optimizer,
        learning_rate=learning_rate,
        metrics=metrics,
    )


def greedy_decode(
    model,
    source_tokens,
    *,
    start_id: int,
    end_id: int,
    max_length: int,
    batch_size: int = 512,
):
    """Decodes source sequences token by token, taking the likeliest each step.

    Args:
        model: a model from `build_seq2seq` (inputs [source, decoder_input]).
        source_tokens: int array (n, steps), 0 = padding.
        start_id: int. The start token fed first to the decoder.
        end_id: int. The end token; decoding of a sequence stops after it.
        max_length: int. Most tokens to emit per sequence (the end included).
        batch_size: int. Defaults to `512`.

    Returns:
        int32 array (n, max_length): the emitted tokens up to and including the
        end token, then 0.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> tokens = greedy_decode(model, src, start_id=1, end_id=2, max_length=9)
    """
    func = "greedy_decode"
    v.check_keras_model(model, "model", func)
    if len(model.inputs) != 2:
        v.fail(func, "model", "a model from build_seq2seq (two inputs)", model.name)
    source = np.asarray(source_tokens)
    if source.ndim != 2 or not np.issubdtype(source.dtype, np.integer):
        v.fail(
            func,
            "source_tokens",
            "a 2-D array of int token ids",
            f"array of shape {source.shape} and dtype {source.dtype}",
        )
    vocab = model.output_shape[-1]
    v.check_int(start_id, "start_id", func, min_value=1)
    v.check_int(end_id, "end_id", func, min_value=1)
    for arg, value in (("start_id", start_id), ("end_id", end_id)):
        if value >= vocab:
            v.fail(
                func,
                arg,
                f"a token id below the output vocabulary size ({vocab})",
                value,
            )
    v.check_int(max_length, "max_length", func)
    v.check_int(batch_size, "batch_size", func)

    n = len(source)
    decoder_input = np.zeros((n, max_length), "int32")
    decoder_input[:, 0] = start_id
    out = np.zeros((n, max_length), "int32")
    done = np.zeros(n, bool)
    for t in range(max_length):
        probs = model.predict(
            [source.astype("int32"), decoder_input], batch_size=batch_size, verbose=0
        )
        token = probs[:, t, :].argmax(-1).astype("int32")
        token[done] = 0
        out[:, t] = token
        done |= token == end_id
        if t + 1 < max_length:
            decoder_input[:, t + 1] = token
        if done.all():
            break
    return out
