"""Writes the notebooks in this folder from the cells below (outputs cleared).

Edit the cells here, then run ``python examples/notebooks/make_notebooks.py``
and commit both this script and the ``.ipynb`` files. Every notebook reads
``KDL_QUICK`` (``KDL_QUICK=1`` cuts epochs and trials so that
``tests/test_notebooks.py`` runs it in seconds; the numbers are then
meaningless) and writes under ``saved_models/`` in the folder it runs in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import os

import matplotlib.pyplot as plt
{numpy}
import kdl
from kdl import datasets

# KDL_QUICK=1 (set by the tests) cuts epochs and trials: a smoke run, not results.
QUICK = os.environ.get("KDL_QUICK", "0") not in ("", "0")


def pick(full, quick):
    return quick if QUICK else full"""


def setup(numpy: bool = True):
    """The first code cell: imports and the short-mode switch."""
    return code(SETUP.format(numpy="import numpy as np\n" if numpy else ""))


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


QUICK_START = [
    md("""
# 1. Quick start: data, model, training, history, saving, a layer graph

This notebook walks through kdl's everyday loop on scikit-learn's digits
(1,797 images of 8x8 pixels, shipped with scikit-learn: nothing is
downloaded): load the data, build a compiled CNN in one call, train it with
the standard callbacks in a run folder, plot the history, and save and reload
the model; at the end, a model with two inputs built with the functional
API, and its layer graph.
"""),
    setup(),
    md("""
## Load the data

`datasets.digits()` returns a stratified 80/20 split as
`((x_train, y_train), (x_test, y_test))`; images have shape (8, 8, 1) and
values from 0 to 1. Your own CSV files and image folders load the same way
with `kdl.datasets.load(path, ...)`.
"""),
    code("""
(x_train, y_train), (x_test, y_test) = datasets.digits(layout="image")
print(x_train.shape, y_train.shape, x_test.shape)

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, image, label in zip(axes, x_train, y_train):
    ax.imshow(image[..., 0], cmap="gray_r")
    ax.set_title(int(label))
    ax.axis("off")
"""),
    md("""
## Build

Every builder returns a **compiled** model: the task decides the head
(softmax for `"classification"`), the loss and the metrics.
"""),
    code("""
kdl.set_seed(0)  # Python, NumPy and TensorFlow seeds: the same run every time
model = kdl.build_cnn(x_train.shape[1:], 10, filters=(16, 32), dropout=0.1,
                      name="digits_cnn")
model.summary()
"""),
    md("""
## Train with the standard callbacks

`kdl.train` runs `fit` with `kdl.callbacks.standard(run_dir)`: early stopping
that restores the best weights, a checkpoint of the best model, a backup to
resume an interrupted run, a CSV log, TensorBoard logs and a stop on NaN. The
run folder also gets `run.json` (versions, seed, arguments, metrics) and a
history plot. `resume=False` moves an earlier run aside instead of
continuing it.
"""),
    code("""
[type(c).__name__ for c in kdl.callbacks.standard("saved_models/just-a-look")]
"""),
    code("""
history = kdl.train(model, x_train, y_train, validation_split=0.2,
                    epochs=pick(30, 2), patience=5, batch_size=32,
                    run_dir="saved_models/quick_start", resume=False,
                    tensorboard=False, seed=0, verbose=0)
print("run folder:", history.run_dir)
print(sorted(p.name for p in history.run_dir.iterdir()))
"""),
    md("## Plot the history"),
    code("""
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
for key in ("loss", "val_loss"):
    ax_loss.plot(history.history[key], label=key)
for key in ("accuracy", "val_accuracy"):
    ax_acc.plot(history.history[key], label=key)
ax_loss.set(xlabel="epoch", title="loss", yscale="log")
ax_acc.set(xlabel="epoch", title="accuracy")
ax_loss.legend()
ax_acc.legend()
plt.show()

test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(f"test accuracy: {test['accuracy']:.3f}")
"""),
    md("""
## Save and reload

`kdl.save` chooses the format from the path (`.keras`, `.h5`, a folder for a
SavedModel, `.tflite`) and writes atomically; `kdl.load` reads any of them
back, refusing files that hold Python code unless `safe_mode=False`. The
best checkpoint of the run is in the run folder as well.
"""),
    code("""
path = kdl.save(model, "saved_models/quick_start/digits_cnn.keras")
reloaded = kdl.load(path)
same = np.allclose(model.predict(x_test, verbose=0),
                   reloaded.predict(x_test, verbose=0), atol=1e-6)
print(path, "predicts the same after reloading:", same)
assert same

best = kdl.load(history.run_dir / "best.keras")
print("best checkpoint test accuracy:",
      round(best.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"], 3))
"""),
    md("""
## The layer graph: a model with two inputs (the functional API)

The builders make straight stacks of layers. `kdl.keras` is the Keras that
kdl uses (tf_keras), so its functional API builds any graph: here two
inputs, the pixels and two numbers computed from them (how much ink, how
much of it in the top half), a branch (a wide and a narrow Dense layer read
the pixels) and a merge (`Concatenate`) before the softmax.
`model.summary()` lists each layer's inputs in its "Connected to" column.
"""),
    code("""
keras = kdl.keras
flat_train = x_train.reshape(len(x_train), -1)
flat_test = x_test.reshape(len(x_test), -1)


def ink(images):  # two numbers per image: total ink, share of it in the top half
    total = images.sum(axis=(1, 2, 3))
    top = images[:, :4].sum(axis=(1, 2, 3))
    return np.stack([total / 64, top / np.maximum(total, 1e-6)], axis=1)


kdl.set_seed(0)
pixels = keras.Input((64,), name="pixels")
extra = keras.Input((2,), name="ink")
wide = keras.layers.Dense(32, activation="relu", name="wide")(pixels)
narrow = keras.layers.Dense(8, activation="relu", name="narrow")(pixels)
merged = keras.layers.Concatenate(name="merge")([wide, narrow, extra])
digit = keras.layers.Dense(10, activation="softmax", name="digit")(merged)
graph = keras.Model([pixels, extra], digit, name="branch_and_merge")
graph.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
graph.summary()
"""),
    md("""
## Drawing the graph

`keras.utils.plot_model` draws it as a picture when pydot and Graphviz are
installed (they are not kdl dependencies). Without them, the same graph can
be drawn as text from the model's public config: each entry of
`graph.get_config()["layers"]` names the layers it reads in
`"inbound_nodes"`. A layer's level is one more than the deepest layer it
reads, so each line below can only read lines above it.
"""),
    code("""
import shutil

try:
    import pydot  # noqa: F401

    has_graphviz = shutil.which("dot") is not None
except ImportError:
    has_graphviz = False

if has_graphviz:
    from IPython.display import Image, display

    keras.utils.plot_model(graph, "saved_models/quick_start/graph.png",
                           show_shapes=True)
    display(Image("saved_models/quick_start/graph.png"))
else:
    print("pydot or Graphviz not installed: the graph as text\\n")
    reads, level = {}, {}
    for entry in graph.get_config()["layers"]:
        name = entry["name"]
        reads[name] = [inbound[0] for node in entry["inbound_nodes"]
                       for inbound in node]
        level[name] = 1 + max((level[r] for r in reads[name]), default=-1)
    for depth in range(max(level.values()) + 1):
        row = []
        for name in (n for n in reads if level[n] == depth):
            layer = graph.get_layer(name)
            shape = tuple(layer.output.shape)[1:]
            source = f" <- {' + '.join(reads[name])}" if reads[name] else ""
            row.append(f"{name} [{type(layer).__name__} {shape}]{source}")
        print(f"level {depth}: " + "   |   ".join(row))
"""),
    md("""
A model with two inputs takes a list of two arrays, in the order of its
inputs; it trains, saves and reloads like any other.
"""),
    code("""
graph.fit([flat_train, ink(x_train)], y_train, validation_split=0.2,
          epochs=pick(30, 1), batch_size=32, verbose=0)
acc = graph.evaluate([flat_test, ink(x_test)], y_test, verbose=0)[1]
print(f"two-input model, test accuracy: {acc:.3f}")
path = kdl.save(graph, "saved_models/quick_start/branch_and_merge.keras")
again = kdl.load(path)
print("reloaded inputs:", [t.name for t in again.inputs])
"""),
    md("""
Next: `2_gru_to_device.ipynb` takes a model all the way to a TFLite file;
`examples/early_stopping.py` and `examples/train_and_resume.py` show the
callbacks and resuming in more detail.
"""),
]

