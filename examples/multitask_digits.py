"""Multi-task learning: one shared trunk, two heads, two losses.

``kdl.build_multitask`` puts one head per task on a shared trunk: here a
10-class head ("which digit?") and a binary head ("is it even?") on one MLP.
Each head has its own loss and metrics; ``loss_weights`` say how much each
counts in the total that training minimizes. The script trains the model,
prints each head's test accuracy and plots each head's training loss.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/multitask_digits.py

Writes saved_models/multitask_digits/losses.png.
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets


def main() -> None:
    banner()
    out = out_dir("multitask_digits")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    targets = {"digit": y, "is_even": (y % 2 == 0).astype("float32")}
    test_targets = {"digit": y_test, "is_even": (y_test % 2 == 0).astype("float32")}

    kdl.set_seed(0)
    model = kdl.build_multitask(
        x.shape[1:],
        {"digit": ("classification", 10), "is_even": ("binary", 1)},
        trunk="mlp",
        trunk_kwargs={"dense_units": (128,)},
        loss_weights={"digit": 1.0, "is_even": 0.5},
    )
    print("outputs:", model.output_names)
    history = model.fit(x, targets, epochs=pick(20, 2), batch_size=32, verbose=0)
    logs = model.evaluate(x_test, test_targets, verbose=0, return_dict=True)
    for name in ("digit", "is_even"):
        print(f"{name:8s} test accuracy {logs[f'{name}_accuracy']:.3f}")

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("loss", "digit_loss", "is_even_loss"):
        ax.plot(history.history[key], label=key)
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax.legend()
    save_figure(fig, out / "losses.png")


if __name__ == "__main__":
    main()
