"""Accuracy contract against a 50-digit mpmath oracle.

float64 results lie within 2e-15 * max(1, |exact|) of the exact value of the
function at the float64 input; float32 within 2e-6 * max(1, |exact|). Rows
have offsets up to +-1e300 (+-1e38 for float32) and spreads up to 1e4.
"""

import itertools

import mpmath
import numpy as np
import pytest

import xent

mpmath.mp.dps = 50

OFFSETS64 = [0.0, 1.0, -1.0, 30.0, -700.0, 1e3, -1e3, 1e10, -1e10, 1e100, -1e100, 1e300, -1e300]
OFFSETS32 = [0.0, 1.0, -1.0, 30.0, -100.0, 1e3, -1e3, 1e10, -1e10, 1e30, -1e30, 1e38, -1e38]
SPREADS = [1e-3, 1.0, 10.0, 100.0, 1e4]
WIDTHS = [1, 2, 7, 100, 1000]
TOL = {np.float64: 2e-15, np.float32: 2e-6}


def exact(row):
    """logsumexp, softmax and log_softmax of a finite row, to 50 digits."""
    # Shifted by the max so that 50 digits suffice at offsets of 1e300:
    # x - m is exact in mpmath, and so are the shifted forms below.
    xs = [mpmath.mpf(float(v)) for v in row]
    m = max(xs)
    total = mpmath.fsum(mpmath.exp(v - m) for v in xs)
    log_total = mpmath.log(total)
    lse = m + log_total
    return lse, [mpmath.exp(v - m) / total for v in xs], [(v - m) - log_total for v in xs]


def rows(dtype, seed):
    rng = np.random.default_rng(seed)
    offsets = OFFSETS64 if dtype == np.float64 else OFFSETS32
    for offset, spread, width in itertools.product(offsets, SPREADS, WIDTHS):
        row = (offset + spread * rng.standard_normal(width)).astype(dtype)
        if np.all(np.isfinite(row)):
            yield offset, spread, row


def err(got, want):
    """|got - want| / max(1, |want|), with want an mpf."""
    return float(abs(mpmath.mpf(float(got)) - want) / max(1, abs(want)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logsumexp_softmax_log_softmax_against_mpmath(dtype):
    tol = TOL[dtype]
    worst = {"logsumexp": 0.0, "softmax": 0.0, "log_softmax": 0.0}
    for offset, spread, row in rows(dtype, seed=7):
        lse_e, p_e, lp_e = exact(row)
        where = f"offset={offset:g} spread={spread:g} C={row.size}"
        e = err(xent.logsumexp(row), lse_e)
        worst["logsumexp"] = max(worst["logsumexp"], e)
        assert e <= tol, f"logsumexp {where}: {e:.3g}"
        p = xent.softmax(row)
        lp = xent.log_softmax(row)
        e_p = max(err(a, b) for a, b in zip(p, p_e))
        e_lp = max(err(a, b) for a, b in zip(lp, lp_e))
        worst["softmax"] = max(worst["softmax"], e_p)
        worst["log_softmax"] = max(worst["log_softmax"], e_lp)
        assert e_p <= tol, f"softmax {where}: {e_p:.3g}"
        assert e_lp <= tol, f"log_softmax {where}: {e_lp:.3g}"
    # the returned grad of logsumexp is the same softmax
    _, grad = xent.logsumexp(row, return_grad=True)
    np.testing.assert_array_equal(grad, xent.softmax(row))
    print(dtype.__name__, {k: f"{v:.2e}" for k, v in worst.items()})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vjps_against_mpmath(dtype):
    rng = np.random.default_rng(3)
    tol = TOL[dtype]
    for width in (2, 10, 500):
        x = (rng.standard_normal(width) * 5).astype(dtype)
        g = rng.standard_normal(width).astype(dtype)
        _, p_e, lp_e = exact(x)
        p = np.array([float(v) for v in p_e]).astype(dtype)
        lp = np.array([float(v) for v in lp_e]).astype(dtype)
        gm = [mpmath.mpf(float(v)) for v in g]
        pm = [mpmath.mpf(float(v)) for v in p]
        dot = mpmath.fsum(a * b for a, b in zip(pm, gm))
        want = [a * (b - dot) for a, b in zip(pm, gm)]
        got = xent.softmax_backward(p, g)
        assert max(err(a, b) for a, b in zip(got, want)) <= 2 * tol
        lpm = [mpmath.mpf(float(v)) for v in lp]
        total = mpmath.fsum(gm)
        want = [b - mpmath.exp(a) * total for a, b in zip(lpm, gm)]
        got = xent.log_softmax_backward(lp, g)
        assert max(err(a, b) for a, b in zip(got, want)) <= 2 * tol
