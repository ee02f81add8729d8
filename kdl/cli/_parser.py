"""The ``kdl`` command's arguments: one sub-command per public workflow step.

Only the standard library is imported here, so ``kdl --help`` and a mistake in
the arguments answer at once.
"""

from __future__ import annotations

import argparse
import sys

from kdl._constants import ALGORITHMS
from kdl.cli._args import (
    Parser,
    between,
    common_parent,
    data_parent,
    fraction,
    old_flag,
    positive,
)

__all__ = ["build_parser", "ARCHITECTURES", "QUANTIZATIONS"]

ARCHITECTURES = ("mlp", "cnn", "resnet", "rnn", "lstm", "gru")
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")

DESCRIPTION = """\
kdl: the deep-learning workflow on your own data, from the shell.

DATA is a built-in dataset (digits, sunspots) or a path that
kdl.datasets.load reads: a CSV file (with --target), a series CSV (with
--window), a folder of images with one subfolder per class, or an .npz file.
A trained model keeps what data it reads in MODEL.data.json beside it.

Exit status: 0 on success, 2 for a mistake in the arguments or the data
(one line on stderr; --debug shows the traceback).
"""


def _add(sub, name, help_text, example, parents):
    return sub.add_parser(
        name,
        help=help_text,
        parents=parents,
        description=f"{help_text}.\n\nExample:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _training_args(p, *, epochs=20, batch_size=32, epochs_help=None):
    p.add_argument(
        "--model",
        choices=ARCHITECTURES,
        default=None,
        help="architecture (default mlp)",
    )
    p.add_argument(
        "--epochs",
        type=positive(int),
        default=epochs,
        help=epochs_help or f"most epochs (default {epochs})",
    )
    p.add_argument(
        "--batch-size",
        type=positive(int),
        default=batch_size,
        help=f"(default {batch_size})",
    )
    p.add_argument(
        "--learning-rate",
        type=positive(float),
        default=None,
        help="default: the builder's",
    )
    p.add_argument(
        "--no-normalize",
        action="store_true",
        help="no Normalization layer adapted on the training inputs",
    )


def _train_options(p, *, patience=True):
    """kdl train's own options: early stopping and the builder's arguments."""
    if patience:
        p.add_argument(
            "--patience",
            type=positive(int),
            default=None,
            help="epochs without improvement before early stopping (default 5)",
        )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any argument of the model's builder, e.g. --set units=128 "
        "--set dropout=0.2 (VALUE read as a Python literal, else as text)",
    )


def _predict_command(sub, common, data):
    p = _add(
        sub,
        "predict",
        "predict every example of DATA and write a CSV: row, "
        "prediction (class name or value), class probabilities",
        "kdl predict wine.keras new_wines.csv --out predictions.csv",
        [common, data],
    )
    p.add_argument("model", help="a saved model or .tflite file")
    p.add_argument(
        "data",
        help="data read like the model's training data; the "
        "target column may be absent",
    )
    p.add_argument(
        "--out",
        help="the CSV file to write (without it: the CSV on stdout, the "
        "summary on stderr)",
    )
    p.add_argument(
        "--next",
        type=positive(int, most=100_000),
        metavar="N",
        help="series model: forecast the N rows after DATA's last row (CSV: "
        "row, step, prediction); past the model's horizon each forecast "
        "reads the earlier ones (a one-column series only)",
    )


def _model_commands(sub, common, data):
    p = _add(
        sub,
        "train",
        "build and train a model on DATA, evaluate it on the held-out part and save it",
        "kdl train wine.csv --target label --model mlp --epochs 30 --out wine.keras",
        [common, data],
    )
    p.add_argument("data", help="built-in dataset name or path")
    _training_args(
        p,
        epochs=None,
        epochs_help="most epochs (default 20; on a table of feature columns, "
        "enough epochs for 1,000 steps, at most 500, and a patience of at least "
        "100 steps)",
    )
    _train_options(p)
    p.add_argument("--run-dir", help="run folder (resumable, TensorBoard logs)")
    p.add_argument(
        "--out",
        help="where to save the model (.keras, .h5 or a "
        "folder); MODEL.data.json is written beside it",
    )

    _predict_command(sub, common, data)

    p = _add(
        sub,
        "evaluate",
        "evaluate a model on DATA: the held-out part when "
        "DATA is the model's training data, else all of it",
        "kdl evaluate wine.tflite wine.csv --target label",
        [common, data],
    )
    p.add_argument("model", help="a saved model or .tflite file")
    p.add_argument(
        "data",
        nargs="?",
        help="built-in dataset name or path (default: the data the model was "
        "trained on, recorded in MODEL.data.json, if it is still there)",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="every example of DATA, not only the held-out part",
    )

    p = _add(
        sub,
        "info",
        "versions of kdl and its stack, or what a model file holds",
        "kdl info wine.tflite",
        [common],
    )
    p.add_argument("model", nargs="?", help="a saved model or .tflite file")
    _profile_flag(p)


