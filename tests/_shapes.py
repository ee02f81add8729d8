"""Generated 64x64 colour images of three shapes, for tests on data of their own.

Circles, squares and triangles at a random position, size and colour, on a
random background colour, with Gaussian noise. NumPy only: each shape is a
mask from the pixel coordinates (no drawing library is needed for three
convex shapes).
"""

from __future__ import annotations

import numpy as np

CLASSES = ("circle", "square", "triangle")


def _mask(kind, rows, cols, cy, cx, r):
    if kind == 0:
        return (rows - cy) ** 2 + (cols - cx) ** 2 <= r**2
    if kind == 1:
        return (np.abs(rows - cy) <= r) & (np.abs(cols - cx) <= r)
    # An upward triangle: apex at (cy - r, cx), base on row cy + r.
    below_apex = rows >= cy - r
    above_base = rows <= cy + r
    half_width = (rows - (cy - r)) / 2.0
    return below_apex & above_base & (np.abs(cols - cx) <= half_width)


def shapes(n: int, *, size: int = 64, seed: int = 0, noise: float = 0.05):
    """``n`` images (n, size, size, 3) in [0, 1] and labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype("float32")
    x = np.empty((n, size, size, 3), "float32")
    y = rng.integers(0, 3, n)
    for i in range(n):
        r = rng.uniform(size * 0.1, size * 0.3)
        cy, cx = rng.uniform(r, size - r, 2)
        background, colour = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        while np.abs(colour - background).sum() < 0.6:  # keep the shape visible
            colour = rng.uniform(0, 1, 3)
        mask = _mask(y[i], rows, cols, cy, cx, r)[..., None]
        x[i] = np.where(mask, colour, background)
    x += rng.normal(0, noise, x.shape).astype("float32")
    return np.clip(x, 0, 1), y
