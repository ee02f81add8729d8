"""Writing files and folders without losing what is already there.

A leaf module: it imports no other kdl module, so every module that writes
(io, export, report, training, tuning, privacy, rl) can use it without an
import cycle.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = [
    "atomic_path",
    "write_text",
    "write_json",
    "read_json",
    "timestamp",
    "move_aside",
]


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to ``path``; renames it over ``path`` on success.

    The temporary name keeps ``path``'s suffix (Keras picks the format from
    it). When the body raises, the temporary file or folder is removed and
    ``path`` is untouched. A process killed inside the body leaves ``path``
    untouched too (and a hidden ``.<name>.kdl-tmp-*`` entry behind).

    A file is renamed with ``os.replace``, which is atomic. A folder cannot be
    renamed over a non-empty folder, so the old folder is first renamed aside,
    the new one moved in (the old one is put back if that fails), and only
    then the old one deleted.

    Args:
        path: str or Path. The final path.

    Yields:
        Path: where to write.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    # mkdtemp gives a unique, private name; the data goes inside it so the
    # temporary entry keeps ``path``'s exact suffix.
    holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.kdl-tmp-", dir=folder))
    tmp = holder / path.name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written for {str(path)!r}")
        if tmp.is_dir():
            _replace_folder(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _replace_folder(new: Path, path: Path) -> None:
    """Moves folder ``new`` to ``path``; an old folder there is put back on failure."""
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.kdl-old-", dir=path.parent))
        os.replace(path, old / path.name)
    try:
        os.replace(new, path)
    except BaseException:
        if old is not None:
            os.replace(old / path.name, path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_text(path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path, data) -> Path:
    """Writes ``data`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def timestamp() -> str:
    """The local time as ``YYYYmmdd-HHMMSS``, for folder names."""
    return time.strftime("%Y%m%d-%H%M%S")


def move_aside(folder) -> Path:
    """Renames ``folder`` to ``<name>.old-<timestamp>`` beside it; returns the new path.

    kdl's one policy for a run or search folder that must not be reused
    (``kdl.train(resume=False)``, ``kdl.tune(resume=False)``): the old folder
    is kept, never deleted.
    """
    folder = Path(folder)
    target = folder.with_name(f"{folder.name}.old-{timestamp()}")
    i = 1
    while target.exists():
        i += 1
        target = folder.with_name(f"{folder.name}.old-{timestamp()}-{i}")
    os.replace(folder, target)
    return target
