"""Reading a model file's configuration and checking its container (issue 19, 29).

What :mod:`kdl._safe_load` reads before Keras does: ``config.json`` of a
``.keras`` zip (from the zip directory and that one entry, nothing
extracted), the ``model_config`` / ``training_config`` of an ``.h5`` file,
the Keras metadata of a SavedModel (after :mod:`kdl._safe_graph` read its
graph); and the budget of what loading may extract and allocate: entries and
total size of an archive against the file's size, tensors declared in the
weights, weights and input shapes implied by the configuration.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import zipfile
from pathlib import Path

from kdl import _safe_graph
from kdl._safe_common import TENSOR_RATIO, TENSOR_SLACK, real_bytes
from kdl._safe_common import corrupt as _corrupt
from kdl._safe_common import refuse as _refuse
from kdl.backend import keras

__all__ = ["nodes", "read_configs", "check_claims", "MAX_ENTRIES", "MAX_INPUT_VALUES"]

# .keras archive limits. Keras writes config.json of a few kB and stores the
# weights uncompressed; these are far from any real model and far below what
# would exhaust memory.
CONFIG_LIMIT = 64 * 2**20
METADATA_LIMIT = 2**20
# A .keras file Keras writes holds 3 entries (more with assets); with more
# than 3, tf_keras extracts every entry to a temporary folder (issue 29).
MAX_ENTRIES = 1_000
TOTAL_RATIO = 20  # all entries uncompressed / the file's size
TOTAL_SLACK = 64 * 2**20
MAX_TOTAL = 32 * 2**30  # whatever the file's size
MAX_JSON = 16 * 2**20  # a model's configuration text (config.json, model_config)
JSON_RATIO = 100  # its text / the bytes storing it
# Values per example of one model input (float32: 1 GiB).
MAX_INPUT_VALUES = 2**28
BOMB_RATIO = 100  # uncompressed / compressed size of one zip entry
BOMB_MIN_BYTES = 16 * 2**20  # smaller entries may compress as they like

_WEIGHT_ENTRIES = ("model.weights.h5", "model.weights.npz")


def nodes(root, label):
    """Every dict and list in ``root`` with its path, shallowest first."""
    queue = [(root, label)]
    for node, where in queue:  # the list grows while it is read
        yield node, where
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, (dict, list)):
                sub = (
                    f"{where}[{key}]"
                    if isinstance(node, list)
                    else (f"{where}.{key}" if where else str(key))
                )
                queue.append((value, sub))


# === Sizes: what the configuration claims against what the file holds ===


def _positive_ints(values):
    return [
        v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0
    ]


def _last_dim(shape) -> int:
    """The largest last dimension of a shape (or of a list of shapes); 1 if none."""
    if not isinstance(shape, list) or not shape:
        return 1
    if all(isinstance(s, list) for s in shape):
        return max((_last_dim(s) for s in shape), default=1)
    return (_positive_ints(shape[-1:]) or [1])[0]


def _claimed_bytes(entry) -> int:
    """A lower bound of the float32 weight bytes a layer entry implies."""
    config = entry.get("config")
    if not isinstance(config, dict):
        return 0
    sizes = _positive_ints([config.get(k) for k in ("units", "filters", "output_dim")])
    build = entry.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    if not sizes:  # a normalization layer holds a few vectors of its input's size
        return 4 * _last_dim(shape) if _last_dim(shape) > 1 else 0
    d_in = max(
        _last_dim(shape),
        _last_dim(config.get("batch_input_shape")),
        *_positive_ints([config.get("input_dim")]),
        1,
    )
    kernel = config.get("kernel_size")
    kernel = [kernel] if isinstance(kernel, int) else kernel
    k = math.prod(_positive_ints(kernel)) if isinstance(kernel, list) else 1
    return 4 * max(sizes) * d_in * max(k, 1)


def _check_input(entry, where, path, func):
    """Refuses an InputLayer whose shape holds absurdly many values per example."""
    config = entry.get("config")
    if entry.get("class_name") != "InputLayer" or not isinstance(config, dict):
        return
    for key in ("batch_shape", "batch_input_shape"):
        shape = config.get(key)
        if not isinstance(shape, list):
            continue
        dims = _positive_ints(shape[1:])
        if math.prod(dims) > MAX_INPUT_VALUES:
            _refuse(
                func,
                path,
                f"its config entry {where} is an input of shape {shape} "
                f"({key}): {math.prod(dims):,} values per example, more than "
                f"{MAX_INPUT_VALUES:,}; building the model would allocate "
                "memory for them.",
            )


def _check_claims(configs, stored: int, path, func):
    """Refuses a configuration implying weights far larger than the file holds."""
    total, largest = 0, (0, "")
    for label, config in configs:
        for node, where in nodes(config, label):
            if isinstance(node, dict) and "class_name" in node:
                _check_input(node, where or "(the model)", path, func)
                claimed = _claimed_bytes(node)
                total += claimed
                largest = max(largest, (claimed, where or "(the model)"))
    if total > TENSOR_RATIO * stored + TENSOR_SLACK:
        _refuse(
            func,
            path,
            f"its configuration implies weights of at least "
            f"{total:,} bytes ({largest[1]} alone {largest[0]:,}), but the "
            f"file holds {stored:,} bytes of weights; building the model "
            "would allocate that memory.",
        )


def _check_h5(h5file, stored: int, path, func, where=""):
    """Refuses external links, external or virtual storage and huge tensors."""
    import h5py

    problems = []

    def link(name, value):
        if isinstance(value, h5py.ExternalLink):
            problems.append(f"{where}/{name} is a link to the file {value.filename!r}.")

    def dataset(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.is_virtual or obj.external:
            problems.append(f"{where}/{name} reads its data from other files.")
            return
        size = math.prod(obj.shape or ()) * obj.dtype.itemsize
        if size > TENSOR_RATIO * stored + TENSOR_SLACK:
            problems.append(
                f"{where}/{name} declares a tensor of shape "
                f"{obj.shape} ({size:,} bytes) in {stored:,} bytes "
                "of file."
            )

    h5file.visititems_links(link)
    if not problems:
        h5file.visititems(dataset)
    if problems:
        _refuse(func, path, f"its weights are not plain data: {problems[0]}")


# === Reading the configuration of each format ===


def _check_json_size(size: int, name, stored: int, path, func):
    """Refuses a configuration whose parsing would take far more memory than
    the file: json builds ~70 bytes of Python objects per byte of text."""
    limit = min(MAX_JSON, JSON_RATIO * max(stored, 1))
    if size > limit:
        _refuse(
            func,
            path,
            f"its {name} is {size:,} bytes of JSON (at most {limit:,}: "
            f"{JSON_RATIO}x its {stored:,} stored bytes, never over "
            f"{MAX_JSON // 2**20} MiB).",
        )


def _parse_json(raw, name, path, fmt, func):
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        config = json.loads(text)
    except RecursionError:
        _refuse(func, path, f"its {name} is nested too deeply to be a model.")
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError
        _corrupt(
            func,
            path,
            fmt,
            f"its {name} is not valid JSON ({err}); the "
            "file is corrupt or not a model.",
            err,
        )
    if not isinstance(config, (dict, list)):
        _corrupt(func, path, fmt, f"its {name} is not a model configuration.")
    return config


def _unsafe_name(name: str) -> bool:
    name = name.replace("\\", "/")
    parts = name.split("/")
    return (
        name.startswith("/")
        or ".." in parts
        or "\0" in name
        or (len(name) > 1 and name[1] == ":")
    )


def _check_budget(infos, path, func):
    """Refuses an archive that would extract far more than the file's size."""
    if len(infos) > MAX_ENTRIES:
        _refuse(
            func,
            path,
            f"its archive holds {len(infos):,} entries (at most "
            f"{MAX_ENTRIES:,}; a Keras model file holds 3 and its assets).",
        )
    total = sum(info.file_size for info in infos)
    size = real_bytes(path, func)
    limit = min(MAX_TOTAL, TOTAL_RATIO * size + TOTAL_SLACK)
    if total > limit:
        _refuse(
            func,
            path,
            f"its archive would extract to {total:,} bytes from a file of "
            f"{size:,} bytes (at most {limit:,}: {TOTAL_RATIO} times the "
            f"file plus {TOTAL_SLACK // 2**20} MiB, never over "
            f"{MAX_TOTAL // 2**30} GiB).",
        )
    scratch = tempfile.gettempdir()
    if len(infos) > 3 and total > shutil.disk_usage(scratch).free:
        _refuse(
            func,
            path,
            f"tf_keras would extract its {total:,} bytes to {scratch!r}, "
            "which has less free space.",
        )


