"""What recording the DP steps in the graph costs (issue 30), in one process.

The same private model (method "auto") is timed with its train step as kdl
runs it (the DP step plus the ledger: steps, batch, noise and the weights'
fingerprint before and after) and as before the ledger (its DP step alone under
Keras' fit, no session bookkeeping), the two timed in
turn after a warm-up epoch, so the machine's load hits both alike. The goal:
recording costs under 10% of a DP epoch.

Run: ``.venv/bin/python benchmarks/privacy_record_cost.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from privacy_speed import before_ledger  # benchmarks/ is on sys.path

import kdl
from kdl import datasets, privacy

BATCH = 64


def _builds():
    (x_img, y), _ = datasets.digits()
    x_img = x_img.astype("float32")
    return [
        ("MLP", lambda: kdl.build_mlp((64,), 10, optimizer="sgd"),
         x_img.reshape(len(x_img), -1), y),
        ("CNN", lambda: kdl.build_cnn((8, 8, 1), 10, optimizer="sgd"), x_img, y),
        ("GRU", lambda: kdl.build_gru((8, 8), 10, optimizer="sgd"), x_img[..., 0], y),
    ]  # fmt: skip


def _epoch(model, x, y) -> float:
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    kdl.set_seed(0, deterministic=False)
    for name, build, x, y in _builds():
        models = {
            "recorded": privacy.make_private(build(), noise_multiplier=1.0),
            "before ledger": before_ledger(
                privacy.make_private(build(), noise_multiplier=1.0)
            ),
        }
        times = {key: [] for key in models}
        for model in models.values():
            _epoch(model, x, y)
        for _ in range(args.repeats):
            for key, model in models.items():
                times[key].append(_epoch(model, x, y))
        med = {key: statistics.median(t) for key, t in times.items()}
        ratio = med["recorded"] / med["before ledger"]
        print(f"{name}: recorded {med['recorded']:.3f} s/epoch, before ledger "
              f"{med['before ledger']:.3f} s/epoch: {ratio:.3f}x "
              f"({'within' if ratio <= 1.10 else 'OVER'} 10%)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
