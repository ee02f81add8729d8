"""Small tables through the command line (issue 23): the default `kdl train`
keeps up with a logistic regression, and `kdl privacy train` trains on
make_private's plan and says when raw columns are on very different scales.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from kdl import _table_epochs, cli


def run(*argv):
    """Runs the kdl command in-process; returns (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def result_of(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") :])


def _sklearn_csv(loader, path, *, sort=False):
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={bunch.target.name: "target"})
    if sort:  # the file a user exported sorted by its label
        frame = frame.sort_values("target", kind="stable")
    frame.to_csv(path, index=False)
    return frame


def test_small_tables_get_enough_steps():
    # iris: 120 rows, 108 trained on at batch 32: 4 steps an epoch.
    assert _table_epochs.plan(120, 32, 0.1) == (250, 25)
    # A large table keeps 20 epochs and a patience of 5.
    assert _table_epochs.plan(100_000, 32, 0.1) == (20, 5)
    # One row at a time still stops at MAX_EPOCHS.
    assert _table_epochs.plan(3, 32, 0.1)[0] == _table_epochs.MAX_EPOCHS


@pytest.mark.slow
def test_default_train_on_iris_keeps_up_with_logistic_regression(tmp_path):
    # Measured before (20 epochs, patience 5): 0.833 on this split against
    # the logistic regression's 0.967; 0.867 on seed 1.
    from sklearn.datasets import load_iris

    _sklearn_csv(load_iris, tmp_path / "iris.csv", sort=True)
    status, out, err = run(
        "train", tmp_path / "iris.csv", "--target", "target", "--quiet",
        "--run-dir", tmp_path / "run",
    )  # fmt: skip
    assert status == 0, err
    baselines = result_of(out)["baselines"]
    assert baselines["model"] >= baselines["logistic regression"] - 0.015


@pytest.mark.slow
def test_privacy_train_follows_the_plan_and_warns_on_raw_scales(tmp_path):
    from sklearn.datasets import load_breast_cancer

    frame = _sklearn_csv(load_breast_cancer, tmp_path / "raw.csv")
    status, out, err = run(
        "privacy", "train", tmp_path / "raw.csv", "--target", "target",
        "--target-epsilon", 8,
    )  # fmt: skip
    assert status == 0, err
    assert "different scales" in err and "[0, 1]" in err
    result = result_of(out)
    # make_private's plan: a quarter of 455 training rows, 40 epochs.
    assert (result["batch_size"], result["epochs"]) == (113, 40)
    # Columns on similar scales: no warning. (Accuracy is not asserted: on
    # this table the default plan at epsilon 8 gave the majority class, 0.63,
    # with raw and with max-scaled columns alike; see the closing report.)
    # Only --epochs given: the batch size is the command's earlier 64.
    features = frame.columns.drop("target")
    frame[features] = frame[features] / frame[features].max()
    frame.to_csv(tmp_path / "scaled.csv", index=False)
    status, out, err = run(
        "privacy", "train", tmp_path / "scaled.csv", "--target", "target",
        "--target-epsilon", 8, "--epochs", 2,
    )  # fmt: skip
    assert status == 0, err
    assert "different scales" not in err
    result = result_of(out)
    assert (result["batch_size"], result["epochs"]) == (64, 2)
