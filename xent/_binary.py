"""Element-wise binary losses: binary cross-entropy from logits and from
probabilities, and the multi-label loss built on them.

Public functions validate (``_validate``), broadcast the weights, compute the
reduction's gradient scale, and call ``bce_rows`` of ``src/binary.pxi`` on
``(n_rows, C)`` arrays (``C`` the last axis), which returns one loss sum per
task; they are added here in a fixed order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional, Tuple, overload

import numpy as np

from ._bfloat16 import bfloat16_io
from . import _threads
from ._dispatch import kernel
from . import _kernels as _k
from ._validate import (
    ROW_WHERE_DOC,
    mask_array,
    bfloat16_check,
    caller_memory,
    check_grad_out,
    compute_dtype,
    deliver,
    fill_doc,
    float_array,
    real_array,
    real_scalar,
    reciprocal_overflows,
    reduction_mode,
    sample_weights,
    scaled_up,
    upstream_grad,
)
from ._typing import (
    ArrayLike, BinaryCrossEntropyOptions, BinaryCrossEntropyWithLogitsOptions, FloatArray,
    FloatResult, LossResult, MultilabelCrossEntropyOptions, Reduction, Threads,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack

#: ``where=`` of the element-wise losses
ELEMENT_WHERE_DOC = """where : array_like of bool, optional
        optax's mask, broadcastable to the input's shape: an element where it
        is False counts for nothing (loss 0, gradient 0, whatever its logit
        or weight, NaN and infinities included; targets and probabilities
        are still checked to lie in [0, 1] everywhere), and ``"mean"``
        divides by the number of elements kept. Read by the kernels through
        its strides (a weight of 0 where False), not expanded into weights; a
        broadcast mask that cannot be viewed in the kernels' layout (one run
        of the elements, or rows of the last axis) is copied as bytes."""

_OPTIONS_DOC = """\
    target : array_like
        Targets in [0, 1] (soft targets allowed), the input's shape. Integer and
        bool targets are read as 0/1 values. Values outside [0, 1] are a
        ValueError (checked in one pass over the targets; NaN passes and
        propagates).
    pos_weight : array_like, optional
        Weight of the positive term, broadcast over the last axis as in
        PyTorch: a scalar or one value per column (shape ``(C,)``).
    weight : array_like, optional
        Element weights, broadcastable to the input's shape.
    label_smoothing : float in [0, 1], default 0
        Keras' convention for binary targets: ``t * (1 - eps) + eps / 2``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns the element-wise losses (the input's shape),
        ``"sum"`` their sum and ``"mean"`` their mean over all elements (as
        in PyTorch; the mean over zero elements is 0, not NaN).
    return_grad : bool, default False
        Also return the gradient of the returned loss with respect to the
        input (same shape and dtype).
    grad_loss : float or array_like, optional
        Upstream gradient (default 1): a scalar for ``"mean"``/``"sum"``, an
        array broadcastable to the input's shape for ``"none"``.
    grad_out : ndarray, optional
        Buffer for the gradient (shape and dtype of the input, writeable);
        the input itself computes it in place. Needs ``return_grad``.
    n_threads : int or None, default None
        OpenMP threads; see :func:`xent.logsumexp`. Results do not depend on it.
