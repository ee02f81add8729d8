"""kdl.datasets.load: the user's own CSV files, series, image folders, .npz and arrays.

Everything but image folders and ``as_dataset=True`` is read with pandas and
NumPy, so a mistake in the arguments or the data is reported before
TensorFlow is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl._constants import TASKS
from kdl.datasets import _builtin, _images, _table, _windows
from kdl.datasets._schema import check_compatible

__all__ = [
    "Data",
    "load",
    "BUILTINS",
]

FUNC = "kdl.datasets.load"
BUILTINS = ("digits", "sunspots")
MISSING = ("error", "drop")
DEFAULT_TEST_SIZE = 0.2
TABLE_SUFFIXES = (".csv",)


class Data(tuple):
    """What :func:`load` returns: unpacks as ``((x_train, y_train), (x_test, y_test))``.

    With ``as_dataset=True`` the pairs are ``(train_dataset, None)`` and
    ``(test_dataset, None)``; with ``test_size=0`` the test arrays are empty.

    Attributes:
        train: tuple. ``(x_train, y_train)``.
        test: tuple. ``(x_test, y_test)``.
        classes: list or None. Class names in label order (label ``i`` is
            ``classes[i]``); None for regression.
        feature_names: list of str or None. The input columns used (one-hot
            columns as ``"<column>=<value>"``); None for images.
        task: str. "classification", "binary" or "regression".
        rows: tuple. ``(train_rows, test_rows)``: where each example comes
            from (the file's data row, from 1, for CSV files; the image file
            for image folders; the index for arrays).
        schema: dict. Everything needed to read new data the same way
            (``load(path, schema=data.schema)``); JSON-serializable.
    """

    def __new__(
        cls, train, test, *, classes, feature_names, task, schema, rows=(None, None)
    ):
        self = super().__new__(cls, (tuple(train), tuple(test)))
        self.classes = classes
        self.feature_names = feature_names
        self.task = task
        self.schema = schema
        self.rows = rows
        return self

    @property
    def train(self):
        return self[0]

    @property
    def test(self):
        return self[1]

    @property
    def input_shape(self) -> tuple:
        """The shape of one example."""
        return tuple(self.schema["input_shape"])

    @property
    def num_outputs(self) -> int:
        """Model outputs for this data: classes, 1 for "binary", else targets."""
        if self.task == "classification":
            return len(self.classes)
        return int(self.schema.get("num_targets", 1))

    def __repr__(self) -> str:
        sizes = [
            None if x is None or not hasattr(x, "shape") else len(x) for x, _ in self
        ]
        return (
            f"Data(source={self.schema.get('source')!r}, task={self.task!r}, "
            f"input_shape={self.input_shape}, train={sizes[0]}, "
            f"test={sizes[1]}, classes={self.classes})"
        )


@dataclass
class _Options:
    target: object
    features: object
    test_size: float | None
    seed: int
    task: str | None
    missing: str
    window: int | None
    horizon: int
    image_size: tuple
    color_mode: str
    layout: str
    batch_size: int
    as_dataset: bool
    schema: dict | None
    source_name: str = ""


def _check_options(opts: _Options) -> None:
    f = FUNC
    if opts.target is not None and not isinstance(opts.target, (str, int)):
        v.fail(
            f,
            "target",
            "a column name, an int column index or None",
            opts.target,
            error=TypeError,
        )
    if opts.features is not None and not isinstance(opts.features, str):
        if (
            not isinstance(opts.features, (list, tuple))
            or not all(isinstance(c, str) for c in opts.features)
            or not opts.features
        ):
            v.fail(
                f,
                "features",
                "a non-empty list of column names, a key of an .npz file, or None",
                opts.features,
                error=TypeError,
            )
    if opts.test_size is None:  # new data read with a schema is not split
        opts.test_size = 0.0 if opts.schema is not None else DEFAULT_TEST_SIZE
    v.check_float(opts.test_size, "test_size", f, min_value=0.0, max_value=0.9)
    v.check_int(opts.seed, "seed", f, min_value=0)
    if opts.task is not None:
        v.check_choice(opts.task, "task", f, TASKS)
    v.check_choice(opts.missing, "missing", f, MISSING)
    v.check_int(opts.window, "window", f, allow_none=True)
    v.check_int(opts.horizon, "horizon", f)
    opts.image_size = v.check_int_tuple(opts.image_size, "image_size", f, min_len=2)
    if len(opts.image_size) != 2:
        v.fail(f, "image_size", "a pair (height, width)", opts.image_size)
    v.check_choice(opts.color_mode, "color_mode", f, _images.COLOR_MODES)
    v.check_choice(opts.layout, "layout", f, _builtin.LAYOUTS)
    v.check_int(opts.batch_size, "batch_size", f)
    v.check_bool(opts.as_dataset, "as_dataset", f)
    if opts.schema is not None and (
        not isinstance(opts.schema, dict) or "kind" not in opts.schema
    ):
        v.fail(
            f,
            "schema",
            "the .schema dict of a Data from kdl.datasets.load "
            "(or read_schema), or None",
            opts.schema,
            error=TypeError,
        )


def _apply_schema(opts: _Options) -> None:
    """Reads new data the way the schema's data was read."""
    s = opts.schema
    if s is None:
        return
    if opts.target is None:
        opts.target = s.get("target")
    opts.task = s["task"]
    if s.get("window"):
        opts.window, opts.horizon = s["window"], s["horizon"]
    if s.get("image_size"):
        opts.image_size, opts.color_mode = tuple(s["image_size"]), s["color_mode"]
    if s.get("layout"):
        opts.layout = s["layout"]


