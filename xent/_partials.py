"""Partial statistics: the softmax family over logits split along the class axis.

When one row's classes live in several blocks (Dask chunks, tensor-parallel
shards, MPI ranks), each block is reduced to a few float64 statistics per
row (:func:`softmax_partials`), the statistics of a row's blocks are merged
in any tree (:func:`merge_partials`, associative and ``-inf`` safe), and
from the merged statistics come the log-sum-exp, the loss, and each block's
softmax or gradient with no further communication. ``xent.dask`` is built on
these functions; they are engine independent (NumPy in, NumPy out).

The kernels are ``src/partials.pxi`` (compiled, vectorised, the GIL
released); this module validates and computes the O(N) per-row terms.
"""

from __future__ import annotations

import types
from typing import Any, Optional

import numpy as np

from . import _kernels as _k
from ._bfloat16 import bfloat16_io
from . import _threads
from ._dispatch import kernel
from ._validate import (
    ignore_index_value,
    Rows,
    check_out,
    class_labels,
    class_weights,
    fill_doc,
    compute_dtype,
    float_array,
    integer,
    real_array,
    real_scalar,
    reduction_mode,
    sample_weights,
    target_kind,
)
from ._typing import ArrayLike, FloatArray, Threads

#: The statistics per row of a block: its max, the sum of the other exps,
#: the target logit, the shifted target sum and the target mass.
PARTIAL_STATS = int(_k.PARTIAL_STATS)

_TARGET_DOC = """\
    target : array_like of int or float, optional
        Integer class indices of the whole row (``0 <= target < n_classes``,
        or ``ignore_index``; the block's batch shape), or the block's columns
        of class probabilities (float, the block's shape).
    n_classes : int
        The row's total class count ``C`` (label smoothing's ``eps / C``, the
        labels' range). Default for ``softmax_partials``: ``class_offset`` plus
        the block's classes.
    weight : array_like, shape (n_classes,), optional
        The per-class weights of the whole row (each block uses its slice).
    ignore_index, label_smoothing :
        As :func:`xent.softmax_cross_entropy`.
"""


def _block(x, name="logits"):
    x = float_array(x, name)
    if x.ndim < 1:
        raise ValueError(f"{name}: expected at least one dimension (the class axis, last), "
                         f"got a 0-d array")
    return x, Rows(x, (x.ndim - 1,))


def _class_count(n_classes, offset, c):
    n = offset + c if n_classes is None else integer(n_classes, "n_classes")
    if n < 1:
        raise ValueError(f"n_classes: expected at least one class in the row, got {n}")
    if n < offset + c:
        raise ValueError(f"n_classes: expected at least class_offset + the block's classes, "
                         f"{offset + c}, got {n}")
    return n


def _n_classes(n_classes):
    if n_classes is None:
        raise TypeError("n_classes: expected the row's class count (an int), got None")
    n = integer(n_classes, "n_classes")
    if n < 1:
        raise ValueError(f"n_classes: expected at least one class in the row, got {n}")
    return n


def _probs_of_block(target, rows):
    """A float target of a block call must be the block's probabilities."""
    t = np.asarray(target) if target is not None else None
    if t is not None and t.dtype.kind == "f" and t.shape != rows.shape:
        raise ValueError(f"target: float targets are the block's class probabilities and must have "
                         f"its shape {rows.shape}, got {t.shape}")


def _offset(class_offset):
    off = integer(class_offset, "class_offset")
    if off < 0:
        raise ValueError(f"class_offset: expected an integer >= 0, got {off}")
    return off


def _targets(target, rows, n_classes, ignore_index):
    """(labels int64 or None, probs rows or None, ignore) of a block's target."""
    ignore = ignore_index_value(ignore_index)
    if not -(2**63) <= ignore < 2**63:
        raise ValueError(f"ignore_index: expected a 64-bit integer, got {ignore}")
    if target is None:
        return None, None, ignore
    kind, t = target_kind(target, rows)
    if kind == "probs":
        return None, t, ignore
    whole = types.SimpleNamespace(batch_shape=rows.batch_shape, n_classes=n_classes,
                                  shape=rows.batch_shape + (n_classes,))
    labels, _ = class_labels(t, whole, ignore)
    return np.require(labels, np.int64, ["C", "A"]), t, ignore  # (the kernels: aligned)


