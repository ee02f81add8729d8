"""TFLite Micro: an int8 model as C source, its op list and its measured arena.

:func:`to_micro` writes what a microcontroller project compiles in:
``model_data.h`` / ``model_data.cc`` (the .tflite bytes as an aligned C
array) and ``model_ops.h`` (a ``MicroMutableOpResolver`` registering exactly
the file's ops, and the tensor arena size), plus ``model.tflite`` itself
(the same bytes, for ``kdl info`` and for LiteRT).

The file is a full-int8 :func:`kdl.export.to_tflite` file with int8 inputs
and outputs (checked against Keras in LiteRT as usual). It is then run in
TFLite Micro's own interpreter (the ``tflite-micro`` package, ``pip install
'kdl[micro]'``): TFLite Micro refusing an op stops the export before any file
is written, the arena size is the total TFLite Micro's recording allocator
reports, confirmed by running the model in that arena in a child process
(too small an arena can abort TFLite Micro's process), and TFLite Micro's
top-1 predictions are compared with those of LiteRT's builtin int8 kernels
(the reference arithmetic TFLite Micro shares; XNNPACK rounds a few products
differently) on the check examples.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl.errors import UnsupportedModelError
from kdl.export import _tflite_metadata as meta

__all__ = ["to_micro", "MicroUnsupportedError", "FILES", "MICRO_FILES"]

#: The files :func:`to_micro` writes into its folder.
FILES = ("model_data.h", "model_data.cc", "model_ops.h", "model.tflite")
# the public name (kdl.export.MICRO_FILES): the files to_micro writes
MICRO_FILES = FILES
_FUNC = "kdl.export.to_micro"
# Layers whose full int8 conversion crashes the TFLite converter or has no
# TFLite Micro kernel (docs/design.md#tflite): refused from the model alone.
_REFUSED_LAYERS = {
    "GRU": "full int8 conversion of a GRU crashes the TFLite converter and "
    "TFLite Micro has no GRU kernel",
    "SimpleRNN": "its TFLite graph is a WHILE loop over float tensor lists, "
    "which full int8 cannot quantize",
}
# resolver method names that do not follow CamelCase(BUILTIN_NAME)
_RESOLVER_NAMES = {
    "BATCH_MATMUL": "BatchMatMul",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM",
}


class MicroUnsupportedError(UnsupportedModelError):
    """TFLite Micro cannot run this model (an op, a layer); nothing was written."""


def _tflm():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise ImportError(
            "kdl.export.to_micro needs TFLite Micro's Python interpreter: "
            "pip install 'kdl[micro]' (the tflite-micro package)."
        ) from None
    return runtime


def tflm_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def _captured_output(lines: list):
    """Collects what TFLite Micro's C++ prints (to fds 1 and 2) into ``lines``."""
    with tempfile.TemporaryFile(mode="w+b") as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            log.seek(0)
            lines.extend(log.read().decode("utf-8", "replace").splitlines())


def _refuse_layers(model) -> None:
    from kdl.backend import keras

    for layer in model._flatten_layers(include_self=False):  # noqa: SLF001
        cell = getattr(layer, "cell", None)
        kind = type(layer).__name__
        for name, why in _REFUSED_LAYERS.items():
            if kind == name or (
                isinstance(layer, keras.layers.RNN)
                and type(cell).__name__ == name + "Cell"
            ):
                raise MicroUnsupportedError(
                    f"{_FUNC} cannot export model {model.name!r}: its layer "
                    f"{layer.name!r} ({kind}, e.g. from kdl.build_"
                    f"{'gru' if name == 'GRU' else 'rnn'}) cannot run in TFLite "
                    f"Micro: {why}. Use kdl.build_mlp or kdl.build_cnn (or "
                    "build_lstm) for a microcontroller; no file was written."
                )


def _run_micro(content: bytes, arena: int, x: np.ndarray | None = None):
    """(interpreter or None, printed lines): TFLite Micro on ``content``."""
    runtime, lines = _tflm(), []
    with _captured_output(lines):
        try:
            it = runtime.Interpreter.from_bytes(content, arena_size=arena)
            if x is not None:
                it.set_input(x, 0)
                it.invoke()
        except (RuntimeError, ValueError):
            it = None
    return it, lines


def _check_ops(content: bytes, model_name: str) -> None:
    """Raises MicroUnsupportedError naming the ops TFLite Micro lacks."""
    _, lines = _run_micro(content, 16 * len(content) + (1 << 20))
    missing = sorted(
        set(
            re.findall(
                r"Didn't find op for builtin opcode '([A-Z0-9_]+)'", "\n".join(lines)
            )
        )
    )
    if missing or _ is None:
        what = f"op(s) {missing}" if missing else "the model ("
        raise MicroUnsupportedError(
            f"{_FUNC}: TFLite Micro {tflm_version()} cannot run model "
            f"{model_name!r}: no kernel for {what}"
            + ("" if missing else "; ".join(lines[-3:]) + ")")
            + ". No file was written."
        )


