"""Focal losses against NumPy float64 references, Keras' documented examples,
finite differences, extremes and bad input."""

import itertools

import numpy as np
import pytest

import xent
from conftest import finite_difference_grad, ref_log_softmax

inf = np.inf


def ref_binary_focal(x, t, gamma, alpha=None, weight=1.0):
    x, t = np.asarray(x, float), np.asarray(t, float)
    p = 0.5 * (1 + np.tanh(x / 2))
    ce = np.logaddexp(0, x) - x * t
    q = t * (1 - p) + (1 - t) * p
    a = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    return weight * a * q**gamma * ce


def ref_softmax_focal(x, target, gamma, alpha=None):
    """Per-sample -sum_c alpha_c t_c (1 - p_c)^gamma log p_c, labels or probabilities."""
    lp = ref_log_softmax(x)
    c = x.shape[-1]
    t = np.eye(c)[target] if np.asarray(target).dtype.kind in "iu" else target
    a = np.ones(c) if alpha is None else np.broadcast_to(alpha, (c,))
    with np.errstate(invalid="ignore"):
        terms = np.where(t != 0, -a * t * (1 - np.exp(lp)) ** gamma * lp, 0.0)
    return terms.sum(-1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(8)
    return dict(x=rng.standard_normal((6, 5)) * 3, t=rng.random((6, 5)),
                hard=(rng.random((6, 5)) > 0.5).astype(float),
                labels=rng.integers(0, 5, 6), probs=rng.dirichlet(np.ones(5), 6))


@pytest.mark.parametrize("gamma,alpha,target,reduction", list(itertools.product(
    [0.0, 0.5, 2.0, 3.5], [None, 0.25], ["t", "hard"], ["mean", "sum", "none"])))
def test_binary_focal_against_reference(data, gamma, alpha, target, reduction):
    loss = xent.binary_focal_loss_with_logits(data["x"], data[target], gamma=gamma, alpha=alpha,
                                              reduction=reduction)
    want = ref_binary_focal(data["x"], data[target], gamma, alpha)
    want = {"none": want, "sum": want.sum(), "mean": want.mean()}[reduction]
    np.testing.assert_allclose(loss, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("gamma,alpha", [(0.0, None), (2.0, None), (0.5, 0.3), (3.0, 0.75)])
def test_binary_focal_gradient(data, gamma, alpha):
    kw = dict(gamma=gamma, alpha=alpha, reduction="sum")
    _, g = xent.binary_focal_loss_with_logits(data["x"], data["t"], return_grad=True, **kw)
    fd = finite_difference_grad(
        lambda z: float(xent.binary_focal_loss_with_logits(z, data["t"], **kw)), data["x"])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_binary_focal_gamma_zero_is_bce(data):
    for alpha, w in ((None, 1.0), (0.25, None)):
        got = xent.binary_focal_loss_with_logits(data["x"], data["hard"], gamma=0, alpha=alpha,
                                                 reduction="none")
        bce = xent.binary_cross_entropy_with_logits(data["x"], data["hard"], reduction="none")
        a = 1.0 if alpha is None else alpha * data["hard"] + (1 - alpha) * (1 - data["hard"])
        np.testing.assert_allclose(got, a * bce, rtol=1e-14)


def test_keras_binary_focal_examples():
    # keras.losses.BinaryFocalCrossentropy(gamma=2, from_logits=True): 0.691
    y_true = np.array([0.0, 1.0, 0.0, 0.0])
    logits = np.array([-18.6, 0.51, 2.94, -12.8])
    assert round(float(xent.binary_focal_loss_with_logits(logits, y_true, gamma=2)), 3) == 0.691
    # keras.losses.binary_focal_crossentropy on probabilities: [0.330, 0.206]
    p = np.array([[0.6, 0.4], [0.4, 0.6]])
    per = xent.binary_focal_loss_with_logits(np.log(p / (1 - p)), np.array([[0.0, 1], [0, 0]]),
                                             gamma=2, reduction="none").mean(-1)
    np.testing.assert_allclose(per, [0.330, 0.206], atol=5e-4)


def test_binary_focal_extremes_never_nan():
    x = np.array([-inf, -1e4, -30.0, 0.0, 30.0, 1e4, inf])
    for t in (0.0, 1.0, 0.3):
        loss, grad = xent.binary_focal_loss_with_logits(x, np.full_like(x, t), gamma=2,
                                                        reduction="none", return_grad=True)
        assert not np.isnan(loss).any() and not np.isnan(grad).any(), t
    loss = xent.binary_focal_loss_with_logits(np.array([inf, -inf]), np.array([1.0, 0.0]),
                                              reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0])


@pytest.mark.parametrize("gamma,alpha,kind,reduction", list(itertools.product(
    [0.0, 0.5, 2.0], [None, 0.25, "per-class"], ["labels", "probs"], ["mean", "sum", "none"])))
def test_softmax_focal_against_reference(data, gamma, alpha, kind, reduction):
    if alpha == "per-class":
        alpha = np.linspace(0.2, 1.0, 5)
    target = data[kind]
    loss = xent.softmax_focal_loss(data["x"], target, gamma=gamma, alpha=alpha,
                                   reduction=reduction)
    want = ref_softmax_focal(data["x"], target, gamma, alpha)
    want = {"none": want, "sum": want.sum(), "mean": want.mean()}[reduction]
    np.testing.assert_allclose(loss, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("gamma", [0.0, 0.7, 2.0])
def test_softmax_focal_gradient(data, kind, gamma):
    kw = dict(gamma=gamma, alpha=np.linspace(0.2, 1.0, 5))
    _, g = xent.softmax_focal_loss(data["x"], data[kind], return_grad=True, **kw)
    fd = finite_difference_grad(
        lambda z: float(xent.softmax_focal_loss(z, data[kind], **kw)), data["x"])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # in place over the logits
    x = data["x"].copy()
    loss, g2 = xent.softmax_focal_loss(x, data[kind], return_grad=True, grad_out=x, **kw)
    assert g2 is x
    np.testing.assert_array_equal(x, g)


def test_softmax_focal_gamma_zero_is_cross_entropy(data):
    for kind in ("labels", "probs"):
        np.testing.assert_allclose(
            xent.softmax_focal_loss(data["x"], data[kind], gamma=0),
            xent.softmax_cross_entropy(data["x"], data[kind]), rtol=1e-13)


def test_keras_categorical_focal_example():
    # keras.losses.categorical_focal_crossentropy (alpha=0.25, gamma=2) on
    # probabilities: [2.63401289e-04, 6.75912094e-01]; logits = log(p) give them
    p = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    per = xent.softmax_focal_loss(np.log(p), np.array([1, 2]), gamma=2, alpha=0.25,
                                  reduction="none")
    np.testing.assert_allclose(per, [2.63401289e-04, 6.75912094e-01], rtol=1e-6)


def test_softmax_focal_ignore_index_and_masks():
    x = np.array([[1.0, -inf, 0.5], [0.0, 2.0, 1.0], [3.0, 3.0, 3.0]])
    loss, grad = xent.softmax_focal_loss(x, np.array([0, -100, 2]), return_grad=True,
                                         reduction="none")
    assert loss[1] == 0 and not grad[1].any()
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert grad[0, 1] == 0  # a masked class gets exactly 0


def test_bit_identical_for_any_thread_count():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 40)).astype(np.float32)
    y = rng.integers(0, 40, 3000)
    t = rng.random(x.shape).astype(np.float32)
    a = [xent.softmax_focal_loss(x, y, return_grad=True, n_threads=n) for n in (1, 2)]
    b = [xent.binary_focal_loss_with_logits(x, t, return_grad=True, n_threads=n) for n in (1, 2)]
    for r in (a, b):
        assert r[0][0].tobytes() == r[1][0].tobytes() and r[0][1].tobytes() == r[1][1].tobytes()


