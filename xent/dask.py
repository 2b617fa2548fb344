"""xent on Dask arrays: the losses over logits chunked along rows and classes.

``import xent.dask as xd`` (``pip install "xent[dask]"``; the core never
imports dask). Each function has the signature and semantics of the NumPy
function of the same name, takes dask arrays (or NumPy arrays, wrapped) and
returns dask arrays: nothing is computed at call time. A reduced loss is a
0-d dask array, a gradient a dask array chunked like the logits.

How the graph is built (docs/scaling.md):

* rows chunked, the class axis in one chunk: one task per row block calls
  the NumPy function (loss and gradient in one pass); per-sample losses and
  gradients are bit-identical to the in-memory call;
* classes chunked too: each class block is reduced to per-row statistics
  (:func:`xent.softmax_partials`), merged by a tree of ``split_every``
  blocks (:func:`xent.merge_partials`), and each block's gradient is
  computed from the merged statistics (:func:`xent.softmax_cross_entropy_block_grad`)
  with no more communication. The logits are never rechunked or
  concatenated along the class axis; targets and weights are rechunked to
  the logits' row chunks.

A mean is the sum of the losses over the sum of the denominators, each
reduced separately. Inside a task the kernels run on ``n_threads=1`` by
default: Dask supplies the parallelism (``n_threads=None``: xent's own
default in each task, all cores or ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import numbers
import string
from typing import Any, Optional

import numpy as np

import xent as _x
from . import _partials as _p



def _require_dask() -> Any:
    try:
        import dask
        import dask.array
    except ImportError as error:  # (tests/test_dask.py, in a subprocess without dask)
        raise ImportError('xent.dask needs dask: pip install "xent[dask]"') from error
    return dask, dask.array


dask, da = _require_dask()

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "log_loss",
    "log_softmax",
    "logsumexp",
    "multilabel_cross_entropy",
    "nll_loss",
    "softmax",
    "softmax_cross_entropy",
]

_NS = _p.PARTIAL_STATS
_BATCH = string.ascii_lowercase[:20]


# ------------------------------------------------------------------ arguments

def _array(x, name, chunks=None):
    """x as a dask array with known chunks (NumPy input wrapped)."""
    if isinstance(x, da.Array):
        if any(np.isnan(c) for cs in x.chunks for c in cs):
            raise ValueError(f"{name}: the dask array has unknown chunk sizes {x.chunks}; call "
                             f"{name}.compute_chunk_sizes() (or give known chunks) first")
        return x
    a = np.asarray(x)
    return da.from_array(a, chunks=chunks if chunks is not None else a.shape or ())


def _class_axis(x, axis):
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis: xent.dask takes one class axis, an int; got {axis!r}")
    if x.ndim == 0:
        raise ValueError("logits: expected at least one dimension (the class axis), got a 0-d array")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis: expected an axis of the {x.ndim}-d input, got {axis}")
    return int(axis) % x.ndim


def _rows_like(a, name, x, batch_shape):
    """A batch-shaped argument (targets, sample weights) as a dask array in
    the row chunks of x (the class axis last)."""
    if a is None:
        return None
    a = _array(a, name)
    if a.shape == tuple(batch_shape) + (1,) and np.dtype(a.dtype).kind in "iu":
        a = a[..., 0]  # Keras' (B, 1) labels, as the NumPy API
    if a.shape != tuple(batch_shape):
        raise ValueError(f"{name}: expected the logits' batch shape {tuple(batch_shape)} (rows "
                         f"matching the logits'), got {a.shape}")
    return a.rechunk(x.chunks[:-1])


def _like_logits(a, name, x):
    a = _array(a, name)
    if a.shape != x.shape:
        raise ValueError(f"{name}: expected the logits' shape {x.shape}, got {a.shape}")
    return a.rechunk(x.chunks)


def _target(target, x):
    """(target, kind) aligned with x (class axis last): integer labels in the
    row chunks, or float probabilities in x's chunks."""
    t = _array(target, "target")
    kind = np.dtype(t.dtype).kind
    if kind in "iu":
        return _rows_like(t, "target", x, x.shape[:-1]), "labels"
    if kind == "f":
        return _like_logits(t, "target", x), "probs"
    raise TypeError(f"target: expected integer class indices or float class probabilities, "
                    f"got dtype {t.dtype}")


