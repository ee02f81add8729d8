"""Saving and loading models in every format kdl uses.

- ``.keras``: the native Keras format (a zip archive). The default.
- ``.h5`` / ``.hdf5``: the legacy HDF5 format.
- a folder (a path without a suffix): a TensorFlow SavedModel.
- ``.tflite``: a LiteRT flatbuffer, written by :func:`kdl.export.to_tflite`
  and read by :func:`kdl.lite.load` (no TensorFlow needed to run it).

Nothing already saved is lost: :func:`save` writes to a temporary file in the
target's folder and renames it over the target only once it is complete, so a
save that is killed halfway leaves the earlier file intact.

:func:`load` honours ``safe_mode`` in every format: Keras itself only refuses
Python code (``Lambda`` layers) in ``.keras`` files, while the HDF5 and
SavedModel loaders run it without asking; kdl checks the saved configuration
first. Models holding kdl layers, TF-MOT pruning, clustering or quantization
wrappers, or TensorFlow Privacy classes load without ``custom_objects``.

Example:
    >>> import kdl
    >>> model = kdl.build_mlp((64,), 10)
    >>> path = kdl.save(model, "/tmp/mlp.keras")
    >>> same = kdl.load(path)
"""

from __future__ import annotations

import contextlib
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from kdl import _safe_load, lite
from kdl import _validation as v
from kdl._constants import (  # noqa: F401 (kdl.io's names too)
    FORMATS,
    H5_SUFFIXES,
    KERAS_SUFFIXES,
    TFLITE_SUFFIXES,
)
from kdl._files import atomic_path  # public here too: kdl.io.atomic_path
from kdl._model_format import model_format
from kdl.backend import keras, tf

__all__ = ["save", "load", "model_format", "atomic_path", "SavedModelPredictor"]


_LAMBDA = re.compile(r'"class_name":\s*"Lambda"')
# Class names that only models from kdl.compression (TF-MOT) and kdl.privacy
# (TensorFlow Privacy) carry; seeing one in a saved config imports that module.
_COMPRESSION_MARKERS = re.compile(
    r"PruneLowMagnitude|Quantize|Quantizer|ClusterWeights|tfmot"
)
_PRIVACY_MARKERS = re.compile(
    r'PrivateModel|"class_name":\s*"(kdl>)?(DP|Vectorized)|privacy'
)


def save(model, path) -> Path:
    """Saves ``model`` to ``path`` without ever leaving a half-written file there.

    The format follows the suffix: ``.keras`` (recommended), ``.h5``,
    ``.tflite`` (float32, through :func:`kdl.export.to_tflite`, which checks
    the file in LiteRT), or no suffix for a SavedModel folder. The model is
    written to a temporary name in the same folder first and renamed over
    ``path`` when complete, so an earlier file at ``path`` survives a failed or
    killed save.

    Args:
        model: kdl.keras.Model. The model to save (it is not changed).
        path: str or Path. Target file, or folder for a SavedModel. Missing
            parent folders are created.

    Returns:
        Path: the saved path.

    Raises:
        TypeError: if ``model`` is not a kdl.keras model (a Keras 3 model
            names `kdl.keras`), or ``path`` is not a str or Path.
        ValueError: for an unknown suffix, a path that is an existing folder
            when a file format is asked for (or the reverse), or a folder
            holding other files than a SavedModel (it would be replaced).

    Example:
        >>> path = save(kdl.build_mlp((64,), 10), "/tmp/mlp.keras")
    """
    func = "kdl.save"
    v.check_keras_model(model, "model", func)
    path = v.check_path(path, "path", func)
    fmt = model_format(path)
    if fmt != "savedmodel" and path.is_dir():
        v.fail(
            func, "path", f"a file path for the {fmt!r} format, not a folder", str(path)
        )
    if fmt == "savedmodel" and path.exists() and not path.is_dir():
        v.fail(
            func, "path", "a folder for a SavedModel, not an existing file", str(path)
        )
    if (
        fmt == "savedmodel"
        and path.is_dir()
        and any(path.iterdir())
        and not (path / "saved_model.pb").exists()
    ):  # the folder is replaced whole: never delete the user's other files
        v.fail(
            func,
            "path",
            "a new or empty folder, or a SavedModel folder to replace (this "
            "one holds other files, which saving would delete)",
            str(path),
        )

    with atomic_path(path) as tmp:
        if fmt == "keras":
            model.save(tmp)
        elif fmt == "h5":
            model.save(tmp, save_format="h5")
        elif fmt == "savedmodel":
            model.save(tmp, save_format="tf")
        else:
            # kdl.export holds the converter; it never imports kdl.io (it
            # writes with kdl._files), so this import makes no cycle.
            from kdl import export

            export.to_tflite(model, tmp, verbose=0)
    return path


