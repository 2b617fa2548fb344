"""Thread policy and determinism."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xent
from xent import _threads
from xent import _kernels as kernels

OPENMP = kernels.openmp_enabled()


def test_resolution_of_n_threads():
    cores = _threads.cpu_count()
    assert _threads.requested_threads(1) == 1
    assert _threads.requested_threads(cores) == cores
    assert _threads.requested_threads(10**6) == cores  # capped at the cores
    assert _threads.requested_threads(-1) == cores
    assert _threads.requested_threads(-cores) == 1
    assert _threads.requested_threads(-1000) == 1
    assert _threads.requested_threads(np.int64(2)) == 2
    assert _threads.requested_threads(None) == max(1, kernels.omp_max_threads())


def test_small_inputs_stay_on_one_thread():
    assert _threads.threads_for(8, 10, 100) == 1
    assert _threads.threads_for(8, 100, _threads.MIN_PARALLEL_ELEMENTS - 1) == 1
    assert _threads.threads_for(8, 1, 10**6) == 1  # never more threads than rows (tasks)
    assert _threads.threads_for(2, 10**4, 10**6) == min(2, _threads.cpu_count())


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
def test_kernels_really_start_the_requested_threads():
    assert kernels.threads_used(1) == 1
    assert kernels.threads_used(2) == 2


def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _threads.requested_threads(None) == 1
        assert xent.show_config("dicts")["threads"] == 1


def test_omp_num_threads_is_honoured():
    code = textwrap.dedent("""
        import xent
        print(xent.show_config('dicts')['threads'])
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "1"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(513, 301), (4099, 10), (10, 70001)],
                         ids=["row-path", "small-class-path", "long-row-path"])
def test_results_are_bit_identical_for_any_thread_count(dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 8).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    x[5, :] = -np.inf
    x[7, 3] = np.nan
    x[9, 2] = np.inf
    runs = {}
    for n in (1, 2, 3, -1, None):
        lse, p = xent.logsumexp(x, return_grad=True, n_threads=n)
        runs[n] = [lse, p, xent.logsumexp(x, n_threads=n), xent.log_softmax(x, n_threads=n),
                   xent.softmax(x, axis=0, n_threads=n),
                   xent.softmax_backward(p, g, n_threads=n),
                   xent.log_softmax_backward(xent.log_softmax(x), g, n_threads=n)]
    for n, res in runs.items():
        for a, b in zip(res, runs[1]):
            assert a.tobytes() == b.tobytes(), n


def test_a_huge_thread_count_is_capped_not_a_crash():
    x = np.zeros((100_000, 4))
    np.testing.assert_array_equal(xent.logsumexp(x, n_threads=100_000), np.log(4.0))


