"""DP-SGD time over plain training time, side by side in one run (issue 16).

For an MLP, a CNN (``build_cnn``) and a GRU on the digit rows (``build_gru``),
batch 64, on the digits: seconds of one training epoch with ``fit`` (median
of repeats after a warm-up epoch that traces the step) for the plain model
and for ``make_private`` with ``method="auto"`` and each forced method. Where
a goal (MLP <= 1.3x, CNN <= 2x, GRU <= 4x) is missed, the per-layer cost of
the norm computation is profiled: the time of each layer's squared-norm
function on a batch, beside one plain training step.

Beside them, in the same turns, the ``method="auto"`` model as it was
before issue 30's ledger (its DP step alone under Keras' ``fit``): the
cost of recording what each step ran with (goal: within 10%).

Then the private accuracy on the digits at epsilon 8 (delta 1e-5) of the
CNN (goal 0.93) and the GRU on the rows (goal 0.85), with the documented
settings (``ACCURACY``).

Run: ``.venv/bin/python benchmarks/privacy_speed.py [--repeats 5]
[--no-accuracy] [--out /work/notes/bench-privacy.md]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import kdl
from kdl import datasets, privacy
from kdl.backend import keras, tf

GOALS = {"MLP": 1.3, "CNN": 2.0, "GRU": 4.0}
METHODS = ("auto", "fast", "vectorized", "optimizer")
BATCH = 64


def _models():
    """(name, build function, x, y) of the three models compared."""
    (x_img, y), _ = datasets.digits()
    x_img = x_img.astype("float32")
    x_flat = x_img.reshape(len(x_img), -1)
    x_rows = x_img[..., 0]
    return [
        ("MLP", lambda: kdl.build_mlp((64,), 10, optimizer="sgd"), x_flat, y),
        ("CNN", lambda: kdl.build_cnn((8, 8, 1), 10, optimizer="sgd"), x_img, y),
        ("GRU", lambda: kdl.build_gru((8, 8), 10, optimizer="sgd"), x_rows, y),
    ]


def _epoch(model, x, y) -> float:
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    return time.perf_counter() - start


def _interleaved(models: dict, x, y, repeats) -> dict:
    """Median seconds of one epoch of each model, the models timed in turn.

    Each model is warmed up (its step traced) first; then every repeat times
    one epoch of each model in turn, so a change of the machine's load (2
    cores shared) hits all of them alike.
    """
    for model in models.values():
        _epoch(model, x, y)
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(_epoch(model, x, y))
    return {name: statistics.median(t) for name, t in times.items()}


def before_ledger(model):
    """The same private model as before issue 30's recording: its DP step
    alone (no ledger in the step) under Keras' own ``fit`` (no session
    bookkeeping, no row counting before training)."""
    cls = type(model)

    class BeforeLedger(cls):
        def train_step(self, data):
            return self._dp_step(data)[0]

        def fit(self, *args, **kwargs):
            return keras.Model.fit(self, *args, **kwargs)

    model.__class__ = BeforeLedger
    return model


def _ledger_row(name, auto, before) -> str:
    ratio = auto / before
    verdict = "met" if ratio <= 1.1 else "MISSED"
    row = f"| {name} | {auto:.3f} | {before:.3f} | {ratio:.3f}x | {verdict} |"
    print(row, flush=True)
    return row


def _private(build, method):
    try:
        private = privacy.make_private(build(), noise_multiplier=1.0, method=method)
    except ValueError as err:  # a forced method this model cannot use
        reason = "recurrent layers" if "recurrent" in str(err) else "not supported"
        return None, f"refused: {reason}"
    return private, private.privacy["method"]


def _median_call(fn, repeats):
    fn()
    times = []
    for _ in range(repeats * 3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _norm_call(record, grad):
    """A traced call of one layer's squared-norm function on its gradient."""
    fn = record.sqr_norm_fn

    @tf.function
    def call():
        return fn(grad)

    return call


def _profile(build, x, y, repeats) -> list[str]:
    """Per-layer time of the squared-norm functions, beside a plain step."""
    from kdl.privacy import _fast_step

    model = privacy.make_private(build(), noise_multiplier=1.0, method="fast")
    xb, yb = tf.constant(x[:BATCH]), tf.constant(y[:BATCH])
    loss = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def plain_step():
        with tf.GradientTape() as tape:
            value = loss(yb, model(xb, training=True))
        return tape.gradient(value, model.trainable_variables)

    @tf.function
    def dp_step():
        return _fast_step.clipped_gradients(model, xb, yb, None, 1.0)[0]

    plain_ms = _median_call(plain_step, repeats) * 1e3
    dp_ms = _median_call(dp_step, repeats) * 1e3
    lines = [
        f"  one batch: plain forward+backward {plain_ms:.2f} ms, "
        f"kdl fast clipped gradients {dp_ms:.2f} ms"
    ]
    with tf.GradientTape(persistent=True) as tape:
        _, losses, records = _fast_step.forward(model, xb, yb, None, tape)
        total = tf.reduce_sum(losses)
    grads = tape.gradient(total, [r.base for r in records])
    for record, grad in zip(records, grads):
        fn = _norm_call(record, grad)
        name = getattr(record.outputs, "name", "") or "layer"
        ms = _median_call(fn, repeats) * 1e3
        shapes = [tuple(t.shape) for t in tf.nest.flatten(record.base)]
        lines.append(f"  norm of layer with base {shapes}: {ms:.2f} ms ({name})")
    return lines


