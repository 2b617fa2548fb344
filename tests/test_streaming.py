"""Outputs of at least XENT_STREAM_BYTES (32 MiB) are computed row by row in a
scratch row and written with non-temporal stores (no read of the output's
lines first). The values must be those of the plain path, which smaller
outputs take: checked here bit for bit against row slices small enough for it,
out of place and in place, on every instruction-set path."""

import numpy as np
import pytest

import xent
from xent import _dispatch

PATHS = _dispatch.supported_isas()
STREAM_BYTES = 32 * 2**20


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((1100, 8001)) * 3).astype(np.float32)  # 35.2 MB
    assert x.nbytes >= STREAM_BYTES
    x[7, :100] = -np.inf
    x[9, 3] = np.nan
    return x, rng.integers(0, x.shape[1], x.shape[0])


@pytest.mark.parametrize("isa", PATHS)
def test_cross_entropy_labels(logits, isa):
    x, y = logits
    with np.errstate(invalid="ignore"), _dispatch.use_isa(isa):
        loss, grad = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
        part = xent.softmax_cross_entropy(x[:50], y[:50], reduction="none", return_grad=True)
        inplace = x.copy()
        loss2, grad2 = xent.softmax_cross_entropy(inplace, y, reduction="none", return_grad=True,
                                                  grad_out=inplace)
    assert grad2 is inplace
    np.testing.assert_array_equal(loss[:50], part[0])
    np.testing.assert_array_equal(grad[:50], part[1])
    np.testing.assert_array_equal(loss2, loss)
    np.testing.assert_array_equal(grad2, grad)


def test_cross_entropy_probabilities(logits):
    x, _ = logits
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(x.shape[1]), size=x.shape[0]).astype(np.float32)
    with np.errstate(invalid="ignore"):
        loss, grad = xent.softmax_cross_entropy(x, p, reduction="none", return_grad=True,
                                                label_smoothing=0.1)
        part = xent.softmax_cross_entropy(x[:40], p[:40], reduction="none", return_grad=True,
                                          label_smoothing=0.1)
    np.testing.assert_array_equal(loss[:40], part[0])
    np.testing.assert_array_equal(grad[:40], part[1])


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family(logits, isa, fn):
    x, _ = logits
    f = getattr(xent, fn)
    with np.errstate(invalid="ignore"), _dispatch.use_isa(isa):
        out = f(x)
        part = f(x[:60])
        inplace = x.copy()
        same = f(inplace, out=inplace)
    assert same is inplace
    np.testing.assert_array_equal(out[:60], part)
    np.testing.assert_array_equal(same, out)


@pytest.mark.parametrize("isa", PATHS)
def test_binary_cross_entropy(isa):
    rng = np.random.default_rng(5)
    n = STREAM_BYTES // 4 + 12345  # not a whole number of chunks
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    t = (rng.random(n) > 0.5).astype(np.float32)
    k = 3 * 16384 + 100
    with _dispatch.use_isa(isa):
        loss, grad = xent.binary_cross_entropy_with_logits(x, t, reduction="none",
                                                           return_grad=True)
        part = xent.binary_cross_entropy_with_logits(x[:k], t[:k], reduction="none",
                                                     return_grad=True)
        tail = xent.binary_cross_entropy_with_logits(x[-k:], t[-k:], reduction="none",
                                                     return_grad=True)
    np.testing.assert_array_equal(loss[:k], part[0])
    np.testing.assert_array_equal(grad[:k], part[1])
    np.testing.assert_array_equal(grad[-k:], tail[1])
