"""``python -m xent bench --grid``: every registered function at every class count.

For each function of the registry (``xent._registry``: its variants too),
each class count, each array size and dtype, the grid times xent (forward and
backward where the function has a gradient, outputs preallocated), xent on
one thread, and ``np.copyto`` of the function's largest input, in turns
(interleaved rounds, medians), and reports the ratio to the copy, the GB/s of
the input and the speedup of all threads over one. ``--plot`` draws GB/s
against the class count for every function.
"""

import statistics
import sys
import time

import numpy as np

from . import _registry
from ._threads import requested_threads

#: Class counts: small to LLM vocabularies, odd counts, and each path's
#: threshold +-1 (block path 48/64 (logsumexp 96/128), streamed rows 2048, chunks of 16384,
#: long rows 65536, 16 chunks a row 262144).
CLASSES = (2, 3, 10, 16, 17, 47, 48, 49, 64, 65, 100, 127, 128, 129, 255, 1000, 2047, 2048, 2049,
           4096, 16383, 16384, 16385, 32000, 65535, 65536, 65537, 131072, 262143, 262144)
QUICK_CLASSES = (2, 10, 100, 1000, 32000, 131072)
SIZES_MIB = (64, 4)
QUICK_SIZES_MIB = (2,)
ROUNDS = 3
IDLE_S = 0.02
TIMED_S = 0.02
SLOW_S = 0.3


def cases(only=None):
    """The registry's entries the grid measures (the metric has no threads;
    the partial statistics are measured on Dask, ``--dask``)."""
    return [e for e in _registry.ENTRIES if e.family not in ("metric", "partials")
            and (not only or any(t in e.label for t in only))]


def _call(e, args, out, n_threads):
    kw = {"n_threads": n_threads}
    if e.grad:
        kw["return_grad"] = True
    if e.out == "grad_out" or (e.out == "out" and e.name != "logsumexp"):
        kw[e.out] = out
    return e.bind(args, **kw)  # (b, where and other per-call inputs made once, untimed)


def measure(e, n, c, dtype, threads):
    """Median seconds of (np.copyto, xent, xent on one thread) for entry e on
    n x c values, in interleaved rounds."""
    rng = np.random.default_rng(0)
    args = e.make(rng, n, c, dtype)
    big = max((a for a in args if np.ndim(a) == 2), key=np.size)
    out = np.empty_like(big) if e.out else None
    dst = np.empty_like(big)
    calls = [("copy", lambda: np.copyto(dst, big)), ("xent", _call(e, args, out, threads)),
             ("xent 1 thread", _call(e, args, out, 1))]
    times = {k: [] for k, _ in calls}
    for _ in range(ROUNDS):
        for name, fn in calls:
            time.sleep(IDLE_S)
            fn()
            spent, done = 0.0, 0
            # at least 3 calls and TIMED_S, or one call of a slow case past SLOW_S
            while (done < 3 or spent < TIMED_S) and not (done and spent >= SLOW_S):
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                times[name].append(dt)
                spent, done = spent + dt, done + 1
    med = {k: statistics.median(v) for k, v in times.items()}
    return med, big.nbytes


