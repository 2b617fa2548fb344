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

import math
import numbers
import string
from typing import Any, Optional

import numpy as np

import xent as _x
from . import _partials as _p



def _require_dask() -> Any:
    try:
        import dask  # type: ignore[import-not-found, unused-ignore]
        import dask.array  # type: ignore[import-not-found, unused-ignore]
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


def _float_input(x, name):
    """x as a dask array of float16/32/64 or bfloat16: integers and bools
    promoted to float64 (as the NumPy functions), anything else TypeError."""
    x = _array(x, name)
    dt = np.dtype(x.dtype)
    if dt.kind in "biu":
        return x.astype(np.float64)
    if dt.kind != "f" and not _is_bf16(dt):
        raise TypeError(f"{name}: expected a floating-point array (float16, float32 or float64; "
                        f"integers and bools are promoted to float64), got dtype {dt}")
    return x


def _class_last(x, name, axis):
    """(x as a dask array of a float dtype, the class axis, x with it last)."""
    x = _float_input(x, name)
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


# ------------------------------------------------------ the log-sum-exp family

def logsumexp(x: Any, axis: int = -1, *, keepdims: bool = False, return_grad: bool = False,
              split_every: Optional[int] = None, n_threads: Optional[int] = 1) -> Any:
    """:func:`xent.logsumexp` of a dask array along one class axis (chunked or not)."""
    x, ax, xm = _class_last(x, "x", axis)
    _check_split(split_every)
    _x.logsumexp(np.empty((0,) + xm.shape[1:], x.dtype), keepdims=keepdims,
                 return_grad=return_grad, n_threads=n_threads)  # (the options, at call time)
    nt = n_threads
    b, z = _idx(xm)
    if xm.numblocks[-1] == 1:
        pair = da.blockwise(_lse_block, b + z, xm, b + z, return_grad=return_grad, n_threads=nt,
                            dtype=x.dtype, meta=np.empty((0,) * xm.ndim, x.dtype))
        lse = _dropped_first(pair, _out_dtype(x))
        grad = pair.map_blocks(_second, dtype=x.dtype) if return_grad else None
    else:
        xs = xm.astype(np.float32) if _is_bf16(xm.dtype) else xm  # (bfloat16: widened blocks)
        st = _stats(xs, None, None, xm.shape[-1], None, -100, 0.0, split_every, nt)
        lse = st.map_blocks(_lse_from_stats, _out_dtype(x), drop_axis=xm.ndim - 1,
                            dtype=_out_dtype(x))
        grad = (da.blockwise(_softmax_block, b + z, xs, b + z, st, b + "s", n_threads=nt,
                             dtype=xs.dtype, concatenate=True).astype(x.dtype)
                if return_grad else None)
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
    _check_split(split_every)
    whole(np.empty((0,) + xm.shape[1:], x.dtype), n_threads=n_threads)  # (the options, now)
    nt = n_threads
    b, z = _idx(xm)
    if xm.numblocks[-1] == 1:
        r = xm.map_blocks(whole, n_threads=nt, dtype=x.dtype)
    else:
        xs = xm.astype(np.float32) if _is_bf16(xm.dtype) else xm  # (bfloat16: widened blocks)
        st = _stats(xs, None, None, xm.shape[-1], None, -100, 0.0, split_every, nt)
        kw = {"n_threads": nt} if threads else {}
        r = da.blockwise(block, b + z, xs, b + z, st, b + "s", dtype=xs.dtype, concatenate=True,
                         **kw).astype(x.dtype)
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
    tgt = target
    if _kind_of(target) == "f" and ax != x.ndim - 1:  # (probabilities: the class axis last, too)
        tgt = da.moveaxis(_array(target, "target"), ax, -1)
    t, kind = _target(tgt, xm)
    sw = _rows_like(sample_weight, "sample_weight", xm, xm.shape[:-1])
    n = xm.shape[-1]
    w = None if weight is None else np.asarray(weight)
    opts = dict(weight=w, ignore_index=ignore_index, label_smoothing=label_smoothing)
    if name == "softmax_cross_entropy":
        opts.update(z_loss=z_loss, softcap=softcap)
    fn = getattr(_x, name)
    # every option checked now, by the NumPy function itself on no rows
    _check_options(fn, x, xm, t, kind, sw, opts, reduction, return_grad, grad_loss, split_every,
                   n_threads)
    nt = n_threads
    b, z = _idx(xm)
    dtype = np.dtype(x.dtype)
    gl = 1.0 if grad_loss is None else grad_loss
    gla = _grad_loss_rows(gl, xm) if reduction == "none" and return_grad else [None, None]
    # "mean": each row weighted by sample_weight / denominator in the tasks
    # (_mean_rows), the loss the sum of the rows: no reciprocal to overflow
    da_ = [_denominator(t, kind, n, w, sw, ignore_index), ""] if reduction == "mean" else [None, None]
    glf = None if reduction == "none" else float(gl)
    tb = b if kind == "labels" else b + z
    swa = [sw, b] if sw is not None else [None, None]
    common = dict(opts=opts, reduction=reduction, n_threads=nt, concatenate=True)

    if xm.numblocks[-1] == 1:
        # rows only: one in-memory call per row block, loss and gradient in one pass
        pair = da.blockwise(_whole_block, b + z, xm, b + z, t, tb, *swa, *gla, *da_, fn=fn,
                            return_grad=return_grad, gl=glf, dtype=dtype,
                            meta=np.empty((0,) * xm.ndim, dtype), **common)
        rows = _dropped_first(pair, np.float64)
        grad = pair.map_blocks(_second, dtype=x.dtype) if return_grad else None
    else:
        if softcap is not None:
            raise ValueError("softcap: xent.dask applies the cap only with the class axis in one "
                             f"chunk; got {xm.numblocks[-1]} class chunks (chunks {xm.chunks[-1]})")
        wide = _is_bf16(xm.dtype)
        xs = xm.astype(np.float32) if wide else xm  # (bfloat16 blocks widened in their tasks)
        # (the cross-entropy's gradient from the exps of the statistics' pass)
        pair = None
        if return_grad and name == "softmax_cross_entropy":
            st, pair = _stats(xs, t, kind, n, w, ignore_index, label_smoothing, split_every, nt,
                              exps=True)
        else:
            st = _stats(xs, t, kind, n, w, ignore_index, label_smoothing, split_every, nt)
        common["opts"] = dict(opts, n_classes=n)
        ta = [t, b] if kind == "labels" else [None, None]
        rows = da.blockwise(_loss_from_stats, b, st, b + "s", *ta, *swa, *da_, kind=kind,
                            which=name, dtype=np.float64, **common)
        grad = None
        if return_grad:
            grad = da.blockwise(_grad_block, b + z, xs if pair is None else pair, b + z, st,
                                b + "s", t, tb, *swa, _offsets(xm), z, *gla, *da_, kind=kind,
                                which=name, gl=glf, out_dtype=x.dtype, dtype=x.dtype,
                                meta=np.empty((0,) * xm.ndim, x.dtype), **common)
    if reduction == "none":
        loss = rows.astype(dtype)
    else:  # ("mean": the rows are already divided by the denominator)
        loss = rows.sum(split_every=split_every).astype(dtype)
    if not return_grad:
        return loss
    return loss, _finish(grad, ax, x.ndim)


