"""kdl tune, compress, export, privacy, rl and report: thin layers over the API."""

from __future__ import annotations

import inspect

from kdl.cli import _common as c
from kdl.cli._model_commands import build_model, save_with_schema

__all__ = [
    "cmd_tune",
    "cmd_compress",
    "cmd_export",
    "cmd_privacy_epsilon",
    "cmd_privacy_train",
    "cmd_rl",
    "cmd_report",
]


def _space(architecture: str) -> dict:
    """The search space ``kdl tune`` uses for an architecture."""
    import kdl

    common = {
        "dropout": kdl.Float(0.0, 0.5),
        "learning_rate": kdl.Float(1e-4, 1e-2, log=True),
    }
    if architecture == "mlp":
        return {
            "dense_units": kdl.Choice([(32,), (64,), (64, 64), (128, 64)]),
            **common,
        }
    if architecture in ("cnn", "resnet"):
        return {"filters": kdl.Choice([(16, 32), (32, 64)]), **common}
    return {"units": kdl.Choice([(32,), (64,), (64, 32)]), **common}


def _tune_options(args, space, fixed) -> dict:
    """The keyword arguments `kdl tune` gives kdl.tune, with or without
    budgets."""
    return dict(
        space=space,
        fixed=fixed,
        algorithm=args.algorithm,
        max_trials=args.max_trials,
        epochs=args.epochs,
        batch_size=args.batch_size,
        directory=args.directory,
        seed=args.seed,
        verbose=0 if args.quiet else 1,
    )


def cmd_tune(args) -> int:
    import kdl

    budgets = any(
        getattr(args, name, None) is not None
        for name in ("max_size_kb", "max_latency_ms", "max_time")
    )
    # Under budgets the search keeps .tflite files: --out is one of them.
    out = c.check_out(args.out, (".tflite",) if budgets else c.SAVE_SUFFIXES + ("",))
    c.resolve_model(args)
    data = c.load_data(args, args.data, architecture=args.model)
    c.check_architecture(args.model, data, "tune")
    (x, y), (x_test, y_test) = data
    fixed = {"task": data.task}
    if not args.no_normalize:
        fixed["normalize"] = x
        if data.task == "regression":
            fixed["normalize_target"] = y
    space = _space(args.model)
    if args.learning_rate is not None:
        space.pop("learning_rate")
        fixed["learning_rate"] = args.learning_rate
    if args.algorithm == "grid":
        space = {k: s for k, s in space.items() if isinstance(s, kdl.Choice)}
    if budgets:
        return _tune_under_budgets(args, data, space, fixed, out)
    build_fn = getattr(kdl, f"build_{args.model}")
    result = kdl.tune(build_fn, x, y, **_tune_options(args, space, fixed))
    shown = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in result.best_params.items()
    }
    report = {"best_params": shown, "data": c.part_described(data, args.data, "test")}
    if len(x_test):
        report.update(c.metrics(result.best_model, x_test, y_test, data.task))
    if out is not None:
        save_with_schema(args, result.best_model, out, data.schema)
    c.show(report)
    return 0


def _tune_under_budgets(args, data, space, fixed, out) -> int:
    """kdl tune --max-size-kb/--max-latency-ms/--max-time: the front's best."""
    import shutil

    import kdl
    from kdl import export

    (x, y), (x_test, y_test) = data
    first = "mae" if data.task == "regression" else "accuracy"
    constraints = {}
    if args.max_size_kb is not None:
        constraints["tflite_kb"] = args.max_size_kb
    if args.max_latency_ms is not None:
        constraints["latency_ms"] = args.max_latency_ms
    result = kdl.tune(
        getattr(kdl, f"build_{args.model}"),
        x,
        y,
        **_tune_options(args, space, fixed),
        objectives=[first, "tflite_kb", "latency_ms"],
        constraints=constraints,
        max_time=args.max_time,
    )
    best = result.best()
    report = {"front": len(result.front), "directory": str(result.directory)}
    if best is None:
        report["best"] = "no trial met the budgets (see trials.csv)"
        c.show(report)
        return 1
    report["best_params"] = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in best["params"].items()
    }
    report["figures"] = {
        k: best["figures"][k] for k in (first, "tflite_kb", "latency_ms")
    }
    report["tflite"] = str(best["tflite"])
    report["data"] = c.part_described(data, args.data, "test")
    if len(x_test):
        found = export.evaluate_tflite(best["tflite"], x_test, y_test)
        report[f"test_{first}"] = found[first]
    if out is not None:
        shutil.copyfile(best["tflite"], out)
        report["saved"] = str(out)
    c.show(report)
    return 0


