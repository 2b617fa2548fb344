"""Benchmarks: xent vs scipy.special vs plain NumPy vs a memory-speed floor.

Kept out of the default test run (``testpaths = ["tests"]``). Run from the
repository root with::

    python -m pytest benchmarks/ --benchmark-min-rounds=3 \\
        --benchmark-columns=median,iqr,ops --benchmark-sort=name

One table per group ``"<function> <shape>-<dtype>"``; its rows are the
implementations:

* ``xent``      -- default call (allocates its output, default threads)
* ``xent-out``  -- ``out=`` a preallocated array (full-size outputs only)
* ``xent-1thr`` -- ``n_threads=1`` (large shapes only)
* ``scipy``     -- ``scipy.special`` (forward only; skipped without scipy)
* ``numpy``     -- the max-shifted NumPy references below
* ``copyto``    -- ``np.copyto(dst, x)`` into a preallocated array: reading
  and writing one array of the input's size, the memory-speed reference.

Compare medians: the machine may be shared and noisy. Add
``--benchmark-group-by=group --benchmark-only -k 32000`` to narrow the run.
"""

import numpy as np
import pytest

import xent
from xent._bench import (  # the plain NumPy peers, shared with `python -m xent bench`
    np_log_softmax,
    np_log_softmax_backward,
    np_logsumexp,
    np_softmax,
    np_softmax_backward,
)

#: id -> (shape, dtype); LARGE also get an n_threads=1 row.
SHAPES = {
    "4096x32000-f32": ((4096, 32000), np.float32),
    "4096x8192-f64": ((4096, 8192), np.float64),
    "65536x10-f32": ((65536, 10), np.float32),
    "64x100-f32": ((64, 100), np.float32),
}
LARGE = ("4096x32000-f32", "4096x8192-f64")


# ---- the cases: function -> (input keys, {impl: callable or scipy name}) ----

FUNCS = {
    "logsumexp": (("x",), {"xent": xent.logsumexp, "scipy": "logsumexp",
                           "numpy": np_logsumexp}),
    "softmax": (("x",), {"xent": xent.softmax, "scipy": "softmax",
                         "numpy": np_softmax}),
    "log_softmax": (("x",), {"xent": xent.log_softmax, "scipy": "log_softmax",
                             "numpy": np_log_softmax}),
    "softmax_backward": (("p", "g"), {"xent": xent.softmax_backward,
                                      "numpy": np_softmax_backward}),
    "log_softmax_backward": (("lp", "g"), {"xent": xent.log_softmax_backward,
                                           "numpy": np_log_softmax_backward}),
}


def _impls(func, shape_id):
    names = list(FUNCS[func][1])
    if func != "logsumexp":
        names.insert(1, "xent-out")
    if shape_id in LARGE:
        names.insert(1, "xent-1thr")
    return names + ["copyto"]


# Shape-major, so each shape's arrays are built once (see conftest.arrays).
CASES = [pytest.param(s, f, i, id=f"{f}-{s}-{i}")
         for s in SHAPES for f in FUNCS for i in _impls(f, s)]


@pytest.mark.parametrize("shape_id, func, impl", CASES)
def test_bench(benchmark, arrays, shape_id, func, impl):
    data = arrays(*SHAPES[shape_id])
    keys, impls = FUNCS[func]
    args = [data[k] for k in keys]
    x = data[keys[0]]
    benchmark.group = f"{func} {x.shape[0]}x{x.shape[1]}-{x.dtype}"
    benchmark.name = impl
    if impl == "copyto":
        benchmark(np.copyto, data["dst"], x)
    elif impl == "xent-out":
        benchmark(lambda: impls["xent"](*args, out=data["out"]))
    elif impl == "xent-1thr":
        benchmark(lambda: impls["xent"](*args, n_threads=1))
    elif impl == "scipy":
        special = pytest.importorskip("scipy.special")
        benchmark(getattr(special, impls[impl]), *args, axis=-1)
    else:
        benchmark(impls[impl], *args)
