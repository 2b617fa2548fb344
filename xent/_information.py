"""Information theory on probability vectors: entropy, cross-entropy and the
Kullback-Leibler divergence, with the gradient with respect to ``q``.

Public functions validate (``_validate``, O(1) and O(N) checks only), and call
the kernels of ``src/information.pxi``, which compute one value per row (in
float64) and, in the same pass, the gradient; the reductions are done here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional, Tuple, overload

import numpy as np

from ._bfloat16 import bfloat16_io, bfloat16_io_of
from . import _threads
from ._dispatch import kernel
from . import _kernels as _k
from ._validate import (
    focal_factors,
    mask_array,
    row_constant,
    row_operand,
    bfloat16_check,
    Rows,
    boolean,
    class_axes,
    class_labels,
    clip_eps,
    compute_dtype,
    deliver,
    fill_doc,
    float_array,
    integer,
    real_array,
    real_scalar,
    reduction_mode,
    sample_weights,
    same_shape,
)
from ._typing import (
    ArrayLike, CrossEntropyOptions, FloatArray, FloatResult, KLDivergenceOptions, KLReduction,
    LossResult, Reduction, Threads,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack

_AXIS_DOC = """\
    axis : int, default -1
        The class axis, along which each probability vector lies; the other
        axes are batch axes (one value per vector).
"""

_EPS_DOC = """\
    eps : float in (0, 1), optional
        Clip ``q`` to ``[eps, 1]`` before its log is taken: ``q < eps``
        becomes ``eps`` and ``q > 1`` becomes ``1``; the gradient is 0 at the
        clipped entries. Without ``eps`` (the default) nothing is clipped:
        ``q == 0`` where ``p > 0`` gives ``+inf``. (Keras clips with
        ``eps=1e-7``; scikit-learn's ``log_loss`` with the dtype's machine
        epsilon, to ``[eps, 1 - eps]``.)
"""

_REDUCTION_DOC = """\
    reduction : {"none", "sum", "mean"}, default "none"
        ``"none"`` returns one value per vector (the batch shape: a scalar for
        a 1-D input); ``"sum"`` their sum; ``"mean"`` their mean over the
        vectors (0 for an empty batch).
"""

_GRAD_DOC = """\
    return_grad : bool, default False
        Also return the gradient of the returned value with respect to ``q``:
        ``-p / q`` (0 where ``p == 0`` and where ``q`` was clipped), divided by
        the number of vectors for ``"mean"``. For ``"none"``, row ``i`` of the
        gradient is that of value ``i``. Same shape and dtype as ``q``.
    grad_loss : float or array_like, optional
        The upstream gradient (default 1) the gradient is multiplied by: a
        scalar for a reduced value, an array broadcastable to the returned
        shape otherwise (the batch shape for ``"none"``).
"""

_THREADS_DOC = """\
    n_threads : int or None, default None
        OpenMP threads; see :func:`xent.logsumexp`. Results do not depend on it.
"""

_CONVENTIONS_DOC = """\
    Conventions: a term with ``p == 0`` is 0 (``0 * log 0 = 0``), even where
    ``q == 0``; ``q == 0`` where ``p > 0`` gives ``+inf`` (unless ``eps``
    clips it); a NaN in ``p`` or ``q`` makes the value of its vector NaN and
    no other. Values are computed in float64 (float16 and float32 input
    included) with compensated sums, and returned in the input's dtype.

    The inputs are not checked to be probabilities: checking the ``N x C``
    values would cost a pass over the data (xent's checks are O(N)). Rows
    need not sum to 1 and nothing is renormalised (scipy.stats.entropy
    renormalises); a value outside ``[0, 1]`` is used as given, so a
    negative ``p`` or ``q`` gives NaN (log of a negative number) and ``q > 1``
    a negative term.
"""

_WHERE_DOC = """\
    where : array_like of bool, optional
        optax's ``where``, broadcast against the shape of the probabilities:
        an entry where it is False is left out of its vector's sum (as a
        term of ``p == 0``: 0, with a 0 gradient, whatever its values); a
        mask of the batch shape with a trailing axis of length 1 leaves out
        whole vectors. ``"mean"`` then divides by the number of vectors that
        keep an entry (for class labels: whose label's entry is kept).
        Applied in the kernels, never by copying the input.
"""

_SAMPLE_WEIGHT_DOC = """\
    sample_weight : array_like, optional
        Keras' ``sample_weight``: one weight per vector (the batch shape); each
        vector's value and gradient times its weight, a weight of 0 making a
        vector count for nothing (whatever its values); ``"mean"`` divides by
        the sum of the weights (of the vectors kept by ``where``), as the
        softmax cross-entropy's ``sample_weight`` does (Keras divides by the
        number of vectors), ``"batchmean"`` by the first axis' size.
