"""Benchmarks: logsumexp's options (SciPy's ``b=``, JAX's ``where=``) and the
masked softmax, xent vs SciPy vs the NumPy composition vs a memory-speed floor.

Kept out of the default test run (``testpaths = ["tests"]``). Run from the
repository root with::

    python -m pytest benchmarks/test_bench_lse_options.py -n 0 \\
        --benchmark-min-rounds=5 --benchmark-columns=median,iqr,ops

Groups ``"<case> <shape>-float32"``; rows: ``xent`` (the option; softmax
into a preallocated ``out=``), ``xent-plain`` (the same call without the
option: what the option costs), ``scipy`` (``scipy.special.logsumexp`` with
``b=``; skipped without SciPy), ``numpy`` (the masked composition users
write: ``np.where`` to ``-inf``, then max, exp, sum, log) and ``copyto``
(``np.copyto`` of the logits into a preallocated array).
"""

import numpy as np
import pytest

import xent

SHAPES = [(4096, 32000), (65536, 100), (262144, 10)]
CASES = ("lse_b", "lse_where", "softmax_where")
IMPLS = ("xent", "xent-plain", "scipy", "numpy", "copyto")


@pytest.fixture(scope="module")
def arrays():
    cache = {}

    def get(shape):
        if shape not in cache:
            cache.clear()
            rng = np.random.default_rng(7)
            x = rng.standard_normal(shape, dtype=np.float32) * 2
            cache[shape] = dict(x=x, b=(rng.random(shape[1]) + 0.5).astype(np.float32),
                                where=rng.random(shape) > 0.2, dst=np.zeros_like(x))
        return cache[shape]

    yield get
    cache.clear()


def _np_masked_lse(x, where):
    xm = np.where(where, x, -np.inf)
    m = np.max(xm, axis=-1, keepdims=True)
    return np.log(np.sum(np.exp(xm - m), axis=-1)) + m[:, 0]


def _np_masked_softmax(x, where, out):
    xm = np.where(where, x, -np.inf)
    np.exp(xm - np.max(xm, axis=-1, keepdims=True), out=out)
    out /= out.sum(-1, keepdims=True)
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{n}x{c}" for n, c in SHAPES])
@pytest.mark.parametrize("case, impl", [(c, i) for c in CASES for i in IMPLS])
def test_bench(benchmark, arrays, case, impl, shape):
    d = arrays(shape)
    x, b, where, dst = d["x"], d["b"], d["where"], d["dst"]
    benchmark.group = f"{case} {shape[0]}x{shape[1]}-float32"
    benchmark.name = impl
    if impl == "copyto":
        benchmark(np.copyto, dst, x)
    elif impl == "xent":
        if case == "lse_b":
            benchmark(lambda: xent.logsumexp(x, b=b))
        elif case == "lse_where":
            benchmark(lambda: xent.logsumexp(x, where=where))
        else:
            benchmark(lambda: xent.softmax(x, where=where, out=dst))
    elif impl == "xent-plain":
        if case.startswith("lse"):
            benchmark(lambda: xent.logsumexp(x))
        else:
            benchmark(lambda: xent.softmax(x, out=dst))
    elif impl == "scipy":
        special = pytest.importorskip("scipy.special")
        if case != "lse_b":
            pytest.skip("SciPy has no where=")
        benchmark(lambda: special.logsumexp(x, b=b, axis=-1))
    else:  # numpy
        if case == "lse_b":
            pytest.skip("the NumPy composition is written for the masks")
        elif case == "lse_where":
            benchmark(_np_masked_lse, x, where)
        else:
            benchmark(_np_masked_softmax, x, where, dst)