def _check_entries(infos, path, func):
    """Archive hygiene, read from the zip directory only."""
    _check_budget(infos, path, func)
    seen = set()
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            _refuse(
                func,
                path,
                f"its archive entry {name!r} points outside the "
                "archive ('..' or an absolute path).",
            )
        if name in seen:
            _refuse(
                func,
                path,
                f"its archive holds the entry {name!r} twice, so "
                "what is checked need not be what is loaded.",
            )
        seen.add(name)
        limit = {"config.json": CONFIG_LIMIT, "metadata.json": METADATA_LIMIT}
        size = info.file_size
        if size > limit.get(name, size) or (
            size > BOMB_MIN_BYTES and size > BOMB_RATIO * max(info.compress_size, 1)
        ):
            _refuse(
                func,
                path,
                f"its archive entry {name!r} would inflate from "
                f"{info.compress_size:,} to {size:,} bytes (a zip bomb).",
            )


class _Window:
    """A read-only, seekable view of one stored (uncompressed) zip entry."""

    def __init__(self, file, start, size):
        self.file, self.start, self.size, self.pos = file, start, size, 0

    def seek(self, offset, whence=0):
        base = (0, self.pos, self.size)[whence]
        self.pos = min(max(base + offset, 0), self.size)
        return self.pos

    def tell(self):
        return self.pos

    def read(self, n=-1):
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        self.file.seek(self.start + self.pos)
        data = self.file.read(n)
        self.pos += len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _check_weights_member(path, archive, info, func):
    import h5py

    with open(path, "rb") as raw:
        if info.compress_type == zipfile.ZIP_STORED:
            raw.seek(info.header_offset)
            header = raw.read(30)
            if header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"bad local header of {info.filename!r}")
            skip = int.from_bytes(header[26:28], "little") + int.from_bytes(
                header[28:30], "little"
            )
            member = _Window(raw, info.header_offset + 30 + skip, info.file_size)
        else:
            member = archive.open(info)
        with h5py.File(member, "r") as weights:
            _check_h5(weights, info.file_size, path, func, info.filename)