def _source_kind(source, opts: _Options) -> str:
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
    opts = _Options(
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
    _check_options(opts)
    _apply_schema(opts)
    kind = _source_kind(source, opts)
    opts.source_name = _name(source)
    if opts.schema is not None and opts.schema["kind"] != _schema_kind(kind):
        check_compatible(
            opts.schema,
            {"kind": _schema_kind(kind), "source": str(source)},
            FUNC,
            arg="source",
        )
    readers = {
        "table": _from_table,
        "series": _from_series_file,
        "array_series": _from_series_array,
        "images": _from_images,
        "npz": _from_npz,
        "arrays": _from_arrays,
        "builtin": _from_builtin,
    }
    return readers[kind](source, opts)


def _schema_kind(kind: str) -> str:
    return {"array_series": "series", "npz": "arrays"}.get(kind, kind)


def _name(source) -> str:
    return (
        os.path.basename(str(source))
        if isinstance(source, (str, os.PathLike))
        else "arrays"
    )


def _split(n: int, opts: _Options, labels=None) -> tuple:
    """(train, test) example indices: stratified by ``labels`` when given.

    The training indices come shuffled (seeded by ``opts.seed``): a file
    sorted by class must not reach training, or Keras' ``validation_split``,
    grouped by class (issue 23). The test indices keep the file's order, and
    ``test_size=0`` keeps every example in the file's order (e.g. to predict).
    """
    if opts.test_size == 0.0:
        return np.arange(n), np.arange(0)
    from sklearn.model_selection import train_test_split

    if labels is not None:
        values, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            v.fail(
                FUNC,
                "source",
                "data with at least 2 examples of each class "
                f"for a stratified split (class index {values[counts.argmin()]}"
                " has 1)",
                opts.source_name,
            )
        if round(n * opts.test_size) < len(values):
            v.fail(
                FUNC,
                "test_size",
                f"large enough to hold one example of each "
                f"of the {len(values)} classes ({n} examples)",
                opts.test_size,
            )
    train, test = train_test_split(
        np.arange(n), test_size=opts.test_size, random_state=opts.seed, stratify=labels
    )
    return train, np.sort(test)


def _to_datasets(train, test, opts: _Options):
    """Batched, prefetched tf.data pipelines; the training one reshuffles."""
    from kdl.backend import tf

    def pipeline(pair, shuffle):
        ds = tf.data.Dataset.from_tensor_slices(
            pair if pair[1] is not None else pair[0]
        )
        if shuffle:
            ds = ds.shuffle(max(len(pair[0]), 1), seed=opts.seed)
        return ds.batch(opts.batch_size).prefetch(tf.data.AUTOTUNE)

    return (pipeline(train, True), None), (pipeline(test, False), None)


def _package(x, y, rows, parts, opts: _Options, *, classes, task, names, schema):
    """Splits by ``parts`` ((train, test) indices) and wraps it all in a Data."""
    train_idx, test_idx = parts
    train = (x[train_idx], None if y is None else y[train_idx])
    test = (x[test_idx], None if y is None else y[test_idx])
    schema.update(
        task=task,
        classes=classes,
        feature_names=names,
        input_shape=list(x.shape[1:]),
        test_size=opts.test_size,
        seed=opts.seed,
    )
    if task == "regression" and y is not None:
        schema["num_targets"] = int(y.shape[-1]) if y.ndim > 1 else 1
    rows = (rows[train_idx], rows[test_idx])
    if opts.as_dataset:
        train, test = _to_datasets(train, test, opts)
    return Data(
        train,
        test,
        classes=classes,
        feature_names=names,
        task=task,
        schema=schema,
        rows=rows,
    )


def _table_columns(frame, opts: _Options, path, *, has_target):
    s = opts.schema
    if s is not None:
        specs = s["columns"]
        _table.check_columns(frame, [c["name"] for c in specs], "schema", FUNC, path)
        return specs
    names = (
        list(opts.features)
        if isinstance(opts.features, (list, tuple))
        else [c for c in frame.columns if c != opts.target]
    )
    _table.check_columns(frame, names, "features", FUNC, path)
    if has_target and opts.target in names:
        v.fail(FUNC, "features", "columns other than the target", opts.target)
    return _table.column_specs(frame, names, FUNC, path)


def _from_table(path, opts: _Options) -> Data:
    frame = _table.read_csv(path, FUNC)
    if opts.target is None and opts.schema is None:
        v.fail(
            FUNC,
            "target",
            f"the name of the column to predict, one of {list(frame.columns)[:20]}",
            None,
            error=TypeError,
        )
    has_target = opts.target in frame.columns
    if not has_target and opts.schema is None:
        _table.check_columns(frame, [opts.target], "target", FUNC, path)
    specs = _table_columns(frame, opts, path, has_target=has_target)
    used = [c["name"] for c in specs] + ([opts.target] if has_target else [])
    frame = _table.check_missing(frame, used, opts.missing, FUNC, path)
    x, names = _table.encode_features(frame, specs, FUNC, path)
    spec = (
        {"task": opts.task, "classes": opts.schema["classes"]}
        if opts.schema
        else _table.target_spec(frame[opts.target], opts.task, FUNC, opts.target)
    )
    y = (
        _table.encode_target(frame[opts.target], spec, FUNC, path, opts.target)
        if has_target
        else None
    )
    stratify = y if (y is not None and spec["classes"] is not None) else None
    parts = _split(len(x), opts, stratify)
    schema = {
        "kind": "table",
        "source": _name(path),
        "target": opts.target,
        "columns": specs,
        "missing": opts.missing,
    }
    return _package(
        x,
        y,
        frame.index.to_numpy() + 1,
        parts,
        opts,
        classes=spec["classes"],
        task=spec["task"],
        names=names,
        schema=schema,
    )


def _series_columns(frame, opts: _Options, path) -> list:
    """The numeric columns of a series file (a date column is left out)."""
    import pandas as pd

    if opts.schema is not None:
        names = list(opts.schema["feature_names"])
    elif isinstance(opts.features, (list, tuple)):
        names = list(opts.features)
    else:
        names = []
        for c in frame.columns:
            col = frame[c]
            if not pd.api.types.is_numeric_dtype(col):
                dates = pd.to_datetime(col, errors="coerce", format="mixed")
                if dates.notna().all():
                    continue  # the time column: rows are already in time order
            names.append(c)
    _table.check_columns(frame, names, "features", FUNC, path)
    for spec in _table.column_specs(frame, names, FUNC, path):
        if spec["kind"] != "numeric":
            v.fail(
                FUNC,
                "source",
                f"a series whose columns hold numbers (column "
                f"{spec['name']!r} holds text)",
                str(path),
            )
    return names


def _from_series_file(path, opts: _Options) -> Data:
    frame = _table.read_csv(path, FUNC)
    names = _series_columns(frame, opts, path)
    target = opts.target
    if target is None:
        if len(names) != 1:
            v.fail(
                FUNC,
                "target",
                f"the column to forecast, one of {names}",
                None,
                error=TypeError,
            )
        target = names[0]
    _table.check_columns(frame, [target], "target", FUNC, path)
    _table.check_missing(frame, names + [target], "error", FUNC, path)
    series = frame[names].to_numpy("float32")
    values = frame[target].to_numpy("float32")
    return _windowed(
        series,
        values,
        frame.index.to_numpy() + 1,
        opts,
        names=names,
        schema={"kind": "series", "source": _name(path), "target": target},
    )


def _from_series_array(array, opts: _Options) -> Data:
    series = np.asarray(array)
    if series.ndim == 1:
        series = series[:, None]
    if series.ndim != 2 or not np.issubdtype(series.dtype, np.number):
        v.fail(
            FUNC,
            "source",
            "a numeric series array (steps,) or (steps, features)",
            f"array of shape {series.shape} ({series.dtype})",
        )
    if opts.window is None:
        v.fail(
            FUNC,
            "window",
            "an int (a series array is cut into windows)",
            None,
            error=TypeError,
        )
    target = 0 if opts.target is None else opts.target
    if not isinstance(target, int) or not 0 <= target < series.shape[1]:
        v.fail(FUNC, "target", f"a column index below {series.shape[1]}", target)
    if not np.isfinite(series).all():
        row = int(np.argmax(~np.isfinite(series).all(axis=1)))
        v.fail(
            FUNC,
            "source",
            f"a series without NaN or infinite values (step {row} has one)",
            "array",
        )
    series = series.astype("float32")
    names = [f"x{i}" for i in range(series.shape[1])]
    return _windowed(
        series,
        series[:, target],
        np.arange(len(series)),
        opts,
        names=names,
        schema={"kind": "series", "source": "array", "target": target},
    )


def _windowed(series, values, row_ids, opts: _Options, *, names, schema) -> Data:
    n = _windows.count_windows(len(series), opts.window, opts.horizon)
    if n < 2:
        v.fail(
            FUNC,
            "window",
            f"at most {len(series) - opts.horizon - 1} (the "
            f"series has {len(series)} steps)",
            opts.window,
        )
    x, y, rows = _windows.make_windows(series, values, opts.window, opts.horizon)
    first_test = _windows.split_in_time(n, opts.test_size)
    if first_test == 0:
        v.fail(
            FUNC,
            "test_size",
            f"small enough to leave training windows ({n} windows)",
            opts.test_size,
        )
    schema.update(window=opts.window, horizon=opts.horizon)
    return _package(
        x,
        y,
        row_ids[rows],
        (np.arange(first_test), np.arange(first_test, n)),  # time order kept
        opts,
        classes=None,
        task="regression",
        names=names,
        schema=schema,
    )


def _from_images(path, opts: _Options) -> Data:
    path = Path(path)
    known = opts.schema["classes"] if opts.schema else None
    counts = _images.scan_folder(path, FUNC, classes=known)
    classes = list(known) if known else sorted(counts)
    task = opts.task or ("binary" if len(classes) == 2 else "classification")
    if task == "regression":
        v.fail(FUNC, "task", "'classification' or 'binary' for an image folder", task)

    def split(labels):
        return _split(len(labels), opts, labels)

    train, test, paths, parts = _images.read_folder(
        path,
        classes=classes,
        image_size=opts.image_size,
        color_mode=opts.color_mode,
        split=split,
        as_dataset=opts.as_dataset,
        batch_size=opts.batch_size,
        seed=opts.seed,
    )
    rows = np.array([os.path.relpath(p, path) for p in paths])
    shape = [*opts.image_size, _images.CHANNELS[opts.color_mode]]
    schema = {
        "kind": "images",
        "source": _name(path),
        "target": None,
        "task": task,
        "classes": classes,
        "feature_names": None,
        "input_shape": shape,
        "image_size": list(opts.image_size),
        "color_mode": opts.color_mode,
        "test_size": opts.test_size,
        "seed": opts.seed,
    }
    return Data(
        train,
        test,
        classes=classes,
        feature_names=None,
        task=task,
        schema=schema,
        rows=(rows[parts[0]], rows[parts[1]]),
    )


def _npz_arrays(path, opts: _Options) -> dict:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as err:
        reason = " ".join(str(err).split())[:120]
        v.fail(
            FUNC,
            "source",
            f"a readable .npz file of numeric arrays ({reason})",
            str(path),
        )


def _from_npz(path, opts: _Options) -> Data:
    arrays = _npz_arrays(path, opts)
    split_keys = ("x_train", "y_train", "x_test", "y_test")
    if (
        opts.features is None
        and opts.target is None
        and all(k in arrays for k in split_keys)
    ):
        x = np.concatenate([arrays["x_train"], arrays["x_test"]])
        y = np.concatenate([arrays["y_train"], arrays["y_test"]])
        cut = len(arrays["x_train"])
        parts = (np.arange(cut), np.arange(cut, len(x)))  # used as given
        return _from_arrays((x, y), opts, parts=parts, source_name=_name(path))
    x_key = opts.features if isinstance(opts.features, str) else "x"
    y_key = opts.target if isinstance(opts.target, str) else "y"
    for arg, key in (("features", x_key), ("target", y_key)):
        if key not in arrays:
            v.fail(
                FUNC,
                arg,
                f"the name of an array in {path} (it holds {sorted(arrays)})",
                key,
            )
    return _from_arrays((arrays[x_key], arrays[y_key]), opts, source_name=_name(path))


def _check_xy(x, y) -> None:
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        v.fail(
            FUNC,
            "source",
            "(x, y) with numeric x",
            f"x of dtype {x.dtype}",
            error=TypeError,
        )
    if x.ndim < 2 or len(x) < 2:
        v.fail(
            FUNC,
            "source",
            "(x, y) with x of shape (examples, ...)",
            f"x of shape {x.shape}",
        )
    if len(y) != len(x) or y.ndim > 2:
        v.fail(
            FUNC,
            "source",
            f"(x, y) with y of shape ({len(x)},) or ({len(x)}, outputs)",
            f"y of shape {y.shape}",
        )
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        row = int(np.argmax(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)))
        v.fail(
            FUNC,
            "source",
            f"x without NaN or infinite values (example {row} has one)",
            "arrays",
        )


