"""``where=`` on the losses of one value per sample (optax's mask): every
registered function that takes it, found through the registry. A sample
where it is False counts for nothing, exactly as a sample weight of 0: loss
0, gradient 0, out of the mean's denominator, even when its values are NaN
or infinite; a batch with nothing left has a mean of 0 and a 0 gradient."""

import inspect

import numpy as np
import pytest

import xent
from xent import _registry
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401

ROW_LOSSES = [e for e in _registry.ENTRIES
              if {"where", "sample_weight"} <= set(inspect.signature(e.function).parameters)
              and e.family not in ("partials", "info")]  # (info: an element mask, below)
REDUCTIONS = {"kl_divergence_with_logits": "sum", "jensen_shannon_with_logits": "sum"}


def test_the_losses_with_sample_weights_all_take_where():
    names = {e.name for e in ROW_LOSSES}
    assert {"softmax_cross_entropy", "nll_loss", "softmax_focal_loss", "multilabel_cross_entropy",
            "kl_divergence_with_logits", "jensen_shannon_with_logits"} <= names


def _inputs(e, dtype=np.float64, n=23, c=7):
    rng = np.random.default_rng(len(e.label))
    args = e.make(rng, n, c, dtype)
    keep = rng.random(n) > 0.4
    keep[0] = True
    return args, keep


def _grad_kw(e):
    return {"return_grad": True} if e.grad else {}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_where_is_a_sample_weight_of_zero(e, reduction):
    args, keep = _inputs(e)
    got = e.call(args, where=keep, reduction=reduction, **_grad_kw(e))
    want = e.call(args, sample_weight=keep.astype(np.float64), reduction=reduction, **_grad_kw(e))
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    # with sample weights too: their product
    sw = np.random.default_rng(1).random(keep.size) + 0.5
    got = e.call(args, where=keep, sample_weight=sw, reduction=reduction)
    want = e.call(args, sample_weight=np.where(keep, sw, 0.0), reduction=reduction)
    assert np.asarray(got if not isinstance(got, tuple) else got[0]).tobytes() == \
        np.asarray(want if not isinstance(want, tuple) else want[0]).tobytes()


@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_a_left_out_sample_counts_for_nothing_whatever_its_values(e):
    args, keep = _inputs(e)
    x = np.array(args[0], copy=True)
    x[~keep] = np.nan
    x[np.flatnonzero(~keep)[:1]] = np.inf
    masked = [x] + list(args[1:])
    red = REDUCTIONS.get(e.name, "sum")
    value, grad = e.call(masked, where=keep, reduction=red, return_grad=True)
    assert np.isfinite(value)
    assert np.all(grad[~keep] == 0) and np.all(np.isfinite(grad))
    # the sum over the batch is the sum over the kept samples alone
    kept = [np.asarray(a)[keep] for a in args]
    np.testing.assert_allclose(value, e.call(kept, reduction=red), rtol=1e-13)
    per = e.call(masked, where=keep, reduction="none")
    assert np.all(per[~keep] == 0)


@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_nothing_left_is_a_mean_of_zero(e):
    args, keep = _inputs(e)
    value, grad = e.call(args, where=np.zeros_like(keep), reduction="mean", return_grad=True)
    assert value == 0 and not grad.any()


@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_where_broadcasts_to_the_batch_shape_and_checks_it(e):
    args, keep = _inputs(e)
    x = np.asarray(args[0])
    rest = [np.asarray(a) for a in args[1:]]
    # a 3-D batch: (2, 23) samples, where given per leading row
    x3 = np.stack([x, x])
    rest3 = [np.stack([a, a]) for a in rest]
    got = e.call([x3] + rest3, where=np.array([[True], [False]]), reduction="sum")
    want = e.call(args, reduction="sum")
    np.testing.assert_allclose(got, want, rtol=1e-13)
    grad_out = np.full(x.shape, 5.0)
    for bad, err, words in [(keep.astype(float), TypeError, "where: expected a boolean array"),
                            (np.ones(5, bool), ValueError, "where: expected a boolean array "
                                                           "broadcastable to the batch shape")]:
        kw = {"return_grad": True, "grad_out": grad_out} if e.out == "grad_out" else {}
        with pytest.raises(err, match=words):
            e.call(args, where=bad, **kw)
        assert np.all(grad_out == 5.0)


# --- the information functions: optax's element mask ------------------------------