def _check_npz_member(path, archive, info, func):
    """An ``.npz`` weights entry is a zip too: its arrays must fit its size."""
    with archive.open(info) as member, zipfile.ZipFile(member) as npz:
        inner = npz.infolist()
        total = sum(entry.file_size for entry in inner)
        if len(inner) > MAX_ENTRIES or total > TENSOR_RATIO * info.file_size + (
            TENSOR_SLACK
        ):
            _refuse(
                func,
                path,
                f"its weights entry {info.filename!r} holds {len(inner):,} "
                f"arrays of {total:,} bytes in {info.file_size:,} bytes "
                "(a zip bomb).",
            )


def _read_keras(path, func):
    """The configuration of a ``.keras`` archive, read without extracting."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            starts_as_zip = f.read(4) == b"PK\x03\x04"
        if starts_as_zip:  # the zip directory at the end is missing
            _corrupt(func, path, "keras", "the archive is truncated or corrupt.")
        _corrupt(
            func,
            path,
            "keras",
            "it is not a .keras archive (a .keras file "
            "is a zip archive), so it is corrupt or not a model.",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_entries(infos, path, func)
            entries = {info.filename: info for info in infos}
            if "config.json" not in entries:
                _corrupt(
                    func,
                    path,
                    "keras",
                    "the archive holds no config.json, "
                    "so it is not a Keras model file.",
                )
            _check_json_size(
                entries["config.json"].file_size,
                "config.json",
                entries["config.json"].compress_size,
                path,
                func,
            )
            config = _parse_json(
                archive.read("config.json"), "config.json", path, "keras", func
            )
            weights = [entries[n] for n in _WEIGHT_ENTRIES if n in entries]
            for info in weights:
                if info.filename.endswith(".h5"):
                    _check_weights_member(path, archive, info, func)
                else:
                    _check_npz_member(path, archive, info, func)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        _corrupt(
            func, path, "keras", f"the archive is truncated or corrupt ({err}).", err
        )
    stored = sum(info.file_size for info in weights) or sum(
        info.file_size for info in infos if info.filename != "config.json"
    )
    return [("", config)], stored


def _read_h5(path, func):
    """The ``model_config`` and ``training_config`` of an HDF5 model file."""
    import h5py

    if not h5py.is_hdf5(path):
        _corrupt(
            func,
            path,
            "h5",
            "it is not an HDF5 file; the file is corrupt or not a model.",
        )
    stored = real_bytes(path, func)
    configs = []
    try:
        with h5py.File(path, "r") as f:
            _check_h5(f, stored, path, func)
            for key in ("model_config", "training_config"):
                raw = f.attrs.get(key)
                if raw is not None:
                    _check_json_size(len(raw), key, stored, path, func)
                    configs.append((key, _parse_json(raw, key, path, "h5", func)))
    except OSError as err:
        _corrupt(
            func, path, "h5", f"the HDF5 file is truncated or corrupt ({err}).", err
        )
    if not configs or configs[0][0] != "model_config":
        _corrupt(
            func,
            path,
            "h5",
            "the HDF5 file holds no model_config (it may "
            "hold weights only: load them with model.load_weights).",
        )
    return configs, stored


def _savedmodel_protos(path, func):
    """(SavedModel proto, Keras metadata proto or None) of a SavedModel folder."""
    from google.protobuf import text_format
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    try:
        saved = saved_model_pb2.SavedModel()
        if (path / "saved_model.pb").exists():
            saved.ParseFromString((path / "saved_model.pb").read_bytes())
        else:
            text_format.Parse((path / "saved_model.pbtxt").read_text(), saved)
        metadata = None
        if (path / "keras_metadata.pb").exists():
            module = f"{keras.__name__}.protobuf.saved_metadata_pb2"
            metadata = __import__(module, fromlist=["SavedMetadata"]).SavedMetadata()
            metadata.ParseFromString((path / "keras_metadata.pb").read_bytes())
    except (DecodeError, text_format.ParseError, UnicodeDecodeError) as err:
        _corrupt(
            func, path, "savedmodel", f"its protocol buffers are corrupt ({err}).", err
        )
    return saved, metadata


def _savedmodel_metadata(path, func):
    """(node path, metadata bytes) of every Keras object of a SavedModel.

    The graph is checked first (kdl._safe_graph): no op that may act outside
    the model, in any function.
    """
    saved, metadata = _savedmodel_protos(path, func)
    size = real_bytes(path, func)
    _safe_graph.check_graph(saved, path, func, TENSOR_RATIO * size + TENSOR_SLACK)
    _check_variables(saved, _stored_variables(path), path, func)
    if metadata is not None:
        return [(node.node_path, node.metadata) for node in metadata.nodes]
    graph = saved.meta_graphs[0].object_graph_def if saved.meta_graphs else None
    nodes = enumerate(graph.nodes) if graph is not None else ()
    return [
        (f"node {i}", node.user_object.metadata)
        for i, node in nodes
        if node.WhichOneof("kind") == "user_object"
        and node.user_object.identifier.startswith("_tf_keras")
        and node.user_object.metadata
    ]


def _read_savedmodel(path, func):
    """The Keras metadata of a SavedModel folder (none if Keras did not write it)."""
    real_bytes(path, func)  # refuses a symlink before reading anything
    if (
        not (path / "saved_model.pb").exists()
        and not (path / "saved_model.pbtxt").exists()
    ):
        _corrupt(
            func,
            path,
            "savedmodel",
            "the folder holds no saved_model.pb, so it is not a SavedModel.",
        )
    configs = [
        (
            where,
            _parse_json(text, f"Keras metadata ({where})", path, "savedmodel", func),
        )
        for where, text in _savedmodel_metadata(path, func)
    ]
    return configs, _stored_variables(path)


def _stored_variables(path: Path) -> int:
    """Bytes in a SavedModel's ``variables`` folder."""
    variables = path / "variables"
    if not variables.is_dir() or variables.is_symlink():
        return 0
    return real_bytes(variables)


