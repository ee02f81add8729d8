"""What the kdl commands share: argument and file checks, data, models, output.

The checks here use the standard library only; kdl's modules (and with them
TensorFlow) are imported inside the functions that need them, after the
arguments and files were checked.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from kdl._constants import H5_SUFFIXES, KERAS_SUFFIXES, TFLITE_SUFFIXES
from kdl.cli._streams import result_stream

__all__ = [
    "CommandError",
    "note",
    "show",
    "check_model_file",
    "check_out",
    "load_data",
    "check_architecture",
    "resolve_model",
    "data_from_schema",
    "data_for_model",
    "load_model",
    "model_shapes",
    "predict",
    "part_described",
    "metrics",
    "baselines",
    "shown_baselines",
]

SAVE_SUFFIXES = KERAS_SUFFIXES + H5_SUFFIXES
MODEL_SUFFIXES = SAVE_SUFFIXES + TFLITE_SUFFIXES
# architecture -> ranks of one example it reads
_RANKS = {
    "mlp": (1, 2, 3),
    "cnn": (2, 3),
    "resnet": (2, 3),
    "rnn": (2,),
    "lstm": (2,),
    "gru": (2,),
}
# architecture -> the digits layout it reads
_LAYOUT = {
    "mlp": "flat",
    "cnn": "image",
    "resnet": "image",
    "rnn": "sequence",
    "lstm": "sequence",
    "gru": "sequence",
}


class CommandError(ValueError):
    """A mistake in a command's arguments, found by the command itself."""


def note(args, text: str) -> None:
    """A progress line on stderr, unless --quiet."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr, flush=True)


def show(result) -> None:
    """A result on stdout (the only thing there): a dict as JSON, anything
    else as text."""
    out = result_stream()
    if isinstance(result, dict):
        # Strict JSON: NaN and Infinity are not JSON (a NaN loss, an infinite
        # epsilon): they are written as null (hostile review of issue 26).
        text = json.dumps(_finite(result), indent=2, default=_plain, allow_nan=False)
        print(text, file=out, flush=True)
    else:
        print(result, file=out, flush=True)


def _plain(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return value if math.isfinite(value) else None


def _finite(value):
    """``value`` with every non-finite float replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(one) for k, one in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(one) for one in value]
    return value


# Builder arguments --set cannot give: the command derives them from the data.
_DERIVED = (
    "input_shape",
    "num_outputs",
    "task",
    "normalize",
    "normalize_target",
    "strategy",
)


