"""Deep Q-learning: watch a DQN agent learn CartPole, then play it from TFLite.

``kdl.rl.DQNAgent`` learns one estimated return per action (a Q-network built
with ``kdl.build_mlp``) from a replay buffer, with a target network and double
DQN. The script trains it on Gymnasium's CartPole-v1 with periodic greedy
evaluations, plots the return of every training episode and of each
evaluation, saves the agent, and plays one episode with the exported TFLite
policy in the LiteRT interpreter, the way a device would.
``examples/dqn_cartpole.py`` is the same workflow without the plot.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/dqn_learning_curve.py

Writes saved_models/dqn_learning_curve/ (returns.png, agent/, policy.tflite).
"""

from __future__ import annotations

from _quick import banner, out_dir, pick, plt, save_figure

from kdl.rl import DQNAgent, run_tflite_episode


def main() -> None:
    banner()
    out = out_dir("dqn_learning_curve")
    agent = DQNAgent("CartPole-v1", seed=0, learning_starts=pick(1_000, 200))
    log = agent.train(
        pick(30_000, 1_000),
        eval_every=pick(2_500, 500),
        eval_episodes=pick(10, 2),
        target_return=475,  # 500 is a perfect episode
        verbose=pick(1, 0),
    )
    print(
        f"{log['steps']:,} steps, {len(log['episode_returns'])} episodes, "
        f"{log['steps_per_second']:,.0f} steps/s"
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    ends = [
        sum(log["episode_lengths"][: i + 1]) for i in range(len(log["episode_lengths"]))
    ]
    ax.plot(ends, log["episode_returns"], ".", alpha=0.4, label="training episode")
    if log["evaluations"]:
        steps, means, stds = zip(*log["evaluations"])
        ax.errorbar(steps, means, yerr=stds, fmt="o-", label="greedy evaluation")
    ax.set(xlabel="environment step", ylabel="return", title="DQN on CartPole-v1")
    ax.legend()
    save_figure(fig, out / "returns.png")

    folder = agent.save(out / "agent")
    path = agent.export_tflite(out / "policy.tflite", verbose=0)
    print(f"agent saved to {folder}; TFLite policy {path}")
    episode_return = run_tflite_episode(path, "CartPole-v1", seed=1)
    print(f"one episode played in LiteRT: return {episode_return:.0f}")


if __name__ == "__main__":
    main()
