"""What every benchmark script shares: its header and its section of the doc.

Each script under ``benchmarks/`` prints a Markdown section that starts with
:func:`header` (the command, the date, the machine's cores, memory and load,
and the versions of Python and the libraries measured), and with ``--write``
replaces its own section of ``docs/benchmarks.md`` with :func:`write_section`
(a section runs from its ``## `` heading to the next ``## `` heading, the
convention ``benchmarks/lite_startup.py`` uses too), leaving every other
section as it was. Nothing here imports TensorFlow or kdl: the import
benchmark times those imports in fresh processes.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import platform
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
PACKAGES = (
    "kdl",
    "tensorflow",
    "tf-keras",
    "ai-edge-litert",
    "tensorflow-model-optimization",
    "tensorflow-privacy",
    "keras-tuner",
    "gymnasium",
)


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def versions(packages=PACKAGES) -> str:
    """``"python 3.11.9, kdl 0.1.0, tensorflow 2.21.0, ..."`` (installed ones)."""
    found = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def code_version() -> str:
    """``"commit abc1234"``, with a note when kdl/ has uncommitted changes."""
    import subprocess

    def git(*args) -> str:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=ROOT, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "kdl")
    return f"commit {commit}" + (" + uncommitted changes in kdl/" if dirty else "")


def command(argv=None) -> str:
    """The command that ran this script, as typed from the repository root."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *argv[1:]])


def header(argv=None, packages=PACKAGES) -> list[str]:
    """Markdown lines: command, date, machine and versions of one run."""
    memory = _memory_gib()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    machine = f"{os.cpu_count()} CPU cores"
    if memory is not None:
        machine += f", {memory:.0f} GiB memory"
    if load is not None:
        machine += f", load average {load:.1f} at the start (shared machine)"
    now = datetime.datetime.now(datetime.timezone.utc)
    return [
        f"Command: `{command(argv)}`  ",
        f"Date: {now:%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {machine}, {platform.system()} {platform.machine()}  ",
        f"Versions: {versions(packages)}  ",
        f"Code: {code_version()}",
    ]


def goal(met: bool | None, text: str) -> str:
    """``"**Goal met**: text"``, ``"**Goal missed**: ..."`` or not measured."""
    if met is None:
        return f"**Goal not measured in this run**: {text}"
    return f"**Goal {'met' if met else 'missed'}**: {text}"


def table(head, rows) -> list[str]:
    """Markdown table lines; numbers right-aligned."""
    lines = ["| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def replace_section(document: str, text: str) -> str:
    """``document`` with the section headed like ``text`` replaced or appended.

    ``text`` starts with its ``## `` heading line; the section it replaces runs
    from the same heading line to the next ``## `` heading or the end.
    """
    heading = text.splitlines()[0].rstrip()
    if not heading.startswith("## "):
        raise ValueError(f"a section starts with a '## ' heading, got {heading!r}")
    pattern = re.compile(
        r"^" + re.escape(heading) + r"[ \t]*\n.*?(?=^## |\Z)", re.S | re.M
    )
    body = text.rstrip("\n") + "\n"
    if pattern.search(document):
        return pattern.sub(lambda _: body + "\n", document, count=1).rstrip("\n") + "\n"
    return document.rstrip("\n") + "\n\n" + body


def write_section(text: str, path: Path = DOC) -> Path:
    """Replaces one section of ``docs/benchmarks.md``, keeping the others.

    The read-modify-write holds a lock (two benchmarks finishing at once
    keep both sections) and the new file replaces the old atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = Path(tempfile.gettempdir()) / "kdl-benchmarks-doc.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_text() if path.exists() else "# kdl benchmarks\n"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(replace_section(old, text))
        os.replace(tmp, path)
    return path


def add_write_flag(parser) -> None:
    """``--write``: put the section into docs/benchmarks.md."""
    parser.add_argument(
        "--write",
        action="store_true",
        help="replace this benchmark's section of docs/benchmarks.md",
    )
