"""Where a .tflite file spends its time in LiteRT: per-op delegation and latency.

NumPy, flatbuffers and ``ai_edge_litert`` only (no TensorFlow), like
:mod:`kdl.lite`, so it runs on the device too.

LiteRT's Python interpreter has no op profiler (the C++ ``benchmark_model``
tool's ``--enable_op_profiling`` is not in the wheel), so this module uses
what the interpreter does expose:

- **which ops ran delegated**: the interpreter is built with
  ``experimental_disable_delegate_node_fusion=True``, which makes XNNPACK
  (LiteRT's default CPU delegate) take each op it supports as a DELEGATE
  node of its own, with that op's outputs; an op whose outputs no DELEGATE
  node produces ran in LiteRT's builtin kernels;
- **the time of each op**: every op is cut out into a one-op .tflite model
  (same tensors, weights and quantization) and timed in the same interpreter
  settings; the shares are of the sum of those times. A one-op model pays one
  delegate call per op, so the sum is somewhat above the whole file's time,
  but the ranking is LiteRT's own;
- **latency**: median per-example ``invoke`` of the whole file with one
  thread and with all the machine's threads, the variants timed interleaved
  so that load on a shared machine hits them alike.

Example:
    >>> from kdl import profiling
    >>> p = profiling.profile("cnn_int8.tflite")  # doctest: +SKIP
    >>> print(profiling.format_profile(p))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

__all__ = ["profile", "format_profile", "litert_version", "delegated_ops"]


def litert_version() -> str:
    """The installed ``ai-edge-litert`` version ("unknown" if not found)."""
    from importlib import metadata

    try:
        return metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        return "unknown"


def _read(source) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    return Path(source).read_bytes()


def _interpreter(content: bytes, num_threads: int, **options):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content, num_threads=num_threads, **options)
    it.allocate_tensors()
    return it


def _fill_inputs(it) -> None:
    """Random inputs in each input's dtype (the time does not depend on values)."""
    rng = np.random.default_rng(0)
    for detail in it.get_input_details():
        shape, dtype = detail["shape"], np.dtype(detail["dtype"])
        if dtype.kind == "f":
            value = rng.random(shape).astype(dtype)
        elif dtype == np.bool_:
            value = np.zeros(shape, dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -8), min(info.max, 8), shape)
        it.set_tensor(detail["index"], value.astype(dtype))


def delegated_ops(content: bytes) -> list[dict]:
    """The main subgraph's ops in order: ``{"index", "op", "delegated"}``."""
    it = _interpreter(content, 1, experimental_disable_delegate_node_fusion=True)
    ops = it._get_ops_details()  # noqa: SLF001 - LiteRT's only op listing
    produced = {tuple(o["outputs"]) for o in ops if o["op_name"] == "DELEGATE"}
    return [
        {
            "index": int(o["index"]),
            "op": o["op_name"],
            "delegated": tuple(o["outputs"]) in produced,
        }
        for o in ops
        if o["op_name"] != "DELEGATE"
    ]


def _one_op_models(content: bytes) -> list[bytes]:
    """One model per op of the main subgraph, holding that op alone."""
    import copy

    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(content))
    model.signatureDefs = []
    model.metadata = []
    graph = model.subgraphs[0]
    constant = {
        i
        for i, tensor in enumerate(graph.tensors)
        if model.buffers[tensor.buffer].data is not None
        and len(model.buffers[tensor.buffer].data)
    }
    ops, result = graph.operators, []
    for op in ops:
        one = copy.copy(model)
        sub = copy.copy(graph)
        sub.operators = [op]
        sub.inputs = [int(t) for t in op.inputs if t >= 0 and int(t) not in constant]
        sub.outputs = [int(t) for t in op.outputs]
        one.subgraphs = [sub, *model.subgraphs[1:]]
        result.append(bytes(fb.convert_object_to_bytearray(one)))
    return result


