"""Parity with torch.nn.functional.cross_entropy / nll_loss (loss and autograd
gradient). Runs when torch is importable, skips otherwise."""

import itertools

import numpy as np
import pytest

import xent

torch = pytest.importorskip("torch")
F = torch.nn.functional


CASES = list(itertools.product(
    ["labels", "probs"], [False, True], [0.0, 0.15], ["mean", "sum", "none"], [-1, 1]))


@pytest.mark.parametrize("kind,use_w,eps,reduction,axis", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_matches_torch(kind, use_w, eps, reduction, axis, dtype):
    rng = np.random.default_rng(17)
    shape = (6, 5, 4)  # axis=1 is PyTorch's (N, C, d) layout
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    c = x.shape[axis]
    batch = tuple(n for i, n in enumerate(shape) if i != axis % 3)
    if kind == "labels":
        target = rng.integers(0, c, size=batch)
        target.flat[::5] = -100
    else:
        target = np.moveaxis(rng.dirichlet(np.ones(c), size=batch), -1, axis).astype(dtype)
    w = (rng.random(c) + 0.5).astype(dtype) if use_w else None
    gl = rng.standard_normal(batch).astype(dtype) if reduction == "none" else None
    kw = dict(weight=w, label_smoothing=eps, reduction=reduction)
    loss, grad = xent.softmax_cross_entropy(x, target, axis=axis, return_grad=True,
                                            grad_loss=gl, **kw)
    # torch puts classes at dim 1; move ours there for the comparison
    xt = np.moveaxis(x, axis, 1)
    tt = target if kind == "labels" else np.moveaxis(target, axis, 1)
    t = torch.tensor(xt, requires_grad=True)
    tl = F.cross_entropy(t, torch.tensor(tt), weight=None if w is None else torch.tensor(w),
                         label_smoothing=eps, reduction=reduction)
    tl.backward(None if gl is None else torch.tensor(gl))
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, np.moveaxis(t.grad.numpy(), 1, axis), rtol=rtol, atol=rtol * 1e-2)

    # nll_loss on log-probabilities (torch's nll_loss: integer targets, no smoothing)
    if kind == "labels" and eps == 0:
        lp = xent.log_softmax(x, axis=axis)
        nl, ng = xent.nll_loss(lp, target, axis=axis, return_grad=True, grad_loss=gl,
                               weight=w, reduction=reduction)
        t = torch.tensor(np.moveaxis(lp, axis, 1), requires_grad=True)
        tl = F.nll_loss(t, torch.tensor(tt), weight=None if w is None else torch.tensor(w),
                        reduction=reduction)
        tl.backward(None if gl is None else torch.tensor(gl))
        np.testing.assert_allclose(nl, tl.detach().numpy(), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(ng, np.moveaxis(t.grad.numpy(), 1, axis), rtol=rtol, atol=rtol)


def test_masked_logits_match_torch():
    x = np.array([[0.5, -np.inf, 2.0, -np.inf], [1.0, 1.0, -np.inf, 0.0]])
    y = np.array([2, 3])
    loss, grad = xent.softmax_cross_entropy(x, y, return_grad=True)
    t = torch.tensor(x, requires_grad=True)
    tl = F.cross_entropy(t, torch.tensor(y))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-14)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-14, atol=1e-300)
