"""kdl.baselines and kdl._holdout: the bar a model must clear, the honest split.

Both are NumPy and scikit-learn; only the last test (kdl.tune) trains.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_wine, make_classification
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import train_test_split

from kdl import _holdout, baselines
from kdl.datasets import make_windows


def _imbalanced():
    x, y = make_classification(
        400, 8, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1], random_state=1
    )
    return train_test_split(x, y, test_size=0.25, random_state=0)


def test_trivial_baselines_equal_sklearns_dummies():
    x_train, x_test, y_train, y_test = _imbalanced()
    result = baselines.compute(x_train, y_train, x_test, y_test, task="classification")
    dummy = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
    assert result["trivial"] == {
        "name": "majority class",
        "score": pytest.approx(dummy.score(x_test, y_test)),
    }
    assert result["metric"] == "accuracy" and result["higher_is_better"]
    # a linear model learns this table: clearly above the majority class
    assert result["linear"]["name"] == "logistic regression"
    assert result["linear"]["score"] > result["trivial"]["score"] + 0.1

    target = x_train[:, 0] * 3 + 100.0
    result = baselines.compute(
        x_train, target, x_test, x_test[:, 0] * 3 + 100.0, task="regression"
    )
    mean = DummyRegressor().fit(x_train, target).predict(x_test)
    expected = np.mean(np.abs(mean - (x_test[:, 0] * 3 + 100.0)))
    assert result["trivial"]["name"] == "mean"
    assert result["trivial"]["score"] == pytest.approx(expected)
    assert result["linear"]["score"] < 0.01 * result["trivial"]["score"]  # exact fit
    assert not result["higher_is_better"]


def test_last_value_baseline_of_series_windows():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(300, 2)), axis=0).astype("float32")
    x, y, _ = make_windows(walk, walk[:, 1], 8, 2)
    assert baselines.find_target(x, y) == (1, 2)
    result = baselines.compute(
        x[:200], y[:200], x[200:], y[200:], task="regression", target_column="auto"
    )
    naive = np.mean(np.abs(x[200:, -1, 1] - y[200:].reshape(-1)))
    assert result["trivial"] == {"name": "last value", "score": pytest.approx(naive)}
    assert result["linear"] is None  # not a table
    assert baselines.beats(result, naive * 0.9) and not baselines.beats(result, naive)
    # shuffled windows: the target column cannot be found, the mean stands in
    order = rng.permutation(len(x))
    assert baselines.find_target(x[order], y[order]) is None


def test_score_reads_model_outputs():
    y = np.array([0, 1, 2, 1])
    probs = np.eye(3)[[0, 1, 1, 1]]
    assert baselines.score(probs, y, "classification") == 0.75
    assert baselines.score(np.array([[0.9], [0.2]]), np.array([1, 1]), "binary") == 0.5


def test_validation_of_data_sorted_by_class_holds_every_class():
    wine = load_wine()
    x, y = wine.data, wine.target  # sorted by class, as the file is
    assert (y[-18:] == 2).all()  # Keras' last 10% would be class 2 only
    parts = _holdout.split(x, y, 0.1, seed=3, task="classification", func="f")
    validation = parts.validation[1]
    assert parts.record == {
        "method": "stratified",
        "fraction": 0.1,
        "seed": 3,
        "examples": 18,
        "classes_missing": [],
    }
    counts = np.bincount(validation, minlength=3) / len(validation)
    np.testing.assert_allclose(counts, np.bincount(y) / len(y), atol=0.06)
    assert len(parts.x) + len(validation) == len(x)
    again = _holdout.split(x, y, 0.1, seed=3, task="classification", func="f")
    np.testing.assert_array_equal(again.validation[0], parts.validation[0])


def test_validation_of_windows_is_their_end_and_a_lacking_class_warns():
    x = np.arange(40, dtype="float32").reshape(10, 4, 1)
    parts = _holdout.split(x, x[:, -1, 0], 0.2, seed=0, task="regression", func="f")
    assert parts.record["method"] == "last"
    np.testing.assert_array_equal(parts.validation[0], x[8:])
    y = np.array([0] * 12 + [1] * 12 + [2])  # class 2 has one example
    with pytest.warns(UserWarning) as caught:
        parts = _holdout.split(np.ones((25, 2)), y, 0.2, seed=0, task=None, func="f")
    text = " ".join(str(w.message) for w in caught)
    assert "cannot stratify" in text
    if 2 not in parts.validation[1]:
        assert "holds no example of class 2" in text
        assert parts.record["classes_missing"] == [2]


@pytest.mark.slow
def test_tune_validates_on_every_class_of_data_sorted_by_class(tmp_path, digits_flat):
    import kdl

    (x, y), _ = digits_flat
    order = np.argsort(y, kind="stable")
    result = kdl.tune(
        kdl.build_mlp,
        x[order],
        y[order],
        space={"dense_units": kdl.Choice([(32,)])},
        algorithm="grid",
        epochs=3,
        objective="val_accuracy",
        directory=tmp_path / "search",
        verbose=0,
    )
    # Keras' split would hold out the last rows: class 9, never trained on
    assert result.best_score > 0.5
