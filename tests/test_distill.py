"""Distillation from logits: kl_divergence_with_logits (forward and reverse)
and jensen_shannon_with_logits, against mpmath, a float64 NumPy reference,
finite differences and PyTorch's compositions; masks, special rows, options
and bad input. (The registry tests cover thread bit-identity, the other
instruction sets, out= buffers, bfloat16 and untouched inputs.)"""

import mpmath
import numpy as np
import pytest

import xent
from xent import _kernels  # noqa: F401  (a missing compiled extension fails here)
from xent._registry import ref_jensen_shannon_with_logits, ref_kl_divergence_with_logits

KL = xent.kl_divergence_with_logits
JS = xent.jensen_shannon_with_logits


def _mp_row(s, t, temperature, kind, beta=0.5):
    """One row's divergence at 60 digits."""
    with mpmath.workdps(60):
        s = [mpmath.mpf(float(v)) / temperature for v in s]
        t = [mpmath.mpf(float(v)) / temperature for v in t]
        zs = mpmath.fsum(mpmath.exp(v) for v in s)
        zt = mpmath.fsum(mpmath.exp(v) for v in t)
        q = [mpmath.exp(v) / zs for v in s]
        p = [mpmath.exp(v) / zt for v in t]
        if kind == "forward":
            return mpmath.fsum(pi * mpmath.log(pi / qi) for pi, qi in zip(p, q))
        if kind == "reverse":
            return mpmath.fsum(qi * mpmath.log(qi / pi) for pi, qi in zip(p, q))
        m = [beta * pi + (1 - beta) * qi for pi, qi in zip(p, q)]
        return (beta * mpmath.fsum(pi * mpmath.log(pi / mi) for pi, mi in zip(p, m))
                + (1 - beta) * mpmath.fsum(qi * mpmath.log(qi / mi) for qi, mi in zip(q, m)))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.3])
@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd", "jsd0.2"])
def test_against_mpmath(kind, temperature):
    rng = np.random.default_rng(1)
    s = rng.standard_normal((6, 13)) * 3
    t = s + rng.standard_normal((6, 13)) * np.array([[0.01], [0.1], [1], [3], [0.5], [2]])
    if kind.startswith("jsd"):
        beta = float(kind[3:] or 0.5)
        got = JS(s, t, beta=beta, temperature=temperature, reduction="none")
    else:
        beta = 0.5
        got = KL(s, t, temperature=temperature, reverse=kind == "reverse", reduction="none")
    for i in range(len(s)):
        want = float(_mp_row(s[i], t[i], temperature, kind[:3] if kind.startswith("jsd") else kind,
                             beta))
        # float64: a few ulps of the row's terms (the divergence is a sum of
        # terms of the size of the log-probabilities, which cancel)
        assert abs(got[i] - want) <= 1e-14 * (1 + abs(want)) + 1e-15, (i, got[i], want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5), (40, 1000), (2, 70000), (7,), (2, 3, 11)])
def test_against_numpy_reference_every_mode(shape, dtype):
    rng = np.random.default_rng(2)
    s = (rng.standard_normal(shape) * 2).astype(dtype)
    t = (rng.standard_normal(shape) * 2).astype(dtype)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    for kw in [{}, {"reverse": True}, {"temperature": 3.0, "scale_by_temperature_squared": True}]:
        for red in ["none", "batchmean", "mean", "sum"]:
            got = KL(s, t, reduction=red, **kw)
            want = ref_kl_divergence_with_logits(s, t, reduction=red, **kw)
            np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)
            assert np.asarray(got).dtype == dtype
    for beta in [0.0, 0.25, 0.5, 1.0]:
        got = JS(s, t, beta=beta, reduction="none", temperature=0.8)
        want = ref_jensen_shannon_with_logits(s, t, beta=beta, reduction="none", temperature=0.8)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)


def _fd_grad(fn, s, t, h=1e-6, **kw):
    g = np.zeros_like(s)
    for idx in np.ndindex(s.shape):
        up, down = s.copy(), s.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (float(np.sum(fn(up, t, **kw))) - float(np.sum(fn(down, t, **kw)))) / (2 * h)
    return g


