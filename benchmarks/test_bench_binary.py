"""Benchmarks: the element-wise binary losses forward + backward, xent vs
PyTorch vs plain NumPy vs a memory-speed floor.

Kept out of the default test run (``testpaths = ["tests"]``). Run from the
repository root with::

    python -m pytest benchmarks/test_bench_binary.py \\
        --benchmark-min-rounds=5 --benchmark-columns=median,iqr,ops

Groups ``"<loss> <shape>-<dtype>"``; rows: ``xent`` (``grad_out=`` a
preallocated buffer), ``xent-1thr``, ``torch`` (2 threads; skipped without
torch), ``numpy`` (the stable NumPy form of ``xent._bench``) and ``copyto``
(``np.copyto`` of the logits into a preallocated array).
"""

import numpy as np
import pytest

import xent
from xent._bench import np_bce_with_logits  # shared with `python -m xent bench`

#: loss -> (xent function, keyword arguments, torch function name, shape, dtype)
CASES = {
    "bce_with_logits": (xent.binary_cross_entropy_with_logits, {},
                        "binary_cross_entropy_with_logits", (1, 16 * 2**20), np.float32),
    "multilabel": (xent.multilabel_cross_entropy, {"class_reduction": "mean"},
                   "multilabel_soft_margin_loss", (200_000, 100), np.float64),
}
IMPLS = ("xent", "xent-1thr", "torch", "numpy", "copyto")


@pytest.fixture(scope="module")
def binary_arrays():
    cache = {}

    def get(shape, dtype):
        key = (shape, np.dtype(dtype))
        if key not in cache:
            cache.clear()
            rng = np.random.default_rng(7)
            x = rng.standard_normal(shape).astype(dtype)
            t = (rng.random(shape) > 0.5).astype(dtype)
            cache[key] = dict(x=x, t=t, grad=np.zeros_like(x), dst=np.zeros_like(x))
        return cache[key]

    yield get
    cache.clear()


@pytest.mark.parametrize("loss, impl", [(c, i) for c in CASES for i in IMPLS])
def test_bench(benchmark, binary_arrays, loss, impl):
    fn, kwargs, torch_name, shape, dtype = CASES[loss]
    data = binary_arrays(shape, dtype)
    x, t, grad = data["x"], data["t"], data["grad"]
    benchmark.group = f"{loss} {shape[0]}x{shape[1]}-{np.dtype(dtype).name}"
    benchmark.name = impl
    if impl == "copyto":
        benchmark(np.copyto, data["dst"], x)
    elif impl == "xent":
        benchmark(lambda: fn(x, t, return_grad=True, grad_out=grad, **kwargs))
    elif impl == "xent-1thr":
        benchmark(lambda: fn(x, t, return_grad=True, grad_out=grad, n_threads=1, **kwargs))
    elif impl == "numpy":
        benchmark(np_bce_with_logits, x, t)
    elif impl == "torch":
        torch = pytest.importorskip("torch")
        torch_fn = getattr(torch.nn.functional, torch_name)
        xt, tt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(t)

        def step():
            xt.grad = None
            out = torch_fn(xt, tt)
            out.backward()
            return out, xt.grad

        old = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            benchmark(step)
        finally:
            torch.set_num_threads(old)
