"""Instruction-set paths: each supported path is tested, and they agree; the
vectorised exp is within 4 ulp of mpmath and handles inf, NaN and underflow."""

import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import xent
from xent import _dispatch
from xent import _kernels as kernels

PATHS = _dispatch.supported_isas()


def test_best_supported_path_is_active_by_default():
    if os.environ.get("XENT_ISA"):
        assert _dispatch.active_isa() == os.environ["XENT_ISA"]
    else:
        assert _dispatch.active_isa() == PATHS[0]
    assert "baseline" in PATHS
    assert xent.show_config("dicts")["isa"] == _dispatch.active_isa()


def test_unknown_or_unsupported_paths_are_refused():
    with pytest.raises(ValueError, match="XENT_ISA: expected one of"):
        _dispatch.set_isa("sse9")
    for name in set(_dispatch.isa_paths()) - set(PATHS):
        with pytest.raises(ValueError, match="cannot run"):
            _dispatch.set_isa(name)


@pytest.mark.parametrize("value,ok", [("baseline", True), ("nonsense", False)])
def test_xent_isa_environment_variable(value, ok):
    env = dict(os.environ, XENT_ISA=value)
    proc = subprocess.run([sys.executable, "-c", "import xent; print(xent.show_config('dicts')['isa'])"],
                          env=env, capture_output=True, text=True)
    if ok:
        assert proc.returncode == 0 and proc.stdout.strip() == value
    else:
        assert proc.returncode != 0 and "XENT_ISA: expected one of" in proc.stderr


def _ulp_error(got, exact, dtype):
    """|got - exact| in units of the spacing of dtype at exact (subnormal spacing below)."""
    info = np.finfo(dtype)
    exact = np.asarray(exact, dtype=np.float64)
    spacing = np.maximum(np.spacing(np.abs(exact).astype(dtype)).astype(np.float64),
                         float(info.smallest_subnormal))
    return np.abs(got.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize("isa", PATHS)
def test_exp_float32_within_4_ulp(isa):
    x = np.concatenate([np.linspace(-104, 89, 400_001), np.linspace(-1, 1, 100_001)]).astype(np.float32)
    out = np.empty_like(x)
    with _dispatch.use_isa(isa):
        kernels.exp_rows(x[None], out[None])
    exact = np.exp(x.astype(np.float64))  # float64 is exact enough for float32 ulps
    finite = exact <= np.finfo(np.float32).max
    assert _ulp_error(out[finite], exact[finite], np.float32).max() <= 4
    assert np.isposinf(out[~finite]).all()


@pytest.mark.parametrize("isa", PATHS)
def test_exp_float64_within_4_ulp_of_mpmath(isa):
    mpmath.mp.dps = 40
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-745, 709, 3000), rng.uniform(-1, 1, 1000),
                        rng.uniform(-40, 0, 1000), [0.0, -1e-300, 1e-300, -708.5, -740.0]])
    out = np.empty_like(x)
    with _dispatch.use_isa(isa):
        kernels.exp_rows(x[None], out[None])
    worst = 0.0
    for xi, yi in zip(x, out):
        exact = mpmath.exp(mpmath.mpf(float(xi)))
        spacing = max(float(np.spacing(float(exact))), 5e-324)
        worst = max(worst, float(abs(mpmath.mpf(float(yi)) - exact)) / spacing)
    assert worst <= 4, worst


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_values(isa, dtype):
    x = np.array([[-np.inf, np.inf, np.nan, 0.0, -0.0, -1e5, 1e5, -200.0, -800.0]], dtype=dtype)
    out = np.empty_like(x)
    with _dispatch.use_isa(isa):
        kernels.exp_rows(x, out)
    r = out[0]
    assert r[0] == 0 and r[1] == np.inf and np.isnan(r[2]) and r[3] == 1 and r[4] == 1
    assert r[5] == 0 and r[6] == np.inf
    np.testing.assert_array_equal(r[7:], np.exp(x[0, 7:].astype(np.float64)).astype(dtype))


