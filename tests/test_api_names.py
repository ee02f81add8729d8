"""One name per shared concept across kdl's public API (issue 31).

Reads the signature of every public function and method (no model is built)
and fails when a parameter looks like one of the shared concepts (held-out
data, seed, determinism, output folder, layer widths, verbosity) but is not
its canonical name. A deliberate exception is listed below with its reason;
a deprecated old name (default ``kdl._keras_names.UNSET``) must be listed in
DEPRECATED. A new function that names a concept its own way fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from kdl._keras_names import UNSET

MODULES = (
    "kdl",
    "kdl.augment",
    "kdl.baselines",
    "kdl.callbacks",
    "kdl.compression",
    "kdl.datasets",
    "kdl.export",
    "kdl.io",
    "kdl.lite",
    "kdl.privacy",
    "kdl.report",
    "kdl.rl",
    "kdl.training",
    "kdl.tuning",
)

# Public classes a module does not list in __all__.
EXTRA = {"kdl.io": ("SavedModelPredictor",)}

# concept -> (pattern a parameter name matches, the canonical names)
CONCEPTS = {
    "held-out data": (
        r"hold_?out|^val_|valid|_split$|^split",
        {"validation_split", "validation_data"},
    ),
    "seed": (r"seed|random_state|^rng$", {"seed"}),
    "determinism": (r"determin", {"deterministic"}),
    "output folder": (
        r"_dir$|^dir_|directory|folder|^out_|^output_?(dir|path|folder)",
        {"run_dir"},
    ),
    "widths": (r"units|width|neurons|hidden|^filters$|^channels$", None),
    "verbosity": (r"verbos|quiet|silent|progress", {"verbose"}),
}
# Widths: "units" (recurrent layers), "dense_units" (dense layers), "filters"
# (convolutions), each with one type wherever it appears: a tuple default,
# and for layer widths an int (one layer) or a tuple in the annotation.
WIDTHS = {"units": tuple, "dense_units": tuple, "filters": tuple}
TAKES_AN_INT_TOO = ("units", "dense_units")

# (function, parameter) -> why it keeps its own name.
EXCEPTIONS = {
    ("kdl.tune", "directory"): "KerasTuner's name for the search folder",
    ("kdl.export.to_tflite", "run_dir"): "an input: the training run to record",
    ("kdl.export.to_micro", "folder"): "issue 31 leaves it: a required output",
    ("kdl.tuning.TuneResult", "directory"): "the search folder, as kdl.tune",
    ("kdl.tuning.BudgetResult", "directory"): "the search folder, as kdl.tune",
    ("kdl.augment.TimeMask", "width"): "steps masked, not a layer width",
    ("kdl.callbacks.standard", "run_dir"): "the run folder the callbacks write",
}
# (function, deprecated parameter) -> its new name; removed next release.
DEPRECATED = {
    ("kdl.tune", "max_consecutive_failures"): "max_consecutive_failed_trials",
    ("kdl.build_cnn", "pool"): "pooling",
    ("kdl.build_mlp", "hidden_units"): "dense_units",
    ("kdl.rl.DQNAgent", "hidden_units"): "dense_units",
    ("kdl.report.compare", "output_dir"): "run_dir",
    ("kdl.report.standard_variants", "output_dir"): "run_dir",
    **{
        (f"kdl.compression.{name}", "holdout"): "validation_split"
        for name in ("prune", "cluster", "quantize_aware", "shrink", "distill")
    },
}


def _own_name(module: str, name: str, obj) -> str:
    home = getattr(obj, "__module__", "") or ""
    if module == "kdl" or home.startswith(module):
        return f"{module}.{name}" if module != "kdl" else f"kdl.{name}"
    return f"{module}.{name}"


def public_callables() -> dict:
    """{public name: callable} of every public function, class and method."""
    found, seen = {}, set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in [*getattr(module, "__all__", ()), *EXTRA.get(module_name, ())]:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or name == "keras" or id(obj) in seen:
                continue
            seen.add(id(obj))
            qualified = _own_name(module_name, name, obj)
            if inspect.isfunction(obj):
                found[qualified] = obj
            elif inspect.isclass(obj) and obj.__module__.startswith("kdl"):
                found[qualified] = obj.__init__
                for method, value in vars(obj).items():
                    if inspect.isfunction(value) and not method.startswith("_"):
                        found[f"{qualified}.{method}"] = value
    return found


def _parameters(func) -> list:
    try:
        return list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return []


def test_the_api_is_read():
    names = public_callables()
    expected = (
        "kdl.train",
        "kdl.tune",
        "kdl.build_cnn",
        "kdl.load",
        "kdl.compression.prune",
        "kdl.export.to_tflite",
        "kdl.privacy.save_statement",
        "kdl.export.TFLiteModel.predict",
    )
    for name in expected:
        assert name in names, name


def _width_problems(key, p) -> list[str]:
    """A width's name, its default's type and (layer widths) its annotation."""
    wanted = WIDTHS.get(p.name)
    if wanted is None:
        return [f"{key}: a width not named units, dense_units or filters"]
    problems = []
    if p.default not in (None, p.empty) and not isinstance(p.default, wanted):
        problems.append(f"{key}: a width that is not a tuple")
    annotation = str(p.annotation)
    if p.name in TAKES_AN_INT_TOO and not re.fullmatch(
        r"int \| tuple\[.*\]", annotation
    ):
        problems.append(f"{key}: a width annotated {annotation}, not int | tuple")
    return problems


def _problems() -> list[str]:
    problems = []
    for qualified, func in sorted(public_callables().items()):
        for p in _parameters(func):
            key = (qualified, p.name)
            if p.default is UNSET:
                if key not in DEPRECATED:
                    problems.append(f"{key}: deprecated, but not in DEPRECATED")
                continue
            if key in EXCEPTIONS:
                continue
            for concept, (pattern, canonical) in CONCEPTS.items():
                if not re.search(pattern, p.name):
                    continue
                if canonical is None:
                    problems += _width_problems(key, p)
                elif p.name not in canonical:
                    problems.append(f"{key}: {concept} is named {sorted(canonical)}")
    return problems


def test_every_shared_concept_has_one_name():
    assert _problems() == []


def test_every_exception_and_deprecation_still_exists():
    """A renamed or removed parameter takes its entry out of the tables."""
    found = public_callables()
    for func, name in [*EXCEPTIONS, *DEPRECATED]:
        params = {p.name for p in _parameters(found[func])}
        assert name in params, (func, name)


@pytest.mark.parametrize(
    "name",
    [
        "kdl.train",
        "kdl.tune",
        "kdl.compression.prune",
        "kdl.compression.cluster",
        "kdl.compression.quantize_aware",
        "kdl.compression.shrink",
        "kdl.compression.distill",
        "kdl.report.standard_variants",
    ],
)
def test_y_is_optional_where_x_may_be_a_dataset(name):
    params = {p.name: p for p in _parameters(public_callables()[name])}
    assert params["y"].default is None
    assert "callbacks" in params or name == "kdl.report.standard_variants"


def test_the_check_fails_on_a_new_inconsistency(monkeypatch):
    """The test itself: a function naming a concept its own way is caught."""

    def new_transform(model, x, y=None, *, holdout=0.1, out_dir=None, verbosity=1):
        """A made-up public function with three inconsistent names."""

    found = public_callables()
    monkeypatch.setattr(
        __import__(__name__, fromlist=["x"]),
        "public_callables",
        lambda: {**found, "kdl.compression.new_transform": new_transform},
    )
    problems = _problems()
    assert len(problems) == 3
    assert any("'holdout'" in p and "held-out" in p for p in problems)
    assert any("'out_dir'" in p and "output folder" in p for p in problems)
    assert any("'verbosity'" in p for p in problems)


def test_the_check_fails_on_a_new_width_inconsistency(monkeypatch):
    """Widths: one name per kind of layer, a tuple default, int or tuple."""

    def new_builder(
        input_shape,
        *,
        hidden_units=(8,),
        units: tuple[int, ...] = (4,),
        dense_units: int | tuple[int, ...] = 8,
        filters: tuple[int, ...] = (4,),
    ):
        """A made-up builder with three inconsistent widths (filters is fine)."""

    found = public_callables()
    monkeypatch.setattr(
        __import__(__name__, fromlist=["x"]),
        "public_callables",
        lambda: {**found, "kdl.build_new": new_builder},
    )
    problems = [p for p in _problems() if "kdl.build_new" in p]
    assert len(problems) == 3, problems
    assert any("'hidden_units'" in p and "not named units" in p for p in problems)
    assert any("'units'" in p and "not int | tuple" in p for p in problems)
    assert any("'dense_units'" in p and "not a tuple" in p for p in problems)


def test_every_builder_names_its_widths():
    """The builders' widths are covered: each has units or dense_units."""
    found = public_callables()
    builders = [name for name in found if name.startswith("kdl.build_")]
    assert len(builders) >= 8, builders
    for name in builders:
        params = {p.name for p in _parameters(found[name])}
        if name == "kdl.build_multitask":  # widths go in trunk_kwargs
            continue
        assert params & {"units", "dense_units", "filters"}, name
