"""A training run's folder and its run.json: what kdl.train records and reads back.

The folder policy itself (move aside, never delete; atomic writes) is
:mod:`kdl._files`'; this module knows what a *run* folder holds, and keeps it
to one process at a time (:class:`FolderLock`, issue 29).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from kdl import _files
from kdl.backend import keras, tf

__all__ = [
    "RUN_JSON",
    "HISTORY_PNG",
    "DEFAULT_ROOT",
    "default_run_dir",
    "run_state",
    "describe_data",
    "new_record",
    "results",
    "now",
    "LOCK_FILE",
    "FolderLock",
]

RUN_JSON = "run.json"
HISTORY_PNG = "history.png"
DEFAULT_ROOT = "saved_models"
LOCK_FILE = ".kdl-lock"
# What kdl._files.atomic_path leaves behind when its process is killed.
_TMP_PATTERN = ".*.kdl-tmp-*"


def now() -> str:
    """The local time as ``YYYY-mm-ddTHH:MM:SS``, for run.json."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def default_run_dir(model_name: str) -> Path:
    """``saved_models/<model name>-<date>-<time>`` in the current folder, unused."""
    base = Path.cwd() / DEFAULT_ROOT / f"{model_name}-{_files.timestamp()}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def run_state(run_dir: Path) -> str:
    """'new', 'unfinished', 'finished' or 'foreign' (not a kdl run folder)."""
    if not run_dir.exists() or not any(
        entry.name != LOCK_FILE for entry in run_dir.iterdir()
    ):
        return "new"
    record = _files.read_json(run_dir / RUN_JSON)
    if record is None or "status" not in record:
        return "foreign"
    return "finished" if record["status"] == "finished" else "unfinished"


def _shapes(data, leaves: list):
    if isinstance(data, tf.data.Dataset):
        return str(data.element_spec)
    if len(leaves) == 1 and leaves[0] is data:
        return list(np.shape(data))
    return tf.nest.map_structure(lambda a: list(np.shape(a)), data)


def _hash_update(digest, leaves) -> None:
    for leaf in leaves:
        array = np.ascontiguousarray(
            leaf.numpy() if isinstance(leaf, tf.Tensor) else np.asarray(leaf)
        )
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B") if array.size else b"")


def describe_data(x, y, info, validation_parts) -> dict:
    """The "data" entry of run.json: shapes and a SHA-256 of the arrays.

    Args:
        x, y: the training data as given.
        info: the ``DataInfo`` of ``kdl._validation.check_data``.
        validation_parts: None, a dataset, or a list of ``(part, leaves)``
            for each array part of the validation tuple.

    The hash is None when any part is a ``tf.data.Dataset``: a dataset is not
    read twice (it may be a stream).
    """
    digest = hashlib.sha256()
    record = {"x": _shapes(x, info.x_leaves), "y": None, "validation": None}
    _hash_update(digest, info.x_leaves)
    if y is not None and not info.is_dataset:
        record["y"] = _shapes(y, info.y_leaves)
        _hash_update(digest, info.y_leaves)
    hashable = not info.is_dataset
    if isinstance(validation_parts, tf.data.Dataset):
        record["validation"] = _shapes(validation_parts, [])
        hashable = False
    elif validation_parts is not None:
        record["validation"] = [_shapes(p, leaves) for p, leaves in validation_parts]
        for _, leaves in validation_parts:
            _hash_update(digest, leaves)
    record["sha256"] = digest.hexdigest() if hashable else None
    return record


