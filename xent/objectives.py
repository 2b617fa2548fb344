"""Gradient-boosting objectives: the gradient and the diagonal of the hessian
of xent's losses with respect to the margins, in one pass, and adapters for
XGBoost and LightGBM.

A boosting library grows each tree from the first and second derivatives of
the loss with respect to the current margins (raw scores). The functions here
compute both from the margins in the same kernel pass as the loss (the
softmax family's paths for :func:`softmax_grad_hess` and
:func:`softmax_focal_grad_hess`, the element-wise binary kernels for
:func:`logistic_grad_hess` and :func:`binary_focal_grad_hess`): the margins
are read once, the gradient and the hessian written once.

:func:`xgboost` and :func:`lightgbm` wrap them as the callables those
libraries take (their native ``train`` APIs and their scikit-learn
estimators), with matching evaluation metrics. Neither library is imported
by xent: the adapters recognise their objects by type name.

The derivatives are of the per-sample loss times its sample weight (the sum
over samples, as the boosting libraries want), not of a mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Tuple, Union, overload

import numpy as np

from ._bfloat16 import bfloat16_io
from . import _kernels as _k
from . import _threads
from ._dispatch import kernel
from ._validate import (
    row_constant,
    bfloat16_check,
    Rows,
    caller_memory,
    check_out,
    class_labels,
    compute_dtype,
    float_array,
    real_array,
    real_scalar,
)
from ._typing import (
    ArrayLike, BinaryFocalGradHessOptions, FloatArray, FocalHessian, GradHess,
    LogisticGradHessOptions, LossGradHess, NDArray, ObjectiveKind, SoftmaxFocalGradHessOptions,
    SoftmaxGradHessOptions, SoftmaxHessian, SoftmaxLossGradHess, Threads,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack

__all__ = [
    "binary_focal_grad_hess",
    "lightgbm",
    "logistic_grad_hess",
    "softmax_focal_grad_hess",
    "softmax_grad_hess",
    "xgboost",
]

# the hessian's policies (XENT_HESS_* of src/xent_class.h)
_EXACT, _CLIP, _ABS = 0, 1, 2
# XGBoost's floor of its hessians (src/objective/multiclass_obj.cu, regression_loss.h)
XGBOOST_MIN_HESSIAN = 1e-16


def _min_hessian(min_hessian):
    return real_scalar(min_hessian, "min_hessian", 0.0)


def _softmax_policy(hessian, min_hessian, n_classes):
    """(factor, policy, floor) of a softmax or logistic hessian option."""
    floor = _min_hessian(min_hessian)
    if isinstance(hessian, str):
        if hessian == "diagonal":
            return 1.0, _CLIP, floor
        if hessian == "xgboost":
            return (2.0 if n_classes > 1 else 1.0), _CLIP, max(floor, XGBOOST_MIN_HESSIAN)
        if hessian == "lightgbm":
            return (n_classes / (n_classes - 1.0) if n_classes > 1 else 1.0), _CLIP, floor
    elif isinstance(hessian, (int, float, np.integer, np.floating)) and not isinstance(hessian, (bool, np.bool_)):
        f = real_scalar(hessian, "hessian", 0.0)
        if not f > 0:
            raise ValueError(f"hessian: expected a factor > 0, got {hessian!r}")
        return f, _CLIP, floor
    raise ValueError(f"hessian: expected 'diagonal', 'xgboost', 'lightgbm' or a factor > 0, "
                     f"got {hessian!r}")


def _focal_policy(hessian, min_hessian):
    floor = _min_hessian(min_hessian)
    if isinstance(hessian, str) and hessian in ("exact", "clip", "abs"):
        if hessian == "exact":
            if floor != 0:
                raise ValueError(f"min_hessian: only with hessian='clip' or 'abs' (the exact "
                                 f"hessian is not floored), got {min_hessian!r}")
            return 1.0, _EXACT, 0.0
        return 1.0, (_CLIP if hessian == "clip" else _ABS), floor
    raise ValueError(f"hessian: expected 'exact', 'clip' or 'abs', got {hessian!r}")


def _bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return bool(value)


def _outputs(grad_out, hess_out, x, cdt, inputs):
    """The gradient and hessian buffers ((n, C) or x's shape, C-contiguous,
    of the compute dtype): the caller's, checked, or new."""
    bufs = []
    for name, out in (("grad_out", grad_out), ("hess_out", hess_out)):
        check_out(out, name, x.shape, cdt, inputs)
        if out is not None and not (out.flags.c_contiguous and out.flags.aligned):
            raise ValueError(f"{name}: expected a C-contiguous array, got strides {out.strides}")
        bufs.append(out)
    if grad_out is not None and hess_out is not None and np.may_share_memory(grad_out, hess_out):
        raise ValueError("hess_out: must not overlap the memory of grad_out")
    return [np.empty(x.shape, cdt) if b is None else b for b in bufs]


