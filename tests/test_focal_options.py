"""Focal losses on probabilities and label smoothing of the softmax focal loss
(Keras' ``BinaryFocalCrossentropy``/``CategoricalFocalCrossentropy`` with
``from_logits=False``, and their ``label_smoothing``): Keras' documented
values, a float64 transcription of Keras' definitions, mpmath, finite
differences, the options together (where, weights, renormalisation,
ignore_index), thread bit-identity and bad input."""

import mpmath
import numpy as np
import pytest

import xent
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401
from conftest import finite_difference_grad as _fd


# ------------------------------------------------------------ references

def _keras_categorical_focal(y_true, y_pred, alpha=0.25, gamma=2.0, smoothing=0.0, eps=1e-7):
    """Keras' categorical_focal_crossentropy(from_logits=False) in float64,
    with the lower clip only (Keras also clips to 1 - eps above)."""
    y_true = np.asarray(y_true, np.float64)
    c = y_true.shape[-1]
    y_true = y_true * (1 - smoothing) + smoothing / c
    q = np.asarray(y_pred, np.float64)
    q = q / q.sum(-1, keepdims=True)
    q = np.clip(q, eps, 1.0)
    return np.sum(-alpha * y_true * (1 - q) ** gamma * np.log(q), axis=-1)


def _keras_binary_focal(y_true, y_pred, alpha=None, gamma=2.0, smoothing=0.0, eps=1e-7):
    """Keras' binary_focal_crossentropy(from_logits=False) element-wise in
    float64: the cross-entropy of the clipped prediction, the focal factor of
    the unclipped one; the clip's bounds in the prediction's dtype, as Keras
    (and binary_cross_entropy) take them."""
    t = np.asarray(y_true, np.float64) * (1 - smoothing) + 0.5 * smoothing
    dt = np.asarray(y_pred).dtype
    p = np.asarray(y_pred, np.float64)
    pc = np.clip(p, float(dt.type(eps)), float(dt.type(1 - eps)))
    bce = -(t * np.log(pc) + (1 - t) * np.log1p(-pc))
    q = t * (1 - p) + (1 - t) * p
    w = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    return w * q**gamma * bce


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)




# ------------------------------------------------- Keras' documented values

def test_keras_documented_values():
    # keras.losses.binary_focal_crossentropy's docstring: [0.330, 0.206]
    y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    got = xent.binary_focal_loss(y_pred, y_true, gamma=2, eps=1e-7, reduction="none").mean(-1)
    np.testing.assert_allclose(got, [0.330, 0.206], atol=5e-4)
    # CategoricalFocalCrossentropy's docstring: 0.23315276 (alpha 0.25, gamma 2)
    y_true = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    kw = dict(gamma=2.0, alpha=0.25, eps=1e-7, renormalize=True, reduction="mean")
    got = xent.cross_entropy(y_true, y_pred, **kw)
    assert abs(float(got) - 0.23315276) < 1e-8
    np.testing.assert_allclose(xent.cross_entropy(np.array([1, 2]), y_pred, **kw), got,
                               rtol=1e-15)
    # the focal loss from logits with label smoothing: the one from probabilities of
    # the softmax (Keras computes it so)
    logits = np.log(y_pred + 1e-3)
    want = _keras_categorical_focal(y_true, _softmax(logits), smoothing=0.1, eps=0).mean()
    got = xent.softmax_focal_loss(logits, np.array([1, 2]), alpha=0.25, label_smoothing=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-13)


# ------------------------------------------- the categorical focal on probabilities

