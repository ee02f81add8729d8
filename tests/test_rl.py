"""Tests of kdl.rl: the DQN agent, its replay buffer, save/load and TFLite export.

One agent is trained once on CartPole-v1 (module fixture) and shared by the
slow tests; the argument checks build nothing and run fast.
"""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from kdl.rl import (
    DQNAgent,
    Evaluator,
    NStepReplayBuffer,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    TFLitePolicy,
    run_tflite_episode,
)


def _has_box2d() -> bool:
    try:
        import Box2D  # noqa: F401
    except ImportError:
        return False
    return True


TRAIN_STEPS = 30_000  # the budget; training may stop earlier
SEED = 0
# Under `pytest -n 2 --dist loadgroup` the tests sharing the trained agent run
# on one worker, so it is trained once per run.
SAME_WORKER = pytest.mark.xdist_group("rl_trained_agent")


class _ImageEnv(gymnasium.Env):
    """A Discrete-action environment with image observations (not for DQN)."""

    observation_space = spaces.Box(0, 255, (84, 84, 3), np.uint8)
    action_space = spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


class _Corridor(gymnasium.Env):
    """Ten steps of reward 1, any action; not registered, so it has no spec."""

    observation_space = spaces.Box(0.0, 20.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, 1.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, 1.0], np.float32), 1.0, self.t >= 10, False, {}


@pytest.fixture(scope="module")
def trained():
    """A DQN agent trained on CartPole-v1 with a fixed seed, and its log.

    Training evaluates 10 greedy episodes every 2,500 steps and stops once
    they average 400 (or at the issue's budget of 30,000 steps), keeping the
    best-evaluated weights. The tests then judge it on new episodes.
    """
    agent = DQNAgent("CartPole-v1", seed=SEED)
    log = agent.train(
        TRAIN_STEPS, verbose=0, eval_every=2_500, eval_episodes=10, target_return=400.0
    )
    return agent, log


def _states(agent, n=300):
    """States the trained policy visits, from its replay buffer."""
    return agent.buffer.sample(n)[0]


# === Learning ===


@pytest.mark.heavy
@pytest.mark.slow
@SAME_WORKER
def test_trained_agent_balances_the_pole(trained):
    agent, log = trained
    assert agent.steps <= 30_000
    mean, std = agent.evaluate(20, seed=123)
    assert mean >= 150, f"mean greedy return {mean:.1f} +- {std:.1f}"
    assert std >= 0
    # It learned: later training episodes last far longer than random play
    # (a random policy averages about 22 steps on CartPole).
    assert np.mean(log["episode_returns"][-10:]) > 3 * np.mean(
        log["episode_returns"][:10]
    )
    assert log["steps"] == agent.steps and log["steps_per_second"] > 0


@pytest.mark.heavy
@pytest.mark.slow
@SAME_WORKER
def test_evaluate_is_reproducible_with_a_seed(trained):
    agent, _ = trained
    assert agent.evaluate(3, seed=7) == agent.evaluate(3, seed=7)


# === TFLite ===


@pytest.mark.heavy
@pytest.mark.slow
@SAME_WORKER
def test_tflite_policy_takes_the_keras_actions(trained, tmp_path):
    agent, _ = trained
    path = agent.export_tflite(tmp_path / "policy.tflite")
    assert path.is_file() and path.stat().st_size > 0
    states = _states(agent)
    policy = TFLitePolicy(path)
    keras_q = agent.q_values(states)
    lite_q = np.stack([policy.q_values(s) for s in states])
    np.testing.assert_allclose(lite_q, keras_q, rtol=1e-4, atol=1e-4)
    lite_actions = [policy(s) for s in states]
    assert lite_actions == [agent.act(s) for s in states]
    assert lite_actions == list(np.argmax(keras_q, axis=1))
    # A whole LiteRT episode plays exactly like the Keras policy.
    lite_return = run_tflite_episode(path, "CartPole-v1", seed=5)
    assert lite_return == agent.evaluate(1, seed=5)[0]