def _sample_weight(sample_weight, n):
    if sample_weight is None:
        return None
    sw = real_array(sample_weight, "sample_weight")
    if sw.shape != (n,):
        raise ValueError(f"sample_weight: expected shape ({n},) (one weight per sample), "
                         f"got {sw.shape}")
    return np.require(sw, requirements=["C", "A"])


def _softmax_prepare(logits, labels, sample_weight, grad_out, hess_out, n_threads):
    x_given, x = logits, float_array(logits, "logits")
    if x.ndim != 2:
        raise ValueError(f"logits: expected margins of shape (n_samples, n_classes), got shape "
                         f"{x.shape}")
    n, c = x.shape
    if c < 2:
        raise ValueError(f"logits: expected at least 2 classes (columns), got {c}")
    t = np.asarray(labels)
    if t.dtype.kind not in "iu":
        raise TypeError(f"labels: expected integer class indices, got dtype {t.dtype} (float "
                        f"labels from a boosting library: the adapters xent.objectives.xgboost "
                        f"and .lightgbm convert whole numbers)")
    rows = Rows(x, (1,))
    y, _ = class_labels(t, rows, None, name="labels", of="the logits' (n_samples,)")
    sw = _sample_weight(sample_weight, n)
    cdt = compute_dtype(x.dtype)
    grad, hess = _outputs(grad_out, hess_out, x, cdt,
                          [("logits", x), ("labels", t), ("sample_weight", sample_weight),
                           *caller_memory("logits", x_given, x)])
    nt = _threads.threads_for(n_threads, n, x.size)
    return rows.data(cdt), y, sw, grad, hess, cdt, nt


def _result(loss, grad, hess, return_loss):
    return (loss, grad, hess) if return_loss else (grad, hess)


@overload
def softmax_grad_hess(logits: ArrayLike, labels: ArrayLike, *, return_loss: Literal[False] = ...,
                      **options: Unpack[SoftmaxGradHessOptions]) -> GradHess: ...
@overload
def softmax_grad_hess(logits: ArrayLike, labels: ArrayLike, *, return_loss: Literal[True],
                      **options: Unpack[SoftmaxGradHessOptions]) -> SoftmaxLossGradHess: ...
@overload
def softmax_grad_hess(logits: ArrayLike, labels: ArrayLike, *, return_loss: bool = ...,
                      **options: Unpack[SoftmaxGradHessOptions],
                      ) -> Union[GradHess, SoftmaxLossGradHess]: ...
