"""The stdout contract of the ``kdl`` command.

stdout carries only the command's result (JSON, or CSV for ``kdl predict``
without ``--out``); everything else a command or a library prints (progress,
Keras' ``Found N files belonging to K classes.``, TensorFlow's and absl's
logging) goes to stderr, and ``--quiet`` silences it except errors.

Python-level writes are redirected with :mod:`contextlib`; when stdout is the
process' real file descriptor 1, that descriptor is pointed at stderr too, so
that what C++ code (TensorFlow, LiteRT) writes there cannot reach stdout either.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["result_stream", "command_streams"]

# The stream the result goes to while a command runs (a one-item list, so the
# commands and this module share it without a global statement).
_RESULT = [None]


def result_stream():
    """Where a command writes its result: the real stdout while it runs."""
    return _RESULT[0] if _RESULT[0] is not None else sys.stdout


def _fd_of(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _quiet_libraries() -> None:
    """--quiet: TensorFlow's C++ and Python logging only on errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    for name in ("tensorflow", "absl", "h5py", "jax"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _point_fd(fd: int, target: int):
    """Points file descriptor ``fd`` at ``target``; yields a text stream on
    what ``fd`` was."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(fd)
    os.dup2(target, fd)
    real = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    try:
        yield real
    finally:
        try:
            real.close()  # flushes; a closed pipe raises BrokenPipeError
        finally:
            os.dup2(saved, fd)
            os.close(saved)


@contextlib.contextmanager
def command_streams(quiet: bool):
    """While a command runs: results to the real stdout, everything else to
    stderr (to nothing with ``quiet``). Yields the real stderr, for errors."""
    real_err = sys.stderr
    if quiet:
        _quiet_libraries()
    with contextlib.ExitStack() as stack:
        if quiet and _fd_of(sys.stderr) == 2:  # C++ logging writes to fd 2
            null = os.open(os.devnull, os.O_WRONLY)
            stack.callback(os.close, null)
            real_err = stack.enter_context(_point_fd(2, null))
        if _fd_of(sys.stdout) == 1:
            result = stack.enter_context(_point_fd(1, 2))
        else:
            result = sys.stdout
        chatter = (
            stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
            if quiet
            else real_err
        )
        stack.enter_context(contextlib.redirect_stdout(chatter))
        stack.enter_context(contextlib.redirect_stderr(chatter))
        previous, _RESULT[0] = _RESULT[0], result
        try:
            yield real_err
        finally:
            _RESULT[0] = previous
