"""kdl's main job: the whole workflow on the digits, from training to an edge file.

1. Build a CNN and train it with ``kdl.train`` in a run folder (early
   stopping, best checkpoint, history, run.json).
2. Compress it: pruning (80%, Dense kernels in 16x1 blocks), weight
   clustering and quantization-aware training.
3. Export every variant to TFLite (float, dynamic range, float16, int8, and
   the compressed models as int8), each checked in the LiteRT interpreter.
4. Compare them side by side: accuracy measured on the exported files, size,
   gzipped size, latency, and each figure's ratio to the Keras float model
   (Markdown, CSV and a PNG plot in the run folder).

Run it with ``make demo`` (which sets up .venv first) or
``python examples/demo.py``; it takes two to three minutes on a laptop CPU.
Add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run (fewer epochs,
three of the variants).
"""

from __future__ import annotations

from _quick import banner, pick

import kdl
from kdl import datasets, report

QUICK_VARIANTS = ("keras float", "tflite float", "pruned + int8")


def main() -> None:
    banner()
    (x_train, y_train), (x_test, y_test) = datasets.digits(layout="image")
    print(
        f"digits: {len(x_train)} training and {len(x_test)} test images "
        f"of shape {x_train.shape[1:]}"
    )

    # === 1. Build and train ===
    model = kdl.build_cnn(
        x_train.shape[1:],
        10,
        filters=(32, 64),
        batch_norm=True,
        dropout=0.1,
        name="digits_cnn",
    )
    history = kdl.train(
        model,
        x_train,
        y_train,
        validation_split=0.1,
        epochs=pick(20, 6),
        batch_size=32,
        seed=0,
        verbose=2,
    )
    run_dir = history.run_dir
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(f"\nCNN test accuracy: {logs['accuracy']:.4f} (run folder: {run_dir})")

    # === 2 and 3. Compress and export, every file checked in LiteRT ===
    print("\nCompressing and exporting (each file is checked in LiteRT)...")
    variants = report.standard_variants(
        model,
        x_train,
        y_train,
        run_dir / "variants",
        include=pick(report.STANDARD_VARIANTS, QUICK_VARIANTS),
        check_data=x_test,
        prune_kwargs={"epochs": pick(16, 2), "verbose": 0},
        cluster_kwargs={"epochs": 2, "verbose": 0},
        qat_kwargs={"epochs": 2, "verbose": 0},
        verbose=0,
    )

    # === 4. Compare side by side ===
    table = report.compare(
        variants, x_test, y_test, run_dir=run_dir, name="variants", verbose=0
    )
    print()
    print(table.to_markdown())
    for kind, path in table.paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
