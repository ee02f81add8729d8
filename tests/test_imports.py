"""``import kdl`` and its subpackages stay light: one fresh process checks all.

Four tests used to start four interpreters for this (test_builders,
test_tuning, test_privacy, test_compression); one process runs their code in
turn and asserts what each asserted.
"""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, kdl
kdl.build_mlp((4,), 2); kdl.datasets; kdl.augment
assert type(kdl.keras.Model).__module__.startswith('tf_keras') or \\
       kdl.keras.__name__ == 'tf_keras'
import kdl.tuning; kdl.Choice([1]); kdl.tune
import kdl.privacy
import kdl.compression
import kdl.export, kdl.report; kdl.export.to_tflite; kdl.report.standard_variants
heavy = ('keras_tuner', 'tensorflow_model_optimization', 'tensorflow_privacy')
print(sorted(m for m in heavy if m in sys.modules))
"""


def test_import_kdl_and_its_packages_imports_no_heavy_library():
    """keras_tuner, TF-MOT and TensorFlow Privacy load on first use only."""
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
