"""Compression benchmark: the goals of issue 15, side by side in one run.

Parts (all by default; pick some with ``--parts``):

- ``sizes``: the default digits CNN, with and without batch norm: float test
  accuracy; pruned 80% + int8 and pruned + sparsity-preserving clustering (16)
  + int8 (one weight scale per kernel, as ``report.standard_variants``
  exports them), gzipped TFLite size against the float TFLite file and
  accuracy in LiteRT; ``shrink(fraction=0.5)`` multiply-adds and accuracy.
- ``speed``: ``build_cnn((32, 32, 3), 10, filters=(32, 64, 128))`` and its
  ``shrink(fraction=0.5)``, float TFLite latency per example in LiteRT
  (synthetic inputs: computation, not accuracy, is measured).
- ``distill``: a student with a quarter of the teacher's parameters (the
  batch-normalized digits CNN), distilled with the defaults and trained alone
  for 40 epochs, against the teacher.
- ``gru``: a GRU on the sunspots; test MAE of the float, shrunk and pruned
  models.
- ``builders``: every default builder's digits model (MLP, CNN, ResNet, LSTM,
  bidirectional GRU) on another split; change in test accuracy, in points,
  after ``prune``, ``cluster`` and ``shrink`` with their defaults.

Every transform runs with its default settings. Results (mean and range over
the seeds) are printed and written as Markdown to ``--out``.

    .venv/bin/python benchmarks/compression.py --seeds 0 1 2 \\
        --out /work/notes/bench-compression.md
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np

import kdl
from kdl import compression, datasets, export


def gzipped(path: Path) -> int:
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9))


def _tflite(model, folder, name, x, quantization=None, per_channel=True):
    path = export.to_tflite(
        model,
        Path(folder) / f"{name}.tflite",
        quantization=quantization,
        representative_data=x[:200] if quantization == "int8" else None,
        per_channel=per_channel,
        verbose=0,
    )
    return path


def _lite_accuracy(path, x_test, y_test) -> float:
    return export.evaluate_tflite(path, x_test, y_test, latency_samples=0)["accuracy"]


def sizes(seed: int, batch_norm: bool, folder) -> dict:
    """Prune + int8 and prune + cluster + int8 against the float model."""
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    kdl.set_seed(seed)
    model = kdl.build_cnn((8, 8, 1), 10, batch_norm=batch_norm)
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    tag = f"{'bn' if batch_norm else 'plain'}{seed}"
    float_path = _tflite(model, folder, f"float_{tag}", x)
    row = {"float": model.evaluate(x_test, y_test, verbose=0)[1]}
    pruned = compression.prune(model, x, y, verbose=0)
    path = _tflite(pruned, folder, f"pruned_{tag}", x, "int8", per_channel=False)
    row["pruned+int8"] = _lite_accuracy(path, x_test, y_test)
    row["pruned+int8 x"] = gzipped(float_path) / gzipped(path)
    clustered = compression.cluster(pruned, x, y, preserve_sparsity=True, verbose=0)
    path = _tflite(clustered, folder, f"clustered_{tag}", x, "int8", per_channel=False)
    row["pruned+clustered+int8"] = _lite_accuracy(path, x_test, y_test)
    row["pruned+clustered+int8 x"] = gzipped(float_path) / gzipped(path)
    smaller = compression.shrink(model, x, y, verbose=0)
    row["shrink"] = smaller.evaluate(x_test, y_test, verbose=0)[1]
    row["shrink MACs x"] = (
        compression.multiply_adds(model)["total"]
        / compression.multiply_adds(smaller)["total"]
    )
    return row


def speed(seed: int, folder) -> dict:
    """Float TFLite latency of a compute-bound CNN and of its shrunk copy."""
    rng = np.random.default_rng(seed)
    x = rng.random((256, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    kdl.set_seed(seed)
    model = kdl.build_cnn((32, 32, 3), 10, filters=(32, 64, 128))
    smaller = compression.shrink(model, x, y, epochs=1, verbose=0)
    row = {}
    for name, variant in (("original", model), ("shrunk", smaller)):
        path = _tflite(variant, folder, f"speed_{name}{seed}", x)
        result = export.evaluate_tflite(path, x, y, latency_samples=200, warmup=20)
        row[f"{name} ms"] = result["latency_ms_median"]
    row["speed-up x"] = row["original ms"] / row["shrunk ms"]
    row["MACs x"] = (
        compression.multiply_adds(model)["total"]
        / compression.multiply_adds(smaller)["total"]
    )
    return row


def distill(seed: int, _folder) -> dict:
    """Teacher, distilled student and the same student trained alone."""
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    kdl.set_seed(seed)
    # the batch-normalized CNN: a teacher worth learning from (the plain one,
    # 0.975, was no better than the student alone, 0.970-0.977)
    teacher = kdl.build_cnn((8, 8, 1), 10, batch_norm=True)
    teacher.fit(x, y, epochs=20, verbose=0)

    def student():
        return kdl.build_cnn((8, 8, 1), 10, filters=(16, 32), dense_units=(56,))

    kdl.set_seed(seed)
    alone = student()
    # all the data, and more epochs than distill's default (37 on the digits)
    alone.fit(x, y, epochs=40, verbose=0)
    kdl.set_seed(seed)
    distilled = compression.distill(teacher, student(), x, y, verbose=0)
    return {
        "teacher": teacher.evaluate(x_test, y_test, verbose=0)[1],
        "student alone": alone.evaluate(x_test, y_test, verbose=0)[1],
        "distilled": distilled.evaluate(x_test, y_test, verbose=0)[1],
        "params /": teacher.count_params() / distilled.count_params(),
    }


def gru(seed: int, _folder) -> dict:
    """Test MAE of a sunspots GRU, shrunk and pruned with default settings."""
    (x, y), (x_test, y_test) = datasets.sunspots(window=24)
    kdl.set_seed(seed)
    model = kdl.build_gru((24, 1), 1, task="regression")
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)

    def mae(m):
        return float(np.mean(np.abs(m.predict(x_test, verbose=0) - y_test)))

    row = {"float MAE": mae(model)}
    row["shrink MAE"] = mae(compression.shrink(model, x, y, verbose=0))
    row["prune MAE"] = mae(compression.prune(model, x, y, verbose=0))
    row["shrink/float"] = row["shrink MAE"] / row["float MAE"]
    row["prune/float"] = row["prune MAE"] / row["float MAE"]
    return row


def builders(seed: int, _folder) -> dict:
    """Change in test accuracy (points) after each default transform, on every
    default builder's digits model, on another split than the tests'
    (``datasets.digits(seed=seed + 7)``), as a new user would try them."""
    cases = {
        "mlp": ("flat", lambda: kdl.build_mlp((64,), 10)),
        "cnn": ("image", lambda: kdl.build_cnn((8, 8, 1), 10)),
        "resnet": ("image", lambda: kdl.build_resnet((8, 8, 1), 10)),
        "lstm": ("sequence", lambda: kdl.build_lstm((8, 8), 10)),
        "bigru": ("sequence", lambda: kdl.build_gru((8, 8), 10, bidirectional=True)),
    }
    row = {}
    for name, (layout, make) in cases.items():
        (x, y), (x_test, y_test) = datasets.digits(layout=layout, seed=seed + 7)
        kdl.set_seed(seed)
        model = make()
        model.fit(x, y, epochs=20, batch_size=32, verbose=0)
        base = model.evaluate(x_test, y_test, verbose=0)[1]
        row[f"{name} float"] = base
        for transform in ("prune", "cluster", "shrink"):
            smaller = getattr(compression, transform)(model, x, y, verbose=0)
            accuracy = smaller.evaluate(x_test, y_test, verbose=0)[1]
            row[f"{name} {transform}"] = 100 * (accuracy - base)
    return row


PARTS = {
    "sizes-plain": lambda seed, folder: sizes(seed, False, folder),
    "sizes-bn": lambda seed, folder: sizes(seed, True, folder),
    "speed": speed,
    "distill": distill,
    "gru": gru,
    "builders": builders,
}


def _table(part: str, rows: list[dict], seeds) -> str:
    keys = list(rows[0])
    lines = [
        f"### {part} (seeds {', '.join(map(str, seeds))})",
        "",
        "| seed | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for seed, row in zip(seeds, rows):
        lines.append(f"| {seed} | " + " | ".join(f"{row[k]:.4g}" for k in keys) + " |")
    means = [np.mean([row[k] for row in rows]) for k in keys]
    lines.append("| mean | " + " | ".join(f"{m:.4g}" for m in means) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = ["## kdl.compression benchmark", ""]
    with tempfile.TemporaryDirectory() as folder:
        for part in args.parts:
            start = time.perf_counter()
            rows = [PARTS[part](seed, folder) for seed in args.seeds]
            table = _table(part, rows, args.seeds)
            took = time.perf_counter() - start
            print(table + f"({took:.0f} s)\n", flush=True)
            text += [table, f"({took:.0f} s)", ""]
            if args.out:
                args.out.write_text("\n".join(text))


if __name__ == "__main__":
    main()
