"""xent.dask and the partial statistics under it: graphs on the synchronous
scheduler, and a real dask.distributed LocalCluster of 2 worker processes
(bigger-than-memory input, a worker killed mid-computation, scikit-learn's
log_loss on uneven chunks)."""

import os
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

import xent
from xent import _kernels  # noqa: F401  (a missing compiled extension fails here)

dask = pytest.importorskip("dask")  # the optional peer; xent itself must import
da = pytest.importorskip("dask.array")
import xent.dask as xd  # noqa: E402

# one worker runs this module: the cluster fixture is started once
pytestmark = pytest.mark.xdist_group("dask")

RNG = np.random.default_rng(20261207)
TOL = {np.float32: 1e-6, np.float64: 1e-13}


@pytest.fixture(autouse=True)
def _seeded_rng(request):
    """Each test draws the same data whatever order the tests run in."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def sync(*arrays):
    return dask.compute(*arrays, scheduler="synchronous")


def close(a, b, dtype):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    fin = np.isfinite(b)
    assert np.array_equal(a[~fin & ~np.isnan(b)], b[~fin & ~np.isnan(b)])
    scale = max(1.0, float(np.max(np.abs(b[fin])))) if fin.any() else 1.0
    # a gradient entry is a difference f (k p - a) of terms up to the row's
    # scale: its rounding is absolute, a few ulps of that scale (a cancelled
    # entry has no relative accuracy to compare against)
    atol = 8 * float(np.finfo(dtype).eps) * scale
    np.testing.assert_allclose(a[fin], b[fin], rtol=TOL[dtype], atol=atol)


def logits_with_holes(n, c, dtype):
    x = (RNG.standard_normal((n, c)) * 4).astype(dtype)
    x[1, : c // 2] = -np.inf          # a class block entirely -inf for this row
    x[2, c // 3:] = -np.inf
    x[4] += 300                        # a large common offset
    return x


CHUNKINGS = [
    ("rows only", (7, -1)),
    ("one class a chunk", (9, 1)),
    ("uneven classes", ((5, 17, 8, 7), (3, 20, 1, 13))),
    ("even", (10, 12)),
]
OPTION_SETS = [
    {},
    {"ignore_index": 3},
    {"weight": "w", "sample_weight": "sw", "label_smoothing": 0.15, "z_loss": 1e-3},
    {"label_smoothing": 1.0, "reduction": "sum"},
    {"weight": "w", "reduction": "none"},
]


def _opts(opts, w, sw):
    o = dict(opts)
    if o.get("weight") == "w":
        o["weight"] = w
    if o.get("sample_weight") == "sw":
        o["sample_weight"] = sw
    return o


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label,chunks", CHUNKINGS, ids=[c[0] for c in CHUNKINGS])
@pytest.mark.parametrize("oi", range(len(OPTION_SETS)))
def test_softmax_cross_entropy_matches_in_memory(dtype, label, chunks, oi):
    n, c = 37, 37
    x = logits_with_holes(n, c, dtype)
    y = RNG.integers(0, c, n)
    y[[0, 6, 11]] = 3
    y[2] = 0  # a label where its row is finite
    w = RNG.random(c) + 0.25
    sw = RNG.random(n) + 0.1
    opts = _opts(OPTION_SETS[oi], w, sw)
    opts.setdefault("reduction", "mean")
    X = da.from_array(x, chunks=chunks)
    loss, grad = xd.softmax_cross_entropy(X, y, return_grad=True, **opts)
    assert isinstance(loss, da.Array) and isinstance(grad, da.Array)
    assert grad.chunks == X.chunks
    rl, rg = xent.softmax_cross_entropy(x, y, return_grad=True, **opts)
    got_l, got_g = sync(loss, grad)
    assert np.asarray(got_l).dtype == np.asarray(rl).dtype and got_g.dtype == rg.dtype
    if X.numblocks[1] == 1 and opts["reduction"] == "none":
        # rows only: the per-sample losses and the gradient bit for bit
        assert np.array_equal(got_l, rl) and np.array_equal(got_g, rg)
    elif X.numblocks[1] == 1 and "sample_weight" not in opts:
        assert np.array_equal(got_g, rg)
        close(got_l, rl, dtype)
    else:
        close(got_l, rl, dtype)
        close(got_g, rg, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_targets_and_class_axis(dtype):
    x = logits_with_holes(12, 30, dtype)
    p = RNG.random((12, 30)).astype(dtype)
    p /= p.sum(1, keepdims=True)
    p[1, :15] = 0  # no mass where the row is -inf
    p[2, 10:] = 0
    sw = RNG.random(12)
    for chunks in [(5, 7), (12, 30)]:
        X, P = da.from_array(x, chunks=chunks), da.from_array(p, chunks=(4, 30))
        got = sync(*xd.softmax_cross_entropy(X, P, sample_weight=sw, label_smoothing=0.1,
                                             z_loss=1e-2, return_grad=True))
        ref = xent.softmax_cross_entropy(x, p, sample_weight=sw, label_smoothing=0.1, z_loss=1e-2,
                                         return_grad=True)
        close(got[0], ref[0], dtype)
        close(got[1], ref[1], dtype)
    # class axis 0 (PyTorch's (C, N) is axis=0 here): moved, never rechunked
    y = RNG.integers(0, 30, 12)
    X = da.from_array(np.ascontiguousarray(x.T), chunks=(7, 5))
    got = sync(*xd.softmax_cross_entropy(X, y, axis=0, return_grad=True))
    ref = xent.softmax_cross_entropy(x.T, y, axis=0, return_grad=True)
    close(got[0], ref[0], dtype)
    close(got[1], ref[1], dtype)
    assert got[1].shape == x.T.shape


@pytest.mark.parametrize("split_every", [2, 3, 8])
def test_split_every_and_many_class_blocks(split_every):
    x = logits_with_holes(6, 64, np.float64)
    y = RNG.integers(0, 64, 6)
    X = da.from_array(x, chunks=(3, 3))  # 22 class blocks: a tree of several levels
    got = sync(*xd.softmax_cross_entropy(X, y, return_grad=True, split_every=split_every,
                                         reduction="none"))
    ref = xent.softmax_cross_entropy(x, y, return_grad=True, reduction="none")
    close(got[0], ref[0], np.float64)
    close(got[1], ref[1], np.float64)


def _layers_reading(arr, name):
    graph = arr.__dask_graph__()
    return [k for k, deps in graph.dependencies.items() if name in deps]


def test_the_class_axis_is_never_rechunked_or_concatenated():
    x = RNG.standard_normal((40, 50)).astype(np.float32)
    X = da.from_array(x, chunks=(10, 16))
    y = da.from_array(RNG.integers(0, 50, 40), chunks=13)  # targets: rechunked to the rows
    loss, grad = xd.softmax_cross_entropy(X, y, return_grad=True, label_smoothing=0.1)
    readers = set(_layers_reading(grad, X.name)) | set(_layers_reading(loss, X.name))
    assert readers, "the logits are read"
    for layer in readers:
        assert layer.startswith(("stats_block", "grad_block")), layer
    # and the targets were rechunked to the logits' rows, not the other way
    assert any(k.startswith("rechunk") for k in _layers_reading(grad, y.name))


def test_log_sum_exp_family_and_nll():
    for dtype in (np.float32, np.float64):
        x = logits_with_holes(20, 33, dtype)
        x[3] = -np.inf
        for chunks in [(6, -1), (6, (10, 1, 22)), (20, 4)]:
            X = da.from_array(x, chunks=chunks)
            lse, g = sync(*xd.logsumexp(X, return_grad=True))
            rl, rg = xent.logsumexp(x, return_grad=True)
            close(lse, rl, dtype)
            close(g, rg, dtype)
            close(sync(xd.softmax(X))[0], xent.softmax(x), dtype)
            close(sync(xd.log_softmax(X))[0], xent.log_softmax(x), dtype)
            assert sync(xd.logsumexp(X, keepdims=True))[0].shape == (20, 1)
        lp = xent.log_softmax(logits_with_holes(20, 33, dtype))
        y = RNG.integers(0, 33, 20)
        y[1] = 30  # a -inf log-probability with mass: +inf
        w = RNG.random(33)
        for chunks in [(6, -1), (7, 5)]:
            LP = da.from_array(lp, chunks=chunks)
            got = sync(*xd.nll_loss(LP, y, weight=w, label_smoothing=0.2, return_grad=True,
                                    reduction="none"))
            ref = xent.nll_loss(lp, y, weight=w, label_smoothing=0.2, return_grad=True,
                                reduction="none")
            close(got[0], ref[0], dtype)
            close(got[1], ref[1], dtype)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_on_class_chunks_with_non_finite_log_probabilities(label_smoothing, weighted):
    # without smoothing only the label's entry is read, as in memory (a NaN
    # elsewhere does not count); with it, a row holding a NaN or a +inf is NaN
    # (the statistics do not say where the mass is), the others as in memory
    lp = np.log(RNG.dirichlet(np.ones(8), size=9))
    y = np.arange(9) % 8
    lp[0, 5] = np.nan  # NaN away from the label
    lp[1, 1] = np.inf  # +inf at the label
    lp[2, 2] = -np.inf  # -inf at the label
    lp[3, 0] = np.inf  # +inf away from it
    lp[4, 4] = np.nan  # NaN at the label
    lp[5, :] = -np.inf
    lp[6, 0], lp[6, 6] = np.inf, -np.inf
    lp[7, 3] = -np.inf
    w = RNG.random(8) + 0.5 if weighted else None
    ref = xent.nll_loss(lp, y, weight=w, label_smoothing=label_smoothing, reduction="none")
    if label_smoothing:
        ref[[0, 1, 3, 4, 6]] = np.nan
    else:
        assert np.isfinite(ref[0])  # (the case the class chunks got wrong)
    for chunks in [(3, 3), (9, (2, 5, 1))]:
        got = sync(xd.nll_loss(da.from_array(lp, chunks=chunks), y, weight=w,
                               label_smoothing=label_smoothing, reduction="none"))[0]
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elementwise_losses_bit_identical(reduction):
    x = RNG.standard_normal((30, 17)).astype(np.float32) * 5
    t = (RNG.random((30, 17)) < 0.3).astype(np.float32)
    pw = RNG.random(17) + 0.5
    X, T = da.from_array(x, chunks=(7, 5)), da.from_array(t, chunks=(11, 17))
    for fn, data, opts in [
        ("binary_cross_entropy_with_logits", x, dict(pos_weight=pw, label_smoothing=0.1)),
        ("binary_cross_entropy", 1 / (1 + np.exp(-x)), dict(weight=pw)),
    ]:
        D = da.from_array(data, chunks=(7, 5))
        got = sync(*getattr(xd, fn)(D, T, reduction=reduction, return_grad=True, **opts))
        ref = getattr(xent, fn)(data, t, reduction=reduction, return_grad=True, **opts)
        assert np.array_equal(got[1], ref[1])
        if reduction == "none":
            assert np.array_equal(got[0], ref[0])
        else:
            close(got[0], ref[0], np.float32)
    sw = RNG.random(30)
    X = da.from_array(x, chunks=(7, -1))
    got = sync(*xd.multilabel_cross_entropy(X, T, sample_weight=sw, class_reduction="mean",
                                            reduction=reduction, return_grad=True))
    ref = xent.multilabel_cross_entropy(x, t, sample_weight=sw, class_reduction="mean",
                                        reduction=reduction, return_grad=True)
    close(got[0], ref[0], np.float32)
    close(got[1], ref[1], np.float32)


def test_numpy_functions_return_dask_for_dask():
    x = RNG.standard_normal((8, 6))
    X = da.from_array(x, chunks=(3, 4))
    y = np.arange(8) % 6
    r = xent.softmax_cross_entropy(X, y, return_grad=True)
    assert isinstance(r[0], da.Array) and isinstance(r[1], da.Array)
    close(sync(r[0])[0], xent.softmax_cross_entropy(x, y), np.float64)
    assert isinstance(xent.logsumexp(X), da.Array)
    b = xent.binary_cross_entropy_with_logits(X, (X > 0).astype(np.float64))
    assert isinstance(b, da.Array)
    close(sync(b)[0], xent.binary_cross_entropy_with_logits(x, (x > 0).astype(np.float64)),
          np.float64)  # (a mean summed in another order: equal to rounding)
    with pytest.raises(TypeError, match="xent.dask has"):
        xent.entropy(X)


def test_partials_merge_is_associative_and_inf_safe():
    x = logits_with_holes(9, 40, np.float64)
    x[5] = -np.inf
    x[6, 7] = np.inf
    cuts = [0, 3, 4, 20, 21, 40]
    blocks = [xent.softmax_partials(x[:, a:b], class_offset=a, n_classes=40)
              for a, b in zip(cuts, cuts[1:])]
    left = blocks[0]
    for b in blocks[1:]:
        left = xent.merge_partials(left, b)
    right = blocks[-1]
    for b in reversed(blocks[:-1]):
        right = xent.merge_partials(b, right)
    flat = xent.merge_partials(*blocks)
    for st in (left, right, flat):
        lse = xent.logsumexp_from_partials(st)
        close(lse, xent.logsumexp(x), np.float64)
    empty = xent.softmax_partials(np.empty((9, 0)), class_offset=40, n_classes=40)
    assert np.array_equal(xent.merge_partials(flat, empty)[:, [0, 1]], flat[:, [0, 1]])


def test_partials_keep_relative_accuracy_of_a_confident_prediction():
    # the loss exp(-40) ~ 4.25e-18 is lost by log(sum) - x_t; log1p of the others keeps it
    x = np.array([[0.0, -40.0, -41.0, -45.0]])
    st = xent.merge_partials(xent.softmax_partials(x[:, :2], np.array([0]), n_classes=4),
                             xent.softmax_partials(x[:, 2:], np.array([0]), class_offset=2))
    loss = xent.softmax_cross_entropy_from_partials(st, np.array([0]), n_classes=4)
    exact = np.log1p(np.exp(-40.0) + np.exp(-41.0) + np.exp(-45.0))
    assert abs(loss[0] - exact) <= 1e-15 * exact
    assert xent.logsumexp_from_partials(st)[0] == pytest.approx(exact, rel=1e-15)


def test_bad_input():
    x = RNG.standard_normal((10, 8))
    X = da.from_array(x, chunks=(5, 4))
    with pytest.raises(ValueError, match="target.*batch shape"):
        xd.softmax_cross_entropy(X, np.arange(9) % 8)
    unknown = X[da.from_array(x[:, 0] > 0)]
    with pytest.raises(ValueError, match=r"logits.*compute_chunk_sizes\(\)"):
        xd.softmax_cross_entropy(unknown, np.arange(3))
    bad = np.arange(10) % 8
    bad[7] = 8
    loss = xd.softmax_cross_entropy(X, bad)  # built lazily; raised when computed
    with pytest.raises(ValueError, match="target.*8"):
        sync(loss)
    with pytest.raises(ValueError, match="reduction"):
        xd.softmax_cross_entropy(X, bad, reduction="avg")
    with pytest.raises(TypeError, match="axis"):
        xd.logsumexp(X, axis=(0, 1))
    with pytest.raises(TypeError, match="x: expected a floating-point array.*complex128"):
        xd.softmax(X.astype(complex))  # at call time, not when computed
    with pytest.raises(ValueError, match="softcap"):
        xd.softmax_cross_entropy(X, np.arange(10) % 8, softcap=5.0)
    for args in [dict(class_offset=-1), dict(n_classes=2)]:
        with pytest.raises(ValueError, match=next(iter(args))):
            xent.softmax_partials(x, **args)
    with pytest.raises(ValueError, match="partials"):
        xent.merge_partials(np.zeros((3, 4)))


def test_without_dask_the_import_says_how_to_install():
    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
            "try:\n    import xent.dask\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert 'pip install "xent[dask]"' in out.stdout, out.stderr


# ---------------------------------------------------------------- LocalCluster

MEMORY_LIMIT = 250e6


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # (distributed sets OMP_NUM_THREADS & co. in this process too: put them back)
    saved = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit=MEMORY_LIMIT, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(saved)


def test_cluster_cross_entropy_and_threads(client):
    x = logits_with_holes(64, 50, np.float32)
    y = RNG.integers(0, 50, 64)
    X = da.from_array(x, chunks=(16, 20))
    loss, grad = client.compute(xd.softmax_cross_entropy(X, y, return_grad=True,
                                                         label_smoothing=0.1), sync=True)
    ref = xent.softmax_cross_entropy(x, y, return_grad=True, label_smoothing=0.1)
    close(loss, ref[0], np.float32)
    close(grad, ref[1], np.float32)
    # a Nanny-spawned worker has OMP_NUM_THREADS=1 (distributed's pre-spawn-environ)
    assert set(client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()) == {"1"}


def test_cluster_log_loss_equals_scikit_learn_on_uneven_chunks(client):
    metrics = pytest.importorskip("sklearn.metrics")
    n = 101
    classes = np.array(["cat", "dog", "emu"])
    y = classes[RNG.integers(0, 3, n)]
    p = RNG.random((n, 3)) + 0.05
    p /= p.sum(1, keepdims=True)
    sw = RNG.random(n)
    Y = da.from_array(y, chunks=((10, 60, 31),))
    P = da.from_array(p, chunks=((50, 51), (3,)))
    got = client.compute(xd.log_loss(Y, P, sample_weight=sw), sync=True)
    assert float(got) == pytest.approx(metrics.log_loss(y, p, sample_weight=sw), rel=1e-12)
    got = client.compute(xd.log_loss(Y, P, normalize=False), sync=True)
    assert float(got) == pytest.approx(metrics.log_loss(y, p, normalize=False), rel=1e-12)
    assert float(xent.metrics.log_loss(Y, P).compute(scheduler="synchronous")) == \
        pytest.approx(metrics.log_loss(y, p), rel=1e-12)


def _lazy_logits(n, c, chunks, seed):
    rng = da.random.default_rng(seed)
    return rng.standard_normal((n, c), chunks=chunks, dtype=np.float32) * 3


@pytest.mark.slow
def test_cluster_bigger_than_memory(client):
    # 4x the workers' total memory limit, generated lazily, never all in memory
    n, c, chunks = 8192, 65536, (256, 8192)
    assert n * c * 4 >= 4 * 2 * MEMORY_LIMIT
    X = _lazy_logits(n, c, chunks, 7)
    y = da.from_array(np.arange(n) * 7919 % c, chunks=1024)
    pids = set(client.run(os.getpid).values())
    loss, grad = xd.softmax_cross_entropy(X, y, return_grad=True)
    loss, gsum = client.compute([loss, grad.sum(dtype=np.float64)], sync=True)
    assert set(client.run(os.getpid).values()) == pids, "no worker was killed or restarted"
    # the same, row block by row block, in this process
    total, gtotal = 0.0, 0.0
    yy = np.arange(n) * 7919 % c
    for i in range(0, n, chunks[0]):
        xb = X[i:i + chunks[0]].compute(scheduler="synchronous")
        lb, gb = xent.softmax_cross_entropy(xb, yy[i:i + chunks[0]], reduction="sum",
                                            return_grad=True)
        total += float(lb)
        gtotal += float(gb.sum(dtype=np.float64))
    assert float(loss) == pytest.approx(total / n, rel=1e-6)
    assert gsum == pytest.approx(gtotal / n, abs=1e-6)


def test_cluster_survives_a_killed_worker(client):
    n, c = 4096, 16384
    X = _lazy_logits(n, c, (256, 4096), 11)
    y = da.from_array(np.arange(n) % c, chunks=512)
    loss = xd.softmax_cross_entropy(X, y)
    future = client.compute(loss)
    # wait until the computation has started (some task done), then kill a worker
    deadline = time.time() + 60
    while time.time() < deadline:
        done = client.run_on_scheduler(
            lambda dask_scheduler: sum(ts.state == "memory" for ts in dask_scheduler.tasks.values()))
        if done > 0 or future.done():
            break
        time.sleep(0.02)
    assert not future.done(), "the computation finished before a worker could be killed"
    pid = next(iter(client.run(os.getpid).values()))
    os.kill(pid, signal.SIGKILL)
    got = future.result(timeout=300)
    ref = xd.softmax_cross_entropy(X, y).compute(scheduler="synchronous")
    assert float(got) == pytest.approx(float(ref), rel=1e-12)
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_block_gradient_from_the_exps_equals_the_one_from_the_logits(dtype):
    x = logits_with_holes(10, 24, np.float64).astype(dtype)
    x[6, 5] = np.inf
    x[7, :] = -np.inf
    y = RNG.integers(0, 24, 10)
    y[1] = 20
    cuts = [0, 7, 8, 24]
    kw = dict(n_classes=24, label_smoothing=0.05)
    parts = [xent.softmax_partials(x[:, a:b], y, class_offset=a, return_exps=True, **kw)
             for a, b in zip(cuts, cuts[1:])]
    st = xent.merge_partials(*(p[0] for p in parts))
    for (a, b), (bst, e) in zip(zip(cuts, cuts[1:]), parts):
        assert e.dtype == (np.float32 if dtype == np.float16 else dtype)
        ref = xent.softmax_cross_entropy_block_grad(x[:, a:b], st, y, class_offset=a, z_loss=0.01,
                                                    grad_loss=0.5, **kw)
        got = xent.softmax_cross_entropy_block_grad(None, st, y, class_offset=a, z_loss=0.01,
                                                    grad_loss=0.5, exps=e, block_partials=bst,
                                                    out=e, **kw)
        assert got is e  # in place
        close(got.astype(dtype), ref, np.float32 if dtype != np.float64 else np.float64)
    with pytest.raises(TypeError, match="exps, block_partials"):
        xent.softmax_cross_entropy_block_grad(x[:, :7], st, y, exps=parts[0][1], **kw)


def test_bench_dask_section_runs():
    pytest.importorskip("distributed")
    out = subprocess.run([sys.executable, "-m", "xent", "bench", "--dask", "--quick", "--repeats",
                          "3"], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("xent in memory, 2 threads", "xent.dask", "NumPy on Dask", "tasks in the graph"):
        assert name in out.stdout, out.stdout


def test_review_cases_match_the_in_memory_functions():
    """Edge cases where the graph once differed from the NumPy functions."""
    D = da.from_array
    ml = pytest.importorskip("ml_dtypes")
    xi, y2 = np.arange(12).reshape(2, 6), np.array([0, 1])
    for chunks in [(1, 3), (1, 6)]:  # integer logits: promoted to float64
        close(sync(xd.logsumexp(D(xi, chunks)))[0], xent.logsumexp(xi), np.float64)
        got = sync(*xd.softmax_cross_entropy(D(xi, chunks), y2, return_grad=True))
        ref = xent.softmax_cross_entropy(xi, y2, return_grad=True)
        assert got[1].dtype == np.float64
        close(got[0], ref[0], np.float64)
        close(got[1], ref[1], np.float64)
    x16 = RNG.standard_normal((4, 6)).astype(np.float16)
    y4 = np.arange(4)
    assert sync(xd.softmax_cross_entropy(D(x16, (2, 3)), y4))[0].dtype == np.float16
    x = RNG.standard_normal((4, 6))
    xinf = np.array([[-np.inf, 1.0, 2, 3], [0, 1, 2, 3]])
    xnan = np.array([[np.nan, 1.0, 2, 3], [0, 1, 2, 3]])
    cases = [
        (x, y4, dict(sample_weight=np.full(4, 1e-310))),            # subnormal denominator
        (x, y4, dict(weight=np.full(6, 1e-310))),                   # ... from class weights
        (xinf, np.array([0, 2]), dict(sample_weight=[0.0, 1.0])),   # weight 0 on an inf loss
        (xnan, np.array([0, 2]), dict(weight=[0.0, 1, 1, 1], reduction="none")),  # NaN row
        (xnan, np.array([0, 2]), dict(weight=[0.0, 1, 0, 1])),      # zero denominator
        (np.array([[np.inf, 0.0, 1, 2]]), np.array([0]), dict(z_loss=0.01, reduction="sum")),
        (np.array([[0.0, 1, 2, 3]]), np.array([[0.5, -0.5, 0, 0]]), dict(reduction="none")),
    ]
    for xx, t, opts in cases:
        for chunks in [(1, 2), (2, -1)]:
            T = D(t, (1, 2)) if t.dtype.kind == "f" else t
            got = sync(*xd.softmax_cross_entropy(D(xx, chunks), T, return_grad=True, **opts))
            ref = xent.softmax_cross_entropy(xx, t, return_grad=True, **opts)
            close(got[0], ref[0], np.float64)
            close(got[1], ref[1], np.float64)
    xb = RNG.standard_normal((4, 6)).astype(ml.bfloat16)  # bfloat16, classes chunked
    got = sync(*xd.softmax_cross_entropy(D(xb, (2, 3)), y4, return_grad=True))
    assert got[1].dtype == xb.dtype
    assert float(got[0]) == pytest.approx(float(xent.softmax_cross_entropy(xb, y4)), rel=2**-7)
    assert sync(xd.softmax(D(xb, (2, 3))))[0].dtype == xb.dtype
    t = (RNG.random((4, 6)) > 0.5).astype(np.float64)
    got = sync(xd.binary_cross_entropy_with_logits(D(x, (2, 3)), t, pos_weight=np.array([2.0])))
    close(got[0], xent.binary_cross_entropy_with_logits(x, t, pos_weight=np.array([2.0])), np.float64)
    yl, pp = np.array([0, 1, 2, 0, 1, 2]), RNG.random((6, 3)) + 0.1
    pp /= pp.sum(1, keepdims=True)
    sw = [0, 0, 0, 1, 2, 3]  # one row block all of weight 0
    assert float(sync(xd.log_loss(D(yl, 3), D(pp, (3, 3)), sample_weight=sw))[0]) == \
        pytest.approx(xent.metrics.log_loss(yl, pp, sample_weight=sw), rel=1e-12)
    assert float(sync(xd.log_loss(D(yl[:, None], 2), pp))[0]) == \
        pytest.approx(xent.metrics.log_loss(yl, pp), rel=1e-12)
    with pytest.warns(FutureWarning):
        assert float(sync(xent.metrics.log_loss(D(yl, 2), y_pred=pp))[0]) == \
            pytest.approx(xent.metrics.log_loss(yl, pp), rel=1e-12)


@pytest.mark.parametrize("bad", [dict(label_smoothing=2), dict(z_loss=-1), dict(weight=np.ones(3)),
                                 dict(ignore_index=1.5), dict(n_threads=0), dict(split_every=1),
                                 dict(reduction="none", return_grad=True, grad_loss=np.ones(3))])
def test_options_are_checked_at_call_time(bad):
    X = da.from_array(RNG.standard_normal((4, 6)), chunks=(2, 3))
    with pytest.raises((TypeError, ValueError), match=next(iter(bad)) if "grad_loss" not in bad
                       else "grad_loss"):
        xd.softmax_cross_entropy(X, np.arange(4), **bad)  # not computed: raised while building
