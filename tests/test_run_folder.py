"""One process per run folder (issue 29): an OS advisory lock, not a file's existence.

Two kdl.train calls into one folder used to both fail and leave a history
with every epoch twice; a killed save left a ``.best.keras.kdl-tmp-*`` folder
behind; a read-only folder gave a raw PermissionError.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import kdl
from kdl import _run_folder as rf
from kdl.cli import main

REPO = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "PYTHONPATH": str(REPO)}

_HOLDER = """
import sys, time
from kdl._run_folder import FolderLock
lock = FolderLock("kdl.train").acquire(sys.argv[1])
print("HELD", flush=True)
time.sleep(600)
"""


def _start_holder(folder):
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_ENV,
    )
    assert proc.stdout.readline().strip() == "HELD"
    return proc


def test_a_second_lock_on_a_folder_is_refused_naming_the_holder(tmp_path):
    with rf.FolderLock("kdl.train").acquire(tmp_path / "run"):
        with pytest.raises(BlockingIOError) as err:
            rf.FolderLock("kdl.train").acquire(tmp_path / "run")
    message = str(err.value)
    assert "\n" not in message
    assert f"process {os.getpid()} is using it" in message
    assert repr(str(tmp_path / "run")) in message
    # Released (and its file removed) at the end of the with block.
    assert not (tmp_path / "run" / rf.LOCK_FILE).exists()
    with rf.FolderLock("kdl.train").acquire(tmp_path / "run"):
        pass


def test_a_holder_killed_with_sigkill_frees_the_folder(tmp_path):
    folder = tmp_path / "run"
    proc = _start_holder(folder)
    try:
        with pytest.raises(BlockingIOError, match=f"process {proc.pid} is using"):
            rf.FolderLock("kdl.train").acquire(folder)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # What a save killed halfway leaves (kdl._files.atomic_path's names).
    leftover = folder / ".best.keras.kdl-tmp-abc123"
    (leftover / "best.keras").mkdir(parents=True)
    stray = folder / ".run.json.kdl-tmp-x1"
    stray.write_text("{")
    (folder / "notes.txt").write_text("mine")
    with rf.FolderLock("kdl.train").acquire(folder):
        assert not leftover.exists() and not stray.exists()
        assert (folder / "notes.txt").read_text() == "mine"


@contextlib.contextmanager
def _read_only(folder: Path):
    """Makes ``folder`` unwritable, even for root (chattr +i), then restores it."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no folder is read-only")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i failed here: {done.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_run_folder_is_one_line_naming_it(tmp_path, capsys):
    folder = tmp_path / "locked"
    with _read_only(folder):
        with pytest.raises(PermissionError) as err:
            rf.FolderLock("kdl.train").acquire(folder)
        message = str(err.value)
        assert "\n" not in message
        assert message.startswith(
            f"kdl.train cannot write in the run folder {str(folder)!r}"
        )
        status = main(
            [
                "train",
                "digits",
                "--model",
                "mlp",
                "--epochs",
                "1",
                "--run-dir",
                str(folder),
            ]
        )
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "cannot write in the run folder" in lines[0] and str(folder) in lines[0]


_TRAIN = """
import json, sys, time
import kdl

class Slow(kdl.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("epoch", epoch, flush=True)
        time.sleep(0.3)

(x, y), (x_test, y_test) = kdl.datasets.digits(layout="flat")
model = kdl.build_mlp((64,), 10, dense_units=(16,))
history = kdl.train(model, x[:300], y[:300], validation_data=(x_test, y_test),
                    epochs=int(sys.argv[2]), run_dir=sys.argv[1],
                    early_stopping=False, tensorboard=False, callbacks=[Slow()],
                    verbose=0)
print("DONE", json.dumps(history.epoch), flush=True)
"""


def _csv_epochs(run_dir):
    lines = (run_dir / "history.csv").read_text().splitlines()
    return [int(line.split(",")[0]) for line in lines[1:]]


@pytest.mark.slow
def test_two_trainings_into_one_folder_the_second_is_refused(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN)
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, str(script), str(run_dir), "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_ENV,
    )
    try:
        assert first.stdout.readline().startswith("epoch 0")
        second = subprocess.run(
            [sys.executable, "-m", "kdl.cli", "train", "digits", "--model", "mlp",
             "--epochs", "1", "--run-dir", str(run_dir)],
            capture_output=True, text=True, env=_ENV, timeout=300,
        )  # fmt: skip
        assert second.returncode == 2
        # TensorFlow's own start-up lines aside, kdl says one line.
        err = [line for line in second.stderr.splitlines() if line.startswith("kdl")]
        assert len(err) == 1, second.stderr
        assert re.search(rf"process {first.pid} is using it", err[0])
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # The killed run resumes in this process; each epoch is recorded once.
    done = subprocess.run(
        [sys.executable, str(script), str(run_dir), "5"],
        capture_output=True, text=True, env=_ENV, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert _csv_epochs(run_dir) == sorted(set(_csv_epochs(run_dir)))
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_train_moves_a_finished_run_aside_and_keeps_the_lock(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    run_dir = tmp_path / "run"
    for _ in range(2):
        kdl.train(
            kdl.build_mlp((64,), 10, dense_units=(8,)),
            x[:100],
            y[:100],
            epochs=1,
            run_dir=run_dir,
            tensorboard=False,
            verbose=0,
        )
    old = [p for p in tmp_path.iterdir() if ".old-" in p.name]
    assert len(old) == 1 and (old[0] / "run.json").exists()
    assert not (old[0] / rf.LOCK_FILE).exists()
    assert rf.run_state(run_dir) == "finished"
    with rf.FolderLock("kdl.train").acquire(run_dir):  # released by train
        pass
