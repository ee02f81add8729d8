"""Membership-inference audit: can an attacker tell training examples apart?

Two attacks on the model's outputs, written on scikit-learn (the attack code
that used to ship with TensorFlow Privacy moved to tensorflow-empirical-privacy,
which no longer imports with current scikit-learn; docs/design.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.privacy._losses import per_example_loss
from kdl.privacy._tracking import target_task

__all__ = ["AuditResult", "audit"]


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """What a membership-inference attacker achieves against a model.

    An AUC of 0.5 and an advantage of 0 mean the attacker cannot tell training
    examples from unseen ones better than a coin flip.

    Attributes:
        auc: float. The best attack's ROC AUC.
        advantage: float. The best attack's advantage, max(TPR - FPR).
        loss_threshold_auc: float. AUC of "low loss means member".
        loss_threshold_advantage: float.
        logistic_auc: float. Cross-validated AUC of a logistic regression on
            the loss and the sorted model outputs.
        logistic_advantage: float.
        num_members: int. Training examples attacked.
        num_non_members: int. Unseen examples attacked.
    """

    auc: float
    advantage: float
    loss_threshold_auc: float
    loss_threshold_advantage: float
    logistic_auc: float
    logistic_advantage: float
    num_members: int
    num_non_members: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return (
            f"membership inference: AUC {self.auc:.3f}, advantage "
            f"{self.advantage:.3f} (loss threshold AUC "
            f"{self.loss_threshold_auc:.3f}, logistic regression AUC "
            f"{self.logistic_auc:.3f}; {self.num_members} members, "
            f"{self.num_non_members} non-members)"
        )


def _as_array(value, arg, func):
    if isinstance(value, tf.Tensor):
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        v.fail(func, arg, "a numpy array", type(value).__name__, error=TypeError)
    if len(value) < 2:
        v.fail(func, arg, "an array with at least 2 examples", value.shape)
    return value


def _loss_values(model, x, y, batch_size):
    """Per-example losses of ``model``, with its compiled loss."""
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    loss = model.loss
    if isinstance(loss, keras.losses.Loss):
        per_example = per_example_loss(loss)
    else:
        per_example = keras.losses.get(loss)
    values = per_example(tf.constant(y), tf.constant(outputs)).numpy()
    return outputs, values.reshape(len(x), -1).mean(axis=1)


def _advantage(labels, scores) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.max(tpr - fpr))


def audit(
    model,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    max_examples: int = 2000,
    batch_size: int = 256,
    seed: int = 0,
) -> AuditResult:
    """Measures how well an attacker tells training examples from unseen ones.

    Two membership-inference attacks on the model's outputs, written on
    scikit-learn (the attack code that used to ship with TensorFlow Privacy no
    longer imports with current scikit-learn): a loss-threshold attack
    (members tend to have lower loss) and a logistic-regression attack on the
    per-example loss and the sorted output vector, scored by 5-fold
    cross-validation.

    Args:
        model: kdl.keras.Model. A compiled, trained model (private or not).
        x_train: np.ndarray. Inputs the model was trained on (members).
        y_train: np.ndarray. Their labels.
        x_test: np.ndarray. Inputs it never saw (non-members).
        y_test: np.ndarray. Their labels.
        max_examples: int. At most this many members and this many
            non-members are attacked (a random subset). Defaults to `2000`.
        batch_size: int. Prediction batch size. Defaults to `256`.
        seed: int. Seed of the subsampling and cross-validation folds.
            Defaults to `0`.

    Returns:
        AuditResult with the AUC and advantage of each attack and the best.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> result = audit(model, x_train, y_train, x_test, y_test)
        >>> result.auc, result.advantage
    """
    func = "kdl.privacy.audit"
    arrays = _check_audit(func, model, (x_train, y_train, x_test, y_test))
    max_examples = v.check_int(max_examples, "max_examples", func, min_value=2)
    batch_size = v.check_int(batch_size, "batch_size", func)
    seed = v.check_int(seed, "seed", func, min_value=0)

    rng = np.random.default_rng(seed)
    # AUC does not depend on the class balance, so every example counts
    # (up to max_examples a side); the logistic attack weighs classes evenly.
    num_in = min(len(arrays["x_train"]), max_examples)
    num_out = min(len(arrays["x_test"]), max_examples)
    members = rng.choice(len(arrays["x_train"]), num_in, replace=False)
    others = rng.choice(len(arrays["x_test"]), num_out, replace=False)
    out_in, loss_in = _loss_values(
        model, arrays["x_train"][members], arrays["y_train"][members], batch_size
    )
    out_out, loss_out = _loss_values(
        model, arrays["x_test"][others], arrays["y_test"][others], batch_size
    )
    labels = np.concatenate([np.ones(num_in), np.zeros(num_out)])
    losses = np.concatenate([loss_in, loss_out])
    outputs = np.concatenate([out_in.reshape(num_in, -1), out_out.reshape(num_out, -1)])
    threshold_auc, threshold_adv = _scores(labels, -losses)
    logistic_auc, logistic_adv = _scores(
        labels, _logistic_attack(labels, losses, outputs, seed)
    )
    return AuditResult(
        auc=max(threshold_auc, logistic_auc),
        advantage=max(threshold_adv, logistic_adv),
        loss_threshold_auc=threshold_auc,
        loss_threshold_advantage=threshold_adv,
        logistic_auc=logistic_auc,
        logistic_advantage=logistic_adv,
        num_members=num_in,
        num_non_members=num_out,
    )


def _renamed(err: Exception, x_arg: str, y_arg: str) -> Exception:
    """``err`` of check_data with the audit's own argument names."""
    text = str(err).replace("The 'x' parameter", f"The '{x_arg}' parameter")
    text = text.replace("The 'y' parameter", f"The '{y_arg}' parameter")
    text = text.replace("as long as x (", f"as long as {x_arg} (")
    return type(err)(text)


def _check_audit(func, model, data) -> dict:
    """Checks the model, the four arrays and the class targets.

    Returns the arrays by name. The data rules are the shared ones
    (``kdl._validation.check_data`` and ``check_targets``), with messages that
    name the audit's arguments.
    """
    v.check_keras_model(model, "model", func)
    if getattr(model, "loss", None) is None:
        v.fail(func, "model", "a compiled model", model.name)
    names = ("x_train", "y_train", "x_test", "y_test")
    arrays = {arg: _as_array(value, arg, func) for arg, value in zip(names, data)}
    task, num_classes = target_task(model)
    for x_arg, y_arg in (("x_train", "y_train"), ("x_test", "y_test")):
        try:
            v.check_data(func, arrays[x_arg], arrays[y_arg])
        except (TypeError, ValueError) as err:
            raise _renamed(err, x_arg, y_arg) from None
        v.check_targets(
            func, arrays[y_arg], task=task, num_classes=num_classes, arg=y_arg
        )
    return arrays


def _scores(labels, scores) -> tuple[float, float]:
    """ROC AUC and advantage, max(TPR - FPR), of an attack's scores."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)), _advantage(labels, scores)


def _logistic_attack(labels, losses, outputs, seed):
    """Cross-validated member probabilities of a logistic-regression attacker
    on the log loss and the sorted output vector."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.column_stack(
        [np.log(np.maximum(losses, 1e-12)), -np.sort(-outputs, axis=1)]
    )
    attacker = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000, class_weight="balanced")
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return cross_val_predict(
        attacker, features, labels, cv=folds, method="predict_proba"
    )[:, 1]
