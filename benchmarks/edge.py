"""Benchmark: the ``kdl.report.compare`` table of a digits CNN and a sunspots GRU.

For each model: size (bytes and gzipped), parameters, multiply-adds per
example, test accuracy (CNN) or mean absolute error (GRU), and per-example
latency in the LiteRT interpreter (one thread), for the variants
``kdl.report.standard_variants`` builds, all measured side by side in one
run. Full int8 of a GRU crashes the converter (docs/design.md), so the GRU's
int8 variants are not attempted; its compressed variants are float and
dynamic-range files of the shrunk and pruned models instead.

Goals (issue 15), judged against the float TFLite file:

- digits CNN: "pruned + int8" at least 10x smaller gzipped and
  "pruned + clustered + int8" at least 15x, each within one point of the
  float model's accuracy; "shrunk + int8" at least 2x fewer multiply-adds
  within one point;
- sunspots GRU: shrunk and pruned keep the test MAE within 5% of the float
  model's.

Run from the repository root (tens of minutes on a busy 2-core machine):

    .venv/bin/python benchmarks/edge.py [--epochs N] [--out DIR] [--write]

``--epochs`` sets every transform's fine-tuning epochs (default: the
transforms' own defaults); ``--models cnn gru`` picks the models.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _common

SECTION = "## Compression and edge: report.compare"


def _transform_kwargs(epochs):
    if epochs is None:
        return {}
    return {
        f"{name}_kwargs": {"epochs": epochs}
        for name in ("prune", "cluster", "qat", "shrink", "distill")
    }


def _compare(variants, x_test, y_test, folder: Path, name: str):
    """The report of ``variants`` against the float TFLite file."""
    from kdl import report

    return report.compare(
        variants,
        x_test,
        y_test,
        baseline="tflite float",
        run_dir=folder,
        name=name,
        latency_samples=200,
        verbose=0,
    )


def digits_cnn(folder: Path, epochs, seed: int):
    """(report, skipped variants) for the default digits CNN."""
    import kdl
    from kdl import datasets, report

    (x, y), (x_test, y_test) = datasets.digits()
    kdl.set_seed(seed, deterministic=False)
    model = kdl.build_cnn((8, 8, 1), 10, name="digits_cnn")
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        variants = report.standard_variants(
            model,
            x,
            y,
            folder,
            check_data=x_test,
            verbose=1,
            **_transform_kwargs(epochs),
        )
    table = _compare(variants, x_test, y_test, folder, "digits_cnn")
    return table, [str(w.message) for w in caught if "skipped" in str(w.message)]


def sunspots_gru(folder: Path, epochs, seed: int):
    """(report, skipped variants) for a GRU forecasting the sunspots."""
    import kdl
    from kdl import compression, datasets, export, report

    (x, y), (x_test, y_test) = datasets.sunspots(window=24)
    kdl.set_seed(seed, deterministic=False)
    model = kdl.build_gru((24, 1), 1, task="regression", units=(32,), name="gru")
    model.fit(x, y, epochs=60, batch_size=16, verbose=0)
    variants = report.standard_variants(
        model,
        x,
        y,
        folder,
        include=("keras float", "tflite float", "dynamic range", "float16"),
        check_data=x_test,
        verbose=1,
    )
    extra = {} if epochs is None else {"epochs": epochs}
    made = {
        "shrunk": compression.shrink(model, x, y, verbose=0, **extra),
        "pruned": compression.prune(model, x, y, verbose=0, **extra),
    }
    for label, source, quantization in (
        ("shrunk float", made["shrunk"], None),
        ("shrunk dynamic range", made["shrunk"], "dynamic"),
        ("pruned dynamic range", made["pruned"], "dynamic"),
    ):
        print(f"edge: exporting {label!r}...", flush=True)
        variants[label] = export.to_tflite(
            source,
            folder / f"gru_{label.replace(' ', '_')}.tflite",
            quantization=quantization,
            check_data=x_test,
            verbose=0,
        )
        variants.sources[label] = source
    # the pruned Keras model too: tells a loss from pruning from one in export
    variants["pruned (Keras)"] = made["pruned"]
    return _compare(variants, x_test, y_test, folder, "sunspots_gru"), []


def cnn_goals(table) -> list[str]:
    base = table.row("tflite float")
    lines = []
    for name, times in (("pruned + int8", 10), ("pruned + clustered + int8", 15)):
        try:
            row = table.row(name)
        except KeyError:
            lines.append(_common.goal(False, f"{name}: not built"))
            continue
        smaller = 1 / row["gzip_ratio"]
        points = 100 * (row["metric"] - base["metric"])
        lines.append(
            _common.goal(
                smaller >= times and points >= -1.0,
                f"{name} at least {times}x smaller gzipped than the float file "
                f"within one point: {smaller:.1f}x smaller, accuracy "
                f"{points:+.1f} points.",
            )
        )
    try:
        row = table.row("shrunk + int8")
        fewer = 1 / row["multiply_adds_ratio"]
        points = 100 * (row["metric"] - base["metric"])
        lines.append(
            _common.goal(
                fewer >= 2 and points >= -1.0,
                f"shrunk + int8 at least 2x fewer multiply-adds within one point: "
                f"{fewer:.2f}x fewer, accuracy {points:+.1f} points.",
            )
        )
    except KeyError:
        lines.append(_common.goal(False, "shrunk + int8: not built"))
    return lines


def gru_goals(table) -> list[str]:
    base = table.row("tflite float")["metric"]
    lines = []
    for name in ("shrunk float", "pruned dynamic range"):
        worse = table.row(name)["metric"] / base - 1
        lines.append(
            _common.goal(
                worse <= 0.05,
                f"{name}: test MAE within 5% of the float file's: {100 * worse:+.1f}%.",
            )
        )
    return lines


def section(results: dict, head: list[str]) -> str:
    lines = [SECTION, "", *head, ""]
    titles = {
        "cnn": "### Digits CNN (`build_cnn((8, 8, 1), 10)`, 20 epochs)",
        "gru": "### Sunspots GRU (`build_gru((24, 1), 1, units=(32,))`, 60 epochs)",
    }
    for key, (table, skipped, goals, seconds) in results.items():
        lines += [titles[key], "", table.to_markdown().rstrip("\n"), ""]
        lines += [f"- skipped: {message}" for message in skipped]
        lines += [f"Built and measured in {seconds:.0f} s.", ""]
        for goal in goals:
            lines += [goal, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    argv = sys.argv if argv is None else [sys.argv[0], *argv]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["cnn", "gru"])
    parser.add_argument("--out", type=Path, default=None)
    _common.add_write_flag(parser)
    args = parser.parse_args(argv[1:])
    head = _common.header(argv)
    runs = {"cnn": (digits_cnn, cnn_goals), "gru": (sunspots_gru, gru_goals)}
    results = {}
    with tempfile.TemporaryDirectory(prefix="kdl-edge-") as tmp:
        folder = args.out or Path(tmp)
        for key in args.models:
            build, goals = runs[key]
            start = time.perf_counter()
            table, skipped = build(folder / key, args.epochs, args.seed)
            seconds = time.perf_counter() - start
            results[key] = (table, skipped, goals(table), seconds)
            print(table.to_markdown(), flush=True)
    text = section(results, head)
    print(text)
    if args.write:
        _common.write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
