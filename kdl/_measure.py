"""How kdl.report measures one variant: size, latency, accuracy, counts.

Split from :mod:`kdl.report` (issue 27: no module over 600 lines). A Keras
model is measured in TensorFlow, a ``.tflite`` file in LiteRT.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kdl import _arrays, export
from kdl.backend import tf
from kdl.export import _signatures as sig


def _gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, 9))


class _DropRetracingWarning(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning.

    TensorFlow keys its retracing detector by a function's code, which every
    model's Keras ``predict_function`` (and the latency function below)
    shares: measuring a few models in a row, each traced once, looks to it
    like one function retraced in a loop (issue 13).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def no_retracing_warning():
    logger, dropper = tf.get_logger(), _DropRetracingWarning()
    logger.addFilter(dropper)
    try:
        yield
    finally:
        logger.removeFilter(dropper)


def _counts(model) -> dict:
    """Parameters and multiply-adds per example of a Keras model."""
    from kdl.compression import multiply_adds

    return {
        "parameters": int(model.count_params()),
        "multiply_adds": multiply_adds(model)["total"],
    }


# === Measuring one variant ===


def measure_keras(model, x, y, *, latency_samples: int, warmup: int = 5) -> dict:
    specs = sig.input_specs(model, "kdl.report.compare")
    inputs = _arrays.as_inputs(specs, x, "kdl.report.compare", "x")
    values = list(inputs.values())
    predictions = sig.keras_outputs(model, inputs)
    kinds = sig.output_kinds(model)
    names = sig.output_names(model)
    labels = (
        {_arrays.safe_name(k): value for k, value in y.items()}
        if isinstance(y, dict)
        else {names[0]: y}
    )
    result = {}
    for name in names:
        rows = _arrays.metric_rows(kinds[name], predictions[name], labels[name])
        for metric, value in rows.items():
            result[metric if len(names) == 1 else f"{name}_{metric}"] = value

    with tempfile.TemporaryDirectory(prefix="kdl-report-") as tmp:
        weights = os.path.join(tmp, "weights.h5")
        model.save_weights(weights)
        with open(weights, "rb") as f:
            data = f.read()
    result["bytes"], result["gzip_bytes"] = len(data), _gzip_size(data)

    call = tf.function(
        lambda *args: model(args[0] if len(args) == 1 else list(args), training=False)
    )
    count = len(values[0])
    times = []
    for i in range(min(latency_samples, count) + warmup):
        j = (i - warmup) % count
        one = [tf.constant(value[j : j + 1]) for value in values]
        start = time.perf_counter()
        call(*one)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    result["latency_ms_median"] = float(np.median(times)) if times else None
    result["latency_ms_p90"] = float(np.percentile(times, 90)) if times else None
    return {**result, **_counts(model)}


def measure_tflite(path, x, y, *, latency_samples: int, source=None) -> dict:
    result = export.evaluate_tflite(path, x, y, latency_samples=latency_samples)
    data = Path(path).read_bytes()
    result["gzip_bytes"] = _gzip_size(data)
    result.update(_litert_profile(data))
    counts = {"parameters": None, "multiply_adds": None}
    return {**result, **(counts if source is None else _counts(source))}


def litert_version() -> str:
    from kdl import profiling

    return profiling.litert_version()


def _litert_profile(data: bytes) -> dict:
    """All-threads latency, XNNPACK's share of the ops, the slowest op."""
    from kdl import profiling

    result = profiling.profile(data, rounds=7, per_round=10)
    builtin = [op["op"] for op in result["op_profile"] if not op["delegated"]]
    slowest = profiling.slowest(result, 1)
    return {
        "latency_ms_all_threads": list(result["latency_ms"].values())[-1],
        "delegated": f"{result['delegated']}/{result['ops']}"
        + (f" (not {', '.join(builtin)})" if builtin else ""),
        "slowest_op": (
            f"{slowest[0]['op']} {slowest[0]['share']:.0%}" if slowest else None
        ),
        "litert": result["litert"],
    }
