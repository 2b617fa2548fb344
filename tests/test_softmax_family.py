"""logsumexp, softmax, log_softmax and their VJPs against float64 references."""

import itertools

import numpy as np
import pytest

import xent
from conftest import (
    finite_difference_grad,
    assert_close,
    layouts,
    ref_log_softmax,
    ref_logsumexp,
    ref_softmax,
)

DTYPES = [np.float16, np.float32, np.float64]
inf, nan = np.inf, np.nan


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [
    ((7,), -1), ((7,), 0), ((5, 9), -1), ((5, 9), 0), ((3, 4, 6), 1),
    ((3, 4, 6), -1), ((3, 4, 6), (0, 2)), ((2, 3, 4, 5), (1, 3)), ((3, 4), None),
    ((2, 3, 4, 5), 0), ((4, 1), -1), ((1, 4), 0),
])
def test_values_match_reference_any_axis_any_rank(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    ax = tuple(range(x.ndim)) if axis is None else axis
    lse = xent.logsumexp(x, axis=axis)
    assert np.asarray(lse).dtype == dtype
    assert_close(lse, ref_logsumexp(x, ax), dtype)
    p = xent.softmax(x, axis=axis)
    assert p.dtype == dtype and p.shape == x.shape
    assert_close(p, ref_softmax(x, ax), dtype)
    lp = xent.log_softmax(x, axis=axis)
    assert lp.dtype == dtype and lp.shape == x.shape
    assert_close(lp, ref_log_softmax(x, ax), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_layout_gives_the_same_result_and_inputs_are_unchanged(rng, dtype):
    base = (rng.standard_normal((6, 11)) * 4).astype(dtype)
    expected = {f: f(base) for f in (xent.logsumexp, xent.softmax, xent.log_softmax)}
    for name, x in layouts(base):
        before = x.copy()
        for f, want in expected.items():
            got = f(x)
            np.testing.assert_array_equal(got, want, err_msg=f"{f.__name__} on {name}")
            for ax in (0, -1):
                assert_close(f(x, axis=ax), f(np.ascontiguousarray(base), axis=ax), dtype)
        np.testing.assert_array_equal(x, before)


def test_keepdims_and_return_grad(rng):
    x = rng.standard_normal((3, 4, 5))
    lse = xent.logsumexp(x, axis=1, keepdims=True)
    assert lse.shape == (3, 1, 5)
    np.testing.assert_allclose(lse, ref_logsumexp(x, 1, keepdims=True), rtol=1e-14)
    lse2, grad = xent.logsumexp(x, axis=(0, 2), keepdims=True, return_grad=True)
    assert lse2.shape == (1, 4, 1) and grad.shape == x.shape
    np.testing.assert_allclose(grad, ref_softmax(x, (0, 2)), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(lse2, ref_logsumexp(x, (0, 2), keepdims=True), rtol=1e-14)


def test_full_reduction_returns_a_numpy_scalar():
    r = xent.logsumexp(np.array([1000.0, 1000.0]))
    assert isinstance(r, np.float64)
    assert r == 1000.0 + np.log(2.0)
    r32 = xent.logsumexp(np.array([0.0, 0.0], dtype=np.float32))
    assert isinstance(r32, np.float32)
    assert isinstance(xent.logsumexp(np.ones((2, 3)), axis=None), np.float64)


def test_array_likes_are_accepted():
    np.testing.assert_allclose(xent.softmax([0.0, np.log(3.0)]), [0.25, 0.75], rtol=1e-15)
    np.testing.assert_allclose(xent.logsumexp([[0.0, 0.0]]), [np.log(2.0)], rtol=1e-15)


def test_float16_is_computed_in_float32_and_returned_as_float16(rng):
    x = (rng.standard_normal((4, 300)) * 5).astype(np.float16)
    want = xent.softmax(x.astype(np.float32)).astype(np.float16)
    got = xent.softmax(x)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)
    # A float16 row whose exp would overflow float16 but not float32.
    big = np.array([60000.0, 60000.0], dtype=np.float16)
    assert xent.logsumexp(big) == np.float16(np.float32(60000.0) + np.log(np.float32(2)))


# ------------------------------------------------------- inf / nan contract


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_minus_inf_rows_give_minus_inf_and_zero_softmax(dtype):
    x = np.array([[-inf, -inf, -inf], [0.0, -inf, -inf]], dtype=dtype)
    lse, grad = xent.logsumexp(x, return_grad=True)
    np.testing.assert_array_equal(lse, [-inf, 0.0])
    np.testing.assert_array_equal(grad, [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(xent.softmax(x), [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(xent.log_softmax(x), [[-inf] * 3, [0, -inf, -inf]])
    # the VJP of logsumexp through its gradient: zero on the all -inf row
    g = np.ones_like(x)
    np.testing.assert_array_equal(xent.softmax_backward(grad, g)[0], [0, 0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plus_inf_entries(dtype):
    x = np.array([[inf, 1.0, -inf], [inf, inf, 2.0], [inf, -inf, nan]], dtype=dtype)
    lse = xent.logsumexp(x)
    np.testing.assert_array_equal(lse[:2], [inf, inf])
    assert np.isnan(lse[2])
    p = xent.softmax(x)
    np.testing.assert_array_equal(p[:2], [[1, 0, 0], [0.5, 0.5, 0]])
    assert np.isnan(p[2]).all()
    lp = xent.log_softmax(x)
    np.testing.assert_array_equal(lp[0], [0, -inf, -inf])
    np.testing.assert_allclose(lp[1], [-np.log(2), -np.log(2), -inf], rtol=1e-7)
    assert np.isnan(lp[2]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [0, 2, 4])
def test_nan_propagates_to_its_row_only(dtype, where):
    x = np.zeros((3, 5), dtype=dtype)
    x[1, where] = nan
    x[2, 1] = -inf
    for f in (xent.logsumexp, xent.softmax, xent.log_softmax):
        r = f(x)
        assert np.isnan(r[1]).all(), f.__name__
        assert not np.isnan(r[0]).any() and not np.isnan(r[2]).any(), f.__name__
    # NaN with only -inf around it
    y = np.array([[-inf, nan]], dtype=dtype)
    assert np.isnan(xent.logsumexp(y)).all() and np.isnan(xent.softmax(y)).all()
    assert np.isnan(xent.log_softmax(y)).all()


def test_masked_classes_are_exact():
    x = np.array([[1.0, -inf, 2.0, -inf]])
    p = xent.softmax(x)
    assert p[0, 1] == 0 and p[0, 3] == 0
    np.testing.assert_allclose(p[0, [0, 2]], ref_softmax([1.0, 2.0]), rtol=1e-15)


def test_empty_shapes():
    assert xent.logsumexp(np.zeros((0, 4))).shape == (0,)
    assert xent.softmax(np.zeros((0, 4), np.float32)).shape == (0, 4)
    np.testing.assert_array_equal(xent.logsumexp(np.zeros((3, 0))), [-inf] * 3)
    assert xent.softmax(np.zeros((3, 0))).shape == (3, 0)
    assert xent.log_softmax(np.zeros((3, 0))).shape == (3, 0)
    assert xent.logsumexp(np.zeros((0,))) == -inf
    assert xent.softmax_backward(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)


def test_single_class_rows():
    x = np.array([[3.0], [-inf], [inf]])
    np.testing.assert_array_equal(xent.softmax(x), [[1.0], [0.0], [1.0]])
    np.testing.assert_array_equal(xent.log_softmax(x), [[0.0], [-inf], [0.0]])
    np.testing.assert_array_equal(xent.logsumexp(x), [3.0, -inf, inf])


def test_extreme_finite_values_do_not_overflow():
    x = np.array([[1e308, 1e308, -1e308], [-1e308, -1e308, -1e308]])
    np.testing.assert_array_equal(xent.softmax(x), [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert np.isfinite(xent.logsumexp(x)).all()
    x32 = np.array([[3e38, -3e38]], dtype=np.float32)
    np.testing.assert_array_equal(xent.softmax(x32), [[1.0, 0.0]])


# ------------------------------------------------------------ out= / in place


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffers(rng, axis, dtype):
    x = rng.standard_normal((4, 6)).astype(dtype)
    for f in (xent.softmax, xent.log_softmax):
        out = np.full(x.shape, 7, dtype=dtype)
        r = f(x, axis=axis, out=out)
        assert r is out
        np.testing.assert_array_equal(out, f(x, axis=axis))
    out = np.empty(x.shape[1 - (axis % 2)] if x.ndim == 2 else (), dtype=dtype)
    out = np.empty(np.delete(x.shape, axis % 2), dtype=dtype)
    r = xent.logsumexp(x, axis=axis, out=out)
    assert r is out
    np.testing.assert_array_equal(out, xent.logsumexp(x, axis=axis))
    fo = np.asfortranarray(np.empty(x.shape, dtype=dtype))
    assert xent.softmax(x, axis=axis, out=fo) is fo
    np.testing.assert_array_equal(fo, xent.softmax(x, axis=axis))


@pytest.mark.parametrize("axis", [-1, 0])
def test_in_place_when_out_is_the_input(rng, axis):
    x = rng.standard_normal((5, 8))
    want = xent.softmax(x, axis=axis)
    y = x.copy()
    assert xent.softmax(y, axis=axis, out=y) is y
    np.testing.assert_array_equal(y, want)
    y = x.copy()
    xent.log_softmax(y, axis=axis, out=y)
    np.testing.assert_array_equal(y, xent.log_softmax(x, axis=axis))


def test_logsumexp_return_grad_with_out(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    out = np.empty(3, np.float32)
    lse, p = xent.logsumexp(x, out=out, return_grad=True)
    assert lse is out
    np.testing.assert_array_equal(p, xent.softmax(x))


# --------------------------------------------------------------- gradients


@pytest.mark.parametrize("axis", [-1, 0, (0, 2)])
def test_logsumexp_gradient_by_finite_differences(rng, axis):
    x = rng.standard_normal((3, 4, 2))
    _, grad = xent.logsumexp(x, axis=axis, return_grad=True)
    w = rng.standard_normal(np.shape(xent.logsumexp(x, axis=axis)))
    fd = finite_difference_grad(lambda z: np.sum(w * xent.logsumexp(z, axis=axis)), x)
    keep = xent.logsumexp(x, axis=axis, keepdims=True) * 0 + np.expand_dims(
        w, axis if isinstance(axis, tuple) else (axis,))
    np.testing.assert_allclose(grad * keep, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_backward_by_finite_differences(rng, axis):
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal(x.shape)
    fd = finite_difference_grad(lambda z: np.sum(w * xent.softmax(z, axis=axis)), x)
    got = xent.softmax_backward(xent.softmax(x, axis=axis), w, axis=axis)
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_backward_by_finite_differences(rng, axis):
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal(x.shape)
    fd = finite_difference_grad(lambda z: np.sum(w * xent.log_softmax(z, axis=axis)), x)
    got = xent.log_softmax_backward(xent.log_softmax(x, axis=axis), w, axis=axis)
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjps_match_the_explicit_jacobian(rng, dtype):
    x = rng.standard_normal((3, 6))
    g = rng.standard_normal((3, 6))
    p = ref_softmax(x)
    jac = np.einsum("ij,jk->ijk", np.ones((3, 6)), np.eye(6)) * p[:, :, None] - (
        p[:, :, None] * p[:, None, :])
    want_sm = np.einsum("ijk,ik->ij", jac, g)
    got = xent.softmax_backward(p.astype(dtype), g.astype(dtype))
    assert got.dtype == dtype
    assert_close(got, want_sm, dtype)
    want_lsm = g - p * g.sum(-1, keepdims=True)
    got = xent.log_softmax_backward(np.log(p).astype(dtype), g.astype(dtype))
    assert_close(got, want_lsm, dtype)


def test_vjp_dtype_promotion_and_in_place(rng):
    p = xent.softmax(rng.standard_normal((3, 4))).astype(np.float32)
    g = rng.standard_normal((3, 4))
    r = xent.softmax_backward(p, g)
    assert r.dtype == np.float64
    g2 = g.copy()
    assert xent.softmax_backward(p, g2, out=g2) is g2
    np.testing.assert_array_equal(g2, r)
    lp = np.log(p.astype(np.float64))
    g3 = g.copy()
    want = xent.log_softmax_backward(lp, g3)
    assert xent.log_softmax_backward(lp, g3, out=g3) is g3
    np.testing.assert_array_equal(g3, want)


def test_backward_inputs_are_unchanged(rng):
    p = xent.softmax(rng.standard_normal((3, 4)))
    g = rng.standard_normal((3, 4))
    p0, g0 = p.copy(), g.copy()
    xent.softmax_backward(p, g)
    xent.log_softmax_backward(np.log(p), g)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(g, g0)


def test_softmax_rows_sum_to_one_for_wide_rows(rng):
    for dtype, tol in ((np.float32, 2e-6), (np.float64, 1e-14)):
        x = (rng.standard_normal((4, 50000)) * 10).astype(dtype)
        s = xent.softmax(x).astype(np.float64).sum(-1)
        np.testing.assert_allclose(s, 1.0, atol=tol)


def test_larger_batches_match_reference(rng):
    for shape, dtype in itertools.product([(300, 257), (2000, 33)], [np.float32, np.float64]):
        x = (rng.standard_normal(shape) * 6).astype(dtype)
        assert_close(xent.logsumexp(x), ref_logsumexp(x), dtype)
        assert_close(xent.softmax(x), ref_softmax(x), dtype)
        assert_close(xent.log_softmax(x), ref_log_softmax(x), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_split_into_chunks(dtype):
    """Rows of >= long_row classes go through chunked (max, sum) pairs merged
    per row: the same results as the float64 reference, the same conventions
    for +-inf and NaN, in place too, and a single row is split over threads."""
    from xent import _kernels as kernels
    rng = np.random.default_rng(11)
    c = kernels.long_row + 3 * kernels.row_chunk + 17  # a ragged last chunk
    x = (rng.standard_normal((6, c)) * 6 + 40).astype(dtype)
    x[1, 5:] -= 200  # the max in the first chunk only
    x[2, -1] = 500  # the max in the last chunk only (float32: exp(-500) underflows)
    finite = x[:3].astype(np.float64)
    x[3, :] = -np.inf  # all -inf: lse -inf, softmax 0, log_softmax -inf
    x[4, :] = 0
    x[4, [7, c - 2]] = np.inf  # two +inf entries in different chunks: 1/2 each
    x[5, 100] = np.nan
    for nt in (1, 2):
        lse = xent.logsumexp(x, n_threads=nt)
        p = xent.softmax(x, n_threads=nt)
        lp = xent.log_softmax(x, n_threads=nt)
        assert_close(lse[:3], ref_logsumexp(finite), dtype)
        assert_close(p[:3], ref_softmax(finite), dtype)
        assert_close(lp[:3], ref_log_softmax(finite), dtype)
        assert lse[3] == -np.inf and not p[3].any() and np.all(lp[3] == -np.inf)
        assert lse[4] == np.inf
        np.testing.assert_array_equal(np.flatnonzero(p[4]), [7, c - 2])
        np.testing.assert_array_equal(p[4, [7, c - 2]], [0.5, 0.5])
        assert lp[4, 7] == dtype(-np.log(2.0)) and lp[4, 0] == -np.inf
        assert np.isnan(lse[5]) and np.isnan(p[5]).all() and np.isnan(lp[5]).all()
        lse2, p2 = xent.logsumexp(x, return_grad=True, n_threads=nt)
        np.testing.assert_array_equal(lse2, lse)
        np.testing.assert_array_equal(p2, p)
    # in place: the output over the input
    y = x.copy()
    assert xent.softmax(y, out=y) is y
    np.testing.assert_array_equal(y, p)
    y = x.copy()
    xent.log_softmax(y, out=y)
    np.testing.assert_array_equal(y, lp)
