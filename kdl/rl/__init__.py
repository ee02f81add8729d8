"""Deep reinforcement learning on kdl: a DQN agent for Gymnasium environments.

The package is split the way Stable-Baselines3 splits an algorithm (issue
10): `replay` (replay buffers, n-step returns), `learner` (the Q-network and
its compiled steps), `evaluation` (`Evaluator`, playing episodes),
`tflite_policy` (the exported policy in LiteRT), `saving`, `envs`, and the
agent that composes them, `dqn`.

Names load lazily: `from kdl.rl import TFLitePolicy` imports neither
TensorFlow nor Keras (a device runs the exported policy with NumPy and
LiteRT, through `kdl.lite`).

Example:
    >>> from kdl.rl import DQNAgent
    >>> agent = DQNAgent("CartPole-v1", seed=0)
    >>> log = agent.train(20_000)
    >>> mean, std = agent.evaluate(20)
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_NAMES = {
    "DQNAgent": "kdl.rl.dqn",
    "Evaluator": "kdl.rl.evaluation",
    "NStepReplayBuffer": "kdl.rl.replay",
    "PrioritizedReplayBuffer": "kdl.rl.replay",
    "ReplayBuffer": "kdl.rl.replay",
    "TFLitePolicy": "kdl.rl.tflite_policy",
    "run_tflite_episode": "kdl.rl.tflite_policy",
}

_SUBMODULES = (
    "dqn",
    "envs",
    "evaluation",
    "learner",
    "networks",
    "presets",
    "progress",
    "replay",
    "saving",
    "tflite_policy",
)

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kdl.rl.{name}")
    else:
        raise AttributeError(f"module 'kdl.rl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
