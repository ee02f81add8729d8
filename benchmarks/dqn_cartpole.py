"""Benchmark: DQN on CartPole-v1, goal mean return >= 475 over 100 episodes
within 50,000 training steps (Stable-Baselines3's zoo reports 500 at 50,000
steps for its DQN).

Run from the repository root (a few minutes on one CPU core):

    .venv/bin/python benchmarks/dqn_cartpole.py [--seeds 0 1 2] [--steps 50000]
        [--plain]

For each seed it trains `kdl.rl.DQNAgent` with its defaults, evaluating the
greedy policy every 2,500 steps on 10 episodes (those evaluation steps are
reported, not counted in the training budget), stopping at a perfect 500 and
keeping the best weights, then plays 100 new greedy episodes. With --plain it
trains the whole budget without evaluating and judges the final weights.
It prints one line per seed and a summary, and exits with status 1 if any
seed misses the goal. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
import time

from kdl.rl import DQNAgent

GOAL = 475.0


def run(seed: int, steps: int, *, plain: bool = False) -> dict:
    agent = DQNAgent("CartPole-v1", seed=seed)
    start = time.perf_counter()
    if plain:
        log = agent.train(steps, verbose=0)
    else:
        log = agent.train(
            steps, verbose=0, eval_every=2_500, eval_episodes=10, target_return=500.0
        )
    train_seconds = time.perf_counter() - start
    evaluation_steps = agent.evaluation_steps  # during training only
    mean, std = agent.evaluate(100, seed=100_000 + seed)
    return {
        "seed": seed,
        "steps": log["steps"],
        "mean": mean,
        "std": std,
        "steps_per_second": log["steps_per_second"],
        "train_seconds": train_seconds,
        "evaluation_steps": evaluation_steps,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument(
        "--plain", action="store_true", help="no evaluation during training"
    )
    args = parser.parse_args(argv)
    results = []
    for seed in args.seeds:
        r = run(seed, args.steps, plain=args.plain)
        results.append(r)
        ok = "PASS" if r["mean"] >= GOAL else "FAIL"
        print(
            f"seed {seed}: {ok} mean return {r['mean']:.1f} +- {r['std']:.1f} "
            f"over 100 episodes after {r['steps']:,} training steps "
            f"({r['steps_per_second']:,.0f} steps/s, {r['train_seconds']:.0f} s "
            f"including {r['evaluation_steps']:,} evaluation steps)",
            flush=True,
        )
    passed = sum(r["mean"] >= GOAL for r in results)
    print(
        f"goal: mean return >= {GOAL:.0f} over 100 episodes within "
        f"{args.steps:,} steps; {passed}/{len(results)} seeds reached it"
    )
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