@pytest.mark.parametrize("kw", [
    {}, {"reverse": True}, {"temperature": 2.0, "scale_by_temperature_squared": True},
    {"reverse": True, "temperature": 0.5, "reduction": "sum"},
    {"sample_weight": "sw", "reduction": "mean"}, {"sample_weight": "sw", "reduction": "none"},
    {"axis": 0}, {"grad_loss": "gl", "reduction": "none"},
], ids=str)
@pytest.mark.parametrize("c", [6, 40], ids=["short rows", "long rows"])
@pytest.mark.parametrize("fn", [KL, JS], ids=["kl", "jsd"])
def test_gradient_by_finite_differences(fn, kw, c):
    rng = np.random.default_rng(3)
    s, t = rng.standard_normal((4, c)) * 2, rng.standard_normal((4, c)) * 2
    kw = dict(kw)
    if fn is JS:
        if "reverse" in kw:
            kw["beta"] = 0.3 if kw.pop("reverse") else 0.5
    if kw.get("sample_weight") == "sw":
        kw["sample_weight"] = rng.random(4) + 0.2
        kw["sample_weight"][2] = 0.0
    gl = None
    if kw.get("grad_loss") == "gl":
        gl = kw.pop("grad_loss")
        gl = rng.standard_normal(4)
    value, grad = fn(s, t, return_grad=True, grad_loss=gl, **kw)
    if gl is not None:
        fd = _fd_grad(lambda a, b, **k: np.asarray(fn(a, b, **k)) * gl, s, t, **kw)
    else:
        fd = _fd_grad(fn, s, t, **kw)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_equal_logits_give_zero_and_a_zero_gradient():
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        s = (rng.standard_normal((5, 300)) * 4).astype(dtype)
        for reverse in (False, True):
            v, g = KL(s, s.copy(), reverse=reverse, temperature=1.7, return_grad=True)
            assert v == 0 and not np.any(g)
        v, g = JS(s, s.copy(), return_grad=True)
        assert abs(float(v)) < 1e-14 and np.max(np.abs(g)) < 1e-14


