"""Property-based tests (hypothesis) for the losses: binary cross-entropy (from
logits and from probabilities), the multi-label loss, both focal losses,
softmax cross-entropy (every integer label dtype, and probability targets),
nll_loss, cross_entropy, entropy, kl_divergence and metrics.log_loss.

Over dtypes, shapes (empty batches, one class, long rows, rank 0 or 1 to 4,
every class axis), memory layouts (C, Fortran, negative strides, strided and offset
slices, read-only, unaligned) and values (+-inf, NaN, huge, subnormal):

* results agree with a NumPy float64 reference written here from the
  definitions and the documented limits (tolerances by dtype, scaled by the
  magnitudes that can cancel), NaN and inf exactly where the reference has them;
* gradients agree with float64 central differences on small float64 inputs;
* every input array is byte-for-byte unchanged after every call.
"""

import contextlib
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import xent
from conftest import TOL, finite_difference_grad, layouts
from xent._kernels import long_row as LONG_ROW

inf, nan = np.inf, np.nan
FLOATS = [np.float16, np.float32, np.float64]
INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
REDUCTIONS = ["none", "sum", "mean"]

SETTINGS = settings(max_examples=70, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GRAD_SETTINGS = settings(max_examples=15, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ drawing


LONG_SIDES = [17, 65, 130, 513, 1030, LONG_ROW + 17]


def draw_shape(draw, min_dims=1, max_dims=4):
    """Rank min_dims..max_dims (0-4), sides 0..4; sometimes one long axis (past the
    small-class path, the vector widths, the binary kernels' blocks, and the
    length from which rows are split into chunks)."""
    ndim = draw(st.integers(min_dims, max_dims))
    if draw(st.integers(0, 4)) == 0 and ndim:
        shape = [draw(st.integers(0, 2)) for _ in range(ndim)]
        shape[draw(st.integers(0, ndim - 1))] = draw(st.sampled_from(LONG_SIDES))
    else:
        shape = [draw(st.integers(0, 4)) for _ in range(ndim)]
    return tuple(shape)


def huge(dtype):
    return {np.float16: 3e4, np.float32: 1e37, np.float64: 1e300}[np.dtype(dtype).type]


def subnormal(dtype):
    return float(np.finfo(dtype).smallest_subnormal)


def draw_values(draw, shape, dtype, kind="logits", specials=True):
    """Random values of ``kind`` ("logits": any real, "unit": in [0, 1] with
    exact 0 and 1, "logprobs": <= 0) with a few drawn special values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "unit":
        a = rng.random(shape)
        u = rng.random(shape)
        a[u < 0.15] = 0.0
        a[u > 0.93] = 1.0
        pool = [nan, 0.0, 1.0, subnormal(dtype), 1e-30, 1 - float(np.finfo(dtype).eps)]
    else:
        scale = draw(st.sampled_from([1e-3, 1.0, 8.0, 1e3]))
        offset = draw(st.sampled_from([0.0, 0.0, 1e4, -1e4]))
        a = rng.standard_normal(shape) * scale + offset
        pool = [inf, -inf, nan, huge(dtype), -huge(dtype), subnormal(dtype), -0.0]
        if kind == "logprobs":
            a = -np.abs(a)
            pool = [-inf, nan, -huge(dtype), -subnormal(dtype), 0.0, inf]
    if specials and a.size:
        for _ in range(draw(st.integers(0, 3))):
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(pool))
    with np.errstate(over="ignore"):  # huge -> inf in a narrower dtype: intended
        return a.astype(dtype)


def in_layout(draw, a):
    """``a`` (an ndarray) in a drawn memory layout: conftest's layouts (C,
    Fortran, negative strides, strided, read-only, unaligned) or a slice at an
    offset into a larger array."""
    if a.ndim == 0:  # (np.asfortranarray and friends make 0-d arrays 1-d)
        return a
    options = layouts(a)
    if a.shape[0]:
        big = np.zeros((a.shape[0] + 2,) + a.shape[1:], a.dtype)
        big[1:-1] = a
        options.append(("offset-slice", big[1:-1]))
    name, arr = options[draw(st.integers(0, len(options) - 1))]
    note(f"layout {name}")
    return arr


@contextlib.contextmanager
def unchanged(*arrays):
    """Assert that the arrays' bytes are the same after the block (in which
    NumPy's warnings are off: a sum beyond float16's range is inf, one of +inf
    and -inf losses NaN, as intended)."""
    saved = [(a, a.tobytes()) for a in arrays if isinstance(a, np.ndarray)]
    with np.errstate(over="ignore", invalid="ignore"):
        yield
    for a, b in saved:
        assert a.tobytes() == b, "an input array was written"


def check(actual, expected, dtype, scale=1.0, what="value"):
    """``actual`` agrees with the float64 reference ``expected`` for a result of
    ``dtype``: NaN and +-inf exactly where the reference has them (a finite
    value beyond the dtype's range may round to inf), finite values within
    rtol * |expected| + atol * scale (TOL of conftest), and in the subnormal
    range within rtol * the dtype's smallest normal number."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (what, a.shape, e.shape)
    rtol, atol = TOL[np.dtype(dtype).type]
    with np.errstate(invalid="ignore"):
        scale = np.nan_to_num(np.broadcast_to(np.abs(np.asarray(scale, dtype=np.float64)),
                                              e.shape), nan=0.0)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{what}: NaN positions")
    e_inf = np.isinf(e)
    np.testing.assert_array_equal(a[e_inf], e[e_inf], err_msg=f"{what}: infinities")
    fin = np.isfinite(e)
    big = float(np.finfo(dtype).max) * (1 - 4 * rtol)
    info = np.finfo(dtype)
    tiny = max(float(info.smallest_subnormal), float(info.tiny) * rtol)
    with np.errstate(invalid="ignore", over="ignore"):
        overflow_ok = fin & (np.abs(e) >= big) & (a == np.sign(e) * inf)
        bad = fin & ~overflow_ok & ~(np.abs(a - e) <= rtol * np.abs(e) + atol * scale + tiny)
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        raise AssertionError(f"{what} ({np.dtype(dtype)}): {bad.sum()} of {bad.size} differ; "
                             f"actual {a.flat[i]}, expected {e.flat[i]}, "
                             f"scale {scale.flat[i]}")


def draw_grad_loss(draw, reduction, per_sample_shape):
    """None, or the upstream gradient: a scalar for "mean"/"sum", an array of the
    per-sample shape for "none" (nonzero: 0 * an infinite derivative is NaN)."""
    if draw(st.booleans()):
        return None, 1.0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if reduction != "none":
        g = float(rng.uniform(0.5, 2.0) * rng.choice([-1, 1]))
        return g, g
    g = rng.uniform(0.5, 2.0, per_sample_shape) * rng.choice([-1, 1], per_sample_shape)
    return g, g


def reduce_ref(per, reduction, denominator=None):
    """The reduced reference value and the gradient factor of the reduction."""
    if reduction == "none":
        return per, 1.0
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as in the kernels' sums
        total = np.sum(per)
    if reduction == "sum":
        return total, 1.0
    den = per.size if denominator is None else denominator
    if den == 0:  # documented: the mean over nothing is 0 (not NaN), with a 0 gradient
        return 0.0, 0.0
    return total / den, 1.0 / den


def compute_dtype(dtype):
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def in_compute_dtype(a, dtype):
    """float64 values of ``a`` as the kernels read them: in the compute dtype of
    the main input's ``dtype`` (a float64 subnormal target is 0 for float32 data)."""
    return np.asarray(a).astype(compute_dtype(dtype)).astype(np.float64)


def batch_shape(shape, axis):
    return tuple(n for i, n in enumerate(shape) if i != axis % len(shape))


def one_hot(labels, c):
    """float64 one-hot rows (labels.shape + (c,)) of integer labels in [0, c)."""
    out = np.zeros((labels.size, c))
    if c:
        out[np.arange(labels.size), labels.reshape(-1)] = 1.0
    return out.reshape(labels.shape + (c,))


def as_scalar_check(value, dtype):
    """Reduced results are numpy scalars of the input dtype."""
    assert np.ndim(value) == 0 and np.asarray(value).dtype == dtype, (type(value), dtype)


# ----------------------------------------------------------- binary losses


def smoothed(t, s):
    return t * (1 - s) + s / 2


def ref_bce_logits(x, t, pw, w):
    """Element loss and gradient of BCE from logits (float64, smoothed targets),
    with its limits: terms with a 0 coefficient are 0 (no 0 * inf), weight 0
    gives 0; and the magnitudes that may cancel (for tolerances)."""
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        L = 1 + (pw - 1) * t
        lin_c = np.where(x >= 0, 1 - t, -pw * t)
        lin = np.where(lin_c == 0, 0.0, lin_c * x)
        loss = lin + L * np.log1p(e)
        sig = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        grad = L * sig - pw * t
        loss = np.where(w == 0, 0.0, w * loss)
        grad = np.where(w == 0, 0.0, w * grad)
        lscale = np.abs(w) * (np.abs(x) * (1 + np.abs(pw)) + np.abs(L) + 1)
        gscale = np.abs(w) * (np.abs(L) + np.abs(pw * t) + 1)
    return loss, grad, lscale, gscale


def clip_bounds(clip, cdt):
    """The clipping bounds of binary_cross_entropy in the compute dtype."""
    lo, hi = cdt.type(clip), cdt.type(1.0 - clip)
    if clip > 0 and lo == 0:
        lo = np.finfo(cdt).smallest_subnormal
    if clip > 0 and hi == 1:
        hi = np.nextafter(cdt.type(1), cdt.type(0))
    return float(lo), float(hi)


def ref_bce_probs(p, t, pw, w, lo, hi):
    with np.errstate(all="ignore"):
        pc = np.clip(p, lo, hi)
        pos_c, neg_c = pw * t, 1 - t
        pos = np.where(pos_c == 0, 0.0, pos_c * np.log(pc))
        neg = np.where(neg_c == 0, 0.0, neg_c * np.log1p(-pc))
        d = np.where(neg_c == 0, 0.0, neg_c / (1 - pc)) - np.where(pos_c == 0, 0.0, pos_c / pc)
        loss = np.where(w == 0, 0.0, -w * (pos + neg))
        # 0 where p was clipped (a NaN p is not: NaN from d, as for a NaN t)
        grad = np.where(w == 0, 0.0, w * np.where((p < lo) | (p > hi), 0.0, d))
        lscale = np.abs(w) * (np.abs(pos) + np.abs(neg) + 1)
        gscale = np.abs(w) * (np.abs(neg_c / (1 - pc)) + np.abs(pos_c / pc) + 1)
    return loss, grad, lscale, gscale


def draw_binary_args(draw, x):
    """Target (float, or integer/bool 0/1), pos_weight, weight and label
    smoothing for a binary loss of x."""
    shape, c = x.shape, (x.shape[-1] if x.ndim else 1)
    t_dtype = draw(st.sampled_from(FLOATS + [np.int8, np.uint8, np.bool_]))
    if np.dtype(t_dtype).kind == "f":
        t = draw_values(draw, shape, t_dtype, "unit")
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        t = (rng.random(shape) > 0.5).astype(t_dtype)
    t = in_layout(draw, t)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pw = draw(st.sampled_from(["none", "scalar", "column"]))
    pw = {"none": None, "scalar": float(rng.uniform(0.2, 4)),
          "column": rng.uniform(0.2, 4, c)}[pw]
    wk = draw(st.sampled_from(["none", "full", "column", "row"]))
    wk = "full" if wk == "row" and not x.ndim else wk
    w = None
    if wk != "none":
        wshape = {"full": shape, "column": shape[-1:], "row": shape[:-1] + (1,)}[wk]
        w = rng.uniform(0, 3, wshape)
        w[rng.random(wshape) < 0.2] = 0.0
    s = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    return t, pw, w, s


def binary_inputs64(x, t, pw, w, s):
    """float64 logits, smoothed targets, pos_weight and weights of a binary loss."""
    x64 = x.astype(np.float64)
    t64 = smoothed(in_compute_dtype(t, x.dtype), s)
    pw64 = np.ones(1) if pw is None else in_compute_dtype(pw, x.dtype).reshape(-1)
    pw64 = pw64[0] if pw64.size == 1 else pw64  # a scalar, or one per column
    w64 = np.broadcast_to(1.0 if w is None else in_compute_dtype(w, x.dtype), x.shape)
    return x64, t64, pw64, w64


@SETTINGS
@given(st.data())
def test_bce_with_logits(data):
    draw = data.draw
    dtype = draw(st.sampled_from(FLOATS))
    x = in_layout(draw, draw_values(draw, draw_shape(draw, 0), dtype))
    t, pw, w, s = draw_binary_args(draw, x)
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, x.shape)
    with unchanged(x, t, pw, w, gl):
        loss, grad = xent.binary_cross_entropy_with_logits(
            x, t, pos_weight=pw, weight=w, label_smoothing=s, reduction=reduction,
            return_grad=True, grad_loss=gl)
        loss_only = xent.binary_cross_entropy_with_logits(
            x, t, pos_weight=pw, weight=w, label_smoothing=s, reduction=reduction)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    np.testing.assert_array_equal(loss_only, loss)
    el, eg, ls, gs = ref_bce_logits(*binary_inputs64(x, t, pw, w, s))
    want, factor = reduce_ref(el, reduction)
    if reduction == "none":
        assert loss.shape == x.shape and loss.dtype == x.dtype
        check(loss, want, dtype, ls)
    else:
        as_scalar_check(loss, dtype)
        check(loss, want, dtype, np.sum(ls))
    with np.errstate(invalid="ignore"):
        check(grad, eg * gl64 * factor, dtype, gs * np.abs(gl64) * factor, "grad")


