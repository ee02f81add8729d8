"""Issue 26's table of mistakes: each ends in one line on stderr that names
the file, column or argument, and exit status 2 (in-process, one tiny model).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys

import numpy as np
import pandas as pd
import pytest
from _helpers import write_wine

import kdl
from kdl import cli


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def where(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("mistakes26")
    frame = write_wine(folder / "wine.csv")
    frame.drop(columns=["ash"]).to_csv(folder / "short.csv", index=False)
    for k in ("a", "b"):
        (folder / "imgs" / k).mkdir(parents=True)
        for i in range(6):
            pixels = np.full((8, 8), 40 if k == "a" else 200, "uint8")
            Image.fromarray(pixels, mode="L").save(folder / "imgs" / k / f"{i}.png")
    (folder / "imgs" / "b" / "broken.png").write_text("not a png at all")
    (folder / "kinds" / "a").mkdir(parents=True)
    (folder / "kinds" / "b").mkdir(parents=True)
    frame.to_csv(folder / "kinds" / "a" / "table.jpg", index=False)
    Image.fromarray(np.zeros((8, 8), "uint8")).save(folder / "kinds" / "b" / "0.png")
    (folder / "notes.txt").write_text("hello")
    (folder / "fake.keras").write_text("not a zip")
    (folder / "fake.tflite").write_text("not a flatbuffer")
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("the user's own file")
    status, _, err = run(
        "train", folder / "wine.csv", "--target", "label", "--epochs", 1,
        "--out", folder / "wine.keras", "--quiet",
    )  # fmt: skip
    assert status == 0, err
    return {"tmp": folder}


T = ["train", "{tmp}/wine.csv", "--target", "label", "--epochs", "1"]
MISTAKES = [
    (["train", "{tmp}/imgs", "--image-size", "8x8"], r"broken\.png"),
    (["train", "{tmp}/kinds", "--image-size", "8x8"], r"not a PNG.*table\.jpg"),
    (["train", "{tmp}/notes.txt", "--target", "label"], r"notes\.txt"),
    (["info", "{tmp}/fake.keras"], r"fake\.keras"),
    (["predict", "{tmp}/wine.keras", "{tmp}/short.csv"], r"'ash'"),
    (T + ["--features", "alcohol,nosuch"], r"'nosuch'"),
    (T + ["--test-size", "1.5"], r"--test-size.*'1\.5'"),
    (T + ["--batch-size", "-4"], r"--batch-size.*'-4'"),
    (T + ["--patience", "0"], r"--patience.*'0'"),
    (T + ["--set", "nosuch=3"], r"build_mlp has no argument 'nosuch'"),
    (T + ["--set", "units"], r"--set 'units': expected KEY=VALUE"),
    (T + ["--set", "dropout=2.0"], r"'dropout' parameter of build_mlp"),
    (T + ["--model", "lstm"], r"--model lstm reads"),
    (["predict", "{tmp}/wine.keras", "{tmp}/wine.csv", "--out", "{tmp}/p.json"],
     r"--out .*p\.json' must end in \.csv"),
    (["evaluate", "{tmp}/wine.keras", "{tmp}/nowhere.csv"], r"nowhere\.csv"),
    (T + ["--lr", "0.01"],
     r"^kdl train: unrecognized arguments: --lr 0\.01; did you mean --learning-rate"),
    (["privacy", "epsilon", "--num-examples", "9", "--batch-size", "3", "--epochs", "1",
      "--noise-multiplier", "1", "--dleta", "1e-5"],
     r"^kdl privacy epsilon: .*did you mean --delta"),
    (T + ["--out", "{tmp}/mine"], r"--out .*mine' is a folder holding other files "
     r"\(notes\.txt\), which writing there would delete"),
    (["rl", "CartPole-v1", "--steps", "10", "--out", "{tmp}/mine"], r"notes\.txt"),
    (["compress", "shrink", "{tmp}/wine.keras", "{tmp}/wine.csv", "--fraction", "1",
      "--out", "{tmp}/s.keras"], r"--fraction: expected a number in \(0, 1\)"),
    (["compress", "distill", "{tmp}/wine.keras", "{tmp}/wine.csv", "--student",
      "{tmp}/wine.keras", "--set", "units=3", "--out", "{tmp}/s.keras"],
     r"--student FILE or --model/--set, not both"),
    (["compress", "shrink", "{tmp}/fake.tflite", "{tmp}/wine.csv",
      "--out", "{tmp}/s.keras"], r"MODEL must be a Keras model, not \.tflite"),
    # The hostile review of issue 26: numbers too large, not finite; the DATA
    # file as --out; a folder kdl cannot write in (/proc takes no file).
    (T + ["--batch-size", "100000000000000000000"], r"--batch-size: expected at most"),
    (T + ["--learning-rate", "inf"], r"--learning-rate: expected a positive finite"),
    (["predict", "{tmp}/wine.keras", "{tmp}/wine.csv", "--next", "100000000"],
     r"--next: expected at most 100,000"),
    (["train", "{tmp}/imgs", "--image-size", "100000x100000"], r"at most 4096"),
    (["predict", "{tmp}/wine.keras", "{tmp}/wine.csv", "--out", "{tmp}/wine.csv"],
     r"--out .*wine\.csv' is the DATA file itself"),
    (T + ["--out", "/proc/kdl-nowhere/m.keras"],
     r"kdl cannot write in the folder '/proc'"),
]  # fmt: skip


@pytest.mark.parametrize(
    "argv, pattern", MISTAKES, ids=[" ".join(a[1:]) for a, _ in MISTAKES]
)
def test_each_mistake_is_one_line_and_status_2(argv, pattern, where):
    argv = [a.format(**where) for a in argv]
    status, out, err = run(*argv)
    assert status == 2, (out, err)
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    assert out == ""


def test_a_reader_that_stops_early_ends_the_command_quietly(where):
    """`kdl predict ... | head -1`: stdout's pipe closes under the CSV; the
    command exits as a C tool killed by SIGPIPE would (141), no message."""
    import os

    big = where["tmp"] / "big.csv"
    frame = pd.read_csv(where["tmp"] / "wine.csv")
    pd.concat([frame] * 8).to_csv(big, index=False)  # more than a pipe holds
    read, write = os.pipe()
    os.close(read)
    err = io.StringIO()
    with open(write, "w") as closed, contextlib.redirect_stdout(closed):
        with contextlib.redirect_stderr(err):
            status = cli.main(["predict", str(where["tmp"] / "wine.keras"), str(big)])
    assert status == 141, err.getvalue()
    assert "Broken pipe" not in err.getvalue()


def test_evaluate_without_data_scores_the_recorded_held_out_part(where):
    status, out, err = run("evaluate", where["tmp"] / "wine.keras")
    assert status == 0, err
    assert "the held-out 20% of wine.csv" in json.loads(out)["data"]
    assert "wine.csv, the data it was trained on" in err


def test_ctrl_c_is_one_line_and_status_130(monkeypatch):
    from kdl.cli import _model_commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_model_commands, "cmd_info", interrupted)
    status, out, err = run("info")
    assert (status, out, err) == (130, "", "kdl info: interrupted\n")


def test_save_never_replaces_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"'path' parameter of kdl.save.*other files"):
        kdl.save(kdl.build_mlp((3,), 2), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_train_names_both_shapes_before_fit():
    model = kdl.build_mlp((8,), 2)
    x = np.zeros((20, 7), "float32")
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=r"'x' parameter of kdl.train.*\(8,\).*\(7,\)"):
        kdl.train(model, x, y, epochs=1, verbose=0)


@pytest.mark.slow
def test_predict_takes_the_image_size_from_a_bare_tflite_file(tmp_path):
    from PIL import Image

    from kdl import export

    for k, level in (("dark", 30), ("light", 220)):
        (tmp_path / "new" / k).mkdir(parents=True)
        for i in range(4):
            pixels = np.full((12, 10), level, "uint8")
            Image.fromarray(pixels, mode="L").save(tmp_path / "new" / k / f"{i}.png")
    model = kdl.build_cnn((12, 10, 1), 2, filters=(4,), dense_units=(4,))
    export.to_tflite(model, tmp_path / "m.tflite", verbose=0)  # no .data.json
    assert not (tmp_path / "m.tflite.data.json").exists()
    status, out, err = run("predict", tmp_path / "m.tflite", tmp_path / "new")
    assert status == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert len(table) == 8 and list(table.columns[:2]) == ["row", "prediction"]
    # kdl.lite reads an image file the way the command read the folder
    from kdl import lite

    device = lite.load(tmp_path / "m.tflite")
    first = tmp_path / "new" / "dark" / "0.png"
    probs = device.predict(first)
    assert probs.shape == (1, 2)
    assert probs[0, 1] == pytest.approx(table["probability_light"][0], abs=1e-5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "PIL", None)  # a device without Pillow
        with pytest.raises(ImportError, match="pip install pillow"):
            device.read_image(first)
    with pytest.raises(ValueError, match=r"'.*m\.tflite' is not an image file"):
        device.read_image(tmp_path / "m.tflite")


def test_stdout_is_strict_json_even_for_an_infinite_epsilon():
    status, out, err = run(
        "privacy", "epsilon", "--num-examples", 600, "--batch-size", 60,
        "--epochs", 1, "--noise-multiplier", 0,
    )  # fmt: skip
    assert status == 0, err

    def no_constant(name):
        raise AssertionError(f"{name} is not JSON")

    result = json.loads(out, parse_constant=no_constant)
    assert result["epsilon"] is None


def test_a_result_that_cannot_be_written_is_a_failure(where, tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "kdl", "predict", f"{where['tmp']}/wine.keras",
         f"{where['tmp']}/wine.csv", "--quiet"],
        stdout=open("/dev/full", "w"), stderr=subprocess.PIPE, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]  # TensorFlow's C++ log before it
    assert last.startswith("kdl predict: ") and "No space left" in last
    assert "Traceback" not in done.stderr, done.stderr


def test_a_failed_save_keeps_the_model_and_its_data_json_together(
    where, tmp_path, monkeypatch
):
    import hashlib
    import shutil

    model = tmp_path / "m.keras"
    sidecar = tmp_path / "m.keras.data.json"
    shutil.copy(where["tmp"] / "wine.keras", model)
    sidecar.write_text('{"kind": "table", "mine": true}')

    def digest():
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in (model, sidecar)]

    before = digest()

    def failing_save(*args, **kwargs):
        raise OSError("disk full while saving")

    monkeypatch.setattr(kdl, "save", failing_save)  # the model cannot be saved
    status, _, err = run(*[a.format(**where) for a in T], "--out", model)
    assert status == 2 and "disk full" in err
    assert digest() == before  # the old sidecar is back beside the old model
    monkeypatch.undo()
    sidecar.unlink()
    sidecar.mkdir()  # the sidecar cannot be replaced: the model is not touched
    status, _, err = run(*[a.format(**where) for a in T], "--out", model)
    assert status == 2, err
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before[0]
