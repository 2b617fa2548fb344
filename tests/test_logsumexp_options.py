"""logsumexp's scale factors ``b`` and ``return_sign`` (SciPy's), and ``where``
masks on logsumexp, softmax and log_softmax (JAX's and optax's): SciPy's own
test cases in our words, SciPy live, mpmath, a float64 NumPy reference,
finite differences, special rows, the forms ``b`` and ``where`` broadcast
from, thread bit-identity, outputs and bad input."""

import mpmath
import numpy as np
import pytest

import xent
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401

mpmath.mp.dps = 60


def _ref(x, b=None, where=None, axis=-1):
    """log|sum b exp(x)|, its sign, the kept entries and the gradient of
    log|S|, in float64 from the definition (x and b broadcast)."""
    x = np.asarray(x, np.float64)
    b = np.ones(()) if b is None else np.asarray(b, np.float64)
    x, b = np.broadcast_arrays(x, b)
    keep = b != 0
    if where is not None:
        keep = keep & np.broadcast_to(where, x.shape)
    xk = np.where(keep, x, -np.inf)
    m = np.max(xk, axis=axis, keepdims=True)
    mf = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(all="ignore"):
        terms = np.where(keep, b * np.exp(xk - mf), 0.0)
        s = np.sum(terms, axis=axis, keepdims=True)
        lse = mf + np.log(np.abs(s))
        grad = np.where(keep, terms / s, 0.0)
    return np.squeeze(lse, axis), np.squeeze(np.sign(s), axis), grad


def _mp_lse(x, b):
    """log|sum b exp(x)| and its sign at 60 digits."""
    s = mpmath.fsum(mpmath.mpf(float(bi)) * mpmath.exp(mpmath.mpf(float(xi)))
                    for xi, bi in zip(x, b) if bi != 0)
    if s == 0:
        return -np.inf, 0.0
    return float(mpmath.log(abs(s))), float(mpmath.sign(s))


# --- SciPy's own cases ---------------------------------------------------------

def test_scipy_docstring_cases():
    a = np.arange(10)
    assert xent.logsumexp(a, b=np.arange(10, 0, -1)) == pytest.approx(9.9170178533034665, rel=1e-15)
    r, s = xent.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    assert r == pytest.approx(1.5413248546129181, rel=1e-15) and s == -1.0
    # a masked array's mask as zero weights
    x = np.array([np.log(2), 2, np.log(3)])
    assert xent.logsumexp(x, b=[1, 0, 1]) == pytest.approx(np.log(5), rel=1e-15)


def test_a_zero_weight_drops_its_entry_whatever_its_value():
    assert xent.logsumexp([1.0, 10000.0], b=[1.0, 0.0]) == 1.0
    assert xent.logsumexp([1.0, np.inf], b=[1.0, 0.0]) == 1.0
    assert xent.logsumexp([1.0, np.nan], b=[1.0, 0.0]) == 1.0
    r, s = xent.logsumexp([1.0, 2.0], b=[0.0, 0.0], return_sign=True)
    assert r == -np.inf and s == 0.0


def test_a_sum_of_zero_has_sign_zero_and_minus_inf():
    r, s = xent.logsumexp([1.0, 1.0], b=[1.0, -1.0], return_sign=True)
    assert r == -np.inf and s == 0.0
    assert xent.logsumexp([1.0, 1.0], b=[1.0, -1.0]) == -np.inf


def test_a_negative_sum_is_nan_without_signs():
    assert np.isnan(xent.logsumexp([1.0, 2.0], b=[1.0, -1.0]))
    r, s = xent.logsumexp([1.0, 2.0], b=[-1.0, -1.0], return_sign=True)
    assert s == -1.0 and r == pytest.approx(np.log(np.e + np.e ** 2), rel=1e-15)