def _profile_flag(p) -> None:
    p.add_argument(
        "--profile",
        action="store_true",
        help=".tflite: ops delegated to XNNPACK, the slowest ops and their share "
        "of the time, latency with 1 and all threads (LiteRT)",
    )


def _workflow_commands(sub, common, data):
    p = _add(
        sub,
        "tune",
        "search the hyperparameters of an architecture on DATA",
        "kdl tune wine.csv --target label --model mlp --algorithm bayesian "
        "--max-trials 10",
        [common, data],
    )
    p.add_argument("data", help="built-in dataset name or path")
    _training_args(p, epochs=10)
    p.add_argument("--algorithm", choices=ALGORITHMS, default="bayesian")
    p.add_argument(
        "--max-trials",
        type=positive(int),
        default=10,
        help="most trials (default 10)",
    )
    old_flag(p, "--trials", ("--max-trials",), dest="max_trials", type=positive(int))
    p.add_argument("--directory", help="search folder (resumable)")
    p.add_argument("--out", help="where to save the best model")
    _budget_args(p)

    _compress_export_commands(sub, common, data)


def _budget_args(p) -> None:
    """kdl tune under budgets: the int8 .tflite file must fit these."""
    p.add_argument(
        "--max-size-kb",
        type=positive(float),
        help="search under a size budget: gzipped int8 .tflite at most this many KB",
    )
    p.add_argument(
        "--max-latency-ms",
        type=positive(float),
        help="search under a latency budget: LiteRT, one thread, median per example",
    )
    p.add_argument(
        "--max-time", help='end the search after this long, e.g. "90s", "10m", "1h"'
    )


def _compress_export_commands(sub, common, data):
    p = _add(
        sub,
        "compress",
        "prune or cluster a trained model, fine-tuning it on DATA",
        "kdl compress wine.keras wine.csv --target label "
        "--prune 0.8 --out wine_pruned.keras",
        [common, data],
    )
    p.add_argument("model")
    p.add_argument("data")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--prune",
        type=fraction,
        metavar="SPARSITY",
        help="fraction of weights set to zero, e.g. 0.8",
    )
    how.add_argument(
        "--cluster",
        type=positive(int),
        metavar="CLUSTERS",
        help="distinct values per kernel, e.g. 16",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs", type=int, default=None, help="fine-tuning epochs (default 2)"
    )
    budget.add_argument(
        "--steps",
        type=positive(int),
        default=None,
        help="the fine-tuning budget in optimizer steps instead of --epochs",
    )
    p.add_argument("--out", required=True)
    p.epilog = (
        "Also: kdl compress shrink MODEL DATA --fraction 0.5 --out F (removes "
        "units and filters) and kdl compress distill TEACHER DATA --out F "
        "(trains a smaller student); see their --help."
    )
    _shrink_distill_commands(sub, common, data)
    _export_command(sub, common, data)
    _rl_report_commands(sub, common, data)


def _export_command(sub, common, data) -> None:
    p = _add(
        sub,
        "export",
        "export a model to a .tflite file checked in LiteRT",
        "kdl export wine.keras wine.tflite --quantization int8 --data "
        "wine.csv --target label",
        [common, data],
    )
    p.add_argument("model")
    p.add_argument("out", help="the .tflite file to write")
    p.add_argument("--quantization", choices=QUANTIZATIONS, default="none")
    p.add_argument(
        "--per-channel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one weight scale per output channel (default); --no-per-channel: "
        "one per kernel (int8, dynamic), the smallest gzipped files for pruned "
        "or clustered models",
    )
    old_flag(p, "--per-kernel", ("--no-per-channel", "--per-channel"),
              dest="per_channel", value=False)  # fmt: skip
    p.add_argument(
        "--micro",
        action="store_true",
        help="OUT is a folder for TFLite Micro: model_data.h/.cc (int8 C array), "
        "model_ops.h (op resolver, arena size measured in TFLite Micro)",
    )
    p.add_argument(
        "--data",
        help="examples to calibrate int8 and to check the file (required for int8 "
        "unless the model was trained on a built-in dataset, which is then used)",
    )


