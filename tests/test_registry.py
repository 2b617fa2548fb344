"""Every public function, as registered in xent._registry (its inputs,
options and float64 reference): its values against the reference for each
option, its gradient against finite differences, bit-identity for any thread
count on every path, inputs untouched and out=/grad_out= giving the same
bits. A function is covered here by being registered."""

import inspect

import numpy as np
import pytest

import xent
from xent import _dispatch, _registry
from xent import _kernels as _compiled  # must import: never skip

ENTRIES = _registry.ENTRIES
TOL = {np.float64: 2e-12, np.float32: 2e-5}


def _ids(entries):
    return [e.label for e in entries]


def _options(e):
    return [None] + sorted(e.options)


def _kwargs(e, option, rng, n, c):
    if option is None:
        return {}
    return {option: _registry.option_value(e.options[option], rng, n, c)}


def _value(result):
    return result[0] if isinstance(result, tuple) else result


def _scale(want):
    """The size of the finite reference values (at least 1): the absolute
    tolerance's unit (an infinite value must be met exactly)."""
    fin = np.abs(want[np.isfinite(want)])
    return max(1.0, float(np.max(fin))) if fin.size else 1.0


def test_every_public_function_is_registered():
    registered = {e.name for e in ENTRIES}
    assert _registry.public_names() <= registered, _registry.public_names() - registered
    for e in ENTRIES:
        assert callable(e.function)


CASES = [(e, o) for e in ENTRIES for o in _options(e)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(37, 2), (37, 10), (37, 100), (3, 3000)])
@pytest.mark.parametrize("e,option", CASES, ids=[f"{e.label}-{o}" for e, o in CASES])
def test_against_the_reference(e, option, shape, dtype):
    rng = np.random.default_rng(7)
    n, c = shape
    args = e.make(rng, n, c, dtype)
    kw = _kwargs(e, option, rng, n, c)
    want = np.asarray(e.expected([np.asarray(a) for a in args], **kw), dtype=np.float64)
    got = _value(e.call(args, **kw))
    if e.family != "metric":  # (a Python float, as scikit-learn)
        assert np.asarray(got).dtype == (np.float64 if e.float64_result else dtype)
    scale = _scale(want)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=TOL[dtype], atol=TOL[dtype] * scale)


OTHER_ISAS = [isa for isa in _dispatch.supported_isas() if isa != _dispatch.active_isa()]


@pytest.mark.parametrize("isa", OTHER_ISAS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("e,option", CASES, ids=[f"{e.label}-{o}" for e, o in CASES])
def test_every_instruction_set_against_the_reference(e, option, dtype, isa):
    """The other instruction sets this CPU runs (the suite runs on the best one):
    small blocks (C = 5) and rows (C = 300) against the reference."""
    for n, c in [(37, 5), (9, 300)]:
        rng = np.random.default_rng(11)
        args = e.make(rng, n, c, dtype)
        kw = _kwargs(e, option, rng, n, c)
        want = np.asarray(e.expected([np.asarray(a) for a in args], **kw), dtype=np.float64)
        with _dispatch.use_isa(isa):
            got = _value(e.call(args, **kw))
        scale = _scale(want)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=TOL[dtype], atol=TOL[dtype] * scale)


GRAD_CASES = [(e, o) for e in ENTRIES if e.grad for o in _options(e)]


@pytest.mark.parametrize("e,option", GRAD_CASES, ids=[f"{e.label}-{o}" for e, o in GRAD_CASES])
def test_gradient_by_finite_differences(e, option):
    rng = np.random.default_rng(3)
    n, c = 5, 7
    args = e.make(rng, n, c, np.float64)
    kw = _kwargs(e, option, rng, n, c)
    value, grad = e.call(args, return_grad=True, **kw)
    k = e.grad_wrt
    base = args[k]
    h = 1e-6

    def total(x):
        a = list(args)
        a[k] = x
        return float(np.sum(_value(e.call(a, **kw))))

    for i, j in [(0, 0), (n - 1, c - 1), (2, 3), (1, int(np.argmax(base[1])))]:
        up, down = base.copy(), base.copy()
        up[i, j] += h
        down[i, j] -= h
        fd = (total(up) - total(down)) / (2 * h)
        assert abs(fd - grad[i, j]) <= 2e-6 * max(1.0, abs(fd)), (i, j, fd, grad[i, j])


SIZES = {"blocks": (4001, 10), "rows": (3001, 300), "long rows": (9, 65536 + 7), "chunks": (2, 65536 + 7)}


# (scikit-learn's log_loss and the O(N) partials functions take no n_threads)
THREADED = [e for e in ENTRIES if "n_threads" in inspect.signature(e.function).parameters]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("e", THREADED, ids=_ids(THREADED))
def test_bit_identical_for_any_thread_count(e, size, dtype):
    n, c = SIZES[size]
    rng = np.random.default_rng(11)
    args = e.make(rng, n, c, dtype)
    extra = {"return_grad": True} if e.grad else {}
    runs = [e.call(args, n_threads=t, **extra) for t in (1, 2, 3, 8)]
    first = runs[0] if isinstance(runs[0], tuple) else (runs[0],)
    for run in runs[1:]:
        run = run if isinstance(run, tuple) else (run,)
        for a, b in zip(run, first):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


@pytest.mark.parametrize("e", [e for e in ENTRIES if e.out], ids=_ids([e for e in ENTRIES if e.out]))
def test_output_buffers_and_untouched_inputs(e):
    rng = np.random.default_rng(5)
    n, c = 33, 20
    args = e.make(rng, n, c, np.float32)
    saved = [np.array(a, copy=True) for a in args]
    extra = {"return_grad": True} if e.out == "grad_out" else {}
    want = e.call(args, **extra)
    out = np.full(args[0].shape, 7.0, np.float32)
    if e.out == "out" and e.name == "logsumexp":
        out = np.full(n, 7.0, np.float32)
    got = e.call(args, **{e.out: out}, **extra)
    for a, b in zip(args, saved):
        assert a.tobytes() == b.tobytes()
    want_out = want[1] if e.out == "grad_out" else want
    got_out = got[1] if e.out == "grad_out" else got
    assert got_out is out
    assert out.tobytes() == np.asarray(want_out).tobytes()
