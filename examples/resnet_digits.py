"""ResNet: residual blocks let a deeper network train as easily as a shallow one.

``kdl.build_resnet`` stacks residual blocks (two convolutions plus a shortcut
that adds the block's input to its output) in stages. The script trains a
small ResNet on scikit-learn's digits with ``kdl.train`` (early stopping, best
checkpoint, history plot in the run folder), prints its layer count, weights
and test accuracy, and reloads the best checkpoint.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/resnet_digits.py

Writes saved_models/resnet_digits/ (best.keras, history.csv, history.png,
run.json).
"""

from __future__ import annotations

from _quick import banner, out_dir, pick

import kdl
from kdl import datasets


def main() -> None:
    banner()
    out = out_dir("resnet_digits")
    (x, y), (x_test, y_test) = datasets.digits(layout="image")

    # Two stages of residual blocks; the second halves the 8x8 grid and
    # doubles the filters (its shortcut is a 1x1 convolution with stride 2).
    model = kdl.build_resnet(
        (8, 8, 1), 10, stages=pick((2, 2), (1, 1)), filters=(16, 32), name="resnet"
    )
    convolutions = [layer.name for layer in model.layers if "conv" in layer.name]
    print(
        f"{model.name}: {len(convolutions)} convolution layers, "
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
