"""Distributed training with tf.distribute, for any kdl builder.

A model trains on several devices when it is built (variables created) inside
a strategy's scope; Keras ``fit`` (and so :func:`kdl.train`) then splits each
batch across the replicas and sums the gradients.

Example:
    >>> from kdl import distribute
    >>> strategy = distribute.strategy("mirrored")
    >>> model = distribute.build(kdl.build_mlp, (64,), 10, strategy=strategy)
"""

from __future__ import annotations

from kdl import _validation as v
from kdl.backend import tf

__all__ = ["strategy", "build", "split_cpu", "KINDS"]

KINDS = ("auto", "default", "one_device", "mirrored", "multi_worker")


def split_cpu(count: int) -> list:
    """Splits the CPU into ``count`` logical devices, to try data parallelism.

    TensorFlow fixes its devices when it first uses them, so call this at the
    start of a program, before any model is built.

    Args:
        count: int. Number of logical CPU devices, at least 1.

    Returns:
        The list of logical CPU devices.

    Raises:
        RuntimeError: if TensorFlow has already set up its devices.

    Example:
        >>> split_cpu(2)  # then strategy("mirrored") has 2 replicas
    """
    v.check_int(count, "count", "kdl.distribute.split_cpu")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return tf.config.list_logical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as err:
        raise RuntimeError(
            "kdl.distribute.split_cpu must run before TensorFlow sets up its "
            "devices (before any model or tensor is made in this process). "
            f"TensorFlow said: {err}"
        ) from err
    return tf.config.list_logical_devices("CPU")


def strategy(kind: str = "auto", *, devices=None):
    """Returns a tf.distribute strategy.

    Args:
        kind: str. "auto" (mirrored over every GPU when there are several,
            else the default strategy), "default" (no distribution),
            "one_device", "mirrored" (synchronous data parallelism over
            ``devices``, all GPUs, or else all logical CPUs) or
            "multi_worker" (several machines, configured by the ``TF_CONFIG``
            environment variable). Defaults to `"auto"`.
        devices: list of str or None. Device names for "mirrored" or (one)
            for "one_device". Defaults to `None`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError, TypeError: for a bad argument, naming it.

    Example:
        >>> s = strategy("mirrored")
        >>> s.num_replicas_in_sync >= 1
        True
    """
    func = "kdl.distribute.strategy"
    v.check_choice(kind, "kind", func, KINDS)
    if devices is not None:
        if isinstance(devices, str) or not all(isinstance(d, str) for d in devices):
            v.fail(
                func,
                "devices",
                "a list of device names or None",
                devices,
                error=TypeError,
            )
        if kind not in ("mirrored", "one_device"):
            v.fail(func, "devices", f"None for kind {kind!r}", devices)
        if kind == "one_device" and len(devices) != 1:
            v.fail(func, "devices", "a list of one device for 'one_device'", devices)
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "auto":
        kind = "mirrored" if len(gpus) > 1 else "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "one_device":
        device = devices[0] if devices else (gpus[0].name if gpus else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(device)
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices is None:
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    # Several CPU replicas need a cross-device reduction that works on the CPU.
    cross = tf.distribute.ReductionToOneDevice() if not gpus else None
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross)


def build(builder, *args, strategy=None, **kwargs):
    """Builds (and compiles) a kdl model inside a strategy's scope.

    Args:
        builder: a kdl builder (e.g. `kdl.build_cnn`) or any function that
            returns a compiled `kdl.keras.Model`.
        *args: the builder's positional arguments.
        strategy: a `tf.distribute.Strategy` or None for :func:`strategy`
            ("auto"). Defaults to `None`.
        **kwargs: the builder's keyword arguments.

    Returns:
        The compiled model, whose variables live on the strategy's devices.

    Example:
        >>> model = build(kdl.build_mlp, (64,), 10, hidden_units=(32,))
    """
    func = "kdl.distribute.build"
    if not callable(builder):
        v.fail(
            func,
            "builder",
            "a callable such as kdl.build_mlp",
            builder,
            error=TypeError,
        )
    if strategy is None:
        strategy = globals()["strategy"]()
    if not isinstance(strategy, tf.distribute.Strategy):
        v.fail(
            func,
            "strategy",
            "a tf.distribute.Strategy or None",
            strategy,
            error=TypeError,
        )
    with strategy.scope():
        return builder(*args, **kwargs)
