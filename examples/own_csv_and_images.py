"""Your own data: a CSV table and a folder of images, read with ``kdl.datasets.load``.

To stay self-contained the script first writes both kinds of files from data
that ships with scikit-learn (nothing is downloaded):

- ``wine.csv``: scikit-learn's wine table with a text column ``cultivar``
  as the target. ``load(csv, target="cultivar")`` maps the names to classes
  0..2 (``data.classes``), splits stratified, and keeps a ``schema`` to read
  new rows the same way. The MLP normalizes its inputs itself
  (``normalize=x_train``), so the saved model takes raw rows.
- ``digit_images/<class>/*.png``: the digits as PNG files, one subfolder per
  class, the layout ``load(folder, ...)`` reads (like Keras'
  ``image_dataset_from_directory``).

Replace the paths with your own files. ``examples/own_data.py`` goes on from
a CSV file to a checked TFLite file and forecasts a series CSV.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/own_csv_and_images.py

Writes saved_models/own_csv_and_images/ (wine.csv, digit_images/, wine.keras,
digit_images.keras).
"""

from __future__ import annotations

import numpy as np
from _quick import banner, out_dir, pick, plt
from sklearn.datasets import load_digits, load_wine

import kdl
from kdl import datasets


def write_files(out):
    wine = load_wine(as_frame=True)
    table = wine.frame.drop(columns="target")
    table["cultivar"] = [wine.target_names[i] for i in wine.target]
    table.to_csv(out / "wine.csv", index=False)

    digits = load_digits()
    count = pick(len(digits.images), 300)
    for i, (image, label) in enumerate(zip(digits.images[:count], digits.target)):
        folder = out / "digit_images" / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        plt.imsave(folder / f"{i:04d}.png", image, cmap="gray", vmin=0, vmax=16)
    return out / "wine.csv", out / "digit_images"


def train_table(path, out) -> None:
    data = datasets.load(path, target="cultivar")
    (x, y), (x_test, y_test) = data
    print(
        f"{path.name}: {x.shape[1]} features, classes {data.classes}, task {data.task}"
    )
    kdl.set_seed(0)
    model = kdl.build_mlp(data.input_shape, data.num_outputs, normalize=x)
    model.fit(x, y, epochs=pick(60, 2), batch_size=16, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    print(f"wine MLP test accuracy {accuracy:.3f}")
    kdl.save(model, out / "wine.keras")
    # New rows without the target column, read with the same schema.
    new = datasets.load(path, schema=data.schema, test_size=0)
    predicted = np.argmax(model.predict(new.train[0][:3], verbose=0), axis=1)
    print("first rows predicted as", [data.classes[i] for i in predicted])


def train_images(folder, out) -> None:
    data = datasets.load(folder, image_size=(8, 8), color_mode="grayscale")
    (x, y), (x_test, y_test) = data
    print(
        f"{folder.name}: {len(x)} training images {x.shape[1:]}, classes {data.classes}"
    )
    kdl.set_seed(0)
    model = kdl.build_cnn(data.input_shape, data.num_outputs, normalize=x)
    model.fit(x, y, epochs=pick(20, 1), batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    print(f"image-folder CNN test accuracy {accuracy:.3f}")
    kdl.save(model, out / "digit_images.keras")


def main() -> None:
    banner()
    out = out_dir("own_csv_and_images")
    csv_path, image_folder = write_files(out)
    train_table(csv_path, out)
    train_images(image_folder, out)


if __name__ == "__main__":
    main()
