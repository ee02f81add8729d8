"""The hyperparameters of kdl.rl.DQNAgent, checked in one place."""

from __future__ import annotations

from kdl import _validation as v

CLASS = "DQNAgent"


def check_config(**cfg) -> dict:
    """Checks the `DQNAgent` hyperparameters; returns them normalised."""
    f = CLASS
    cfg["hidden_units"] = v.check_int_tuple(cfg["hidden_units"], "hidden_units", f)
    cfg["gamma"] = v.check_float(cfg["gamma"], "gamma", f, max_value=1.0)
    cfg["learning_rate"] = v.check_float(
        cfg["learning_rate"], "learning_rate", f, strict_min=True
    )
    for name in (
        "buffer_size",
        "batch_size",
        "target_update",
        "train_freq",
        "gradient_steps",
        "n_steps",
    ):
        cfg[name] = v.check_int(cfg[name], name, f)
    for name in ("learning_starts", "epsilon_decay_steps"):
        cfg[name] = v.check_int(cfg[name], name, f, min_value=0)
    cfg["double"] = v.check_bool(cfg["double"], "double", f)
    for name in ("epsilon_start", "epsilon_end"):
        cfg[name] = v.check_float(cfg[name], name, f, max_value=1.0)
    cfg["max_grad_norm"] = v.check_float(
        cfg["max_grad_norm"], "max_grad_norm", f, strict_min=True, allow_none=True
    )
    cfg["seed"] = v.check_int(cfg["seed"], "seed", f, min_value=0, allow_none=True)
    if cfg["batch_size"] > cfg["buffer_size"]:
        v.fail(
            f,
            "batch_size",
            f"at most buffer_size ({cfg['buffer_size']})",
            cfg["batch_size"],
        )
    return cfg
