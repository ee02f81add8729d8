"""The hyperparameters of kdl.rl.DQNAgent, checked in one place."""

from __future__ import annotations

import numpy as np

from kdl import _validation as v

CLASS = "DQNAgent"


def check_config(**cfg) -> dict:
    """Checks the `DQNAgent` hyperparameters; returns them normalised."""
    f = CLASS
    cfg["dense_units"] = v.check_int_tuple(cfg["dense_units"], "dense_units", f)
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
    _check_options(cfg)
    if cfg["batch_size"] > cfg["buffer_size"]:
        v.fail(
            f,
            "batch_size",
            f"at most buffer_size ({cfg['buffer_size']})",
            cfg["batch_size"],
        )
    return cfg


def _check_options(cfg: dict) -> None:
    """Checks the options of issue 28 (dueling, prioritized replay, ...)."""
    f = CLASS
    for name in ("dueling", "prioritized"):
        cfg[name] = v.check_bool(cfg[name], name, f)
    cfg["priority_alpha"] = v.check_float(cfg["priority_alpha"], "priority_alpha", f)
    cfg["priority_beta"] = v.check_float(
        cfg["priority_beta"], "priority_beta", f, max_value=1.0
    )
    cfg["priority_beta_steps"] = v.check_int(
        cfg["priority_beta_steps"], "priority_beta_steps", f
    )
    cfg["tau"] = v.check_float(cfg["tau"], "tau", f, max_value=1.0, strict_min=True)
    v.check_choice(cfg["loss"], "loss", f, ("huber", "mse"))
    if cfg["observation_scaling"] is not None:
        v.check_choice(
            cfg["observation_scaling"], "observation_scaling", f, ("bounds", "warmup")
        )
        if cfg["observation_scaling"] == "warmup" and cfg["learning_starts"] < 2:
            v.fail(
                f,
                "learning_starts",
                'at least 2 with observation_scaling="warmup" (the warm-up '
                "play gives the statistics)",
                cfg["learning_starts"],
            )
    cfg["reward_scale"] = v.check_float(
        cfg["reward_scale"], "reward_scale", f, strict_min=True
    )


def bounds_scaling(env) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) mapping the observation space's finite bounds to [-1, 1]
    (features with an infinite bound are left as they are)."""
    low = np.asarray(env.observation_space.low, np.float64)
    high = np.asarray(env.observation_space.high, np.float64)
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)
    return (low + high) / 2, (high - low) / 2
