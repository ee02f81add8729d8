"""Runs kdl's benchmarks one after the other; each updates its own section.

``make bench`` runs this script. Every benchmark is a script of its own under
``benchmarks/`` (run any of them alone the same way); each prints its table
with the command, the date, the machine and the ratios, and its section of
``docs/benchmarks.md`` is replaced by the latest result, the other sections
kept (``benchmarks/_common.py``):

========== ============================ =========================================
name       script                       measures
========== ============================ =========================================
imports    imports.py                   ``import kdl``, ``from kdl import
                                        build_gru``, ``import kdl.lite`` against
                                        ``import tensorflow``
latency    run.py (here)                per-example latency: Keras against LiteRT
edge       edge.py                      ``report.compare`` of a digits CNN and a
                                        sunspots GRU
lite       lite_startup.py              ``kdl.lite`` start-up and memory
wrapper    wrapper_overhead.py          ``kdl.train`` against a hand-written fit
search     search.py                    ``kdl.tune`` overhead, algorithms
dp         privacy_speed.py             DP-SGD methods against plain training
compress   compression.py               prune, cluster, shrink, distill goals
dqn        dqn_cartpole.py              DQN on CartPole-v1 against SB3's zoo
own        own_data.py                  one default ``kdl train`` on each of 14
                                        datasets kdl was not tuned on, against
                                        kdl.baselines
dqn4       dqn.py                       DQN on CartPole, Acrobot, MountainCar,
                                        LunarLander against SB3's zoo
claims     examples_claims.py           the topic examples of issue 31 at full
                                        settings, as they print
========== ============================ =========================================

Scripts that print rather than write their section (wrapper, search, dp,
compress) have their Markdown put into a section by this runner. A failing
benchmark is reported and the others still run; the exit status is always 0:
benchmarks never fail CI, and ``make test`` does not run them.

Usage, from the repository root::

    .venv/bin/python benchmarks/run.py                 # all of them (hours)
    .venv/bin/python benchmarks/run.py imports latency  # some
    .venv/bin/python benchmarks/run.py --list
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent
# name -> (script, extra arguments, section heading when the runner writes it,
#          how the script hands over its Markdown: "section" | "out" | "stdout")
BENCHMARKS = {
    "imports": ("imports.py", [], None, "section"),
    "latency": (None, [], "## Per-example latency: Keras and LiteRT", "here"),
    "edge": ("edge.py", [], None, "section"),
    "lite": ("lite_startup.py", [], None, "section"),
    "wrapper": ("wrapper_overhead.py", [], "## Wrapper overhead: kdl.train", "stdout"),
    "search": ("search.py", [], "## Search: kdl.tune", "out"),
    "dp": ("privacy_speed.py", [], "## DP-SGD speed", "out"),
    "compress": ("compression.py", [], "## Compression goals", "out"),
    "dqn": ("dqn_cartpole.py", ["--seeds", "0", "1", "2", "3", "4"], None, "section"),
    "own": ("own_data.py", [], None, "section"),
    "dqn4": ("dqn.py", [], None, "section"),
    "claims": ("examples_claims.py", [], None, "section"),
}


def _per_example_ms(fn, xs, repeats=200) -> float:
    for x in xs[:10]:
        fn(x)
    times = []
    for x in xs[:repeats]:
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def latency_section(head: list[str]) -> str:
    """Per-example latency of a digits CNN: Keras calls against LiteRT files."""
    import kdl
    from kdl import datasets, export

    (x, y), (x_test, _) = datasets.digits()
    kdl.set_seed(0, deterministic=False)
    model = kdl.build_cnn((8, 8, 1), 10)
    model.fit(x, y, epochs=5, verbose=0)
    singles = [x_test[i : i + 1] for i in range(len(x_test))]
    rows = []
    keras_ms = _per_example_ms(model.predict_on_batch, singles)
    rows.append(("Keras predict_on_batch", keras_ms))
    call = _per_example_ms(lambda b: model(b, training=False), singles)
    rows.append(("Keras model(x)", call))
    with tempfile.TemporaryDirectory() as tmp:
        for quantization in (None, "int8"):
            path = export.to_tflite(
                model,
                Path(tmp) / f"{quantization}.tflite",
                quantization=quantization,
                representative_data=x[:200],
                check_data=x_test,
                verbose=0,
            )
            lite = export.load_tflite(path, num_threads=1)
            rows.append(
                (
                    f"LiteRT {quantization or 'float'}",
                    _per_example_ms(lite.predict, singles),
                )
            )
    lines = [BENCHMARKS["latency"][2], "", *head, ""]
    lines += _common.table(
        ("runtime", "ms / example", "times faster than predict_on_batch"),
        [(name, f"{ms:.3f}", f"{keras_ms / ms:.1f}x") for name, ms in rows],
    )
    lines += [
        "",
        "Digits CNN (`build_cnn((8, 8, 1), 10)`, 5 epochs), one example per "
        "call, median of 200 calls after 10 warm-up calls, one LiteRT thread.",
    ]
    return "\n".join(lines) + "\n"


def as_section(heading: str, text: str, command: str) -> str:
    """A script's printed Markdown under ``heading``, its own headings demoted."""
    body = []
    for line in text.strip("\n").splitlines():
        match = re.match(r"^(#{1,5}) (.*)", line)
        if match and not body:
            continue  # the script's own title: the heading replaces it
        if match:
            line = "#" * max(3, len(match.group(1)) + 1) + " " + match.group(2)
        body.append(line)
    while body and not body[0].strip():
        body.pop(0)
    note = f"Collected by `benchmarks/run.py` from `{command}`."
    return "\n".join([heading, "", note, "", *body]) + "\n"


def run_one(name: str) -> str:
    """Runs one benchmark; returns "ok" or why it failed."""
    script, extra, heading, mode = BENCHMARKS[name]
    if mode == "here":
        text = latency_section(_common.header())
        print(text, flush=True)
        _common.write_section(text)
        return "ok"
    command = [sys.executable, str(HERE / script), *extra]
    with tempfile.TemporaryDirectory(prefix="kdl-bench-") as tmp:
        out = Path(tmp) / "out.md"
        if mode == "section":
            command.append("--write")
        elif mode == "out":
            command += ["--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=_common.ROOT)
        print(done.stdout, flush=True)
        if done.returncode != 0:
            return f"failed with status {done.returncode}: {done.stderr[-2000:]}"
        if mode == "out" or mode == "stdout":
            text = out.read_text() if mode == "out" else _from_command(done.stdout)
            shown = _common.command([str(HERE / script), *extra])
            _common.write_section(as_section(heading, text, shown))
    return "ok"


def _from_command(stdout: str) -> str:
    """The Markdown a script printed: from its "Command:" line on."""
    start = stdout.rfind("Command:")
    return stdout[start:] if start >= 0 else stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS))
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, (script, *_rest) in BENCHMARKS.items():
            print(f"{name:10s} benchmarks/{script or 'run.py'}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}")
        return 0
    outcome = {}
    for name in args.names:
        start = time.perf_counter()
        try:
            outcome[name] = run_one(name)
        except Exception as error:  # a benchmark never stops the others
            outcome[name] = f"failed: {type(error).__name__}: {error}"
        print(
            f"{name}: {outcome[name]} ({time.perf_counter() - start:.0f} s)", flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