@bfloat16_io
def softmax_grad_hess(logits: ArrayLike, labels: ArrayLike, *,
                      sample_weight: Optional[ArrayLike] = None,
                      hessian: SoftmaxHessian = "diagonal", min_hessian: float = 0.0,
                      label_smoothing: float = 0.0, return_loss: bool = False,
                      grad_out: Optional[FloatArray] = None, hess_out: Optional[FloatArray] = None,
                      n_threads: Threads = None) -> Union[GradHess, SoftmaxLossGradHess]:
    """Gradient and hessian diagonal of the softmax cross-entropy, for boosting.

    Per sample ``i`` and class ``j``, with ``p = softmax(logits[i])``, the
    smoothed one-hot target ``a = (1 - eps) onehot(y) + eps / C`` and the
    sample weight ``w``:
    ``grad = w (p_j - a_j)`` and ``hess = factor * w * p_j (1 - p_j)``, then
    at least ``min_hessian``. One pass over the margins.

    Parameters
    ----------
    logits : array_like of float, shape (n_samples, n_classes)
        Margins (raw scores), C or F order (F order is copied once).
    labels : array_like of int, shape (n_samples,)
        Class indices in ``[0, n_classes)``, any integer dtype (no ignore
        value: every sample counts).
    sample_weight : array_like, shape (n_samples,), optional
    hessian : {"diagonal", "xgboost", "lightgbm"} or float, default "diagonal"
        ``"diagonal"``: the exact diagonal ``p (1 - p)`` of the hessian
        ``diag(p) - p p^T`` (scikit-learn's
        ``HalfMultinomialLoss.gradient_hessian``). ``"xgboost"``: XGBoost's
        ``max(2 p (1 - p) w, 1e-16)`` (the row sums of ``|diag(p) - p p^T|``:
        a diagonal upper bound). ``"lightgbm"``: LightGBM's
        ``K / (K - 1) p (1 - p) w``. A float: that factor times the diagonal.
    min_hessian : float >= 0, default 0
        The floor of every hessian entry (also of samples of weight 0, whose
        gradient is 0).
    label_smoothing : float in [0, 1], default 0
        As :func:`xent.softmax_cross_entropy`'s; the hessian does not change
        (the smoothed target still sums to one).
    return_loss : bool, default False
        Also return the per-sample losses (float64, weighted), first.
    grad_out, hess_out : ndarray, optional
        C-contiguous buffers of the logits' shape and compute dtype (float32
        for float16 margins), apart from each other and the inputs.
    n_threads : int or None, default None
        As everywhere in xent; no value depends on it.

    Returns
    -------
    loss : ndarray of float64, shape (n_samples,), only with ``return_loss``
    grad, hess : ndarray, shape (n_samples, n_classes)

    Notes
    -----
    ``1 - p`` of a dominant class is computed from the other classes' terms
    (no cancellation as ``p`` approaches 1), so the hessian keeps its
    relative accuracy at extreme margins.

    Examples
    --------
    >>> import numpy as np
    >>> from xent.objectives import softmax_grad_hess
    >>> g, h = softmax_grad_hess(np.array([[0.0, 0.0]]), np.array([1]))
    >>> g.tolist(), h.tolist()
    ([[0.5, -0.5]], [[0.25, 0.25]])
    """
    x, y, sw, grad, hess, cdt, nt = _softmax_prepare(logits, labels, sample_weight, grad_out,
                                                     hess_out, n_threads)
    hfac, hpol, hmin = _softmax_policy(hessian, min_hessian, x.shape[1])
    eps = real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    want_loss = _bool(return_loss, "return_loss")
    n = x.shape[0]
    loss = np.empty(n) if want_loss else None
    gs = row_constant(n, 1.0)
    kernel("softmax_xent_labels", cdt)(x, y, None, sw, gs, eps, 0.0, -1, loss, grad.reshape(x.shape),
                                      nt, 0.0, hess.reshape(x.shape), hfac, hpol, hmin)
    return _result(loss, grad, hess, want_loss)


@overload
def softmax_focal_grad_hess(logits: ArrayLike, labels: ArrayLike, *,
                            return_loss: Literal[False] = ...,
                            **options: Unpack[SoftmaxFocalGradHessOptions]) -> GradHess: ...
@overload
def softmax_focal_grad_hess(logits: ArrayLike, labels: ArrayLike, *, return_loss: Literal[True],
                            **options: Unpack[SoftmaxFocalGradHessOptions],
                            ) -> SoftmaxLossGradHess: ...
@overload
def softmax_focal_grad_hess(logits: ArrayLike, labels: ArrayLike, *, return_loss: bool = ...,
                            **options: Unpack[SoftmaxFocalGradHessOptions],
                            ) -> Union[GradHess, SoftmaxLossGradHess]: ...