def test_few_long_rows_are_split_along_the_classes():
    """One huge row still uses every thread: its chunks are the parallel tasks."""
    c = 1_000_000
    assert _threads.row_tasks(1, c) == -(-c // kernels.row_chunk) > 1
    assert _threads.row_tasks(5, kernels.long_row - 1) == 5  # shorter rows: one task each
    want = min(2, _threads.cpu_count())
    assert _threads.threads_for(2, _threads.row_tasks(1, c), c) == want


def _long_row_calls(x, labels, q, w, sw, n):
    return [
        xent.logsumexp(x, n_threads=n), xent.softmax(x, n_threads=n),
        xent.log_softmax(x, n_threads=n),
        *xent.softmax_cross_entropy(x, labels, reduction="none", return_grad=True, n_threads=n),
        *xent.softmax_cross_entropy(x, labels, weight=w, sample_weight=sw, label_smoothing=0.1,
                                    z_loss=1e-3, reduction="none", return_grad=True, n_threads=n),
        *xent.softmax_cross_entropy(x, q, label_smoothing=0.05, reduction="none",
                                    return_grad=True, n_threads=n),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_by_rows_or_by_chunks_give_the_same_bits(dtype):
    """Long rows run a whole row per task when there are enough rows for the
    threads, a chunk per task when there are few: each row of a batch of long
    rows is bit-identical to that row alone, on one thread or two, for every
    function that splits them (in-place gradients too)."""
    rng = np.random.default_rng(23)
    n, c = 10, kernels.long_row + kernels.row_chunk + 5  # a ragged last chunk
    x = (rng.standard_normal((n, c)) * 4).astype(dtype)
    x[1, kernels.row_chunk:] -= 300  # the max in the first chunk, the rest underflows
    x[2, :] = -np.inf
    x[3, [9, c - 1]] = np.inf
    x[4, 77] = np.nan
    labels = rng.integers(0, c, n)
    labels[5] = -100  # ignored
    q = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    w = rng.random(c) + 0.5
    sw = np.linspace(0.0, 2.0, n)  # row 0: weight 0
    with np.errstate(invalid="ignore"):
        batch = {nt: _long_row_calls(x, labels, q, w, sw, nt) for nt in (1, 2)}
        alone = [_long_row_calls(x[i:i + 1], labels[i:i + 1], q[i:i + 1], w, sw[i:i + 1], 1)
                 for i in range(n)]
        for a, b in zip(batch[1], batch[2]):
            assert a.tobytes() == b.tobytes()
        for k, out in enumerate(batch[1]):
            for i in range(n):
                assert out[i].tobytes() == alone[i][k][0].tobytes(), (k, i)
        y = x.copy()
        _, g = xent.softmax_cross_entropy(y, labels, reduction="none", return_grad=True, grad_out=y)
        assert g is y and y.tobytes() == batch[1][4].tobytes()


# ------------------------------------------- every public function, every reduction
#
# Inputs past MIN_PARALLEL_ELEMENTS (and with enough rows, or row chunks, for 8
# threads), with NaN and +-inf in some rows; thread counts 1, 2, 3 and 8, made
# real on any machine by letting _threads believe there are 8 cores (OpenMP
# then starts 8 threads on however many cores there are). A spy on
# threads_for checks that each call really ran its kernel on that many threads.

THREAD_COUNTS = (1, 2, 3, 8)


def _problem(dtype, n, c, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 4).astype(dtype)
    x[3 % n, 1] = np.nan
    x[5 % n, :] = -np.inf
    x[7 % n, 2] = np.inf
    x[9 % n, 0] = -np.inf
    labels = rng.integers(0, c, n)
    labels[::7] = -100
    probs = rng.dirichlet(np.ones(c), n).astype(dtype)
    probs[11 % n, 0] = 0.0
    probs[13 % n, 1] = np.nan
    hard = (rng.random((n, c)) > 0.5).astype(dtype)
    return dict(x=x, lp=xent.log_softmax(x), p=xent.softmax(x), q=probs, t=hard,
                soft=rng.random((n, c)).astype(dtype), labels=labels,
                labels_ok=np.where(labels < 0, 0, labels), g=rng.standard_normal((n, c)).astype(dtype),
                w=rng.uniform(0.5, 2, c), sw=rng.uniform(0, 2, n), pw=rng.uniform(0.5, 2, c),
                ew=rng.uniform(0, 2, (n, 1)))


@pytest.fixture(scope="module", params=[np.float32, np.float64])
def problems(request):
    dt = request.param
    return {"rows": _problem(dt, 600, 130, 1),      # the row path (C > 64)
            "small": _problem(dt, 5000, 10, 2),     # the small-class path, blocks of 16 rows
            "long": _problem(dt, 16, 40_000, 3),    # rows longer than the binary kernels' chunks
            "tall": _problem(dt, 40_000, 5, 4),     # row-count parallelism (labels gather)
            "split": _problem(dt, 4, kernels.long_row + 3000, 5)}  # rows split into chunks


def _case_table():
    """(id, problem, call(data, n_threads)) for every public function."""
    cases = []
    for shape in ("rows", "small"):
        cases += [
            (f"logsumexp-{shape}", shape, lambda d, n: xent.logsumexp(d["x"], n_threads=n)),
            (f"logsumexp-grad-{shape}", shape,
             lambda d, n: xent.logsumexp(d["x"], return_grad=True, n_threads=n)),
            (f"logsumexp-axis0-{shape}", shape,
             lambda d, n: xent.logsumexp(d["x"], axis=0, n_threads=n)),
            (f"softmax-{shape}", shape, lambda d, n: xent.softmax(d["x"], n_threads=n)),
            (f"log_softmax-{shape}", shape, lambda d, n: xent.log_softmax(d["x"], n_threads=n)),
            (f"softmax_backward-{shape}", shape,
             lambda d, n: xent.softmax_backward(d["p"], d["g"], n_threads=n)),
            (f"log_softmax_backward-{shape}", shape,
             lambda d, n: xent.log_softmax_backward(d["lp"], d["g"], n_threads=n)),
        ]
        for red in ("none", "sum", "mean"):
            cases += [
                (f"softmax_cross_entropy-labels-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.softmax_cross_entropy(
                     d["x"], d["labels"], weight=d["w"], sample_weight=d["sw"], label_smoothing=0.1,
                     z_loss=1e-3, reduction=r, return_grad=True, n_threads=n)),
                (f"softmax_cross_entropy-probs-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.softmax_cross_entropy(
                     d["x"], d["q"], weight=d["w"], label_smoothing=0.1, reduction=r,
                     return_grad=True, n_threads=n)),
                (f"nll_loss-labels-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.nll_loss(
                     d["lp"], d["labels"], weight=d["w"], sample_weight=d["sw"], label_smoothing=0.2,
                     reduction=r, return_grad=True, n_threads=n)),
                (f"nll_loss-probs-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.nll_loss(d["lp"], d["q"], reduction=r, return_grad=True,
                                                   n_threads=n)),
                (f"softmax_focal_loss-labels-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.softmax_focal_loss(
                     d["x"], d["labels"], gamma=2.0, alpha=d["w"] / 2, reduction=r,
                     return_grad=True, n_threads=n)),
                (f"softmax_focal_loss-probs-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.softmax_focal_loss(d["x"], d["q"], gamma=0.5, reduction=r,
                                                             return_grad=True, n_threads=n)),
                (f"cross_entropy-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.cross_entropy(d["q"], d["p"], eps=1e-7, reduction=r,
                                                        return_grad=True, n_threads=n)),
                (f"kl_divergence-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.kl_divergence(d["q"], d["p"], reduction=r,
                                                        return_grad=True, n_threads=n)),
                (f"entropy-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.entropy(d["p"], reduction=r, n_threads=n)),
            ]
    for shape in ("rows", "long"):
        for red in ("none", "sum", "mean"):
            cases += [
                (f"binary_cross_entropy_with_logits-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.binary_cross_entropy_with_logits(
                     d["x"], d["soft"], pos_weight=d["pw"], weight=d["ew"], label_smoothing=0.1,
                     reduction=r, return_grad=True, n_threads=n)),
                (f"binary_cross_entropy-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.binary_cross_entropy(
                     d["p"], d["t"], pos_weight=d["pw"], reduction=r, return_grad=True,
                     n_threads=n)),
                (f"multilabel_cross_entropy-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.multilabel_cross_entropy(
                     d["x"], d["t"], sample_weight=d["sw"][:len(d["x"])], class_reduction="mean",
                     reduction=r, return_grad=True, n_threads=n)),
                (f"binary_focal_loss_with_logits-{red}-{shape}", shape,
                 lambda d, n, r=red: xent.binary_focal_loss_with_logits(
                     d["x"], d["soft"], gamma=2.0, alpha=0.25, weight=d["ew"], reduction=r,
                     return_grad=True, n_threads=n)),
            ]
    # few rows of >= long_row classes: the kernels that split them into chunks
    cases += [
        ("logsumexp-split", "split", lambda d, n: xent.logsumexp(d["x"], n_threads=n)),
        ("logsumexp-grad-split", "split",
         lambda d, n: xent.logsumexp(d["x"], return_grad=True, n_threads=n)),
        ("softmax-split", "split", lambda d, n: xent.softmax(d["x"], n_threads=n)),
        ("log_softmax-split", "split", lambda d, n: xent.log_softmax(d["x"], n_threads=n)),
    ]
    for red in ("none", "sum", "mean"):
        cases += [
            (f"softmax_cross_entropy-labels-{red}-split", "split",
             lambda d, n, r=red: xent.softmax_cross_entropy(
                 d["x"], d["labels"], weight=d["w"], sample_weight=d["sw"], label_smoothing=0.1,
                 z_loss=1e-3, reduction=r, return_grad=True, n_threads=n)),
            (f"softmax_cross_entropy-probs-{red}-split", "split",
             lambda d, n, r=red: xent.softmax_cross_entropy(
                 d["x"], d["q"], weight=d["w"], label_smoothing=0.1, reduction=r,
                 return_grad=True, n_threads=n)),
        ]
    for red in ("none", "sum", "mean"):  # labels: one value per row, parallel over rows
        cases.append((f"cross_entropy-labels-{red}-tall", "tall",
                      lambda d, n, r=red: xent.cross_entropy(d["labels_ok"], d["p"], reduction=r,
                                                             return_grad=True, n_threads=n)))
    cases.append(("metrics.log_loss-tall", "tall", _log_loss_with_threads))
    return cases


