"""kdl: the whole deep-learning workflow on TensorFlow in a few well-named calls.

Everything is imported lazily: ``import kdl`` is quick and never imports
keras_tuner, tensorflow_model_optimization or tensorflow_privacy; each heavy
submodule loads on first use of one of its names.

Example:
    >>> from kdl import build_mlp, datasets
    >>> (x_train, y_train), (x_test, y_test) = datasets.digits(layout="flat")
    >>> model = build_mlp(x_train.shape[1:], 10)
"""

from __future__ import annotations

import importlib
import os

# TensorFlow's C++ log level, set at `import kdl` so that a later
# `import tensorflow` of the user's is quiet too (kdl.backend says why 3; the
# marker tells it the level is kdl's choice, not the user's).
if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["KDL_CHOSE_TF_LOG_LEVEL"] = "1"

__version__ = "0.1.0"

# public name -> module that defines it
_NAMES = {
    "keras": "kdl.backend",
    "UnsupportedModelError": "kdl.errors",
    "build_mlp": "kdl.models.mlp",
    "build_cnn": "kdl.models.cnn",
    "build_resnet": "kdl.models.resnet",
    "build_rnn": "kdl.models.rnn",
    "build_lstm": "kdl.models.rnn",
    "build_gru": "kdl.models.rnn",
    "build_seq2seq": "kdl.models.seq2seq",
    "greedy_decode": "kdl.models.seq2seq",
    "build_multitask": "kdl.models.multitask",
    "train": "kdl.training",
    "set_seed": "kdl.training",
    "save": "kdl.io",
    "load": "kdl.io",
    "tune": "kdl.tuning",
    "Int": "kdl.tuning",
    "Float": "kdl.tuning",
    "Choice": "kdl.tuning",
    "Boolean": "kdl.tuning",
}

_SUBMODULES = (
    "augment",
    "backend",
    "baselines",
    "callbacks",
    "compression",
    "datasets",
    "distribute",
    "errors",
    "export",
    "io",
    "lite",
    "models",
    "privacy",
    "report",
    "rl",
    "training",
    "tuning",
)

__all__ = sorted(_NAMES) + list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kdl.{name}")
    else:
        raise AttributeError(f"module 'kdl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
