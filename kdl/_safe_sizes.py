"""Tensors a SavedModel's functions would allocate, bounded before loading (issue 29).

A SavedModel's functions can compute tensors of any size from a few bytes:
``tf.fill([30000, 30000], 1.0)`` in a lookup table's initializer took 3.4 GB
while loading. Worse, TensorFlow itself *evaluates* the constant parts of a
graph while it imports the functions (shape inference folds the value of a
shape argument), so even a function that never runs can allocate at load
(``tf.reshape(x, tf.cast(tf.reduce_sum(tf.fill([N, N], 1.0)), tf.int32))``).
TensorFlow's own shape inference therefore cannot be used to read the sizes
(it would allocate them): this module walks each function's nodes itself,
computing no tensor larger than 64 values, and propagates

- each tensor's static shape (``Const`` from its proto; ops that take their
  output shape from an argument: ``Fill``, ``Empty``, ``BroadcastTo``,
  ``Tile``, ``Range``, the random ops, ``OneHot``, ``Pad``, ``ScatterNd``,
  ``UnsortedSegment*``, ...; broadcasting element-wise ops, ``MatMul``,
  ``ConcatV2``, ``Reshape``, ``GatherV2``);
- the value of small shape tensors (``Const``, ``Shape``, ``Pack``,
  arithmetic, ``Cast``, ...);
- where each value comes from: constants only, the function's arguments (the
  data it is called on), or stored state (variables, tables, a checkpoint).

It refuses, naming the function, node, op and shape:

1. any tensor whose known dimensions alone (an unknown one counted as 1) take
   more bytes than the budget (``TENSOR_RATIO`` x the SavedModel's size +
   ``TENSOR_SLACK``, the budget of :func:`kdl._safe_load.variable_budget`);
2. an op whose output size an argument decides, when that argument's value
   cannot be read statically but is computed from constants (TensorFlow would
   compute it while loading) or from stored state (a size read from a
   variable of the file);
3. in the functions that run while loading (resource creators and
   initializers, restore functions; ``_load_time_functions``), any tensor
   whose size is not known statically, unless the op never outputs more than
   its inputs hold or outputs only a handle;
4. in the functions that run while loading, any loop (``While``,
   ``StatelessWhile``, ``For``; a function that calls itself): a loop has no
   trip count kdl can prove, so neither its time nor what it allocates is
   bounded (review h29: 100,000 pushes of 4 MB into a TensorList, a table
   filled in a loop, a loop that never ends);
5. load-time functions whose allocations *together* exceed the budget: every
   output of known size, and the keys and values a table insert/import or a
   TensorList push adds, summed over the functions TensorFlow runs while
   loading (a callee counted once per call) -- 40 table inserts of 64 MiB
   each pass the per-tensor bound one by one.

Not covered: in functions that run when predicting, a size computed from the
data passed in (``tf.zeros(tf.shape(x)[0] * 10**6)``) is the caller's data;
it is allowed, as the recurrent layers' ``tf.zeros([batch, units])`` needs.
"""

from __future__ import annotations

import math
import re

import numpy as np

from kdl._safe_common import refuse

__all__ = ["check_sizes"]