def _log_loss_with_threads(d, n):
    threadpoolctl = pytest.importorskip("threadpoolctl")  # log_loss takes no n_threads
    p = np.nan_to_num(d["q"], nan=0.5).astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    with threadpoolctl.threadpool_limits(limits=n, user_api="openmp"):
        return np.float64(xent.metrics.log_loss(d["labels_ok"], p, sample_weight=d["sw"]))


CASES = _case_table()


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_function_is_bit_identical_for_1_2_3_and_8_threads(problems, case, monkeypatch):
    _, shape, call = case
    d = problems[shape]
    monkeypatch.setattr(_threads, "cpu_count", lambda: 8)
    used = []
    threads_for = _threads.threads_for
    tasks = []
    monkeypatch.setattr(_threads, "threads_for",
                        lambda *a: tasks.append(a[1]) or used.append(threads_for(*a)) or used[-1])
    want = None
    for n in THREAD_COUNTS:
        used.clear()
        tasks.clear()
        with np.errstate(all="ignore"):
            res = call(d, n)
        # (a call of fewer tasks than threads runs one thread a task: the
        # binary losses taken as one row of every element, 78000 values in 5)
        assert max(used) == min(n, max(tasks)), \
            f"asked for {n} threads ({max(tasks)} tasks), the kernels ran on {used}"
        parts = res if isinstance(res, tuple) else (res,)
        got = [np.asarray(r).tobytes() for r in parts]
        if want is None:
            want = got
        assert got == want, f"{n} threads differ from 1"