def _fine_tuning(p) -> None:
    """The fine-tuning arguments of kdl.compression.shrink and distill."""
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs",
        type=positive(int),
        default=None,
        help="fine-tuning epochs (default: enough for --steps)",
    )
    budget.add_argument(
        "--steps",
        type=positive(int),
        default=None,
        help="the fine-tuning budget in optimizer steps, rounded up to whole "
        "epochs (default: 1,500 and at least 2 epochs, unless --epochs is given)",
    )
    p.add_argument("--batch-size", type=positive(int), default=32)
    p.add_argument(
        "--learning-rate",
        type=positive(float),
        default=None,
        help="the first learning rate (default: kdl.compression's)",
    )
    p.add_argument(
        "--validation-split",
        type=fraction,
        default=0.1,
        help="fraction of DATA's training part held out to keep the best "
        "epoch on (default 0.1; 0 keeps the last)",
    )
    old_flag(p, "--holdout", ("--validation-split",), dest="validation_split",
              type=fraction)  # fmt: skip
    p.add_argument("--out", required=True, help="where to save the new model")


def _shrink_distill_commands(sub, common, data) -> None:
    """kdl compress shrink / distill (main() turns 'compress shrink' into
    the one sub-command 'compress shrink')."""
    p = _add(
        sub,
        "compress shrink",
        "remove the least important units and filters of every layer "
        "(structured pruning: fewer parameters and multiply-adds), then "
        "fine-tune on DATA",
        "kdl compress shrink wine.keras wine.csv --fraction 0.5 --out wine_small.keras",
        [common, data],
    )
    p.add_argument("model", help="a saved Keras model (trained by kdl train)")
    p.add_argument("data", help="its training data (read with MODEL.data.json)")
    p.add_argument(
        "--fraction",
        type=between(0, 1, open_low=True, open_high=True),
        default=0.5,
        help="fraction of the units of each layer to remove (default 0.5)",
    )
    _fine_tuning(p)
    p = _add(
        sub,
        "compress distill",
        "train a small student to mimic TEACHER on DATA (knowledge "
        "distillation); the student is --student FILE, or a new --model "
        "(default mlp) built with --set KEY=VALUE like kdl train",
        "kdl compress distill wine.keras wine.csv --set dense_units='(16,)' "
        "--out wine_student.keras",
        [common, data],
    )
    p.add_argument("teacher", help="a saved, trained Keras model")
    p.add_argument("data", help="its training data (read with TEACHER.data.json)")
    p.add_argument("--student", help="a saved Keras model to train as the student")
    p.add_argument("--model", choices=ARCHITECTURES, default=None)
    _train_options(p, patience=False)
    p.add_argument(
        "--no-normalize",
        action="store_true",
        help="the new student without a Normalization layer",
    )
    p.add_argument(
        "--temperature",
        type=positive(float),
        default=2.0,
        help="softening of the outputs, 1 = plain (default 2.0)",
    )
    p.add_argument(
        "--alpha",
        type=between(0, 1, open_low=False, open_high=False),
        default=0.5,
        help="weight of the labels' loss; 0 learns from the teacher only (default 0.5)",
    )
    _fine_tuning(p)


