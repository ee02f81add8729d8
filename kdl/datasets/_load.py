"""kdl.datasets.load: the user's own CSV files, series, image folders, .npz and arrays.

Everything but image folders and ``as_dataset=True`` is read with pandas and
NumPy, so a mistake in the arguments or the data is reported before
TensorFlow is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl.datasets._schema import check_compatible

__all__ = [
    "Data",
    "load",
    "BUILTINS",
]

from kdl.datasets._data import (
    BUILTINS,
    FUNC,
    TABLE_SUFFIXES,
    Data,
    Options,
    apply_schema,
    check_options,
    source_name,
)
from kdl.datasets._sources import (
    from_arrays,
    from_builtin,
    from_images,
    from_npz,
    from_series_array,
    from_series_file,
    from_table,
)


def _source_kind(source, opts: Options) -> str:
    if isinstance(source, np.ndarray):
        return "array_series"
    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            v.fail(FUNC, "source", "a pair (x, y) of arrays", source, error=TypeError)
        return "arrays"
    if not isinstance(source, (str, os.PathLike)) or not str(source):
        v.fail(
            FUNC,
            "source",
            "a path, a built-in dataset name, (x, y) arrays or a series array",
            source,
            error=TypeError,
        )
    path = Path(source)
    if not path.exists():
        if str(source) in BUILTINS:
            return "builtin"
        raise FileNotFoundError(
            f"{FUNC} found no file or folder at {str(source)!r} (nor is it a "
            f"built-in dataset: {', '.join(BUILTINS)})."
        )
    if path.is_dir():
        return "images"
    if path.suffix.lower() == ".npz":
        return "npz"
    if path.suffix.lower() in TABLE_SUFFIXES:
        return "series" if opts.window else "table"
    v.fail(
        FUNC,
        "source",
        "a .csv or .npz file, a folder of class subfolders "
        "of images, or a built-in dataset name",
        str(source),
    )


def load(
    source,
    *,
    target=None,
    features=None,
    test_size: float | None = None,
    seed: int = 0,
    task: str | None = None,
    missing: str = "error",
    window: int | None = None,
    horizon: int = 1,
    image_size: tuple[int, int] = (256, 256),
    color_mode: str = "rgb",
    layout: str = "image",
    batch_size: int = 32,
    as_dataset: bool = False,
    schema: dict | None = None,
) -> Data:
    """Reads your own data, split like `digits`: CSV, series, images, .npz, arrays.

    What ``source`` is decides how it is read:

    - a ``.csv`` file with a ``target`` column: numeric columns as they are,
      text columns one-hot encoded (``"<column>=<value>"``), a text target
      mapped to classes 0..K-1 (names in ``classes``); an empty cell is
      refused naming its column and row (``missing="drop"`` drops such rows).
      Classification is split stratified by class, regression at random.
    - a ``.csv`` file with ``window=``: a time series, rows in time order.
      Each example is ``window`` consecutive rows of every column (or of
      ``features``) and its target is the ``target`` column ``horizon`` rows
      after the window. Split in time order: the last ``test_size`` of the
      windows test, nothing shuffled across the split. Values are not
      scaled (give the model ``normalize=x_train``).
    - a 1-D or 2-D NumPy array with ``window=``: the same, ``target`` is a
      column index (default 0).
    - a folder with one subfolder of images per class (PNG/JPEG/BMP/GIF), read
      by Keras' ``image_dataset_from_directory`` at ``image_size`` in
      ``color_mode``; pixel values stay 0-255 (float32). Split stratified.
    - a ``.npz`` file with arrays ``x`` and ``y`` (other names: ``features=``
      names the inputs, ``target=`` the labels), or with ``x_train``,
      ``y_train``, ``x_test``, ``y_test`` (used as given).
    - a pair ``(x, y)`` of arrays.
    - "digits" or "sunspots": the built-in datasets (see `digits` and
      `sunspots`).

    Args:
        source: str, PathLike, tuple or array. See above.
        target: str, int or None. The target column (CSV), its index (series
            array) or the label array's name (.npz). Required for a CSV table.
            Defaults to `None`.
        features: list of str, str or None. Input columns (default: every
            other column), or the input array's name in an .npz file.
            Defaults to `None`.
        test_size: float or None. Fraction held out, 0 to 0.9 (0 puts every
            example in the training part, in the file's order, e.g. to
            predict). None means 0.2, or 0 with ``schema=`` (new data read
            for a trained model is not split: every row, in the file's
            order); give a number to split data read with a schema. The
            training part of a split comes shuffled (seeded by ``seed``),
            except series windows, which stay in time order. Defaults to `None`.
        seed: int. Seed of the split. Defaults to `0`.
        task: str or None. "classification", "binary" or "regression"; None
            infers it: text, bool and integer targets with up to 50 values are
            classes ("binary" for two), other numbers regression. Defaults to
            `None`.
        missing: str. "error" refuses empty cells, "drop" drops their rows
            (tables only; a series must be complete). Defaults to `"error"`.
        window: int or None. Steps in each series window. Defaults to `None`.
        horizon: int. Steps from a window's last row to its target. Defaults
            to `1`.
        image_size: tuple. (height, width) images are resized to. Defaults to
            `(256, 256)`, Keras' default.
        color_mode: str. "rgb", "grayscale" or "rgba". Defaults to `"rgb"`.
        layout: str. For "digits": "image", "flat" or "sequence". Defaults to
            `"image"`.
        batch_size: int. Batch of the pipelines of ``as_dataset``. Defaults
            to `32`.
        as_dataset: bool. Return batched, prefetched ``tf.data`` pipelines
            (training part shuffled each epoch) instead of arrays; image
            folders are then streamed from disk. Defaults to `False`.
        schema: dict or None. ``data.schema`` of an earlier load (or
            `read_schema` of a saved model): read new data with the same
            columns, encoding, classes and windows; the target column may be
            absent (then y is None). Defaults to `None`.

    Returns:
        A :class:`Data`: unpacks as ``((x_train, y_train), (x_test, y_test))``
        and has ``classes``, ``feature_names``, ``task``, ``rows``, ``schema``.

    Raises:
        FileNotFoundError: if nothing exists at ``source``.
        ValueError: for data that does not fit, naming the argument, the file
            and, where it applies, the column and row. Nothing is written.
        TypeError: for an argument of the wrong type.

    Example:
        >>> data = load("wine.csv", target="label")  # doctest: +SKIP
        >>> (x_train, y_train), (x_test, y_test) = data  # doctest: +SKIP
        >>> data.classes  # doctest: +SKIP
        ['barolo', 'grignolino', 'barbera']
    """
    opts = Options(
        target,
        features,
        test_size,
        seed,
        task,
        missing,
        window,
        horizon,
        image_size,
        color_mode,
        layout,
        batch_size,
        as_dataset,
        schema,
    )
    check_options(opts)
    apply_schema(opts)
    kind = _source_kind(source, opts)
    opts.source_name = source_name(source)
    if opts.schema is not None and opts.schema["kind"] != _schema_kind(kind):
        check_compatible(
            opts.schema,
            {"kind": _schema_kind(kind), "source": str(source)},
            FUNC,
            arg="source",
        )
    readers = {
        "table": from_table,
        "series": from_series_file,
        "array_series": from_series_array,
        "images": from_images,
        "npz": from_npz,
        "arrays": from_arrays,
        "builtin": from_builtin,
    }
    return readers[kind](source, opts)


def _schema_kind(kind: str) -> str:
    return {"array_series": "series", "npz": "arrays"}.get(kind, kind)
