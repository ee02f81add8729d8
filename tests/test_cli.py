"""The kdl command: every sub-command once on the user's own files, and a table
of mistakes that must answer with one line and exit status 2.

Commands run in-process through ``kdl.cli.main`` (TensorFlow is imported once);
two tests start a real process: the console script, and the check that a
mistake answers before TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _helpers import write_sunspots, write_wine

import kdl
from kdl import cli, datasets

EPOCHS = 40


def run(*argv):
    """Runs the kdl command in-process; returns (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def result_of(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """wine.csv and a model trained on it by `kdl train`."""
    folder = tmp_path_factory.mktemp("cli")
    write_wine(folder / "wine.csv")
    status, out, err = run(
        "train",
        folder / "wine.csv",
        "--target",
        "label",
        "--epochs",
        EPOCHS,
        "--seed",
        0,
        "--run-dir",
        folder / "run",
        "--out",
        folder / "wine.keras",
        "--quiet",
    )
    assert status == 0, err
    return folder, result_of(out)


def test_console_script_info():
    exe = shutil.which("kdl", path=str(Path(sys.executable).parent))
    assert exe, "the kdl console script is not installed beside this Python"
    result = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["tf_keras"].startswith("2.") and info["tensorflow"].startswith("2.")


def test_mistakes_answer_before_tensorflow_is_imported(tmp_path):
    write_wine(tmp_path / "wine.csv")
    wine = str(tmp_path / "wine.csv")
    mistakes = [
        ["train", "nowhere.csv", "--target", "label"],
        ["train", wine, "--target", "colour"],
        ["train", wine, "--target", "label", "--model", "gru"],
        ["train", "digits", "--epochs", "0"],
        ["predict", "nowhere.keras", wine, "--out", "p.csv"],
        ["export", "nowhere.keras", "out.tflite"],
        ["compress", "nowhere.keras", wine, "--prune", "0.5", "--out", "c.keras"],
        ["privacy", "train", wine, "--target", "colour", "--target-epsilon", "3"],
        ["tune", wine, "--target", "colour"],
        ["rl", "NoSuchEnv-v0"],
    ]
    script = (
        "import sys\n"
        "from kdl.cli import main\n"
        f"codes = [main(argv) for argv in {mistakes!r}]\n"
        "print(codes, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "False", result.stdout
    assert result.stdout.startswith(str([2] * len(mistakes))), result.stdout
    assert len(result.stderr.strip().splitlines()) == len(mistakes), result.stderr


def test_csv_train_then_predict_reaches_the_python_accuracy(work, tmp_path):
    folder, trained = work
    assert trained["data"].startswith("the held-out 20% of wine.csv")
    data = datasets.load(folder / "wine.csv", target="label")
    (x, y), (x_test, y_test) = data
    kdl.set_seed(0)  # as kdl train --seed 0 does before building
    model = kdl.build_mlp(
        data.input_shape, data.num_outputs, task=data.task, normalize=x
    )
    kdl.train(
        model,
        x,
        y,
        validation_split=0.1,
        epochs=EPOCHS,
        seed=0,
        run_dir=tmp_path / "py",
        verbose=0,
    )
    python_accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert trained["accuracy"] == pytest.approx(python_accuracy, abs=0.03)

    # the held-out rows, without their target, as a user's new file
    frame = pd.read_csv(folder / "wine.csv")
    held_out = frame.iloc[data.rows[1] - 1]
    held_out.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    status, out, err = run(
        "predict",
        folder / "wine.keras",
        tmp_path / "new.csv",
        "--out",
        tmp_path / "predictions.csv",
    )
    assert status == 0, err
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns[:2]) == ["row", "prediction"]
    assert set(predictions.columns[2:]) == {f"probability_{c}" for c in data.classes}
    np.testing.assert_allclose(predictions.iloc[:, 2:].sum(axis=1), 1.0, atol=1e-4)
    accuracy = np.mean(
        predictions["prediction"].to_numpy() == held_out["label"].to_numpy()
    )
    assert accuracy >= python_accuracy - 0.03 and accuracy >= 0.9


def test_evaluate_says_which_data(work):
    folder, trained = work
    status, out, err = run("evaluate", folder / "wine.keras", folder / "wine.csv")
    assert status == 0, err
    result = result_of(out)
    assert result["data"] == (
        "the held-out 20% of wine.csv (split with seed 0): 36 examples"
    )
    assert result["accuracy"] == pytest.approx(trained["accuracy"])
    status, out, _ = run(
        "evaluate", folder / "wine.keras", folder / "wine.csv", "--all"
    )
    assert result_of(out)["data"] == "all 178 examples of wine.csv"


def test_export_info_and_evaluate_the_tflite_file(work):
    folder, trained = work
    tflite = folder / "wine.tflite"
    status, out, err = run(
        "export",
        folder / "wine.keras",
        tflite,
        "--quantization",
        "dynamic",
        "--data",
        folder / "wine.csv",
        "--quiet",
    )
    assert status == 0, err
    assert result_of(out)["checked_in_litert"] and tflite.is_file()
    assert (folder / "wine.tflite.data.json").is_file()
    status, out, err = run("info", tflite)
    info = result_of(out)
    assert info["format"] == "tflite" and info["quantization"] == "dynamic"
    assert info["classes"] == ["barbera", "barolo", "grignolino"]
    assert info["inputs"] == {"inputs": [15]}
    status, out, err = run("evaluate", tflite, folder / "wine.csv")
    assert status == 0, err
    assert result_of(out)["accuracy"] == pytest.approx(trained["accuracy"], abs=0.03)
    per_kernel = folder / "wine_per_kernel.tflite"
    status, out, err = run(
        "export", folder / "wine.keras", per_kernel, "--quantization", "dynamic",
        "--no-per-channel", "--data", folder / "wine.csv", "--quiet",
    )  # fmt: skip
    assert status == 0 and result_of(out)["per_channel"] is False, err
    status, out, err = run(
        "export", folder / "wine.keras", folder / "float.tflite", "--no-per-channel"
    )
    assert status == 2 and "'per_channel' parameter" in err
    assert not (folder / "float.tflite").exists()


def test_info_of_a_keras_model(work):
    folder, _ = work
    status, out, err = run("info", folder / "wine.keras")
    info = result_of(out)
    assert info["parameters"] > 1000 and info["sparsity"] == 0.0
    assert info["data"].startswith("wine.csv (table, 15 features")


def test_compress_then_report(work):
    folder, trained = work
    status, out, err = run(
        "compress",
        folder / "wine.keras",
        folder / "wine.csv",
        "--prune",
        0.5,
        "--epochs",
        1,
        "--out",
        folder / "wine_pruned.keras",
        "--quiet",
    )
    assert status == 0, err
    result = result_of(out)
    # 50% of every kernel but the first, whose units read only 15 features
    assert 0.35 <= result["sparsity"] < 0.45 and result["after"]["accuracy"] > 0.8
    models = [folder / "wine.keras", folder / "wine_pruned.keras"]
    status, out, err = run(
        "report", *models, "--data", folder / "wine.csv", "--run-dir", folder / "report"
    )
    assert status == 0, err
    assert "wine_pruned.keras" in out and (folder / "report").is_dir()
    assert "Trivial baselines on the same data" in out
    assert "majority class 0.3889, logistic regression" in out  # 14 of 36


@pytest.mark.slow
def test_tune(tmp_path):
    write_wine(tmp_path / "wine.csv")
    status, out, err = run(
        "tune",
        tmp_path / "wine.csv",
        "--target",
        "label",
        "--algorithm",
        "random",
        "--max-trials",
        2,
        "--epochs",
        3,
        "--directory",
        tmp_path / "search",
        "--out",
        tmp_path / "best.keras",
        "--quiet",
    )
    assert status == 0, err
    result = result_of(out)
    assert set(result["best_params"]) == {"dense_units", "dropout", "learning_rate"}
    assert (tmp_path / "best.keras.data.json").is_file()


@pytest.mark.slow
def test_privacy_epsilon_and_train(tmp_path):
    status, out, err = run(
        "privacy",
        "epsilon",
        "--num-examples",
        60000,
        "--batch-size",
        256,
        "--epochs",
        15,
        "--noise-multiplier",
        1.1,
    )
    assert status == 0, err
    expected = kdl.privacy.epsilon(
        num_examples=60000, batch_size=256, epochs=15, noise_multiplier=1.1, delta=1e-5
    )
    assert result_of(out)["epsilon"] == pytest.approx(expected)
    status, out, err = run(
        "privacy",
        "train",
        "digits",
        "--target-epsilon",
        3,
        "--epochs",
        2,
        "--learning-rate",
        0.05,
        "--out",
        tmp_path / "dp.keras",
        "--quiet",
    )
    assert status == 0, err
    assert result_of(out)["accuracy"] > 0.5
    status, out, err = run("info", tmp_path / "dp.keras")
    info = result_of(out)
    assert info["private"] and info["epsilon"] == 3.0


@pytest.mark.slow
def test_rl(tmp_path):
    status, out, err = run(
        "rl",
        "CartPole-v1",
        "--steps",
        200,
        "--episodes",
        2,
        "--out",
        tmp_path / "agent",
        "--quiet",
    )
    assert status == 0, err
    assert result_of(out)["mean_return"] > 0
    assert (tmp_path / "agent" / "agent.json").is_file()


@pytest.mark.slow
def test_series_csv_train_and_predict(tmp_path):
    write_sunspots(tmp_path / "sun.csv")
    status, out, err = run(
        "train",
        tmp_path / "sun.csv",
        "--window",
        12,
        "--model",
        "gru",
        "--epochs",
        3,
        "--out",
        tmp_path / "sun.keras",
        "--quiet",
    )
    assert status == 0, err
    assert "mae" in result_of(out)
    status, out, err = run(
        "predict",
        tmp_path / "sun.keras",
        tmp_path / "sun.csv",
        "--out",
        tmp_path / "forecast.csv",
    )
    assert status == 0, err
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert list(forecast.columns) == ["row", "prediction"]
    assert forecast["row"].tolist() == list(range(13, 310))  # rows 13..309


@pytest.mark.slow
def test_first_cli_forms_still_work_on_the_digits(tmp_path):
    """The README's first commands: kdl train cnn, export int8, evaluate."""
    model = tmp_path / "cnn.keras"
    status, out, err = run(
        "train",
        "cnn",
        "--epochs",
        3,
        "--run-dir",
        tmp_path / "run",
        "--out",
        model,
        "--quiet",
    )
    assert status == 0, err
    trained = result_of(out)
    assert trained["data"].startswith("the held-out 20% of digits")
    assert trained["accuracy"] > 0.8
    tflite = tmp_path / "cnn_int8.tflite"
    status, out, err = run("export", model, tflite, "--quantization", "int8", "--quiet")
    assert status == 0, err
    status, out, err = run("evaluate", tflite)
    assert status == 0, err
    assert result_of(out)["accuracy"] == pytest.approx(trained["accuracy"], abs=0.03)


def test_help_has_an_example_and_no_markup():
    for command in (
        "train",
        "predict",
        "evaluate",
        "info",
        "tune",
        "compress",
        "export",
        "rl",
        "report",
        "privacy",
    ):
        status, out, _ = run(command, "--help")
        assert status == 0 and "Example:\n  kdl " + command in out
        assert "``" not in out and ":func:" not in out
    status, out, _ = run("--version")
    assert status == 0 and out.startswith("kdl ")


@pytest.fixture(scope="module")
def places(tmp_path_factory, work):
    """Files with one mistake each, and a model saved without its .data.json."""
    folder = tmp_path_factory.mktemp("mistakes")
    frame = write_wine(folder / "w.csv")
    gap = frame.copy()
    gap.loc[11, "ash"] = np.nan
    gap.to_csv(folder / "gap.csv", index=False)
    text = frame.copy().astype({"magnesium": object})
    text.loc[6, "magnesium"] = "high"
    text.to_csv(folder / "text.csv", index=False)
    other = frame.copy()
    other.loc[0, "label"] = "chianti"
    other.to_csv(folder / "other.csv", index=False)
    (folder / "flat").mkdir()
    (folder / "flat" / "a.png").write_bytes(b"\x89PNG")
    (folder / "cut.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 300)
    digits_model = kdl.build_mlp((64,), 10)
    kdl.save(digits_model, folder / "bare.keras")  # no .data.json beside it
    (x, y), _ = datasets.load(folder / "w.csv", target="label")
    np.savez(folder / "wine.npz", x=x, y=y)
    return {"model": work[0] / "wine.keras", "tmp": folder}


MISTAKES = [
    (["train", "{tmp}/nowhere.csv", "--target", "label"], "found no file"),
    (["train", "{tmp}/w.csv", "--target", "colour"], "'target' parameter.*'colour'"),
    (["train", "{tmp}/w.csv"], "'target' parameter.*column to predict"),
    (
        ["train", "{tmp}/w.csv", "--target", "label", "--model", "gru"],
        r"--model gru reads \(steps, features\) sequences.*--window",
    ),
    (["train", "{tmp}/gap.csv", "--target", "label"], "'ash': row 12"),
    (
        ["train", "{tmp}/text.csv", "--target", "label"],
        "'magnesium' holds numbers: row 7 .*'high'",
    ),
    (["train", "{tmp}/flat", "--image-size", "8x8"], "one subfolder of images"),
    (
        ["train", "{tmp}/w.csv", "--target", "label", "--epochs", "0"],
        "expected a positive int",
    ),
    (
        ["train", "{tmp}/w.csv", "--target", "label", "--out", "{tmp}/m.txt"],
        "--out .*m.txt' must end in .keras",
    ),
    (
        ["train", "{tmp}/w.csv", "--target", "label", "--image-size", "big"],
        "HEIGHTxWIDTH",
    ),
    (
        ["predict", "{tmp}/nowhere.keras", "{tmp}/w.csv", "--out", "{tmp}/p.csv"],
        "MODEL .*nowhere.keras': no such file",
    ),
    (["predict", "{model}", "{tmp}/w.csv", "--out", "{tmp}/p.txt"], "must end in .csv"),
    (
        ["predict", "{tmp}/bare.keras", "{tmp}/w.csv", "--out", "{tmp}/p.csv"],
        r"bare.keras has no bare.keras.data.json",
    ),
    (["evaluate", "{model}", "digits"], "data like the model's training data"),
    (["evaluate", "{model}", "{tmp}/other.csv"], "model's classes.*'chianti'"),
    (
        ["evaluate", "{tmp}/bare.keras", "{tmp}/wine.npz"],
        r"examples of shape \(64,\) as .*bare.keras takes",
    ),
    (
        ["export", "{tmp}/bare.keras", "{tmp}/o.tflite", "--quantization", "int8"],
        r"give --data, the data to use$",
    ),
    (["evaluate", "{tmp}/bare.keras"], r"give DATA, the data to use$"),
    (["export", "{model}", "{tmp}/o.onnx"], "OUT .*o.onnx' must end in .tflite"),
    (["info", "{tmp}/cut.tflite"], "cut.tflite"),
    (["rl", "NoSuchEnv-v0"], "not a registered Gymnasium environment"),
    (["privacy", "epsilon", "--num-examples", "100"], "required"),
    (
        ["compress", "{model}", "{tmp}/w.csv", "--out", "{tmp}/c.keras"],
        "one of the arguments --prune",
    ),
    (["fly"], "invalid choice: 'fly'"),
]


@pytest.mark.parametrize(
    "argv, pattern", MISTAKES, ids=[" ".join(a[:2]) for a, _ in MISTAKES]
)
def test_mistakes_give_one_line_and_status_2(argv, pattern, places):
    argv = [a.format(**places) for a in argv]
    status, out, err = run(*argv)
    assert status == 2, (out, err)
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert re.search(pattern, err), err


def test_debug_shows_the_error_itself(places):
    with pytest.raises(ValueError, match="'target' parameter of kdl.datasets.load"):
        cli.main(
            ["train", str(places["tmp"] / "w.csv"), "--target", "colour", "--debug"]
        )


def test_train_and_evaluate_show_baselines_and_the_split(work):
    folder, trained = work
    # wine.csv is sorted by class: the validation part must still hold each
    record = json.loads((folder / "run" / "run.json").read_text())
    assert record["arguments"]["validation"]["method"] == "stratified"
    assert record["arguments"]["validation"]["seed"] == 0
    assert record["arguments"]["validation"]["classes_missing"] == []
    base = trained["baselines"]
    assert base["on"] == "the test part" and base["metric"] == "accuracy"
    assert base["model"] == pytest.approx(trained["accuracy"], abs=1e-6)
    assert base["majority class"] == pytest.approx(14 / 36)  # 71 of 178 in class 1
    assert base["logistic regression"] > 0.9 and base["beats_trivial"] is True
    status, out, err = run("evaluate", folder / "wine.keras", folder / "wine.csv")
    assert status == 0, err
    assert result_of(out)["baselines"] == base
