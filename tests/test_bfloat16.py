"""bfloat16 (ml_dtypes) input and output for every registered public function:
the results are the float32 computation on the same (bfloat16-exact) values,
rounded once to bfloat16 (nearest, ties to even); outputs into bfloat16
``out=``/``grad_out=``; inputs untouched; the conversions bit for bit against
ml_dtypes' own casts. ml_dtypes is an optional peer (installed by .ci/run);
xent itself never imports it."""

import subprocess
import sys

import numpy as np
import pytest

import xent
from xent import _bfloat16, _registry
from xent import _kernels as _compiled  # noqa: F401  (must import: never skip)

ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (the bfloat16 dtype) is not installed")
BF16 = np.dtype(ml_dtypes.bfloat16)
ENTRIES = _registry.ENTRIES


def _bits(a):
    return np.asarray(a).view(np.uint16)


def test_bfloat16_is_recognised_without_importing_ml_dtypes():
    assert _bfloat16.is_bfloat16(BF16)
    assert not _bfloat16.is_bfloat16(np.dtype(np.float16))
    assert not _bfloat16.is_bfloat16(np.dtype([("a", np.uint8), ("b", np.uint8)]))
    proc = subprocess.run([sys.executable, "-c", "import sys, xent; xent.softmax([1.0, 2.0]); "
                           "print('ml_dtypes' in sys.modules)"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_widening_is_exact_for_every_bfloat16():
    every = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(BF16)
    got = _bfloat16.widen(every)
    want = every.astype(np.float32)  # ml_dtypes' cast
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan])
    assert np.array_equal(got.view(np.uint32) >> 16, every.view(np.uint16).astype(np.uint32))


def test_narrowing_rounds_to_nearest_even_as_ml_dtypes():
    rng = np.random.default_rng(0)
    bits = np.concatenate([
        rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32),
        # ties (low half 0x8000) around even and odd kept halves, both signs
        (np.arange(2**16, dtype=np.uint32) << 16) | 0x8000,
        (np.arange(2**16, dtype=np.uint32) << 16) | 0x7FFF,
        (np.arange(2**16, dtype=np.uint32) << 16) | 0x8001,
        np.array([0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001,
                  0xFFFFFFFF, 0x00000001, 0x80000001, 0x007FFFFF, 0x00008000, 0], np.uint32),
    ])
    x = bits.view(np.float32)
    got = _bfloat16.narrow(x, BF16)
    with np.errstate(invalid="ignore"):  # (ml_dtypes' cast of NaN)
        want = x.astype(BF16)
    nan = np.isnan(x)
    assert np.array_equal(np.isnan(got.astype(np.float32)), nan)
    np.testing.assert_array_equal(_bits(got)[~nan], _bits(want)[~nan])
    # into a non-contiguous bfloat16 output
    out = np.zeros((2, 1000), BF16)[:, ::2]
    _bfloat16.narrow(x[:1000].reshape(2, 500), BF16, out)
    np.testing.assert_array_equal(_bits(out)[~nan[:1000].reshape(2, 500)],
                                  _bits(want[:1000].reshape(2, 500))[~nan[:1000].reshape(2, 500)])


def _as_bf16(args):
    return [a.astype(BF16) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a for a in args]


def _as_f32(args):
    return [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == BF16 else a for a in args]


def _rounded(result):
    """The float32 computation's results, each rounded once to bfloat16 by
    ml_dtypes (the reference), as a tuple."""
    result = result if isinstance(result, tuple) else (result,)
    out = []
    for r in result:
        if isinstance(r, (np.ndarray, np.floating)) and np.asarray(r).dtype == np.float32:
            r = np.asarray(r).astype(BF16)
        out.append(r)
    return tuple(out)


def _same(got, want, what):
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        if isinstance(w, np.ndarray) and w.dtype == BF16:
            assert np.asarray(g).dtype == BF16, (what, np.asarray(g).dtype)
            gf, wf = np.asarray(g).astype(np.float32), w.astype(np.float32)
            assert np.array_equal(np.isnan(gf), np.isnan(wf)), what
            np.testing.assert_array_equal(gf[~np.isnan(wf)], wf[~np.isnan(wf)], err_msg=what)
        else:
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=what)


CASES = [(e, o) for e in ENTRIES for o in [None] + sorted(e.options)]