def _coefficients(weight, n_classes, offset, c, eps, probs):
    """The block's (v, u): probability mass factor (1 - eps) w_j, smoothing eps / C w_j."""
    w = class_weights(weight, n_classes)
    if w is not None:
        w = np.ascontiguousarray(w[offset:offset + c], dtype=np.float64)
    ones = np.ones(c) if w is None else w
    u = ones * (eps / n_classes) if eps else None
    v = ones * (1.0 - eps) if probs else None
    return v, u


def _stats(partials, name="partials"):
    st = np.asarray(partials)
    if st.dtype != np.float64:
        raise TypeError(f"{name}: expected float64 statistics (softmax_partials), got dtype {st.dtype}")
    if st.ndim < 1 or st.shape[-1] == 0 or st.shape[-1] % PARTIAL_STATS:
        raise ValueError(f"{name}: expected a last axis of {PARTIAL_STATS} statistics (or a multiple, "
                         f"blocks side by side), got shape {st.shape}")
    return st


@fill_doc(target=_TARGET_DOC)
@bfloat16_io
def softmax_partials(logits: ArrayLike, target: Optional[ArrayLike] = None, *,
                     class_offset: int = 0, n_classes: Optional[int] = None,
                     weight: Optional[ArrayLike] = None, ignore_index: int = -100,
                     label_smoothing: float = 0.0, return_exps: bool = False,
                     n_threads: Threads = None) -> Any:
    """Per-row statistics of a block of classes, to be merged with the other blocks'.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64, shape (..., C_b)
        The block: classes ``[class_offset, class_offset + C_b)`` of each row,
        the class axis last.
    class_offset : int, default 0
        The row's index of the block's first class.
%(target)s    return_exps : bool, default False
        Also return the block's ``exp(x_j - m)`` (its own maximum ``m``; in
        the compute dtype, float32 for float16), written in the same pass:
        :func:`softmax_cross_entropy_block_grad` (``exps=``) then turns them
        into the gradient in place, with no second ``exp``.
    n_threads : int or None, default None
        OpenMP threads, as :func:`xent.logsumexp`. Results do not depend on it.

    Returns
    -------
    ndarray of float64, shape (..., PARTIAL_STATS)
        Per row: the block's maximum ``m``; the sum of ``exp(x_j - m)`` over
        its entries other than its first maximum; the target's logit if the
        label falls in the block (else 0); the sum of the class-only target
        coefficients times ``x_j - m`` (label smoothing, probabilities); and
        those coefficients' sum. Merge the blocks' statistics with
        :func:`merge_partials`; an empty or all ``-inf`` block is the merge's
        identity.
    exps : ndarray, only with ``return_exps``
        The block's shape.

    Examples
    --------
    >>> import numpy as np, xent
    >>> x = np.array([[2.0, 0.5, -1.0, 3.0]])
    >>> st = xent.merge_partials(xent.softmax_partials(x[:, :2], n_classes=4),
    ...                          xent.softmax_partials(x[:, 2:], class_offset=2))
    >>> bool(np.isclose(xent.logsumexp_from_partials(st)[0], xent.logsumexp(x)[0]))
    True
    """
    x, rows = _block(logits)
    off = _offset(class_offset)
    c = rows.n_classes
    n = _class_count(n_classes, off, c)
    eps = real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    labels, t, ignore = _targets(target, rows, n, ignore_index)
    probs = t if labels is None else None
    v, u = _coefficients(weight, n, off, c, eps, probs is not None)
    cdt = compute_dtype(x.dtype)
    if not isinstance(return_exps, (bool, np.bool_)):
        raise TypeError(f"return_exps: expected a bool, got {return_exps!r}")
    out = np.empty((rows.n_rows, PARTIAL_STATS))
    exps = np.empty(rows.shape2d, dtype=cdt) if return_exps else None
    nt = _threads.threads_for(n_threads, rows.n_rows, x.size)
    pr = None if probs is None else Rows(np.asarray(probs), rows.axes).data(cdt)
    kernel("partial_stats", cdt)(rows.data(cdt), labels, off, ignore, pr, v, u, out, nt, exps)
    st = out.reshape(rows.batch_shape + (PARTIAL_STATS,))
    if exps is None:
        return st
    return st, exps.reshape(rows.shape)


