"""Pruning and quantization down to a TFLite file that runs on a device.

A trained digits CNN is pruned (``kdl.compression.prune``: the smallest 80% of
the weights become zero while it fine-tunes), then exported twice with
``kdl.export.to_tflite``: as float32 and as full int8 (weights and activations
as 8-bit integers, calibrated on a few training images). Each file is checked
in the LiteRT interpreter before it is written; the script measures accuracy,
size and gzipped size (zeros compress) in LiteRT and draws them.
``examples/compress_digits.py`` and ``examples/export_tflite.py`` cover every
variant (clustering, quantization-aware training, float16) in more depth.

Zeroing weights is not removing neurons. Beside the pruned model the script
makes a shrunk one (``kdl.compression.shrink``, structured pruning: half the
filters and units are removed and the smaller model is fine-tuned) and
measures the three Keras models with ``kdl.report.compare``: parameters,
multiply-adds per example (``kdl.compression.multiply_adds``), gzipped size
of the weights, test accuracy, and latency per example (one at a time, and
within a batch of the whole test set). Pruning keeps every parameter and
every multiply-add (the zeros are stored and multiplied); only the gzipped
size falls. Shrinking cuts all of them; whether that shows as time depends on
how much of a call is overhead (one 8x8 image at a time, the call costs more
than its multiply-adds), and the script says what it measured.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/prune_quantize.py

Writes saved_models/prune_quantize/ (float.tflite, pruned_int8.tflite and
sizes.png).

Timings are of one process on a shared machine: a ratio within about 1.2x
is not called a speed-up.
"""

from __future__ import annotations

import gzip
import time

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import compression, datasets, export, report
from kdl.backend import tf


def main() -> None:
    banner()
    out = out_dir("prune_quantize")
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    kdl.set_seed(0)
    model = kdl.build_cnn((8, 8, 1), 10, filters=(16, 32))
    model.fit(x, y, epochs=pick(15, 1), batch_size=32, verbose=0)

    pruned = compression.prune(
        model, x, y, target_sparsity=0.8, epochs=pick(8, 1), verbose=0
    )
    print(f"sparsity after pruning: {compression.sparsity(pruned)['overall']:.2f}")
    shrunk = compression.shrink(
        model, x, y, fraction=0.5, epochs=pick(None, 1), seed=0, verbose=0
    )
    zeroing_against_removing(model, pruned, shrunk, x_test, y_test)

    files = {
        "float": export.to_tflite(
            model, out / "float.tflite", check_data=x_test, verbose=0
        ),
        "pruned + int8": export.to_tflite(
            pruned,
            out / "pruned_int8.tflite",
            quantization="int8",
            representative_data=x[:200],  # calibration: typical inputs
            check_data=x_test,
            # A model trained for one epoch (short mode) has near-ties between
            # classes that int8 rounding flips; a trained one agrees >= 98%.
            min_agreement=pick(0.98, 0.5),
            verbose=0,
        ),
    }
    results = {}
    for label, path in files.items():
        metrics = export.evaluate_tflite(
            path, x_test, y_test, latency_samples=pick(100, 10)
        )
        zipped = len(gzip.compress(path.read_bytes(), compresslevel=9))
        results[label] = (metrics["accuracy"], path.stat().st_size, zipped)
        print(
            f"{label:14s} accuracy in LiteRT {metrics['accuracy']:.3f}, "
            f"{path.stat().st_size:>8,} bytes, {zipped:>8,} gzipped"
        )
    ratio = results["float"][2] / results["pruned + int8"][2]
    print(f"pruned + int8 is {ratio:.1f}x smaller gzipped than the float file")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    labels = list(results)
    ax.bar(labels, [r[2] / 1000 for r in results.values()])
    for i, (accuracy, _, zipped) in enumerate(results.values()):
        ax.text(i, zipped / 1000, f"acc {accuracy:.3f}", ha="center", va="bottom")
    ax.set(ylabel="gzipped kB", title="TFLite files, measured in LiteRT")
    save_figure(fig, out / "sizes.png")


def batch_ms_per_example(models: dict, x, rounds: int) -> dict:
    """Median time of one call on all of `x`, per example, for each model.

    The models take turns within each round, so that a busy spell of the
    machine slows them all rather than one.
    """
    calls = {
        k: tf.function(lambda b, m=m: m(b, training=False)) for k, m in models.items()
    }
    batch = tf.constant(x)
    for call in calls.values():
        call(batch)  # traced once, outside the timing
    times = {k: [] for k in models}
    for _ in range(rounds):
        for label, call in calls.items():
            start = time.perf_counter()
            call(batch).numpy()
            times[label].append(time.perf_counter() - start)
    return {k: float(np.median(t)) * 1000.0 / len(x) for k, t in times.items()}


def zeroing_against_removing(model, pruned, shrunk, x_test, y_test) -> None:
    """Prints what zeroing weights and removing neurons change, and what not."""
    models = {"original": model, "pruned 80% (zeros)": pruned, "shrunk 50%": shrunk}
    table = report.compare(
        models, x_test, y_test, latency_samples=pick(300, 10), verbose=0
    )
    print(
        f"\n{'Keras model':20s} {'parameters':>10s} {'mult-adds':>10s} "
        f"{'gzip bytes':>10s} {'accuracy':>8s} {'ms/example':>10s} "
        f"{'ms/ex. batch':>12s}"
    )
    # The test set 10 times over: a batch large enough for the multiply-adds,
    # not the per-call overhead, to take most of the time.
    big = np.concatenate([x_test] * pick(10, 1))
    batch = batch_ms_per_example(models, big, pick(50, 3))
    for label in models:
        row = table.row(label)
        print(
            f"{label:20s} {row['parameters']:>10,} {row['multiply_adds']:>10,} "
            f"{row['gzip_bytes']:>10,} {row['metric']:>8.3f} "
            f"{row['latency_ms_median']:>10.3f} {batch[label]:>12.4f}"
        )
    base, zeros, removed = (table.row(k) for k in models)
    print(
        "gzipped weights (zeros compress), multiply-adds (zeros are still "
        "multiplied):\n"
        f"  pruned: {base['gzip_bytes'] / zeros['gzip_bytes']:.1f}x smaller "
        f"gzipped, {base['multiply_adds'] / zeros['multiply_adds']:.1f}x fewer "
        "multiply-adds\n"
        f"  shrunk: {base['gzip_bytes'] / removed['gzip_bytes']:.1f}x smaller "
        f"gzipped, {base['multiply_adds'] / removed['multiply_adds']:.1f}x "
        "fewer multiply-adds"
    )
    for kind, key, times in (
        ("one example per call", "latency_ms_median", None),
        (f"a batch of {len(big)}", None, batch),
    ):
        mine = {k: table.row(k)[key] for k in models} if times is None else times
        speedup = mine["original"] / mine["shrunk 50%"]
        pruned_speedup = mine["original"] / mine["pruned 80% (zeros)"]
        if speedup > 1.2:
            verdict = "the shrunk model is faster"
        elif speedup < 1 / 1.2:
            verdict = "the shrunk model is slower"
        else:
            verdict = "no clear difference (within 1.2x)"
        print(
            f"time, {kind}: the shrunk model runs {speedup:.2f}x, the pruned "
            f"{pruned_speedup:.2f}x as fast as the original: {verdict}"
        )


if __name__ == "__main__":
    main()
