"""The builder-argument checks of kdl.tune: the space, fixed arguments, targets.

They run before keras_tuner is imported, so a bad argument fails at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np

from kdl import _validation as v
from kdl.tuning import _job as jobs
from kdl.tuning import _search_space as spaces

FUNC = jobs.FUNC


def _takes_hp(build_fn) -> bool:
    """True for a KerasTuner-style `build(hp)` function."""
    params = list(inspect.signature(build_fn).parameters)
    return params == ["hp"]


def _check_space(space, fixed, signature, builder: str, algorithm: str) -> dict:
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    names = [
        name
        for name, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not isinstance(space, Mapping):
        v.fail(
            FUNC,
            "space",
            "a dict of builder argument names to kdl.Int, "
            "kdl.Float, kdl.Choice or kdl.Boolean",
            space,
            error=TypeError,
        )
    if not space:
        v.fail(FUNC, "space", f"a dict with at least one argument of {builder}", space)
    for name, spec in space.items():
        if not isinstance(name, str):
            v.fail(
                FUNC,
                "space",
                "a dict keyed by argument names (str)",
                name,
                error=TypeError,
            )
        if not accepts_any and name not in names:
            v.fail(
                FUNC,
                "space",
                f"a dict of arguments {builder} takes ({', '.join(names)})",
                name,
            )
        if name in fixed:
            v.fail(FUNC, "space", "free of the arguments given in fixed", name)
        if not isinstance(spec, spaces.SPECS):
            hint = (
                " (wrap a list of candidates in kdl.Choice)"
                if isinstance(spec, (list, tuple))
                else ""
            )
            v.fail(
                FUNC,
                f"space[{name!r}]",
                f"a kdl.Int, kdl.Float, kdl.Choice or kdl.Boolean{hint}",
                spec,
                error=TypeError,
            )
        if algorithm == "grid" and not spaces.is_discrete(spec):
            v.fail(
                FUNC,
                f"space[{name!r}]",
                "discrete for a grid search (give kdl.Float a step, or use kdl.Choice)",
                spec,
            )
    return dict(space)


def _task(signature, fixed) -> str | None:
    """The builder's task: from fixed, else its default; None when unknown."""
    if "task" in fixed:
        return fixed["task"]
    param = signature.parameters.get("task")
    if param is not None and isinstance(param.default, str):
        return param.default
    return None if param is None else "classification"


def _infer_args(signature, fixed, space, x, y, builder: str) -> dict:
    """Values of the builder's required arguments that neither fixed nor space give.

    `input_shape` is read from x; `num_outputs` from y: the number of classes
    for a classification task (labels are checked to be 0..K-1 first), the
    width of y otherwise.
    """
    inferred = {}
    for name, param in signature.parameters.items():
        if (
            param.default is not param.empty
            or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            or name in fixed
            or name in space
        ):
            continue
        if name == "input_shape" and hasattr(x, "shape"):
            inferred[name] = tuple(int(d) for d in x.shape[1:])
        elif name == "num_outputs" and y is not None and hasattr(y, "shape"):
            shape = tuple(y.shape)
            if (_task(signature, fixed) or "classification") == "classification":
                inferred[name] = int(np.max(y)) + 1
            else:
                inferred[name] = 1 if len(shape) == 1 else int(shape[-1])
        else:
            v.fail(
                FUNC,
                "fixed",
                f"a dict giving {builder}'s required argument "
                f"{name!r} (it is not in space and cannot be read from the "
                "data)",
                dict(fixed),
            )
    return inferred


# === The three records of a search: model, training, search ===


def check_builder(build_fn, space, fixed, algorithm: str, x, y) -> jobs.BuildSpec:
    """Checks the builder, its space and fixed arguments; reads the rest."""
    if not callable(build_fn):
        v.fail(FUNC, "build_fn", "a builder function", build_fn, error=TypeError)
    v.check_keras2(build_fn, "build_fn", FUNC)
    try:
        signature = inspect.signature(build_fn)
    except (TypeError, ValueError):
        v.fail(
            FUNC,
            "build_fn",
            "a function whose signature can be read",
            build_fn,
            error=TypeError,
        )
    name = getattr(build_fn, "__name__", type(build_fn).__name__)
    if fixed is not None and not isinstance(fixed, Mapping):
        v.fail(
            FUNC, "fixed", "a dict of builder arguments or None", fixed, error=TypeError
        )
    fixed = dict(fixed or {})
    if _takes_hp(build_fn):
        _check_hp_function(space, fixed)
        return jobs.BuildSpec(build_fn, name, signature, True, {}, {}, {})
    _check_fixed(fixed, signature, name)
    space = _check_space(space, fixed, signature, name, algorithm)
    _check_targets(signature, fixed, space, y)
    inferred = _infer_args(signature, fixed, space, x, y, name)
    return jobs.BuildSpec(build_fn, name, signature, False, space, fixed, inferred)


def _check_hp_function(space, fixed) -> None:
    if space is not None:
        v.fail(
            FUNC,
            "space",
            "None for a build(hp) function (it declares its "
            "own hyperparameters with hp.Int, hp.Choice, ...)",
            space,
        )
    if fixed:
        v.fail(FUNC, "fixed", "None for a build(hp) function", fixed)


def _check_fixed(fixed: dict, signature, builder: str) -> None:
    params = signature.parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for name in fixed:
        if not accepts_any and name not in params:
            v.fail(
                FUNC,
                "fixed",
                f"a dict of arguments {builder} takes ({', '.join(params)})",
                name,
            )


def _check_targets(signature, fixed, space, y) -> None:
    """Class labels must be 0..K-1 before any model is built (kdl issue 11).

    Labels 1..3 would otherwise give a 4-class model with a class that does
    not exist.
    """
    if "task" in space or "num_outputs" in space or y is None:
        return
    task = _task(signature, fixed)
    num_classes = fixed.get("num_outputs")
    param = signature.parameters.get("num_outputs")
    if task is None and param is not None and param.default is param.empty:
        # No task argument: tune reads num_outputs as a number of classes.
        task = None if num_classes is not None else "classification"
    if task is None or not isinstance(num_classes, (int, type(None))):
        return
    v.check_targets(FUNC, y, task=task, num_classes=num_classes)
