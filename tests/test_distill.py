"""kdl.compression.distill: a small student learns from a teacher."""

from __future__ import annotations

import numpy as np
import pytest

import kdl
from kdl import compression
from kdl.backend import keras
from kdl.compression import distillation
from kdl.errors import UnsupportedModelError


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def teacher(digits_cnn):
    """The default digits CNN with batch norm, 15 epochs (conftest's, shared)."""
    return digits_cnn


def _student():
    # A quarter of the default CNN's parameters or fewer.
    return kdl.build_cnn((8, 8, 1), 10, filters=(16, 32), dense_units=(56,))


@pytest.mark.slow
def test_student_within_one_point_of_the_teacher_and_not_below_alone(
    digits_image, teacher
):
    (x, y), (x_test, y_test) = digits_image
    keras.utils.set_random_seed(0)
    student = _student()
    assert student.count_params() * 4 <= teacher.count_params()
    before_student, before_teacher = _weights(student), _weights(teacher)

    trained = compression.distill(teacher, student, x, y, verbose=0)

    assert _same(before_student, student.get_weights())  # inputs untouched
    assert _same(before_teacher, teacher.get_weights())
    teacher_accuracy = teacher.evaluate(x_test, y_test, verbose=0)[1]
    accuracy = trained.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy >= teacher_accuracy - 0.01
    # the same student trained alone on all the data, as many epochs (37)
    keras.utils.set_random_seed(0)
    alone = _student()
    alone.fit(x, y, epochs=37, verbose=0)
    assert accuracy >= alone.evaluate(x_test, y_test, verbose=0)[1]
    # Compiled like the student: its loss, metrics and optimizer type, fresh.
    assert trained is not student and trained.loss == student.loss
    assert isinstance(trained.optimizer, type(student.optimizer))
    assert int(trained.optimizer.iterations) == 0
    assert trained.count_params() == student.count_params()


def test_soft_loss_is_zero_only_when_the_student_matches():
    teacher = np.array([[0.7, 0.2, 0.1]], "float32")
    same = float(distillation.soft_loss("classification", teacher, teacher, 4.0))
    other = np.array([[0.1, 0.2, 0.7]], "float32")
    different = float(distillation.soft_loss("classification", teacher, other, 4.0))
    assert same == pytest.approx(0.0, abs=1e-6) and different > 0.1
    binary = float(
        distillation.soft_loss("binary", np.array([[0.9]]), np.array([[0.2]]), 2.0)
    )
    assert binary > 0.0


def test_distill_binary_and_regression_students_train():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y_binary = (x[:, 0] > 0).astype("float32")
    y_value = x[:, :1] * 2.0
    for task, y in (("binary", y_binary), ("regression", y_value)):
        teacher = kdl.build_mlp((6,), 1, task=task, dense_units=(32,))
        teacher.fit(x, y, epochs=20, verbose=0)
        student = kdl.build_mlp((6,), 1, task=task, dense_units=(4,))
        trained = compression.distill(teacher, student, x, y, epochs=20, verbose=0)
        loss_before = student.evaluate(x, y, verbose=0)[0]
        assert trained.evaluate(x, y, verbose=0)[0] < loss_before, task


def _multi_output():
    inputs = keras.Input((64,))
    model = keras.Model(
        inputs, [keras.layers.Dense(10)(inputs), keras.layers.Dense(1)(inputs)]
    )
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    return model


@pytest.mark.parametrize(
    "student, kwargs, error, match",
    [
        (None, dict(temperature=0.0), ValueError, "'temperature' .* > 0"),
        (None, dict(alpha=1.5), ValueError, r"'alpha' .* <= 1"),
        (None, dict(alpha="half"), TypeError, "'alpha'"),
        (None, dict(validation_split=-0.1), ValueError, "'validation_split'"),
        ("wrong_shape", {}, ValueError, r"'student' .*output shape \(None, 10\)"),
        ("multi_output", {}, UnsupportedModelError, "one output"),
        ("keras3", {}, TypeError, r"'student' .*Keras 3"),
    ],
)
def test_distill_bad_arguments(digits_flat, student, kwargs, error, match):
    (x, y), _ = digits_flat
    teacher = kdl.build_mlp((64,), 10, dense_units=(8,))
    if student == "wrong_shape":
        student = kdl.build_mlp((64,), 3, dense_units=(4,))
        y = y % 3
    elif student == "multi_output":
        student = _multi_output()
    elif student == "keras3":
        import keras as keras3

        student = keras3.Sequential([keras3.Input((64,)), keras3.layers.Dense(10)])
    else:
        student = kdl.build_mlp((64,), 10, dense_units=(4,))
    with pytest.raises(error, match=match):
        compression.distill(teacher, student, x, y, verbose=0, **kwargs)


@pytest.mark.slow
def test_small_mlp_student_within_one_point_on_a_split_of_its_own():
    # issue 23: a (16,) student of a (256, 256) teacher, default budget; at
    # the student's own rate 1e-3 this split lost 3.9 points
    (x, y), (x_test, y_test) = kdl.datasets.digits(layout="flat", seed=7)
    kdl.set_seed(0)
    teacher = kdl.build_mlp((64,), 10, dense_units=(256, 256))
    teacher.fit(x, y, epochs=20, verbose=0)
    kdl.set_seed(0)
    student = kdl.build_mlp((64,), 10, dense_units=(16,))
    trained = compression.distill(teacher, student, x, y, verbose=0)
    teacher_accuracy = teacher.evaluate(x_test, y_test, verbose=0)[1]
    assert trained.evaluate(x_test, y_test, verbose=0)[1] >= teacher_accuracy - 0.01