"""

_DOCS = dict(where=_WHERE_DOC, axis=_AXIS_DOC, eps=_EPS_DOC, reduction=_REDUCTION_DOC, grad=_GRAD_DOC,
             threads=_THREADS_DOC, conventions=_CONVENTIONS_DOC, sample_weight=_SAMPLE_WEIGHT_DOC)


def _rows_of(x, axis):
    return Rows(x, class_axes(integer(axis, "axis"), x.ndim))


_REDUCTIONS = ("none", "sum", "mean")
# kl_divergence's more: PyTorch kl_div's "batchmean" and element-wise "none"
_KL_REDUCTIONS = _REDUCTIONS + ("batchmean", "elementwise")


def _reduction(reduction, allowed=_REDUCTIONS):
    return reduction_mode(reduction, allowed)


def _denominator(rows, reduction, x, n_kept=None):
    """What a reduced value's sum is divided by: the vectors (``"mean"``; with
    ``where``, ``n_kept``: those it keeps an entry of), the size of the first
    axis (``"batchmean"``, PyTorch's), else 1."""
    if reduction == "mean":  # (n_kept: a count, or the kept vectors' sample weights)
        return (rows.n_rows if n_kept is None else n_kept) or 1
    if reduction == "batchmean":
        return (x.shape[0] if x.ndim else 1) or 1
    return 1


def _reduce(per_row, rows, reduction, dtype, x=None, n_kept=None):
    """The returned value from the float64 per-row values."""
    if reduction == "none":
        value = per_row.reshape(rows.batch_shape).astype(dtype)
        return value[()] if value.ndim == 0 else value
    total = float(np.sum(per_row))
    if reduction == "mean" and not rows.n_rows:
        return dtype.type(0.0)
    return dtype.type(total / _denominator(rows, reduction, x, n_kept))


def _mask(where, rows):
    """``where=`` as the (n_rows, C) uint8 view the kernels read, or None."""
    if where is None:
        return None
    return row_operand(mask_array(where), "where", rows, of="the probabilities").view(np.uint8)


def _grad_scale(rows, reduction, grad_loss, x, return_grad, n_kept=None, sw=None):
    """The gradient's factor per row (a stride-0 array for one value; times the
    sample weights sw if given), and an element-wise upstream gradient still to
    apply (``"elementwise"``), or None."""
    gs, gl = _grad_scale_of(rows, reduction, grad_loss, x, return_grad, n_kept)
    if sw is not None and rows.n_rows:
        gs = gs * sw
    return gs, gl


def _grad_scale_of(rows, reduction, grad_loss, x, return_grad, n_kept):
    den = _denominator(rows, reduction, x, n_kept)
    if grad_loss is None or not return_grad:
        return row_constant(max(rows.n_rows, 1), 1.0 / den), None
    gl = real_array(grad_loss, "grad_loss")
    if reduction not in ("none", "elementwise"):
        if gl.ndim != 0:
            raise ValueError(f"grad_loss: expected a scalar for reduction={reduction!r}, "
                             f"got shape {gl.shape}")
        return row_constant(max(rows.n_rows, 1), float(gl) / den), None
    shape = rows.batch_shape if reduction == "none" else x.shape
    try:
        g = np.broadcast_to(gl, shape)
    except ValueError:
        raise ValueError(f"grad_loss: expected a shape broadcastable to {tuple(shape)}, "
                         f"got {gl.shape}") from None
    if reduction == "none":
        return np.ascontiguousarray(g, dtype=np.float64).reshape(-1), None
    return row_constant(max(rows.n_rows, 1), 1.0), g


def _weighted(rows, reduction, kept, sw):
    """With sample weights sw (float64, one per vector, or None): the mean's
    denominator (the weights of the vectors kept: ``kept`` a boolean per
    vector, or None for all), else the count of ``kept`` as before (None:
    every vector)."""
    if sw is None:
        return None if kept is None else int(np.count_nonzero(kept))
    if reduction != "mean":
        return None
    return float(np.sum(sw if kept is None else sw[kept]))


def _apply_weights(sw, per_row, terms, grad):
    """Sample weights on the kernel's outputs (O(N) for the per-vector values
    and the gradient's rows of weight 0; the element terms, one pass): a
    vector of weight 0 counts for nothing, whatever its values."""
    if sw is None:
        return per_row
    zero = sw == 0
    with np.errstate(invalid="ignore", over="ignore"):
        per_row = np.where(zero, 0.0, per_row * sw)
    if terms is not None:
        np.multiply(terms, sw[:, None], out=terms, casting="unsafe")
        terms[zero] = 0
    if grad is not None:
        grad[zero] = 0  # (the kernel scaled the others by their weight)
    return per_row


def _clip_bounds(eps, upper):
    if eps is None:
        return False, 0.0, 1.0
    return True, eps, upper


def _probs(mode, p, q, rows, clip, lo, hi, reduction, return_grad, n_threads, grad_dtype,
           raw=False, grad_loss=None, where=None, smooth=0.0, renorm=False, focal=(0.0, None),
           sample_weight=None):
    """Run the probability-row kernel on p and q (same shape, float) and package
    (with ``raw``, return the float64 per-row values unreduced)."""
    dtype = np.result_type(p.dtype, q.dtype)
    cdt = compute_dtype(dtype)
    nt = _threads.threads_for(n_threads, rows.n_rows, p.size)
    wv = _mask(where, rows)
    sw = sample_weights(sample_weight, rows.batch_shape)
    kept = None
    if wv is not None and reduction == "mean":  # (the vectors that keep an entry)
        kept = wv.any(axis=1) if wv.shape[1] else np.zeros(rows.n_rows, bool)
    n_kept = _weighted(rows, reduction, kept, sw)
    gs, gl_elements = _grad_scale(rows, reduction, grad_loss, q, return_grad, n_kept, sw)
    # rows may be those of p or of q (same shape and axes): wrap each explicitly
    pd = Rows(p, rows.axes).data(cdt)
    qd = pd if q is p else Rows(q, rows.axes).data(cdt)
    per_row = np.empty(rows.n_rows, dtype=np.float64)
    grad = np.empty(rows.shape2d, dtype=cdt) if return_grad else None
    terms = np.empty(rows.shape2d, dtype=cdt) if reduction == "elementwise" else None
    kernel("probs_rows", cdt)(pd, qd, mode, clip, lo, hi, gs, per_row, grad, nt, terms, wv, smooth,
                              renorm, *focal)
    if raw:
        return per_row
    per_row = _apply_weights(sw, per_row, terms, grad)
    if terms is not None:
        value = rows.to_full(terms).astype(dtype, copy=False)
        value = value[()] if value.ndim == 0 else value
    else:
        value = _reduce(per_row, rows, reduction, dtype, q, n_kept)
    if not return_grad:
        return value
    grad = rows.to_full(grad)
    if gl_elements is not None:  # (an element-wise upstream gradient: one more pass)
        np.multiply(grad, gl_elements, out=grad, casting="unsafe")
    return value, deliver(grad, None, grad_dtype)


def _labels(labels, q, rows, clip, lo, hi, reduction, return_grad, n_threads, raw=False,
            grad_loss=None, where=None, renorm=False, focal=(0.0, None), sample_weight=None):
    """Run the label kernel: -log q[label] per row (labels validated, int64 (n_rows,));
    focal: (gamma, alpha (C,) or None)."""
    cdt = compute_dtype(q.dtype)
    n_touched = q.size if return_grad else rows.n_rows
    nt = _threads.threads_for(n_threads, rows.n_rows, n_touched)
    wv = _mask(where, rows)
    sw = sample_weights(sample_weight, rows.batch_shape)
    kept = None
    if wv is not None and reduction == "mean":  # (the vectors whose label is kept)
        kept = wv[np.arange(rows.n_rows), labels] != 0
    n_kept = _weighted(rows, reduction, kept, sw)
    gs, _ = _grad_scale(rows, reduction, grad_loss, q, return_grad, n_kept, sw)
    qd = rows.data(cdt)
    per_row = np.empty(rows.n_rows, dtype=np.float64)
    grad = np.empty(rows.shape2d, dtype=cdt) if return_grad else None
    kernel("labels_rows", cdt)(labels, qd, clip, lo, hi, gs, per_row, grad, nt, wv, renorm, *focal)
    if raw:
        return per_row
    per_row = _apply_weights(sw, per_row, None, grad)
    value = _reduce(per_row, rows, reduction, q.dtype, None, n_kept)
    if not return_grad:
        return value
    return value, deliver(rows.to_full(grad), None, q.dtype)


def _cross_entropy(p, q, axis, eps, reduction, return_grad, n_threads, upper=1.0, raw=False,
                   grad_loss=None, where=None, label_smoothing=0.0, renormalize=False,
                   gamma=0.0, alpha=None, sample_weight=None):
    """cross_entropy, with the upper clipping bound as a parameter (xent.metrics
    clips to [eps, 1 - eps], as scikit-learn) and, with ``raw``, the float64
    per-row values returned unreduced."""
    q = float_array(q, "q")
    rows = _rows_of(q, axis)
    p_arr = np.asarray(p)
    eps = clip_eps(eps)
    reduction = _reduction(reduction)
    return_grad = boolean(return_grad, "return_grad")
    smooth = real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    renorm = boolean(renormalize, "renormalize")
    clip, lo, hi = _clip_bounds(eps, upper)
    gamma = real_scalar(gamma, "gamma", 0.0)
    # the focal terms (gamma, alpha) only when asked: the plain terms otherwise
    focal = ((gamma, focal_factors(alpha, rows.n_classes)) if gamma != 0 or alpha is not None
             else (0.0, None))
    mode = _k.MODE_FOCAL if focal[1] is not None else _k.MODE_CROSS_ENTROPY
    if p_arr.dtype.kind in "iu":
        if smooth:
            raise ValueError(f"label_smoothing: not with class labels p (give one-hot "
                             f"probabilities to smooth), got {label_smoothing!r}")
        labels = class_labels(p_arr, rows, None, name="p", of="q's")[0]
        return _labels(labels, q, rows, clip, lo, hi, reduction, return_grad, n_threads, raw,
                       grad_loss, where, renorm, focal, sample_weight)
    if p_arr.dtype.kind not in "fb":
        bfloat16_check(p_arr, "p")
        raise TypeError(
            f"p: expected float probabilities (float16, float32 or float64; bools are "
            f"promoted to float64) or integer class labels, got dtype {p_arr.dtype}"
        )
    p_arr = float_array(p_arr, "p")
    same_shape(q, "q", p_arr, "p")
    return _probs(mode, p_arr, q, rows, clip, lo, hi, reduction, return_grad,
                  n_threads, q.dtype, raw, grad_loss, where, smooth, renorm, focal, sample_weight)


@overload
def cross_entropy(p: ArrayLike, q: ArrayLike, *, return_grad: Literal[False] = ...,
                  **options: Unpack[CrossEntropyOptions]) -> FloatResult: ...
@overload
def cross_entropy(p: ArrayLike, q: ArrayLike, *, return_grad: Literal[True],
                  **options: Unpack[CrossEntropyOptions]) -> Tuple[FloatResult, FloatArray]: ...
@overload
def cross_entropy(p: ArrayLike, q: ArrayLike, *, return_grad: bool = ...,
                  **options: Unpack[CrossEntropyOptions]) -> LossResult: ...
@fill_doc(**_DOCS)
@bfloat16_io_of("q")
def cross_entropy(p: ArrayLike, q: ArrayLike, *, axis: int = -1, eps: Optional[float] = None,
                  label_smoothing: float = 0.0, renormalize: bool = False, gamma: float = 0.0,
                  alpha: Optional[ArrayLike] = None, sample_weight: Optional[ArrayLike] = None,
                  where: Optional[ArrayLike] = None, reduction: Reduction = "none",
                  return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                  n_threads: Threads = None) -> LossResult:
    """Cross-entropy ``H(p, q) = -sum p * log(q)`` between probability vectors.

    ``p`` is the reference (true) distribution and ``q`` the model's, in the
    argument order of ``scipy.stats.entropy(pk, qk)``. ``p`` may instead be
    integer class labels, one per vector: then the value is ``-log(q[label])``,
    Keras' sparse categorical cross-entropy on probabilities (PyTorch's
    ``nll_loss`` of ``log(q)``).

    Parameters
    ----------
    p : array_like of float, or of int
        Probabilities, of ``q``'s shape; or integer class labels (any integer
        dtype) of ``q``'s shape without the class axis, each in ``[0, C)``
        (checked, O(N)). The dtype decides, as in PyTorch.
    q : array_like of float16, float32 or float64
        Probabilities (integer and bool arrays are promoted to float64).
%(axis)s%(eps)s    label_smoothing : float in [0, 1], default 0
        Keras' ``label_smoothing`` of probability targets: ``p`` becomes
        ``(1 - label_smoothing) * p + label_smoothing / C`` (``C`` the class
        count). Not with class labels.
    renormalize : bool, default False
        Keras' probability losses: divide each ``q`` by its sum along the
        class axis before clipping (``categorical_crossentropy`` and
        ``sparse_categorical_crossentropy`` with ``from_logits=False`` do);
        the gradient is taken through the division. Keras' loss is
        ``cross_entropy(p, q, eps=1e-7, renormalize=True)`` (Keras also clips
        ``q`` to ``1 - 1e-7`` above, a difference of at most ``1e-7`` per
        unit of target mass).
    gamma : float >= 0, default 0
        The focal loss on probabilities (Lin et al. 2017; Keras'
        ``CategoricalFocalCrossentropy(from_logits=False)``): each term
        becomes ``-alpha_j p_j (1 - q_j)**gamma log(q_j)``, ``q`` taken after
        the renormalisation and the clip (a ``q`` above 1 counts as 1 in
        the power; an integer ``gamma`` up to 4 by products, others as
        ``exp(gamma * log(1 - q))``). 0 with no ``alpha`` is the
        cross-entropy (its own terms, not a power of 1).
    alpha : float or array_like of shape (C,), optional
        The focal loss's per-class factors (a scalar applies to every class;
        None is 1). Keras' default is 0.25.
%(sample_weight)s%(where)s%(reduction)s%(grad)s%(threads)s
    Returns
    -------
    value : numpy scalar or ndarray
        In the result dtype of ``p`` and ``q`` (``q``'s dtype for labels).
    grad : ndarray, only with ``return_grad``
        d(value)/d(q), of ``q``'s shape and dtype. For labels it is
        ``-1 / q[label]`` at the label and 0 elsewhere.

    Notes
    -----
%(conventions)s
    With integer labels only ``q[label]`` is read for the value (a gather, as
    in PyTorch and Keras): NaN or out-of-range values elsewhere in the row do
    not reach it.

    See Also
    --------
    kl_divergence : ``H(p, q) - H(p)``, computed directly.
    entropy : ``H(p) = H(p, p)``.
    xent.softmax_cross_entropy : the same loss from logits.

    Examples
    --------
    Keras' documented example of ``CategoricalCrossentropy`` (which clips
    with ``eps=1e-7``), and the same with labels
    (``SparseCategoricalCrossentropy``). Keras also divides ``y_pred`` by its
    row sum before clipping: ``renormalize=True`` (these rows sum to 1):

    >>> import numpy as np, xent
    >>> q = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    >>> p = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> print(round(float(xent.cross_entropy(p, q, eps=1e-7, reduction="mean")), 3))
    1.177
    >>> print(round(float(xent.cross_entropy(np.array([1, 2]), q, eps=1e-7, reduction="mean")), 3))
    1.177
    >>> value, grad = xent.cross_entropy(p, q, return_grad=True)
    >>> print(grad)
    [[  0.          -1.05263158   0.        ]
     [  0.           0.         -10.        ]]
    """
    return _cross_entropy(p, q, axis, eps, reduction, return_grad, n_threads,
                          grad_loss=grad_loss, where=where, label_smoothing=label_smoothing,
                          renormalize=renormalize, gamma=gamma, alpha=alpha,
                          sample_weight=sample_weight)


@overload
def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int = ..., *,
                  return_grad: Literal[False] = ..., **options: Unpack[KLDivergenceOptions],
                  ) -> FloatResult: ...
