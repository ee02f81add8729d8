"""kdl compress shrink and kdl compress distill: thin layers over
``kdl.compression.shrink`` and ``kdl.compression.distill``."""

from __future__ import annotations

from kdl.cli import _common as c
from kdl.cli._model_commands import build_model, save_with_schema

__all__ = ["cmd_shrink", "cmd_distill"]


def _keras_model_file(path: str, arg: str, command: str):
    """A saved Keras model (compression works on Keras models, not .tflite)."""
    p = c.check_model_file(path, arg)
    if p.suffix.lower() == ".tflite":
        raise c.CommandError(f"kdl {command}: {arg} must be a Keras model, not .tflite")
    return p


def _described(model, data) -> dict:
    """Size, compute and held-out metrics of one model."""
    from kdl import compression

    shown = {
        "parameters": int(model.count_params()),
        "multiply_adds": int(compression.multiply_adds(model)["total"]),
    }
    x_test, y_test = data.test
    if len(x_test):
        shown.update(c.metrics(model, x_test, y_test, data.task))
    return shown


def _training(args) -> dict:
    """The fine-tuning arguments shrink and distill share, named as in Python."""
    return dict(
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_split=args.validation_split,
        verbose=0 if args.quiet else 2,
    )


def cmd_shrink(args) -> int:
    out = c.check_out(args.out, c.SAVE_SUFFIXES + ("",))
    path = _keras_model_file(args.model, "MODEL", "compress shrink")
    schema, data = c.data_for_model(args, path, "compress shrink")
    from kdl import compression

    model = c.load_model(path)
    (x, y), _ = data
    smaller = compression.shrink(model, x, y, fraction=args.fraction, **_training(args))
    result = {
        "data": c.part_described(data, args.data, "test"),
        "fraction": args.fraction,
        "before": _described(model, data),
        "after": _described(smaller, data),
    }
    save_with_schema(args, smaller, out, schema or data.schema)
    result["out"] = str(out)
    c.show(result)
    return 0


def _student(args, data):
    """--student FILE, else a new model of --model (with --set) for DATA."""
    if args.student is not None:
        path = _keras_model_file(args.student, "--student", "compress distill")
        return c.load_model(path)
    args.model = args.model or "mlp"
    c.check_architecture(args.model, data, "compress distill")
    return build_model(args, data)


def cmd_distill(args) -> int:
    out = c.check_out(args.out, c.SAVE_SUFFIXES + ("",))
    path = _keras_model_file(args.teacher, "TEACHER", "compress distill")
    if args.student is not None:
        _keras_model_file(args.student, "--student", "compress distill")
    if args.student is not None and (args.model or args.set):
        raise c.CommandError(
            "kdl compress distill: give --student FILE or --model/--set, not both"
        )
    schema, data = c.data_for_model(args, path, "compress distill")
    from kdl import compression

    teacher = c.load_model(path)
    student = _student(args, data)
    (x, y), _ = data
    trained = compression.distill(
        teacher,
        student,
        x,
        y,
        temperature=args.temperature,
        alpha=args.alpha,
        **_training(args),
    )
    result = {
        "data": c.part_described(data, args.data, "test"),
        "teacher": _described(teacher, data),
        "student": _described(trained, data),
    }
    save_with_schema(args, trained, out, schema or data.schema)
    result["out"] = str(out)
    c.show(result)
    return 0
