"""entropy, cross_entropy and kl_divergence against NumPy float64 references,
SciPy and the published Keras examples; gradients by finite differences;
edge cases, bad input, determinism."""

import doctest
import importlib.machinery
import itertools

import numpy as np
import pytest

import xent
from conftest import finite_difference_grad, layouts
from xent import _dispatch
from xent import _kernels as _compiled  # must import: never skip

inf, nan = np.inf, np.nan


# ------------------------------------------------------------ references


def _terms(p, q, kind, eps=None):
    """Per-element float64 terms of the definitions, and the gradient wrt q."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    clipped = np.zeros(q.shape, dtype=bool)
    if eps is not None and kind != "entropy":
        clipped = (q < eps) | (q > 1)
        q = np.clip(q, eps, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "xent":
            t = -p * np.log(q)
        elif kind == "kl":
            t = p * np.log(p / q)
        else:
            t = -p * np.log(p)
        zero = p == 0
        # 0 log 0 = 0, but a NaN q still reaches the row
        t = np.where(zero, np.where(np.isnan(q), nan, 0.0), t)
        g = np.where(zero | clipped, 0.0, -p / q)
    return t, g


def ref(p, q, kind, eps=None, axis=-1, reduction="none"):
    """Value and gradient (wrt q) of the reduced value."""
    t, g = _terms(p, q, kind, eps)
    per = np.sum(t, axis=axis)
    n = per.size
    if reduction == "none":
        return per, g
    if reduction == "sum":
        return per.sum(), g
    return (per.sum() / n if n else 0.0), (g / n if n else g)


def ref_labels(labels, q, eps=None, reduction="none"):
    q = np.asarray(q, dtype=np.float64)
    p = np.eye(q.shape[-1])[labels]
    return ref(p, q, "xent", eps, reduction=reduction)


def make(n, c, seed=0, zeros=True):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(c), size=n)
    q = rng.dirichlet(np.ones(c), size=n)
    if zeros and c > 2:
        p[::3, 0] = 0.0  # 0 log 0 terms
        q[1::4, 1] = 0.0  # q == 0 where p may be > 0
        p[1::4, 1] = 0.0  # ... but not everywhere: 0 log 0 where both are 0
        p = p / p.sum(-1, keepdims=True)
        q = q / q.sum(-1, keepdims=True)
    return p, q


FUNCS = {
    "xent": lambda p, q, **kw: xent.cross_entropy(p, q, **kw),
    "kl": lambda p, q, **kw: xent.kl_divergence(p, q, **kw),
}


# ------------------------------------------------------------ values


def test_the_compiled_kernels_are_used():
    assert _compiled.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    from xent import _information

    assert _information._k is _compiled
    assert type(_compiled.probs_rows).__name__ in ("_FusedFunction", "fused_cython_function")
    assert _compiled.get_isa() == _dispatch.active_isa()


# rows of fewer than 48 classes are summed row by row from blocks of whole rows,
# longer ones in lanes, in chunks of 512 values; 3000x10 is several tasks
@pytest.mark.parametrize("shape", [(7, 5), (37, 13), (9, 300), (1, 1), (4, 1), (11, 47),
                                   (11, 48), (5, 600), (2, 1100), (3000, 10)],
                         ids=["C5", "C13", "C300", "one", "C1", "C47", "C48", "C600",
                              "C1100", "C10many"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("eps", [None, 1e-7, 0.05])
def test_against_float64_reference(shape, reduction, eps):
    p, q = make(*shape)
    for kind, f in FUNCS.items():
        value, grad = f(p, q, eps=eps, reduction=reduction, return_grad=True)
        want, want_grad = ref(p, q, kind, eps, reduction=reduction)
        np.testing.assert_allclose(value, want, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-15, atol=0)
        assert np.asarray(value).dtype == np.float64 and grad.dtype == np.float64
        # the value alone is the same bits
        assert np.asarray(f(p, q, eps=eps, reduction=reduction)).tobytes() == np.asarray(value).tobytes()
    got = xent.entropy(p, reduction=reduction)
    np.testing.assert_allclose(got, ref(p, p, "entropy", reduction=reduction)[0], rtol=1e-14,
                               atol=1e-15)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("label_dtype", [np.int8, np.uint16, np.int32, np.int64, np.uint64])
def test_integer_labels(reduction, eps, label_dtype):
    _, q = make(23, 6, seed=3)
    q[2, 4] = 0.0
    labels = np.random.default_rng(3).integers(0, 6, 23)
    labels[:3] = [0, 5, 4]
    value, grad = xent.cross_entropy(labels.astype(label_dtype), q, eps=eps, reduction=reduction,
                                     return_grad=True)
    want, want_grad = ref_labels(labels, q, eps, reduction)
    np.testing.assert_allclose(value, want, rtol=1e-15, atol=0)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-15, atol=0)
    # the same as the one-hot probabilities, exactly
    onehot = np.eye(6)[labels]
    dense = xent.cross_entropy(onehot, q, eps=eps, reduction=reduction, return_grad=True)
    np.testing.assert_array_equal(value, dense[0])
    np.testing.assert_array_equal(grad, dense[1])


def test_kl_is_cross_entropy_minus_entropy():
    p, q = make(50, 17, seed=8)
    np.testing.assert_allclose(xent.kl_divergence(p, q),
                               xent.cross_entropy(p, q) - xent.entropy(p), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(xent.cross_entropy(p, p), xent.entropy(p), rtol=1e-15)
    assert not xent.kl_divergence(p, p).any()  # exactly 0: log(p / p) = log 1


def test_kl_is_accurate_when_p_and_q_are_close():
    # computed term by term as p log(p/q), not as H(p, q) - H(p): the absolute
    # error is about eps * sum(p), not eps * H(p) (the difference of two sums
    # of about log(C) each, here ~7, errs by ~1e-15 on a value of 1e-14)
    import mpmath

    mpmath.mp.dps = 50
    rng = np.random.default_rng(0)
    for delta in (1e-12, 1e-9, 1e-6):
        p = rng.dirichlet(np.ones(1000))
        q = p * (1 + delta * rng.standard_normal(1000))
        exact = float(mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / mpmath.mpf(b))
                                  for a, b in zip(p, q)))
        assert abs(xent.kl_divergence(p, q) - exact) <= 1e-16, delta


def test_kl_ratio_overflow_and_underflow_fall_back_to_logs():
    p = np.array([[1.0, 0.0], [1e-300, 1.0]])
    q = np.array([[1e-320, 1.0], [1.0, 1.0]])  # p/q overflows; p/q underflows
    got = xent.kl_divergence(p, q)
    np.testing.assert_allclose(got[0], -np.log(1e-320), rtol=1e-12)
    np.testing.assert_allclose(got[1], 1e-300 * np.log(1e-300), rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_class_axis_anywhere(axis):
    rng = np.random.default_rng(11)
    p = np.moveaxis(rng.dirichlet(np.ones(5), size=(3, 4)), -1, axis)
    q = np.moveaxis(rng.dirichlet(np.ones(5), size=(3, 4)), -1, axis)
    for kind, f in FUNCS.items():
        value, grad = f(p, q, axis=axis, return_grad=True)
        want, want_grad = ref(p, q, kind, axis=axis)
        assert value.shape == (3, 4) and grad.shape == p.shape
        np.testing.assert_allclose(value, want, rtol=1e-14)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-15)
    np.testing.assert_allclose(xent.entropy(p, axis=axis), ref(p, p, "entropy", axis=axis)[0],
                               rtol=1e-14)
    labels = np.argmax(q, axis=axis)
    value, grad = xent.cross_entropy(labels, q, axis=axis, return_grad=True)
    np.testing.assert_allclose(value, -np.log(np.max(q, axis=axis)), rtol=1e-15)
    assert grad.shape == q.shape


def test_any_layout():
    p, q = make(6, 9, seed=2)
    want = xent.cross_entropy(p, q, return_grad=True)
    for (name_p, pl), (name_q, ql) in zip(layouts(p), layouts(q)):
        got = xent.cross_entropy(pl, ql, return_grad=True)
        np.testing.assert_array_equal(got[0], want[0], err_msg=name_p)
        np.testing.assert_array_equal(got[1], want[1], err_msg=name_q)
        np.testing.assert_array_equal(xent.kl_divergence(pl, ql), xent.kl_divergence(p, q))
        np.testing.assert_array_equal(xent.entropy(pl), xent.entropy(p))


def test_one_vector_gives_a_scalar():
    p, q = np.array([0.25, 0.75]), np.array([0.5, 0.5])
    for f in (xent.cross_entropy, xent.kl_divergence):
        v = f(p, q)
        assert isinstance(v, np.float64)
        v, g = f(p, q, return_grad=True)
        assert np.ndim(v) == 0 and g.shape == (2,)
    assert isinstance(xent.entropy(p), np.float64)
    assert isinstance(xent.cross_entropy(np.int64(1), q), np.float64)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-7), (np.float16, 2e-3)])
def test_low_precision_is_computed_in_float64_and_returned_in_its_dtype(dtype, rtol):
    p, q = make(40, 11, seed=6)
    p, q = p.astype(dtype), q.astype(dtype)
    for kind, f in FUNCS.items():
        value, grad = f(p, q, eps=1e-3, return_grad=True)
        want, want_grad = ref(p, q, kind, 1e-3)  # the reference on the same rounded inputs
        assert value.dtype == dtype and grad.dtype == dtype
        np.testing.assert_allclose(value, want, rtol=rtol, atol=rtol * 1e-2)
        np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=rtol * 1e-2)
        total = f(p, q, reduction="sum")
        assert total.dtype == dtype
    assert xent.entropy(p).dtype == dtype
    labels = np.arange(40) % 11
    assert xent.cross_entropy(labels, q).dtype == dtype


def test_mixed_float_dtypes_follow_numpy_promotion():
    p, q = make(5, 4, seed=1)
    v, g = xent.cross_entropy(p, q.astype(np.float32), return_grad=True)
    assert v.dtype == np.float64 and g.dtype == np.float32
    np.testing.assert_allclose(v, ref(p, q.astype(np.float32), "xent")[0], rtol=1e-14)


# ------------------------------------------------------------ gradients


@pytest.mark.parametrize("kind", ["xent", "kl"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("eps", [None, 0.02])
def test_gradient_by_finite_differences(kind, reduction, eps):
    p, q = make(6, 7, seed=4, zeros=False)
    q = 0.1 + q  # not normalised: fine, and keeps q away from 0 for the differences
    if eps is not None:
        q[0, :3] = [0.001, 0.005, 1.5]  # clipped: zero gradient
    f = FUNCS[kind]
    _, grad = f(p, q, eps=eps, reduction=reduction, return_grad=True)
    fd = finite_difference_grad(lambda z: np.sum(f(p, z, eps=eps, reduction=reduction)), q, h=1e-7)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    if eps is not None:
        assert not grad[0, :3].any()


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_label_gradient_by_finite_differences(reduction):
    _, q = make(5, 4, seed=9, zeros=False)
    labels = np.array([0, 3, 1, 1, 2])
    _, grad = xent.cross_entropy(labels, q, reduction=reduction, return_grad=True)
    fd = finite_difference_grad(
        lambda z: np.sum(xent.cross_entropy(labels, z, reduction=reduction)), q, h=1e-7)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------ SciPy and Keras


def test_scipy_stats_entropy_parity():
    stats = pytest.importorskip("scipy.stats")
    p, q = make(30, 12, seed=12)
    np.testing.assert_allclose(xent.entropy(p), stats.entropy(p, axis=-1), rtol=1e-14)
    np.testing.assert_allclose(xent.kl_divergence(p, q), stats.entropy(p, q, axis=-1),
                               rtol=1e-13)
    cols = p / p.sum(0)
    np.testing.assert_allclose(xent.entropy(cols, axis=0), stats.entropy(cols, axis=0), rtol=1e-13)
    # scipy renormalises, xent does not: equal once normalised
    raw = 3 * p
    np.testing.assert_allclose(xent.entropy(raw / raw.sum(-1, keepdims=True)),
                               stats.entropy(raw, axis=-1), rtol=1e-14)


def test_scipy_special_rel_entr_and_kl_div_parity():
    special = pytest.importorskip("scipy.special")
    p, q = make(30, 12, seed=13)
    np.testing.assert_allclose(xent.kl_divergence(p, q), special.rel_entr(p, q).sum(-1),
                               rtol=1e-13)
    np.testing.assert_allclose(xent.kl_divergence(p, q), special.kl_div(p, q).sum(-1),
                               rtol=1e-12, atol=1e-15)
    # the edge values of rel_entr: 0 log(0/0) = 0, x log(x/0) = inf, NaN
    pe = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [nan, 1.0], [0.0, 1.0]])
    qe = np.array([[0.0, 1.0], [0.0, 1.0], [nan, 1.0], [0.5, 0.5], [0.5, 0.5]])
    got = xent.kl_divergence(pe, qe)
    want = special.rel_entr(pe, qe).sum(-1)
    np.testing.assert_array_equal(got, want)


def test_keras_categorical_crossentropy_example():
    # keras.losses.CategoricalCrossentropy docs: 1.177 (Keras clips with 1e-7)
    y_true = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32)
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], dtype=np.float32)
    loss = xent.cross_entropy(y_true, y_pred, eps=1e-7, reduction="mean")
    assert round(float(loss), 3) == 1.177
    # per sample: -log 0.95 and -log 0.1
    np.testing.assert_allclose(xent.cross_entropy(y_true, y_pred, eps=1e-7),
                               [0.0513, 2.3026], atol=5e-5)
    # the doc's sample_weight=[0.3, 0.7] example gives 0.814
    per = xent.cross_entropy(y_true, y_pred, eps=1e-7)
    assert round(float(np.sum(per * [0.3, 0.7]) / 2), 3) == 0.814


def test_keras_sparse_categorical_crossentropy_example():
    y_true = np.array([1, 2])
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], dtype=np.float32)
    loss = xent.cross_entropy(y_true, y_pred, eps=1e-7, reduction="mean")
    assert round(float(loss), 3) == 1.177
    assert round(float(xent.cross_entropy(y_true, y_pred, eps=1e-7, reduction="sum")), 3) == 2.354


# ------------------------------------------------------------ edge cases


def test_zero_p_terms_are_skipped_even_where_q_is_zero():
    p = np.array([[0.0, 1.0], [0.0, 0.5]])
    q = np.array([[0.0, 1.0], [0.0, 0.5]])
    for f in FUNCS.values():
        v, g = f(p, q, return_grad=True)
        np.testing.assert_array_equal(v[0], 0.0)
        assert np.isfinite(v).all()
        assert g[0, 0] == 0 and g[1, 0] == 0
    assert xent.entropy(np.array([1.0, 0.0])) == 0.0
    assert xent.entropy(np.zeros(3)) == 0.0


def test_zero_q_with_positive_p_is_inf_unless_clipped():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    q = np.array([[1.0, 0.0], [0.5, 0.5]])
    for f in FUNCS.values():
        v, g = f(p, q, return_grad=True)
        assert v[0] == inf and np.isfinite(v[1])
        assert g[0, 1] == -inf
        v, g = f(p, q, eps=1e-7, return_grad=True)
        assert np.isfinite(v).all()
        assert g[0, 1] == 0  # clipped
    np.testing.assert_allclose(xent.cross_entropy(p, q, eps=1e-7)[0], -0.5 * np.log(1e-7),
                               rtol=1e-15)
    assert xent.cross_entropy(np.array([1]), q[:1])[0] == inf
    np.testing.assert_allclose(xent.cross_entropy(np.array([1]), q[:1], eps=1e-7), [-np.log(1e-7)])


def test_eps_clips_q_to_eps_and_one():
    p = np.array([[0.2, 0.3, 0.5]])
    q = np.array([[1e-9, 1.5, 0.4]])  # not probabilities: q > 1 is clipped to 1 too
    v, g = xent.cross_entropy(p, q, eps=1e-3, return_grad=True)
    np.testing.assert_allclose(v, [-(0.2 * np.log(1e-3) + 0.3 * np.log(1.0) + 0.5 * np.log(0.4))],
                               rtol=1e-15)
    np.testing.assert_array_equal(g, [[0.0, 0.0, -0.5 / 0.4]])
    # at the bounds themselves nothing is clipped
    v, g = xent.cross_entropy(p, np.array([[1e-3, 1.0, 0.4]]), eps=1e-3, return_grad=True)
    np.testing.assert_allclose(g, [[-0.2 / 1e-3, -0.3, -0.5 / 0.4]], rtol=1e-15)
    # KL(p, p) stays 0 with clipping, p >= eps
    assert xent.kl_divergence(p, p, eps=1e-3) == 0.0


@pytest.mark.parametrize("shape", [(5000, 10), (700, 47), (300, 600)])
def test_bit_identical_for_any_thread_count(shape):
    p, q = make(*shape, seed=3)
    p[3, 1] = nan
    q[7, 0] = 0.0
    for f in FUNCS.values():
        one = f(p, q, return_grad=True, n_threads=1)
        for nt in (2, 3):
            other = f(p, q, return_grad=True, n_threads=nt)
            assert all(a.tobytes() == b.tobytes() for a, b in zip(one, other))
    assert xent.entropy(p, n_threads=1).tobytes() == xent.entropy(p, n_threads=2).tobytes()


def test_nan_stays_in_its_row():
    p, q = make(4, 3, seed=5, zeros=False)
    p[1, 2] = nan
    q[2, 0] = nan
    for f in FUNCS.values():
        v, g = f(p, q, return_grad=True)
        assert np.isnan(v[[1, 2]]).all() and np.isfinite(v[[0, 3]]).all()
        assert np.isfinite(g[[0, 3]]).all()
    e = xent.entropy(p)
    assert np.isnan(e[1]) and np.isfinite(e[[0, 2, 3]]).all()
    # a NaN q where p == 0 still makes the row NaN (as scipy.special.rel_entr)
    v = xent.cross_entropy(np.array([[0.0, 1.0]]), np.array([[nan, 1.0]]))
    assert np.isnan(v[0])
    # labels: only q[label] is read
    v = xent.cross_entropy(np.array([0, 1]), np.array([[nan, 1.0], [nan, 1.0]]))
    assert np.isnan(v[0]) and v[1] == 0.0


def test_empty_batch():
    p = np.zeros((0, 3))
    for f in FUNCS.values():
        v, g = f(p, p, return_grad=True)
        assert v.shape == (0,) and g.shape == (0, 3)
        assert f(p, p, reduction="mean") == 0.0 and f(p, p, reduction="sum") == 0.0
    assert xent.entropy(p).shape == (0,) and xent.entropy(p, reduction="mean") == 0.0
    v, g = xent.cross_entropy(np.zeros(0, int), p, return_grad=True, reduction="mean")
    assert v == 0.0 and g.shape == (0, 3)
    # no classes: an empty sum is 0
    assert xent.entropy(np.zeros((2, 0))).tolist() == [0.0, 0.0]


def test_one_class():
    q = np.array([[1.0], [0.5]])
    np.testing.assert_allclose(xent.cross_entropy(np.ones((2, 1)), q), [0.0, np.log(2)])
    np.testing.assert_allclose(xent.cross_entropy(np.zeros(2, int), q), [0.0, np.log(2)])
    np.testing.assert_allclose(xent.kl_divergence(np.ones((2, 1)), q), [0.0, np.log(2)])
    assert xent.entropy(np.ones((3, 1))).tolist() == [0.0, 0.0, 0.0]


def test_values_outside_the_unit_interval_are_used_as_given():
    # documented: not checked (an O(N*C) pass); a negative value gives NaN
    assert np.isnan(xent.entropy(np.array([-0.5, 1.5])))
    assert np.isnan(xent.cross_entropy(np.array([0.5, 0.5]), np.array([-0.5, 1.5])))
    np.testing.assert_allclose(xent.cross_entropy(np.array([1.0]), np.array([2.0])), -np.log(2.0))


# ------------------------------------------------------------ bad input


P2, Q2 = np.full((4, 3), 1 / 3), np.full((4, 3), 1 / 3)


@pytest.mark.parametrize("f", [xent.cross_entropy, xent.kl_divergence])
def test_q_of_a_non_float_dtype_is_a_type_error(f):
    for dtype in (complex, object):
        with pytest.raises(TypeError, match=r"^q: expected a floating-point array .*got dtype"):
            f(P2, Q2.astype(dtype))


def test_p_dtypes():
    for dtype in (complex, object):
        with pytest.raises(TypeError, match=r"^p: expected float probabilities .* or integer "
                                            r"class labels, got dtype"):
            xent.cross_entropy(P2.astype(dtype), Q2)
    # bool p: 0/1 probabilities (promoted), integer p: class labels
    onehot = np.eye(3, dtype=bool)[[0, 2, 1, 1]]
    np.testing.assert_array_equal(xent.cross_entropy(onehot, Q2),
                                  xent.cross_entropy(onehot.astype(float), Q2))
    np.testing.assert_array_equal(xent.cross_entropy(onehot, Q2),
                                  xent.cross_entropy(np.array([0, 2, 1, 1]), Q2))
    for f in (xent.kl_divergence, lambda p, q: xent.entropy(p)):
        for dtype in (complex, object):
            with pytest.raises(TypeError, match=r"^p: expected a floating-point array"):
                f(P2.astype(dtype), Q2)


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"^p: expected the shape of q \(4, 3\), got \(4, 2\)"):
        xent.cross_entropy(np.zeros((4, 2)), Q2)
    with pytest.raises(ValueError, match=r"^p: expected the shape of q \(4, 3\), got \(3,\)"):
        xent.kl_divergence(np.zeros(3), Q2)
    with pytest.raises(ValueError, match=r"^p: integer class indices must have q's shape without "
                                         r"the class axis, \(4,\), got \(3,\)"):
        xent.cross_entropy(np.zeros(3, int), Q2)
    with pytest.raises(ValueError, match=r"got \(4, 3\) \(p of q's shape are probabilities and "
                                         r"need a float dtype\)"):
        xent.cross_entropy(np.zeros((4, 3), int), Q2)


@pytest.mark.parametrize("labels,bad", [([0, 1, 3, 1], "3 at index (2,)"),
                                        ([0, -1, 2, 1], "-1 at index (1,)")])
def test_labels_out_of_range(labels, bad):
    with pytest.raises(ValueError, match=r"^p: expected class indices in \[0, 3\), got "
                                         + bad.replace("(", r"\(").replace(")", r"\)")):
        xent.cross_entropy(np.array(labels), Q2)


@pytest.mark.parametrize("eps", [0, 1, -1e-3, 1.5, nan, inf, 0.0])
def test_eps_outside_the_open_unit_interval(eps):
    for f in FUNCS.values():
        with pytest.raises(ValueError, match=r"^eps: expected None or a number in \(0, 1\), got"):
            f(P2, Q2, eps=eps)


@pytest.mark.parametrize("eps", ["0.1", True, [0.1], np.array([0.1])])
def test_eps_of_a_wrong_type(eps):
    with pytest.raises(TypeError, match=r"^eps: expected None or a real number in \(0, 1\), got"):
        xent.cross_entropy(P2, Q2, eps=eps)


@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, 1])
def test_unknown_reduction(reduction):
    for f in (xent.cross_entropy, xent.kl_divergence, lambda p, q, **kw: xent.entropy(p, **kw)):
        more = ", 'batchmean', 'elementwise'" if f is xent.kl_divergence else ""
        with pytest.raises(ValueError, match=rf"^reduction: expected one of 'none', 'sum', "
                                             rf"'mean'{more}, got"):
            f(P2, Q2, reduction=reduction)
    for f in (xent.cross_entropy, lambda p, q, **kw: xent.entropy(p, **kw)):
        with pytest.raises(ValueError, match="^reduction: .* got 'batchmean'"):
            f(P2, Q2, reduction="batchmean")


def test_other_arguments():
    with pytest.raises(TypeError, match="^return_grad: expected a bool, got 1"):
        xent.cross_entropy(P2, Q2, return_grad=1)
    with pytest.raises(TypeError, match="^return_grad: expected a bool, got None"):
        xent.kl_divergence(P2, Q2, return_grad=None)
    with pytest.raises(ValueError, match="^axis: expected an axis in"):
        xent.entropy(P2, axis=2)
    with pytest.raises(TypeError, match="^axis: expected an integer"):
        xent.cross_entropy(P2, Q2, axis=(0, 1))
    with pytest.raises(ValueError, match="^n_threads: expected None, a positive count"):
        xent.cross_entropy(P2, Q2, n_threads=0)
    with pytest.raises(ValueError, match="^n_threads: expected None, a positive count"):
        xent.cross_entropy(np.zeros(4, int), Q2, n_threads=0)
    with pytest.raises(ValueError, match="^n_threads: expected None, a positive count"):
        xent.entropy(P2, n_threads=0)


def test_inputs_are_never_modified():
    p, q = make(20, 9, seed=7)
    labels = np.arange(20) % 9
    saved = p.copy(), q.copy(), labels.copy()
    for f in FUNCS.values():
        f(p, q, eps=1e-3, return_grad=True)
    xent.entropy(p)
    xent.cross_entropy(labels, q, eps=1e-3, return_grad=True)
    xent.cross_entropy(p, p, return_grad=True)
    for a, b in zip((p, q, labels), saved):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count(dtype):
    p, q = make(1031, 67, seed=10)
    p, q = p.astype(dtype), q.astype(dtype)
    labels = np.random.default_rng(1).integers(0, 67, 1031)
    runs = []
    for n in (1, 2, 3, -1):
        res = [xent.cross_entropy(p, q, eps=1e-6, return_grad=True, n_threads=n),
               xent.kl_divergence(p, q, return_grad=True, n_threads=n),
               (xent.entropy(p, n_threads=n),),
               xent.cross_entropy(labels, q, return_grad=True, reduction="mean", n_threads=n)]
        runs.append([a.tobytes() for a in itertools.chain.from_iterable(res)])
    for r in runs[1:]:
        assert r == runs[0]


def test_docstring_examples():
    from xent import _information

    result = doctest.testmod(_information)
    assert result.attempted > 0 and result.failed == 0
    for name in ("cross_entropy", "entropy", "kl_divergence"):
        doc = getattr(xent, name).__doc__
        for section in ("Parameters", "Returns", "Examples"):
            assert section in doc, (name, section)


@pytest.mark.parametrize("f", [xent.cross_entropy, xent.kl_divergence])
def test_gradient_of_the_mean_with_subnormal_p(f):
    # regression: the gradient was (-f * p) / q, so the factor 1/n could round a
    # subnormal p to 0 (0/0 = NaN where q == 0, not -inf) or lose its digits
    p = np.array([[5e-324, 1.0], [1e-320, 1.0]])
    q = np.array([[0.0, 1.0], [1e-300, 1.0]])
    _, g = f(p, q, reduction="mean", return_grad=True)
    assert g[0, 0] == -inf
    np.testing.assert_allclose(g[1, 0], -0.5 * (1e-320 / 1e-300), rtol=1e-15)


# --- PyTorch kl_div's conventions, grad_loss ---------------------------------

def _dirichlet(rng, shape):
    return rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]) if len(shape) > 1 else \
        rng.dirichlet(np.ones(shape[-1]))


@pytest.mark.parametrize("shape", [(4, 5), (7,), (3, 4, 6)])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning")
def test_kl_div_as_pytorch(shape, log_target, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(len(shape))
    lq = np.log(_dirichlet(rng, shape))
    p = _dirichlet(rng, shape)
    target = np.log(p) if log_target else p
    ours = {"none": "elementwise", "mean": "elementwise"}.get(reduction, reduction)
    a = torch.tensor(lq, requires_grad=True)
    ref = F.kl_div(a, torch.tensor(target), reduction=reduction, log_target=log_target)
    gl = rng.normal(size=shape) if reduction == "none" else 1.7
    ref.backward(torch.tensor(gl, dtype=torch.float64))
    if reduction == "mean":  # PyTorch's mean over elements: the element-wise terms' mean
        gl = np.full(shape, 1.7 / lq.size)
    value, grad = xent.kl_divergence(target, lq, log_input=True, log_target=log_target,
                                     reduction=ours, return_grad=True, grad_loss=gl)
    if reduction == "mean":
        value = np.mean(value)
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(grad, a.grad.numpy(), rtol=1e-13, atol=1e-17)


def test_kl_div_log_inputs_limits_and_errors():
    p = np.array([[0.5, 0.5, 0.0]])
    lq = np.log(np.array([[0.25, 0.5, 0.25]]))
    want = xent.kl_divergence(p, np.exp(lq))
    assert xent.kl_divergence(p, lq, log_input=True) == pytest.approx(want, rel=1e-15)
    with np.errstate(divide="ignore"):
        lp = np.log(p)
    # a zero target (log p = -inf) is a zero term (PyTorch: NaN for log_target)
    assert xent.kl_divergence(lp, lq, log_input=True, log_target=True) == pytest.approx(want, rel=1e-15)
    _, g = xent.kl_divergence(p, lq, log_input=True, return_grad=True)
    np.testing.assert_array_equal(g, -p)
    with pytest.raises(ValueError, match="^eps: not with log_input=True"):
        xent.kl_divergence(p, lq, log_input=True, eps=1e-7)
    with pytest.raises(TypeError, match="^log_target: expected a bool"):
        xent.kl_divergence(p, lq, log_target=1)
    with pytest.raises(ValueError, match=r"^grad_loss: expected a shape broadcastable to \(1, 3\)"):
        xent.kl_divergence(p, lq, reduction="elementwise", return_grad=True, grad_loss=np.ones(2))
    # batchmean divides by the first axis (PyTorch's, also for 1-D input: the class count)
    assert xent.kl_divergence(p[0], lq[0], log_input=True, reduction="batchmean") == \
        pytest.approx(want[0] / 3, rel=1e-15)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_grad_loss_of_cross_entropy_and_kl(reduction):
    rng = np.random.default_rng(11)
    p = _dirichlet(rng, (5, 4))
    q = _dirichlet(rng, (5, 4))
    y = rng.integers(0, 4, 5)
    gl = rng.normal(size=5) if reduction == "none" else -2.5
    for f, a in ((xent.cross_entropy, p), (xent.cross_entropy, y), (xent.kl_divergence, p)):
        _, g1 = f(a, q, reduction=reduction, return_grad=True)
        _, g = f(a, q, reduction=reduction, return_grad=True, grad_loss=gl)
        scale = np.asarray(gl)[:, None] if reduction == "none" else gl
        np.testing.assert_allclose(g, g1 * scale, rtol=1e-15)
    with pytest.raises(ValueError, match="^grad_loss: expected a scalar"):
        xent.cross_entropy(p, q, reduction="sum", return_grad=True, grad_loss=np.ones(5))


def test_kl_log_target_with_eps_zero_gradient_where_clipped():
    p = np.array([0.5, 0.5])
    q = np.array([0.01, 0.99])
    _, g = xent.kl_divergence(p, q, eps=0.1, return_grad=True)
    _, gl = xent.kl_divergence(np.log(p), q, log_target=True, eps=0.1, return_grad=True)
    assert g[0] == 0 and np.array_equal(g, gl)