def _is_bf16(dtype):
    dt = np.dtype(dtype)
    return dt.kind == "V" and dt.name == "bfloat16"


def _check_options(fn, x, xm, t, kind, sw, opts, reduction, return_grad, grad_loss, split_every,
                   n_threads, extra=None):
    """Run the NumPy function ``fn`` on no rows with the call's options: the
    one validation layer checks them (and the class count) at call time."""
    _check_split(split_every)
    empty = np.empty((0,) + xm.shape[1:], dtype=x.dtype)
    if kind == "labels":
        te = np.empty((0,) + tuple(t.shape[1:]), dtype=t.dtype)
    else:
        te = np.empty((0,) + xm.shape[1:], dtype=t.dtype)
    gl = grad_loss
    if reduction == "none" and grad_loss is not None and np.ndim(grad_loss) > 0:
        shape = np.shape(grad_loss)
        try:
            np.broadcast_shapes(shape, xm.shape[:-1])
        except ValueError:
            raise ValueError(f"grad_loss: expected a scalar or an array broadcastable to the "
                             f"per-sample shape {xm.shape[:-1]}, got shape {shape}") from None
        gl = None
    swe = None if sw is None else np.empty((0,) + tuple(sw.shape[1:]), dtype=sw.dtype)
    fn(empty, te, sample_weight=swe, reduction=reduction, return_grad=return_grad,
       grad_loss=gl, n_threads=n_threads, **opts, **(extra or {}))


def _check_split(split_every):
    if split_every is not None and (isinstance(split_every, bool)
                                    or not isinstance(split_every, numbers.Integral)
                                    or split_every < 2):
        raise ValueError(f"split_every: expected an int >= 2 or None, got {split_every!r}")


def _grad_loss_rows(gl, xm):
    """A "none" reduction's upstream gradient in the logits' row chunks."""
    g = gl if isinstance(gl, da.Array) else np.broadcast_to(np.asarray(gl, dtype=np.float64),
                                                             xm.shape[:-1])
    if isinstance(g, da.Array):
        g = da.broadcast_to(g, xm.shape[:-1])
    return [_rows_like(g, "grad_loss", xm, xm.shape[:-1]), _BATCH[:xm.ndim - 1]]


