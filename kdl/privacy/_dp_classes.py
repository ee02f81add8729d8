"""kdl's DP model class and DP optimizer classes, on TensorFlow Privacy.

Importing this module imports TensorFlow Privacy (slow), so it is imported
only inside the functions that need it (``make_private``, ``dp_optimizer``,
``custom_objects``); ``import kdl.privacy`` stays quick.

TF Privacy 0.9.0's package ``__init__`` imports the removed TF estimator API;
its documented switch ``sys.skip_tf_privacy_import`` skips that
(docs/design.md, "One Keras").
"""

from __future__ import annotations

import sys

from kdl import _validation as v
from kdl.backend import keras, tf
from kdl.privacy import _fast_step, _ghost, _ledger, _tracking
from kdl.privacy._losses import loss_object, per_example_loss

sys.skip_tf_privacy_import = True

from tensorflow_privacy.privacy.dp_query import gaussian_query  # noqa: E402
from tensorflow_privacy.privacy.keras_models import dp_keras_model  # noqa: E402
from tensorflow_privacy.privacy.optimizers import dp_optimizer_keras  # noqa: E402

__all__ = ["PrivateModel", "DP_OPTIMIZERS", "dp_optimizer_classes", "registry"]

# Optimizers the DP Keras optimizers can be made from (TF Privacy builds them on
# the legacy tf_keras optimizers).
DP_OPTIMIZERS = ("SGD", "Adam", "RMSprop", "Adagrad")


def registry():
    """TF Privacy's layer registry with kdl's convolution and recurrent entries."""
    return _ghost.tf_privacy_registry()


