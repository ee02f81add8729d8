"""Compress a digits CNN: pruning, clustering, QAT, shrinking and distillation.

Trains a small CNN on scikit-learn's digits, then makes compressed copies with
kdl.compression and compares their held-out accuracy, their sparsity, their
multiply-adds per example and the gzipped size of their saved weights (zeros
and shared values compress well; the float model does not). ``shrink``
removes units and filters (fewer multiply-adds: faster); ``distill`` trains a
quarter-size student on the CNN's softened outputs. Finally the pruned, the
pruned-and-clustered and the quantization-aware copies are exported as
full-int8 TFLite files, checked in LiteRT and measured there.

Run it (a few minutes on a laptop CPU):

    .venv/bin/python examples/compress_digits.py
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from _quick import banner, pick

import kdl
from kdl import compression, datasets


def gzipped_bytes(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def saved_size(model, folder: Path, name: str) -> int:
    """Gzipped size of the model saved as .h5, weights and architecture only.

    The optimizer's state is left out: a trained model carries Adam's two
    moments per weight, a freshly compressed one none, and counting them would
    inflate every ratio about threefold.
    """
    path = folder / f"{name}.h5"
    model.save(path, include_optimizer=False)
    return gzipped_bytes(path)


def main() -> None:
    banner()
    kdl.set_seed(0)
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    model = kdl.build_cnn((8, 8, 1), 10, batch_norm=True)
    model.fit(x, y, epochs=pick(15, 2), batch_size=32, verbose=0)
    tune = {"epochs": pick(None, 1), "verbose": 0}  # None: the default budget

    print("Pruning to 80% sparsity (blocks of 16 rows in the large Dense kernel) ...")
    pruned = compression.prune(model, x, y, target_sparsity=0.8, **tune)
    print("Pruning to 80% sparsity weight by weight ...")
    single = compression.prune(
        model, x, y, target_sparsity=0.8, block_size=(1, 1), **tune
    )
    print("Clustering the pruned model to 16 values per kernel, zeros kept ...")
    clustered = compression.cluster(
        pruned, x, y, clusters=16, preserve_sparsity=True, **tune
    )
    print("Quantization-aware training ...")
    qat = compression.quantize_aware(model, x, y, **tune)
    print("Shrinking: half the units and filters removed ...")
    shrunk = compression.shrink(model, x, y, fraction=0.5, **tune)
    print("Distilling into a student with a quarter of the parameters ...")
    student = kdl.build_cnn(
        (8, 8, 1), 10, batch_norm=True, filters=(16, 32), dense_units=(56,)
    )
    distilled = compression.distill(
        model, student, x, y, epochs=pick(None, 1), verbose=0
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        float_size = saved_size(model, folder, "float")
        print(
            f"\n{'model':<12}{'accuracy':>10}{'sparsity':>10}{'mult-adds':>11}"
            f"{'gzipped .h5':>14}{'vs float':>10}"
        )
        for name, variant in (
            ("float", model),
            ("pruned", pruned),
            ("pruned1x1", single),
            ("clustered", clustered),
            ("qat", qat),
            ("shrunk", shrunk),
            ("distilled", distilled),
        ):
            accuracy = variant.evaluate(x_test, y_test, verbose=0)[1]
            zeros = compression.sparsity(variant)["overall"]
            macs = compression.multiply_adds(variant)["total"]
            size = saved_size(variant, folder, name)
            print(
                f"{name:<12}{accuracy:>10.3f}{zeros:>10.2f}{macs:>11,}{size:>14,}"
                f"{float_size / size:>9.1f}x"
            )

        print("\nFull-int8 TFLite files, checked and measured in LiteRT:")
        int8 = (("pruned", pruned), ("pruned1x1", single), ("clustered", clustered))
        for name, variant in pick((*int8, ("qat", qat)), int8[:1]):
            path = kdl.export.to_tflite(
                variant,
                folder / f"{name}_int8.tflite",
                quantization="int8",
                representative_data=x[:200],
                check_data=x_test,
                # an undertrained short-mode model disagrees with its int8 file
                min_agreement=pick(0.98, 0.5),
                # one scale per kernel: zeros and clusters compress best
                per_channel=name == "qat",
                verbose=0,
            )
            lite = kdl.export.evaluate_tflite(path, x_test, y_test)
            size = gzipped_bytes(path)
            print(
                f"{name} + int8: accuracy {lite['accuracy']:.3f}, "
                f"{size:,} bytes gzipped, {float_size / size:.1f}x smaller "
                "than the float model"
            )


if __name__ == "__main__":
    main()