@overload
def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int = ..., *, return_grad: Literal[True],
                  **options: Unpack[KLDivergenceOptions]) -> Tuple[FloatResult, FloatArray]: ...
@overload
def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int = ..., *, return_grad: bool = ...,
                  **options: Unpack[KLDivergenceOptions]) -> LossResult: ...
@fill_doc(**_DOCS)
@bfloat16_io_of("q")
def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int = -1, *, log_input: bool = False,
                  log_target: bool = False, eps: Optional[float] = None,
                  sample_weight: Optional[ArrayLike] = None,
                  where: Optional[ArrayLike] = None, reduction: KLReduction = "none",
                  return_grad: bool = False, grad_loss: Optional[ArrayLike] = None,
                  n_threads: Threads = None) -> LossResult:
    """Kullback-Leibler divergence ``KL(p || q) = sum p * log(p / q)``.

    It equals ``H(p, q) - H(p)`` but is computed term by term as
    ``p * log(p / q)`` (not as a difference of two sums, which would cancel),
    falling back to ``p * (log(p) - log(q))`` only where the ratio overflows
    or underflows. Its sum over a vector is that of
    ``scipy.special.rel_entr(p, q)``.

    PyTorch's ``F.kl_div(input, target, reduction, log_target)`` is
    ``kl_divergence(target, input, log_input=True, log_target=log_target,
    reduction=...)`` (note the order: ``p`` is the target), with its
    ``"none"`` as ``"elementwise"``, its ``"batchmean"`` as ``"batchmean"``
    and its ``"mean"`` (over elements) as ``"elementwise"`` then a mean.

    Parameters
    ----------
    p : array_like of float16, float32 or float64
        The reference distribution(s) (log-probabilities with ``log_target``).
    q : array_like of float16, float32 or float64
        The approximating distribution(s), of ``p``'s shape
        (log-probabilities with ``log_input``).
%(axis)s    log_input : bool, default False
        ``q`` holds ``log q`` (PyTorch's ``input``); the terms are then
        ``p * (log p - q)`` and the gradient is with respect to ``log q``:
        ``-p``. Not with ``eps``.
    log_target : bool, default False
        ``p`` holds ``log p`` (PyTorch's ``log_target=True``): the terms are
        ``exp(p) * (p - log q)``.
%(eps)s        ``p`` itself is never clipped.
%(sample_weight)s%(where)s    reduction : {"none", "sum", "mean", "batchmean", "elementwise"}, default "none"
        As for :func:`cross_entropy`, and: ``"batchmean"`` the sum divided by
        the size of the first axis (PyTorch's; for a 1-D input that is the
        class count, as in PyTorch), ``"elementwise"`` the terms themselves,
        of ``q``'s shape (PyTorch's ``"none"``).
%(grad)s%(threads)s
    Returns
    -------
    value : numpy scalar or ndarray
        In the result dtype of ``p`` and ``q``.
    grad : ndarray, only with ``return_grad``
        d(value)/d(q) (d/d log q with ``log_input``), of ``q``'s shape and
        dtype (the same as for :func:`cross_entropy`: ``H(p)`` does not
        depend on ``q``).

    Notes
    -----
%(conventions)s
    The value is not clamped at 0: for vectors that do not sum to 1 it may be
    negative (``scipy.special.kl_div`` adds ``q - p`` to each term to avoid
    that).

    Examples
    --------
    >>> import numpy as np, xent
    >>> p = np.array([0.5, 0.5, 0.0])
    >>> q = np.array([0.25, 0.5, 0.25])
    >>> print(round(float(xent.kl_divergence(p, q)), 6))
    0.346574
    >>> print(float(xent.kl_divergence(p, p)))
    0.0
    >>> print(float(xent.kl_divergence(p, np.array([1.0, 0.0, 0.0]))))
    inf

    PyTorch's ``F.kl_div(log_q, p, reduction="batchmean")``:

    >>> log_q = np.log(np.array([[0.25, 0.5, 0.25], [0.1, 0.1, 0.8]]))
    >>> pt = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    >>> print(round(float(xent.kl_divergence(pt, log_q, log_input=True, reduction="batchmean")), 6))
    0.289892
    """
    p = float_array(p, "p")
    q = float_array(q, "q")
    same_shape(q, "q", p, "p")
    rows = _rows_of(q, axis)
    log_input = boolean(log_input, "log_input")
    log_target = boolean(log_target, "log_target")
    eps = clip_eps(eps)
    if eps is not None and log_input:
        raise ValueError(f"eps: not with log_input=True (q holds log q), got eps={eps!r}")
    reduction = _reduction(reduction, _KL_REDUCTIONS)
    return_grad = boolean(return_grad, "return_grad")
    clip, lo, hi = _clip_bounds(eps, 1.0)
    mode = _k.MODE_KL | (_k.MODE_LOG_Q if log_input else 0) | (_k.MODE_LOG_P if log_target else 0)
    return _probs(mode, p, q, rows, clip, lo, hi, reduction, return_grad, n_threads, q.dtype,
                  grad_loss=grad_loss, where=where, sample_weight=sample_weight)


