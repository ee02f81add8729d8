"""Deep reinforcement learning on kdl: a DQN agent for Gymnasium environments.

Example:
    >>> from kdl.rl import DQNAgent
    >>> agent = DQNAgent("CartPole-v1", seed=0)
    >>> log = agent.train(20_000)
    >>> mean, std = agent.evaluate(20)
"""

from kdl.rl.dqn import DQNAgent, TFLitePolicy, run_tflite_episode
from kdl.rl.replay import ReplayBuffer

__all__ = ["DQNAgent", "ReplayBuffer", "TFLitePolicy", "run_tflite_episode"]