def _all_results(x, g, labels):
    lse, p = xent.logsumexp(x, return_grad=True)
    ce = xent.softmax_cross_entropy(x, labels, label_smoothing=0.1, reduction="none",
                                    return_grad=True)
    return [lse, p, xent.log_softmax(x), xent.softmax_backward(p, g),
            xent.log_softmax_backward(xent.log_softmax(x), g), ce[0], ce[1]]


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float64, 4e-15)])
@pytest.mark.parametrize("n_classes", [301, 12])
def test_every_path_agrees_with_baseline(dtype, tol, n_classes):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((67, n_classes)) * 10).astype(dtype)
    x[3, :7] = -np.inf
    x[5, :] = -np.inf
    x[6, 2] = np.inf
    x[7, 9] = np.nan
    g = rng.standard_normal(x.shape).astype(dtype)
    labels = rng.integers(0, n_classes, 67)
    with np.errstate(all="ignore"), _dispatch.use_isa("baseline"):
        base = _all_results(x, g, labels)
    for isa in PATHS:
        with np.errstate(all="ignore"), _dispatch.use_isa(isa):
            res = _all_results(x, g, labels)
        for k, (a, b) in enumerate(zip(res, base)):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            # the VJPs (3, 4) sum g over a row, in an order that depends on
            # the vector width: cancellation bounds their agreement by
            # eps * sum|g|, not eps * |result|
            scale = 30 * np.abs(g).sum(-1, keepdims=True) if k in (3, 4) else 1
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(a - b) <= tol * (np.abs(b) + scale)) & ~np.isnan(b) & (a != b)
            assert not bad.any(), (isa, k, a[bad][:5], b[bad][:5])


def _bce_exact_float64(x, t):
    """Loss and gradient of BCE from logits in float64 (exact enough for float32 ulps)."""
    x = x.astype(np.float64)
    t = t.astype(np.float64)
    loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    sig = np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))
    return loss, sig - t, np.maximum(sig, t)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("tv", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("uniform", [False, True], ids=["per-element-grad", "uniform"])
def test_bce_with_logits_float32_within_3_ulp(isa, tv, uniform):
    """Element losses within 3 ulp; gradients sigmoid(x) - t within 3 ulp of
    max(sigmoid(x), t) (the scale of the two terms), down to subnormals. An
    upstream gradient per element takes the general loop; none (one value for
    all) the uniform one (on AVX-512, its own kernel)."""
    x = np.concatenate([np.linspace(-120, 120, 200_001), np.linspace(-2, 2, 100_001),
                        -np.geomspace(1e-30, 100, 2000), np.geomspace(1e-30, 100, 2000)]).astype(np.float32)
    t = np.full_like(x, tv)
    loss_e, grad_e, scale = _bce_exact_float64(x, t)
    with _dispatch.use_isa(isa):
        loss, grad = xent.binary_cross_entropy_with_logits(
            x, t, reduction="none", return_grad=True,
            grad_loss=None if uniform else np.ones_like(x))
    assert _ulp_error(loss, loss_e, np.float32).max() <= 3
    spacing = np.maximum(np.spacing(scale.astype(np.float32)).astype(np.float64),
                         float(np.finfo(np.float32).smallest_subnormal))
    assert (np.abs(grad - grad_e) / spacing).max() <= 3


@pytest.mark.parametrize("isa", PATHS)
def test_bce_with_logits_float64_within_3_ulp_of_mpmath(isa):
    mpmath.mp.dps = 40
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-750, 750, 300), rng.uniform(-40, 40, 1500),
                        rng.uniform(-1, 1, 500), [0.0, 1e-300, -1e-300, 5e-324, 745.0, -745.0]])
    t = rng.choice([0.0, 1.0, 0.25], x.size)
    with _dispatch.use_isa(isa):
        loss, grad = xent.binary_cross_entropy_with_logits(
            x, t, reduction="none", return_grad=True, grad_loss=np.ones_like(x))
    loss_e, grad_e, scale = [], [], []
    for xv, tv in zip(x, t):
        X, T = mpmath.mpf(float(xv)), mpmath.mpf(float(tv))
        sig = 1 / (1 + mpmath.exp(-X))
        loss_e.append(float(max(X, 0) - X * T + mpmath.log1p(mpmath.exp(-abs(X)))))
        grad_e.append(float(sig - T))
        scale.append(float(max(sig, T)))
    assert _ulp_error(loss, np.array(loss_e), np.float64).max() <= 3
    spacing = np.maximum(np.spacing(np.array(scale)), 5e-324)
    assert (np.abs(grad - np.array(grad_e)) / spacing).max() <= 3