def _check_variables(saved, stored: int, path, func):
    """Refuses variables (created while loading) far larger than the file holds."""
    from kdl.backend import tf

    total, largest = 0, (0, "")
    for meta in saved.meta_graphs:
        for i, node in enumerate(meta.object_graph_def.nodes):
            if node.WhichOneof("kind") != "variable":
                continue
            dims = [d.size for d in node.variable.shape.dim]
            if any(d < 0 for d in dims):
                continue
            try:
                itemsize = tf.dtypes.as_dtype(node.variable.dtype).size
            except TypeError:
                itemsize = 8
            size = math.prod(dims) * max(itemsize, 1)
            total += size
            largest = max(largest, (size, f"node {i} ({node.variable.name!r})"))
    if total > TENSOR_RATIO * stored + TENSOR_SLACK:
        _refuse(
            func,
            path,
            f"its object graph declares variables of {total:,} bytes "
            f"({largest[1]} alone {largest[0]:,}), but the file holds "
            f"{stored:,} bytes of variables; loading would allocate them.",
        )


def read_configs(path: Path, fmt: str, func: str):
    """([(label, parsed config)], bytes of weights stored) of a model file."""
    reader = {"keras": _read_keras, "h5": _read_h5, "savedmodel": _read_savedmodel}
    return reader[fmt](path, func)


def check_claims(configs, stored: int, path, func):
    """Refuses inputs and weights far larger than the file (see the module doc)."""
    _check_claims(configs, stored, path, func)
