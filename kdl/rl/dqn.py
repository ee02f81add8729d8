"""Deep Q-learning (DQN) with a kdl-built Q-network.

The agent learns the value of each action from rewards (Mnih et al., 2015):
an epsilon-greedy policy fills a replay buffer, and minibatches from it train
a Q-network towards the Bellman target computed with a slowly copied target
network, under the Huber loss. Double DQN (van Hasselt et al., 2016) picks the
next action with the online network and values it with the target network.

Every tensor operation runs inside a `tf.function`: acting is one compiled
forward pass (never a Keras `predict` call), and a training round runs all its
gradient steps in one compiled loop.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import numpy as np

from kdl import _validation as v
from kdl import io as kdl_io
from kdl.backend import keras, tf
from kdl.rl.replay import ReplayBuffer

__all__ = ["DQNAgent", "TFLitePolicy", "play_episode", "run_tflite_episode"]

CLASS = "DQNAgent"
CONFIG_FILE = "agent.json"
MODEL_FILE = "q_network.keras"
FORMAT_VERSION = 1


# === Environment checks ===


def _make_env(env, func: str, arg: str = "env"):
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


def _check_spaces(env, func: str, arg: str = "env"):
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
            _Described(f"{_env_name(env)} (action space {action_space})"),
        )
    if action_space.start != 0:
        v.fail(
            func,
            arg,
            "an environment whose Discrete actions start at 0",
            _Described(f"{_env_name(env)} (action space {action_space})"),
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
            _Described(
                f"{_env_name(env)} ({'image ' if image else ''}"
                f"observation space {obs_space})"
            ),
        )
    return (int(obs_space.shape[0]),), int(action_space.n)


class _Described:
    """A value shown in an error message as its description, unquoted."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _env_name(env) -> str:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env).__name__


def _env_id(env) -> str | None:
    spec = getattr(env, "spec", None)
    return None if spec is None else spec.id


def _linear_epsilon(start: float, end: float, decay_steps: int):
    """Epsilon falls linearly from `start` to `end` over `decay_steps` steps."""

    def schedule(step: int) -> float:
        if decay_steps == 0 or step >= decay_steps:
            return end
        return start + (end - start) * step / decay_steps

    return schedule


# === The agent ===


