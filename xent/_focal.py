"""Focal losses (Lin et al. 2017): binary (element-wise, from logits) and
softmax (per sample), with gradients; kernels in ``src/focal.pxi``.

They share the validation and reductions of the binary losses and of softmax
cross-entropy (``_binary._prepare``, ``_cross_entropy._prepare``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional, Tuple, overload

import numpy as np

from ._bfloat16 import bfloat16_io
from . import _binary, _cross_entropy
from ._dispatch import kernel
from . import _kernels as _k
from ._validate import (
    BITS, ROW_WHERE_DOC, BFloat16Input, Rows, fill_doc, focal_factors, real_scalar,
)
from ._typing import (
    ArrayLike, BinaryFocalLossOptions, BinaryFocalLossProbsOptions, FloatArray, FloatResult,
    LossResult, Reduction, SoftmaxFocalLossOptions, Threads,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack


def _gamma(gamma):
    return real_scalar(gamma, "gamma", 0.0)


@overload
def binary_focal_loss_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                  return_grad: Literal[False] = ...,
                                  **options: Unpack[BinaryFocalLossOptions]) -> FloatResult: ...
@overload
def binary_focal_loss_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                  return_grad: Literal[True],
                                  **options: Unpack[BinaryFocalLossOptions],
                                  ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def binary_focal_loss_with_logits(logits: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
                                  **options: Unpack[BinaryFocalLossOptions]) -> LossResult: ...
@bfloat16_io
def binary_focal_loss_with_logits(logits: ArrayLike, target: ArrayLike, *, gamma: float = 2.0,
                                  alpha: Optional[float] = None,
                                  weight: Optional[ArrayLike] = None,
                                  where: Optional[ArrayLike] = None, label_smoothing: float = 0.0,
                                  reduction: Reduction = "mean", return_grad: bool = False,
                                  grad_loss: Optional[ArrayLike] = None,
                                  grad_out: Optional[FloatArray] = None,
                                  n_threads: Threads = None) -> LossResult:
    """Binary focal loss from logits, element-wise (Lin et al. 2017).

    With ``p = sigmoid(x)`` and ``p_t = p t + (1 - p)(1 - t)``:
    ``loss = weight * a_t * (1 - p_t)**gamma * bce(x, t)``, where ``bce`` is
    :func:`binary_cross_entropy_with_logits`'s element loss and
    ``a_t = alpha t + (1 - alpha)(1 - t)`` (1 when ``alpha`` is None). The
    power is taken in log space and every term from the stable forms, so any
    logit, ``+-inf`` included, gives no NaN.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
    target : array_like
        Targets in [0, 1] (soft targets allowed), the logits' shape.
    gamma : float >= 0, default 2
        Focusing parameter; 0 gives the (alpha-weighted) binary cross-entropy.
    alpha : float in [0, 1], optional
        Class-balancing factor of the positive class (None: no balancing).
    weight, where, label_smoothing, reduction, return_grad, grad_loss, grad_out, n_threads
        As for :func:`binary_cross_entropy_with_logits` (``where``: an element
        left out counts for nothing, ``"mean"`` over the elements kept).

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray, only with ``return_grad``
        d(loss)/d(logits).

    Notes
    -----
    Matches optax's ``sigmoid_focal_loss(logits, labels, alpha, gamma)``
    (element-wise; take ``reduction="none"``) and Keras'
    ``BinaryFocalCrossentropy(from_logits=True)``: Keras' default
    ``apply_class_balancing=False`` is ``alpha=None`` here, and
    ``apply_class_balancing=True, alpha=a`` is ``alpha=a``. Keras averages
    over the last axis per sample and then over samples, which for equal
    row lengths is the mean over all elements (``"mean"``). On
    probabilities: :func:`binary_focal_loss`.

    Examples
    --------
    >>> import numpy as np, xent
    >>> y_true = np.array([0.0, 1.0, 0.0, 0.0])
    >>> logits = np.array([-18.6, 0.51, 2.94, -12.8])
    >>> round(float(xent.binary_focal_loss_with_logits(logits, y_true, gamma=2)), 3)
    0.691
    """
    return _binary_focal("logits", logits, target, gamma, alpha, weight, where, label_smoothing,
                         reduction, return_grad, grad_loss, grad_out, n_threads)


def _binary_focal(name, x, target, gamma, alpha, weight, where, label_smoothing, reduction,
                  return_grad, grad_loss, grad_out, n_threads, eps=None):
    """The binary focal loss from logits (name "logits") or probabilities
    ("probs", clipped by eps in the cross-entropy): one kernel, its terms
    chosen by the clip."""
    g = _gamma(gamma)
    a = None if alpha is None else real_scalar(alpha, "alpha", 0.0, 1.0)
    probs = name == "probs"
    p = _binary._prepare(name, x, target, None, weight, label_smoothing, reduction,
                         return_grad, grad_loss, grad_out, n_threads, probabilities=probs,
                         where=where)
    cdt, shape2d = p["cdt"], p["kshape"]
    clip = _binary.probs_clip(eps, cdt) if probs else -1.0
    loss = np.empty(shape2d, dtype=cdt) if p["reduction"] == "none" else None
    grad = _binary._grad_buffer(p)
    partial = np.empty(_k.n_tasks(*shape2d), dtype=np.float64)
    kernel("binary_focal_rows", cdt)(
        p["x_rows"], p["t_rows"], g, 0.0 if a is None else a, a is not None, p["w"], p["g"],
        p["row_gscale"], p["smooth"], loss, partial, grad, p["nt"], probs_clip=clip,
        mask=p["mask"])
    return _binary._finish(p, partial, loss, grad)


@overload
def binary_focal_loss(probs: ArrayLike, target: ArrayLike, *, return_grad: Literal[False] = ...,
                      **options: Unpack[BinaryFocalLossProbsOptions]) -> FloatResult: ...
@overload
def binary_focal_loss(probs: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
                      **options: Unpack[BinaryFocalLossProbsOptions],
                      ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def binary_focal_loss(probs: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
                      **options: Unpack[BinaryFocalLossProbsOptions]) -> LossResult: ...
@bfloat16_io
def binary_focal_loss(probs: ArrayLike, target: ArrayLike, *, gamma: float = 2.0,
                      alpha: Optional[float] = None, eps: Optional[float] = None,
                      weight: Optional[ArrayLike] = None, where: Optional[ArrayLike] = None,
                      label_smoothing: float = 0.0, reduction: Reduction = "mean",
                      return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                      grad_out: Optional[FloatArray] = None,
                      n_threads: Threads = None) -> LossResult:
    """Binary focal loss from probabilities, element-wise (Lin et al. 2017).

    With ``p`` the given probability and ``q = 1 - p_t = t (1 - p) + (1 - t) p``:
    ``loss = weight * a_t * q**gamma * bce(p, t)``, where ``bce`` is
    :func:`binary_cross_entropy`'s element loss (``p`` clipped to
    ``[eps, 1 - eps]`` there, not in ``q``, as Keras does) and
    ``a_t = alpha t + (1 - alpha)(1 - t)`` (1 when ``alpha`` is None). Every
    term in float64, the power in log space.

    Parameters
    ----------
    probs : array_like of float16, float32 or float64
        Probabilities in [0, 1] (checked).
    target : array_like
        Targets in [0, 1] (soft targets allowed), the shape of ``probs``.
    gamma : float >= 0, default 2
        Focusing parameter; 0 gives the (alpha-weighted) binary cross-entropy.
    alpha : float in [0, 1], optional
        Class-balancing factor of the positive class (None: no balancing).
    eps : float in [0, 0.5), optional
        As for :func:`binary_cross_entropy` (default: the dtype's epsilon;
        Keras: ``1e-7``).
    weight, where, label_smoothing, reduction, return_grad, grad_loss, grad_out, n_threads
        As for :func:`binary_focal_loss_with_logits`.

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray, only with ``return_grad``
        d(loss)/d(probs): ``weight * a_t * (q**gamma * dbce/dp + gamma *
        q**(gamma - 1) * (1 - 2t) * bce)``, the first term 0 where ``p`` was
        clipped.

    Notes
    -----
    Keras' ``BinaryFocalCrossentropy(from_logits=False)`` is
    ``binary_focal_loss(y_pred, y_true, eps=1e-7)`` with its
    ``apply_class_balancing=True, alpha=a`` as ``alpha=a``; Keras averages over
    the last axis per sample and then over samples, which for equal row
    lengths is the mean over all elements (``"mean"``). From logits, use
    :func:`binary_focal_loss_with_logits` (more accurate than a sigmoid
    followed by this function).

    Examples
    --------
    Keras' documented example (``gamma=2``, the mean over the last axis):

    >>> import numpy as np, xent
    >>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    >>> xent.binary_focal_loss(y_pred, y_true, eps=1e-7, reduction="none").mean(axis=-1).round(3)
    array([0.33 , 0.206])
    """
    return _binary_focal("probs", probs, target, gamma, alpha, weight, where, label_smoothing,
                         reduction, return_grad, grad_loss, grad_out, n_threads, eps)


@overload
def softmax_focal_loss(logits: ArrayLike, target: ArrayLike, *, return_grad: Literal[False] = ...,
                       **options: Unpack[SoftmaxFocalLossOptions]) -> FloatResult: ...
@overload
def softmax_focal_loss(logits: ArrayLike, target: ArrayLike, *, return_grad: Literal[True],
                       **options: Unpack[SoftmaxFocalLossOptions],
                       ) -> Tuple[FloatResult, FloatArray]: ...
@overload
def softmax_focal_loss(logits: ArrayLike, target: ArrayLike, *, return_grad: bool = ...,
                       **options: Unpack[SoftmaxFocalLossOptions]) -> LossResult: ...
@fill_doc(where=ROW_WHERE_DOC)
@bfloat16_io
def softmax_focal_loss(logits: ArrayLike, target: ArrayLike, *, gamma: float = 2.0,
                       alpha: Optional[ArrayLike] = None, axis: int = -1, ignore_index: int = -100,
                       sample_weight: Optional[ArrayLike] = None, where: Optional[ArrayLike] = None,
                       label_smoothing: float = 0.0, reduction: Reduction = "mean",
                       return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                       grad_out: Optional[FloatArray] = None,
                       n_threads: Threads = None) -> LossResult:
    """Softmax focal loss (Lin et al. 2017), per sample.

    ``loss = -sum_c alpha_c t_c (1 - p_c)**gamma log p_c`` with
    ``p = softmax(x)``, ``t`` the one-hot label (or the probability target)
    and ``alpha`` one factor per class (a scalar applies to every class; None
    is 1). ``log p`` is computed as ``(x - m) - log(sum(exp(x - m)))`` and
    ``(1 - p)**gamma`` in log space (from ``expm1`` when ``p`` is near 1).

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
    target : array_like of int or float
        Class indices (any integer dtype; ``ignore_index`` honoured) or class
        probabilities of the logits' shape, as in
        :func:`softmax_cross_entropy`.
    gamma : float >= 0, default 2
        Focusing parameter; 0 gives the (alpha-weighted) cross-entropy.
    alpha : float or array_like of shape (C,), optional
        Per-class factors.
    axis, ignore_index, return_grad, grad_loss, grad_out, n_threads
        As for :func:`softmax_cross_entropy`.
    sample_weight : array_like, optional
        Per-sample weights (the batch shape), as Keras' ``sample_weight``: the
        loss and its gradient of each sample times its weight; a weight of 0
        makes a sample count for nothing.
    %(where)s
    label_smoothing : float in [0, 1], default 0
        Keras' ``label_smoothing``: the target mass (one-hot for labels)
        becomes ``(1 - label_smoothing) * t + label_smoothing / C``, so every
        class has a focal term. With labels it runs on the probability
        targets' kernel (each class's term), reading the labels, with no
        one-hot array.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides by the number of samples not ignored (the sum of
        their sample weights; not by the alpha factors).

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray, only with ``return_grad``
        d(loss)/d(logits).

    Notes
    -----
    Matches Keras' ``CategoricalFocalCrossentropy(from_logits=True)``, whose
    default ``alpha=0.25`` is ``alpha=0.25`` here (the default here is no
    alpha). With class indices it runs on the softmax family's paths (one
    ``exp`` per element, the focal terms once per row); with probability
    targets, one ``exp`` per element for an integer ``gamma`` up to 4 (two
    ``exp`` and a ``log`` more otherwise). On probabilities (Keras'
    ``from_logits=False``) the same terms are :func:`cross_entropy`'s with
    ``gamma`` and ``alpha``.

    Examples
    --------
    >>> import numpy as np, xent
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    >>> round(float(xent.softmax_focal_loss(logits, np.array([0, 2]), gamma=2)), 4)
    0.2497
    """
    g = _gamma(gamma)
    p = _cross_entropy._prepare("logits", logits, target, axis, None, sample_weight, ignore_index,
                                label_smoothing, reduction, return_grad, grad_loss, grad_out,
                                n_threads, other_inputs=[("alpha", alpha)], bf16=True, where=where)
    al = focal_factors(alpha, p["rows"].n_classes)
    rows, cdt = p["rows"], p["cdt"]
    labels = p["labels"]
    if labels is not None and p["eps"] and cdt == BITS:  # (the wrapper widens)
        raise BFloat16Input("logits: bfloat16 with smoothed labels is widened")
    loss = _cross_entropy._loss_rows(p, labels is not None and not p["eps"])
    grad = None
    if return_grad:
        grad = rows.direct_full(p["grad_out"], cdt)
        if grad is None:
            grad = np.empty(rows.shape2d, dtype=cdt)
    sw, smooth = p["sw"], p["eps"]
    if labels is not None and not smooth:  # the softmax family's paths (src/class_rows.pxi)
        total = kernel("softmax_focal_labels", cdt)(
            rows.data(cdt), labels, al, g, p["ignore_index"], p["grad_scale"], loss, grad, p["nt"],
            sample_weight=sw)
    else:
        t_rows = None
        if labels is None:
            t_rows = Rows(p["t"], rows.axes).data(cdt)
        else:  # (smoothed labels: every class has a term; ignored rows as weight 0)
            ignored = labels == p["ignore_index"]
            if ignored.any():
                sw = np.ones(rows.n_rows) if sw is None else sw.copy()
                sw[ignored] = 0.0
        # (the probability rows' kernel takes one gradient scale per row: the
        # sample weights enter it, and the per-row losses, O(N), below)
        gs = p["grad_scale"] if sw is None else p["grad_scale"] * sw
        total = kernel("softmax_focal_rows", cdt)(
            rows.data(cdt), t_rows, al, g, gs, loss, grad, p["nt"], labels=labels, smooth=smooth)
        if sw is not None:
            loss = np.where(sw == 0, 0.0, loss * sw)
            if grad is not None:
                grad[sw == 0] = 0  # (counts for nothing, whatever its logits)
    return _cross_entropy._package(p, loss, grad, total)

