"""Softmax focal loss (labels) and binary focal loss, fwd+bwd, as ratios to
np.copyto of the logits in the same process (medians of 7, preallocated copy
target): python benchmarks/focal_ab.py [NBYTES] [C,C,...]"""
import sys
import time

import numpy as np

import xent


def med(f, k=7):
    ts = []
    for _ in range(k):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


nbytes = int(sys.argv[1]) if len(sys.argv) > 1 else 64 << 20
cs = [int(c) for c in sys.argv[2].split(",")] if len(sys.argv) > 2 else [10, 100, 1000, 32000]
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    for c in cs:
        n = nbytes // np.dtype(dt).itemsize // c
        x = rng.standard_normal((n, c)).astype(dt)
        y = rng.integers(0, c, n)
        dst = np.empty_like(x)
        cp = med(lambda: np.copyto(dst, x))
        sf = med(lambda: xent.softmax_focal_loss(x, y, gamma=2.0, return_grad=True)) / cp
        t = (rng.random(x.shape) < 0.5).astype(dt)
        bf = med(lambda: xent.binary_focal_loss_with_logits(x, t, gamma=2.0, return_grad=True)) / cp
        print(f"{np.dtype(dt).name} C={c}: softmax_focal fwd+bwd {sf:.2f}x copy, "
              f"binary_focal fwd+bwd {bf:.2f}x", flush=True)
