"""kdl.lite on a device: start-up, memory and latency, and a TensorFlow-free install.

Run from the repository root (a few minutes; the fresh install needs PyPI)::

    .venv/bin/python benchmarks/lite_startup.py [--skip-venv] [--write]

1. Exports two files with kdl.export.to_tflite: the digits CNN (float) and a
   digits GRU (float, fixed batch of one).
2. Start-up: for each file, fresh processes run ``kdl.lite.load(path)`` and,
   side by side, ``kdl.export.load_tflite(path)`` (which imports TensorFlow),
   each followed by one prediction. Measured per process: wall time from
   process start to the first prediction, peak resident memory (VmHWM)
   and the median per-example latency of 200 single-example predictions.
   Each figure is the median of ``--repeats`` processes.
3. Device install (unless ``--skip-venv``): a fresh virtual environment with
   only ``pip install --no-deps <repo>`` plus ``ai-edge-litert numpy`` (so
   no TensorFlow), which runs the CNN file and must predict what kdl.export
   predicts.

``--write`` puts the Markdown section into docs/benchmarks.md (replacing an
earlier one); the section is always printed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## kdl.lite: start-up and memory on a device"

# Runs in a fresh process: load a file, one prediction, then 200 timed ones.
_CHILD = """
import json, re, sys, time
runner, path, inputs = sys.argv[1:4]
import numpy as np
if runner == "lite":
    from kdl import lite
    model = lite.load(path, num_threads=1)
else:
    from kdl import export
    model = export.load_tflite(path, num_threads=1)
x = np.load(inputs)
model.predict(x[:1])
first = time.time()
# VmHWM is this process's own peak (ru_maxrss would carry the parent's
# peak over fork and exec)
status = open("/proc/self/status").read()
rss_kib = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1))
times = []
for i in range(200):
    start = time.perf_counter()
    model.predict(x[i % len(x):i % len(x) + 1])
    times.append(time.perf_counter() - start)
print(json.dumps({"first": first, "rss_kib": rss_kib,
                  "latency_ms": 1000 * sorted(times)[len(times) // 2],
                  "tensorflow": "tensorflow" in sys.modules}))
"""

# Runs in the fresh device venv: predictions of a file, saved next to it.
_DEVICE = """
import sys
import numpy as np
from kdl import lite
try:
    import tensorflow  # noqa: F401
    print("tensorflow importable")
except ImportError:
    print("no tensorflow")
model = lite.load(sys.argv[1])
np.save(sys.argv[1] + ".device.npy", model.predict(np.load(sys.argv[2])))
print(model.metadata["model"], model.metadata["check"]["details"])
"""


def export_files(folder: Path) -> dict[str, tuple[Path, Path]]:
    """{name: (.tflite path, .npy of test inputs)}: the digits CNN and a GRU."""
    from kdl import build_cnn, build_gru, datasets, export, set_seed

    set_seed(0)
    files = {}
    (x, y), (x_test, _) = datasets.digits(layout="image")
    cnn = build_cnn((8, 8, 1), 10)
    cnn.fit(x, y, epochs=10, batch_size=32, verbose=0)
    (xs, ys), (xs_test, _) = datasets.digits(layout="sequence")
    gru = build_gru((8, 8), 10, units=(32,))
    gru.fit(xs, ys, epochs=5, batch_size=32, verbose=0)
    labels = [str(i) for i in range(10)]
    for name, model, data in (
        ("digits CNN", cnn, x_test),
        ("digits GRU", gru, xs_test),
    ):
        slug = name.split()[1].lower()
        path = export.to_tflite(
            model, folder / f"{slug}.tflite", check_data=data, labels=labels, verbose=0
        )
        inputs = folder / f"{slug}.npy"
        np.save(inputs, data)
        files[name] = (path, inputs)
    return files


def _child_run(runner: str, path: Path, inputs: Path) -> dict:
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, runner, str(path), str(inputs)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["seconds"] = result.pop("first") - start
    return result


def startup(files: dict, repeats: int) -> list[dict]:
    """Median figures of ``repeats`` fresh processes per file and runner."""
    rows = []
    for name, (path, inputs) in files.items():
        for runner in ("lite", "export"):
            runs = [_child_run(runner, path, inputs) for _ in range(repeats)]
            rows.append(
                {
                    "model": name,
                    "runner": runner,
                    "seconds": statistics.median(r["seconds"] for r in runs),
                    "mib": statistics.median(r["rss_kib"] for r in runs) / 1024,
                    "latency_ms": statistics.median(r["latency_ms"] for r in runs),
                    "tensorflow": any(r["tensorflow"] for r in runs),
                }
            )
    return rows


def device_install(files: dict, folder: Path) -> dict:
    """A fresh venv with kdl (no dependencies), ai-edge-litert and numpy only."""
    from kdl import export

    venv = folder / "device-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True)
    subprocess.run([*pip, "ai-edge-litert", "numpy"], check=True)
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    path, inputs = files["digits CNN"]
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _DEVICE, str(path), str(inputs)],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    device = np.load(f"{path}.device.npy")
    expected = export.load_tflite(path).predict(np.load(inputs))
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file())
    return {
        "packages": sorted(listed),
        "output": done.stdout.strip(),
        "max_difference": float(np.max(np.abs(device - expected))),
        "venv_mib": size / 2**20,
    }


def markdown(rows: list[dict], install: dict | None) -> str:
    lines = [
        SECTION,
        "",
        "Measured by `benchmarks/lite_startup.py` (fresh processes, one "
        "interpreter thread, median of the repeats) on this project's 2-core "
        "machine, shared with other jobs. `export` is "
        "`kdl.export.load_tflite`, which imports TensorFlow; `lite` is "
        "`kdl.lite.load`, which never does. Both run the file with the same "
        "code, so per-example latency is the same by construction (differences "
        "in that column are the noise of a shared machine).",
        "",
        "| model | runner | start to first prediction (s) | peak memory (MiB) "
        "| ms / example | TensorFlow imported |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['runner']} | {r['seconds']:.2f} | "
            f"{r['mib']:.0f} | {r['latency_ms']:.3f} | "
            f"{'yes' if r['tensorflow'] else 'no'} |"
        )
    lines.append("")
    for model in dict.fromkeys(r["model"] for r in rows):
        lite, full = (
            next(r for r in rows if r["model"] == model and r["runner"] == k)
            for k in ("lite", "export")
        )
        lines.append(
            f"- {model}: kdl.lite starts {full['seconds'] / lite['seconds']:.1f}x "
            f"faster and needs {full['mib'] / lite['mib']:.1f}x less memory."
        )
    if install is not None:
        lines += [
            "",
            "Device install, checked in a fresh virtual environment "
            "(`pip install --no-deps <kdl>` then `pip install ai-edge-litert "
            f"numpy`, {install['venv_mib']:.0f} MiB in all): "
            f"packages {', '.join(install['packages'])}. It ran the digits "
            "CNN file and predicted what kdl.export predicts (largest "
            f"difference {install['max_difference']:.1g}); its output: "
            f"`{' / '.join(install['output'].splitlines())}`.",
        ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replaces this script's section of docs/benchmarks.md (or appends it)."""
    path = ROOT / "docs" / "benchmarks.md"
    old = path.read_text() if path.exists() else "# kdl benchmarks\n"
    pattern = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: text.rstrip("\n") + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-venv", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kdl-lite-bench-") as tmp:
        folder = Path(tmp)
        files = export_files(folder)
        rows = startup(files, args.repeats)
        install = None if args.skip_venv else device_install(files, folder)
    text = markdown(rows, install)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
