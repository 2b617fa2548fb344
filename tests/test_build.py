"""The package runs on its compiled extension and reports its configuration."""

import importlib.machinery
import os

import numpy as np

import xent
from xent import _kernels as kernels


def test_kernels_are_a_compiled_extension():
    assert kernels.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_public_functions_use_the_compiled_kernels():
    # The public API modules hold the compiled module, not a Python fallback.
    from xent import _binary, _cross_entropy, _focal, _information, _softmax

    for module in (_softmax, _cross_entropy, _binary, _focal, _information):
        assert module._k is kernels
    assert type(kernels.logsumexp_rows).__name__ in ("_FusedFunction", "fused_cython_function")


def _header_ops(path):
    """The ops of XENT_OPS in src/xent_rows.h, in order: XENT_TYPED_OPS(X, T,
    R) expanded for each type it is given, then the untyped ops."""
    import re

    text = open(path).read()
    start = text.index("#define XENT_TYPED_OPS(")
    body = text[start:text.index("\n\n", start)]
    per_type = re.findall(r"\bX\(\w+, (\w+)##T, \(", body)
    start = text.index("#define XENT_OPS(X)")
    ops = text[start:text.index("\n\n", start)]
    typed = [op + t for t in re.findall(r"XENT_TYPED_OPS\(X, (\w+), \w+\)", ops) for op in per_type]
    return typed + re.findall(r"\bX\(\w+, (\w+), \(", ops)


def _mirror_ops(path):
    import re

    return re.findall(r"\(\*(\w+)\)\(", open(path).read())


def test_one_list_of_row_operations():
    """The row operations are declared once (XENT_OPS in src/xent_rows.h):
    the table each instruction set fills, and the names the module reports,
    follow from it; the Cython mirror (src/_rows.pxd) names only ops of the
    list, with nothing left undeclared there that a kernel could miss."""
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1] / "src"
    names = kernels.op_names()
    assert len(names) == len(set(names)) > 30
    if src.is_dir():  # (the installed wheel's tests run without the sources)
        assert _header_ops(src / "xent_rows.h") == names
        assert sorted(_mirror_ops(src / "_rows.pxd")) == sorted(names)


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


def test_show_config_names_what_built_the_kernels():
    """The compiler, its flags (never fast-math nor a native-CPU target: the
    -inf/NaN contract and the run-time dispatch), the OpenMP version and the
    runtime this process loaded (the repaired wheel's vendored copy: .ci/run
    sets XENT_EXPECT_VENDORED_OPENMP for those runs), the paths compiled in."""
    import sys

    cfg = xent.show_config(mode="dicts")
    assert cfg["compiler"] and cfg["compiler"] != "unknown"
    flags = cfg["compile_flags"].split()
    assert not {"-ffast-math", "-Ofast", "-march=native", "-mtune=native"} & set(flags), flags
    assert cfg["isa_compiled"] and set(cfg["isa_supported"]) <= set(cfg["isa_compiled"])
    assert cfg["isa_compiled"][-1] == "baseline"
    if not cfg["openmp"]:
        assert cfg["openmp_version"] is None
        return
    assert float(cfg["openmp_version"]) >= 3.0
    if sys.platform.startswith("linux"):
        runtime = cfg["openmp_runtime"]
        assert runtime and os.path.isfile(runtime), runtime
        if os.environ.get("XENT_EXPECT_VENDORED_OPENMP"):
            # auditwheel vendors it beside the package (xent.libs/libgomp-<hash>.so...)
            libs = os.path.join(os.path.dirname(os.path.dirname(xent.__file__)), "xent.libs")
            assert os.path.dirname(runtime) == libs, (runtime, libs)


def test_version_has_one_source():
    """xent.__version__ is what the installed distribution says it is."""
    from importlib import metadata

    try:
        installed = metadata.version("xent")
    except metadata.PackageNotFoundError:  # (run from a source tree not installed)
        return
    assert installed == xent.__version__


def test_show_config_rejects_unknown_mode():
    import pytest

    with pytest.raises(ValueError, match="mode"):
        xent.show_config(mode="yaml")


def test_all_exports_resolve():
    for name in xent.__all__:
        assert getattr(xent, name) is not None
    assert np.isfinite(xent.logsumexp(np.zeros(3)))


def test_docstring_examples():
    """The >>> examples of every module with public functions run as written
    (docs/api.md renders them)."""
    import doctest

    from xent import _binary, _cross_entropy, _focal, _information, _softmax, metrics, objectives

    for module in (_softmax, _cross_entropy, _binary, _focal, _information, metrics, objectives):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