@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-13), (np.float32, 3e-6)])
@pytest.mark.parametrize("c", [3, 47, 48, 700])  # (both sides of the short-row path)
def test_cross_entropy_focal_against_keras(c, dtype, rtol):
    rng = np.random.default_rng(c)
    p = rng.random((33, c))
    p /= p.sum(-1, keepdims=True)
    q = rng.random((33, c)) * 2
    q[0, 0] = 0.0  # (clipped)
    for gamma, alpha, smoothing in ((2.0, 0.25, 0.0), (0.5, None, 0.1), (3.0, "class", 0.0)):
        al = rng.random(c) + 0.5 if alpha == "class" else alpha
        kw = dict(gamma=gamma, alpha=al, eps=1e-7, renormalize=True, label_smoothing=smoothing)
        got = xent.cross_entropy(p.astype(dtype), q.astype(dtype), **kw)
        assert got.dtype == dtype
        want = _keras_categorical_focal(p.astype(dtype), q.astype(dtype),
                                        1.0 if al is None else al, gamma, smoothing)
        np.testing.assert_allclose(got, want, rtol=rtol)
    labels = rng.integers(0, c, 33)
    got = xent.cross_entropy(labels, q.astype(dtype), gamma=2.0, alpha=0.25, eps=1e-7,
                             renormalize=True)
    want = _keras_categorical_focal(np.eye(c)[labels], q.astype(dtype))
    np.testing.assert_allclose(got, want, rtol=rtol)


def test_cross_entropy_gamma_zero_is_the_cross_entropy():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(9), 20)
    q = rng.dirichlet(np.ones(9), 20)
    v0, g0 = xent.cross_entropy(p, q, return_grad=True)
    v1, g1 = xent.cross_entropy(p, q, gamma=0.0, return_grad=True)  # (the plain terms)
    assert np.array_equal(v0, v1) and np.array_equal(g0, g1)
    # alpha = 1 with gamma = 0: the focal terms, the same values
    v2, g2 = xent.cross_entropy(p, q, gamma=0.0, alpha=1.0, return_grad=True)
    np.testing.assert_allclose(v2, v0, rtol=1e-14)
    np.testing.assert_allclose(g2, g0, rtol=1e-14)


@pytest.mark.parametrize("labels", [False, True])
@pytest.mark.parametrize("options", [
    dict(gamma=2.0),
    dict(gamma=0.5, alpha="class"),
    dict(gamma=1.5, renormalize=True),
    dict(gamma=2.0, renormalize=True, eps=0.05, where=True),
    dict(gamma=3.0, alpha=0.3, where=True),
])
def test_cross_entropy_focal_gradient(options, labels):
    rng = np.random.default_rng(7)
    n, c = 5, 7 if not labels else 60
    q = rng.random((n, c)) + 0.02
    q /= q.sum(-1, keepdims=True)
    p = rng.integers(0, c, n) if labels else rng.dirichlet(np.ones(c), n)
    kw = dict(options)
    if kw.get("alpha") == "class":
        kw["alpha"] = rng.random(c) + 0.5
    if kw.pop("where", False):
        w = rng.random((n, c)) > 0.3
        w[np.arange(n), p if labels else 0] = True
        w[1] = False  # (nothing kept)
        kw["where"] = w
    v, g = xent.cross_entropy(p, q, reduction="sum", return_grad=True, **kw)
    fd = _fd(lambda a: float(xent.cross_entropy(p, a, reduction="sum", **kw)), q)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())
    if "where" in kw:
        assert np.all(g[~kw["where"]] == 0)


def test_cross_entropy_focal_mpmath():
    # terms near q = 1 ((1 - q)^gamma tiny, log q ~ q - 1) and small q
    q = np.array([[1 - 2.0**-40, 2.0**-40], [1e-300, 1 - 1e-300], [0.3, 0.7]])
    p = np.array([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]])
    got = xent.cross_entropy(p, q, gamma=2.5, alpha=np.array([0.4, 0.9]))
    mpmath.mp.dps = 50
    for i in range(3):
        want = 0
        for j in range(2):
            qq = mpmath.mpf(float(q[i, j]))
            want += -mpmath.mpf([0.4, 0.9][j]) * float(p[i, j]) * (1 - qq) ** 2.5 * mpmath.log(qq)
        # (the power as exp(gamma log(1 - q)): a relative error of |gamma log(1 - q)|
        # ulp, 69 at q = 1 - 2^-40, plus a few for the log and the products)
        bound = (abs(2.5 * np.log1p(-q[i][q[i] < 1]).min()) + 4) * 2.3e-16
        assert abs(float(got[i]) - float(want)) <= bound * abs(float(want)), (i, got[i], want)


