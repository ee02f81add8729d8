"""Pruning and quantization down to a TFLite file that runs on a device.

A trained digits CNN is pruned (``kdl.compression.prune``: the smallest 80% of
the weights become zero while it fine-tunes), then exported twice with
``kdl.export.to_tflite``: as float32 and as full int8 (weights and activations
as 8-bit integers, calibrated on a few training images). Each file is checked
in the LiteRT interpreter before it is written; the script measures accuracy,
size and gzipped size (zeros compress) in LiteRT and draws them.
``examples/compress_digits.py`` and ``examples/export_tflite.py`` cover every
variant (clustering, quantization-aware training, float16) in more depth.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/prune_quantize.py

Writes saved_models/prune_quantize/ (float.tflite, pruned_int8.tflite and
sizes.png).
"""

from __future__ import annotations

import gzip

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import compression, datasets, export


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


if __name__ == "__main__":
    main()
