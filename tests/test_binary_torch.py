"""Parity with PyTorch's binary losses (loss and autograd gradient); runs when
torch is importable, skips otherwise."""

import itertools

import numpy as np
import pytest

import xent

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch(fn, x, t, reduction, grad_loss=None, **kw):
    xt = torch.tensor(x, requires_grad=True)
    kw = {k: torch.tensor(v) for k, v in kw.items() if v is not None}
    loss = fn(xt, torch.tensor(t), reduction=reduction, **kw)
    loss.backward(None if grad_loss is None else torch.tensor(grad_loss))
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction,use_pw,use_w", list(itertools.product(
    ["mean", "sum", "none"], [False, True], [False, True])))
def test_bce_with_logits_and_on_probabilities(dtype, reduction, use_pw, use_w):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 3, 6)) * 5).astype(dtype)
    t = rng.random(x.shape).astype(dtype)
    pw = (rng.random(6) + 0.5).astype(dtype) if use_pw else None
    w = (rng.random((3, 1)) + 0.5).astype(dtype) if use_w else None
    gl = rng.standard_normal(x.shape).astype(dtype) if reduction == "none" else None
    rtol = 1e-12 if dtype == np.float64 else 3e-5
    loss, grad = xent.binary_cross_entropy_with_logits(
        x, t, pos_weight=pw, weight=w, reduction=reduction, return_grad=True, grad_loss=gl)
    want = _torch(F.binary_cross_entropy_with_logits, x, t, reduction, gl, pos_weight=pw,
                  weight=w)
    np.testing.assert_allclose(loss, want[0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, want[1], rtol=rtol, atol=rtol * 1e-2)
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    p = np.clip(p, 1e-6, 1 - 1e-6).astype(dtype)
    loss, grad = xent.binary_cross_entropy(p, t, weight=w, reduction=reduction,
                                           return_grad=True, grad_loss=gl)
    want = _torch(F.binary_cross_entropy, p, t, reduction, gl, weight=w)
    np.testing.assert_allclose(loss, want[0], rtol=10 * rtol, atol=rtol)
    np.testing.assert_allclose(grad, want[1], rtol=10 * rtol, atol=rtol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_w", [False, True])
def test_multilabel_soft_margin_loss(reduction, use_w):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 5)) * 3
    t = (rng.random((8, 5)) > 0.4).astype(np.float64)
    w = rng.random(5) + 0.5 if use_w else None
    gl = rng.standard_normal(8) if reduction == "none" else None
    loss, grad = xent.multilabel_cross_entropy(x, t, class_reduction="mean", weight=w,
                                               reduction=reduction, return_grad=True,
                                               grad_loss=gl)
    want = _torch(F.multilabel_soft_margin_loss, x, t, reduction, gl, weight=w)
    np.testing.assert_allclose(loss, want[0], rtol=1e-13)
    np.testing.assert_allclose(grad, want[1], rtol=1e-12, atol=1e-16)
