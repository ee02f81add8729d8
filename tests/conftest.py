"""Shared fixtures: every test starts seeded, from a clear Keras session."""

from __future__ import annotations

import os

import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """The heavy tier first, the rest in file order.

    Under ``-n 2`` a multi-minute test started last keeps one worker busy
    while the other idles (the suite's tail); started first, the short tests
    fill the other worker meanwhile. Tests never depend on their order (each
    starts seeded from a clear session).
    """
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


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
