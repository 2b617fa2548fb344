"""Kernel dispatch: picks the compiled specialisation for a compute dtype.

The Cython kernels are fused over float32/float64; looking the specialisation
up once here avoids Cython's per-call signature matching. This is also where
the instruction-set path is chosen: for now every kernel is compiled once for
the portable baseline of the target architecture (no ``-march=native``).
"""

import numpy as np

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_cache = {}


def kernel(module, name, dtype):
    """The specialisation of ``module.name`` for compute dtype ``dtype``."""
    key = (module.__name__, name, np.dtype(dtype))
    fn = _cache.get(key)
    if fn is None:
        fn = _cache[key] = getattr(module, name)[_CTYPES[np.dtype(dtype)]]
    return fn


def active_isa():
    """The instruction-set path the kernels run on."""
    return "baseline"
