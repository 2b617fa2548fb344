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

import numpy as np

from . import _kernels as _k
from . import _threads
from ._dispatch import kernel
from ._validate import (
    Rows,
    check_out,
    class_labels,
    compute_dtype,
    float_array,
    real_array,
    real_scalar,
)

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
    x = float_array(logits, "logits")
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
                          [("logits", x), ("labels", t), ("sample_weight", sample_weight)])
    nt = _threads.threads_for(n_threads, n, x.size)
    return rows.data(cdt), y, sw, grad, hess, cdt, nt


def _result(loss, grad, hess, return_loss):
    return (loss, grad, hess) if return_loss else (grad, hess)


def softmax_grad_hess(logits, labels, *, sample_weight=None, hessian="diagonal", min_hessian=0.0,
                      label_smoothing=0.0, return_loss=False, grad_out=None, hess_out=None,
                      n_threads=None):
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
    gs = np.ndarray((n,), np.float64, np.ones(1), strides=(0,))
    kernel("softmax_xent_labels", cdt)(x, y, None, sw, gs, eps, 0.0, -1, loss, grad.reshape(x.shape),
                                      nt, 0.0, hess.reshape(x.shape), hfac, hpol, hmin)
    return _result(loss, grad, hess, want_loss)


def softmax_focal_grad_hess(logits, labels, *, gamma=2.0, alpha=None, sample_weight=None,
                            hessian="exact", min_hessian=0.0, return_loss=False, grad_out=None,
                            hess_out=None, n_threads=None):
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
    # the sample weights are the rows' gradient scale (the focal kernel's
    # loss is unweighted: weighted below)
    gs = sw if sw is not None else np.ndarray((n,), np.float64, np.ones(1), strides=(0,))
    kernel("softmax_focal_labels", cdt)(x, y, al, g, -1, gs, loss, grad.reshape(x.shape), nt,
                                       hess.reshape(x.shape), hfac, hpol, hmin)
    if want_loss and sw is not None:
        loss = np.where(sw == 0, 0.0, loss * sw)
    return _result(loss, grad, hess, want_loss)


def _binary_prepare(logits, targets, sample_weight, grad_out, hess_out, n_threads):
    x = float_array(logits, "logits")
    if x.ndim not in (1, 2):
        raise ValueError(f"logits: expected margins of shape (n_samples,) or (n_samples, "
                         f"n_outputs), got shape {x.shape}")
    t = np.asarray(targets)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"targets: expected real numbers in [0, 1], got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"targets: expected the shape of logits {x.shape}, got {t.shape}")
    n = x.shape[0]
    sw = _sample_weight(sample_weight, n)
    cdt = compute_dtype(x.dtype)
    grad, hess = _outputs(grad_out, hess_out, x, cdt,
                          [("logits", x), ("targets", t), ("sample_weight", sample_weight)])
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


def logistic_grad_hess(logits, targets, *, sample_weight=None, hessian="diagonal", min_hessian=0.0,
                       return_loss=False, grad_out=None, hess_out=None, n_threads=None):
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


def binary_focal_grad_hess(logits, targets, *, gamma=2.0, alpha=None, sample_weight=None,
                           hessian="exact", min_hessian=0.0, return_loss=False, grad_out=None,
                           hess_out=None, n_threads=None):
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