# (log_loss: probabilities rounded to bfloat16 no longer sum to 1, which it says)
@pytest.mark.filterwarnings("ignore:The y_proba values do not sum to one")
@pytest.mark.parametrize("shape", [(37, 10), (5, 3000)])
@pytest.mark.parametrize("e,option", CASES, ids=[f"{e.label}-{o}" for e, o in CASES])
def test_every_function_takes_and_returns_bfloat16(e, option, shape):
    rng = np.random.default_rng(5)
    n, c = shape
    args = _as_bf16(e.make(rng, n, c, np.float32))
    kw = {} if option is None else {option: _registry.option_value(e.options[option], rng, n, c)}
    kw = {k: (v.astype(BF16) if isinstance(v, np.ndarray) and v.dtype.kind == "f" and
              e.family != "metric" else v) for k, v in kw.items()}
    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    kw32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == BF16 else v)
            for k, v in kw.items()}
    want = _rounded(e.call(_as_f32(args), **kw32))
    _same(e.call(args, **kw), want, e.label)
    if e.grad:
        want_g = _rounded(e.call(_as_f32(args), return_grad=True, **kw32))
        got_g = e.call(args, return_grad=True, **kw)
        _same(got_g, want_g, f"{e.label} return_grad")
        # the gradient into a bfloat16 grad_out: the same bits, the caller's array returned
        grad_name = "grad_out" if e.out == "grad_out" else None
        if grad_name:
            g_out = np.full(args[e.grad_wrt].shape, np.nan, BF16)
            got_o = e.call(args, return_grad=True, grad_out=g_out, **kw)
            assert got_o[1] is g_out
            _same(got_o, want_g, f"{e.label} grad_out")
    elif e.out == "out":
        o = np.full(args[0].shape, np.nan, BF16)
        got_o = e.call(args, out=o, **kw)
        assert got_o is o
        _same(got_o, want, f"{e.label} out")
    for a, b in zip(args, before):  # inputs untouched
        if isinstance(a, np.ndarray):
            assert np.array_equal(_bits(a) if a.dtype == BF16 else a, _bits(b) if b.dtype == BF16 else b)


def test_gradient_in_place_into_bfloat16_logits():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 100)) * 3).astype(BF16)
    y = rng.integers(0, 100, 64)
    want = _rounded(xent.softmax_cross_entropy(x.astype(np.float32), y, return_grad=True))
    loss, g = xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=x)
    assert g is x
    _same((loss, g), want, "in place")


def test_bad_bfloat16_output_is_refused_before_anything_is_written():
    x = np.zeros((4, 10), BF16)
    y = np.zeros(4, np.int64)
    g = np.full((4, 11), 7.0, BF16)  # wrong shape
    with pytest.raises(ValueError, match="grad_out"):
        xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=g)
    assert np.all(g.astype(np.float32) == 7.0)
    with pytest.raises(TypeError, match="grad_out"):  # a bfloat16 output for float32 input
        xent.softmax_cross_entropy(x.astype(np.float32), y, return_grad=True,
                                   grad_out=np.zeros((4, 10), BF16))


