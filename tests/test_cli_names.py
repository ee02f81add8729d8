"""Issue 31: the kdl command's flags are named like the Python arguments they set.

Reads every sub-command's flags from the parser (no model is built) and fails
when a flag is neither the name of a parameter of the public functions the
command calls nor listed below as the command's own. A flag renamed after its
Python argument keeps working for one release: it sets the same value and
leaves one line on stderr (stdout is the scripts' contract).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import re

import pytest

import kdl
from kdl import cli, compression, datasets, export, privacy, report, rl, tuning
from kdl.cli._parser import build_parser

# sub-command -> the public functions it calls (their parameters name flags)
CALLS = {
    "train": (kdl.train, datasets.load, kdl.build_mlp),
    "predict": (datasets.load,),
    "evaluate": (datasets.load,),
    "info": (),
    "tune": (kdl.tune, tuning.BudgetResult.best, datasets.load, kdl.build_mlp),
    "compress": (compression.prune, compression.cluster, datasets.load),
    "compress shrink": (compression.shrink, datasets.load),
    "compress distill": (compression.distill, datasets.load, kdl.build_mlp),
    "export": (export.to_tflite, datasets.load),
    "rl": (rl.DQNAgent.train, rl.DQNAgent.evaluate),
    "report": (report.compare, datasets.load),
    "privacy epsilon": (privacy.epsilon,),
    "privacy train": (privacy.make_private, kdl.train, datasets.load, kdl.build_mlp),
}

# flag -> why it has no Python argument of its name (every sub-command)
CLI_ONLY = {
    "--help": "argparse",
    "--quiet": "silences stderr too (logging, warnings), not only verbose=",
    "--debug": "shows the traceback of an error",
    "--out": "where the command saves its result (kdl.save / the file)",
    "--set": "any builder argument, KEY=VALUE",
    "--model": "which builder: build_mlp, build_cnn, ...",
    "--next": "forecast rows past the file (kdl predict)",
    "--all": "score every row, not the held-out part (kdl evaluate)",
    "--profile": "kdl info's LiteRT profile",
    "--prune": "chooses kdl.compression.prune; its value is target_sparsity",
    "--cluster": "chooses kdl.compression.cluster; its value is clusters",
    "--micro": "chooses kdl.export.to_micro",
    "--data": "the data file (x and y of the function)",
    "--checkpoint-every": "how often kdl rl saves into --out",
    "--tflite": "kdl rl also exports the policy to this file",
}

# (sub-command and its other arguments, old flag, new flag, a value or None)
RENAMED = [
    (["tune", "d.csv"], "--trials", "--max-trials", "3"),
    (["export", "m.keras", "o.tflite"], "--per-kernel", "--no-per-channel", None),
    (["compress shrink", "m.keras", "d.csv", "--out", "o.keras"],
     "--holdout", "--validation-split", "0.3"),
    (["compress distill", "m.keras", "d.csv", "--out", "o.keras"],
     "--holdout", "--validation-split", "0.3"),
    (["report", "m.keras", "--data", "d.csv"], "--out-dir", "--run-dir", "r"),
    (["privacy", "epsilon", "--batch-size", "8", "--epochs", "2",
      "--noise-multiplier", "1.1"], "--examples", "--num-examples", "100"),
    (["privacy", "epsilon", "--batch-size", "8", "--epochs", "2",
      "--num-examples", "100"], "--noise", "--noise-multiplier", "1.1"),
    (["privacy", "train", "d.csv"], "--epsilon", "--target-epsilon", "3"),
    (["privacy", "train", "d.csv", "--target-epsilon", "3"],
     "--clip", "--l2-norm-clip", "0.5"),
]  # fmt: skip


def _flags(parser) -> list[str]:
    """The documented long flags of one sub-command (hidden ones left out)."""
    return [
        flag
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
        if flag.startswith("--")
    ]


def _parse(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        args = build_parser().parse_args(argv)
    return vars(args), err.getvalue()


def test_every_sub_command_is_read():
    commands = {k for k in build_parser().commands if k != "privacy"}
    assert commands == set(CALLS)


@pytest.mark.parametrize("command", sorted(CALLS))
def test_every_flag_is_named_like_the_python_argument(command):
    params = {p for f in CALLS[command] for p in inspect.signature(f).parameters}
    wrong = []
    for flag in _flags(build_parser().commands[command]):
        name = flag[2:].replace("-", "_")
        if flag in CLI_ONLY or name in params or name.removeprefix("no_") in params:
            continue
        wrong.append(flag)
    assert wrong == []


def test_the_check_fails_on_a_new_flag_named_its_own_way():
    parser = argparse.ArgumentParser()
    parser.add_argument("--noise", type=float)
    parser.add_argument("--noise-multiplier", type=float)
    params = set(inspect.signature(privacy.epsilon).parameters)
    flags = [f for f in _flags(parser) if f not in CLI_ONLY]
    assert [f for f in flags if f[2:].replace("-", "_") not in params] == ["--noise"]


@pytest.mark.parametrize("base, old, new, value", RENAMED)
def test_an_old_flag_sets_what_its_new_name_sets(base, old, new, value):
    given = [] if value is None else [value]
    with_new, new_err = _parse([*base, new, *given])
    with_old, old_err = _parse([*base, old, *given])
    assert with_old == with_new
    assert new_err == ""
    assert old_err.count("\n") == 1
    assert f"{old} is deprecated" in old_err and f"use {new}" in old_err
    quiet, quiet_err = _parse([*base, old, *given, "--quiet"])
    assert quiet_err == "" and quiet["quiet"]
    command = " ".join(base[:2]) if base[0] == "privacy" else base[0]
    shown = build_parser().commands[command].format_help()
    assert re.search(rf"{new}(?![\w-])", shown)
    assert not re.search(rf"{old}(?![\w-])", shown)  # hidden from --help


@pytest.mark.parametrize("base, old, new, value", RENAMED[:1] + RENAMED[-1:])
def test_an_old_flag_and_its_new_name_together_are_refused(base, old, new, value):
    with pytest.raises(SystemExit) as exit_:
        _parse([*base, old, value, new, value])
    assert exit_.value.code == 2


def test_a_renamed_required_flag_is_still_required():
    with pytest.raises(SystemExit):
        _parse(["privacy", "epsilon", "--batch-size", "8", "--epochs", "2",
                "--noise-multiplier", "1.1"])  # fmt: skip


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def test_old_flags_give_the_same_result_on_stdout():
    plan = ["--batch-size", 100, "--epochs", 3]
    new = _run("privacy", "epsilon", "--num-examples", 1000, *plan,
               "--noise-multiplier", 1.1)  # fmt: skip
    old = _run("privacy", "epsilon", "--examples", 1000, *plan, "--noise", 1.1)
    assert new[0] == old[0] == 0
    assert old[1] == new[1]  # stdout: the same JSON, no note
    assert "--noise is deprecated" in old[2] and "deprecated" not in new[2]


def test_set_with_an_old_builder_argument_notes_the_new_one(tmp_path):
    from _helpers import write_wine

    write_wine(tmp_path / "wine.csv")
    status, out, err = _run(
        "train", tmp_path / "wine.csv", "--target", "label", "--epochs", 1,
        "--set", "hidden_units=(4,)", "--out", tmp_path / "w.keras",
    )  # fmt: skip
    assert status == 0, err
    assert "--set: build_mlp: 'hidden_units' is deprecated" in err
    assert "use 'dense_units'" in err and "deprecated" not in out
    assert kdl.load(tmp_path / "w.keras").get_layer("dense1").units == 4