def _from_arrays(pair, opts: _Options, *, parts=None, source_name=None) -> Data:
    import pandas as pd

    x, y = (np.asarray(a) for a in pair)
    _check_xy(x, y)
    if opts.schema is not None:
        spec = {"task": opts.task, "classes": opts.schema["classes"]}
    elif y.ndim == 2 and y.shape[1] > 1:
        spec = {"task": opts.task or "regression", "classes": None}
    else:
        spec = _table.target_spec(pd.Series(y.reshape(-1)), opts.task, FUNC, "y")
    if spec["classes"] is None:
        y = y.astype("float32").reshape(len(y), -1)
    else:
        y = _table.encode_target(pd.Series(y.reshape(-1)), spec, FUNC, "y", "y")
    if parts is None:
        parts = _split(len(x), opts, y if spec["classes"] else None)
    names = [f"x{i}" for i in range(x.shape[1])] if x.ndim == 2 else None
    schema = {"kind": "arrays", "source": source_name or "arrays", "target": None}
    return _package(
        x.astype("float32"),
        y,
        np.arange(len(x)),
        parts,
        opts,
        classes=spec["classes"],
        task=spec["task"],
        names=names,
        schema=schema,
    )


def _from_builtin(name: str, opts: _Options) -> Data:
    if name == "digits":
        train, test = _builtin.digits(
            layout=opts.layout, test_size=opts.test_size, seed=opts.seed
        )
        classes, task, extra = (
            list(range(10)),
            "classification",
            {"layout": opts.layout},
        )
    else:
        train, test = _builtin.sunspots(
            window=opts.window or 24, horizon=opts.horizon, test_size=opts.test_size
        )
        classes, task, extra = (
            None,
            "regression",
            {"window": opts.window or 24, "horizon": opts.horizon},
        )
    schema = {
        "kind": "builtin",
        "source": name,
        "target": None,
        "task": task,
        "classes": classes,
        "feature_names": None,
        "input_shape": list(train[0].shape[1:]),
        "test_size": opts.test_size,
        "seed": opts.seed,
        **extra,
    }
    rows = (np.arange(len(train[0])), np.arange(len(test[0])))
    if opts.as_dataset:
        train, test = _to_datasets(train, test, opts)
    return Data(
        train,
        test,
        classes=classes,
        feature_names=None,
        task=task,
        schema=schema,
        rows=rows,
    )
