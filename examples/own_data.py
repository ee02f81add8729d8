"""Your own data, from a CSV file to a checked TFLite file, in Python.

The script writes scikit-learn's wine data as a CSV file the way a user would
have it (a text target and a text column), then:

1. reads it with ``kdl.datasets.load`` (one-hot text columns, classes,
   stratified split),
2. trains an MLP that normalizes its raw inputs itself (``normalize=``),
3. saves it with its data schema beside it (what ``kdl predict`` reads),
4. exports it to TFLite (checked in LiteRT) and compares the predictions,
5. forecasts a series CSV (statsmodels' sunspots) with a GRU, against the
   last-value forecast.

The same steps from the shell:

    kdl train wine.csv --target label --epochs 40 --out wine.keras
    kdl predict wine.keras new_wines.csv --out predictions.csv
    kdl export wine.keras wine.tflite --quantization dynamic
    kdl evaluate wine.tflite wine.csv

Run: python examples/own_data.py [folder]   (default: saved_models/own_data)
(about a minute on a laptop CPU; ``--quick`` or ``KDL_QUICK=1`` runs a few
epochs only, whose numbers mean nothing)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import kdl
from kdl import datasets, export

QUICK = os.environ.get("KDL_QUICK", "0") not in ("", "0") or "--quick" in sys.argv


def write_wine_csv(path: Path) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    names = np.array(["barolo", "grignolino", "barbera"])
    frame["label"] = names[frame.pop("target").to_numpy()]
    frame.insert(3, "region", np.where(frame["alcohol"] > 13.0, "north", "south"))
    frame.to_csv(path, index=False)


def write_sunspots_csv(path: Path) -> None:
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    pd.DataFrame(
        {
            "date": [f"{int(y)}-06-30" for y in frame["YEAR"]],
            "sunspots": frame["SUNACTIVITY"],
        }
    ).to_csv(path, index=False)


def table(folder: Path) -> None:
    write_wine_csv(folder / "wine.csv")
    data = datasets.load(folder / "wine.csv", target="label")
    (x, y), (x_test, y_test) = data
    print(data)
    print("classes:", data.classes)
    print("one-hot features:", [f for f in data.feature_names if "=" in f])

    model = kdl.build_mlp(
        data.input_shape, data.num_outputs, task=data.task, normalize=x
    )  # the model takes raw features
    kdl.train(
        model,
        x,
        y,
        validation_split=0.1,
        epochs=3 if QUICK else 40,
        seed=0,
        run_dir=folder / "run",
        resume=False,
        verbose=0,
    )
    print("test accuracy:", round(model.evaluate(x_test, y_test, verbose=0)[1], 3))

    saved = kdl.save(model, folder / "wine.keras")
    datasets.write_schema(saved, data.schema)  # columns, encoding, class names
    tflite = export.to_tflite(
        model, folder / "wine.tflite", check_data=x_test, verbose=0
    )
    lite = kdl.load(tflite).predict(x_test)
    keras_classes = model.predict(x_test, verbose=0).argmax(-1)
    print(
        "TFLite agrees with Keras on",
        f"{np.mean(lite.argmax(-1) == keras_classes):.0%} of the test wines",
    )


def series(folder: Path) -> None:
    write_sunspots_csv(folder / "sunspots.csv")
    data = datasets.load(folder / "sunspots.csv", window=12)
    (x, y), (x_test, y_test) = data
    model = kdl.build_gru(
        data.input_shape,
        1,
        task="regression",
        units=(16,),
        dense_units=(16,),
        normalize=x,
        learning_rate=0.02,
    )
    kdl.set_seed(0)
    model.fit(x, y, epochs=3 if QUICK else 60, batch_size=32, verbose=0)
    mae = np.mean(np.abs(model.predict(x_test, verbose=0) - y_test))
    naive = np.mean(np.abs(x_test[:, -1, :] - y_test))
    print(f"sunspots: GRU MAE {mae:.1f}, last-value MAE {naive:.1f}")


def main(folder: str = "saved_models/own_data") -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    table(out)
    series(out)


if __name__ == "__main__":
    if QUICK:
        print("short mode (KDL_QUICK=1 or --quick): numbers are not meaningful")
    main(*[a for a in sys.argv[1:2] if a != "--quick"])