CONST, DATA, STATE = 0, 1, 2  # where a value comes from, least to most trusted
_SMALL = 64  # values of tensors up to this many elements are tracked
# Op -> index of the argument whose value is the output shape.
_SHAPE_ARG = {
    "Fill": 0,
    "Empty": 0,
    "BroadcastTo": 1,
    "ScatterNd": 2,
    "SparseToDense": 1,
    "Conv2DBackpropInput": 0,
    "Conv3DBackpropInputV2": 0,
    "DepthwiseConv2dNativeBackpropInput": 0,
    **dict.fromkeys(
        "RandomUniform RandomStandardNormal TruncatedNormal RandomUniformInt "
        "RandomGamma RandomPoisson RandomPoissonV2 StatelessRandomUniform "
        "StatelessRandomNormal StatelessTruncatedNormal StatelessRandomUniformInt "
        "StatelessRandomUniformV2 StatelessRandomNormalV2 StatelessTruncatedNormalV2 "
        "StatelessRandomUniformIntV2 StatelessRandomUniformFullIntV2 "
        "StatelessRandomUniformFullInt StatelessRandomBinomial "
        "StatelessRandomGammaV2 StatelessRandomPoisson".split(),
        0,
    ),
    **dict.fromkeys(
        "StatefulUniform StatefulStandardNormalV2 StatefulTruncatedNormal "
        "StatefulUniformInt StatefulUniformFullInt".split(),
        2,
    ),
}
# Ops whose output size other arguments decide (handled in _sized_shape).
_SIZED = frozenset(
    "Tile Range OneHot Pad PadV2 MirrorPad Multinomial Bincount DenseBincount "
    "UnsortedSegmentSum UnsortedSegmentMax UnsortedSegmentMin UnsortedSegmentProd "
    "MatrixDiagV3 MatrixDiagV2 MatrixDiag Diag TensorListReserve TensorArrayV3 "
    "StackV2 Einsum ResizeBilinear ResizeNearestNeighbor ResizeBicubic ResizeArea "
    "ScaleAndTranslate CropAndResize".split()
)
_BINARY = frozenset(
    "Add AddV2 Sub Mul RealDiv Div DivNoNan FloorDiv FloorMod TruncateDiv "
    "TruncateMod Maximum Minimum Pow SquaredDifference Equal NotEqual Less "
    "LessEqual Greater GreaterEqual LogicalAnd LogicalOr BiasAdd Atan2 Xdivy "
    "Xlogy MulNoNan BitwiseAnd BitwiseOr BitwiseXor LeftShift RightShift "
    "SelectV2 Select".split()
)
_SAME = frozenset(
    "Identity Cast Neg Abs Relu Relu6 Elu Selu Sigmoid Tanh Exp Log Log1p Sqrt "
    "Rsqrt Square StopGradient Snapshot ZerosLike OnesLike Floor Ceil Round "
    "Sign Softmax LogSoftmax Erf Reciprocal LogicalNot Softplus Softsign "
    "CheckNumerics EnsureShape PreventGradient Invert".split()
)
# Outputs never larger than an input (or a handle): fine with an unknown size
# in a function that runs while loading.
_BOUNDED = re.compile(
    r"NoOp|Identity\w*|Const|Placeholder|_Arg|_Retval|ReadVariableOp|Assign\w*"
    r"|VarHandleOp|VarIsInitializedOp|DestroyResourceOp|DisableCopyOnRead"
    r"|(Anonymous)?(Mutable)?(Dense)?HashTable\w*|LookupTable(Import|Insert"
    r"|Remove|Find|Size|Export)\w*|InitializeTableV2|Restore\w*|Save\w*"
    r"|MergeV2Checkpoints|Sharded\w*|StringJoin|StaticRegex\w*|Reshape|Squeeze"
    r"|ExpandDims|Transpose|Shape|ShapeN|Size|Rank|Sum|Prod|Max|Min|Mean|All"
    r"|Any|ArgMax|ArgMin|StridedSlice|Slice|Unpack|Split|SplitV|Assert"
    r"|(Stateful)?PartitionedCall|If|StatelessIf|While|StatelessWhile|Case"
    # TensorLists (Keras while loops: RNNs, seq2seq): an empty list allocates
    # nothing; its elements are tensors checked where they are computed.
    r"|EmptyTensorList|TensorList(PushBack\w*|PopBack|Length|GetItem|SetItem"
    r"|Stack|FromTensor|ElementShape|Gather|Concat\w*|Split|Scatter\w*)"
    # cond branches and gradients: an empty optional, index/shape bookkeeping.
    r"|Optional(None|FromValue|GetValue|HasValue)|InvertPermutation|ConcatOffset"
)


# Loops have no trip count kdl can prove: refused in load-time functions.
_LOOPS = frozenset({"While", "StatelessWhile", "_While", "For", "_For"})
# Ops that make a table or a list grow by their inputs (load-time total).
_GROWS = frozenset(
    "LookupTableInsert LookupTableInsertV2 LookupTableImport LookupTableImportV2 "
    "TensorListPushBack TensorListPushBackBatch".split()
)


class _Tensor:
    __slots__ = ("shape", "value", "source")

    def __init__(self, shape=None, value=None, source=CONST):
        self.shape, self.value, self.source = shape, value, source


def _elements(shape) -> int:
    """Values of ``shape`` with each unknown dimension counted as 1."""
    return math.prod(d if d is not None and d >= 0 else 1 for d in shape)


def _small(array):
    array = np.asarray(array)
    return array if array.size <= _SMALL and array.dtype.kind in "iufb" else None


