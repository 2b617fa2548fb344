"""Distillation from logits: the divergence between a teacher's and a
student's softmax at a temperature, and its gradient with respect to the
student logits, in one compiled pass over both arrays (``src/distill.pxi``).

The public functions validate (``_validate``) and choose the kernel's mode;
the kernel computes one float64 value per row and, in the same pass, the
gradient; the reductions are done here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Optional, Tuple, overload

import numpy as np

from . import _kernels as _k
from . import _threads
from ._bfloat16 import bfloat16_io_of
from ._dispatch import kernel
from ._typing import (
    ArrayLike, DistillReduction, FloatArray, FloatResult, JSWithLogitsOptions, KLWithLogitsOptions,
    LossResult, Threads,
)
from ._validate import (
    Rows,
    boolean,
    check_grad_out,
    class_axes,
    compute_dtype,
    deliver,
    ROW_WHERE_DOC,
    fill_doc,
    float_array,
    integer,
    real_scalar,
    reciprocal_overflows,
    row_constant,
    sample_weights,
    scaled_up,
    upstream_grad,
    reduction_mode,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack

_REDUCTIONS = ("batchmean", "mean", "sum", "none")

_COMMON_DOC = """\
    student_logits : array_like of float16, float32, float64 or bfloat16
        The student's logits (the model being trained): the gradient is with
        respect to them.
    teacher_logits : array_like
        The teacher's logits, of the student's shape and dtype (never
        modified; no gradient).
    temperature : float > 0, default 1.0
        Both softmaxes are taken of ``logits / temperature``.
    scale_by_temperature_squared : bool, default False
        Multiply the value (and gradient) by ``temperature**2``: Hinton et
        al.'s scaling, which keeps the soft-target gradient's magnitude
        independent of the temperature when it is added to a hard-label
        loss. Off by default so that the value is the divergence its name
        says, equal to PyTorch's ``F.kl_div`` composition and Liger-Kernel's
        losses; switch it on to follow Hinton et al. (and Keras' distiller
        example).
    axis : int, default -1
        The class axis; the other axes are batch axes (one divergence per row).
    sample_weight : array_like, optional
        One weight per row (the batch shape): each row's divergence and
        gradient are multiplied by it; a row of weight 0 gives 0 and a zero
        gradient even where its logits hold NaN (padding tokens). For
        ``"mean"`` the sum is divided by the weights' sum.
    {where}
    reduction : {"batchmean", "mean", "sum", "none"}, default "batchmean"
        ``"batchmean"``: the sum divided by the size of the first batch axis
        (PyTorch's ``kl_div`` and Liger-Kernel's, whose inputs have the batch
        first: for 2-D input the mean over rows; a 1-D input is one row, its
        divergence, where ``kl_div`` would divide by the class count); ``"mean"``: the mean over all rows (over the sample weights'
        sum with ``sample_weight``; 0 for an empty batch or a zero sum);
        ``"sum"``; ``"none"``: one value per row (the batch shape).
    return_grad : bool, default False
        Also return the gradient with respect to ``student_logits`` (its shape
        and dtype), computed in the same pass.
    grad_loss : float or array_like, optional
        The upstream gradient the gradient is multiplied by (default 1): a
        scalar for a reduced value, broadcastable to the batch shape for
        ``"none"``.
    grad_out : ndarray, optional
        Where to write the gradient (``student_logits``' shape and dtype; it
        may be ``student_logits`` itself, never ``teacher_logits``).
    n_threads : int or None, default None
        OpenMP threads; see :func:`xent.logsumexp`. Results do not depend on it.
"""

_RETURNS_DOC = """\
    Returns
    -------
    value : numpy scalar or ndarray
        In the logits' dtype (bfloat16 logits give bfloat16, computed as
        float32), each row's value computed in float64.
    grad : ndarray, only with ``return_grad``
        d(value)/d(student_logits).
