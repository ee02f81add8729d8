"""kdl.tune under budgets: objectives and constraints measured on .tflite files."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kdl import Choice, Float, build_mlp, cli, export, tune

# A tiny model and one far over 8 KB in int8: the search sees both.
SPACE = {
    "dense_units": Choice([(8,), (128, 128)]),
    "learning_rate": Float(3e-3, 1e-2, log=True),
}
LIMIT_KB = 8.0


def _search(x, y, directory, build_fn=build_mlp, **kwargs):
    options = dict(
        space=SPACE,
        objectives=["accuracy", "tflite_kb"],
        constraints={"tflite_kb": LIMIT_KB},
        algorithm="random",
        max_trials=3,
        epochs=2,
        seed=0,
        directory=directory,
        verbose=0,
    )
    return tune(build_fn, x, y, **{**options, **kwargs})


def _dominated(point, others, objectives=("accuracy", "tflite_kb")) -> bool:
    a = point["figures"]
    for other in others:
        b = other["figures"]
        if b["accuracy"] >= a["accuracy"] and b["tflite_kb"] <= a["tflite_kb"]:
            if b["accuracy"] > a["accuracy"] or b["tflite_kb"] < a["tflite_kb"]:
                return True
    return False


@pytest.mark.slow
def test_a_search_under_a_size_budget_measures_every_trial_and_keeps_the_front(
    digits_flat, tmp_path
):
    (x, y), (x_test, y_test) = digits_flat
    result = _search(x[:700], y[:700], tmp_path / "search")

    table = result.trials
    assert list(table["trial"]) == [1, 2, 3]
    assert (table["status"] == "completed").all()
    # Infeasible trials are kept, with their figures, and marked.
    assert list(table["feasible"]) == list(table["tflite_kb"] <= LIMIT_KB)
    assert table["feasible"].any() and not table["feasible"].all()
    assert len(open(tmp_path / "search" / "trials.csv").read().splitlines()) == 4
    assert result.plot is not None and result.plot.is_file()

    assert result.front
    feasible = [r for r in result.records if r["feasible"]]
    for point in result.front:
        data = point["tflite"].read_bytes()
        assert len(gzip.compress(data, 9)) / 1000 == point["figures"]["tflite_kb"]
        assert point["figures"]["tflite_kb"] <= LIMIT_KB
        assert not _dominated(point, feasible)
        # The file is the int8 model the figures describe, and it works.
        found = export.evaluate_tflite(point["tflite"], x_test, y_test)
        assert found["accuracy"] > 0.3
    best = result.best(max_size_kb=LIMIT_KB)
    assert best["trial"] in [p["trial"] for p in result.front]
    assert best["figures"]["accuracy"] == max(
        p["figures"]["accuracy"] for p in result.front
    )
    assert result.best(max_size_kb=0.01) is None


class _Interrupting:
    """build_mlp that logs its arguments and stops the process on one call."""

    def __init__(self, log, stop_at=None):
        self.log, self.stop_at, self.calls = log, stop_at, 0
        self.__name__ = "build_mlp"

    def __call__(self, input_shape, num_outputs, *, dense_units, learning_rate):
        self.calls += 1
        with open(self.log, "a") as f:
            f.write(json.dumps([list(dense_units), learning_rate]) + "\n")
        if self.calls == self.stop_at:
            raise KeyboardInterrupt  # what a kill leaves: a trial in flight
        return build_mlp(
            input_shape,
            num_outputs,
            dense_units=dense_units,
            learning_rate=learning_rate,
        )


@pytest.mark.slow
def test_a_trial_in_flight_when_stopped_runs_again_on_resume(digits_flat, tmp_path):
    (x, y), _ = digits_flat
    x, y, log = x[:400], y[:400], tmp_path / "builds.log"
    directory = tmp_path / "search"
    with pytest.raises(KeyboardInterrupt):
        _search(x, y, directory, build_fn=_Interrupting(log, stop_at=2), epochs=1)
    builds = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(builds) == 2

    # max_time ends a search before a new trial starts: here, at once.
    stopped = _search(x, y, directory, build_fn=_Interrupting(log), max_time=1e-9)
    assert stopped.stopped == "max_time" and len(stopped.trials) == 1

    result = _search(x, y, directory, build_fn=_Interrupting(log), epochs=1)
    again = [json.loads(line) for line in log.read_text().splitlines()][2:]
    # The interrupted trial ran again with its settings, then one new trial.
    assert len(again) == 2 and again[0] == builds[1]
    assert len(result.trials) == 3 and (result.trials["status"] == "completed").all()
    numbers = list(result.trials["trial"])
    assert numbers == sorted(set(numbers))


def _tune_kwargs(**changes):
    return {
        "space": SPACE,
        "objectives": ["accuracy", "tflite_kb"],
        "verbose": 0,
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"objectives": "accuracy"}, "objectives"),
        ({"objectives": []}, "objectives"),
        ({"objectives": ["epsilon"]}, "objectives"),
        ({"constraints": {"tflite_kb": "small"}}, "constraints['tflite_kb']"),
        ({"max_time": "soon"}, "max_time"),
        ({"fixed": {"quantization": "int4"}}, "fixed['quantization']"),
        ({"space": {**SPACE, "prune_sparsity": Choice([0.5, 1.5])}}, "space"),
        ({"algorithm": "hyperband"}, "algorithm"),
        ({"distributed": True}, "distributed"),
        ({"objectives": None, "max_time": 10}, "max_time"),
    ],
)
def test_bad_budgets_are_refused_before_any_trial(
    digits_flat, tmp_path, changes, argument
):
    (x, y), _ = digits_flat
    with pytest.raises((ValueError, TypeError), match=r"parameter of kdl\.tune"):
        tune(build_mlp, x, y, directory=tmp_path / "s", **_tune_kwargs(**changes))
    with pytest.raises((ValueError, TypeError)) as err:
        tune(build_mlp, x, y, directory=tmp_path / "s", **_tune_kwargs(**changes))
    assert f"'{argument}" in str(err.value)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_kdl_tune_max_size_kb_saves_the_best_tflite(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    argv = ["tune", "digits", "--model", "mlp", "--max-size-kb", "20"]
    argv += ["--max-trials", "2", "--epochs", "3", "--seed", "0", "--quiet"]
    argv += ["--directory", str(tmp_path / "s"), "--out", str(tmp_path / "m.tflite")]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    text = out.getvalue()
    assert status == 0, err.getvalue()
    report = json.loads(text[text.index("{") :])
    assert report["figures"]["tflite_kb"] <= 20
    assert 0.5 <= report["test_accuracy"] <= 1
    saved = (tmp_path / "m.tflite").read_bytes()
    assert len(gzip.compress(saved, 9)) / 1000 == report["figures"]["tflite_kb"]


@pytest.mark.slow
def test_compression_settings_in_the_space_shrink_and_prune_the_trial(
    digits_flat, tmp_path
):
    (x, y), _ = digits_flat
    result = tune(
        build_mlp,
        x[:400],
        y[:400],
        space={
            "dense_units": Choice([(64,)]),
            "shrink": Choice([0.5]),
            "prune_sparsity": Choice([0.8]),
        },
        objectives=["accuracy", "params"],
        max_trials=1,
        epochs=1,
        seed=0,
        directory=tmp_path / "s",
        verbose=0,
    )
    (row,) = result.trials.to_dict("records")
    assert row["status"] == "completed", row["error"]
    # Half the 64 hidden units are gone: 64*32 + 32 + 32*10 + 10 parameters.
    assert row["params"] == 64 * 32 + 32 + 32 * 10 + 10
    # No size or latency named: the file stays float (its size shows it).
    assert row["tflite_raw_kb"] > row["params"] * 4 / 1000


_KILLED_SCRIPT = """
import json
from kdl import Choice, Float, build_mlp, datasets, tune