def test_shapes_of_the_result_and_sign():
    a = np.ones((1, 2, 3, 4))
    r, s = xent.logsumexp(a, axis=2, b=np.ones_like(a), return_sign=True)
    assert r.shape == s.shape == (1, 2, 4)
    r, s = xent.logsumexp(a, axis=(1, 3), b=np.ones_like(a), keepdims=True, return_sign=True)
    assert r.shape == s.shape == (1, 1, 3, 1)
    # x broadcast against b, as SciPy: the result has the broadcast batch shape
    r = xent.logsumexp(np.zeros((4, 1, 2, 1)), axis=None, b=np.ones((3, 1, 5)))
    assert np.ndim(r) == 0 and r == pytest.approx(np.log(4 * 3 * 2 * 5), rel=1e-15)
    r = xent.logsumexp(np.zeros(5), b=np.ones((3, 5)))
    assert r.shape == (3,)


def test_infinite_entries():
    assert xent.logsumexp([np.inf, 1.0], b=[2.0, 1.0]) == np.inf
    r, s = xent.logsumexp([np.inf, np.inf], b=[-1.0, -2.0], return_sign=True)
    assert r == np.inf and s == -1.0
    r, s = xent.logsumexp([np.inf, np.inf], b=[1.0, -1.0], return_sign=True)
    assert np.isnan(r) and np.isnan(s)  # (inf - inf)
    r, s = xent.logsumexp([-np.inf, -np.inf], b=[1.0, 2.0], return_sign=True)
    assert r == -np.inf and s == 0.0
    assert np.isnan(xent.logsumexp([np.nan, 1.0], b=[1.0, 1.0]))
    assert np.isnan(xent.logsumexp([1.0, 1.0], b=[np.nan, 1.0]))


def test_relative_accuracy_near_zero_with_b():
    # SciPy 1.15's precision: the dominant entry's term set apart
    assert xent.logsumexp([0.0, -40.0], b=[1.0, 1.0]) == 4.248354255291589e-18
    got = xent.logsumexp([0.0, -40.0], b=[1.0, -1.0])
    assert got == pytest.approx(-4.248354255291589e-18, rel=1e-15)
    got = xent.logsumexp([0.0, -40.0], b=[0.5, 1.0])
    want = float(mpmath.log(mpmath.mpf(0.5) + mpmath.exp(-40)))
    assert got == pytest.approx(want, rel=1e-15)


# --- SciPy live, mpmath, a float64 reference -----------------------------------

@pytest.mark.parametrize("shape,axis", [((40, 37), -1), ((6, 5, 300), 1), ((7, 9), None),
                                        ((3, 20000), -1), ((5, 4, 3), (0, 2))])
