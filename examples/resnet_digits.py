"""ResNet: do residual blocks let a deeper network train as easily as a shallow one?

``kdl.build_resnet`` stacks residual blocks (two convolutions plus a shortcut
that adds the block's input to its output) in stages. Part 1 tests the claim:
a shallow plain CNN (one block per stage), a deep plain CNN and a deep ResNet
of the same depth and width (the plain ones are the same blocks without the
shortcut), each trained the same way (Adam, batch normalization, same epochs)
from 3 seeds. It prints mean ± standard deviation of the training loss after
the last epoch and of the test accuracy, and says from these numbers whether
the deep plain network trained worse than the shallow one and whether the
shortcuts closed that gap. Part 2 trains the ResNet with ``kdl.train`` (early
stopping, best checkpoint, history plot in the run folder), prints its layer
count, weights and test accuracy, and reloads the best checkpoint.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/resnet_digits.py

Writes saved_models/resnet_digits/ (best.keras, history.csv, history.png,
run.json).
"""

from __future__ import annotations

from _quick import banner, beyond_spread, mean_spread, out_dir, pick, seeds, show

import kdl
from kdl import datasets

FILTERS = (16, 32)
SHALLOW, DEEP = (1, 1), pick((8, 8), (1, 2))  # blocks per stage


def plain_cnn(stages, *, name):
    """The ResNet's layers without its shortcuts: stem, 2 convolutions a block."""
    layers = kdl.keras.layers
    inputs = layers.Input((8, 8, 1))

    def conv(x, filters, strides, layer):
        x = layers.Conv2D(
            filters, 3, strides=strides, padding="same", use_bias=False, name=layer
        )(x)
        x = layers.BatchNormalization(name=f"{layer}_bn")(x)
        return layers.Activation("relu", name=f"{layer}_act")(x)

    x = conv(inputs, FILTERS[0], 1, "stem")
    for s, (blocks, filters) in enumerate(zip(stages, FILTERS)):
        for b in range(blocks):
            strides = 2 if s > 0 and b == 0 else 1  # as in the ResNet
            x = conv(x, filters, strides, f"stage{s + 1}_block{b + 1}_conv1")
            x = conv(x, filters, 1, f"stage{s + 1}_block{b + 1}_conv2")
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    model = kdl.keras.Model(inputs, outputs, name=name)
    model.compile(
        optimizer=kdl.keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def resnet(stages, *, name="resnet"):
    return kdl.build_resnet((8, 8, 1), 10, stages=stages, filters=FILTERS, name=name)


def convolutions(model) -> int:
    return sum(isinstance(layer, kdl.keras.layers.Conv2D) for layer in model.layers)


def compare(data, epochs) -> None:
    """Part 1: shallow plain, deep plain and deep residual, from several seeds."""
    x, y, x_test, y_test = data
    variants = {
        "shallow plain": lambda: plain_cnn(SHALLOW, name="shallow_plain"),
        "deep plain": lambda: plain_cnn(DEEP, name="deep_plain"),
        "deep residual": lambda: resnet(DEEP, name="deep_resnet"),
    }
    results = {}
    for label, make in variants.items():
        losses, accuracies = [], []
        for seed in seeds():
            kdl.set_seed(seed)
            model = make()
            history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
            losses.append(history.history["loss"][-1])
            logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
            accuracies.append(logs["accuracy"])
        results[label] = (losses, accuracies)
        print(
            f"{label:14s} {convolutions(model):2d} convolutions, "
            f"{model.count_params():7,} weights: training loss {show(losses, 4)}, "
            f"test accuracy {show(accuracies)}"
        )
    print(verdict(results))


def verdict(results) -> str:
    (shallow, _), (plain, _), (residual, _) = results.values()
    if not beyond_spread(plain, shallow):  # a higher loss is worse
        return (
            "The deep plain network trained as well as the shallow one here: "
            "these settings show no depth problem for the shortcuts to fix."
        )
    first = (
        f"The deep plain network ends with a higher training loss than the shallow "
        f"one ({mean_spread(plain)[0]:.4f} against {mean_spread(shallow)[0]:.4f})"
    )
    if beyond_spread(residual, shallow):
        return f"{first}, and so does the ResNet: the shortcuts did not close the gap."
    return f"{first}; the ResNet of the same depth does not: the shortcuts close it."


def main() -> None:
    banner()
    out = out_dir("resnet_digits")
    (x, y), (x_test, y_test) = datasets.digits(layout="image")
    epochs = pick(15, 1)
    n = pick(len(x), 256)  # the short mode trains part 1 on a few digits
    print(f"Part 1: {n} training digits, {epochs} epochs each, seeds {list(seeds())}")
    compare((x[:n], y[:n], x_test, y_test), epochs)

    # Part 2: two stages of residual blocks; the second halves the 8x8 grid
    # and doubles the filters (its shortcut is a 1x1 convolution with stride 2).
    model = resnet(pick((2, 2), (1, 1)))
    print(
        f"Part 2: {model.name}: {convolutions(model)} convolution layers, "
        f"{model.count_params():,} weights"
    )
    history = kdl.train(
        model,
        x,
        y,
        validation_split=0.2,
        epochs=pick(30, 2),
        patience=5,
        run_dir=out,
        resume=False,  # a second run moves the first aside instead of resuming
        tensorboard=False,
        seed=0,
        verbose=pick(2, 0),
    )
    best = kdl.load(history.run_dir / "best.keras")
    accuracy = best.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(f"best checkpoint: test accuracy {accuracy['accuracy']:.3f}")
    print(f"run folder: {history.run_dir}")


if __name__ == "__main__":
    main()
