"""Export models for serving and for edge devices, verified in LiteRT.

- :func:`to_savedmodel`: a TensorFlow SavedModel with a "serving_default"
  signature (also loadable as a Keras model).
- :func:`to_tflite`: a .tflite file, float or quantized ("dynamic", "float16",
  "int8"), from a model of any kdl builder. Every file is run in the LiteRT
  interpreter (``ai_edge_litert``, the runtime edge devices use) and compared
  with the Keras model before it is written; a file that fails the check is
  never written. Every file describes itself: task, inputs, outputs and their
  meaning, class labels, preprocessing, quantization, the check's result,
  versions, creation time, the training run and the privacy guarantee, read
  on a device with :mod:`kdl.lite` (no TensorFlow there).
- :func:`to_micro`: a folder for TFLite Micro (``MICRO_FILES``: the C array,
  its header, the op resolver and the .tflite file).
- :func:`load_tflite` and :func:`evaluate_tflite`: run a .tflite file in LiteRT
  (through :mod:`kdl.lite`) with a Keras-like ``predict``, and measure its
  metrics and per-example latency.

How the export works: ``_tflite.py`` says (tracing, recurrent models at batch 1,
the converter in a worker process).

Example:
    >>> from kdl import build_mlp, datasets, export
    >>> (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp((64,), 10)
    >>> _ = model.fit(x, y, epochs=3, verbose=0)
    >>> path = export.to_tflite(model, "mlp_int8.tflite", quantization="int8",
    ...                         representative_data=x[:200], check_data=x_test,
    ...                         labels=[str(i) for i in range(10)])
    >>> export.evaluate_tflite(path, x_test, y_test)["accuracy"]  # doctest: +SKIP

The package's modules: ``_tflite`` (:func:`to_tflite`), ``_savedmodel``,
``_runtime`` (:func:`load_tflite`, :func:`evaluate_tflite`), ``_describe``
(the file's metadata), ``_graph`` (the traced function), ``_convert`` (the
converter's worker process), ``_signatures`` (inputs and outputs of a model)
and ``_tflite_metadata`` (the metadata's place in the flatbuffer, read by
:mod:`kdl.lite` too). The names load lazily: :mod:`kdl.lite` reads
``_tflite_metadata`` without importing TensorFlow.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_NAMES = {
    "QUANTIZATIONS": "_tflite",
    "SIGNATURE": "_tflite",
    "ExportCheckError": "_tflite",
    "ConverterCrashError": "_tflite",
    "ConverterError": "_tflite",
    "TFLiteModel": "_tflite",
    "to_tflite": "_tflite",
    "to_savedmodel": "_savedmodel",
    "load_tflite": "_runtime",
    "evaluate_tflite": "_runtime",
    "TASKS": "_runtime",
    "RUN_JSON": "_describe",
    "to_micro": "_micro",
    "MicroUnsupportedError": "_micro",
    "MICRO_FILES": "_micro",
}

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
    "to_micro",
    "MicroUnsupportedError",
    "MICRO_FILES",
]


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'kdl.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kdl.export.{_NAMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
