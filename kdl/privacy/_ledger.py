"""What the DP step itself saw, recorded in the graph as it runs (issue 30).

A private model's statement must hold for the steps that actually ran and
the noise they actually used, not for attributes that can be changed after
the fact. So every train step of a ``PrivateModel`` (``fit`` and
``train_on_batch`` alike) writes into a :class:`Ledger` of ``tf.Variable`` s,
inside the traced step (no Python per step, so DP training is not slowed):

- the DP steps taken, in all and in the open *segment* (the steps since the
  last ``fit`` began or ended);
- the largest batch and the smallest noise multiplier of the segment (the
  noise the step used: 0 for a step without clipping and noise, e.g. after
  recompiling with a plain optimizer);
- a fingerprint of the model's weights after the step, and how many steps
  found weights that no DP step produced (``set_weights``, a model sharing
  the layers trained with ``fit``, ``load_weights``).

The fingerprint is TensorFlow's ``tf.fingerprint`` (farmhash64 of each
weight tensor's bytes): exact and the same in the graph and eagerly.

A light module (no TensorFlow Privacy).
"""

from __future__ import annotations

import numpy as np

from kdl.backend import tf

__all__ = ["Ledger", "fingerprint", "fingerprint_hex", "parameters"]

_NO_NOISE_YET = float("inf")


def parameters(model) -> list:
    """The weights the statement is bound to: every floating-point weight,
    trainable or frozen, in the model's fixed order (integer counters such as
    TF-MOT's pruning step, which its callback sets between steps, are not
    parameters)."""
    return [w for w in model.weights if w.dtype.is_floating]


def fingerprint(variables) -> tf.Tensor:
    """One int64 per weight tensor: farmhash64 of its bytes (position-aware)."""
    if not variables:
        return tf.zeros([0], tf.int64)
    parts = [tf.fingerprint(tf.reshape(tf.convert_to_tensor(var), [1, -1]))
             for var in variables]  # fmt: skip
    return tf.reshape(tf.bitcast(tf.concat(parts, axis=0), tf.int64), [-1])


def fingerprint_hex(variables) -> str:
    """The fingerprint of ``variables`` (evaluated now) as a hex string."""
    return _hex(fingerprint(variables).numpy())


def _hex(values) -> str:
    return np.asarray(values, dtype=np.int64).tobytes().hex()


def _from_hex(text: str, size: int) -> np.ndarray:
    values = np.frombuffer(bytes.fromhex(text), dtype=np.int64)
    return values if values.size == size else np.zeros([size], np.int64)