"""

_CONVENTIONS_DOC = """\
    Every term ``P_j (log P_j - log Q_j)`` is 0 where its weight ``P_j`` is 0
    (a class the teacher masks with ``-inf`` costs nothing); a class the
    student masks where the teacher's probability is positive gives
    ``+inf``. A row whose maximum in either array is not finite (only
    ``-inf``, or a ``+inf``) has no distribution: its value and gradient are
    NaN (0 with a zero sample weight), as is a row holding a NaN. Float32
    rows are accurate to about 1e-7 absolute (sums of float32 exps in
    float64), float64 rows to about 1e-15; equal logits give exactly 0 (the
    Jensen-Shannon divergence: to rounding). The shifted logits
    ``x - max(x)`` are taken in the logits' type: logits whose differences
    exceed it (beyond about ``3e38`` in float32) overflow to ``inf``; a
    temperature below ``1 / 3.4e38`` acts on float32 logits as that bound
    (the limit of one-hot softmaxes).
"""

_COMMON_DOC = _COMMON_DOC.replace("{where}", ROW_WHERE_DOC)
_DOCS = dict(common=_COMMON_DOC, returns=_RETURNS_DOC, conventions=_CONVENTIONS_DOC)


def _run(mode, beta, student, teacher, temperature, scale_t2, axis, sample_weight, where,
         reduction, return_grad, grad_loss, grad_out, n_threads):
    """Validate everything, then one kernel call, then the reduction."""
    s = float_array(student, "student_logits")
    t = float_array(teacher, "teacher_logits")
    if t.shape != s.shape:
        raise ValueError(f"teacher_logits: expected the shape of student_logits {s.shape}, "
                         f"got {t.shape}")
    if t.dtype != s.dtype:
        raise TypeError(f"teacher_logits: expected the dtype of student_logits ({s.dtype}), "
                        f"got {t.dtype}")
    temperature = real_scalar(temperature, "temperature")
    if not (temperature > 0.0 and math.isfinite(1.0 / temperature)):
        raise ValueError(f"temperature: expected a finite number > 0 (and 1 / temperature "
                         f"finite), got {temperature!r}")
    scale_t2 = boolean(scale_t2, "scale_by_temperature_squared")
    rows = Rows(s, class_axes(integer(axis, "axis"), s.ndim))
    if rows.n_classes == 0:
        raise ValueError(f"student_logits: expected at least one class along axis {axis}, got 0")
    reduction = reduction_mode(reduction, _REDUCTIONS)
    return_grad = boolean(return_grad, "return_grad")
    sw = sample_weights(sample_weight, rows.batch_shape, where)
    gl = upstream_grad(grad_loss, reduction, rows.batch_shape) if return_grad else None
    grad_out = check_grad_out(grad_out, return_grad, "student_logits", s,
                              [("teacher_logits", t)])

    n = rows.n_rows
    k2 = temperature * temperature if scale_t2 else 1.0
    if reduction == "batchmean":  # (the first batch axis: the rows of a 2-D input)
        den = float(rows.batch_shape[0]) if rows.batch_shape else 1.0
    elif reduction == "mean":
        den = float(np.sum(sw)) if sw is not None else float(n)
        if sw is not None and reciprocal_overflows(den):  # subnormal weights: scaled exactly
            sw = scaled_up(sw)[0]
            den = float(np.sum(sw))
    else:
        den = 1.0
    # per row: the weight of its value (sample weight x T^2), and the
    # gradient's factor (that weight x upstream gradient / denominator)
    weight = sw * k2 if sw is not None else row_constant(max(n, 1), k2)
    if not return_grad:
        f = row_constant(max(n, 1), 0.0)
    elif reduction == "none":
        f = np.ascontiguousarray(gl, dtype=np.float64).reshape(-1) * weight
    elif den == 0.0:
        f = row_constant(max(n, 1), 0.0)
    else:
        f = weight * (float(gl) / den) if sw is not None else \
            row_constant(max(n, 1), k2 * float(gl) / den)

    cdt = compute_dtype(s.dtype)
    sd = rows.data(cdt)
    td = Rows(t, rows.axes).data(cdt)
    per_row = np.empty(n, dtype=np.float64)
    grad2d = None
    if return_grad:
        grad2d = rows.direct_full(grad_out, cdt)
        # (the kernel reads the student's row again after writing the
        # gradient's: in place, or over a copy of the inputs, it writes apart)
        if grad2d is None or np.may_share_memory(grad2d, sd) or np.may_share_memory(grad2d, td):
            grad2d = np.empty(rows.shape2d, dtype=cdt)
    nt = _threads.threads_for(n_threads, n, s.size)
    kernel("distill_rows", cdt)(sd, td, 1.0 / temperature, mode, beta, weight, f, per_row,
                                grad2d, nt)

    dtype = s.dtype
    with np.errstate(over="ignore"):  # (a float32 value beyond its range is inf)
        if reduction == "none":
            value = per_row.reshape(rows.batch_shape).astype(dtype)
            value = value[()] if value.ndim == 0 else value
        elif reduction != "sum" and den == 0.0:
            value = dtype.type(0.0)
        else:
            value = dtype.type(float(np.sum(per_row)) / den)
    if not return_grad:
        return value
    return value, deliver(rows.to_full(grad2d), grad_out, dtype)


@overload
def kl_divergence_with_logits(student_logits: ArrayLike, teacher_logits: ArrayLike, *,
                              return_grad: Literal[False] = ...,
                              **options: Unpack[KLWithLogitsOptions]) -> FloatResult: ...
@overload
def kl_divergence_with_logits(student_logits: ArrayLike, teacher_logits: ArrayLike, *,
                              return_grad: Literal[True],
                              **options: Unpack[KLWithLogitsOptions]) -> Tuple[FloatResult, FloatArray]: ...
@fill_doc(**_DOCS)
@bfloat16_io_of("student_logits")
def kl_divergence_with_logits(student_logits: ArrayLike, teacher_logits: ArrayLike, *,
                              temperature: float = 1.0, reverse: bool = False,
                              scale_by_temperature_squared: bool = False, axis: int = -1,
                              sample_weight: Optional[ArrayLike] = None,
                              where: Optional[ArrayLike] = None,
                              reduction: DistillReduction = "batchmean",
                              return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                              grad_out: Optional[FloatArray] = None,
                              n_threads: Threads = None) -> LossResult:
    """Knowledge-distillation loss: ``KL(softmax(teacher / T) || softmax(student / T))``.

    The forward KL divergence of the student's tempered softmax ``Q`` from the
    teacher's ``P`` (Hinton et al., 2015), per row
    ``sum_j P_j (log P_j - log Q_j)``, with ``reverse=True`` the reverse
    divergence ``KL(Q || P)`` (mode-seeking, as in on-policy distillation).
    Both softmaxes, the divergence and its gradient with respect to the
    student logits come from one pass over the two arrays: no probability
    array is formed. The gradient is ``(Q - P) / T`` (forward) or
    ``Q (log Q - log P - KL) / T`` (reverse), times the reduction's factor.

    PyTorch's ``F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1),
    reduction="batchmean", log_target=True)`` is
    ``kl_divergence_with_logits(s, t, temperature=T)`` (for 2-D input);
    Liger-Kernel's ``LigerKLDIVLoss`` on those log-probabilities the same.

    Parameters
    ----------