def _rl_report_commands(sub, common, data):
    p = _add(
        sub,
        "rl",
        "train a deep Q-learning agent on a Gymnasium environment",
        "kdl rl CartPole-v1 --steps 30000 --out cartpole",
        [common],
    )
    p.add_argument(
        "env",
        help="a registered Gymnasium id: CartPole-v1, Acrobot-v1, MountainCar-v0 "
        "and LunarLander-v3 have tuned settings",
    )
    p.add_argument(
        "--steps",
        type=positive(int),
        help="total training steps (default: the RL zoo's budget for the "
        "environment, e.g. 100000 for Acrobot-v1, or 30000)",
    )
    p.add_argument(
        "--episodes",
        type=positive(int),
        default=10,
        help="evaluation episodes (default 10)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        help="folder to save the agent in; it is also the checkpoint: "
        "the same command run again resumes from it",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive(int),
        default=10000,
        help="steps between checkpoints into --out (default 10000)",
    )
    p.add_argument("--tflite", help="also export the policy to this .tflite file")

    p = _add(
        sub,
        "report",
        "compare models and .tflite files side by side on DATA's held-out part",
        "kdl report wine.keras wine.tflite "
        "wine_pruned.keras --data wine.csv --target label",
        [common, data],
    )
    p.add_argument("models", nargs="+")
    p.add_argument("--data", required=True)
    p.add_argument("--run-dir", help="folder for the table and plot")
    old_flag(p, "--out-dir", ("--run-dir",), dest="run_dir")


def _privacy_commands(sub, common, data):
    p = _add(
        sub,
        "privacy",
        "differential privacy: accounting and DP-SGD training",
        "kdl privacy epsilon --num-examples 60000 --batch-size 256 --epochs 15 "
        "--noise-multiplier 1.1",
        [common],
    )
    psub = p.add_subparsers(
        dest="privacy_command",
        required=True,
        parser_class=Parser,
        metavar="{epsilon,train}",
    )
    _privacy_epsilon(psub, common)
    _privacy_train(psub, common, data)
    return psub


def _privacy_epsilon(psub, common) -> None:
    e = _add(
        psub,
        "epsilon",
        "the epsilon of a DP-SGD training plan",
        "kdl privacy epsilon --num-examples 60000 --batch-size 256 --epochs 15 "
        "--noise-multiplier 1.1",
        [common],
    )
    e.add_argument("--num-examples", type=positive(int), help="(required)")
    old_flag(e, "--examples", ("--num-examples",), dest="num_examples",
              type=positive(int))  # fmt: skip
    e.add_argument("--batch-size", type=positive(int), required=True)
    e.add_argument("--epochs", type=positive(int), required=True)
    e.add_argument("--noise-multiplier", type=float, help="(required, >= 0)")
    old_flag(e, "--noise", ("--noise-multiplier",), dest="noise_multiplier",
              type=float)  # fmt: skip
    e.add_argument("--delta", type=positive(float), default=1e-5)
    e.required_flags = ("--num-examples", "--noise-multiplier")


def _privacy_train(psub, common, data) -> None:
    t = _add(
        psub,
        "train",
        "train a model with DP-SGD to a target epsilon (inputs are not "
        "normalized inside the model: statistics of the private data are not "
        "covered by DP; give inputs already on a small scale)",
        "kdl privacy train wine.csv --target label --target-epsilon 3 "
        "--out wine_dp.keras",
        [common, data],
    )
    t.add_argument("data")
    _training_args(
        t,
        epochs=None,
        batch_size=None,
        epochs_help="epochs (default: make_private's plan, 40; 15 when only "
        "--batch-size is given)",
    )
    t.add_argument("--target-epsilon", type=positive(float), help="(required)")
    old_flag(t, "--epsilon", ("--target-epsilon",), dest="target_epsilon",
              type=positive(float))  # fmt: skip
    t.add_argument("--delta", type=positive(float), default=None)
    t.add_argument(
        "--l2-norm-clip",
        type=positive(float),
        default=1.0,
        help="per-example gradient clip norm (default 1.0)",
    )
    old_flag(t, "--clip", ("--l2-norm-clip",), dest="l2_norm_clip",
              type=positive(float))  # fmt: skip
    t.required_flags = ("--target-epsilon",)
    t.add_argument("--out")


def build_parser() -> Parser:
    """The ``kdl`` argument parser with every sub-command."""
    from kdl import __version__

    p = Parser(
        prog="kdl",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"kdl {__version__} (Python {sys.version.split()[0]})",
    )
    sub = p.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="COMMAND"
    )
    common, data = common_parent(), data_parent()
    _model_commands(sub, common, data)
    _workflow_commands(sub, common, data)
    psub = _privacy_commands(sub, common, data)
    p.commands = dict(sub.choices)
    p.commands.update({f"privacy {k}": v for k, v in psub.choices.items()})
    return p