def cmd_compress(args) -> int:
    out = c.check_out(args.out, c.SAVE_SUFFIXES + ("",))
    if args.epochs is not None and args.epochs < 0:
        raise c.CommandError("kdl compress: --epochs must be 0 or more")
    path = c.check_model_file(args.model)
    schema, data = c.data_for_model(args, path, "compress")
    if path.suffix.lower() == ".tflite":
        raise c.CommandError("kdl compress: MODEL must be a Keras model, not .tflite")
    from kdl import compression

    model = c.load_model(path)
    (x, y), (x_test, y_test) = data
    budget = dict(
        epochs=2 if args.epochs is None and args.steps is None else args.epochs,
        steps=args.steps,
        verbose=0 if args.quiet else 1,
    )
    if args.prune is not None:
        smaller = compression.prune(model, x, y, target_sparsity=args.prune, **budget)
    else:
        smaller = compression.cluster(model, x, y, clusters=args.cluster, **budget)
    result = {
        "data": c.part_described(data, args.data, "test"),
        "sparsity": compression.sparsity(smaller)["overall"],
    }
    if len(x_test):
        result["before"] = c.metrics(model, x_test, y_test, data.task)
        result["after"] = c.metrics(smaller, x_test, y_test, data.task)
    save_with_schema(args, smaller, out, schema or data.schema)
    c.show(result)
    return 0


def cmd_export(args) -> int:
    from kdl import datasets

    micro = args.micro
    out = c.check_out(
        args.out, ("",) if micro else (".tflite",), arg="OUT", replaces=None
    )
    if micro and args.quantization not in ("none", "int8"):
        raise c.CommandError(
            "kdl export --micro: the file is int8; drop --quantization"
        )
    path = c.check_model_file(args.model)
    schema, data = datasets.read_schema(path), None
    if (args.quantization == "int8" or micro) and args.data is None:
        # a few hundred real examples calibrate the int8 ranges
        what = "--micro" if micro else "--quantization int8"
        c.data_from_schema(args, schema, f"export {what}", "--data", recorded=True)
    if args.data is not None:
        schema, data = c.data_for_model(args, path, "export")
    if path.suffix.lower() == ".tflite":
        raise c.CommandError("kdl export: MODEL is already a .tflite file")
    from kdl import export

    model = c.load_model(path)
    sample = None if data is None else data.train[0][:200]
    kwargs = {}
    if (
        schema
        and schema.get("classes")
        and "labels" in inspect.signature(export.to_tflite).parameters
    ):
        kwargs["labels"] = [str(name) for name in schema["classes"]]
    if micro:
        return _export_micro(args, model, out, data, kwargs)
    quantization = None if args.quantization == "none" else args.quantization
    written = export.to_tflite(
        model,
        out,
        quantization=quantization,
        representative_data=sample,
        check_data=sample,
        per_channel=args.per_channel,
        verbose=0 if args.quiet else 1,
        **kwargs,
    )
    if schema is not None:
        datasets.write_schema(written, schema)
    c.show(
        {
            "tflite": str(written),
            "bytes": written.stat().st_size,
            "quantization": args.quantization,
            "per_channel": args.per_channel,
            "checked_in_litert": True,
        }
    )
    return 0


def _export_micro(args, model, out, data, kwargs) -> int:
    """kdl export --micro: C source, op list and arena for TFLite Micro."""
    from kdl import export, lite

    (x, _), (x_test, _) = data
    held_out = x_test if len(x_test) else x
    folder = export.to_micro(
        model,
        out,
        representative_data=x[:200],
        check_data=held_out[:200],
        verbose=0 if args.quiet else 1,
        **kwargs,
    )
    micro = lite.load(folder / "model.tflite").metadata["micro"]
    c.show({"folder": str(folder), "files": list(export.MICRO_FILES), **micro})
    return 0


def cmd_privacy_epsilon(args) -> int:
    from kdl import privacy

    value = privacy.epsilon(
        num_examples=args.num_examples,
        batch_size=args.batch_size,
        epochs=args.epochs,
        noise_multiplier=args.noise_multiplier,
        delta=args.delta,
    )
    c.show({"epsilon": value, "delta": args.delta})
    return 0


def cmd_privacy_train(args) -> int:
    budgets = any(
        getattr(args, name, None) is not None
        for name in ("max_size_kb", "max_latency_ms", "max_time")
    )
    # Under budgets the search keeps .tflite files: --out is one of them.
    out = c.check_out(args.out, (".tflite",) if budgets else c.SAVE_SUFFIXES + ("",))
    c.resolve_model(args)
    data = c.load_data(args, args.data, architecture=args.model)
    c.check_architecture(args.model, data, "privacy train")
    (x, y), (x_test, y_test) = data
    import kdl
    from kdl import privacy

    # No normalize=: statistics adapted on the private data would not be
    # covered by the DP guarantee (kdl.privacy.make_private refuses them).
    _warn_on_scales(args, x)
    model = build_model(args, data, normalize=False)
    plan = _private_plan(args)
    private = privacy.make_private(
        model,
        l2_norm_clip=args.l2_norm_clip,
        target_epsilon=args.target_epsilon,
        delta=args.delta,
        num_examples=len(x),
        **plan,
    )
    kdl.train(  # without epochs / batch_size: make_private's plan
        private,
        x,
        y,
        **plan,
        early_stopping=False,
        checkpoint=False,
        tensorboard=False,
        seed=args.seed,
        verbose=0 if args.quiet else 2,
    )
    params = privacy.privacy_params(private)
    result = {"data": c.part_described(data, args.data, "test"), **params}
    if len(x_test):
        result.update(c.metrics(private, x_test, y_test, data.task))
    if out is not None:
        schema = dict(
            data.schema,
            epsilon=params.get("epsilon", args.target_epsilon),
            delta=params.get("delta", args.delta),
        )
        save_with_schema(args, private, out, schema)
    c.show(result)
    return 0