%(common)s    reverse : bool, default False
        ``KL(student || teacher)`` instead of ``KL(teacher || student)``.

%(returns)s
    Notes
    -----
%(conventions)s
    Examples
    --------
    >>> import numpy as np, xent
    >>> s = np.array([[2.0, 1.0, 0.1], [0.5, 0.5, 3.0]])
    >>> t = np.array([[3.0, 0.5, 0.0], [0.2, 1.0, 2.5]])
    >>> print(round(float(xent.kl_divergence_with_logits(s, t, temperature=2.0)), 6))
    0.037665
    >>> loss, g = xent.kl_divergence_with_logits(s, t, return_grad=True)
    >>> print(np.round(g[0], 6))
    [-0.112245  0.084956  0.02729 ]
    >>> print(float(xent.kl_divergence_with_logits(s, s)))
    0.0
    """
    mode = _k.DISTILL_REVERSE if boolean(reverse, "reverse") else _k.DISTILL_FORWARD
    return _run(mode, 0.0, student_logits, teacher_logits, temperature,
                scale_by_temperature_squared, axis, sample_weight, where, reduction, return_grad,
                grad_loss, grad_out, n_threads)


@overload
def jensen_shannon_with_logits(student_logits: ArrayLike, teacher_logits: ArrayLike, *,
                               return_grad: Literal[False] = ...,
                               **options: Unpack[JSWithLogitsOptions]) -> FloatResult: ...
@overload
def jensen_shannon_with_logits(student_logits: ArrayLike, teacher_logits: ArrayLike, *,
                               return_grad: Literal[True],
                               **options: Unpack[JSWithLogitsOptions]) -> Tuple[FloatResult, FloatArray]: ...
@fill_doc(**_DOCS)
@bfloat16_io_of("student_logits")
def jensen_shannon_with_logits(student_logits: ArrayLike, teacher_logits: ArrayLike, *,
                               beta: float = 0.5, temperature: float = 1.0,
                               scale_by_temperature_squared: bool = False, axis: int = -1,
                               sample_weight: Optional[ArrayLike] = None,
                               where: Optional[ArrayLike] = None,
                               reduction: DistillReduction = "batchmean",
                               return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                               grad_out: Optional[FloatArray] = None,
                               n_threads: Threads = None) -> LossResult:
    """Generalised Jensen-Shannon divergence between the teacher's and the
    student's tempered softmax (Liger-Kernel's ``LigerJSD``).

    With ``P = softmax(teacher / T)``, ``Q = softmax(student / T)`` and the
    mixture ``M = beta P + (1 - beta) Q``, per row
    ``beta KL(P || M) + (1 - beta) KL(Q || M)``; ``beta = 0.5`` is the
    symmetric Jensen-Shannon divergence (at most ``log 2``). As in
    Liger-Kernel, ``beta = 0`` is the forward ``KL(P || Q)`` and ``beta = 1``
    the reverse ``KL(Q || P)`` (the limits of the divergence divided by
    ``beta`` and by ``1 - beta``), i.e. :func:`kl_divergence_with_logits`. The
    gradient with respect to the student logits is
    ``Q (v - sum Q v) / T``, ``v = (1 - beta) (log Q - log M)``, from the
    same pass; ``P``, ``Q`` and ``log M`` are taken in float64.

    Parameters
    ----------
%(common)s    beta : float in [0, 1], default 0.5
        The teacher's weight in the mixture.

%(returns)s
    Notes
    -----
%(conventions)s
    Examples
    --------
    >>> import numpy as np, xent
    >>> s = np.array([[2.0, 1.0, 0.1], [0.5, 0.5, 3.0]])
    >>> t = np.array([[3.0, 0.5, 0.0], [0.2, 1.0, 2.5]])
    >>> print(round(float(xent.jensen_shannon_with_logits(s, t)), 6))
    0.024902
    >>> print(round(float(xent.jensen_shannon_with_logits(s, t, beta=0.0)), 6)
    ...       == round(float(xent.kl_divergence_with_logits(s, t)), 6))
    True
    """
    beta = real_scalar(beta, "beta", 0.0, 1.0)
    if beta == 0.0:
        mode = _k.DISTILL_FORWARD
    elif beta == 1.0:
        mode = _k.DISTILL_REVERSE
    else:
        mode = _k.DISTILL_JSD
    return _run(mode, beta, student_logits, teacher_logits, temperature,
                scale_by_temperature_squared, axis, sample_weight, where, reduction, return_grad,
                grad_loss, grad_out, n_threads)