@bfloat16_io
def softmax_focal_grad_hess(logits: ArrayLike, labels: ArrayLike, *, gamma: float = 2.0,
                            alpha: Optional[ArrayLike] = None,
                            sample_weight: Optional[ArrayLike] = None,
                            hessian: FocalHessian = "exact", min_hessian: float = 0.0,
                            return_loss: bool = False, grad_out: Optional[FloatArray] = None,
                            hess_out: Optional[FloatArray] = None,
                            n_threads: Threads = None) -> Union[GradHess, SoftmaxLossGradHess]:
    """Gradient and hessian diagonal of the softmax focal loss, for boosting.

    Per sample, with ``p = softmax(logits)`` and its label's ``p_y``:
    ``loss = -w alpha_y (1 - p_y)**gamma log p_y``. With
    ``D(p) = gamma (1 - p)**(gamma - 1) p log p - (1 - p)**gamma``, the
    gradient is ``w alpha_y D(p_y) ([j == y] - p_j)`` and the hessian's
    diagonal ``w alpha_y (p_y D'(p_y) ([j == y] - p_j)**2 - D(p_y) p_j (1 - p_j))``.

    Parameters
    ----------
    logits, labels, sample_weight, return_loss, grad_out, hess_out, n_threads
        As for :func:`softmax_grad_hess`.
    gamma : float >= 0, default 2
    alpha : float or array_like of shape (n_classes,), optional
        Per-class factors (as :func:`xent.softmax_focal_loss`).
    hessian : {"exact", "clip", "abs"}, default "exact"
        The focal loss is not convex in the margins: for ``gamma > 0`` some
        entries of the exact diagonal are negative (e.g. a confident wrong
        prediction's). ``"exact"`` returns it as it is (``min_hessian`` must
        be 0); ``"clip"`` gives ``max(h, min_hessian)``, ``"abs"``
        ``max(|h|, min_hessian)``. A boosting library needs positive
        hessians: take ``"clip"`` or ``"abs"`` with a small ``min_hessian``.
    min_hessian : float >= 0, default 0

    Returns
    -------
    loss : ndarray of float64, shape (n_samples,), only with ``return_loss``
    grad, hess : ndarray, shape (n_samples, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from xent.objectives import softmax_focal_grad_hess
    >>> g, h = softmax_focal_grad_hess(np.array([[2.0, 0.0, -1.0]]), np.array([0]), gamma=0)
    >>> np.allclose(g.sum(), 0.0)
    True
    """
    x, y, sw, grad, hess, cdt, nt = _softmax_prepare(logits, labels, sample_weight, grad_out,
                                                     hess_out, n_threads)
    hfac, hpol, hmin = _focal_policy(hessian, min_hessian)
    g = real_scalar(gamma, "gamma", 0.0)
    n, c = x.shape
    al = np.ones(c) if alpha is None else real_array(alpha, "alpha")
    if al.ndim > 1 or al.size not in (1, c):
        raise ValueError(f"alpha: expected a scalar or shape ({c},) (one factor per class), "
                         f"got shape {al.shape}")
    al = np.ascontiguousarray(np.broadcast_to(al.reshape(-1), (c,)), dtype=np.float64)
    want_loss = _bool(return_loss, "return_loss")
    loss = np.empty(n) if want_loss else None
    gs = row_constant(n, 1.0)
    kernel("softmax_focal_labels", cdt)(x, y, al, g, -1, gs, loss, grad.reshape(x.shape), nt,
                                       hess.reshape(x.shape), hfac, hpol, hmin, sample_weight=sw)
    return _result(loss, grad, hess, want_loss)


