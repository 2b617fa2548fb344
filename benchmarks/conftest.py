"""Inputs shared by the benchmarks: one set of arrays per shape, built once.

``data`` is parametrized indirectly by ``(shape, dtype)`` and has module
scope, so each shape's arrays are generated once (fixed seed) and freed
before the next shape's are built: at most one large set is alive at a time.
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


@pytest.fixture(scope="module")
def data(request):
    """Arrays for one shape: logits ``x``, upstream gradient ``g``, the
    forward outputs ``p``/``lp`` (inputs of the backward passes) and two
    preallocated, touched outputs ``dst`` (np.copyto) and ``out`` (xent out=)."""
    shape, dtype = request.param
    rng = np.random.default_rng(12345)
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 4
    d = {
        "x": x,
        "g": rng.standard_normal(shape, dtype=dtype),
        "p": xent.softmax(x),
        "lp": xent.log_softmax(x),
        "dst": _touched(np.empty_like(x)),
        "out": _touched(np.empty_like(x)),
    }
    yield d
    d.clear()