def _class_last(x, name, axis):
    """(x as a dask array of a float dtype, the class axis, x with it last)."""
    x = _array(x, name)
    dt = np.dtype(x.dtype)
    if dt.kind not in "biuf" and not (dt.kind == "V" and dt.name == "bfloat16"):
        raise TypeError(f"{name}: expected a floating-point array (float16, float32 or float64; "
                        f"integers and bools are promoted to float64), got dtype {dt}")
    ax = _class_axis(x, axis)
    return x, ax, (da.moveaxis(x, ax, -1) if ax != x.ndim - 1 else x)


def _idx(x):
    """blockwise indices: batch letters, the class letter."""
    return _BATCH[:x.ndim - 1], "z"


def _offsets(x):
    """The class blocks' first class, one per block (index 'z')."""
    # (each block gets its classes' indices, chunked as x's class axis: its
    # first is the offset; C integers in all, and no alignment to undo)
    return da.arange(x.shape[-1], chunks=(x.chunks[-1],), dtype=np.int64)


def _tree_merge(st, split_every, n_threads):
    """Merge statistics blocks side by side along the last axis (one block of
    PARTIAL_STATS columns per class block) by a tree of split_every."""
    k = split_every or dask.config.get("split_every", None) or 4
    if isinstance(k, dict):
        k = 4
    k = max(2, int(k))
    while st.numblocks[-1] > 1:
        nb = st.numblocks[-1]
        groups = [min(k, nb - i) for i in range(0, nb, k)]
        st = st.rechunk(st.chunks[:-1] + (tuple(g * _NS for g in groups),))
        st = st.map_blocks(_merge_block, n_threads, dtype=np.float64,
                           chunks=st.chunks[:-1] + ((_NS,) * len(groups),))
    return st


def _first_class(off):
    return int(off[0]) if len(off) else 0


def _merge_block(st, n_threads):
    return _p.merge_partials(st, n_threads=n_threads)


def _stats(x, t, kind, n, weight, ignore_index, label_smoothing, split_every, n_threads,
           exps=False):
    """The rows' merged statistics (chunks: x's row chunks, one block of
    PARTIAL_STATS); with exps, also the blocks' (statistics, exps) pairs
    (chunked as x), from which the gradient is made without a second exp."""
    b, z = _idx(x)
    args = [x, b + z, _offsets(x), z]
    if kind == "labels":
        args += [t, b, None, None]
    elif kind == "probs":
        args += [None, None, t, b + z]
    else:
        args += [None, None, None, None]
    kw = dict(n=n, weight=weight, ignore_index=ignore_index, eps=label_smoothing,
              n_threads=n_threads, concatenate=True)
    if not exps:
        st = da.blockwise(_stats_block, b + z, *args, return_exps=False, dtype=np.float64,
                          adjust_chunks={z: _NS}, **kw)
        return _tree_merge(st, split_every, n_threads)
    pair = da.blockwise(_stats_block, b + z, *args, return_exps=True, dtype=x.dtype,
                        meta=np.empty((0,) * x.ndim, x.dtype), **kw)
    st = pair.map_blocks(_first, dtype=np.float64,
                         chunks=x.chunks[:-1] + ((_NS,) * x.numblocks[-1],))
    return _tree_merge(st, split_every, n_threads), pair


def _stats_block(x, off, labels, probs, n, weight, ignore_index, eps, n_threads, return_exps):
    target = labels if labels is not None else probs
    return _p.softmax_partials(x, target, class_offset=_first_class(off), n_classes=n, weight=weight,
                               ignore_index=ignore_index, label_smoothing=eps,
                               return_exps=return_exps, n_threads=n_threads)


def _finish(x_moved, axis, ndim):
    return da.moveaxis(x_moved, -1, axis) if axis != ndim - 1 else x_moved


def _scalar_graph(total, denom, dtype):
    """A 0-d dask array: total / denom (0 where denom is 0), cast to dtype."""
    return da.map_blocks(_mean_value, total, denom, dtype, dtype=dtype, meta=np.empty((), dtype))


def _mean_value(total, denom, dtype):
    d = float(denom)
    return np.asarray(0.0 if d == 0 else float(total) * (1.0 / d), dtype=dtype)


def _result_dtype(x):
    return np.dtype(np.float32) if np.dtype(x.dtype) == np.float16 else np.dtype(x.dtype)


