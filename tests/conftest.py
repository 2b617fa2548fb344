"""Shared test helpers: float64 NumPy references and array layouts.

The compiled extension is imported unconditionally: if it is missing, every
test module fails at import (never skips).
"""

import os

# Under pytest-xdist the workers share the machine's cores: an OpenMP thread
# that busy-waits for its next parallel region (libgomp's default) then takes
# a core another worker's threads need. XGBoost's training loops (thousands of
# short parallel regions) ran 10-25x slower that way (27 s instead of 1-3 s).
# Idle OpenMP threads sleep instead; set before any OpenMP runtime loads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Keras 3 runs its live parity tests on the PyTorch backend (installed with the
# peers; Keras' default, TensorFlow, is not): set before Keras is imported.
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import xent  # noqa: E402
from xent import _dispatch  # noqa: E402
from xent import _kernels as _compiled  # noqa: F401,E402  (must import)


def pytest_configure(config):
    # also registered in pyproject.toml; here too for the copy of the tests
    # that .ci/run runs against the installed wheel (no pyproject.toml there)
    config.addinivalue_line(
        "markers", "slow: takes more than ~10 s or several GB of memory; runs by default "
        "(deselect locally with -m 'not slow')")


# XENT_TEST_ISAS=avx2,baseline restricts the ``isa`` fixture to those paths
# (.ci/sanitize: the best path's run covers every path through this fixture,
# the later runs of one path each only theirs). Unset: every path.
_TEST_ISAS = [i for i in _dispatch.supported_isas()
              if not os.environ.get("XENT_TEST_ISAS") or i in os.environ["XENT_TEST_ISAS"].split(",")]
if not _TEST_ISAS:
    raise RuntimeError(f"XENT_TEST_ISAS={os.environ['XENT_TEST_ISAS']!r} names none of this CPU's "
                       f"paths {_dispatch.supported_isas()}")


@pytest.fixture(params=_TEST_ISAS)
def isa(request):
    """Each instruction-set path this CPU runs, in turn (its name)."""
    with _dispatch.use_isa(request.param):
        yield request.param


def ref_logsumexp(x, axis=-1, keepdims=False):
    """float64 reference for finite input."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def ref_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def ref_log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    d = x - np.max(x, axis=axis, keepdims=True)
    return d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))


# rtol, atol against a float64 reference, per input dtype
TOL = {
    np.float64: (1e-13, 1e-14),
    np.float32: (3e-6, 1e-6),
    np.float16: (2e-3, 1e-3),
}


def assert_close(actual, expected, dtype):
    rtol, atol = TOL[np.dtype(dtype).type]
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


def layouts(x):
    """The same values in several memory layouts: (name, array) pairs."""
    out = [("C", np.ascontiguousarray(x)), ("F", np.asfortranarray(x))]
    if x.ndim >= 1 and x.shape[-1] > 0:
        rev = np.ascontiguousarray(x[..., ::-1])[..., ::-1]  # negative strides
        out.append(("reversed", rev))
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
        wide[..., ::2] = x
        out.append(("strided", wide[..., ::2]))
    ro = np.array(x)
    ro.setflags(write=False)
    out.append(("readonly", ro))
    raw = bytearray(x.nbytes + 1)
    un = np.frombuffer(raw, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)
    un[...] = x
    out.append(("unaligned", un))
    return out


def finite_difference_grad(f, x, h=1e-6):
    """Central differences of the scalar function f at the float64 array x."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


__all__ = ["xent"]
