"""Streamed outputs: softmax, log_softmax and cross-entropy gradients (float32
and float64) and float32 binary cross-entropy gradients beyond the cache are
written with non-temporal stores (AVX-512; see src/_rows.pxd). Here the threshold is lowered to 0 so that small
arrays take that path, and every result must equal the plain path's bit for
bit, whatever the output's alignment (the stores realign each vector to the
output's 64-byte lines), the thread count or the rows' special cases, and
nothing outside the output may be written."""

import numpy as np
import pytest

import xent
from xent import _dispatch

PATHS = _dispatch.supported_isas()
PLAIN = 1 << 62
SENTINEL = np.float32(1234.5)



@pytest.fixture(autouse=True)
def rows_from_65_classes():
    # rows of more than 64 classes on the rows path (the path that streams),
    # whatever the block path's measured crossover
    with _dispatch.use_block_classes(64):
        yield


def guarded(shape, offset, dtype=np.float32):
    """An array of ``shape`` at ``offset`` values into a buffer of sentinels
    (so the output's alignment is offset * itemsize mod 64 bytes)."""
    n, size = int(np.prod(shape)), np.dtype(dtype).itemsize
    per_line = 64 // size
    buf = np.full(n + 4 * per_line, SENTINEL, dtype=dtype)
    base = (-buf.ctypes.data % 64) // size + per_line  # a 64-byte line, after one of sentinels
    offset %= per_line
    return buf, buf[base + offset:base + offset + n].reshape(shape), base + offset


def assert_guard(buf, start, n):
    assert (buf[:start] == SENTINEL).all() and (buf[start + n:] == SENTINEL).all()


def bitwise_equal(a, b):
    a, b = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


def test_default_threshold_is_32_mib():
    assert _dispatch.stream_bytes() == 32 << 20


def test_use_stream_bytes_restores():
    with _dispatch.use_stream_bytes(0):
        assert _dispatch.stream_bytes() == 0
    assert _dispatch.stream_bytes() == 32 << 20


def special_rows(x, rng):
    """Rows the streamed path hands to the plain one: all -inf, a +inf, a NaN."""
    n = x.shape[0]
    if n >= 4:
        x[1] = -np.inf
        x[2, rng.integers(0, x.shape[1])] = np.inf
        x[3, rng.integers(0, x.shape[1])] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [65, 80, 127, 1000, 4099])
@pytest.mark.parametrize("case", ["plain", "weights", "ignored", "z_loss", "none", "huge_grad",
                                  "smoothing", "smoothing_weights", "smoothing_huge_grad"])
def test_cross_entropy_gradient(isa, rng, c, case, dtype):
    n = 23
    x = special_rows((rng.standard_normal((n, c)) * 4).astype(dtype), rng)
    y = rng.integers(0, c, n)
    kw = {}
    if case == "weights":
        kw = dict(weight=rng.random(c) + 0.5, sample_weight=np.where(rng.random(n) < 0.2, 0.0, rng.random(n)))
    elif case == "ignored":
        y[::3] = -100
    elif case == "z_loss":
        kw = dict(z_loss=1e-3)
    elif case == "none":
        kw = dict(reduction="none", grad_loss=rng.standard_normal(n))
    elif case == "huge_grad":  # gradient scales beyond 1e38 in some rows
        kw = dict(reduction="none", grad_loss=np.where(rng.random(n) < 0.5, 3e38, 1.0))
    elif case == "smoothing":  # streamed: the offset F eps / C is one constant
        kw = dict(label_smoothing=0.1)
    elif case == "smoothing_weights":  # the plain path (an offset per class)
        kw = dict(label_smoothing=0.1, weight=rng.random(c) + 0.5)
    elif case == "smoothing_huge_grad":  # offsets beyond 1e38: those rows plain
        kw = dict(label_smoothing=0.3, reduction="none",
                  grad_loss=np.where(rng.random(n) < 0.5, 3e39 * c, 1.0))
    assert_cross_entropy_streams(x, y, kw, [(0, 1), (1, 2), (4, 3), (7, 2), (15, 1)])


