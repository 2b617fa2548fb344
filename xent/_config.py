"""show_config(): what this build of xent is and how it will run."""

from __future__ import annotations

import platform
from typing import Any, Dict, Literal, Optional, overload

import numpy as np

from . import _threads
from ._dispatch import active_isa, isa_paths, stream_bytes, stream_classes, supported_isas
from . import _kernels as _k


def _cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:  # NumPy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return []
    wanted = ("SSE2", "AVX", "FMA3", "AVX2", "AVX512F", "AVX512_SKX", "NEON", "ASIMD")
    return [f for f in wanted if __cpu_features__.get(f)]


# _OPENMP dates and the specification versions they name
_OPENMP_VERSIONS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5",
                    201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0"}


def _openmp_runtime():
    """The OpenMP runtime library this process loaded (Linux: from
    /proc/self/maps; a repaired wheel's vendored copy shows here), or None."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        name = path.rsplit("/", 1)[-1]
        if name.startswith(("libgomp", "libomp", "libiomp")):
            return path
    return None


def config():
    """The build and run-time configuration as a dict."""
    from . import __version__

    build = _k.build_info()
    return {
        "version": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "compiler": build["compiler"],
        "compile_flags": build["flags"],
        "openmp": _k.openmp_enabled(),
        "openmp_version": _OPENMP_VERSIONS.get(build["openmp_date"], str(build["openmp_date"]))
        if build["openmp_date"] else None,
        "openmp_runtime": _openmp_runtime(),
        "threads": _threads.requested_threads(None),
        "cores": _threads.cpu_count(),
        "min_parallel_elements": _threads.MIN_PARALLEL_ELEMENTS,
        "isa": active_isa(),
        "isa_compiled": isa_paths(),
        "isa_supported": supported_isas(),
        "cpu_features": _cpu_features(),
        "accumulation": "float64 sums of exps for float32 and float64 input",
        # float32 outputs this large (beyond the cache) are written with
        # non-temporal stores on the paths that have them (avx512)
        "stream_bytes": stream_bytes() if active_isa() == "avx512" else None,
        # ... and only for rows of at least this many classes (float32, float64),
        # where streaming was measured faster (docs/performance.md)
        "stream_classes": stream_classes() if active_isa() == "avx512" else None,
    }


@overload
def show_config(mode: Literal["stdout"] = ...) -> None: ...
@overload
def show_config(mode: Literal["dicts"]) -> Dict[str, Any]: ...
@overload
def show_config(mode: str) -> Optional[Dict[str, Any]]: ...
def show_config(mode: str = "stdout") -> Optional[Dict[str, Any]]:
    """Show the version, OpenMP, thread and instruction-set configuration.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default "stdout"
        Print a readable summary, or return it as a dict.

    Returns
    -------
    dict or None
        The configuration when ``mode="dicts"``.
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode: expected 'stdout' or 'dicts', got {mode!r}")
    cfg = config()
    if mode == "dicts":
        return cfg
    width = max(map(len, cfg))
    for key, value in cfg.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        print(f"{key:<{width}} : {value}")
    return None
