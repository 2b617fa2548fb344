"""The block path against the rows path in one process (not part of the tests).

For each class count, times softmax cross-entropy forward+backward (labels,
``grad_out=``), softmax (``out=``), log_softmax (``out=``) and logsumexp with
the block path forced off and on (``xent._dispatch.use_block_classes``),
taking turns with np.copyto of the same array, and prints medians as ratios
to the copy. The crossover in ``src/xent_isa.c`` (``xent_block_max_c``) comes
from runs of this::

    python benchmarks/crossover.py                           # float32, 64 MiB, all threads
    python benchmarks/crossover.py float64 32,48,49,64,65,100 --mib 32 --threads 1
"""

import argparse
import time

import numpy as np

import xent
from xent import _dispatch

CLASSES = "17,32,48,49,64,65,80,100,127,128,129,200,256"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dtype", nargs="?", default="float32")
    ap.add_argument("classes", nargs="?", default=CLASSES)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    dtype = np.dtype(a.dtype)
    print(f"{dtype}, {a.mib} MiB, n_threads={a.threads}; ratio to np.copyto, medians of "
          f"{a.rounds} interleaved rounds")
    print("| C | path | CE fwd+bwd | softmax | log_softmax | logsumexp |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for c in (int(v) for v in a.classes.split(",")):
        n = (a.mib << 20) // (dtype.itemsize * c)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c)).astype(dtype)
        y, out = rng.integers(0, c, n), np.empty_like(x)
        ops = [
            lambda: xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=out, n_threads=a.threads),
            lambda: xent.softmax(x, out=out, n_threads=a.threads),
            lambda: xent.log_softmax(x, out=out, n_threads=a.threads),
            lambda: xent.logsumexp(x, axis=-1, n_threads=a.threads),
        ]
        times = {(p, k): [] for p in ("rows", "blocks") for k in range(len(ops))}
        copies = []
        for _ in range(a.rounds):
            for path, limit in (("rows", 0), ("blocks", 256)):
                with _dispatch.use_block_classes(limit):
                    for k, op in enumerate(ops):
                        t = time.perf_counter()
                        op()
                        times[path, k].append(time.perf_counter() - t)
            t = time.perf_counter()
            np.copyto(out, x)
            copies.append(time.perf_counter() - t)
        copy = float(np.median(copies))
        for path in ("rows", "blocks"):
            cells = " | ".join(f"{np.median(times[path, k]) / copy:.2f}x" for k in range(len(ops)))
            print(f"| {c} | {path} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