def test_focal_bad_input():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="gamma: expected a finite number >= 0.0, got -1.0"):
        xent.binary_focal_loss_with_logits(x, x, gamma=-1)
    with pytest.raises(ValueError, match="gamma: expected a finite number >= 0.0"):
        xent.softmax_focal_loss(x, np.array([0, 1]), gamma=-0.5)
    with pytest.raises(ValueError, match=r"alpha: expected a finite number in \[0.0, 1.0\], got 2.0"):
        xent.binary_focal_loss_with_logits(x, x, alpha=2.0)
    with pytest.raises(ValueError, match=r"alpha: expected a scalar or shape \(3,\)"):
        xent.softmax_focal_loss(x, np.array([0, 1]), alpha=np.ones(2))
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\]"):
        xent.binary_focal_loss_with_logits(x, x + 2)
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\)"):
        xent.softmax_focal_loss(x, np.array([0, 5]))


def test_softmax_focal_infinite_logits_follow_the_softmax_limit():
    # regression: a +inf logit made the row NaN (inf - inf), and a -inf logit
    # with target mass made the gradient NaN (0 * -inf in the p log p term)
    for gamma in (0.0, 0.5, 2.0):
        kw = dict(gamma=gamma, reduction="none", return_grad=True)
        # the label is the only +inf: p = 1 there, nothing to lose
        loss, grad = xent.softmax_focal_loss(np.array([[inf, 0.0, 1.0]]), np.array([0]), **kw)
        assert loss[0] == 0 and not grad.any(), gamma
        # the label is not among the +inf: p = 0 at the label, the limit of -a + p a
        for x in ([[inf, 0.0, 1.0]], [[inf, 0.0, inf]], [[-inf, 0.0, 1.0]]):
            x = np.array(x)
            loss, grad = xent.softmax_focal_loss(x, np.array([1 if x[0, 0] == inf else 0]), **kw)
            ce_loss, ce_grad = xent.softmax_cross_entropy(x, np.array([1 if x[0, 0] == inf else 0]),
                                                          reduction="none", return_grad=True)
            assert loss[0] == inf and ce_loss[0] == inf
            np.testing.assert_allclose(grad, ce_grad, rtol=1e-15, err_msg=f"{x} {gamma}")
    # probability targets: finite where no mass sits on a -inf logit
    loss, grad = xent.softmax_focal_loss(np.array([[inf, inf, 0.0]]),
                                         np.array([[0.5, 0.5, 0.0]]), reduction="none",
                                         return_grad=True)
    np.testing.assert_allclose(loss, [0.25 * np.log(2)], rtol=1e-15)  # 2 * 0.5 * 0.5**2 * log 2
    assert np.isfinite(grad).all()
    # only a row of only -inf has no loss (NaN), as for softmax_cross_entropy
    loss = xent.softmax_focal_loss(np.array([[-inf, -inf], [0.0, 1.0]]), np.array([0, 1]),
                                   reduction="none")
    assert np.isnan(loss[0]) and np.isfinite(loss[1])


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_softmax_focal_loss_of_a_label_sharing_an_infinite_max(gamma, dtype):
    """(hypothesis) A row whose max is +inf at the label and elsewhere: its
    softmax is shared by the +inf entries, p = 1/2 here, and 1 - p comes from
    the other terms (they were the NaN exps exp(inf - inf) on the block path,
    so the loss was NaN); the same on the block and rows paths."""
    from xent import _dispatch

    x = np.array([[np.inf, np.inf], [np.inf, 1.0], [1.0, np.inf], [np.inf, np.nan]] * 5, dtype=dtype)
    y = np.array([1, 0, 0, 0] * 5)
    want = (0.5 ** gamma) * np.log(2.0)
    got = []
    for block in (64, 0):
        with _dispatch.use_block_classes(block):
            got.append(xent.softmax_focal_loss(x, y, gamma=gamma, reduction="none", return_grad=True))
    for loss, grad in got:
        assert loss[0] == pytest.approx(want, rel=2e-3 if dtype == np.float16 else 1e-6)
        assert loss[1] == 0 and loss[2] == np.inf and np.isnan(loss[3])
        assert np.isfinite(grad[0]).all() and grad[0, 0] == -grad[0, 1]
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_array_equal(got[0][1], got[1][1])