def assert_cross_entropy_streams(x, target, kw, runs):
    """The streamed gradient (at (offset, threads) in runs, in place too)
    equals the plain path's, bit for bit, and writes nothing outside it."""
    with _dispatch.use_stream_bytes(PLAIN):
        want = xent.softmax_cross_entropy(x, target, return_grad=True, n_threads=1, **kw)
    with _dispatch.use_stream_bytes(0):
        for offset, threads in runs:
            buf, g, start = guarded(x.shape, offset, x.dtype)
            got = xent.softmax_cross_entropy(x, target, return_grad=True, grad_out=g, n_threads=threads,
                                             **kw)
            bitwise_equal(got[0], want[0])
            bitwise_equal(got[1], want[1])
            assert_guard(buf, start, x.size)
        inplace = x.copy()
        got = xent.softmax_cross_entropy(inplace, target, return_grad=True, grad_out=inplace, **kw)
        bitwise_equal(got[0], want[0])
        bitwise_equal(inplace, want[1])


def test_cross_entropy_with_smoothing(isa, rng):
    # label smoothing without class weights streams (one offset F eps / C)
    n, c = 300, 130
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    y = rng.integers(0, c, n)
    for kw in (dict(label_smoothing=0.1), {}):
        with _dispatch.use_stream_bytes(PLAIN):
            want = xent.softmax_cross_entropy(x, y, return_grad=True, **kw)
        with _dispatch.use_stream_bytes(0):
            for threads in (1, 2, 3):
                got = xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=threads, **kw)
                bitwise_equal(got[0], want[0])
                bitwise_equal(got[1], want[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [65, 96, 1000, 4099])
def test_softmax(isa, rng, c, dtype):
    n = 19
    x = special_rows((rng.standard_normal((n, c)) * 4).astype(dtype), rng)
    with _dispatch.use_stream_bytes(PLAIN):
        want = xent.softmax(x, n_threads=1)
        want_lse, want_p = xent.logsumexp(x, return_grad=True, n_threads=1)
    with _dispatch.use_stream_bytes(0):
        for offset, threads in [(0, 2), (3, 1), (8, 3), (13, 2)]:
            buf, out, start = guarded(x.shape, offset, dtype)
            xent.softmax(x, out=out, n_threads=threads)
            bitwise_equal(out, want)
            assert_guard(buf, start, x.size)
        lse, p = xent.logsumexp(x, return_grad=True, n_threads=2)
        bitwise_equal(lse, want_lse)
        bitwise_equal(p, want_p)
        inplace = x.copy()
        xent.softmax(inplace, out=inplace)
        bitwise_equal(inplace, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [65, 96, 1000, 4099])
def test_log_softmax(isa, rng, c, dtype):
    n = 19
    x = special_rows((rng.standard_normal((n, c)) * 4).astype(dtype), rng)
    x[5, 3] = np.finfo(dtype).max / 1.2  # a huge finite maximum
    with _dispatch.use_stream_bytes(PLAIN):
        want = xent.log_softmax(x, n_threads=1)
    with _dispatch.use_stream_bytes(0):
        for offset, threads in [(0, 2), (5, 1), (12, 3)]:
            buf, out, start = guarded(x.shape, offset, dtype)
            xent.log_softmax(x, out=out, n_threads=threads)
            bitwise_equal(out, want)
            assert_guard(buf, start, x.size)
        inplace = x.copy()
        xent.log_softmax(inplace, out=inplace, n_threads=2)
        bitwise_equal(inplace, want)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 1000, 16384, 16384 * 2 + 5, 50000])
