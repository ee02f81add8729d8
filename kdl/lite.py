"""Run kdl's .tflite files on a device: NumPy and LiteRT only, never TensorFlow.

An edge device (a Raspberry Pi, an industrial PC, an app's Python backend)
installs the LiteRT interpreter and NumPy, not TensorFlow::

    pip install --no-deps /path/to/kdl   # the distribution is kdl-workflow
    pip install ai-edge-litert numpy pillow

This module imports only the standard library, NumPy and ``ai_edge_litert``
(and two kdl helper modules that import nothing else), so loading a file and
getting the first prediction takes a fraction of a second and little memory.
It runs every file :func:`kdl.export.to_tflite` writes: every builder, float,
dynamic range, float16 and int8 files, int8 inputs and outputs, fixed-batch
recurrent files, several inputs and outputs. :func:`kdl.export.load_tflite`
and ``kdl.load("model.tflite")`` return the same object.

Example:
    >>> from kdl import lite
    >>> model = lite.load("digits_cnn.tflite", num_threads=1)  # doctest: +SKIP
    >>> model.predict(x).shape  # doctest: +SKIP
    (360, 10)
    >>> model.classify(x[:3])  # doctest: +SKIP
    array(['zero', 'seven', 'three'], dtype='<U5')
    >>> model.metadata["quantization"]  # doctest: +SKIP
    'int8'
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kdl import _arrays
from kdl import _validation as v
from kdl._safe_common import TENSOR_RATIO, TENSOR_SLACK, refuse
from kdl.export import _tflite_metadata as meta

__all__ = ["load", "LiteModel", "SIGNATURE", "check_tensor_bytes"]

SIGNATURE = "serving_default"


def _check_count(value, arg: str, func: str) -> int | None:
    """A positive int or None (kdl._validation would import TensorFlow)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        _arrays.fail(func, arg, "a positive int or None", value, error=TypeError)
    if value < 1:
        _arrays.fail(func, arg, "a positive int or None", value)
    return value


def _interpreter(content: bytes, path, num_threads):
    from ai_edge_litert.interpreter import Interpreter

    where = f"The file {str(path)!r}" if path is not None else "The content"
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ValueError(
            f"{where} is not a TFLite flatbuffer (no 'TFL3' identifier); it is "
            "corrupt or not a model."
        )
    try:
        return Interpreter(model_content=content, num_threads=num_threads)
    except (ValueError, RuntimeError) as error:
        raise ValueError(
            f"{where} is truncated or corrupt: LiteRT could not read it as a "
            f"TFLite flatbuffer ({error})."
        ) from None