GRU_TO_DEVICE = [
    md("""
# 2. From `build_gru` to a device

A sequence model's whole trip: train a GRU, compress it, export it to TFLite,
check the file in the LiteRT interpreter, and run it the way a device does,
with `kdl.lite`, which needs only NumPy and LiteRT (no TensorFlow).

The data: the digits read row by row, a sequence of 8 steps of 8 pixels.
"""),
    setup(),
    code("""
from kdl import compression, export

(x_train, y_train), (x_test, y_test) = datasets.digits(layout="sequence")
print("sequences:", x_train.shape, "-> 10 classes")
"""),
    md("## Train a GRU"),
    code("""
kdl.set_seed(0)
gru = kdl.build_gru(x_train.shape[1:], 10, units=(32,), name="digits_gru")
history = gru.fit(x_train, y_train, validation_split=0.1, epochs=pick(20, 1),
                  batch_size=32, verbose=0)
print(f"GRU test accuracy: {gru.evaluate(x_test, y_test, verbose=0)[1]:.3f}")
plt.plot(history.history["val_accuracy"])
plt.xlabel("epoch")
plt.ylabel("validation accuracy")
plt.show()
"""),
    md("""
## Compress

`compression.prune` zeroes the smallest weights of every kernel (the GRU's
recurrent kernel and the head; the input kernel reads only 8 features a
step, too few to lose most of them, and stays dense) while it fine-tunes a
copy; the original model is untouched. Zeros compress well, so the
gzipped file shrinks.
"""),
    code("""
pruned = compression.prune(gru, x_train, y_train, target_sparsity=0.7,
                           epochs=pick(4, 1), verbose=0)
print("sparsity:", compression.sparsity(pruned)["overall"])
print(f"pruned test accuracy: {pruned.evaluate(x_test, y_test, verbose=0)[1]:.3f}")
print("original untouched, sparsity:", compression.sparsity(gru)["overall"])
"""),
    md("""
## Export to TFLite, checked in LiteRT

`export.to_tflite` converts in a separate worker process (a converter crash
cannot take the notebook down), runs the file in the LiteRT interpreter and
writes it only if it agrees with the Keras model on `check_data`. Recurrent
models are converted with a fixed batch of one. Full int8 of a GRU crashes
the converter, so this uses dynamic-range quantization (int8 weights).
Class names go into the file's metadata.
"""),
    code("""
import gzip

labels = [str(i) for i in range(10)]
n = pick(len(x_test), 60)  # the short mode checks and measures fewer sequences
files = {
    "float": export.to_tflite(gru, "saved_models/gru_device/gru_float.tflite",
                              check_data=x_test[:n], labels=labels, verbose=0),
    "pruned + dynamic": export.to_tflite(
        pruned, "saved_models/gru_device/gru_pruned_dynamic.tflite",
        quantization="dynamic", check_data=x_test[:n], labels=labels, verbose=0),
}
rows = []
for name, path in files.items():
    metrics = export.evaluate_tflite(path, x_test[:n], y_test[:n],
                                     latency_samples=pick(100, 10))
    zipped = len(gzip.compress(path.read_bytes()))
    rows.append((name, metrics["accuracy"], path.stat().st_size, zipped,
                 metrics["latency_ms_median"]))
    print(f"{name:17s} accuracy {metrics['accuracy']:.3f}  "
          f"{path.stat().st_size:>7,} bytes  {zipped:>7,} gzipped  "
          f"{metrics['latency_ms_median']:.3f} ms per sequence")
"""),
    code("""
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar([r[0] for r in rows], [r[3] / 1000 for r in rows])
ax.set(ylabel="gzipped kB", title="GRU as TFLite")
plt.show()
"""),
    md("""
## Run it the way a device runs it

On the device there is no TensorFlow: `kdl.lite.load` reads the file with
LiteRT and NumPy only, and the file itself says what it expects and what its
outputs mean (metadata written at export). Here it runs in a fresh Python
process that never imports TensorFlow, one sequence at a time, as a sensor
loop would.
"""),
    code("""
import subprocess
import sys

np.save("saved_models/gru_device/samples.npy", x_test[:5])
device_program = '''
import sys, numpy as np
from kdl import lite
model = lite.load("saved_models/gru_device/gru_pruned_dynamic.tflite")
print("task:", model.metadata.get("task"))
print("quantization:", model.metadata.get("quantization"))
for sequence in np.load("saved_models/gru_device/samples.npy"):
    print("classified as", model.classify(sequence[None])[0])
print("TensorFlow imported:", "tensorflow" in sys.modules)
'''
run = subprocess.run([sys.executable, "-c", device_program],
                     capture_output=True, text=True)
print(run.stdout)
assert run.returncode == 0, run.stderr
print("true labels:", y_test[:5].tolist())
"""),
    md("""
More: `examples/prune_quantize.py` (pruning + full int8 for a CNN),
`examples/export_tflite.py` and `examples/compress_digits.py` (every
variant, side by side).
"""),
]

