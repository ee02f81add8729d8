"""The validation part of kdl.train and kdl.tune: stratified, random or the end.

Keras' ``validation_split`` validates on the *last* rows, unshuffled. On data
grouped by class (a CSV sorted by its label column) that is one class only,
and early stopping and the best checkpoint are then chosen on it (issue 23).
kdl therefore holds the validation part out itself, before ``fit``, with
scikit-learn's ``train_test_split`` (the library made for it):

- "stratified" for class targets: every class in its share, at random
  (seeded);
- "last" for series windows (3-D inputs with a non-class target): the last
  windows, so that validation lies after training in time, as the test part
  of :func:`kdl.datasets.load` does;
- "random" otherwise (regression tables, several inputs or outputs).

It keeps Keras' count: ``n - floor(n * (1 - fraction))`` examples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Holdout", "split", "choose_method", "METHODS"]

METHODS = ("stratified", "random", "last")


@dataclass
class Holdout:
    """The two parts and what run.json records about the split."""

    x: object
    y: object
    validation: tuple
    record: dict


def _leaves(value) -> list:
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _take(value, index):
    """``value`` (an array, or a list/tuple/dict of arrays) at ``index``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: _take(item, index) for k, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_take(item, index) for item in value)
    return np.asarray(value)[index]


def class_labels(y) -> np.ndarray | None:
    """The labels of a single class target (ints or bools, one per example)."""
    if y is None or isinstance(y, (Mapping, list, tuple)):
        return None
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        return None
    if labels.dtype == bool or np.issubdtype(labels.dtype, np.integer):
        return labels.astype("int64")
    if np.issubdtype(labels.dtype, np.floating) and np.isin(labels, (0, 1)).all():
        return labels.astype("int64")  # binary 0/1 targets stored as floats
    return None


def choose_method(x, y, task: str | None) -> str:
    """ "stratified", "last" or "random" for data of this kind (see the module).

    ``task`` is "classification" or "binary" when the model's head says so,
    "regression" when it says that, None when unknown (then integer labels
    count as classes).
    """
    classes = task in ("classification", "binary") or (
        task is None and class_labels(y) is not None
    )
    if classes and class_labels(y) is not None:
        return "stratified"
    if not isinstance(x, (Mapping, list, tuple)) and np.ndim(x) == 3:
        return "last"
    return "random"


def _indices(n: int, count: int, method: str, labels, seed: int, func: str):
    from sklearn.model_selection import train_test_split

    order = np.arange(n)
    if method == "last":
        return order[: n - count], order[n - count :]
    stratify = labels if method == "stratified" else None
    if stratify is not None:
        values, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2 or count < len(values):
            reason = (
                f"class {values[counts.argmin()]} has 1 example"
                if counts.min() < 2
                else f"{count} validation examples for {len(values)} classes"
            )
            warnings.warn(
                f"{func}: cannot stratify the validation split ({reason}); "
                "splitting at random instead.",
                UserWarning,
                stacklevel=4,
            )
            stratify = None
    train, validation = train_test_split(
        order, test_size=count, random_state=seed, stratify=stratify
    )
    return train, np.sort(validation)


def split(x, y, fraction: float, *, seed: int, task: str | None, func: str):
    """Holds out ``fraction`` of array data; returns a :class:`Holdout`.

    Warns when the validation part lacks a class the training part has.
    """
    n = len(np.asarray(_leaves(x)[0]))
    count = n - int(math.floor(n * (1.0 - fraction)))
    count = min(max(count, 1), n - 1)
    method = choose_method(x, y, task)
    labels = class_labels(y) if method == "stratified" else None
    train, validation = _indices(n, count, method, labels, seed, func)
    record = {
        "method": method,
        "fraction": fraction,
        "seed": seed if method != "last" else None,
        "examples": int(len(validation)),
    }
    labels = class_labels(y) if task != "regression" else None
    if labels is not None:
        missing = sorted(set(labels[train].tolist()) - set(labels[validation].tolist()))
        record["classes_missing"] = missing
        if missing:
            warnings.warn(
                f"{func}: the validation part ({len(validation)} examples) holds "
                f"no example of class {', '.join(map(str, missing))}; validation "
                "metrics, early stopping and the best checkpoint ignore it. "
                "Give more data or a larger validation_split.",
                UserWarning,
                stacklevel=3,
            )
    return Holdout(
        x=_take(x, train),
        y=_take(y, train),
        validation=(_take(x, validation), _take(y, validation)),
        record=record,
    )