def _versions() -> dict:
    import kdl

    return {
        "kdl": kdl.__version__,
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def new_record(model, *, seed, arguments: dict, data: dict) -> dict:
    """The run.json of a run that has not started yet."""
    return {
        "status": "running",
        "started": now(),
        "versions": _versions(),
        "seed": seed,
        "arguments": arguments,
        "model": {"name": model.name, "parameters": int(model.count_params())},
        "data": data,
        "sessions": [],
    }


def _finite(value: float):
    """JSON has no NaN or infinity: those become strings."""
    return value if math.isfinite(value) else str(value)


def results(history, monitor: str, epochs: int) -> dict:
    """The result fields of run.json: epochs, final and best metrics."""
    hist = history.history
    n = len(history.epoch)
    final = {k: _finite(float(vals[-1])) for k, vals in hist.items() if vals}
    result = {
        "epochs_completed": n,
        "stopped_early": n < epochs,
        "final_metrics": final,
        "best_epoch": None,
        "best_metrics": None,
    }
    values = hist.get(monitor)
    finite = [
        (i, float(x)) for i, x in enumerate(values or ()) if math.isfinite(float(x))
    ]
    if finite:
        pick = max if monitor.endswith(("acc", "accuracy", "auc")) else min
        i, _ = pick(finite, key=lambda item: item[1])
        result["best_epoch"] = int(history.epoch[i])
        result["best_metrics"] = {
            k: _finite(float(vals[i])) for k, vals in hist.items() if len(vals) > i
        }
    return result


# === One process per run folder (issue 29) ===


class FolderLock:
    """Holds a run folder for this process: an OS advisory lock on ``.kdl-lock``.

    ``fcntl.flock`` locks belong to the open file: the OS frees them when the
    process ends, however it ends (kill -9 included), so a lock is never left
    stuck, unlike a lock file whose mere existence means "busy". The holder
    writes its pid into the file, for the message another process gets, and
    removes the file when it releases the folder (a file a killed holder
    left is simply locked again).

    Use as a context manager; :meth:`acquire` takes a folder (created if
    needed), :meth:`move_aside` moves the held folder aside and holds the
    new, empty one; leaving the ``with`` block releases it.

    Args:
        func: str. The public function named in errors (``"kdl.train"``).
        what: str. What the folder is, in errors. Defaults to "run folder".
    """

    LOCK_FILE = LOCK_FILE

    def __init__(self, func: str, what: str = "run folder"):
        self.func, self.what = func, what
        self.folder: Path | None = None
        self._file = None
        self._created = False  # the lock made the folder: an empty one goes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def _denied(self, folder: Path, err: OSError):
        reason = err.strerror or str(err)
        raise PermissionError(
            f"{self.func} cannot write in the {self.what} {str(folder)!r}: "
            f"{reason.lower()}. Give this user write access to it or pick "
            "another folder."
        ) from None

    def acquire(self, folder) -> FolderLock:
        """Locks ``folder``; cleans what a killed write left there.

        Raises:
            BlockingIOError: another process holds the folder (the message
                names its pid).
            PermissionError: the folder cannot be created or written.
        """
        folder = Path(folder)
        handle = None
        while handle is None:
            handle = self._lock_file(folder)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.folder, self._file = folder, handle
        self._check_writable(folder)
        _clean_leftovers(folder)
        return self

    def _lock_file(self, folder: Path):
        """The locked lock file of ``folder``, or None to try again."""
        try:
            self._created = self._created or not folder.exists()
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 (held open)
        except PermissionError as err:
            self._denied(folder, err)
        except FileNotFoundError:
            return None  # an empty folder was removed as we opened it: again
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = _holder(handle)
            handle.close()
            raise BlockingIOError(
                f"{self.func} cannot use the {self.what} {str(folder)!r}: "
                f"process {holder} is using it. Wait for it to finish, or pick "
                "another folder."
            ) from None
        if not _same_file(handle, folder / LOCK_FILE):
            handle.close()  # its holder removed it as we opened it: again
            return None
        return handle

    def _check_writable(self, folder: Path) -> None:
        try:  # a real write: os.access says yes to root even where it cannot
            fd, probe = tempfile.mkstemp(prefix=".kdl-probe-", dir=folder)
        except PermissionError as err:
            self.release()
            self._denied(folder, err)
        os.close(fd)
        os.unlink(probe)

    def release(self) -> None:
        """Frees the folder (a no-op when nothing is held)."""
        if self._file is not None:
            # Removed while still locked: a process that opened it meanwhile
            # sees it is gone (_same_file) and opens the new one.
            lock_file = self.folder / LOCK_FILE
            with contextlib.suppress(OSError):
                if _same_file(self._file, lock_file):
                    lock_file.unlink()
            with contextlib.suppress(OSError):
                self._file.close()  # closing the file frees the flock
            if self._created:  # a call refused before it wrote leaves nothing
                with contextlib.suppress(OSError):
                    self.folder.rmdir()  # only if empty
        self._file = None

    def move_aside(self) -> Path:
        """Moves the held folder to ``<name>.old-<timestamp>``; holds a new one."""
        folder = self.folder
        moved = _files.move_aside(folder)
        with contextlib.suppress(OSError):  # it means nothing in the old folder
            (moved / LOCK_FILE).unlink()
        self.release()
        self.acquire(folder)
        return moved


def _same_file(handle, path: Path) -> bool:
    """True if the open ``handle`` is the file at ``path`` (not a removed one)."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


def _holder(handle) -> str:
    """The pid written in a held lock file (it may not be written yet)."""
    for _ in range(20):
        handle.seek(0)
        text = handle.read().strip()
        if text.isdigit():
            return text
        time.sleep(0.05)
    return "(unknown pid)"


def _clean_leftovers(folder: Path) -> None:
    """Removes the temporary entries of writes killed in ``folder``.

    Only entries of kdl._files.atomic_path (``.<name>.kdl-tmp-*``): each holds
    an unfinished write, never the only copy of anything.
    """
    for entry in folder.glob(_TMP_PATTERN):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