@SETTINGS
@given(st.data())
def test_bce_on_probabilities(data):
    draw = data.draw
    dtype = draw(st.sampled_from(FLOATS))
    p = draw_values(draw, draw_shape(draw, 0), dtype, "unit")
    t, pw, w, s = draw_binary_args(draw, p)
    bad = p.size and draw(st.integers(0, 9)) == 0  # a value outside [0, 1]: ValueError
    if bad:
        p.flat[draw(st.integers(0, p.size - 1))] = draw(st.sampled_from([1.5, -0.25, inf, -inf]))
    p = in_layout(draw, p)
    eps = draw(st.sampled_from([None, 0.0, 1e-7, 1e-3, 0.2]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, p.shape)
    kwargs = dict(eps=eps, pos_weight=pw, weight=w, label_smoothing=s, reduction=reduction,
                  grad_loss=gl)
    note(f"p={p!r} t={t!r} {kwargs}")
    with unchanged(p, t, pw, w, gl):
        if bad:
            with pytest.raises(ValueError, match="probs: expected values in"):
                xent.binary_cross_entropy(p, t, **kwargs)
            return
        loss, grad = xent.binary_cross_entropy(p, t, return_grad=True, **kwargs)
    assert grad.shape == p.shape and grad.dtype == p.dtype
    cdt = compute_dtype(dtype)
    clip = float(np.finfo(cdt).eps) if eps is None else eps
    p64, t64, pw64, w64 = binary_inputs64(p, t, pw, w, s)
    el, eg, ls, gs = ref_bce_probs(p64, t64, pw64, w64, *clip_bounds(clip, cdt))
    want, factor = reduce_ref(el, reduction)
    check(loss, want, dtype, ls if reduction == "none" else np.sum(ls))
    with np.errstate(invalid="ignore"):
        check(grad, eg * gl64 * factor, dtype, gs * np.abs(gl64) * factor, "grad")


@SETTINGS
@given(st.data())
def test_multilabel_cross_entropy(data):
    draw = data.draw
    dtype = draw(st.sampled_from(FLOATS))
    x = in_layout(draw, draw_values(draw, draw_shape(draw, 1), dtype))
    t, pw, w, s = draw_binary_args(draw, x)
    batch = x.shape[:-1]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sw = None
    if draw(st.booleans()):
        sw = rng.uniform(0, 2, batch)
        sw[rng.random(batch) < 0.25] = 0.0
        sw = in_layout(draw, np.asarray(sw))
    class_reduction = draw(st.sampled_from(["sum", "mean"]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, batch)
    with unchanged(x, t, pw, w, sw, gl):
        loss, grad = xent.multilabel_cross_entropy(
            x, t, class_reduction=class_reduction, pos_weight=pw, weight=w, sample_weight=sw,
            label_smoothing=s, reduction=reduction, return_grad=True, grad_loss=gl)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    el, eg, ls, gs = ref_bce_logits(*binary_inputs64(x, t, pw, w, s))
    c = x.shape[-1]
    per_class = 1.0 / c if class_reduction == "mean" and c else 1.0
    sw64 = np.ones(batch) if sw is None else np.asarray(sw, dtype=np.float64)
    # a sample of weight 0 counts for nothing, whatever its losses
    with np.errstate(invalid="ignore"):
        per = np.where(sw64 == 0, 0.0, el.sum(-1) * per_class * sw64)
    want, factor = reduce_ref(per, reduction, denominator=np.sum(sw64))
    with np.errstate(invalid="ignore"):
        lscale = ls.sum(-1) * per_class * sw64
    check(loss, want, dtype, lscale if reduction == "none" else np.sum(lscale))
    f = (gl64 * sw64 * per_class * factor)[..., None]
    with np.errstate(invalid="ignore"):
        want_grad = np.where(sw64[..., None] == 0, 0.0, eg * f)
    check(grad, want_grad, dtype, gs * np.abs(f), "grad")


def ref_binary_focal(x, t, gamma, alpha, w):
    """Element loss and gradient of the binary focal loss (float64), with the
    documented limits (no NaN from any logit)."""
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        p = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        omp = np.where(x >= 0, e / (1 + e), 1 / (1 + e))  # 1 - p
        q = t * omp + (1 - t) * p
        ce = np.where(x >= 0, np.where(t == 1, 0.0, x * (1 - t)),
                      np.where(t == 0, 0.0, -x * t)) + np.log1p(e)
        a = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
        qg = np.ones_like(q) if gamma == 0 else np.exp(gamma * np.log(q))
        zero = (w == 0) | (np.asarray(a) == 0)
        loss = np.where(zero | (qg == 0), 0.0, w * a * qg * ce)
        g = qg * (p - t)
        extra = gamma * np.exp((gamma - 1) * np.log(q)) * (1 - 2 * t) * p * omp * ce
        g = np.where((gamma != 0) & (q > 0) & (ce != 0) & (p * omp != 0), g + extra, g)
        grad = np.where(zero, 0.0, w * a * g)
        lscale = np.abs(w) * (np.abs(x) + 1)
        gscale = np.abs(w) * (1 + gamma * (np.abs(x) + 1))
    return loss, grad, lscale, gscale


@SETTINGS
@given(st.data())
def test_binary_focal_loss(data):
    draw = data.draw
    dtype = draw(st.sampled_from(FLOATS))
    x = in_layout(draw, draw_values(draw, draw_shape(draw, 0), dtype))
    t, _, w, s = draw_binary_args(draw, x)
    gamma = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7]))
    alpha = draw(st.sampled_from([None, 0.0, 0.25, 1.0]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, x.shape)
    with unchanged(x, t, w, gl):
        loss, grad = xent.binary_focal_loss_with_logits(
            x, t, gamma=gamma, alpha=alpha, weight=w, label_smoothing=s, reduction=reduction,
            return_grad=True, grad_loss=gl)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    x64, t64, _, w64 = binary_inputs64(x, t, None, w, s)
    el, eg, ls, gs = ref_binary_focal(x64, t64, gamma, alpha, w64)
    want, factor = reduce_ref(el, reduction)
    check(loss, want, dtype, ls if reduction == "none" else np.sum(ls))
    with np.errstate(invalid="ignore"):
        check(grad, eg * gl64 * factor, dtype, gs * np.abs(gl64) * factor, "grad")


# ------------------------------------------------ softmax losses (class axis)


def ref_shifted(x2):
    """Per row of (n, C) float64 logits, with the softmax's limits: d = x - m
    (0 at the +inf entries of a row whose maximum is +inf, -inf in a row of
    only -inf), log(sum(exp(d))), the softmax (0 for a row of only -inf) and
    the logsumexp (-inf for a row of only -inf)."""
    with np.errstate(all="ignore"):
        m = np.max(x2, axis=1, keepdims=True) if x2.shape[1] else np.zeros((len(x2), 1))
        d = np.where((x2 == inf) & (m == inf), 0.0, np.where(m == -inf, -inf, x2 - m))
        e = np.exp(d)
        s = e.sum(1, keepdims=True)
        p = np.where(m == -inf, 0.0, e / s)
        log_s = np.log(s)
    return d, log_s[:, 0], p, (m + log_s)[:, 0]


def to_rows(a, axis):
    """(n_rows, C) float64 rows of ``a`` along its class axis ``axis``,
    C-contiguous: NumPy sums a contiguous row pairwise, but a strided one
    (a Fortran-ordered input's) one term after another, which lost 1.2e-13
    relative on a row of 65553 terms and made the reference, not xent, wrong."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    return np.ascontiguousarray(a.reshape(math.prod(a.shape[:-1]), a.shape[-1]))


def from_rows(a2, shape, axis):
    moved = np.moveaxis(np.empty(shape), axis, -1).shape
    return np.moveaxis(a2.reshape(moved), -1, axis)


def draw_class_problem(draw, kind, logit_kind="logits"):
    """Logits (or log-probabilities), a class axis and a target of ``kind``
    ("labels": a drawn integer dtype, "probs": floats of the logits' shape)."""
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw_shape(draw, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    x = in_layout(draw, draw_values(draw, shape, dtype, logit_kind))
    c, batch = shape[axis], batch_shape(shape, axis)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "labels":
        ldt = np.dtype(draw(st.sampled_from(INTS)))
        info = np.iinfo(ldt)
        choices = [i for i in (-100, -1, c, int(info.max), int(info.min))
                   if info.min <= i <= min(info.max, 2**63 - 1) and not 0 <= i < c]
        ignore = draw(st.sampled_from(choices or [-100]))  # (every value may be a class)
        lab = np.array(rng.integers(0, max(1, min(c, int(info.max) + 1)), batch))
        if c:
            lab[rng.random(batch) < 0.2] = ignore
        else:
            lab[...] = ignore  # no class: every label must be ignored
        target = in_layout(draw, lab.astype(ldt))
        return x, axis, target, ignore
    t = draw_values(draw, shape, draw(st.sampled_from(FLOATS)), "unit")
    return x, axis, in_layout(draw, t), -100


def coefficients(target, axis, shape, c, w, eps, ignore, dtype):
    """Per row: the target coefficients a_c (class weight times smoothed mass;
    probabilities in the compute dtype of the logits' ``dtype``), whether the
    sample counts, and its weight in the mean's denominator."""
    w = np.ones(c) if w is None else np.asarray(w, dtype=np.float64)
    if np.asarray(target).dtype.kind in "iu":
        lab = np.asarray(target).reshape(-1).astype(np.int64)  # labels are in range here
        kept = lab != ignore
        onehot = one_hot(np.where(kept, lab, 0), c)
        den = np.where(kept, w[np.where(kept, lab, 0)] if c else 0.0, 0.0)
    else:
        onehot = to_rows(in_compute_dtype(target, dtype), axis)
        kept = np.ones(len(onehot), dtype=bool)
        den = np.ones(len(onehot))
    return w * ((1 - eps) * onehot + eps / c), kept, den


def draw_class_options(draw, c, batch):
    """Class weights and sample weights (each None or with some zeros)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = sw = None
    if draw(st.booleans()):
        w = rng.uniform(0, 2, c)
        w[rng.random(c) < 0.2] = 0.0
    if draw(st.booleans()):
        sw = rng.uniform(0, 2, batch)
        sw[rng.random(batch) < 0.2] = 0.0
    return w, (np.asarray(sw) if sw is not None else None)


@pytest.mark.parametrize("kind", ["labels", "probs"])
@SETTINGS
@given(data=st.data())
def test_softmax_cross_entropy(kind, data):
    draw = data.draw
    x, axis, target, ignore = draw_class_problem(draw, kind)
    dtype, shape = x.dtype, x.shape
    c, batch = shape[axis], batch_shape(shape, axis)
    w, sw = draw_class_options(draw, c, batch)
    eps = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    z = draw(st.sampled_from([0.0, 0.0, 1e-3]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, batch)
    kwargs = dict(axis=axis, weight=w, sample_weight=sw, ignore_index=ignore,
                  label_smoothing=eps, z_loss=z, reduction=reduction, grad_loss=gl)
    note(f"x={x!r} target={target!r} {kwargs}")
    with unchanged(x, target, w, sw, gl):
        if c == 0:
            with pytest.raises(ValueError, match="at least one class"):
                xent.softmax_cross_entropy(x, target, **kwargs)
            return
        loss, grad = xent.softmax_cross_entropy(x, target, return_grad=True, **kwargs)
        loss_only = xent.softmax_cross_entropy(x, target, **kwargs)
    np.testing.assert_array_equal(loss_only, loss)
    assert grad.shape == shape and grad.dtype == dtype
    x2 = to_rows(x, axis)
    a, kept, den = coefficients(target, axis, shape, c, w, eps, ignore, dtype)
    sw64 = np.ones(len(x2)) if sw is None else np.asarray(sw, dtype=np.float64).reshape(-1)
    d, log_s, p, lse = ref_shifted(x2)
    A = a.sum(1)
    with np.errstate(all="ignore"):
        per = A * log_s - np.where(a != 0, a * d, 0.0).sum(1) + (z * lse**2 if z else 0.0)
        per = np.where(kept & (sw64 != 0), sw64 * per, 0.0)
        scale = sw64 * (A * (1 + np.abs(log_s)) + np.abs(np.where(a != 0, a * d, 0.0)).sum(1)
                        + z * (lse**2 + 2 * np.abs(lse)))
    want, factor = reduce_ref(per.reshape(batch), reduction, denominator=np.sum(den * sw64))
    lscale = scale.reshape(batch)
    if reduction == "none":
        check(loss, want, dtype, lscale)
    else:
        as_scalar_check(loss, dtype)
        check(loss, want, dtype, np.sum(lscale))
    f = (np.broadcast_to(gl64 * factor, batch).reshape(-1) * sw64)[:, None]
    with np.errstate(all="ignore"):
        coef = A[:, None] + (2 * z * lse[:, None] if z else 0.0)
        g = f * (np.where((p == 0) & np.isinf(coef), 0.0, coef * p) - a)
        g = np.where((kept & (sw64 != 0))[:, None], g, 0.0)
        gscale = np.abs(f) * (np.abs(coef) + np.abs(a) + 1)
    if reduction == "mean" and factor == 0:  # zero denominator: 0, not NaN
        g = np.zeros_like(g)
    # a row of only -inf has no loss (NaN, checked above); its gradient is not specified
    undefined = np.all(x2 == -inf, axis=1)
    g[undefined] = to_rows(grad, axis)[undefined]
    check(grad, from_rows(g, shape, axis), dtype, from_rows(gscale, shape, axis), "grad")


@pytest.mark.parametrize("kind", ["labels", "probs"])
@SETTINGS
@given(data=st.data())
def test_nll_loss(kind, data):
    draw = data.draw
    lp, axis, target, ignore = draw_class_problem(draw, kind, "logprobs")
    dtype, shape = lp.dtype, lp.shape
    c, batch = shape[axis], batch_shape(shape, axis)
    w, sw = draw_class_options(draw, c, batch)
    eps = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, batch)
    kwargs = dict(axis=axis, weight=w, sample_weight=sw, ignore_index=ignore,
                  label_smoothing=eps, reduction=reduction, grad_loss=gl)
    note(f"lp={lp!r} target={target!r} {kwargs}")
    with unchanged(lp, target, w, sw, gl):
        if c == 0:
            with pytest.raises(ValueError, match="at least one class"):
                xent.nll_loss(lp, target, **kwargs)
            return
        loss, grad = xent.nll_loss(lp, target, return_grad=True, **kwargs)
    assert grad.shape == shape and grad.dtype == dtype
    lp2 = to_rows(lp, axis)
    a, kept, den = coefficients(target, axis, shape, c, w, eps, ignore, dtype)
    sw64 = np.ones(len(lp2)) if sw is None else np.asarray(sw, dtype=np.float64).reshape(-1)
    with np.errstate(all="ignore"):
        terms = np.where(a != 0, a * lp2, 0.0)
        per = np.where(kept & (sw64 != 0), -sw64 * terms.sum(1), 0.0)
        scale = sw64 * np.abs(terms).sum(1)
    want, factor = reduce_ref(per.reshape(batch), reduction, denominator=np.sum(den * sw64))
    check(loss, want, dtype, scale.reshape(batch) if reduction == "none" else np.sum(scale))
    f = (np.broadcast_to(gl64 * factor, batch).reshape(-1) * sw64)[:, None]
    # ignored samples and samples of weight 0: 0, whatever their targets hold
    g = np.where((kept & (sw64 != 0))[:, None], -f * a, 0.0)
    check(grad, from_rows(g, shape, axis), dtype, 1.0, "grad")


def ref_softmax_focal(x2, a, gamma):
    """Per-row softmax focal loss of (n, C) float64 logits with class factors a
    (alpha times target mass), and the gradient before the upstream factor:
    with the softmax's limits (an infinite logit gives no NaN, only a row of
    only -inf, whose loss is undefined)."""
    d, log_s, p, _ = ref_shifted(x2)
    with np.errstate(all="ignore"):
        lp = d - log_s[:, None]
        log1m = np.where(lp > -math.log(2), np.log(-np.expm1(lp)), np.log1p(-p))
        wf = np.ones_like(p) if gamma == 0 else np.exp(gamma * log1m)
        plogp = np.where(p == 0, 0.0, p * lp)  # the limit p log p -> 0
        D = -wf
        if gamma:
            D = np.where(p < 1, D + gamma * np.exp((gamma - 1) * log1m) * plogp, D)
        terms = np.where(a != 0, a * np.where(wf != 0, -wf * lp, 0.0), 0.0)
        ad = np.where(a != 0, a * D, 0.0)
        grad = ad - p * ad.sum(1, keepdims=True)
        undefined = np.all(x2 == -inf, axis=1)
        grad[undefined] = nan
        scale = np.abs(terms).sum(1) + 1
    return terms.sum(1), grad, scale


@pytest.mark.parametrize("kind", ["labels", "probs"])
@SETTINGS
@given(data=st.data())
def test_softmax_focal_loss(kind, data):
    draw = data.draw
    x, axis, target, ignore = draw_class_problem(draw, kind)
    dtype, shape = x.dtype, x.shape
    c, batch = shape[axis], batch_shape(shape, axis)
    gamma = draw(st.sampled_from([0.0, 0.5, 2.0, 3.3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    alpha = draw(st.sampled_from(["none", "scalar", "vector"]))
    alpha = {"none": None, "scalar": 0.25, "vector": rng.uniform(0, 1, c)}[alpha]
    reduction = draw(st.sampled_from(REDUCTIONS))
    gl, gl64 = draw_grad_loss(draw, reduction, batch)
    kwargs = dict(gamma=gamma, alpha=alpha, axis=axis, ignore_index=ignore,
                  reduction=reduction, grad_loss=gl)
    note(f"x={x!r} target={target!r} {kwargs}")
    with unchanged(x, target, alpha, gl):
        if c == 0:
            with pytest.raises(ValueError, match="at least one class"):
                xent.softmax_focal_loss(x, target, **kwargs)
            return
        loss, grad = xent.softmax_focal_loss(x, target, return_grad=True, **kwargs)
    assert grad.shape == shape and grad.dtype == dtype
    x2 = to_rows(x, axis)
    al = np.ones(c) if alpha is None else np.broadcast_to(alpha, (c,))
    a, kept, _ = coefficients(target, axis, shape, c, None, 0.0, ignore, dtype)
    a = a * al
    per, g, scale = ref_softmax_focal(x2, a, gamma)
    per = np.where(kept, per, 0.0)
    want, factor = reduce_ref(per.reshape(batch), reduction, denominator=np.sum(kept))
    check(loss, want, dtype, scale.reshape(batch) if reduction == "none" else np.sum(scale))
    f = np.broadcast_to(gl64 * factor, batch).reshape(-1)[:, None]
    with np.errstate(invalid="ignore"):
        g = np.where(kept[:, None], f * g, 0.0)
    check(grad, from_rows(g, shape, axis), dtype,
          from_rows(np.broadcast_to(np.abs(f) * (1 + gamma), g.shape), shape, axis), "grad")


# -------------------------------------------------------- information theory


def ref_info_terms(p, q, mode, lo=None, hi=None, gather=False):
    """Per-element terms and d/dq of -p log q ("xent"), p log(p/q) ("kl") or
    -p log p ("entropy"), float64: a term with p == 0 is 0 (a NaN q still
    reaches it, unless ``gather``: integer labels read q at the label only),
    q clipped to [lo, hi] when lo is given (0 gradient there)."""
    with np.errstate(all="ignore"):
        clipped = np.zeros(q.shape, dtype=bool)
        if lo is not None:
            clipped = (q < lo) | (q > hi)
            q = np.clip(q, lo, hi)
        if mode == "xent":
            t = -p * np.log(q)
        elif mode == "kl":
            r = p / q
            t = np.where((r >= np.finfo(np.float64).tiny) & (r < inf), p * np.log(r),
                         p * (np.log(p) - np.log(q)))
        else:
            t = -p * np.log(p)
        zero = p == 0
        t = np.where(zero, np.where(np.isnan(q) & (not gather), nan, 0.0), t)
        g = np.where(zero | clipped, 0.0, -p / q)
    return t, g


def draw_prob_pair(draw, two=True):
    """p and q (in drawn float dtypes and layouts) and a class axis."""
    shape = draw_shape(draw, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    outside = draw(st.integers(0, 5)) == 0  # values outside [0, 1] are used as given

    def one():
        dt = draw(st.sampled_from(FLOATS))
        a = draw_values(draw, shape, dt, "unit")
        if outside and a.size:
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([1.5, -0.25, 3.0]))
        return in_layout(draw, a)

    return (one(), one() if two else None, axis)


def info_reference(p, q, axis, mode, reduction, lo=None, hi=None, gather=False):
    p2, q2 = to_rows(p, axis), to_rows(p if q is None else q, axis)
    t, g = ref_info_terms(p2, q2, mode, lo, hi, gather)
    batch = batch_shape(p.shape, axis)
    per = t.sum(1).reshape(batch)
    scale = np.abs(t).sum(1).reshape(batch)
    want, factor = reduce_ref(per, reduction)
    return want, scale if reduction == "none" else np.sum(scale), from_rows(g * factor, p.shape,
                                                                            axis)


@pytest.mark.parametrize("mode", ["xent", "kl"])
@SETTINGS
@given(data=st.data())
def test_cross_entropy_and_kl_divergence(mode, data):
    draw = data.draw
    p, q, axis = draw_prob_pair(draw)
    eps = draw(st.sampled_from([None, None, 1e-7, 0.05]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    f = xent.cross_entropy if mode == "xent" else xent.kl_divergence
    note(f"p={p!r} q={q!r} eps={eps} reduction={reduction}")
    with unchanged(p, q):
        value, grad = f(p, q, axis=axis, eps=eps, reduction=reduction, return_grad=True)
        value_only = f(p, q, axis=axis, eps=eps, reduction=reduction)
    np.testing.assert_array_equal(value_only, value)
    out_dtype = np.result_type(p, q)
    assert np.asarray(value).dtype == out_dtype
    assert grad.shape == q.shape and grad.dtype == q.dtype
    lo, hi = (None, None) if eps is None else (eps, 1.0)
    want, scale, want_grad = info_reference(p, q, axis, mode, reduction, lo, hi)
    check(value, want, out_dtype, scale)
    check(grad, want_grad, q.dtype, 0.0, "grad")


@SETTINGS
@given(st.data())
def test_cross_entropy_with_integer_labels(data):
    draw = data.draw
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw_shape(draw, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    q = in_layout(draw, draw_values(draw, shape, dtype, "unit"))
    c, batch = shape[axis], batch_shape(shape, axis)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ldt = draw(st.sampled_from(INTS))
    labels = rng.integers(0, max(1, min(c, int(np.iinfo(ldt).max) + 1)), batch).astype(ldt)
    labels = in_layout(draw, np.asarray(labels))
    eps = draw(st.sampled_from([None, 1e-7, 0.05]))
    reduction = draw(st.sampled_from(REDUCTIONS))
    with unchanged(q, labels):
        if c == 0 and labels.size:
            with pytest.raises(ValueError, match="class indices"):
                xent.cross_entropy(labels, q, axis=axis, eps=eps, reduction=reduction)
            return
        value, grad = xent.cross_entropy(labels, q, axis=axis, eps=eps, reduction=reduction,
                                         return_grad=True)
    assert grad.shape == q.shape and grad.dtype == dtype
    p = np.moveaxis(one_hot(labels.astype(np.int64), c), -1, axis)
    lo, hi = (None, None) if eps is None else (eps, 1.0)
    want, scale, want_grad = info_reference(p, q.astype(np.float64), axis, "xent", reduction,
                                            lo, hi, gather=True)
    check(value, want, dtype, scale)
    check(grad, want_grad, dtype, 0.0, "grad")


@SETTINGS
@given(st.data())
def test_entropy(data):
    draw = data.draw
    p, _, axis = draw_prob_pair(draw, two=False)
    reduction = draw(st.sampled_from(REDUCTIONS))
    with unchanged(p):
        value = xent.entropy(p, axis=axis, reduction=reduction)
    assert np.asarray(value).dtype == p.dtype
    want, scale, _ = info_reference(p, None, axis, "entropy", reduction)
    check(value, want, p.dtype, scale)


# ---------------------------------------------------------------- log_loss


@SETTINGS
@given(st.data())
def test_metrics_log_loss(data):
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 40))
    c = draw(st.integers(2, 6))
    dtype = draw(st.sampled_from(FLOATS))
    indicator = draw(st.integers(0, 4)) == 0
    one_d = c == 2 and not indicator and draw(st.booleans())
    proba = draw_values(draw, (n,) if one_d else (n, c), dtype, "unit", specials=False)
    if proba.size and draw(st.booleans()):
        proba.flat[draw(st.integers(0, proba.size - 1))] = draw(st.sampled_from(
            [0.0, 1.0, subnormal(dtype)]))
    bad = draw(st.integers(0, 9)) == 0
    if bad:
        proba.flat[draw(st.integers(0, proba.size - 1))] = draw(st.sampled_from(
            [nan, inf, -inf, 1.5, -0.5]))
    proba = in_layout(draw, proba)
    classes = np.array(draw(st.sampled_from([[0, 1, 2, 3, 4, 5], [-3, 2, 7, 10, 11, 40],
                                             list("abcdef")])))[:c]
    labels = None
    if indicator:
        y = (rng.random((n, c)) > 0.5).astype(draw(st.sampled_from([np.int8, np.float64])))
        idx = None
    else:
        idx = rng.integers(0, c, n)
        if n >= c and draw(st.booleans()):  # every class present: found from y_true
            idx[rng.permutation(n)[:c]] = np.arange(c)
        else:
            labels = classes
        y = classes[idx]
    y = in_layout(draw, y)
    sw = None
    if draw(st.booleans()):
        sw = in_layout(draw, rng.uniform(0.1, 2, n))
    normalize = draw(st.booleans())
    with unchanged(y, proba, sw, labels), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows not summing to 1
        if bad:
            with pytest.raises(ValueError, match="y_proba"):
                xent.metrics.log_loss(y, proba, normalize=normalize, sample_weight=sw,
                                      labels=labels)
            return
        value = xent.metrics.log_loss(y, proba, normalize=normalize, sample_weight=sw,
                                      labels=labels)
    assert isinstance(value, float)
    p64 = proba.astype(np.float64)
    if one_d:  # the probability of the greater label; 1 - p in its dtype, as scikit-learn
        p64 = np.stack([1 - proba, proba], axis=1).astype(np.float64)
    eps = float(np.finfo(proba.dtype).eps)
    logs = np.log(np.clip(p64, eps, 1 - eps))
    if indicator:
        per = -(np.asarray(y, dtype=np.float64) * logs).sum(1)
    else:
        per = -logs[np.arange(n), idx]
    w = np.ones(n) if sw is None else np.asarray(sw)
    want = np.dot(per, w) / (np.sum(w) if normalize else 1.0)
    np.testing.assert_allclose(value, want, rtol=1e-12)


# --------------------------------------------- gradients by finite differences


def small(rng, shape, kind="logits"):
    if kind == "unit":
        return rng.uniform(0.05, 0.95, shape)
    return rng.standard_normal(shape) * 2


def fd_binary(case, draw, rng, shape, axis, reduction):
    """An element-wise (or multi-label) loss of its logits/probabilities."""
    fn = {"bce_logits": xent.binary_cross_entropy_with_logits,
          "bce_probs": xent.binary_cross_entropy, "multilabel": xent.multilabel_cross_entropy,
          "binary_focal": xent.binary_focal_loss_with_logits}[case]
    t = rng.random(shape)
    opts = dict(weight=rng.uniform(0.2, 2, shape[-1:]), reduction=reduction,
                label_smoothing=draw(st.sampled_from([0.0, 0.1])))
    if case == "binary_focal":
        opts.update(gamma=draw(st.sampled_from([0.0, 1.5, 2.0])),
                    alpha=draw(st.sampled_from([None, 0.3])))
    else:
        opts["pos_weight"] = rng.uniform(0.5, 2, shape[-1:])
    if case == "multilabel":
        opts.update(sample_weight=rng.uniform(0.2, 2, shape[:-1]),
                    class_reduction=draw(st.sampled_from(["sum", "mean"])))
    x = small(rng, shape, "unit" if case == "bce_probs" else "logits")
    return (lambda v, **kw: fn(v, t, **opts, **kw)), x, (
        shape[:-1] if case == "multilabel" else shape)


def fd_classes(case, draw, rng, shape, axis, reduction):
    """A loss of logits (log-probabilities) along a class axis, labels or probabilities."""
    c, batch = shape[axis], batch_shape(shape, axis)
    labels = np.array(rng.integers(0, c, batch))
    if labels.size > 1:
        labels.flat[0] = -100
    probs = np.moveaxis(rng.dirichlet(np.ones(c), batch) if batch else rng.dirichlet(np.ones(c)),
                        -1, axis)
    target = labels if case.endswith("labels") else probs
    if case.startswith("softmax_focal"):
        fn = xent.softmax_focal_loss
        opts = dict(gamma=draw(st.sampled_from([0.0, 0.7, 2.0])), alpha=rng.uniform(0.2, 1, c))
    else:
        fn = xent.softmax_cross_entropy if case.startswith("softmax") else xent.nll_loss
        opts = dict(weight=rng.uniform(0.2, 2, c), sample_weight=rng.uniform(0.2, 2, batch),
                    label_smoothing=draw(st.sampled_from([0.0, 0.2])))
        if fn is xent.softmax_cross_entropy:
            opts["z_loss"] = draw(st.sampled_from([0.0, 0.01]))
    return (lambda v, **kw: fn(v, target, axis=axis, reduction=reduction, **opts, **kw)), \
        small(rng, shape), batch


def fd_information(case, draw, rng, shape, axis, reduction):
    """cross_entropy or kl_divergence of q (no upstream gradient argument)."""
    c, batch = shape[axis], batch_shape(shape, axis)
    if case == "cross_entropy_labels":
        p = np.array(rng.integers(0, c, batch))
    else:
        p = np.moveaxis(rng.dirichlet(np.ones(c), batch) if batch else rng.dirichlet(np.ones(c)),
                        -1, axis)
    fn = xent.kl_divergence if case == "kl_divergence" else xent.cross_entropy
    eps = draw(st.sampled_from([None, 1e-3]))
    return (lambda v, **kw: fn(p, v, axis=axis, eps=eps, reduction=reduction, **kw)), \
        small(rng, shape, "unit"), None


GRAD_CASES = {
    "bce_logits": fd_binary, "bce_probs": fd_binary, "multilabel": fd_binary,
    "binary_focal": fd_binary, "softmax_xent_labels": fd_classes,
    "softmax_xent_probs": fd_classes, "nll_labels": fd_classes, "nll_probs": fd_classes,
    "softmax_focal_labels": fd_classes, "softmax_focal_probs": fd_classes,
    "cross_entropy": fd_information, "cross_entropy_labels": fd_information,
    "kl_divergence": fd_information,
}


@pytest.mark.parametrize("case", GRAD_CASES)
@GRAD_SETTINGS
@given(data=st.data())
def test_gradients_by_finite_differences(case, data):
    """return_grad gives the gradient of sum(grad_loss * loss), for every
    reduction, on small float64 inputs of rank 1-3 and any class axis."""
    draw = data.draw
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    axis = draw(st.integers(-ndim, ndim - 1))
    reduction = draw(st.sampled_from(REDUCTIONS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    call, x, gl_shape = GRAD_CASES[case](case, draw, rng, shape, axis, reduction)
    if gl_shape is None:  # no grad_loss argument: the upstream gradient is 1
        gl, kw = 1.0, {}
    else:
        gl = rng.uniform(0.5, 2, gl_shape) if reduction == "none" else float(rng.uniform(0.5, 2))
        kw = dict(grad_loss=gl)
    before = x.copy()
    _, grad = call(x, return_grad=True, **kw)
    np.testing.assert_array_equal(x, before)
    fd = finite_difference_grad(lambda v: float(np.sum(np.asarray(call(v)) * gl)), x)
    np.testing.assert_allclose(grad, fd, rtol=2e-5, atol=2e-7 * (1 + np.abs(fd).max()))