def _header() -> list[str]:
    import tensorflow_privacy  # noqa: F401  (version below)

    versions = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "tensorflow_privacy": getattr(
            sys.modules.get("tensorflow_privacy"), "__version__", "?"
        ),
    }
    return [
        "# DP-SGD speed: DP time / plain time (kdl benchmarks/privacy_speed.py)",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU(s), "
        f"{platform.platform()}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in versions.items()),
        f"- data: digits (1,437 training examples), batch {BATCH}, one epoch "
        "per timing, median of repeats after a warm-up epoch, the variants "
        "timed in turn; noise 1.0",
        "",
    ]


def run(repeats: int) -> list[str]:
    sys.skip_tf_privacy_import = True
    kdl.set_seed(0, deterministic=False)
    lines = _header()
    lines += ["| model | plain s/epoch | " + " | ".join(METHODS) + " | goal |",
              "|---" * (len(METHODS) + 3) + "|"]  # fmt: skip
    profiles = []
    ledgers = ["", "## method auto with the ledger / before it (issue 30: <= 1.1x)",
               "", "| model | auto s/epoch | before ledger s/epoch | ratio | goal |",
               "|---|---|---|---|---|"]  # fmt: skip
    for name, build, x, y in _models():
        models, cells = {"plain": build()}, {}
        for method in METHODS:
            private, used = _private(build, method)
            if private is None:
                cells[method] = f"n/a ({used})"
            else:
                models[method], cells[method] = private, used
        if "auto" in models:  # the ledger's cost, timed in the same turns
            models["before ledger"] = before_ledger(_private(build, "auto")[0])
        seconds = _interleaved(models, x, y, repeats)
        plain = seconds.pop("plain")
        before = seconds.pop("before ledger", None)
        if before is not None:
            ledgers.append(_ledger_row(name, seconds["auto"], before))
        ratios = {method: sec / plain for method, sec in seconds.items()}
        for method, ratio in ratios.items():
            shown = f" ({cells[method]})" if method == "auto" else ""
            cells[method] = f"{ratio:.2f}x{shown}"
            print(name, method, cells[method], flush=True)
        met = ratios.get("auto", float("inf")) <= GOALS[name]
        verdict = f"<= {GOALS[name]}x: {'met' if met else 'MISSED'}"
        row = " | ".join(cells[m] for m in METHODS)
        lines.append(f"| {name} | {plain:.3f} | {row} | {verdict} |")
        if not met:
            profiles += [f"- {name} (goal missed), per-layer norm cost:"]
            profiles += _profile(build, x, y, repeats)
    return lines + ledgers + [""] + profiles


# Private accuracy at epsilon 8, delta 1e-5 (issue 16), with the settings the
# README documents: batch 64, clip 1.0, noise calibrated by make_private.
ACCURACY = {
    "CNN": (lambda: kdl.build_cnn((8, 8, 1), 10, filters=(16, 32), dense_units=(32,),
                                  activation="tanh", optimizer="adam",
                                  learning_rate=0.005), "image", 30, 0.93),
    "GRU": (lambda: kdl.build_gru((8, 8), 10, units=(32,), optimizer="adam",
                                  learning_rate=0.01), "sequence", 40, 0.85),
}  # fmt: skip


def accuracy() -> list[str]:
    """Test accuracy of the private CNN and GRU on the digits at epsilon 8."""
    lines = ["", "## Private accuracy on the digits at epsilon 8 (delta 1e-5)", "",
             "| model | settings | epochs | noise | epsilon | test accuracy | goal |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, (build, layout, epochs, goal) in ACCURACY.items():
        kdl.set_seed(0, deterministic=False)
        (x, y), (x_test, y_test) = datasets.digits(layout=layout)
        model = build()
        private = privacy.make_private(
            model, target_epsilon=8.0, delta=1e-5, num_examples=len(x),
            batch_size=BATCH, epochs=epochs,
        )  # fmt: skip
        start = time.perf_counter()
        private.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - start
        acc = private.evaluate(x_test, y_test, verbose=0)[1]
        eps = privacy.statement(private).epsilon
        settings = f"{model.optimizer.get_config()['name']} lr " + (
            f"{float(model.optimizer.learning_rate.numpy()):g}, "
            f"method {private.privacy['method']}, {seconds:.0f} s"
        )
        verdict = f">= {goal}: {'met' if acc >= goal else 'MISSED'}"
        lines.append(f"| {name} | {settings} | {epochs} | "
                     f"{private.privacy['noise_multiplier']:.3f} | {eps:.2f} | "
                     f"{acc:.3f} | {verdict} |")  # fmt: skip
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--no-accuracy",
        action="store_true",
        help="skip the private accuracy runs (about 2 minutes)",
    )
    args = parser.parse_args()
    lines = run(args.repeats)
    if not args.no_accuracy:
        lines += accuracy()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