def _timed(interpreters: dict, rounds: int, per_round: int) -> dict:
    """Median seconds per invoke of each interpreter, timed interleaved."""
    times = {key: [] for key in interpreters}
    for it in interpreters.values():
        for _ in range(3):
            it.invoke()
    for _ in range(rounds):
        for key, it in interpreters.items():
            start = time.perf_counter()
            for _ in range(per_round):
                it.invoke()
            times[key].append((time.perf_counter() - start) / per_round)
    return {key: float(np.median(values)) for key, values in times.items()}


def latency(content: bytes, *, rounds: int = 15, per_round: int = 20) -> dict:
    """Median per-invoke ms with one thread and with all threads (interleaved)."""
    threads = os.cpu_count() or 1
    interpreters = {"1 thread": _interpreter(content, 1)}
    interpreters[f"{threads} threads"] = _interpreter(content, threads)
    for it in interpreters.values():
        _fill_inputs(it)
    return {k: 1e3 * s for k, s in _timed(interpreters, rounds, per_round).items()}


def profile(source, *, rounds: int = 15, per_round: int = 20) -> dict:
    """Per-op delegation and time, and latency, of a .tflite file in LiteRT.

    Args:
        source: str, os.PathLike or bytes. The .tflite file or its content.
        rounds: int. Timing rounds (medians are taken over rounds).
        per_round: int. Invokes per round.

    Returns:
        dict with "litert" (version), "latency_ms" ({"1 thread": ms,
        "N threads": ms}), "delegated" and "ops" counts, and "op_profile":
        one dict per op in execution order ("index", "op", "delegated",
        "ms", "share" of the summed op times).
    """
    content = _read(source)
    ops = delegated_ops(content)
    times = _op_times(content, len(ops), rounds, per_round)
    total = float(np.nansum(times)) or 1.0
    for op, ms in zip(ops, times, strict=True):
        op["ms"] = ms
        op["share"] = ms / total
    return {
        "litert": litert_version(),
        "latency_ms": latency(content, rounds=rounds, per_round=per_round),
        "ops": len(ops),
        "delegated": sum(op["delegated"] for op in ops),
        "op_profile": ops,
    }


def _op_times(content: bytes, count: int, rounds: int, per_round: int):
    interpreters = {}
    for i, one in enumerate(_one_op_models(content)):
        try:
            interpreters[i] = _interpreter(one, 1)
            _fill_inputs(interpreters[i])
            interpreters[i].invoke()
        except (ValueError, RuntimeError):
            interpreters.pop(i, None)  # an op that cannot run alone: no time
    seconds = _timed(interpreters, rounds, per_round)
    return [1e3 * seconds[i] if i in seconds else float("nan") for i in range(count)]


def slowest(result: dict, top: int = 5) -> list[dict]:
    """The ``top`` ops with the largest time share."""
    timed = [op for op in result["op_profile"] if not np.isnan(op["ms"])]
    return sorted(timed, key=lambda op: -op["ms"])[:top]


def format_profile(result: dict, top: int = 5) -> str:
    """The profile as text: latency, delegation, the slowest ops."""
    lat = ", ".join(f"{k} {v:.3f} ms" for k, v in result["latency_ms"].items())
    lines = [
        f"LiteRT {result['litert']}: {lat} per example",
        f"{result['delegated']} of {result['ops']} ops delegated to XNNPACK",
    ]
    builtin = [op["op"] for op in result["op_profile"] if not op["delegated"]]
    if builtin:
        lines.append("not delegated (LiteRT builtin kernels): " + ", ".join(builtin))
    lines.append("slowest ops (one-op models, 1 thread):")
    for op in slowest(result, top):
        where = "XNNPACK" if op["delegated"] else "builtin"
        lines.append(
            f"  #{op['index']:<3} {op['op']:<18} {where:<8} "
            f"{op['ms']:.3f} ms  {op['share']:.0%}"
        )
    return "\n".join(lines)
