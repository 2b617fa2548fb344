"""``python -m xent bench --dask``: softmax cross-entropy forward and backward
on a dask.distributed LocalCluster, against the in-memory xent call and the
same graph written with ``da.exp``/``da.log`` reductions (NumPy on Dask).

The logits are generated in the workers and persisted first; each timed
run computes the mean loss and persists the full gradient (then released).
Times are medians of interleaved runs in one process."""

import statistics
import time

import numpy as np


def _numpy_on_dask(x, y):
    import dask.array as da  # type: ignore[import-not-found, unused-ignore]

    m = x.max(axis=1, keepdims=True)
    e = da.exp(x - m)
    s = e.sum(axis=1, keepdims=True, dtype=np.float64)
    lse = (m + da.log(s)).astype(np.float32)
    onehot = da.arange(x.shape[1], chunks=x.chunks[1])[None, :] == y[:, None]
    xt = da.where(onehot, x, 0).sum(axis=1)
    loss = (lse[:, 0] - xt).mean()
    grad = (da.exp(x - lse) - onehot) / x.shape[0]
    return loss, grad.astype(np.float32)


#: (rows, classes, row chunk, class chunk): the issue's shape, and --quick's
SHAPE = (16384, 32768, 2048, 8192)
QUICK_SHAPE = (2048, 8192, 512, 2048)


def cases(client, shape):
    """The timed cases on ``client``'s cluster: name -> a call (the loss
    and the persisted gradient of softmax cross-entropy), and the graph's
    task count. Shared with benchmarks/test_bench_dask.py."""
    import dask  # type: ignore[import-not-found, unused-ignore]
    import dask.array as da  # type: ignore[import-not-found, unused-ignore]
    import distributed  # type: ignore[import-not-found, unused-ignore]

    import xent
    import xent.dask as xd

    n, c, rc, cc = shape
    rng = da.random.default_rng(0)
    x = rng.standard_normal((n, c), chunks=(rc, cc), dtype=np.float32).persist()
    y = da.from_array(np.arange(n) * 7919 % c, chunks=rc).persist()
    distributed.wait([x, y])
    x_mem = x.compute()
    y_mem = y.compute()

    held = len(client.who_has())

    def persisted(loss, grad):
        # one graph: the loss and the gradient share their tasks
        loss, grad = dask.persist(loss, grad)
        distributed.wait([loss, grad])
        value = loss.compute()
        del loss, grad
        # the gradient released before the next run (as a training loop's
        # step releases the previous step's): the workers reuse its memory
        deadline = time.perf_counter() + 10
        while len(client.who_has()) > held and time.perf_counter() < deadline:
            time.sleep(0.005)
        return value

    def dask_xent():
        return persisted(*xd.softmax_cross_entropy(x, y, return_grad=True))

    def dask_numpy():
        return persisted(*_numpy_on_dask(x, y))

    g = np.empty_like(x_mem)

    def in_memory():  # (allocating its gradient, as the workers do)
        return xent.softmax_cross_entropy(x_mem, y_mem, return_grad=True, n_threads=2)[0]

    def in_memory_out():
        return xent.softmax_cross_entropy(x_mem, y_mem, return_grad=True, grad_out=g,
                                          n_threads=2)[0]

    loss, grad = xd.softmax_cross_entropy(x, y, return_grad=True)
    tasks = len(dict(dask.base.collections_to_expr([loss, grad]).__dask_graph__()))
    return {"xent in memory, 2 threads": in_memory, "  ... into grad_out=": in_memory_out,
            "xent.dask": dask_xent, "NumPy on Dask (da.exp/da.log)": dask_numpy}, tasks


def run(args, out=print):
    try:
        import distributed  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        out('python -m xent bench --dask: needs dask and distributed (pip install "xent[dask]")')
        return 2

    n, c, rc, cc = shape = QUICK_SHAPE if args.quick else SHAPE
    repeats = max(3, args.repeats)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        cases_, tasks = cases(client, shape)
        times = {k: [] for k in cases_}
        for _ in range(3):  # warm up: the workers' memory reaches its steady state
            for k, f in cases_.items():
                f()
        for _ in range(repeats):
            for k, f in cases_.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        out(f"softmax_cross_entropy fwd+bwd, {n}x{c} float32 in chunks of ({rc}, {cc}), "
            f"LocalCluster 2 processes x 1 thread; {tasks} tasks in the graph; medians of {repeats}")
        base = med["xent in memory, 2 threads"]
        for k, v in med.items():
            out(f"  {k:34s} {v * 1e3:9.1f} ms  {v / base:5.2f}x in-memory")
        ratio = med["NumPy on Dask (da.exp/da.log)"] / med["xent.dask"]
        out(f"  xent.dask vs NumPy on Dask: {ratio:.2f}x faster")
        # where the wall time goes: the tasks' own compute time (summed over
        # the workers) against the rest (scheduling, transfers, memory)
        busy = {}
        for k in ("xent.dask", "NumPy on Dask (da.exp/da.log)"):
            spans = []
            for _ in range(3):
                with distributed.get_task_stream(client) as ts:
                    cases_[k]()
                spans.append(sum(s["stop"] - s["start"] for t in ts.data
                                 for s in t["startstops"] if s["action"] == "compute"))
            busy[k] = statistics.median(spans)
            out(f"  {k:34s} tasks' compute time {busy[k] * 1e3:9.1f} ms (over 2 workers)")
        out(f"  compute-time ratio, NumPy on Dask / xent.dask: "
            f"{busy['NumPy on Dask (da.exp/da.log)'] / busy['xent.dask']:.2f}x")
        return 0