# Run in a fresh interpreter where importing TensorFlow or Keras fails, as on
# a device with only NumPy and LiteRT (issue 14).
_WITHOUT_TENSORFLOW = """
import sys

class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "tf_keras", "keras"}:
            raise ImportError(name + " is not installed on this device")

sys.meta_path.insert(0, _NoTensorFlow())
import numpy as np
from kdl.rl import TFLitePolicy

policy = TFLitePolicy(sys.argv[1])
print(" ".join(str(policy(s)) for s in np.load(sys.argv[2])))
"""


@pytest.mark.heavy
@pytest.mark.slow
@SAME_WORKER
def test_tflite_policy_runs_without_tensorflow(trained, tmp_path):
    agent, _ = trained
    path = agent.export_tflite(tmp_path / "policy.tflite", verbose=0)
    states = _states(agent, 100)
    np.save(tmp_path / "states.npy", states)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITHOUT_TENSORFLOW,
            str(path),
            str(tmp_path / "states.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    actions = [int(a) for a in done.stdout.split()]
    assert actions == [agent.act(s) for s in states]


@pytest.mark.heavy
@pytest.mark.slow
@SAME_WORKER
def test_dynamic_range_tflite_policy_still_balances(trained, tmp_path):
    agent, _ = trained
    path = agent.export_tflite(tmp_path / "dynamic.tflite", quantization="dynamic")
    assert run_tflite_episode(path, "CartPole-v1", seed=5, max_steps=200) >= 100


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        ("missing.tflite", FileNotFoundError, "No TFLite file"),
        (3, TypeError, "'path' parameter of run_tflite_episode"),
        ("", TypeError, "'path' parameter of run_tflite_episode"),
    ],
)
def test_run_tflite_episode_checks_its_arguments(tmp_path, path, error, match):
    if isinstance(path, str) and path:
        path = tmp_path / path
    with pytest.raises(error, match=match):
        run_tflite_episode(path, "CartPole-v1")


# === Save and load ===


@pytest.mark.heavy
@pytest.mark.slow
@SAME_WORKER
def test_save_and_load_give_the_same_actions(trained, tmp_path):
    agent, _ = trained
    folder = agent.save(tmp_path / "agent")
    saved = json.loads((folder / "agent.json").read_text())
    assert saved["env_id"] == "CartPole-v1" and saved["steps"] == agent.steps
    loaded = DQNAgent.load(folder)
    states = _states(agent)
    np.testing.assert_allclose(
        loaded.q_values(states), agent.q_values(states), rtol=1e-6, atol=1e-6
    )
    assert [loaded.act(s) for s in states] == [agent.act(s) for s in states]
    assert loaded.config == agent.config and loaded.steps == agent.steps
    assert loaded.evaluate(2, seed=11) == agent.evaluate(2, seed=11)


def test_save_replaces_an_existing_save_whole(tmp_path):
    first = DQNAgent("CartPole-v1", dense_units=(8,), seed=1)
    second = DQNAgent("CartPole-v1", dense_units=(8,), seed=2)
    folder = tmp_path / "agent"
    first.save(folder)
    second.save(folder)
    states = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    loaded = DQNAgent.load(folder)
    np.testing.assert_allclose(
        loaded.q_values(states), second.q_values(states), rtol=1e-6
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]


