"""The same call on the inputs users have, in ns a value (not part of the tests).

Softmax cross-entropy forward+backward (``grad_out=``) and logsumexp on
logits of standard normal values ("plain"), with a quarter of the classes
masked with -inf ("masked": a padded vocabulary, classes ruled out), with the
label's logit 25 above the rest ("confident": a trained model, whose rows'
sums of exps are within 1e-6 of 1 and take log1p of the other terms), and
the cross-entropy with probability targets and with label smoothing; medians
of interleaved rounds, nanoseconds per value, with np.copyto of the same
array for scale::

    python benchmarks/inputs.py                          # float32, 32 MiB, one thread
    python benchmarks/inputs.py float64 2,10,100,1000 --threads 2
"""

import argparse
import time

import numpy as np

import xent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dtype", nargs="?", default="float32")
    ap.add_argument("classes", nargs="?", default="2,10,100,1000,32000")
    ap.add_argument("--mib", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    dtype = np.dtype(a.dtype)
    names = ["copyto", "CE plain", "CE masked", "CE confident", "CE probs", "CE smoothing",
             "lse plain", "lse masked", "lse confident"]
    print(f"{dtype}, {a.mib} MiB, n_threads={a.threads}: ns a value, medians of {a.rounds} rounds")
    print("| C | " + " | ".join(names) + " |")
    print("| ---: |" + " ---: |" * len(names))
    nt = a.threads
    for c in (int(v) for v in a.classes.split(",")):
        n = (a.mib << 20) // (dtype.itemsize * c)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c)).astype(dtype)
        y = rng.integers(0, max(1, c - c // 4), n)
        masked = x.copy()
        masked[:, c - c // 4:] = -np.inf
        confident = x.copy()
        confident[np.arange(n), y] += 25
        t = rng.dirichlet(np.ones(c), n).astype(dtype)
        out = np.empty_like(x)
        ce = xent.softmax_cross_entropy
        calls = [
            lambda: np.copyto(out, x),
            lambda: ce(x, y, return_grad=True, grad_out=out, n_threads=nt),
            lambda: ce(masked, y, return_grad=True, grad_out=out, n_threads=nt),
            lambda: ce(confident, y, return_grad=True, grad_out=out, n_threads=nt),
            lambda: ce(x, t, return_grad=True, grad_out=out, n_threads=nt),
            lambda: ce(x, y, label_smoothing=0.1, return_grad=True, grad_out=out, n_threads=nt),
            lambda: xent.logsumexp(x, axis=-1, n_threads=nt),
            lambda: xent.logsumexp(masked, axis=-1, n_threads=nt),
            lambda: xent.logsumexp(confident, axis=-1, n_threads=nt),
        ]
        times = [[] for _ in calls]
        for _ in range(a.rounds):
            for k, f in enumerate(calls):
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        cells = " | ".join(f"{np.median(v) / x.size * 1e9:.2f}" for v in times)
        print(f"| {c} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