class LiteModel:
    """A .tflite file in the LiteRT interpreter, with a Keras-like ``predict``.

    Create it with :func:`load`. Inputs are given as in Keras: one array, a
    list in the Keras model's input order, or a dict by input name. Float
    inputs of an int8-interface file are quantized on the way in and its
    outputs dequantized on the way out. Fused recurrent ops keep their state
    between interpreter calls; it is reset after every call, so each batch
    starts from zeros as in Keras.

    Attributes:
        path: pathlib.Path or None. The file it was loaded from.
        metadata: dict. What kdl stored in the file (empty for other files):
            task, inputs, outputs and their meaning, labels, preprocessing,
            quantization, the LiteRT check's result, versions, creation
            time, the training run and the privacy guarantee.
        input_names: list of str. Inputs, in the Keras model's order.
        output_names: list of str. Outputs, in the Keras model's order.
        input_details: dict. Input name -> LiteRT's tensor details (shape,
            dtype, quantization).
        batch_size: int or None. The fixed batch of the file (1 for recurrent
            models), or None when the batch is dynamic.
        kinds: dict. Output name -> "classification", "binary" or
            "regression" (from the metadata; empty for other files).
        labels: dict. Output name -> class names (from the metadata).
        op_names: list of str. The operators the file uses, in all subgraphs.
        size: int. The file's size in bytes.
        interpreter: the ``ai_edge_litert`` interpreter.
    """

    def __init__(self, content: bytes, *, path=None, num_threads: int | None = None):
        self.path = None if path is None else Path(path)
        self.interpreter = _interpreter(content, path, num_threads)
        self.size = len(content)
        self.metadata = meta.read(content)
        self.op_names = meta.op_names(content)
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise ValueError(
                f"The .tflite file {self.path or ''} has no signature; kdl runs "
                "files with a signature (every TFLite converter since TF 2.7 "
                "writes one)."
            )
        key = SIGNATURE if SIGNATURE in signatures else next(iter(signatures))
        self._runner = self.interpreter.get_signature_runner(key)
        self.input_details = self._runner.get_input_details()
        self._outputs = self._runner.get_output_details()
        self.input_names = _ordered(
            meta.input_names(self.metadata), signatures[key]["inputs"]
        )
        self.output_names = _ordered(
            meta.output_names(self.metadata), signatures[key]["outputs"]
        )
        batches = {
            int(d["shape_signature"][0])
            for d in self.input_details.values()
            if len(d["shape_signature"])
        }
        self.batch_size = max(batches) if batches and -1 not in batches else None
        self.kinds = dict(self.metadata.get("kinds") or {})
        self.labels = dict(self.metadata.get("labels") or {})

    def __repr__(self) -> str:
        return (
            f"LiteModel(path={str(self.path)!r}, inputs={self.input_names}, "
            f"outputs={self.output_names}, batch_size={self.batch_size})"
        )

    def input_specs(self) -> list[tuple[str, np.dtype, tuple]]:
        """(name, dtype fed, shape without batch) of each input, in order.

        The inputs of an int8-interface file are fed as float32 (quantized by
        :meth:`run`); integer arrays go in as they are.
        """
        specs = []
        for name in self.input_names:
            details = self.input_details[name]
            shape = tuple(
                None if d < 0 else int(d) for d in details["shape_signature"][1:]
            )
            dtype = np.dtype(details["dtype"])
            if np.issubdtype(dtype, np.integer) and details["quantization"][0]:
                dtype = np.dtype("float32")
            specs.append((name, dtype, shape))
        return specs

    def _feed(self, name: str, value: np.ndarray) -> np.ndarray:
        details = self.input_details[name]
        dtype = np.dtype(details["dtype"])
        scale, zero_point = details["quantization"]
        if (
            scale
            and np.issubdtype(dtype, np.integer)
            and not np.issubdtype(value.dtype, np.integer)
        ):
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
        # the next (docs/design.md): reset it, so every call starts from zeros.
        self.interpreter.reset_all_variables()
        return outputs

    def predict_dict(
        self, inputs: dict[str, np.ndarray], *, batch_size: int | None = None
    ) -> dict[str, np.ndarray]:
        """Like :meth:`predict` for checked inputs {name: array}; always a dict."""
        total = _arrays.count(inputs)
        step = self.batch_size or batch_size or 32
        parts = {name: [] for name in self.output_names}
        for start in range(0, total, step):
            chunk = _arrays.take({k: x[start:] for k, x in inputs.items()}, step)
            size = _arrays.count(chunk)
            if self.batch_size and size < step:  # pad the last fixed-size batch
                chunk = {
                    k: np.concatenate([x, np.repeat(x[-1:], step - size, 0)])
                    for k, x in chunk.items()
                }
            for name, value in self.run(chunk).items():
                parts[name].append(value[:size])
        return {name: np.concatenate(values) for name, values in parts.items()}

    def read_image(self, path) -> np.ndarray:
        """An image file as one example for this file's image input.

        Read with Pillow (``pip install pillow``; no TensorFlow), converted to
        the input's channels (1 grayscale, 3 RGB, 4 RGBA) and resized
        (bilinear) to its height and width, as float32 pixel values 0-255 like
        ``kdl.datasets.load`` gives for a folder of images.

        Args:
            path: str or os.PathLike. A PNG, JPEG, BMP or GIF file.

        Returns:
            A float32 array of shape (1, height, width, channels).

        Raises:
            ImportError: without Pillow (the message says what to install).
            ValueError: when the file has one input that is not an image, or
                the file is not an image Pillow reads (the message names it).
        """
        specs = self.input_specs()
        shape = specs[0][2] if len(specs) == 1 else ()
        if len(shape) != 3 or None in shape or shape[2] not in _PIL_MODES:
            raise ValueError(
                f"LiteModel.read_image: the file {self.path} takes inputs of "
                f"shape {[s[2] for s in specs]}, not one image (height, width, "
                "1, 3 or 4 channels)"
            )
        return _read_image(path, shape)[None]

    def predict(self, x, batch_size: int | None = None, verbose=0):
        """Runs the model on ``x`` in the LiteRT interpreter.

        Args:
            x: array, list of arrays (Keras input order) or dict by input
                name; or the path of an image file, read by
                :meth:`read_image`.
            batch_size: int or None. Examples per interpreter call for files
                with a dynamic batch. Files with a fixed batch (recurrent
                models: 1) always run that many at a time. Defaults to `None`
                (32).
            verbose: "auto", 0, 1 or 2. Accepted like Keras'
                ``Model.predict`` so that code written for a Keras model runs
                on a ``.tflite`` one; the interpreter shows no progress bar.
                Defaults to `0`.

        Returns:
            An array for a single-output model, else a dict {output: array}.

        Raises:
            ValueError: for inputs of the wrong shape (the message names the
                input and the shape it takes) or number of examples.
            TypeError: for inputs that are not numeric arrays.
        """
        func = "LiteModel.predict"
        _check_count(batch_size, "batch_size", func)
        if verbose != "auto":
            v.check_verbose(verbose, func)
        if isinstance(x, (str, os.PathLike)):
            x = self.read_image(x)
        inputs = _arrays.as_inputs(self.input_specs(), x, func, "x")
        outputs = self.predict_dict(inputs, batch_size=batch_size)
        if len(self.output_names) == 1:
            return outputs[self.output_names[0]]
        return outputs

    def classify(self, x, batch_size: int | None = None):
        """The predicted class of each example: its label, else its index.

        A softmax output gives the most probable class; a sigmoid output the
        positive class (index 1) above 0.5. Class names come from the file's
        metadata (``kdl.export.to_tflite(..., labels=...)``).

        Args:
            x: array, list of arrays or dict, as for :meth:`predict`.
            batch_size: int or None. As for :meth:`predict`.

        Returns:
            An array of labels (or int indices) for a model with one output;
            a dict {output: array} over the classification outputs of a
            multi-output model.

        Raises:
            ValueError: if the file has no classification output, or for bad
                inputs as in :meth:`predict`.
        """
        outputs = self.predict(x, batch_size=batch_size)
        if not isinstance(outputs, dict):
            outputs = {self.output_names[0]: outputs}
        result = {}
        for name, values in outputs.items():
            kind = self.kinds.get(name) or (
                "classification" if values.shape[-1] > 1 else "regression"
            )
            if kind == "regression":
                continue
            if kind == "classification" and values.shape[-1] > 1:
                index = values.argmax(-1)
            else:
                index = (values[..., 0] > 0.5).astype("int64")
            labels = self.labels.get(name)
            result[name] = np.asarray(labels)[index] if labels else index
        if not result:
            raise ValueError(
                f"LiteModel.classify: the file {self.path} has no classification "
                f"output (outputs {self.kinds or self.output_names} are "
                "regression outputs); use predict."
            )
        if len(self.output_names) == 1:
            return result[self.output_names[0]]
        return result