"""


def _as_rows(a, shape2d):
    """``a`` (already of the input's shape) as a C-contiguous, aligned (n_rows, C) array."""
    return np.require(a, requirements=["C", "A"]).reshape(shape2d)


def _broadcast(value, name, shape, dtype):
    """``value`` broadcast to ``shape`` (a view when possible), in ``dtype``."""
    a = real_array(value, name).astype(dtype, copy=False)
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(
            f"{name}: expected a shape broadcastable to {shape}, got {a.shape}") from None


def _unit_interval(a, name, shape, n_threads):
    """ValueError naming the first value of ``a`` (of the caller's ``shape``)
    outside [0, 1]."""
    flat = a.reshape(-1)
    k = kernel("first_outside_unit_interval", flat.dtype)(flat, n_threads)
    if k >= 0:
        where = tuple(int(i) for i in np.unravel_index(k, shape))
        raise ValueError(f"{name}: expected values in [0, 1], got {float(flat[k])!r} at "
                         f"index {where}")


def _flat(a):
    """Whether ``a`` (of the input's shape) reads as one run of elements in
    the input's order: C-contiguous, or one value broadcast everywhere."""
    return a.flags.c_contiguous or not any(a.strides)


def _prepare(name, x, target, pos_weight, weight, label_smoothing, reduction, return_grad,
             grad_loss, grad_out, n_threads, probabilities=False, other_inputs=(),
             per_row=False, where=None):
    """Validate a binary loss call; return what bce_rows needs.
    ``other_inputs``: more (name, value) arguments grad_out must not overlap.
    ``per_row``: the caller needs one loss sum per row of the last axis and
    sets its own per-row gradient scale; otherwise, when the per-column and
    per-element options allow it, the kernel sees the data as one row of
    every element (``kshape``), so that short rows cost no per-row work."""
    x_given, x = x, float_array(x, name)
    dtype, cdt = x.dtype, compute_dtype(x.dtype)
    t = np.asarray(target)  # bool and integer targets are 0/1 values, as arrays or not
    if t.dtype.kind not in "biuf":
        bfloat16_check(t, "target")
        raise TypeError(f"target: expected real numbers in [0, 1], got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"target: expected the shape of {name} {x.shape}, got {t.shape}")
    eps = real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    reduction = reduction_mode(reduction)
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"return_grad: expected a bool, got {return_grad!r}")
    c = x.shape[-1] if x.ndim else 1
    shape2d = (x.size // c if c else 0, c)
    pw = np.ones(1)
    if pos_weight is not None:
        pw = real_array(pos_weight, "pos_weight")
        if pw.ndim > 1 or pw.size not in (1, c):
            raise ValueError(
                f"pos_weight: expected a scalar or shape ({c},) (one value per column of the "
                f"last axis), got shape {pw.shape}")
    pw = np.broadcast_to(np.ascontiguousarray(pw.reshape(-1)), (c,))  # stride 0 for one value
    w = _broadcast(1.0 if weight is None else weight, "weight", x.shape, cdt)
    n_kept = m = None
    if where is not None:  # (an element left out has weight 0 in the kernel: skipped)
        m = mask_array(where)
        try:
            m = np.broadcast_to(m, x.shape)
        except ValueError:
            raise ValueError(f"where: expected a boolean array broadcastable to the shape "
                             f"{x.shape} of {name}, got shape {m.shape}") from None
        n_kept = int(np.count_nonzero(m))
    gl = upstream_grad(grad_loss, reduction, x.shape, cdt)
    g = gl if reduction == "none" else np.broadcast_to(np.ones((), cdt), x.shape)
    check_grad_out(grad_out, return_grad, name, x,
                   [("target", t), ("weight", weight), ("pos_weight", pos_weight),
                    ("grad_loss", grad_loss), *other_inputs, *caller_memory(name, x_given, x)])
    kshape = shape2d
    if not per_row and shape2d[0] > 1 and pw.size and not pw.strides[0]:
        # one row of every element (the reduced loss's partial sums then do
        # not depend on how the weights are laid out: weights and upstream
        # gradients that are neither contiguous nor one value are made
        # contiguous, one pass, so that any layout of them gives the bits of
        # contiguous ones)
        if not _flat(w):
            w = np.ascontiguousarray(w)
        if not _flat(g):
            g = np.ascontiguousarray(g)
        if m is not None and not _flat(m):  # (bytes: a mask per row, say)
            m = np.ascontiguousarray(m)
        kshape = (1, x.size)
    nt = _threads.threads_for(n_threads, _k.n_tasks(*kshape), x.size)
    # O(N*C) checks, unavoidable: the targets (and probabilities) are the data
    t_rows = _as_rows(t.astype(cdt, copy=False), kshape)
    _unit_interval(t_rows, "target", x.shape, nt)
    x_rows = _as_rows(x.astype(cdt, copy=False), kshape)
    if probabilities:
        _unit_interval(x_rows, name, x.shape, nt)
    scale = 1.0
    if reduction == "mean":
        count = x.size if n_kept is None else n_kept
        scale = 0.0 if count == 0 else 1.0 / count
    gs = 1.0 if reduction == "none" else float(gl)
    if kshape != shape2d:
        pw = np.broadcast_to(pw[:1], (x.size,))
    if m is not None:  # (the kernels read it as bytes, through its strides)
        m = m.view(np.uint8).reshape(kshape)
    return dict(x=x, x_rows=x_rows, t_rows=t_rows, pw=pw, w=w.reshape(kshape), mask=m,
                g=g.reshape(kshape), row_gscale=np.broadcast_to(gs * scale, (kshape[0],)),
                smooth=eps, reduction=reduction, scale=scale, dtype=dtype, cdt=cdt,
                shape2d=shape2d, kshape=kshape, return_grad=return_grad, grad_out=grad_out,
                nt=nt)


def _grad_buffer(p):
    """The (n_rows, C) gradient buffer: a view of grad_out when it can be
    written directly, else a new array (None without return_grad)."""
    if not p["return_grad"]:
        return None
    out, cdt, shape2d = p["grad_out"], p["cdt"], p["kshape"]
    if out is not None and out.dtype == cdt and out.flags.c_contiguous and out.flags.aligned:
        return out.reshape(shape2d)
    return np.empty(shape2d, dtype=cdt)


def probs_clip(eps, cdt):
    """The clip of the probability losses: eps, or the compute dtype's epsilon."""
    clip = float(np.finfo(cdt).eps) if eps is None else real_scalar(eps, "eps")
    if not 0.0 <= clip < 0.5:
        raise ValueError(f"eps: expected a number in [0, 0.5), got {clip!r}")
    return clip


def _run(p, from_logits, clip=0.0):
    """Run bce_rows; return the per-task sums, per-element losses and gradient."""
    cdt, shape2d = p["cdt"], p["kshape"]
    loss = np.empty(shape2d, dtype=cdt) if p["reduction"] == "none" else None
    grad = _grad_buffer(p)
    partial = np.empty(_k.n_tasks(*shape2d), dtype=np.float64)
    kernel("bce_rows", cdt)(
        p["x_rows"], p["t_rows"], p["pw"], p["w"], p["g"], p["row_gscale"], p["smooth"],
        clip, from_logits, loss, partial, grad, p["nt"], mask=p["mask"])
    return partial, loss, grad


def _finish(p, partial, loss, grad):
    dtype = p["dtype"]
    if p["reduction"] == "none":
        value = loss.reshape(p["x"].shape).astype(dtype, copy=False)
    else:
        # (grouped_sum of the tasks' sums, as the compiled common call: src/fast.pxi)
        value = dtype.type(_k.loss_sum(partial) * p["scale"])
    if not p["return_grad"]:
        return value
    return value, deliver(grad.reshape(p["x"].shape), p["grad_out"], dtype)


@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     return_grad: Literal[False] = ...,
                                     **options: Unpack[BinaryCrossEntropyWithLogitsOptions],
                                     ) -> FloatResult: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     return_grad: Literal[True],
                                     **options: Unpack[BinaryCrossEntropyWithLogitsOptions],
                                     ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     return_grad: bool = ...,
                                     **options: Unpack[BinaryCrossEntropyWithLogitsOptions],
                                     ) -> LossResult: ...