def test_cross_entropy_focal_threads_and_inputs():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(300), 500).astype(np.float32)
    q = rng.dirichlet(np.ones(300), 500).astype(np.float32)
    p0, q0 = p.copy(), q.copy()
    res = [xent.cross_entropy(p, q, gamma=2.0, alpha=0.25, renormalize=True, return_grad=True,
                              n_threads=k) for k in (1, 2, 3, 8)]
    for v, g in res[1:]:
        assert np.array_equal(v, res[0][0]) and np.array_equal(g, res[0][1])
    assert np.array_equal(p, p0) and np.array_equal(q, q0)


# --------------------------------------------------- binary focal on probabilities

@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-13), (np.float32, 2e-6)])
def test_binary_focal_loss_against_keras(dtype, rtol):
    rng = np.random.default_rng(11)
    p = rng.random((40, 13))
    p[0, :4] = [0.0, 1.0, 1e-9, 1 - 1e-9]  # (clipped)
    t = (rng.random((40, 13)) > 0.5).astype(np.float64)
    t[1] = rng.random(13)  # (soft targets)
    for gamma, alpha, smoothing in ((2.0, None, 0.0), (0.5, 0.25, 0.1), (3.0, 0.9, 0.0),
                                    (0.0, None, 0.0)):
        got = xent.binary_focal_loss(p.astype(dtype), t.astype(dtype), gamma=gamma, alpha=alpha,
                                     eps=1e-7, label_smoothing=smoothing, reduction="none")
        assert got.dtype == dtype
        want = _keras_binary_focal(t, p.astype(dtype), alpha, gamma, smoothing)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300)
    # gamma 0 without alpha: binary_cross_entropy
    np.testing.assert_allclose(xent.binary_focal_loss(p, t, gamma=0, eps=1e-7),
                               xent.binary_cross_entropy(p, t, eps=1e-7), rtol=1e-14)


@pytest.mark.parametrize("options", [
    dict(gamma=2.0), dict(gamma=0.7, alpha=0.3), dict(gamma=3, label_smoothing=0.2, eps=0.1),
    dict(gamma=1.0, weight=True, where=True),
])
def test_binary_focal_loss_gradient(options):
    rng = np.random.default_rng(5)
    p = rng.random((4, 6)) * 0.9 + 0.05
    t = rng.random((4, 6))
    kw = dict(options)
    if kw.pop("weight", False):
        kw["weight"] = rng.random((4, 6)) + 0.5
    if kw.pop("where", False):
        kw["where"] = rng.random((4, 6)) > 0.3
    v, g = xent.binary_focal_loss(p, t, reduction="sum", return_grad=True, **kw)
    fd = _fd(lambda a: float(xent.binary_focal_loss(a, t, reduction="sum", **kw)), p)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    if "where" in kw:
        assert np.all(g[~kw["where"]] == 0)


def test_binary_focal_loss_clipped_and_certain():
    # a clipped p has no cross-entropy gradient; q = 0 (a certain, right p) gives 0
    p = np.array([0.0, 1.0, 1.0, 0.0, 0.5])
    t = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    v, g = xent.binary_focal_loss(p, t, eps=1e-7, reduction="none", return_grad=True)
    assert v[0] == 0 and v[1] == 0 and np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    assert v[2] > 16 and v[3] > 16  # (a certain wrong p: -log 1e-7, the focal factor 1)
    assert not np.any(np.isnan(xent.binary_focal_loss(p, t, eps=0, gamma=0.5,
                                                      reduction="none")[[0, 1, 4]]))


# ------------------------------------------- label smoothing of the softmax focal loss