@keras.saving.register_keras_serializable(package="kdl")
class PrivateModel(dp_keras_model.make_dp_model_class(keras.Model)):
    """A functional model that trains with DP-SGD.

    ``method`` "fast" is kdl's one-pass ghost clipping with its layer
    registry (``kdl.privacy._fast_step``); "vectorized" is TensorFlow
    Privacy's DPModel train step with vectorized per-example gradients.
    "optimizer" computes per-example losses here and lets a DP
    Keras optimizer (compiled in) clip and noise their gradients.
    """

    def __init__(self, *args, privacy=None, ledger=None, **kwargs):
        privacy = dict(privacy or {})
        privacy.pop("ledger", None)  # only from_config restores a ledger
        method = privacy.get("method", "vectorized")
        super().__init__(
            privacy.get("l2_norm_clip", 1.0),
            privacy.get("noise_multiplier", 0.0),
            None,  # num_microbatches: per-example clipping, any batch size
            False,  # use_xla: recompiles for every batch shape
            registry() if method == "fast" else None,
            *args,
            **kwargs,
        )
        # A plain dict, not one Keras tracks (it would wrap the session list
        # in a ListWrapper); it is saved through get_config.
        object.__setattr__(self, "privacy", privacy)
        # The in-graph record of the DP steps (issue 30): plain attributes,
        # not Keras weights, saved through get_config.
        object.__setattr__(self, "kdl_ledger", _ledger.Ledger(self, ledger))
        object.__setattr__(self, "kdl_open_session", None)

    def compile(self, optimizer="rmsprop", *args, **kwargs):
        """``Model.compile`` that refuses an optimizer its DP step cannot use
        (review of issue 30: TF Privacy's bare AssertionError at the first
        step, or its microbatch error)."""
        check_optimizer(self.privacy.get("method"), optimizer)
        return super().compile(optimizer, *args, **kwargs)

    def compile_from_config(self, config):
        # What Model.compile_from_config does, which skips a class with a
        # compile() of its own (a .keras file would load uncompiled).
        self.compile(**keras.saving.deserialize_keras_object(config))
        optimizer = getattr(self, "optimizer", None)
        if isinstance(optimizer, keras.optimizers.Optimizer) and self.built:
            optimizer.build(self.trainable_variables)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        **kwargs,
    ):
        """``Model.fit`` that records what it trained on for the accounting.

        Before training it checks the data and the class targets, and refuses
        callbacks that select weights by a training quantity. Afterwards
        ``privacy["sessions"]`` holds the examples sampled from (after
        ``validation_split``; counted for a ``tf.data`` dataset), the batch
        size, the optimizer steps taken and the epoch whose weights were kept,
        and the most times one example appears in a pass (the largest count
        of one row; with ``num_examples=n`` given, at least ceil(elements /
        n)): above 1 the steps are accounted as a group of that many copies.
        A Keras ``Sequence`` is refused (its rows cannot be counted).
        """
        num_examples = kwargs.pop("num_examples", None)
        session = _tracking.begin_session(
            self,
            x,
            y,
            batch_size=batch_size,
            validation_split=validation_split,
            validation_data=validation_data,
            callbacks=callbacks,
            num_examples=num_examples,
        )
        recorder = _tracking.SessionRecorder(session, callbacks)
        object.__setattr__(self, "kdl_open_session", session)
        try:
            return super().fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=list(callbacks or []) + [recorder],
                validation_split=validation_split,
                validation_data=validation_data,
                **kwargs,
            )
        finally:
            object.__setattr__(self, "kdl_open_session", None)
            _tracking.end_session(self, recorder)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        """``Model.train_on_batch`` that counts the distinct rows it trained
        on (issue 30): the sampling rate of steps no fit ran is their batch
        over the distinct rows they saw, not the planned examples."""
        rows, copies = _tracking.batch_rows(x, y)
        result = super().train_on_batch(x, y, *args, **kwargs)
        self.kdl_ledger.see_rows(rows, copies)
        return result

    def train_step(self, data):
        # The step records what it ran with, in the graph (issue 30).
        self.kdl_ledger.check_weights(self)
        metrics, noise, clip = self._dp_step(data)
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        self.kdl_ledger.record(self, batch, noise, clip)
        return metrics

    def _dp_step(self, data):
        """(metrics, the noise multiplier and the clip norm this step used)."""
        method = self.privacy.get("method")
        if method == "fast":
            clip = float(self.privacy.get("l2_norm_clip", 1.0))
            noise = float(self.privacy.get("noise_multiplier", 0.0))
            return _fast_step.train_step(self, data, clip, noise), noise, clip
        if method != "optimizer":
            noise, clip = float(self._noise_multiplier), float(self._l2_norm_clip)
            return super().train_step(data), noise, clip
        x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
        # A recompile may give the loss by name: the Loss object it names.
        loss_fn = per_example_loss(loss_object(self.loss, _tracking.FIT))
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            losses = loss_fn(y, y_pred, weights)
            if self.losses:  # regularization: data independent
                losses = losses + tf.add_n(self.losses)
        # The DP optimizer takes the per-example losses, clips each
        # example's gradient and adds the noise.
        self.optimizer.minimize(losses, self.trainable_variables, tape=tape)
        self.compiled_loss(
            y, y_pred, sample_weight=weights, regularization_losses=self.losses
        )
        self.compiled_metrics.update_state(y, y_pred, weights)
        # A plain optimizer neither clips nor adds noise: recorded as 0.
        noise = getattr(self.optimizer, "kdl_noise_used", None)
        clip = getattr(self.optimizer, "kdl_clip_used", None)
        if not isinstance(self.optimizer, tuple(dp_optimizer_classes().values())):
            noise = clip = None
        metrics = {m.name: m.result() for m in self.metrics}
        return metrics, 0.0 if noise is None else noise, 0.0 if clip is None else clip

    def get_config(self):
        # Keras writes a functional config only for classes with the
        # functional constructor: take it from a plain view of the graph.
        plain = keras.Model(inputs=self.inputs, outputs=self.outputs, name=self.name)
        config = plain.get_config()
        config["privacy"] = _tracking.snapshot(self)
        config["privacy"].pop("rows_unchecked", None)
        config["privacy"].pop("rows_not_saved", None)
        # The training rows' fingerprints go into the .keras file's assets
        # (save_assets), so a loaded model still refuses validation rows it
        # trained on (issue 30, third round); the config says how many.
        config["privacy"]["trained_rows"] = _tracking.rows_config(self)
        return config

    def save_assets(self, dir_path):
        _tracking.save_rows(self, dir_path)

    def load_assets(self, dir_path):
        _tracking.load_rows(self, dir_path)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        privacy = dict(config.pop("privacy", None) or {})
        ledger = privacy.pop("ledger", None)
        rows = privacy.pop("trained_rows", None) or {}
        plain = keras.Model.from_config(config, custom_objects=custom_objects)
        model = cls(
            inputs=plain.inputs,
            outputs=plain.outputs,
            name=plain.name,
            privacy=privacy,
            ledger=ledger,
        )
        _tracking.restore_rows(model, rows)  # load_assets may read them
        return model


COMPILE = "PrivateModel.compile"


def _from_tf_privacy(optimizer) -> bool:
    return any(
        cls.__module__.startswith("tensorflow_privacy")
        for cls in type(optimizer).__mro__
    )


