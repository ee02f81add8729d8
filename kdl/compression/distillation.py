"""Knowledge distillation: train a small student on a teacher's soft outputs."""

from __future__ import annotations

import math

from kdl import _model_utils as mu
from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.compression import _common as c
from kdl.errors import UnsupportedModelError

__all__ = ["distill"]

_FUNC = "kdl.compression.distill"
_EPSILON = 1e-7
# Training steps by default (see epochs). A student learns from its teacher
# slowly: on the digits (batch-normalized teacher 0.992, a quarter-size
# student, seeds 0-2) 20 epochs reached 0.971, no better than the student
# alone; 40 epochs (1,640 steps) 0.985, against 0.977 alone.
MIN_STEPS = 1500
# The student's rate when it has the builders' default (Adam at 1e-3), issue
# 23: a student starts from scratch with a fixed budget of steps. (256, 256)
# MLP teacher into a (16,) student, seeds 0-2: -3.9 / -1.7 / -2.2 points from
# the teacher at 1e-3, +0.3 / -2.2 / -1.4 at 0.005; the quarter-size CNN
# student of a batch-normalized teacher, seed 0: 0.983 -> 0.992 (teacher 0.992).
STUDENT_RATE = 0.005
DEFAULT_RATE = 1e-3  # every kdl builder's (and Keras Adam's) default


def _soft_classes(probabilities, temperature):
    """Log of the softened class distribution from softmax outputs.

    softmax(log p / T) equals softmax(logits / T): the log-sum-exp that
    separates log p from the logits is the same for every class.
    """
    logits = tf.math.log(tf.clip_by_value(probabilities, _EPSILON, 1.0))
    return tf.nn.log_softmax(logits / temperature, axis=-1)


def _soft_binary(probabilities, temperature):
    """(log q, log(1 - q)) of the softened sigmoid output."""
    p = tf.clip_by_value(probabilities, _EPSILON, 1.0 - _EPSILON)
    logits = (tf.math.log(p) - tf.math.log1p(-p)) / temperature
    return tf.math.log_sigmoid(logits), tf.math.log_sigmoid(-logits)


def soft_loss(task: str, teacher_out, student_out, temperature: float):
    """The distillation term: T^2 x KL(teacher || student), both softened by T
    (Hinton et al. 2015); the mean squared difference for regression."""
    if task == "regression":
        return tf.reduce_mean(tf.square(teacher_out - student_out))
    if task == "classification":
        log_t = _soft_classes(teacher_out, temperature)
        log_s = _soft_classes(student_out, temperature)
        kl = tf.reduce_sum(tf.exp(log_t) * (log_t - log_s), axis=-1)
    else:
        t_pos, t_neg = _soft_binary(teacher_out, temperature)
        s_pos, s_neg = _soft_binary(student_out, temperature)
        kl = tf.reduce_sum(
            tf.exp(t_pos) * (t_pos - s_pos) + tf.exp(t_neg) * (t_neg - s_neg), axis=-1
        )
    return temperature**2 * tf.reduce_mean(kl)


class Distiller(keras.Model):
    """Trains ``student`` on ``alpha`` x the labels' loss plus ``1 - alpha`` x
    the distillation term; evaluates (and reports ``loss``) on the labels."""

    def __init__(self, student, teacher, *, task, temperature, alpha):
        super().__init__(name=f"{student.name}_distiller")
        self.student, self.teacher = student, teacher
        self.task, self.temperature, self.alpha = task, temperature, alpha
        self.distillation_tracker = keras.metrics.Mean(name="distillation_loss")

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def train_step(self, data):
        x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
        teacher_out = tf.cast(self.teacher(x, training=False), self.compute_dtype)
        with tf.GradientTape() as tape:
            out = self.student(x, training=True)
            hard = self.compiled_loss(
                y, out, weights, regularization_losses=self.student.losses
            )
            soft = soft_loss(self.task, teacher_out, out, self.temperature)
            loss = self.alpha * hard + (1.0 - self.alpha) * soft
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.compiled_metrics.update_state(y, out, weights)
        self.distillation_tracker.update_state(soft)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return super().metrics + [self.distillation_tracker]


def _student_rate(student, learning_rate):
    """``learning_rate``, or STUDENT_RATE for a student at the builders'
    default (Adam at 1e-3), else None (the student's own)."""
    if learning_rate is not None:
        return learning_rate
    optimizer = student.optimizer
    # the config, not .learning_rate: an optimizer not built yet has no
    # current rate to read
    rate = optimizer.get_config().get("learning_rate")
    if type(optimizer).__name__ != "Adam" or isinstance(rate, dict):
        return None  # another optimizer, or a schedule: the user chose it
    return STUDENT_RATE if math.isclose(rate, DEFAULT_RATE, rel_tol=1e-6) else None


def _task(model) -> str:
    task, _ = c.task_of(model)
    return task or "regression"


def _check_pair(teacher, student):
    v.check_keras_model(teacher, "teacher", _FUNC)
    if len(student.outputs) != 1 or len(teacher.outputs) != 1:
        raise UnsupportedModelError(
            f"{_FUNC} distills models with one output; teacher {teacher.name!r} "
            f"has {len(teacher.outputs)} and student {student.name!r} "
            f"{len(student.outputs)}."
        )
    if tuple(teacher.output_shape) != tuple(student.output_shape):
        v.fail(
            _FUNC,
            "student",
            f"a model with the teacher's output shape {teacher.output_shape}",
            student.output_shape,
        )


