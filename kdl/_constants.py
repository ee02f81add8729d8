"""The names kdl uses in several places, defined once (issue 27).

A leaf module (no imports): the tasks a model's output can have, the
distribution strategies by name, the search algorithms, and the model formats
with their file suffixes.
"""

from __future__ import annotations

#: What an output predicts: softmax classes, one sigmoid, or real values.
TASKS = ("classification", "binary", "regression")

#: ``strategy=`` by name (kdl.distribute.strategy and every builder).
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")

#: ``algorithm=`` of kdl.tune (KerasTuner's oracles).
ALGORITHMS = ("bayesian", "random", "grid", "hyperband")

#: Model formats kdl.save and kdl.load know, and their suffixes (a folder, or a
#: path without a suffix, is a SavedModel).
FORMATS = ("keras", "h5", "savedmodel", "tflite")
KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
TFLITE_SUFFIXES = (".tflite",)