def _binary_prepare(logits, targets, sample_weight, grad_out, hess_out, n_threads):
    x_given, x = logits, float_array(logits, "logits")
    if x.ndim not in (1, 2):
        raise ValueError(f"logits: expected margins of shape (n_samples,) or (n_samples, "
                         f"n_outputs), got shape {x.shape}")
    t = np.asarray(targets)
    if t.dtype.kind not in "biuf":
        bfloat16_check(t, "targets")
        raise TypeError(f"targets: expected real numbers in [0, 1], got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"targets: expected the shape of logits {x.shape}, got {t.shape}")
    n = x.shape[0]
    sw = _sample_weight(sample_weight, n)
    cdt = compute_dtype(x.dtype)
    grad, hess = _outputs(grad_out, hess_out, x, cdt,
                          [("logits", x), ("targets", t), ("sample_weight", sample_weight),
                           *caller_memory("logits", x_given, x)])
    shape2d = x.shape if x.ndim == 2 else (1, n)
    x2 = np.require(x, cdt, ["C", "A"]).reshape(shape2d)
    t2 = np.require(t, cdt, ["C", "A"]).reshape(shape2d)
    nt = _threads.threads_for(n_threads, _k.n_tasks(*shape2d), x.size)
    k = kernel("first_outside_unit_interval", cdt)(t2.reshape(-1), nt)
    if k >= 0:
        where = tuple(int(i) for i in np.unravel_index(k, x.shape))
        raise ValueError(f"targets: expected values in [0, 1], got {float(t2.reshape(-1)[k])!r} "
                         f"at index {where}")
    if sw is None:
        w = np.broadcast_to(np.ones((), cdt), shape2d)
    elif x.ndim == 1:
        w = sw.astype(cdt).reshape(shape2d)
    else:
        w = np.broadcast_to(sw.astype(cdt)[:, None], shape2d)
    return x2, t2, w, grad, hess, cdt, nt, shape2d


def _binary_run(name, extra, x2, t2, w, grad, hess, cdt, nt, shape2d, policy, want_loss, x_shape):
    loss = np.empty(shape2d, cdt) if want_loss else None
    partial = np.empty(_k.n_tasks(*shape2d), dtype=np.float64)
    g = np.broadcast_to(np.ones((), cdt), shape2d)
    rs = np.broadcast_to(np.ones(1), (shape2d[0],))
    hfac, hpol, hmin = policy
    kernel(name, cdt)(x2, t2, *extra(w, g, rs), loss, partial, grad.reshape(shape2d), nt,
                      hess.reshape(shape2d), hfac, hpol, hmin)
    return None if loss is None else loss.reshape(x_shape)


@overload
def logistic_grad_hess(logits: ArrayLike, targets: ArrayLike, *, return_loss: Literal[False] = ...,
                       **options: Unpack[LogisticGradHessOptions]) -> GradHess: ...
@overload
def logistic_grad_hess(logits: ArrayLike, targets: ArrayLike, *, return_loss: Literal[True],
                       **options: Unpack[LogisticGradHessOptions]) -> LossGradHess: ...
@overload
def logistic_grad_hess(logits: ArrayLike, targets: ArrayLike, *, return_loss: bool = ...,
                       **options: Unpack[LogisticGradHessOptions],
                       ) -> Union[GradHess, LossGradHess]: ...
@bfloat16_io
def logistic_grad_hess(logits: ArrayLike, targets: ArrayLike, *,
                       sample_weight: Optional[ArrayLike] = None,
                       hessian: SoftmaxHessian = "diagonal", min_hessian: float = 0.0,
                       return_loss: bool = False, grad_out: Optional[FloatArray] = None,
                       hess_out: Optional[FloatArray] = None,
                       n_threads: Threads = None) -> Union[GradHess, LossGradHess]:
    """Gradient and hessian of the logistic loss (binary or multi-label), for boosting.

    Element-wise, with ``p = sigmoid(x)`` and targets ``t`` in ``[0, 1]``:
    ``loss = w (max(x, 0) - x t + log1p(exp(-|x|)))``, ``grad = w (p - t)``,
    ``hess = factor * w p (1 - p)``, then at least ``min_hessian``.

    Parameters
    ----------
    logits : array_like of float, shape (n_samples,) or (n_samples, n_outputs)
        Margins.
    targets : array_like, the logits' shape
        Values in ``[0, 1]`` (0/1 labels of any dtype, or soft targets).
    sample_weight : array_like, shape (n_samples,), optional
    hessian : {"diagonal", "xgboost", "lightgbm"} or float, default "diagonal"
        ``"diagonal"`` and ``"lightgbm"``: ``p (1 - p)`` (exact);
        ``"xgboost"``: ``max(p (1 - p) w, 1e-16)`` (``binary:logistic``); a
        float: that factor times it.
    min_hessian, return_loss, grad_out, hess_out, n_threads
        As for :func:`softmax_grad_hess` (the loss element-wise, in the
        logits' compute dtype).

    Returns
    -------
    loss : ndarray, the logits' shape, only with ``return_loss``
    grad, hess : ndarray, the logits' shape

    Examples
    --------
    >>> import numpy as np
    >>> from xent.objectives import logistic_grad_hess
    >>> g, h = logistic_grad_hess(np.array([0.0]), np.array([1.0]))
    >>> g.tolist(), h.tolist()
    ([-0.5], [0.25])
    """
    x2, t2, w, grad, hess, cdt, nt, shape2d = _binary_prepare(logits, targets, sample_weight,
                                                              grad_out, hess_out, n_threads)
    policy = _softmax_policy(hessian, min_hessian, 1)
    want_loss = _bool(return_loss, "return_loss")
    pw = np.broadcast_to(np.ones(1), (shape2d[1],))
    loss = _binary_run("bce_rows", lambda w, g, rs: (pw, w, g, rs, 0.0, 0.0, True), x2, t2, w,
                       grad, hess, cdt, nt, shape2d, policy, want_loss, grad.shape)
    return _result(loss, grad, hess, want_loss)


@overload
def binary_focal_grad_hess(logits: ArrayLike, targets: ArrayLike, *,
                           return_loss: Literal[False] = ...,
                           **options: Unpack[BinaryFocalGradHessOptions]) -> GradHess: ...
@overload
def binary_focal_grad_hess(logits: ArrayLike, targets: ArrayLike, *, return_loss: Literal[True],
                           **options: Unpack[BinaryFocalGradHessOptions]) -> LossGradHess: ...
@overload
def binary_focal_grad_hess(logits: ArrayLike, targets: ArrayLike, *, return_loss: bool = ...,
                           **options: Unpack[BinaryFocalGradHessOptions],
                           ) -> Union[GradHess, LossGradHess]: ...
@bfloat16_io
def binary_focal_grad_hess(logits: ArrayLike, targets: ArrayLike, *, gamma: float = 2.0,
                           alpha: Optional[float] = None,
                           sample_weight: Optional[ArrayLike] = None,
                           hessian: FocalHessian = "exact", min_hessian: float = 0.0,
                           return_loss: bool = False, grad_out: Optional[FloatArray] = None,
                           hess_out: Optional[FloatArray] = None,
                           n_threads: Threads = None) -> Union[GradHess, LossGradHess]:
    """Gradient and exact second derivative of the binary focal loss, for boosting.

    Element-wise, as :func:`xent.binary_focal_loss_with_logits`: with
    ``p = sigmoid(x)``, ``q = t (1 - p) + (1 - t) p`` and
    ``a = alpha t + (1 - alpha)(1 - t)`` (1 without alpha),
    ``loss = w a q**gamma ce(x, t)``; the gradient and the second derivative
    in ``x`` of it, in float64, in one pass.

    Parameters
    ----------
    logits, targets, sample_weight, return_loss, grad_out, hess_out, n_threads
        As for :func:`logistic_grad_hess`.
    gamma : float >= 0, default 2
    alpha : float in [0, 1], optional
    hessian : {"exact", "clip", "abs"}, default "exact"
        The focal loss is not convex in the logit (for ``gamma = 2`` and
        ``t = 1`` the second derivative reaches about -0.047 near
        ``x = -3.85``): ``"exact"`` returns it as it is, ``"clip"``
        ``max(h, min_hessian)``, ``"abs"`` ``max(|h|, min_hessian)``.
    min_hessian : float >= 0, default 0
        Only with ``"clip"`` or ``"abs"``.

    Returns
    -------
    loss : ndarray, the logits' shape, only with ``return_loss``
    grad, hess : ndarray, the logits' shape

    Examples
    --------
    >>> import numpy as np
    >>> from xent.objectives import binary_focal_grad_hess
    >>> g, h = binary_focal_grad_hess(np.array([-3.85]), np.array([1.0]), gamma=2)
    >>> round(float(h[0]), 3)
    -0.047
    """
    x2, t2, w, grad, hess, cdt, nt, shape2d = _binary_prepare(logits, targets, sample_weight,
                                                              grad_out, hess_out, n_threads)
    policy = _focal_policy(hessian, min_hessian)
    g = real_scalar(gamma, "gamma", 0.0)
    a = None if alpha is None else real_scalar(alpha, "alpha", 0.0, 1.0)
    want_loss = _bool(return_loss, "return_loss")
    loss = _binary_run("binary_focal_rows",
                       lambda w, gl, rs: (g, 0.0 if a is None else a, a is not None, w, gl, rs, 0.0),
                       x2, t2, w, grad, hess, cdt, nt, shape2d, policy, want_loss, grad.shape)
    return _result(loss, grad, hess, want_loss)


# ---------------------------------------------------------------- adapters

_KINDS: Dict[str, Tuple[Callable[..., Any], bool, str, str]] = {
    # kind: (function, takes class labels, the metric's loss, its names (XGBoost, LightGBM))
    "softmax": (softmax_grad_hess, True, "mlogloss", "multi_logloss"),
    "softmax_focal": (softmax_focal_grad_hess, True, "softmax_focal", "softmax_focal"),
    "logistic": (logistic_grad_hess, False, "logloss", "binary_logloss"),
    "focal": (binary_focal_grad_hess, False, "focal", "focal"),
}


def _library_of(obj):
    """'xgboost', 'lightgbm' or None: whose data set object obj is (by its
    type's module: neither library is imported here)."""
    mod = type(obj).__module__ or ""
    top = mod.split(".")[0]
    return top if top in ("xgboost", "lightgbm") else None


def _whole_labels(values, name="labels"):
    """Class labels a boosting library hands over as floats, as int64: whole
    numbers only."""
    y = np.asarray(values)
    if y.dtype.kind in "iu":
        return y
    if y.dtype.kind != "f":
        raise TypeError(f"{name}: expected class indices (integers, or whole-number floats), "
                        f"got dtype {y.dtype}")
    bad = ~(np.isfinite(y) & (y == np.round(y)))
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{name}: expected whole-number class indices, got {y.reshape(-1)[k]!r} "
                         f"at index {k}")
    return y.astype(np.int64)