# channels -> Pillow's mode
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _read_image(path, shape) -> np.ndarray:
    """One image file as a float32 (height, width, channels) array."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError(
            "kdl.lite: reading an image file needs Pillow, which is not "
            "installed: pip install pillow"
        ) from None
    try:
        with Image.open(path) as image:
            image = image.convert(_PIL_MODES[shape[2]])
            image = image.resize((shape[1], shape[0]), Image.BILINEAR)
            pixels = np.asarray(image, dtype="float32")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(
            f"LiteModel.read_image: {os.fspath(path)!r} is not an image file "
            f"Pillow reads ({type(err).__name__})"
        ) from None
    return pixels.reshape(shape)


def _ordered(preferred: list[str], names) -> list[str]:
    """``preferred`` when it names the same tensors as ``names``, else ``names``.

    TFLite signatures keep inputs in alphabetical order; kdl's metadata keeps
    the Keras order, so ``predict([source, decoder_input])`` means what it
    means in Keras.
    """
    names = list(names)
    return list(preferred) if sorted(preferred) == sorted(names) else names


def check_tensor_bytes(model: LiteModel, func: str = "kdl.lite.load") -> None:
    """Refuses a .tflite file whose tensors would take more than its budget.

    A few KB of flatbuffer can declare ``Fill([32768, 32768])`` with a
    constant shape: it loads, and the first ``predict`` allocates 4 GiB (review
    h29). The interpreter reads every tensor's shape without allocating; the
    bytes of all tensors with a static shape (shape x dtype size; a dynamic
    dimension, -1 in ``shape_signature``, counted as 1 and not bounded) must
    stay within ``TENSOR_RATIO`` x the file's size + ``TENSOR_SLACK``, the
    budget of kdl's SavedModel checks.

    Args:
        model: LiteModel. The file, in the interpreter.
        func: str. The public function named in the message.

    Raises:
        ValueError: naming the largest tensor and the total.
    """
    limit = TENSOR_RATIO * model.size + TENSOR_SLACK
    total, largest = 0, (0, "")
    for detail in model.interpreter.get_tensor_details():
        shape = [max(int(d), 1) for d in detail["shape"]]
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize
        total += size
        largest = max(largest, (size, f"{detail['name']!r} of shape {shape}"))
    if total > limit:
        refuse(
            func,
            model.path or "",
            f"its tensors take {total:,} bytes together (the largest, "
            f"{largest[1]}, {largest[0]:,} bytes); a .tflite file of "
            f"{model.size:,} bytes may take at most {limit:,} "
            f"({TENSOR_RATIO}x its size plus {TENSOR_SLACK:,}).",
        )


def load(path, num_threads: int | None = None, *, safe_mode: bool = True) -> LiteModel:
    """Loads a .tflite file into the LiteRT interpreter.

    Args:
        path: str or os.PathLike. The .tflite file.
        num_threads: int or None. Interpreter threads. Defaults to `None`
            (LiteRT's choice).
        safe_mode: bool. Refuse a file whose tensors would take more than
            16x its size plus 64 MiB (:func:`check_tensor_bytes`). Defaults
            to `True`.

    Returns:
        A :class:`LiteModel` with ``predict``, ``classify`` and ``metadata``.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is not a TFLite flatbuffer, or is truncated
            or corrupt, or (``safe_mode``) its tensors would take more than
            its budget.
        TypeError: for arguments of the wrong type.

    Example:
        >>> model = load("mlp_int8.tflite")  # doctest: +SKIP
        >>> model.predict(x_test).argmax(-1)  # doctest: +SKIP
    """
    func = "kdl.lite.load"
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        _arrays.fail(
            func, "path", "a non-empty str or os.PathLike", path, error=TypeError
        )
    num_threads = _check_count(num_threads, "num_threads", func)
    v.check_bool(safe_mode, "safe_mode", func)
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "nothing"
        raise FileNotFoundError(f"No .tflite file at {str(path)!r} ({what} there).")
    model = LiteModel(path.read_bytes(), path=path, num_threads=num_threads)
    if safe_mode:
        check_tensor_bytes(model, func)
    return model
