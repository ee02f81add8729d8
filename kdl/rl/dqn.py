"""Deep Q-learning (DQN) with a kdl-built Q-network: the agent.

The agent learns the value of each action from rewards (Mnih et al., 2015):
an epsilon-greedy policy fills a replay buffer, and minibatches from it train
a Q-network towards the Bellman target computed with a slowly copied target
network, under the Huber loss. Double DQN (van Hasselt et al., 2016) picks the
next action with the online network and values it with the target network.

`DQNAgent` composes the parts the way Stable-Baselines3 splits an algorithm
(issue 10):

- `kdl.rl.replay.NStepReplayBuffer`: replay with n-step returns;
- `kdl.rl.learner.QLearner`: the networks and the compiled acting and
  learning steps (`tf.function`s);
- `kdl.rl.evaluation.Evaluator`: evaluation during training (best return,
  early stop, keep-best), like SB3's `EvalCallback`;
- `kdl.rl.tflite_policy`: the exported policy played in LiteRT;
- `kdl.rl.saving`: the saved folder.
"""

from __future__ import annotations

import numpy as np

from kdl import _keras_names
from kdl import _validation as v
from kdl.backend import keras
from kdl.rl._config import CLASS, bounds_scaling, check_config
from kdl.rl.agent_files import AgentFiles
from kdl.rl.envs import check_spaces, env_id, make_env, reset
from kdl.rl.evaluation import (
    Evaluator,
    play_episode,
    play_side_by_side,
)
from kdl.rl.learner import QLearner
from kdl.rl.progress import Progress
from kdl.rl.replay import NStepReplayBuffer, PrioritizedReplayBuffer
from kdl.rl.tflite_policy import TFLitePolicy, run_tflite_episode

__all__ = ["DQNAgent", "TFLitePolicy", "play_episode", "run_tflite_episode"]


def linear_epsilon(start: float, end: float, decay_steps: int):
    """Epsilon falls linearly from `start` to `end` over `decay_steps` steps."""

    def schedule(step: int) -> float:
        if decay_steps == 0 or step >= decay_steps:
            return end
        return start + (end - start) * step / decay_steps

    return schedule


