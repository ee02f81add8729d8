"""Every example script runs in its short mode and writes what it promises.

Each script runs as its own process, as a user would start it
(``python examples/<script>.py``), with ``KDL_QUICK=1`` (a few seconds of
work; the numbers it prints are then meaningless) in a temporary folder, so
its ``saved_models/`` output lands there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> files it promises under saved_models/ (in the folder it runs in)
PROMISES = {
    "gradient_descent": ["gradient_descent/loss_curves.png"],
    "l1_vs_l2": ["l1_vs_l2/weight_histograms.png"],
    "dropout_gap": ["dropout_gap/train_val_gap.png"],
    "augmentation": ["augmentation/augmented_samples.png", "augmentation/accuracy.png"],
    "cnn_pooling": ["cnn_pooling/kernels.png", "cnn_pooling/feature_maps.png"],
    "resnet_digits": [
        "resnet_digits/best.keras",
        "resnet_digits/history.csv",
        "resnet_digits/run.json",
    ],
    "rnn_vs_birnn": ["rnn_vs_birnn/accuracy.png"],
    "seq2seq_reverse": [
        "seq2seq_reverse/exact_match.png",
        "seq2seq_reverse/samples.txt",
    ],
    "gru_series": ["gru_series/forecast.png"],
    "multitask_digits": ["multitask_digits/losses.png"],
    "early_stopping": [
        "early_stopping/early_stopping.png",
        "early_stopping/fit/best.keras",
        "early_stopping/fit/history.csv",
        "early_stopping/train/best.keras",
        "early_stopping/train/run.json",
    ],
    "save_load_formats": [
        "save_load_formats/digits.keras",
        "save_load_formats/digits.h5",
        "save_load_formats/digits_savedmodel/saved_model.pb",
        "save_load_formats/digits.tflite",
        "save_load_formats/formats.md",
    ],
    "search_grid_vs_bayes": [
        "search_grid_vs_bayes/grid/trials.csv",
        "search_grid_vs_bayes/random/trials.csv",
        "search_grid_vs_bayes/bayesian/trials.csv",
        "search_grid_vs_bayes/objective_per_trial.png",
    ],
    "prune_quantize": [
        "prune_quantize/float.tflite",
        "prune_quantize/pruned_int8.tflite",
        "prune_quantize/sizes.png",
    ],
    "differential_privacy": [
        "differential_privacy/epsilon_curves.png",
        "differential_privacy/privacy.txt",
    ],
    "dqn_learning_curve": [
        "dqn_learning_curve/returns.png",
        "dqn_learning_curve/agent/agent.json",
        "dqn_learning_curve/policy.tflite",
    ],
    "own_csv_and_images": [
        "own_csv_and_images/wine.csv",
        "own_csv_and_images/digit_images/digit_0",
        "own_csv_and_images/wine.keras",
        "own_csv_and_images/digit_images.keras",
    ],
    # demo's run folder is named after the time (digits_cnn-<date>-<time>);
    # builders_tour prints its scores and writes no file.
    "demo": [],
    "builders_tour": [],
    "compress_digits": [],  # prints its tables; its files live in a temp folder
    "train_and_resume": [
        "example-digits-mlp/best.keras",
        "example-digits-mlp/history.csv",
        "example-digits-mlp/run.json",
    ],
    "tune_digits": [
        "tune_digits_bayesian/trials.csv",
        "tune_digits_bayesian/kdl_search.json",
    ],
    "export_tflite": [
        "export_tflite/cnn_tflite_float.tflite",
        "export_tflite/cnn_pruned_int8.tflite",
        "export_tflite/digits_cnn.md",
        "export_tflite/digits_cnn.csv",
        "export_tflite/digits_cnn.png",
        "export_tflite/digits_cnn_labelled.tflite",
        "export_tflite/digits_bigru_dynamic.tflite",
    ],
    "private_digits": [
        "private-digits/plain/best.keras",
        "private-digits/private/best.keras",
        "private-digits/private/privacy.json",
        "private-digits/private/privacy.txt",
    ],
    "dqn_cartpole": [
        "dqn_cartpole/agent/agent.json",
        "dqn_cartpole/agent/q_network.keras",
        "dqn_cartpole/policy.tflite",
    ],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_example(path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDL_QUICK="1", TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    env.pop("KDL_OUT", None)
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_script_is_covered():
    # A new example must be added to PROMISES (or, if another helper owns it
    # and it has no short mode yet, it is run by test_other_example_runs).
    mine = {
        p.stem for p in EXAMPLES.glob("*.py") if "from _quick import" in p.read_text()
    }
    assert mine == set(PROMISES)


def test_quick_flag_and_variable(tmp_path):
    code = "import _quick; print(_quick.QUICK, _quick.pick('full', 'quick'))"
    for args, env_value, expected in (
        (["--quick"], "0", "True quick"),
        ([], "1", "True quick"),
        ([], "0", "False full"),
    ):
        env = dict(os.environ, KDL_QUICK=env_value)
        result = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.argv[1:] = {args!r}; {code}"],
            cwd=EXAMPLES,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.stdout.strip() == expected, result.stderr


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(PROMISES))
def test_example_runs(script, tmp_path):
    result = run_example(EXAMPLES / f"{script}.py", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "short mode" in result.stdout
    missing = [
        f for f in PROMISES[script] if not (tmp_path / "saved_models" / f).exists()
    ]
    assert not missing, f"{script} did not write {missing}"
    for name in PROMISES[script]:
        path = tmp_path / "saved_models" / name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


OTHERS = sorted(
    p.stem
    for p in EXAMPLES.glob("*.py")
    if not p.stem.startswith("_") and p.stem not in PROMISES
)


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.parametrize("script", OTHERS)
def test_other_example_runs(script, tmp_path):
    """Examples kept by other modules' owners run here once they have a short mode."""
    source = (EXAMPLES / f"{script}.py").read_text()
    if "KDL_QUICK" not in source:
        pytest.skip(f"examples/{script}.py has no short mode (KDL_QUICK) yet")
    result = run_example(EXAMPLES / f"{script}.py", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
