"""Thread policy: how many OpenMP threads a kernel call uses.

``n_threads=None`` asks the OpenMP runtime (``omp_get_max_threads``), which
honours ``OMP_NUM_THREADS`` and limits set with threadpoolctl; a positive int is
a count (at most the number of usable cores); a negative int counts back from
the usable cores (-1 = all, -2 = all but one, never fewer than one); 0 is an
error. Whatever was asked, inputs
smaller than ``MIN_PARALLEL_ELEMENTS`` run on one thread (starting a thread
team costs more than they take) and no more threads than rows are used.

Results never depend on the count: each row is computed by one thread. In
the child of an ``os.fork()`` every kernel runs on one thread (see below).
"""

import os

from . import _kernels as _k
from ._validate import integer

#: Inputs with fewer elements than this run on one thread.
MIN_PARALLEL_ELEMENTS = 1 << 15

# GNU libgomp's thread pool does not survive os.fork(): a child that starts a
# parallel region after its parent did can hang. Children of a fork therefore
# run every kernel on one thread (use the "spawn" or "forkserver" start
# methods of multiprocessing for threaded children).
_forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def cpu_count():
    """Cores this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def valid_count(n_threads):
    """Whether n_threads is a valid request whatever the machine (None or a
    nonzero int): the compiled common call, which runs on one thread (its
    inputs are below MIN_PARALLEL_ELEMENTS), takes any such request, since no
    result depends on the thread count; anything else goes to the general
    path, which raises."""
    return n_threads is None or (type(n_threads) is int and n_threads != 0)


def requested_threads(n_threads):
    """The thread count ``n_threads`` asks for, before the size policy."""
    if n_threads is None:
        return max(1, _k.omp_max_threads())
    n = integer(n_threads, "n_threads")
    if n == 0:
        raise ValueError(
            "n_threads: expected None, a positive count or a negative int counting "
            "back from the number of cores (-1 = all), got 0"
        )
    if n < 0:
        n = max(1, cpu_count() + 1 + n)
    # more threads than cores only slows down (and a huge count would exhaust
    # the OpenMP runtime)
    return min(n, cpu_count())


def row_tasks(n_rows, n_classes):
    """Parallel work units of the row kernels that split long rows
    (``n_classes >= long_row``) into chunks of ``row_chunk`` classes."""
    if n_classes >= _k.long_row:
        return n_rows * -(-n_classes // _k.row_chunk)
    return n_rows


def threads_for(n_threads, n_rows, n_elements):
    """Threads a kernel over ``n_rows`` rows and ``n_elements`` values uses."""
    n = requested_threads(n_threads)
    if n_elements < MIN_PARALLEL_ELEMENTS or _forked_child:
        return 1
    return max(1, min(n, n_rows))
