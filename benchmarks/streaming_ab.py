"""Plain against streamed outputs in one process (not part of the tests).

Times softmax, log_softmax and softmax cross-entropy forward+backward (labels)
on 2 threads with the outputs written by plain stores and by streamed
(non-temporal) ones, taking turns with np.copyto of the same array, and
prints medians in ms with their ratio to the copy. The streamed path exists on
AVX-512 only (elsewhere both rows are the plain path)::

    python benchmarks/streaming_ab.py 1024 131072          # rows, classes
    python benchmarks/streaming_ab.py 4096 8192 float64
"""

import contextlib
import sys
import time

import numpy as np

import xent
from xent import _dispatch


def main(rows, cols, dtype="float32", calls=9):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols)).astype(dtype)
    out, labels = np.empty_like(x), rng.integers(0, cols, rows)
    ops = {
        "softmax": lambda: xent.softmax(x, out=out, n_threads=2),
        "log_softmax": lambda: xent.log_softmax(x, out=out, n_threads=2),
        "cross-entropy": lambda: xent.softmax_cross_entropy(x, labels, return_grad=True, grad_out=out,
                                                            n_threads=2),
    }
    timed = {"np.copyto": (lambda: np.copyto(out, x), None)}
    for name, fn in ops.items():
        timed[f"{name} plain"] = (fn, 1 << 62)
        timed[f"{name} streamed"] = (fn, 32 << 20)
    times = {k: [] for k in timed}
    streams = _dispatch.stream_bytes() is not None
    for _ in range(calls):
        for k, (fn, threshold) in timed.items():
            use = threshold is not None and streams
            with _dispatch.use_stream_bytes(threshold) if use else contextlib.nullcontext():
                fn()  # warm-up
                time.sleep(0.02)
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    copy = np.median(times["np.copyto"])
    print(f"{rows}x{cols} {dtype}, 2 threads, medians of {calls}, isa {_dispatch.active_isa()}")
    for k, ts in times.items():
        print(f"{k:24s} {np.median(ts) * 1e3:8.1f} ms  {np.median(ts) / copy:5.2f}x copy")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4])