class Ledger:
    """The in-graph record of one private model's DP steps.

    Not tracked by Keras (its variables are not model weights); it is saved
    through the model's config (``PrivateModel.get_config``) instead.
    """

    def __init__(self, model, state: dict | None = None):
        state = dict(state or {})
        weights = parameters(model)
        fp = (
            _from_hex(state["fingerprint"], len(weights))
            if state.get("fingerprint")
            else fingerprint(weights).numpy()
        )
        with tf.init_scope():
            self.steps = tf.Variable(int(state.get("steps", 0)), dtype=tf.int64,
                                     trainable=False)  # fmt: skip
            self.foreign = tf.Variable(int(state.get("foreign", 0)), dtype=tf.int64,
                                       trainable=False)  # fmt: skip
            self.fingerprint = tf.Variable(fp, dtype=tf.int64, trainable=False)
            self.seg_steps = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.seg_batch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.seg_noise = tf.Variable(_NO_NOISE_YET, dtype=tf.float32,
                                         trainable=False)  # fmt: skip
            # The largest clip norm the segment's steps clipped with (the
            # statement names the clip the run used, not the setting).
            self.seg_clip = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        # The rows train_on_batch gave the open segment's steps (hashed in
        # Python: train_on_batch is an eager call per step anyway), and how
        # many steps they were given to.
        self.seg_rows: set = set()
        self.seg_seen = 0
        self.seg_copies = 1  # the most copies of one row in one step's batch
        self._current = None  # (weights' ids, traced fingerprint function)

    # --- In the step (traced) ---

    def check_weights(self, model):
        """Counts the step as foreign when the weights are not the last DP
        step's (call before the update)."""
        same = tf.reduce_all(tf.equal(fingerprint(parameters(model)), self.fingerprint))
        return self.foreign.assign_add(tf.cast(tf.logical_not(same), tf.int64))

    def record(self, model, batch, noise, clip):
        """Records one step of ``batch`` examples with ``noise`` and clip norm
        ``clip`` (call after the update)."""
        batch = tf.cast(batch, tf.int64)
        noise = tf.cast(noise, tf.float32)
        ops = [
            self.seg_clip.assign(tf.maximum(self.seg_clip, tf.cast(clip, tf.float32))),
            self.steps.assign_add(1),
            self.seg_steps.assign_add(1),
            self.seg_batch.assign(tf.maximum(self.seg_batch, batch)),
            self.seg_noise.assign(tf.minimum(self.seg_noise, noise)),
            self.fingerprint.assign(fingerprint(parameters(model))),
        ]
        return ops

    # --- Between steps (eager) ---

    def see_rows(self, rows: set, copies: int = 1) -> None:
        """Adds the row fingerprints train_on_batch gave one step (and the
        most copies of one row in that batch)."""
        self.seg_rows |= rows
        self.seg_seen += 1
        self.seg_copies = max(self.seg_copies, int(copies))

    def segment(self) -> dict:
        """The open segment: {"steps", "batch_size", "noise_multiplier",
        "l2_norm_clip", "rows"}; rows: the distinct rows its steps trained on, when
        train_on_batch gave every step (None when some step's rows were not
        seen: a custom loop calling train_step)."""
        # The shortest decimal of the float32 recorded: 1.1, not 1.10000002.
        noise = float(str(self.seg_noise.numpy()))
        clip = float(str(self.seg_clip.numpy()))
        steps = int(self.seg_steps.numpy())
        return {
            "steps": steps,
            "batch_size": int(self.seg_batch.numpy()),
            "noise_multiplier": None if noise == _NO_NOISE_YET else noise,
            "l2_norm_clip": clip if steps and clip > 0 else None,
            "rows": len(self.seg_rows) if steps and self.seg_seen == steps else None,
            "multiplicity": self.seg_copies,
        }

    def close_segment(self) -> dict:
        """The open segment, then a new empty one."""
        segment = self.segment()
        self.seg_steps.assign(0)
        self.seg_batch.assign(0)
        self.seg_noise.assign(_NO_NOISE_YET)
        self.seg_clip.assign(0.0)
        self.seg_rows, self.seg_seen, self.seg_copies = set(), 0, 1
        return segment

    def current(self, model) -> tf.Tensor:
        """The fingerprint of ``model``'s weights now, by a traced function
        (one call instead of a dozen eager ops per weight: fit ends with it)."""
        variables = parameters(model)
        key = [id(var) for var in variables]
        if self._current is None or self._current[0] != key:
            self._current = (key, tf.function(lambda: fingerprint(variables)))
        return self._current[1]()

    def current_hex(self, model) -> str:
        """:meth:`current` as a hex string."""
        return _hex(self.current(model).numpy())

    def weights_hex(self) -> str:
        """The fingerprint of the weights after the last DP step."""
        return _hex(self.fingerprint.numpy())

    def adopt(self, model) -> str:
        """Takes the model's current weights as the last DP step's (the caller
        has checked they are: a restored epoch, a loaded backup)."""
        current = self.current(model)
        self.fingerprint.assign(current)
        return _hex(current.numpy())

    def state(self) -> dict:
        """What the model's config saves."""
        return {
            "steps": int(self.steps.numpy()),
            "foreign": int(self.foreign.numpy()),
            "fingerprint": self.weights_hex(),
        }
