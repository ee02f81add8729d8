"""The one Keras kdl uses: tf_keras, the Keras 2 API.

TF Model Optimization and TensorFlow Privacy only work with Keras 2 models,
which ship as the ``tf-keras`` package. Keras 3 is installed too (TensorFlow
needs it), and mixing the two breaks in confusing ways. This module is the only
place in kdl that imports Keras: it sets ``TF_USE_LEGACY_KERAS=1`` before
anything touches ``tf.keras`` and exports ``tf_keras`` as ``kdl.keras``.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf", "is_keras3_object", "require_keras2"]


def is_keras3_object(obj) -> bool:
    """Returns True when ``obj`` is an object (or class) of Keras 3.

    Keras 3 classes live in modules named ``keras...``; tf_keras classes live in
    ``tf_keras...``. The check reads module names only, so it never imports
    Keras 3.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in getattr(cls, "__mro__", (cls,)):
        module = getattr(klass, "__module__", "") or ""
        if module == "keras" or module.startswith("keras."):
            return True
    return False


def require_keras2(obj, arg: str, func: str) -> None:
    """Raises TypeError when ``obj`` comes from Keras 3 instead of ``kdl.keras``.

    Args:
        obj: object. The model, layer, callback or optimizer to check.
        arg: str. The argument name, for the message.
        func: str. The public function name, for the message.

    Raises:
        TypeError: if ``obj`` is a Keras 3 object.
    """
    if obj is not None and is_keras3_object(obj):
        raise TypeError(
            f"The {arg!r} parameter of {func} is a Keras 3 object "
            f"({type(obj).__module__}.{type(obj).__name__}). kdl works with the "
            "Keras 2 API only: build it with `kdl.keras` (tf_keras), e.g. "
            "`from kdl import keras`, not `import keras`."
        )
