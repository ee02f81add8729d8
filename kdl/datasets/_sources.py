"""kdl.datasets.load's readers: tables, series, image folders, .npz, arrays, built-ins.

Split from :mod:`kdl.datasets._load` (issue 27: no module over 600 lines).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl.datasets import _builtin, _images, _table, _windows
from kdl.datasets._data import (
    FUNC,
    Data,
    Options,
    package,
    source_name,
    split,
    to_datasets,
)


def _table_columns(frame, opts: Options, path, *, has_target):
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


def from_table(path, opts: Options) -> Data:
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
    parts = split(len(x), opts, stratify)
    schema = {
        "kind": "table",
        "source": source_name(path),
        "target": opts.target,
        "columns": specs,
        "missing": opts.missing,
    }
    return package(
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


def _series_columns(frame, opts: Options, path) -> list:
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


def from_series_file(path, opts: Options) -> Data:
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
        schema={"kind": "series", "source": source_name(path), "target": target},
    )


def from_series_array(array, opts: Options) -> Data:
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


def _windowed(series, values, row_ids, opts: Options, *, names, schema) -> Data:
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
    return package(
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


def from_images(path, opts: Options) -> Data:
    path = Path(path)
    known = opts.schema["classes"] if opts.schema else None
    counts = _images.scan_folder(path, FUNC, classes=known)
    classes = list(known) if known else sorted(counts)
    task = opts.task or ("binary" if len(classes) == 2 else "classification")
    if task == "regression":
        v.fail(FUNC, "task", "'classification' or 'binary' for an image folder", task)

    def split_labels(labels):
        return split(len(labels), opts, labels)

    train, test, paths, parts = _images.read_folder(
        path,
        classes=classes,
        image_size=opts.image_size,
        color_mode=opts.color_mode,
        split=split_labels,
        as_dataset=opts.as_dataset,
        batch_size=opts.batch_size,
        seed=opts.seed,
    )
    rows = np.array([os.path.relpath(p, path) for p in paths])
    shape = [*opts.image_size, _images.CHANNELS[opts.color_mode]]
    schema = {
        "kind": "images",
        "source": source_name(path),
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


def _npz_arrays(path, opts: Options) -> dict:
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


def from_npz(path, opts: Options) -> Data:
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
        return from_arrays((x, y), opts, parts=parts, source_name=source_name(path))
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
    return from_arrays(
        (arrays[x_key], arrays[y_key]), opts, source_name=source_name(path)
    )


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


def from_arrays(pair, opts: Options, *, parts=None, source_name=None) -> Data:
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
        parts = split(len(x), opts, y if spec["classes"] else None)
    names = [f"x{i}" for i in range(x.shape[1])] if x.ndim == 2 else None
    schema = {"kind": "arrays", "source": source_name or "arrays", "target": None}
    return package(
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


def from_builtin(name: str, opts: Options) -> Data:
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
        train, test = to_datasets(train, test, opts)
    return Data(
        train,
        test,
        classes=classes,
        feature_names=None,
        task=task,
        schema=schema,
        rows=rows,
    )