def _const(node) -> _Tensor:
    from tensorflow.python.framework import tensor_util

    proto = node.attr["value"].tensor
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    value = None
    if _elements(shape) <= _SMALL:
        try:
            value = _small(tensor_util.MakeNdarray(proto))
        except (TypeError, ValueError):
            value = None
    return _Tensor(shape, value, CONST)


def _dims(t: _Tensor):
    """The value of a shape argument as a tuple of dimensions, or None."""
    if t.value is None or t.value.ndim > 1 or t.value.dtype.kind not in "iu":
        return None
    return tuple(int(d) for d in np.atleast_1d(t.value))


def _broadcast(shapes):
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        known = [d for d in dims if d is not None and d >= 0]
        out.append(max(known) if len(known) == len(dims) else None)
    return tuple(out)


def _scalar(t: _Tensor):
    if t.value is None or t.value.size != 1:
        return None
    return t.value.reshape(()).item()


def _range_shape(start, limit, delta):
    start, limit, delta = _scalar(start), _scalar(limit), _scalar(delta)
    if None in (start, limit, delta) or delta == 0:
        return None
    return (max(0, math.ceil((limit - start) / delta)),)


def _sized_shape(op, args, attr):
    """The output shape of an op of :data:`_SIZED` (None when not known)."""
    first = args[0].shape if args else None
    if op == "Tile":
        multiples = _dims(args[1])
        if first is None or multiples is None or len(multiples) != len(first):
            return None
        return tuple(None if d is None else d * m for d, m in zip(first, multiples))
    if op == "Range":
        return _range_shape(*args[:3])
    if op == "OneHot":
        depth = _scalar(args[1])
        return None if first is None or depth is None else (*first, int(depth))
    if op in ("Pad", "PadV2", "MirrorPad"):
        pads = args[1].value
        if first is None or pads is None or pads.shape != (len(first), 2):
            return None
        return tuple(
            None if d is None else d + int(p.sum()) for d, p in zip(first, pads)
        )
    if op.startswith("UnsortedSegment"):
        count, data = _scalar(args[2]), first
        return None if count is None or data is None else (int(count), *data[1:])
    if op == "Multinomial":
        count = _scalar(args[1])
        return None if count is None or first is None else (*first[:1], int(count))
    if op in ("Bincount", "DenseBincount"):
        size = _scalar(args[1])
        return None if size is None else (int(size),)
    if op in ("TensorListReserve", "TensorArrayV3", "StackV2"):
        size = _scalar(args[1] if op == "TensorListReserve" else args[0])
        return None if size is None else (int(size),)
    if op.startswith(("Resize", "ScaleAndTranslate", "CropAndResize")):
        size = _dims(args[3 if op == "CropAndResize" else 1])
        if size is None or len(size) != 2:
            return None
        rank4 = first is not None and len(first) == 4
        return (None, *size, first[3] if rank4 else None)
    if op in ("Diag", "MatrixDiag"):
        return None if first is None else (*first, *first[-1:])
    return None  # Einsum, MatrixDiagV2/V3: not read


def _matmul(args, attr):
    a, b = args[0].shape, args[1].shape
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    rows = a[-1] if attr("transpose_a") or attr("adj_x") else a[-2]
    cols = b[-2] if attr("transpose_b") or attr("adj_y") else b[-1]
    batch = _broadcast([a[:-2], b[:-2]])
    return None if batch is None else (*batch, rows, cols)


def _gather(args):
    params, indices, axis = args[0].shape, args[1].shape, _scalar(args[2])
    if params is None or indices is None or axis is None or not params:
        return None
    axis = int(axis) % len(params)
    return (*params[:axis], *indices, *params[axis + 1 :])


def _arithmetic(op, args):
    values = [a.value for a in args[:2]]
    if any(v is None for v in values):
        return None
    funcs = {
        "Add": np.add,
        "AddV2": np.add,
        "Sub": np.subtract,
        "Mul": np.multiply,
        "FloorDiv": np.floor_divide,
        "Maximum": np.maximum,
        "Minimum": np.minimum,
    }
    if op not in funcs:
        return None
    with np.errstate(all="ignore"):
        try:
            return _small(funcs[op](*values))
        except (ValueError, TypeError, ZeroDivisionError):
            return None


