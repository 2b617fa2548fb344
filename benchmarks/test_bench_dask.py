"""Benchmarks: softmax cross-entropy forward + backward on a dask.distributed
LocalCluster (2 worker processes x 1 thread), xent.dask vs the in-memory
xent call (2 threads) vs the same graph written with da.exp/da.log
reductions (NumPy on Dask).

Kept out of the default test run (``testpaths = ["tests"]``). Run from the
repository root with::

    python -m pytest benchmarks/test_bench_dask.py -p no:xdist \\
        --benchmark-min-rounds=5 --benchmark-columns=median,iqr,ops

The logits (16384 x 32768 float32 in chunks of (2048, 8192), ``XENT_BENCH_QUICK=1``:
2048 x 8192 in (512, 2048)) are generated in the workers and persisted; each
round computes the mean loss and persists the whole gradient, then releases
it. Rows: the case names of ``python -m xent bench --dask`` (xent/_bench_dask.py).
"""

import os

import pytest

distributed = pytest.importorskip("distributed")
from xent import _bench_dask  # noqa: E402

SHAPE = _bench_dask.QUICK_SHAPE if os.environ.get("XENT_BENCH_QUICK") else _bench_dask.SHAPE
NAMES = ("xent in memory, 2 threads", "  ... into grad_out=", "xent.dask",
         "NumPy on Dask (da.exp/da.log)")


@pytest.fixture(scope="module")
def dask_cases():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        cases, _ = _bench_dask.cases(client, SHAPE)
        yield cases


@pytest.mark.parametrize("name", NAMES)
def test_bench(benchmark, dask_cases, name):
    n, c, rc, cc = SHAPE
    benchmark.group = f"softmax_cross_entropy fwd+bwd {n}x{c} float32, chunks ({rc}, {cc})"
    benchmark.name = name.strip(" .")
    benchmark.pedantic(dask_cases[name], rounds=5, warmup_rounds=2)