@fill_doc(options=_OPTIONS_DOC, where=ELEMENT_WHERE_DOC)
@bfloat16_io
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     pos_weight: Optional[ArrayLike] = None,
                                     weight: Optional[ArrayLike] = None,
                                     where: Optional[ArrayLike] = None,
                                     label_smoothing: float = 0.0, reduction: Reduction = "mean",
                                     return_grad: bool = False,
                                     grad_loss: Optional[ArrayLike] = None,
                                     grad_out: Optional[FloatArray] = None,
                                     n_threads: Threads = None) -> LossResult:
    """Binary cross-entropy of logits, element-wise, stable for any logit.

    Per element, with ``L = 1 + (pos_weight - 1) * t``:
    ``loss = weight * ((1 - t) * x + L * softplus(-x))``, computed as
    ``max(x, 0) - x * t + log1p(exp(-|x|))`` (with ``pos_weight``, the same
    split), so no logit overflows; the gradient ``weight * (L * sigmoid(x) -
    pos_weight * t)`` comes from the same ``exp``, one ``exp`` and one
    ``log1p`` per element.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
        Any shape.
%(options)s
    %(where)s
    Returns
    -------
    loss : numpy scalar or ndarray
        In the logits' dtype: a scalar for ``"mean"``/``"sum"``, the logits'
        shape for ``"none"``. Sums are accumulated in float64.
    grad : ndarray, only with ``return_grad``
        d(loss)/d(logits).

    Notes
    -----
    Logits of ``+-inf`` give the limits (0 loss where the target agrees
    exactly, ``+inf`` otherwise) and never NaN; NaN propagates element-wise.
    Matches ``torch.nn.functional.binary_cross_entropy_with_logits``
    (``weight``, ``pos_weight``, reductions).

    Examples
    --------
    >>> import numpy as np, xent
    >>> y_true = np.array([0.0, 1.0, 0.0, 0.0])
    >>> y_pred = np.array([-18.6, 0.51, 2.94, -12.8])
    >>> round(float(xent.binary_cross_entropy_with_logits(y_pred, y_true)), 3)
    0.865
    """
    if (weight is None and where is None and type(return_grad) is bool and grad_loss is None
            and _threads.valid_count(n_threads)):
        # (compiled; None: not the common call, or options of other kinds)
        done = _k.fast_bce(logits, target, return_grad, grad_out, label_smoothing, reduction,
                           pos_weight)
        if done is not None:
            return done
    p = _prepare("logits", logits, target, pos_weight, weight, label_smoothing, reduction,
                 return_grad, grad_loss, grad_out, n_threads, where=where)
    return _finish(p, *_run(p, True))


