"""One registered function's call, timed alone, on one thread (not part of the tests).

    python benchmarks/registered.py "cross_entropy (focal)" 100 [seconds] [threads]

The registry entry of that label (``xent/_registry.py``: the grid's
function names, variants included) on 16M float32 values of C classes,
called as ``python -m xent bench --grid`` calls it (forward and backward,
outputs preallocated, per-call inputs made once), for the given seconds:
ns a value. To compare two builds, run it with each on PYTHONPATH, in turns.
"""

import sys
import time

import numpy as np

from xent import _grid, _registry


def main(argv):
    label, c = argv[0], int(argv[1])
    seconds = float(argv[2]) if len(argv) > 2 else 1.0
    threads = int(argv[3]) if len(argv) > 3 else 1
    entry = next(e for e in _registry.ENTRIES if e.label == label)
    n = (16 << 20) // c
    args = entry.make(np.random.default_rng(0), n, c, np.float32)
    big = max((a for a in args if np.ndim(a) == 2), key=np.size)
    call = _grid._call(entry, args, np.empty_like(big) if entry.out else None, threads)
    call()
    t0, calls = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        call()
        calls += 1
    ns = (time.perf_counter() - t0) / calls / (n * c) * 1e9
    print(f"{label} C={c} {threads} thread(s): {ns:.2f} ns a value")


if __name__ == "__main__":
    main(sys.argv[1:])
