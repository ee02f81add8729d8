"""The Q-network, its target network, and the compiled steps that act and learn.

Every tensor operation runs inside a `tf.function`: acting is one compiled
forward pass (never a Keras `predict` call), and a training round runs all
its gradient steps in one compiled loop (one Python call per round instead
of one per gradient step).
"""

from __future__ import annotations

import numpy as np

from kdl.backend import keras, tf

__all__ = ["QLearner"]


class QLearner:
    """A Q-network built with `kdl.build_mlp`, its target network and their steps.

    The loss is the Huber loss between the Q-value of the action taken and
    the bootstrapped target `reward + gamma**horizon * value(next_obs)` (zero
    value after a real termination), where the value comes from the target
    network; with `double` the next action is picked by the online network
    and valued by the target network (double DQN, van Hasselt et al., 2016).

    Args:
        observation_shape: tuple of int. Shape of one observation.
        num_actions: int. Number of discrete actions.
        hidden_units: tuple of int. Hidden layers of the Q-network.
        learning_rate: float. Adam learning rate.
        max_grad_norm: float or None. Global gradient norm clip.
        gamma: float. Discount factor.
        double: bool. Double DQN targets.

    Example:
        >>> learner = QLearner((4,), 2, hidden_units=(8,), learning_rate=1e-3,
        ...                    max_grad_norm=10.0, gamma=0.99, double=True)
        >>> action = learner.act(np.zeros(4, np.float32))
    """

    def __init__(
        self,
        observation_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden_units: tuple[int, ...],
        learning_rate: float,
        max_grad_norm: float | None,
        gamma: float,
        double: bool,
    ):
        from kdl.models.mlp import build_mlp

        optimizer = keras.optimizers.Adam(
            learning_rate=learning_rate, global_clipnorm=max_grad_norm
        )
        self.q_network = build_mlp(
            observation_shape,
            num_actions,
            task="regression",
            hidden_units=hidden_units,
            optimizer=optimizer,
            learning_rate=learning_rate,
            name="q_network",
        )
        self.target_network = keras.models.clone_model(self.q_network)
        self.target_network._name = "target_network"
        self.q_network.optimizer.build(self.q_network.trainable_variables)
        self._greedy_fn, self._act_fn = _acting_functions(
            self.q_network, observation_shape
        )
        self._train_round_fn = _train_round_function(
            self.q_network, self.target_network, observation_shape, gamma, double
        )
        self._sync_fn = _sync_function(self.q_network, self.target_network)
        self.sync_target()

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions of a float32 batch of observations."""
        return self._greedy_fn(observations).numpy()

    def act(self, observation: np.ndarray) -> int:
        """The greedy action of one float32 observation (one XLA call)."""
        return int(self._act_fn(observation))

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        """Q-values of a float32 batch of observations."""
        return self.q_network(observations, training=False).numpy()

    def train_round(self, batch, rounds: int) -> float:
        """Takes `rounds` gradient steps on `batch`, split into equal minibatches.

        Args:
            batch: a `kdl.rl.replay.Batch` of `rounds * batch_size` rows.
            rounds: int. Gradient steps.

        Returns:
            float. The mean loss of the round.
        """
        loss = self._train_round_fn(
            *(x.reshape((rounds, -1) + x.shape[1:]) for x in batch)
        )
        return float(loss)

    def sync_target(self) -> None:
        """Copies the Q-network's weights into the target network."""
        self._sync_fn()

    def get_weights(self) -> list[np.ndarray]:
        """The Q-network's weights."""
        return self.q_network.get_weights()

    def set_weights(self, weights) -> None:
        """Sets the Q-network's weights and copies them to the target network."""
        self.q_network.set_weights(weights)
        self.sync_target()


def _acting_functions(q_net, observation_shape):
    """Compiled greedy policies: one for a batch, one for a single observation."""
    obs_spec = tf.TensorSpec((None, *observation_shape), tf.float32)

    @tf.function(input_signature=[obs_spec])
    def greedy(observations):
        return tf.argmax(
            q_net(observations, training=False), axis=1, output_type=tf.int32
        )

    # One observation in, one scalar action out, compiled with XLA: the
    # cheapest call per environment step (no Keras predict, no slicing).
    @tf.function(
        input_signature=[tf.TensorSpec(observation_shape, tf.float32)],
        jit_compile=True,
    )
    def greedy_one(observation):
        q = q_net(observation[None], training=False)[0]
        return tf.argmax(q, output_type=tf.int32)

    return greedy, greedy_one


def _gradient_step_function(q_net, target, gamma: float, double: bool):
    """One gradient step of the Huber loss towards the n-step Bellman target."""
    gamma = tf.constant(gamma, tf.float32)
    optimizer = q_net.optimizer
    huber = keras.losses.Huber()

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
            loss = huber(targets, chosen)
        variables = q_net.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return gradient_step


def _train_round_function(q_net, target, observation_shape, gamma, double):
    """A compiled loop over a round's minibatches, each of shape (steps, batch)."""
    gradient_step = _gradient_step_function(q_net, target, gamma, double)
    batch_shape = (None, None)  # (gradient steps, batch size)
    obs_spec = tf.TensorSpec((*batch_shape, *observation_shape), tf.float32)

    @tf.function(
        input_signature=[
            obs_spec,
            tf.TensorSpec(batch_shape, tf.int32),
            tf.TensorSpec(batch_shape, tf.float32),
            obs_spec,
            tf.TensorSpec(batch_shape, tf.float32),
            tf.TensorSpec(batch_shape, tf.float32),
        ]
    )
    def train_round(obs, actions, rewards, next_obs, terminated, horizons):
        total = tf.constant(0.0)
        n = tf.shape(obs)[0]
        for i in tf.range(n):
            total += gradient_step(
                obs[i], actions[i], rewards[i], next_obs[i], terminated[i], horizons[i]
            )
        return total / tf.cast(n, tf.float32)

    return train_round


def _sync_function(q_net, target):
    @tf.function
    def sync_target():
        for t_var, q_var in zip(target.variables, q_net.variables, strict=True):
            t_var.assign(q_var)

    return sync_target
