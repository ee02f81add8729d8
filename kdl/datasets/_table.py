"""A CSV table as numeric features and integer classes (pandas; no TensorFlow).

Rules (the README repeats them):

- Numeric columns are used as they are (booleans become 0/1).
- Text columns are one-hot encoded: one feature ``"<column>=<value>"`` per
  value seen in the training file, values sorted. A value that the training
  file did not have is refused when new data is encoded with the schema.
  More than ``MAX_CATEGORIES`` values is refused (an id or free-text column:
  leave it out with ``features=``).
- A text column whose values are mostly numbers is a numeric column with a
  typo: refused, naming the column, the row and the value.
- Missing values (empty cells, "NA", "NaN") are refused naming the column and
  the row; ``missing="drop"`` drops such rows instead.
- Rows are numbered from 1 (the first data row; line 2 of the file, after the
  header).
"""

from __future__ import annotations

import numpy as np

from kdl import _validation as v

__all__ = [
    "MAX_CATEGORIES",
    "MAX_CLASSES",
    "read_csv",
    "check_missing",
    "column_specs",
    "encode_features",
    "target_spec",
    "encode_target",
    "class_key",
]

MAX_CATEGORIES = 100
# An integer target with at most this many values is a class label.
MAX_CLASSES = 50


def _where(index) -> str:
    return f"row {index + 1} (line {index + 2} of the file)"


def read_csv(path, func: str):
    """The file as a pandas DataFrame; a file pandas cannot read is a ValueError."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        v.fail(
            func, "path", "a CSV file with a header and rows (it is empty)", str(path)
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())[:160]
        v.fail(func, "path", f"a readable CSV file ({reason})", str(path))
    if len(frame) == 0:
        v.fail(func, "path", "a CSV file with at least one data row", str(path))
    return frame.reset_index(drop=True)


def check_columns(frame, names, arg: str, func: str, path) -> None:
    """Every name must be a column of ``frame``."""
    missing = [n for n in names if n not in frame.columns]
    if missing:
        columns = ", ".join(repr(c) for c in frame.columns[:20])
        v.fail(
            func,
            arg,
            f"column names of {path} (its columns: {columns})",
            missing[0] if len(missing) == 1 else missing,
        )


def check_missing(frame, columns, missing: str, func: str, path):
    """Refuses (or drops, with ``missing="drop"``) rows with an empty cell."""
    empty = frame[list(columns)].isna()
    if not empty.to_numpy().any():
        return frame
    if missing == "drop":
        keep = ~empty.any(axis=1)
        if not keep.any():
            v.fail(
                func,
                "missing",
                f"'error' here: every row of {path} has an empty cell",
                missing,
            )
        return frame[keep]
    row = int(np.argmax(empty.any(axis=1).to_numpy()))
    index = frame.index[row]
    column = next(c for c in columns if empty.loc[index, c])
    v.fail(
        func,
        "path",
        f"a CSV file with a value in every cell of column "
        f"{column!r}: {_where(index)} is empty (pass missing='drop' to drop "
        "such rows)",
        str(path),
    )


def _first_bad_number(col):
    import pandas as pd

    parsed = pd.to_numeric(col, errors="coerce")
    bad = parsed.isna() & col.notna()
    return parsed, bad


def _numeric_failure(col, bad, name, func, path):
    index = bad.index[int(np.argmax(bad.to_numpy()))]
    v.fail(
        func,
        "path",
        f"a CSV file whose column {name!r} holds numbers: "
        f"{_where(index)} holds {col[index]!r}",
        str(path),
    )


def column_spec(col, name: str, func: str, path) -> dict:
    """How one feature column is encoded: numeric, or categorical with its values."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return {"name": name, "kind": "numeric"}
    _, bad = _first_bad_number(col)
    if 0 < bad.sum() and bad.sum() * 2 < col.notna().sum():
        _numeric_failure(col, bad, name, func, path)
    categories = sorted(col.dropna().astype(str).unique())
    if len(categories) > MAX_CATEGORIES:
        v.fail(
            func,
            "features",
            f"columns with at most {MAX_CATEGORIES} distinct "
            f"text values; column {name!r} of {path} has {len(categories)} "
            "(leave such a column out with features=[...])",
            name,
        )
    return {"name": name, "kind": "categorical", "categories": categories}


