"""Side-by-side report of a model's variants: accuracy, size, latency, epsilon.

:func:`compare` measures every variant the same way and writes one table
(Markdown and CSV) and one plot (accuracy against gzipped size):

- a ``.tflite`` file is measured in the LiteRT interpreter
  (:func:`kdl.export.evaluate_tflite`): the accuracy is that of the exported
  file, not of the Keras model it came from;
- a Keras model is measured in TensorFlow: its size is that of its weights
  file (HDF5, no optimizer state) and its latency that of one traced
  ``model(x, training=False)`` call per example.

:func:`standard_variants` builds the usual set from one float model: TFLite
float, dynamic range, float16 and int8 files, and pruned, clustered,
pruned-then-clustered (sparsity kept), quantization-aware-trained, shrunk
(units and filters removed) and distilled models exported to int8 (with
:mod:`kdl.compression`).

Beside size and latency the table gives each variant's parameters and
multiply-adds per example (:func:`kdl.compression.multiply_adds`): pruning
and clustering change neither (they zero or share weights), shrinking and
distilling into a smaller student cut both. A .tflite file is counted from
the Keras model it came from (``sources``; :func:`standard_variants` passes
them along), or left blank.

Example:
    >>> from kdl import report
    >>> variants = report.standard_variants(model, x_train, y_train,
    ...                                     "reports/cnn")  # doctest: +SKIP
    >>> table = report.compare(variants, x_test, y_test,
    ...                        run_dir="reports/cnn")  # doctest: +SKIP
    >>> print(table.to_markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kdl import _keras_names
from kdl import _validation as v
from kdl import baselines as kdl_baselines
from kdl._files import atomic_path, write_text
from kdl._label_placement import place_labels
from kdl._measure import (
    litert_version,
    measure_keras,
    measure_tflite,
    no_retracing_warning,
)
from kdl.compression.variants import STANDARD_VARIANTS, Variants, standard_variants

__all__ = [
    "Report",
    "Variants",
    "compare",
    "place_labels",
    "standard_variants",
    "STANDARD_VARIANTS",
]

COLUMNS = (
    "variant",
    "metric",
    "metric_ratio",
    "bytes",
    "bytes_ratio",
    "gzip_bytes",
    "gzip_ratio",
    "parameters",
    "parameters_ratio",
    "multiply_adds",
    "multiply_adds_ratio",
    "latency_ms_median",
    "latency_ratio",
    "latency_ms_p90",
    "latency_ms_all_threads",
    "delegated",
    "slowest_op",
    "epsilon",
    "source",
)


# === The report ===


@dataclass(frozen=True)
class Report:
    """The table of :func:`compare`: one row per variant.

    Attributes:
        rows: tuple of dict. One per variant, with the keys of ``COLUMNS``;
            "metric" is the value of ``metric_name``; ratios are the
            variant's figure divided by the baseline's (a "gzip_ratio" of
            0.1 means ten times smaller).
        metric_name: str. "accuracy" or "mae" (or an output's one).
        baseline: str. The variant the ratios divide by.
        paths: dict. "markdown", "csv" and "plot" -> the files written (empty
            without a ``run_dir``).
    """

    rows: tuple
    metric_name: str
    baseline: str
    paths: dict = field(default_factory=dict)
    baselines: dict | None = None  # kdl.baselines.compute, with train_data

    def row(self, variant: str) -> dict:
        """The row of one variant."""
        for row in self.rows:
            if row["variant"] == variant:
                return row
        raise KeyError(variant)

    def to_markdown(self) -> str:
        """The table as Markdown (ratios to the baseline in parentheses)."""

        def fmt(value, digits=3):
            return "—" if value is None else f"{value:.{digits}g}"

        def ratio(value):
            return "" if value is None else f" ({value:.3g}x)"

        def count(value, value_ratio):
            return "—" if value is None else f"{value:,}{ratio(value_ratio)}"

        lines = [
            f"| variant | {self.metric_name} | bytes | gzipped bytes | "
            "parameters | multiply-adds | latency median ms | latency p90 ms "
            "| all threads ms | XNNPACK ops | slowest op | epsilon |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r['variant']} | {fmt(r['metric'], 4)}{ratio(r['metric_ratio'])}"
                f" | {r['bytes']:,}{ratio(r['bytes_ratio'])}"
                f" | {r['gzip_bytes']:,}{ratio(r['gzip_ratio'])}"
                f" | {count(r['parameters'], r['parameters_ratio'])}"
                f" | {count(r['multiply_adds'], r['multiply_adds_ratio'])}"
                f" | {fmt(r['latency_ms_median'])}{ratio(r['latency_ratio'])}"
                f" | {fmt(r['latency_ms_p90'])}"
                f" | {fmt(r['latency_ms_all_threads'])} | {r['delegated'] or '—'}"
                f" | {r['slowest_op'] or '—'} | {fmt(r['epsilon'])} |"
            )
        lines.append("")
        lines.append(
            f"Ratios are each figure divided by that of "
            f"{self.baseline!r}. Files are measured in the LiteRT "
            f"interpreter (LiteRT {litert_version()}; one thread, and all threads;"
            " XNNPACK ops: the ops "
            "LiteRT's default delegate took, slowest op: its share of the "
            "summed one-op times, kdl.profiling); Keras models in TensorFlow "
            "(size: weights "
            "file without optimizer state). Multiply-adds are per example "
            "(kdl.compression.multiply_adds); pruned and clustered models "
            "keep theirs (their zeros and shared weights still compute)."
        )
        if self.baselines is not None:
            lines.append(
                "Trivial baselines on the same data (fitted on the training "
                f"data): {kdl_baselines.describe(self.baselines)}."
            )
        if any(r["parameters"] is None for r in self.rows):
            lines.append(
                "A .tflite file given without the Keras model it came from "
                "(compare's `sources`) shows — for parameters and "
                "multiply-adds."
            )
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """The table as CSV text (empty cells for missing values)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: "" if r[k] is None else r[k] for k in COLUMNS})
        return out.getvalue()

    def plot(self, path) -> Path:
        """Writes a PNG of the metric against the gzipped size (log scale)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        points = [(r["gzip_bytes"], r["metric"]) for r in self.rows]
        ax.scatter(*zip(*points, strict=True), s=40)
        ax.set_xscale("log")
        ax.margins(x=0.3, y=0.15)  # room for the labels
        ax.set_xlabel("gzipped size (bytes, log scale)")
        ax.set_ylabel(self.metric_name)
        ax.set_title(f"{self.metric_name} against size")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        # freeze the layout first: label boxes are compared in display space
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
        labels = [
            r["variant"] + ("" if r["epsilon"] is None else f" (ε={r['epsilon']:.3g})")
            for r in self.rows
        ]
        place_labels(ax, points, labels)
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)
        return path

    def __str__(self) -> str:
        return self.to_markdown()


def _check_variants(variants, func):
    if not isinstance(variants, Mapping) or not variants:
        v.fail(
            func,
            "variants",
            "a non-empty dict {name: kdl.keras.Model or .tflite path}",
            variants,
            error=TypeError if not isinstance(variants, Mapping) else ValueError,
        )
    for name, value in variants.items():
        if not isinstance(name, str) or not name:
            v.fail(
                func,
                "variants",
                "a dict whose keys are non-empty str",
                name,
                error=TypeError,
            )
        arg = f"variants[{name!r}]"
        if isinstance(value, (str, os.PathLike)):
            if Path(value).suffix != ".tflite" or not Path(value).is_file():
                v.fail(
                    func,
                    arg,
                    "an existing .tflite file or a kdl.keras.Model",
                    str(value),
                )
        else:
            v.check_keras_model(value, arg, func)


def compare(
    variants: Mapping,
    x,
    y,
    *,
    baseline: str | None = None,
    epsilons: dict[str, float] | None = None,
    metric: str | None = None,
    sources: Mapping | None = None,
    run_dir=None,
    name: str = "comparison",
    latency_samples: int = 100,
    verbose: int = 1,
    train_data: tuple | None = None,
    output_dir=_keras_names.UNSET,
) -> Report:
    """Measures variants of a model side by side and writes the table and plot.

    Each variant is measured on the same ``x``, ``y``: its metric (accuracy,
    or mean absolute error for regression), its size in bytes and gzipped,
    its parameters and multiply-adds per example, its per-example latency
    (median and 90th percentile, one thread), and, when given, the privacy
    budget epsilon it was trained with. Every figure
    is also given as its ratio to the baseline's.

    Args:
        variants: dict. Variant name -> a `kdl.keras.Model` (measured in
            TensorFlow) or the path of a .tflite file (measured in LiteRT),
            e.g. from :func:`standard_variants`.
        x: array, list of arrays or dict. Test inputs.
        y: array, or dict {output: array}. Test labels.
        baseline: str or None. The variant that ratios divide by. Defaults to
            `None` (the first variant).
        epsilons: dict or None. Variant name -> epsilon of differential
            privacy (see `kdl.privacy.epsilon`); variants not in it show "—".
            Defaults to `None`.
        metric: str or None. The result key to tabulate and plot, e.g.
            "accuracy", "mae" or "digit_accuracy". Defaults to `None`:
            "accuracy" when every variant has it, else "mae".
        sources: dict or None. Variant name -> the Keras model a .tflite
            variant was exported from, to count its parameters and
            multiply-adds (a file's own graph does not say which weights
            are zeros or shared). Files without one show "—" there. The
            dict :func:`standard_variants` returns carries its own.
            Defaults to `None`.
        run_dir: str, os.PathLike or None. Where to write
            ``<name>.md``, ``<name>.csv`` and ``<name>.png``. Defaults to
            `None` (nothing written).
        name: str. File name stem. Defaults to `"comparison"`.
        latency_samples: int. Examples timed one by one. Defaults to `100`.
        verbose: int. 0 for silence; 1 prints the table. Defaults to `1`.
        train_data: tuple or None. ``(x_train, y_train)`` the models were
            trained on: the table then ends with the trivial baselines
            (:mod:`kdl.baselines`) fitted on it and scored on ``x``, ``y``
            (``Report.baselines``). Defaults to `None`.
        output_dir: deprecated name of ``run_dir`` (DeprecationWarning;
            removed in the next release).

    Returns:
        A :class:`Report`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it (checked before
            anything is measured).

    Example:
        >>> table = compare({"keras": model, "int8": "cnn_int8.tflite"},
        ...                 x_test, y_test, epsilons={"int8": 3.0},
        ...                 run_dir="reports")  # doctest: +SKIP
        >>> table.row("int8")["gzip_ratio"]  # doctest: +SKIP
        0.11
    """
    func = "kdl.report.compare"
    run_dir = _keras_names.renamed(func, "output_dir", "run_dir", output_dir,
                                   run_dir, None)  # fmt: skip
    baseline = _check_compare_args(
        variants,
        baseline=baseline,
        epsilons=epsilons,
        metric=metric,
        sources=sources,
        run_dir=run_dir,
        name=name,
        func=func,
    )
    latency_samples = v.check_int(latency_samples, "latency_samples", func, min_value=0)
    verbose = v.check_verbose(verbose, func)
    sources = {**getattr(variants, "sources", {}), **(sources or {})}
    results = _measure_all(
        variants,
        x,
        y,
        sources=sources,
        latency_samples=latency_samples,
        verbose=verbose,
    )
    metric = _pick_metric(results, metric, func)
    rows = _rows(results, metric, results[baseline], epsilons or {})
    trivial = None
    if train_data is not None and metric in ("accuracy", "mae"):
        task = "regression" if metric == "mae" else "classification"
        trivial = kdl_baselines.compute(*train_data, x, y, task=task)
    report = Report(
        rows=tuple(rows), metric_name=metric, baseline=baseline, baselines=trivial
    )
    if run_dir is not None:
        folder = Path(run_dir)
        report.paths["markdown"] = write_text(
            folder / f"{name}.md", report.to_markdown()
        )
        report.paths["csv"] = write_text(folder / f"{name}.csv", report.to_csv())
        report.paths["plot"] = report.plot(folder / f"{name}.png")
    if verbose:
        print(report.to_markdown(), flush=True)
    return report


def _check_by_variant(values, arg, expected, variants, func, check_value) -> None:
    """``values``: None or a dict whose keys are variant names, each value
    passing ``check_value(value, label)``; ``expected`` says what it must be."""
    if values is None:
        return
    if not isinstance(values, Mapping):
        v.fail(func, arg, expected, values, error=TypeError)
    names = list(variants)
    for key, value in values.items():
        if key not in variants:
            v.fail(func, arg, f"a dict whose keys are variant names {names}", key)
        check_value(value, f"{arg}[{key!r}]")


def _check_compare_args(
    variants, *, baseline, epsilons, metric, sources, run_dir, name, func
) -> str:
    """Checks the arguments of :func:`compare`; returns the baseline's name."""
    _check_variants(variants, func)
    _check_by_variant(
        sources,
        "sources",
        "a dict {variant: kdl.keras.Model}",
        variants,
        func,
        lambda value, label: v.check_keras_model(value, label, func),
    )
    names = list(variants)
    if baseline is None:
        baseline = names[0]
    elif baseline not in variants:
        v.fail(func, "baseline", f"one of the variant names {names}", baseline)
    _check_by_variant(
        epsilons,
        "epsilons",
        "a dict {variant: epsilon} or None",
        variants,
        func,
        lambda value, label: v.check_float(value, label, func, strict_min=True),
    )
    if metric is not None:
        v.check_str(metric, "metric", func)
    v.check_str(name, "name", func)
    if run_dir is not None:
        v.check_path(run_dir, "run_dir", func)
    return baseline


