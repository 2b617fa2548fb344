"""Parity with SciPy and PyTorch when they are importable (skipped otherwise)."""

import numpy as np
import pytest

import xent


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((4, 5, 6)) * 4
    a[0, 0, :] = -np.inf
    a[1, 1, 2] = -np.inf
    return a


@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2), None])
def test_scipy_special(x, axis):
    special = pytest.importorskip("scipy.special")
    finite = np.where(np.isfinite(x), x, -50.0)
    np.testing.assert_allclose(xent.logsumexp(finite, axis=axis),
                               special.logsumexp(finite, axis=axis), rtol=1e-14)
    np.testing.assert_allclose(xent.softmax(finite, axis=axis),
                               special.softmax(finite, axis=axis), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(xent.log_softmax(finite, axis=axis),
                               special.log_softmax(finite, axis=axis), rtol=1e-13, atol=1e-15)
    # masked (-inf) entries, and scipy's -inf for an all -inf row
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(xent.logsumexp(x, axis=-1)[0, 0], -np.inf)
        np.testing.assert_allclose(xent.logsumexp(x, axis=-1),
                                   special.logsumexp(x, axis=-1), rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_torch_values_and_autograd(x, dtype, dim):
    torch = pytest.importorskip("torch")
    a = np.where(np.isfinite(x), x, -30.0).astype(dtype)
    t = torch.tensor(a, requires_grad=True)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(xent.logsumexp(a, axis=dim),
                               torch.logsumexp(t, dim).detach().numpy(), rtol=rtol)
    g = np.random.default_rng(0).standard_normal(a.shape).astype(dtype)
    for ours, back, theirs in (
        (xent.softmax, xent.softmax_backward, torch.softmax),
        (xent.log_softmax, xent.log_softmax_backward, torch.log_softmax),
    ):
        t.grad = None
        y = theirs(t, dim)
        y.backward(torch.tensor(g))
        out = ours(a, axis=dim)
        # torch rounds x - lse in the input precision: an absolute error of
        # about one ulp of the row's magnitude
        np.testing.assert_allclose(out, y.detach().numpy(), rtol=rtol,
                                   atol=rtol * np.abs(a).max())
        np.testing.assert_allclose(back(out, g, axis=dim), t.grad.numpy(),
                                   rtol=10 * rtol, atol=10 * rtol)
