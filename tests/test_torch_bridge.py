"""xent.torch: the drop-ins against torch.nn.functional (values, autograd
gradients, errors), gradcheck, torch.compile with no graph break, patch(),
float16/bfloat16 tensors, the fallback route and memory."""

import itertools
import re
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the optional peer; xent itself must import
import xent.torch as xt  # noqa: E402  (a missing compiled extension fails here)

F = torch.nn.functional

torch.manual_seed(0)

#: xt's rule: eager calls on fewer elements go to PyTorch's own op
MIN_ELEMENTS = xt.MIN_ELEMENTS


@pytest.fixture(autouse=True)
def _every_call_through_xent(monkeypatch):
    """The tests' inputs are small, which xt hands to PyTorch's own op: here
    every call takes xent's route (test_small_inputs_go_to_pytorch checks the
    rule itself)."""
    monkeypatch.setattr(xt, "MIN_ELEMENTS", 0)


def test_small_inputs_go_to_pytorch(monkeypatch):
    monkeypatch.setattr(xt, "MIN_ELEMENTS", MIN_ELEMENTS)
    assert MIN_ELEMENTS > 640
    c = MIN_ELEMENTS // 64 + 1
    small = torch.randn(64, 10, requires_grad=True)
    big = torch.randn(64, c, requires_grad=True)
    y = torch.randint(0, 10, (64,))
    torch_node = type(F.cross_entropy(small, y).grad_fn)
    assert type(xt.cross_entropy(small, y).grad_fn) is torch_node
    assert type(xt.cross_entropy(small, y, reduction="sum").grad_fn) \
        is type(F.cross_entropy(small, y, reduction="sum").grad_fn)
    # xent's own options need xent's route whatever the size, as does a large input
    assert type(xt.cross_entropy(small, y, z_loss=1e-4).grad_fn) is not torch_node
    assert type(xt.cross_entropy(small, y, softcap=30.0).grad_fn) is not torch_node
    assert type(xt.cross_entropy(big, y).grad_fn) is not torch_node
    t = torch.rand(64, 10)
    assert type(xt.binary_cross_entropy_with_logits(small, t).grad_fn) \
        is type(F.binary_cross_entropy_with_logits(small, t).grad_fn)
    # PyTorch's values, options, errors and warnings exactly
    w = torch.rand(10) + 0.5
    for kw in ({}, dict(weight=w, ignore_index=3, label_smoothing=0.2, reduction="none"),
               dict(reduction="sum", weight=w), dict(size_average=False)):
        with warnings.catch_warnings(record=True) as caught_xt:
            warnings.simplefilter("always")
            got = xt.cross_entropy(small, y, **kw)
        with warnings.catch_warnings(record=True) as caught_torch:
            warnings.simplefilter("always")
            want = F.cross_entropy(small, y, **kw)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert [str(m.message) for m in caught_xt] == [str(m.message) for m in caught_torch]
    for bad in (dict(target=torch.full((64,), 10)), dict(reduction="avg")):
        args = dict(dict(target=y), **bad)
        with pytest.raises(Exception) as from_torch:
            F.cross_entropy(small, **args)
        with pytest.raises(type(from_torch.value), match=re.escape(str(from_torch.value)[:30])):
            xt.cross_entropy(small, **args)
    # the same values either way
    monkeypatch.setattr(xt, "MIN_ELEMENTS", 0)
    via_xent = xt.cross_entropy(small, y)
    torch.testing.assert_close(via_xent, F.cross_entropy(small, y))


def _both(fn_xent, fn_torch, x, *args, grad=None, **kw):
    """Loss and input gradient from xent's op and from PyTorch's."""
    out = []
    for fn in (fn_xent, fn_torch):
        xi = x.detach().clone().requires_grad_(True)
        loss = fn(xi, *args, **kw)
        loss.backward(grad)
        out.append((loss.detach(), xi.grad))
    return out


def _close(a, b, dtype):
    tol = {torch.float64: 1e-12, torch.float32: 2e-5, torch.float16: 2e-3,
           torch.bfloat16: 2e-2}[dtype]
    torch.testing.assert_close(a, b, rtol=tol, atol=tol, equal_nan=True)


def _upstream(loss):
    return torch.randn(loss.shape, dtype=loss.dtype) if loss.dim() else None


