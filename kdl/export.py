"""Export models for serving and for edge devices, verified in LiteRT.

- :func:`to_savedmodel`: a TensorFlow SavedModel with a "serving_default"
  signature (also loadable as a Keras model).
- :func:`to_tflite`: a .tflite file, float or quantized ("dynamic", "float16",
  "int8"), from a model of any kdl builder. Every file is run in the LiteRT
  interpreter (``ai_edge_litert``, the runtime edge devices use) and compared
  with the Keras model before it is written; a file that fails the check is
  never written.
- :func:`load_tflite` and :func:`evaluate_tflite`: run a .tflite file in LiteRT
  with a Keras-like ``predict``, and measure its metrics and per-example
  latency.

How the export works: the model is traced as ``model(x, training=False)``, so
augmentation layers (identity at inference) leave no op in the graph; models
with recurrent layers are traced with a fixed batch of one (the TFLite
converter needs static tensor-list shapes, DESIGN.md), and their files run one
example at a time. The conversion itself runs in a separate process
(:mod:`kdl._convert`): full int8 conversion of a GRU crashes the converter with
a segmentation fault, and that must not take the user's process down.

Example:
    >>> from kdl import build_mlp, datasets, export
    >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp((64,), 10)
    >>> _ = model.fit(x, y, epochs=3, verbose=0)
    >>> path = export.to_tflite(model, "mlp_int8.tflite", quantization="int8",
    ...                         representative_data=x[:200], check_data=x_test)
    >>> export.evaluate_tflite(path, x_test, y_test)["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from kdl import _convert
from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.io import atomic_path

__all__ = [
    "QUANTIZATIONS",
    "ExportCheckError",
    "ConverterCrashError",
    "ConverterError",
    "TFLiteModel",
    "to_savedmodel",
    "to_tflite",
    "load_tflite",
    "evaluate_tflite",
]

QUANTIZATIONS = (None, "dynamic", "float16", "int8")
TASKS = ("classification", "binary", "regression")
SIGNATURE = "serving_default"
_METADATA_NAME = "kdl"
ConverterCrashError = _convert.ConverterCrashError
ConverterError = _convert.ConverterError


class ExportCheckError(RuntimeError):
    """An exported file disagreed with its Keras model in the LiteRT interpreter."""


def _say(verbose: int, message: str) -> None:
    if verbose:
        print(message, flush=True)


# === Model inputs and outputs ===

def _safe_name(name: str) -> str:
    """A signature-safe tensor name (letters, digits and underscores)."""
    name = re.sub(r"\W", "_", str(name))
    return name if re.match(r"[A-Za-z_]", name) else f"x_{name}"


def _input_specs(model, func: str) -> list[tuple[str, np.dtype, tuple]]:
    """(name, numpy dtype, shape without batch) of each model input, in order."""
    if not getattr(model, "inputs", None):
        v.fail(func, "model", "a built model with known inputs (a functional "
               "model from a kdl builder, or one called on data once)",
               model.name)
    names = [_safe_name(n) for n in model.input_names]
    return [(name, np.dtype(t.dtype.as_numpy_dtype), tuple(t.shape[1:]))
            for name, t in zip(names, model.inputs, strict=True)]


def _output_names(model) -> list[str]:
    return [_safe_name(n) for n in model.output_names]


def _activation_name(layer) -> str:
    # unwrap TF-MOT wrappers (prune, cluster, quantize) and Keras wrappers
    while hasattr(layer, "layer") and isinstance(layer.layer, keras.layers.Layer):
        layer = layer.layer
    activation = getattr(layer, "activation", None)
    # QAT replaces activations with QuantizeAwareActivation(.activation)
    while activation is not None and hasattr(activation, "activation"):
        activation = activation.activation
    return getattr(activation, "__name__", "") if activation is not None else ""


def _output_kinds(model) -> dict[str, str]:
    """Output name -> "classification", "binary" or "regression", from its layer."""
    kinds = {}
    for name, tensor in zip(_output_names(model), model.outputs,
                               strict=True):
        history = getattr(tensor, "_keras_history", None)
        activation = _activation_name(history.layer) if history else ""
        kinds[name] = {"softmax": "classification",
                       "sigmoid": "binary"}.get(activation, "regression")
    return kinds


def _fixed_batch(model) -> int | None:
    """1 for models with recurrent layers (the converter needs it), else None."""
    recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
    return 1 if any(isinstance(m, recurrent) for m in model.submodules) else None


def _is_quantize_aware(model) -> bool:
    names = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer")
    return any(type(m).__name__ in names for m in model.submodules)


def _as_inputs(specs, data, func: str, arg: str) -> dict[str, np.ndarray]:
    """Turns an array, a list of arrays or a dict into {input name: array}."""
    names = [name for name, _, _ in specs]
    if isinstance(data, dict):
        keys = {_safe_name(k): k for k in data}
        if sorted(keys) != sorted(names):
            v.fail(func, arg, f"a dict with keys {names}", sorted(data))
        values = [data[keys[name]] for name in names]
    elif isinstance(data, (list, tuple)) and len(specs) > 1:
        if len(data) != len(specs):
            v.fail(func, arg, f"a list of {len(specs)} arrays, one per input "
                   f"{names}", f"{len(data)} items")
        values = list(data)
    elif len(specs) > 1:
        v.fail(func, arg, f"a list or dict of {len(specs)} arrays (inputs "
               f"{names})", type(data).__name__, error=TypeError)
    else:
        values = [data]
    out, count = {}, None
    for (name, dtype, shape), value in zip(specs, values, strict=True):
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            array = None
        if array is None or array.dtype == object or not (
                np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            v.fail(func, arg, f"numeric arrays (input {name!r})",
                   type(value).__name__, error=TypeError)
        expected = "(n, " + ", ".join("?" if d is None else str(d)
                                     for d in shape) + ")"
        if array.ndim != len(shape) + 1 or any(
                d is not None and d != a for d, a in zip(shape, array.shape[1:],
                                                     strict=True)):
            v.fail(func, arg, f"an array of shape {expected} for input {name!r}",
                   f"an array of shape {array.shape}")
        if len(array) == 0 or (count is not None and len(array) != count):
            v.fail(func, arg, "arrays with the same number (>= 1) of examples",
                   f"an array of shape {array.shape}")
        count = len(array)
        out[name] = array.astype(dtype, copy=False)
    return out


def _take(inputs: dict, count: int) -> dict:
    return {name: value[:count] for name, value in inputs.items()}


def _synthetic_inputs(model, specs, count: int) -> dict[str, np.ndarray]:
    """Uniform [0, 1) floats, or token ids below the smallest embedding size."""
    rng = np.random.default_rng(0)
    vocab = [m.input_dim for m in model.submodules
             if isinstance(m, keras.layers.Embedding)]
    out = {}
    for name, dtype, shape in specs:
        shape = (count, *(8 if d is None else d for d in shape))
        if np.issubdtype(dtype, np.integer):
            high = min(vocab) if vocab else 2
            out[name] = rng.integers(1 if high > 1 else 0, high, shape).astype(dtype)
        else:
            out[name] = rng.random(shape).astype(dtype)
    return out


def _keras_outputs(model, inputs: dict) -> dict[str, np.ndarray]:
    values = list(inputs.values())
    outputs = model.predict(values[0] if len(values) == 1 else values,
                            batch_size=64, verbose=0)
    names = _output_names(model)
    if isinstance(outputs, dict):
        return {_safe_name(k): np.asarray(o) for k, o in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return {name: np.asarray(o) for name, o in zip(names, outputs, strict=True)}
    return {names[0]: np.asarray(outputs)}


def _serving_function(model, specs, *, batch_size: int | None):
    """``model(x, training=False)`` as a tf.function returning {output: tensor}."""
    names = _output_names(model)
    signature = [tf.TensorSpec((batch_size, *shape), tf.as_dtype(dtype), name=name)
                 for name, dtype, shape in specs]

    def serve(*args):
        outputs = model(args[0] if len(args) == 1 else list(args), training=False)
        if isinstance(outputs, dict):
            return {_safe_name(k): o for k, o in outputs.items()}
        if isinstance(outputs, (list, tuple)):
            return dict(zip(names, outputs, strict=True))
        return {names[0]: outputs}

    return tf.function(serve, input_signature=signature)


# === TFLite file contents ===

def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _with_metadata(content: bytes, metadata: dict) -> bytes:
    """Adds kdl's metadata (input order, output kinds) to a .tflite flatbuffer.

    TFLite signatures keep inputs in alphabetical order; the metadata keeps the
    Keras order, so ``predict([source, decoder_input])`` means what it means in
    Keras. Written the way the TF converter writes its own conversion metadata.
    """
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = _METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or [])
                      if m.name != _METADATA_NAME.encode()] + [entry]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _read_metadata(content: bytes) -> dict:
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == _METADATA_NAME.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            try:
                return json.loads(bytes(data).decode())
            except (ValueError, TypeError):
                return {}
    return {}


def _op_names(content: bytes) -> list[str]:
    """The names of the operators a .tflite flatbuffer uses, in all subgraphs."""
    schema = _schema()
    codes = {value: key for key, value in vars(schema.BuiltinOperator).items()
             if not key.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        names.append(custom.decode() if custom else codes.get(builtin, str(builtin)))
    return names


# === Running a .tflite file ===

class TFLiteModel:
    """A .tflite model running in the LiteRT interpreter, with a Keras-like predict.

    Create it with :func:`load_tflite`. Inputs are given as in Keras: one array,
    a list in the Keras model's input order, or a dict by input name. Float
    inputs of an int8-interface file are quantized on the way in and its
    outputs dequantized on the way out.

    Attributes:
        path: pathlib.Path or None. The file it was loaded from.
        input_names: list of str. Inputs, in the Keras model's order.
        output_names: list of str.
        batch_size: int or None. The fixed batch of the file (1 for recurrent
            models), or None when the batch is dynamic.
        metadata: dict. What kdl stored in the file (empty for other files).
        op_names: list of str. The operators the file uses, in all subgraphs.
        size: int. The file's size in bytes.
    """

    def __init__(self, content: bytes, *, path=None, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = None if path is None else Path(path)
        self.size = len(content)
        self.metadata = _read_metadata(content)
        self.interpreter = Interpreter(model_content=content,
                                       num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise ValueError(
                f"The .tflite file {self.path or ''} has no signature; kdl runs "
                "files with a signature (every TFLite converter since TF 2.7 "
                "writes one).")
        key = SIGNATURE if SIGNATURE in signatures else next(iter(signatures))
        self._runner = self.interpreter.get_signature_runner(key)
        self._inputs = self._runner.get_input_details()
        self._outputs = self._runner.get_output_details()
        order = self.metadata.get("inputs", [])
        self.input_names = (list(order) if sorted(order) == sorted(self._inputs)
                            else list(signatures[key]["inputs"]))
        order = self.metadata.get("outputs", [])
        self.output_names = (list(order) if sorted(order) == sorted(self._outputs)
                             else list(signatures[key]["outputs"]))
        batches = {int(d["shape_signature"][0]) for d in self._inputs.values()
                   if len(d["shape_signature"])}
        self.batch_size = max(batches) if batches and -1 not in batches else None
        self.kinds = dict(self.metadata.get("kinds", {}))
        self.op_names = _op_names(content)

    def __repr__(self) -> str:
        return (f"TFLiteModel(path={str(self.path)!r}, inputs={self.input_names}, "
                f"outputs={self.output_names}, batch_size={self.batch_size})")

    def _specs(self):
        specs = []
        for name in self.input_names:
            details = self._inputs[name]
            shape = tuple(None if d < 0 else int(d)
                          for d in details["shape_signature"][1:])
            dtype = np.dtype(details["dtype"])
            if np.issubdtype(dtype, np.integer) and details["quantization"][0]:
                dtype = np.dtype("float32")  # int8 interface: fed as floats
            specs.append((name, dtype, shape))
        return specs

    def _feed(self, name: str, value: np.ndarray) -> np.ndarray:
        details = self._inputs[name]
        dtype = np.dtype(details["dtype"])
        scale, zero_point = details["quantization"]
        if scale and np.issubdtype(dtype, np.integer) and not np.issubdtype(
                value.dtype, np.integer):
            info = np.iinfo(dtype)
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        return np.ascontiguousarray(value.astype(dtype, copy=False))

    def _fetch(self, name: str, value: np.ndarray) -> np.ndarray:
        scale, zero_point = self._outputs[name]["quantization"]
        if scale and np.issubdtype(value.dtype, np.integer):
            return ((value.astype("float32") - zero_point) * scale).astype("float32")
        return np.array(value)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One interpreter call on a batch the file accepts: {name: array}."""
        feed = {name: self._feed(name, value) for name, value in inputs.items()}
        result = self._runner(**feed)
        outputs = {name: self._fetch(name, result[name]) for name in self.output_names}
        # Fused LSTM ops keep their state in variable tensors from one call to
        # the next; reset it so that every call starts from zeros, as in Keras.
        self.interpreter.reset_all_variables()
        return outputs

    def predict_dict(self, inputs: dict[str, np.ndarray], *,
                     batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Like :meth:`predict` for prepared inputs, always returning a dict."""
        count = len(next(iter(inputs.values())))
        step = self.batch_size or batch_size or 32
        parts = {name: [] for name in self.output_names}
        for start in range(0, count, step):
            chunk = _take({k: x[start:] for k, x in inputs.items()}, step)
            size = len(next(iter(chunk.values())))
            if self.batch_size and size < step:  # pad the last fixed-size batch
                chunk = {k: np.concatenate([x, np.repeat(x[-1:], step - size, 0)])
                         for k, x in chunk.items()}
            for name, value in self.run(chunk).items():
                parts[name].append(value[:size])
        return {name: np.concatenate(values) for name, values in parts.items()}

    def predict(self, x, batch_size: int | None = None):
        """Runs the model on ``x`` in the LiteRT interpreter.

        Args:
            x: array, list of arrays (Keras input order) or dict by input name.
            batch_size: int or None. Examples per interpreter call for files
                with a dynamic batch. Files with a fixed batch (recurrent
                models: 1) always run that many at a time. Defaults to `None`
                (32).

        Returns:
            An array for a single-output model, else a dict {output: array}.

        Raises:
            ValueError, TypeError: for inputs of the wrong shape or kind.
        """
        func = "TFLiteModel.predict"
        v.check_int(batch_size, "batch_size", func, allow_none=True)
        outputs = self.predict_dict(_as_inputs(self._specs(), x, func, "x"),
                                    batch_size=batch_size)
        if len(self.output_names) == 1:
            return outputs[self.output_names[0]]
        return outputs


def _check_path(path, func: str, *, suffix: str | None = None) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        v.fail(func, "path", "a str or os.PathLike", path, error=TypeError)
    path = Path(path)
    if suffix and path.suffix != suffix:
        v.fail(func, "path", f"a file name ending in {suffix!r}", str(path))
    return path


def load_tflite(path, *, num_threads: int | None = None) -> TFLiteModel:
    """Loads a .tflite file into the LiteRT interpreter.

    Args:
        path: str or os.PathLike. The .tflite file.
        num_threads: int or None. Interpreter threads. Defaults to `None`
            (LiteRT's choice).

    Returns:
        A :class:`TFLiteModel` with ``predict(x, batch_size=None)``.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is not a TFLite flatbuffer.

    Example:
        >>> model = load_tflite("mlp_int8.tflite")  # doctest: +SKIP
        >>> model.predict(x_test).argmax(-1)  # doctest: +SKIP
    """
    func = "kdl.export.load_tflite"
    path = _check_path(path, func)
    v.check_int(num_threads, "num_threads", func, allow_none=True)
    if not path.is_file():
        raise FileNotFoundError(f"No .tflite file at {path}.")
    content = path.read_bytes()
    if content[4:8] != b"TFL3":
        v.fail(func, "path", "a TFLite flatbuffer file", str(path))
    return TFLiteModel(content, path=path, num_threads=num_threads)


# === Checks ===

def _compare(kind, expected, actual, *, quantized, atol, min_agreement,
             regression_tolerance):
    """(passed, description) for one output of the Keras model and the file."""
    if expected.shape != actual.shape:
        return False, f"output shape {actual.shape} instead of {expected.shape}"
    if not quantized:
        error = float(np.max(np.abs(actual - expected)
                             / np.maximum(1.0, np.abs(expected))))
        return error <= atol, f"largest difference {error:.2g} (allowed {atol:g})"
    if kind == "classification" and expected.shape[-1] > 1:
        same = expected.argmax(-1) == actual.argmax(-1)
    elif kind in ("classification", "binary"):
        same = (expected > 0.5) == (actual > 0.5)
    else:
        error = float(np.mean(np.abs(actual - expected)))
        spread = max(float(np.ptp(expected)), 1e-6)
        return (error <= regression_tolerance * spread,
                f"mean difference {error:.3g} = {error / spread:.1%} of the "
                f"outputs' range (allowed {regression_tolerance:.0%})")
    agreement = float(np.mean(same))
    return (agreement >= min_agreement,
            f"top-1 agreement {agreement:.1%} on {same.size} predictions "
            f"(required {min_agreement:.0%})")


def _verify(model, lite: TFLiteModel, inputs, kinds, *, quantized, atol,
            min_agreement, regression_tolerance) -> tuple[bool, str]:
    random_ops = [op for op in lite.op_names
                  if "RANDOM" in op.upper() or "MULTINOMIAL" in op.upper()]
    if random_ops:
        return False, (f"the graph holds random ops {random_ops} (augmentation "
                       "left in the exported graph)")
    expected = _keras_outputs(model, inputs)
    actual = lite.predict_dict(inputs)
    passed, notes = True, []
    for name in lite.output_names:
        ok, note = _compare(kinds.get(name, "regression"), expected[name],
                            actual[name], quantized=quantized, atol=atol,
                            min_agreement=min_agreement,
                            regression_tolerance=regression_tolerance)
        passed &= ok
        notes.append(note if len(lite.output_names) == 1 else f"{name}: {note}")
    return passed, "; ".join(notes)


# === Public API ===

def to_savedmodel(model, path, *, verbose: int = 1) -> Path:
    """Saves a model as a TensorFlow SavedModel with a serving signature.

    The "serving_default" signature runs ``model(x, training=False)`` (so
    augmentation and dropout are off) and takes each input by its name
    (for example ``inputs``) with a dynamic batch; it returns a dict
    {output name: tensor} ("predictions" for kdl's single-head models). The
    folder is also a Keras SavedModel, so ``kdl.load`` gives back a Keras
    model (without optimizer state). The folder is written next to ``path``
    and moved into place only when complete: an existing SavedModel at
    ``path`` is replaced, never left half-written.

    Args:
        model: kdl.keras.Model. The model to export (left unchanged).
        path: str or os.PathLike. The SavedModel folder to write.
        verbose: int. 0 for silence. Defaults to `1`.

    Returns:
        The folder, as a pathlib.Path.

    Raises:
        TypeError: if ``model`` is not a kdl.keras.Model (a Keras 3 model
            included) or ``path`` is not a path.
        ValueError: if ``path`` is a file, or a non-empty folder that is not a
            SavedModel (kdl never deletes such a folder).

    Example:
        >>> folder = to_savedmodel(model, "saved_models/mlp")  # doctest: +SKIP
        >>> served = tf.saved_model.load(str(folder))  # doctest: +SKIP
        >>> served.signatures["serving_default"](inputs=x)["predictions"]
    """
    func = "kdl.export.to_savedmodel"
    v.check_keras_model(model, "model", func)
    path = _check_path(path, func)
    v.check_int(verbose, "verbose", func, min_value=0)
    if path.is_file():
        v.fail(func, "path", "a folder (it is an existing file)", str(path))
    if path.is_dir() and any(path.iterdir()) and not (
            path / "saved_model.pb").exists():
        v.fail(func, "path", "a new folder, an empty one or an existing "
               "SavedModel (kdl does not delete other folders)", str(path))
    specs = _input_specs(model, func)

    with atomic_path(path) as tmp:
        serve = _serving_function(model, specs, batch_size=None)
        model.save(str(tmp), save_format="tf", include_optimizer=False,
                   signatures={SIGNATURE: serve.get_concrete_function()})
    _say(verbose, f"Saved {model.name!r} as a SavedModel in {path} (signature "
         f"{SIGNATURE!r}: inputs {[s[0] for s in specs]}).")
    return path


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
        verbose: int. 0 for silence. Defaults to `1`.

    Returns:
        The written file, as a pathlib.Path.

    Raises:
        TypeError: if ``model`` is not a kdl.keras.Model (a Keras 3 model
            included), or an argument has the wrong type.
        ValueError: for a bad argument value, e.g. "int8" without
            ``representative_data`` or data of the wrong shape.
        ConverterCrashError: (a RuntimeError) if the converter process
            crashed; this process is unaffected and no file is written.
        ConverterError: (a RuntimeError) if the converter refused the model.
        ExportCheckError: (a RuntimeError) if the file failed its LiteRT check;
            no file is written.

    Example:
        >>> path = to_tflite(model, "cnn_int8.tflite", quantization="int8",
        ...                  representative_data=x_train[:200],
        ...                  check_data=x_test)  # doctest: +SKIP
    """
    func = "kdl.export.to_tflite"
    v.check_keras_model(model, "model", func)
    path = _check_path(path, func, suffix=".tflite")
    if quantization is not None:
        v.check_choice(quantization, "quantization", func, QUANTIZATIONS[1:])
    specs = _input_specs(model, func)
    quantize_aware = _is_quantize_aware(model)
    if quantization == "int8" and representative_data is None and not quantize_aware:
        v.fail(func, "representative_data", "input examples to calibrate int8 "
               "ranges when quantization='int8' (e.g. x_train[:200]), unless "
               "the model was trained with kdl.compression.quantize_aware",
               None)
    representative = (None if representative_data is None else
                      _as_inputs(specs, representative_data, func,
                                 "representative_data"))
    check = (None if check_data is None else
             _as_inputs(specs, check_data, func, "check_data"))
    check_samples = v.check_int(check_samples, "check_samples", func)
    atol = v.check_float(atol, "atol", func, strict_min=True)
    min_agreement = v.check_float(min_agreement, "min_agreement", func,
                                  max_value=1.0)
    regression_tolerance = v.check_float(regression_tolerance,
                                         "regression_tolerance", func,
                                         strict_min=True)
    v.check_bool(integer_io, "integer_io", func)
    if integer_io and quantization != "int8":
        v.fail(func, "integer_io", "False unless quantization='int8'", integer_io)
    v.check_int(verbose, "verbose", func, min_value=0)

    label = quantization or "float"
    if check is None:
        check = representative
    synthetic = check is None
    if synthetic:
        check = _synthetic_inputs(model, specs, check_samples)
    check = _take(check, check_samples)
    kinds = _output_kinds(model)
    batch = _fixed_batch(model)
    metadata = {"model": model.name, "quantization": quantization,
                "inputs": [s[0] for s in specs], "outputs": _output_names(model),
                "kinds": kinds, "integer_io": integer_io}
    _say(verbose, f"Converting {model.name!r} to TFLite ({label}"
         f"{', batch 1' if batch else ''}) in a separate process...")

    with tempfile.TemporaryDirectory(prefix="kdl-export-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        module = tf.Module()
        module.model_variables = list(model.variables)
        serve = _serving_function(model, specs, batch_size=batch)
        tf.saved_model.save(module, saved,
                            signatures={SIGNATURE: serve.get_concrete_function()})
        npz = None
        # A QAT model carries its own learned ranges (TF-MOT's recipe converts
        # it without calibration). Calibrating it again on top of the folded
        # batch-norm ranges broke a digits CNN (48% top-1 agreement), so its
        # representative data only serves the check, unless the file must be
        # integer-only end to end.
        if representative is not None and not (quantize_aware and not integer_io):
            npz = os.path.join(tmp, "representative.npz")
            np.savez(npz, **representative)
        output = os.path.join(tmp, "model.tflite")
        try:
            # a QAT model without calibration data converts with the ranges it
            # learned (TF-MOT's recipe); ops without ranges then stay float
            _convert.convert(saved, output, quantization=quantization,
                             representative=npz, integer_io=integer_io,
                             full_integer=npz is not None)
        except ConverterCrashError as error:
            raise ConverterCrashError(
                f"The TFLite converter crashed ({error}) while converting model "
                f"{model.name!r} with quantization={quantization!r}. It ran in a "
                "separate process, so this process is unaffected; no file was "
                f"written to {path}. Full int8 conversion of recurrent layers "
                "(GRU) is known to crash the converter: try "
                "quantization='dynamic' or 'float16'.") from None
        except ConverterError as error:
            raise ConverterError(
                f"The TFLite converter could not convert model {model.name!r} "
                f"with quantization={quantization!r}; no file was written. "
                f"Converter error: {error}") from None
        content = Path(output).read_bytes()

    content = _with_metadata(content, metadata)
    lite = TFLiteModel(content)
    passed, details = _verify(
        model, lite, check, kinds, quantized=quantization is not None, atol=atol,
        min_agreement=min_agreement, regression_tolerance=regression_tolerance)
    count = len(next(iter(check.values())))
    where = f"{count} {'synthetic ' if synthetic else ''}examples"
    if not passed:
        hint = ("Pass check_data and representative_data from the real input "
                "distribution, or use a lighter quantization ('float16' or "
                "'dynamic')." if quantization else
                "The float file should match Keras; please report this model.")
        raise ExportCheckError(
            f"The {label} TFLite export of model {model.name!r} failed its "
            f"LiteRT check on {where}: {details}. No file was written to "
            f"{path}. {hint}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    _say(verbose, f"Checked in LiteRT on {where}: {details}. Wrote {path} "
         f"({len(content):,} bytes).")
    return path


def _metric_rows(kind, predictions, labels):
    """{metric: value} of one output."""
    predictions = np.asarray(predictions, "float32")
    labels = np.asarray(labels)
    if kind == "classification" and predictions.shape[-1] > 1:
        if labels.shape == predictions.shape:  # one-hot labels
            labels = labels.argmax(-1)
        labels = labels.reshape(predictions.shape[:-1])
        hits = predictions.argmax(-1) == labels
        if predictions.ndim > 2:  # token sequences: label 0 is padding
            hits = hits[labels != 0]
        return {"accuracy": float(np.mean(hits))}
    labels = labels.reshape(predictions.shape).astype("float32")
    if kind in ("classification", "binary"):
        return {"accuracy": float(np.mean((predictions > 0.5) == (labels > 0.5)))}
    error = predictions - labels
    return {"mae": float(np.mean(np.abs(error))), "mse": float(np.mean(error ** 2))}


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
    latency_samples = v.check_int(latency_samples, "latency_samples", func,
                                  min_value=0)
    warmup = v.check_int(warmup, "warmup", func, min_value=0)
    model = load_tflite(path, num_threads=num_threads)
    inputs = _as_inputs(model._specs(), x, func, "x")
    count = len(next(iter(inputs.values())))
    names = model.output_names
    if len(names) > 1:
        if not isinstance(y, dict) or sorted(map(_safe_name, y)) != sorted(names):
            v.fail(func, "y", f"a dict with keys {names}", type(y).__name__,
                   error=TypeError if not isinstance(y, dict) else ValueError)
        labels = {_safe_name(k): value for k, value in y.items()}
    else:
        labels = {names[0]: y}
    for value in labels.values():
        if len(np.asarray(value)) != count:
            v.fail(func, "y", f"labels for the {count} examples of x",
                   f"{len(np.asarray(value))} labels")

    predictions = model.predict_dict(inputs, batch_size=batch_size)
    result = {}
    for name in names:
        kind = task or model.kinds.get(name) or (
            "classification" if predictions[name].shape[-1] > 1 else "regression")
        for metric, value in _metric_rows(kind, predictions[name],
                                          labels[name]).items():
            result[metric if len(names) == 1 else f"{name}_{metric}"] = value

    times = []
    for i in range(min(latency_samples, count) + warmup):
        j = (i - warmup) % count
        one = {k: value[j:j + 1] for k, value in inputs.items()}
        if model.batch_size and model.batch_size > 1:
            one = {k: np.repeat(value, model.batch_size, 0)
                   for k, value in one.items()}
        start = time.perf_counter()
        model.run(one)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    result["latency_ms_median"] = float(np.median(times)) if times else None
    result["latency_ms_p90"] = float(np.percentile(times, 90)) if times else None
    result["bytes"] = model.size
    result["examples"] = count
    return result
