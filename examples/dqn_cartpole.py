"""Teach a DQN agent to balance CartPole, then ship its policy as a TFLite file.

Run from the repository root (about a minute on a laptop CPU; add ``--quick``,
or set ``KDL_QUICK=1``, for a short smoke run):

    .venv/bin/python examples/dqn_cartpole.py

It trains `kdl.rl.DQNAgent` on Gymnasium's CartPole-v1 (a return of 500 is a
perfect episode), evaluates the greedy policy, saves and reloads the agent,
exports the Q-network to TFLite and plays an episode with it in the LiteRT
interpreter. Files go to saved_models/dqn_cartpole/ (agent/, policy.tflite).
"""

from __future__ import annotations

from _quick import banner, out_dir, pick

from kdl.rl import DQNAgent, run_tflite_episode


def main() -> None:
    banner()
    out = out_dir("dqn_cartpole")
    agent = DQNAgent("CartPole-v1", seed=0, learning_starts=pick(1_000, 200))
    print(
        f"Q-network: {agent.q_network.count_params():,} weights, "
        f"{agent.num_actions} actions"
    )

    # Evaluate every 2,500 steps; stop once 10 greedy episodes average 475.
    log = agent.train(
        pick(30_000, 1_000),
        eval_every=pick(2_500, 500),
        eval_episodes=pick(10, 2),
        target_return=475,
        verbose=pick(1, 0),
    )
    print(
        f"trained {log['steps']:,} steps in {log['seconds']:.0f} s "
        f"({log['steps_per_second']:,.0f} steps/s)"
    )

    episodes = pick(20, 2)
    mean, std = agent.evaluate(episodes, seed=1_000)
    print(f"greedy return over {episodes} new episodes: {mean:.1f} +- {std:.1f}")

    folder = agent.save(out / "agent")
    same = DQNAgent.load(folder)
    print(f"saved to {folder}; reloaded agent: {same.evaluate(5, seed=7)[0]:.1f}")

    path = agent.export_tflite(out / "policy.tflite", verbose=0)
    lite = run_tflite_episode(path, "CartPole-v1", seed=1_000)
    print(
        f"{path} ({path.stat().st_size:,} bytes) plays an episode in "
        f"LiteRT with return {lite:.0f}"
    )


if __name__ == "__main__":
    main()
