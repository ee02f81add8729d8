"""Small real datasets that ship with installed packages: nothing downloads.

- :func:`digits`: scikit-learn's 1,797 handwritten digit images (8 x 8).
- :func:`sunspots`: statsmodels' yearly sunspot numbers, 1700-2008, as windows.
- :func:`toy_translation`: a generated sequence-to-sequence task.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kdl import _validation as v
from kdl.datasets._windows import count_windows, make_windows, split_in_time

__all__ = ["digits", "sunspots", "toy_translation", "TranslationTask"]

LAYOUTS = ("image", "flat", "sequence")


def digits(*, layout: str = "image", test_size: float = 0.2, seed: int = 0):
    """scikit-learn's handwritten digits, scaled to [0, 1], split stratified.

    Args:
        layout: str. "image" gives (8, 8, 1) images, "flat" (64,) vectors,
            "sequence" (8, 8): the image read row by row as 8 steps of 8
            features. Defaults to `"image"`.
        test_size: float. Fraction held out for testing. Defaults to `0.2`.
        seed: int. Seed of the split. Defaults to `0`.

    Returns:
        ((x_train, y_train), (x_test, y_test)) as float32 images and int64
        labels 0-9.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = digits()
        >>> x_train.shape[1:]
        (8, 8, 1)
    """
    func = "kdl.datasets.digits"
    v.check_choice(layout, "layout", func, LAYOUTS)
    v.check_float(
        test_size, "test_size", func, min_value=0.0, max_value=0.9, strict_min=True
    )
    v.check_int(seed, "seed", func, min_value=0)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype("float32")
    y = data.target.astype("int64")
    shape = {"image": (-1, 8, 8, 1), "flat": (-1, 64), "sequence": (-1, 8, 8)}
    x = x.reshape(shape[layout])
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    return (x_train, y_train), (x_test, y_test)


def sunspots(*, window: int = 24, horizon: int = 1, test_size: float = 0.2):
    """statsmodels' yearly sunspot numbers as (window -> next value) examples.

    The series is split in time (the last ``test_size`` of it is the test set)
    and scaled by the largest value of the training part.

    Args:
        window: int. Years in each input window. Defaults to `24`.
        horizon: int. How many years ahead the target lies. Defaults to `1`.
        test_size: float. Fraction of windows held out, from the end.
            Defaults to `0.2`.

    Returns:
        ((x_train, y_train), (x_test, y_test)): x of shape (n, window, 1),
        y of shape (n, 1), float32, scaled.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = sunspots(window=12)
        >>> x_train.shape[1:]
        (12, 1)
    """
    func = "kdl.datasets.sunspots"
    v.check_int(window, "window", func)
    v.check_int(horizon, "horizon", func)
    v.check_float(
        test_size, "test_size", func, min_value=0.0, max_value=0.9, strict_min=True
    )
    from statsmodels.datasets import sunspots as sm_sunspots

    series = sm_sunspots.load_pandas().data["SUNACTIVITY"].to_numpy("float32")
    n = count_windows(len(series), window, horizon)
    if n < 10:
        v.fail(
            func,
            "window",
            f"at most {len(series) - horizon - 9} (the series has {len(series)} years)",
            window,
        )
    x, y, _ = make_windows(series[:, None], series, window, horizon)
    split = split_in_time(n, test_size)
    scale = float(series[: split + window].max())
    x = (x / scale).astype("float32")
    y = (y / scale).astype("float32")
    return (x[:split], y[:split]), (x[split:], y[split:])


class TranslationTask(NamedTuple):
    """A generated sequence-to-sequence task and its vocabulary.

    ``train`` and ``test`` are ((source, decoder_input), target) pairs of int32
    arrays: source (n, max_length), decoder_input and target
    (n, max_length + 1). Token 0 is padding.
    """

    train: tuple
    test: tuple
    input_vocab_size: int
    output_vocab_size: int
    start_id: int
    end_id: int
    max_length: int


def toy_translation(
    *,
    num_examples: int = 6000,
    min_length: int = 3,
    max_length: int = 8,
    vocab_size: int = 12,
    test_size: float = 0.2,
    seed: int = 0,
) -> TranslationTask:
    """A generated "translation": reverse a token sequence, shifting each word.

    The source is a random sequence of ``min_length``..``max_length`` words
    (ids 1..vocab_size); the target is the same sequence reversed, each word
    mapped to its own id in the output vocabulary (word w becomes w + 2, after
    the start and end tokens 1 and 2), then the end token. The decoder input is
    the target shifted right behind the start token (teacher forcing).

    Args:
        num_examples: int. Defaults to `6000`.
        min_length: int. Shortest source. Defaults to `3`.
        max_length: int. Longest source. Defaults to `8`.
        vocab_size: int. Number of source words. Defaults to `12`.
        test_size: float. Fraction held out. Defaults to `0.2`.
        seed: int. Defaults to `0`.

    Returns:
        A :class:`TranslationTask`.

    Example:
        >>> task = toy_translation(num_examples=100)
        >>> (src, dec_in), target = task.train
    """
    func = "kdl.datasets.toy_translation"
    v.check_int(num_examples, "num_examples", func, min_value=10)
    v.check_int(min_length, "min_length", func)
    v.check_int(max_length, "max_length", func)
    if max_length < min_length:
        v.fail(func, "max_length", f">= min_length ({min_length})", max_length)
    v.check_int(vocab_size, "vocab_size", func, min_value=2)
    v.check_float(
        test_size, "test_size", func, min_value=0.0, max_value=0.9, strict_min=True
    )
    v.check_int(seed, "seed", func, min_value=0)

    rng = np.random.default_rng(seed)
    start_id, end_id = 1, 2
    source = np.zeros((num_examples, max_length), "int32")
    target = np.zeros((num_examples, max_length + 1), "int32")
    decoder_input = np.zeros((num_examples, max_length + 1), "int32")
    for i in range(num_examples):
        length = rng.integers(min_length, max_length + 1)
        words = rng.integers(1, vocab_size + 1, size=length)
        source[i, :length] = words
        out = np.append(words[::-1] + 2, end_id)
        target[i, : length + 1] = out
        decoder_input[i, 0] = start_id
        decoder_input[i, 1 : length + 1] = out[:-1]
    split = int(round(num_examples * (1.0 - test_size)))
    return TranslationTask(
        train=((source[:split], decoder_input[:split]), target[:split]),
        test=((source[split:], decoder_input[split:]), target[split:]),
        input_vocab_size=vocab_size + 1,
        output_vocab_size=vocab_size + 3,
        start_id=start_id,
        end_id=end_id,
        max_length=max_length + 1,
    )