@c.in_model_strategy
def distill(
    teacher,
    student,
    x,
    y=None,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    validation_data=None,
    learning_rate: float | None = None,
    validation_split: float = 0.1,
    verbose: int = 1,
    seed: int | None = None,
    callbacks=None,
    holdout=c.UNSET,
) -> keras.Model:
    """Knowledge distillation: trains a copy of ``student`` to mimic ``teacher``.

    The loss is ``alpha`` x the student's own loss on the labels plus
    ``1 - alpha`` x ``temperature``² x the KL divergence between the teacher's
    and the student's outputs, both softened by ``temperature`` (Hinton et
    al., "Distilling the Knowledge in a Neural Network", 2015). Softmax and
    sigmoid heads are softened through their log-probabilities, which gives
    the same result as softening the logits; for regression the term is the
    mean squared difference to the teacher's outputs.

    Args:
        teacher: kdl.keras.Model. A trained model with one output. It is not
            changed.
        student: kdl.keras.Model. A compiled functional or Sequential model
            with the teacher's output shape (for example the same builder with
            fewer units), trained or not. It is not changed.
        x: array, list or dict of arrays, or a batched tf.data.Dataset of
            (x, y).
        y: array. The labels (None when x is a Dataset).
        temperature: float. Softening, > 0; 1 is the plain outputs. Defaults
            to `2.0` (on the digits, 4.0 with ``alpha=0.1`` did no better:
            0.984 against 0.985, teacher 0.992).
        alpha: float. Weight of the labels' loss, in [0, 1]; 0 learns from the
            teacher only. Defaults to `0.5`.
        epochs: int or None. None: enough for 1,500 steps, at least 2 (37
            epochs of the digits; 20 epochs left the student no better than
            one trained alone). Defaults to `None`.
        steps: int or None. The fine-tuning budget in optimizer steps
            instead of `epochs`, rounded up to whole epochs; give one of
            the two. None with `epochs=None`: 1,500 steps (at least 2
            epochs). Defaults to `None`.
        batch_size: int. Defaults to `32`.
        validation_data: None, (x_val, y_val), (x_val, y_val, sample_weight)
            or a Dataset, to keep the best epoch on (the student's loss on the
            labels). Defaults to `None`.
        learning_rate: float or None. None: 0.005 for a student compiled
            with the builders' default (Adam at 1e-3: a student trains from
            scratch on a fixed budget; on the digits this brought students
            within one point of their teachers more often), else the
            student's own. Defaults to `None`.
        validation_split: float. Without ``validation_data``, this fraction
            of array data is held out of fine-tuning by kdl.train's rule
            (stratified for class targets, the last windows for series, else
            at random; seeded by ``seed``) to keep the best epoch on; 0 trains
            on everything and keeps the last epoch. Defaults to `0.1`.
        seed: int or None. Seeds Python, NumPy and TensorFlow before
            fine-tuning, and the validation split (None: split seeded 0), as
            ``seed`` does in kdl.train; op determinism is not switched on
            (``kdl.set_seed``). Defaults to `None`.
        callbacks: list of kdl.keras callbacks or None. Passed to ``fit``
            after the transform's own. Defaults to `None`.
        holdout: deprecated name of ``validation_split`` (DeprecationWarning;
            removed in the next release).
        verbose: int. 0, 1 or 2, as in Keras ``fit``. Defaults to `1`.

    Returns:
        A new `kdl.keras.Model`: the trained student, compiled like
        ``student`` (same loss, metrics and optimizer type, fresh state).

    Raises:
        ValueError, TypeError: for a bad argument, naming it.
        kdl.errors.UnsupportedModelError: for a model with several outputs, a
            subclassed or a private student.

    Example:
        >>> small = build_cnn((8, 8, 1), 10, filters=(8, 16), dense_units=(32,))
        >>> student = distill(teacher, small, x_train, y_train, verbose=0)
    """
    info, _ = c.check_training(
        _FUNC, student, x, y, epochs=epochs, batch_size=batch_size,
        validation_data=validation_data, learning_rate=learning_rate,
        verbose=verbose, arg="student",
    )  # fmt: skip
    _check_pair(teacher, student)
    temperature = v.check_float(temperature, "temperature", _FUNC, strict_min=True)
    alpha = v.check_float(alpha, "alpha", _FUNC, min_value=0.0, max_value=1.0)
    extras = c.fit_extras(_FUNC, validation_split=validation_split, seed=seed,
                          callbacks=callbacks, holdout=holdout,
                          epochs=epochs, steps=steps)  # fmt: skip
    x_fit, y_fit, validation = c.split_holdout(
        x, y, info, extras, validation_data, student, _FUNC
    )
    per_epoch = c.steps_per_epoch(x_fit, info, batch_size)
    epochs = c.epochs_for(epochs, per_epoch, MIN_STEPS, extras.steps)
    trained = mu.copy_model(student)
    distiller = Distiller(
        trained, mu.copy_model(teacher), task=_task(student),
        temperature=temperature, alpha=alpha,
    )  # fmt: skip
    rate = _student_rate(student, learning_rate)
    mu.compile_like(distiller, student, learning_rate=rate)
    c.fine_tune(
        distiller,
        x_fit,
        y_fit,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        verbose=verbose,
        extras=extras,
        target=trained,
    )
    return mu.compile_like(trained, student)
