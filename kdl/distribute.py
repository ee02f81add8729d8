"""Distributed training with tf.distribute, for any kdl builder.

A model trains on several devices when it is built (variables created) inside
a strategy's scope; Keras ``fit`` (and so :func:`kdl.train`) then splits each
batch across the replicas and sums the gradients. ``batch_size`` is the
global batch: each of N replicas computes ``batch_size / N`` examples.

Several machines (or processes) train one model with TensorFlow's
MultiWorkerMirroredStrategy, configured by the ``TF_CONFIG`` environment
variable of each process: :func:`cluster_spec` builds it, :func:`use_cluster`
sets it. Every process runs the same script; :func:`kdl.train` lets only the
chief (worker 0) write the run folder, and the other workers write only their
share of the backup (a ``workertemp_<index>`` folder that Keras removes).

Example:
    >>> from kdl import distribute
    >>> strategy = distribute.strategy("mirrored")
    >>> model = distribute.build(kdl.build_mlp, (64,), 10, strategy=strategy)
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence

from kdl import _validation as v
from kdl._constants import STRATEGIES as KINDS
from kdl.backend import tf

__all__ = [
    "strategy",
    "build",
    "split_cpu",
    "cluster_spec",
    "use_cluster",
    "free_ports",
    "is_chief",
    "is_multi_worker",
    "KINDS",
]


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
    if kind == "multi_worker":
        # Before anything else touches TensorFlow's devices: the strategy
        # configures collective ops, which only works at program start.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "auto":
        kind = "mirrored" if len(gpus) > 1 else "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "one_device":
        device = devices[0] if devices else (gpus[0].name if gpus else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(device)
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
        >>> model = build(kdl.build_mlp, (64,), 10, dense_units=(32,))
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


def _check_address(address, func: str) -> str:
    host, _, port = (
        address.rpartition(":") if isinstance(address, str) else ("", "", "")
    )
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        v.fail(func, "workers", "a list of 'host:port' strings", address)
    return address


def cluster_spec(workers: Sequence[str], index: int) -> dict:
    """The ``TF_CONFIG`` of one worker of a multi-worker cluster.

    Args:
        workers: list of str. Every worker's ``"host:port"``, the same list, in
            the same order, in every process. Worker 0 is the chief: it writes
            the run folder.
        index: int. This process's place in ``workers``.

    Returns:
        dict: ``{"cluster": {"worker": [...]}, "task": {"type": "worker",
        "index": index}}``, the structure TensorFlow reads from ``TF_CONFIG``.

    Raises:
        TypeError, ValueError: for a bad argument, naming it.

    Example:
        >>> cluster_spec(["10.0.0.1:12345", "10.0.0.2:12345"], 1)["task"]
        {'type': 'worker', 'index': 1}
    """
    func = "kdl.distribute.cluster_spec"
    if isinstance(workers, (str, bytes)) or not isinstance(workers, Sequence):
        v.fail(
            func, "workers", "a list of 'host:port' strings", workers, error=TypeError
        )
    if not workers:
        v.fail(func, "workers", "a non-empty list of 'host:port' strings", workers)
    workers = [_check_address(address, func) for address in workers]
    index = v.check_int(index, "index", func, min_value=0)
    if index >= len(workers):
        v.fail(func, "index", f"an index into workers (0..{len(workers) - 1})", index)
    return {
        "cluster": {"worker": workers},
        "task": {"type": "worker", "index": index},
    }


def use_cluster(workers: Sequence[str], index: int) -> dict:
    """Sets ``TF_CONFIG`` for this process; call it before :func:`strategy`.

    TensorFlow reads ``TF_CONFIG`` when the MultiWorkerMirroredStrategy is
    created, and that must happen before any other TensorFlow work in the
    process.

    Args:
        workers: list of str. See :func:`cluster_spec`.
        index: int. This process's place in ``workers``.

    Returns:
        dict: the cluster spec that was set.

    Example:
        >>> use_cluster(["localhost:12345", "localhost:23456"], 0)  # doctest: +SKIP
        >>> s = strategy("multi_worker")
    """
    spec = cluster_spec(workers, index)
    os.environ["TF_CONFIG"] = json.dumps(spec)
    return spec


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports free on ``host`` right now, for a cluster of processes on one machine.

    The ports are chosen by the operating system and released before they are
    returned, so another program could take one in between; start the
    workers soon after.

    Example:
        >>> workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    """
    v.check_int(count, "count", "kdl.distribute.free_ports")
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def is_multi_worker(strategy) -> bool:
    """True for a MultiWorkerMirroredStrategy with more than one worker."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict() if resolver else {}
    return len(spec.get("worker", [])) + len(spec.get("chief", [])) > 1


def is_chief(strategy=None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy.

    Only the chief writes checkpoints, logs and run folders (the Keras rule,
    ``strategy.extended.should_checkpoint``).
    """
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)
