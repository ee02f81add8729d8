"""Multi-worker training: two processes on 127.0.0.1 train one model (issue 17).

Each test starts its workers with TF_CONFIG from kdl.distribute, on loopback
ports chosen free at run time, waits with a timeout and kills every process it
started in a ``finally``, even when an assertion fails.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kdl import distribute

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6

WORKER = r"""
import json, sys, time
import kdl
from kdl import distribute

workers, index, run_dir, pause = json.loads(sys.argv[1]), int(sys.argv[2]), \
    sys.argv[3], float(sys.argv[4])
if workers:
    distribute.use_cluster(workers, index)
    strategy = distribute.strategy("multi_worker")
else:
    strategy = distribute.strategy("default")
kdl.set_seed(0, deterministic=False)


class Pace(kdl.keras.callbacks.Callback):
    # Reports each epoch and leaves time to kill the process between two.
    def on_epoch_begin(self, epoch, logs=None):
        print("epoch", epoch, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(pause)


(x, y), (x_test, y_test) = kdl.datasets.digits(layout="flat")
model = distribute.build(kdl.build_mlp, (64,), 10, dense_units=(32,),
                         learning_rate=0.01,
                         strategy=strategy)
history = kdl.train(model, x[:512], y[:512],
                    validation_data=(x_test[:320], y_test[:320]),
                    epochs=EPOCHS_HERE, batch_size=64, shuffle=False, run_dir=run_dir,
                    early_stopping=False, tensorboard=False, callbacks=[Pace()],
                    verbose=0)
print("DONE", json.dumps({"epoch": history.epoch,
                          "loss": history.history["loss"],
                          "val_loss": history.history["val_loss"]}), flush=True)
""".replace("EPOCHS_HERE", str(EPOCHS))


def _env():
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    return env


def _start(workers, index, run_dir, pause, log):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            json.dumps(workers),
            str(index),
            str(run_dir),
            str(pause),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=_env(),
    )


def _cluster(run_dir, tmp_path, pause=0.0, tag="a"):
    workers = [f"127.0.0.1:{port}" for port in distribute.free_ports(2)]
    logs = [open(tmp_path / f"worker{i}-{tag}.log", "w") for i in range(2)]
    procs = [_start(workers, i, run_dir, pause, logs[i]) for i in range(2)]
    return procs, logs


def _stop(procs, logs):
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    for log in logs:
        log.close()


def _result(stdout: str) -> dict:
    done = [line for line in stdout.splitlines() if line.startswith("DONE ")]
    assert done, stdout[-2000:]
    return json.loads(done[-1][5:])


def _csv_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _wait(procs, logs, timeout=600) -> list[str]:
    outputs = []
    for proc, log in zip(procs, logs, strict=True):
        out, _ = proc.communicate(timeout=timeout)
        log.flush()
        assert proc.returncode == 0, Path(log.name).read_text()[-3000:]
        outputs.append(out)
    return outputs


@pytest.mark.heavy
@pytest.mark.slow
def test_two_workers_train_like_one_process_on_the_same_global_batch(tmp_path):
    procs, logs = _cluster(tmp_path / "run", tmp_path)
    try:
        chief_out, worker_out = _wait(procs, logs)
    finally:
        _stop(procs, logs)
    single = subprocess.run(
        [sys.executable, "-c", WORKER, "[]", "0", str(tmp_path / "single"), "0"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    chief, worker, alone = (
        _result(out) for out in (chief_out, worker_out, single.stdout)
    )
    assert chief["epoch"] == worker["epoch"] == alone["epoch"] == list(range(EPOCHS))
    # Same global batch, same initial weights: the same training, up to the
    # order of floating-point sums in the all-reduce.
    np.testing.assert_allclose(chief["loss"], alone["loss"], rtol=2e-3)
    np.testing.assert_allclose(chief["val_loss"], alone["val_loss"], rtol=2e-3)
    assert chief["loss"][-1] < chief["loss"][0] * 0.6  # it learned
    # Only the chief wrote the run folder; the worker's temporary files are gone.
    run_dir = tmp_path / "run"
    assert _csv_epochs(run_dir) == list(range(EPOCHS))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and len(record["sessions"]) == 1
    assert not list(run_dir.rglob("workertemp_*"))


@pytest.mark.heavy
@pytest.mark.slow
def test_a_killed_worker_and_its_chief_restart_from_the_backup(tmp_path):
    run_dir = tmp_path / "run"
    procs, logs = _cluster(run_dir, tmp_path, pause=1.5, tag="first")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if (run_dir / "history.csv").exists() and len(_csv_epochs(run_dir)) >= 2:
                break
            assert all(p.poll() is None for p in procs), "a worker ended early"
            time.sleep(0.1)
        else:
            pytest.fail("the cluster did not finish 2 epochs in time")
        procs[1].send_signal(signal.SIGKILL)  # the worker dies ...
        procs[1].wait(timeout=60)
        # ... and, as TensorFlow documents, the whole cluster restarts.
    finally:
        _stop(procs, logs)
    finished = _csv_epochs(run_dir)
    assert 2 <= len(finished) < EPOCHS

    procs, logs = _cluster(run_dir, tmp_path, tag="second")
    try:
        chief_out, worker_out = _wait(procs, logs)
    finally:
        _stop(procs, logs)
    started = [
        int(line.split()[1])
        for line in chief_out.splitlines()
        if line.startswith("epoch ")
    ]
    # It continued from the last backed-up epoch (the backup follows the CSV
    # row, so at most the epoch being written is run again) ...
    assert started[0] in (len(finished) - 1, len(finished))
    assert started == list(range(started[0], EPOCHS))
    # ... and every epoch is in the history once.
    assert _result(chief_out)["epoch"] == list(range(EPOCHS))
    assert _result(worker_out)["epoch"] == list(range(EPOCHS))
    assert _csv_epochs(run_dir) == list(range(EPOCHS))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["sessions"][-1]["initial_epoch"] == started[0]


@pytest.mark.parametrize(
    "workers, index, error, match",
    [
        ("127.0.0.1:1", 0, TypeError, "'workers' parameter"),
        ([], 0, ValueError, "'workers' parameter.*non-empty"),
        (["localhost"], 0, ValueError, "'workers' parameter.*'host:port'"),
        (["localhost:99999"], 0, ValueError, "'workers' parameter"),
        (["a:1", "b:2"], 2, ValueError, "'index' parameter.*0..1"),
        (["a:1", "b:2"], -1, ValueError, "'index' parameter"),
    ],
)
def test_cluster_spec_rejects_bad_arguments(workers, index, error, match):
    with pytest.raises(error, match=match):
        distribute.cluster_spec(workers, index)


def test_cluster_spec_is_what_tensorflow_reads(monkeypatch):
    from kdl.backend import tf

    workers = [f"127.0.0.1:{port}" for port in distribute.free_ports(2)]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    spec = distribute.use_cluster(workers, 1)
    assert json.loads(os.environ["TF_CONFIG"]) == spec
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert resolver.cluster_spec().as_dict() == {"worker": workers}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert len(set(workers)) == 2