def run(args, argv):
    threads = requested_threads(args.threads)
    classes = QUICK_CLASSES if args.quick else CLASSES
    sizes = QUICK_SIZES_MIB if args.quick else SIZES_MIB
    if args.classes:
        classes = tuple(int(c) for c in args.classes.split(","))
    if args.sizes:
        sizes = tuple(float(s) for s in args.sizes.split(","))
    dtypes = ("float32",) if args.quick else ("float32", "float64")
    if args.dtypes:
        dtypes = tuple(args.dtypes.split(","))
    entries = cases(args.only)
    if not entries:
        print(f"python -m xent bench --grid: no function matches --only {args.only}", file=sys.stderr)
        return 2
    total = len(entries) * len(classes) * len(sizes) * len(dtypes)
    results = []
    i = 0
    for e in entries:
        for dtype in dtypes:
            for mib in sizes:
                for c in classes:
                    i += 1
                    itemsize = np.dtype(dtype).itemsize
                    n = max(1, int(mib * 2**20) // (itemsize * c))
                    sys.stderr.write(f"\r[{i}/{total}] {e.label} {dtype} {mib:g} MiB C={c}".ljust(78))
                    sys.stderr.flush()
                    med, nbytes = measure(e, n, c, dtype, threads)
                    results.append({"function": e.label, "dtype": dtype, "mib": mib, "classes": c,
                                    "rows": n, "reads": e.reads, "medians_s": med,
                                    "ratio": med["xent"] / med["copy"],
                                    "gb_per_s": nbytes / med["xent"] / 1e9,
                                    "two_vs_one": med["xent 1 thread"] / med["xent"]})
    sys.stderr.write("\r" + " " * 78 + "\r")
    print(f"## xent bench --grid\n\n`python -m xent {' '.join(argv)}`, {threads} threads\n")
    print("Each cell: time of xent (forward and backward where the function has a gradient, "
          "outputs preallocated) / time of np.copyto of its largest input, medians of "
          f"interleaved rounds; then GB/s of that input and the speedup of {threads} threads "
          "over one.\n")
    print(table(results, sizes, dtypes))
    print()
    print(worst(results))
    if args.plot:
        plot(args.plot, results, threads)
        print(f"\nplot saved to {args.plot}")
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"command": ["python", "-m", "xent", *argv], "threads": threads,
                       "results": results}, f, indent=1)
    return 0


def table(results, sizes, dtypes):
    cols = [(d, s) for d in dtypes for s in sizes]
    lines = ["| function | C | " + " | ".join(f"{d} {s:g} MiB" for d, s in cols) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in cols) + " |"]
    by = {(r["function"], r["classes"], r["dtype"], r["mib"]): r for r in results}
    keys = []
    for r in results:
        k = (r["function"], r["classes"])
        if k not in keys:
            keys.append(k)
    for f, c in keys:
        cells = []
        for d, s in cols:
            r = by.get((f, c, d, s))
            cells.append("" if r is None else
                         f"{r['ratio']:.2f}x {r['gb_per_s']:.1f} GB/s {r['two_vs_one']:.2f}")
        lines.append(f"| {f} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def worst(results):
    """Per function, the worst ratio to the copy (and where)."""
    lines = ["| function | worst ratio to copy | at | bound | worst 2-vs-1 thread |",
             "| --- | ---: | --- | ---: | ---: |"]
    funcs = []
    for r in results:
        if r["function"] not in funcs:
            funcs.append(r["function"])
    for f in funcs:
        rs = [r for r in results if r["function"] == f]
        w = max(rs, key=lambda r: r["ratio"])
        t = min(rs, key=lambda r: r["two_vs_one"])
        bound = 1.5 if w["reads"] == 1 else 2.5
        lines.append(f"| {f} | {w['ratio']:.2f}x | {w['dtype']} {w['mib']:g} MiB C={w['classes']} | "
                     f"{bound}x | {t['two_vs_one']:.2f} |")
    return "\n".join(lines)


def plot(path, results, threads):
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, import-untyped, unused-ignore]

    funcs = []
    for r in results:
        if r["function"] not in funcs:
            funcs.append(r["function"])
    fig, ax = plt.subplots(figsize=(9, 6))
    dtype, mib = results[0]["dtype"], results[0]["mib"]
    for f in funcs:
        rs = [r for r in results if r["function"] == f and r["dtype"] == dtype and r["mib"] == mib]
        ax.plot([r["classes"] for r in rs], [r["gb_per_s"] for r in rs], "-o", ms=3, label=f)
    rs = [r for r in results if r["function"] == funcs[0] and r["dtype"] == dtype and r["mib"] == mib]
    copy = [r["gb_per_s"] * r["ratio"] for r in rs]
    ax.plot([r["classes"] for r in rs], copy, "k--", label="np.copyto")
    ax.set(xscale="log", yscale="log", xlabel="classes C", ylabel="GB/s of the input",
           title=f"xent, {dtype}, {mib:g} MiB inputs, {threads} threads")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