class DQNAgent(AgentFiles):
    """A deep Q-network agent for a Gymnasium environment with discrete actions.

    The Q-network is `kdl.build_mlp(observation_shape, num_actions,
    task="regression", dense_units=dense_units)`: one linear output, the
    estimated return, per action. The defaults are tuned on CartPole-v1,
    where the greedy policy reaches returns near 500 (the maximum) within
    about 20,000-30,000 environment steps.

    Args:
        env: gymnasium.Env or str. The environment, or a registered id such as
            `"CartPole-v1"`. Its action space must be `Discrete` and its
            observation a 1-D `Box`.
        dense_units: int or tuple of int. Hidden dense layers of the
            Q-network. Defaults to `(64, 64)`.
        gamma: float. Discount factor in [0, 1]. Defaults to `0.99`.
        learning_rate: float. Adam learning rate. Defaults to `2e-3`.
        buffer_size: int. Transitions kept in the replay buffer. Defaults to
            `50_000`.
        batch_size: int. Transitions per gradient step. Defaults to `128`.
        target_update: int. Environment steps between copies of the Q-network
            into the target network. Defaults to `500`.
        double: bool. Double DQN targets. Defaults to `True`.
        epsilon_start: float. Exploration rate at step 0. Defaults to `1.0`.
        epsilon_end: float. Exploration rate after the decay. Defaults to
            `0.04`.
        epsilon_decay_steps: int. Steps of the linear decay of epsilon.
            Defaults to `5_000`.
        learning_starts: int. Environment steps taken before the first
            gradient step. Defaults to `1_000`.
        train_freq: int. Environment steps between training rounds. Defaults
            to `64`.
        gradient_steps: int. Gradient steps per training round. Defaults to
            `32`.
        max_grad_norm: float or None. Gradient norm clip. Defaults to `10.0`.
        n_steps: int. Steps of the bootstrapped return (n-step DQN): the
            target is the discounted reward of the next `n_steps` steps plus
            the discounted value of the state after them. Longer returns
            spread a reward back faster (CartPole learns much more steadily
            with 8 than with 1); 1 is classic DQN. Defaults to `8`.
        dueling: bool. Dueling heads (Wang et al., 2016): the network
            estimates a state value and per-action advantages, and
            `Q = V + A - mean(A)`. Defaults to `False`.
        prioritized: bool. Prioritized replay (proportional, Schaul et al.,
            2016): transitions are replayed in proportion to their TD error
            to the power `priority_alpha`, and their loss weighted by
            importance weights whose exponent rises linearly from
            `priority_beta` to 1 over `priority_beta_steps`. Defaults to
            `False`.
        priority_alpha: float. Defaults to `0.6`.
        priority_beta: float. Defaults to `0.4`.
        priority_beta_steps: int. Defaults to `100_000`.
        tau: float in (0, 1]. Target update every `target_update` steps:
            `target = tau * online + (1 - tau) * target`; 1 is the hard copy
            of classic DQN, a small tau (e.g. 0.005 with `target_update`
            equal to `train_freq`) a soft, Polyak update. Defaults to `1.0`.
        loss: str. "huber" (delta 1, robust to large TD errors) or "mse".
            Defaults to `"huber"`.
        observation_scaling: str or None. Scales observations inside the
            Q-network (so saved and exported policies take raw
            observations): "bounds" maps the observation space's finite
            bounds to [-1, 1]; "warmup" standardizes with the mean and
            standard deviation of the random play before `learning_starts`;
            None leaves them. Defaults to `None`.
        reward_scale: float. Rewards are multiplied by this before they are
            learned from (returns are reported unscaled). Defaults to `1.0`.
        seed: int or None. Seeds the network weights (through
            `keras.utils.set_random_seed`, which seeds Python, NumPy and
            TensorFlow globally), exploration, replay sampling and the
            environment resets. Defaults to `None`.
        hidden_units: deprecated name of `dense_units` (issue 31); removed in
            the next release.

    Attributes:
        env: gymnasium.Env. The training environment.
        buffer: kdl.rl.NStepReplayBuffer. The replay buffer.
        learner: kdl.rl.learner.QLearner. The Q-network (`q_network`), the
            target network (`target_network`) and their compiled steps.
        steps, episodes: int. Environment steps and episodes trained so far.
        evaluation_steps: int. Environment steps spent evaluating.

    Raises:
        ValueError: for a bad value, e.g. a continuous action space or an
            image observation.
        TypeError: for an argument of the wrong type.

    Example:
        >>> agent = DQNAgent("CartPole-v1", seed=0)
        >>> log = agent.train(20_000, verbose=0)
        >>> mean, std = agent.evaluate(10)
    """

    def __init__(
        self,
        env,
        *,
        dense_units: int | tuple[int, ...] = (64, 64),
        gamma: float = 0.99,
        learning_rate: float = 2e-3,
        buffer_size: int = 50_000,
        batch_size: int = 128,
        target_update: int = 500,
        double: bool = True,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.04,
        epsilon_decay_steps: int = 5_000,
        learning_starts: int = 1_000,
        train_freq: int = 64,
        gradient_steps: int = 32,
        max_grad_norm: float | None = 10.0,
        n_steps: int = 8,
        dueling: bool = False,
        prioritized: bool = False,
        priority_alpha: float = 0.6,
        priority_beta: float = 0.4,
        priority_beta_steps: int = 100_000,
        tau: float = 1.0,
        loss: str = "huber",
        observation_scaling: str | None = None,
        reward_scale: float = 1.0,
        seed: int | None = None,
        hidden_units=_keras_names.UNSET,
    ):
        dense_units = _keras_names.renamed(
            CLASS, "hidden_units", "dense_units", hidden_units, dense_units,
            (64, 64), note="kdl's one name for dense widths",
        )  # fmt: skip
        self._config = check_config(
            dense_units=dense_units,
            gamma=gamma,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            batch_size=batch_size,
            target_update=target_update,
            double=double,
            epsilon_start=epsilon_start,
            epsilon_end=epsilon_end,
            epsilon_decay_steps=epsilon_decay_steps,
            learning_starts=learning_starts,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            max_grad_norm=max_grad_norm,
            n_steps=n_steps,
            dueling=dueling,
            prioritized=prioritized,
            priority_alpha=priority_alpha,
            priority_beta=priority_beta,
            priority_beta_steps=priority_beta_steps,
            tau=tau,
            loss=loss,
            observation_scaling=observation_scaling,
            reward_scale=reward_scale,
            seed=seed,
        )
        self.env = make_env(env, CLASS)
        self.observation_shape, self.num_actions = check_spaces(self.env, CLASS)
        self.env_id = env_id(self.env)
        self._build()

    # --- construction ---

    def _build(self) -> None:
        cfg = self._config
        seed = cfg["seed"]
        if seed is not None:
            keras.utils.set_random_seed(seed)
        self._rng = np.random.default_rng(seed)
        replay = dict(
            n_steps=cfg["n_steps"],
            gamma=cfg["gamma"],
            seed=None if seed is None else seed + 1,
        )
        if cfg["prioritized"]:
            self.buffer = PrioritizedReplayBuffer(
                cfg["buffer_size"],
                self.observation_shape,
                alpha=cfg["priority_alpha"],
                **replay,
            )
        else:
            self.buffer = NStepReplayBuffer(
                cfg["buffer_size"], self.observation_shape, **replay
            )
        self._epsilon = linear_epsilon(
            cfg["epsilon_start"], cfg["epsilon_end"], cfg["epsilon_decay_steps"]
        )
        self.learner = QLearner(
            self.observation_shape,
            self.num_actions,
            dense_units=cfg["dense_units"],
            learning_rate=cfg["learning_rate"],
            max_grad_norm=cfg["max_grad_norm"],
            gamma=cfg["gamma"],
            double=cfg["double"],
            dueling=cfg["dueling"],
            loss=cfg["loss"],
            tau=cfg["tau"],
            scaling=cfg["observation_scaling"] is not None,
        )
        if cfg["observation_scaling"] == "bounds":
            self.learner.set_observation_scaling(*bounds_scaling(self.env))
        self.steps = 0  # environment steps trained so far
        self.episodes = 0
        self._obs = None  # observation of the unfinished training episode
        self._episode_return = 0.0
        self._episode_length = 0
        self._eval_rng = np.random.default_rng(None if seed is None else seed + 2)
        self._eval_envs = []  # copies of the environment for evaluate()
        self.evaluation_steps = 0  # environment steps spent evaluating
        self._last_target_sync = 0

    @property
    def q_network(self):
        """The Q-network (a compiled `kdl.keras.Model`)."""
        return self.learner.q_network

    @property
    def target_network(self):
        """The target network, a copy of the Q-network updated every
        `target_update` steps."""
        return self.learner.target_network

    @property
    def config(self) -> dict:
        """The agent's hyperparameters (a copy)."""
        return dict(self._config)

    # --- acting ---

    def q_values(self, observations) -> np.ndarray:
        """Q-values of a batch of observations, shape `(n, num_actions)`."""
        return self.learner.q_values(self._as_batch(observations, "q_values"))

    def act(self, observation, *, epsilon: float = 0.0) -> int:
        """The action for one observation: greedy, or random with `epsilon`.

        Args:
            observation: array. One observation.
            epsilon: float. Probability of a uniformly random action. Defaults
                to `0.0` (greedy).

        Returns:
            int. The action.
        """
        epsilon = v.check_float(epsilon, "epsilon", "DQNAgent.act", max_value=1.0)
        if epsilon and self._rng.random() < epsilon:
            return int(self._rng.integers(self.num_actions))
        obs = self._as_batch(observation, "act")
        if obs.shape[0] != 1:
            v.fail(
                "DQNAgent.act",
                "observation",
                f"one observation of shape {self.observation_shape}",
                obs.shape,
            )
        return int(self.learner.greedy(obs)[0])

    def _as_batch(self, observations, func: str) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float32)
        if obs.shape == self.observation_shape:
            obs = obs[None]
        if obs.ndim != 2 or obs.shape[1:] != self.observation_shape:
            v.fail(
                f"DQNAgent.{func}",
                "observations",
                f"an observation of shape {self.observation_shape} or a batch of them",
                obs.shape,
            )
        return obs

    # --- training ---

    def train(
        self,
        steps: int,
        *,
        verbose: int = 1,
        log_every: int | None = None,
        eval_every: int | None = None,
        eval_episodes: int = 10,
        target_return: float | None = None,
        keep_best: bool = True,
    ) -> dict:
        """Trains for `steps` environment steps (continuing from earlier calls).

        With `eval_every`, the greedy policy is evaluated on its own copies of
        the environment as training goes (those steps are not counted in
        `steps`), like Stable-Baselines3's `EvalCallback`: training stops early
        once an evaluation reaches `target_return`, and with `keep_best` the
        Q-network ends with the weights of the best evaluation, since DQN's
        greedy policy can get worse late in training.

        Args:
            steps: int. Most environment steps to take.
            verbose: int. 0 is quiet, 1 prints a progress line about ten
                times (and each evaluation), 2 prints every finished episode's
                return too. Defaults to `1`.
            log_every: int or None. Steps between progress lines; None is a
                tenth of `steps`. Defaults to `None`.
            eval_every: int or None. Steps between evaluations; None never
                evaluates. Defaults to `None`.
            eval_episodes: int. Episodes per evaluation. Defaults to `10`.
            target_return: float or None. Stop once an evaluation's mean
                return reaches this. Defaults to `None`.
            keep_best: bool. End with the best-evaluated weights (when
                evaluating). Defaults to `True`.

        Returns:
            dict with "episode_returns" and "episode_lengths" (lists, episodes
            finished in this call), "evaluations" (list of (step, mean, std)),
            "steps" (taken), "seconds", "steps_per_second" (training only, not
            evaluation) and "mean_loss" (of the last training round, or None).

        Raises:
            ValueError, TypeError: for a bad argument.
        """
        func = "DQNAgent.train"
        steps = v.check_int(steps, "steps", func)
        verbose = v.check_verbose(verbose, func)
        log_every = v.check_int(log_every, "log_every", func, allow_none=True)
        eval_every = v.check_int(eval_every, "eval_every", func, allow_none=True)
        eval_episodes = v.check_int(eval_episodes, "eval_episodes", func)
        target_return = v.check_float(
            target_return, "target_return", func, min_value=None, allow_none=True
        )
        keep_best = v.check_bool(keep_best, "keep_best", func)
        progress = Progress(steps, verbose=verbose, log_every=log_every)
        evaluator = Evaluator(
            self.evaluate,  # looked up now: an instance attribute may replace it
            self.learner,
            every=eval_every,
            episodes=eval_episodes,
            total_steps=steps,
            target_return=target_return,
            keep_best=keep_best,
            verbose=verbose,
        )
        loss, i = None, 0
        while i < steps:
            i += 1
            self._collect_step(progress)
            step_loss = self._learn()
            loss = loss if step_loss is None else step_loss
            progress.after_step(
                i,
                episodes=self.episodes,
                epsilon=self._epsilon(self.steps),
                eval_seconds=evaluator.seconds,
            )
            if evaluator.after_step(i, self.steps):
                break
        evaluator.restore_best()
        return progress.summary(
            i,
            evaluations=evaluator.evaluations,
            eval_seconds=evaluator.seconds,
            loss=loss,
        )

    def _collect_step(self, progress: Progress) -> None:
        """Takes one epsilon-greedy environment step and stores it for replay."""
        if self._obs is None:  # first call, or the episode was abandoned
            self._begin_episode(first=self.steps == 0)
        obs = self._obs
        if self._rng.random() < self._epsilon(self.steps):
            action = int(self._rng.integers(self.num_actions))
        else:
            action = self.learner.act(obs)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        next_obs = np.asarray(next_obs, dtype=np.float32)
        self.buffer.add_step(
            obs,
            action,
            float(reward) * self._config["reward_scale"],
            next_obs,
            terminated,
            truncated,
        )
        self.steps += 1
        self._episode_return += float(reward)
        self._episode_length += 1
        if terminated or truncated:
            self.episodes += 1
            progress.episode_end(
                self._episode_return,
                self._episode_length,
                episode=self.episodes,
                step=self.steps,
                epsilon=self._epsilon(self.steps),
            )
            self._begin_episode()
        else:
            self._obs = next_obs

    def _begin_episode(self, *, first: bool = False) -> None:
        """Resets the environment (seeded on the very first episode)."""
        seed = self._config["seed"] if first else None
        self._obs = reset(self.env, seed=seed, seed_actions=first)
        self.buffer.clear_pending()
        self._episode_return, self._episode_length = 0.0, 0

    def _learn(self) -> float | None:
        """Trains a round when one is due and syncs the target network.

        Returns:
            The round's mean loss, or None when no round was due.
        """
        cfg = self._config
        if self.steps < cfg["learning_starts"] or len(self.buffer) == 0:
            return None  # (a loaded agent without its training state: empty)
        if self.steps == cfg["learning_starts"]:
            self._fit_scaling()
        loss = None
        if self.steps % cfg["train_freq"] == 0:
            rounds = cfg["gradient_steps"]
            size = rounds * cfg["batch_size"]
            if cfg["prioritized"]:
                batch = self.buffer.sample(size, beta=self._beta())
            else:
                batch = self.buffer.sample(size)
            loss, errors = self.learner.train_round(batch, rounds)
            self.buffer.update_priorities(batch.indices, errors)
        if self.steps - self._last_target_sync >= cfg["target_update"]:
            self.learner.sync_target()
            self._last_target_sync = self.steps
        return loss

    def _beta(self) -> float:
        """The importance-weight exponent now: linear from priority_beta to 1."""
        cfg = self._config
        frac = min(1.0, self.steps / max(1, cfg["priority_beta_steps"]))
        return cfg["priority_beta"] + frac * (1.0 - cfg["priority_beta"])

    def _fit_scaling(self) -> None:
        """With observation_scaling="warmup", standardizes with the warm-up
        play (the replay buffer before the first gradient step)."""
        if self._config["observation_scaling"] != "warmup" or len(self.buffer) < 2:
            return
        seen = self.buffer.observations[: len(self.buffer)]
        std = seen.std(axis=0)
        self.learner.set_observation_scaling(
            seen.mean(axis=0), np.where(std > 1e-6, std, 1.0)
        )

    # --- evaluation ---

    def evaluate(
        self,
        episodes: int = 10,
        *,
        seed: int | None = None,
        max_steps: int | None = None,
    ) -> tuple[float, float]:
        """Mean and standard deviation of the greedy policy's episode returns.

        The episodes run side by side on copies of the environment made from
        its spec, one batched forward pass per step, so an unfinished training
        episode is not disturbed. (An environment without a spec is played
        episode by episode, and training then starts a new episode.)

        Args:
            episodes: int. Episodes to play. Defaults to `10`.
            seed: int or None. Episode `k` starts from `reset(seed=seed + k)`.
                None draws the seed from the agent's evaluation random stream
                (seeded by the agent's `seed`). Defaults to `None`.
            max_steps: int or None. Cut each episode after this many steps;
                None relies on the environment's own time limit. Defaults to
                `None`.

        Returns:
            (mean, std): floats.

        Raises:
            ValueError, TypeError: for a bad argument.
        """
        func = "DQNAgent.evaluate"
        episodes = v.check_int(episodes, "episodes", func)
        seed = v.check_int(seed, "seed", func, min_value=0, allow_none=True)
        max_steps = v.check_int(max_steps, "max_steps", func, allow_none=True)
        if seed is None:
            seed = int(self._eval_rng.integers(2**31 - episodes))
        returns = self._play(episodes, seed=seed, max_steps=max_steps)
        return float(np.mean(returns)), float(np.std(returns))

    def _play(self, episodes: int, *, seed: int, max_steps: int | None) -> list[float]:
        spec = getattr(self.env, "spec", None)
        if spec is None:  # nothing to copy the environment from
            self._obs = None
            return [
                play_episode(
                    lambda o: int(self.learner.greedy(o[None])[0]),
                    self.env,
                    seed=seed + k,
                    max_steps=max_steps,
                )
                for k in range(episodes)
            ]
        envs = self._env_copies(episodes)
        returns, steps = play_side_by_side(
            self.learner.greedy, envs, seed=seed, max_steps=max_steps
        )
        self.evaluation_steps += steps
        return returns

    def _env_copies(self, count: int) -> list:
        """`count` copies of the environment made from its spec, kept for reuse."""
        import gymnasium

        while len(self._eval_envs) < count:
            self._eval_envs.append(gymnasium.make(self.env.spec))
        return self._eval_envs[:count]
