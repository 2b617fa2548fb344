"""Keras live: its losses (on the PyTorch backend, float64 tensors, so that
Keras' own autodiff gives the gradients) against the xent calls the
coming-from page maps them to, values and gradients. Skips when Keras (or
PyTorch, its backend here) is not importable; .ci/run installs both."""

import os

import numpy as np
import pytest

import xent
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401

os.environ.setdefault("KERAS_BACKEND", "torch")  # (as conftest.py: before Keras is imported)
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # (a user's KERAS_BACKEND set otherwise)
    pytest.skip(f"Keras runs on {keras.backend.backend()!r}, these tests on 'torch'",
                allow_module_level=True)

RNG = np.random.default_rng(2026)
N, C = 12, 7
LABELS = RNG.integers(0, C, N)
ONE_HOT = np.eye(C)[LABELS]
SOFT = RNG.dirichlet(np.ones(C), N)
PROBS = RNG.random((N, C)) * 1.5 + 1e-3  # (rows not summing to 1: Keras divides)
PROBS[0, 0] = 0.0  # (clipped)
LOGITS = RNG.standard_normal((N, C)) * 3
BIN_T = (RNG.random((N, C)) > 0.5).astype(np.float64)
BIN_P = RNG.random((N, C))
BIN_P[0, :2] = [0.0, 1.0]


def _keras(fn, y_true, y_pred, **kw):
    """Keras' loss per sample and its gradient of the sum w.r.t. y_pred."""
    yp = torch.tensor(y_pred, dtype=torch.float64, requires_grad=True)
    loss = fn(torch.tensor(y_true, dtype=torch.float64), yp, **kw)
    loss.sum().backward()
    return loss.detach().numpy(), yp.grad.numpy()


def _check(got, want, rtol=1e-12, atol=1e-14):
    np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(got[1], want[1], rtol=rtol, atol=atol)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("target", ["one_hot", "soft"])
def test_categorical_crossentropy_on_probabilities(target, smoothing):
    y = ONE_HOT if target == "one_hot" else SOFT
    want = _keras(keras.losses.categorical_crossentropy, y, PROBS, label_smoothing=smoothing)
    got = xent.cross_entropy(y, PROBS, eps=1e-7, renormalize=True, label_smoothing=smoothing,
                             reduction="sum", return_grad=True)
    _check((xent.cross_entropy(y, PROBS, eps=1e-7, renormalize=True,
                               label_smoothing=smoothing), got[1]), want)


def test_sparse_categorical_crossentropy():
    want = _keras(keras.losses.sparse_categorical_crossentropy, LABELS, PROBS)
    got = xent.cross_entropy(LABELS, PROBS, eps=1e-7, renormalize=True, return_grad=True,
                             reduction="sum")[1]
    _check((xent.cross_entropy(LABELS, PROBS, eps=1e-7, renormalize=True), got), want)
    # from logits, (B, 1) labels as Keras takes them
    want = _keras(keras.losses.sparse_categorical_crossentropy, LABELS[:, None], LOGITS,
                  from_logits=True)
    got = xent.softmax_cross_entropy(LOGITS, LABELS[:, None], reduction="sum",
                                     return_grad=True)[1]
    _check((xent.softmax_cross_entropy(LOGITS, LABELS, reduction="none"), got), want)


@pytest.mark.parametrize("alpha,gamma,smoothing", [(0.25, 2.0, 0.0), (0.5, 0.5, 0.1),
                                                   (1.0, 3.0, 0.0)])
def test_categorical_focal_crossentropy(alpha, gamma, smoothing):
    kw = dict(alpha=alpha, gamma=gamma, label_smoothing=smoothing)
    # on probabilities: the focal terms of cross_entropy, Keras' renormalisation
    want = _keras(keras.losses.categorical_focal_crossentropy, ONE_HOT, PROBS, **kw)
    # (Keras' focal loss clips with its epsilon as a float32, its cross-entropy
    # as 1e-7: a difference where the clipped entry has target mass)
    opts = dict(gamma=gamma, alpha=alpha, eps=float(np.float32(1e-7)), renormalize=True,
                label_smoothing=smoothing)
    got = (xent.cross_entropy(ONE_HOT, PROBS, **opts),
           xent.cross_entropy(ONE_HOT, PROBS, reduction="sum", return_grad=True, **opts)[1])
    _check(got, want)
    # from logits, with one-hot targets and with the labels (Keras clips the
    # softmax to [1e-7, 1 - 1e-7], xent takes the exact log-softmax: logits
    # whose softmax stays inside)
    logits = LOGITS / 3
    want = _keras(keras.losses.categorical_focal_crossentropy, ONE_HOT, logits,
                  from_logits=True, **kw)
    for target in (ONE_HOT, LABELS):
        loss, grad = xent.softmax_focal_loss(logits, target, alpha=alpha, gamma=gamma,
                                             label_smoothing=smoothing, reduction="none",
                                             return_grad=True)
        _check((loss, grad), want)