def _measure_all(variants, x, y, *, sources, latency_samples, verbose) -> dict:
    """{variant: result dict} for every variant, measured the same way."""
    results = {}
    with no_retracing_warning():
        for key, value in variants.items():
            if verbose:
                print(f"compare: measuring {key!r}...", flush=True)
            if isinstance(value, (str, os.PathLike)):
                results[key] = measure_tflite(
                    value,
                    x,
                    y,
                    latency_samples=latency_samples,
                    source=sources.get(key),
                )
                results[key]["source"] = str(value)
            else:
                results[key] = measure_keras(
                    value, x, y, latency_samples=latency_samples
                )
                results[key]["source"] = f"Keras model {value.name!r}"
    return results


def _pick_metric(results: dict, metric, func: str) -> str:
    """``metric``, or "accuracy" when every variant has it, else "mae"."""
    if metric is None:
        metric = "accuracy" if all("accuracy" in r for r in results.values()) else "mae"
    for key, result in results.items():
        if metric not in result:
            v.fail(
                func,
                "metric",
                f"a result key of every variant (variant "
                f"{key!r} has {sorted(k for k in result if k not in COLUMNS)})",
                metric,
            )
    return metric


def _ratio(value, reference):
    if value is None or reference in (None, 0):
        return None
    return float(value) / float(reference)


