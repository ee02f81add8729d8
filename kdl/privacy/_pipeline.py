"""Examples are the unit of privacy: what a private fit can count (issue 30).

- :func:`uncountable_ops` finds the operations of a ``tf.data`` pipeline
  after which kdl cannot count the distinct private examples by hashing the
  rows the pipeline yields. kdl counts only pipelines that pass the rows of
  an in-memory source (``from_tensor_slices``, ``from_tensors``) through
  unchanged: ``shuffle``, ``batch``, ``prefetch``, ``cache``, ``take``,
  ``skip``, ``filter``, ``shard``, ``zip``, options. Every other operation
  is refused unless the caller gives ``num_examples=``: ``repeat``,
  ``concatenate``, ``flat_map``, ``interleave`` and sampling can yield one
  example several times per pass; a ``map`` (or a ``range``, a generator,
  files) can turn one example into several distinct rows (a source that
  repeats rows before an augmenting ``map``, ``range(400).map(lambda i:
  gather(x, i % 40))``), so hashing the rows it yields would count one
  person several times and understate epsilon. No program can count the
  distinct examples behind an arbitrary ``map``, so kdl does not try: a
  ``map`` that is one-to-one (normalization) is refused too, and the caller
  gives ``num_examples``. The pipeline's own graph
  (``tf.raw_ops.DatasetToGraphV2``) says which operations it has.
- :func:`check_overlap` refuses validation data that shares rows with the
  training data: selecting weights on it would select on training data
  without DP-SGD's noise.

A light module (no TensorFlow Privacy).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from kdl import _validation as v
from kdl.backend import keras, tf

__all__ = [
    "uncountable_ops",
    "refuse_uncountable",
    "check_overlap",
    "row_prints",
    "row_hashes",
    "most_copies",
]

# tf.data kernels (version suffix V2, V3, ... dropped) that yield the rows of
# an in-memory source unchanged, each row at most once per pass: hashing the
# rows such a pipeline yields counts its distinct examples.
_PASS_THROUGH = frozenset(
    {
        "TensorSliceDataset", "TensorDataset", "ShuffleDataset", "BatchDataset",
        "PaddedBatchDataset", "ParallelBatchDataset", "RebatchDataset",
        "PrefetchDataset", "CacheDataset", "TakeDataset", "SkipDataset",
        "FilterDataset", "ShardDataset", "ZipDataset", "OptionsDataset",
        "ModelDataset", "MaxIntraOpParallelismDataset",
        "ExperimentalMaxIntraOpParallelismDataset", "PrivateThreadPoolDataset",
        "ExperimentalPrivateThreadPoolDataset", "AssertCardinalityDataset",
        "FinalizeDataset", "AssertNextDataset", "ExperimentalAssertNextDataset",
    }
)  # fmt: skip


def _dataset_ops(dataset) -> list[str] | None:
    """The tf.data operations of ``dataset``'s pipeline (None: unreadable,
    e.g. a generator's Python function)."""
    from tensorflow.core.framework import graph_pb2

    try:
        variant = tf.data.experimental.to_variant(dataset)
        graph = graph_pb2.GraphDef.FromString(
            tf.raw_ops.DatasetToGraphV2(input_dataset=variant).numpy()
        )
    except (tf.errors.OpError, ValueError, TypeError):
        return None
    ops = [node.op for node in graph.node]
    for function in graph.library.function:  # datasets made inside functions
        ops += [node.op for node in function.node_def]
    return [op for op in ops if "Dataset" in op]


def uncountable_ops(dataset) -> list[str]:
    """The operations of ``dataset``'s pipeline after which kdl cannot count
    its distinct examples (empty: the rows it yields are the source's)."""
    ops = _dataset_ops(dataset)
    if ops is None:
        return ["an operation tf.data cannot serialize (e.g. from_generator)"]
    return sorted({op for op in ops if re.sub(r"V\d+$", "", op) not in _PASS_THROUGH})


def refuse_uncountable(func, ops) -> None:
    v.fail(
        func,
        "x",
        "a tf.data pipeline whose examples kdl can count as distinct (the rows "
        "of from_tensor_slices or from_tensors through shuffle, batch, "
        "prefetch, cache, take, skip, filter, shard or zip only), or "
        "num_examples= (the number of distinct private examples, which the "
        "statement records as given): its "
        + ", ".join(ops)
        + " can yield one example several times per pass or turn one example "
        "into several distinct rows (repeat(3), an augmented copy "
        "concatenated, a map over repeated rows or over range), so counting "
        "its rows could count one person as several examples and understate "
        "epsilon",
        "a pipeline with " + ", ".join(ops),
    )


