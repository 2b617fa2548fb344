"""Softmax cross-entropy and the negative log-likelihood, with fused gradients.

Public functions validate (``_validate``), work out the reduction's
denominator and gradient scale here (O(N)), and call the kernels of
``src/cross_entropy.pxi``, which compute the per-sample losses and, in the
same row pass, the gradient.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional, Tuple, overload

import numpy as np

from ._bfloat16 import bfloat16_io, result_array, result_scalar
from . import _threads
from ._dispatch import kernel
from . import _kernels as _k
from ._validate import (
    ROW_WHERE_DOC,
    row_constant,
    ignore_index_value,
    BFloat16Input,
    Rows,
    as_values,
    bf16_outputs,
    caller_memory,
    check_grad_out,
    class_axes,
    class_labels,
    class_weights,
    compute_dtype,
    deliver,
    fill_doc,
    float_array,
    integer,
    positive_or_none,
    real_scalar,
    reciprocal_overflows,
    reduction_mode,
    sample_weights,
    scaled_by,
    scaled_up,
    target_kind,
    upstream_grad,
)
from ._typing import (
    ArrayLike, ClassLossOptions, FloatArray, FloatResult, IntArray, LossArgmaxResult, LossResult,
    Reduction, SoftmaxCrossEntropyOptions, Threads,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack

_OPTIONS_DOC = """\
    target : array_like of int or float
        Integer class indices (any integer dtype; the logits' shape without the
        class axis), or class probabilities (float; the logits' shape). The
        dtype decides, as in PyTorch. Probabilities are not checked to sum to
        one: any real target mass is used as given.
    axis : int, default -1
        The class axis. ``axis=1`` is PyTorch's ``(N, C, d1, ..., dk)`` layout.
    weight : array_like, shape (C,), optional
        Per-class weights ``w_c``.
    sample_weight : array_like, optional
        Per-sample weights, of the logits' shape without the class axis.
    {where}
    ignore_index : int, default -100
        Integer targets equal to it contribute 0 loss and 0 gradient and are
        left out of the mean's denominator. Not used with probability targets.
    label_smoothing : float in [0, 1], default 0
        PyTorch's convention: the target becomes ``(1 - eps) * onehot + eps / C``
        (or ``(1 - eps) * t + eps / C``), class weights applied inside.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns one loss per sample (the batch shape). ``"sum"`` adds
        them. ``"mean"`` divides the sum by PyTorch's denominator: the sum over
        non-ignored samples of ``sample_weight * weight[target]`` for integer
        targets (the sample count without weights), and the sum of sample
        weights (the sample count) for probability targets. If that
        denominator is 0 (every target ignored, or zero weights), the mean is
        0 with a 0 gradient, not NaN as in PyTorch.
    return_grad : bool, default False
        Also return the gradient of the returned loss with respect to the
        input, same shape and dtype as the input.
    grad_loss : float or array_like, optional
        Upstream gradient (default 1): a scalar for ``"mean"``/``"sum"``, an
        array broadcastable to the per-sample shape for ``"none"``.
    grad_out : ndarray, optional
        Buffer for the gradient (shape and dtype of the input, writeable).
        ``grad_out=`` the input itself writes the gradient over it in place;
        any other overlap with an argument is an error. Needs ``return_grad``.
    n_threads : int or None, default None
        OpenMP threads; see :func:`xent.logsumexp`. Results do not depend on it.
"""


_OPTIONS_DOC = _OPTIONS_DOC.replace("{where}", ROW_WHERE_DOC)


def _mean_denominator(labels, ignore_index, w, sw, n_rows, none_ignored=False):
    """PyTorch's denominator of "mean": sum over kept samples of sw * w[target]
    (O(N)); ``none_ignored``: known from validation that no label is ignore_index."""
    # (summed by grouped_sum, as the compiled common call sums them: src/fast.pxi)
    if labels is None:  # probability targets: every sample counts once
        return float(n_rows) if sw is None else _k.loss_sum(sw)
    ignored = None if none_ignored else labels == ignore_index
    if ignored is not None and ignored.any():
        kept = ~ignored
        labels = labels[kept]
        sw = None if sw is None else sw[kept]
    if w is None:
        return float(labels.size) if sw is None else _k.loss_sum(sw)
    per = w[labels]
    return _k.loss_sum(per if sw is None else per * sw)


def _prepare(name, x, target, axis, weight, sample_weight, ignore_index, label_smoothing,
             reduction, return_grad, grad_loss, grad_out, n_threads, other_inputs=(), bf16=False,
             where=None):
    """Validate everything a loss call takes; return what the kernels need.
    ``other_inputs``: more (name, value) arguments grad_out must not overlap.
    ``bf16``: the kernels read bfloat16 logits with integer labels (any
    other bfloat16 call is widened by the wrapper, BFloat16Input)."""
    x_given, x = x, float_array(x, name, bf16 and bf16_outputs(grad_out))
    rows = Rows(x, class_axes(integer(axis, "axis"), x.ndim))
    if rows.n_classes == 0:
        raise ValueError(f"{name}: expected at least one class along axis {axis}, got 0")
    kind, t = target_kind(target, rows)
    if kind != "labels" and x.dtype.kind == "V":  # (probabilities: the wrapper widens both)
        raise BFloat16Input(f"{name}: bfloat16 logits with probabilities are widened")
    ignore_index = ignore_index_value(ignore_index)
    eps = real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    reduction = reduction_mode(reduction)
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"return_grad: expected a bool, got {return_grad!r}")
    w = class_weights(weight, rows.n_classes)
    sw = sample_weights(sample_weight, rows.batch_shape, where)
    labels, none_ignored = None, False
    if kind == "labels":
        labels, all_classes = class_labels(t, rows, ignore_index)
        none_ignored = all_classes and not 0 <= ignore_index < rows.n_classes

    gl = upstream_grad(grad_loss, reduction, rows.batch_shape)
    dtype = x.dtype
    check_grad_out(grad_out, return_grad, name, x,
                   [("target", t), ("weight", weight), ("sample_weight", sample_weight),
                    ("grad_loss", grad_loss), *other_inputs, *caller_memory(name, x_given, x)])
    # (logits of long rows are split along the classes: more tasks than rows)
    tasks = _threads.row_tasks(rows.n_rows, rows.n_classes) if name == "logits" else rows.n_rows
    nt = _threads.threads_for(n_threads, tasks, x.size)

    # The reduction: denominator (O(N)) and per-row gradient scale.
    denom = _mean_denominator(labels, ignore_index, w, sw, rows.n_rows, none_ignored) if reduction == "mean" else 1.0
    # Subnormal weights: 1/denom would overflow. The mean does not change when
    # the sample weights are scaled by a power of two (exact), nor when the
    # class weights are, with z_loss (which has no class weight) scaled alike.
    w_shift = 0  # class weights and z_loss scaled by 2**w_shift
    if reduction == "mean" and reciprocal_overflows(denom):
        sw = scaled_up(sw)[0]
        denom = _mean_denominator(labels, ignore_index, w, sw, rows.n_rows, none_ignored)
        if w is not None and reciprocal_overflows(denom):  # the targets' class weights
            w_shift = min(1023, -math.frexp(denom)[1])
            w = scaled_by(w, w_shift)
            denom = _mean_denominator(labels, ignore_index, w, sw, rows.n_rows, none_ignored)
    scale = 0.0 if denom == 0 else 1.0 / denom
    if reduction == "none":
        grad_scale = np.ascontiguousarray(gl, dtype=np.float64).reshape(-1)
    else:
        # one value seen n_rows times (stride 0; np.broadcast_to, without its overhead)
        grad_scale = row_constant(rows.n_rows, float(gl) * scale)
    return dict(x=x, rows=rows, kind=kind, t=t, labels=labels, w=w, sw=sw, eps=eps,
                ignore_index=ignore_index, reduction=reduction, scale=scale, denominator=denom,
                grad_scale=grad_scale, grad_out=grad_out, nt=nt, dtype=dtype, w_shift=w_shift,
                cdt=compute_dtype(dtype), return_grad=return_grad)


def _run(p, kernel_prefix, extra_args, extra_kwargs=None, reduces=False):
    """Call the kernel, reduce, and package (loss[, grad]); reduces: the
    kernels reduce the loss themselves (_loss_rows)."""
    rows, cdt = p["rows"], p["cdt"]
    data = rows.data(cdt)
    loss = _loss_rows(p, reduces)
    grad = None
    if p["return_grad"]:
        grad = rows.direct_full(p["grad_out"], cdt)
        if grad is None:
            grad = np.empty(rows.shape2d, dtype=cdt)
    if p["kind"] == "labels":
        target = p["labels"]
        fn = kernel(kernel_prefix + "_labels", cdt)
        args = (data, target, p["w"], p["sw"], p["grad_scale"], p["eps"], *extra_args,
                p["ignore_index"], loss, grad, p["nt"])
    else:
        target = Rows(p["t"], rows.axes).data(cdt)
        fn = kernel(kernel_prefix + "_probs", cdt)
        args = (data, target, p["w"], p["sw"], p["grad_scale"], p["eps"], *extra_args,
                loss, grad, p["nt"])
    return _package(p, loss, grad, fn(*args, **(extra_kwargs or {})))


def _loss_rows(p, reduces):
    """The per-row losses' array, or None where the kernel reduces them
    itself (reduces: it can; it then returns the sum, src/class_rows.pxi)."""
    if reduces and p["reduction"] != "none":
        return None
    return np.empty(p["rows"].n_rows, dtype=np.float64)


def _package(p, loss, grad, total=None):
    """Reduce the per-row losses (unless loss is None: total is their sum)
    and return loss (and grad) as the caller asked."""
    rows = p["rows"]
    dtype = p["dtype"]
    # "mean" with a zero denominator: 0 with a 0 gradient, whatever the samples
    # hold (documented; scaling by 0 would leave NaN for infinite losses)
    nothing = p["reduction"] == "mean" and p["denominator"] == 0
    if p["reduction"] == "none":
        value = result_array(loss.reshape(rows.batch_shape), dtype)
    elif nothing:
        value = result_scalar(0.0, dtype)
    else:
        total = _k.loss_sum(loss) if loss is not None else total
        value = result_scalar(total * p["scale"] if p["reduction"] == "mean" else total, dtype)
    if not p["return_grad"]:
        return value
    if nothing:
        grad[...] = 0
    return value, deliver(rows.to_full(as_values(grad, dtype)), p["grad_out"], dtype)


@overload
def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *,
                          return_grad: Literal[False] = ..., return_argmax: Literal[False] = ...,
                          **options: Unpack[SoftmaxCrossEntropyOptions]) -> FloatResult: ...
@overload
def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
                          return_argmax: Literal[False] = ...,
                          **options: Unpack[SoftmaxCrossEntropyOptions],
                          ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *,
                          return_grad: Literal[False] = ..., return_argmax: Literal[True],
                          **options: Unpack[SoftmaxCrossEntropyOptions],
                          ) -> Tuple[FloatResult, IntArray]: ...
@overload
def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
                          return_argmax: Literal[True],
                          **options: Unpack[SoftmaxCrossEntropyOptions],
                          ) -> Tuple[FloatResult, FloatArray, IntArray]: ...
@overload
def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
                          return_argmax: bool = ..., **options: Unpack[SoftmaxCrossEntropyOptions],
                          ) -> LossArgmaxResult: ...
@fill_doc(options=_OPTIONS_DOC)
@bfloat16_io
def softmax_cross_entropy(logits: ArrayLike, target: ArrayLike, *, axis: int = -1,
                          weight: Optional[ArrayLike] = None,
                          sample_weight: Optional[ArrayLike] = None,
                          where: Optional[ArrayLike] = None, ignore_index: int = -100,
                          label_smoothing: float = 0.0, z_loss: float = 0.0,
                          softcap: Optional[float] = None, reduction: Reduction = "mean",
                          return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                          grad_out: Optional[FloatArray] = None, return_argmax: bool = False,
                          n_threads: Threads = None) -> LossArgmaxResult:
    """Softmax cross-entropy of logits against class indices or probabilities.

    Per sample, ``loss = sum_c a_c * (logsumexp(x) - x_c) + z_loss * logsumexp(x)**2``
    with ``a_c = weight_c * target mass_c`` (one-hot for class indices,
    smoothed by ``label_smoothing``), times the sample weight; the gradient
    ``(A + 2 z_loss logsumexp(x)) * softmax(x) - a`` (``A = sum_c a_c``) is
    computed in the same pass over the row, with one ``exp`` per element.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
        Unnormalised scores; the class axis is ``axis``.
%(options)s    z_loss : float >= 0, default 0
        Coefficient of the auxiliary ``z_loss * logsumexp(row)**2`` term (PaLM,
        Liger-Kernel). It is multiplied by the sample weight but not by class
        weights, is zero for ignored samples, and is added into the same sum
        that ``"mean"`` divides by the denominator above.
    softcap : float > 0, optional
        Soft-cap the logits first, Gemma 2 style: ``x`` becomes
        ``softcap * tanh(x / softcap)`` (in the logits' precision) and the
        loss, the z-loss and the gradient are those of the capped logits,
        the gradient chained through the cap
        (``d/dx = 1 - tanh(x / softcap)**2``). In the same pass: one ``tanh``
        per element.
    return_argmax : bool, default False
        Also return each sample's predicted class, the argmax of its logits
        (int64, the batch shape), found from the maximum the pass takes
        anyway: accuracy for free, ``(argmax == target).mean()``. As
        ``numpy.argmax``: the first maximum, or the first NaN of a row
        holding one. With ``softcap`` it is the argmax of the capped logits
        (a saturating cap can tie entries: then the first). A sample that
        counts for nothing (an ignored label, a sample weight of 0) gets -1.

    Returns
    -------
    loss : numpy scalar or ndarray
        In the logits' dtype: a scalar for ``"mean"``/``"sum"``, the batch
        shape for ``"none"``. Sums are accumulated in float64.
    grad : ndarray, only with ``return_grad``
        d(loss)/d(logits) for the chosen reduction, times ``grad_loss``.
    argmax : ndarray of int64, only with ``return_argmax``
        Last, after ``grad`` when both are asked for.

    Notes
    -----
    The loss is computed as ``log(sum(exp(x - m))) - (x_t - m)`` with ``m`` the
    row maximum, so a large common offset loses no digits. ``-inf`` logits
    are allowed for classes without target mass (a masked vocabulary) and
    give exact results; a ``-inf`` logit with target mass gives ``+inf``. A
    row whose logits are all ``-inf`` has no defined loss: NaN, as in
    PyTorch. ``+inf`` logits follow the softmax's limit (its mass split over
    the ``+inf`` entries): the loss is ``+inf`` when a class with target mass
    is not among them, and finite (``log k`` for a label among ``k`` of them)
    otherwise, where PyTorch gives NaN. NaN in a row makes that sample's loss
    and gradient NaN, and no other's.

    Memory: forward only, O(N) beyond the input (when the class axis is the
    last one and rows are contiguous; otherwise the logits are copied once);
    forward and backward, one gradient buffer more, or none with
    ``grad_out=logits``.

    Examples
    --------
    >>> import numpy as np, xent
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    >>> loss, grad = xent.softmax_cross_entropy(logits, np.array([0, 2]), return_grad=True)
    >>> round(float(loss), 6)
    0.669962
    """
    if (type(axis) is int and axis == -1 and where is None and softcap is None
            and type(return_grad) is bool and grad_loss is None and return_argmax is False
            and _threads.valid_count(n_threads)):
        # (compiled; None: not the common call, or options of other kinds)
        done = _k.fast_ce(logits, target, return_grad, grad_out, ignore_index,
                          label_smoothing, z_loss, reduction, weight, sample_weight)
        if done is not None:
            return done
    z = real_scalar(z_loss, "z_loss", 0.0)
    cap = positive_or_none(softcap, "softcap")
    p = _prepare("logits", logits, target, axis, weight, sample_weight, ignore_index,
                 label_smoothing, reduction, return_grad, grad_loss, grad_out, n_threads, bf16=True,
                 where=where)
    if p["w_shift"]:
        z = float(scaled_by(z, p["w_shift"]))  # as the class weights (see _prepare)
    if not isinstance(return_argmax, (bool, np.bool_)):
        raise TypeError(f"return_argmax: expected a bool, got {return_argmax!r}")
    if not return_argmax:
        return _run(p, "softmax_xent", (z,), {"cap": cap or 0.0}, reduces=True)
    argmax = np.empty(p["rows"].n_rows, dtype=np.int64)
    result = _run(p, "softmax_xent", (z,), {"cap": cap or 0.0, "argmax": argmax}, reduces=True)
    argmax = argmax.reshape(p["rows"].batch_shape)
    return (*result, argmax) if isinstance(result, tuple) else (result, argmax)


@overload
def nll_loss(log_probs: ArrayLike, target: ArrayLike, *, return_grad: Literal[False] = ...,
             **options: Unpack[ClassLossOptions]) -> FloatResult: ...
@overload
def nll_loss(log_probs: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
             **options: Unpack[ClassLossOptions]) -> Tuple[FloatResult, FloatArray]: ...
@overload
def nll_loss(log_probs: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
             **options: Unpack[ClassLossOptions]) -> LossResult: ...
@fill_doc(options=_OPTIONS_DOC)
@bfloat16_io
def nll_loss(log_probs: ArrayLike, target: ArrayLike, *, axis: int = -1,
             weight: Optional[ArrayLike] = None, sample_weight: Optional[ArrayLike] = None,
             where: Optional[ArrayLike] = None, ignore_index: int = -100,
             label_smoothing: float = 0.0, reduction: Reduction = "mean",
             return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
             grad_out: Optional[FloatArray] = None, n_threads: Threads = None) -> LossResult:
    """Negative log-likelihood of log-probabilities against class indices or probabilities.

    Per sample, ``loss = -sum_c a_c * log_probs_c`` with the same target
    coefficients, options and reductions as :func:`softmax_cross_entropy`
    (``nll_loss(log_softmax(x), t)`` equals ``softmax_cross_entropy(x, t)``);
    the gradient with respect to ``log_probs`` is ``-a``.

    Parameters
    ----------
    log_probs : array_like of float16, float32 or float64
        Log-probabilities; the class axis is ``axis``.
%(options)s
    Returns
    -------
    loss : numpy scalar or ndarray
        As for :func:`softmax_cross_entropy`.
    grad : ndarray, only with ``return_grad``
        d(loss)/d(log_probs).

    Notes
    -----
    Classes without target mass are skipped, so their ``-inf`` log-probabilities
    give exact results; a ``-inf`` log-probability with target mass gives ``+inf``.
    """
    p = _prepare("log_probs", log_probs, target, axis, weight, sample_weight, ignore_index,
                 label_smoothing, reduction, return_grad, grad_loss, grad_out, n_threads,
                 where=where)
    return _run(p, "nll", ())