@overload
def binary_cross_entropy(probs: ArrayLike, target: ArrayLike, *, return_grad: Literal[False] = ...,
                         **options: Unpack[BinaryCrossEntropyOptions]) -> FloatResult: ...
@overload
def binary_cross_entropy(probs: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
                         **options: Unpack[BinaryCrossEntropyOptions],
                         ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def binary_cross_entropy(probs: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
                         **options: Unpack[BinaryCrossEntropyOptions]) -> LossResult: ...
@fill_doc(options=_OPTIONS_DOC, where=ELEMENT_WHERE_DOC)
@bfloat16_io
def binary_cross_entropy(probs: ArrayLike, target: ArrayLike, *, eps: Optional[float] = None,
                         pos_weight: Optional[ArrayLike] = None,
                         weight: Optional[ArrayLike] = None, where: Optional[ArrayLike] = None,
                         label_smoothing: float = 0.0,
                         reduction: Reduction = "mean", return_grad: bool = False,
                         grad_loss: Optional[ArrayLike] = None,
                         grad_out: Optional[FloatArray] = None,
                         n_threads: Threads = None) -> LossResult:
    """Binary cross-entropy of probabilities, element-wise.

    Per element, with ``p`` clipped to ``[eps, 1 - eps]``:
    ``loss = -weight * (pos_weight * t * log(p) + (1 - t) * log1p(-p))``.

    Parameters
    ----------
    probs : array_like of float16, float32 or float64
        Predicted probabilities in [0, 1] (checked: a ValueError otherwise).
    eps : float in [0, 0.5), optional
        Clipping bound. The default is the machine epsilon of the computation
        dtype (float32 for float16 input), as scikit-learn's ``log_loss``, so
        probabilities of exactly 0 or 1 give a large finite loss, never inf or
        NaN. ``eps=1e-7`` reproduces Keras' ``binary_crossentropy``. With
        ``eps=0`` a wrong certain prediction gives ``+inf``.
%(options)s
    %(where)s
    Returns
    -------
    loss : numpy scalar or ndarray
        As for :func:`binary_cross_entropy_with_logits`.
    grad : ndarray, only with ``return_grad``
        d(loss)/d(probs): ``weight * ((1 - t) / (1 - p) - pos_weight * t / p)``,
        0 where ``p`` was clipped (the derivative of the clipped function).

    Examples
    --------
    >>> import numpy as np, xent
    >>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    >>> round(float(xent.binary_cross_entropy(y_pred, y_true, eps=1e-7)), 3)
    0.815
    """
    p = _prepare("probs", probs, target, pos_weight, weight, label_smoothing, reduction,
                 return_grad, grad_loss, grad_out, n_threads, probabilities=True, where=where)
    return _finish(p, *_run(p, False, probs_clip(eps, p["cdt"])))


@overload
def multilabel_cross_entropy(logits: ArrayLike, target: ArrayLike, *,
                             return_grad: Literal[False] = ...,
                             **options: Unpack[MultilabelCrossEntropyOptions]) -> FloatResult: ...
@overload
def multilabel_cross_entropy(logits: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
                             **options: Unpack[MultilabelCrossEntropyOptions],
                             ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def multilabel_cross_entropy(logits: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
                             **options: Unpack[MultilabelCrossEntropyOptions]) -> LossResult: ...
@fill_doc(options=_OPTIONS_DOC, where=ROW_WHERE_DOC)
@bfloat16_io
def multilabel_cross_entropy(logits: ArrayLike, target: ArrayLike, *,
                             class_reduction: Literal["sum", "mean"] = "sum",
                             pos_weight: Optional[ArrayLike] = None,
                             weight: Optional[ArrayLike] = None,
                             sample_weight: Optional[ArrayLike] = None,
                             where: Optional[ArrayLike] = None,
                             label_smoothing: float = 0.0, reduction: Reduction = "mean",
                             return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                             grad_out: Optional[FloatArray] = None,
                             n_threads: Threads = None) -> LossResult:
    """Multi-label loss: one binary problem per class, from logits.

    Per sample (the last axis holds the ``C`` classes), the binary
    cross-entropies from logits of its classes are summed
    (``class_reduction="sum"``, the textbook definition) or averaged
    (``"mean"``, PyTorch's ``multilabel_soft_margin_loss``), times its sample
    weight; then reduced over samples.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
        Shape ``(..., C)``.
%(options)s    class_reduction : {"sum", "mean"}, default "sum"
        How the classes of one sample are combined.
    sample_weight : array_like, optional
        One weight per sample (the logits' shape without the last axis).
    %(where)s

    Returns
    -------
    loss : numpy scalar or ndarray
        A scalar for ``"mean"``/``"sum"``; for ``"none"`` one loss per sample
        (the logits' shape without the last axis). ``"mean"`` divides the
        weighted sum by the sum of the sample weights (the sample count
        without them). ``grad_loss`` for ``"none"`` has the per-sample shape.
    grad : ndarray, only with ``return_grad``
        d(loss)/d(logits).

    Examples
    --------
    >>> import numpy as np, xent
    >>> logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    >>> target = np.array([[1, 0, 1], [0, 1, 0]])
    >>> round(float(xent.multilabel_cross_entropy(logits, target, class_reduction="mean")), 4)
    0.2972
    """
    if class_reduction not in ("sum", "mean"):
        raise ValueError(f"class_reduction: expected 'sum' or 'mean', got {class_reduction!r}")
    x = float_array(logits, "logits")
    if x.ndim == 0:
        raise ValueError("logits: expected at least one axis (the classes), got a 0-d array")
    batch = x.shape[:-1]
    reduction = reduction_mode(reduction)
    gl = np.broadcast_to(upstream_grad(grad_loss, reduction, batch), batch)
    sw = sample_weights(sample_weight, batch, where)
    if sw is None:
        sw = np.ones(batch)
    sw = sw.reshape(batch)
    # one loss per sample only when they differ in weight or are returned
    per_row = sample_weight is not None or where is not None or reduction == "none"
    # grad_out must not overlap these either (sample_weight is read again after the kernel)
    p = _prepare("logits", x, target, pos_weight, weight, label_smoothing, "sum", return_grad,
                 None, grad_out, n_threads,
                 other_inputs=[("sample_weight", sample_weight), ("grad_loss", grad_loss),
                               *caller_memory("logits", logits, x)], per_row=per_row)
    n_rows, c = p["shape2d"]
    per_class = 1.0 / c if class_reduction == "mean" and c else 1.0
    n_samples = math.prod(batch)
    dtype = p["dtype"]
    if not per_row:  # every sample of weight 1: the loss is the sum over elements
        scale = (1.0 / n_samples if n_samples else 0.0) if reduction == "mean" else 1.0
        p["row_gscale"] = np.broadcast_to(float(gl.reshape(-1)[0]) * per_class * scale
                                          if gl.size else 0.0, (p["kshape"][0],))
        partial, _, grad = _run(p, True)
        value = dtype.type(float(np.sum(partial)) * per_class * scale)
        if not return_grad:
            return value
        return value, deliver(grad.reshape(x.shape), grad_out, dtype)
    sw_flat = sw.reshape(-1)
    if reduction == "mean":
        total_w = float(np.sum(sw_flat))
        if reciprocal_overflows(total_w):  # subnormal weights
            sw_flat = scaled_up(sw_flat)[0]
            total_w = float(np.sum(sw_flat))
        scale = 0.0 if total_w == 0 else 1.0 / total_w
    else:
        scale = 1.0
    p["row_gscale"] = np.ascontiguousarray(gl.reshape(-1) * sw_flat * (per_class * scale))
    partial, _, grad = _run(p, True)
    rows = partial.reshape(n_rows, -1).sum(axis=1) if partial.size else np.zeros(n_samples)
    # a sample of weight 0 counts for nothing, whatever its logits (no 0 * inf);
    # its gradient row is zeroed here: masking it in the kernel (the binary
    # frame's mask) takes the weighted path, measured 1.1-1.6x slower
    unweighted = sw_flat == 0
    per_sample = np.multiply(rows * per_class, sw_flat, where=~unweighted,
                             out=np.zeros(n_samples))
    if return_grad and c and unweighted.any():
        grad[unweighted] = 0
    if reduction == "none":
        value = per_sample.reshape(batch).astype(dtype)
    else:
        value = dtype.type(float(np.sum(per_sample)) * scale)
    if not return_grad:
        return value
    return value, deliver(grad.reshape(x.shape), grad_out, dtype)
