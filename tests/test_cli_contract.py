"""The kdl command's stdout contract: stdout holds only the result.

One real process runs the commands one after the other through
``kdl.cli.main`` with file descriptor 1 pointed at a file of its own per
command (one TensorFlow import for all), so what Python *and* C++ code print
is caught; each file must parse as JSON.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _helpers import WINE_CLASSES, write_wine

DRIVER = """
import json, os, sys
from kdl import cli
for i, argv in enumerate(json.loads(sys.argv[1])):
    fd = os.open(f"out{i}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(fd, 1)
    sys.stdout = open(1, "w", closefd=False)
    status = cli.main(argv)
    sys.stdout.flush()
    os.dup2(saved, 1)
    sys.stdout = sys.__stdout__
    print(status, file=sys.stderr, flush=True)
    with open(f"status{i}.txt", "w") as f:
        f.write(str(status))
"""


def _images(folder: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in ("dark", "light"):
        (folder / k).mkdir(parents=True)
        for i in range(12):
            level = 40 if k == "dark" else 200
            pixels = np.clip(rng.normal(level, 20, (8, 8)), 0, 255).astype("uint8")
            Image.fromarray(pixels, mode="L").save(folder / k / f"{i}.png")


COMMANDS = [
    ["train", "imgs", "--image-size", "8x8", "--model", "cnn", "--epochs", "1"],
    ["train", "wine.csv", "--target", "label", "--epochs", "1", "--run-dir", "run",
     "--out", "wine.keras"],
    ["predict", "wine.keras", "wine.csv", "--out", "p.csv"],
    ["predict", "wine.keras", "wine.csv"],  # CSV on stdout
    ["evaluate", "wine.keras", "wine.csv"],
    ["compress", "shrink", "wine.keras", "wine.csv", "--epochs", "1",
     "--out", "small.keras"],
    ["compress", "distill", "wine.keras", "wine.csv", "--set", "dense_units=(8,)",
     "--epochs", "1", "--out", "student.keras"],
    ["info", "wine.keras"],
    ["export", "wine.keras", "wine.tflite", "--quantization", "dynamic"],
    ["info", "wine.tflite"],
    ["info"],
    ["privacy", "epsilon", "--num-examples", "1000", "--batch-size", "50",
     "--epochs", "2", "--noise-multiplier", "1.1"],
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [False, True], ids=["chatty", "quiet"])
def test_stdout_holds_only_the_json_result(tmp_path, quiet):
    if quiet:  # one command is enough to show --quiet leaves stderr empty
        commands = [COMMANDS[0] + ["--quiet"]]
    else:
        commands = COMMANDS
        write_wine(tmp_path / "wine.csv")
    _images(tmp_path / "imgs")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for i, argv in enumerate(commands):
        status = (tmp_path / f"status{i}.txt").read_text()
        assert status == "0", (argv, done.stderr[-3000:])
        text = (tmp_path / f"out{i}.txt").read_text()
        if argv[0] == "predict" and "--out" not in argv:
            table = pd.read_csv(io.StringIO(text))
            assert list(table.columns[:2]) == ["row", "prediction"], text
            assert len(table) == 178 and set(table["prediction"]) <= set(WINE_CLASSES)
        else:
            assert isinstance(json.loads(text), dict), (argv, text)
    if quiet:
        assert done.stderr.strip() == "0", done.stderr
    else:  # the chatter went to stderr
        assert "Found 24 files belonging to 2 classes." in done.stderr
        assert "loss" in done.stderr  # the epoch lines