# ------------------------------------------------------ the log-sum-exp family

def logsumexp(x: Any, axis: int = -1, *, keepdims: bool = False, return_grad: bool = False,
              split_every: Optional[int] = None, n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.logsumexp` of a dask array along one class axis (chunked or not)."""
    x, ax, xm = _class_last(x, "x", axis)
    nt = n_threads
    b, z = _idx(xm)
    if xm.numblocks[-1] == 1:
        pair = da.blockwise(_lse_block, b + z, xm, b + z, return_grad=return_grad, n_threads=nt,
                            dtype=x.dtype, meta=np.empty((0,) * xm.ndim, x.dtype))
        lse = _dropped_first(pair, _out_dtype(x))
        grad = pair.map_blocks(_second, dtype=x.dtype) if return_grad else None
    else:
        st = _stats(xm, None, None, xm.shape[-1], None, -100, 0.0, split_every, nt)
        lse = st.map_blocks(_lse_from_stats, _out_dtype(x), drop_axis=xm.ndim - 1,
                            dtype=_out_dtype(x))
        grad = (da.blockwise(_softmax_block, b + z, xm, b + z, st, b + "s", n_threads=nt,
                             dtype=x.dtype, concatenate=True) if return_grad else None)
    if keepdims:
        lse = da.expand_dims(lse, ax)
    if not return_grad:
        return lse
    return lse, _finish(grad, ax, x.ndim)


def _out_dtype(x):
    return np.dtype(x.dtype)


def _first(p):
    return p[0]


def _dropped_first(pair, dtype):
    """The first item of the (per-row, full) pairs of a blockwise call whose
    blocks span the whole last axis: the per-row array, that axis dropped."""
    b = _BATCH[:pair.ndim - 1]
    return da.blockwise(_first_of_list, b, pair, b + "z", dtype=dtype, concatenate=False,
                        meta=np.empty((0,) * (pair.ndim - 1), dtype))


def _first_of_list(blocks):
    return blocks[0][0]


def _second(p):
    return p[1]


def _lse_block(x, return_grad, n_threads):
    r = _x.logsumexp(x, return_grad=return_grad, n_threads=n_threads)
    return r if return_grad else (r, None)


def _lse_from_stats(st, dtype):
    return _p.logsumexp_from_partials(st).astype(dtype)


def _softmax_block(x, st, n_threads):
    return _p.softmax_from_partials(x, st, n_threads=n_threads)


def _log_softmax_block(x, st):
    return _p.log_softmax_from_partials(x, st)


def softmax(x: Any, axis: int = -1, *, split_every: Optional[int] = None,
            n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.softmax` of a dask array along one class axis."""
    return _softmax_like(x, axis, split_every, n_threads, _x.softmax, _softmax_block, True)


def log_softmax(x: Any, axis: int = -1, *, split_every: Optional[int] = None,
                n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.log_softmax` of a dask array along one class axis."""
    return _softmax_like(x, axis, split_every, n_threads, _x.log_softmax, _log_softmax_block, False)


def _softmax_like(x, axis, split_every, n_threads, whole, block, threads):
    x, ax, xm = _class_last(x, "x", axis)
    nt = n_threads
    b, z = _idx(xm)
    if xm.numblocks[-1] == 1:
        r = xm.map_blocks(whole, n_threads=nt, dtype=x.dtype)
    else:
        st = _stats(xm, None, None, xm.shape[-1], None, -100, 0.0, split_every, nt)
        kw = {"n_threads": nt} if threads else {}
        r = da.blockwise(block, b + z, xm, b + z, st, b + "s", dtype=x.dtype, concatenate=True, **kw)
    return _finish(r, ax, x.ndim)


# ------------------------------------------------------ softmax cross-entropy

def _denominator(t, kind, n, weight, sw, ignore_index):
    """The mean's denominator, a 0-d dask array (sum over row blocks)."""
    b = _BATCH[:t.ndim - (1 if kind == "probs" else 0)]
    tt = t if kind == "labels" else t[..., 0]
    args = [tt, b] + ([sw, b] if sw is not None else [])
    per = da.blockwise(_denom_block, b, *args, kind=kind, n=n, weight=weight,
                       ignore_index=ignore_index, has_sw=sw is not None, dtype=np.float64)
    return per.sum()


def _denom_block(t, *sw, kind, n, weight, ignore_index, has_sw):
    s = sw[0] if has_sw else None
    if kind == "probs":
        v = float(t.size) if s is None else float(np.sum(s))
    else:
        v = _p.cross_entropy_denominator(t, n_classes=n, weight=weight, sample_weight=s,
                                         ignore_index=ignore_index)
    # one value per block, spread over its first row (summed by the caller)
    out = np.zeros(t.shape, dtype=np.float64)
    if out.size:
        out.reshape(-1)[0] = v
    return out


def softmax_cross_entropy(logits: Any, target: Any, *, axis: int = -1, weight: Any = None,
                          sample_weight: Any = None, ignore_index: int = -100,
                          label_smoothing: float = 0.0, z_loss: float = 0.0,
                          softcap: Optional[float] = None, reduction: str = "mean",
                          return_grad: bool = False, grad_loss: Any = None,
                          split_every: Optional[int] = None, n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.softmax_cross_entropy` of dask arrays (logits chunked along
    rows and classes). ``softcap`` needs the class axis in one chunk."""
    return _class_loss("softmax_cross_entropy", logits, target, axis, weight, sample_weight,
                       ignore_index, label_smoothing, z_loss, softcap, reduction, return_grad,
                       grad_loss, split_every, n_threads)


def nll_loss(log_probs: Any, target: Any, *, axis: int = -1, weight: Any = None,
             sample_weight: Any = None, ignore_index: int = -100, label_smoothing: float = 0.0,
             reduction: str = "mean", return_grad: bool = False, grad_loss: Any = None,
             split_every: Optional[int] = None, n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.nll_loss` of dask arrays (log-probabilities chunked along rows and classes)."""
    return _class_loss("nll_loss", log_probs, target, axis, weight, sample_weight, ignore_index,
                       label_smoothing, 0.0, None, reduction, return_grad, grad_loss,
                       split_every, n_threads)


def _class_loss(name, logits, target, axis, weight, sample_weight, ignore_index, label_smoothing,
                z_loss, softcap, reduction, return_grad, grad_loss, split_every, n_threads):
    arg = "logits" if name == "softmax_cross_entropy" else "log_probs"
    x, ax, xm = _class_last(logits, arg, axis)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"return_grad: expected a bool, got {return_grad!r}")
    tgt = target
    if _kind_of(target) == "f" and ax != x.ndim - 1:  # (probabilities: the class axis last, too)
        tgt = da.moveaxis(_array(target, "target"), ax, -1)
    t, kind = _target(tgt, xm)
    sw = _rows_like(sample_weight, "sample_weight", xm, xm.shape[:-1])
    n = xm.shape[-1]
    w = None if weight is None else np.asarray(weight)
    nt = n_threads
    b, z = _idx(xm)
    dtype = _result_dtype(x)
    opts = dict(weight=w, ignore_index=ignore_index, label_smoothing=label_smoothing)
    if name == "softmax_cross_entropy":
        opts.update(z_loss=z_loss, softcap=softcap)
    gl = 1.0 if grad_loss is None else grad_loss
    if reduction == "none" and return_grad:
        gl = _rows_like(np.broadcast_to(np.asarray(gl, dtype=np.float64), xm.shape[:-1])
                        if not isinstance(gl, da.Array) else gl, "grad_loss", xm, xm.shape[:-1])
    if reduction == "mean":
        denom = _denominator(t, kind, n, w, sw, ignore_index)
        scale = denom.map_blocks(_reciprocal, dtype=np.float64)
    else:
        denom = scale = None
    tb = b if kind == "labels" else b + z
    swa = [sw, b] if sw is not None else [None, None]

    if xm.numblocks[-1] == 1:
        # rows only: one in-memory call per row block, loss and gradient in one pass
        if reduction == "none" and return_grad:
            sa = [gl, b]
        elif reduction == "mean":
            sa = [scale, ""]
        else:
            sa = [None, None]
        pair = da.blockwise(_whole_block, b + z, xm, b + z, t, tb, *swa, *sa, fn=getattr(_x, name),
                            opts=opts, reduction=reduction, return_grad=return_grad,
                            gl=float(gl) if reduction != "none" else None, n_threads=nt,
                            dtype=dtype, meta=np.empty((0,) * xm.ndim, dtype), concatenate=True)
        rows = _dropped_first(pair, np.float64)
        grad = pair.map_blocks(_second, dtype=x.dtype) if return_grad else None
    else:
        if softcap is not None:
            raise ValueError("softcap: xent.dask applies the cap only with the class axis in one "
                             f"chunk; got {xm.numblocks[-1]} class chunks (chunks {xm.chunks[-1]})")
        # (the cross-entropy's gradient from the exps of the statistics' pass)
        pair = None
        if return_grad and name == "softmax_cross_entropy":
            st, pair = _stats(xm, t, kind, n, w, ignore_index, label_smoothing, split_every, nt,
                              exps=True)
        else:
            st = _stats(xm, t, kind, n, w, ignore_index, label_smoothing, split_every, nt)
        fopts = dict(opts, n_classes=n)
        ta = [t, b] if kind == "labels" else [None, None]
        rows = da.blockwise(_loss_from_stats, b, st, b + "s", *ta, *swa, kind=kind, which=name,
                            opts=fopts, dtype=np.float64, concatenate=True)
        grad = None
        if return_grad:
            if reduction == "none":
                sa = [gl, b]
            elif reduction == "mean":
                sa = [scale, ""]
            else:
                sa = [None, None]
            grad = da.blockwise(_grad_block, b + z, xm if pair is None else pair, b + z, st, b + "s",
                                t, tb, *swa,
                                _offsets(xm), z, *sa, kind=kind, which=name, opts=fopts,
                                reduction=reduction, gl=float(gl) if reduction != "none" else None,
                                n_threads=nt, out_dtype=x.dtype, dtype=x.dtype, concatenate=True,
                                meta=np.empty((0,) * xm.ndim, x.dtype))
    if reduction == "none":
        loss = rows.astype(dtype)
    elif reduction == "sum":
        loss = rows.sum(split_every=split_every).astype(dtype)
    else:
        loss = _scalar_graph(rows.sum(split_every=split_every), denom, dtype)
    if not return_grad:
        return loss
    return loss, _finish(grad, ax, x.ndim)


def _kind_of(target):
    return np.dtype(getattr(target, "dtype", np.asarray(target).dtype)).kind


def _reciprocal(d):
    d = float(d)
    return np.asarray(0.0 if d == 0 else 1.0 / d)


def _whole_block(x, t, sw, s, fn, opts, reduction, return_grad, gl, n_threads):
    if reduction == "none":
        grad_loss = s  # (per-row upstream gradient, or None)
    elif reduction == "mean":
        grad_loss = np.full(x.shape[:-1], gl * float(s))
    else:
        grad_loss = np.full(x.shape[:-1], gl)
    r = fn(x, t, sample_weight=sw, reduction="none", return_grad=return_grad,
           grad_loss=grad_loss if return_grad else None, n_threads=n_threads, **opts)
    loss, grad = r if return_grad else (r, None)
    return np.asarray(loss, dtype=np.float64), grad


def _loss_from_stats(st, t, sw, kind, which, opts):
    o = dict(opts)
    o.pop("softcap", None)
    if which == "nll_loss":
        return _p.nll_loss_from_partials(st, t if kind == "labels" else None, sample_weight=sw, **o)
    if kind == "probs":
        # (the probabilities' mass is in the statistics; only the batch shape is needed)
        return _p.softmax_cross_entropy_from_partials(
            st, np.zeros(st.shape[:-1] + (0,)), sample_weight=sw, **o)
    return _p.softmax_cross_entropy_from_partials(st, t, sample_weight=sw, **o)


def _grad_block(x, st, t, sw, off, s, kind, which, opts, reduction, gl, n_threads, out_dtype):
    if reduction == "none":
        grad_loss = s
    elif reduction == "mean":
        grad_loss = gl * float(s)
    else:
        grad_loss = gl
    o = dict(opts)
    o.pop("softcap", None)
    if isinstance(x, tuple):  # (block statistics, exps): the gradient in place of the exps
        bst, e = x
        g = _p.softmax_cross_entropy_block_grad(
            None, st, t, class_offset=_first_class(off), sample_weight=sw, grad_loss=grad_loss,
            exps=e, block_partials=bst, out=e, n_threads=n_threads, **o)
        return g.astype(out_dtype, copy=False)
    fn = _p.nll_loss_block_grad if which == "nll_loss" else _p.softmax_cross_entropy_block_grad
    return fn(x, st, t, class_offset=_first_class(off), sample_weight=sw, grad_loss=grad_loss,
              n_threads=n_threads, **o)


# ------------------------------------------------------ element-wise losses

def binary_cross_entropy_with_logits(logits: Any, target: Any, *, pos_weight: Any = None,
                                     weight: Any = None, label_smoothing: float = 0.0,
                                     reduction: str = "mean", return_grad: bool = False,
                                     grad_loss: Any = None, n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.binary_cross_entropy_with_logits` of dask arrays, block by block."""
    return _elementwise("binary_cross_entropy_with_logits", "logits", logits, target,
                        dict(pos_weight=pos_weight, weight=weight, label_smoothing=label_smoothing),
                        reduction, return_grad, grad_loss, n_threads)


def binary_cross_entropy(probs: Any, target: Any, *, eps: Optional[float] = None,
                         pos_weight: Any = None, weight: Any = None, label_smoothing: float = 0.0,
                         reduction: str = "mean", return_grad: bool = False, grad_loss: Any = None,
                         n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.binary_cross_entropy` of dask arrays, block by block."""
    return _elementwise("binary_cross_entropy", "probs", probs, target,
                        dict(eps=eps, pos_weight=pos_weight, weight=weight,
                             label_smoothing=label_smoothing),
                        reduction, return_grad, grad_loss, n_threads)


def multilabel_cross_entropy(logits: Any, target: Any, *, class_reduction: str = "sum",
                             pos_weight: Any = None, weight: Any = None, sample_weight: Any = None,
                             label_smoothing: float = 0.0, reduction: str = "mean",
                             return_grad: bool = False, grad_loss: Any = None,
                             n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.multilabel_cross_entropy` of dask arrays (rows chunked; the
    label axis, the last, is taken whole: a per-sample sum over it)."""
    x = _array(logits, "logits")
    if x.numblocks[-1] > 1:
        raise ValueError(f"logits: xent.dask's multilabel_cross_entropy needs the label axis (the "
                         f"last) in one chunk, got chunks {x.chunks[-1]}; rechunk({{-1: -1}})")
    return _elementwise("multilabel_cross_entropy", "logits", x, target,
                        dict(class_reduction=class_reduction, pos_weight=pos_weight, weight=weight,
                             label_smoothing=label_smoothing),
                        reduction, return_grad, grad_loss, n_threads, sample_weight=sample_weight,
                        per_sample=True)


def _elementwise(name, arg, x, target, opts, reduction, return_grad, grad_loss, n_threads,
                 sample_weight=None, per_sample=False):
    x = _array(x, arg)
    t = _like_logits(target, "target", x)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    fn = getattr(_x, name)
    nt = n_threads
    dtype = _result_dtype(x)
    idx = _BATCH[:x.ndim]
    out_idx = idx[:-1] if per_sample else idx
    sw = None
    if per_sample:
        sw = _rows_like(sample_weight, "sample_weight", x, x.shape[:-1])
    gl = 1.0 if grad_loss is None else grad_loss
    if reduction == "mean":
        if per_sample and sw is not None:
            denom = sw.sum(dtype=np.float64)
        else:
            n = int(np.prod(x.shape[:-1] if per_sample else x.shape))
            denom = da.from_array(np.asarray(float(n)), chunks=())
        scale = denom.map_blocks(_reciprocal, dtype=np.float64)
        sa = [scale, ""]
    elif reduction == "none" and return_grad:
        g = grad_loss if isinstance(grad_loss, da.Array) else np.broadcast_to(
            np.asarray(gl, dtype=np.float64), x.shape[:-1] if per_sample else x.shape)
        sa = [_array(g, "grad_loss").rechunk(x.chunks[:-1] if per_sample else x.chunks), out_idx]
    else:
        sa = [None, None]
    swa = [sw, idx[:-1]] if sw is not None else [None, None]
    # per-element weights follow the blocks: pos_weight (one value per column
    # of the last axis) in the last axis' chunks, weight broadcast to x's
    opts = dict(opts)
    pw, w = opts.pop("pos_weight", None), opts.pop("weight", None)
    pwa = [None, None]
    if pw is not None and np.ndim(pw) == 1:
        pwa = [da.from_array(np.asarray(pw), chunks=(x.chunks[-1],)), idx[-1]]
    elif pw is not None:
        opts["pos_weight"] = pw
    wa = [None, None]
    if w is not None and np.ndim(w) > 0:
        wa = [da.broadcast_to(np.asarray(w), x.shape).rechunk(x.chunks), idx]
    elif w is not None:
        opts["weight"] = w
    # per-sample losses: the block's label axis is whole (checked above)
    pair = da.blockwise(_elem_block, idx, x, idx, t, idx, *swa, *sa, *pwa, *wa, fn=fn, opts=opts,
                        reduction=reduction, return_grad=return_grad, per_sample=per_sample,
                        gl=float(gl) if reduction != "none" else None, n_threads=nt, dtype=dtype,
                        meta=np.empty((0,) * x.ndim, dtype), concatenate=True)
    if per_sample:
        rows = _dropped_first(pair, np.float64)
    else:
        rows = pair.map_blocks(_first, dtype=np.float64)
    grad = pair.map_blocks(_second, dtype=x.dtype) if return_grad else None
    if reduction == "none":
        loss = rows.astype(dtype)
    elif reduction == "sum":
        loss = rows.sum().astype(dtype)
    else:
        loss = _scalar_graph(rows.sum(), denom, dtype)
    return (loss, grad) if return_grad else loss


def _elem_block(x, t, sw, s, pw, w, fn, opts, reduction, return_grad, per_sample, gl, n_threads):
    shape = x.shape[:-1] if per_sample else x.shape
    if reduction == "none":
        grad_loss = s
    elif reduction == "mean":
        grad_loss = np.full(shape, gl * float(s))
    else:
        grad_loss = np.full(shape, gl)
    kw = dict(opts)
    if pw is not None:
        kw["pos_weight"] = pw
    if w is not None:
        kw["weight"] = w
    if per_sample:
        kw["sample_weight"] = sw
    r = fn(x, t, reduction="none", return_grad=return_grad,
           grad_loss=grad_loss if return_grad else None, n_threads=n_threads, **kw)
    loss, grad = r if return_grad else (r, None)
    return np.asarray(loss, dtype=np.float64), grad


# ------------------------------------------------------ scikit-learn's log_loss

def log_loss(y_true: Any, y_proba: Any = None, *, normalize: bool = True, sample_weight: Any = None,
             labels: Any = None) -> Any:
    """:func:`xent.metrics.log_loss` (scikit-learn's) of dask arrays: a 0-d
    dask array. The classes are ``labels``, or the sorted unique values of
    ``y_true`` (found lazily, in the graph); the sum of the weighted losses
    over the sum of the weights, never a mean of block means."""
    y = _array(y_true, "y_true")
    if y.ndim != 1:
        raise ValueError(f"y_true: expected a 1-d array of labels, got shape {y.shape}")
    p = _array(y_proba, "y_proba")
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"y_proba: expected {y.shape[0]} rows (those of y_true), got {p.shape[0]}")
    p = p.rechunk((y.chunks[0],) + ((p.shape[1],) if p.ndim == 2 else ()))
    rows = p[..., None] if p.ndim == 1 else p
    sw = None if sample_weight is None else _rows_like(sample_weight, "sample_weight", rows,
                                                       (y.shape[0],))
    classes = da.unique(y) if labels is None else da.from_array(np.asarray(labels).reshape(-1))
    classes = classes.rechunk(-1) if labels is not None else classes
    pidx = "ij" if p.ndim == 2 else "i"
    args = [y, "i", p, pidx, classes, "k"] + ([sw, "i"] if sw is not None else [None, None])
    sums = da.blockwise(_log_loss_block, "i", *args, dtype=np.float64, concatenate=True,
                        adjust_chunks={"i": 2}, meta=np.empty((0,), np.float64))
    total = sums[0::2].sum()
    weight = sums[1::2].sum()
    return da.map_blocks(_log_loss_value, total, weight, normalize, dtype=np.float64,
                         meta=np.empty((), np.float64))


def _log_loss_block(y, p, classes, sw):
    from . import metrics
    if len(y) == 0:
        return np.zeros(2)
    total = metrics.log_loss(y, p, normalize=False, sample_weight=sw, labels=classes)
    return np.array([float(total), float(len(y) if sw is None else np.sum(sw))])


def _log_loss_value(total, weight, normalize):
    if not normalize:
        return np.asarray(float(total))
    return np.asarray(float(total) / float(weight))