@bfloat16_io
def merge_partials(*partials: ArrayLike, n_threads: Threads = None) -> FloatArray:
    """Merge the statistics of blocks of the same rows (:func:`softmax_partials`).

    ``merge_partials(a, b, c)`` merges the blocks in that order; one array
    whose last axis holds ``k`` blocks' statistics side by side (``k *
    PARTIAL_STATS`` values, as ``np.concatenate(blocks, axis=-1)``) is merged
    the same way. The merge is associative (any tree of merges gives the
    same statistics up to float64 rounding) and ``-inf`` safe.
    """
    if not partials:
        raise TypeError("merge_partials: expected at least one array of statistics, got none")
    sts = [_stats(p, f"partials[{i}]") for i, p in enumerate(partials)]
    batch = sts[0].shape[:-1]
    for i, s in enumerate(sts):
        if s.shape[:-1] != batch:
            raise ValueError(f"partials[{i}]: expected the batch shape {batch} of partials[0], "
                             f"got {s.shape[:-1]}")
    st = sts[0] if len(sts) == 1 else np.concatenate(sts, axis=-1)
    st2 = np.require(st.reshape(-1, st.shape[-1]), requirements=["C", "A"])
    k = st2.shape[1] // PARTIAL_STATS
    if k == 1:
        return np.array(st2.reshape(batch + (PARTIAL_STATS,)))  # (a copy, as every merge)
    out = np.empty((st2.shape[0], PARTIAL_STATS))
    _k.merge_stats(st2, k, out, _threads.threads_for(n_threads, st2.shape[0], st2.size))
    return out.reshape(batch + (PARTIAL_STATS,))


def _merged(partials):
    st = _stats(partials)
    if st.shape[-1] != PARTIAL_STATS:
        raise ValueError(f"partials: expected merged statistics (a last axis of {PARTIAL_STATS}; "
                         f"merge_partials first), got shape {st.shape}")
    return st


@bfloat16_io
def logsumexp_from_partials(partials: ArrayLike) -> FloatArray:
    """The rows' log-sum-exp (float64, the batch shape) from merged statistics."""
    st = _merged(partials)
    with np.errstate(invalid="ignore", divide="ignore"):
        return st[..., 0] + np.log1p(st[..., 1])


def _row_terms(st, target, n_classes, weight, sample_weight, ignore_index, label_smoothing,
               z_loss, grad_loss=None):
    """Per row (flat float64): the loss, and with grad_loss the gradient's
    (f, k, ay) of partial_grad; plus labels/probs for the kernel."""
    batch = st.shape[:-1]
    rows = types.SimpleNamespace(batch_shape=batch, shape=batch + (n_classes,), n_classes=n_classes)
    eps = real_scalar(label_smoothing, "label_smoothing", 0.0, 1.0)
    z = real_scalar(z_loss, "z_loss", 0.0)
    ignore = ignore_index_value(ignore_index)
    s2 = st.reshape(-1, PARTIAL_STATS)
    m, o, xt, ax, a = (s2[:, j] for j in range(PARTIAL_STATS))
    t = np.asarray(target)
    labels = None
    if t.dtype.kind in "iu":
        labels, _ = class_labels(t, rows, ignore)
        labels = np.require(labels, np.int64, ["C", "A"])
    elif t.dtype.kind == "f":
        if t.shape[:-1] != batch or t.ndim != len(batch) + 1:
            raise ValueError(f"target: float targets are class probabilities: expected the batch "
                             f"shape {batch} and a class axis, got shape {t.shape}")
        t = float_array(t, "target")
    else:
        raise TypeError(f"target: expected integer class indices or float class probabilities, "
                        f"got dtype {t.dtype}")
    w = class_weights(weight, n_classes)
    sw = sample_weights(sample_weight, batch)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        log_s = np.log1p(o)
        lse = m + log_s
        if labels is not None:
            kept = labels != ignore
            wt = np.ones(len(labels)) if w is None else np.where(kept, w[np.where(kept, labels, 0)], 0.0)
            ay = np.where(kept, (1.0 - eps) * wt, 0.0)
            # (m - xt: 0 for a label among +inf maxima, the softmax's limit)
            gap = np.where((xt == m) & (m == np.inf), 0.0, m - xt)
            label_term = np.where(ay != 0, ay * (gap + log_s), 0.0)
        else:
            kept = np.ones(len(m), dtype=bool)
            ay = np.zeros(len(m))
            label_term = 0.0
        # (ax is the sum of the nonzero coefficients' terms: used as it is,
        # even when signed target mass sums to a == 0)
        loss = label_term + np.where(a != 0, a * log_s, 0.0) - ax
        if z:
            loss = loss + z * lse * lse
        loss = np.where(np.isnan(m) | np.isnan(o), np.nan, loss)  # (a NaN in the row: NaN)
        if sw is not None:
            loss = np.where(sw != 0, loss * sw, 0.0)  # (a sample of weight 0 counts nothing)
        loss = np.where(kept, loss, 0.0)
    if grad_loss is None:
        return loss.reshape(batch), None
    gl = real_array(grad_loss, "grad_loss")
    try:
        gl = np.broadcast_to(gl, batch).reshape(-1)
    except ValueError:
        raise ValueError(f"grad_loss: expected a scalar or an array broadcastable to the batch shape "
                         f"{batch}, got shape {gl.shape}") from None
    f = gl.astype(np.float64) * (1.0 if sw is None else sw)
    f = np.ascontiguousarray(np.where(kept, f, 0.0))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # (a row of -inf, S = 0: no softmax term, as the in-memory kernels)
        k = np.where(o == -1.0, 0.0, ((ay + a + 2.0 * z * lse) if z else (ay + a)) / (1.0 + o))
        k = np.ascontiguousarray(k)
    return loss.reshape(batch), (f, k, np.ascontiguousarray(ay), labels, t, w, eps)


