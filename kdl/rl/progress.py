"""The episode statistics and progress lines of one training call."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["Progress"]


class Progress:
    """Records finished training episodes and prints progress while training.

    Args:
        total_steps: int. Steps of the training call.
        verbose: int. 0 is quiet, 1 prints a progress line every `log_every`
            steps (and at the last one), 2 also prints every finished episode.
        log_every: int or None. Steps between progress lines; None is a tenth
            of `total_steps`. Defaults to `None`.

    Attributes:
        returns, lengths: lists. Return and length of each finished episode.
    """

    def __init__(self, total_steps: int, *, verbose: int, log_every: int | None = None):
        self.total_steps = total_steps
        self.verbose = verbose
        self.log_every = (
            log_every if log_every is not None else max(total_steps // 10, 1)
        )
        self.next_log = self.log_every
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.start = time.perf_counter()

    def episode_end(
        self,
        episode_return: float,
        length: int,
        *,
        episode: int,
        step: int,
        epsilon: float,
    ) -> None:
        """Records a finished episode (printing it with `verbose=2`)."""
        self.returns.append(episode_return)
        self.lengths.append(length)
        if self.verbose >= 2:
            print(
                f"episode {episode}: return {episode_return:.1f} (step {step:,}, "
                f"epsilon {epsilon:.2f})",
                flush=True,
            )

    def after_step(
        self, i: int, *, episodes: int, epsilon: float, eval_seconds: float
    ) -> None:
        """Prints a progress line when step `i` of this call is due.

        The speed counts training time only: `eval_seconds` (spent evaluating)
        is left out.
        """
        if not self.verbose or (i < self.next_log and i != self.total_steps):
            return
        self.next_log += self.log_every
        elapsed = time.perf_counter() - self.start - eval_seconds
        recent = self.returns[-20:]
        mean = f"{np.mean(recent):.1f}" if recent else "n/a"
        print(
            f"step {i:,}/{self.total_steps:,}  episodes {episodes:,}  "
            f"mean return (last {len(recent)}) {mean}  "
            f"epsilon {epsilon:.2f}  "
            f"{i / max(elapsed, 1e-9):,.0f} steps/s",
            flush=True,
        )

    def summary(self, steps: int, *, evaluations, eval_seconds: float, loss) -> dict:
        """The log `DQNAgent.train` returns (see its docstring)."""
        seconds = time.perf_counter() - self.start
        train_seconds = max(seconds - eval_seconds, 1e-9)
        return {
            "episode_returns": self.returns,
            "episode_lengths": self.lengths,
            "evaluations": evaluations,
            "steps": steps,
            "seconds": seconds,
            "steps_per_second": steps / train_seconds,
            "mean_loss": loss,
        }