def row_prints(leaves) -> np.ndarray:
    """A 64-bit fingerprint of each row (all leaves of the row together), one
    per row in order, repeats included (int64).

    Numeric rows are hashed in one vectorized call, TensorFlow's
    ``tf.fingerprint`` (farmhash64) over each row's bytes: fast enough for
    every private fit (issue 30's speed goal). Two rows with the same 64-bit
    fingerprint would count as one example: fewer examples, a larger epsilon,
    never a smaller one. Other rows (strings) are hashed one by one (BLAKE2b,
    64 bits, so that every fingerprint fits the saved form: issue 30, third
    round).
    """
    if not leaves or not int(np.shape(leaves[0])[0]):
        return np.zeros([0], np.int64)
    leaves = [_as_model_sees(leaf) for leaf in leaves]
    n = int(leaves[0].shape[0])
    if all(leaf.dtype.kind in "fi" for leaf in leaves):
        rows = np.concatenate(
            [np.ascontiguousarray(leaf).reshape(n, -1).view(np.uint8)
             .reshape(n, -1) for leaf in leaves],
            axis=1,
        )  # fmt: skip
        prints = tf.fingerprint(tf.constant(rows)).numpy()
        return prints.view(np.int64).ravel()
    prints = np.zeros([n], np.int64)
    for i in range(n):
        digest = hashlib.blake2b(digest_size=8)
        for leaf in leaves:
            digest.update(np.ascontiguousarray(leaf[i]).tobytes())
        prints[i] = np.frombuffer(digest.digest(), np.int64)[0]
    return prints


def row_hashes(leaves) -> set:
    """The distinct row fingerprints of ``leaves`` (see :func:`row_prints`)."""
    return set(row_prints(leaves).tolist())


def most_copies(prints: np.ndarray) -> int:
    """The largest number of times one fingerprint occurs (0 for none)."""
    if not len(prints):
        return 0
    return int(np.unique(prints, return_counts=True)[1].max())


def _as_model_sees(leaf) -> np.ndarray:
    """Values as the model reads them, so that rows equal to the model hash
    alike: every number as float32 with -0.0 made 0.0 (a float64 copy of a
    row plus 1e-12, or its labels as int64 or float32, are the same example)."""
    leaf = np.asarray(leaf)
    if leaf.dtype.kind in "fiub":
        # One form for every number (hostile review, third round: a label as
        # int64 in one call and float32 in the next was two examples): the
        # float32 the model computes with. Integers beyond 2**24 may merge,
        # which only makes fewer, more often sampled examples (conservative).
        return leaf.astype(np.float32) + np.float32(0.0)
    return leaf


def _validation_rows(x, y, info, validation_split, validation_data) -> set:
    """Row fingerprints of the validation data (x and y, as for training)."""
    if validation_data is None and validation_split and not info.is_dataset:
        start = int(np.floor(info.num_examples * (1.0 - validation_split)))
        leaves = [np.asarray(t) for t in tf.nest.flatten(x)]
        leaves += [np.asarray(t) for t in tf.nest.flatten(y)]
        return row_hashes([leaf[start:] for leaf in leaves])
    if validation_data is None:
        return set()
    if isinstance(validation_data, tf.data.Dataset):
        rows = set()
        for batch in validation_data:
            vx, vy, _ = keras.utils.unpack_x_y_sample_weight(batch)
            rows |= row_hashes(_arrays(vx, vy))
        return rows
    vx, vy = validation_data[0], validation_data[1]
    return row_hashes(_arrays(vx, vy))


def _arrays(x, y) -> list:
    leaves = [np.asarray(t) for t in tf.nest.flatten(x)]
    return leaves + ([] if y is None else [np.asarray(t) for t in tf.nest.flatten(y)])


def check_overlap(func, train_rows, x, y, info, validation_split, validation_data):
    """Refuses validation rows (features and target) also in the training data."""
    rows = _validation_rows(x, y, info, validation_split, validation_data)
    shared = len(rows & train_rows)
    if shared:
        v.fail(
            func,
            "validation_data",
            "held-out data for a private model, sharing no example with the "
            f"training data: {shared} validation row(s) are also training rows, "
            "so selecting weights or stopping on them selects on training data "
            "without DP-SGD's noise, which the privacy accounting does not cover",
            f"{len(rows)} validation rows, {shared} of them training rows",
        )
