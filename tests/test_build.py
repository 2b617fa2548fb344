"""The package runs on its compiled extension and reports its configuration."""

import importlib.machinery
import os

import numpy as np

import xent
from xent._kernels import softmax as kernels


def test_kernels_are_a_compiled_extension():
    assert kernels.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_public_functions_use_the_compiled_kernels():
    # The public API module holds the compiled module, not a Python fallback.
    from xent import _softmax

    assert _softmax._k is kernels
    assert type(kernels.logsumexp_rows).__name__ in ("_FusedFunction", "fused_cython_function")


def test_show_config_reports_the_build(capsys):
    cfg = xent.show_config(mode="dicts")
    assert cfg["version"] == xent.__version__
    assert cfg["threads"] >= 1
    assert cfg["isa"] in cfg["isa_supported"]
    if os.environ.get("XENT_DISABLE_OPENMP", "0") in ("", "0"):
        assert cfg["openmp"] is True
    assert xent.show_config() is None
    printed = capsys.readouterr().out
    assert "openmp" in printed and xent.__version__ in printed


def test_show_config_rejects_unknown_mode():
    import pytest

    with pytest.raises(ValueError, match="mode"):
        xent.show_config(mode="yaml")


def test_all_exports_resolve():
    for name in xent.__all__:
        assert getattr(xent, name) is not None
    assert np.isfinite(xent.logsumexp(np.zeros(3)))


def test_docstring_examples():
    import doctest

    from xent import _binary, _cross_entropy, _focal, _softmax

    for module in (_softmax, _cross_entropy, _binary, _focal):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
