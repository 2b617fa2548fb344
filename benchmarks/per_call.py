"""Per-call cost of the common small calls (issue 13's per-call figures).

    python benchmarks/per_call.py

float32 64x10 with int64 labels: the best of 7 repeats of 2000 calls each
(a per-call floor on a shared machine), beside the NumPy reference of the
same computation. These calls, with or without a preallocated output
(out=/grad_out=), and with the options a training loop sets (the rows
marked "option"), take the compiled common-call path (src/fast.pxi); the
rows marked "general path" take the Python validation of every option.
"""

import timeit

import numpy as np

import xent


def numpy_ce(x, y):
    m = x.max(1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[np.arange(len(y)), y])
    g = e / s
    g[np.arange(len(y)), y] -= 1
    g /= len(y)
    return loss, g


def best(f, number=2000):
    return min(timeit.repeat(f, number=number, repeat=7)) / number * 1e6


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    t = rng.random((64, 10)).astype(np.float32)
    p = xent.softmax(t)
    w = rng.random(10) + 0.5
    pw = np.full(10, 2.0, np.float32)
    sw = np.full(64, 0.7)
    v = rng.standard_normal(100)
    g = np.empty_like(x)
    rows = [
        ("softmax_cross_entropy fwd+bwd", lambda: xent.softmax_cross_entropy(x, y, return_grad=True)),
        ("  NumPy reference", lambda: numpy_ce(x, y)),
        ("logsumexp", lambda: xent.logsumexp(x)),
        ("softmax", lambda: xent.softmax(x)),
        ("log_softmax", lambda: xent.log_softmax(x)),
        ("binary_cross_entropy_with_logits fwd+bwd",
         lambda: xent.binary_cross_entropy_with_logits(x, t, return_grad=True)),
        ("softmax_cross_entropy fwd+bwd, grad_out=",
         lambda: xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=g)),
        ("softmax, out=", lambda: xent.softmax(x, out=g)),
        ("logsumexp of a vector (100 float64)", lambda: xent.logsumexp(v)),
        ("option: softmax_cross_entropy label_smoothing=0.1",
         lambda: xent.softmax_cross_entropy(x, y, return_grad=True, label_smoothing=0.1)),
        ("option: softmax_cross_entropy weight=",
         lambda: xent.softmax_cross_entropy(x, y, return_grad=True, weight=w)),
        ("option: softmax_cross_entropy reduction='none'",
         lambda: xent.softmax_cross_entropy(x, y, return_grad=True, reduction="none")),
        ("option: softmax_cross_entropy probability targets",
         lambda: xent.softmax_cross_entropy(x, p, return_grad=True)),
        ("option: binary_cross_entropy_with_logits reduction='sum'",
         lambda: xent.binary_cross_entropy_with_logits(x, t, return_grad=True, reduction="sum")),
        ("option: binary_cross_entropy_with_logits pos_weight=",
         lambda: xent.binary_cross_entropy_with_logits(x, t, return_grad=True, pos_weight=pw)),
        ("option: softmax_cross_entropy sample_weight=",
         lambda: xent.softmax_cross_entropy(x, y, return_grad=True, sample_weight=sw)),
        ("general path: nll_loss fwd+bwd", lambda: xent.nll_loss(x, y, return_grad=True)),
        ("general path: softmax_focal_loss fwd+bwd",
         lambda: xent.softmax_focal_loss(x, y, return_grad=True)),
    ]
    print("| call (float32 64x10, int64 labels) | µs |")
    print("| --- | ---: |")
    times = {}
    for name, f in rows:
        times[name] = best(f)
        print(f"| {name} | {times[name]:.1f} |")
    ratio = times["softmax_cross_entropy fwd+bwd"] / times["  NumPy reference"]
    print(f"\nsoftmax_cross_entropy fwd+bwd / NumPy reference: {ratio:.2f}x")


if __name__ == "__main__":
    main()
