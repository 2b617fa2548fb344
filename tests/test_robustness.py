"""Threads, fork and memory: results identical under concurrent calls, the
documented fork workaround works, repeated calls do not grow the process."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import xent


def _calls(rng_seed=0, shape=(300, 40)):
    """One call of every public loss/transform on small shared inputs."""
    rng = np.random.default_rng(rng_seed)
    n, c = shape
    x = rng.standard_normal(shape)
    x.setflags(write=False)
    y = rng.integers(0, c, n)
    t = (rng.random(shape) > 0.5).astype(float)
    p = xent.softmax(x)
    p.setflags(write=False)
    return [
        lambda: xent.logsumexp(x, return_grad=True),
        lambda: xent.softmax(x, axis=0),
        lambda: xent.log_softmax(x),
        lambda: xent.softmax_backward(p, x),
        lambda: xent.log_softmax_backward(np.log(p), x),
        lambda: xent.softmax_cross_entropy(x, y, label_smoothing=0.1, return_grad=True),
        lambda: xent.nll_loss(np.log(p), y, return_grad=True),
        lambda: xent.binary_cross_entropy_with_logits(x, t, return_grad=True),
        lambda: xent.binary_cross_entropy(p, t, return_grad=True),
        lambda: xent.multilabel_cross_entropy(x, t, return_grad=True),
        lambda: xent.binary_focal_loss_with_logits(x, t, return_grad=True),
        lambda: xent.softmax_focal_loss(x, y, return_grad=True),
        lambda: xent.cross_entropy(p, p, return_grad=True),
        lambda: xent.kl_divergence(p, p, return_grad=True),
        lambda: xent.entropy(p),
        lambda: xent.metrics.log_loss(y, p, labels=np.arange(c)),
    ]


def _bytes(result):
    parts = result if isinstance(result, tuple) else (result,)
    return b"".join(np.asarray(r).tobytes() for r in parts)


def test_eight_python_threads_get_the_serial_results():
    calls = _calls()
    want = [_bytes(f()) for f in calls]
    errors = []

    def worker():
        try:
            for _ in range(30):
                for f, w in zip(calls, want):
                    if _bytes(f()) != w:
                        errors.append("mismatch")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


LEAK_CALLS = 20_000


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_repeated_calls_do_not_grow_the_process():
    """20,000 calls of every public function keep the resident memory flat (on
    small inputs: the C > 64 row path, the small-class path through axis=0;
    and an OpenMP region: a loss on an input past the parallel threshold)."""
    big = np.random.default_rng(1).standard_normal((64, 600))  # > MIN_PARALLEL_ELEMENTS
    big_y = np.arange(64) % 600
    calls = _calls(shape=(8, 70)) + [
        lambda: xent.show_config("dicts"),
        lambda: xent.softmax_cross_entropy(big, big_y, return_grad=True, n_threads=2),
    ]
    for f in calls:  # warm up caches and the thread pool
        for _ in range(200):
            f()
    before = _rss_bytes()
    for f in calls:
        for _ in range(LEAK_CALLS):
            f()
    grown = _rss_bytes() - before  # a leak of 100 bytes a call would show
    assert grown < 2 * 2**20, f"resident memory grew by {grown / 2**20:.1f} MB"


FORK_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import xent
    x = np.random.default_rng(0).standard_normal((2000, 1000))
    want = xent.logsumexp(x, n_threads=1)
    xent.logsumexp(x, n_threads=2)          # the OpenMP pool is running now
    pid = os.fork()
    if pid == 0:                             # the child runs on one thread by itself
        ok = np.array_equal(xent.logsumexp(x), want)
        ok = ok and np.array_equal(xent.logsumexp(x, n_threads=2), want)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_after_fork_the_child_runs_on_one_thread_and_does_not_hang():
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT], timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
