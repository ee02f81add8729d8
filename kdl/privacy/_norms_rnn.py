"""Per-example gradient norms of recurrent layers (upstream issue 16).

TensorFlow Privacy's registry cannot express a recurrent layer: its weights
act at every time step through the state. The gradient of the input kernel is
``sum_t x_t^T dx_t`` and that of the recurrent kernel ``sum_t h_{t-1}^T dr_t``,
where ``dx_t`` and ``dr_t`` are the loss gradients of the input and recurrent
projections at step ``t``. So kdl runs the recurrence itself: the input
projections of all steps are computed at once (a tensor the tape watches), a
zero *probe* is added to the recurrent projections where they differ from the
input ones (GRU's reset gate), and the per-example norms are ghost norms over
time steps (:func:`kdl.privacy._norms.position_sqr_norms`). The maths follows
tf_keras' SimpleRNNCell, LSTMCell and GRUCell (reset_after=True) step by step.
"""

from __future__ import annotations

from kdl.backend import keras, tf
from kdl.privacy._norms import LayerNorms, kernel_grad, position_sqr_norms

__all__ = ["supported", "recurrent", "bidirectional", "bidirectional_supported"]

_CELLS = (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)


def supported(layer) -> bool:
    """SimpleRNN, GRU (reset_after) and LSTM without dropout, state or
    unusual options."""
    if type(layer) not in _CELLS:
        return False
    cell = layer.cell
    plain = (
        not layer.stateful
        and not layer.return_state
        and not layer.time_major
        and not getattr(cell, "dropout", 0.0)
        and not getattr(cell, "recurrent_dropout", 0.0)
    )
    if isinstance(layer, keras.layers.GRU):
        plain = plain and cell.reset_after
    return bool(plain)


def bidirectional_supported(layer) -> bool:
    """Bidirectional around a supported layer, merged by concat/sum/ave/mul."""
    return (
        supported(layer.forward_layer)
        and supported(layer.backward_layer)
        and layer.merge_mode in ("concat", "sum", "ave", "mul")
    )


def _biases(cell):
    """(input bias, recurrent bias) of a cell; either may be None."""
    if not cell.use_bias:
        return None, None
    if isinstance(cell, keras.layers.GRUCell):
        return cell.bias[0], cell.bias[1]
    return cell.bias, None