LOG = {log!r}

def build_mlp_logged(input_shape, num_outputs, *, dense_units, learning_rate):
    with open(LOG, "a") as f:
        f.write(json.dumps([list(dense_units), learning_rate]) + "\\n")
    return build_mlp(input_shape, num_outputs, dense_units=dense_units,
                     learning_rate=learning_rate)

def main():
    (x, y), _ = datasets.digits(layout="flat")
    return tune(build_mlp_logged, x[:400], y[:400], algorithm="random",
                max_trials=3, epochs=2, seed=0, directory={directory!r},
                objectives=["accuracy", "tflite_kb"], verbose=0,
                constraints={{"tflite_kb": 8.0}},
                space={{"dense_units": Choice([(8,), (128, 128)]),
                        "learning_rate": Float(3e-3, 1e-2, log=True)}})

if __name__ == "__main__":
    main()
"""


@pytest.mark.heavy
@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_with_every_trial_once(tmp_path):
    directory, log = tmp_path / "search", tmp_path / "builds.log"
    script = tmp_path / "search_script.py"
    script.write_text(
        textwrap.dedent(_KILLED_SCRIPT).format(log=str(log), directory=str(directory))
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        # The second trial has been built: it is in flight.
        while not log.exists() or len(log.read_text().splitlines()) < 2:
            assert process.poll() is None, "the search ended before it was killed"
            assert time.monotonic() < deadline, "no second trial in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    builds = [json.loads(line) for line in log.read_text().splitlines()]

    spec = importlib.util.spec_from_file_location("search_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main()

    again = [json.loads(line) for line in log.read_text().splitlines()][len(builds) :]
    assert again[0] == builds[-1]  # the killed trial, with its settings
    assert len(builds) - 1 + len(again) == 3  # every trial once, the killed twice
    table = result.trials
    assert len(table) == 3 and (table["status"] == "completed").all()
    for point in result.front:
        assert point["tflite"].is_file()


# === A private search states what every trial cost (issue 24, item 5) ===


def _private_mlp(learning_rate=1e-2):
    from kdl import privacy

    model = build_mlp((64,), 10, learning_rate=learning_rate)
    return privacy.make_private(model, noise_multiplier=1.5, l2_norm_clip=1.0)


def _independent_epsilon(noise, rate, steps, trials, delta=1e-5):
    """dp_accounting directly: ``trials`` runs of ``steps`` Poisson-sampled
    Gaussian steps composed."""
    import dp_accounting
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    event = dp_accounting.PoissonSampledDpEvent(
        rate, dp_accounting.GaussianDpEvent(noise)
    )
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, steps * trials))
    return accountant.get_epsilon(delta)


@pytest.mark.slow
def test_a_private_search_states_every_trials_cost_within_its_epsilon(
    digits_flat, tmp_path
):
    import numpy as np

    from kdl import lite

    (x, y), _ = digits_flat
    # Distinct rows only (the digits repeat a few): each row one example.
    _, keep = np.unique(np.c_[x, y], axis=0, return_index=True)
    x, y = x[np.sort(keep)], y[np.sort(keep)]
    n_train = int(np.floor(len(x) * 0.8))  # kdl.tune holds out 20%
    batch, steps = 64, -(-n_train // 64)  # one epoch
    rate = batch / n_train
    two = _independent_epsilon(1.5, rate, steps, 2)
    three = _independent_epsilon(1.5, rate, steps, 3)
    budget = (two + three) / 2  # room for two trials, not three
    found = tune(
        _private_mlp,
        x,
        y,
        space={"learning_rate": Float(3e-3, 3e-2, log=True)},
        objectives=["accuracy", "tflite_kb"],
        constraints={"epsilon": budget},
        algorithm="random",
        max_trials=5,
        epochs=1,
        batch_size=batch,
        seed=0,
        directory=tmp_path / "s",
        verbose=0,
    )
    assert len(found.records) == 2  # capped by the epsilon budget, not 5
    for record in found.records:
        file = lite.load(tmp_path / "s" / record["folder"] / "model.tflite")
        stated = file.metadata["privacy"]["epsilon"]
        # Each file states the whole search (the trials to come as planned),
        # never its own trial alone.
        assert stated == pytest.approx(two, rel=1e-6)
        assert stated > _independent_epsilon(1.5, rate, steps, 1) * 1.2
        assert stated <= budget
        assert "search of 2 trials" in file.metadata["privacy"]["text"]
    first = lite.load(tmp_path / "s" / found.records[0]["folder"] / "model.tflite")
    assert "1 of those trials had not run" in first.metadata["privacy"]["text"]


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"objectives": ["accuracy", "epsilon"]}, "constraints={'epsilon'"),
        (
            {
                "space": {
                    "learning_rate": Float(3e-3, 3e-2, log=True),
                    "quantization": Choice([None, "int8"]),
                }
            },
            "int8 calibrates",
        ),
        ({"build_fn": build_mlp}, "does not return a private model"),
    ],
)
def test_a_private_search_refuses_what_it_cannot_account(
    digits_flat, tmp_path, changes, says
):
    (x, y), _ = digits_flat
    options = dict(
        build_fn=_private_mlp,
        space={"learning_rate": Float(3e-3, 3e-2, log=True)},
        objectives=["accuracy", "tflite_kb"],
        constraints={"epsilon": 50.0},
        max_trials=2,
        epochs=1,
        directory=tmp_path / "s",
        verbose=0,
    )
    options.update(changes)
    build_fn = options.pop("build_fn")
    with pytest.raises(ValueError, match=r"kdl\.tune") as err:
        tune(build_fn, x, y, **options)
    assert says in str(err.value)


@pytest.mark.slow
def test_a_private_search_does_not_train_a_trial_noisier_plan_cannot_cover(
    digits_flat, tmp_path
):
    from kdl import privacy

    (x, y), _ = digits_flat
    noises = iter([1.5, 0.5, 0.5])  # the plan is the first trial's

    def builder(learning_rate=1e-2):
        model = build_mlp((64,), 10, learning_rate=learning_rate)
        return privacy.make_private(model, noise_multiplier=next(noises))

    found = tune(
        builder,
        x,
        y,
        space={"learning_rate": Float(3e-3, 3e-2, log=True)},
        objectives=["accuracy", "tflite_kb"],
        constraints={"epsilon": 100.0},
        algorithm="random",
        max_trials=2,
        max_consecutive_failed_trials=3,
        epochs=1,
        seed=0,
        directory=tmp_path / "s",
        verbose=0,
    )
    first, second = found.records
    assert first["status"] == "completed"
    assert second["status"] == "failed"
    assert "below the search's plan" in second["error"]
    assert second["privacy"]["sessions"][0]["noise_multiplier"] == 1.5  # as planned


@pytest.mark.slow
def test_a_resumed_private_search_keeps_its_plan(digits_flat, tmp_path):
    (x, y), _ = digits_flat
    options = dict(
        space={"learning_rate": Float(3e-3, 3e-2, log=True)},
        objectives=["accuracy", "tflite_kb"],
        algorithm="random",
        max_trials=1,
        epochs=1,
        batch_size=64,
        seed=0,
        directory=tmp_path / "s",
        verbose=0,
    )
    first = tune(_private_mlp, x, y, **options)
    assert len(first.records) == 1
    # More trials than the files already state: the search ends at the plan.
    again = tune(_private_mlp, x, y, **{**options, "max_trials": 3})
    assert len(again.records) == 1
    # Other epochs, batch size or data: refused before anything trains.
    for change in ({"epochs": 2}, {"batch_size": 16}):
        with pytest.raises(ValueError, match="same as when this private search"):
            tune(_private_mlp, x, y, **{**options, **change})
    with pytest.raises(ValueError, match="same as when this private search"):
        tune(_private_mlp, x[:-10], y[:-10], **options)
