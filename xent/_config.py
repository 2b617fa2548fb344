"""show_config(): what this build of xent is and how it will run."""

import platform

import numpy as np

from . import _threads
from ._dispatch import active_isa, stream_bytes, stream_classes, supported_isas
from . import _kernels as _k


def _cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return []
    wanted = ("SSE2", "AVX", "FMA3", "AVX2", "AVX512F", "AVX512_SKX", "NEON", "ASIMD")
    return [f for f in wanted if __cpu_features__.get(f)]


def config():
    """The build and run-time configuration as a dict."""
    from . import __version__

    return {
        "version": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "openmp": _k.openmp_enabled(),
        "threads": _threads.requested_threads(None),
        "cores": _threads.cpu_count(),
        "min_parallel_elements": _threads.MIN_PARALLEL_ELEMENTS,
        "isa": active_isa(),
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


def show_config(mode="stdout"):
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