@bfloat16_io
def softmax_cross_entropy_from_partials(partials: ArrayLike, target: ArrayLike, *,
                                        n_classes: Optional[int] = None,
                                        weight: Optional[ArrayLike] = None,
                                        sample_weight: Optional[ArrayLike] = None,
                                        ignore_index: int = -100, label_smoothing: float = 0.0,
                                        z_loss: float = 0.0, reduction: str = "none"):
    """The softmax cross-entropy of each row from its merged statistics.

    ``partials`` are the merged statistics of every class block
    (:func:`merge_partials`), computed with the same ``target``, ``weight``,
    ``ignore_index`` and ``label_smoothing`` (and ``n_classes``). The
    per-sample loss is that of :func:`xent.softmax_cross_entropy` with those
    options and ``z_loss``, times ``sample_weight`` (0 for ignored samples),
    in float64: the label's term as ``(M - x_t) + log1p(o)``, so a confident
    prediction keeps its relative accuracy. ``reduction``: ``"none"`` (the
    batch shape), ``"sum"``, or ``"mean"`` over this batch's denominator
    (:func:`cross_entropy_denominator`; 0 if it is 0). A mean over several
    batches is the sum of their sums over the sum of their denominators.
    """
    st = _merged(partials)
    reduction = reduction_mode(reduction)
    n = _n_classes(n_classes)
    loss, _ = _row_terms(st, target, n, weight, sample_weight, ignore_index, label_smoothing, z_loss)
    if reduction == "none":
        return loss
    total = float(_k.loss_sum(np.ascontiguousarray(loss.reshape(-1))))
    if reduction == "sum":
        return np.float64(total)
    d = cross_entropy_denominator(target, n_classes=n, weight=weight, sample_weight=sample_weight,
                                  ignore_index=ignore_index)
    return np.float64(0.0 if d == 0 else total / d)


