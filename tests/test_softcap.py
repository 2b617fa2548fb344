"""softmax_cross_entropy(..., softcap=c): the logits become c * tanh(x / c)
(Gemma 2) before the softmax, in the same pass, and the gradient is chained
through the cap. Checked on every path (blocks, rows, streamed-eligible rows,
long rows by rows and by chunks) and instruction set, for every target kind
and option, against a float64 NumPy reference, by finite differences, and for
bit-identity across thread counts; bad values of softcap are refused before
anything is written."""

import numpy as np
import pytest

import xent
from xent import _dispatch
from xent import _kernels as _compiled  # must import: never skip

PATHS = _dispatch.supported_isas()
TOL = {np.float64: 1e-12, np.float32: 3e-6}


def ref_softcap(x, target, cap, *, weight=None, sample_weight=None, ignore_index=-100,
                label_smoothing=0.0, z_loss=0.0, reduction="mean"):
    """The float64 reference, from the definitions: the cross-entropy of the
    capped logits y = cap tanh(x / cap), its gradient times dy/dx."""
    x = np.asarray(x, dtype=np.float64)
    n, c = x.shape
    t = np.tanh(x / cap)
    y = cap * t
    m = y.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(y - m).sum(-1, keepdims=True)))[:, 0]
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    target = np.asarray(target)
    eps = label_smoothing
    if target.dtype.kind in "iu":
        valid = target != ignore_index
        lab = np.where(valid, target, 0)
        a = np.broadcast_to(w * eps / c, (n, c)).copy()
        a[np.arange(n), lab] += (1 - eps) * w[lab]
        den = np.where(valid, w[lab], 0.0)
    else:
        a = w * ((1 - eps) * target.astype(np.float64) + eps / c)
        valid = np.ones(n, dtype=bool)
        den = np.ones(n)
    per = (a * (lse[:, None] - y)).sum(-1) + z_loss * lse**2
    grad = (a.sum(-1, keepdims=True) + 2 * z_loss * lse[:, None]) * np.exp(y - lse[:, None]) - a
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    per = np.where(valid, per, 0.0) * sw
    grad = np.where(valid[:, None], grad, 0.0) * sw[:, None] * (1 - t * t)
    if reduction == "none":
        return per, grad
    scale = 1.0 / (den * sw).sum()
    return per.sum() * scale, grad * scale


def problem(n, c, dtype, kind, seed=3):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 30).astype(dtype)  # beyond the cap: tanh saturates
    x[0, 0] = 0.0
    if kind == "labels":
        target = rng.integers(0, c, n)
        target[1 % n] = -100
    else:
        target = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    return x, target


OPTIONS = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.1},
    "weights": {"weight": True, "sample_weight": True},
    "z_loss": {"z_loss": 1e-3},
    "none": {"reduction": "none"},
}


