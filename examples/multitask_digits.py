"""Multi-task learning: one shared trunk, two heads, two losses, and baselines.

``kdl.build_multitask`` puts one head per task on a shared trunk: here a
10-class head ("which digit?") and a binary head ("is it even?") on one MLP.
Each head has its own loss and metrics; ``loss_weights`` say how much each
counts in the total that training minimizes. To tell what sharing the trunk
does, the script also trains single-task baselines: the same trunk with one
head each, trained the same way. Every model is trained from 3 seeds; the
script prints each head's test accuracy (mean ± standard deviation) beside
its baseline's, says from these numbers whether the multi-task model is
better, worse or within the seed spread, and plots each head's training loss.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/multitask_digits.py

Writes saved_models/multitask_digits/losses.png.
"""

from __future__ import annotations

from _quick import (
    banner,
    beyond_spread,
    mean_spread,
    out_dir,
    pick,
    plt,
    save_figure,
    seeds,
    show,
)

import kdl
from kdl import datasets

TASKS = {"digit": ("classification", 10), "is_even": ("binary", 1)}
LOSS_WEIGHTS = {"digit": 1.0, "is_even": 0.5}


def build(tasks, seed):
    """The shared MLP trunk with one head per task in `tasks`."""
    kdl.set_seed(seed)
    return kdl.build_multitask(
        (64,),
        tasks,
        trunk="mlp",
        trunk_kwargs={"dense_units": (128,)},
        loss_weights={name: LOSS_WEIGHTS[name] for name in tasks},
    )


def head_accuracy(logs, name, tasks) -> float:
    # A one-output model names its metrics without the head's name.
    return logs[f"{name}_accuracy" if len(tasks) > 1 else "accuracy"]


def train(tasks, data, epochs):
    """Test accuracy of each head, one value per seed; the first seed's history."""
    x, targets, x_test, test_targets = data
    accuracies = {name: [] for name in tasks}
    first = None
    for seed in seeds():
        model = build(tasks, seed)
        history = model.fit(
            x,
            {name: targets[name] for name in tasks},
            epochs=epochs,
            batch_size=32,
            verbose=0,
        )
        first = first or history.history
        logs = model.evaluate(
            x_test,
            {name: test_targets[name] for name in tasks},
            verbose=0,
            return_dict=True,
        )
        for name in tasks:
            accuracies[name].append(head_accuracy(logs, name, tasks))
    return accuracies, first


def verdict(name, multi, single) -> str:
    delta = mean_spread(multi)[0] - mean_spread(single)[0]
    if beyond_spread(multi, single):
        return f"{name}: sharing the trunk helped ({delta:+.3f}, beyond the spread)."
    if beyond_spread(single, multi):
        return f"{name}: sharing the trunk hurt ({delta:+.3f}, beyond the spread)."
    return f"{name}: no difference beyond the seed spread ({delta:+.3f})."


def main() -> None:
    banner()
    out = out_dir("multitask_digits")
    (x, y), (x_test, y_test) = datasets.digits(layout="flat")
    targets = {"digit": y, "is_even": (y % 2 == 0).astype("float32")}
    test_targets = {"digit": y_test, "is_even": (y_test % 2 == 0).astype("float32")}
    data = (x, targets, x_test, test_targets)
    epochs = pick(20, 2)

    print("outputs:", build(TASKS, 0).output_names)
    print(f"{epochs} epochs, seeds {list(seeds())}; test accuracy")
    multi, history = train(TASKS, data, epochs)
    for name, spec in TASKS.items():
        single, _ = train({name: spec}, data, epochs)
        print(
            f"{name:8s} multi-task {show(multi[name])}, "
            f"single-task {show(single[name])}"
        )
        print("  " + verdict(name, multi[name], single[name]))

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("loss", "digit_loss", "is_even_loss"):
        ax.plot(history[key], label=key)
    ax.set(xlabel="epoch", ylabel="training loss (first seed)", yscale="log")
    ax.legend()
    save_figure(fig, out / "losses.png")


if __name__ == "__main__":
    main()