def test_binary_cross_entropy_gradient(isa, rng, n):
    x = (rng.standard_normal((2, n)) * 5).astype(np.float32)
    t = (rng.random((2, n)) < 0.4).astype(np.float32)
    x[0, 0] = np.nan
    for reduction in ("mean", "none"):
        with _dispatch.use_stream_bytes(PLAIN):
            want = xent.binary_cross_entropy_with_logits(x, t, reduction=reduction, return_grad=True, n_threads=1)
        with _dispatch.use_stream_bytes(0):
            for offset, threads in [(0, 1), (2, 2), (9, 3), (15, 2)]:
                buf, g, start = guarded(x.shape, offset)
                got = xent.binary_cross_entropy_with_logits(x, t, reduction=reduction, return_grad=True,
                                                            grad_out=g, n_threads=threads)
                bitwise_equal(got[0], want[0])
                bitwise_equal(got[1], want[1])
                assert_guard(buf, start, x.size)


def test_show_config_reports_streaming(isa):
    want = 32 << 20 if isa == "avx512" else None
    assert xent.show_config("dicts")["stream_bytes"] == want
    # streamed only for float32 rows of 2048+ classes, float64 never (measured)
    classes = (2048, 2**63 - 1) if isa == "avx512" else None
    assert xent.show_config("dicts")["stream_classes"] == classes
    with _dispatch.use_stream_bytes(1 << 20, (3, 5)):
        if isa == "avx512":
            assert xent.show_config("dicts")["stream_classes"] == (3, 5)
    assert xent.show_config("dicts")["stream_classes"] == classes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c", [(20000, 65), (1500, 1000)])
def test_many_tasks_on_several_threads(isa, rng, n, c, dtype):
    # several tasks of STREAM_TASK (262144) values per thread: each thread's
    # pending row carries over from one task to the next, and the threads
    # stream at once (the Python layer uses at most the cores there are; the
    # kernel is called directly with more threads than that too)
    from xent._dispatch import kernel
    from xent import _kernels as sm

    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    x[7] = -np.inf
    x[n // 2, 3] = np.inf
    y = rng.integers(0, c, n)
    y[::17] = -100
    with _dispatch.use_stream_bytes(PLAIN):
        want_ce = xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=1)
        want_sm = xent.softmax(x, n_threads=1)
        want_lsm = xent.log_softmax(x, n_threads=1)
    with _dispatch.use_stream_bytes(0):
        for threads in (2, 3):
            buf, g, start = guarded(x.shape, 5, dtype)
            got = xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=g, n_threads=threads)
            bitwise_equal(got[0], want_ce[0])
            bitwise_equal(got[1], want_ce[1])
            assert_guard(buf, start, x.size)
            bitwise_equal(xent.softmax(x, n_threads=threads), want_sm)
            bitwise_equal(xent.log_softmax(x, n_threads=threads), want_lsm)
        for threads in (4, 5):
            p = np.empty_like(x)
            lse = np.empty(n, dtype=dtype)
            kernel("softmax_rows", dtype)(x, p, threads, lse)
            bitwise_equal(p, want_sm)
            out = np.empty_like(x)
            kernel("log_softmax_rows", dtype)(x, out, threads)
            bitwise_equal(out, want_lsm)


def long_rows(rng, dtype, c):
    """Long rows (split into chunks) with the special cases of the chunked path:
    all -inf, +inf, NaN, a chunk of -inf only in a finite row, a huge maximum."""
    from xent import _kernels as sm
    x = special_rows((rng.standard_normal((11, c)) * 4).astype(dtype), rng)
    x[5, sm.row_chunk:2 * sm.row_chunk] = -np.inf
    x[6, 3] = np.finfo(dtype).max / 1.2
    x[7, sm.row_chunk + 1:] -= 300  # the rest of the row underflows against its max
    return x


def long_sizes():
    from xent import _kernels as sm
    return [sm.long_row, sm.long_row + sm.row_chunk + 5, 262144]  # the last: 16 chunks