def _options(name, n, c, rng):
    kw = dict(OPTIONS[name])
    if kw.pop("weight", False):
        kw["weight"] = rng.random(c) + 0.5
    if kw.pop("sample_weight", False):
        kw["sample_weight"] = np.where(rng.random(n) < 0.2, 0.0, rng.random(n) + 0.1)
    return kw


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c, block", [(2, True), (10, True), (33, True), (33, False), (300, False),
                                      (65536 + 5, False)])
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("opt", list(OPTIONS))
def test_against_the_reference(isa, dtype, c, block, kind, opt):
    n = 3 if c > 1000 else 37
    x, target = problem(n, c, dtype, kind)
    kw = _options(opt, n, c, np.random.default_rng(1))
    cap = 15.0
    want, want_grad = ref_softcap(x, target, cap, **kw)
    with _dispatch.use_isa(isa), _dispatch.use_block_classes(64 if block else 0):
        loss, grad = xent.softmax_cross_entropy(x, target, softcap=cap, return_grad=True, **kw)
        loss_only = xent.softmax_cross_entropy(x, target, softcap=cap, **kw)
        inplace = x.copy()
        loss_in, _ = xent.softmax_cross_entropy(inplace, target, softcap=cap, return_grad=True,
                                                grad_out=inplace, **kw)
    tol = TOL[dtype]
    assert loss.dtype == grad.dtype == dtype
    np.testing.assert_allclose(loss, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(loss_only, loss, rtol=tol, atol=tol)
    np.testing.assert_array_equal(loss_in, loss)
    scale = np.abs(want_grad).max()
    np.testing.assert_allclose(grad, want_grad, rtol=tol, atol=tol * scale)
    np.testing.assert_array_equal(inplace, grad)


@pytest.mark.parametrize("c", [5, 200, 65536 + 7])
def test_gradient_by_finite_differences(c):
    rng = np.random.default_rng(4)
    n = 2 if c > 1000 else 6
    x = rng.standard_normal((n, c)) * 8
    y = rng.integers(0, c, n)
    cap = 4.0
    _, grad = xent.softmax_cross_entropy(x, y, softcap=cap, z_loss=1e-2, return_grad=True)
    h = 1e-6
    for i, j in [(0, int(y[0])), (n - 1, 0), (n // 2, c - 1), (1, c // 2)]:
        up, down = x.copy(), x.copy()
        up[i, j] += h
        down[i, j] -= h
        fd = (xent.softmax_cross_entropy(up, y, softcap=cap, z_loss=1e-2)
              - xent.softmax_cross_entropy(down, y, softcap=cap, z_loss=1e-2)) / (2 * h)
        assert abs(fd - grad[i, j]) <= 1e-7 + 1e-5 * abs(grad[i, j]), (i, j, fd, grad[i, j])


def test_a_large_cap_is_the_plain_loss():
    x, y = problem(50, 20, np.float64, "labels")
    plain = xent.softmax_cross_entropy(x / 100, y, return_grad=True)
    capped = xent.softmax_cross_entropy(x / 100, y, softcap=1e6, return_grad=True)
    np.testing.assert_allclose(capped[0], plain[0], rtol=1e-12)
    np.testing.assert_allclose(capped[1], plain[1], rtol=1e-9, atol=1e-15)


def test_saturated_and_special_logits():
    """tanh saturates to +-1: +-inf logits are finite after the cap; NaN stays
    in its row."""
    x = np.array([[np.inf, 0.0, -np.inf], [1e30, -1e30, 0.0], [np.nan, 0.0, 1.0], [0.0, 0.0, 0.0]])
    y = np.array([0, 1, 2, 2])
    loss, grad = xent.softmax_cross_entropy(x, y, softcap=2.0, reduction="none", return_grad=True)
    want = [np.log(1 + np.exp(-2) + np.exp(-4)), np.log(np.exp(2) + 1 + np.exp(-2)) + 2, np.nan,
            np.log(3)]
    np.testing.assert_allclose(loss, want, rtol=1e-14)
    assert np.isnan(grad[2]).all() and np.isfinite(grad[[0, 1, 3]]).all()
    assert grad[0, 0] == 0.0 and grad[0, 2] == 0.0  # tanh' is 0 at +-inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [10, 100, 3000, 65536 + 3])
def test_bit_identical_for_any_thread_count(dtype, c):
    n = 9 if c > 1000 else 4000
    x, y = problem(n, c, dtype, "labels", seed=9)
    runs = [xent.softmax_cross_entropy(x, y, softcap=20.0, reduction="none", return_grad=True,
                                       n_threads=t) for t in (1, 2, 3, 8)]
    for loss, grad in runs[1:]:
        assert loss.tobytes() == runs[0][0].tobytes() and grad.tobytes() == runs[0][1].tobytes()


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1.0, ValueError), (np.nan, ValueError),
                                        (np.inf, ValueError), ("30", TypeError), (True, TypeError),
                                        ([30.0], TypeError)])
def test_bad_softcap_is_refused_before_anything_is_written(bad, error):
    x, y = problem(5, 4, np.float64, "labels")
    g = np.full_like(x, 7.0)
    before = x.copy()
    with pytest.raises(error, match="softcap"):
        xent.softmax_cross_entropy(x, y, softcap=bad, return_grad=True, grad_out=g)
    assert (g == 7.0).all() and np.array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("c", [4, 300])
def test_a_cap_beyond_the_dtypes_range_is_no_cap(dtype, c):
    """softcap=1e300 with float32 (or float16) logits: the cap does not fit the
    type; its limit (y = x) is the value, not inf * tanh(0) = NaN (found by the
    fuzz target)."""
    rng = np.random.default_rng(c)
    x = rng.normal(size=(40, c)).astype(dtype)
    y = rng.integers(0, c, 40)
    for n in (1, 40):
        want = xent.softmax_cross_entropy(x[:n], y[:n], return_grad=True)
        got = xent.softmax_cross_entropy(x[:n], y[:n], softcap=1e300, return_grad=True)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-7 if dtype == np.float32 else 1e-3)
