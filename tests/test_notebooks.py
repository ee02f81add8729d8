"""Every notebook in examples/notebooks runs top to bottom without a cell error.

Each runs in a fresh kernel (the venv's ipykernel, kernel name "python3") in
its short mode (``KDL_QUICK=1``: few epochs and trials), in a temporary folder
so its ``saved_models/`` output lands there. The committed notebooks carry no
outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "1_quick_start.ipynb",
        "2_gru_to_device.ipynb",
        "3_privacy.ipynb",
        "4_search.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert any("KDL_QUICK" in c.source for c in code), "no short mode"


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    # The kernel inherits this environment: short mode, quiet TensorFlow, and
    # the venv's Python first (the "python3" kernel is the venv's ipykernel).
    monkeypatch.setenv("KDL_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent), prepend=":")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "saved_models").is_dir()