@pytest.mark.parametrize("c", [5, 31, 32, 33, 300])  # (the flat and row paths)
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 3e-6)])
def test_softmax_focal_smoothing_against_the_reference(c, dtype, rtol):
    rng = np.random.default_rng(c)
    n = 200
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    y = rng.integers(0, c, n)
    y[3] = -100
    sw = rng.random(n) + 0.5
    al = rng.random(c) + 0.5
    kw = dict(gamma=2.0, alpha=al, label_smoothing=0.1, sample_weight=sw, reduction="none")
    got, g = xent.softmax_focal_loss(x, y, return_grad=True, **kw)
    t = np.eye(c)[np.where(y >= 0, y, 0)] * 0.9 + 0.1 / c
    pr = _softmax(x.astype(np.float64))
    want = -np.sum(al * t * (1 - pr) ** 2 * np.log(pr), -1) * sw
    want[3] = 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300)
    assert np.all(g[3] == 0)
    # the labels route reads the labels: the bits of one-hot targets smoothed alike
    onehot = np.eye(c, dtype=dtype)[np.where(y >= 0, y, 0)]
    kw2 = dict(kw, sample_weight=np.where(y >= 0, sw, 0.0))
    got2, g2 = xent.softmax_focal_loss(x, onehot, return_grad=True, **kw2)
    assert np.array_equal(got, got2) and np.array_equal(g, g2)
    # the mean divides by the samples not ignored
    m = xent.softmax_focal_loss(x, y, gamma=2.0, alpha=al, label_smoothing=0.1, sample_weight=sw)
    np.testing.assert_allclose(m, want.sum() / sw[y >= 0].sum(), rtol=rtol)


def test_softmax_focal_smoothing_gradient_and_options():
    rng = np.random.default_rng(2)
    for c in (6, 40):
        x = rng.standard_normal((5, c))
        y = rng.integers(0, c, 5)
        where = np.array([True, True, False, True, True])
        for kw in (dict(gamma=2.0, label_smoothing=0.1),
                   dict(gamma=0.5, alpha=0.25, label_smoothing=0.3, where=where),
                   dict(gamma=1.0, label_smoothing=1.0, ignore_index=int(y[0]))):
            v, g = xent.softmax_focal_loss(x, y, reduction="sum", return_grad=True, **kw)
            fd = _fd(lambda a: float(xent.softmax_focal_loss(a, y, reduction="sum", **kw)), x)
            np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # label_smoothing 0 keeps the labels' own path (its bits)
    x = rng.standard_normal((50, 20)).astype(np.float32)
    y = rng.integers(0, 20, 50)
    a = xent.softmax_focal_loss(x, y, return_grad=True)
    b = xent.softmax_focal_loss(x, y, label_smoothing=0.0, return_grad=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # threads: the same bits
    x = rng.standard_normal((3000, 37)).astype(np.float32)
    y = rng.integers(0, 37, 3000)
    res = [xent.softmax_focal_loss(x, y, label_smoothing=0.1, return_grad=True, n_threads=k)
           for k in (1, 2, 5)]
    for v, g in res[1:]:
        assert np.array_equal(v, res[0][0]) and np.array_equal(g, res[0][1])


def test_softmax_focal_smoothing_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 12)).astype(ml_dtypes.bfloat16)
    y = rng.integers(0, 12, 64)
    v, g = xent.softmax_focal_loss(x, y, label_smoothing=0.1, return_grad=True)
    assert g.dtype == x.dtype
    v32, g32 = xent.softmax_focal_loss(x.astype(np.float32), y, label_smoothing=0.1,
                                       return_grad=True)
    np.testing.assert_allclose(np.float32(v), v32, rtol=1e-2)
    np.testing.assert_allclose(g.astype(np.float32), g32, rtol=2e-2, atol=1e-3)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call,kw,exc,words", [
    ("ce", dict(gamma=-1.0), ValueError, "gamma"),
    ("ce", dict(gamma=np.nan), ValueError, "gamma"),
    ("ce", dict(gamma="2"), TypeError, "gamma"),
    ("ce", dict(gamma=2.0, alpha=np.ones(3)), ValueError, "alpha"),
    ("ce", dict(alpha=np.ones((5, 5))), ValueError, "alpha"),
    ("ce", dict(alpha=np.array(["a"] * 5)), TypeError, "alpha"),
    ("bf", dict(gamma=-0.5), ValueError, "gamma"),
    ("bf", dict(alpha=1.5), ValueError, "alpha"),
    ("bf", dict(eps=0.5), ValueError, "eps"),
    ("bf", dict(label_smoothing=2.0), ValueError, "label_smoothing"),
    ("sf", dict(label_smoothing=-0.1), ValueError, "label_smoothing"),
    ("sf", dict(label_smoothing=np.nan), ValueError, "label_smoothing"),
])
def test_bad_input(call, kw, exc, words):
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(5), 4)
    g = np.full((4, 5), 7.0)
    with pytest.raises(exc, match=words):
        if call == "ce":
            xent.cross_entropy(q, q, return_grad=True, **kw)
        elif call == "bf":
            xent.binary_focal_loss(q, (q > 0.2).astype(float), return_grad=True, grad_out=g, **kw)
        else:
            xent.softmax_focal_loss(q, np.array([0, 1, 2, 3]), return_grad=True, grad_out=g, **kw)
    assert np.all(g == 7.0)  # (nothing written)


