"""Saving a DQN agent to a folder and loading it back.

The folder holds `q_network.keras` (written with `kdl.save`) and `agent.json`
(the hyperparameters, the environment id and the steps trained). With
`training_state=True` it also holds `training_state.npz`: the replay buffer,
the target network and the optimizer's variables, so that a run killed after
a checkpoint resumes where the checkpoint left it (`kdl rl` does this).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kdl import _files
from kdl import _validation as v
from kdl import io as kdl_io
from kdl.rl.envs import Described, check_spaces, env_name, make_env

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "MODEL_FILE", "load_agent", "save_agent"]

CONFIG_FILE = "agent.json"
MODEL_FILE = "q_network.keras"
FORMAT_VERSION = 1


STATE_FILE = "training_state.npz"


def save_agent(agent, path: Path, *, training_state: bool = False) -> Path:
    """Writes `agent` into the folder `path` (atomically); see `DQNAgent.save`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "env_id": agent.env_id,
        "observation_shape": list(agent.observation_shape),
        "num_actions": agent.num_actions,
        "steps": agent.steps,
        "episodes": agent.episodes,
        "config": {
            k: list(val) if isinstance(val, tuple) else val
            for k, val in agent.config.items()
        },
    }
    with _files.atomic_path(path) as tmp:
        tmp.mkdir()
        kdl_io.save(agent.q_network, tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        if training_state:
            np.savez(tmp / STATE_FILE, **_training_state(agent))
    return path


def _training_state(agent) -> dict:
    """What resuming needs beyond the weights: replay, target, optimizer."""
    learner = agent.learner
    state = {f"buffer_{k}": val for k, val in agent.buffer.get_state().items()}
    for i, w in enumerate(learner.target_network.get_weights()):
        state[f"target_{i}"] = w
    for i, w in enumerate(learner.q_network.optimizer.variables):
        state[f"optimizer_{i}"] = np.asarray(w)
    return state


def _restore_training_state(agent, path: Path) -> None:
    with np.load(path / STATE_FILE) as state:
        learner = agent.learner
        agent.buffer.set_state(
            {k[7:]: state[k] for k in state.files if k.startswith("buffer_")}
        )
        count = len(learner.target_network.get_weights())
        learner.target_network.set_weights([state[f"target_{i}"] for i in range(count)])
        for i, var in enumerate(learner.q_network.optimizer.variables):
            var.assign(state[f"optimizer_{i}"])


def load_agent(cls, path: Path, env, func: str):
    """Builds a `cls` agent from the folder `path`; see `DQNAgent.load`."""
    if not (path / CONFIG_FILE).is_file() or not (path / MODEL_FILE).exists():
        raise FileNotFoundError(
            f"{path} is not a saved DQNAgent: it needs {CONFIG_FILE} and "
            f"{MODEL_FILE} (written by DQNAgent.save)."
        )
    saved = json.loads((path / CONFIG_FILE).read_text())
    env = _saved_env(saved, env, func)
    kwargs = dict(saved["config"])
    if "hidden_units" in kwargs:  # saved before issue 31 renamed it
        kwargs["dense_units"] = kwargs.pop("hidden_units")
    kwargs["dense_units"] = tuple(kwargs["dense_units"])
    agent = cls(env, **kwargs)
    loaded = kdl_io.load(path / MODEL_FILE, compile=False)
    agent.learner.set_weights(loaded.get_weights())
    agent.steps = int(saved["steps"])
    agent.episodes = int(saved["episodes"])
    if (path / STATE_FILE).is_file():
        _restore_training_state(agent, path)
    return agent


def _saved_env(saved: dict, env, func: str):
    """The environment to load into: `env`, or the saved id; spaces must match."""
    if env is None:
        if saved["env_id"] is None:
            v.fail(
                func,
                "env",
                "an environment (the saved agent's has no registered id)",
                env,
            )
        env = saved["env_id"]
    env = make_env(env, func)
    shape, num_actions = check_spaces(env, func)
    if list(shape) != saved["observation_shape"] or num_actions != saved["num_actions"]:
        v.fail(
            func,
            "env",
            f"an environment with observations of shape "
            f"{tuple(saved['observation_shape'])} and "
            f"{saved['num_actions']} actions, like the saved agent's",
            Described(
                f"{env_name(env)} (observations of shape "
                f"{shape}, {num_actions} actions)"
            ),
        )
    return env
