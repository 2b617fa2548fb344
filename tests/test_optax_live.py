"""optax live: its classification losses against the xent calls the
coming-from page maps them to (optax returns one loss per example:
``reduction="none"``), values and gradients (``jax.grad``), float32 (JAX's
default). Skips when optax is not importable; .ci/run installs it."""

import numpy as np
import pytest

import xent
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy

RNG = np.random.default_rng(7)
N, C = 16, 9
LOGITS = (RNG.standard_normal((N, C)) * 3).astype(np.float32)
LABELS = RNG.integers(0, C, N)
SOFT = RNG.dirichlet(np.ones(C), N).astype(np.float32)
BIN_T = (RNG.random((N, C)) > 0.5).astype(np.float32)
WHERE = RNG.random(N) > 0.3
RTOL, ATOL = 3e-6, 3e-7


def _optax(fn, x, *args, **kw):
    """optax's per-example losses and the gradient of their sum w.r.t. x."""
    loss = np.asarray(fn(jnp.asarray(x), *args, **kw))
    grad = np.asarray(jax.grad(lambda v: fn(v, *args, **kw).sum())(jnp.asarray(x)))
    return loss, grad


def _check(got, want):
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[1], want[1], rtol=RTOL, atol=ATOL)


def test_softmax_cross_entropy():
    want = _optax(optax.softmax_cross_entropy, LOGITS, jnp.asarray(SOFT))
    got = xent.softmax_cross_entropy(LOGITS, SOFT, reduction="none", return_grad=True)
    _check((got[0], xent.softmax_cross_entropy(LOGITS, SOFT, reduction="sum",
                                               return_grad=True)[1]), want)


def test_softmax_cross_entropy_with_integer_labels_and_where():
    want = _optax(optax.softmax_cross_entropy_with_integer_labels, LOGITS, jnp.asarray(LABELS))
    got = xent.softmax_cross_entropy(LOGITS, LABELS, reduction="none")
    grad = xent.softmax_cross_entropy(LOGITS, LABELS, reduction="sum", return_grad=True)[1]
    _check((got, grad), want)
    # optax's where= (a mask of examples): 0 loss and 0 gradient where False
    want = _optax(optax.softmax_cross_entropy_with_integer_labels, LOGITS, jnp.asarray(LABELS),
                  where=jnp.asarray(WHERE))
    got = xent.softmax_cross_entropy(LOGITS, LABELS, where=WHERE, reduction="none")
    grad = xent.softmax_cross_entropy(LOGITS, LABELS, where=WHERE, reduction="sum",
                                      return_grad=True)[1]
    _check((got, grad), want)


def test_sigmoid_losses():
    want = _optax(optax.sigmoid_binary_cross_entropy, LOGITS, jnp.asarray(BIN_T))
    got = xent.binary_cross_entropy_with_logits(LOGITS, BIN_T, reduction="none",
                                                return_grad=True)
    _check(got, want)
    for alpha, gamma in ((None, 2.0), (0.25, 2.0), (0.6, 0.5)):
        want = _optax(optax.sigmoid_focal_loss, LOGITS, jnp.asarray(BIN_T), alpha=alpha,
                      gamma=gamma)
        got = xent.binary_focal_loss_with_logits(LOGITS, BIN_T, alpha=alpha, gamma=gamma,
                                                 reduction="none", return_grad=True)
        _check(got, want)


def test_kl_divergence():
    # optax.kl_divergence(log_predictions, targets): KL(targets || predictions)
    log_q = np.asarray(jax.nn.log_softmax(jnp.asarray(LOGITS)))
    want = _optax(optax.kl_divergence, log_q, jnp.asarray(SOFT))
    got = xent.kl_divergence(SOFT, log_q, log_input=True, return_grad=True, reduction="sum")
    _check((xent.kl_divergence(SOFT, log_q, log_input=True), got[1]), want)


def test_logsumexp_where():
    # jax.nn.logsumexp's where=: an entry left out counts for nothing
    w = RNG.random((N, C)) > 0.4
    w[:, 0] = True
    want = np.asarray(jax.nn.logsumexp(jnp.asarray(LOGITS), axis=-1, where=jnp.asarray(w)))
    np.testing.assert_allclose(xent.logsumexp(LOGITS, where=w), want, rtol=RTOL, atol=ATOL)