def _step_fn(cell):
    """One step: (state, (input projection, probe)) -> state."""
    act = cell.activation
    rec_act = getattr(cell, "recurrent_activation", None)
    _, rec_bias = _biases(cell)

    def simple(state, inputs):
        (h,) = state
        return (act(inputs[0] + tf.matmul(h, cell.recurrent_kernel)),)

    def lstm(state, inputs):
        h, c = state
        z = inputs[0] + tf.matmul(h, cell.recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = rec_act(f) * c + rec_act(i) * act(g)
        return (rec_act(o) * act(c), c)

    def gru(state, inputs):
        (h,) = state
        rec = tf.matmul(h, cell.recurrent_kernel) + inputs[1]
        if rec_bias is not None:
            rec = rec + rec_bias
        x_z, x_r, x_h = tf.split(inputs[0], 3, axis=-1)
        r_z, r_r, r_h = tf.split(rec, 3, axis=-1)
        z = rec_act(x_z + r_z)
        hh = act(x_h + rec_act(x_r + r_r) * r_h)
        return (z * h + (1 - z) * hh,)

    if isinstance(cell, keras.layers.GRUCell):
        return gru
    return lstm if isinstance(cell, keras.layers.LSTMCell) else simple


def _run(layer, x, tape):
    """Runs the recurrence; returns (projections, probe, outputs, previous)."""
    cell = layer.cell
    if layer.go_backwards:
        x = tf.reverse(x, axis=[1])
    proj = tf.einsum("btk,kg->btg", x, cell.kernel)
    in_bias, _ = _biases(cell)
    if in_bias is not None:
        proj = proj + in_bias
    is_gru = isinstance(cell, keras.layers.GRUCell)
    probe = tf.zeros_like(proj) if is_gru else None
    tape.watch(proj)
    if probe is not None:
        tape.watch(probe)
    batch = tf.shape(x)[0]
    count = 2 if isinstance(cell, keras.layers.LSTMCell) else 1
    init = tuple(tf.zeros([batch, cell.units], x.dtype) for _ in range(count))
    elems = (
        tf.transpose(proj, [1, 0, 2]),
        tf.transpose(probe if is_gru else proj, [1, 0, 2]),
    )
    states = tf.scan(_step_fn(cell), elems, initializer=init)
    outputs = tf.transpose(states[0], [1, 0, 2])  # (B, T, units)
    previous = tf.concat([init[0][:, None], outputs[:, :-1]], axis=1)
    return proj, probe, outputs, previous, x


def _norm_fns(layer, x, previous, has_probe):
    """(sqr_norm_fn, grad_fn) over the base [projections(, probe)]."""
    cell = layer.cell
    in_bias, rec_bias = _biases(cell)

    def split(grads):
        d_in = grads[0]
        d_rec = grads[1] if has_probe else d_in
        return d_in, d_rec

    def sqr_norm_fn(grads):
        d_in, d_rec = split(grads)
        norms = position_sqr_norms(x, d_in) + position_sqr_norms(previous, d_rec)
        if in_bias is not None:
            norms += tf.reduce_sum(tf.square(tf.reduce_sum(d_in, axis=1)), axis=1)
        if rec_bias is not None:
            norms += tf.reduce_sum(tf.square(tf.reduce_sum(d_rec, axis=1)), axis=1)
        return norms

    def grad_fn(scaled):
        d_in, d_rec = split(scaled)
        pairs = [
            (cell.kernel, kernel_grad(x, d_in)),
            (cell.recurrent_kernel, kernel_grad(previous, d_rec)),
        ]
        if cell.use_bias:
            bias = tf.reduce_sum(d_in, axis=[0, 1])
            if rec_bias is not None:
                bias = tf.stack([bias, tf.reduce_sum(d_rec, axis=[0, 1])])
            pairs.append((cell.bias, bias))
        return pairs

    return sqr_norm_fn, grad_fn


def _check_call(layer, args, kwargs):
    extra = [k for k, val in kwargs.items() if val is not None and k != "training"]
    if len(args) != 1 or extra:
        raise NotImplementedError(
            f"{layer.name}: one input without mask or initial state ({extra})"
        )


def recurrent(layer, args, kwargs, tape):
    """SimpleRNN, GRU or LSTM: the recurrence run by kdl, norms over time."""
    _check_call(layer, args, kwargs)
    if not layer.built:
        layer.build(args[0].shape)
    proj, probe, outputs, previous, x = _run(layer, args[0], tape)
    base = [proj] if probe is None else [proj, probe]
    sqr_norm_fn, grad_fn = _norm_fns(layer, x, previous, probe is not None)
    result = outputs if layer.return_sequences else outputs[:, -1]
    return LayerNorms(base, result, sqr_norm_fn, grad_fn)


def _merge(mode, forward, backward):
    if mode == "concat":
        return tf.concat([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "ave":
        return (forward + backward) / 2
    return forward * backward


def bidirectional(layer, args, kwargs, tape):
    """Bidirectional: both directions' norms added, their outputs merged."""
    _check_call(layer, args, kwargs)
    forward = recurrent(layer.forward_layer, args, {}, tape)
    backward = recurrent(layer.backward_layer, args, {}, tape)
    back_out = backward.outputs
    if layer.return_sequences:
        back_out = tf.reverse(back_out, axis=[1])
    outputs = _merge(layer.merge_mode, forward.outputs, back_out)
    cut = len(forward.base)

    def sqr_norm_fn(grads):
        return forward.sqr_norm_fn(grads[:cut]) + backward.sqr_norm_fn(grads[cut:])

    def grad_fn(scaled):
        return forward.grad_fn(scaled[:cut]) + backward.grad_fn(scaled[cut:])

    return LayerNorms(forward.base + backward.base, outputs, sqr_norm_fn, grad_fn)