PRIVACY = [
    md("""
# 3. Differential privacy: a private model against a normal one

DP-SGD clips every example's gradient and adds Gaussian noise to each batch,
so the trained weights provably reveal little about any one example. The
guarantee is a number, epsilon (with a small delta): smaller is more private.
This notebook trains the same MLP normally and privately, reads the privacy
statement, runs a membership-inference audit on both, and plots what accuracy
each privacy budget buys.
"""),
    setup(numpy=False),
    code("""
from kdl import privacy

(x_train, y_train), (x_test, y_test) = datasets.digits(layout="flat")
BATCH, EPOCHS, DELTA = 64, pick(15, 1), 1e-5


def build():
    kdl.set_seed(0)
    return kdl.build_mlp((64,), 10, dense_units=(64,), optimizer="sgd",
                         learning_rate=0.5)
"""),
    md("## A normal model and a private one (epsilon = 8)"),
    code("""
plain = build()
plain.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH, verbose=0)

private = privacy.make_private(build(), l2_norm_clip=1.0, target_epsilon=8.0,
                               delta=DELTA, num_examples=len(x_train),
                               batch_size=BATCH, epochs=EPOCHS)
print("method:", private.privacy["method"],
      "| noise multiplier:", round(private.privacy["noise_multiplier"], 3))
private.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH, verbose=0)

for name, model in (("plain", plain), ("private", private)):
    acc = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    print(f"{name:8s} test accuracy {acc:.3f}")
"""),
    md("""
## Epsilon and the statement

`privacy.epsilon` is the accountant (RDP, Poisson-sampled Gaussian
mechanism); `privacy.statement` reads what the model's training actually did
and says it in numbers and in plain words.
"""),
    code("""
print("epsilon for this plan:", round(privacy.epsilon(
    num_examples=len(x_train), batch_size=BATCH, epochs=EPOCHS,
    noise_multiplier=private.privacy["noise_multiplier"], delta=DELTA), 3))
statement = privacy.statement(private)
print(statement.text)
# The statement belongs next to the model: privacy.json and privacy.txt.
kdl.save(private, "saved_models/private_digits/model.keras")
print(privacy.save_statement("saved_models/private_digits", private))
"""),
    md("""
## Membership-inference audit

An attacker who sees the model's outputs tries to tell training examples
from unseen ones (a loss threshold and a logistic regression). ROC AUC 0.5
and advantage 0 mean no better than a coin. The audit is an empirical lower
bound on leakage; epsilon is the proof.
"""),
    code("""
for name, model in (("plain", plain), ("private", private)):
    audit = privacy.audit(model, x_train, y_train, x_test, y_test,
                          max_examples=pick(2000, 300))
    print(f"{name:8s} attack AUC {audit.auc:.3f}  advantage {audit.advantage:.3f}")
"""),
    md("""
## The trade-off: accuracy against epsilon

The same model trained privately for several budgets; the dashed line is
the normal model.
"""),
    code("""
budgets = pick([0.5, 1.0, 2.0, 4.0, 8.0, 16.0], [1.0, 8.0])
accuracies = []
for eps in budgets:
    model = privacy.make_private(build(), l2_norm_clip=1.0, target_epsilon=eps,
                                 delta=DELTA, num_examples=len(x_train),
                                 batch_size=BATCH, epochs=EPOCHS)
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH, verbose=0)
    accuracies.append(model.evaluate(x_test, y_test, verbose=0)[1])
    print(f"epsilon {eps:5g}: test accuracy {accuracies[-1]:.3f}")

plain_acc = plain.evaluate(x_test, y_test, verbose=0)[1]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(budgets, accuracies, "o-", label="DP-SGD")
ax.axhline(plain_acc, color="gray", linestyle="--", label="no privacy")
ax.set(xscale="log", xlabel=f"epsilon (delta = {DELTA:g})",
       ylabel="test accuracy", title="what privacy costs")
ax.legend()
plt.show()
"""),
    md("""
More: `examples/private_digits.py` (run folders, the saved statement) and
`examples/differential_privacy.py` (epsilon curves).
"""),
]