@pytest.mark.parametrize("return_sign", [False, True])
def test_matches_scipy(shape, axis, return_sign):
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape) * 4
    b = rng.standard_normal(shape)
    b[rng.random(shape) < 0.2] = 0.0
    got = xent.logsumexp(x, axis=axis, b=b, return_sign=return_sign)
    want = special.logsumexp(x, axis=axis, b=b, return_sign=return_sign)
    if return_sign:
        np.testing.assert_array_equal(got[1], want[1])
        got, want = got[0], want[0]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_matches_mpmath():
    rng = np.random.default_rng(2)
    worst = 0.0
    for c in (1, 2, 7, 33, 257):
        for _ in range(6):
            x = rng.standard_normal(c) * 10
            b = rng.standard_normal(c) * rng.choice([1e-3, 1.0, 1e3])
            x[rng.integers(c)] = 30.0  # (a dominant entry)
            r, s = xent.logsumexp(x, b=b, return_sign=True)
            wr, ws = _mp_lse(x, b)
            assert s == ws
            worst = max(worst, abs(r - wr) / max(1e-300, abs(wr)))
    assert worst < 1e-14, worst


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-14), (np.float32, 3e-7)])
@pytest.mark.parametrize("shape", [(64, 10), (33, 257), (6, 40000)])
def test_b_and_where_against_the_reference(dtype, rtol, shape):
    rng = np.random.default_rng(shape[1])
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    b = rng.random(shape).astype(dtype) + 0.25
    where = rng.random(shape) > 0.3
    where[3] = False  # a row of nothing
    x[5, ~where[5]] = np.nan  # left out: no effect
    lse, sign, grad = xent.logsumexp(x, b=b, where=where, return_sign=True, return_grad=True)
    assert lse.dtype == sign.dtype == grad.dtype == dtype
    wl, ws, wg = _ref(x, b, where)
    np.testing.assert_allclose(lse, wl, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(sign, ws)
    np.testing.assert_allclose(grad, wg, rtol=4 * rtol, atol=4 * rtol * np.max(np.abs(wg)))
    assert lse[3] == -np.inf and sign[3] == 0 and not grad[3].any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_masked_softmax_and_log_softmax(dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((50, 300)) * 3).astype(dtype)
    where = rng.random(x.shape) > 0.5
    where[0] = False
    x[1, ~where[1]] = np.inf
    lse, _, wg = _ref(x, None, where)
    p = xent.softmax(x, where=where)
    lp = xent.log_softmax(x, where=where)
    tol = 1e-14 if dtype == np.float64 else 3e-6
    np.testing.assert_allclose(p, wg, rtol=tol, atol=tol * 1e-2)
    with np.errstate(invalid="ignore"):
        want_lp = np.where(where, x.astype(np.float64) - lse[:, None], -np.inf)
    np.testing.assert_allclose(lp, want_lp, rtol=tol, atol=tol)
    assert not p[0].any() and np.all(lp[0] == -np.inf)
    assert np.all(p[~where] == 0) and np.all(lp[~where] == -np.inf)


def test_jax_where_semantics():
    """A row with an entry left out equals the row without it (JAX's and
    optax's where); every entry kept equals no mask."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((20, 11))
    keep = np.ones(11, bool)
    keep[[2, 7]] = False
    np.testing.assert_allclose(xent.logsumexp(x, where=keep), xent.logsumexp(x[:, keep]), rtol=1e-15)
    np.testing.assert_allclose(xent.softmax(x, where=keep)[:, keep], xent.softmax(x[:, keep]),
                               rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(xent.log_softmax(x, where=keep)[:, keep], xent.log_softmax(x[:, keep]),
                               rtol=1e-15, atol=1e-15)
    every = np.ones_like(x, bool)
    np.testing.assert_allclose(xent.logsumexp(x, where=every), xent.logsumexp(x), rtol=4e-16)
    np.testing.assert_allclose(xent.softmax(x, where=every), xent.softmax(x), rtol=4e-16, atol=1e-17)


def test_jax_live_if_importable():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((8, 13))
    where = rng.random(x.shape) > 0.4
    b = rng.random(x.shape)
    np.testing.assert_allclose(xent.logsumexp(x, b=b, where=where),
                               np.asarray(jax.nn.logsumexp(x, axis=-1, b=b, where=where)), rtol=1e-13)
    np.testing.assert_allclose(xent.softmax(x, where=where),
                               np.asarray(jax.nn.softmax(x, where=where)), rtol=1e-13, atol=1e-16)


# --- gradients -------------------------------------------------------------------

@pytest.mark.parametrize("signed", [False, True])
def test_gradient_by_finite_differences(signed):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 9))
    b = rng.standard_normal((4, 9)) if signed else rng.random((4, 9)) + 0.1
    where = rng.random((4, 9)) > 0.2
    lse, sign, grad = xent.logsumexp(x, b=b, where=where, return_sign=True, return_grad=True)
    h = 1e-6
    for i in range(4):
        for j in range(9):
            up, down = x.copy(), x.copy()
            up[i, j] += h
            down[i, j] -= h
            fd = (xent.logsumexp(up, b=b, where=where, return_sign=True)[0][i]
                  - xent.logsumexp(down, b=b, where=where, return_sign=True)[0][i]) / (2 * h)
            assert abs(fd - grad[i, j]) <= 1e-6 * max(1.0, abs(fd)), (i, j, fd, grad[i, j])
    assert np.all(grad[~where] == 0)


def test_gradient_of_a_nan_result_and_of_a_plus_inf_row():
    _, g = xent.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_grad=True)
    assert np.all(np.isnan(g))  # (log of a negative sum)
    _, g = xent.logsumexp([np.inf, 1.0, np.inf], b=[1.0, 5.0, 3.0], return_grad=True)
    np.testing.assert_array_equal(g, [0.25, 0.0, 0.75])


# --- forms, paths, threads -------------------------------------------------------

def test_the_forms_b_and_where_take_give_the_same_values():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((30, 17))
    per_class = rng.random(17) + 0.5
    per_row = rng.random((30, 1)) + 0.5
    want = xent.logsumexp(x, b=np.broadcast_to(per_class, x.shape).copy())
    np.testing.assert_array_equal(xent.logsumexp(x, b=per_class), want)
    want = xent.logsumexp(x, b=np.broadcast_to(per_row, x.shape).copy())
    np.testing.assert_array_equal(xent.logsumexp(x, b=per_row), want)
    np.testing.assert_allclose(xent.logsumexp(x, b=per_row), xent.logsumexp(x) + np.log(per_row[:, 0]),
                               rtol=1e-15)
    full = rng.random((30, 34))[:, ::2]  # (a class stride of 2: copied, the same values)
    np.testing.assert_array_equal(xent.logsumexp(x, b=full), xent.logsumexp(x, b=full.copy()))
    assert xent.logsumexp(x, b=0.0)[0] == -np.inf
    np.testing.assert_array_equal(xent.logsumexp(x, where=np.False_), np.full(30, -np.inf))
    rows = rng.random((30, 1)) > 0.5
    got = xent.softmax(x, where=rows)
    assert not got[~rows[:, 0]].any()
    np.testing.assert_array_equal(got[rows[:, 0]], xent.softmax(x[rows[:, 0]], where=np.True_))
    # a class axis other than the last
    xt = np.ascontiguousarray(x.T)
    np.testing.assert_array_equal(xent.logsumexp(xt, axis=0, b=per_class[:, None]),
                                  xent.logsumexp(x, b=per_class))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4001, 10), (301, 3000), (2, 70001)])
def test_bit_identical_for_any_thread_count(dtype, shape):
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    where = rng.random(shape) > 0.1
    runs = [xent.logsumexp(x, b=b, where=where, return_sign=True, return_grad=True, n_threads=t)
            for t in (1, 2, 3, 8)]
    for run in runs[1:]:
        for a, c in zip(run, runs[0]):
            assert a.tobytes() == c.tobytes()
    sm = [xent.softmax(x, where=where, n_threads=t).tobytes() for t in (1, 2, 3)]
    assert sm[0] == sm[1] == sm[2]


def test_outputs_in_place_and_untouched_inputs():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((20, 30))
    where = rng.random(x.shape) > 0.3
    b = rng.random(x.shape)
    saved = x.copy(), where.copy(), b.copy()
    out = np.empty(20)
    r, s = xent.logsumexp(x, b=b, where=where, return_sign=True, out=out)
    assert r is out
    np.testing.assert_array_equal(out, xent.logsumexp(x, b=b, where=where))
    for a, c in zip((x, where, b), saved):
        np.testing.assert_array_equal(a, c)
    want = xent.softmax(x, where=where)
    y = x.copy()
    assert xent.softmax(y, where=where, out=y) is y
    np.testing.assert_array_equal(y, want)
    y = x.copy()
    assert xent.log_softmax(y, where=where, out=y) is y
    np.testing.assert_array_equal(y, xent.log_softmax(x, where=where))


def test_dtypes():
    x32 = np.float32([1.0, 2.0, 3.0])
    assert xent.logsumexp(x32, b=np.float32(2.0)).dtype == np.float32
    assert xent.logsumexp(x32, b=[1.0, 1.0, 1.0]).dtype == np.float64  # (SciPy's promotion)
    assert xent.logsumexp(x32.astype(np.float16), where=[True, False, True]).dtype == np.float16
    assert xent.logsumexp([1, 2, 3], b=[1, 1, 1]) == pytest.approx(xent.logsumexp([1.0, 2.0, 3.0]))
    # b of another dtype than x, broadcast: converted (b only), the same values
    x = np.random.default_rng(14).standard_normal((5, 7))
    b32 = np.float32([0.5, -1, 2, 0, 1, 3, 0.25])
    np.testing.assert_array_equal(xent.logsumexp(x, b=b32, return_sign=True)[0],
                                  xent.logsumexp(x, b=b32.astype(np.float64), return_sign=True)[0])
    unaligned = np.frombuffer(b"\0" + b32.tobytes(), np.float32, offset=1)
    np.testing.assert_array_equal(xent.logsumexp(x.astype(np.float32), b=unaligned, return_sign=True)[0],
                                  xent.logsumexp(x.astype(np.float32), b=b32, return_sign=True)[0])


# --- bad input -------------------------------------------------------------------

@pytest.mark.parametrize("kw,err,words", [
    ({"where": np.ones((4, 6))}, TypeError, "where: expected a boolean array"),
    ({"where": [1, 0, 1, 0, 1, 0]}, TypeError, "where: expected a boolean array"),
    ({"where": np.ones((2, 2), bool)}, ValueError, "where: expected an array broadcastable"),
    ({"b": np.ones((2, 2))}, ValueError, "b: expected an array broadcastable"),
    ({"b": np.ones(6, complex)}, TypeError, "b: expected a floating-point array"),
    ({"return_sign": 1}, TypeError, "return_sign: expected a bool"),
])
def test_bad_input_names_the_argument_before_writing(kw, err, words):
    x = np.zeros((4, 6))
    out = np.full(4, 7.0)
    with pytest.raises(err, match=words):
        xent.logsumexp(x, out=out, **kw)
    assert np.all(out == 7.0)


def test_an_output_overlapping_b_or_where_is_refused():
    x = np.zeros((4, 6))
    b = np.ones((4, 6))
    with pytest.raises(ValueError, match="out: must not overlap the memory of b"):
        xent.logsumexp(x, b=b, out=b[:, 0])
    with pytest.raises(ValueError, match="out: must not overlap"):
        xent.softmax(x, where=np.ones((4, 6), bool), out=x[:, ::-1])
    out = np.full((4, 6), 3.0)
    with pytest.raises(ValueError, match="where: expected an array broadcastable"):
        xent.softmax(x, where=np.ones(5, bool), out=out)
    assert np.all(out == 3.0)


@pytest.mark.parametrize("op", ["logsumexp", "softmax", "log_softmax"])
@pytest.mark.parametrize("c", [1, 3, 10, 31])
def test_short_rows_equal_the_row_path(op, c):
    """Rows of fewer than 32 classes go in groups (one flat loop per step);
    padded with entries left out to 40 classes they take the row path: the
    same values, special rows (nothing kept, +-inf, NaN) among ordinary ones,
    and in place."""
    rng = np.random.default_rng(c)
    n = 300
    x = rng.standard_normal((n, c)) * 3
    w = rng.random((n, c)) > 0.25
    b = rng.standard_normal((n, c)) if op == "logsumexp" else None
    x[5] = np.nan
    x[6, 0] = np.inf
    w[7] = False
    x[8] = -np.inf
    x[9, -1] = np.nan
    w[9, -1] = False  # (a NaN left out: an ordinary row)
    pad = 40 - c
    xp = np.concatenate([x, np.zeros((n, pad))], axis=1)
    wp = np.concatenate([w, np.zeros((n, pad), bool)], axis=1)
    if op == "logsumexp":
        bp = np.concatenate([b, np.ones((n, pad))], axis=1)
        got = xent.logsumexp(x, b=b, where=w, return_sign=True, return_grad=True)
        want = xent.logsumexp(xp, b=bp, where=wp, return_sign=True, return_grad=True)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-14, atol=1e-14)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[2], want[2][:, :c], rtol=1e-13, atol=1e-15)
        return
    fn = getattr(xent, op)
    got = fn(x, where=w)
    np.testing.assert_allclose(got, fn(xp, where=wp)[:, :c], rtol=1e-14, atol=1e-15)
    y = x.copy()
    assert fn(y, where=w, out=y) is y
    np.testing.assert_array_equal(y, got)


def test_review_cases():
    """A mask constant along the classes with b varying along them; an
    overflowing float64 sum on the row path; a subnormal sum's gradient; a
    Python-number b keeps x's precision."""
    x = np.random.default_rng(0).normal(size=(3, 40))
    b = np.ones((3, 40))
    for c in (5, 40):
        got = xent.logsumexp(x[:, :c], b=b[:, :c], where=np.array([[True], [False], [True]]))
        want = xent.logsumexp(x[:, :c], b=b[:, :c],
                              where=np.broadcast_to([[True], [False], [True]], (3, c)).copy())
        np.testing.assert_array_equal(got, want)
        assert got[1] == -np.inf
        assert np.all(xent.logsumexp(x[:, :c], b=b[:, :c], where=np.False_) == -np.inf)
        xi = np.zeros(c)
        xi[0] = 1.0
        bi = np.ones(c)
        bi[1] = np.inf
        assert xent.logsumexp(xi, b=bi) == np.inf
        r, s = xent.logsumexp(np.zeros(c), b=np.full(c, 1e308), return_sign=True)
        assert r == np.inf and s == 1.0
        lse, g = xent.logsumexp(xi, b=np.full(c, 1e-310), return_grad=True)
        np.testing.assert_allclose(g, xent.softmax(xi), rtol=1e-12)
        np.testing.assert_allclose(lse, xent.logsumexp(xi) + np.log(1e-310), rtol=1e-12)
    x32 = np.float32([1.0, 2.0])
    assert xent.logsumexp(x32, b=2.0).dtype == np.float32
    assert xent.logsumexp(x32, b=np.float64(2.0)).dtype == np.float64
    with pytest.raises(ValueError, match="of the probabilities"):
        xent.entropy(np.full((2, 3), 1 / 3), where=np.ones(4, bool))


@pytest.mark.parametrize("pad", [0, 40], ids=["short-rows", "row-path"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factors_that_count_for_nothing_and_a_tiny_max_factor(pad, dtype):
    # (a review's cases) an entry left out adds 0 whatever its b, even an
    # infinite or NaN one; an infinite b on a kept entry is SciPy's limit; a
    # factor at the max so small that R / B overflows is log|S|, not +inf
    def lse(x, b, **kw):
        x = np.concatenate([np.asarray(x, float), np.zeros(pad)]).astype(dtype)
        b = np.concatenate([np.asarray(b, float), np.zeros(pad)]).astype(dtype)
        if "where" in kw:
            kw["where"] = np.concatenate([kw["where"], np.zeros(pad, bool)])
        return xent.logsumexp(x, b=b, **kw)
    with np.errstate(all="ignore"):
        for bad in (np.inf, -np.inf, np.nan):
            assert lse([0, 0, 0], [1, 1, bad], where=np.array([True, True, False])) == \
                pytest.approx(np.log(2), rel=1e-6)
        assert lse([0, -1], [np.inf, 1], return_sign=True) == (np.inf, 1)
        assert lse([0, -1], [-np.inf, 1], return_sign=True) == (np.inf, -1)
    if dtype == np.float64:
        assert lse([0, -1], [1e-310, 1]) == pytest.approx(-1.0, rel=1e-15)
        assert lse([0, -1], [1e-300, 1e10]) == pytest.approx(np.log(1e10) - 1, rel=1e-15)
