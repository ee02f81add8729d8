"""The TensorFlow graph of a SavedModel, read before it is loaded (issue 29).

A SavedModel holds TensorFlow functions: its resource initializers run while
it loads, its serving functions when it predicts. One that calls
``tf.io.write_file`` writes a file; ``tf.py_function`` runs Python. kdl reads
``saved_model.pb`` (every function of every meta graph, and the top-level
graph) before TensorFlow does, and refuses any op that may act outside the
model.

Allow-list, not deny-list: TensorFlow marks every op with an effect beyond its
outputs as *stateful* in its registered OpDef (``WriteFile``, ``PrintV2``,
``PyFunc``, ``EagerPyFunc``, ``SaveV2``, summaries, ...). Pure ops are allowed
as they are; a stateful op passes only if it is on :data:`_STATEFUL_OK`, the
ops that touch nothing but the model's own state (variables, resources,
random generators, tensor arrays, lookup tables, control flow and calls). A
new TensorFlow op with side effects is therefore refused until reviewed. A few
ops that read files without being stateful (``ReadFile``, ``MatchingFiles``,
``ImmutableConst``, datasets, readers) are refused by name, and an op
TensorFlow does not know (a custom op library) is refused too.

The checkpoint ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``) appear
in the ``__inference__traced_save_*`` / ``__inference__traced_restore_*``
functions every SavedModel carries for TF1 savers; they are allowed there
only, in a TF2 SavedModel (one with an object graph), and only when no
function of the object graph (what TF2 loading and the serving signatures
run), no other function and no top-level node but the saver's own calls them.
"""

from __future__ import annotations

import re

from kdl._safe_common import refuse
from kdl._safe_sizes import called_functions, check_sizes

__all__ = ["check_graph"]

_STATEFUL_OK = re.compile(
    r"(VarHandleOp|ReadVariableOp|Assign\w*|VarIsInitializedOp|DestroyResourceOp"
    r"|DisableCopyOnRead|Resource\w*|Variable|VariableV2|IsVariableInitialized"
    r"|StatefulPartitionedCall|If|While|Case|For|Assert|CudnnRNN\w*"
    r"|Random\w*|TruncatedNormal|Multinomial|ParameterizedTruncatedNormal"
    r"|Stateful(Uniform|StandardNormal|TruncatedNormal|RandomBinomial)\w*"
    r"|RngReadAndSkip|RngSkip|NonDeterministicInts|TensorArray\w*|Stack\w*"
    r"|(Anonymous)?(Mutable)?(Dense)?HashTable\w*|LookupTable\w*|InitializeTableV2"
    r"|MutexV2|MutexLock|ConsumeMutexLock|Timestamp"
    # adapt_step of adapted preprocessing layers pulls from the iterator it
    # is given; an iterator over files needs dataset ops, refused by name.
    r"|IteratorGetNext|IteratorGetNextSync)"
)
_FILE_OPS = re.compile(r"File|Dataset|Reader|Immutable|Summary|Print|Debug|PyFunc")
_CHECKPOINT_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec"}
)
_SAVER_FUNCTION = re.compile(r"__inference__traced_(save|restore)_\d+")


def _problem(op, where, library, savers) -> str | None:
    from tensorflow.python.framework import op_def_registry

    if op in library:
        return None  # a call of one of the file's functions, each checked
    if op in _CHECKPOINT_OPS and where in savers:
        return None
    op_def = op_def_registry.get(op)
    if op_def is None:
        return "an op TensorFlow does not know (a custom op)"
    if _FILE_OPS.search(op) or op in _CHECKPOINT_OPS:
        return "an op that reads or writes files, prints or runs Python"
    if op_def.is_stateful and not _STATEFUL_OK.fullmatch(op):
        return "a stateful op that may act outside the model"
    return None


def _meta_graph_problem(meta, index, path, func):
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    object_graph = meta.object_graph_def
    reached = set(object_graph.concrete_functions)
    for function in library.values():
        reached |= called_functions(function.node_def) - {function.signature.name}
    # Top-level nodes other than the saver's own may call a function too
    # (a TF1-style init op): the saver functions are exempt only when called
    # by nothing else, in a TF2 SavedModel (an object graph).
    saver = meta.saver_def
    saver_nodes = {saver.save_tensor_name.split(":")[0], saver.restore_op_name}
    for node in meta.graph_def.node:
        if node.name not in saver_nodes:
            reached |= called_functions([node])
    savers = {
        name
        for name in library
        if _SAVER_FUNCTION.fullmatch(name)
        and name not in reached
        and len(object_graph.nodes) > 0
    }
    parts = [(f"function {name!r}", f.node_def, name) for name, f in library.items()]
    parts.append(("the top-level graph", meta.graph_def.node, None))
    for label, nodes, name in parts:
        for node in nodes:
            problem = _problem(node.op, name, library, savers)
            if problem:
                refuse(
                    func,
                    path,
                    f"its graph (meta graph {index}, {label}, node "
                    f"{node.name!r}) runs the op {node.op!r}, {problem}; "
                    "TensorFlow would run it while loading or predicting.",
                )


def check_graph(saved_model, path, func: str = "kdl.load", limit=None) -> None:
    """Refuses a parsed ``SavedModel`` proto whose graph may act outside the model.

    Args:
        saved_model: a ``tensorflow.core.protobuf.saved_model_pb2.SavedModel``.
        path: the SavedModel folder, for the message.
        func: str. The public function named in the message.
        limit: int or None. Bytes any one tensor its functions compute may
            take (:mod:`kdl._safe_sizes`); None skips that check.

    Raises:
        ValueError: naming the function, the node and the op (and the shape).
    """
    for index, meta in enumerate(saved_model.meta_graphs):
        _meta_graph_problem(meta, index, path, func)
        if limit is not None:
            check_sizes(meta, index, path, func, limit)
