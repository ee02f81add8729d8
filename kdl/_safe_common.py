"""The two messages of kdl's model-file checks (issues 19 and 29).

A leaf module shared by :mod:`kdl._safe_load` and the checks it delegates to
(:mod:`kdl._safe_symbols`, :mod:`kdl._safe_archive`, :mod:`kdl._safe_graph`),
so that none of them reaches into another's private names.
"""

from __future__ import annotations

__all__ = ["refuse", "corrupt"]


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
