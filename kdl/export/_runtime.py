"""kdl.export.load_tflite and evaluate_tflite: a .tflite file run in LiteRT."""

from __future__ import annotations

import time

import numpy as np

from kdl import _arrays, lite
from kdl import _validation as v
from kdl._constants import TASKS


def load_tflite(path, *, num_threads: int | None = None) -> lite.LiteModel:
    """Loads a .tflite file into the LiteRT interpreter (with :func:`kdl.lite.load`).

    Args:
        path: str or os.PathLike. The .tflite file.
        num_threads: int or None. Interpreter threads. Defaults to `None`
            (LiteRT's choice).

    Returns:
        A :class:`kdl.lite.LiteModel` (also known as ``TFLiteModel``) with
        ``predict(x, batch_size=None)``, ``classify(x)`` and ``metadata``.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is not a TFLite flatbuffer, or is truncated.

    Example:
        >>> model = load_tflite("mlp_int8.tflite")  # doctest: +SKIP
        >>> model.predict(x_test).argmax(-1)  # doctest: +SKIP
    """
    func = "kdl.export.load_tflite"
    path = v.check_path(path, "path", func)
    num_threads = v.check_int(num_threads, "num_threads", func, allow_none=True)
    return lite.load(path, num_threads=num_threads)


def evaluate_tflite(
    path,
    x,
    y,
    *,
    task: str | None = None,
    batch_size: int | None = None,
    latency_samples: int = 100,
    warmup: int = 5,
    num_threads: int | None = 1,
) -> dict:
    """Measures a .tflite file's metrics and per-example latency in LiteRT.

    Metrics come from predictions over all of ``x``: accuracy for
    classification (for token sequences, label 0 counts as padding and is
    skipped) and binary outputs; mean absolute and squared error for
    regression. Latency is the wall time of single-example interpreter calls
    on the first ``latency_samples`` examples, after ``warmup`` calls, with
    ``num_threads`` threads (one by default, as on a small device).

    Args:
        path: str or os.PathLike. The .tflite file.
        x: array, list of arrays or dict. Inputs.
        y: array, or a dict {output name: array} for multi-output models.
        task: str or None. "classification", "binary" or "regression" for
            every output. Defaults to `None`: what kdl recorded in the file,
            else "classification" for outputs with more than one value.
        batch_size: int or None. Defaults to `None` (32, or the file's fixed
            batch).
        latency_samples: int. Examples timed one by one. Defaults to `100`.
        warmup: int. Untimed calls first. Defaults to `5`.
        num_threads: int or None. Interpreter threads. Defaults to `1`.

    Returns:
        dict: "accuracy" (or "mae" and "mse"; prefixed by the output name for
        multi-output models), "latency_ms_median", "latency_ms_p90", "bytes"
        (file size) and "examples".

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> evaluate_tflite("cnn_int8.tflite", x_test, y_test)  # doctest: +SKIP
        {'accuracy': 0.97, 'latency_ms_median': 0.05, ...}
    """
    func = "kdl.export.evaluate_tflite"
    if task is not None:
        v.check_choice(task, "task", func, TASKS)
    v.check_int(batch_size, "batch_size", func, allow_none=True)
    latency_samples = v.check_int(latency_samples, "latency_samples", func, min_value=0)
    warmup = v.check_int(warmup, "warmup", func, min_value=0)
    model = load_tflite(path, num_threads=num_threads)
    inputs = _arrays.as_inputs(model.input_specs(), x, func, "x")
    labels = _labels_by_output(y, model.output_names, _arrays.count(inputs), func)
    predictions = model.predict_dict(inputs, batch_size=batch_size)
    names = model.output_names
    result = {}
    for name in names:
        kind = task or model.kinds.get(name)
        if kind is None:
            kind = "classification" if predictions[name].shape[-1] > 1 else "regression"
        rows = _arrays.metric_rows(kind, predictions[name], labels[name])
        for metric, value in rows.items():
            result[metric if len(names) == 1 else f"{name}_{metric}"] = value
    result.update(_latency(model, inputs, latency_samples, warmup))
    result["bytes"] = model.size
    result["examples"] = _arrays.count(inputs)
    return result


def _labels_by_output(y, names: list, size: int, func: str) -> dict:
    """``y`` as {output name: labels}, checked against the outputs and ``x``."""
    if len(names) > 1:
        if not isinstance(y, dict) or sorted(map(_arrays.safe_name, y)) != sorted(
            names
        ):
            v.fail(
                func,
                "y",
                f"a dict with keys {names}",
                type(y).__name__,
                error=TypeError if not isinstance(y, dict) else ValueError,
            )
        labels = {_arrays.safe_name(k): value for k, value in y.items()}
    else:
        labels = {names[0]: y}
    for value in labels.values():
        if len(np.asarray(value)) != size:
            v.fail(
                func,
                "y",
                f"labels for the {size} examples of x",
                f"{len(np.asarray(value))} labels",
            )
    return labels


def _latency(model: lite.LiteModel, inputs: dict, samples: int, warmup: int) -> dict:
    """Median and 90th percentile of single-example interpreter calls, in ms."""
    size = _arrays.count(inputs)
    times = []
    for i in range(min(samples, size) + warmup):
        j = (i - warmup) % size
        one = {k: value[j : j + 1] for k, value in inputs.items()}
        if model.batch_size and model.batch_size > 1:
            one = {k: np.repeat(value, model.batch_size, 0) for k, value in one.items()}
        start = time.perf_counter()
        model.run(one)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    return {
        "latency_ms_median": float(np.median(times)) if times else None,
        "latency_ms_p90": float(np.percentile(times, 90)) if times else None,
    }
