"""The README's install lines install this project, never another one.

The name ``kdl`` on the package index belongs to an unrelated project, so the
distribution has its own name (``pyproject.toml``); the import name stays ``kdl``.
"""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _distribution() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["name"]


def _install_targets(text: str) -> list[str]:
    """Every requirement a `pip install` line of the text names (not flags)."""
    targets = []
    for line in text.splitlines():
        for command in re.findall(r"pip install ([^#&\n]*)", line):
            for word in re.findall(r'"[^"]+"|\S+', command):
                if not word.startswith("-"):
                    targets.append(word.strip('"'))
    return targets


def _project(target: str) -> str:
    """The project a requirement names, without extras or a direct URL."""
    return target.split(" @ ")[0].split("[")[0].strip()


def test_the_distribution_name_is_not_the_unrelated_kdl():
    assert _distribution() not in ("kdl", "KDL")


def test_every_readme_install_line_names_this_distribution_or_a_path():
    name = _distribution()
    files = [ROOT / "README.md", ROOT / "kdl" / "lite.py"]
    kdl_targets = []
    for path in files:
        for target in _install_targets(path.read_text()):
            if _project(target).lower() in ("kdl", name):
                kdl_targets.append((path.name, target))
            elif "kdl" in target and not target.startswith((".", "/", "path")):
                raise AssertionError(f"{path.name}: install target {target!r}")
    assert kdl_targets, "the README no longer shows how to install kdl"
    for where, target in kdl_targets:
        assert _project(target) == name, (where, target)


def test_the_device_install_line_brings_what_kdl_lite_needs_for_images():
    lines = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if "pip install ai-edge-litert" in line
    ]
    assert lines and all("pillow" in line for line in lines)