def test_nan_and_edge_probabilities():
    # a NaN probability with target mass is NaN (not a 0 from a vanished power),
    # with and without labels; q = 1 exactly is 0 with a 0 gradient
    q = np.array([[np.nan, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    p = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    for gamma in (2.0, 0.5):
        v, g = xent.cross_entropy(p, q, gamma=gamma, return_grad=True)
        assert np.isnan(v[0]) and v[1] == 0 and np.isfinite(v[2])
        assert np.all(g[1] == 0)
        v, g = xent.cross_entropy(np.array([0, 0, 2]), q, gamma=gamma, return_grad=True)
        assert np.isnan(v[0]) and v[1] == 0 and np.isfinite(v[2])
        assert np.all(g[1] == 0)
    b = xent.binary_focal_loss(np.array([np.nan, 0.3]), np.array([1.0, 1.0]), reduction="none")
    assert np.isnan(b[0]) and np.isfinite(b[1])


def test_review_cases():
    # a class factor of 0 at q = 0: its term and gradient are 0 (not 0/0)
    q = np.array([[0.0, 1.0]])
    for p in (np.array([[1.0, 0.0]]), np.array([0])):
        for gamma in (2.0, 0.0):
            v, g = xent.cross_entropy(p, q, gamma=gamma, alpha=[0.0, 1.0], return_grad=True)
            assert v[0] == 0 and np.all(g == 0), (p, gamma, v, g)
    # renormalisation without a clip, an unclipped q_j = 0 under target mass: its own
    # entry -inf, the others the finite term of the sum (as with class labels)
    q = np.array([[0.0, 0.6, 0.4]])
    for p in (np.array([[1.0, 0.0, 0.0]]), np.array([0])):
        v, g = xent.cross_entropy(p, q, renormalize=True, return_grad=True)
        assert g[0, 0] == -np.inf and np.array_equal(g[0, 1:], [1.0, 1.0]), g
    # float32: a huge derivative of one entry does not spoil the others
    p = np.array([[0.5, 0.5]], np.float32)
    q = np.array([[1e-40, 1.0]], np.float32)
    v, g = xent.cross_entropy(p, q, renormalize=True, return_grad=True)
    g64 = xent.cross_entropy(p.astype(np.float64), q.astype(np.float64), renormalize=True,
                             return_grad=True)[1]
    assert np.isfinite(v[0]) and g[0, 1] == np.float32(g64[0, 1]), (g, g64)