def test_load_rejects_a_missing_save_and_a_mismatched_env(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved DQNAgent"):
        DQNAgent.load(tmp_path)
    folder = DQNAgent("CartPole-v1", dense_units=(8,), seed=0).save(tmp_path / "agent")
    with pytest.raises(
        ValueError, match="'env' parameter of DQNAgent.load.*Acrobot-v1"
    ):
        DQNAgent.load(folder, env="Acrobot-v1")


# === Training loop ===


def test_train_prints_progress_and_is_quiet_with_verbose_0(capsys):
    agent = DQNAgent(
        "CartPole-v1",
        dense_units=(8,),
        learning_starts=100,
        train_freq=50,
        gradient_steps=2,
        seed=0,
    )
    log = agent.train(200, verbose=1, log_every=100)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "step 200/200" in lines[-1]
    assert "steps/s" in lines[-1]
    agent.train(100, verbose=0)
    assert capsys.readouterr().out == ""
    agent.train(100, verbose=2)
    assert "episode" in capsys.readouterr().out
    # Episodes are accounted for, and training continues across calls.
    assert agent.steps == 400
    assert len(agent.buffer) + len(agent.buffer.pending) == 400  # n-step: some wait
    assert sum(log["episode_lengths"]) <= 200
    assert log["episode_returns"] == [float(n) for n in log["episode_lengths"]]


def test_act_explores_with_epsilon_and_is_greedy_without():
    agent = DQNAgent("CartPole-v1", dense_units=(8,), seed=0)
    obs = np.array([0.01, -0.02, 0.03, 0.04], np.float32)
    greedy = agent.act(obs)
    assert {agent.act(obs) for _ in range(20)} == {greedy}
    assert {agent.act(obs, epsilon=1.0) for _ in range(50)} == {0, 1}
    assert greedy == int(np.argmax(agent.q_values(obs)[0]))


def test_agent_accepts_an_env_instance_and_builds_a_kdl_q_network():
    env = gymnasium.make("Acrobot-v1")
    agent = DQNAgent(env, dense_units=(16, 8), seed=0)
    model = agent.q_network
    assert model.input_shape == (None, 6) and model.output_shape == (None, 3)
    assert [layer.name for layer in model.layers][-1] == "predictions"
    assert model.get_layer("dense1").units == 16
    assert agent.target_network is not model
    for a, b in zip(
        agent.target_network.get_weights(), model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)


# === Replay buffer ===


def test_replay_buffer_is_a_ring():
    buffer = ReplayBuffer(3, (2,), seed=0)
    for i in range(5):
        buffer.add(np.full(2, i), i % 2, float(i), np.full(2, i + 1), i == 4)
    assert len(buffer) == 3
    batch = buffer.sample(64)
    assert batch.observations.shape == (64, 2) == batch.next_observations.shape
    assert set(batch.rewards) == {2.0, 3.0, 4.0}  # the oldest two are gone
    np.testing.assert_array_equal(
        batch.observations[:, 0] + 1, batch.next_observations[:, 0]
    )
    np.testing.assert_array_equal(batch.terminated, batch.rewards == 4.0)
    np.testing.assert_array_equal(batch.actions, batch.rewards % 2)
    np.testing.assert_array_equal(batch.horizons, 1.0)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(3, (2,)).sample(1)


def test_n_step_buffer_folds_rewards_and_flushes_at_the_episode_end():
    buffer = NStepReplayBuffer(10, (1,), n_steps=3, gamma=0.5, seed=0)
    stored = []
    for t in range(4):
        buffer.add_step(np.full(1, t), t % 2, 1.0, np.full(1, t + 1), t == 3)
        stored.append(len(buffer))
    assert stored == [0, 0, 1, 4]
    # Steps 0-2 give one 3-step transition; the fall at step 3 flushes the
    # rest with horizons 3, 2, 1, all terminal.
    assert len(buffer) == 4 and not buffer.pending
    np.testing.assert_array_equal(buffer.horizons[:4], [3, 3, 2, 1])
    np.testing.assert_allclose(buffer.rewards[:4], [1.75, 1.75, 1.5, 1.0])
    np.testing.assert_array_equal(buffer.observations[:4, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(buffer.next_observations[:4, 0], [3, 4, 4, 4])
    np.testing.assert_array_equal(buffer.terminated[:4], [0, 1, 1, 1])
    # A time limit flushes too, but the transition still bootstraps.
    buffer.add_step(np.zeros(1), 0, 2.0, np.ones(1), False, truncated=True)
    assert len(buffer) == 5 and not buffer.pending
    assert buffer.terminated[4] == 0 and buffer.horizons[4] == 1
    assert buffer.rewards[4] == 2.0
    # An abandoned episode's waiting steps are dropped.
    buffer.add_step(np.zeros(1), 0, 1.0, np.ones(1), False)
    assert len(buffer.pending) == 1
    buffer.clear_pending()
    assert not buffer.pending and len(buffer) == 5


class _Weights:
    """A stand-in learner: its "weights" are one number."""

    def __init__(self):
        self.weights = 0

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights


def test_evaluator_runs_when_due_stops_at_the_target_and_keeps_the_best():
    scores = {10: 5.0, 20: 30.0, 25: 20.0}
    learner = _Weights()
    evaluator = Evaluator(
        lambda episodes: (scores[learner.weights], float(episodes)),
        learner,
        every=10,
        episodes=3,
        total_steps=25,
        keep_best=True,
    )
    for i in range(1, 26):
        learner.weights = i  # training changes the weights every step
        assert evaluator.after_step(i, 100 + i) is False
    # Every 10 steps and at the last one; the step recorded is the agent's.
    assert evaluator.evaluations == [
        (110, 5.0, 3.0),
        (120, 30.0, 3.0),
        (125, 20.0, 3.0),
    ]
    assert evaluator.best == 30.0 and evaluator.seconds >= 0
    assert evaluator.restore_best() is True and learner.weights == 20

    stopping = Evaluator(
        lambda episodes: (50.0, 0.0),
        _Weights(),
        every=5,
        episodes=1,
        total_steps=100,
        target_return=50.0,
    )
    assert [stopping.after_step(i, i) for i in (4, 5)] == [False, True]
    # The last evaluation is the best: nothing to put back.
    assert stopping.restore_best() is False


def test_evaluation_during_training_restarts_an_env_without_spec():
    # An environment without a spec cannot be copied, so evaluation plays on
    # the training environment itself; training must then start a new
    # episode instead of stepping the one the evaluation finished.
    agent = DQNAgent(_Corridor(), dense_units=(8,), learning_starts=1_000, seed=0)
    log = agent.train(100, verbose=0, eval_every=25, eval_episodes=2)
    assert [e[0] for e in log["evaluations"]] == [25, 50, 75, 100]
    assert [e[1] for e in log["evaluations"]] == [10.0] * 4
    assert log["episode_lengths"] and set(log["episode_lengths"]) == {10}
    assert agent.episodes == len(log["episode_lengths"])


def test_n_step_transitions_sum_discounted_rewards():
    gamma = 0.9
    agent = DQNAgent(
        "CartPole-v1",
        dense_units=(8,),
        n_steps=3,
        gamma=gamma,
        learning_starts=10_000,
        seed=0,
    )
    log = agent.train(300, verbose=0)
    buffer = agent.buffer
    n = len(buffer)
    assert n == 300 - len(agent.buffer.pending) and 0 <= len(agent.buffer.pending) < 3
    horizons = buffer.horizons[:n]
    terminated = buffer.terminated[:n].astype(bool)
    # CartPole pays 1 per step: an h-step transition's reward is sum gamma^k.
    expected = (1 - gamma**horizons) / (1 - gamma)
    np.testing.assert_allclose(buffer.rewards[:n], expected, rtol=1e-6)
    # Mid-episode transitions span 3 steps; the last 3 of a fallen episode
    # span 3, 2, 1 steps and are terminal.
    ends = np.flatnonzero(horizons == 1)
    assert len(ends) == len(log["episode_lengths"])
    for end in ends:
        np.testing.assert_array_equal(horizons[end - 2 : end + 1], [3, 2, 1])
        assert terminated[end - 2 : end + 1].all()
    assert terminated.sum() == 3 * len(ends)
    # The stored next observation is the one 3 steps later.
    mid = np.flatnonzero(horizons == 3)[:-3]
    np.testing.assert_array_equal(
        buffer.next_observations[mid[0]], buffer.observations[mid[0] + 3]
    )


def test_train_evaluates_stops_early_and_keeps_the_best_weights(monkeypatch):
    agent = DQNAgent(
        "CartPole-v1",
        dense_units=(8,),
        learning_starts=50,
        train_freq=10,
        gradient_steps=4,
        seed=0,
    )
    log = agent.train(
        1_000, verbose=0, eval_every=100, eval_episodes=2, target_return=0.0
    )
    assert log["steps"] == 100 and agent.steps == 100
    assert [e[0] for e in log["evaluations"]] == [100]
    assert agent.evaluation_steps > 0

    scores = iter([50.0, 10.0, 20.0])
    snapshots = []

    def fake_evaluate(episodes):
        snapshots.append(agent.q_network.get_weights())
        return next(scores), 0.0

    monkeypatch.setattr(agent, "evaluate", fake_evaluate)
    log = agent.train(300, verbose=0, eval_every=100)
    assert [e[1] for e in log["evaluations"]] == [50.0, 10.0, 20.0]
    for kept, best in zip(agent.q_network.get_weights(), snapshots[0], strict=True):
        np.testing.assert_array_equal(kept, best)
    for target, best in zip(
        agent.target_network.get_weights(), snapshots[0], strict=True
    ):
        np.testing.assert_array_equal(target, best)


# === Bad environments and arguments ===


@pytest.mark.parametrize(
    ("env", "error", "match"),
    [
        ("Pendulum-v1", ValueError, "Discrete action space.*Box"),
        ("MountainCarContinuous-v0", ValueError, "Discrete action space"),
        (_ImageEnv(), ValueError, "vector observation.*image observation"),
        ("FrozenLake-v1", ValueError, "vector observation"),
        ("NoSuchEnv-v0", ValueError, "registered Gymnasium id"),
        (42, TypeError, "gymnasium.Env"),
    ],
)
def test_unsupported_environments_get_a_clear_error(env, error, match):
    with pytest.raises(error, match=f"The 'env' parameter of DQNAgent.*{match}"):
        DQNAgent(env)


@pytest.mark.parametrize(
    ("kwargs", "error", "arg", "match"),
    [
        ({"gamma": 1.5}, ValueError, "gamma", "<= 1.0. Got 1.5 instead"),
        ({"learning_rate": 0}, ValueError, "learning_rate", "> 0.0"),
        ({"dense_units": ()}, ValueError, "dense_units", "at least 1"),
        ({"dense_units": "64"}, TypeError, "dense_units", "tuple of ints"),
        ({"batch_size": 0}, ValueError, "batch_size", "positive int"),
        (
            {"batch_size": 128, "buffer_size": 64},
            ValueError,
            "batch_size",
            "at most buffer_size",
        ),
        ({"target_update": 2.5}, TypeError, "target_update", "positive int"),
        ({"double": "yes"}, TypeError, "double", "a bool"),
        ({"epsilon_end": -0.1}, ValueError, "epsilon_end", ">= 0.0"),
        (
            {"epsilon_decay_steps": -1},
            ValueError,
            "epsilon_decay_steps",
            "non-negative",
        ),
        ({"max_grad_norm": 0.0}, ValueError, "max_grad_norm", "> 0.0"),
        ({"seed": -1}, ValueError, "seed", "non-negative"),
        ({"loss": "l1"}, ValueError, "loss", "one of 'huber', 'mse'"),
        ({"tau": 0.0}, ValueError, "tau", "> 0.0"),
        ({"tau": 1.5}, ValueError, "tau", "<= 1.0"),
        ({"dueling": 1}, TypeError, "dueling", "bool"),
        ({"priority_beta": 2.0}, ValueError, "priority_beta", "<= 1.0"),
        (
            {"observation_scaling": "minmax"},
            ValueError,
            "observation_scaling",
            "one of 'bounds', 'warmup'",
        ),
        (
            {"observation_scaling": "warmup", "learning_starts": 0},
            ValueError,
            "learning_starts",
            "at least 2",
        ),
        ({"reward_scale": 0.0}, ValueError, "reward_scale", "> 0.0"),
    ],
)
def test_bad_arguments_get_a_clear_error(kwargs, error, arg, match):
    with pytest.raises(
        error, match=f"The '{arg}' parameter of DQNAgent must be .*{match}"
    ):
        DQNAgent("CartPole-v1", **kwargs)


@pytest.fixture(scope="module")
def small_agent():
    """An untrained agent with a tiny Q-network, for argument checks."""
    return DQNAgent("CartPole-v1", dense_units=(8,), seed=0)


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "error", "match"),
    [
        ("train", (0,), {}, ValueError, "'steps' parameter of DQNAgent.train"),
        (
            "train",
            (10,),
            {"verbose": 3},
            ValueError,
            "'verbose' parameter of DQNAgent.train must be 0, 1 or 2",
        ),
        (
            "train",
            (10,),
            {"verbose": "1"},
            TypeError,
            "'verbose' parameter of DQNAgent.train",
        ),
        ("evaluate", (0,), {}, ValueError, "'episodes' parameter of DQNAgent.evaluate"),
        ("q_values", (np.zeros((2, 5)),), {}, ValueError, "'observations' parameter"),
        (
            "export_tflite",
            ("p.tflite",),
            {"quantization": "int4"},
            ValueError,
            "'quantization' parameter",
        ),
        ("save", (None,), {}, TypeError, "'path' parameter of DQNAgent.save"),
        ("save", ("",), {}, TypeError, "'path' parameter of DQNAgent.save"),
    ],
)
def test_bad_method_arguments_get_a_clear_error(
    small_agent, tmp_path, method, args, kwargs, error, match
):
    if method == "export_tflite":
        args = (tmp_path / args[0],)
    with pytest.raises(error, match=match):
        getattr(small_agent, method)(*args, **kwargs)
    assert not list(tmp_path.iterdir())  # nothing written


# === Options of issue 28: dueling, prioritized replay, scaling, checkpoints ===


def test_prioritized_replay_favours_large_errors_and_weights_them_down():
    buffer = PrioritizedReplayBuffer(100, (1,), alpha=1.0, seed=0)
    for i in range(100):
        buffer.add_step(np.array([i], np.float32), 0, 0.0, np.zeros(1), True)
    errors = np.full(100, 0.01)
    errors[7] = 10.0  # one transition with a large TD error
    buffer.update_priorities(np.arange(100), errors)
    batch = buffer.sample(1000, beta=1.0)
    share = np.mean(batch.indices == 7)
    assert share > 0.8, share  # priority 10 against 99 * 0.01
    # importance weights undo the bias: the favoured row weighs least
    assert batch.weights[batch.indices == 7].max() < batch.weights.min() + 1e-6
    assert batch.weights.max() == pytest.approx(1.0)
    uniform = ReplayBuffer(100, (1,), seed=0)
    uniform.add(np.zeros(1), 0, 0.0, np.zeros(1), True)
    np.testing.assert_array_equal(uniform.sample(5).weights, np.ones(5))


def test_dueling_scaled_network_is_replayed_in_numpy_and_maps_bounds():
    agent = DQNAgent(
        "MountainCar-v0",
        dense_units=(16,),
        dueling=True,
        observation_scaling="bounds",
        seed=0,
    )
    names = [layer.name for layer in agent.q_network.layers]
    assert names[1] == "normalize_observations" and "value_advantage" in names
    # MountainCar's bounds: position [-1.2, 0.6], velocity [-0.07, 0.07]
    scaling = agent.q_network.get_layer("normalize_observations")
    low = np.array([[-1.2, -0.07], [0.6, 0.07]], np.float32)
    np.testing.assert_allclose(scaling(low).numpy(), [[-1, -1], [1, 1]], atol=1e-5)
    obs = np.random.default_rng(0).uniform(low[0], low[1], (50, 2)).astype("float32")
    np.testing.assert_allclose(
        agent.learner.numpy_policy.q_values(obs), agent.q_values(obs), atol=1e-5
    )
    # Q = V + A - mean(A): the mean over actions of Q is V alone
    head = agent.q_network.get_layer("predictions").get_weights()[0]
    np.testing.assert_allclose(head.sum(axis=1), [3.0, 0, 0, 0], atol=1e-6)


def test_checkpoint_resumes_with_replay_target_and_optimizer(tmp_path):
    agent = DQNAgent(
        "CartPole-v1",
        dense_units=(8,),
        prioritized=True,
        observation_scaling="warmup",
        learning_starts=100,
        train_freq=50,
        gradient_steps=2,
        seed=0,
    )
    agent.train(300, verbose=0)
    agent.save(tmp_path / "ckpt", training_state=True)
    resumed = DQNAgent.load(tmp_path / "ckpt")
    assert resumed.steps == 300 and len(resumed.buffer) == len(agent.buffer)
    np.testing.assert_array_equal(resumed.buffer.priorities, agent.buffer.priorities)
    for a, b in zip(
        resumed.target_network.get_weights(), agent.target_network.get_weights()
    ):
        np.testing.assert_array_equal(a, b)
    iterations = resumed.q_network.optimizer.iterations
    assert int(iterations) == int(agent.q_network.optimizer.iterations) > 0
    states = agent.buffer.sample(20)[0]
    np.testing.assert_allclose(resumed.q_values(states), agent.q_values(states))
    resumed.train(100, verbose=0)  # goes on from the restored buffer
    assert resumed.steps == 400


@pytest.mark.slow
def test_kdl_rl_resumes_from_its_out_folder_and_exports_tflite(tmp_path, capsys):
    from kdl import cli

    out, tflite = tmp_path / "agent", tmp_path / "policy.tflite"
    common = ["rl", "Acrobot-v1", "--episodes", "1", "--out", str(out)]
    assert cli.main([*common, "--steps", "200", "--quiet"]) == 0
    capsys.readouterr()
    status = cli.main(
        [*common, "--steps", "300", "--checkpoint-every", "50", "--tflite", str(tflite)]
    )
    captured = capsys.readouterr()  # progress on stderr, the result on stdout
    assert status == 0 and "resuming from" in captured.err
    assert "at step 200" in captured.err
    result = json.loads(captured.out)
    assert result["steps"] == 300 and tflite.is_file()
    assert json.loads((out / "agent.json").read_text())["steps"] == 300
    # the exported policy (scaling layer included) takes the agent's actions
    agent = DQNAgent.load(out)
    states = np.random.default_rng(0).uniform(-1, 1, (20, 6)).astype("float32")
    policy = TFLitePolicy(tflite)
    assert [policy(s) for s in states] == list(agent.learner.greedy(states))


# One short run per environment, each asserting learning far above random
# play, with the environment's preset (kdl.rl.presets).
LEARNING = [
    # env, steps, random play's mean return, what learning must beat
    ("Acrobot-v1", 15_000, -500.0, -250.0),
    ("MountainCar-v0", 40_000, -200.0, -180.0),
    pytest.param(
        "LunarLander-v3",
        40_000,
        -180.0,
        -60.0,
        marks=pytest.mark.skipif(
            not _has_box2d(), reason="gymnasium[box2d] is not installed"
        ),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("env", "steps", "random_return", "beat"), LEARNING)
def test_preset_learns_far_above_random(env, steps, random_return, beat):
    agent = DQNAgent.for_env(env, seed=0)
    agent.train(steps, verbose=0, eval_every=steps // 4, target_return=beat + 50)
    mean, std = agent.evaluate(10, seed=1)
    assert mean > beat, f"{env}: {mean:.1f} +- {std:.1f} (random {random_return})"