def _value_op(op, args, attr):
    """(shape, value) of the ops that carry small shape values, or None."""
    first = args[0] if args else _Tensor()
    if op in ("Shape", "Size", "Rank"):
        shape = first.shape
        if shape is None or (op != "Rank" and None in shape):
            rank = (None if shape is None else len(shape),)
            return (rank if op == "Shape" else (), None)
        value = {"Shape": shape, "Size": math.prod(shape), "Rank": len(shape)}[op]
        return (np.shape(value), _small(np.asarray(value, dtype=np.int64)))
    if op == "Pack" and args:
        parts = [a.value for a in args]
        known = all(p is not None and p.ndim == 0 for p in parts)
        shape = None if first.shape is None else (len(args), *first.shape)
        return (shape, np.stack(parts) if known else None)
    if op == "ConcatV2":
        parts = [a.value for a in args[:-1]]
        if all(p is not None and p.ndim == 1 for p in parts) and parts:
            value = np.concatenate(parts)
            return (value.shape, _small(value))
        return None
    if op == "Cast" and first.value is not None:
        from tensorflow import as_dtype

        value = first.value.astype(as_dtype(attr("DstT")).as_numpy_dtype)
        return (first.shape, _small(value))
    if (
        op == "StridedSlice"
        and first.value is not None
        and attr("shrink_axis_mask") == 1
    ):
        begin = args[1].value
        if begin is not None and begin.size == 1 and first.value.ndim == 1:
            index = int(begin.reshape(()))
            if -len(first.value) <= index < len(first.value):
                return ((), first.value[index])
    if op in ("Prod", "Sum") and first.value is not None and args[1].value is not None:
        reduce = np.prod if op == "Prod" else np.sum
        axis = tuple(int(a) for a in np.atleast_1d(args[1].value))
        value = reduce(first.value, axis=axis, keepdims=bool(attr("keep_dims")))
        return (np.shape(value), _small(value))
    if op in _BINARY:
        value = _arithmetic(op, args)
        if value is not None:
            return (value.shape, value)
    return None


