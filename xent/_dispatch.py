"""Kernel dispatch: the compiled specialisation for a compute dtype, and the
instruction-set path the kernels run on.

The Cython kernels (the one extension module ``xent._kernels``) are fused
over float32/float64; ``kernel`` looks the specialisation up once and caches
it (skipping Cython's per-call signature matching). The row primitives under
them are compiled once per instruction set (baseline, AVX2+FMA, AVX-512 on
x86-64; see ``src/xent_rows.h``). At
import the best path this CPU supports is chosen, unless the environment
variable ``XENT_ISA`` names one (``baseline``, ``avx2``, ``avx512``), which
must then be supported. ``use_isa`` switches at run time (not while other
threads are calling xent).
"""

import contextlib
import os
from typing import Any, Callable, Dict, Tuple

import numpy as np

from . import _kernels as _k

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
           np.dtype(np.uint16): "uint16_t"}  # (bfloat16 bits: the softmax family's kernels)
_cache: Dict[Tuple[str, np.dtype[Any]], Callable[..., Any]] = {}


def kernel(name, dtype):
    """The specialisation of kernel ``name`` for compute dtype ``dtype``."""
    key = (name, np.dtype(dtype))
    fn = _cache.get(key)
    if fn is None:
        fn = _cache[key] = getattr(_k, name)[_CTYPES[np.dtype(dtype)]]
    return fn


def isa_paths():
    """Names of the compiled instruction-set paths, best first."""
    return [name for name, _ in _k.isa_paths()]


def supported_isas():
    """The paths this CPU can run, best first."""
    return [name for name, ok in _k.isa_paths() if ok]


def active_isa():
    """The instruction-set path the kernels run on."""
    return _k.get_isa()


def set_isa(name):
    """Run every kernel on path ``name``; ValueError if unknown or unsupported."""
    if name not in isa_paths():
        raise ValueError(f"XENT_ISA: expected one of {isa_paths()}, got {name!r}")
    if name not in supported_isas():
        raise ValueError(f"XENT_ISA: this CPU cannot run {name!r}; it supports {supported_isas()}")
    _k.set_isa(name)


@contextlib.contextmanager
def use_isa(name):
    """Context manager: run the kernels on path ``name`` inside the block."""
    previous = active_isa()
    set_isa(name)
    try:
        yield
    finally:
        set_isa(previous)


def stream_bytes():
    """Outputs of at least this many bytes are written with non-temporal
    stores where the ISA path has them (see src/_rows.pxd)."""
    return _k.get_stream_bytes()


def stream_classes():
    """The fewest classes a row needs for its outputs to be streamed: a pair
    (float32, float64); a maximum is 2**63 - 1 (never)."""
    return tuple(_k.get_stream_classes())


@contextlib.contextmanager
def use_stream_bytes(n, min_classes=(0, 0)):
    """Context manager (for tests): stream outputs of at least ``n`` bytes, of
    rows of at least ``min_classes`` (float32, float64) classes (by default
    every row the streamed path can take; in production the minimum is set by
    measurement, see src/xent_rows.h)."""
    previous, previous_c = stream_bytes(), _k.get_stream_classes()
    _k.set_stream_bytes(n)
    _k.set_stream_classes(*min_classes)
    try:
        yield
    finally:
        _k.set_stream_bytes(previous)
        _k.set_stream_classes(*previous_c)


def block_classes():
    """Rows of at most this many classes, a pair (float32, float64), take the
    block path of the softmax family (see src/xent_class.h)."""
    return tuple(_k.get_block_classes())


@contextlib.contextmanager
def use_block_classes(f32, f64=None):
    """Context manager (for tests and benchmarks): rows of at most ``f32``
    (float32) and ``f64`` (float64, default: the same) classes take the block
    path; 0 sends every row to the rows path."""
    previous = block_classes()
    _k.set_block_classes(f32, f32 if f64 is None else f64)
    try:
        yield
    finally:
        _k.set_block_classes(*previous)


set_isa(os.environ.get("XENT_ISA") or supported_isas()[0])
