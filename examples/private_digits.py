"""Train a digits classifier with differential privacy, then audit it.

Trains the same small MLP twice on scikit-learn's digits: once normally, once
with DP-SGD at epsilon = 8 (delta = 1e-5). Writes the privacy statement into
the private run's folder and runs a membership-inference audit on both.
Finishes in about a minute on a laptop CPU.

Run (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):
    python examples/private_digits.py            # writes saved_models/private-digits
    python examples/private_digits.py --out /tmp/dp
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _quick import banner, pick

import kdl
from kdl import build_mlp, datasets, privacy

EPOCHS, BATCH_SIZE, DELTA = pick(15, 1), 64, 1e-5


def main(out: Path) -> None:
    banner()
    (x_all, y_all), (x_test, y_test) = datasets.digits(layout="flat")
    n = pick(None, 400)  # a few hundred examples in the short mode
    x_all, y_all = x_all[:n], y_all[:n]
    # Early stopping and the best checkpoint may choose by held-out data only
    # (choosing by the training loss would leak it): hold out a validation set
    # and plan the privacy budget for the examples actually trained on.
    n_val = len(x_all) // 5
    x, y = x_all[n_val:], y_all[n_val:]
    validation = (x_all[:n_val], y_all[:n_val])

    # === A normal model ===
    plain = build_mlp(
        x.shape[1:], 10, dense_units=(64,), optimizer="sgd", learning_rate=0.5
    )
    kdl.train(
        plain,
        x,
        y,
        validation_data=validation,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        run_dir=out / "plain",
        seed=0,
        verbose=0,
    )

    # === The same model with DP-SGD, noise calibrated for epsilon = 8 ===
    model = build_mlp(
        x.shape[1:], 10, dense_units=(64,), optimizer="sgd", learning_rate=0.5
    )
    private = privacy.make_private(
        model,
        l2_norm_clip=1.0,
        target_epsilon=8.0,
        delta=DELTA,
        num_examples=len(x),
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
    )
    print(
        f"DP-SGD via {private.privacy['method']!r}, noise multiplier "
        f"{private.privacy['noise_multiplier']:.3f}"
    )
    history = kdl.train(
        private,
        x,
        y,
        validation_data=validation,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        run_dir=out / "private",
        seed=0,
        verbose=0,
    )
    # The statement accounts for what the run did (examples, batch size,
    # steps, the epoch early stopping kept), not for the plan above.
    path = privacy.save_statement(history.run_dir, private)
    print(f"\n{privacy.statement(private)}\n(saved in {path})\n")

    # === Accuracy and membership inference, side by side ===
    for name, m in (("plain", plain), ("private", private)):
        _, accuracy = m.evaluate(x_test, y_test, verbose=0)
        result = privacy.audit(m, x, y, x_test, y_test)
        print(f"{name:8s} test accuracy {accuracy:.3f}  {result}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("saved_models/private-digits"))
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    main(parser.parse_args().out)
