"""What kdl.datasets.load returns and the options it reads, shared by its readers.

Split from :mod:`kdl.datasets._load` (issue 27: no module over 600 lines).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from kdl import _validation as v
from kdl._constants import TASKS
from kdl.datasets import _builtin, _images

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
class Options:
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


def check_options(opts: Options) -> None:
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


def apply_schema(opts: Options) -> None:
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


def split(n: int, opts: Options, labels=None) -> tuple:
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


def to_datasets(train, test, opts: Options):
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


def package(x, y, rows, parts, opts: Options, *, classes, task, names, schema):
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
        train, test = to_datasets(train, test, opts)
    return Data(
        train,
        test,
        classes=classes,
        feature_names=names,
        task=task,
        schema=schema,
        rows=rows,
    )


def source_name(source) -> str:
    return (
        os.path.basename(str(source))
        if isinstance(source, (str, os.PathLike))
        else "arrays"
    )