SHAPES = [(7,), (6, 5), (4, 5, 3), (3, 4, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind,use_w,eps,reduction", list(itertools.product(
    ["labels", "probs"], [False, True], [0.0, 0.2], ["mean", "sum", "none"])))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cross_entropy_matches_torch(shape, kind, use_w, eps, reduction, dtype):
    x = torch.randn(shape, dtype=dtype) * 3
    c = shape[1] if len(shape) > 1 else shape[0]
    batch = shape[:1] + shape[2:] if len(shape) > 1 else ()
    if kind == "labels":
        t = torch.randint(0, c, batch)
        if t.dim():
            t.view(-1)[::3] = -100
    else:
        t = torch.softmax(torch.randn(shape, dtype=dtype), 1 if len(shape) > 1 else 0)
    w = torch.rand(c, dtype=dtype) + 0.5 if use_w else None
    probe = F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=eps)
    g = _upstream(probe)
    (a, ga), (b, gb) = _both(xt.cross_entropy, F.cross_entropy, x, t, w, grad=g,
                             reduction=reduction, label_smoothing=eps)
    _close(a, b, dtype)
    _close(ga, gb, dtype)
    if kind == "labels" and eps == 0:
        lp = torch.log_softmax(x, 1 if len(shape) > 1 else 0)
        (a, ga), (b, gb) = _both(xt.nll_loss, F.nll_loss, lp, t, w, grad=g, reduction=reduction)
        _close(a, b, dtype)
        _close(ga, gb, dtype)


def test_cross_entropy_legacy_arguments_and_uint8_targets():
    x = torch.randn(5, 4, dtype=torch.float64)
    t = torch.tensor([0, 3, 1, 1, 2], dtype=torch.uint8)
    for kw in (dict(size_average=False), dict(reduce=False), dict(size_average=True)):
        _close(xt.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw), torch.float64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_z_loss_and_softcap(reduction):
    x = torch.randn(6, 9, 2, dtype=torch.float64) * 4
    t = torch.randint(0, 9, (6, 2))
    t[0, 0] = -100
    w = torch.rand(9, dtype=torch.float64) + 0.5
    z, cap = 1e-2, 5.0

    def reference(x, t, w, reduction):
        xc = cap * torch.tanh(x / cap)
        valid = t != -100
        per = F.cross_entropy(xc, t, w, reduction="none") + z * torch.logsumexp(xc, 1) ** 2 * valid
        if reduction == "none":
            return per
        if reduction == "sum":
            return per.sum()
        return per.sum() / w[t.clamp(min=0)][valid].sum()

    g = torch.randn(6, 2, dtype=torch.float64) if reduction == "none" else None
    (a, ga), (b, gb) = _both(lambda *a, **k: xt.cross_entropy(*a, z_loss=z, softcap=cap, **k),
                             reference, x, t, w, grad=g, reduction=reduction)
    _close(a, b, torch.float64)
    _close(ga, gb, torch.float64)
    # the same options on the fallback route (a target that needs a gradient
    # is not the kernels' case; here a probability target that requires grad)
    tp = torch.softmax(torch.randn(6, 9, 2, dtype=torch.float64), 1).requires_grad_(True)
    got = xt.cross_entropy(x, tp, z_loss=z, softcap=cap, reduction=reduction)
    xc = cap * torch.tanh(x / cap)
    want = F.cross_entropy(xc, tp, reduction="none") + z * torch.logsumexp(xc, 1) ** 2
    want = {"none": want, "sum": want.sum(), "mean": want.mean()}[reduction]
    _close(got, want, torch.float64)
    assert got.requires_grad


