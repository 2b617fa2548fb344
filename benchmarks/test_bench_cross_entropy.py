"""Benchmarks: softmax cross-entropy forward + backward, xent vs PyTorch vs
plain NumPy vs a memory-speed floor.

Mean reduction, integer labels; the timed call returns the loss and its
gradient with respect to the logits. Kept out of the default test run
(``testpaths = ["tests"]``). Run from the repository root with::

    python -m pytest benchmarks/test_bench_cross_entropy.py \\
        --benchmark-min-rounds=5 --benchmark-columns=median,iqr,ops \\
        --benchmark-sort=name

One table per group ``"<case> <shape>-<dtype>"``; its rows are the
implementations:

* ``xent``       -- ``return_grad=True, grad_out=`` a preallocated, touched
  buffer (the training-loop form: no allocation, no page faults)
* ``xent-alloc`` -- ``return_grad=True`` without ``grad_out`` (allocates the
  gradient each call)
* ``xent-fwd``   -- the loss only
* ``xent-1thr``  -- like ``xent`` with ``n_threads=1`` (large shapes only)
* ``torch``      -- ``torch.nn.functional.cross_entropy`` + ``.backward()``
  on a leaf tensor sharing the NumPy logits (``torch.from_numpy``), its
  ``.grad`` reset each call (so allocated each call), 2 threads; skipped
  without torch
* ``numpy``      -- the fused NumPy reference below
* ``copyto``     -- ``np.copyto(dst, x)`` into a preallocated array: reading
  and writing one array of the logits' size, the memory-speed reference
  (forward + backward reads the logits and writes the gradient).

The ``cross_entropy-ls0.1-weighted`` case adds ``label_smoothing=0.1`` and
class weights, ``cross_entropy-masked`` sets the last quarter of the classes
to ``-inf`` (labels among the others) (xent, torch and copyto rows only).
``cross_entropy-bfloat16`` rounds the logits to bfloat16 (ml_dtypes): ``xent``
reads them and writes a bfloat16 gradient, ``xent-f32`` is the float32 call
on the same values, ``torch`` PyTorch's bfloat16 path.

Compare medians: the machine may be shared and noisy. Add ``-k 32000`` (or a
row name) to narrow the run.
"""

import numpy as np
import pytest

import xent
from xent._bench import np_cross_entropy  # shared with `python -m xent bench`

#: id -> (shape, dtype); LARGE also get an n_threads=1 row.
SHAPES = {
    "4096x32000-f32": ((4096, 32000), np.float32),
    "65536x10-f32": ((65536, 10), np.float32),
    "4096x8192-f64": ((4096, 8192), np.float64),
    "1024x128256-f32": ((1024, 128256), np.float32),  # an LLM vocabulary (Llama 3)
    "65536x100-f32": ((65536, 100), np.float32),  # CIFAR-100's classes
}
LARGE = ("4096x32000-f32", "4096x8192-f64", "1024x128256-f32")

#: case -> (extra keyword arguments, shapes, rows). "weight" is a flag: the
#: class weights come from the fixture.
CASES_SPEC = {
    "cross_entropy": (
        {}, tuple(SHAPES),
        ("xent", "xent-alloc", "xent-fwd", "xent-1thr", "torch", "numpy",
         "copyto")),
    "cross_entropy-ls0.1-weighted": (
        {"label_smoothing": 0.1, "weight": True}, ("4096x32000-f32",),
        ("xent", "torch", "copyto")),
    # the last quarter of the classes masked with -inf (a padded vocabulary,
    # or classes ruled out): their exps are 0 (no subnormal steps)
    "cross_entropy-masked": (
        {"mask": True}, ("4096x32000-f32", "65536x100-f32"),
        ("xent", "torch", "copyto")),
    # the logits rounded to bfloat16 (ml_dtypes): "xent" reads and writes
    # bfloat16, "xent-f32" is the float32 call on the same (widened) values,
    # "torch" PyTorch's bfloat16 path, "copyto" of the bfloat16 logits
    "cross_entropy-bfloat16": (
        {"bf16": True}, ("4096x32000-f32",),
        ("xent", "xent-f32", "torch", "copyto")),
}