def _rows(results: dict, metric: str, base: dict, epsilons: Mapping) -> list:
    """One table row per variant, with ratios to ``base``."""
    return [
        {
            "variant": key,
            "metric": result[metric],
            "metric_ratio": _ratio(result[metric], base[metric]),
            "bytes": result["bytes"],
            "bytes_ratio": _ratio(result["bytes"], base["bytes"]),
            "gzip_bytes": result["gzip_bytes"],
            "gzip_ratio": _ratio(result["gzip_bytes"], base["gzip_bytes"]),
            "parameters": result["parameters"],
            "parameters_ratio": _ratio(result["parameters"], base["parameters"]),
            "multiply_adds": result["multiply_adds"],
            "multiply_adds_ratio": _ratio(
                result["multiply_adds"], base["multiply_adds"]
            ),
            "latency_ms_median": result["latency_ms_median"],
            "latency_ratio": _ratio(
                result["latency_ms_median"], base["latency_ms_median"]
            ),
            "latency_ms_p90": result["latency_ms_p90"],
            "latency_ms_all_threads": result.get("latency_ms_all_threads"),
            "delegated": result.get("delegated"),
            "slowest_op": result.get("slowest_op"),
            "epsilon": epsilons.get(key),
            "source": result["source"],
        }
        for key, result in results.items()
    ]