def check_optimizer(method, optimizer, func=COMPILE) -> None:
    """Refuses TF Privacy's own DP optimizers (kdl cannot record the clip and
    noise their steps use, and their microbatches must divide every batch),
    and any DP optimizer on kdl's own DP step ("fast", "vectorized"), which
    clips and adds noise before the optimizer only applies the update: TF
    Privacy's optimizer then asserts that it clipped nothing."""
    own = isinstance(optimizer, tuple(dp_optimizer_classes().values()))
    name = type(optimizer).__name__
    if not own and _from_tf_privacy(optimizer):
        v.fail(func, "optimizer", "kdl's DP optimizer (kdl.privacy.dp_optimizer("
               "name, l2_norm_clip=..., noise_multiplier=...)) or a plain "
               "optimizer: TensorFlow Privacy's own DP optimizer classes are not "
               "supported (kdl cannot record the clip norm and noise their steps "
               "use, and num_microbatches must divide every batch)", name,
               error=TypeError)  # fmt: skip
    if own and method != "optimizer":
        v.fail(func, "optimizer", f"a plain optimizer for a private model of "
               f"method {method!r}: its own DP step clips each example's gradient "
               "and adds the noise, and the optimizer only applies the update. "
               "For a DP optimizer, make the model with make_private(..., "
               "method='optimizer') or give it to a builder's optimizer=", name,
               error=TypeError)  # fmt: skip


def _dp_optimizer_class(base_name):
    """A named, serializable DP Keras optimizer on a legacy tf_keras optimizer.

    TF Privacy's own DP optimizer classes are all called ``DPOptimizerClass``
    and their config cannot rebuild them, so a saved model could not be loaded;
    these subclasses have distinct names and a config that round-trips.
    """
    legacy = getattr(keras.optimizers.legacy, base_name)
    generic = dp_optimizer_keras.make_keras_generic_optimizer_class(legacy)

    def __init__(self, l2_norm_clip=1.0, noise_multiplier=0.0, **kwargs):
        query = gaussian_query.GaussianSumQuery(
            l2_norm_clip, l2_norm_clip * noise_multiplier
        )
        generic.__init__(self, query, None, 1, **kwargs)
        object.__setattr__(self, "_kdl_settings", [l2_norm_clip, noise_multiplier])

    def _settings(index):
        def getter(self):
            return self._kdl_settings[index]

        def setter(self, value):
            # Changing the clip or the noise changes the query the next traced
            # step uses; that step records the noise it used (issue 30).
            self._kdl_settings[index] = float(value)
            clip, noise = self._kdl_settings
            self._dp_sum_query = gaussian_query.GaussianSumQuery(clip, clip * noise)
            self._global_state = self._dp_sum_query.initial_global_state()

        return property(getter, setter)

    def _compute_gradients(self, loss, var_list, grad_loss=None, tape=None):
        state = self._global_state
        # The noise multiplier this step adds noise with (stddev / clip).
        object.__setattr__(self, "kdl_noise_used", state.stddev / state.l2_norm_clip)
        # ... and the clip norm it clips with (review of issue 30: the
        # statement showed the setting, 1, after a recompile with clip 100).
        object.__setattr__(self, "kdl_clip_used", state.l2_norm_clip)
        return generic._compute_gradients(self, loss, var_list, grad_loss, tape)

    def get_config(self):
        config = legacy.get_config(self)  # skip the generic's unloadable state
        config.update(
            l2_norm_clip=self.l2_norm_clip, noise_multiplier=self.noise_multiplier
        )
        return config

    cls = type(
        f"DP{base_name}",
        (generic,),
        {
            "__init__": __init__,
            "get_config": get_config,
            "_compute_gradients": _compute_gradients,
            "l2_norm_clip": _settings(0),
            "noise_multiplier": _settings(1),
            "__module__": __name__,
            "__doc__": f"DP-SGD version of the legacy {base_name} optimizer.",
        },
    )
    return keras.saving.register_keras_serializable(package="kdl")(cls)


DPSGD = _dp_optimizer_class("SGD")
DPAdam = _dp_optimizer_class("Adam")
DPRMSprop = _dp_optimizer_class("RMSprop")
DPAdagrad = _dp_optimizer_class("Adagrad")


def dp_optimizer_classes() -> dict:
    """Legacy optimizer name -> kdl's DP optimizer class on it."""
    return {"SGD": DPSGD, "Adam": DPAdam, "RMSprop": DPRMSprop, "Adagrad": DPAdagrad}
