# Kernels of the log-sum-exp family: logsumexp, softmax, log_softmax (on the
# softmax family's paths, src/class_rows.pxi) and the vector-Jacobian
# products of softmax and log_softmax.
#
# Every kernel takes C-contiguous (n_rows, C) arrays prepared by the Python
# layer (xent/_softmax.py), writes into outputs the Python layer allocated, does
# no validation, and runs its rows in parallel with OpenMP. A row is computed
# by one task whatever the thread count, so results do not depend on it. Sums
# are accumulated in float64 (see _rows.pxd).

from cython.parallel cimport parallel, prange
from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc

from _rows cimport (
    floating, cfloat, xexp, row_sum, row_dot, row_softmax_vjp, row_log_softmax_vjp, rows_per_chunk,
    xent_ops, XENT_SCALED_LSE, XENT_SCALED_SOFTMAX, XENT_SCALED_LOG_SOFTMAX,
    xent_class_call, XENT_CLS_LSE, XENT_CLS_SOFTMAX, XENT_CLS_LOG_SOFTMAX,
    XENT_HAVE_OPENMP, xent_omp_max_threads, xent_omp_num_threads,
)


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(XENT_HAVE_OPENMP)


def omp_max_threads():
    """omp_get_max_threads(): OMP_NUM_THREADS and threadpoolctl limits apply."""
    return xent_omp_max_threads()