@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_mean_is_nan_as_in_torch(weighted):
    x = torch.randn(4, 3, dtype=torch.float64)
    if weighted:  # the samples that count all have class weight 0
        t, w = torch.tensor([1, 1, -100, 1]), torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    else:
        t, w = torch.full((4,), -100), None
    for fn_x, fn_t, inp in ((xt.cross_entropy, F.cross_entropy, x),
                            (xt.nll_loss, F.nll_loss, torch.log_softmax(x, 1))):
        (a, ga), (b, gb) = _both(fn_x, fn_t, inp, t, w)
        assert torch.isnan(a) and torch.isnan(b)
        torch.testing.assert_close(ga, gb, equal_nan=True)
    # the NumPy API keeps its own convention: 0
    import xent
    assert xent.softmax_cross_entropy(x.numpy(), t.numpy(), weight=None if w is None
                                      else w.numpy()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("wshape,pwshape", [(None, None), ((3, 1), None), (None, (6,)),
                                            ((6,), (1,)), ((4, 3, 6), (6,))])
def test_binary_losses_match_torch(dtype, reduction, wshape, pwshape):
    x = torch.randn(4, 3, 6, dtype=dtype) * 4
    t = torch.rand(4, 3, 6, dtype=dtype)
    w = None if wshape is None else torch.rand(wshape, dtype=dtype) + 0.5
    pw = None if pwshape is None else torch.rand(pwshape, dtype=dtype) + 0.5
    g = torch.randn(x.shape, dtype=dtype) if reduction == "none" else None
    (a, ga), (b, gb) = _both(xt.binary_cross_entropy_with_logits,
                             F.binary_cross_entropy_with_logits, x, t, w, reduction=reduction,
                             pos_weight=pw, grad=g)
    _close(a, b, dtype)
    _close(ga, gb, dtype)
    p = torch.sigmoid(x).clamp(1e-6, 1 - 1e-6)
    (a, ga), (b, gb) = _both(xt.binary_cross_entropy, F.binary_cross_entropy, p, t, w,
                             reduction=reduction, grad=g)
    _close(a, b, dtype)
    torch.testing.assert_close(ga, gb, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,wshape", [((8, 5), None), ((8, 5), (5,)), ((5,), None),
                                          ((8, 5), (8, 5))])
def test_multilabel_soft_margin_loss_matches_torch(reduction, shape, wshape):
    x = torch.randn(shape, dtype=torch.float64) * 3
    t = (torch.rand(shape) > 0.4).double()
    w = None if wshape is None else torch.rand(wshape, dtype=torch.float64) + 0.5
    probe = F.multilabel_soft_margin_loss(x, t, w, reduction=reduction)
    (a, ga), (b, gb) = _both(xt.multilabel_soft_margin_loss, F.multilabel_soft_margin_loss, x,
                             t, w, reduction=reduction, grad=_upstream(probe))
    _close(a, b, torch.float64)
    _close(ga, gb, torch.float64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5), (5,)])
def test_kl_div_matches_torch(reduction, log_target, shape):
    x = torch.log_softmax(torch.randn(shape, dtype=torch.float64), -1)
    p = torch.softmax(torch.randn(shape, dtype=torch.float64) * 2, -1)
    if not log_target:  # zero-probability terms contribute 0 (with log_target, a
        p.view(-1)[::4] = 0.0  # -inf target gives PyTorch NaN, xent 0: documented)
    t = torch.log(p) if log_target else p
    g = torch.randn(shape, dtype=torch.float64) if reduction == "none" else None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (a, ga), (b, gb) = _both(xt.kl_div, F.kl_div, x, t, reduction=reduction,
                                 log_target=log_target, grad=g)
    _close(a, b, torch.float64)
    _close(ga, gb, torch.float64)
    # PyTorch's warning for "mean", once from each
    assert sum("batchmean" in str(w.message) for w in seen) == (2 if reduction == "mean" else 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,dim", [((6, 5), 1), ((6, 5), 0), ((3, 4, 5), 1), ((7,), -1),
                                       ((3, 4, 5), -1)])
def test_softmax_family_matches_torch(dtype, shape, dim):
    x = torch.randn(shape, dtype=dtype) * 3
    g = torch.randn(shape, dtype=dtype)
    for ours, theirs in ((xt.softmax, F.softmax), (xt.log_softmax, F.log_softmax)):
        (a, ga), (b, gb) = _both(ours, theirs, x, dim, grad=g)
        _close(a, b, dtype)
        _close(ga, gb, dtype)
    dims = [dim] if len(shape) == 1 else [dim, (0, -1)]
    for d, keep in itertools.product(dims, [False, True]):
        probe = torch.logsumexp(x, d, keep)
        (a, ga), (b, gb) = _both(xt.logsumexp, torch.logsumexp, x, d, keep,
                                 grad=_upstream(probe))
        _close(a, b, dtype)
        _close(ga, gb, dtype)
    # softmax's dtype argument casts first, as PyTorch's
    _close(xt.softmax(x.float(), dim, dtype=torch.float64), F.softmax(x.float(), dim,
                                                                      dtype=torch.float64),
           torch.float64)


