"""The topic examples' claims at full settings: what each script printed.

Issue 31: every topic script proves its claim with the numbers it prints, and
some claims only show at full settings (3 seeds, enough epochs), which the
short mode the tests run cannot show. This script runs the named examples as
a user would (``python examples/<name>.py``, no ``KDL_QUICK``) in a temporary
folder, one after the other, and keeps what each printed (TensorFlow's log
lines left out) with its wall time. With ``--write`` it updates the section
"## Example claims (issue 31)" of ``docs/benchmarks.md``: one ``###``
subsection per script, replacing only the scripts that ran, so one slow
script can be re-run alone.

Usage, from the repository root::

    .venv/bin/python benchmarks/examples_claims.py                  # all eight
    .venv/bin/python benchmarks/examples_claims.py dropout_gap --write
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import _common

HEADING = "## Example claims (issue 31)"
SCRIPTS = (
    "dropout_gap",
    "rnn_vs_birnn",
    "resnet_digits",
    "multitask_digits",
    "early_stopping",
    "differential_privacy",
    "prune_quantize",
    "search_grid_vs_bayes",
)
# Lines TensorFlow, absl and Python's warnings print, and Keras' per-epoch
# progress lines (verbose=2): not the numbers the example reports.
NOISE = re.compile(
    r"^([IWEF]\d{4} |WARNING|.*Warning: |\s+warnings\.warn|plot: "
    r"|Epoch \d+/\d+$|\d+/\d+ - |Epoch \d+: early stopping|Restoring model weights)"
)


def run_script(name: str) -> tuple[str, float]:
    """What ``examples/<name>.py`` printed at full settings, and its seconds."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    env.pop("KDL_QUICK", None)
    with tempfile.TemporaryDirectory(prefix="kdl-claims-") as tmp:
        env["KDL_OUT"] = tmp
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(_common.ROOT / "examples" / f"{name}.py")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        )
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
    lines = [
        line.replace(tmp, "saved_models")
        for line in done.stdout.splitlines()
        if not NOISE.match(line)
    ]
    return "\n".join(lines), seconds


def subsection(name: str, output: str, seconds: float) -> str:
    return "\n".join(
        [
            f"### examples/{name}.py",
            "",
            f"Command: `.venv/bin/python examples/{name}.py` ({seconds:.0f} s)",
            "",
            "```text",
            output,
            "```",
            "",
        ]
    )


def merged(new: dict[str, str]) -> str:
    """The whole section: the scripts that ran, and the others as they were."""
    old = {}
    if _common.DOC.exists():
        document = _common.DOC.read_text()
        match = re.search(
            r"^" + re.escape(HEADING) + r"[ \t]*\n(.*?)(?=^## |\Z)",
            document,
            re.S | re.M,
        )
        if match:
            for part in re.split(r"^(?=### examples/)", match.group(1), flags=re.M):
                found = re.match(r"### examples/(\w+)\.py", part)
                if found:
                    old[found.group(1)] = part.rstrip("\n") + "\n"
    parts = {**old, **new}
    intro = [
        HEADING,
        "",
        *_common.header(),
        "",
        "Each topic script at its full settings, as printed (mean ± standard",
        "deviation over 3 seeds; the verdict lines are computed by the script",
        "from these numbers; prune_quantize trains one seed and times its",
        "models in one process). The header is that of the latest run; each",
        "subsection gives its own command and time.",
        "",
    ]
    ordered = [parts[name] for name in SCRIPTS if name in parts]
    return "\n".join(intro) + "\n" + "\n".join(ordered)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(SCRIPTS))
    _common.add_write_flag(parser)
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SCRIPTS]
    if unknown:
        parser.error(f"unknown examples {unknown}; known: {list(SCRIPTS)}")
    new = {}
    for name in args.names:
        output, seconds = run_script(name)
        new[name] = subsection(name, output, seconds)
        print(new[name], flush=True)
    if args.write:
        _common.write_section(merged(new))
    return 0


if __name__ == "__main__":
    sys.exit(main())