@pytest.mark.parametrize("balance,alpha,gamma,smoothing", [
    (False, 0.25, 2.0, 0.0), (True, 0.25, 2.0, 0.0), (True, 0.7, 0.5, 0.1), (False, 0.25, 3.0, 0.2),
])
def test_binary_focal_crossentropy(balance, alpha, gamma, smoothing):
    kw = dict(apply_class_balancing=balance, alpha=alpha, gamma=gamma, label_smoothing=smoothing)
    xa = alpha if balance else None
    # Keras averages over the last axis: xent's element losses, their row means
    for from_logits, x, fn in ((False, BIN_P, xent.binary_focal_loss),
                               (True, LOGITS, xent.binary_focal_loss_with_logits)):
        want = _keras(keras.losses.binary_focal_crossentropy, BIN_T, x, from_logits=from_logits,
                      **kw)
        opts = dict(gamma=gamma, alpha=xa, label_smoothing=smoothing)
        if not from_logits:
            opts["eps"] = 1e-7
        loss, grad = fn(x, BIN_T, reduction="none", return_grad=True, **opts)
        # (the gradient of the sum of the row means: 1 / C each; Keras' binary
        # losses come back in float32)
        _check((loss.mean(-1), grad / C), want, rtol=4e-7, atol=1e-9)


def test_binary_crossentropy():
    for from_logits, x in ((False, BIN_P), (True, LOGITS)):
        want = _keras(keras.losses.binary_crossentropy, BIN_T, x, from_logits=from_logits,
                      label_smoothing=0.1)
        if from_logits:
            loss, grad = xent.binary_cross_entropy_with_logits(
                x, BIN_T, label_smoothing=0.1, reduction="none", return_grad=True)
        else:
            loss, grad = xent.binary_cross_entropy(x, BIN_T, eps=1e-7, label_smoothing=0.1,
                                                   reduction="none", return_grad=True)
        _check((loss.mean(-1), grad / C), want, rtol=4e-7, atol=1e-9)  # (float32)


def test_kl_divergence():
    q = PROBS / PROBS.sum(-1, keepdims=True)
    want = _keras(keras.losses.kl_divergence, SOFT, q)
    eps = float(np.float32(1e-7))  # (Keras' KL clips with its epsilon as a float32)
    got = xent.kl_divergence(np.clip(SOFT, eps, 1), q, eps=eps, reduction="sum",
                             return_grad=True)[1]
    _check((xent.kl_divergence(np.clip(SOFT, eps, 1), q, eps=eps), got), want)


def test_sample_weight():
    # Keras' loss objects with reduction="sum" (in float64): the sum of the weighted values
    w = RNG.random(N) + 0.25
    w[3] = 0.0
    q = PROBS / PROBS.sum(-1, keepdims=True)
    eps = float(np.float32(1e-7))
    cases = [
        (keras.losses.KLDivergence(reduction="sum", dtype="float64"), SOFT,
         lambda **kw: xent.kl_divergence(np.clip(SOFT, eps, 1), q, eps=eps, **kw)),
        (keras.losses.CategoricalCrossentropy(reduction="sum", dtype="float64"), SOFT,
         lambda **kw: xent.cross_entropy(SOFT, q, eps=1e-7, renormalize=True, **kw)),
        (keras.losses.SparseCategoricalCrossentropy(reduction="sum", dtype="float64"), LABELS,
         lambda **kw: xent.cross_entropy(LABELS, q, eps=1e-7, renormalize=True, **kw)),
        (keras.losses.CategoricalFocalCrossentropy(reduction="sum", dtype="float64"), ONE_HOT,
         lambda **kw: xent.cross_entropy(ONE_HOT, q, gamma=2.0, alpha=0.25, eps=eps,
                                         renormalize=True, **kw)),
    ]
    for loss, y, ours in cases:
        yp = torch.tensor(q, dtype=torch.float64, requires_grad=True)
        value = loss(torch.tensor(y, dtype=torch.float64), yp,
                     sample_weight=torch.tensor(w, dtype=torch.float64))
        value.backward()
        got, grad = ours(sample_weight=w, reduction="sum", return_grad=True)
        np.testing.assert_allclose(got, float(value.detach()), rtol=1e-12)
        np.testing.assert_allclose(grad, yp.grad.numpy(), rtol=1e-11, atol=1e-14)