def test_non_contiguous_inputs():
    base = torch.randn(10, 16, dtype=torch.float64)
    x = base.t()[::2]  # (8, 10), strided
    t = torch.randint(0, 10, (8,))
    (a, ga), (b, gb) = _both(xt.cross_entropy, F.cross_entropy, x, t, label_smoothing=0.1)
    _close(a, b, torch.float64)
    _close(ga, gb, torch.float64)
    (a, ga), (b, gb) = _both(xt.log_softmax, F.log_softmax, x, 0, grad=torch.randn(8, 10,
                                                                                  dtype=torch.float64))
    _close(a, b, torch.float64)
    _close(ga, gb, torch.float64)


def test_gradcheck_float64():
    x = torch.randn(5, 4, 2, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (5, 2))
    p = torch.softmax(torch.randn(5, 4, 2, dtype=torch.float64), 1)
    w = torch.rand(4, dtype=torch.float64) + 0.5
    tb = torch.rand(5, 4, 2, dtype=torch.float64)
    cases = [
        lambda x: xt.cross_entropy(x, t, w, label_smoothing=0.1, z_loss=1e-3, softcap=4.0),
        lambda x: xt.cross_entropy(x, p, reduction="none"),
        lambda x: xt.nll_loss(x, t, w, reduction="sum"),
        lambda x: xt.binary_cross_entropy_with_logits(x, tb, pos_weight=torch.full((2,), 2.0,
                                                      dtype=torch.float64), reduction="none"),
        lambda x: xt.binary_cross_entropy(torch.sigmoid(x), tb),
        lambda x: xt.multilabel_soft_margin_loss(x, tb, reduction="none"),
        lambda x: xt.kl_div(x, p, reduction="batchmean"),
        lambda x: xt.log_softmax(x, 1),
        lambda x: xt.softmax(x, 2),
        lambda x: xt.logsumexp(x, (1, 2), keepdim=True),
    ]
    for fn in cases:
        assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7)


def test_double_backward_raises():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(xt.cross_entropy(x, torch.tensor([0, 1, 2, 0])), x,
                            create_graph=True)


def _step(model, x, t):
    return xt.cross_entropy(model(x), t, label_smoothing=0.05)


def test_compile_has_no_graph_break():
    model = torch.nn.Linear(16, 7)
    x, t = torch.randn(32, 16), torch.randint(0, 7, (32,))
    t[3] = -100

    def everything(x, t):
        y = torch.rand_like(x)
        return (xt.cross_entropy(x, t, reduction="none").sum() + xt.nll_loss(
            torch.log_softmax(x, 1), t) + xt.binary_cross_entropy_with_logits(x, y)
            + xt.binary_cross_entropy(torch.sigmoid(x), y)
            + xt.multilabel_soft_margin_loss(x, y) + xt.kl_div(
                torch.log_softmax(x, 1), torch.softmax(y, 1), reduction="batchmean")
            + xt.log_softmax(x, 1).sum() + xt.softmax(x, 0).square().sum()
            + xt.logsumexp(x, 1).sum())

    assert torch._dynamo.explain(_step)(model, x, t).graph_break_count == 0
    logits = torch.randn(32, 7, requires_grad=True)
    assert torch._dynamo.explain(everything)(logits, t).graph_break_count == 0
    compiled = torch.compile(everything, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)
    got = compiled(logits, t)
    (g_got,) = torch.autograd.grad(got, logits)
    torch.manual_seed(1)
    want = everything(logits, t)
    (g_want,) = torch.autograd.grad(want, logits)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g_got, g_want)


