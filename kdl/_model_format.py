"""The format of a model path, read from its suffix (kdl.io and kdl._safe_load)."""

from __future__ import annotations

from pathlib import Path

from kdl._constants import H5_SUFFIXES, KERAS_SUFFIXES, TFLITE_SUFFIXES


def model_format(path) -> str:
    """The format :func:`kdl.save` and :func:`kdl.load` use for ``path``.

    Args:
        path: str or Path. A file name or folder.

    Returns:
        "keras", "h5", "tflite" or "savedmodel" (a path without a suffix, or an
        existing folder).

    Raises:
        ValueError: for a suffix kdl does not know.

    Example:
        >>> model_format("model.keras")
        'keras'
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return "keras"
    if suffix in H5_SUFFIXES:
        return "h5"
    if suffix in TFLITE_SUFFIXES:
        return "tflite"
    if suffix == "" or path.is_dir():
        return "savedmodel"
    raise ValueError(
        f"kdl cannot tell the model format of {str(path)!r} from its suffix "
        f"{suffix!r}. Use '.keras' (recommended), '.h5', '.tflite', or a path "
        "without a suffix for a SavedModel folder."
    )