def threads_used(int n_threads):
    """How many threads a kernel region started with ``n_threads`` really gets."""
    cdef int used[1]
    cdef Py_ssize_t i
    used[0] = 1
    with nogil:
        for i in prange(n_threads, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            if i == 0:
                used[0] = xent_omp_num_threads()  # a shared write, not a lastprivate
    return used[0]


def logsumexp_rows(const cfloat[:, ::1] x, cfloat[::1] lse, int n_threads):
    """lse[i] = log(sum_j exp(x[i, j]))."""
    cdef xent_class_call a = class_call(XENT_CLS_LSE, x)
    a.lse = &lse[0] if a.n > 0 else NULL
    call_class(&a, sizeof(cfloat), n_threads)


def softmax_rows(const cfloat[:, ::1] x, cfloat[:, ::1] p, int n_threads,
                 cfloat[::1] lse=None):
    """p[i] = softmax(x[i]), and lse[i] = logsumexp(x[i]) if lse is given; p may be x."""
    cdef xent_class_call a = class_call(XENT_CLS_SOFTMAX, x)
    a.out = rows_out(p)
    a.lse = &lse[0] if lse is not None and a.n > 0 else NULL
    call_class(&a, sizeof(cfloat), n_threads)


def log_softmax_rows(const cfloat[:, ::1] x, cfloat[:, ::1] out, int n_threads):
    """out[i] = x[i] - logsumexp(x[i]), computed as (x - m) - log(s); out may be x."""
    cdef xent_class_call a = class_call(XENT_CLS_LOG_SOFTMAX, x)
    a.out = rows_out(out)
    call_class(&a, sizeof(cfloat), n_threads)


SCALED_LSE = XENT_SCALED_LSE
SCALED_SOFTMAX = XENT_SCALED_SOFTMAX
SCALED_LOG_SOFTMAX = XENT_SCALED_LOG_SOFTMAX

cdef enum:
    SCALED_TASK_VALUES = 16384


def scaled_rows(const floating[:, ::1] x, const floating[:, :] b, const uint8_t[:, :] w, int op,
                floating[::1] res, floating[::1] sgn, floating[:, ::1] out, int n_threads):
    """The log-sum-exp family with scale factors b and a mask w (either None),
    per row of x (xent_scaled_ of src/xent_rows_typed.h, mode op): res[i]
    (and its sign into sgn unless None; without, a negative sum is NaN), out
    (unless None; may be x) the gradient, softmax or log_softmax. b and w:
    (n, C) views whose class stride is 0 or 1 element, any row stride."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], k, i0, nr
    cdef Py_ssize_t per = max(1, SCALED_TASK_VALUES // c) if c > 0 else n
    cdef Py_ssize_t tasks = (n + per - 1) // per if n > 0 else 0
    cdef Py_ssize_t brs = 0, bcs = 0, wrs = 0, wcs = 0
    cdef const floating* xp = &x[0, 0] if n > 0 and c > 0 else NULL
    cdef const floating* bp = NULL
    cdef const uint8_t* wp = NULL
    cdef floating* rp = &res[0] if n > 0 else NULL
    cdef floating* sp = &sgn[0] if sgn is not None and n > 0 else NULL
    cdef floating* op_ = &out[0, 0] if out is not None and n > 0 and c > 0 else NULL
    cdef floating* E
    cdef int failed[1]
    failed[0] = 0
    if n == 0:
        return
    if b is not None and c > 0:
        bp = &b[0, 0]
        brs, bcs = b.strides[0] // <Py_ssize_t>sizeof(floating), b.strides[1] // <Py_ssize_t>sizeof(floating)
    if w is not None and c > 0:
        wp = &w[0, 0]
        wrs, wcs = w.strides[0], w.strides[1]
    with nogil, parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
        E = <floating*>malloc((c if c > 0 else 1) * sizeof(floating))
        if E == NULL:
            failed[0] = 1
        for k in prange(tasks, schedule="static"):
            if E != NULL:
                i0 = k * per
                nr = min(per, n - i0)
                if floating is float:
                    xent_ops.scaled_f32(xp + i0 * c if xp != NULL else NULL, nr, c,
                                        bp + i0 * brs if bp != NULL else NULL, brs, bcs,
                                        wp + i0 * wrs if wp != NULL else NULL, wrs, wcs, op, rp + i0,
                                        sp + i0 if sp != NULL else NULL,
                                        op_ + i0 * c if op_ != NULL else NULL, E)
                else:
                    xent_ops.scaled_f64(xp + i0 * c if xp != NULL else NULL, nr, c,
                                        bp + i0 * brs if bp != NULL else NULL, brs, bcs,
                                        wp + i0 * wrs if wp != NULL else NULL, wrs, wcs, op, rp + i0,
                                        sp + i0 if sp != NULL else NULL,
                                        op_ + i0 * c if op_ != NULL else NULL, E)
        free(E)
    if failed[0]:
        raise MemoryError("logsumexp: no memory for the workspace of a thread")


def softmax_backward_rows(const floating[:, ::1] p, const floating[:, ::1] g,
                          floating[:, ::1] out, int n_threads):
    """out[i] = p[i] * (g[i] - <p[i], g[i]>): the VJP of softmax at output p."""
    cdef Py_ssize_t n = p.shape[0], c = p.shape[1], i, j
    cdef double dot
    with nogil:
        for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c), num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            dot = row_dot(&p[i, 0], &g[i, 0], c)
            row_softmax_vjp(&p[i, 0], &g[i, 0], &out[i, 0], c, dot)


def log_softmax_backward_rows(const floating[:, ::1] lp, const floating[:, ::1] g,
                              floating[:, ::1] out, int n_threads):
    """out[i] = g[i] - exp(lp[i]) * sum(g[i]): the VJP of log_softmax at output lp."""
    cdef Py_ssize_t n = lp.shape[0], c = lp.shape[1], i, j
    cdef double total
    with nogil:
        for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c), num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            total = row_sum(&g[i, 0], c)
            row_log_softmax_vjp(&lp[i, 0], &g[i, 0], &out[i, 0], c, total)


def exp_rows(const floating[:, ::1] x, floating[:, ::1] out):
    """out = exp(x) with the library's vectorised exp (for tests and benchmarks)."""
    cdef Py_ssize_t i, j
    with nogil:
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                out[i, j] = xexp(x[i, j])
