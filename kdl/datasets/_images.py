"""A folder of images, one subfolder per class, through Keras' own loader.

The folder is checked with the standard library first (class subfolders that
hold images), so a mistake is reported before TensorFlow is imported.
Keras' ``image_dataset_from_directory`` then reads the files in a fixed order
(classes sorted by name, files by path); kdl splits that list stratified by
class, the same way for arrays and for streamed ``tf.data`` pipelines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdl import _validation as v

__all__ = ["IMAGE_SUFFIXES", "COLOR_MODES", "scan_folder", "read_folder"]

# The suffixes image_dataset_from_directory reads.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLOR_MODES = ("rgb", "grayscale", "rgba")
CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}


def _images_in(folder: Path) -> list:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


# The first bytes of each kind of image Keras' decode_image reads. A file is
# checked by its content (not its name) before TensorFlow reads it, because
# TensorFlow's error for a file it cannot decode does not name the file.
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")


def check_image_file(file: Path, func: str, arg: str = "path") -> None:
    """Refuses a file that does not start like a PNG, JPEG, BMP or GIF."""
    try:
        with open(file, "rb") as f:
            head = f.read(8)
    except OSError as err:
        v.fail(func, arg, f"a folder of readable image files ({err})", str(file))
    if not any(head.startswith(m) for m in _MAGIC):
        v.fail(
            func,
            arg,
            "a folder of images: this file is not a PNG, JPEG, BMP or GIF image "
            "(its content, whatever its name)",
            str(file),
        )


def scan_folder(path: Path, func: str, classes=None) -> dict:
    """Class name -> number of images, checked before TensorFlow is imported
    (each file's first bytes too)."""
    subfolders = sorted(
        p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    files = {p.name: _images_in(p) for p in subfolders}
    for file in (f for found in files.values() for f in found):
        check_image_file(file, func)
    counts = {name: len(found) for name, found in files.items()}
    counts = {name: n for name, n in counts.items() if n}
    kinds = "/".join(s[1:].upper() for s in IMAGE_SUFFIXES[:4])
    if not counts:
        loose = any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())
        where = "images lie in the folder itself" if loose else "no images found"
        v.fail(
            func,
            "path",
            f"a folder with one subfolder of images ({kinds}) per class ({where})",
            str(path),
        )
    if classes is None and len(counts) < 2:
        v.fail(
            func,
            "path",
            "a folder with at least two class subfolders "
            f"holding images (found only {list(counts)})",
            str(path),
        )
    if classes is not None:
        extra = sorted(set(counts) - {str(c) for c in classes})
        if extra:
            v.fail(
                func,
                "path",
                f"a folder whose class subfolders are among the "
                f"model's classes {list(classes)} (found {extra})",
                str(path),
            )
    return counts


def _keras_dataset(path, classes, image_size, color_mode):
    from kdl.backend import keras

    return keras.utils.image_dataset_from_directory(
        str(path),
        labels="inferred",
        label_mode="int",
        class_names=classes,
        color_mode=color_mode,
        batch_size=None,
        image_size=tuple(image_size),
        shuffle=False,
    )


def _name_unreadable(paths, err) -> None:
    """Raises the error of TensorFlow's failed read, naming the file."""
    from kdl.backend import tf

    for file in paths:
        try:
            tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
        except tf.errors.OpError:
            v.fail(
                "kdl.datasets.load",
                "path",
                "a folder of images TensorFlow can decode (this one is broken)",
                str(file),
            )
    raise ValueError(f"kdl.datasets.load: an image could not be read: {err}")


def read_folder(
    path: Path,
    *,
    classes,
    image_size,
    color_mode,
    split,
    as_dataset: bool,
    batch_size: int,
    seed: int,
):
    """Reads the images; ``split(labels)`` gives (train, test) indices.

    Returns:
        (train, test, file_paths, parts): ``(x, y)`` pairs of arrays (in the
        order of the indices), or ``(dataset, None)`` pairs of batched,
        prefetched ``tf.data`` pipelines with ``as_dataset``; the file paths
        in reading order and the (train, test) indices.
    """
    from kdl.backend import tf

    dataset = _keras_dataset(path, list(classes), image_size, color_mode)
    paths = list(dataset.file_paths)
    folder_of = {str(c): i for i, c in enumerate(classes)}
    labels = np.array(
        [folder_of[Path(p).relative_to(path).parts[0]] for p in paths], dtype="int64"
    )
    parts = split(labels)
    if not as_dataset:
        try:
            x = np.concatenate([b.numpy() for b, _ in dataset.batch(256)])
        except tf.errors.OpError as err:  # a header fine, the rest broken
            _name_unreadable(paths, err)
        x = x.astype("float32")
        (i, j) = parts
        return (x[i], labels[i]), (x[j], labels[j]), paths, parts
    mask = np.zeros(len(labels), bool)
    mask[parts[1]] = True
    flags = tf.constant(mask)

    def part(test: bool):
        kept = dataset.enumerate().filter(lambda i, _: flags[i] == test)
        return kept.map(lambda i, pair: pair)

    train = part(False).shuffle(max(batch_size * 8, 256), seed=seed)
    train = train.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    test = part(True).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return (train, None), (test, None), paths, parts
