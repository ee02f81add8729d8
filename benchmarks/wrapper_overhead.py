"""What kdl.train costs over the `fit` a careful user writes by hand.

Run from the repository root (a few minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/wrapper_overhead.py            # the table
    .venv/bin/python benchmarks/wrapper_overhead.py --breakdown  # each default
    .venv/bin/python benchmarks/wrapper_overhead.py --slow      # seconds/epoch

Side by side in one process, on the same data and model architecture (a fresh
model each run, built outside the timing), rounds interleaved so that the
machine's noise hits every variant alike; one warm-up round, then the median
of ``--repeats`` rounds (default 3). Both wall-clock time and the CPU time
of the process (all its threads) are reported: on a shared machine the
wall-clock time of one run swings by 2x with the other users' load, the CPU
time much less, so the ratios to compare are the CPU ones:

- bare ``model.fit``;
- ``fit`` with the callbacks a careful user writes by hand: EarlyStopping
  (best weights restored), ModelCheckpoint (best model, ``.keras``),
  BackupAndRestore and CSVLogger, in a fresh folder;
- ``kdl.train`` with its defaults (``verbose=0``, as the others).

``--breakdown`` adds ``kdl.train`` with one default switched off at a time.
``--hooks`` times the CPU spent inside each callback of one ``kdl.train``
(where the time goes). ``--slow`` uses a CNN whose epoch takes seconds, so
the overhead per epoch shows, not only the fixed cost of a run.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import kdl
from kdl import datasets
from kdl.backend import keras, tf

EPOCHS = 10
BATCH = 32
SPLIT = 0.2
THREADS = 0


def _model(slow: bool):
    if slow:
        # About a second or more per epoch on 2 cores: wide convolutions.
        return kdl.build_cnn((8, 8, 1), 10, filters=(128, 256), dense_units=(512,))
    return kdl.build_cnn((8, 8, 1), 10)


def _bare(model, x, y, folder: Path):
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_split=SPLIT, verbose=0)


def _by_hand(model, x, y, folder: Path):
    callbacks = [
        keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(
            str(folder / "best.keras"), save_best_only=True
        ),
        keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True),
        keras.callbacks.BackupAndRestore(str(folder / "backup")),
    ]
    model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_split=SPLIT,
        callbacks=callbacks,
        verbose=0,
    )


def _kdl(**switches):
    def run(model, x, y, folder: Path):
        kdl.train(
            model,
            x,
            y,
            epochs=EPOCHS,
            batch_size=BATCH,
            validation_split=SPLIT,
            run_dir=folder / "run",
            verbose=0,
            **switches,
        )

    return run


def _variants(breakdown: bool) -> dict:
    variants = {
        "bare `model.fit`": _bare,
        "`fit` + EarlyStopping, ModelCheckpoint, BackupAndRestore, CSVLogger": (
            _by_hand
        ),
        "`kdl.train` defaults": _kdl(),
    }
    if breakdown:
        variants.update(
            {
                "`kdl.train(tensorboard=False)`": _kdl(tensorboard=False),
                "`kdl.train(checkpoint=False)`": _kdl(checkpoint=False),
                "`kdl.train(early_stopping=False)`": _kdl(early_stopping=False),
                "`kdl.train(run_dir=False)`": lambda m, x, y, f: kdl.train(
                    m,
                    x,
                    y,
                    epochs=EPOCHS,
                    batch_size=BATCH,
                    validation_split=SPLIT,
                    run_dir=False,
                    verbose=0,
                ),
            }
        )
    return variants


def _time_once(run, slow, x, y) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads of this process) of one run."""
    keras.backend.clear_session()
    kdl.set_seed(0, deterministic=False)
    model = _model(slow)
    folder = Path(tempfile.mkdtemp(prefix="kdl-bench-"))
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        run(model, x, y, folder)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(*, slow=False, breakdown=False, repeats=3) -> dict:
    """{variant: [(wall s, CPU s) of each round]}, rounds after a warm-up.

    Rounds are interleaved, so the machine's load hits every variant alike,
    and each ratio is taken within a round (paired) before the median.
    """
    (x, y), _ = datasets.digits()
    variants = _variants(breakdown)
    times = {name: [] for name in variants}
    for round_ in range(repeats + 1):
        for name, run in variants.items():
            wall, cpu = _time_once(run, slow, x, y)
            if round_:  # round 0 is the warm-up
                times[name].append((wall, cpu))
            print(
                f"  round {round_} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU",
                file=sys.stderr,
            )
    return times


