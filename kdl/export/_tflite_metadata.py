"""kdl's metadata inside a .tflite file: written by kdl.export, read by kdl.lite.

A leaf module on the standard library, NumPy and the flatbuffers schema that
``ai_edge_litert`` ships (``schema_py_generated``), so the device side reads
it without TensorFlow. tflite-support's metadata writers would need
protobuf < 4, which TensorFlow 2.21 cannot live with (docs/design.md); kdl
writes its metadata the way the TF converter writes its own conversion
metadata: a JSON document in a buffer named by a ``Model.metadata`` entry.

The document (format version 2; files of version 1 carry only "model",
"quantization", "inputs" as names, "outputs", "kinds" and "integer_io")::

    {"format": "kdl", "version": 2, "model": "cnn", "task": "classification",
     "inputs": [{"name": "inputs", "shape": [null, 8, 8, 1], "dtype": "float32"}],
     "outputs": [{"name": "predictions", "shape": [null, 10],
                  "kind": "classification", "meaning": "..."}],
     "kinds": {"predictions": "classification"}, "labels": {...} or null,
     "preprocessing": "...", "normalization_in_model": false,
     "quantization": null, "integer_io": false, "per_channel": true,
     "batch_size": null,
     "check": {...}, "versions": {...}, "created": "...Z",
     "run": {...} or null, "privacy": {...} or null}
"""

from __future__ import annotations

import json
import struct

import numpy as np

__all__ = [
    "NAME",
    "FORMAT_VERSION",
    "write",
    "read",
    "op_names",
    "input_names",
    "output_names",
]

NAME = "kdl"
FORMAT_VERSION = 2
_ERRORS = (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError)


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def write(content: bytes, metadata: dict) -> bytes:
    """``content`` with ``metadata`` (JSON-ready) as kdl's metadata entry.

    An earlier kdl entry is replaced; other metadata (the converter's) stays.
    """
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = NAME
    entry.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if m.name != NAME.encode()]
    model.metadata = kept + [entry]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read(content: bytes) -> dict:
    """kdl's metadata of a .tflite flatbuffer; {} for files kdl did not write.

    Call it on content the LiteRT interpreter accepted (it verifies the
    flatbuffer); a damaged metadata entry also gives {}.
    """
    try:
        model = _schema().Model.GetRootAs(content, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == NAME.encode():
                data = model.Buffers(entry.Buffer()).DataAsNumpy()
                value = json.loads(bytes(data).decode())
                return value if isinstance(value, dict) else {}
    except _ERRORS:
        return {}
    return {}


def op_names(content: bytes) -> list[str]:
    """The names of the operators a .tflite flatbuffer uses, in all subgraphs."""
    schema = _schema()
    codes = {
        value: key
        for key, value in vars(schema.BuiltinOperator).items()
        if not key.startswith("_")
    }
    model = schema.Model.GetRootAs(content, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        names.append(custom.decode() if custom else codes.get(builtin, str(builtin)))
    return names


def input_names(metadata: dict) -> list[str]:
    """The input names in Keras order, from either format version."""
    return _names(metadata.get("inputs"))


def output_names(metadata: dict) -> list[str]:
    """The output names in Keras order, from either format version."""
    return _names(metadata.get("outputs"))


def _names(entries) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [e["name"] if isinstance(e, dict) else str(e) for e in entries]