def test_compiled_training_matches_eager_pytorch():
    """torch.compile(fullgraph=True) (Inductor) training a linear classifier
    with xt.cross_entropy: the parameters after a few SGD steps are those of
    eager PyTorch with F.cross_entropy."""
    torch.manual_seed(3)
    x, t = torch.randn(64, 20), torch.randint(0, 10, (64,))
    ours, ref = torch.nn.Linear(20, 10), torch.nn.Linear(20, 10)
    ref.load_state_dict(ours.state_dict())
    step = torch.compile(_step, fullgraph=True)
    opt_a = torch.optim.SGD(ours.parameters(), lr=0.5)
    opt_b = torch.optim.SGD(ref.parameters(), lr=0.5)
    for _ in range(5):
        opt_a.zero_grad()
        opt_b.zero_grad()
        step(ours, x, t).backward()
        F.cross_entropy(ref(x), t, label_smoothing=0.05).backward()
        opt_a.step()
        opt_b.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_patch_routes_an_unmodified_training_loop():
    def train(seed):  # an ordinary script: nn.CrossEntropyLoss, nothing of xent
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 5))
        crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        opt = torch.optim.SGD(model.parameters(), lr=0.3)
        x, t = torch.randn(40, 12), torch.randint(0, 5, (40,))
        kinds = set()
        for _ in range(4):
            opt.zero_grad()
            loss = crit(model(x), t)
            kinds.add(type(loss.grad_fn).__name__)
            loss.backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()], kinds

    want, kinds = train(0)
    assert not any("Eager" in k for k in kinds)
    with xt.patch():
        assert F.cross_entropy is xt.cross_entropy
        got, kinds = train(0)
    assert any("Eager" in k for k in kinds)  # xent's autograd node ran the loss
    assert F.cross_entropy is not xt.cross_entropy
    for p, q in zip(got, want):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    handle = xt.patch()
    try:
        assert F.kl_div is xt.kl_div and F.softmax is xt.softmax
    finally:
        handle.undo()
    assert F.softmax is not xt.softmax


_BF16_ROUTE = """
import sys
if sys.argv[1] == "without":
    sys.modules["ml_dtypes"] = None  # (import ml_dtypes then fails)
import torch, xent.torch as xt
xt.MIN_ELEMENTS = 0
torch.manual_seed(3)
x = (torch.randn(40, 300) * 4).to(torch.bfloat16).requires_grad_(True)
t = torch.randint(0, 300, (40,))
for kw in ({}, {"reduction": "none", "label_smoothing": 0.1}):
    loss = xt.cross_entropy(x, t, **kw)
    loss.backward(torch.ones_like(loss))
    print(loss.dtype, loss.view(torch.int16).tolist(), x.grad.view(torch.int16).sum().item(),
          x.grad.view(torch.int16).abs().sum().item())
    x.grad = None
"""


def test_bfloat16_tensors_without_ml_dtypes_same_bits():
    """bfloat16 tensors reach the kernels as ml_dtypes views; without
    ml_dtypes they are widened by PyTorch: the same results, bit for bit."""
    outs = [subprocess.run([sys.executable, "-c", _BF16_ROUTE, how], capture_output=True,
                           text=True, check=True).stdout for how in ("with", "without")]
    assert outs[0] == outs[1] and outs[0].count("torch.bfloat16") == 2, outs


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_tensors_against_float32(dtype):
    """bf16/f16 logits: the float32 computation on the same values, rounded once."""
    x = (torch.randn(16, 33) * 4).to(dtype)
    t = torch.randint(0, 33, (16,))
    y = torch.rand(16, 33).to(dtype)
    cases = [
        (xt.cross_entropy, (t,), dict(label_smoothing=0.1)),
        (xt.cross_entropy, (t,), dict(reduction="none")),
        (xt.binary_cross_entropy_with_logits, (y,), {}),
        (xt.multilabel_soft_margin_loss, (y,), dict(reduction="none")),
        (xt.log_softmax, (1,), {}),
        (xt.softmax, (1,), {}),
        (xt.logsumexp, (1,), {}),
        (xt.nll_loss, (t,), {}),
    ]
    for fn, args, kw in cases:
        xl = x.clone().requires_grad_(True)
        out = fn(xl, *args, **kw)
        assert out.dtype == dtype
        out.backward(torch.ones_like(out))
        assert xl.grad.dtype == dtype
        x32 = x.float().requires_grad_(True)
        args32 = tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point()
                       else a for a in args)
        out32 = fn(x32, *args32, **kw)
        out32.backward(torch.ones_like(out32))
        torch.testing.assert_close(out, out32.to(dtype), rtol=0, atol=0) if out.numel() < 2 \
            else _close(out.float(), out32.to(dtype).float(), dtype)
        _close(xl.grad.float(), x32.grad.to(dtype).float(), dtype)


def test_other_devices_and_tensors_go_to_torch():
    # the meta device stands for any non-CPU device: PyTorch's op runs there
    x = torch.randn(4, 3, device="meta")
    t = torch.zeros(4, dtype=torch.int64, device="meta")
    out = xt.cross_entropy(x, t)
    assert out.device.type == "meta"
    assert xt.logsumexp(x, 1).device.type == "meta"
    # a target that requires a gradient: PyTorch's route, gradient to the target
    p = torch.softmax(torch.randn(4, 3), 1).requires_grad_(True)
    xt.cross_entropy(torch.randn(4, 3), p).backward()
    assert p.grad is not None


