"""A training run's folder and its run.json: what kdl.train records and reads back.

The folder policy itself (move aside, never delete; atomic writes) is
:mod:`kdl._files`'; this module knows what a *run* folder holds.
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
from pathlib import Path

import numpy as np

from kdl import _files
from kdl.backend import keras, tf

__all__ = [
    "RUN_JSON",
    "HISTORY_PNG",
    "DEFAULT_ROOT",
    "default_run_dir",
    "run_state",
    "describe_data",
    "new_record",
    "results",
    "now",
]

RUN_JSON = "run.json"
HISTORY_PNG = "history.png"
DEFAULT_ROOT = "saved_models"


def now() -> str:
    """The local time as ``YYYY-mm-ddTHH:MM:SS``, for run.json."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def default_run_dir(model_name: str) -> Path:
    """``saved_models/<model name>-<date>-<time>`` in the current folder, unused."""
    base = Path.cwd() / DEFAULT_ROOT / f"{model_name}-{_files.timestamp()}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def run_state(run_dir: Path) -> str:
    """'new', 'unfinished', 'finished' or 'foreign' (not a kdl run folder)."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "new"
    record = _files.read_json(run_dir / RUN_JSON)
    if record is None or "status" not in record:
        return "foreign"
    return "finished" if record["status"] == "finished" else "unfinished"


def _shapes(data, leaves: list):
    if isinstance(data, tf.data.Dataset):
        return str(data.element_spec)
    if len(leaves) == 1 and leaves[0] is data:
        return list(np.shape(data))
    return tf.nest.map_structure(lambda a: list(np.shape(a)), data)


def _hash_update(digest, leaves) -> None:
    for leaf in leaves:
        array = np.ascontiguousarray(
            leaf.numpy() if isinstance(leaf, tf.Tensor) else np.asarray(leaf)
        )
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B") if array.size else b"")


def describe_data(x, y, info, validation_parts) -> dict:
    """The "data" entry of run.json: shapes and a SHA-256 of the arrays.

    Args:
        x, y: the training data as given.
        info: the ``DataInfo`` of ``kdl._validation.check_data``.
        validation_parts: None, a dataset, or a list of ``(part, leaves)``
            for each array part of the validation tuple.

    The hash is None when any part is a ``tf.data.Dataset``: a dataset is not
    read twice (it may be a stream).
    """
    digest = hashlib.sha256()
    record = {"x": _shapes(x, info.x_leaves), "y": None, "validation": None}
    _hash_update(digest, info.x_leaves)
    if y is not None and not info.is_dataset:
        record["y"] = _shapes(y, info.y_leaves)
        _hash_update(digest, info.y_leaves)
    hashable = not info.is_dataset
    if isinstance(validation_parts, tf.data.Dataset):
        record["validation"] = _shapes(validation_parts, [])
        hashable = False
    elif validation_parts is not None:
        record["validation"] = [_shapes(p, leaves) for p, leaves in validation_parts]
        for _, leaves in validation_parts:
            _hash_update(digest, leaves)
    record["sha256"] = digest.hexdigest() if hashable else None
    return record


def _versions() -> dict:
    import kdl

    return {
        "kdl": kdl.__version__,
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def new_record(model, *, seed, arguments: dict, data: dict) -> dict:
    """The run.json of a run that has not started yet."""
    return {
        "status": "running",
        "started": now(),
        "versions": _versions(),
        "seed": seed,
        "arguments": arguments,
        "model": {"name": model.name, "parameters": int(model.count_params())},
        "data": data,
        "sessions": [],
    }


def _finite(value: float):
    """JSON has no NaN or infinity: those become strings."""
    return value if math.isfinite(value) else str(value)


def results(history, monitor: str, epochs: int) -> dict:
    """The result fields of run.json: epochs, final and best metrics."""
    hist = history.history
    n = len(history.epoch)
    final = {k: _finite(float(vals[-1])) for k, vals in hist.items() if vals}
    result = {
        "epochs_completed": n,
        "stopped_early": n < epochs,
        "final_metrics": final,
        "best_epoch": None,
        "best_metrics": None,
    }
    values = hist.get(monitor)
    finite = [
        (i, float(x)) for i, x in enumerate(values or ()) if math.isfinite(float(x))
    ]
    if finite:
        pick = max if monitor.endswith(("acc", "accuracy", "auc")) else min
        i, _ = pick(finite, key=lambda item: item[1])
        result["best_epoch"] = int(history.epoch[i])
        result["best_metrics"] = {
            k: _finite(float(vals[i])) for k, vals in hist.items() if len(vals) > i
        }
    return result