def _reshape(args):
    dims, size = _dims(args[1]), args[0].shape
    if dims is None:
        return None
    if dims.count(-1) == 1 and size is not None and None not in size:
        rest = math.prod(d for d in dims if d != -1)
        return (
            tuple(math.prod(size) // rest if d == -1 else d for d in dims)
            if rest
            else None
        )
    return tuple(None if d < 0 else d for d in dims)


def _shape_of(op, args, attr):
    """The static output shape of ``op`` (dimensions None when not known)."""
    if op in _SHAPE_ARG:
        dims = _dims(args[_SHAPE_ARG[op]]) if len(args) > _SHAPE_ARG[op] else None
        if dims is None and len(args) > _SHAPE_ARG[op]:
            rank = args[_SHAPE_ARG[op]].shape
            return (None,) * rank[0] if rank and rank[0] is not None else None
        return dims
    if op in _SIZED:
        return _sized_shape(op, args, attr)
    if op in _SAME and args:
        return args[0].shape
    if op in _BINARY:
        return _broadcast([a.shape for a in args[-2:]])
    if op in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        return _matmul(args, attr)
    if op == "GatherV2" and len(args) == 3:
        return _gather(args)
    if op == "Reshape":
        return _reshape(args)
    if op == "ConcatV2" and args:
        axis, shapes = _scalar(args[-1]), [a.shape for a in args[:-1]]
        if axis is None or any(s is None or len(s) != len(shapes[0]) for s in shapes):
            return None
        axis = int(axis) % max(len(shapes[0]), 1)
        total = [s[axis] for s in shapes]
        shape = list(shapes[0])
        shape[axis] = None if None in total else sum(total)
        return tuple(shape)
    return None


def called_functions(node_defs) -> set:
    """Names of the ops and functions the nodes call (call ops and attributes)."""
    names = set()
    for node in node_defs:
        names.add(node.op)
        for attr in node.attr.values():
            if attr.func.name:
                names.add(attr.func.name)
            names.update(f.name for f in attr.list.func)
    return names


def _load_time_roots(meta) -> set:
    """The functions TensorFlow itself calls while loading (once each)."""
    graph = meta.object_graph_def
    ids = []
    for node in graph.nodes:
        if node.WhichOneof("kind") == "resource":
            ids += [c.node_id for c in node.children]
        for saveable in node.saveable_objects.values():
            ids += [saveable.save_function, saveable.restore_function]
    names = set()
    for node in (graph.nodes[i] for i in ids if 0 <= i < len(graph.nodes)):
        kind = node.WhichOneof("kind")
        if kind == "function":
            names.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names.add(node.bare_concrete_function.concrete_function_name)
    return names


def _load_time_functions(meta, library) -> set:
    """The functions TensorFlow runs while loading, and those they call."""
    names = _load_time_roots(meta)
    todo = list(names)
    while todo:
        function = library.get(todo.pop())
        for name in called_functions(function.node_def) if function else ():
            if name in library and name not in names:
                names.add(name)
                todo.append(name)
    return names


def _ordered(node_defs):
    """The nodes in an order where each comes after the nodes it reads."""
    by_name = {node.name: node for node in node_defs}
    done, order = set(), []
    for root in node_defs:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node.name in done:
                continue
            if expanded:
                done.add(node.name)
                order.append(node)
                continue
            stack.append((node, True))
            for ref in node.input:
                source = by_name.get(ref.lstrip("^").split(":")[0])
                if source is not None and source.name not in done:
                    stack.append((source, False))
    return order


def _attr_reader(node):
    def attr(key):
        if key not in node.attr:
            return None
        value = node.attr[key]
        which = value.WhichOneof("value")
        return getattr(value, which) if which else None

    return attr


def _itemsize(attr) -> int:
    from tensorflow import as_dtype

    for key in ("dtype", "T", "DstT", "out_type", "Tout"):
        dtype = attr(key)
        if isinstance(dtype, int) and dtype:
            try:
                dtype = as_dtype(dtype)
            except TypeError:
                return 8
            return 32 if dtype == "string" else max(dtype.size, 1)
    return 4


def _arguments(function, source):
    """The function's arguments, with the shapes TensorFlow recorded for them."""
    tensors = {}
    for i, arg in enumerate(function.signature.input_arg):
        shape = None
        shapes = function.arg_attr[i].attr["_output_shapes"].list.shape
        if shapes and not shapes[0].unknown_rank:
            shape = tuple(d.size if d.size >= 0 else None for d in shapes[0].dim)
        tensors[arg.name] = _Tensor(shape, None, source)
    return tensors


class _Walk:
    """One function (or the top-level graph), node by node."""

    def __init__(self, label, tensors, library, load_time, report):
        self.label, self.tensors, self.library = label, tensors, library
        self.load_time, self.report = load_time, report
        self.allocated, self.calls = 0, []  # bytes, functions called (load time)

    def read(self, ref, outputs):
        parts = ref.split(":")
        if len(parts) == 1 and ref in self.tensors:
            return self.tensors[ref]
        node = outputs.get(parts[0])
        if node is None:
            return _Tensor(None, None, STATE)
        first, tensor = node
        index = parts[-1] if len(parts) > 1 else "0"
        if index == "0" and (len(parts) < 3 or parts[1] == first):
            return tensor
        return _Tensor(None, None, tensor.source)

    def run(self, node_defs):
        from tensorflow.python.framework import op_def_registry

        outputs = {}
        for node in _ordered(node_defs):
            args = [self.read(r, outputs) for r in node.input if not r.startswith("^")]
            op_def = op_def_registry.get(node.op)
            tensor = self.node(node, args, op_def)
            first = op_def.output_arg[0].name if op_def and op_def.output_arg else ""
            outputs[node.name] = (first, tensor)

    def node(self, node, args, op_def):
        op, attr = node.op, _attr_reader(node)
        source = max((a.source for a in args), default=CONST)
        if op in ("Placeholder", "_Arg", "Shape", "ShapeN", "Size", "Rank"):
            source = DATA  # the data, or the size of a tensor that exists
        elif op in self.library or (op_def is not None and op_def.is_stateful):
            source = STATE
        if op == "Const":
            tensor = _const(node)
        else:
            carried = _value_op(op, args, attr)
            shape = _shape_of(op, args, attr)
            if carried is not None:
                shape = shape if shape is not None else carried[0]
                shape = (shape,) if isinstance(shape, int) else shape
            value = carried[1] if carried is not None else None
            tensor = _Tensor(shape, value, source if value is None else CONST)
        self.check(node, op, args, tensor, _itemsize(attr), source)
        if self.load_time:
            self.account(node, op, args, tensor, _itemsize(attr))
        return tensor

    def account(self, node, op, args, tensor, itemsize):
        """Adds what a node of a load-time function allocates to the total."""
        where = f"{self.label}, node {node.name!r}"
        if op in _LOOPS:
            self.report.loop(where, op)
        self.calls += sorted(called_functions([node]) & self.library.keys())
        if op in _GROWS:  # a table or list grows by the keys, values, element
            parts = args[1:3] if op.startswith("LookupTable") else args[1:2]
            self.allocated += sum(8 * _elements(a.shape or ()) for a in parts)
        elif tensor.shape is not None and not _BOUNDED.fullmatch(op):
            self.allocated += _elements(tensor.shape) * itemsize

    def check(self, node, op, args, tensor, itemsize, source):
        shape = tensor.shape
        where = f"{self.label}, node {node.name!r}"
        if shape is not None and _elements(shape) * itemsize > self.report.limit:
            size = _elements(shape) * itemsize
            self.report(where, op, f"a tensor of shape {list(shape)} ({size:,} bytes)")
        if shape is not None and None not in shape:
            return
        deciding = max((a.source for a in args), default=CONST)
        if op in _SHAPE_ARG and len(args) > _SHAPE_ARG[op]:
            # only the shape argument decides the size (not a random op's
            # key and counter, read from a generator's state)
            deciding = args[_SHAPE_ARG[op]].source
        if op in _SHAPE_ARG or op in _SIZED:
            if deciding == CONST:
                why = "computed from constants kdl does not fold (TensorFlow would"
                self.report(where, op, f"a tensor whose size is {why} compute it)")
            # In a serving function an output whose size depends on the
            # model's own variables is as legitimate as one that depends on
            # the input (Einsum of a weight, bincount, a random op seeded from
            # a variable); only a shape argument read from a variable, and any
            # unknown size in the functions that run while loading, are
            # refused (review of issue 29: Keras' own SavedModels were).
            if self.load_time or (deciding == STATE and op in _SHAPE_ARG):
                why = "read from values stored in the file"
                self.report(where, op, f"a tensor whose size is {why}")
        elif not (_BOUNDED.fullmatch(op) or op in _SAME or op in self.library):
            if source == CONST or self.load_time:
                self.report(where, op, "a tensor whose size kdl cannot read statically")


class _Report:
    def __init__(self, limit, index, path, func):
        self.limit, self.index, self.path, self.func = limit, index, path, func

    def loop(self, where, op):
        refuse(
            self.func,
            self.path,
            f"its graph (meta graph {self.index}, {where}) runs the op {op!r}, a "
            "loop in a function TensorFlow runs while loading; kdl cannot bound "
            "how often it runs nor what it allocates.",
        )

    def total(self, function, total):
        refuse(
            self.func,
            self.path,
            f"its graph (meta graph {self.index}) runs functions while loading "
            f"(from {function!r}) that allocate {total:,} bytes in total; a file "
            f"of this size may allocate at most {self.limit:,} bytes while loading.",
        )

    def __call__(self, where, op, what):
        refuse(
            self.func,
            self.path,
            f"its graph (meta graph {self.index}, {where}) runs the op {op!r} "
            f"computing {what}; a file of this size may allocate at most "
            f"{self.limit:,} bytes per tensor while loading or predicting.",
        )


def check_sizes(meta, index, path, func, limit) -> None:
    """Refuses a meta graph whose functions would compute tensors over ``limit``.

    Args:
        meta: a ``MetaGraphDef`` of the SavedModel.
        index: int. Its index, for the message.
        path, func: the SavedModel folder and the public function, for the message.
        limit: int. Bytes any one tensor may take.

    Raises:
        ValueError: naming the function, node, op and shape.
    """
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    load_time = _load_time_functions(meta, library)
    report = _Report(limit, index, path, func)
    walks = {}
    for name, function in library.items():
        at_load = name in load_time
        tensors = _arguments(function, STATE if at_load else DATA)
        walk = _Walk(f"function {name!r}", tensors, library, at_load, report)
        walk.run(function.node_def)
        walks[name] = walk
    _Walk("the top-level graph", {}, library, False, report).run(meta.graph_def.node)
    _check_total(walks, _load_time_roots(meta) & walks.keys(), report)


def _check_total(walks, roots, report) -> None:
    """Refuses load-time functions that allocate more than the budget in all.

    Each function counts what it allocates plus, per call, what the function
    it calls does; a function that calls itself (recursion, a loop by other
    means) is refused.
    """
    costs = {}

    def cost(name, active):
        if name in active:
            report.loop(f"function {name!r}", "a call of itself")
        if name not in costs:
            walk = walks[name]
            inner = sum(cost(c, active | {name}) for c in walk.calls if c in walks)
            costs[name] = walk.allocated + inner
        return costs[name]

    total = 0
    for root in sorted(roots):
        total += cost(root, frozenset())
        if total > report.limit:
            report.total(root, total)
