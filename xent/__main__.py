"""``python -m xent``: show the configuration and run a quick self-check.

Usage::

    python -m xent            # same as: python -m xent check
    python -m xent check      # configuration, correctness self-check, a timing
    python -m xent config     # configuration only
    python -m xent bench      # time xent against NumPy, SciPy, PyTorch and np.copyto
                              # (--quick, --repeats N, --threads N, --json F, --plot F.png)
"""

import argparse
import sys

import numpy as np

import xent
from xent import _bench


def _ref_log_softmax(x):
    x = x.astype(np.float64)
    d = x - x.max(axis=-1, keepdims=True)
    return d - np.log(np.exp(d).sum(axis=-1, keepdims=True))


def self_check(out=sys.stdout):
    """Check the compiled kernels against a NumPy float64 reference; True if all pass."""
    rng = np.random.default_rng(0)
    failures = []

    def check(name, ok):
        print(f"  {'ok  ' if ok else 'FAIL'} {name}", file=out)
        if not ok:
            failures.append(name)

    for dtype, tol in ((np.float64, 1e-13), (np.float32, 3e-6)):
        x = (rng.standard_normal((257, 1001)) * 10).astype(dtype)
        ref = _ref_log_softmax(x)
        check(f"log_softmax {np.dtype(dtype).name}", np.allclose(xent.log_softmax(x), ref, rtol=tol, atol=tol))
        check(f"softmax {np.dtype(dtype).name}", np.allclose(xent.softmax(x), np.exp(ref), rtol=tol, atol=tol))
        lse = xent.logsumexp(x)
        check(f"logsumexp {np.dtype(dtype).name}", np.allclose(lse, x.astype(np.float64)[:, 0] - ref[:, 0], rtol=tol))
    inf = np.inf
    edge = np.array([[-inf, -inf], [inf, 1.0], [np.nan, 0.0], [1e308, 1e308]])
    lse, p = xent.logsumexp(edge, return_grad=True)
    check("all -inf row: logsumexp -inf, softmax 0", lse[0] == -inf and not p[0].any())
    check("+inf entry: logsumexp +inf", lse[1] == inf)
    check("NaN stays in its row", np.isnan(lse[2]) and not np.isnan(lse[[0, 1, 3]]).any())
    check("1e308 offset: no overflow", lse[3] == 1e308 and np.array_equal(p[3], [0.5, 0.5]))
    a = (rng.standard_normal((2048, 300))).astype(np.float32)
    check("thread count does not change results",
          xent.softmax(a, n_threads=1).tobytes() == xent.softmax(a, n_threads=-1).tobytes())
    return not failures


def timing(out=sys.stdout, shape=(2048, 8192), repeats=7):
    """Median time of the kernels against np.copyto of the same float32 array."""
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    dst = np.empty_like(x)
    base = _bench.median_time(lambda: np.copyto(dst, x), repeats)
    gb = x.nbytes / 1e9
    print(f"  float32 {shape[0]}x{shape[1]} ({gb * 1e3:.0f} MB), median of {repeats}:", file=out)
    print(f"  {'np.copyto':<22}{base * 1e3:8.2f} ms  {gb / base:6.2f} GB/s  1.00x", file=out)
    for name, fn in (
        ("xent.logsumexp", lambda: xent.logsumexp(x)),
        ("xent.softmax", lambda: xent.softmax(x, out=dst)),
        ("xent.log_softmax", lambda: xent.log_softmax(x, out=dst)),
        ("NumPy log_softmax", lambda: _bench.np_log_softmax(x)),
    ):
        t = _bench.median_time(fn, repeats)
        print(f"  {name:<22}{t * 1e3:8.2f} ms  {gb / t:6.2f} GB/s  {t / base:.2f}x", file=out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m xent", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="{check,config,bench}")
    commands.add_parser("check", help="configuration, self-check and a timing (the default)")
    commands.add_parser("config", help="configuration only")
    what = "time xent against NumPy, SciPy, PyTorch and np.copyto (a markdown table)"
    _bench.add_arguments(commands.add_parser("bench", help=what, description=what))
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench.run(args, argv)
    print("xent configuration:")
    xent.show_config()
    if args.command == "config":
        return 0
    print("\nself-check against a NumPy float64 reference:")
    ok = self_check()
    print("\ntiming (ratio to np.copyto of the same array):")
    timing()
    print("\nself-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
