"""What a trivial model scores on the same data: the bar a trained model must clear.

kdl shows these beside every result (``kdl.train``'s summary and run.json,
``kdl train`` / ``kdl evaluate`` output, ``kdl.report.compare``):

- the **trivial** baseline: the majority class (classification), the mean
  target (regression), or "next = last value" (series windows, when the
  target's column in the window is known or can be found);
- for tables (2-D numeric inputs), a **linear** model when it is cheap:
  scikit-learn's ``LogisticRegression`` / ``Ridge`` on standardized inputs.

Baselines are fitted on the training part and scored on the part given, with
the metric kdl's builders report: accuracy for classes, mean absolute error
(MAE) for regression. scikit-learn's ``DummyClassifier`` / ``DummyRegressor``
compute the trivial ones (the library made for it).

Example:
    >>> from kdl import baselines
    >>> result = baselines.compute(x_train, y_train, x_val, y_val,
    ...                            task="classification")  # doctest: +SKIP
    >>> result["trivial"]  # doctest: +SKIP
    {'name': 'majority class', 'score': 0.35}
"""

from __future__ import annotations

import warnings

import numpy as np

from kdl import _validation as v

__all__ = ["compute", "score", "model_score", "beats", "describe", "find_target"]

FUNC = "kdl.baselines.compute"
TASKS = ("classification", "binary", "regression")
# The linear model runs when the table holds at most this many numbers.
LINEAR_MAX_VALUES = 5_000_000


def _metric(task: str) -> str:
    return "mae" if task == "regression" else "accuracy"


def _flat_y(y, task: str) -> np.ndarray:
    y = np.asarray(y)
    if task == "regression":
        return y.reshape(len(y), -1).astype("float64")
    return y.reshape(len(y)).astype("int64")


def score(predictions, y, task: str) -> float:
    """Accuracy (classes) or MAE (regression) of ``predictions`` against ``y``.

    ``predictions`` are labels or model outputs: class probabilities (argmax),
    a sigmoid column (above 0.5) or values.
    """
    p = np.asarray(predictions)
    if task == "regression":
        y = _flat_y(y, task)
        return float(np.mean(np.abs(p.reshape(y.shape) - y)))
    y = _flat_y(y, task)
    if p.ndim == 2 and p.shape[1] > 1:
        p = p.argmax(-1)
    elif p.dtype.kind == "f":
        p = (p.reshape(len(p)) > 0.5).astype("int64")
    return float(np.mean(p.reshape(len(y)) == y))


def find_target(x, y, *, max_horizon: int | None = None) -> tuple | None:
    """(column, horizon) of series windows ``x`` whose target ``y`` is a column.

    Windows made by :func:`kdl.datasets.make_windows` in time order have
    ``y[i] == x[i + horizon, -1, column]``; the first column and horizon for
    which that holds on every window is returned, else None.
    """
    x, y = np.asarray(x), np.asarray(y).reshape(len(y), -1)
    if x.ndim != 3 or y.shape[1] != 1 or len(x) < 3:
        return None
    for horizon in range(1, min(max_horizon or x.shape[1], len(x) - 1) + 1):
        later = x[horizon:, -1, :]  # (n - horizon, features)
        target = y[: len(x) - horizon]
        same = np.isclose(later, target, rtol=1e-5, atol=1e-6).all(axis=0)
        if same.any():
            return int(np.argmax(same)), horizon
    return None


def _trivial(x_train, y_train, x_eval, y_eval, task, target_column) -> dict:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task == "regression" and target_column is not None and np.ndim(x_eval) == 3:
        last = np.asarray(x_eval)[:, -1, target_column]
        return {"name": "last value", "score": score(last, y_eval, task)}
    ones_train = np.zeros((len(y_train), 1))
    if task == "regression":
        dummy = DummyRegressor(strategy="mean").fit(ones_train, _flat_y(y_train, task))
        name = "mean"
    else:
        dummy = DummyClassifier(strategy="most_frequent")
        dummy.fit(ones_train, _flat_y(y_train, task))
        name = "majority class"
    predicted = dummy.predict(np.zeros((len(y_eval), 1)))
    return {"name": name, "score": score(predicted, y_eval, task)}


def _is_table(x) -> bool:
    return (
        isinstance(x, np.ndarray)
        and x.ndim == 2
        and (np.issubdtype(x.dtype, np.number) or x.dtype == bool)
        and x.size <= LINEAR_MAX_VALUES
    )


def _linear(x_train, y_train, x_eval, y_eval, task) -> dict | None:
    """LogisticRegression or Ridge on standardized columns, or None if not cheap."""
    x_train, x_eval = np.asarray(x_train), np.asarray(x_eval)
    if not (_is_table(x_train) and _is_table(x_eval)):
        return None
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    target = _flat_y(y_train, task)
    if task == "regression":
        name, model = "ridge regression", Ridge()
        target = target[:, 0] if target.shape[1] == 1 else target
    else:
        if len(np.unique(target)) < 2:
            return None
        name, model = "logistic regression", LogisticRegression(max_iter=1000)
    pipeline = make_pipeline(StandardScaler(), model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(x_train.astype("float64"), target)
    predicted = pipeline.predict(x_eval.astype("float64"))
    return {"name": name, "score": score(predicted, y_eval, task)}


def compute(
    x_train, y_train, x_eval, y_eval, *, task: str, target_column=None, on: str = ""
) -> dict:
    """The baselines fitted on the training part, scored on ``(x_eval, y_eval)``.

    Args:
        x_train, y_train: arrays. What the baselines are fitted on.
        x_eval, y_eval: arrays. What they are scored on.
        task: str. "classification", "binary" or "regression".
        target_column: int, "auto" or None. For series windows (3-D x): the
            target's column in a window, for the "last value" baseline;
            "auto" finds it with :func:`find_target`. Defaults to `None`
            (the mean instead).
        on: str. Which data the scores are on, for the record. Defaults to
            `""`.

    Returns:
        dict: ``{"metric": "accuracy" or "mae", "higher_is_better": bool,
        "on": on, "trivial": {"name", "score"}, "linear": {"name", "score"}
        or None}``.
    """
    v.check_choice(task, "task", FUNC, TASKS)
    if target_column == "auto":
        found = find_target(x_train, y_train) if task == "regression" else None
        target_column = None if found is None else found[0]
    result = {
        "metric": _metric(task),
        "higher_is_better": task != "regression",
        "on": on,
        "trivial": _trivial(x_train, y_train, x_eval, y_eval, task, target_column),
        "linear": _linear(x_train, y_train, x_eval, y_eval, task),
    }
    return result


def model_score(model, x, y, task: str) -> float:
    """The model's accuracy or MAE on ``(x, y)``, from its predictions."""
    outputs = model.predict(x, batch_size=256, verbose=0)
    return score(outputs, y, task)


def beats(result: dict, value: float, which: str = "trivial") -> bool:
    """Whether ``value`` (the model's score) is better than a baseline's."""
    entry = result.get(which)
    if entry is None:
        return True
    if result["higher_is_better"]:
        return value > entry["score"]
    return value < entry["score"]


def describe(result: dict, value: float | None = None) -> str:
    """One line: the model's score beside the baselines'."""
    parts = [] if value is None else [f"model {value:.4g}"]
    for which in ("trivial", "linear"):
        entry = result.get(which)
        if entry is not None:
            parts.append(f"{entry['name']} {entry['score']:.4g}")
    on = f" on {result['on']}" if result.get("on") else ""
    return f"{result['metric']}{on}: " + ", ".join(parts)