@bfloat16_io
def cross_entropy_denominator(target: ArrayLike, *, n_classes: Optional[int] = None,
                              weight: Optional[ArrayLike] = None,
                              sample_weight: Optional[ArrayLike] = None,
                              ignore_index: int = -100) -> float:
    """PyTorch's denominator of the ``"mean"`` reduction for these targets:
    the sum over non-ignored samples of ``sample_weight * weight[target]`` for
    class indices (their count without weights), the sum of the sample
    weights (the sample count) for probabilities (the batch shape is then
    ``target.shape[:-1]``)."""
    t = np.asarray(target)
    n = _n_classes(n_classes)
    ignore = ignore_index_value(ignore_index)
    if t.dtype.kind == "f":
        batch = t.shape[:-1]
    elif t.dtype.kind in "iu":
        batch = t.shape
    else:
        raise TypeError(f"target: expected integer class indices or float class probabilities, "
                        f"got dtype {t.dtype}")
    sw = sample_weights(sample_weight, batch)
    if t.dtype.kind == "f":
        return float(np.prod(batch)) if sw is None else float(np.sum(sw))
    rows = types.SimpleNamespace(batch_shape=batch, shape=batch + (n,), n_classes=n)
    labels, _ = class_labels(t, rows, ignore)
    kept = labels != ignore
    w = class_weights(weight, n)
    if w is None:
        per = np.ones(len(labels))
    else:
        per = w[np.where(kept, labels, 0)] if len(labels) else np.zeros(0)
    per = np.where(kept, per, 0.0)
    return float(np.sum(per)) if sw is None else float(np.dot(per, sw))


@bfloat16_io
def softmax_cross_entropy_block_grad(logits: ArrayLike, partials: ArrayLike, target: ArrayLike, *,
                                     class_offset: int = 0, n_classes: Optional[int] = None,
                                     weight: Optional[ArrayLike] = None,
                                     sample_weight: Optional[ArrayLike] = None,
                                     ignore_index: int = -100, label_smoothing: float = 0.0,
                                     z_loss: float = 0.0, grad_loss: ArrayLike = 1.0,
                                     exps: Optional[FloatArray] = None,
                                     block_partials: Optional[ArrayLike] = None,
                                     out: Optional[FloatArray] = None,
                                     n_threads: Threads = None) -> FloatArray:
    """The gradient of ``sum_i grad_loss_i * loss_i`` with respect to a class block.

    ``loss_i`` is the per-sample loss of
    :func:`softmax_cross_entropy_from_partials` (same options), ``partials``
    the rows' merged statistics, ``logits`` the block of classes
    ``[class_offset, class_offset + C_b)`` (class axis last) and ``target``
    the labels of the whole rows or the block's probability columns. For the
    ``"mean"`` reduction pass ``grad_loss = 1 / denominator``
    (:func:`cross_entropy_denominator`). One fused pass over the block:
    ``g_j = f (k exp(x_j - M) - a_j)``; ``out`` (the block's shape and dtype;
    may be ``logits`` itself) receives it.

    ``exps`` with ``block_partials``: the block's exps and statistics from
    ``softmax_partials(..., return_exps=True)``; the gradient is then made
    from them (each row rescaled by ``exp(m - M)``), no ``exp`` taken and
    ``logits`` not read (it may be None); ``out=exps`` writes it in place.
    """
    if exps is not None or block_partials is not None:
        if exps is None or block_partials is None:
            raise TypeError("exps, block_partials: expected both (softmax_partials(..., "
                            "return_exps=True) returns them) or neither")
        x, rows = _block(exps, "exps")
        if logits is not None and np.shape(logits) != rows.shape:
            raise ValueError(f"exps: expected the logits' shape {np.shape(logits)}, got {rows.shape}")
        bst = _merged(block_partials)
        if bst.shape[:-1] != rows.batch_shape:
            raise ValueError(f"block_partials: expected the exps' batch shape {rows.batch_shape}, "
                             f"got {bst.shape[:-1]}")
    else:
        x, rows = _block(logits)
        bst = None
    st = _merged(partials)
    if st.shape[:-1] != rows.batch_shape:
        raise ValueError(f"partials: expected the logits' batch shape {rows.batch_shape}, "
                         f"got {st.shape[:-1]}")
    off = _offset(class_offset)
    n = _class_count(n_classes, off, rows.n_classes)
    _probs_of_block(target, rows)
    # (probabilities: the rows' target mass is in the statistics, the
    # per-element coefficients come from the block's columns)
    _, (f, k, ay, labels, t, _, eps) = _row_terms(
        st, target, n, weight, sample_weight, ignore_index, label_smoothing, z_loss, grad_loss)
    probs = None if labels is not None else t
    v, u = _coefficients(weight, n, off, rows.n_classes, eps, probs is not None)
    if bst is not None:
        m_b, m = bst.reshape(-1, PARTIAL_STATS)[:, 0], st.reshape(-1, PARTIAL_STATS)[:, 0]
        with np.errstate(invalid="ignore", over="ignore"):
            # (equal maxima, infinite ones included: 1; no softmax term: 0)
            factor = np.where(m_b == m, 1.0, np.exp(m_b - m))
            k = np.ascontiguousarray(np.where((k == 0) | (factor == 0), 0.0, k * factor))
    given = ("exps", exps) if bst is not None else ("logits", logits)
    others = [("partials", partials), ("target", target), ("weight", weight),
              ("sample_weight", sample_weight), ("grad_loss", grad_loss),
              ("block_partials", block_partials)]
    if bst is not None:
        others.append(("logits", logits))
    return _write_block(x, rows, st, labels, off, probs, v, u, f, k, ay, out, n_threads,
                        bst is not None, given, others)


