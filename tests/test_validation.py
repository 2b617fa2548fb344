"""Bad input: a TypeError/ValueError naming the argument, and nothing written."""

import re

import numpy as np
import pytest

import xent

ROW_FUNCS = [xent.softmax, xent.log_softmax]
ALL_FUNCS = [xent.logsumexp, xent.softmax, xent.log_softmax]
VJPS = [(xent.softmax_backward, "probs", "grad_probs"),
        (xent.log_softmax_backward, "log_probs", "grad_log_probs")]


@pytest.mark.parametrize("f", ALL_FUNCS)
@pytest.mark.parametrize("bad", [
    np.ones((2, 3), dtype=np.complex128),
    np.array([["a", "b"]]),
    np.array([[1.0, None]], dtype=object),
    np.array([["2020-01-01"]], dtype="datetime64[D]"),
    [[1 + 2j, 3]],
])
def test_non_real_input_is_a_type_error(f, bad):
    dtype = np.asarray(bad).dtype
    with pytest.raises(TypeError, match=rf"^x: expected a floating-point array .* got dtype "
                                        rf"{re.escape(str(dtype))}$"):
        f(bad)


def test_longdouble_is_rejected():
    if np.dtype(np.longdouble) == np.float64:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match="x: .*got dtype"):
        xent.softmax(np.ones(3, dtype=np.longdouble))


@pytest.mark.parametrize("f", ALL_FUNCS)
@pytest.mark.parametrize("axis", [2, -3, (0, 5)])
def test_axis_out_of_range(f, axis):
    with pytest.raises(ValueError, match=r"axis: expected an axis in \[-2, 2\)"):
        f(np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("f", ALL_FUNCS)
@pytest.mark.parametrize("axis", [1.0, "0", True, [0, "a"]])
def test_axis_of_wrong_type(f, axis):
    with pytest.raises(TypeError, match="axis: expected an integer"):
        f(np.ones((2, 3)), axis=axis)


def test_duplicate_axes():
    with pytest.raises(ValueError, match="axis: expected distinct axes"):
        xent.softmax(np.ones((2, 3)), axis=(1, -1))


def test_zero_dim_input_needs_axis_none():
    with pytest.raises(ValueError, match="axis"):
        xent.logsumexp(np.float64(1.0))
    assert xent.logsumexp(np.float64(1.0), axis=None) == 1.0


def _sentinel(shape, dtype=np.float64):
    return np.full(shape, 42, dtype=dtype)


@pytest.mark.parametrize("f", ROW_FUNCS)
def test_out_of_wrong_shape_dtype_or_readonly(f):
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 3\), got \(3, 2\)"):
        f(x, out=_sentinel((3, 2)))
    out = _sentinel((2, 3), np.float32)
    with pytest.raises(TypeError, match="out: expected dtype float64, got float32"):
        f(x, out=out)
    np.testing.assert_array_equal(out, 42)
    ro = _sentinel((2, 3))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out: expected a writeable array"):
        f(x, out=ro)
    with pytest.raises(TypeError, match="out: expected a numpy.ndarray, got list"):
        f(x, out=[[0.0] * 3] * 2)


def test_logsumexp_out_checks():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"out: expected shape \(2,\), got \(2, 1\)"):
        xent.logsumexp(x, out=_sentinel((2, 1)))
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 1\)"):
        xent.logsumexp(x, keepdims=True, out=_sentinel((2,)))
    with pytest.raises(ValueError, match="out: must not overlap the memory of x"):
        xent.logsumexp(x, out=x[:, 0])
    with pytest.raises(TypeError, match="keepdims: expected a bool"):
        xent.logsumexp(x, keepdims=1)
    with pytest.raises(TypeError, match="return_grad: expected a bool"):
        xent.logsumexp(x, return_grad="yes")


@pytest.mark.parametrize("f", ROW_FUNCS)
def test_partial_overlap_is_rejected_and_nothing_is_written(f):
    buf = np.arange(12, dtype=np.float64)
    x = buf[:9].reshape(3, 3)
    out = buf[3:].reshape(3, 3)
    before = buf.copy()
    with pytest.raises(ValueError, match=r"out: must not overlap the memory of x \(the in-place form is out=x itself\)"):
        f(x, out=out)
    np.testing.assert_array_equal(buf, before)


@pytest.mark.parametrize("f", ALL_FUNCS)
@pytest.mark.parametrize("n_threads,exc,msg", [
    (0, ValueError, "n_threads: expected None, a positive count"),
    (1.5, TypeError, "n_threads: expected an integer, got 1.5"),
    (True, TypeError, "n_threads: expected an integer, got True"),
    ("2", TypeError, "n_threads: expected an integer"),
])
def test_bad_n_threads_writes_nothing(f, n_threads, exc, msg):
    x = np.ones((2, 3))
    out = _sentinel((2,) if f is xent.logsumexp else (2, 3))
    with pytest.raises(exc, match=msg):
        f(x, out=out, n_threads=n_threads)
    np.testing.assert_array_equal(out, 42)


