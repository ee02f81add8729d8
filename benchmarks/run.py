"""kdl's speed benchmarks, each a ratio measured side by side in one run.

Run from the repository root with ``make bench`` (a few minutes on CPU). It
prints a Markdown report and writes it to docs/benchmarks.md:

1. DP-SGD: seconds per epoch of each DP path (TF Privacy's fast gradient
   clipping, vectorized per-example gradients, DP Keras optimizer) relative to
   plain training of the same digits MLP.
2. Edge inference: per-example latency of a digits CNN in the LiteRT
   interpreter (float and int8 files) and of a direct ``model(x)`` call, as
   speed-ups over Keras ``predict_on_batch``, one example at a time.

The DQN goal (mean return >= 475 within 50,000 steps) has its own script,
``benchmarks/dqn_cartpole.py``, run by ``make bench`` after these.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import kdl
from kdl import datasets, export, privacy

ROOT = Path(__file__).resolve().parents[1]


def _epoch_seconds(model, x, y, *, epochs=3, batch_size=64) -> float:
    """Median seconds of an epoch after a warm-up epoch (tracing excluded)."""
    model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dp_paths() -> list[tuple[str, float, float]]:
    (x, y), _ = datasets.digits(layout="flat")
    rows = []
    kdl.set_seed(0, deterministic=False)
    plain = _epoch_seconds(kdl.build_mlp((64,), 10), x, y)
    rows.append(("plain Adam", plain, 1.0))
    for method in ("fast", "vectorized", "optimizer"):
        private = privacy.make_private(kdl.build_mlp((64,), 10), noise_multiplier=1.0,
                                       num_examples=len(x), batch_size=64, epochs=4,
                                       method=method)
        seconds = _epoch_seconds(private, x, y)
        rows.append((f"DP-SGD, method={method!r}", seconds, seconds / plain))
    return rows


def _per_example_ms(fn, xs, repeats=200) -> float:
    for x in xs[:10]:
        fn(x)
    times = []
    for x in xs[:repeats]:
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def edge_latency() -> list[tuple[str, float, float]]:
    (x, y), (x_test, _) = datasets.digits()
    kdl.set_seed(0, deterministic=False)
    model = kdl.build_cnn((8, 8, 1), 10)
    model.fit(x, y, epochs=5, verbose=0)
    singles = [x_test[i : i + 1] for i in range(len(x_test))]
    rows = []
    keras_ms = _per_example_ms(lambda b: model.predict_on_batch(b), singles)
    rows.append(("Keras predict_on_batch", keras_ms, 1.0))
    call_ms = _per_example_ms(lambda b: model(b, training=False), singles)
    rows.append(("Keras model(x)", call_ms, keras_ms / call_ms))
    with tempfile.TemporaryDirectory() as tmp:
        for quantization in (None, "int8"):
            path = export.to_tflite(model, Path(tmp) / f"{quantization}.tflite",
                                    quantization=quantization,
                                    representative_data=x[:200],
                                    check_data=x_test, verbose=0)
            lite = export.load_tflite(path, num_threads=1)
            ms = _per_example_ms(lite.predict, singles)
            rows.append((f"LiteRT {quantization or 'float'}", ms, keras_ms / ms))
    return rows


def main() -> int:
    lines = ["# kdl benchmarks", "",
             "Measured by `make bench` (`benchmarks/run.py`) on this project's "
             "2-core CPU machine; ratios are to the first row of each table, "
             "measured in the same run.", ""]
    lines += ["## DP-SGD training speed (digits MLP, batch 64)", "",
              "| path | seconds / epoch | ratio to plain |", "|---|---:|---:|"]
    for name, seconds, ratio in dp_paths():
        lines.append(f"| {name} | {seconds:.3f} | {ratio:.1f}x |")
    lines += ["", "## Per-example latency (digits CNN, one example per call)", "",
              "| runtime | ms / example | times faster than predict_on_batch |",
              "|---|---:|---:|"]
    for name, ms, ratio in edge_latency():
        lines.append(f"| {name} | {ms:.3f} | {ratio:.1f}x |")
    report = "\n".join(lines) + "\n"
    print(report)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
