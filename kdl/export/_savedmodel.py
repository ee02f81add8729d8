"""kdl.export.to_savedmodel: a TensorFlow SavedModel with a serving signature."""

from __future__ import annotations

from pathlib import Path

from kdl import _validation as v
from kdl._files import atomic_path
from kdl.export import _signatures as sig
from kdl.export._graph import say, serving_function
from kdl.lite import SIGNATURE


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
    path = v.check_path(path, "path", func)
    v.check_verbose(verbose, func)
    if path.is_file():
        v.fail(func, "path", "a folder (it is an existing file)", str(path))
    if path.is_dir() and any(path.iterdir()) and not (path / "saved_model.pb").exists():
        v.fail(
            func,
            "path",
            "a new folder, an empty one or an existing "
            "SavedModel (kdl does not delete other folders)",
            str(path),
        )
    specs = sig.input_specs(model, func)

    with atomic_path(path) as tmp:
        serve = serving_function(model, specs, batch_size=None)
        model.save(
            str(tmp),
            save_format="tf",
            include_optimizer=False,
            signatures={SIGNATURE: serve.get_concrete_function()},
        )
    say(
        verbose,
        f"Saved {model.name!r} as a SavedModel in {path} (signature "
        f"{SIGNATURE!r}: inputs {[s[0] for s in specs]}).",
    )
    return path