@pytest.mark.parametrize("f,first,second", VJPS)
def test_vjp_bad_input(f, first, second):
    with pytest.raises(ValueError, match=rf"{second}: expected the shape of {first} \(2, 3\), got \(3, 2\)"):
        f(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=rf"^{first}: expected a floating-point array"):
        f(np.ones((2, 3), dtype=complex), np.ones((2, 3)))
    with pytest.raises(TypeError, match=rf"^{second}: expected a floating-point array"):
        f(np.ones((2, 3)), np.ones((2, 3), dtype=object))
    out = _sentinel((2, 3), np.float32)
    with pytest.raises(TypeError, match="out: expected dtype float64"):
        f(np.ones((2, 3)), np.ones((2, 3), np.float32), out=out)
    np.testing.assert_array_equal(out, 42)
    with pytest.raises(ValueError, match="axis"):
        f(np.ones((2, 3)), np.ones((2, 3)), axis=3)


def test_error_messages_name_the_received_value():
    with pytest.raises(ValueError, match="got 7"):
        xent.softmax(np.ones((2, 3)), axis=7)


# Integer and bool inputs are promoted to float64, as NumPy's ufuncs and
# SciPy do (scipy.special.logsumexp([1, 2, 3]), np.exp(np.arange(4))); the
# targets keep their meaning (integer targets are class indices).
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.int8, bool])
def test_integer_and_bool_input_is_promoted_to_float64(dtype):
    x = np.array([[0, 1, 3], [2, 0, 1]]).astype(dtype)
    xf = x.astype(np.float64)
    for f in (xent.logsumexp, xent.softmax, xent.log_softmax):
        got = f(x)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, f(xf))
    assert xent.logsumexp([1, 2, 3]) == xent.logsumexp(np.array([1.0, 2.0, 3.0]))
    assert type(xent.logsumexp([1, 2, 3])) is np.float64
    y = np.array([2, 0])
    assert xent.softmax_cross_entropy(x, y) == xent.softmax_cross_entropy(xf, y)
    loss, g = xent.softmax_cross_entropy(x, y, return_grad=True)
    assert g.dtype == np.float64 and loss.dtype == np.float64
    t = (x > 0).astype(dtype)
    assert xent.binary_cross_entropy_with_logits(x, t) == \
        xent.binary_cross_entropy_with_logits(xf, t.astype(float))
    p = np.array([[0, 1, 0], [1, 0, 0]]).astype(dtype)
    q = np.full((2, 3), 1 / 3)
    # p of an integer dtype stays class... for cross_entropy it is labels only
    # when its shape is the batch shape; here the probabilities' shape
    np.testing.assert_array_equal(xent.kl_divergence(p, q), xent.kl_divergence(p.astype(float), q))
    with pytest.raises(TypeError, match="out: expected dtype float64"):
        xent.softmax(x, out=np.empty(x.shape, dtype))


def test_promoted_input_is_never_written_and_out_must_not_overlap_it():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    with pytest.raises(ValueError, match="out: must not overlap"):
        xent.softmax(x, out=x.view(np.float64))
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))


def test_in_place_is_the_same_elements_whatever_the_strides_of_axes_of_length_one():
    """out= the input's very elements (strides of an axis of length 1 address
    nothing) is the in-place form, on the compiled common call and the general
    path alike (the fuzz target found the two disagreeing)."""
    buf = np.arange(7.0)
    x = np.lib.stride_tricks.as_strided(buf, (7, 1), (8, 0))
    out = np.lib.stride_tricks.as_strided(buf, (7, 1), (8, 8))
    want = xent.softmax(x.copy())
    for kw in ({}, {"axis": 1}, {"n_threads": 2}):
        buf[:] = np.arange(7.0)
        assert xent.softmax(x, out=out, **kw) is out
        np.testing.assert_array_equal(out, want)


def test_ignore_index_beyond_int64_is_a_value_error_everywhere():
    """Every function taking ignore_index checks it is a 64-bit integer (the
    fuzz target found cross_entropy_denominator taking 2**63 and failing
    with an IndexError on uint64 labels of that value)."""
    import inspect

    from xent import _registry

    rng = np.random.default_rng(0)
    names = [e for e in _registry.ENTRIES
             if "ignore_index" in inspect.signature(e.function).parameters]
    assert len({e.name for e in names}) >= 8
    for e in names:
        args = e.make(rng, 4, 40, np.float64)
        args = [np.array([2**63, 3, 1, 0], np.uint64) if np.asarray(a).dtype.kind in "iu" else a
                for a in args]
        for bad in (2**63, -(2**63) - 1):
            with pytest.raises(ValueError, match="ignore_index: expected a 64-bit integer"):
                e.call(args, ignore_index=bad)