@bfloat16_io
def nll_loss_from_partials(partials: ArrayLike, target: Optional[ArrayLike], *,
                           n_classes: Optional[int] = None,
                           weight: Optional[ArrayLike] = None,
                           sample_weight: Optional[ArrayLike] = None, ignore_index: int = -100,
                           label_smoothing: float = 0.0) -> FloatArray:
    """:func:`xent.nll_loss` per sample (float64, the batch shape) from the
    merged statistics of blocks of log-probabilities (:func:`softmax_partials`
    of the blocks, with the same options): ``-(a_y log p_y + sum_j a_j log p_j)``
    as ``-(a_y x_t + ax + a M)``. ``target``: the labels, or None for
    probability targets (their mass is in the statistics).

    A row without smoothing mass (class labels, ``label_smoothing=0``) reads
    only its label's entry, as :func:`xent.nll_loss` (a NaN elsewhere does
    not count). A row with smoothing or probability mass is NaN when it holds
    a NaN or a ``+inf`` anywhere, even at a class of no mass: the merged
    statistics do not record which entries those are (:func:`xent.nll_loss`
    gives ``-inf`` for a ``+inf`` under mass, and ignores the classes of no
    mass)."""
    st = _merged(partials)
    n = _n_classes(n_classes)
    t = np.zeros(st.shape[:-1] + (0,)) if target is None else target
    # (the terms with z_loss = 0; the softmax's log-sum-exp is not used)
    _, (f, _k2, ay, labels, _, _, _) = _row_terms(st, t, n, weight, sample_weight, ignore_index,
                                                  label_smoothing, 0.0, 1.0)
    s2 = st.reshape(-1, PARTIAL_STATS)
    m, o, xt, ax, a = (s2[:, j] for j in range(PARTIAL_STATS))
    with np.errstate(invalid="ignore", over="ignore"):
        # sum_j a_j x_j as ax + a M about the row's max; NaN where the max is
        # not finite or a NaN is in the row (m or o NaN): the statistics do not
        # say which entries the mass is on. A row without smoothing mass
        # (a == 0) reads only its label's entry, as the in-memory loss does.
        smooth = np.where(a != 0, ax + a * m, 0.0)
        smooth = np.where((a != 0) & (np.isnan(m) | np.isnan(o) | (m == np.inf)), np.nan, smooth)
        loss = -(np.where(ay != 0, ay * xt, 0.0) + smooth)
        loss = np.where(f != 0, loss * f, 0.0)
    return loss.reshape(st.shape[:-1])


