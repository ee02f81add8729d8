"""Helpers several test modules share (test modules never import each other).

Data writers turn scikit-learn's and statsmodels' data sets into the user's
kind of files; kernel_value_counts reads a .tflite file's int8 weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINE_CLASSES = np.array(["barolo", "grignolino", "barbera"])


def write_wine(path, *, rows=None):
    """scikit-learn's wine as a CSV: a string target and a text column."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["label"] = WINE_CLASSES[frame.pop("target").to_numpy()]
    frame.insert(3, "region", np.where(frame["alcohol"] > 13.0, "north", "south"))
    if rows is not None:
        frame = frame.iloc[rows]
    frame.to_csv(path, index=False)
    return frame


def write_sunspots(path):
    """statsmodels' yearly sunspots with a date column, oldest first."""
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    out = pd.DataFrame(
        {
            "date": [f"{int(y)}-06-30" for y in frame["YEAR"]],
            "sunspots": frame["SUNACTIVITY"],
        }
    )
    out.to_csv(path, index=False)
    return out["sunspots"].to_numpy("float32")


def write_digit_pngs(folder):
    """scikit-learn's digits as 8x8 grayscale PNG files, one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        sub = folder / f"digit_{label}"
        sub.mkdir(parents=True, exist_ok=True)
        pixels = np.round(image * 255.0 / 16.0).astype("uint8")
        Image.fromarray(pixels, mode="L").save(sub / f"{i:04d}.png")
    return folder


def kernel_value_counts(path) -> list[int]:
    """Distinct int8 values in each weight tensor of a .tflite file."""
    from kdl import export

    interpreter = export.load_tflite(path).interpreter
    counts = []
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] != np.int8 or len(detail["shape"]) < 2:
            continue
        try:
            values = interpreter.get_tensor(detail["index"])
        except ValueError:  # an activation: no data before a call
            continue
        if values.size >= 1000:
            counts.append(len(np.unique(values)))
    return counts
