"""kdl.tune(distributed=True): KerasTuner's chief/worker mode on 127.0.0.1.

A chief and two workers run as subprocesses on a free loopback port, with
timeouts, and are always killed at the end, even when the test fails.
"""

from __future__ import annotations

import json
import os
import re
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
    "dense_units": Choice([(8,), (16,)]),
    "learning_rate": Choice([1e-3, 1e-2]),
}
# Seconds without a heartbeat before the chief gives a lost worker's trial to
# another worker (60 s by default; short here to keep the test fast).
WORKER_TIMEOUT = "6"

_SCRIPT = """
import json, os, sys, time
from kdl import Choice, build_mlp, datasets, tune

LOG, OUT, DIRECTORY, MODE = sys.argv[1:5]

def build(input_shape, num_outputs, *, dense_units=(8,), learning_rate=1e-3):
    tuner = os.environ["KERASTUNER_TUNER_ID"]
    with open(LOG, "a") as f:
        f.write(json.dumps([tuner, list(dense_units), learning_rate]) + "\\n")
    if MODE == "kill" and tuner == "tuner1":
        time.sleep(600)  # a long trial: the test kills this worker here
    model = build_mlp(input_shape, num_outputs, dense_units=dense_units,
                      learning_rate=learning_rate)
    if MODE == "fatal":  # a builder bug: an uncompiled model
        model = type(model)(model.inputs, model.outputs)
    return model

(x, y), _ = datasets.digits(layout="flat")
result = tune(build, x[:300], y[:300], algorithm="grid", epochs=1, seed=0,
              space={"dense_units": Choice([(8,), (16,)]),
                      "learning_rate": Choice([1e-3, 1e-2])},
              directory=DIRECTORY, distributed=True)
with open(OUT, "w") as f:
    json.dump(None if result is None else {
        "columns": list(result.trials.columns),
        "status": list(result.trials["status"]),
        "args": [[list(h), r] for h, r in zip(result.trials["dense_units"],
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


class _Cluster:
    """Chief and worker processes of one search; all killed on exit."""

    def __init__(self, tmp_path: Path, mode: str):
        self.tmp_path, self.mode = tmp_path, mode
        self.script = tmp_path / "search.py"
        self.script.write_text(textwrap.dedent(_SCRIPT))
        self.log, self.directory = tmp_path / "builds.log", tmp_path / "search"
        self.port = _free_port()
        self.processes = {}

    def start(self, tuner_id: str) -> None:
        env = dict(
            os.environ,
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(self.port),
            KDL_TUNE_WORKER_TIMEOUT=WORKER_TIMEOUT,
        )
        out = self.tmp_path / f"{tuner_id}.json"
        args = [str(self.script), str(self.log), str(out), str(self.directory)]
        with open(self.tmp_path / f"{tuner_id}.out", "w") as stdout:
            self.processes[tuner_id] = subprocess.Popen(
                [sys.executable, *args, self.mode],
                env=env,
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )

    def finish(self, name: str, *, timeout: float = 300) -> tuple[int, str]:
        """Waits for a process; returns its exit code and output."""
        self.processes[name].wait(timeout=timeout)
        output = (self.tmp_path / f"{name}.out").read_text()
        return self.processes[name].returncode, output

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.mark.heavy
@pytest.mark.slow
def test_chief_and_two_workers_finish_a_search_despite_a_killed_worker(
    tmp_path, digits_flat
):
    with _Cluster(tmp_path, "kill") as cluster:
        log, directory, processes = cluster.log, cluster.directory, cluster.processes
        cluster.start("chief")
        cluster.start("tuner1")
        # tuner1 gets a trial and hangs in it; then tuner2 joins, and tuner1
        # is killed mid-trial while tuner2 runs trials.
        _wait_for(
            lambda: any(e[0] == "tuner1" for e in _log(log)),
            processes,
            timeout=240,
            what="tuner1's first trial",
        )
        cluster.start("tuner2")
        _wait_for(
            lambda: any(e[0] == "tuner2" for e in _log(log)),
            processes,
            timeout=240,
            what="tuner2's first trial",
        )
        os.kill(processes["tuner1"].pid, signal.SIGKILL)
        for name in ("chief", "tuner2"):
            code, output = cluster.finish(name)
            assert code == 0, output[-3000:]
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
            local.trials["dense_units"], local.trials["learning_rate"], strict=True
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
    assert chief_builds == [[best["dense_units"], best["learning_rate"]]]
    # tuner1 was killed in its first trial; tuner2 ran every trial exactly
    # once, the lost one included.
    assert [tuner for tuner, *_ in builds].count("tuner1") == 1
    tuner2_runs = sorted(args for tuner, *args in builds if tuner == "tuner2")
    assert tuner2_runs == local_args
    assert lost in tuner2_runs


_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@pytest.mark.parametrize(
    ("env", "distributed", "match"),
    [
        (
            {},
            True,
            r"'distributed' parameter of kdl.tune must be False, or True with "
            r"KerasTuner's environment variables .*missing: KERASTUNER_TUNER_ID, "
            r"KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT",
        ),
        (
            {"KERASTUNER_TUNER_ID": "tuner1", "KERASTUNER_ORACLE_IP": "127.0.0.1"},
            False,
            r"missing: KERASTUNER_ORACLE_PORT\)",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "chief",
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": "http",
            },
            True,
            r"KERASTUNER_ORACLE_PORT a port number .* Got 'http'",
        ),
    ],
)
def test_distributed_needs_keras_tuners_environment(
    digits_flat, tmp_path, monkeypatch, env, distributed, match
):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (x, y), _ = digits_flat
    with pytest.raises(ValueError, match=match):
        tune(
            build_mlp,
            x,
            y,
            space=SPACE,
            directory=tmp_path / "s",
            distributed=distributed,
        )
    assert not (tmp_path / "s").exists()
    with pytest.raises(TypeError, match=r"'distributed' parameter of kdl.tune"):
        tune(build_mlp, x, y, space=SPACE, distributed="yes")


@pytest.mark.heavy
@pytest.mark.slow
def test_a_fatal_error_on_a_worker_stops_the_whole_search(tmp_path):
    with _Cluster(tmp_path, "fatal") as cluster:
        cluster.start("chief")
        cluster.start("tuner1")
        chief_code, chief_output = cluster.finish("chief")
        worker_code, worker_output = cluster.finish("tuner1", timeout=60)
    compiled = r"The 'build_fn' parameter of kdl.tune must return a compiled model"
    assert chief_code == 1 and worker_code == 1
    assert re.search(
        r"RuntimeError: tune stopped: a worker hit a fatal error: .*" + compiled,
        chief_output,
    )
    assert re.search(r"ValueError: " + compiled, worker_output)
    assert [tuner for tuner, *_ in _log(cluster.log)] == ["tuner1"]
