"""The Q-network, its target network, and the compiled steps that act and learn.

Every tensor operation runs inside a `tf.function`: acting is one compiled
forward pass (never a Keras `predict` call), and a training round runs all
its gradient steps in one compiled loop (one Python call per round instead
of one per gradient step).
"""

from __future__ import annotations

import numpy as np

from kdl.backend import keras, tf
from kdl.rl.networks import NumpyPolicy, build_q_network, set_observation_scaling

__all__ = ["QLearner"]


class QLearner:
    """A Q-network (`kdl.rl.networks`), its target network and their steps.

    The loss (Huber or squared error) is between the Q-value of the action
    taken and the bootstrapped target `reward + gamma**horizon *
    value(next_obs)` (zero value after a real termination), where the value
    comes from the target network; with `double` the next action is picked by
    the online network and valued by the target network (double DQN, van
    Hasselt et al., 2016). Each row's loss is multiplied by its importance
    weight (all ones without prioritized replay), and a training round
    returns each row's absolute TD error (the new priorities).

    Args:
        observation_shape: tuple of int. Shape of one observation.
        num_actions: int. Number of discrete actions.
        dense_units: tuple of int. Hidden dense layers of the Q-network.
        learning_rate: float. Adam learning rate.
        max_grad_norm: float or None. Global gradient norm clip.
        gamma: float. Discount factor.
        double: bool. Double DQN targets.
        dueling: bool. Dueling value and advantage heads. Defaults to `False`.
        loss: str. "huber" or "mse". Defaults to `"huber"`.
        tau: float. Target update: `target = tau * online + (1 - tau) *
            target` (1 copies). Defaults to `1.0`.
        scaling: bool. The network starts with an observation scaling layer.
            Defaults to `False`.

    Example:
        >>> learner = QLearner((4,), 2, dense_units=(8,), learning_rate=1e-3,
        ...                    max_grad_norm=10.0, gamma=0.99, double=True)
        >>> action = learner.act(np.zeros(4, np.float32))
    """

    def __init__(
        self,
        observation_shape: tuple[int, ...],
        num_actions: int,
        *,
        dense_units: tuple[int, ...],
        learning_rate: float,
        max_grad_norm: float | None,
        gamma: float,
        double: bool,
        dueling: bool = False,
        loss: str = "huber",
        tau: float = 1.0,
        scaling: bool = False,
    ):
        optimizer = keras.optimizers.Adam(
            learning_rate=learning_rate, global_clipnorm=max_grad_norm
        )
        self.q_network = build_q_network(
            observation_shape,
            num_actions,
            dense_units=dense_units,
            optimizer=optimizer,
            dueling=dueling,
            scaling=scaling,
        )
        self.target_network = keras.models.clone_model(self.q_network)
        self.target_network._name = "target_network"
        self.q_network.optimizer.build(self.q_network.trainable_variables)
        self._greedy_fn, self._act_fn = _acting_functions(
            self.q_network, observation_shape
        )
        self._train_round_fn = _train_round_function(
            self.q_network,
            self.target_network,
            observation_shape,
            gamma,
            double,
            loss,
        )
        self._copy_fn = _sync_function(self.q_network, self.target_network, 1.0)
        self._sync_fn = _sync_function(self.q_network, self.target_network, tau)
        self._copy_fn()
        self.numpy_policy = NumpyPolicy(self.q_network)

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions of a float32 batch of observations."""
        return self._greedy_fn(observations).numpy()

    def act(self, observation: np.ndarray) -> int:
        """The greedy action of one float32 observation.

        Computed in NumPy on a copy of the weights taken after each training
        round (`NumpyPolicy`): microseconds, against tens of microseconds for
        the smallest TensorFlow call.
        """
        return self.numpy_policy(observation)

    def set_observation_scaling(self, mean, std) -> None:
        """Scales observations to `(x - mean) / std` in both networks."""
        set_observation_scaling(self.q_network, mean, std)
        set_observation_scaling(self.target_network, mean, std)
        self.numpy_policy.sync()

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        """Q-values of a float32 batch of observations."""
        return self.q_network(observations, training=False).numpy()

    def train_round(self, batch, rounds: int) -> float:
        """Takes `rounds` gradient steps on `batch`, split into equal minibatches.

        Args:
            batch: a `kdl.rl.replay.Batch` of `rounds * batch_size` rows.
            rounds: int. Gradient steps.

        Returns:
            (loss, td_errors): the round's mean loss (float) and each row's
            absolute TD error (array of `rounds * batch_size`, before the
            row's gradient step).
        """
        loss, td = self._train_round_fn(
            *(x.reshape((rounds, -1) + x.shape[1:]) for x in batch[:7])
        )
        self.numpy_policy.sync()
        return float(loss), td.numpy().reshape(-1)

    def sync_target(self) -> None:
        """Updates the target network: a copy, or a soft update with `tau`."""
        self._sync_fn()

    def get_weights(self) -> list[np.ndarray]:
        """The Q-network's weights."""
        return self.q_network.get_weights()

    def set_weights(self, weights) -> None:
        """Sets the Q-network's weights and copies them to the target network."""
        self.q_network.set_weights(weights)
        self._copy_fn()
        self.numpy_policy.sync()


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


def _gradient_step_function(q_net, target, gamma: float, double: bool, loss: str):
    """One gradient step of the weighted loss towards the n-step Bellman target."""
    gamma = tf.constant(gamma, tf.float32)
    optimizer = q_net.optimizer

    def row_loss(error):
        if loss == "mse":
            return tf.square(error)
        abs_error = tf.abs(error)  # Huber with delta 1, as Keras' Huber
        return tf.where(abs_error <= 1.0, 0.5 * tf.square(error), abs_error - 0.5)

    def gradient_step(obs, actions, rewards, next_obs, terminated, horizons, weights):
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
            error = targets - chosen
            mean_loss = tf.reduce_mean(weights * row_loss(error))
        variables = q_net.trainable_variables
        grads = tape.gradient(mean_loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return mean_loss, tf.abs(error)

    return gradient_step


def _train_round_function(q_net, target, observation_shape, gamma, double, loss):
    """A compiled loop over a round's minibatches, each of shape (steps, batch)."""
    gradient_step = _gradient_step_function(q_net, target, gamma, double, loss)
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
            tf.TensorSpec(batch_shape, tf.float32),
        ]
    )
    def train_round(obs, actions, rewards, next_obs, terminated, horizons, weights):
        total = tf.constant(0.0)
        n = tf.shape(obs)[0]
        errors = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            loss, error = gradient_step(
                obs[i],
                actions[i],
                rewards[i],
                next_obs[i],
                terminated[i],
                horizons[i],
                weights[i],
            )
            total += loss
            errors = errors.write(i, error)
        return total / tf.cast(n, tf.float32), errors.stack()

    return train_round


def _sync_function(q_net, target, tau: float):
    @tf.function
    def sync_target():
        for t_var, q_var in zip(target.variables, q_net.variables, strict=True):
            if tau == 1.0:
                t_var.assign(q_var)
            else:
                t_var.assign(tau * q_var + (1.0 - tau) * t_var)

    return sync_target
