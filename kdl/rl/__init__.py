"""Deep reinforcement learning on kdl: a DQN agent for Gymnasium environments.

Example:
    >>> from kdl.rl import DQNAgent
    >>> agent = DQNAgent("CartPole-v1", seed=0)
    >>> log = agent.train(20_000)
    >>> mean, std = agent.evaluate(20)
"""

from kdl.rl.dqn import DQNAgent
from kdl.rl.evaluation import Evaluator
from kdl.rl.replay import NStepReplayBuffer, ReplayBuffer
from kdl.rl.tflite_policy import TFLitePolicy, run_tflite_episode

__all__ = [
    "DQNAgent",
    "Evaluator",
    "NStepReplayBuffer",
    "ReplayBuffer",
    "TFLitePolicy",
    "run_tflite_episode",
]
