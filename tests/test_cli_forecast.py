"""kdl predict --next: forecasts past the last row of a series CSV, aligned
with what kdl predict says of the same rows when the file holds them."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pandas as pd
import pytest

from kdl import cli


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast")
    t = np.arange(120)
    frame = pd.DataFrame({"value": 10 + np.sin(t / 5) * 3, "temp": np.cos(t / 5)})
    frame[["value"]].to_csv(folder / "one.csv", index=False)
    frame.to_csv(folder / "two.csv", index=False)
    for name, extra in (("one", ["--horizon", "1"]), ("two", ["--horizon", "2"])):
        status, _, err = run(
            "train", folder / f"{name}.csv", "--target", "value", "--window", 6,
            *extra, "--epochs", 1, "--out", folder / f"{name}.keras", "--quiet",
        )  # fmt: skip
        assert status == 0, err
    return folder


def _csv(text):
    return pd.read_csv(io.StringIO(text))


@pytest.mark.parametrize("name, steps", [("one", 1), ("two", 2)])
def test_next_forecasts_what_predict_says_once_the_rows_exist(series, name, steps):
    full = series / f"{name}.csv"
    pd.read_csv(full).iloc[:100].to_csv(series / "head.csv", index=False)
    status, out, err = run("predict", series / f"{name}.keras", full, "--quiet")
    assert status == 0, err
    known = _csv(out).set_index("row")["prediction"]
    status, out, err = run(
        "predict", series / f"{name}.keras", series / "head.csv", "--next", steps
    )
    assert status == 0, err
    ahead = _csv(out)
    assert list(ahead.columns) == ["row", "step", "prediction"]
    assert list(ahead["row"]) == [101 + i for i in range(steps)]
    np.testing.assert_allclose(ahead["prediction"], known.loc[ahead["row"]], rtol=1e-5)


def test_next_past_the_horizon_feeds_the_forecasts_back(series):
    status, out, err = run("predict", series / "one.keras", series / "one.csv",
                           "--next", 4, "--out", series / "f.csv")  # fmt: skip
    assert status == 0, err
    assert '"after_row": 120' in out
    table = pd.read_csv(series / "f.csv")
    assert list(table["step"]) == [1, 2, 3, 4] and table["prediction"].notna().all()


@pytest.mark.parametrize(
    "model, data, steps, pattern",
    [
        ("two", "two.csv", 3, r"at most 2 row\(s\) past the last"),
        ("one", "tiny.csv", 1, r"tiny\.csv has 3 rows.*last 6"),
    ],
)
def test_next_mistakes_are_one_line(series, model, data, steps, pattern):
    pd.DataFrame({"value": [1.0, 2.0, 3.0]}).to_csv(series / "tiny.csv", index=False)
    status, out, err = run(
        "predict", series / f"{model}.keras", series / data, "--next", steps
    )
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert re.search(pattern, err), err