def builder_settings(pairs, builder) -> dict:
    """``--set key=value`` pairs as keyword arguments of ``builder``, each key
    checked against its signature; a value is a Python literal
    (``ast.literal_eval``), else kept as text (``--set activation=gelu``)."""
    import ast
    import inspect

    params = inspect.signature(builder).parameters
    allowed = sorted(k for k in params if k not in _DERIVED)
    settings = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise CommandError(f"--set {pair!r}: expected KEY=VALUE, e.g. units=64")
        if key not in allowed:
            raise CommandError(
                f"--set {pair!r}: {builder.__name__} has no argument {key!r} "
                f"(it takes {', '.join(allowed)})"
            )
        try:
            settings[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            settings[key] = text.strip()
    return settings


def check_model_file(path: str, arg: str = "MODEL") -> Path:
    """A saved model must exist and have a suffix kdl reads."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{arg} {path!r}: no such file or folder")
    if not p.is_dir() and p.suffix.lower() not in MODEL_SUFFIXES:
        raise CommandError(
            f"{arg} {path!r} is not a model file: expected "
            f"{', '.join(MODEL_SUFFIXES)} or a SavedModel folder"
        )
    return p


def check_out(
    path: str | None, suffixes, arg: str = "--out", *, replaces="saved_model.pb"
) -> Path | None:
    """An output path with an allowed suffix ("" allows a folder). A folder
    is written whole in place of what is there (kdl._files.atomic_path), so
    an existing folder must be empty or hold the file ``replaces`` (what the
    command writes there, e.g. a SavedModel's); None: the command adds its
    files to the folder."""
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() not in suffixes and not ("" in suffixes and not p.suffix):
        shown = ", ".join(s or "a folder" for s in suffixes)
        raise CommandError(f"{arg} {path!r} must end in {shown}")
    if p.exists() and p.is_dir() != (not p.suffix):
        raise CommandError(
            f"{arg} {path!r} exists and is not what would be written there"
        )
    _check_writable(p, arg, path)
    held = sorted(f.name for f in p.iterdir()) if p.is_dir() else []
    if held and replaces is not None and replaces not in held:
        raise CommandError(
            f"{arg} {path!r} is a folder holding other files "
            f"({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}), which "
            "writing there would delete: give a new or empty folder"
        )
    return p


def _check_writable(p: Path, arg: str, path: str) -> None:
    """Refuses, before any work, an output kdl could not write: a file is
    written next to it and renamed into place, so its folder (the nearest
    that exists) must take a new file. Tried, not guessed from permissions,
    which say yes to root on a read-only or immutable folder."""
    import tempfile

    folder = p.parent.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".kdl-probe-"):
            pass
    except OSError as err:
        raise CommandError(
            f"{arg} {path!r}: kdl cannot write in the folder {str(folder)!r} "
            f"({err.strerror or err})"
        ) from None


def _features(args):
    text = getattr(args, "features", None)
    if not text:
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


def load_data(args, source, *, schema=None, architecture=None, test_size=None):
    """``kdl.datasets.load`` with the command's data arguments."""
    from kdl import datasets

    return datasets.load(
        source,
        target=args.target,
        features=_features(args),
        test_size=args.test_size if test_size is None else test_size,
        seed=args.seed,
        task=args.task,
        missing=args.missing,
        window=args.window,
        horizon=args.horizon,
        image_size=args.image_size or (256, 256),
        color_mode=args.color_mode or "rgb",
        layout=_LAYOUT.get(architecture, "image"),
        schema=schema,
    )


def resolve_model(args) -> None:
    """``--model`` defaults to mlp; ``kdl train cnn`` (the first CLI's form)
    means ``kdl train digits --model cnn``."""
    if args.model is not None:
        return
    if args.data in _RANKS and not Path(args.data).exists():
        args.model, args.data = args.data, "digits"
    else:
        args.model = "mlp"


def data_from_schema(
    args, schema, command: str, arg: str = "DATA", *, recorded: bool = False
) -> None:
    """Without DATA, a model trained on a built-in dataset uses that dataset;
    with ``recorded``, also the file kdl train recorded in the schema."""
    if args.data is not None:
        return
    if schema is not None and schema.get("kind") == "builtin":
        args.data = schema["source"]
        return
    path = (schema or {}).get("path") if recorded else None
    if path and Path(path).exists():
        args.data = path
        note(args, f"kdl {command}: using {path}, the data it was trained on")
        return
    trained = f" (it was trained on {schema['source']})" if schema else ""
    if path:
        trained = f" (it was trained on {path}, which is no longer there)"
    raise CommandError(f"kdl {command}: give {arg}, the data to use{trained}")


def data_for_model(args, path: Path, command: str):
    """The model's schema and DATA read with it (same encoding, same split)."""
    from kdl import datasets

    schema = datasets.read_schema(path)
    if schema is not None and Path(args.data).name == schema.get("source"):
        args.seed, args.test_size = schema["seed"], schema["test_size"]
    data = load_data(args, args.data, schema=schema)
    if schema is not None:
        datasets.check_compatible(schema, data, f"kdl {command}")
    return schema, data


def check_architecture(architecture: str, data, command: str) -> None:
    """Refuses an architecture that cannot read the data's examples."""
    rank = len(data.input_shape)
    if rank not in _RANKS[architecture]:
        kinds = {1: "feature vectors", 2: "(steps, features) sequences", 3: "images"}
        reads = " or ".join(kinds[r] for r in _RANKS[architecture])
        hint = " (give a series with --window)" if rank == 1 else ""
        raise CommandError(
            f"kdl {command}: --model {architecture} reads {reads}, "
            f"but the data holds {kinds.get(rank, rank)}{hint}"
        )


def load_model(path: Path):
    import kdl

    return kdl.load(path)


def is_tflite(model) -> bool:
    return hasattr(model, "interpreter")


def model_shapes(model) -> tuple:
    """(input shape without the batch axis, number of outputs) of a model."""
    if is_tflite(model):
        details = model.interpreter.get_signature_runner()
        inputs = list(details.get_input_details().values())
        outputs = list(details.get_output_details().values())
        shape = tuple(
            None if d < 0 else int(d) for d in inputs[0]["shape_signature"][1:]
        )
        return shape, int(outputs[0]["shape"][-1])
    return tuple(model.input_shape[1:]), int(model.output_shape[-1])


def predict(model, x):
    if is_tflite(model):
        return model.predict(x)
    return model.predict(x, batch_size=256, verbose=0)


def part_described(data, source, which: str) -> str:
    n = (
        0
        if data[1 if which == "test" else 0][0] is None
        else len(data[1 if which == "test" else 0][0])
    )
    name = os.path.basename(str(source))
    if which == "test":
        pct = round(100 * data.schema["test_size"])
        return (
            f"the held-out {pct}% of {name} (split with seed "
            f"{data.schema['seed']}): {n} examples"
        )
    return f"all {n} examples of {name}"


def metrics(model, x, y, task) -> dict:
    """Test metrics: Keras' evaluate, or LiteRT's for a .tflite file."""
    if is_tflite(model):
        from kdl import export

        return export.evaluate_tflite(model.path, x, y, task=task)
    return model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)


def _target_column(schema):
    """The target's column in a series window, from the schema, else "auto"."""
    target = schema.get("target")
    if isinstance(target, int):
        return target
    names = schema.get("feature_names") or []
    return names.index(target) if target in names else "auto"


def shown_baselines(result: dict) -> dict:
    """The compact form the commands print: metric, model and each baseline."""
    from kdl import baselines

    shown = {"metric": result["metric"], "on": result["on"]}
    shown["model"] = result["model"]
    for which in ("trivial", "linear"):
        if result.get(which):
            shown[result[which]["name"]] = result[which]["score"]
    shown["beats_trivial"] = baselines.beats(result, result["model"])
    return shown


def baselines(args, model, data, part, *, on: str, command: str) -> dict:
    """The model's score on ``part`` beside kdl.baselines fitted on the
    training part (on ``part`` itself when there is none); warns on stderr
    when the model does not beat the trivial baseline."""
    from kdl import baselines as b

    x_eval, y_eval = part
    fit = data.train if data.train[1] is not None and len(data.train[0]) else part
    result = b.compute(
        fit[0],
        fit[1],
        x_eval,
        y_eval,
        task=data.task,
        target_column=_target_column(data.schema),
        on=on,
    )
    result["model"] = b.score(predict(model, x_eval), y_eval, data.task)
    shown = shown_baselines(result)
    if not shown["beats_trivial"]:
        note(
            args,
            f"kdl {command}: warning: the model does not beat the trivial "
            f"baseline ({b.describe(result, result['model'])})",
        )
    return shown