def _fail_load(path, fmt, reason, err=None):
    raise ValueError(
        f"kdl.load could not load {str(path)!r} as a {fmt} model: {reason}"
    ) from err


def _read_config_text(path: Path, fmt: str) -> str:
    """The saved model configuration as text (JSON), checking the container.

    Raises:
        ValueError: when the file is not a model of ``fmt`` or is truncated.
    """
    readers = {"keras": _keras_config, "h5": _h5_config}
    return readers.get(fmt, _savedmodel_config)(path)


def _keras_config(path: Path) -> str:
    fmt = "keras"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            starts_as_zip = f.read(4) == b"PK\x03\x04"
        if starts_as_zip:  # the zip directory at the end is missing
            _fail_load(path, fmt, "the archive is truncated or corrupt.")
        _fail_load(
            path,
            fmt,
            "it is not a .keras archive (a .keras file "
            "is a zip archive), so it is corrupt or not a model.",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member, checks its CRC
            if bad is not None:
                _fail_load(path, fmt, f"the archive member {bad!r} is corrupt.")
            if "config.json" not in archive.namelist():
                _fail_load(
                    path,
                    fmt,
                    "the archive holds no config.json, "
                    "so it is not a Keras model file.",
                )
            return archive.read("config.json").decode("utf-8", "replace")
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        _fail_load(path, fmt, f"the archive is truncated or corrupt ({err}).", err)


def _h5_config(path: Path) -> str:
    import h5py

    fmt = "h5"
    if not h5py.is_hdf5(path):
        _fail_load(
            path, fmt, "it is not an HDF5 file; the file is corrupt or not a model."
        )
    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except OSError as err:
        _fail_load(path, fmt, f"the HDF5 file is truncated or corrupt ({err}).", err)
    if config is None:
        _fail_load(
            path,
            fmt,
            "the HDF5 file holds no model_config (it may "
            "hold weights only: load them with model.load_weights).",
        )
    return (
        config.decode("utf-8", "replace") if isinstance(config, bytes) else str(config)
    )


def _savedmodel_config(path: Path) -> str:
    if (
        not (path / "saved_model.pb").exists()
        and not (path / "saved_model.pbtxt").exists()
    ):
        _fail_load(
            path,
            "savedmodel",
            "the folder holds no saved_model.pb, so it is not a SavedModel.",
        )
    metadata = path / "keras_metadata.pb"
    if metadata.exists():
        return metadata.read_bytes().decode("utf-8", "replace")
    return ""


def _extra_custom_objects(config_text: str, *, everything: bool) -> dict:
    """Custom objects of kdl modules whose classes the saved config names.

    kdl.compression and kdl.privacy import TF-MOT and TensorFlow Privacy, which
    are slow to import, so each is imported only when the config names one of
    its classes (or when it is already imported, or ``everything`` is set).
    """
    import kdl.augment  # noqa: F401  (registers kdl's own layers)

    objects = {}
    for module, markers in (
        ("kdl.compression", _COMPRESSION_MARKERS),
        ("kdl.privacy", _PRIVACY_MARKERS),
    ):
        if not (everything or module in sys.modules or markers.search(config_text)):
            continue
        try:
            mod = __import__(module, fromlist=["custom_objects"])
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        if hasattr(mod, "custom_objects"):
            objects.update(mod.custom_objects())
    return objects


class SavedModelPredictor:
    """A SavedModel that was not written by Keras, with a Keras-like ``predict``.

    Attributes:
        path: Path. The SavedModel folder.
        saved_model: the object ``tf.saved_model.load`` returned.
        signature: the ``serving_default`` concrete function.
    """

    def __init__(self, path, saved_model):
        self.path = Path(path)
        self.saved_model = saved_model
        if "serving_default" not in saved_model.signatures:
            _fail_load(
                path,
                "savedmodel",
                "it was not written by Keras and has "
                "no 'serving_default' signature to run.",
            )
        self.signature = saved_model.signatures["serving_default"]
        self._input_names = sorted(self.signature.structured_input_signature[1])

    def predict(self, x, *, batch_size: int = 256) -> np.ndarray:
        """Runs the serving signature on ``x`` (one array) in batches.

        Returns:
            np.ndarray, or a dict of arrays when the signature has several
            outputs.
        """
        if len(self._input_names) != 1:
            raise ValueError(
                f"This SavedModel takes {len(self._input_names)} inputs "
                f"{self._input_names}; call its .signature with them by name."
            )
        spec = self.signature.structured_input_signature[1][self._input_names[0]]
        x = np.asarray(x, dtype=spec.dtype.as_numpy_dtype)
        parts = []
        for start in range(0, len(x), batch_size):
            out = self.signature(
                **{self._input_names[0]: tf.constant(x[start : start + batch_size])}
            )
            parts.append({k: t.numpy() for k, t in out.items()})
        keys = sorted(parts[0])
        merged = {k: np.concatenate([p[k] for p in parts]) for k in keys}
        return merged[keys[0]] if len(keys) == 1 else merged


def load(path, *, safe_mode: bool = True, compile: bool = True, custom_objects=None):
    """Loads a model saved by :func:`save` (or by Keras) in any format.

    Args:
        path: str or Path. A ``.keras``, ``.h5`` or ``.tflite`` file, or a
            SavedModel folder.
        safe_mode: bool. Refuse files that name code (modules, ``Lambda``
            layers, op layers naming functions with side effects), SavedModel
            graphs with ops that may act outside the model (file writes,
            ``PyFunc``, print, ...), and files that would extract or allocate
            far more than their size. ``False`` warns and skips the checks:
            only for files you trust. Honoured for ``.keras``, ``.h5`` and
            SavedModel. Defaults to `True`.
        compile: bool. Compile the model with its saved loss, metrics and
            optimizer. Defaults to `True`.
        custom_objects: dict or None. Class or function name -> object, as
            in ``keras.models.load_model``: your own layers, losses or
            metrics. With ``safe_mode=True`` these objects are allowed by
            you: a file may name them, and their code runs while loading
            (kdl checks the rest of the file as before). Pass only objects
            you trust. Defaults to `None`.

    Returns:
        A `kdl.keras.Model`; for ``.tflite`` a :class:`kdl.lite.LiteModel`
        (``.predict(x)``, ``.classify(x)``, ``.metadata``); for a
        SavedModel that Keras did not write, a :class:`SavedModelPredictor`.

    Raises:
        FileNotFoundError: if nothing exists at ``path``.
        ValueError: for an unknown suffix, a file that is not a model or is
            truncated or corrupt, or a ``Lambda`` layer with ``safe_mode=True``.
        TypeError: for arguments of the wrong type.

    Example:
        >>> model = load("/tmp/mlp.keras")
    """
    func = "kdl.load"
    path = v.check_path(path, "path", func)
    v.check_bool(safe_mode, "safe_mode", func)
    v.check_bool(compile, "compile", func)
    if custom_objects is not None and not isinstance(custom_objects, dict):
        v.fail(func, "custom_objects", "a dict or None", custom_objects,
               error=TypeError)  # fmt: skip
    users = dict(custom_objects or {})
    if not path.exists():
        raise FileNotFoundError(f"kdl.load found no file or folder at {str(path)!r}.")
    fmt = model_format(path)
    if fmt == "tflite":
        return _load_tflite(path, safe_mode)
    if fmt != "savedmodel" and path.is_dir():
        _fail_load(path, fmt, "it is a folder, not a file.")
    if safe_mode:  # before anything reads the file's names (issue 19)
        _safe_load.check_model_file(
            path, custom_objects=users, more_objects=_objects_named
        )
    else:
        _safe_load.warn_unsafe(path)

    config_text = _read_config_text(path, fmt)
    if fmt == "savedmodel" and not config_text:
        try:
            with _safe_load.variable_budget(path, func) if safe_mode else _no_budget():
                loaded = tf.saved_model.load(str(path))
            return SavedModelPredictor(path, loaded)
        except ValueError:
            raise
        except Exception as err:  # noqa: BLE001 - any TF error means unreadable
            _fail_load(path, fmt, f"TensorFlow could not read it ({err}).", err)
    if safe_mode and _LAMBDA.search(config_text):
        raise ValueError(
            f"kdl.load refused to load {str(path)!r}: the model holds a Lambda "
            "layer, whose Python code would run while loading. If you trust the "
            "source of this file, call kdl.load(path, safe_mode=False)."
        )

    def attempt(everything):
        custom = {**_extra_custom_objects(config_text, everything=everything), **users}
        kwargs = {"safe_mode": safe_mode} if fmt == "keras" else {}
        budget = _safe_load.variable_budget if safe_mode else _no_budget
        with keras.utils.custom_object_scope(custom), budget(path, func):
            return keras.models.load_model(
                path, custom_objects=custom, compile=compile, **kwargs
            )

    try:
        model = attempt(everything=False)
    except Exception as first:  # noqa: BLE001 - retried, then re-raised clearly
        _raise_refusal(first, func)
        try:
            # A class kdl did not recognise by name may still come from
            # kdl.compression or kdl.privacy: try again with all of them.
            model = attempt(everything=True)
        except Exception:  # noqa: BLE001
            _fail_load(path, fmt, f"{type(first).__name__}: {first}", first)
    model = _safe_load.check_loaded(model, path)
    if safe_mode:
        _safe_load.check_activations(model, path)
    return model


def _raise_refusal(err, func) -> None:
    """Re-raises a safe-mode refusal raised inside Keras' loading as one line.

    A budget check refuses from inside ``keras.models.load_model``; Keras may
    wrap that error in its own. The refusal alone is raised, not "could not
    load ... : ValueError: kdl.load refused ..." (review h29).
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = str(err)
        start = text.find(f"{func} refused to load ")
        if start >= 0:
            raise ValueError(text[start:]) from None
        err = err.__cause__ or err.__context__


@contextlib.contextmanager
def _no_budget(*_):
    """No variable budget (``safe_mode=False``: the user trusts the file)."""
    yield


def _objects_named(names: str) -> dict:
    """The kdl.compression / kdl.privacy classes ``names`` may mean (issue 19)."""
    return _extra_custom_objects(names, everything=False)


def _load_tflite(path: Path, safe_mode: bool):
    if path.is_dir():
        _fail_load(path, "tflite", "it is a folder, not a file.")
    try:
        model = lite.load(path, safe_mode=False)
    except ValueError as err:  # not TFLite, truncated or corrupt
        _fail_load(path, "tflite", str(err), err)
    if safe_mode:  # its tensors' bytes, within the budget (review h29)
        lite.check_tensor_bytes(model, "kdl.load")
    else:
        _safe_load.warn_unsafe(path)
    return model
