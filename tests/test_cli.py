"""The kdl command: train, export and evaluate through the public functions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kdl import cli


def test_console_script_info():
    exe = shutil.which("kdl", path=str(Path(sys.executable).parent))
    assert exe, "the kdl console script is not installed beside this Python"
    result = subprocess.run([exe, "info"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["tf_keras"].startswith("2.") and info["tensorflow"].startswith("2.")


@pytest.mark.slow
def test_train_export_evaluate(tmp_path, capsys):
    model_path = tmp_path / "mlp.keras"
    assert cli.main(["train", "mlp", "--epochs", "8", "--seed", "0",
                     "--run-dir", str(tmp_path / "run"),
                     "--out", str(model_path)]) == 0
    assert model_path.is_file() and (tmp_path / "run" / "run.json").is_file()
    out = capsys.readouterr().out
    accuracy = float(out.split("accuracy=")[1].split()[0])
    assert accuracy > 0.9

    tflite_path = tmp_path / "mlp.tflite"
    assert cli.main(["export", str(model_path), str(tflite_path),
                     "--quantization", "dynamic"]) == 0
    assert tflite_path.is_file()
    capsys.readouterr()
    assert cli.main(["evaluate", str(tflite_path)]) == 0
    logs = json.loads(capsys.readouterr().out)
    assert abs(logs["accuracy"] - accuracy) < 0.02


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "missing.keras")]) == 2
    assert "missing.keras" in capsys.readouterr().err
    assert cli.main(["train", "mlp", "--epochs", "-1",
                     "--run-dir", str(tmp_path / "r")]) == 2
    assert "'epochs' parameter of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "transformer"])