def _probs(rng, shape):
    p = rng.random(shape) + 0.05
    return p / p.sum(-1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c", [5, 300])
def test_information_where_leaves_entries_out(dtype, c):
    rng = np.random.default_rng(c)
    p, q = _probs(rng, (40, c)).astype(dtype), _probs(rng, (40, c)).astype(dtype)
    w = rng.random((40, c)) > 0.3
    p_nan, q_nan = p.copy(), q.copy()
    p_nan[~w], q_nan[~w] = np.nan, -1.0  # (left out: never read)
    p0 = np.where(w, p, 0)
    tol = 1e-15 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(xent.entropy(p_nan, where=w), xent.entropy(p0), rtol=tol, atol=tol)
    # the masked terms of KL and cross-entropy are those of p == 0
    want_kl = np.sum(np.where(w, p * np.log(np.where(w, p / q, 1.0)), 0.0), axis=-1)
    got, g = xent.kl_divergence(p_nan, q_nan, where=w, return_grad=True)
    np.testing.assert_allclose(got, want_kl, rtol=10 * tol, atol=tol)
    assert np.all(g[~w] == 0)
    np.testing.assert_allclose(g[w], (-p / q)[w], rtol=tol)
    got, g = xent.cross_entropy(p_nan, q_nan, where=w, return_grad=True)
    want_ce = -np.sum(np.where(w, p * np.log(np.where(w, q, 1.0)), 0.0), axis=-1)
    np.testing.assert_allclose(got, want_ce, rtol=tol, atol=tol)
    assert np.all(g[~w] == 0)
    terms = xent.kl_divergence(p_nan, q_nan, where=w, reduction="elementwise")
    assert np.all(terms[~w] == 0) and np.all(np.isfinite(terms))


def test_information_where_of_whole_vectors_and_the_mean():
    rng = np.random.default_rng(3)
    p, q = _probs(rng, (30, 8)), _probs(rng, (30, 8))
    keep = rng.random(30) > 0.5
    keep[0] = True
    p[~keep] = np.nan
    rows = keep[:, None]
    got = xent.kl_divergence(p, q, where=rows)
    assert np.all(got[~keep] == 0)
    want = xent.kl_divergence(p[keep], q[keep])
    np.testing.assert_array_equal(got[keep], want)
    mean, g = xent.kl_divergence(p, q, where=rows, reduction="mean", return_grad=True)
    np.testing.assert_allclose(mean, want.mean(), rtol=1e-15)
    np.testing.assert_allclose(g[keep], xent.kl_divergence(p[keep], q[keep], reduction="mean",
                                                           return_grad=True)[1], rtol=1e-15)
    assert not g[~keep].any()
    assert xent.entropy(p, where=np.zeros((30, 1), bool), reduction="mean") == 0
    # class labels: a label whose entry is left out counts for nothing
    labels = rng.integers(0, 8, 30)
    w = np.ones((30, 8), bool)
    w[np.arange(30), labels] = keep
    got = xent.cross_entropy(labels, q, where=w, reduction="mean")
    np.testing.assert_allclose(got, -np.log(q[np.arange(30), labels])[keep].mean(), rtol=1e-15)
    with pytest.raises(TypeError, match="where: expected a boolean array"):
        xent.entropy(q, where=np.ones(8))
    with pytest.raises(ValueError, match="where: expected an array broadcastable"):
        xent.kl_divergence(q, q, where=np.ones(30, bool))


def test_information_where_gradient_by_finite_differences():
    rng = np.random.default_rng(4)
    p, q = _probs(rng, (3, 6)), _probs(rng, (3, 6))
    w = rng.random((3, 6)) > 0.3
    _, g = xent.cross_entropy(p, q, where=w, reduction="sum", return_grad=True)
    h = 1e-7
    for i in range(3):
        for j in range(6):
            up, down = q.copy(), q.copy()
            up[i, j] += h
            down[i, j] -= h
            fd = (xent.cross_entropy(p, up, where=w, reduction="sum")
                  - xent.cross_entropy(p, down, where=w, reduction="sum")) / (2 * h)
            assert abs(fd - g[i, j]) <= 1e-6 * max(1.0, abs(fd))


# --- the element-wise losses: a mask of elements -----------------------------------

ELEMENT_LOSSES = [
    ("binary_cross_entropy_with_logits", lambda rng, s: rng.standard_normal(s) * 3),
    ("binary_cross_entropy", lambda rng, s: rng.random(s) * 0.98 + 0.01),
    ("binary_focal_loss_with_logits", lambda rng, s: rng.standard_normal(s) * 3),
    ("binary_focal_loss", lambda rng, s: rng.random(s) * 0.98 + 0.01),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,make", ELEMENT_LOSSES, ids=[n for n, _ in ELEMENT_LOSSES])
def test_element_losses_where(name, make, dtype):
    fn = getattr(xent, name)
    rng = np.random.default_rng(len(name))
    x = make(rng, (50, 9)).astype(dtype)
    t = (rng.random((50, 9)) > 0.5).astype(dtype)
    w = rng.random((50, 9)) > 0.3
    weight = (rng.random(9) + 0.5).astype(dtype)
    xm = x.copy()
    xm[~w] = np.nan  # left out: no effect
    per, g = fn(xm, t, where=w, weight=weight, reduction="none", return_grad=True)
    want_per, want_g = fn(x, t, weight=weight, reduction="none", return_grad=True)
    np.testing.assert_array_equal(per, np.where(w, want_per, 0))
    np.testing.assert_array_equal(g, np.where(w, want_g, 0))
    # the mean is over the elements kept
    mean, gm = fn(xm, t, where=w, weight=weight, return_grad=True)
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(mean, np.sum(np.where(w, want_per, 0), dtype=np.float64) / w.sum(),
                               rtol=tol)
    np.testing.assert_allclose(gm, np.where(w, want_g, 0) / w.sum(), rtol=tol, atol=tol * 1e-3)
    # a mask of rows (a trailing axis of 1); nothing left: a mean of 0
    rows = w[:, :1]
    np.testing.assert_allclose(fn(x, t, where=rows, reduction="sum"),
                               fn(x[rows[:, 0]], t[rows[:, 0]], reduction="sum"), rtol=tol)
    value, grad = fn(xm, t, where=np.zeros((50, 9), bool), return_grad=True)
    assert value == 0 and not grad.any()
    out = np.full(x.shape, 3.0, dtype)
    with pytest.raises(ValueError, match="where: expected a boolean array broadcastable"):
        fn(x, t, where=np.ones(4, bool), return_grad=True, grad_out=out)
    with pytest.raises(TypeError, match="where: expected a boolean array"):
        fn(x, t, where=w.astype(np.int8), return_grad=True, grad_out=out)
    assert np.all(out == 3.0)


@pytest.mark.parametrize("name,make", ELEMENT_LOSSES, ids=[n for n, _ in ELEMENT_LOSSES])
def test_element_where_is_read_by_the_kernel(name, make):
    """The mask is read through its strides (no weight array of the input's
    shape): every layout gives the bits of the contiguous mask, and a call
    allocates far less than the input's size."""
    import tracemalloc

    fn = getattr(xent, name)
    rng = np.random.default_rng(3)
    x = make(rng, (1000, 1000)).astype(np.float32)
    t = (rng.random((1000, 1000)) > 0.5).astype(np.float32)
    w = rng.random((1000, 1000)) > 0.3
    want = fn(x, t, where=w, reduction="none")
    big = np.zeros((1000, 2000), bool)
    big[:, ::2] = w
    for layout in (w[::-1][::-1], big[:, ::2], np.asfortranarray(w)):
        np.testing.assert_array_equal(fn(x, t, where=layout, reduction="none"), want)
    rows = w[:, :1]  # (a mask per row: the bits of the rows taken alone)
    np.testing.assert_array_equal(fn(x, t, where=rows, reduction="none"),
                                  np.where(rows, fn(x, t, reduction="none"), 0))
    fn(x, t, where=w)  # (warm)
    for mask, bound in ((w, x.nbytes // 8), (np.ones((), bool), x.nbytes // 8),
                        # (a mask broadcast along the rows, the elements taken as one
                        # run: copied as bytes, a quarter of float32 weights)
                        (w[:1], x.size + x.nbytes // 8)):
        tracemalloc.start()
        fn(x, t, where=mask)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < bound, (mask.shape, peak)  # (the weights as an array: x.nbytes)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["cross_entropy", "kl_divergence", "cross_entropy labels"])
def test_information_sample_weight(name, reduction):
    """Keras' sample_weight on the information losses: a whole vector left out
    by where (a trailing axis of 1) is a sample weight of 0, bit for bit; weights
    scale each vector's value and gradient; the mean divides by their sum."""
    rng = np.random.default_rng(len(name))
    n, c = 23, 7
    q = rng.dirichlet(np.ones(c), n)
    p = rng.integers(0, c, n) if name.endswith("labels") else rng.dirichlet(np.ones(c), n)
    fn = getattr(xent, name.split()[0])
    keep = rng.random(n) > 0.4
    keep[0] = True
    q_bad = q.copy()
    q_bad[~keep] = np.nan  # (left out: no effect)
    got = fn(p, q_bad, where=keep[:, None], reduction=reduction, return_grad=True)
    want = fn(p, q_bad, sample_weight=keep.astype(float), reduction=reduction, return_grad=True)
    for a, b in zip(got, want):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    sw = rng.random(n) + 0.5
    v, g = fn(p, q, sample_weight=sw, reduction=reduction, return_grad=True)
    v0, g0 = fn(p, q, reduction="none", return_grad=True)
    den = sw.sum() if reduction == "mean" else 1.0
    want = v0 * sw if reduction == "none" else np.sum(v0 * sw) / den
    np.testing.assert_allclose(v, want, rtol=1e-13)
    np.testing.assert_allclose(g, g0 * sw[:, None] / den, rtol=1e-13)
    with pytest.raises(ValueError, match="sample_weight: expected the batch shape"):
        fn(p, q, sample_weight=sw[:-1])
