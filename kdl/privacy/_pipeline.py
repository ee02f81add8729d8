"""Examples are the unit of privacy: what a private fit can count (issue 30).

- :func:`copying_ops` finds the operations of a ``tf.data`` pipeline that
  can yield one example more than once per pass (``repeat``,
  ``concatenate``, ``flat_map``, ``interleave``, sampling from several
  datasets): after an augmenting ``map`` the copies differ, so counting
  distinct rows would count one person several times. The pipeline's own
  graph (``tf.raw_ops.DatasetToGraphV2``) says which operations it has.
- :func:`check_overlap` refuses validation data that shares rows with the
  training data: selecting weights on it would select on training data
  without DP-SGD's noise.

A light module (no TensorFlow Privacy).
"""

from __future__ import annotations

import hashlib

import numpy as np

from kdl import _validation as v
from kdl.backend import keras, tf

__all__ = ["copying_ops", "refuse_copies", "check_overlap", "row_hashes"]

# tf.data kernels that can yield an element of their input more than once
# per pass, or mix several inputs (prefix match: V2, V3, ... variants).
_COPYING = (
    "RepeatDataset",
    "ConcatenateDataset",
    "FlatMapDataset",
    "InterleaveDataset",
    "ParallelInterleaveDataset",
    "LegacyParallelInterleaveDataset",
    "DirectedInterleaveDataset",
    "ExperimentalDirectedInterleaveDataset",
    "ChooseFastestBranchDataset",
    "SampleFromDatasets",
)


def copying_ops(dataset) -> list[str]:
    """The operations of ``dataset``'s pipeline that may copy examples."""
    from tensorflow.core.framework import graph_pb2

    variant = tf.data.experimental.to_variant(dataset)
    graph = graph_pb2.GraphDef.FromString(
        tf.raw_ops.DatasetToGraphV2(input_dataset=variant).numpy()
    )
    ops = [node.op for node in graph.node]
    for function in graph.library.function:  # the datasets made inside map fns
        ops += [node.op for node in function.node_def]
    return sorted({op for op in ops if op.startswith(_COPYING)})


def refuse_copies(func, copies) -> None:
    v.fail(
        func,
        "x",
        "a tf.data pipeline whose examples kdl can count as distinct, or "
        "num_examples= (the number of distinct private examples, which the "
        "statement records as given): its "
        + ", ".join(copies)
        + " can yield one example several times per pass (e.g. repeat(3) or "
        "an augmented copy concatenated), so counting its rows would count one "
        "person as several examples and understate epsilon",
        "a pipeline with " + ", ".join(copies),
    )


def row_hashes(leaves) -> set:
    """A 16-byte hash of each row (all leaves of the row together)."""
    seen = set()
    n = int(np.shape(leaves[0])[0]) if leaves else 0
    leaves = [_as_model_sees(leaf) for leaf in leaves]
    for i in range(n):
        digest = hashlib.blake2b(digest_size=16)
        for leaf in leaves:
            digest.update(np.ascontiguousarray(leaf[i]).tobytes())
        seen.add(digest.digest())
    return seen


def _as_model_sees(leaf) -> np.ndarray:
    """Values as the model reads them, so that rows equal to the model hash
    alike: floats as float32 with -0.0 made 0.0, integers and booleans as int64
    (a float64 copy of a row plus 1e-12 is the same example)."""
    leaf = np.asarray(leaf)
    if leaf.dtype.kind == "f":
        return leaf.astype(np.float32) + np.float32(0.0)
    if leaf.dtype.kind in "iub":
        return leaf.astype(np.int64)
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
