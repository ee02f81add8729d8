"""TFLite conversion in a child process, so a converter crash cannot kill the user's.

The TFLite converter is C++ code; full int8 conversion of a GRU model killed
the Python process with a segmentation fault here (docs/design.md#tflite). kdl
therefore never converts in the user's process: :func:`convert` hands each job
to a worker process (``python -m kdl.export._convert``) that imports TensorFlow once
and converts SavedModels one after another. When the worker dies, the job gets a
:class:`ConverterCrashError` naming the signal and the next job starts a fresh
worker.

Protocol: the parent writes one JSON job per line to the worker's stdin; the
worker writes the job's result as JSON to ``job["result"]`` and then the line
``kdl-done`` to a private copy of its stdout (stray prints of the converter go
to stderr, which is a log file).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from kdl.errors import UnsupportedModelError

__all__ = ["ConverterCrashError", "ConverterError", "convert", "shutdown"]

_DONE = "kdl-done"


class ConverterCrashError(RuntimeError, UnsupportedModelError):
    """The converter process died (for example with a segmentation fault).

    A RuntimeError, and an UnsupportedModelError: this model cannot be
    converted this way (full int8 of a GRU, docs/design.md#tflite).
    """


class ConverterError(RuntimeError, UnsupportedModelError):
    """The converter ran but refused the model (an error, not a crash)."""


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class _Worker:
    """One long-lived converter process, restarted after it dies."""

    def __init__(self):
        self._proc = None
        self._log = None
        self._lock = threading.Lock()

    def _start(self):
        env = dict(os.environ)
        env["TF_USE_LEGACY_KERAS"] = "1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # the worker imports kdl.export._convert; make it findable from a source tree
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, env.get("PYTHONPATH")) if p
        )
        self._log = tempfile.TemporaryFile(prefix="kdl-converter-", suffix=".log")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "kdl.export._convert"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )

    def run(self, job: dict) -> dict:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                self._proc.stdin.write(json.dumps(job) + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
                while line and line.strip() != _DONE:
                    line = self._proc.stdout.readline()
            except BrokenPipeError:
                line = ""
            if not line:
                returncode = self._proc.wait()
                self._proc = None
                raise ConverterCrashError(_signal_name(returncode))
            with open(job["result"]) as f:
                return json.load(f)

    def stop(self):
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None


_WORKER = _Worker()
atexit.register(_WORKER.stop)


def convert(
    saved_model: str,
    output: str,
    *,
    quantization: str | None,
    representative: str | None = None,
    integer_io: bool = False,
    per_channel: bool = True,
    full_integer: bool = True,
) -> None:
    """Converts a SavedModel's serving signature to a .tflite file, out of process.

    Args:
        saved_model: folder of a SavedModel with a "serving_default" signature.
        output: where the worker writes the .tflite bytes.
        quantization: None, "dynamic", "float16" or "int8".
        representative: path of an .npz of signature inputs (int8 calibration).
        integer_io: int8 inputs and outputs in place of float ones (int8 only).
        per_channel: one weight scale per output channel (else per kernel).
        full_integer: only int8 kernels (int8 only); False allows float ops.

    Raises:
        ConverterCrashError: the worker died; the message is the signal name.
        ConverterError: the converter raised; the message is its error.
    """
    job = {
        "saved_model": saved_model,
        "output": output,
        "quantization": quantization,
        "representative": representative,
        "integer_io": integer_io,
        "per_channel": per_channel,
        "full_integer": full_integer,
        "result": output + ".result.json",
    }
    result = _WORKER.run(job)
    if not result["ok"]:
        raise ConverterError(result["error"])


def shutdown() -> None:
    """Stops the worker process (it also stops when this process exits)."""
    _WORKER.stop()


# === Worker side ===


def _convert_job(tf, job: dict) -> None:
    import numpy as np

    converter = tf.lite.TFLiteConverter.from_saved_model(
        job["saved_model"], signature_keys=["serving_default"]
    )
    quantization = job["quantization"]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if not job["per_channel"]:
        # The converter has no public switch for per-tensor weight scales;
        # this attribute is the one its own tests and TF's guides use.
        converter._experimental_disable_per_channel = True
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        if job["representative"]:
            data = dict(np.load(job["representative"]))
            n = len(next(iter(data.values())))

            def representative_dataset():
                for i in range(n):
                    yield {name: value[i : i + 1] for name, value in data.items()}

            converter.representative_dataset = representative_dataset
        if job["full_integer"]:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if job["integer_io"]:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    content = converter.convert()
    with open(job["output"], "wb") as f:
        f.write(content)


def _error_text(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    # converter errors carry long MLIR traces: keep the lines that say "error"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    text = "\n".join(errors or lines)
    return text if len(text) <= 2000 else text[:1997] + "..."


def main() -> None:
    """The worker loop: one JSON job per stdin line, until stdin closes."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to the log, not the protocol
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    while True:
        line = sys.stdin.readline()
        if not line:
            break
        job = json.loads(line)
        try:
            _convert_job(tf, job)
            result = {"ok": True}
        except Exception as error:  # reported to the parent, which raises
            result = {"ok": False, "error": _error_text(error)}
        with open(job["result"], "w") as f:
            json.dump(result, f)
        protocol.write(_DONE + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
