"""Teach a DQN agent to balance CartPole, then ship its policy as a TFLite file.

Run from the repository root (about a minute on a laptop CPU):

    .venv/bin/python examples/dqn_cartpole.py

It trains `kdl.rl.DQNAgent` on Gymnasium's CartPole-v1 (a return of 500 is a
perfect episode), evaluates the greedy policy, saves and reloads the agent,
exports the Q-network to TFLite and plays an episode with it in the LiteRT
interpreter. Files go to saved_models/dqn_cartpole/.
"""

from __future__ import annotations

from pathlib import Path

from kdl.rl import DQNAgent, run_tflite_episode

OUT = Path("saved_models") / "dqn_cartpole"


def main() -> None:
    agent = DQNAgent("CartPole-v1", seed=0)
    print(
        f"Q-network: {agent.q_network.count_params():,} weights, "
        f"{agent.num_actions} actions"
    )

    # Evaluate every 2,500 steps; stop once 10 greedy episodes average 475.
    log = agent.train(30_000, eval_every=2_500, target_return=475)
    print(
        f"trained {log['steps']:,} steps in {log['seconds']:.0f} s "
        f"({log['steps_per_second']:,.0f} steps/s)"
    )

    mean, std = agent.evaluate(20, seed=1_000)
    print(f"greedy return over 20 new episodes: {mean:.1f} +- {std:.1f}")

    folder = agent.save(OUT / "agent")
    same = DQNAgent.load(folder)
    print(f"saved to {folder}; reloaded agent: {same.evaluate(5, seed=7)[0]:.1f}")

    path = agent.export_tflite(OUT / "policy.tflite", verbose=0)
    lite = run_tflite_episode(path, "CartPole-v1", seed=1_000)
    print(
        f"{path} ({path.stat().st_size:,} bytes) plays an episode in "
        f"LiteRT with return {lite:.0f}"
    )


if __name__ == "__main__":
    main()
