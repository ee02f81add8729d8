"""A tour of every kdl builder on small real data (about a minute on CPU).

Run (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/builders_tour.py

Prints test scores only; it writes no files.
"""

from __future__ import annotations

import numpy as np
from _quick import banner, pick

import kdl
from kdl import datasets

# Training examples per model: all of them, or a few hundred in the short mode.
N = pick(None, 300)


def classifiers() -> None:
    """MLP, CNN, ResNet and bidirectional GRU on the digits, in three layouts."""
    (xf, yf), (xf_test, yf_test) = datasets.digits(layout="flat")
    (xi, yi), (xi_test, yi_test) = datasets.digits(layout="image")
    (xs, ys), (xs_test, ys_test) = datasets.digits(layout="sequence")
    models = {
        "mlp": (kdl.build_mlp((64,), 10, dropout=0.1), xf, yf, xf_test, yf_test),
        "cnn": (
            kdl.build_cnn((8, 8, 1), 10, pooling="average"),
            xi,
            yi,
            xi_test,
            yi_test,
        ),
        "resnet": (
            kdl.build_resnet((8, 8, 1), 10, stages=(1, 1), filters=(16, 32)),
            xi,
            yi,
            xi_test,
            yi_test,
        ),
        "bi-gru": (
            kdl.build_gru((8, 8), 10, bidirectional=True),
            xs,
            ys,
            xs_test,
            ys_test,
        ),
    }
    for name, (model, x, y, x_test, y_test) in models.items():
        model.fit(x[:N], y[:N], epochs=pick(10, 1), batch_size=32, verbose=0)
        acc = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        print(f"{name:8s} test accuracy {acc['accuracy']:.3f}")


def forecaster() -> None:
    """A GRU regression on the sunspots series, against a naive forecast."""
    (x, y), (x_test, y_test) = datasets.sunspots(window=24)
    gru = kdl.build_gru((24, 1), 1, task="regression", units=(32,))
    gru.fit(x[:N], y[:N], epochs=pick(40, 1), batch_size=16, verbose=0)
    mae = gru.evaluate(x_test, y_test, verbose=0, return_dict=True)["mae"]
    naive = np.mean(np.abs(x_test[:, -1, 0] - y_test[:, 0]))
    print(f"sunspots GRU test MAE {mae:.4f} (repeat-last-value forecast: {naive:.4f})")


def translator() -> None:
    """An encoder-decoder with attention on a toy translation task."""
    task = datasets.toy_translation(num_examples=pick(4000, 300))
    (src, dec_in), target = task.train
    s2s = kdl.build_seq2seq(
        task.input_vocab_size, task.output_vocab_size, units=64, attention=True
    )
    s2s.fit([src, dec_in], target, epochs=pick(15, 1), batch_size=64, verbose=0)
    (test_src, _), test_target = task.test
    decoded = kdl.greedy_decode(
        s2s,
        test_src,
        start_id=task.start_id,
        end_id=task.end_id,
        max_length=task.max_length,
    )
    print(f"seq2seq exact-match accuracy {(decoded == test_target).all(1).mean():.3f}")


def multitask() -> None:
    """One trunk, two heads: the digit and whether it is even."""
    (xf, yf), (xf_test, yf_test) = datasets.digits(layout="flat")
    xf, yf = xf[:N], yf[:N]
    multi = kdl.build_multitask(
        (64,), {"digit": ("classification", 10), "is_even": ("binary", 1)}
    )
    multi.fit(xf, {"digit": yf, "is_even": yf % 2 == 0}, epochs=pick(20, 1), verbose=0)
    logs = multi.evaluate(
        xf_test,
        {"digit": yf_test, "is_even": yf_test % 2 == 0},
        verbose=0,
        return_dict=True,
    )
    print(
        f"multitask digit {logs['digit_accuracy']:.3f}, "
        f"even {logs['is_even_accuracy']:.3f}"
    )


def main() -> None:
    banner()
    kdl.keras.utils.set_random_seed(0)
    classifiers()
    forecaster()
    translator()
    multitask()


if __name__ == "__main__":
    main()