@bfloat16_io
def nll_loss_block_grad(log_probs: ArrayLike, partials: ArrayLike, target: ArrayLike, *,
                        class_offset: int = 0, n_classes: Optional[int] = None,
                        weight: Optional[ArrayLike] = None,
                        sample_weight: Optional[ArrayLike] = None, ignore_index: int = -100,
                        label_smoothing: float = 0.0, grad_loss: ArrayLike = 1.0,
                        out: Optional[FloatArray] = None, n_threads: Threads = None) -> FloatArray:
    """The gradient of ``sum_i grad_loss_i * nll_i`` with respect to a class
    block of log-probabilities: ``-grad_loss_i * sample_weight_i * a_ij``
    (the arguments as :func:`softmax_cross_entropy_block_grad`)."""
    x, rows = _block(log_probs, "log_probs")
    st = _merged(partials)
    if st.shape[:-1] != rows.batch_shape:
        raise ValueError(f"partials: expected the log_probs' batch shape {rows.batch_shape}, "
                         f"got {st.shape[:-1]}")
    _probs_of_block(target, rows)
    off = _offset(class_offset)
    n = _class_count(n_classes, off, rows.n_classes)
    _, (f, k, ay, labels, t, _, eps) = _row_terms(
        st, target, n, weight, sample_weight, ignore_index, label_smoothing, 0.0, grad_loss)
    probs = None if labels is not None else t
    v, u = _coefficients(weight, n, off, rows.n_classes, eps, probs is not None)
    return _write_block(x, rows, st, labels, off, probs, v, u, f, np.zeros_like(k), ay, out,
                        n_threads, False, ("log_probs", log_probs),
                        [("partials", partials), ("target", target), ("weight", weight),
                         ("sample_weight", sample_weight), ("grad_loss", grad_loss)])


@bfloat16_io
def softmax_from_partials(logits: ArrayLike, partials: ArrayLike, *,
                          out: Optional[FloatArray] = None, n_threads: Threads = None) -> FloatArray:
    """The softmax of a class block of rows, from the rows' merged statistics
    (:func:`merge_partials`): ``exp(x_j - M) / S``, one pass, in the block's
    dtype (``out`` may be ``logits``)."""
    x, rows = _block(logits)
    st = _merged(partials)
    if st.shape[:-1] != rows.batch_shape:
        raise ValueError(f"partials: expected the logits' batch shape {rows.batch_shape}, "
                         f"got {st.shape[:-1]}")
    s2 = st.reshape(-1, PARTIAL_STATS)
    ones = np.ones(rows.n_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ascontiguousarray(np.where(s2[:, 1] == -1.0, 0.0, 1.0 / (1.0 + s2[:, 1])))
    return _write_block(x, rows, st, None, 0, None, None, None, ones, k, ones, out, n_threads,
                        False, ("logits", logits), [("partials", partials)])


@bfloat16_io
def log_softmax_from_partials(logits: ArrayLike, partials: ArrayLike) -> FloatArray:
    """The log-softmax of a class block of rows, ``(x_j - M) - log1p(o)``,
    from the rows' merged statistics, in the block's dtype."""
    x, rows = _block(logits)
    st = _merged(partials)
    if st.shape[:-1] != rows.batch_shape:
        raise ValueError(f"partials: expected the logits' batch shape {rows.batch_shape}, "
                         f"got {st.shape[:-1]}")
    m = st[..., :1].astype(x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_s = np.log1p(st[..., 1:2])
        # (an entry at an infinite maximum: 0 - log k, the limit; a row of -inf: -inf)
        r = np.where(x == m, 0, x - m).astype(x.dtype) - log_s.astype(x.dtype)
        r = np.where(st[..., 1:2] == -1.0, -np.inf, r)
    return r.astype(x.dtype, copy=False)


def _write_block(x, rows, st, labels, off, probs, v, u, f, k, ay, out, n_threads, from_exps=False,
                 given=(), others=()):
    """The kernel's call; ``given``: (name, the caller's array) out may be
    (in place), ``others``: (name, value) arguments out must not overlap."""
    cdt = compute_dtype(x.dtype)
    if out is not None:
        check_out(out, "out", x.shape, x.dtype, [given] if given else [], in_place_ok=True)
        check_out(out, "out", x.shape, x.dtype, list(others))
    target = rows.direct_full(out, cdt) if out is not None else None
    g = target if target is not None else np.empty(rows.shape2d, dtype=cdt)
    pr = None if probs is None else Rows(np.asarray(probs), rows.axes).data(cdt)
    s2 = np.require(st.reshape(-1, PARTIAL_STATS), requirements=["C", "A"])
    nt = _threads.threads_for(n_threads, rows.n_rows, x.size)
    kernel("partial_grad", cdt)(rows.data(cdt), s2, labels, off, pr, v, u, f, k, ay, g, nt, from_exps)
    res = g.reshape(rows.shape)
    if x.dtype != cdt:
        res = res.astype(x.dtype)
    if out is not None and target is None:
        out[...] = res
        return out
    return out if out is not None else res
