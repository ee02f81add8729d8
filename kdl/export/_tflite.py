"""kdl.export.to_tflite: a .tflite file, checked in LiteRT before it is written.

How the export works: the model is traced as ``model(x, training=False)``, so
augmentation layers (identity at inference) leave no op in the graph; models
with recurrent layers are traced with a fixed batch of one (the TFLite
converter needs static tensor-list shapes, docs/design.md#tflite), and their
files run one example at a time. The conversion itself runs in a separate
process (``_convert.py``): full int8 conversion of a GRU crashes the
converter with a segmentation fault, and that must not take the user's
process down.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from kdl import _arrays, lite
from kdl import _validation as v
from kdl._clustered import looks_clustered
from kdl._files import atomic_path
from kdl.backend import tf
from kdl.errors import UnsupportedModelError
from kdl.export import _convert
from kdl.export import _signatures as sig
from kdl.export import _tflite_metadata as meta
from kdl.export._describe import RUN_JSON, check_labels, file_description
from kdl.export._graph import fixed_batch, is_quantize_aware, say, serving_function

QUANTIZATIONS = (None, "dynamic", "float16", "int8")
SIGNATURE = lite.SIGNATURE
ConverterCrashError = _convert.ConverterCrashError
ConverterError = _convert.ConverterError
#: The object :func:`load_tflite` returns (kept under its first name).
TFLiteModel = lite.LiteModel


class ExportCheckError(RuntimeError, UnsupportedModelError):
    """An exported file disagreed with its Keras model in the LiteRT interpreter.

    Also an :class:`kdl.errors.UnsupportedModelError`: this model cannot be
    exported this way (e.g. at this quantization) within the tolerances.
    """


# === Arguments of to_tflite ===


@dataclasses.dataclass(frozen=True)
class _Job:
    """The checked arguments of one :func:`to_tflite` call."""

    path: Path
    specs: list
    quantization: str | None
    representative: dict | None
    check: dict
    synthetic: bool
    quantize_aware: bool
    integer_io: bool
    per_channel: bool
    atol: float
    min_agreement: float
    regression_tolerance: float
    labels: dict | None
    preprocessing: str | None
    run_dir: Path | None
    verbose: int
    per_channel_auto: bool = False  # per_channel=None chose per kernel

    @property
    def label(self) -> str:
        return self.quantization or "float"


def _check_run_dir(run_dir, func: str) -> Path | None:
    if run_dir is None:
        return None
    run_dir = v.check_path(run_dir, "run_dir", func)
    if not (run_dir / RUN_JSON).is_file():
        v.fail(
            func,
            "run_dir",
            f"a kdl.train run folder (holding {RUN_JSON})",
            str(run_dir),
        )
    return run_dir


def _check_data(
    model, specs, representative_data, check_data, quantization, func: str
) -> tuple:
    """(representative inputs or None, check inputs or None, quantize-aware)."""
    quantize_aware = is_quantize_aware(model)
    if quantization == "int8" and representative_data is None and not quantize_aware:
        v.fail(
            func,
            "representative_data",
            "input examples to calibrate int8 "
            "ranges when quantization='int8' (e.g. x_train[:200]), unless "
            "the model was trained with kdl.compression.quantize_aware",
            None,
        )
    representative = (
        None
        if representative_data is None
        else _arrays.as_inputs(specs, representative_data, func, "representative_data")
    )
    check = (
        None
        if check_data is None
        else _arrays.as_inputs(specs, check_data, func, "check_data")
    )
    for name, value in (representative or {}).items():
        # NaN or inf calibrate no range: the converter leaves the input
        # without scales and the file fails on the device, not here.
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad = int(np.size(value) - np.isfinite(value).sum())
            v.fail(
                func,
                "representative_data",
                "finite values (no NaN or inf) to calibrate int8 ranges",
                f"{bad} non-finite value(s) in input {name!r}",
            )
    return representative, check, quantize_aware


def _tflite_job(
    model,
    path,
    *,
    quantization,
    representative_data,
    check_data,
    check_samples,
    atol,
    min_agreement,
    regression_tolerance,
    integer_io,
    per_channel,
    labels,
    preprocessing,
    run_dir,
    verbose,
) -> _Job:
    """Checks every argument of :func:`to_tflite` before any work."""
    func = "kdl.export.to_tflite"
    v.check_keras_model(model, "model", func)
    path = v.check_path(path, "path", func, suffixes=(".tflite",))
    if quantization is not None:
        v.check_choice(quantization, "quantization", func, QUANTIZATIONS[1:])
    specs = sig.input_specs(model, func)
    representative, check, quantize_aware = _check_data(
        model, specs, representative_data, check_data, quantization, func
    )
    check_samples = v.check_int(check_samples, "check_samples", func)
    v.check_bool(integer_io, "integer_io", func)
    if integer_io and quantization != "int8":
        v.fail(func, "integer_io", "False unless quantization='int8'", integer_io)
    per_channel_auto = False
    if per_channel is None:  # issue 23: one scale per kernel for clustered models
        per_channel_auto = quantization in ("int8", "dynamic") and (
            looks_clustered(model)
        )
        per_channel = not per_channel_auto
    v.check_bool(per_channel, "per_channel", func)
    if not per_channel and quantization not in ("int8", "dynamic"):
        v.fail(
            func,
            "per_channel",
            "True unless quantization is 'int8' or 'dynamic' (only integer "
            "weights have scales)",
            per_channel,
        )
    check = representative if check is None else check
    synthetic = check is None
    if synthetic:
        check = sig.synthetic_inputs(model, specs, check_samples)
    return _Job(
        path=path,
        specs=specs,
        quantization=quantization,
        representative=representative,
        check=_arrays.take(check, check_samples),
        synthetic=synthetic,
        quantize_aware=quantize_aware,
        integer_io=integer_io,
        per_channel=per_channel,
        atol=v.check_float(atol, "atol", func, strict_min=True),
        min_agreement=v.check_float(
            min_agreement, "min_agreement", func, max_value=1.0
        ),
        regression_tolerance=v.check_float(
            regression_tolerance, "regression_tolerance", func, strict_min=True
        ),
        labels=check_labels(labels, model, func),
        preprocessing=v.check_str(
            preprocessing, "preprocessing", func, allow_none=True
        ),
        run_dir=_check_run_dir(run_dir, func),
        verbose=v.check_verbose(verbose, func),
        per_channel_auto=per_channel_auto,
    )


# === Converting and checking ===


def _converted(model, job: _Job) -> bytes:
    """The converter's .tflite bytes (conversion in a worker process)."""
    with tempfile.TemporaryDirectory(prefix="kdl-export-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        module = tf.Module()
        module.model_variables = list(model.variables)
        serve = serving_function(model, job.specs, batch_size=fixed_batch(model))
        tf.saved_model.save(
            module, saved, signatures={SIGNATURE: serve.get_concrete_function()}
        )
        npz = None
        # A QAT model carries its own learned ranges (TF-MOT's recipe converts
        # it without calibration). Calibrating it again on top of the folded
        # batch-norm ranges broke a digits CNN (48% top-1 agreement,
        # docs/design.md#tflite), so its representative data only serves the
        # check, unless the file must be integer-only end to end.
        if job.representative is not None and not (
            job.quantize_aware and not job.integer_io
        ):
            npz = os.path.join(tmp, "representative.npz")
            np.savez(npz, **job.representative)
        output = os.path.join(tmp, "model.tflite")
        _run_converter(model, job, saved, output, npz)
        return Path(output).read_bytes()


def _run_converter(model, job: _Job, saved: str, output: str, npz) -> None:
    try:
        # a QAT model without calibration data converts with the ranges it
        # learned (TF-MOT's recipe); ops without ranges then stay float
        _convert.convert(
            saved,
            output,
            quantization=job.quantization,
            representative=npz,
            integer_io=job.integer_io,
            per_channel=job.per_channel,
            full_integer=npz is not None,
        )
    except ConverterCrashError as error:
        raise ConverterCrashError(
            f"The TFLite converter crashed ({error}) while converting model "
            f"{model.name!r} with quantization={job.quantization!r}. It ran in a "
            "separate process, so this process is unaffected; no file was "
            f"written to {job.path}. Full int8 conversion of recurrent layers "
            "(GRU) is known to crash the converter (docs/design.md#tflite): try "
            "quantization='dynamic' or 'float16'."
        ) from None
    except ConverterError as error:
        raise ConverterError(
            f"The TFLite converter could not convert model {model.name!r} "
            f"with quantization={job.quantization!r}; no file was written. "
            f"Converter error: {error}"
        ) from None


def _compare(kind, expected, actual, job: _Job) -> tuple[bool, str, dict]:
    """(passed, description, measures) for one output of the model and file."""
    if expected.shape != actual.shape:
        return False, f"output shape {actual.shape} instead of {expected.shape}", {}
    if job.quantization is None:
        error = float(
            np.max(np.abs(actual - expected) / np.maximum(1.0, np.abs(expected)))
        )
        return (
            error <= job.atol,
            f"largest difference {error:.2g} (allowed {job.atol:g})",
            {"max_difference": error},
        )
    if kind == "classification" and expected.shape[-1] > 1:
        same = expected.argmax(-1) == actual.argmax(-1)
    elif kind in ("classification", "binary"):
        same = (expected > 0.5) == (actual > 0.5)
    else:
        error = float(np.mean(np.abs(actual - expected)))
        spread = max(float(np.ptp(expected)), 1e-6)
        allowed = job.regression_tolerance
        return (
            error <= allowed * spread,
            f"mean difference {error:.3g} = {error / spread:.1%} of the "
            f"outputs' range (allowed {allowed:.0%})",
            {"mean_difference": error, "range_fraction": error / spread},
        )
    agreement = float(np.mean(same))
    return (
        agreement >= job.min_agreement,
        f"top-1 agreement {agreement:.1%} on {same.size} predictions "
        f"(required {job.min_agreement:.0%})",
        {"agreement": agreement},
    )


def _verify(model, file: lite.LiteModel, job: _Job) -> tuple[bool, dict]:
    """Runs the file in LiteRT on the check inputs; (passed, check record)."""
    record = {"examples": _arrays.count(job.check), "synthetic": job.synthetic}
    random_ops = [
        op
        for op in file.op_names
        if "RANDOM" in op.upper() or "MULTINOMIAL" in op.upper()
    ]
    if random_ops:
        return False, {
            **record,
            "details": f"the graph holds random ops "
            f"{random_ops} (augmentation left in the exported graph)",
        }
    expected = sig.keras_outputs(model, job.check)
    actual = file.predict_dict(job.check)
    passed, notes, outputs = True, [], {}
    for name in file.output_names:
        ok, note, measures = _compare(
            file.kinds.get(name, "regression"), expected[name], actual[name], job
        )
        passed &= ok
        outputs[name] = measures
        notes.append(note if len(file.output_names) == 1 else f"{name}: {note}")
    details = "; ".join(notes)
    return passed, {**record, "passed": passed, "details": details, "outputs": outputs}


def _converted_and_checked(model, job: _Job) -> bytes:
    """The checked file; a per-kernel file ``per_channel=None`` chose that
    fails its check is made again per channel (channels of small weights can
    lose their precision with one scale per kernel)."""
    try:
        content = _converted(model, job)
        return _checked_file(model, content, file_description(model, job), job)
    except ExportCheckError:
        if not job.per_channel_auto:
            raise
    say(job.verbose, "One scale per kernel failed the check: per channel now.")
    job = dataclasses.replace(job, per_channel=True, per_channel_auto=False)
    return _checked_file(
        model, _converted(model, job), file_description(model, job), job
    )


def _checked_file(model, content: bytes, description: dict, job: _Job) -> bytes:
    """The file with its metadata and check result; raises if the check fails."""
    passed, check = _verify(
        model, lite.LiteModel(meta.write(content, description)), job
    )
    where = f"{check['examples']} {'synthetic ' if job.synthetic else ''}examples"
    if not passed:
        hint = (
            "Pass check_data and representative_data from the real input "
            "distribution, or use a lighter quantization ('float16' or "
            "'dynamic')."
            if job.quantization
            else "The float file should match Keras; please report this model."
        )
        raise ExportCheckError(
            f"The {job.label} TFLite export of model {model.name!r} failed its "
            f"LiteRT check on {where}: {check['details']}. No file was written "
            f"to {job.path}. {hint}"
        )
    say(job.verbose, f"Checked in LiteRT on {where}: {check['details']}.")
    return meta.write(content, {**description, "check": check})


def _write(path: Path, content: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())


# === Public API ===


def to_tflite(
    model,
    path,
    *,
    quantization: str | None = None,
    representative_data=None,
    check_data=None,
    check_samples: int = 200,
    atol: float = 1e-4,
    min_agreement: float = 0.98,
    regression_tolerance: float = 0.05,
    integer_io: bool = False,
    per_channel: bool | None = None,
    labels=None,
    preprocessing: str | None = None,
    run_dir=None,
    verbose: int = 1,
) -> Path:
    """Converts a model to a .tflite file, checked in the LiteRT interpreter.

    The file holds ``model(x, training=False)``: augmentation layers are left
    out (the check fails if any random op remains). Models with recurrent
    layers are converted with a fixed batch of one. The converter runs in a
    separate process, so a converter crash gives an error here, not a dead
    Python. The file is then run in LiteRT on ``check_data`` and compared with
    the Keras model:

    - float (``quantization=None``): every output within ``atol`` (relative
      to the output's size when that is above 1) of Keras;
    - quantized: the top-1 class (the 0.5 threshold for sigmoid outputs)
      agrees with Keras on at least ``min_agreement`` of the check examples;
      for regression outputs the mean absolute difference is at most
      ``regression_tolerance`` times the range of the Keras outputs.

    Only a file that passes is written (to a temporary file first, then moved
    into place), so a failed export leaves nothing behind and never touches
    an existing file at ``path``.

    Quantization modes: "dynamic" (int8 weights, float activations; no data
    needed), "float16" (float16 weights), "int8" (full integer: int8 weights
    and activations, calibrated on ``representative_data``; all kernels are
    int8, so a model with an op lacking an int8 kernel fails to convert). By
    default an int8 file keeps float32 inputs and outputs (quantized inside
    the graph), which is what callers expect; ``integer_io=True`` gives int8
    inputs and outputs for integer-only accelerators (``load_tflite`` still
    accepts floats and quantizes them).

    Args:
        model: kdl.keras.Model. The model to export (left unchanged).
        path: str or os.PathLike. The .tflite file to write.
        quantization: None, "dynamic", "float16" or "int8". Defaults to
            `None` (float32).
        representative_data: array, list or dict of inputs, or None. Examples
            from the real input distribution (100-500 is plenty) to calibrate
            int8 ranges. Required for "int8" unless the model was trained with
            `kdl.compression.quantize_aware`, which converts with the ranges
            it learned: for such a model the data only feeds the check (and
            calibrates the inputs and outputs when ``integer_io=True``).
            Defaults to `None`.
        check_data: array, list or dict of inputs, or None. Examples for the
            LiteRT check. Defaults to `None`: ``representative_data`` if given,
            else synthetic inputs (uniform in [0, 1), or token ids), which
            suit a float check better than a quantized one.
        check_samples: int. At most this many check examples are used.
            Defaults to `200`.
        atol: float. Tolerance of the float check. Defaults to `1e-4`.
        min_agreement: float. Required top-1 agreement of quantized files.
            Defaults to `0.98`.
        regression_tolerance: float. Allowed mean difference of quantized
            regression outputs, as a fraction of the outputs' range. Defaults
            to `0.05`.
        integer_io: bool. int8 inputs and outputs ("int8" only). Defaults to
            `False`.
        per_channel: bool or None. True: integer weights ("int8",
            "dynamic") get one scale per output channel of each kernel, the
            converter's most accurate choice; False: one scale per kernel, so
            that a clustered model keeps its few distinct values in the file
            and gzip stores them in a few bits each (a digits CNN pruned weight
            by weight and clustered, seed 0: 11.5x -> 14.0x smaller gzipped
            than the float file; pruned only: 8.8x -> 10.3x, same accuracy).
            None picks: one scale per kernel when most kernel weights sit in
            kernels of at most 64 distinct values (a model from
            ``kdl.compression.cluster``), else per channel. The LiteRT check
            still guards accuracy. Defaults to `None`.
        labels: list, dict or None. Class names stored in the file, which
            ``kdl.lite`` returns from ``classify``: a list for a model with
            one classification output (one name per class; two for a sigmoid
            output, negative first), or a dict {output name: list}. Defaults
            to `None`.
        preprocessing: str or None. What the file expects its inputs to be
            (e.g. "pixels / 16"), stored in the file. Defaults to `None`: a
            note saying whether normalization is inside the model.
        run_dir: str, os.PathLike or None. The ``kdl.train`` run folder the
            model came from; the SHA-256 of its run.json goes into the file.
            Defaults to `None`: the folder ``kdl.train`` recorded on
            ``model.history``, if any.
        verbose: int. 0, 1 or 2; 0 for silence. Defaults to `1`.

    Every file carries kdl's metadata (read it with ``kdl.lite.load(path)
    .metadata``): task, inputs (names, shapes, dtypes in Keras order),
    outputs and their meaning, labels, preprocessing, quantization, the
    LiteRT check's result (agreement or largest difference, on how many
    examples), kdl/TensorFlow versions, creation time (UTC), the training run
    (run.json's SHA-256) and, for a model of ``kdl.privacy.make_private``,
    epsilon and delta.

    Returns:
        The written file, as a pathlib.Path.

    Raises:
        TypeError: if ``model`` is not a kdl.keras.Model (a Keras 3 model
            included), or an argument has the wrong type.
        ValueError: for a bad argument value, e.g. "int8" without
            ``representative_data`` or data of the wrong shape.
        ConverterCrashError: if the converter process crashed; this process
            is unaffected and no file is written.
        ConverterError: if the converter refused the model.
        ExportCheckError: if the file failed its LiteRT check; no file is
            written.

        The last three are RuntimeErrors and also
        `kdl.errors.UnsupportedModelError` (the model cannot be
        exported this way).

    Example:
        >>> path = to_tflite(model, "cnn_int8.tflite", quantization="int8",
        ...                  representative_data=x_train[:200],
        ...                  check_data=x_test)  # doctest: +SKIP
    """
    job = _tflite_job(
        model,
        path,
        quantization=quantization,
        representative_data=representative_data,
        check_data=check_data,
        check_samples=check_samples,
        atol=atol,
        min_agreement=min_agreement,
        regression_tolerance=regression_tolerance,
        integer_io=integer_io,
        per_channel=per_channel,
        labels=labels,
        preprocessing=preprocessing,
        run_dir=run_dir,
        verbose=verbose,
    )
    batch = ", batch 1" if fixed_batch(model) else ""
    say(
        job.verbose,
        f"Converting {model.name!r} to TFLite ({job.label}{batch}) "
        "in a separate process...",
    )
    content = _converted_and_checked(model, job)
    _write(job.path, content)
    say(job.verbose, f"Wrote {job.path} ({len(content):,} bytes).")
    return job.path
