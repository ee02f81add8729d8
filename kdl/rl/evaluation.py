"""Playing greedy episodes, and evaluating the policy while it trains.

`Evaluator` is kdl's counterpart of Stable-Baselines3's `EvalCallback`: the
training loop asks it after every step, and it evaluates every `every` steps,
remembers the best mean return and the weights that reached it, says when to
stop (`target_return`), and puts the best weights back at the end
(`keep_best`), since DQN's greedy policy can get worse late in training.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["Evaluator", "play_episode", "play_side_by_side", "visited_states"]


class Evaluator:
    """Evaluates the greedy policy during one training call.

    Args:
        evaluate: callable. `evaluate(episodes) -> (mean, std)` of the greedy
            returns (the agent's `evaluate`).
        learner: object with `get_weights()` and `set_weights(weights)` (a
            `kdl.rl.learner.QLearner`; `set_weights` syncs the target network).
        every: int or None. Training steps between evaluations; None never
            evaluates.
        episodes: int. Episodes per evaluation.
        total_steps: int. Steps of the training call; the last step is always
            evaluated.
        target_return: float or None. Stop once a mean return reaches this.
            Defaults to `None`.
        keep_best: bool. End with the best-evaluated weights. Defaults to
            `True`.
        verbose: int. 0 is quiet, 1 or more prints each evaluation. Defaults
            to `0`.

    Attributes:
        evaluations: list of (agent step, mean, std), one per evaluation.
        best: float. The best mean return so far (-inf before any).
        seconds: float. Time spent evaluating.

    Example:
        >>> evaluator = Evaluator(agent.evaluate, agent.learner, every=1_000,
        ...                       episodes=10, total_steps=5_000)
        >>> stop = evaluator.after_step(1_000, agent.steps)
    """

    def __init__(
        self,
        evaluate,
        learner,
        *,
        every: int | None,
        episodes: int,
        total_steps: int,
        target_return: float | None = None,
        keep_best: bool = True,
        verbose: int = 0,
    ):
        self.evaluate = evaluate
        self.learner = learner
        self.every = every
        self.episodes = episodes
        self.total_steps = total_steps
        self.target_return = target_return
        self.keep_best = keep_best
        self.verbose = verbose
        self.evaluations: list[tuple[int, float, float]] = []
        self.best = -np.inf
        self.best_weights = None
        self.seconds = 0.0

    def after_step(self, i: int, step: int) -> bool:
        """Evaluates when step `i` of this call is due; True means stop training.

        Args:
            i: int. Steps taken in this training call.
            step: int. The agent's total training steps (recorded).
        """
        if not self.every or (i % self.every != 0 and i != self.total_steps):
            return False
        return self.run(i, step)

    def run(self, i: int, step: int) -> bool:
        """Evaluates now; True when the mean return reached `target_return`."""
        t0 = time.perf_counter()
        mean, std = self.evaluate(self.episodes)
        self.seconds += time.perf_counter() - t0
        self.evaluations.append((step, mean, std))
        if self.verbose:
            print(
                f"step {i:,}/{self.total_steps:,}  evaluation: mean return "
                f"{mean:.1f} +- {std:.1f} over {self.episodes} episodes",
                flush=True,
            )
        if mean > self.best:
            self.best, self.best_weights = mean, self.learner.get_weights()
        return self.target_return is not None and mean >= self.target_return

    def restore_best(self) -> bool:
        """With `keep_best`, puts back the best weights if the last evaluation
        was worse; True when it did."""
        if (
            self.best_weights is None
            or not self.keep_best
            or self.best <= self.evaluations[-1][1]
        ):
            return False
        self.learner.set_weights(self.best_weights)
        if self.verbose:
            print(
                f"kept the weights of the best evaluation ({self.best:.1f})",
                flush=True,
            )
        return True


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


def play_side_by_side(
    policy, envs, *, seed: int, max_steps: int | None = None
) -> tuple[list[float], int]:
    """Plays one episode on each environment at once, one batched call per step.

    Args:
        policy: callable. `policy(observations) -> actions` for a float32
            batch.
        envs: list of gymnasium.Env. Environment `k` starts from
            `reset(seed=seed + k)`.
        seed: int. The first seed.
        max_steps: int or None. Cut each episode after this many steps.
            Defaults to `None`.

    Returns:
        (returns, steps): the episodes' returns, and the environment steps
        taken in all.
    """
    obs = np.stack(
        [
            np.asarray(env.reset(seed=seed + k)[0], np.float32)
            for k, env in enumerate(envs)
        ]
    )
    returns = np.zeros(len(envs))
    active = list(range(len(envs)))
    t = steps = 0
    while active:
        actions = policy(obs[active])
        t += 1
        still = []
        for k, action in zip(active, actions, strict=True):
            o, reward, terminated, truncated, _ = envs[k].step(int(action))
            returns[k] += float(reward)
            obs[k] = o
            cut = max_steps is not None and t >= max_steps
            if not (terminated or truncated or cut):
                still.append(k)
        steps += len(active)
        active = still
    return [float(r) for r in returns], steps


def visited_states(policy, env, n: int) -> np.ndarray:
    """The first `n` states `policy(observation) -> action` visits on `env`.

    Episode `k` starts from `reset(seed=<states collected so far>)`, so the
    states are reproducible. Returns a float32 array of shape `(n, ...)`.
    """
    states = []
    while len(states) < n:
        obs, _ = env.reset(seed=len(states))
        done = False
        while not done and len(states) < n:
            obs = np.asarray(obs, np.float32)
            states.append(obs)
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            done = terminated or truncated
    return np.stack(states)