TORCH_THREADS = 2


# ---- plain NumPy reference (fused: max-shift, exp, sum, log) ----------------

# ---- the cases ---------------------------------------------------------------

def _rows(case, shape_id):
    rows = CASES_SPEC[case][2]
    return [r for r in rows if r != "xent-1thr" or shape_id in LARGE]


# Shape-major, so each shape's arrays are built once (see conftest.ce_arrays).
CASES = [pytest.param(s, c, r, id=f"{c}-{s}-{r}")
         for s in SHAPES for c in CASES_SPEC if s in CASES_SPEC[c][1]
         for r in _rows(c, s)]


def _bench_torch(benchmark, x, y, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    if x.dtype.kind == "V":  # bfloat16 (ml_dtypes): the tensor of its bits
        xt = torch.from_numpy(x.view(np.int16)).view(torch.bfloat16).requires_grad_(True)
    else:
        xt = torch.from_numpy(x).requires_grad_(True)  # a leaf sharing x's memory
    yt = torch.from_numpy(y)
    if "weight" in kwargs:
        kwargs = dict(kwargs, weight=torch.from_numpy(kwargs["weight"]))

    def step():
        xt.grad = None
        loss = F.cross_entropy(xt, yt, **kwargs)
        loss.backward()
        return loss, xt.grad

    old = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        benchmark(step)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("shape_id, case, impl", CASES)
def test_bench(benchmark, ce_arrays, shape_id, case, impl):
    data = ce_arrays(*SHAPES[shape_id])
    x, y, grad = data["x"], data["y"], data["grad"]
    kwargs = dict(CASES_SPEC[case][0])
    if kwargs.pop("weight", False):
        kwargs["weight"] = data["w"]
    if kwargs.pop("mask", False):
        if "x_masked" not in data:
            xm = x.copy()
            xm[:, -(x.shape[1] // 4):] = -np.inf
            data["x_masked"] = xm
            data["y_masked"] = y % (x.shape[1] - x.shape[1] // 4)
        x, y = data["x_masked"], data["y_masked"]
    benchmark.group = f"{case} {x.shape[0]}x{x.shape[1]}-{x.dtype}"
    benchmark.name = impl
    dst = data["dst"]
    if kwargs.pop("bf16", False):
        bf16 = pytest.importorskip("ml_dtypes").bfloat16
        if "x_bf16" not in data:
            data["x_bf16"] = x.astype(bf16)
            data["x_bf16_f32"] = data["x_bf16"].astype(np.float32)
            data["grad_bf16"] = np.zeros_like(data["x_bf16"])
            data["dst_bf16"] = np.zeros_like(data["x_bf16"])
        if impl == "xent-f32":
            x, impl = data["x_bf16_f32"], "xent"
        else:
            x, grad, dst = data["x_bf16"], data["grad_bf16"], data["dst_bf16"]
    f = xent.softmax_cross_entropy
    if impl == "copyto":
        benchmark(np.copyto, dst, x)
    elif impl == "xent":
        benchmark(lambda: f(x, y, return_grad=True, grad_out=grad, **kwargs))
    elif impl == "xent-alloc":
        benchmark(lambda: f(x, y, return_grad=True, **kwargs))
    elif impl == "xent-fwd":
        benchmark(lambda: f(x, y, **kwargs))
    elif impl == "xent-1thr":
        benchmark(lambda: f(x, y, return_grad=True, grad_out=grad,
                            n_threads=1, **kwargs))
    elif impl == "torch":
        _bench_torch(benchmark, x, y, kwargs)
    elif impl == "numpy":
        assert not kwargs
        benchmark(np_cross_entropy, x, y)
    else:
        raise AssertionError(impl)
