"""kdl train, predict, evaluate and info: thin layers over the public functions."""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

from kdl.cli import _common as c

__all__ = ["cmd_train", "cmd_predict", "cmd_evaluate", "cmd_info", "build_model"]


def build_model(args, data, *, normalize=True, **extra):
    """The architecture of ``--model`` for ``data``, normalized on its inputs
    (and, for a regression, on its targets)."""
    import kdl

    builder = getattr(kdl, f"build_{args.model}")
    kwargs = dict(extra)
    kwargs.update(c.builder_settings(getattr(args, "set", None), builder))
    if args.learning_rate is not None:
        kwargs.setdefault("learning_rate", args.learning_rate)
    if normalize and not args.no_normalize:
        kwargs["normalize"] = data.train[0]
        if data.task == "regression":  # raw units out (kdl.models._target)
            kwargs["normalize_target"] = data.train[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        model = builder(data.input_shape, data.num_outputs, task=data.task, **kwargs)
    _show_warnings(caught, f"{builder.__name__}:", quiet=args.quiet)
    return model


def _show_warnings(caught, ours: str, *, quiet: bool) -> None:
    """A --set KEY with an old name: kdl's DeprecationWarning as one line on
    stderr (issue 31); other warnings as Python shows them."""
    for w in caught:
        if not issubclass(w.category, DeprecationWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        elif str(w.message).startswith(ours) and not quiet:
            print(f"--set: {w.message}", file=sys.stderr)


def save_with_schema(args, model, path, schema) -> None:
    import kdl
    from kdl import _files, datasets

    if Path(str(args.data)).exists():  # kdl export --quantization int8 uses it
        schema = dict(schema, path=str(Path(args.data).resolve()))
    # The pair is replaced together (hostile review of issue 26: a sidecar
    # that could not be replaced left a new model beside the old sidecar):
    # the sidecar first, then the model; a failed model save puts the old
    # sidecar back.
    sidecar = datasets.schema_path(path)
    old = sidecar.read_bytes() if sidecar.is_file() else None
    datasets.write_schema(path, schema)
    try:
        saved = kdl.save(model, path)
    except BaseException:
        if old is None:
            sidecar.unlink(missing_ok=True)
        else:
            with _files.atomic_path(sidecar) as tmp:
                tmp.write_bytes(old)
        raise
    c.note(args, f"saved {saved} and {sidecar.name}")


VALIDATION_SPLIT = 0.1


def _epochs_and_patience(args, x) -> dict:
    """kdl train's --epochs and --patience, or their defaults: on a table
    (2-D x), enough steps for a small one (kdl._table_epochs)."""
    from kdl import _table_epochs

    epochs, patience = args.epochs, args.patience
    if epochs is None and np.ndim(x) == 2:
        epochs, planned = _table_epochs.plan(len(x), args.batch_size, VALIDATION_SPLIT)
        patience = planned if patience is None else patience
    chosen = {"epochs": epochs or _table_epochs.EPOCHS}
    return chosen if patience is None else {**chosen, "patience": patience}


def cmd_train(args) -> int:
    import kdl

    out = c.check_out(args.out, c.SAVE_SUFFIXES + ("",))
    c.resolve_model(args)
    data = c.load_data(args, args.data, architecture=args.model)
    c.check_architecture(args.model, data, "train")
    kdl.set_seed(args.seed)  # the initial weights too, not only training
    model = build_model(args, data)
    (x, y), (x_test, y_test) = data
    history = kdl.train(
        model,
        x,
        y,
        validation_split=VALIDATION_SPLIT,
        batch_size=args.batch_size,
        run_dir=args.run_dir,
        seed=args.seed,
        verbose=0 if args.quiet else 2,
        **_epochs_and_patience(args, x),
    )
    result = {"data": c.part_described(data, args.data, "test")}
    if len(x_test):
        result.update(c.metrics(model, x_test, y_test, data.task))
        result["baselines"] = c.baselines(
            args, model, data, (x_test, y_test), on="the test part", command="train"
        )
    elif history.baselines is not None:  # --test-size 0: the validation part
        result["baselines"] = c.shown_baselines(history.baselines)
    if history.run_dir is not None:
        result["run_dir"] = str(history.run_dir)
    if out is not None:
        save_with_schema(args, model, out, data.schema)
    c.show(result)
    return 0


def _model_and_schema(args, command: str):
    """The model's saved schema (read before TensorFlow) and the model file."""
    from kdl import datasets

    path = c.check_model_file(args.model)
    schema = datasets.read_schema(path)
    if command == "evaluate":
        c.data_from_schema(args, schema, command, recorded=True)
    if schema is None and Path(args.data).suffix.lower() == ".csv":
        raise c.CommandError(
            f"kdl {command}: {args.model} has no {datasets.schema_path(path).name} "
            "(written by kdl train or kdl.datasets.write_schema), so the way its "
            "training CSV was encoded is unknown"
        )
    return path, schema


def _check_fit(model, data, command: str, name: str) -> None:
    from kdl import datasets

    shape, outputs = c.model_shapes(model)
    datasets.check_fits(data, shape, outputs, f"kdl {command}", model=name)


def _prediction_table(outputs, data, rows):
    import pandas as pd

    table = pd.DataFrame({"row": rows})
    if data.task == "regression":
        values = outputs.reshape(len(outputs), -1)
        for i in range(values.shape[1]):
            table["prediction" if values.shape[1] == 1 else f"prediction_{i}"] = values[
                :, i
            ]
        return table
    probs = (
        outputs
        if outputs.shape[-1] > 1
        else np.concatenate([1.0 - outputs, outputs], axis=-1)
    )
    classes = data.classes or [str(i) for i in range(probs.shape[-1])]
    table["prediction"] = [classes[i] for i in probs.argmax(-1)]
    for i, name in enumerate(classes):
        table[f"probability_{name}"] = probs[:, i]
    return table


_COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


def _image_options_from_tflite(args, path: Path) -> None:
    """A .tflite file without .data.json read on a folder of images: the
    image size and color mode the file's input takes, unless given."""
    if path.suffix.lower() != ".tflite" or not Path(args.data).is_dir():
        return
    from kdl import lite

    specs = lite.load(path).input_specs()
    shape = specs[0][2] if len(specs) == 1 else ()
    if len(shape) != 3 or None in shape[:2]:
        return
    if args.image_size is None:
        args.image_size = tuple(shape[:2])
    if args.color_mode is None:
        args.color_mode = _COLOR_MODES.get(shape[2])


def cmd_predict(args) -> int:
    from kdl import _files

    out = c.check_out(args.out, (".csv",))
    if out is not None and out.exists() and out.resolve() == Path(args.data).resolve():
        raise c.CommandError(
            f"--out {args.out!r} is the DATA file itself: its rows would be "
            "replaced by their predictions; give another file"
        )
    path, schema = _model_and_schema(args, "predict")
    if args.next is not None:
        return _forecast(args, path, schema, out)
    if schema is None:
        _image_options_from_tflite(args, path)
    data = c.load_data(args, args.data, schema=schema, test_size=0.0)
    model = c.load_model(path)
    _check_fit(model, data, "predict", args.model)
    (x, y), _ = data
    outputs = np.asarray(c.predict(model, x))
    table = _prediction_table(outputs, data, data.rows[0])
    if out is not None:
        _files.write_text(out, table.to_csv(index=False))
    result = {
        "data": c.part_described(data, args.data, "train"),
        "predictions": "stdout" if out is None else str(out),
    }
    if y is not None and data.task != "regression":
        predicted = table["prediction"].to_numpy()
        truth = np.array([data.classes[i] for i in y]) if data.classes else y
        result["accuracy"] = float(np.mean(predicted == truth))
    elif y is not None:
        result["mae"] = float(np.mean(np.abs(outputs.reshape(y.shape) - y)))
    if out is None:  # the CSV is the result; the summary is a note
        c.show(table.to_csv(index=False).rstrip("\n"))
        c.note(args, json.dumps(result, default=str))
    else:
        c.show(result)
    return 0


def _forecast(args, path, schema, out) -> int:
    """kdl predict --next N: the forecasts past DATA's last row."""
    from kdl import _files
    from kdl.cli._forecast import forecast_table

    if schema is None:
        raise c.CommandError(
            f"kdl predict --next: {args.model} has no .data.json beside it "
            "(written by kdl train), so its window and columns are unknown"
        )
    table = forecast_table(args, c.load_model(path), schema)
    text = table.to_csv(index=False)
    if out is None:
        c.show(text.rstrip("\n"))
        return 0
    _files.write_text(out, text)
    c.show(
        {
            "forecasts": args.next,
            "after_row": int(table["row"].iloc[0]) - 1,
            "target": schema.get("target"),
            "predictions": str(out),
        }
    )
    return 0


def cmd_evaluate(args) -> int:
    from kdl import datasets

    path, schema = _model_and_schema(args, "evaluate")
    same = schema is not None and os.path.basename(args.data) == schema["source"]
    use_all = args.all or (schema is not None and not same)
    kwargs = {"test_size": 0.0} if use_all else {}
    if same and not use_all:
        kwargs = {"test_size": schema["test_size"]}
        args.seed = schema["seed"]
    which = "train" if use_all else "test"
    data = c.load_data(args, args.data, schema=schema, **kwargs)
    if schema is not None:
        datasets.check_compatible(schema, data, "kdl evaluate")
    model = c.load_model(path)
    _check_fit(model, data, "evaluate", args.model)
    x, y = data[1] if which == "test" else data[0]
    if y is None:
        raise c.CommandError(
            f"kdl evaluate: {args.data} has no target column "
            f"{data.schema.get('target')!r} to compare with"
        )
    result = {"data": c.part_described(data, args.data, which)}
    result.update(c.metrics(model, x, y, data.task))
    on = "the test part" if which == "test" else "the data evaluated"
    result["baselines"] = c.baselines(
        args, model, data, (x, y), on=on, command="evaluate"
    )
    c.show(result)
    return 0


def _versions() -> dict:
    import kdl
    from kdl.backend import keras, tf

    return {
        "kdl": kdl.__version__,
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "python": platform.python_version(),
    }


def _keras_info(model) -> dict:
    from kdl import compression, privacy

    info = {
        "inputs": [list(s[1:]) for s in _listed(model.input_shape)],
        "outputs": [list(s[1:]) for s in _listed(model.output_shape)],
        "parameters": int(model.count_params()),
        "sparsity": round(compression.sparsity(model)["overall"], 4),
        "quantization": "none (float32 Keras model)",
        "private": bool(privacy.is_private(model)),
    }
    if info["private"]:
        info["privacy"] = privacy.privacy_params(model)
        info["privacy"]["statement"] = _statement(model)
    return info


def _statement(model) -> dict:
    """What the privacy statement says: the clip norm, noise and multiplicity
    the steps recorded (the settings above are the plan), epsilon and text."""
    from kdl import privacy

    try:
        result = privacy.statement(model).to_dict()
    except ValueError as error:
        return {"note": f"no privacy statement: {error}"}
    keys = ("epsilon", "delta", "l2_norm_clip", "noise_multiplier", "multiplicity",
            "void", "text")  # fmt: skip
    return {key: result[key] for key in keys}


def _listed(shape):
    return shape if isinstance(shape, list) else [shape]


def _tflite_info(model) -> dict:
    runner = model.interpreter.get_signature_runner()
    inputs = runner.get_input_details()
    outputs = runner.get_output_details()
    dtypes = {str(np.dtype(d["dtype"])) for d in model.interpreter.get_tensor_details()}
    info = {
        "inputs": {
            k: list(map(int, d["shape_signature"][1:])) for k, d in inputs.items()
        },
        "outputs": {
            k: list(map(int, d["shape_signature"][1:])) for k, d in outputs.items()
        },
        "tensor_dtypes": sorted(dtypes),
        "operators": len(model.op_names),
    }
    info["quantization"] = model.metadata.get("quantization") or (
        "int8"
        if "int8" in dtypes
        else "float16"
        if "float16" in dtypes
        else "float32 or dynamic range"
    )
    meta = model.metadata
    info.update({k: meta[k] for k in ("task", "labels", "preprocessing") if k in meta})
    privacy = meta.get("privacy") or {}
    info.update({k: privacy[k] for k in ("epsilon", "delta") if k in privacy})
    info["provenance"] = {
        k: meta[k] for k in ("created", "versions", "run", "check") if meta.get(k)
    }
    if meta.get("micro"):
        info["micro"] = meta["micro"]  # TFLite Micro: arena, ops (to_micro)
    return info


def _profile_info(path) -> dict:
    """kdl info --profile: where the file spends its time in LiteRT."""
    from kdl import profiling

    result = profiling.profile(path)
    return {
        "litert": result["litert"],
        "latency_ms": {k: round(v, 4) for k, v in result["latency_ms"].items()},
        "delegated_ops": f"{result['delegated']} of {result['ops']} (XNNPACK)",
        "not_delegated": [
            op["op"] for op in result["op_profile"] if not op["delegated"]
        ],
        "slowest_ops": [
            f"#{op['index']} {op['op']} "
            f"{'XNNPACK' if op['delegated'] else 'builtin'} "
            f"{op['ms']:.3f} ms {op['share']:.0%}"
            for op in profiling.slowest(result)
        ],
    }


def cmd_info(args) -> int:
    from kdl import datasets

    if args.model is None:
        c.show(_versions())
        return 0
    path = c.check_model_file(args.model)
    schema = datasets.read_schema(path)
    model = c.load_model(path)
    size = (
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        if path.is_dir()
        else path.stat().st_size
    )
    info = {
        "path": str(path),
        "format": "tflite"
        if c.is_tflite(model)
        else (path.suffix.lstrip(".") or "savedmodel"),
        "bytes": size,
    }
    info.update(_tflite_info(model) if c.is_tflite(model) else _keras_info(model))
    if getattr(args, "profile", False):
        if not c.is_tflite(model):
            raise c.CommandError("kdl info --profile: MODEL must be a .tflite file")
        info["profile"] = _profile_info(path)
    if schema is not None:
        info["data"] = datasets.describe(schema)
        info["classes"] = schema.get("classes")
        for key in ("epsilon", "delta"):
            if key in schema:
                info[key] = schema[key]
    c.show(info)
    return 0
