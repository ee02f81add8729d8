"""Export the digits CNN to TFLite in every standard variant and compare them.

Trains the digits CNN, builds the standard variants (TFLite float, dynamic
range, float16, int8, and pruned / clustered / quantization-aware-trained
models exported to int8), checks every file in the LiteRT interpreter, then
writes one table (Markdown, CSV) and a plot of accuracy against gzipped size.
Then runs the int8 file the way a device does, with kdl.lite (NumPy and LiteRT
only, no TensorFlow), reading the class names and provenance the file carries.
Also exports a bidirectional GRU, which converts with a fixed batch of one.

Run (about a minute on a laptop CPU):

    python examples/export_tflite.py [output_folder]

The output folder defaults to saved_models/export_tflite.
"""

from __future__ import annotations

import sys

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


def main(output_dir: str = "saved_models/export_tflite") -> None:
    set_seed(0)
    (x, y), (x_test, y_test) = datasets.digits()
    model = build_cnn((8, 8, 1), 10)
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)

    variants = report.standard_variants(
        model,
        x,
        y,
        output_dir,
        check_data=x_test,
        prune_kwargs={"target_sparsity": 0.8, "epochs": 8},
        cluster_kwargs={"clusters": 16, "epochs": 2},
        qat_kwargs={"epochs": 2},
    )
    table = report.compare(
        variants,
        x_test,
        y_test,
        output_dir=output_dir,
        name="digits_cnn",
        baseline="tflite float",
    )
    pruned = table.row("pruned + int8")
    print(
        f"pruned 80% + int8: {1 / pruned['gzip_ratio']:.1f}x smaller gzipped "
        f"than the float TFLite file, accuracy {pruned['metric']:.3f} against "
        f"{table.row('tflite float')['metric']:.3f}"
    )
    print(f"Table and plot: {sorted(str(p) for p in table.paths.values())}")

    # The device side: a file that says what it is, run without TensorFlow.
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

    # A recurrent model: converted with a fixed batch of one, run per example.
    (xs, ys), (xs_test, ys_test) = datasets.digits(layout="sequence")
    gru = build_gru((8, 8), 10, units=(32,), bidirectional=True)
    gru.fit(xs, ys, epochs=5, batch_size=32, verbose=0)
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


if __name__ == "__main__":
    main(*sys.argv[1:2])
