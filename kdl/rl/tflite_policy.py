"""The greedy policy of an exported Q-network, run in the LiteRT interpreter.

`DQNAgent.export_tflite` writes the file; this module plays it, without the
agent, as a device would: `TFLitePolicy` is a thin layer over `kdl.lite`
(issue 14), and importing this module imports NumPy and LiteRT, never
TensorFlow. (`run_tflite_episode` checks its arguments with
`kdl._validation`, which imports TensorFlow today.)
"""

from __future__ import annotations

import numpy as np

from kdl import lite
from kdl.rl.evaluation import play_episode

__all__ = ["TFLitePolicy", "run_tflite_episode"]


class TFLitePolicy:
    """The greedy policy of a TFLite Q-network, run in the LiteRT interpreter.

    A thin layer over `kdl.lite.load`: one observation per call, the action
    is the argmax of the file's Q-values.

    Args:
        path: str or PathLike. The `.tflite` file.

    Attributes:
        model: kdl.lite.LiteModel. The file in the interpreter.

    Raises:
        FileNotFoundError: if there is no file at `path`.
        ValueError: if the file is not a TFLite model.

    Example:
        >>> policy = TFLitePolicy("cartpole.tflite")
        >>> action = policy(observation)
    """

    def __init__(self, path):
        self.model = lite.load(path)

    def q_values(self, observation) -> np.ndarray:
        """Q-values of one observation, shape `(num_actions,)`."""
        x = np.asarray(observation, np.float32)[None]
        return self.model.predict(x)[0]

    def __call__(self, observation) -> int:
        return int(np.argmax(self.q_values(observation)))


def run_tflite_episode(
    path, env, *, seed: int | None = None, max_steps: int | None = None
) -> float:
    """Plays one greedy episode with a TFLite policy in the LiteRT interpreter.

    Args:
        path: str or PathLike. A `.tflite` file from `DQNAgent.export_tflite`.
        env: gymnasium.Env or str. The environment or its registered id.
        seed: int or None. Seed of the environment reset. Defaults to `None`.
        max_steps: int or None. Cut the episode after this many steps.
            Defaults to `None`.

    Returns:
        float. The episode's return.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError, TypeError: for a bad argument.

    Example:
        >>> agent.export_tflite("cartpole.tflite")
        >>> run_tflite_episode("cartpole.tflite", "CartPole-v1", seed=0)
    """
    # Imported here: kdl._validation (and so kdl.rl.envs) imports TensorFlow,
    # which TFLitePolicy alone does not need.
    from kdl import _validation as v
    from kdl.rl.envs import check_spaces, make_env

    func = "run_tflite_episode"
    path = v.check_path(path, "path", func)
    v.check_int(seed, "seed", func, min_value=0, allow_none=True)
    v.check_int(max_steps, "max_steps", func, allow_none=True)
    if not path.is_file():
        raise FileNotFoundError(f"No TFLite file at {path}.")
    env = make_env(env, func)
    check_spaces(env, func)
    policy = TFLitePolicy(path)
    return play_episode(policy, env, seed=seed, max_steps=max_steps)