def _kind_of(target):
    return np.dtype(getattr(target, "dtype", np.asarray(target).dtype)).kind


def _mean_rows(d, sw, shape, opts):
    """The sample weights that make the rows' sum the mean (sample_weight /
    denominator), and the options: a zero denominator weighs every row 0 (the
    mean 0, a 0 gradient); a denominator whose reciprocal overflows (tiny
    class weights) is scaled by a power of two with the class weights and
    z_loss (exact, and the mean unchanged), as the NumPy functions do."""
    d = float(d)
    if d == 0:
        return np.zeros(shape), opts, 0
    k = 0
    if opts.get("weight") is not None and d < 2.0 ** -1000:  # (1 / d near overflow)
        k = min(1023, -math.frexp(d)[1])
        opts = dict(opts, weight=np.ldexp(np.asarray(opts["weight"], np.float64), k))
        if opts.get("z_loss"):
            opts["z_loss"] = math.ldexp(float(opts["z_loss"]), k)
        d = math.ldexp(d, k)
    q = (np.ones(shape) if sw is None else np.asarray(sw, np.float64)) / d
    return q, opts, k


def _whole_block(x, t, sw, g, d, fn, opts, reduction, return_grad, gl, n_threads):
    shape = x.shape[:-1]
    if reduction == "mean":
        sw, opts, _ = _mean_rows(d, sw, shape, opts)
    grad_loss = g if reduction == "none" else np.full(shape, gl)
    r = fn(x, t, sample_weight=sw, reduction="none", return_grad=return_grad,
           grad_loss=grad_loss if return_grad else None, n_threads=n_threads, **opts)
    loss, grad = r if return_grad else (r, None)
    return np.asarray(loss, dtype=np.float64), grad


def _stats_for(st, sw, d, opts, reduction):
    """(statistics, sample weights, options) of a task of the class path:
    "mean" rows weighted as _mean_rows (the statistics' class-weighted sums
    scaled with the class weights when those are)."""
    o = dict(opts)
    o.pop("softcap", None)
    if reduction != "mean":
        return st, sw, o
    sw, o, k = _mean_rows(d, sw, st.shape[:-1], o)
    if k:
        st = st.copy()
        st[..., 3:5] = np.ldexp(st[..., 3:5], k)  # (ax and a: class-weighted sums)
    return st, sw, o


def _loss_from_stats(st, t, sw, d, kind, which, opts, reduction, n_threads):
    st, sw, o = _stats_for(st, sw, d, opts, reduction)
    if which == "nll_loss":
        return _p.nll_loss_from_partials(st, t if kind == "labels" else None, sample_weight=sw, **o)
    if kind == "probs":
        # (the probabilities' mass is in the statistics; only the batch shape is needed)
        return _p.softmax_cross_entropy_from_partials(
            st, np.zeros(st.shape[:-1] + (0,)), sample_weight=sw, **o)
    return _p.softmax_cross_entropy_from_partials(st, t, sample_weight=sw, **o)