# --- the softmax family reads bfloat16 in its kernels ----------------------------
# (src/class_rows.pxi, run_bf16: groups of rows widened in a thread's cache-sized
# workspace, computed as float32 in place, narrowed into the outputs.) Shapes
# across the paths and the group boundaries: several groups with a partial last
# one (C=17: 3855 rows a group), the rows path past the block path (C=65),
# streamed-size rows, long rows of one row a group, rows of more chunks than a
# task keeps on its stack (C=300000).
KERNEL_SHAPES = [(3857, 17), (1030, 65), (40, 2048), (9, 70000), (2, 300000)]
CE_OPTIONS = [{}, dict(reduction="none", ignore_index=0),
              dict(weight="w", label_smoothing=0.1, z_loss=1e-3, reduction="sum"),
              dict(sample_weight="sw", softcap=4.0, return_argmax=True)]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("opts", CE_OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_softmax_family_kernels_read_bfloat16(shape, opts, n_threads):
    rng = np.random.default_rng(sum(shape))
    n, c = shape
    x = (rng.standard_normal((n, c)) * 4).astype(BF16)
    x[0, : c // 2] = -np.inf  # a masked vocabulary's row
    y = rng.integers(0, c, n)
    kw = dict(opts, n_threads=n_threads)
    if kw.get("weight") == "w":
        kw["weight"] = rng.random(c) + 0.5
    if kw.get("sample_weight") == "sw":
        kw["sample_weight"] = rng.random(n)
    x32 = x.astype(np.float32)
    want = _rounded(xent.softmax_cross_entropy(x32, y, return_grad=True, **kw))
    g = np.full((n, c), np.nan, BF16)
    got = xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=g, **kw)
    assert got[1] is g
    _same(got, want, f"softmax_cross_entropy {shape} {opts}")
    if not opts:
        for fn in (xent.softmax, xent.log_softmax):
            _same(fn(x, n_threads=n_threads), _rounded(fn(x32)), fn.__name__)
        _same(xent.logsumexp(x, return_grad=True, n_threads=n_threads),
              _rounded(xent.logsumexp(x32, return_grad=True)), "logsumexp")
        _same(xent.softmax_focal_loss(x, y, gamma=2.0, return_grad=True, n_threads=n_threads),
              _rounded(xent.softmax_focal_loss(x32, y, gamma=2.0, return_grad=True)), "focal")


def test_bfloat16_kernels_allocate_no_float32_copy():
    """The softmax family on bfloat16 allocates nothing of N x C (no widened
    copy, no float32 gradient): O(N) and a thread's workspace only."""
    import tracemalloc
    from xent._buffers import BUFFERS
    rng = np.random.default_rng(3)
    n, c = 512, 4096  # N x C float32: 8 MiB
    x = rng.standard_normal((n, c)).astype(BF16)
    y = rng.integers(0, c, n)
    g = np.empty_like(x)
    out = np.empty_like(x)
    calls = [lambda: xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=g),
             lambda: xent.softmax_focal_loss(x, y, return_grad=True, grad_out=g),
             lambda: xent.softmax(x, out=out), lambda: xent.log_softmax(x, out=out),
             lambda: xent.logsumexp(x)]
    for call in calls:
        call()
        BUFFERS.clear()  # (nothing kept from a widened call either)
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < n * c, (call, peak)  # (a widened copy: 4 n c bytes)


@pytest.mark.parametrize("shape", [(3, 0), (0, 5), (0, 0), (2, 0, 4)])
def test_bfloat16_kernels_on_empty_rows(shape):
    """Rows of no classes (found by the fuzz target: a division by the class
    count in the group size, SIGFPE) and no rows, as float32 gives them."""
    x = np.zeros(shape, BF16)
    x32 = x.astype(np.float32)
    for fn in (xent.softmax, xent.log_softmax):
        _same(fn(x), _rounded(fn(x32)), fn.__name__)
    _same(xent.logsumexp(x, return_grad=True), _rounded(xent.logsumexp(x32, return_grad=True)),
          "logsumexp")
    if shape[-1] > 0:
        y = np.zeros(shape[:-1], np.int64)
        _same(xent.softmax_cross_entropy(x, y, return_grad=True, reduction="sum"),
              _rounded(xent.softmax_cross_entropy(x32, y, return_grad=True, reduction="sum")),
              "softmax_cross_entropy")


# --- found by the fuzz target with bfloat16 among its dtypes --------------------

def test_gradient_takes_the_dtype_of_its_input():
    """cross_entropy/kl_divergence return d/dq in q's dtype; the values follow
    the first input that is not integer labels (a float64 result stays float64)."""
    p = np.full((3, 4), 0.25)
    q = np.array([[0.1, 0.2, 0.3, 0.4]] * 3).astype(BF16)
    for fn in (xent.cross_entropy, xent.kl_divergence):
        v, g = fn(p, q, return_grad=True)
        assert (np.asarray(v).dtype, g.dtype) == (np.float64, BF16), fn.__name__
        _same(g, _rounded(fn(p, q.astype(np.float32), return_grad=True)[1]), fn.__name__)
        v, g = fn(p.astype(BF16), q.astype(np.float32), return_grad=True)
        assert (np.asarray(v).dtype, g.dtype) == (BF16, np.float32), fn.__name__
    for labels in (np.array([0, 3, 1]), [0, 3, 1]):  # class labels do not set the dtype
        v, g = xent.cross_entropy(labels, q, return_grad=True)
        assert (np.asarray(v).dtype, g.dtype) == (BF16, BF16)
    assert np.asarray(xent.cross_entropy(3, q[0])).dtype == BF16