class _Objective:
    """An objective for one boosting library (xgboost() and lightgbm() make
    them): called as that library's native API and its scikit-learn API call
    it, with ``.metric`` the matching evaluation metric."""

    library: Optional[str] = None

    def __init__(self, kind: str, options: Dict[str, Any]) -> None:
        if not isinstance(kind, str) or kind not in _KINDS:
            raise ValueError(f"kind: expected one of {sorted(_KINDS)}, got {kind!r}")
        if "return_loss" in options or "grad_out" in options or "hess_out" in options:
            raise TypeError("options: return_loss, grad_out and hess_out are the adapter's own")
        self.kind = kind
        self.options = dict(options)
        if kind in ("focal", "softmax_focal"):
            self.options.setdefault("hessian", "clip")
            self.options.setdefault("min_hessian", 1e-16)
        fn, _, _, _ = _KINDS[kind]
        # the options, checked now (a bad one fails here, not in round one)
        probe = (np.zeros((1, 2)), np.zeros(1, np.int64)) if _KINDS[kind][1] else \
            (np.zeros(1), np.zeros(1))
        fn(*probe, **self.options)
        self._buffers: Dict[Any, NDArray[Any]] = {}

    def _buffer(self, name, shape, dtype, order="C"):
        """A buffer kept from call to call (a training run calls with the
        same shapes every round: no new pages to fault in each time)."""
        key = (name, tuple(shape), np.dtype(dtype), order)
        buf = self._buffers.get(key)
        if buf is None:
            self._buffers = {k: v for k, v in self._buffers.items() if k[0] != name}
            buf = self._buffers[key] = np.empty(shape, dtype, order=order)
        return buf

    def _inputs(self, a, b, weight):
        """(margins, labels or targets, sample weight) from either calling form."""
        lib = _library_of(b)
        if lib is not None and lib != self.library:
            raise TypeError(f"{type(b).__name__} is a {lib} data set: use "
                            f"xent.objectives.{lib}({self.kind!r}) for it, not "
                            f"xent.objectives.{self.library}()")
        if lib is not None:  # the native form: (margins, data set)
            margins, labels = a, b.get_label()
            w = b.get_weight()
        else:  # the scikit-learn form: (y_true, y_pred[, weight])
            margins, labels, w = b, a, weight
        margins = np.asarray(margins)
        if w is not None:
            w = np.asarray(w)
            if w.size == 0:
                w = None
        labels = np.asarray(labels)
        if _KINDS[self.kind][1]:
            if margins.ndim == 1 and labels.ndim == 1 and labels.size and \
                    margins.size % labels.size == 0 and margins.size > labels.size:
                margins = margins.reshape(labels.size, -1)  # flat (n * K) margins
            if margins.ndim != 2:
                raise ValueError(f"margins: expected shape (n_samples, n_classes) for "
                                 f"{self.kind!r} (is the model's num_class set?), got shape "
                                 f"{margins.shape}")
            labels = _whole_labels(labels.reshape(-1))
        elif labels.size == margins.size:
            labels = labels.reshape(margins.shape)
        return margins, labels, w

    def _grad_hess(self, margins, labels, w):
        fn = _KINDS[self.kind][0]
        cdt = compute_dtype(margins.dtype)
        return fn(margins, labels, sample_weight=w, grad_out=self._buffer("grad", margins.shape, cdt),
                  hess_out=self._buffer("hess", margins.shape, cdt), **self.options)

    def _loss(self, margins, labels, w):
        fn = _KINDS[self.kind][0]
        loss, _, _ = fn(margins, labels, sample_weight=w, return_loss=True, **self.options)
        if loss.ndim > 1:
            loss = loss.sum(axis=1)
        total = float(np.sum(loss, dtype=np.float64))
        return total / (float(np.sum(w)) if w is not None else float(len(loss)))

    def metric_value(self, a: Any, b: Any, weight: Optional[ArrayLike] = None) -> float:
        """The weighted mean loss of the margins (a float)."""
        return self._loss(*self._inputs(a, b, weight))

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"xent.objectives.{self.library}({self.kind!r}{opts})"


