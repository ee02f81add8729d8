"""What a .tflite file says about itself: kdl's metadata, and the labels' checks."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kdl import _arrays
from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.export import _signatures as sig
from kdl.export import _tflite_metadata as meta
from kdl.export._graph import fixed_batch

RUN_JSON = "run.json"  # kdl.training.RUN_JSON, the record of a kdl.train run


def _meaning(kind: str, shape: list) -> str:
    size = shape[-1]
    if kind == "classification" and len(shape) > 2:
        return f"per-position probabilities of {size} tokens (softmax); argmax"
    if kind == "classification":
        return f"probabilities of {size} classes (softmax); the class is the argmax"
    if kind == "binary":
        return "probability of the positive class (sigmoid); positive above 0.5"
    return f"{size} real value(s) (linear)"


def _preprocessing(model, note: str | None) -> dict:
    inside = sig.has_layer(model, (keras.layers.Normalization, keras.layers.Rescaling))
    if note is None:
        note = (
            "Normalization is inside the model: feed raw inputs."
            if inside
            else "None recorded: feed inputs prepared as for training (the "
            "model holds no Normalization layer)."
        )
    return {"preprocessing": note, "normalization_in_model": inside}


def _versions() -> dict:
    from importlib import metadata

    from kdl import __version__

    versions = {
        "kdl": __version__,
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": np.__version__,
    }
    try:
        versions["ai_edge_litert"] = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        pass
    return versions


def _run_record(model, run_dir) -> dict | None:
    """The kdl.train run the model came from: its folder and run.json's SHA-256.

    Without ``run_dir``, the folder kdl.train recorded on the History it
    returned (``model.history.run_dir``, Keras keeps the last History there).
    """
    if run_dir is None:
        run_dir = getattr(getattr(model, "history", None), "run_dir", None)
    record = None if run_dir is None else Path(run_dir) / RUN_JSON
    if record is None or not record.is_file():
        return None
    digest = hashlib.sha256(record.read_bytes()).hexdigest()
    return {"run_dir": str(run_dir), "run_json_sha256": digest}


def _privacy_record(model) -> dict | None:
    """Epsilon and delta of a model from ``kdl.privacy.make_private``.

    From ``kdl.privacy.statement(model)``, which accounts for the training
    the model actually had; when the statement cannot be made (the model
    recorded no training), epsilon is None and "note" says why.
    """
    if not hasattr(model, "privacy"):  # cheap test before importing kdl.privacy
        return None
    from kdl import privacy

    if not privacy.is_private(model):
        return None
    params = privacy.privacy_params(model)
    record = {
        "epsilon": None,
        "delta": params.get("delta"),
        "noise_multiplier": params.get("noise_multiplier"),
        "l2_norm_clip": params.get("l2_norm_clip"),
    }
    try:
        result = privacy.statement(model)
    except ValueError as error:
        return {**record, "note": f"no privacy statement: {error}"}
    return {**record, **_json_ready(result.to_dict())}


def _json_ready(values: dict) -> dict:
    return {
        k: value
        for k, value in values.items()
        if value is None or isinstance(value, (str, int, float, bool))
    }


def file_description(model, job) -> dict:
    """The metadata of the file (without the check, which comes after)."""
    kinds = sig.output_kinds(model)
    shapes = sig.output_shapes(model)
    outputs = [
        {
            "name": name,
            "shape": shapes[name],
            "kind": kinds[name],
            "meaning": _meaning(kinds[name], shapes[name]),
        }
        for name in sig.output_names(model)
    ]
    inputs = [
        {"name": name, "shape": [None, *shape], "dtype": np.dtype(dtype).name}
        for name, dtype, shape in job.specs
    ]
    return {
        "format": meta.NAME,
        "version": meta.FORMAT_VERSION,
        "model": model.name,
        "task": next(iter(kinds.values())) if len(kinds) == 1 else "multitask",
        "inputs": inputs,
        "outputs": outputs,
        "kinds": kinds,
        "labels": job.labels,
        **_preprocessing(model, job.preprocessing),
        "quantization": job.quantization,
        "integer_io": job.integer_io,
        "per_channel": job.per_channel,
        "batch_size": fixed_batch(model),
        "versions": _versions(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": _run_record(model, job.run_dir),
        "privacy": _privacy_record(model),
    }


def check_labels(labels, model, func: str) -> dict | None:
    """``labels`` as {output name: [class names]}, checked against the outputs."""
    if labels is None:
        return None
    shapes = sig.output_shapes(model)
    classes = {
        name: shapes[name][-1] if kind == "classification" else 2
        for name, kind in sig.output_kinds(model).items()
        if kind != "regression"
    }
    if not classes:
        v.fail(
            func,
            "labels",
            "None: the model has no classification output",
            type(labels).__name__,
        )
    if isinstance(labels, dict):
        given = {_arrays.safe_name(k): value for k, value in labels.items()}
        if not given or set(given) - set(classes):
            v.fail(
                func,
                "labels",
                f"a dict whose keys are classification outputs {sorted(classes)}",
                sorted(labels),
            )
    elif len(classes) == 1:
        given = {next(iter(classes)): labels}
    else:
        v.fail(
            func,
            "labels",
            "a dict {output: class names} (the model has "
            f"{len(classes)} classification outputs {sorted(classes)})",
            type(labels).__name__,
            error=TypeError,
        )
    return {
        name: _class_names(value, classes[name], name, func)
        for name, value in given.items()
    }


def _class_names(value, size: int, output: str, func: str) -> list:
    requirement = f"a list of {size} class names (str or int) for output {output!r}"
    if isinstance(value, (str, bytes)) or not isinstance(
        value, (list, tuple, np.ndarray)
    ):
        v.fail(func, "labels", requirement, value, error=TypeError)
    names = np.asarray(value).tolist()
    if not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names):
        v.fail(func, "labels", requirement, value, error=TypeError)
    if len(names) != size:
        v.fail(func, "labels", requirement, f"{len(names)} names")
    return names
