"""The two messages of kdl's model-file checks (issues 19 and 29).

A leaf module shared by :mod:`kdl._safe_load` and the checks it delegates to
(:mod:`kdl._safe_symbols`, :mod:`kdl._safe_archive`, :mod:`kdl._safe_graph`),
so that none of them reaches into another's private names.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

__all__ = ["refuse", "corrupt", "real_bytes", "TENSOR_RATIO", "TENSOR_SLACK"]

# A tensor (declared in a weights file, or implied by a layer's config or a
# graph) may be at most this many times the bytes that hold the weights, plus
# a slack; the same budget bounds what a .tflite file's tensors take together.
TENSOR_RATIO = 16
TENSOR_SLACK = 64 * 2**20


def _trusted_call(func):
    if func == "kdl.load":
        return "kdl.load(path, safe_mode=False)"
    return "kdl.load(path, safe_mode=False) in Python"


def refuse(func, path, what):
    """Raises the one "refused to load" ValueError, with how to load a trusted file."""
    raise ValueError(
        f"{func} refused to load {str(path)!r}: {what} If you trust the source "
        f"of this file, call {_trusted_call(func)}, which warns and skips "
        "these checks."
    )


def corrupt(func, path, fmt, reason, err=None):
    """Raises the one "could not load" ValueError of a corrupt or foreign file."""
    raise ValueError(
        f"{func} could not load {str(path)!r} as a {fmt} model: {reason}"
    ) from err


def _allocated(stat) -> int:
    """Bytes a file really holds: a sparse file's hole takes no block."""
    blocks = getattr(stat, "st_blocks", None)
    if blocks is None:  # Windows: no block count
        return stat.st_size
    return min(stat.st_size, blocks * 512)


def _archive_bytes(path, func) -> int:
    """Bytes of a zip archive's own records (entries and central directory).

    The apparent size counts whatever precedes the archive (zipfile accepts
    leading data, e.g. a 1 GiB hole), which would inflate the budget.
    """
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    first = min((info.header_offset for info in infos), default=0)
    if first != 0:
        refuse(
            func,
            path,
            f"its archive starts at byte {first:,}, after data that is no "
            "part of it (a .keras file is a zip archive from its first byte).",
        )
    records = sum(
        76 + 2 * len(info.filename) + len(info.extra) + len(info.comment)
        for info in infos
    )
    return sum(info.compress_size for info in infos) + records + 22


def real_bytes(path, func: str = "kdl.load") -> int:
    """The bytes a model file or SavedModel folder really holds, for budgets.

    Sparse files count their allocated blocks, a zip archive its own records,
    and a folder its regular files; a symlink inside a folder is refused (it
    could point at any large file).
    """
    path = Path(path)
    if path.is_dir():
        total = 0
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                entry = Path(root, name)
                if entry.is_symlink():
                    refuse(
                        func,
                        path,
                        f"it holds the symlink {str(entry.relative_to(path))!r}; "
                        "a SavedModel folder holds regular files only.",
                    )
            total += sum(_allocated(Path(root, n).lstat()) for n in files)
        return total
    size = _allocated(path.stat())
    if zipfile.is_zipfile(path):
        try:
            return min(size, _archive_bytes(path, func))
        except (zipfile.BadZipFile, OSError):
            return size
    return size
