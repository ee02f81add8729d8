"""Sliding windows over a series, in time order: the one windowing of kdl.

Used by :func:`kdl.datasets.sunspots` and by :func:`kdl.datasets.load` for
series files and arrays. NumPy only (no TensorFlow), so a series is checked
and windowed before TensorFlow is imported.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_windows", "count_windows", "split_in_time"]


def count_windows(length: int, window: int, horizon: int) -> int:
    """How many (window -> value ``horizon`` steps later) examples a series gives."""
    return max(length - window - horizon + 1, 0)


def make_windows(series: np.ndarray, target: np.ndarray, window: int, horizon: int):
    """Cuts a series into input windows and the value ``horizon`` steps after each.

    Example ``i`` reads rows ``i .. i + window - 1`` of ``series`` and its
    target is ``target[i + window + horizon - 1]``: with ``horizon=1`` the
    value right after the window. Windows stay in time order.

    Args:
        series: array (steps, features). The inputs, oldest first.
        target: array (steps,). The value to forecast, aligned with ``series``.
        window: int. Steps in each input window.
        horizon: int. How many steps after the window's last step the target
            lies (1 = the next step).

    Returns:
        (x, y, last): x of shape (n, window, features), y of shape (n, 1),
        and the index of the target row of each window (n,).
    """
    n = count_windows(len(series), window, horizon)
    starts = np.arange(n)
    idx = starts[:, None] + np.arange(window)[None, :]
    rows = starts + window + horizon - 1
    x = series[idx]
    y = target[rows][:, None]
    return x, y, rows


def split_in_time(n: int, test_size: float) -> int:
    """The number of leading examples that train: the last ``test_size`` test."""
    return int(round(n * (1.0 - test_size)))