@fill_doc(**_DOCS)
@bfloat16_io
def entropy(p: ArrayLike, axis: int = -1, *, where: Optional[ArrayLike] = None,
            reduction: Reduction = "none", n_threads: Threads = None) -> FloatResult:
    """Shannon entropy ``H(p) = -sum p * log(p)`` of probability vectors, in nats.

    Parameters
    ----------
    p : array_like of float16, float32 or float64
        Probabilities (integer and bool arrays are promoted to float64).
%(axis)s%(where)s%(reduction)s%(threads)s
    Returns
    -------
    value : numpy scalar or ndarray
        In ``p``'s dtype.

    Notes
    -----
%(conventions)s
    Divide by ``log(2)`` for bits. Unlike ``scipy.stats.entropy``, ``p`` is not
    renormalised.

    Examples
    --------
    >>> import numpy as np, xent
    >>> print(round(float(xent.entropy(np.array([0.5, 0.5]))), 6))
    0.693147
    >>> xent.entropy(np.array([[1.0, 0.0], [0.25, 0.75]])).round(6)
    array([0.      , 0.562335])
    """
    p = float_array(p, "p")
    rows = _rows_of(p, axis)
    reduction = _reduction(reduction)
    return _probs(_k.MODE_ENTROPY, p, p, rows, False, 0.0, 1.0, reduction, False, n_threads,
                  p.dtype, where=where)
