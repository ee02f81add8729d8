"""The one Keras kdl uses: tf_keras, the Keras 2 API.

TF Model Optimization and TensorFlow Privacy only work with Keras 2 models,
which ship as the ``tf-keras`` package. Keras 3 is installed too (TensorFlow
needs it), and mixing the two breaks in confusing ways. This module is the only
place in kdl that imports Keras: it sets ``TF_USE_LEGACY_KERAS=1`` before
anything touches ``tf.keras`` and exports ``tf_keras`` as ``kdl.keras``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile

os.environ["TF_USE_LEGACY_KERAS"] = "1"

# TensorFlow's C++ log level, 0 (everything) to 3 (fatal errors only). kdl
# picks 3 unless the user chose a level: on a CPU machine the lines below
# level 3 are start-up notices (oneDNN, CUDA drivers, CPU instructions), a
# failed cuInit, and tf.data's "NodeDef mentions attribute
# use_unbounded_threadpool" that every seeded fit prints (issue 13). Errors
# that stop the work still reach the user as Python exceptions.
_USER_LOG_LEVEL = (
    None
    if os.environ.get("KDL_CHOSE_TF_LOG_LEVEL")
    else os.environ.get("TF_CPP_MIN_LOG_LEVEL")
)
_QUIET_LEVEL = "3"
if _USER_LOG_LEVEL is None:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _QUIET_LEVEL

# A C++ log line: severity letter, date, time, thread, file:line].
_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
_PREINIT = "All log messages before absl::InitializeLog() is called"


def _drop_quiet_lines(text: str, min_level: int) -> str:
    """Drops C++ log lines (and their continuation lines) below ``min_level``."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match:
            dropping = "IWEF".index(match.group(1)) < min_level
        elif _PREINIT in line:
            dropping = True
        elif not line.startswith((" ", "\t", "To enable")):
            dropping = False  # not a C++ log line nor a continuation of one
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _filtered_stderr(min_level: int):
    """Sends C++ lines written to stderr below ``min_level`` nowhere.

    TensorFlow's libraries log a few lines while they load, before absl's
    logging is initialised, and those ignore TF_CPP_MIN_LOG_LEVEL. They are
    written to file descriptor 2 by C++, so Python can only filter them there:
    the descriptor points to a temporary file while TensorFlow is imported,
    then everything else in it is written back to stderr.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = _drop_quiet_lines(text, min_level)
            if kept:
                os.write(2, kept.encode())


if _USER_LOG_LEVEL is None and "tensorflow" not in sys.modules:
    with _filtered_stderr(int(_QUIET_LEVEL)):
        import tensorflow as tf
        import tf_keras as keras
else:
    import tensorflow as tf
    import tf_keras as keras


def _print_tf_messages_once() -> None:
    """TensorFlow's Python messages go through its own handler only.

    When the root logger has no handler, TensorFlow's logger gets one of its
    own. absl's logging functions (TensorFlow's checkpoint writer calls them)
    run ``logging.basicConfig()`` when the root logger has none, and from then
    on every TensorFlow message was printed twice: by TensorFlow's handler and
    again by the root's (issue 13). A logger with its own handler need not
    also pass its messages up.
    """
    logger = tf.get_logger()
    if logger.handlers:
        logger.propagate = False


_print_tf_messages_once()


@contextlib.contextmanager
def keep_root_logger():
    """Keeps a library from configuring the root logger behind the user's back.

    absl's logging functions call ``logging.basicConfig()`` when the root
    logger has no handler, which silently turns a later
    ``logging.basicConfig(level=...)`` of the user's into a no-op. Inside this
    block the root logger holds a stand-in handler that prints warnings to
    stderr (as Python's last-resort handler does); it is removed afterwards.
    """
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    stand_in = logging.StreamHandler()
    stand_in.setLevel(logging.WARNING)
    stand_in.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    root.addHandler(stand_in)
    try:
        yield
    finally:
        root.removeHandler(stand_in)


__all__ = ["keras", "tf", "is_keras3_object", "require_keras2", "keep_root_logger"]


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
