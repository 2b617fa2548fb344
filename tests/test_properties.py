"""Property-based tests (hypothesis): random dtypes, shapes, axes, layouts and
values, including +-inf, NaN, huge offsets and subnormals; results agree with
the float64 NumPy reference where it is defined, NaN/inf land where the
contract says, and inputs are unchanged."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xent
from conftest import ref_log_softmax

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=64)
special = st.sampled_from([np.inf, -np.inf, np.nan, 1e300, -1e300, 5e-324, -0.0])


@st.composite
def arrays(draw, dtype=None, specials=True, min_dims=1):
    dtype = dtype or draw(st.sampled_from([np.float16, np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=0, max_side=7))
    elems = st.one_of(finite, special) if specials else finite
    with np.errstate(over="ignore"):  # 1e300 becomes inf in float16/float32: intended
        a = draw(hnp.arrays(np.float64, shape, elements=elems)).astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "reversed", "readonly"]))
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "reversed" and a.ndim:
        a = np.flip(np.flip(a, -1).copy(), -1)
    elif layout == "readonly":
        a.setflags(write=False)
    return a


def _reference_rows(x, axis):
    """float64 log_softmax along axis where every row is finite, else None."""
    x64 = x.astype(np.float64)
    if not np.isfinite(x64).all() or x.shape[axis] == 0:
        return None
    return ref_log_softmax(x64, axis)


@SETTINGS
@given(arrays(), st.data())
def test_softmax_family_properties(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    before = x.copy()
    with np.errstate(all="ignore"):
        lse = xent.logsumexp(x, axis=axis)
        p = xent.softmax(x, axis=axis)
        lp = xent.log_softmax(x, axis=axis)
    np.testing.assert_array_equal(x, before)  # inputs are never written
    assert p.shape == x.shape and p.dtype == x.dtype and lp.dtype == x.dtype
    x64 = np.moveaxis(x.astype(np.float64), axis, -1)
    rows_nan = np.isnan(x64).any(-1) if x64.size else np.zeros(x64.shape[:-1], bool)
    # NaN exactly in the rows that hold one
    np.testing.assert_array_equal(np.isnan(lse), rows_nan)
    np.testing.assert_array_equal(np.isnan(np.moveaxis(p, axis, -1)).any(-1)
                                  if p.size else rows_nan, rows_nan)
    ref = _reference_rows(x, axis)
    if ref is not None:
        tol = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}[x.dtype.type]
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(lp.astype(np.float64), ref, rtol=tol,
                                       atol=tol * max(1.0, np.abs(ref).max(initial=0)))
            np.testing.assert_allclose(p.astype(np.float64), np.exp(ref), rtol=tol, atol=tol)
    # rows without NaN sum to 1, or to 0 when they are all -inf
    s = np.moveaxis(p.astype(np.float64), axis, -1).sum(-1)
    ok = ~rows_nan
    all_minus_inf = (x64 == -np.inf).all(-1) if x64.size else np.zeros(ok.shape, bool)
    want = np.where(all_minus_inf, 0.0, 1.0)
    if x.shape[axis] > 0:
        np.testing.assert_allclose(s[ok], want[ok], atol=5e-3 if x.dtype == np.float16 else 1e-5)


@SETTINGS
@given(arrays(specials=False, min_dims=2), st.data())
def test_cross_entropy_properties(x, data):
    c = x.shape[-1]
    if c == 0:
        return
    labels = data.draw(hnp.arrays(np.int64, x.shape[:-1], elements=st.integers(-1, c - 1)))
    labels = np.where(labels < 0, -100, labels)
    before = x.copy()
    loss, grad = xent.softmax_cross_entropy(x, labels, reduction="none", return_grad=True)
    np.testing.assert_array_equal(x, before)
    ref = -np.take_along_axis(ref_log_softmax(x.astype(np.float64)),
                              np.maximum(labels, 0)[..., None], -1)[..., 0]
    ref = np.where(labels == -100, 0.0, ref)
    tol = {np.float16: 3e-3, np.float32: 3e-6, np.float64: 1e-13}[x.dtype.type]
    np.testing.assert_allclose(loss.astype(np.float64), ref, rtol=tol, atol=tol * (1 + np.abs(ref).max(initial=0)))
    # the gradient of each kept row sums to 0 (softmax minus one-hot)
    kept = labels != -100
    sums = grad.astype(np.float64).sum(-1)
    np.testing.assert_allclose(sums[kept], 0.0, atol=50 * tol)
    assert not grad[~kept].any()
