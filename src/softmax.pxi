# Kernels of the log-sum-exp family: logsumexp, softmax, log_softmax and the
# vector-Jacobian products of softmax and log_softmax.
#
# Every kernel takes C-contiguous (n_rows, C) arrays prepared by the Python
# layer (xent/_softmax.py), writes into outputs the Python layer allocated, does
# no validation, and runs its rows in parallel with OpenMP. A row is computed
# by one thread from start to end, so results do not depend on the thread
# count. Sums are accumulated in float64 (see _rows.pxd).
#
# Long rows (at least LONG_ROW classes) are split along the class axis into
# chunks of ROW_CHUNK values, whatever the thread count: each chunk's (max,
# sum of exps) pair is computed (the exps stored while the chunk is in
# cache), the pairs of a row are merged in chunk order
# (M = max m_k, S = sum_k s_k exp(m_k - M)), and a second pass over the
# chunks scales the stored exps (softmax) or shifts the row (log_softmax).
# The tasks are whole rows when there are enough rows for every thread (the
# second pass then reads the row from the cache), else chunks (so one huge
# row uses every thread); the result is the same for any thread count.

from cython.parallel cimport parallel, prange
from libc.math cimport exp, fabs, log, INFINITY, NAN
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _rows cimport (
    LONG_ROW, ROW_CHUNK, BLOCKS_PER_CHUNK, chunks_per_row, chunk_width, long_by_rows, long_streams, rows_per_chunk, floating, xexp, row_max, row_sum_exp, row_store_exp, row_log_s, row_logsumexp, row_scale, row_shift,
    row_sum, row_dot, row_softmax_vjp, row_log_softmax_vjp, block_exp, block_scale,
    xent_ops, xent_stream_bytes, XENT_SMALL_C, XENT_BLOCK,
    XENT_HAVE_OPENMP, xent_omp_max_threads, xent_omp_num_threads,
    XENT_STREAM_MUL, XENT_STREAM_SHIFT, is_finite, streams, stream_task_rows, Stream, stream_open, stream_row, stream_pend, stream_free_row, stream_chunk, stream_long_written, stream_long_pend,
    stream_close,
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
            lse[b] = row_logsumexp(m[b], row_log_s(x + b * c, c, m[b], s[b], False))
    if p != NULL:
        block_scale(ws, nb, c, k, f, NULL, p)


def long_rows_stream(Py_ssize_t n, Py_ssize_t c, size_t itemsize, int n_threads):
    """Whether long rows (n, c) of itemsize bytes on n_threads are taken a row
    per thread with their output streamed (for tests)."""
    return long_by_rows(n, n_threads) and long_streams(n, c, itemsize)


cdef inline void log_softmax_span(const floating* x, floating* out, Py_ssize_t width,
                                  floating m, double s, double log_s) noexcept nogil:
    # out = (x - m) - log(s) over a span of a row whose max is m and sum s
    # (log_s = log(s) from row_log_s)
    cdef Py_ssize_t j
    if s == 0:  # all -inf: log of a zero softmax
        for j in range(width):
            out[j] = -INFINITY
    elif m == INFINITY and s == s:  # limit: -log(k) at the k +inf entries, else -inf
        for j in range(width):
            out[j] = <floating>(-log_s) if x[j] == INFINITY else -INFINITY
    else:  # finite m, or NaN propagating through log_s
        row_shift(x, out, width, m, log_s)


cdef enum:
    LONG_LSE = 0      # the long-row outputs: logsumexp only,
    LONG_SOFTMAX = 1  # softmax (the exps stored, then scaled),
    LONG_LOG_SOFTMAX = 2  # log_softmax (the row shifted)


cdef inline void lse_long_chunk_stats(const floating* xk, floating* ek, Py_ssize_t j0, Py_ssize_t width,
                                  double* mk, double* sk, Stream* st) noexcept nogil:
    # a chunk xk (classes j0 .. j0 + width - 1) of a long row: its max into
    # mk, its sum of exps into sk, the exps into ek (unless NULL); with st (a
    # long row streamed), the pending row's chunk j0 is written meanwhile
    cdef floating mf = row_max(xk, width)
    mk[0] = mf
    if st != NULL:
        if is_finite(mf):
            sk[0] = stream_chunk(st, xk, mf, j0, width, ek)
            return
        stream_chunk(st, NULL, 0.0, j0, width, NULL)
    sk[0] = row_store_exp(xk, ek, width, mf) if ek != NULL else row_sum_exp(xk, width, mf)


cdef inline void lse_long_row_merge(const floating* x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t i, double* buf,
                                bint want_log) noexcept nogil:
    # row i's chunk pairs merged in chunk order: each chunk's max becomes its
    # factor exp(m_k - M) (buf[:T], T = n * per tasks; the sums in buf[T:2T]);
    # the row's M into buf[2T + i], its S = sum_k s_k exp(m_k - M) into
    # buf[2T + n + i], and with want_log log(S) into buf[2T + 2n + i]
    # (row_log_s: x, the logits, are still unwritten)
    cdef Py_ssize_t per = chunks_per_row(c), tasks = n * per, q
    cdef double top = -INFINITY, total = 0.0
    for q in range(i * per, (i + 1) * per):
        if buf[q] > top:
            top = buf[q]
    for q in range(i * per, (i + 1) * per):
        # (m_k == M: factor 1, also for M = +-inf, where m_k - M is NaN)
        buf[q] = 1.0 if buf[q] == top else exp(buf[q] - top)
        total = total + buf[tasks + q] * buf[q]
    buf[2 * tasks + i] = top
    buf[2 * tasks + n + i] = total
    buf[2 * tasks + 2 * n + i] = row_log_s(x + i * c, c, <floating>top, total, False) if want_log else 0.0


cdef inline void lse_long_chunk_out(const floating* xk, const floating* ek, floating* ok, Py_ssize_t width,
                                double f, double m, double s, double log_s, int op) noexcept nogil:
    # a chunk's output from its row's merged M = m and S = s, and its factor f:
    # softmax scales its exps ek (copied to ok first unless they are there)
    # by f / S, log_softmax shifts its logits xk
    cdef double k
    if op == LONG_SOFTMAX:
        if ek != ok:
            memcpy(ok, ek, width * sizeof(floating))
        row_scale(ok, width, 0.0 if s == 0 else f / s)  # all -inf: the softmax is 0, not 0/0
    elif op == LONG_LOG_SOFTMAX:
        log_softmax_span(xk, ok, width, <floating>m, s, log_s)


cdef inline double lse_long_chunk_k(floating m, double f, double s, int op) noexcept nogil:
    # the k of a chunk's streamed output (as lse_long_chunk_out: XENT_STREAM_MUL
    # by f / S for softmax, XENT_STREAM_SHIFT by M for log_softmax), or NaN
    # where it takes the plain path (a non-finite M, a scale of 1e38 or more)
    cdef double k
    if not is_finite(m):
        return NAN
    if op == LONG_SOFTMAX:
        k = 0.0 if s == 0 else f / s
        return k if fabs(k) < 1e38 else NAN
    return m


cdef inline void lse_long_row_task(const floating* x, floating* out, Py_ssize_t n, Py_ssize_t c,
                               Py_ssize_t i, double* buf, int op, bint want_log, Stream* st) noexcept nogil:
    # row i of lse_long_rows as one task: its chunks' pairs, their merge, its
    # output. With st (the thread's long rows streamed), softmax's exps go to
    # a scratch row, the row before is written meanwhile, and this row's
    # output is left pending.
    cdef Py_ssize_t per = chunks_per_row(c), tasks = n * per, q, j0, width
    cdef const floating* xr = x + i * c
    cdef floating* er = NULL
    cdef double k, m, s, log_s
    if op == LONG_SOFTMAX:
        er = <floating*>stream_free_row(st) if st != NULL else out + i * c
    for q in range(i * per, (i + 1) * per):
        j0 = (q - i * per) * ROW_CHUNK
        lse_long_chunk_stats(xr + j0, er + j0 if er != NULL else NULL, j0, chunk_width(c, j0),
                         &buf[q], &buf[tasks + q], st)
    if st != NULL:
        stream_long_written(st)
    lse_long_row_merge(x, n, c, i, buf, want_log)
    if op == LONG_LSE:
        return
    m, s, log_s = buf[2 * tasks + i], buf[2 * tasks + n + i], buf[2 * tasks + 2 * n + i]
    for q in range(i * per, (i + 1) * per):
        j0 = (q - i * per) * ROW_CHUNK
        width = chunk_width(c, j0)
        k = lse_long_chunk_k(<floating>m, buf[q], s, op) if st != NULL else NAN
        if st != NULL:
            st.ks[q - i * per] = k
        if k != k:
            lse_long_chunk_out(xr + j0, er + j0 if er != NULL else NULL, out + i * c + j0, width,
                           buf[q], m, s, log_s, op)
    if st != NULL:
        stream_long_pend(st, <const void*>er if op == LONG_SOFTMAX else <const void*>xr, out + i * c,
                         0.0 if op == LONG_SOFTMAX else log_s, -1, 0.0)


cdef int lse_long_rows(const floating* x, floating* out, floating* lse, Py_ssize_t n, Py_ssize_t c,
                   int op, int n_threads) noexcept nogil:
    # Long rows (see the top of this file): per chunk its (max, sum) pair
    # (lse_long_chunk_stats), per row the pairs merged (lse_long_row_merge), per chunk
    # the output (lse_long_chunk_out); lse[i] = M + log(S) unless lse is NULL.
    # With enough rows for every thread, a task is a whole row (lse_long_row_task),
    # so its exps or logits are still in the cache for the output, which is
    # streamed past the cache when it is large (long_streams); with fewer, a
    # task is a chunk, so one row uses every thread. The same values either
    # way. Returns -1 if out of memory.
    cdef Py_ssize_t per = chunks_per_row(c), tasks = n * per, i, k, j0
    cdef double* buf = <double*>malloc((2 * tasks + 3 * n + 1) * sizeof(double))
    cdef floating* e = out if op == LONG_SOFTMAX else NULL
    cdef bint want_log = op == LONG_LOG_SOFTMAX or lse != NULL
    cdef Stream* st
    if buf == NULL:
        return -1
    if long_by_rows(n, n_threads):
        if op != LONG_LSE and long_streams(n, c, sizeof(floating)):
            st = NULL
            with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
                # each thread's scratch and pending row
                st = stream_open(c, XENT_STREAM_MUL if op == LONG_SOFTMAX else XENT_STREAM_SHIFT,
                                 sizeof(floating))
                for i in prange(n, schedule="dynamic"):
                    lse_long_row_task(x, out, n, c, i, buf, op, want_log, st)
                stream_close(st)
        else:
            for i in prange(n, schedule="dynamic", num_threads=n_threads, use_threads_if=n_threads > 1):
                lse_long_row_task(x, out, n, c, i, buf, op, want_log, NULL)
    else:
        for k in prange(tasks, schedule="dynamic", num_threads=n_threads, use_threads_if=n_threads > 1):
            i = k // per
            j0 = (k % per) * ROW_CHUNK
            lse_long_chunk_stats(x + i * c + j0, e + i * c + j0 if e != NULL else NULL, j0, chunk_width(c, j0),
                             &buf[k], &buf[tasks + k], NULL)
        for i in range(n):
            lse_long_row_merge(x, n, c, i, buf, want_log)
        if op != LONG_LSE:
            for k in prange(tasks, schedule="dynamic", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                i = k // per
                j0 = (k % per) * ROW_CHUNK
                lse_long_chunk_out(x + i * c + j0, out + i * c + j0, out + i * c + j0, chunk_width(c, j0),
                               buf[k], buf[2 * tasks + i], buf[2 * tasks + n + i],
                               buf[2 * tasks + 2 * n + i], op)
    if lse != NULL:  # lse[i] = M + log(S)
        for i in range(n):
            lse[i] = <floating>(buf[2 * tasks + i] + buf[2 * tasks + 2 * n + i])
    free(buf)
    return 0


cdef void lse_run_long_rows(const floating* x, floating* out, floating* lse, Py_ssize_t n, Py_ssize_t c,
                        int op, int n_threads) except *:
    cdef int status
    with nogil:
        status = lse_long_rows(x, out, lse, n, c, op, n_threads)
    if status != 0:
        raise MemoryError()


def logsumexp_rows(const floating[:, ::1] x, floating[::1] lse, int n_threads):
    """lse[i] = log(sum_j exp(x[i, j]))."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    cdef floating m
    if c >= LONG_ROW and n > 0:
        lse_run_long_rows(&x[0, 0], <floating*>NULL, &lse[0], n, c, LONG_LSE, n_threads)
        return
    with nogil:
        if 0 < c <= XENT_SMALL_C:
            for i in prange(0, n, XENT_BLOCK, schedule="dynamic", chunksize=BLOCKS_PER_CHUNK,
                            num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                softmax_block(&x[i, 0], min(XENT_BLOCK, n - i), c, &lse[i], NULL)
        else:
            for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c), num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                m = row_max(&x[i, 0], c) if c > 0 else -INFINITY
                if c > 0:
                    lse[i] = row_logsumexp(m, row_log_s(&x[i, 0], c, m, row_sum_exp(&x[i, 0], c, m), False))
                else:
                    lse[i] = -INFINITY


cdef void softmax_rows_streamed(const floating* x, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t c,
                                floating* p, floating* lse, Stream* st) noexcept nogil:
    # Rows i0 .. i1 - 1 of softmax_rows with the output streamed (see
    # _rows.pxd): each row's exps go to a scratch row of the thread, and the
    # thread's row before is scaled from its own in the same loop; the same
    # values as the plain row path, bit for bit. Rows of a non-finite maximum
    # (and so a scale beyond 1e38) take the plain path; all rows when st is
    # NULL (out of memory).
    cdef Py_ssize_t i
    cdef floating* e
    cdef double s, k
    cdef floating m
    for i in range(i0, i1):
        m = row_max(x + i * c, c)
        if st == NULL or not is_finite(m):
            s = row_store_exp(x + i * c, p + i * c, c, m)
            row_scale(p + i * c, c, 0.0 if s == 0 else 1.0 / s)
        else:
            s = stream_row(st, x + i * c, m, <void**>&e)
            k = 0.0 if s == 0 else 1.0 / s
            if fabs(k) < 1e38:
                stream_pend(st, e, p + i * c, k, 0.0, -1, 0.0)
            else:
                memcpy(p + i * c, e, c * sizeof(floating))
                row_scale(p + i * c, c, k)
        if lse != NULL:
            lse[i] = row_logsumexp(m, row_log_s(x + i * c, c, m, s, False))


def softmax_rows(const floating[:, ::1] x, floating[:, ::1] p, int n_threads,
                 floating[::1] lse=None):
    """p[i] = softmax(x[i]), and lse[i] = logsumexp(x[i]) if lse is given; p may be x."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    cdef bint want_lse = lse is not None
    cdef floating m
    cdef double s
    cdef Stream* st
    if c >= LONG_ROW and n > 0:
        lse_run_long_rows(&x[0, 0], &p[0, 0], &lse[0] if want_lse else NULL, n, c, LONG_SOFTMAX, n_threads)
        return
    with nogil:
        if 0 < c <= XENT_SMALL_C:
            for i in prange(0, n, XENT_BLOCK, schedule="dynamic", chunksize=BLOCKS_PER_CHUNK,
                            num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                softmax_block(&x[i, 0], min(XENT_BLOCK, n - i), c,
                              &lse[i] if want_lse else NULL, &p[i, 0])
        elif streams(n, c, sizeof(floating)):
            st = NULL
            with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
                st = stream_open(c, XENT_STREAM_MUL, sizeof(floating))  # each thread's own
                for i in prange(0, n, stream_task_rows(c), schedule="dynamic"):
                    softmax_rows_streamed(&x[0, 0], i, min(i + stream_task_rows(c), n), c, &p[0, 0],
                                          &lse[0] if want_lse else NULL, st)
                stream_close(st)
        else:
            for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c), num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                if c == 0:
                    if want_lse:
                        lse[i] = -INFINITY
                    continue
                m = row_max(&x[i, 0], c)
                s = row_store_exp(&x[i, 0], &p[i, 0], c, m)
                if want_lse:
                    lse[i] = row_logsumexp(m, row_log_s(&p[i, 0], c, m, s, True))
                # all -inf: the softmax is 0, not 0/0
                row_scale(&p[i, 0], c, 0.0 if s == 0 else 1.0 / s)


cdef void log_softmax_rows_streamed(const floating* x, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t c,
                                    floating* out, Stream* st) noexcept nogil:
    # Rows i0 .. i1 - 1 of log_softmax_rows with the output streamed (see
    # _rows.pxd): the thread's row before is shifted from its logits (still
    # in the cache) and written while this row's sum of exps is taken; the
    # same values as the plain row path, bit for bit. Rows of a non-finite
    # maximum take the plain path; all rows when st is NULL (out of memory).
    # (out may be x: a row is written only after it was read.)
    cdef Py_ssize_t i
    cdef double s
    cdef floating m
    for i in range(i0, i1):
        m = row_max(x + i * c, c)
        if st == NULL or not is_finite(m):
            s = row_sum_exp(x + i * c, c, m)
            log_softmax_span(x + i * c, out + i * c, c, m, s, row_log_s(x + i * c, c, m, s, False))
        else:
            s = stream_row(st, x + i * c, m, NULL)
            stream_pend(st, x + i * c, out + i * c, m, row_log_s(x + i * c, c, m, s, False), -1, 0.0)


def log_softmax_rows(const floating[:, ::1] x, floating[:, ::1] out, int n_threads):
    """out[i] = x[i] - logsumexp(x[i]), computed as (x - m) - log(s); out may be x."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    cdef floating m
    cdef double s
    cdef Stream* st
    if c >= LONG_ROW and n > 0:
        lse_run_long_rows(&x[0, 0], &out[0, 0], <floating*>NULL, n, c, LONG_LOG_SOFTMAX, n_threads)
        return
    with nogil:
        if streams(n, c, sizeof(floating)):
            st = NULL
            with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
                st = stream_open(c, XENT_STREAM_SHIFT, sizeof(floating))  # each thread's own
                for i in prange(0, n, stream_task_rows(c), schedule="dynamic"):
                    log_softmax_rows_streamed(&x[0, 0], i, min(i + stream_task_rows(c), n), c,
                                              &out[0, 0], st)
                stream_close(st)
        else:
            for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c), num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                if c == 0:
                    continue
                m = row_max(&x[i, 0], c)
                s = row_sum_exp(&x[i, 0], c, m)
                log_softmax_span(&x[i, 0], &out[i, 0], c, m, s, row_log_s(&x[i, 0], c, m, s, False))


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