def column_specs(frame, names, func: str, path) -> list:
    return [column_spec(frame[n], n, func, path) for n in names]


def encode_features(frame, specs, func: str, path):
    """The features as a float32 array (rows, features) and their names."""
    parts, names = [], []
    for spec in specs:
        name = spec["name"]
        col = frame[name]
        if spec["kind"] == "numeric":
            parsed, bad = _first_bad_number(
                col.astype(object) if col.dtype == bool else col
            )
            if bad.any():
                _numeric_failure(col, bad, name, func, path)
            parts.append(parsed.to_numpy("float32")[:, None])
            names.append(name)
            continue
        categories = spec["categories"]
        values = col.astype(str).to_numpy()
        unknown = ~np.isin(values, categories)
        if unknown.any():
            index = col.index[int(np.argmax(unknown))]
            v.fail(
                func,
                "path",
                f"a CSV file whose column {name!r} holds only "
                f"the values the model was trained on ({categories[:10]}): "
                f"{_where(index)} holds {values[np.argmax(unknown)]!r}",
                str(path),
            )
        parts.append(
            (values[:, None] == np.array(categories)[None, :]).astype("float32")
        )
        names += [f"{name}={c}" for c in categories]
    x = np.concatenate(parts, axis=1) if parts else np.zeros((len(frame), 0))
    return x.astype("float32"), names


def class_key(value) -> str:
    """A class value as text, the same for 3, 3.0, np.int64(3) and "3"."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer():
        return str(int(number))
    return repr(number)


def _native(value):
    return value.item() if isinstance(value, np.generic) else value


def target_spec(col, task, func: str, name) -> dict:
    """The task of a target column and, for classes, their sorted values."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    values = col.dropna()
    if task is None:
        integral = numeric and np.all(np.mod(values.to_numpy("float64"), 1) == 0)
        is_int = pd.api.types.is_integer_dtype(col) or (
            integral and values.nunique() <= MAX_CLASSES
        )
        if numeric and not (is_int and values.nunique() <= MAX_CLASSES):
            task = "regression"
        else:
            task = "binary" if values.nunique() == 2 else "classification"
    if task == "regression":
        if not numeric:
            v.fail(
                func,
                "task",
                f"'classification' or 'binary' for the text target {name!r}",
                task,
            )
        return {"task": task, "classes": None}
    classes = sorted(
        {class_key(x): _native(x) for x in values}.values(),
        key=lambda c: (not isinstance(c, (int, float)), c),
    )
    if len(classes) < 2:
        v.fail(func, "target", "a column with at least two classes", name)
    if task == "binary" and len(classes) != 2:
        v.fail(func, "task", f"'classification' for {len(classes)} classes", task)
    return {"task": task, "classes": classes}


def encode_target(col, spec, func: str, path, name):
    """Class indices (int64, shape (n,)) or values (float32, shape (n, 1))."""
    if spec["classes"] is None:
        parsed, bad = _first_bad_number(col)
        if bad.any():
            _numeric_failure(col, bad, name, func, path)
        return parsed.to_numpy("float32")[:, None]
    index = {class_key(c): i for i, c in enumerate(spec["classes"])}
    keys = [class_key(x) for x in col]
    unknown = [i for i, k in enumerate(keys) if k not in index]
    if unknown:
        row = col.index[unknown[0]]
        v.fail(
            func,
            "target",
            f"a column holding the model's classes "
            f"({spec['classes'][:10]}); {_where(row)} of {path} holds "
            f"{col[row]!r}",
            name,
        )
    return np.array([index[k] for k in keys], dtype="int64")
