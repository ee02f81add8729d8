"""Shared fixtures: every test starts seeded, from a clear Keras session."""

from __future__ import annotations

import os

import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """The heavy tier first, then the other slow tests, then the rest, each
    tier in file order.

    Under ``-n 2`` a minute-long test started last keeps one worker busy
    while the other idles (the suite's tail); started early, the short tests
    fill the other worker meanwhile, and the run ends on short tests that
    split evenly between the workers. Tests never depend on their order (each
    starts seeded from a clear session; the module fixtures used by both
    slow and fast tests are cheap, and trained models are session fixtures).
    """
    items.sort(
        key=lambda item: (
            item.get_closest_marker("heavy") is None,
            item.get_closest_marker("slow") is None,
        )
    )


@pytest.fixture(autouse=True)
def _seeded_clean_session():
    # kdl.set_seed (and kdl.train(seed=...)) turn on op determinism for the
    # whole process; every test starts and ends with it off, so no test
    # depends on which tests ran before it in the same worker.
    from tensorflow.python.framework import config  # not in tf's public API

    from kdl.backend import keras

    config.disable_op_determinism()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    config.disable_op_determinism()
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def digits_image():
    from kdl import datasets

    return datasets.digits(layout="image")


@pytest.fixture(scope="session")
def digits_flat():
    from kdl import datasets

    return datasets.digits(layout="flat")


@pytest.fixture(scope="session")
def digits_sequence():
    from kdl import datasets

    return datasets.digits(layout="sequence")


# === Trained models shared across modules (trained once per test process) ===
# Tests only read them: export, compression and report copy a model before
# changing it. Each is seeded here, as its first user may run before any
# function-scoped seeding.


@pytest.fixture(scope="session")
def digits_mlp(digits_flat):
    """The digits MLP (one hidden layer of 32), trained 10 epochs from seed 0."""
    from kdl import build_mlp
    from kdl.backend import keras

    keras.utils.set_random_seed(0)
    (x, y), _ = digits_flat
    model = build_mlp((64,), 10, dense_units=(32,))
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def digits_mlp_int8(digits_mlp, digits_flat, tmp_path_factory):
    """digits_mlp as a full-int8 .tflite file: int8 inputs and outputs, labels."""
    from kdl import export

    (x, _), (x_test, _) = digits_flat
    return export.to_tflite(
        digits_mlp,
        tmp_path_factory.mktemp("digits_mlp") / "mlp_int8_io.tflite",
        quantization="int8",
        representative_data=x[:200],
        check_data=x_test,
        integer_io=True,
        labels=[str(i) for i in range(10)],
        verbose=0,
    )


@pytest.fixture(scope="session")
def digits_cnn(digits_image):
    """The default digits CNN with batch norm, trained 15 epochs from seed 0."""
    from kdl import build_cnn
    from kdl.backend import keras

    keras.utils.set_random_seed(0)
    (x, y), _ = digits_image
    model = build_cnn((8, 8, 1), 10, batch_norm=True)
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    return model