class XGBoostObjective(_Objective):
    """``obj(predt, dtrain)`` for ``xgboost.train(obj=...)`` and
    ``obj(y_true, y_pred, sample_weight=None)`` for
    ``XGBClassifier(objective=...)``: ``(grad, hess)`` of the margins' shape,
    float64. ``.metric(predt, dtrain)`` is a ``custom_metric`` for
    ``xgboost.train`` (``(name, value)``). The arrays returned are the
    objective's own buffers, written again by its next call (the library
    copies them at once)."""

    library = "xgboost"

    def __call__(self, a: Any, b: Any, sample_weight: Optional[ArrayLike] = None,
                 ) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        margins, labels, w = self._inputs(a, b, sample_weight)
        # XGBoost's float32 margins computed in float64 (as its own objectives
        # sum in double: 20 rounds then agree with multi:softprob to 1e-6)
        if margins.dtype != np.float64:
            wide = self._buffer("margins", margins.shape, np.float64)
            np.copyto(wide, margins, casting="same_kind")
            margins = wide
        return self._grad_hess(margins, labels, w)

    def metric(self, predt: Any, dtrain: Any) -> Tuple[str, float]:
        return _KINDS[self.kind][2], self.metric_value(predt, dtrain)


class LightGBMObjective(_Objective):
    """``obj(preds, train_data)`` for ``lgb.train(params={"objective": obj})``
    and ``obj(y_true, y_pred, weight=None)`` for
    ``LGBMClassifier(objective=...)``: ``(grad, hess)`` as LightGBM takes
    them without a copy of its own (float32, Fortran order for several
    classes). ``.metric(preds, eval_data)`` is an ``feval``
    (``(name, value, is_higher_better)``). The arrays returned are the
    objective's own buffers, written again by its next call."""

    library = "lightgbm"

    def __call__(self, a: Any, b: Any, weight: Optional[ArrayLike] = None,
                 ) -> Tuple[NDArray[np.float32], NDArray[np.float32]]:
        margins, labels, w = self._inputs(a, b, weight)
        grad, hess = self._grad_hess(margins, labels, w)
        # LightGBM ravels in Fortran order and casts to float32: one copy here
        # (transposed and cast at once) makes both no-ops
        out = []
        for name, a in (("grad32", grad), ("hess32", hess)):
            f = self._buffer(name, a.shape, np.float32, order="F")
            np.copyto(f, a, casting="same_kind")
            out.append(f)
        return tuple(out)

    def metric(self, preds: Any, eval_data: Any) -> Tuple[str, float, bool]:
        return _KINDS[self.kind][3], self.metric_value(preds, eval_data), False


