# Kernels of the log-sum-exp family: logsumexp, softmax, log_softmax and the
# vector-Jacobian products of softmax and log_softmax.
#
# Every kernel takes C-contiguous (n_rows, C) arrays prepared by the Python
# layer (xent/_softmax.py), writes into outputs the Python layer allocated, does
# no validation, and runs its rows in parallel with OpenMP. A row is computed
# by one thread from start to end, so results do not depend on the thread
# count. Sums are accumulated in float64 (see _rows.pxd).

from cython.parallel cimport prange
from libc.math cimport log, INFINITY

from _rows cimport (
    floating, xexp, row_max, row_sum_exp, row_store_exp, row_logsumexp, row_scale, row_shift,
    row_sum, row_dot, row_softmax_vjp, row_log_softmax_vjp, block_exp, block_scale,
    xent_row_ops, xent_ops, xent_isa_table, XENT_SMALL_C, XENT_BLOCK,
    XENT_HAVE_OPENMP, xent_omp_max_threads, xent_omp_num_threads,
)

include "_isa.pxi"


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


cdef inline void softmax_block(const floating* x, Py_ssize_t nb, Py_ssize_t c, floating* lse,
                               floating* p) noexcept nogil:
    # the small-class path for nb rows of x: lse (if not NULL) and softmax (if
    # p is not NULL), the same conventions as the row path
    cdef floating ws[XENT_SMALL_C * XENT_BLOCK]
    cdef floating m[XENT_BLOCK]
    cdef double s[XENT_BLOCK]
    cdef double k[XENT_BLOCK]
    cdef double f[XENT_BLOCK]
    cdef Py_ssize_t b
    block_exp(x, nb, c, ws, m, s)
    for b in range(XENT_BLOCK):
        k[b] = 0 if (b >= nb or s[b] == 0) else 1.0 / s[b]  # all -inf: softmax 0
        f[b] = 0
    if lse != NULL:
        for b in range(nb):
            lse[b] = row_logsumexp(m[b], s[b])
    if p != NULL:
        block_scale(ws, nb, c, k, f, NULL, p)


def logsumexp_rows(const floating[:, ::1] x, floating[::1] lse, int n_threads):
    """lse[i] = log(sum_j exp(x[i, j]))."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    cdef floating m
    with nogil:
        if 0 < c <= XENT_SMALL_C:
            for i in prange(0, n, XENT_BLOCK, schedule="static", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                softmax_block(&x[i, 0], min(XENT_BLOCK, n - i), c, &lse[i], NULL)
        else:
            for i in prange(n, schedule="static", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                m = row_max(&x[i, 0], c) if c > 0 else -INFINITY
                lse[i] = row_logsumexp(m, row_sum_exp(&x[i, 0], c, m) if c > 0 else 0.0)


def softmax_rows(const floating[:, ::1] x, floating[:, ::1] p, int n_threads,
                 floating[::1] lse=None):
    """p[i] = softmax(x[i]), and lse[i] = logsumexp(x[i]) if lse is given; p may be x."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    cdef bint want_lse = lse is not None
    cdef floating m
    cdef double s
    with nogil:
        if 0 < c <= XENT_SMALL_C:
            for i in prange(0, n, XENT_BLOCK, schedule="static", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                softmax_block(&x[i, 0], min(XENT_BLOCK, n - i), c,
                              &lse[i] if want_lse else NULL, &p[i, 0])
        else:
            for i in prange(n, schedule="static", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                if c == 0:
                    if want_lse:
                        lse[i] = -INFINITY
                    continue
                m = row_max(&x[i, 0], c)
                s = row_store_exp(&x[i, 0], &p[i, 0], c, m)
                if want_lse:
                    lse[i] = row_logsumexp(m, s)
                # all -inf: the softmax is 0, not 0/0
                row_scale(&p[i, 0], c, 0.0 if s == 0 else 1.0 / s)


def log_softmax_rows(const floating[:, ::1] x, floating[:, ::1] out, int n_threads):
    """out[i] = x[i] - logsumexp(x[i]), computed as (x - m) - log(s); out may be x."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, j
    cdef floating m
    cdef double s, log_s
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            if c == 0:
                continue
            m = row_max(&x[i, 0], c)
            s = row_sum_exp(&x[i, 0], c, m)
            log_s = log(s)
            if s == 0:  # all -inf: log of a zero softmax
                for j in range(c):
                    out[i, j] = -INFINITY
            elif m == INFINITY and s == s:  # limit: -log(k) at the k +inf entries, else -inf
                for j in range(c):
                    out[i, j] = <floating>(-log_s) if x[i, j] == INFINITY else -INFINITY
            else:  # finite m, or NaN propagating through log_s
                row_shift(&x[i, 0], &out[i, 0], c, m, log_s)


def softmax_backward_rows(const floating[:, ::1] p, const floating[:, ::1] g,
                          floating[:, ::1] out, int n_threads):
    """out[i] = p[i] * (g[i] - <p[i], g[i]>): the VJP of softmax at output p."""
    cdef Py_ssize_t n = p.shape[0], c = p.shape[1], i, j
    cdef double dot
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            dot = row_dot(&p[i, 0], &g[i, 0], c)
            row_softmax_vjp(&p[i, 0], &g[i, 0], &out[i, 0], c, dot)


def log_softmax_backward_rows(const floating[:, ::1] lp, const floating[:, ::1] g,
                              floating[:, ::1] out, int n_threads):
    """out[i] = g[i] - exp(lp[i]) * sum(g[i]): the VJP of log_softmax at output lp."""
    cdef Py_ssize_t n = lp.shape[0], c = lp.shape[1], i, j
    cdef double total
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
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