def _recorded_arena(content: bytes, x: np.ndarray) -> int:
    """The arena total TFLite Micro's recording allocator reports (bytes)."""
    it, lines = _run_micro(content, 16 * len(content) + (1 << 20), x)
    if it is None:
        raise MicroUnsupportedError(
            f"{_FUNC}: TFLite Micro could not run the model: "
            + "; ".join(lines[-3:])
            + ". No file was written."
        )
    with _captured_output(lines):
        it.print_allocations()
    totals = re.findall(r"Arena allocation total (\d+) bytes", "\n".join(lines))
    return int(totals[-1])


_PROBE = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(),
                                    arena_size=int(sys.argv[3]))
it.set_input(np.load(sys.argv[2]), 0)
it.invoke()
"""


def _runs_with(content: bytes, x: np.ndarray, arena: int) -> bool:
    """Whether TFLite Micro runs the model in ``arena`` bytes.

    In a child process: with some too-small arenas TFLite Micro aborts the
    process (a C++ assertion) instead of returning an error.
    """
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="kdl-micro-") as tmp:
        model, inputs = Path(tmp) / "m.tflite", Path(tmp) / "x.npy"
        model.write_bytes(content)
        np.save(inputs, x)
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(model), str(inputs), str(arena)],
            capture_output=True,
            check=False,
        )
    return done.returncode == 0


def _arena_size(content: bytes, x: np.ndarray) -> int:
    """The arena (bytes) TFLite Micro needs, confirmed by a run in that much.

    TFLite Micro's recording allocator reports the total; a child process
    then runs the model in that arena, or in the first of a few larger ones
    (the arena's start is aligned inside the given buffer) that works.
    """
    total = _recorded_arena(content, x)
    for arena in (total, total + 64, total + 1024, total * 5 // 4, total * 2):
        if _runs_with(content, x, arena):
            return arena
    raise MicroUnsupportedError(
        f"{_FUNC}: TFLite Micro's reported arena ({total} bytes) did not hold "
        "the model in a check run, nor twice that. No file was written."
    )


def _quantize_input(content: bytes, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Float examples as the file's int8 input, and the input's details."""
    runtime = _tflm()
    with _captured_output([]):
        details = runtime.Interpreter.from_bytes(
            content, arena_size=16 * len(content) + (1 << 20)
        ).get_input_details(0)
    q = details["quantization_parameters"]
    scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
    info = np.iinfo(details["dtype"])
    values = np.clip(np.round(x / scale) + zero, info.min, info.max)
    return values.astype(details["dtype"]), details


def _micro_agreement(content: bytes, arena: int, x: np.ndarray) -> dict:
    """TFLite Micro's top-1 against LiteRT's on ``x`` (one example per invoke)."""
    xq, details = _quantize_input(content, x)
    litert = _litert_reference(content, xq)
    shape = tuple(int(s) for s in details["shape"])
    runtime, micro = _tflm(), []
    with _captured_output([]):
        it = runtime.Interpreter.from_bytes(content, arena_size=arena)
        for example in xq:
            it.set_input(example.reshape(shape), 0)
            it.invoke()
            micro.append(np.array(it.get_output(0)).reshape(-1))
    micro = np.stack(micro)
    litert = np.asarray(litert).reshape(len(x), -1)
    if micro.shape[-1] > 1:
        same = micro.argmax(-1) == litert.argmax(-1)
    else:  # one sigmoid or regression output: compare the quantized values
        same = np.abs(micro[:, 0] - litert[:, 0]) <= 1
    return {"examples": int(len(x)), "agreement_with_litert": float(np.mean(same))}


def _litert_reference(content: bytes, xq: np.ndarray) -> np.ndarray:
    """LiteRT's int8 outputs with its builtin kernels (TFLite Micro's arithmetic).

    XNNPACK rounds some int8 products differently from the reference kernels
    that TFLite Micro shares with LiteRT's builtin resolver, so the comparison
    runs LiteRT without its default delegate.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    result = []
    for example in xq:
        it.set_tensor(inp["index"], example.reshape(inp["shape"]))
        it.invoke()
        result.append(it.get_tensor(out["index"]).reshape(-1).astype(np.float64))
    return np.stack(result)


def resolver_method(op: str) -> str:
    """The ``MicroMutableOpResolver`` method registering builtin ``op``."""
    return "Add" + _RESOLVER_NAMES.get(
        op,
        "".join(
            part.capitalize() if part.isalpha() else part for part in op.split("_")
        ),
    )


def _recommended_arena(measured: int) -> int:
    # The host build is 64-bit; a 32-bit MCU needs less for TFLite Micro's
    # own structs, but optimized kernels (CMSIS-NN) may ask for more scratch:
    # 25% headroom, rounded up to 1 KiB.
    return -(-int(measured * 1.25) // 1024) * 1024


def _c_array(content: bytes) -> str:
    rows = (
        "  " + ", ".join(f"0x{b:02x}" for b in content[i : i + 12])
        for i in range(0, len(content), 12)
    )
    return ",\n".join(rows)


def _sources(content: bytes, name: str, ops: list, arena: dict) -> dict:
    """{file name: text} of model_data.h, model_data.cc and model_ops.h."""
    head = f"// Generated by kdl.export.to_micro from model {name!r}: int8.\n"
    header = (
        head + "#ifndef KDL_MODEL_DATA_H_\n#define KDL_MODEL_DATA_H_\n\n"
        "// The .tflite file (int8 weights, activations, inputs and outputs).\n"
        "extern const unsigned char g_model_data[];\n"
        "extern const unsigned int g_model_data_len;\n\n"
        "#endif  // KDL_MODEL_DATA_H_\n"
    )
    source = (
        head + '#include "model_data.h"\n\n'
        "alignas(16) const unsigned char g_model_data[] = {\n"
        f"{_c_array(content)}\n}};\n"
        f"const unsigned int g_model_data_len = {len(content)};\n"
    )
    adds = "".join(
        f"  if (resolver.{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;\n"
        for op in ops
    )
    resolver = (
        head + "#ifndef KDL_MODEL_OPS_H_\n#define KDL_MODEL_OPS_H_\n\n"
        "#include <cstddef>\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"// The {len(ops)} ops the model uses: {', '.join(ops)}.\n"
        f"constexpr int kOpCount = {len(ops)};\n\n"
        f"// Arena measured in TFLite Micro {arena['tflite_micro']} (64-bit "
        f"host): {arena['arena_bytes']} bytes; with 25% headroom:\n"
        f"constexpr size_t kTensorArenaSize = {arena['recommended_arena_bytes']};\n\n"
        "inline TfLiteStatus RegisterOps(\n"
        "    tflite::MicroMutableOpResolver<kOpCount>& resolver) {\n"
        f"{adds}  return kTfLiteOk;\n}}\n\n#endif  // KDL_MODEL_OPS_H_\n"
    )
    return {"model_data.h": header, "model_data.cc": source, "model_ops.h": resolver}


def _check_args(model, folder, representative_data, check_data, check_samples):
    from kdl import _arrays
    from kdl.export import _signatures as sig

    v.check_keras_model(model, "model", _FUNC)
    folder = v.check_path(folder, "folder", _FUNC)
    if folder.exists() and not folder.is_dir():
        v.fail(_FUNC, "folder", "a folder (it is a file)", str(folder))
    specs = sig.input_specs(model, _FUNC)
    if len(specs) != 1:
        v.fail(_FUNC, "model", "a model with one input", f"{len(specs)} inputs")
    if representative_data is None:
        v.fail(_FUNC, "representative_data", "input examples to calibrate int8", None)
    check_samples = v.check_int(check_samples, "check_samples", _FUNC, min_value=1)
    data = check_data if check_data is not None else representative_data
    check = _arrays.as_inputs(specs, data, _FUNC, "check_data")
    x = np.asarray(next(iter(check.values())), np.float32)[:check_samples]
    _refuse_layers(model)
    return folder, x


def _micro_record(content: bytes, x: np.ndarray, name: str, min_agreement):
    """TFLite Micro's op check, arena and agreement with LiteRT (no file yet)."""
    _check_ops(content, name)
    xq, details = _quantize_input(content, x[:1])
    measured = _arena_size(content, xq.reshape(tuple(details["shape"])))
    record = {
        "tflite_micro": tflm_version(),
        "arena_bytes": measured,
        "recommended_arena_bytes": _recommended_arena(measured),
        "ops": sorted(set(meta.op_names(content))),
        **_micro_agreement(content, measured, x),
    }
    if record["agreement_with_litert"] < min_agreement:
        raise MicroUnsupportedError(
            f"{_FUNC}: TFLite Micro's predictions for model {name!r} agree with "
            f"LiteRT's on {record['agreement_with_litert']:.1%} of "
            f"{record['examples']} examples (required {min_agreement:.0%}). "
            "No file was written."
        )
    return record


def to_micro(
    model,
    folder,
    *,
    representative_data,
    check_data=None,
    check_samples: int = 200,
    min_agreement: float = 0.98,
    labels=None,
    preprocessing: str | None = None,
    verbose: int = 1,
) -> Path:
    """Exports a model for TFLite Micro: C source, op resolver, measured arena.

    Writes into ``folder`` (created if needed): ``model_data.h`` and
    ``model_data.cc`` (the int8 .tflite file as the aligned C array
    ``g_model_data`` of ``g_model_data_len`` bytes), ``model_ops.h``
    (``RegisterOps(resolver)`` adding exactly the model's ops to a
    ``tflite::MicroMutableOpResolver<kOpCount>``, and ``kTensorArenaSize``)
    and ``model.tflite`` (the same bytes; ``kdl info`` reads it).

    The model is exported with :func:`to_tflite` as full int8 with int8
    inputs and outputs (quantize inputs with the input tensor's scale and
    zero point) and checked against Keras in LiteRT; then run in TFLite
    Micro's Python interpreter (``pip install 'kdl[micro]'``): an op without
    a TFLite Micro kernel is refused by name, the tensor arena is what TFLite
    Micro's recording allocator reports, confirmed by a run in that arena, and
    TFLite Micro's top-1 must agree with LiteRT's on ``min_agreement`` of the
    check examples (one per invoke). Models with GRU or SimpleRNN layers are
    refused up front. Nothing is written unless every step passes. The
    file's metadata (``kdl.lite.load(path).metadata["micro"]``) holds the
    arena, the ops, the TFLite Micro version and the agreement.

    Args:
        model: kdl.keras.Model with one input (left unchanged).
        folder: str or os.PathLike. The folder to write into.
        representative_data: array of inputs (100-500 real examples) to
            calibrate int8.
        check_data: array or None. Held-out inputs for both checks. Defaults
            to `None`: ``representative_data``.
        check_samples: int. At most this many check examples. Defaults to `200`.
        min_agreement: float. Required top-1 agreement (Keras vs LiteRT, and
            TFLite Micro vs LiteRT). Defaults to `0.98`.
        labels: list or None. Class names stored in the file. Defaults to `None`.
        preprocessing: str or None. What the inputs are, stored in the file.
        verbose: int. 0, 1 or 2. Defaults to `1`.

    Returns:
        The folder, as a pathlib.Path.

    Raises:
        MicroUnsupportedError: TFLite Micro cannot run the model (names the
            op or the layer); also a ValueError.
        ImportError: the ``tflite-micro`` package is missing.

    Example:
        >>> export.to_micro(model, "digits_micro", representative_data=x[:200],
        ...                 check_data=x_test)  # doctest: +SKIP
    """
    from kdl.export._graph import say
    from kdl.export._tflite import to_tflite

    folder, x = _check_args(
        model, folder, representative_data, check_data, check_samples
    )
    v.check_float(min_agreement, "min_agreement", _FUNC, max_value=1.0)
    _tflm()
    with tempfile.TemporaryDirectory(prefix="kdl-micro-") as tmp:
        path = to_tflite(
            model,
            Path(tmp) / "model.tflite",
            quantization="int8",
            integer_io=True,
            representative_data=representative_data,
            check_data=x,
            check_samples=check_samples,
            min_agreement=min_agreement,
            labels=labels,
            preprocessing=preprocessing,
            verbose=0 if verbose < 2 else verbose,
        )
        content = path.read_bytes()
    say(
        verbose,
        f"int8 file checked in LiteRT: {meta.read(content)['check']['details']}. "
        "Running it in TFLite Micro (ops, arena, predictions)...",
    )
    record = _micro_record(content, x, model.name, min_agreement)
    content = meta.write(content, {**meta.read(content), "micro": record})
    _write_folder(folder, content, model.name, record)
    say(
        verbose,
        f"Wrote {folder}: {len(content):,}-byte model, ops {record['ops']}, arena "
        f"{record['arena_bytes']:,} bytes measured in TFLite Micro, top-1 agreement "
        f"with LiteRT {record['agreement_with_litert']:.1%} on "
        f"{record['examples']} examples.",
    )
    return folder


def _write_folder(folder: Path, content: bytes, name: str, record: dict) -> None:
    from kdl._files import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    files = _sources(content, name, record["ops"], record)
    files["model.tflite"] = content
    for file, text in files.items():
        with atomic_path(folder / file) as tmp:
            data = text if isinstance(text, bytes) else text.encode()
            Path(tmp).write_bytes(data)