class DQNAgent:
    """A deep Q-network agent for a Gymnasium environment with discrete actions.

    The Q-network is `kdl.build_mlp(observation_shape, num_actions,
    task="regression", hidden_units=hidden_units)`: one linear output, the
    estimated return, per action. The defaults are tuned on CartPole-v1,
    where the greedy policy reaches returns near 500 (the maximum) within
    about 20,000-30,000 environment steps.

    Args:
        env: gymnasium.Env or str. The environment, or a registered id such as
            `"CartPole-v1"`. Its action space must be `Discrete` and its
            observation a 1-D `Box`.
        hidden_units: tuple of int. Hidden layers of the Q-network. Defaults to
            `(64, 64)`.
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
        seed: int or None. Seeds the network weights (through
            `keras.utils.set_random_seed`, which seeds Python, NumPy and
            TensorFlow globally), exploration, replay sampling and the
            environment resets. Defaults to `None`.

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
        hidden_units: tuple[int, ...] = (64, 64),
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
        seed: int | None = None,
    ):
        self._config = _check_config(
            hidden_units=hidden_units,
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
            seed=seed,
        )
        self.env = _make_env(env, CLASS)
        self.observation_shape, self.num_actions = _check_spaces(self.env, CLASS)
        self.env_id = _env_id(self.env)
        self._build()

    # --- construction ---

    def _build(self) -> None:
        from kdl.models.mlp import build_mlp

        cfg = self._config
        seed = cfg["seed"]
        if seed is not None:
            keras.utils.set_random_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.buffer = ReplayBuffer(
            cfg["buffer_size"],
            self.observation_shape,
            seed=None if seed is None else seed + 1,
        )
        self._epsilon = _linear_epsilon(
            cfg["epsilon_start"], cfg["epsilon_end"], cfg["epsilon_decay_steps"]
        )
        optimizer = keras.optimizers.Adam(
            learning_rate=cfg["learning_rate"], global_clipnorm=cfg["max_grad_norm"]
        )
        self.q_network = build_mlp(
            self.observation_shape,
            self.num_actions,
            task="regression",
            hidden_units=cfg["hidden_units"],
            optimizer=optimizer,
            learning_rate=cfg["learning_rate"],
            name="q_network",
        )
        self.target_network = keras.models.clone_model(self.q_network)
        self.target_network._name = "target_network"
        self.q_network.optimizer.build(self.q_network.trainable_variables)
        self._loss = keras.losses.Huber()
        self._compile_functions()
        self._sync_target()
        self.steps = 0  # environment steps trained so far
        self.episodes = 0
        self._obs = None  # observation of the unfinished training episode
        self._pending = collections.deque()  # its steps awaiting n-step returns
        self._episode_return = 0.0
        self._episode_length = 0
        self._eval_rng = np.random.default_rng(None if seed is None else seed + 2)
        self._eval_envs = []  # copies of the environment for evaluate()
        self.evaluation_steps = 0  # environment steps spent evaluating
        self._last_target_sync = 0

    def _compile_functions(self) -> None:
        q_net, target, optimizer = (
            self.q_network,
            self.target_network,
            self.q_network.optimizer,
        )
        gamma = tf.constant(self._config["gamma"], tf.float32)
        double = self._config["double"]
        obs_spec = tf.TensorSpec((None, *self.observation_shape), tf.float32)

        @tf.function(input_signature=[obs_spec])
        def greedy(observations):
            return tf.argmax(
                q_net(observations, training=False), axis=1, output_type=tf.int32
            )

        # One observation in, one scalar action out, compiled with XLA: the
        # cheapest call per environment step (no Keras predict, no slicing).
        @tf.function(
            input_signature=[tf.TensorSpec(self.observation_shape, tf.float32)],
            jit_compile=True,
        )
        def greedy_one(observation):
            q = q_net(observation[None], training=False)[0]
            return tf.argmax(q, output_type=tf.int32)

        def gradient_step(obs, actions, rewards, next_obs, terminated, horizons):
            next_q_target = target(next_obs, training=False)
            if double:
                next_actions = tf.argmax(
                    q_net(next_obs, training=False), axis=1, output_type=tf.int32
                )
                next_value = tf.gather(next_q_target, next_actions, batch_dims=1)
            else:
                next_value = tf.reduce_max(next_q_target, axis=1)
            discount = tf.pow(gamma, horizons) * (1.0 - terminated)
            targets = rewards + discount * next_value
            targets = tf.stop_gradient(targets)
            with tf.GradientTape() as tape:
                q = q_net(obs, training=True)
                chosen = tf.gather(q, actions, batch_dims=1)
                loss = self._loss(targets, chosen)
            variables = q_net.trainable_variables
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return loss

        batch_shape = (None, None)  # (gradient steps, batch size)

        @tf.function(
            input_signature=[
                tf.TensorSpec((*batch_shape, *self.observation_shape), tf.float32),
                tf.TensorSpec(batch_shape, tf.int32),
                tf.TensorSpec(batch_shape, tf.float32),
                tf.TensorSpec((*batch_shape, *self.observation_shape), tf.float32),
                tf.TensorSpec(batch_shape, tf.float32),
                tf.TensorSpec(batch_shape, tf.float32),
            ]
        )
        def train_round(obs, actions, rewards, next_obs, terminated, horizons):
            # One compiled loop over all the round's minibatches: one Python
            # call per round instead of one per gradient step.
            total = tf.constant(0.0)
            n = tf.shape(obs)[0]
            for i in tf.range(n):
                total += gradient_step(
                    obs[i],
                    actions[i],
                    rewards[i],
                    next_obs[i],
                    terminated[i],
                    horizons[i],
                )
            return total / tf.cast(n, tf.float32)

        @tf.function
        def sync_target():
            for t_var, q_var in zip(target.variables, q_net.variables, strict=True):
                t_var.assign(q_var)

        self._greedy_fn = greedy
        self._act_fn = greedy_one
        self._train_round_fn = train_round
        self._sync_fn = sync_target

    def _sync_target(self) -> None:
        self._sync_fn()

    # --- acting ---

    @property
    def config(self) -> dict:
        """The agent's hyperparameters (a copy)."""
        return dict(self._config)

    def q_values(self, observations) -> np.ndarray:
        """Q-values of a batch of observations, shape `(n, num_actions)`."""
        obs = self._as_batch(observations, "q_values")
        return self.q_network(obs, training=False).numpy()

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
        return int(self._policy(obs)[0])

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
        verbose = v.check_int(verbose, "verbose", func, min_value=0)
        log_every = v.check_int(log_every, "log_every", func, allow_none=True)
        eval_every = v.check_int(eval_every, "eval_every", func, allow_none=True)
        eval_episodes = v.check_int(eval_episodes, "eval_episodes", func)
        target_return = v.check_float(
            target_return, "target_return", func, min_value=None, allow_none=True
        )
        keep_best = v.check_bool(keep_best, "keep_best", func)
        if log_every is None:
            log_every = max(steps // 10, 1)
        cfg = self._config
        env, rng = self.env, self._rng
        train_freq, learning_starts = cfg["train_freq"], cfg["learning_starts"]
        rounds, batch = cfg["gradient_steps"], cfg["batch_size"]
        target_update = cfg["target_update"]
        returns, lengths, evaluations = [], [], []
        best, best_weights = -np.inf, None
        loss = None
        eval_seconds = 0.0

        def run_evaluation(i):
            nonlocal best, best_weights, eval_seconds
            t0 = time.perf_counter()
            mean, std = self.evaluate(eval_episodes)
            eval_seconds += time.perf_counter() - t0
            evaluations.append((self.steps, mean, std))
            if verbose:
                print(
                    f"step {i:,}/{steps:,}  evaluation: mean return "
                    f"{mean:.1f} +- {std:.1f} over {eval_episodes} episodes",
                    flush=True,
                )
            if mean > best:
                best, best_weights = mean, self.q_network.get_weights()
            return target_return is not None and mean >= target_return

        if self._obs is None:  # first call, or the episode was abandoned
            self._obs = self._reset(env, first=self.steps == 0)
            self._pending.clear()
            self._episode_return, self._episode_length = 0.0, 0
        obs = self._obs
        start = time.perf_counter()
        next_log = log_every
        i = 0
        while i < steps:
            i += 1
            # --- act ---
            if rng.random() < self._epsilon(self.steps):
                action = int(rng.integers(self.num_actions))
            else:
                action = int(self._act_fn(obs))
            next_obs, reward, terminated, truncated, _ = env.step(action)
            next_obs = np.asarray(next_obs, dtype=np.float32)
            self._store(
                obs,
                action,
                float(reward),
                next_obs,
                terminated,
                terminated or truncated,
            )
            self.steps += 1
            self._episode_return += float(reward)
            self._episode_length += 1
            if terminated or truncated:
                self.episodes += 1
                returns.append(self._episode_return)
                lengths.append(self._episode_length)
                if verbose >= 2:
                    print(
                        f"episode {self.episodes}: return "
                        f"{self._episode_return:.1f} (step {self.steps:,}, "
                        f"epsilon {self._epsilon(self.steps):.2f})",
                        flush=True,
                    )
                self._episode_return, self._episode_length = 0.0, 0
                obs = self._reset(env)
            else:
                obs = next_obs
            # --- learn ---
            if self.steps >= learning_starts and self.steps % train_freq == 0:
                loss = self._train_round(rounds, batch)
            if (
                self.steps >= learning_starts
                and self.steps - self._last_target_sync >= target_update
            ):
                self._sync_target()
                self._last_target_sync = self.steps
            if verbose and (i >= next_log or i == steps):
                next_log += log_every
                self._print_progress(i, steps, returns, start, eval_seconds)
            if eval_every and (i % eval_every == 0 or i == steps):
                if run_evaluation(i):
                    break
        self._obs = obs
        if best_weights is not None and keep_best and best > evaluations[-1][1]:
            self.q_network.set_weights(best_weights)
            self._sync_target()
            if verbose:
                print(
                    f"kept the weights of the best evaluation ({best:.1f})", flush=True
                )
        seconds = time.perf_counter() - start
        train_seconds = max(seconds - eval_seconds, 1e-9)
        return {
            "episode_returns": returns,
            "episode_lengths": lengths,
            "evaluations": evaluations,
            "steps": i,
            "seconds": seconds,
            "steps_per_second": i / train_seconds,
            "mean_loss": loss,
        }

    def _store(self, obs, action, reward, next_obs, terminated, done) -> None:
        """Adds the step's n-step transitions to the replay buffer.

        With `n_steps=n`, the transition from a state is stored once the n
        steps after it are known: its reward is their discounted sum and its
        next state the one n steps later (fewer at the episode's end).
        """
        pending, n, gamma = (
            self._pending,
            self._config["n_steps"],
            self._config["gamma"],
        )
        pending.append((obs, action, reward))
        if len(pending) < n and not done:
            return
        while pending:
            ret = 0.0
            for k, (_, _, r) in enumerate(pending):
                ret += gamma**k * r
            first_obs, first_action, _ = pending[0]
            self.buffer.add(
                first_obs, first_action, ret, next_obs, terminated, len(pending)
            )
            pending.popleft()
            if not done:
                break

    def _train_round(self, rounds: int, batch: int) -> float:
        shape = (rounds, batch)
        sample = self.buffer.sample(rounds * batch)
        loss = self._train_round_fn(*(x.reshape(shape + x.shape[1:]) for x in sample))
        return float(loss)

    def _reset(self, env, *, first: bool = False) -> np.ndarray:
        seed = self._config["seed"] if first else None
        obs, _ = env.reset(seed=seed)
        if first and seed is not None:
            env.action_space.seed(seed)
        return np.asarray(obs, dtype=np.float32)

    def _print_progress(self, i, steps, returns, start, eval_seconds) -> None:
        elapsed = time.perf_counter() - start - eval_seconds
        recent = returns[-20:]
        mean = f"{np.mean(recent):.1f}" if recent else "n/a"
        print(
            f"step {i:,}/{steps:,}  episodes {self.episodes:,}  "
            f"mean return (last {len(recent)}) {mean}  "
            f"epsilon {self._epsilon(self.steps):.2f}  "
            f"{i / max(elapsed, 1e-9):,.0f} steps/s",
            flush=True,
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

    def _policy(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions of a batch of observations."""
        return self._greedy_fn(observations).numpy()

    def _play(self, episodes: int, *, seed: int, max_steps: int | None) -> list[float]:
        spec = getattr(self.env, "spec", None)
        if spec is None:  # nothing to copy the environment from
            self._obs = None
            return [
                play_episode(
                    lambda o: int(self._policy(o[None])[0]),
                    self.env,
                    seed=seed + k,
                    max_steps=max_steps,
                )
                for k in range(episodes)
            ]
        import gymnasium

        while len(self._eval_envs) < episodes:
            self._eval_envs.append(gymnasium.make(spec))
        envs = self._eval_envs[:episodes]
        obs = np.stack(
            [
                np.asarray(env.reset(seed=seed + k)[0], np.float32)
                for k, env in enumerate(envs)
            ]
        )
        returns = np.zeros(episodes)
        active = list(range(episodes))
        t = 0
        while active:
            actions = self._policy(obs[active])
            t += 1
            still = []
            for k, action in zip(active, actions, strict=True):
                o, reward, terminated, truncated, _ = envs[k].step(int(action))
                returns[k] += float(reward)
                obs[k] = o
                if not (
                    terminated
                    or truncated
                    or (max_steps is not None and t >= max_steps)
                ):
                    still.append(k)
            self.evaluation_steps += len(active)
            active = still
        return [float(r) for r in returns]

    # --- save, load, export ---

    def save(self, path) -> Path:
        """Saves the Q-network and the agent's config into the folder `path`.

        The folder holds `q_network.keras` (written with `kdl.save`) and
        `agent.json` (the hyperparameters, the environment id and the steps
        trained). It is written to a temporary folder first and moved into
        place, so an existing save is never left half-written. The replay
        buffer and optimizer state are not saved: a loaded agent acts and
        evaluates exactly like this one, and further training starts from
        an empty buffer.

        Args:
            path: str or PathLike. The folder.

        Returns:
            pathlib.Path: the folder.

        Raises:
            TypeError: if `path` is not a path.
        """
        path = _check_path(path, "path", "DQNAgent.save")
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "format_version": FORMAT_VERSION,
            "env_id": self.env_id,
            "observation_shape": list(self.observation_shape),
            "num_actions": self.num_actions,
            "steps": self.steps,
            "episodes": self.episodes,
            "config": {
                k: list(val) if isinstance(val, tuple) else val
                for k, val in self._config.items()
            },
        }
        with kdl_io.atomic_path(path) as tmp:
            tmp.mkdir()
            kdl_io.save(self.q_network, tmp / MODEL_FILE)
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path, *, env=None) -> DQNAgent:
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
        path = _check_path(path, "path", func)
        if not (path / CONFIG_FILE).is_file() or not (path / MODEL_FILE).exists():
            raise FileNotFoundError(
                f"{path} is not a saved DQNAgent: it needs {CONFIG_FILE} and "
                f"{MODEL_FILE} (written by DQNAgent.save)."
            )
        saved = json.loads((path / CONFIG_FILE).read_text())
        if env is None:
            if saved["env_id"] is None:
                v.fail(
                    func,
                    "env",
                    "an environment (the saved agent's has no registered id)",
                    env,
                )
            env = saved["env_id"]
        env = _make_env(env, func)
        shape, num_actions = _check_spaces(env, func)
        if (
            list(shape) != saved["observation_shape"]
            or num_actions != saved["num_actions"]
        ):
            v.fail(
                func,
                "env",
                f"an environment with observations of shape "
                f"{tuple(saved['observation_shape'])} and "
                f"{saved['num_actions']} actions, like the saved agent's",
                _Described(
                    f"{_env_name(env)} (observations of shape "
                    f"{shape}, {num_actions} actions)"
                ),
            )
        kwargs = dict(saved["config"])
        kwargs["hidden_units"] = tuple(kwargs["hidden_units"])
        agent = cls(env, **kwargs)
        loaded = kdl_io.load(path / MODEL_FILE, compile=False)
        agent.q_network.set_weights(loaded.get_weights())
        agent._sync_target()
        agent.steps = int(saved["steps"])
        agent.episodes = int(saved["episodes"])
        return agent

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
            verbose: int. 0 for silence. Defaults to `1`.

        Returns:
            pathlib.Path: the file.

        Raises:
            ValueError, TypeError: for a bad argument.
            RuntimeError: if the conversion or its LiteRT check fails.
        """
        from kdl.export import to_tflite

        func = "DQNAgent.export_tflite"
        path = _check_path(path, "path", func)
        if quantization is not None:
            v.check_choice(
                quantization, "quantization", func, ("dynamic", "float16", "int8")
            )
        verbose = v.check_int(verbose, "verbose", func, min_value=0)
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
        """States from the replay buffer, or from a greedy episode when empty."""
        if len(self.buffer) >= n:
            return self.buffer.sample(n)[0]
        import gymnasium

        env = (
            self._eval_envs[0]
            if self._eval_envs
            else (gymnasium.make(self.env.spec) if self.env.spec else self.env)
        )
        states = []
        while len(states) < n:
            obs, _ = env.reset(seed=len(states))
            done = False
            while not done and len(states) < n:
                obs = np.asarray(obs, np.float32)
                states.append(obs)
                obs, _, terminated, truncated, _ = env.step(
                    int(self._policy(obs[None])[0])
                )
                done = terminated or truncated
        if env is self.env:
            self._obs = None
        return np.stack(states)


# === Helpers ===


def play_episode(policy, env, *, seed=None, max_steps=None) -> float:
    """Plays one episode with `policy(observation) -> action`; its return."""
    obs, _ = env.reset(seed=seed)
    total, t, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(
            policy(np.asarray(obs, np.float32))
        )
        total += float(reward)
        t += 1
        done = terminated or truncated or (max_steps is not None and t >= max_steps)
    return total


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
    func = "run_tflite_episode"
    path = _check_path(path, "path", func)
    v.check_int(seed, "seed", func, min_value=0, allow_none=True)
    v.check_int(max_steps, "max_steps", func, allow_none=True)
    if not path.is_file():
        raise FileNotFoundError(f"No TFLite file at {path}.")
    env = _make_env(env, func)
    _check_spaces(env, func)
    policy = TFLitePolicy(path)
    return play_episode(policy, env, seed=seed, max_steps=max_steps)


class TFLitePolicy:
    """The greedy policy of a TFLite Q-network, run in the LiteRT interpreter.

    A thin layer over `kdl.export.load_tflite`: one observation per call, the
    action is the argmax of the file's Q-values.

    Args:
        path: str or PathLike. The `.tflite` file.

    Example:
        >>> policy = TFLitePolicy("cartpole.tflite")
        >>> action = policy(observation)
    """

    def __init__(self, path):
        from kdl.export import load_tflite

        self.model = load_tflite(path)

    def q_values(self, observation) -> np.ndarray:
        """Q-values of one observation, shape `(num_actions,)`."""
        x = np.asarray(observation, np.float32)[None]
        return self.model.predict(x)[0]

    def __call__(self, observation) -> int:
        return int(np.argmax(self.q_values(observation)))


def _check_config(**cfg) -> dict:
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


def _check_path(path, arg: str, func: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        v.fail(func, arg, "a str or PathLike path", path, error=TypeError)
    return Path(path)