def xgboost(kind: ObjectiveKind = "softmax", **options: Any) -> XGBoostObjective:
    """An XGBoost objective of xent's loss ``kind``.

    Parameters
    ----------
    kind : {"softmax", "softmax_focal", "logistic", "focal"}, default "softmax"
        :func:`softmax_grad_hess` (``multi:softprob``'s loss),
        :func:`softmax_focal_grad_hess`, :func:`logistic_grad_hess`
        (``binary:logistic``'s) or :func:`binary_focal_grad_hess`.
    **options
        That function's options (``hessian``, ``min_hessian``,
        ``label_smoothing``, ``gamma``, ``alpha``, ``n_threads``). The focal
        kinds default to ``hessian="clip", min_hessian=1e-16`` (XGBoost needs
        positive hessians). To reproduce ``multi:softprob`` take
        ``hessian="xgboost"``.

    Returns
    -------
    XGBoostObjective
        Computes in float64 (XGBoost's margins are float32). Accepted by ``xgboost.train(params, dtrain, obj=objective)`` (margins
        of shape ``(n, K)``, XGBoost >= 2.1; set ``num_class``) and by
        ``XGBClassifier(objective=objective)``; ``objective.metric`` is a
        matching ``custom_metric``. Sample weights come from the DMatrix (or
        ``sample_weight=``). A LightGBM data set raises TypeError.

    Examples
    --------
    See the gradient boosting page of the documentation (``docs/boosting.md``).
    """
    return XGBoostObjective(kind, options)


def lightgbm(kind: ObjectiveKind = "softmax", **options: Any) -> LightGBMObjective:
    """A LightGBM objective of xent's loss ``kind``.

    Parameters
    ----------
    kind, **options
        As for :func:`xgboost`. To reproduce LightGBM's ``multiclass`` take
        ``hessian="lightgbm"`` (``K / (K - 1) p (1 - p)``).

    Returns
    -------
    LightGBMObjective
        Accepted as ``lgb.train(params={"objective": objective, "num_class": K})``
        and by ``LGBMClassifier(objective=objective)``; returns float32
        Fortran-ordered ``(grad, hess)`` (what LightGBM copies them to);
        ``objective.metric`` is an ``feval``. An XGBoost DMatrix raises
        TypeError.
    """
    return LightGBMObjective(kind, options)
