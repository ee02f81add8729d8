"""The ``kdl`` command: a thin layer over the public functions.

    kdl info
    kdl train cnn --epochs 10 --run-dir saved_models/cnn --out cnn.keras
    kdl evaluate cnn.keras
    kdl export cnn.keras cnn_int8.tflite --quantization int8
    kdl evaluate cnn_int8.tflite

Every sub-command uses the digits (or, with ``--dataset sunspots``, the
sunspots series) that ship with scikit-learn and statsmodels; no logic lives
only here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

ARCHITECTURES = ("mlp", "cnn", "resnet", "rnn", "lstm", "gru")
# architecture -> the digits layout it reads
_LAYOUT = {"mlp": "flat", "cnn": "image", "resnet": "image", "rnn": "sequence",
           "lstm": "sequence", "gru": "sequence"}
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")


def _data(dataset: str, architecture: str):
    from kdl import datasets

    if dataset == "sunspots":
        return datasets.sunspots(window=24)
    return datasets.digits(layout=_LAYOUT.get(architecture, "image"))


def _layout_for(model) -> str:
    """The digits layout a loaded model reads, from its input rank."""
    rank = len(model.input_shape) - 1 if hasattr(model, "input_shape") else 3
    return {1: "mlp", 2: "gru", 3: "cnn"}.get(rank, "cnn")


def cmd_info(args) -> int:
    import kdl
    from kdl.backend import keras, tf

    info = {"kdl": kdl.__version__, "tensorflow": tf.__version__,
            "tf_keras": keras.__version__, "python": platform.python_version()}
    print(json.dumps(info, indent=2))
    return 0


def cmd_train(args) -> int:
    import kdl

    (x, y), (x_test, y_test) = _data(args.dataset, args.architecture)
    task = "regression" if args.dataset == "sunspots" else "classification"
    outputs = 1 if task == "regression" else 10
    builder = getattr(kdl, f"build_{args.architecture}")
    model = builder(x.shape[1:], outputs, task=task)
    history = kdl.train(model, x, y, validation_split=0.1, epochs=args.epochs,
                        batch_size=args.batch_size, run_dir=args.run_dir,
                        seed=args.seed, verbose=2)
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print("test " + ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))
    if args.out:
        print(f"saved {kdl.save(model, args.out)}")
    if history.run_dir is not None:
        print(f"run folder: {history.run_dir}")
    return 0


def cmd_export(args) -> int:
    import kdl
    from kdl import export

    model = kdl.load(args.model)
    (x, _), _ = _data(args.dataset, _layout_for(model))
    quantization = None if args.quantization == "none" else args.quantization
    path = export.to_tflite(model, args.out, quantization=quantization,
                            representative_data=x[:200], check_data=x[:200])
    print(f"wrote {path} ({path.stat().st_size:,} bytes), checked in LiteRT")
    return 0


def cmd_evaluate(args) -> int:
    import kdl
    from kdl import export

    if str(args.model).endswith(".tflite"):
        tflite = export.load_tflite(args.model)
        details = tflite._inputs[tflite.input_names[0]]
        architecture = {2: "mlp", 3: "gru", 4: "cnn"}[len(details["shape"])]
        _, (x_test, y_test) = _data(args.dataset, architecture)
        logs = export.evaluate_tflite(args.model, x_test, y_test)
    else:
        model = kdl.load(args.model)
        _, (x_test, y_test) = _data(args.dataset, _layout_for(model))
        logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(json.dumps({k: float(v) for k, v in logs.items()
                      if isinstance(v, (int, float))}, indent=2))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdl", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions of kdl and its stack").set_defaults(
        func=cmd_info)

    t = sub.add_parser("train", help="build and train a model on shipped data")
    t.add_argument("architecture", choices=ARCHITECTURES)
    t.add_argument("--dataset", choices=("digits", "sunspots"), default="digits")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--run-dir", default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--out", default=None, help="where to save the model")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="export a saved model to a checked TFLite file")
    e.add_argument("model")
    e.add_argument("out")
    e.add_argument("--quantization", choices=QUANTIZATIONS, default="none")
    e.add_argument("--dataset", choices=("digits", "sunspots"), default="digits")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("evaluate", help="evaluate a saved model or .tflite file")
    v.add_argument("model")
    v.add_argument("--dataset", choices=("digits", "sunspots"), default="digits")
    v.set_defaults(func=cmd_evaluate)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"kdl {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
