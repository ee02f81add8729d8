"""Benchmark: what importing kdl costs, against ``import tensorflow``.

Each statement runs in a fresh Python process (``python -c``), timed from
just before the statement to just after it (the interpreter's own start-up
is left out), round-robin over the statements so that a busy spell of the
shared machine hits them alike; the table gives the median of the repeats,
the ratio to ``import tensorflow`` and which heavy libraries the statement
left imported.

Goals: ``import kdl`` and ``import kdl.lite`` import no TensorFlow, Keras,
KerasTuner, TF-MOT or TF Privacy (DESIGN.md: import lazily; the device side
never imports TensorFlow), so each costs under a tenth of
``import tensorflow``; ``from kdl import build_gru`` needs TensorFlow and
tf_keras and costs at most 1.5x ``import tensorflow``.

Run from the repository root:

    .venv/bin/python benchmarks/imports.py [--repeats 5] [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import _common

SECTION = "## Import time"
STATEMENTS = (
    "import tensorflow",
    "import kdl",
    "from kdl import build_gru",
    "import kdl.lite",
)
HEAVY = (
    "tensorflow",
    "tf_keras",
    "keras",
    "keras_tuner",
    "tensorflow_model_optimization",
    "tensorflow_privacy",
)
PROBE = """
import json, sys, time
start = time.perf_counter()
{statement}
seconds = time.perf_counter() - start
heavy = [name for name in {heavy!r} if name in sys.modules]
print(json.dumps({{"seconds": seconds, "heavy": heavy}}))
"""


def measure(statement: str) -> dict:
    """Seconds and heavy modules of one statement in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        cwd=_common.ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def section(results: dict, head: list[str]) -> str:
    """The Markdown section: header, table, goals."""
    tf_seconds = statistics.median(results["import tensorflow"]["seconds"])
    rows, medians = [], {}
    for statement, result in results.items():
        median = statistics.median(result["seconds"])
        medians[statement] = median
        rows.append(
            (
                f"`{statement}`",
                f"{median:.3f}",
                f"{min(result['seconds']):.3f}–{max(result['seconds']):.3f}",
                f"{median / tf_seconds:.2f}x",
                ", ".join(result["heavy"]) or "none",
            )
        )
    light = all(
        not results[s]["heavy"] and medians[s] < 0.1 * tf_seconds
        for s in ("import kdl", "import kdl.lite")
    )
    gru = medians["from kdl import build_gru"] / tf_seconds
    repeats = len(results["import kdl"]["seconds"])
    lines = [SECTION, "", *head, ""]
    lines += _common.table(
        (
            "statement",
            f"median s ({repeats} fresh processes)",
            "range s",
            "/ import tensorflow",
            "heavy libraries left imported",
        ),
        rows,
    )
    lines += [
        "",
        _common.goal(
            light,
            "`import kdl` and `import kdl.lite` import none of TensorFlow, "
            "Keras, KerasTuner, TF-MOT, TF Privacy and take under 0.1x "
            "`import tensorflow`: "
            f"{medians['import kdl'] / tf_seconds:.2f}x and "
            f"{medians['import kdl.lite'] / tf_seconds:.2f}x.",
        ),
        "",
        _common.goal(
            gru <= 1.5,
            "`from kdl import build_gru` (TensorFlow and tf_keras load here) "
            f"within 1.5x `import tensorflow`: {gru:.2f}x.",
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv if argv is None else [sys.argv[0], *argv]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    _common.add_write_flag(parser)
    args = parser.parse_args(argv[1:])
    head = _common.header(argv)  # date and load at the start
    results = {s: {"seconds": [], "heavy": []} for s in STATEMENTS}
    for _ in range(args.repeats):
        for statement in STATEMENTS:
            one = measure(statement)
            results[statement]["seconds"].append(one["seconds"])
            results[statement]["heavy"] = one["heavy"]
            print(f"{statement}: {one['seconds']:.2f} s", flush=True)
    text = section(results, head)
    print(text)
    if args.write:
        _common.write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
