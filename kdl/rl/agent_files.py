"""The DQN agent's files: save, load, presets and the TFLite export.

A mixin of :class:`kdl.rl.dqn.DQNAgent`, split from ``dqn.py`` (issue 27: no
module over 600 lines), the way Keras splits ``Model`` into trainer and
saving mixins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl.rl.envs import env_id
from kdl.rl.evaluation import visited_states
from kdl.rl.presets import preset
from kdl.rl.saving import load_agent, save_agent

__all__ = ["AgentFiles"]


class AgentFiles:
    """Save, load, presets and export of a DQN agent (mixed into DQNAgent)."""

    def save(self, path, *, training_state: bool = False) -> Path:
        """Saves the Q-network and the agent's config into the folder `path`.

        The folder holds `q_network.keras` (written with `kdl.save`) and
        `agent.json` (the hyperparameters, the environment id and the steps
        trained). It is written to a temporary folder first and moved into
        place, so an existing save is never left half-written. Without
        `training_state` the replay buffer and optimizer state are not saved:
        a loaded agent acts and evaluates exactly like this one, and further
        training starts from an empty buffer. With it the folder also holds
        `training_state.npz` (replay buffer, target network, optimizer), and
        a loaded agent resumes training where this one stopped (a
        checkpoint).

        Args:
            path: str or PathLike. The folder.
            training_state: bool. Save what resuming needs too. Defaults to
                `False`.

        Returns:
            pathlib.Path: the folder.

        Raises:
            TypeError: if `path` is not a path.
        """
        path = v.check_path(path, "path", "DQNAgent.save")
        training_state = v.check_bool(training_state, "training_state", "DQNAgent.save")
        return save_agent(self, path, training_state=training_state)

    @classmethod
    def for_env(cls, env, **overrides) -> AgentFiles:
        """An agent with kdl's hyperparameters for `env` (`kdl.rl.presets`).

        Args:
            env: gymnasium.Env or str. The environment.
            **overrides: `DQNAgent` arguments that replace the preset's
                (e.g. `seed`).

        Example:
            >>> agent = DQNAgent.for_env("MountainCar-v0", seed=0)
        """
        name = env if isinstance(env, str) else env_id(env)
        settings = preset(name)
        if "hidden_units" in overrides:  # the deprecated name replaces it too
            settings.pop("dense_units", None)
        return cls(env, **{**settings, **overrides})

    @classmethod
    def load(cls, path, *, env=None) -> AgentFiles:
        """Loads an agent saved with `save`.

        Args:
            path: str or PathLike. The folder `save` wrote.
            env: gymnasium.Env, str or None. The environment; None makes it
                from the saved environment id. Defaults to `None`.

        Returns:
            A `DQNAgent` whose Q-network (and target network) has the saved
            weights.

        Raises:
            FileNotFoundError: if `path` is not a saved agent.
            ValueError: if `env` does not match the saved observation and
                action spaces, or None is given and no id was saved.
        """
        func = "DQNAgent.load"
        path = v.check_path(path, "path", func)
        return load_agent(cls, path, env, func)

    def export_tflite(
        self, path, *, quantization: str | None = None, verbose: int = 1
    ) -> Path:
        """Exports the Q-network (the policy) to a TFLite file with `kdl.export`.

        The policy's action is the argmax of the file's output. `to_tflite`
        checks the file in the LiteRT interpreter against the Keras network
        on states this agent visits (from its replay buffer, or a greedy
        episode), and leaves no file when the check fails.

        Args:
            path: str or PathLike. The `.tflite` file.
            quantization: str or None. None, "dynamic", "float16" or "int8"
                (int8 calibrates on the same visited states). Defaults to
                `None`.
            verbose: int. 0 for silence, 1 or 2 for messages. Defaults to `1`.

        Returns:
            pathlib.Path: the file.

        Raises:
            ValueError, TypeError: for a bad argument.
            RuntimeError: if the conversion or its LiteRT check fails.
        """
        from kdl.export import to_tflite

        func = "DQNAgent.export_tflite"
        path = v.check_path(path, "path", func)
        if quantization is not None:
            v.check_choice(
                quantization, "quantization", func, ("dynamic", "float16", "int8")
            )
        verbose = v.check_verbose(verbose, func)
        states = self._sample_states(300)
        return to_tflite(
            self.q_network,
            path,
            quantization=quantization,
            representative_data=states if quantization == "int8" else None,
            check_data=states,
            verbose=verbose,
        )

    def _sample_states(self, n: int) -> np.ndarray:
        """States from the replay buffer, or from greedy episodes when it is short."""
        if len(self.buffer) >= n:
            return self.buffer.sample(n)[0]
        if self._eval_envs:
            env = self._eval_envs[0]
        elif self.env.spec is not None:
            env = self._env_copies(1)[0]
        else:
            env = self.env
            self._obs = None  # the training episode is abandoned
        return visited_states(lambda o: int(self.learner.greedy(o[None])[0]), env, n)
