"""Gymnasium environments for kdl.rl: making one, checking its spaces, naming it.

The agent, `DQNAgent.load` and `run_tflite_episode` take an environment the
same way (an instance or a registered id) and refuse the same ones with the
same message, so the checks live here.
"""

from __future__ import annotations

import numpy as np

from kdl import _validation as v

__all__ = ["Described", "check_spaces", "env_id", "env_name", "make_env", "reset"]


class Described:
    """A value shown in an error message as its description, unquoted."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def env_name(env) -> str:
    """The environment's registered id, or its class name without one."""
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env).__name__


def env_id(env) -> str | None:
    """The environment's registered id, or None."""
    spec = getattr(env, "spec", None)
    return None if spec is None else spec.id


def make_env(env, func: str, arg: str = "env"):
    """Returns a Gymnasium environment from an instance or a registered id."""
    import gymnasium

    if isinstance(env, str):
        try:
            return gymnasium.make(env)
        except gymnasium.error.Error as exc:
            v.fail(
                func,
                arg,
                "a registered Gymnasium id (" + str(exc).rstrip(".") + ")",
                env,
            )
    if not isinstance(env, gymnasium.Env):
        v.fail(
            func,
            arg,
            "a gymnasium.Env or a registered Gymnasium id such as 'CartPole-v1'",
            env,
            error=TypeError,
        )
    return env


def check_spaces(env, func: str, arg: str = "env"):
    """Checks a Discrete action space and a 1-D Box observation space.

    Returns:
        (observation_shape, num_actions).
    """
    from gymnasium import spaces

    action_space = env.action_space
    if not isinstance(action_space, spaces.Discrete):
        v.fail(
            func,
            arg,
            "an environment with a Discrete action space (DQN "
            "picks one of finitely many actions; continuous actions need a "
            "policy-gradient method)",
            Described(f"{env_name(env)} (action space {action_space})"),
        )
    if action_space.start != 0:
        v.fail(
            func,
            arg,
            "an environment whose Discrete actions start at 0",
            Described(f"{env_name(env)} (action space {action_space})"),
        )
    obs_space = env.observation_space
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        image = isinstance(obs_space, spaces.Box) and len(obs_space.shape) >= 2
        v.fail(
            func,
            arg,
            "an environment with a vector observation (a 1-D Box "
            "space; image observations need a convolutional Q-network, "
            "which DQNAgent does not build)",
            Described(
                f"{env_name(env)} ({'image ' if image else ''}"
                f"observation space {obs_space})"
            ),
        )
    return (int(obs_space.shape[0]),), int(action_space.n)


def reset(env, *, seed: int | None = None, seed_actions: bool = False) -> np.ndarray:
    """Resets `env` (seeding its action space too with `seed_actions`).

    Returns:
        The first observation as a float32 array.
    """
    obs, _ = env.reset(seed=seed)
    if seed_actions and seed is not None:
        env.action_space.seed(seed)
    return np.asarray(obs, dtype=np.float32)