def test_long_rows_stream_where_expected(isa):
    # (so that the tests below compare streamed rows with plain ones)
    from xent import _kernels as sm
    with _dispatch.use_stream_bytes(0):
        for c in long_sizes():
            for threads in (1, 2):
                assert sm.long_rows_stream(11, c, 4, threads) == (isa == "avx512")
                assert sm.long_rows_stream(11, c, 8, threads) == (isa == "avx512" and c <= 131072)
            assert not sm.long_rows_stream(7, c, 4, 2)  # fewer than 4 rows a thread: by chunks
        assert not sm.long_rows_stream(11, 262144 + 1, 4, 1)  # exps beyond 1 MiB a row
    assert not sm.long_rows_stream(11, long_sizes()[0], 4, 1)  # 2.9 MB: below 32 MiB


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_long_rows_softmax_and_log_softmax(isa, rng, which, dtype):
    # enough long rows for the threads: a row per task, its chunks' outputs
    # written while the thread's next row is computed (several rows a thread)
    x = long_rows(rng, dtype, long_sizes()[which])
    with _dispatch.use_stream_bytes(PLAIN):
        want_sm = xent.softmax(x, n_threads=1)
        want_lsm = xent.log_softmax(x, n_threads=1)
    with np.errstate(invalid="ignore"), _dispatch.use_stream_bytes(0):
        for offset, threads in [(0, 1), (3, 2), (9, 2)]:
            for fn, want in ((xent.softmax, want_sm), (xent.log_softmax, want_lsm)):
                buf, out, start = guarded(x.shape, offset, dtype)
                fn(x, out=out, n_threads=threads)
                bitwise_equal(out, want)
                assert_guard(buf, start, x.size)
        for fn, want in ((xent.softmax, want_sm), (xent.log_softmax, want_lsm)):
            inplace = x.copy()
            fn(inplace, out=inplace, n_threads=2)
            bitwise_equal(inplace, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "weights", "ignored", "z_loss", "huge_grad", "smoothing", "probs"])
def test_long_rows_cross_entropy_gradient(isa, rng, case, dtype):
    x = long_rows(rng, dtype, long_sizes()[1])
    n, c = x.shape
    y = rng.integers(0, c, n)
    y[5] = 16384 + 7  # a target in the chunk of -inf only
    y[6] = 5  # a target in the chunk of the huge maximum (kept plain for huge_grad)
    kw = {}
    if case == "weights":
        kw = dict(weight=rng.random(c) + 0.5, sample_weight=np.where(np.arange(n) % 4 == 0, 0.0, 1.5))
    elif case == "ignored":
        y[::3] = -100
    elif case == "z_loss":
        kw = dict(z_loss=1e-3)
    elif case == "huge_grad":  # gradient scales beyond 1e38 in some rows
        kw = dict(reduction="none", grad_loss=np.where(np.arange(n) % 2 == 0, 3e38, 1.0))
    elif case == "smoothing":  # stays on the plain path
        kw = dict(label_smoothing=0.1)
    target = rng.dirichlet(np.ones(c), size=n).astype(dtype) if case == "probs" else y
    with np.errstate(invalid="ignore"):
        assert_cross_entropy_streams(x, target, kw, [(0, 1), (5, 2), (15, 2)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [65, 1000, long_sizes()[1]])
def test_softmax_focal_loss_gradient(isa, rng, c, dtype):
    """The focal loss of labels streams as the cross-entropy does (the same
    pending-row machinery, its own terms): the plain path's bits."""
    n = 9 if c > 10000 else 23
    x = special_rows((rng.standard_normal((n, c)) * 4).astype(dtype), rng)
    y = rng.integers(0, c, n)
    y[::4] = -100
    kw = dict(gamma=2.0, alpha=rng.random(c) + 0.5, reduction="none", grad_loss=rng.standard_normal(n))
    with np.errstate(invalid="ignore"):
        with _dispatch.use_stream_bytes(PLAIN):
            want = xent.softmax_focal_loss(x, y, return_grad=True, n_threads=1, **kw)
        with _dispatch.use_stream_bytes(0):
            for offset, threads in [(0, 1), (5, 2), (15, 3)]:
                buf, g, start = guarded(x.shape, offset, x.dtype)
                got = xent.softmax_focal_loss(x, y, return_grad=True, grad_out=g, n_threads=threads, **kw)
                bitwise_equal(got[0], want[0])
                bitwise_equal(got[1], want[1])
                assert_guard(buf, start, x.size)
