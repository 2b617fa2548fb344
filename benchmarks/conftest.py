"""Inputs shared by the benchmarks, built once per shape (fixed seed).

The module-scoped ``arrays`` (softmax family) and ``ce_arrays``
(cross-entropy) fixtures return a getter that keeps only the last shape's
arrays: the cases are ordered shape-major, so each shape is
generated once and at most one large set is alive at a time. (An indirectly
parametrized module fixture would be rebuilt for every case here, since the
cases come from one combined parametrize list.)
"""

import numpy as np
import pytest

import xent


def pytest_report_header(config):
    from xent._config import config as xent_config

    c = xent_config()
    return (f"xent {c['version']}: numpy {c['numpy']}, openmp={c['openmp']}, "
            f"threads={c['threads']}, cores={c['cores']}, isa={c['isa']}")


def _touched(a):
    a.fill(0)  # fault the pages in now, not inside a timed call
    return a


def make_arrays(shape, dtype):
    """Logits ``x``, upstream gradient ``g``, the forward outputs ``p``/``lp``
    (inputs of the backward passes) and two preallocated, touched outputs:
    ``dst`` for np.copyto and ``out`` for xent's ``out=``."""
    rng = np.random.default_rng(12345)
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 4
    return {
        "x": x,
        "g": rng.standard_normal(shape, dtype=dtype),
        "p": xent.softmax(x),
        "lp": xent.log_softmax(x),
        "dst": _touched(np.empty_like(x)),
        "out": _touched(np.empty_like(x)),
    }


def make_ce_arrays(shape, dtype):
    """Cross-entropy inputs: the same logits ``x`` as :func:`make_arrays`,
    fixed-seed int64 labels ``y`` in ``[0, C)``, class weights ``w`` in
    ``[0.5, 1.5)`` (the logits' dtype, as torch requires), and two
    preallocated, touched arrays of ``x``'s shape: ``grad`` for xent's
    ``grad_out=`` and ``dst`` for np.copyto."""
    rng = np.random.default_rng(12345)
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 4
    n, c = shape
    rng = np.random.default_rng(54321)
    return {
        "x": x,
        "y": rng.integers(0, c, size=n, dtype=np.int64),
        "w": rng.uniform(0.5, 1.5, size=c).astype(dtype),
        "grad": _touched(np.empty_like(x)),
        "dst": _touched(np.empty_like(x)),
    }


def _last_shape_cache(make):
    cache = {}

    def get(shape, dtype):
        key = (tuple(shape), np.dtype(dtype))
        if key not in cache:
            cache.clear()  # free the previous shape first
            cache[key] = make(*key)
        return cache[key]

    return cache, get


@pytest.fixture(scope="module")
def arrays():
    cache, get = _last_shape_cache(make_arrays)
    yield get
    cache.clear()


@pytest.fixture(scope="module")
def ce_arrays():
    cache, get = _last_shape_cache(make_ce_arrays)
    yield get
    cache.clear()