# When only one of --epochs / --batch-size is given (make_private plans both
# or neither), the other is the command's earlier default.
_ONE_GIVEN = {"epochs": 15, "batch_size": 64}
# Feature columns whose spreads differ more than this: DP-SGD's clipping and
# noise swamp the small ones (breast cancer's raw columns: 0.37-0.79).
SCALE_RATIO = 100.0


def _private_plan(args) -> dict:
    """{} (make_private plans batch size and epochs, kdl.train follows the
    plan: kdl.privacy's DP defaults) or both of them."""
    given = {"epochs": args.epochs, "batch_size": args.batch_size}
    if all(value is None for value in given.values()):
        return {}
    return {k: _ONE_GIVEN[k] if value is None else value for k, value in given.items()}


def _warn_on_scales(args, x) -> None:
    """A stderr warning when a table's columns are on very different scales.

    The model cannot normalize them (statistics of the private data are not
    covered by DP) and DP-SGD adds the same noise to every weight, so columns
    of small spread are lost. Only the person running the command sees it.
    """
    import numpy as np

    if np.ndim(x) != 2 or len(x) < 2:
        return
    spread = np.std(np.asarray(x, dtype="float64"), axis=0)
    spread = spread[spread > 0]
    if len(spread) and spread.max() > SCALE_RATIO * spread.min():
        c.note(
            args,
            "kdl privacy train: warning: the feature columns are on very "
            f"different scales (spreads {spread.min():.3g} to {spread.max():.3g}) "
            "and are not normalized inside a private model (their statistics "
            "would not be covered by DP); scale them to similar ranges with "
            "bounds you know without looking at the data, e.g. each to [0, 1]",
        )


def _check_env(env_id: str) -> None:
    import gymnasium

    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error as err:
        raise c.CommandError(
            f"kdl rl: {env_id!r} is not a registered Gymnasium environment ({err})"
        ) from None


def cmd_rl(args) -> int:
    out = c.check_out(args.out, ("",), replaces="agent.json")
    tflite = c.check_out(args.tflite, (".tflite",), "--tflite")
    _check_env(args.env)
    from kdl import rl
    from kdl.rl.presets import ZOO

    steps = args.steps or ZOO.get(args.env, (None, 30000))[1]
    agent = _rl_agent(args, out, rl)
    verbose = 0 if args.quiet else 1
    while agent.steps < steps:
        agent.train(min(args.checkpoint_every, steps - agent.steps), verbose=verbose)
        if out is not None:
            agent.save(out, training_state=agent.steps < steps)
    mean, std = agent.evaluate(args.episodes, seed=args.seed)
    result = {
        "env": args.env,
        "steps": agent.steps,
        "mean_return": mean,
        "std_return": std,
    }
    if out is not None:
        result["saved"] = str(out)
    if tflite is not None:
        result["tflite"] = str(agent.export_tflite(tflite, verbose=0))
    c.show(result)
    return 0


def _rl_agent(args, out, rl):
    """A new agent, or the one checkpointed in `out` by an earlier run."""
    if out is not None and (out / "agent.json").is_file():
        agent = rl.DQNAgent.load(out)
        if agent.env_id != args.env:
            raise c.CommandError(
                f"kdl rl: --out {str(out)!r} holds an agent for {agent.env_id}, "
                f"not {args.env}"
            )
        if not args.quiet:
            print(f"resuming from {out} at step {agent.steps:,}", flush=True)
        return agent
    return rl.DQNAgent.for_env(args.env, seed=args.seed)


def cmd_report(args) -> int:
    from kdl import datasets

    paths = [c.check_model_file(m) for m in args.models]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise c.CommandError("kdl report: two MODELS have the same file name")
    args.model, first = args.models[0], paths[0]
    schema, data = c.data_for_model(args, first, "report")
    epsilons = {}
    for path in paths[1:]:
        other = datasets.read_schema(path)
        if other is not None:
            datasets.check_compatible(other, data, "kdl report")
    for path in paths:
        other = datasets.read_schema(path) or {}
        if "epsilon" in other:
            epsilons[path.name] = other["epsilon"]
    from kdl import report

    variants = {
        p.name: (str(p) if p.suffix == ".tflite" else c.load_model(p)) for p in paths
    }
    x_test, y_test = data.test
    table = report.compare(
        variants,
        x_test,
        y_test,
        epsilons=epsilons or None,
        run_dir=args.run_dir,
        verbose=0,
        train_data=data.train if data.train[1] is not None and len(x_test) else None,
    )
    c.note(args, f"on {c.part_described(data, args.data, 'test')}")
    c.show(table.to_markdown())
    return 0