def _paired(values, reference, which: int) -> float:
    """Median over rounds of this round's value / the reference's."""
    return statistics.median(
        v[which] / r[which] for v, r in zip(values, reference, strict=True)
    )


_HOOKS = (
    "set_model",
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_test_end",
    "on_train_batch_begin",
    "on_train_batch_end",
)


def _timed(spent: collections.Counter, name: str, method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - start

    return wrapper


def hooks(slow: bool, runs: int = 3) -> str:
    """CPU ms inside each callback of one kdl.train, and outside ``fit``.

    ``model.fit`` is wrapped on the model instance, so each callback kdl.train
    passes gets its hooks timed; the last of ``runs`` runs is reported.
    """
    (x, y), _ = datasets.digits()
    for _ in range(runs):
        spent = collections.Counter()
        keras.backend.clear_session()
        kdl.set_seed(0, deterministic=False)
        model = _model(slow)
        fit = model.fit

        def timed_fit(*args, callbacks=(), _fit=fit, _spent=spent, **kwargs):
            for cb in callbacks:
                for hook in _HOOKS:
                    name = type(cb).__name__
                    setattr(cb, hook, _timed(_spent, name, getattr(cb, hook)))
            return _timed(_spent, "model.fit (all)", _fit)(
                *args, callbacks=callbacks, **kwargs
            )

        model.fit = timed_fit
        folder = Path(tempfile.mkdtemp(prefix="kdl-bench-"))
        try:
            start = time.process_time()
            _kdl()(model, x, y, folder)
            total = time.process_time() - start
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    spent["kdl.train outside fit"] = total - spent["model.fit (all)"]
    lines = [
        "| piece | CPU ms |",
        "|---|---|",
        f"| kdl.train total | {total * 1000:.0f} |",
    ]
    lines += [f"| {name} | {sec * 1000:.0f} |" for name, sec in spent.most_common()]
    return "\n".join(lines)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GB, Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, tf_keras "
        f"{keras.__version__}, NumPy {np.__version__}"
    )


def report(times: dict, *, slow: bool, repeats: int) -> str:
    names = list(times)
    bare, hand = times[names[0]], times[names[1]]
    model = "wide digits CNN (filters 128, 256)" if slow else "digits CNN"
    lines = [
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}  ",
        f"Machine: {machine()}  ",
        f"Model: {model}, {EPOCHS} epochs, batch {BATCH}, validation split "
        f"{SPLIT}, {repeats} rounds after a warm-up, TensorFlow threads "
        f"{THREADS or 'default'}, `verbose=0` everywhere. Ratios: median over "
        "rounds of the ratio within a round.",
        "",
        "| run | wall s | CPU s | CPU s/epoch | / bare fit (CPU) "
        "| / hand-written (CPU) | / hand-written (wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        lines.append(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / EPOCHS:.3f} "
            f"| {_paired(values, bare, 1):.2f}x | {_paired(values, hand, 1):.2f}x "
            f"| {_paired(values, hand, 0):.2f}x |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    global THREADS, EPOCHS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true")
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--hooks", action="store_true", help="CPU time inside each callback"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="TensorFlow intra- and inter-op threads (0: TensorFlow's default)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        # Idle TensorFlow threads spin; on a shared machine that spinning is
        # most of the noise in CPU time. One thread each keeps runs comparable.
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    THREADS, EPOCHS = args.threads, args.epochs
    if args.hooks:
        print(hooks(args.slow))
        return
    times = measure(slow=args.slow, breakdown=args.breakdown, repeats=args.repeats)
    print(report(times, slow=args.slow, repeats=args.repeats))


if __name__ == "__main__":
    main()
