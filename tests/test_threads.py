"""Thread policy and determinism."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xent
from xent import _threads
from xent._kernels import softmax as kernels

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
