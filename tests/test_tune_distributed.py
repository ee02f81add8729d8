"""kdl.tune(distributed=True): KerasTuner's chief/worker mode on 127.0.0.1.

A chief and two workers run as subprocesses on a free loopback port, with
timeouts, and are always killed at the end, even when the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kdl import Choice, build_mlp, tune

SPACE = {
    "hidden_units": Choice([(8,), (16,)]),
    "learning_rate": Choice([1e-3, 1e-2]),
}
# Seconds without a heartbeat before the chief gives a lost worker's trial to
# another worker (60 s by default; short here to keep the test fast).
WORKER_TIMEOUT = "6"

_SCRIPT = """
import json, os, sys, time
from kdl import Choice, build_mlp, datasets, tune

LOG, OUT, DIRECTORY = sys.argv[1:4]

def build(input_shape, num_outputs, *, hidden_units=(8,), learning_rate=1e-3):
    tuner = os.environ["KERASTUNER_TUNER_ID"]
    with open(LOG, "a") as f:
        f.write(json.dumps([tuner, list(hidden_units), learning_rate]) + "\\n")
    if tuner == "tuner1":
        time.sleep(600)  # a long trial: the test kills this worker here
    return build_mlp(input_shape, num_outputs, hidden_units=hidden_units,
                     learning_rate=learning_rate)

(x, y), _ = datasets.digits(layout="flat")
result = tune(build, x[:300], y[:300], algorithm="grid", epochs=1, seed=0,
              space={"hidden_units": Choice([(8,), (16,)]),
                      "learning_rate": Choice([1e-3, 1e-2])},
              directory=DIRECTORY, distributed=True)
with open(OUT, "w") as f:
    json.dump(None if result is None else {
        "columns": list(result.trials.columns),
        "status": list(result.trials["status"]),
        "args": [[list(h), r] for h, r in zip(result.trials["hidden_units"],
                                              result.trials["learning_rate"])],
        "best_params": {k: list(v) if isinstance(v, tuple) else v
                        for k, v in result.best_params.items()},
        "best_score": result.best_score,
    }, f)
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _wait_for(condition, processes, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for name, process in processes.items():
            assert process.poll() is None or name == "tuner1", (
                f"{name} ended (code {process.returncode}) before {what}"
            )
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_chief_and_two_workers_finish_a_search_despite_a_killed_worker(
    tmp_path, digits_flat
):
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    log, directory = tmp_path / "builds.log", tmp_path / "search"
    port = _free_port()
    processes = {}

    def start(tuner_id: str) -> None:
        env = dict(
            os.environ,
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
            KDL_TUNE_WORKER_TIMEOUT=WORKER_TIMEOUT,
        )
        out = tmp_path / f"{tuner_id}.json"
        with open(tmp_path / f"{tuner_id}.out", "w") as stdout:
            processes[tuner_id] = subprocess.Popen(
                [sys.executable, str(script), str(log), str(out), str(directory)],
                env=env,
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )

    try:
        start("chief")
        start("tuner1")
        # tuner1 gets a trial and hangs in it; then tuner2 joins, and tuner1
        # is killed mid-trial while tuner2 runs trials.
        _wait_for(
            lambda: any(e[0] == "tuner1" for e in _log(log)),
            processes,
            timeout=240,
            what="tuner1's first trial",
        )
        start("tuner2")
        _wait_for(
            lambda: any(e[0] == "tuner2" for e in _log(log)),
            processes,
            timeout=240,
            what="tuner2's first trial",
        )
        os.kill(processes["tuner1"].pid, signal.SIGKILL)
        for name in ("chief", "tuner2"):
            processes[name].wait(timeout=300)
            output = (tmp_path / f"{name}.out").read_text()
            assert processes[name].returncode == 0, output[-3000:]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
    assert processes["tuner1"].returncode == -signal.SIGKILL

    chief = json.loads((tmp_path / "chief.json").read_text())
    assert json.loads((tmp_path / "tuner2.json").read_text()) is None
    builds = _log(log)
    lost = next(args for tuner, *args in builds if tuner == "tuner1")

    # The same search run locally, for comparison.
    local = tune(
        build_mlp,
        digits_flat[0][0][:300],
        digits_flat[0][1][:300],
        space=SPACE,
        algorithm="grid",
        epochs=1,
        seed=0,
        directory=tmp_path / "local",
        verbose=0,
    )
    local_args = sorted(
        [list(h), r]
        for h, r in zip(
            local.trials["hidden_units"], local.trials["learning_rate"], strict=True
        )
    )

    # Every trial completed, the union equals the local search's trials, and
    # the table has the local table's columns.
    assert len(local.trials) == 4
    assert chief["status"] == ["completed"] * len(local.trials)
    assert sorted(chief["args"]) == local_args
    assert chief["columns"] == list(local.trials.columns)
    assert (directory / "trials.csv").read_text().count("completed") == 4
    # The chief ran no trial: it built one model only, the best one, to load
    # its weights.
    best = chief["best_params"]
    chief_builds = [args for tuner, *args in builds if tuner == "chief"]
    assert chief_builds == [[best["hidden_units"], best["learning_rate"]]]
    # tuner1 was killed in its first trial; tuner2 ran every trial exactly
    # once, the lost one included.
    assert [tuner for tuner, *_ in builds].count("tuner1") == 1
    tuner2_runs = sorted(args for tuner, *args in builds if tuner == "tuner2")
    assert tuner2_runs == local_args
    assert lost in tuner2_runs
