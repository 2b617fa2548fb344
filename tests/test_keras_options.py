"""Keras' options of the cross-entropy on probabilities: ``renormalize``
(``categorical_crossentropy``/``sparse_categorical_crossentropy`` with
``from_logits=False`` divide ``y_pred`` by its row sum before clipping) and
``label_smoothing`` of probability targets; Keras' own test values, a
float64 NumPy reference, finite differences, Keras live when importable."""

import numpy as np
import pytest

import xent
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401

Y_TRUE = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
Y_PRED = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]])


def _keras_ref(p, q, eps=1e-7, smoothing=0.0, upper=1.0):
    """Keras' definition in float64 (its upper clip as a parameter)."""
    p = np.asarray(p, np.float64)
    c = p.shape[-1]
    p = p * (1 - smoothing) + smoothing / c
    q = np.asarray(q, np.float64)
    q = np.clip(q / q.sum(-1, keepdims=True), eps, upper)
    return -np.sum(p * np.log(q), axis=-1)


def test_keras_own_case():
    # (Keras' losses_test: 0.3239 for these rows; xent's docs used to map
    # it to cross_entropy(eps=1e-7), which gives 0.0946 without renormalising)
    got = xent.cross_entropy(Y_TRUE, Y_PRED, eps=1e-7, renormalize=True, reduction="mean")
    assert abs(float(got) - 0.3239) < 1e-4  # (Keras' test: to 3 decimals)
    np.testing.assert_allclose(got, _keras_ref(Y_TRUE, Y_PRED).mean(), rtol=1e-15)
    sparse = xent.cross_entropy(np.array([0, 1, 2]), Y_PRED, eps=1e-7, renormalize=True,
                                reduction="mean")
    np.testing.assert_allclose(sparse, got, rtol=1e-15)
    assert round(float(xent.cross_entropy(Y_TRUE, Y_PRED, eps=1e-7, reduction="mean")), 4) == 0.0946


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-14), (np.float32, 2e-6)])
@pytest.mark.parametrize("c", [3, 40, 700])
def test_against_the_reference(c, dtype, rtol):
    rng = np.random.default_rng(c)
    p = rng.random((30, c))
    p /= p.sum(-1, keepdims=True)
    q = rng.random((30, c)) * 3  # (not normalised)
    q[0, 0] = 0.0  # (clipped)
    for smoothing in (0.0, 0.1):
        got = xent.cross_entropy(p.astype(dtype), q.astype(dtype), eps=1e-7, renormalize=True,
                                 label_smoothing=smoothing)
        want = _keras_ref(p.astype(dtype), q.astype(dtype), smoothing=smoothing)
        np.testing.assert_allclose(got, want, rtol=rtol)
        # smoothing alone: the targets smoothed, q as it is
        got = xent.cross_entropy(p, q / q.sum(-1, keepdims=True), label_smoothing=smoothing)
        with np.errstate(divide="ignore"):  # (q[0, 0] == 0: +inf, in both)
            want = -np.sum((p * (1 - smoothing) + smoothing / c) * np.log(q / q.sum(-1, keepdims=True)),
                           -1)
        np.testing.assert_allclose(got, want, rtol=1e-14)
    labels = rng.integers(0, c, 30)
    got = xent.cross_entropy(labels, q.astype(dtype), eps=1e-7, renormalize=True)
    want = _keras_ref(np.eye(c)[labels], q.astype(dtype))
    np.testing.assert_allclose(got, want, rtol=rtol)


@pytest.mark.parametrize("kind", ["probs", "labels"])
@pytest.mark.parametrize("c", [4, 60])
def test_gradient_by_finite_differences(kind, c):
    rng = np.random.default_rng(7)
    q = rng.random((3, c)) + 0.05
    q[1, 0] = 1e-9  # (clipped: no gradient through its own log)
    where = rng.random((3, c)) > 0.2
    where[:, 0] = True
    if kind == "labels":
        p = rng.integers(0, c, 3)
        kw = {}
    else:
        p = rng.random((3, c))
        p /= p.sum(-1, keepdims=True)
        kw = {"label_smoothing": 0.2}
    for w in (None, where):
        _, g = xent.cross_entropy(p, q, eps=1e-7, renormalize=True, where=w, reduction="sum",
                                  return_grad=True, **kw)
        h = 1e-8
        for i in range(3):
            for j in range(c):
                up, down = q.copy(), q.copy()
                up[i, j] += h
                down[i, j] -= h
                fd = (xent.cross_entropy(p, up, eps=1e-7, renormalize=True, where=w, reduction="sum", **kw)
                      - xent.cross_entropy(p, down, eps=1e-7, renormalize=True, where=w,
                                           reduction="sum", **kw)) / (2 * h)
                assert abs(fd - g[i, j]) <= 2e-5 * max(1.0, abs(fd)), (w is None, i, j, fd, g[i, j])


def test_bad_input():
    q = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="label_smoothing: not with class labels"):
        xent.cross_entropy(np.array([0, 1]), q, label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        xent.cross_entropy(q, q, label_smoothing=1.5)
    with pytest.raises(TypeError, match="renormalize: expected a bool"):
        xent.cross_entropy(q, q, renormalize=1)


def test_keras_live_if_importable():
    keras = pytest.importorskip("keras")
    got = xent.cross_entropy(Y_TRUE, Y_PRED, eps=1e-7, renormalize=True, label_smoothing=0.1,
                             reduction="none")
    want = keras.losses.categorical_crossentropy(Y_TRUE, Y_PRED, label_smoothing=0.1)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6)
