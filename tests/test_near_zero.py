"""Relative accuracy near zero (SciPy >= 1.15's contract for logsumexp).

A row with one dominant entry has a log-sum-exp just above its max:
m + log1p(t) with t the sum of the other exps. Computed as m + log(s) from
s = 1 + t, the digits of t below s's last bit are lost (logsumexp([0, -40])
would be 0 instead of 4.2483542552915889e-18). The same holds for the
cross-entropy of a confident correct prediction and for log_softmax at the
dominant entry, and for the softmax focal loss (labels or probabilities). Every path (small-class blocks, rows, streamed rows, long
rows by rows and by chunks), float32 and float64, each instruction set, is
checked here against mpmath, relative to the tiny exact value.
"""

import functools

import mpmath
import numpy as np
import pytest

import xent
from xent import _dispatch


# relative to the exact (tiny) value
RTOL = {np.float64: 4e-15, np.float32: 4e-7}
CLASSES = [2, 3, 10, 16, 17, 64, 65, 300, 65539]



def confident(n, c, dtype, seed, top=0.0):
    """n rows whose max (at a random place, sometimes at 0 or c - 1) is top
    and whose other entries lie 20 to 60 below it (float64: also 1 to 8
    below, where s is still under 2)."""
    rng = np.random.default_rng(seed)
    lo, hi = (20.0, 60.0) if dtype == np.float32 else (1.0, 60.0)
    x = np.empty((n, c), dtype=dtype)
    for i in range(n):
        gap = rng.uniform(lo, hi) if rng.random() < 0.5 or dtype == np.float32 else rng.uniform(1, 8)
        x[i] = top - gap - rng.uniform(0, 5, c)
        if c > 1000:  # long rows: further below, so that s stays near 1 (float32: t in
            x[i] -= 40.0 if dtype == np.float64 else 15.0  # normal range)
    y = rng.integers(0, c, n)
    y[: min(n, 2)] = [0, c - 1][: min(n, 2)]
    x[np.arange(n), y] = top
    return x, y


@functools.lru_cache(maxsize=None)
def exact_rows(n, c, dtype, seed):
    """(m, log1p(t)) of each row of confident(n, c, dtype, seed)."""
    return [exact_log1p(r) for r in confident(n, c, dtype, seed)[0]]


def exact_log1p(row):
    # 80 digits whatever other tests left mpmath.mp.dps at: t is 1e-30 or
    # less beside the max's 1, so 1 + t needs 50 digits and more
    with mpmath.workdps(80):
        xs = [mpmath.mpf(float(v)) for v in row]
        m = max(xs)
        t = mpmath.fsum(mpmath.exp(v - m) for v in xs) - 1
        return m, mpmath.log1p(t)


def check(got, want, dtype, what):
    got, want = float(got), float(want)
    assert want != 0
    assert abs(got - want) <= RTOL[dtype] * abs(want), (what, got, want)


def test_scipy_example():
    assert float(xent.logsumexp(np.array([0.0, -40.0]))) == 4.248354255291589e-18
    loss = xent.softmax_cross_entropy(np.array([[0.0, -40.0]]), np.array([0]))
    assert float(loss) == 4.248354255291589e-18
    assert xent.log_softmax(np.array([0.0, -40.0]))[0] == -4.248354255291589e-18


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c, stream", [(c, False) for c in CLASSES] +
                         [(c, True) for c in CLASSES if c > 64])  # (small-class rows never stream)
def test_confident_rows(isa, dtype, c, stream):
    n = 3 if c > 1000 else 37  # long rows by chunks (few rows) / a partial block of 16
    x, y = confident(n, c, dtype, seed=c)
    want = exact_rows(n, c, dtype, c)
    lim = _dispatch.use_stream_bytes(0) if stream else _dispatch.use_stream_bytes(1 << 62)
    with lim:
        lse = xent.logsumexp(x)
        lse_g, _ = xent.logsumexp(x, return_grad=True)
        ls = xent.log_softmax(x)
        ls_in = x.copy()
        xent.log_softmax(ls_in, out=ls_in)
        ce = xent.softmax_cross_entropy(x, y, reduction="none")
        ce_g, _ = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
        ce_w = xent.softmax_cross_entropy(x, y, reduction="none", weight=np.ones(c))
        onehot = np.zeros_like(x)
        onehot[np.arange(n), y] = 1
        ce_p = xent.softmax_cross_entropy(x, onehot, reduction="none")
        # (gamma = 0: the focal loss is the cross-entropy)
        fl = xent.softmax_focal_loss(x, y, gamma=0, reduction="none")
        fl_p, _ = xent.softmax_focal_loss(x, onehot, gamma=0, reduction="none", return_grad=True)
    for i in range(n):
        m, l1p = want[i]
        if dtype == np.float32 or m == 0:
            check(lse[i] - dtype(m), l1p, dtype, "logsumexp")
            check(lse_g[i] - dtype(m), l1p, dtype, "logsumexp(return_grad)")
        j = int(np.argmax(x[i]))
        for name, out in [("log_softmax", ls), ("log_softmax in place", ls_in)]:
            check(-out[i, j], l1p, dtype, name)
        for name, out in [("ce", ce), ("ce+grad", ce_g), ("ce weight", ce_w),
                          ("ce probs", ce_p), ("focal", fl), ("focal probs", fl_p)]:
            check(out[i], l1p, dtype, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_long_rows_by_rows(isa, dtype):
    """Enough long rows for a task per row (and their output streamed)."""
    c, n = 65539, 9
    x, y = confident(n, c, dtype, seed=5)
    with _dispatch.use_stream_bytes(0):
        lse = xent.logsumexp(x)
        ls = xent.log_softmax(x)
        ce_g, _ = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    want = exact_rows(n, c, dtype, 5)
    for i in range(n):
        _, l1p = want[i]
        j = int(np.argmax(x[i]))
        check(lse[i], l1p, dtype, "logsumexp")
        check(-ls[i, j], l1p, dtype, "log_softmax")
        check(ce_g[i], l1p, dtype, "ce+grad")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_offset_rows(dtype):
    """A large max: the log-sum-exp is m + log1p(t), rounded once."""
    top = 1e3 if dtype == np.float64 else 100.0
    x, y = confident(20, 10, dtype, seed=1, top=top)
    lse = xent.logsumexp(x)
    for i in range(len(x)):
        m, l1p = exact_log1p(x[i])
        with mpmath.workdps(80):
            assert lse[i] == dtype(float(m + l1p))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unchanged_away_from_one(dtype):
    """Ties at the max, +inf, -inf and NaN rows keep their contract."""
    x = np.array([[0.0, 0.0, -40.0], [np.inf, 0.0, 1.0], [-np.inf] * 3, [np.nan, 0.0, 1.0]],
                 dtype=dtype)
    lse = xent.logsumexp(x)
    with mpmath.workdps(50):
        assert lse[0] == dtype(float(mpmath.log(2 + mpmath.exp(-40))))
    assert lse[1] == np.inf and lse[2] == -np.inf and np.isnan(lse[3])