def test_outputs_of_a_widened_call_are_checked_against_the_callers_arrays():
    """The widened copies and float32 stand-ins hide the caller's arrays from
    the call's own checks: the wrapper checks them first, before writing."""
    rng = np.random.default_rng(2)
    p = xent.softmax(rng.standard_normal((4, 6))).astype(BF16)
    g16 = rng.standard_normal((4, 6)).astype(np.float16)
    # a float64 output on the memory of a bfloat16 input (widened: unseen by the call)
    mem = np.zeros(4 * 6 * 4, np.float64)
    p_on = mem.view(np.uint16)[: 24].view(BF16).reshape(4, 6)
    p_on[...] = p
    out64 = mem[:24].reshape(4, 6)
    with pytest.raises(ValueError, match="out: must not overlap the memory of probs"):
        xent.softmax_backward(p_on, g16.astype(np.float64), out=out64)
    # a bfloat16 output (replaced by a stand-in) on the memory of a float16 input
    g_on = g16.copy()
    out_on = g_on.view(BF16)
    before = g_on.copy()
    with pytest.raises(ValueError, match="out: must not overlap the memory of grad_probs"):
        xent.softmax_backward(p, g_on, out=out_on)
    assert np.array_equal(g_on, before)
    # the in-place form into a bfloat16 input stays allowed
    gb = g16.astype(np.float32).astype(BF16)
    want = _rounded(xent.softmax_backward(p.astype(np.float32), gb.astype(np.float32)))
    got = xent.softmax_backward(p, gb, out=p)
    assert got is p
    _same(got, want, "in place")


@pytest.mark.parametrize("out_dtype", [np.float32, np.float16])
def test_float_output_for_a_bfloat16_result_is_refused(out_dtype):
    x = np.zeros((3, 5), BF16)
    out = np.full(3, 7, out_dtype)
    with pytest.raises(TypeError, match=r"out: expected dtype bfloat16, got float"):
        xent.logsumexp(x, out=out)
    assert np.all(out == 7)
    g = np.full((3, 5), 7, out_dtype)
    with pytest.raises(TypeError, match=r"grad_out: expected dtype bfloat16, got float"):
        xent.softmax_cross_entropy(x, np.zeros(3, np.int64), return_grad=True, grad_out=g)
    assert np.all(g == 7)


def test_in_place_forms_are_the_functions_own():
    """An output that is the very same view of a bfloat16 input is allowed
    exactly where the function allows its in-place form (grad_out=logits for
    the losses, not grad_out=target; never for the objectives)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4)).astype(BF16)
    t = xent.softmax(rng.standard_normal((5, 4))).astype(BF16)
    t_before = t.copy()
    with pytest.raises(ValueError, match="grad_out: must not overlap the memory of target"):
        xent.softmax_cross_entropy(x, t, return_grad=True, grad_out=t)
    assert np.array_equal(_bits(t), _bits(t_before))
    want = _rounded(xent.softmax_cross_entropy(x.astype(np.float32), t.astype(np.float32),
                                               return_grad=True))
    xc = x.copy()
    _same(xent.softmax_cross_entropy(xc, t, return_grad=True, grad_out=xc), want, "in place")
    from xent import objectives
    y = rng.integers(0, 4, 5)
    with pytest.raises(ValueError, match="grad_out: must not overlap the memory of logits"):
        objectives.softmax_grad_hess(x, y, grad_out=x)
    g = np.zeros((5, 4), BF16)
    with pytest.raises(ValueError, match="must not overlap the memory of"):
        objectives.softmax_grad_hess(x, y, grad_out=g, hess_out=g)


def test_unaligned_bfloat16_arrays():
    """Unaligned bfloat16 input and output (found by the fuzz target under
    UBSan: the widening read them as misaligned uint16_t): copied aligned
    first, the same results."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 9)).astype(BF16)
    t = rng.random((7, 9)).astype(BF16)

    def unaligned(a):
        buf = np.zeros(a.nbytes + 1, np.uint8)
        u = buf[1:].view(BF16).reshape(a.shape)
        u[...] = a
        assert not u.flags.aligned
        return u

    want = xent.binary_cross_entropy_with_logits(x, t, return_grad=True, reduction="none")
    out = unaligned(np.zeros((7, 9), BF16))
    got = xent.binary_cross_entropy_with_logits(unaligned(x), unaligned(t), return_grad=True,
                                                reduction="none", grad_out=out)
    assert got[1] is out
    _same(got, want, "unaligned")
    assert np.array_equal(_bits(xent.softmax(unaligned(x))), _bits(xent.softmax(x)))