def _err(fn, *args, **kw):
    with pytest.raises(Exception) as info:
        fn(*args, **kw)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", range(9))
def test_bad_input_raises_as_torch(case):
    x = torch.randn(3, 4)
    calls = [
        ("cross_entropy", (x, torch.tensor([0, 1, 7])), {}),       # class out of range
        ("cross_entropy", (x, torch.tensor([0, -1, 2])), {}),      # negative class
        ("cross_entropy", (x, torch.tensor([0, 1, 1], dtype=torch.int32)), {}),
        ("cross_entropy", (x, torch.tensor([0, 1])), {}),          # batch mismatch
        ("cross_entropy", (x, torch.tensor([0, 1, 1]), torch.ones(3)), {}),  # weight size
        ("log_softmax", (x, 3), {}),                                 # dim out of range
        ("binary_cross_entropy_with_logits", (x, torch.rand(3, 5)), {}),
        ("binary_cross_entropy", (torch.rand(3, 4) + 0.5, torch.rand(3, 4)), {}),
        ("nll_loss", (x, torch.tensor([0, 1, 4])), {}),
    ]
    name, args, kw = calls[case]
    assert _err(getattr(xt, name), *args, **kw) == _err(getattr(F, name), *args, **kw)


def test_memory_no_copy_beyond_the_gradient():
    """fwd+bwd of 2048x4096 float32 allocates the gradient (32 MiB) and small
    things: no copy of the logits, no clone of the gradient by autograd (it
    becomes the .grad), and once that .grad is dropped the next call reuses
    its memory (no fresh pages to fault in)."""
    import tracemalloc

    x = torch.randn(2048, 4096, requires_grad=True)
    t = torch.randint(0, 4096, (2048,))
    nbytes = x.numel() * 4
    xt.empty_cache()
    tracemalloc.start()
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                    profile_memory=True) as prof:
            xt.cross_entropy(x, t).backward()
        numpy_peak = tracemalloc.get_traced_memory()[1]
        first = x.grad.data_ptr()
        x.grad = None
        tracemalloc.reset_peak()
        kept = tracemalloc.get_traced_memory()[0]  # the memory kept for reuse
        xt.cross_entropy(x, t).backward()
        again_peak = tracemalloc.get_traced_memory()[1] - kept
    finally:
        tracemalloc.stop()
    torch_bytes = sum(e.self_cpu_memory_usage for e in prof.events()
                      if e.self_cpu_memory_usage > 0)
    assert nbytes <= numpy_peak + torch_bytes < nbytes * 1.1, (numpy_peak, torch_bytes)
    assert x.grad.data_ptr() == first and again_peak < nbytes // 10
    held = x.grad
    x.grad = None
    xt.cross_entropy(x, t).backward()  # memory still in use is never handed out
    assert x.grad.data_ptr() != held.data_ptr()
    xt.empty_cache()


def test_core_does_not_import_torch_and_missing_torch_names_the_extra():
    code = ("import sys, xent; assert 'torch' not in sys.modules\n"
            "sys.modules['torch'] = None\n"
            "try:\n    import xent.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=True)
    assert 'pip install "xent[torch]"' in out.stdout


def test_retain_graph_second_backward():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (6,))
    loss = xt.cross_entropy(x, t)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)


