"""kdl's main job: build, train and evaluate a CNN on the digits.

Run it with ``make demo`` (which sets up .venv first) or
``python examples/demo.py``. It trains for a few seconds on CPU and prints the
test accuracy on held-out digits.
"""

from __future__ import annotations

import kdl
from kdl import datasets


def main() -> None:
    (x_train, y_train), (x_test, y_test) = datasets.digits(layout="image")
    print(f"digits: {len(x_train)} training and {len(x_test)} test images "
          f"of shape {x_train.shape[1:]}")
    kdl.keras.utils.set_random_seed(0)
    model = kdl.build_cnn(x_train.shape[1:], 10, filters=(32, 64),
                          batch_norm=True, dropout=0.1)
    model.summary()
    model.fit(x_train, y_train, epochs=15, batch_size=32, validation_split=0.1,
              verbose=2)
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(f"CNN test accuracy: {logs['accuracy']:.4f}")


if __name__ == "__main__":
    main()
