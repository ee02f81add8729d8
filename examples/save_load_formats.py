"""Saving and loading in every format: .keras, .h5, SavedModel and .tflite.

``kdl.save(model, path)`` picks the format from the path: ``.keras`` (the
Keras archive, the default to use), ``.h5`` (legacy HDF5), a folder without a
suffix (TensorFlow SavedModel, for TF Serving) or ``.tflite`` (for devices,
checked in the LiteRT interpreter before it is written). ``kdl.load(path)``
reads each one back; the script checks that every reloaded model predicts what
the original predicts, and writes a table of the file sizes.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/save_load_formats.py

Writes saved_models/save_load_formats/ (digits.keras, digits.h5,
digits_savedmodel/, digits.tflite and formats.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _quick import banner, out_dir, pick

import kdl
from kdl import datasets

FORMATS = {
    "Keras archive": "digits.keras",
    "HDF5": "digits.h5",
    "SavedModel": "digits_savedmodel",
    "TFLite": "digits.tflite",
}


def size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main() -> None:
    banner()
    out = out_dir("save_load_formats")
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    kdl.set_seed(0)
    model = kdl.build_cnn((8, 8, 1), 10, filters=(16, 32))
    model.fit(x, y, epochs=pick(10, 1), batch_size=32, verbose=0)
    expected = model.predict(x_test, verbose=0)

    rows = [
        "| format | path | bytes | max difference after reload |",
        "|---|---|---:|---:|",
    ]
    for label, name in FORMATS.items():
        path = kdl.save(model, out / name)
        loaded = kdl.load(path)
        # A .tflite file loads as a LiteRT runner with the same predict().
        got = np.asarray(
            loaded.predict(x_test, verbose=0)
            if label != "TFLite"
            else loaded.predict(x_test)
        )
        difference = float(np.max(np.abs(got - expected)))
        print(f"{label:14s} {path}  {size(path):>9,} bytes  max diff {difference:.2g}")
        rows.append(f"| {label} | {path.name} | {size(path):,} | {difference:.2g} |")
        if difference > 1e-4:
            raise SystemExit(f"{label}: the reloaded model does not predict the same")
    (out / "formats.md").write_text("\n".join(rows) + "\n")
    print(f"table: {out / 'formats.md'}")


if __name__ == "__main__":
    main()