def _grad_block(x, st, t, sw, off, g, d, kind, which, opts, reduction, gl, n_threads, out_dtype):
    st, sw, o = _stats_for(st, sw, d, opts, reduction)
    grad_loss = g if reduction == "none" else gl
    if isinstance(x, tuple):  # (block statistics, exps): the gradient in place of the exps
        bst, e = x
        g = _p.softmax_cross_entropy_block_grad(
            None, st, t, class_offset=_first_class(off), sample_weight=sw, grad_loss=grad_loss,
            exps=e, block_partials=bst, out=e, n_threads=n_threads, **o)
        return g.astype(out_dtype, copy=False)
    fn = _p.nll_loss_block_grad if which == "nll_loss" else _p.softmax_cross_entropy_block_grad
    return fn(x, st, t, class_offset=_first_class(off), sample_weight=sw, grad_loss=grad_loss,
              n_threads=n_threads, **o).astype(out_dtype, copy=False)


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
    x = _float_input(x, arg)
    t = _like_logits(target, "target", x)
    fn = getattr(_x, name)
    dtype = np.dtype(x.dtype)
    idx = _BATCH[:x.ndim]
    out_idx = idx[:-1] if per_sample else idx
    sw = _rows_like(sample_weight, "sample_weight", x, x.shape[:-1]) if per_sample else None
    _check_elementwise(fn, x, t, sw, opts, reduction, return_grad, grad_loss, n_threads, per_sample)
    gl = 1.0 if grad_loss is None else grad_loss
    shape = x.shape[:-1] if per_sample else x.shape
    denom = None
    if reduction == "mean" and sw is not None:
        # (each row weighted by sample_weight / their sum in the tasks: the mean
        # is the rows' sum, no reciprocal to overflow)
        sa = [sw.sum(dtype=np.float64), ""]
    elif reduction == "mean":  # (a count: 1 / count is exact to the in-memory call's bits)
        denom = da.from_array(np.asarray(float(math.prod(shape))), chunks=())
        sa = [denom, ""]
    elif reduction == "none" and return_grad:
        g = gl if isinstance(gl, da.Array) else np.broadcast_to(np.asarray(gl, np.float64), shape)
        sa = [_array(da.broadcast_to(g, shape) if isinstance(g, da.Array) else g, "grad_loss")
              .rechunk(x.chunks[:-1] if per_sample else x.chunks), out_idx]
    else:
        sa = [None, None]
    swa = [sw, idx[:-1]] if sw is not None else [None, None]
    # per-element weights follow the blocks: pos_weight (one value per column
    # of the last axis) in the last axis' chunks, weight broadcast to x's
    opts = dict(opts)
    pw, w = opts.pop("pos_weight", None), opts.pop("weight", None)
    pwa = [None, None]
    if pw is not None and np.shape(pw) == (x.shape[-1],):
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
                        gl=float(gl) if reduction != "none" else None, n_threads=n_threads,
                        dtype=dtype, meta=np.empty((0,) * x.ndim, dtype), concatenate=True)
    if per_sample:
        rows = _dropped_first(pair, np.float64)
    else:
        rows = pair.map_blocks(_first, dtype=np.float64)
    grad = pair.map_blocks(_second, dtype=x.dtype) if return_grad else None
    if reduction == "none":
        loss = rows.astype(dtype)
    elif denom is None:  # "sum", or a weighted "mean" (the rows already divided)
        loss = rows.sum().astype(dtype)
    else:
        loss = _scalar_graph(rows.sum(), denom, dtype)
    return (loss, grad) if return_grad else loss


def _check_elementwise(fn, x, t, sw, opts, reduction, return_grad, grad_loss, n_threads,
                       per_sample):
    """The NumPy function on no rows with the call's options (call-time checks)."""
    o = dict(opts)
    for k in ("weight", "pos_weight"):  # (arrays of the whole shape: their first 0 rows)
        v = o.get(k)
        if v is not None and np.ndim(v) == x.ndim and np.shape(v)[0] == x.shape[0]:
            o[k] = np.asarray(v)[:0]
    shape = x.shape[:-1] if per_sample else x.shape
    gl = grad_loss
    if reduction == "none" and grad_loss is not None and np.ndim(grad_loss) > 0:
        try:
            np.broadcast_shapes(np.shape(grad_loss), shape)
        except ValueError:
            raise ValueError(f"grad_loss: expected a scalar or an array broadcastable to the "
                             f"per-sample shape {shape}, got shape {np.shape(grad_loss)}") from None
        gl = None
    if per_sample:
        o["sample_weight"] = None if sw is None else np.empty((0,), dtype=sw.dtype)
    fn(np.empty((0,) + x.shape[1:], x.dtype), np.empty((0,) + x.shape[1:], t.dtype),
       reduction=reduction, return_grad=return_grad, grad_loss=gl, n_threads=n_threads, **o)


def _elem_block(x, t, sw, s, pw, w, fn, opts, reduction, return_grad, per_sample, gl, n_threads):
    shape = x.shape[:-1] if per_sample else x.shape
    kw = dict(opts)
    if reduction == "none":
        grad_loss = s
    elif reduction == "mean" and sw is not None:  # (s: the sum of the sample weights)
        grad_loss = np.full(shape, gl)
        sw, kw, _ = _mean_rows(s, sw, shape, kw)
    elif reduction == "mean":  # (s: the element or sample count)
        grad_loss = np.full(shape, gl * (1.0 / float(s)))
    else:
        grad_loss = np.full(shape, gl)
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
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize: expected a bool, got {normalize!r}")
    y = _array(y_true, "y_true")
    if y.ndim == 2 and y.shape[1] == 1:  # (a column vector, as scikit-learn's column_or_1d)
        y = y[:, 0]
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
    if len(y) == 0 or (sw is not None and not np.any(sw)):  # (nothing to add: 0 weight)
        return np.zeros(2)
    total = metrics.log_loss(y, p, normalize=False, sample_weight=sw, labels=classes)
    return np.array([float(total), float(len(y) if sw is None else np.sum(sw))])


def _log_loss_value(total, weight, normalize):
    if float(weight) == 0:  # (scikit-learn's error, for the whole array)
        raise ValueError("Sample weights must contain at least one non-zero number.")
    if not normalize:
        return np.asarray(float(total))
    return np.asarray(float(total) / float(weight))