def test_custom_ops_pass_opcheck():
    """torch.library.opcheck: schema, fake (meta) implementations whose
    shapes and strides match the real outputs, autograd registration."""
    x = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (3, 2))
    p = torch.softmax(torch.randn(3, 5, 2, dtype=torch.float64), 1)
    w = torch.rand(5, dtype=torch.float64)
    y = torch.rand(3, 5, 2, dtype=torch.float64)
    cases = [
        (xt._ce_op, (x, t, w, -100, "none", 0.1, 1e-3, 4.0, True)),
        (xt._ce_op, (x, p, None, -100, "mean", 0.0, 0.0, None, True)),
        (xt._nll_op, (x, t, w, -100, "sum", True)),
        (xt._bce_logits_op, (x, y, None, None, "none", True)),
        (xt._bce_op, (torch.sigmoid(x.detach()).requires_grad_(), y, None, "mean", True)),
        (xt._multilabel_op, (x, y, None, "none", True)),
        (xt._kl_op, (torch.log(p).requires_grad_(), p, "batchmean", False, True)),
        (xt._lse_op, (x, [0], False, True)),
        (xt._lse_op, (x, [1, 2], True, True)),
        (xt._softmax_op, (x, 1, True)),
        (xt._softmax_backward_op, (torch.softmax(x.detach(), 1), y, 1, False)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def test_inductor_softmax_family_over_a_middle_dim():
    x0 = torch.randn(2, 5, 3, dtype=torch.float64)
    for fn in (lambda x: (xt.log_softmax(x, 1) * x0).sum(),
               lambda x: (xt.softmax(x, 1) * x0).sum(),
               lambda x: (xt.logsumexp(x, 0) * x0[0]).sum()):
        compiled = torch.compile(fn, fullgraph=True)
        a = x0.clone().requires_grad_()
        compiled(a).backward()
        b = x0.clone().requires_grad_()
        fn(b).backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_torch_func_forward_ad_and_jit_trace_use_torch():
    import torch.autograd.forward_ad as fwAD

    x = torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(torch.func.grad(lambda z: xt.cross_entropy(z, t))(x),
                               torch.func.grad(lambda z: F.cross_entropy(z, t))(x))
    torch.testing.assert_close(torch.vmap(lambda z: xt.log_softmax(z, -1))(x),
                               F.log_softmax(x, -1))
    v = torch.randn_like(x)
    with fwAD.dual_level():
        got = fwAD.unpack_dual(xt.cross_entropy(fwAD.make_dual(x, v), t)).tangent
        want = fwAD.unpack_dual(F.cross_entropy(fwAD.make_dual(x, v), t)).tangent
    torch.testing.assert_close(got, want)

    class M(torch.nn.Module):
        def forward(self, z):
            return xt.softmax(z, -1)

    traced = torch.jit.trace(M(), torch.zeros(1, 3))
    z = torch.tensor([[0.0, 0.0, 5.0]])
    torch.testing.assert_close(traced(z), F.softmax(z, -1))


def test_autocast_runs_the_losses_in_float32():
    lin = torch.nn.Linear(16, 50)
    x, t = torch.randn(8, 16), torch.randint(0, 50, (8,))
    y = torch.rand(8, 50)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lin(x)
        assert logits.dtype == torch.bfloat16
        for ours, theirs, args in ((xt.cross_entropy, F.cross_entropy, (t,)),
                                   (xt.binary_cross_entropy_with_logits,
                                    F.binary_cross_entropy_with_logits, (y,))):
            a, b = ours(logits, *args), theirs(logits, *args)
            assert a.dtype == b.dtype == torch.float32
            torch.testing.assert_close(a, b)


def test_legacy_arguments_and_kl_mean_compile_without_break():
    x = torch.log_softmax(torch.randn(6, 5, dtype=torch.float64), 1).requires_grad_()
    p = torch.softmax(torch.randn(6, 5, dtype=torch.float64), 1)
    t = torch.tensor([0, 1, 2, 3, 4, 1])
    for fn in (lambda x: xt.kl_div(x, p), lambda x: xt.cross_entropy(x, t, size_average=False)):
        assert torch._dynamo.explain(fn)(x).graph_break_count == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # PyTorch divides its legacy reduction by N again for "batchmean"
        for kw in (dict(size_average=True), dict(reduce=False)):
            torch.testing.assert_close(xt.kl_div(x, p, reduction="batchmean", **kw),
                                       F.kl_div(x, p, reduction="batchmean", **kw))


def test_second_backward_after_an_in_place_change_raises():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2, 3, 4, 1])
    loss = xt.cross_entropy(x, t)
    loss.backward(retain_graph=True)
    with torch.no_grad():
        x.mul_(3)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()


def test_patch_handles_nest_in_any_order():
    original = F.cross_entropy
    a, b = xt.patch(), xt.patch()
    a.undo()
    assert F.cross_entropy is xt.cross_entropy  # b is still active
    a.undo()  # a second undo does nothing
    assert F.cross_entropy is xt.cross_entropy
    b.undo()
    assert F.cross_entropy is original


def test_compiled_bad_value_raises_torch_error():
    x = torch.randn(6, 5, dtype=torch.float64)
    t = torch.tensor([0, 1, 7, 3, 4, 1])
    compiled = torch.compile(lambda x: xt.cross_entropy(x, t), backend="aot_eager")
    with pytest.raises(IndexError, match="out of bounds"):
        compiled(x)
