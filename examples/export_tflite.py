"""Export the digits CNN to TFLite in every standard variant and compare them.

Trains the digits CNN, builds the standard variants (TFLite float, dynamic
range, float16, int8, and pruned / clustered / quantization-aware-trained
models exported to int8), checks every file in the LiteRT interpreter, then
writes one table (Markdown, CSV) and a plot of accuracy against gzipped size.
Then runs the int8 file the way a device does, with kdl.lite (NumPy and LiteRT
only, no TensorFlow), reading the class names and provenance the file carries.
Also exports a bidirectional GRU, which converts with a fixed batch of one.

Run (about a minute on a laptop CPU; add ``--quick``, or set ``KDL_QUICK=1``,
for a short smoke run, which builds only three of the variants):

    python examples/export_tflite.py [output_folder]

The output folder defaults to saved_models/export_tflite.
"""

from __future__ import annotations

import sys

from _quick import banner, pick

from kdl import build_cnn, build_gru, datasets, export, lite, report, set_seed

DIGIT_NAMES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
# The GRU's training examples: all of them, or a few hundred in the short mode.
# (The CNN trains on all of them in both modes: its int8 files must pass their
# LiteRT check, which an undertrained model's near-tied scores can fail.)
N = pick(None, 300)
QUICK_VARIANTS = ("keras float", "tflite float", "pruned + int8")


def compare_variants(model, x, y, x_test, y_test, output_dir: str) -> None:
    """The standard variants of `model`, checked in LiteRT, in one table."""
    variants = report.standard_variants(
        model,
        x,
        y,
        output_dir,
        include=pick(report.STANDARD_VARIANTS, QUICK_VARIANTS),
        check_data=x_test,
        prune_kwargs={"target_sparsity": 0.8, "epochs": pick(8, 2)},
        cluster_kwargs={"clusters": 16, "epochs": 2},
        qat_kwargs={"epochs": 2},
    )
    table = report.compare(
        variants,
        x_test,
        y_test,
        run_dir=output_dir,
        name="digits_cnn",
        baseline="tflite float",
        latency_samples=pick(100, 10),
    )
    pruned = table.row("pruned + int8")
    print(
        f"pruned 80% + int8: {1 / pruned['gzip_ratio']:.1f}x smaller gzipped "
        f"than the float TFLite file, accuracy {pruned['metric']:.3f} against "
        f"{table.row('tflite float')['metric']:.3f}"
    )
    print(f"Table and plot: {sorted(str(p) for p in table.paths.values())}")


def device_side(model, x, x_test, y_test, output_dir: str) -> None:
    """A file that says what it is, run without TensorFlow."""
    path = export.to_tflite(
        model,
        f"{output_dir}/digits_cnn_labelled.tflite",
        quantization="int8",
        representative_data=x[:200],
        check_data=x_test,
        labels=DIGIT_NAMES,
    )
    device = lite.load(path, num_threads=1)
    print(
        "kdl.lite:",
        device.classify(x_test[:5]),
        "true:",
        [DIGIT_NAMES[i] for i in y_test[:5]],
    )
    info = device.metadata
    print(
        f"metadata: task={info['task']}, quantization={info['quantization']}, "
        f"check: {info['check']['details']} on {info['check']['examples']} "
        f"examples, created {info['created']}"
    )


def recurrent(output_dir: str) -> None:
    """A recurrent model: converted with a fixed batch of one, run per example."""
    (xs, ys), (xs_test, ys_test) = datasets.digits(layout="sequence")
    gru = build_gru((8, 8), 10, units=(32,), bidirectional=True)
    gru.fit(xs[:N], ys[:N], epochs=pick(5, 1), batch_size=32, verbose=0)
    path = export.to_tflite(
        gru,
        f"{output_dir}/digits_bigru_dynamic.tflite",
        quantization="dynamic",
        check_data=xs_test,
    )
    print(
        "bidirectional GRU, dynamic range, in LiteRT:",
        export.evaluate_tflite(path, xs_test, ys_test),
    )


def main(output_dir: str = "saved_models/export_tflite") -> None:
    banner()
    set_seed(0)
    (x, y), (x_test, y_test) = datasets.digits()
    model = build_cnn((8, 8, 1), 10)
    model.fit(x, y, epochs=pick(20, 8), batch_size=32, verbose=0)
    compare_variants(model, x, y, x_test, y_test, output_dir)
    device_side(model, x, x_test, y_test, output_dir)
    recurrent(output_dir)


if __name__ == "__main__":
    main(*[arg for arg in sys.argv[1:] if arg != "--quick"][:1])