SEARCH = [
    md("""
# 4. Hyperparameter search: grid, Bayesian and Hyperband on one problem

`kdl.tune` searches a builder's own arguments with KerasTuner's oracles. One
problem (an MLP on the digits), three algorithms:

- **grid** walks the combinations of a discrete space in a fixed order, each
  once: first the first value of every argument, then like an odometer, the
  last argument (`learning_rate`) changing fastest, then `dropout`, then
  `dense_units`. The space below has 3 x 2 x 2 = 12 combinations and the
  budget is 8 trials (2 in the short mode), so the grid visits 8 of them:
  the widths (16,) and (64,) with every dropout and rate, and never
  (128,). A grid is exhaustive only when the budget covers it
  (`max_trials=None` runs it all);
- **Bayesian** optimization fits a Gaussian process to the trials so far and
  picks the next point where it expects the best objective;
- **Hyperband** starts many trials with a few epochs and gives more epochs
  only to the best ones.
"""),
    setup(),
    code("""
import pandas as pd

(x_train, y_train), (x_test, y_test) = datasets.digits(layout="flat")
if QUICK:
    x_train, y_train = x_train[:400], y_train[:400]

space = {
    "dense_units": kdl.Choice([(16,), (64,), (128,)]),
    "dropout": kdl.Choice([0.0, 0.2]),
    "learning_rate": kdl.Choice([1e-3, 1e-2]),
}
common = dict(space=space, epochs=pick(12, 2), seed=0, verbose=0, resume=False)
"""),
    md("""
## Run the three searches

Grid and Bayesian get the same budget of trials; Hyperband decides its own
number from `epochs` and `factor`.
"""),
    code("""
budget = pick(8, 2)
results = {}
for algorithm in ("grid", "bayesian", "hyperband"):
    results[algorithm] = kdl.tune(
        kdl.build_mlp, x_train, y_train, algorithm=algorithm,
        max_trials=budget if algorithm != "hyperband" else None,
        factor=3, directory=f"saved_models/search/{algorithm}", **common)
    r = results[algorithm]
    print(f"{algorithm:9s} {len(r.trials)} trials, best val_loss "
          f"{r.best_score:.4f} with {r.best_params}")

combinations = 3 * 2 * 2
grid = results["grid"].trials
widths = grid["dense_units"].astype(str)
visited = set(zip(widths, grid["dropout"], grid["learning_rate"]))
print(f"grid: {len(visited)} of {combinations} combinations visited in "
      f"{budget} trials; widths tried: {sorted(set(widths))}")
"""),
    md("## The trials tables"),
    code("""
for algorithm, r in results.items():
    print(f"--- {algorithm}")
    shown = r.trials.drop(columns=[c for c in ("error",) if c in r.trials])
    print(shown.to_string(index=False))
"""),
    md("## The objective per trial, and the best so far"),
    code("""
fig, ax = plt.subplots(figsize=(7, 4))
for algorithm, r in results.items():
    losses = r.trials["val_loss"].to_numpy(dtype=float)
    trials = np.arange(1, len(losses) + 1)
    dots = ax.plot(trials, losses, "o", alpha=0.6, label=algorithm)[0]
    ax.plot(trials, np.fmin.accumulate(losses), color=dots.get_color())
ax.set(xlabel="trial", ylabel="validation loss", yscale="log",
       title="dots: each trial; lines: best so far")
ax.legend()
plt.show()
"""),
    md("## The best models on the test set"),
    code("""
summary = pd.DataFrame([
    {"algorithm": a, "trials": len(r.trials), "best val_loss": r.best_score,
     "test accuracy": r.best_model.evaluate(x_test, y_test, verbose=0)[1],
     "seconds": r.trials["seconds"].sum()}
    for a, r in results.items()])
summary
"""),
    md("""
Each search lives in its folder and resumes when run again
(`resume=True`, the default). More: `examples/search_grid_vs_bayes.py`,
`examples/tune_digits.py` (resume, distributed workers).
"""),
]

NOTEBOOKS = {
    "1_quick_start.ipynb": QUICK_START,
    "2_gru_to_device.ipynb": GRU_TO_DEVICE,
    "3_privacy.ipynb": PRIVACY,
    "4_search.ipynb": SEARCH,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(cells=cells)
        for i, cell in enumerate(notebook.cells):
            cell.id = f"cell-{i}"  # stable ids: regenerating gives no spurious diff
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        notebook.metadata["language_info"] = {"name": "python"}
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / name)
        print(HERE / name)
    # The notebooks' code cells follow the house format (make lint checks them).
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    subprocess.run(
        [ruff, "format", "--quiet", *map(str, HERE.glob("*.ipynb"))], check=True
    )


if __name__ == "__main__":
    main()