@pytest.mark.parametrize("pad", [0, 60], ids=["short rows", "long rows"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_classes_and_special_rows(dtype, pad):
    s = np.array([[1.0, 2.0, -np.inf, 0.5],     # the student masks a class the teacher masks too
                  [1.0, 2.0, -np.inf, 0.5],     # the student masks a class the teacher does not
                  [-np.inf] * 4,                # no distribution: NaN
                  [1.0, np.nan, 0.0, 0.0],      # NaN: NaN
                  [1.0, 2.0, 3.0, 4.0]], dtype)
    t = np.array([[0.0, 1.0, -np.inf, 2.0],
                  [0.0, 1.0, 0.0, 2.0],
                  [0.0, 1.0, 0.0, 2.0],
                  [0.0, 1.0, 0.0, 2.0],
                  [0.0, -np.inf, 0.0, np.inf]], dtype)
    if pad:  # the same rows with classes both mask (their terms are 0)
        s = np.concatenate([s, np.full((5, pad), -np.inf, dtype)], axis=1)
        t = np.concatenate([t, np.full((5, pad), -np.inf, dtype)], axis=1)
    v, g = KL(s, t, reduction="none", return_grad=True)
    want0 = ref_kl_divergence_with_logits(s[:1], t[:1], reduction="none")[0]
    assert np.isclose(v[0], want0, rtol=1e-6) and np.all(np.isfinite(g[0]))
    assert g[0, 2] == 0 and not np.any(g[:2, 4:])
    assert v[1] == np.inf
    assert np.isnan(v[2]) and np.all(np.isnan(g[2]))
    assert np.isnan(v[3]) and np.all(np.isnan(g[3]))
    assert np.isnan(v[4]) and np.all(np.isnan(g[4]))  # (+inf in the teacher)
    # a zero sample weight: 0 and a zero gradient, even for the NaN rows
    sw = np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    v, g = KL(s, t, reduction="sum", sample_weight=sw, return_grad=True)
    assert np.isclose(v, want0, rtol=1e-6) and not np.any(g[1:])
    v, g = JS(s, t, reduction="sum", sample_weight=sw, return_grad=True)
    assert np.isfinite(v) and np.all(np.isfinite(g)) and not np.any(g[1:])
    # the JSD is finite where one side masks a class (the mixture does not)
    v = JS(s[:2], t[:2], reduction="none")
    assert np.all(np.isfinite(v)) and np.all(v <= np.log(2) + 1e-6)


def test_reductions_weights_and_grad_loss():
    rng = np.random.default_rng(5)
    s, t = rng.standard_normal((3, 4, 9)), rng.standard_normal((3, 4, 9))
    per = KL(s, t, reduction="none")
    assert per.shape == (3, 4)
    assert np.isclose(KL(s, t), per.sum() / 3)                 # batchmean: the first axis
    assert np.isclose(KL(s, t, reduction="mean"), per.mean())
    assert np.isclose(KL(s, t, reduction="sum"), per.sum())
    sw = rng.random((3, 4))
    assert np.isclose(KL(s, t, reduction="mean", sample_weight=sw), (per * sw).sum() / sw.sum())
    assert KL(s, t, reduction="mean", sample_weight=np.zeros((3, 4))) == 0
    _, g0 = KL(s, t, reduction="mean", sample_weight=np.zeros((3, 4)), return_grad=True)
    assert not np.any(g0)
    # T^2 scaling multiplies the value and the gradient
    v1, g1 = KL(s, t, temperature=3.0, return_grad=True)
    v2, g2 = KL(s, t, temperature=3.0, return_grad=True, scale_by_temperature_squared=True)
    assert np.isclose(v2, 9 * v1) and np.allclose(g2, 9 * g1)
    # grad_loss scales the gradient
    _, g3 = KL(s, t, temperature=3.0, return_grad=True, grad_loss=-2.0)
    assert np.allclose(g3, -2 * g1)
    # the class axis anywhere
    a = KL(np.moveaxis(s, -1, 0), np.moveaxis(t, -1, 0), axis=0, reduction="none")
    np.testing.assert_allclose(a, per, rtol=1e-13)
    # a 1-D input is one row
    assert np.isclose(KL(s[0, 0], t[0, 0]), per[0, 0])
    assert np.isclose(JS(s[0, 0], t[0, 0]), JS(s, t, reduction="none")[0, 0])


def test_review_cases():
    s = np.array([[2.0, 1.0, 0.1], [0.5, 0.5, 3.0]])
    t = np.array([[3.0, 0.5, 0.0], [0.2, 1.0, 2.5]])
    # no classes: ValueError (it divided by zero in the kernel: SIGFPE)
    for shape in [(3, 0), (0,), (2, 3, 0)]:
        for fn in (KL, JS):
            with pytest.raises(ValueError, match="student_logits.*at least one class"):
                fn(np.zeros(shape), np.zeros(shape), return_grad=True)
    # subnormal sample weights in a mean: exact (scaled), no NaN gradient
    v, g = KL(s, t, reduction="mean", sample_weight=np.array([1e-320, 0.0]), return_grad=True)
    v1, g1 = KL(s[:1], t[:1], reduction="mean", return_grad=True)
    assert np.isclose(v, v1, rtol=1e-12) and np.allclose(g[0], g1[0], rtol=1e-12)
    assert not np.any(g[1])
    # float32 with 1 / T beyond float32's range: the one-hot limit, not NaN
    z = np.array([[0.0, 1.0], [3.0, 1.0]], np.float32)
    assert KL(z, z, temperature=1e-39) == 0
    assert KL(z[:1], z[1:], temperature=1e-39, reduction="sum") > 1e38
    # batchmean divides by the first batch axis, wherever the class axis is
    a, b = np.random.default_rng(0).standard_normal((2, 5, 4))
    assert np.isclose(KL(a.T, b.T, axis=0), KL(a, b))
    assert np.isclose(KL(a, b), KL(a, b, reduction="sum") / 5)


def test_grad_out_in_place_and_inputs_untouched():
    rng = np.random.default_rng(6)
    s, t = rng.standard_normal((8, 33)).astype(np.float32), rng.standard_normal((8, 33)).astype(np.float32)
    s0, t0 = s.copy(), t.copy()
    for fn in (KL, JS):
        v, g = fn(s, t, return_grad=True)
        assert np.array_equal(s, s0) and np.array_equal(t, t0)
        buf = np.empty_like(s)
        v2, g2 = fn(s, t, return_grad=True, grad_out=buf)
        assert g2 is buf and np.array_equal(g2, g) and v2 == v
        x = s.copy()
        v3, g3 = fn(x, t, return_grad=True, grad_out=x)
        assert g3 is x and np.array_equal(g3, g) and v3 == v


def test_bad_input():
    s, t = np.zeros((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match="teacher_logits.*shape"):
        KL(s, np.ones((2, 4)))
    with pytest.raises(TypeError, match="teacher_logits.*dtype"):
        KL(s, t.astype(np.float32))
    for bad in (0.0, -1.0, np.nan, np.inf, 1e-320):
        with pytest.raises(ValueError, match="temperature"):
            KL(s, t, temperature=bad)
    with pytest.raises(TypeError, match="temperature"):
        KL(s, t, temperature="2")
    for bad in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="beta"):
            JS(s, t, beta=bad)
    with pytest.raises(ValueError, match="reduction"):
        KL(s, t, reduction="elementwise")
    with pytest.raises(ValueError, match="sample_weight"):
        KL(s, t, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="reverse"):
        KL(s, t, reverse=1)
    with pytest.raises(ValueError, match="grad_out.*teacher_logits"):
        KL(s, t, return_grad=True, grad_out=t)
    with pytest.raises(ValueError, match="grad_loss"):
        KL(s, t, return_grad=True, grad_loss=np.ones(2))
    with pytest.raises(TypeError, match="student_logits"):
        KL(np.zeros((2, 3), complex), t)
    # nothing written before the error
    g = np.full((2, 3), 7.0)
    with pytest.raises(ValueError):
        KL(s, t, return_grad=True, grad_out=g, reduction="bad")
    assert np.all(g == 7.0)


torch = pytest.importorskip("torch")  # (the peer: CI installs it; the tests above run without)
F = torch.nn.functional


@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_pytorch_kl_div_composition(reverse, temperature):
    rng = np.random.default_rng(7)
    s, t = rng.standard_normal((16, 50)) * 3, rng.standard_normal((16, 50)) * 3
    S = torch.tensor(s, requires_grad=True)
    T = torch.tensor(t)
    ls, lt = F.log_softmax(S / temperature, -1), F.log_softmax(T / temperature, -1)
    if reverse:  # KL(student || teacher): the student's log-probabilities are the target
        loss = F.kl_div(lt, ls, reduction="batchmean", log_target=True)
    else:
        loss = F.kl_div(ls, lt, reduction="batchmean", log_target=True)
    loss.backward()
    v, g = KL(s, t, temperature=temperature, reverse=reverse, return_grad=True)
    assert abs(float(v) - loss.item()) <= 1e-13
    np.testing.assert_allclose(g, S.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_matches_a_liger_style_jsd_under_autograd():
    """Liger-Kernel's LigerJSD (log-probability inputs, beta) written with
    torch ops; its gradient through log_softmax of the student logits."""
    rng = np.random.default_rng(8)
    s, t = rng.standard_normal((16, 50)) * 3, rng.standard_normal((16, 50)) * 3
    for beta in (0.1, 0.5, 0.9):
        S = torch.tensor(s, requires_grad=True)
        lq, lp = F.log_softmax(S, -1), F.log_softmax(torch.tensor(t), -1)
        m = beta * lp.exp() + (1 - beta) * lq.exp()
        loss = (beta * (lp.exp() * (lp - m.log())).sum() + (1 - beta) * (lq.exp() * (lq - m.log())).sum()) / 16
        loss.backward()
        v, g = JS(s, t, beta=beta, return_grad=True)
        assert abs(float(v) - loss.item()) <= 1e-13
        np.testing.assert_allclose(g, S.grad.numpy(), rtol=1e-9, atol=1e-15)
