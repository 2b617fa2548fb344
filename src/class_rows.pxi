# The softmax family's driver: logsumexp, softmax, log_softmax and the
# softmax cross-entropy are one call struct (xent_class_call, see
# src/xent_class.h), one path (class_path in _rows.pxd) and the parallel
# loops of that path's tasks here; every value is computed by the C ops of
# src/xent_class_typed.h. A row is computed by one task whatever the thread
# count, and a long row's chunks are merged in chunk order either way, so
# results are bit-identical for any thread count.

from cython.parallel cimport parallel, prange
from libc.stdint cimport uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _rows cimport (
    xent_ops, xent_class_call, xent_chunk, xent_row_terms, xent_stream, XENT_BLOCK, XENT_ROW_CHUNK,
    XENT_STACK_CHUNKS, XENT_CLS_SOFTMAX, BLOCKS_PER_CHUNK, STREAM_TASK, LONG_ROW, ClassPath,
    PATH_BLOCKS, PATH_ROWS, PATH_STREAMED, PATH_CHUNKS, LOSS_GROUP, class_path, stream_op,
    workspace_open, rows_per_chunk, floating, cfloat,
)

long_row = LONG_ROW
row_chunk = XENT_ROW_CHUNK


cdef inline void cls_block(const xent_class_call* a, Py_ssize_t i0, Py_ssize_t nb, bint f32) noexcept nogil:
    if f32:
        xent_ops.class_block_f32(a, i0, nb)
    else:
        xent_ops.class_block_f64(a, i0, nb)


cdef inline void cls_row(const xent_class_call* a, Py_ssize_t i, xent_stream* st, bint f32) noexcept nogil:
    if f32:
        xent_ops.class_row_f32(a, i, st)
    else:
        xent_ops.class_row_f64(a, i, st)


cdef inline void cls_close(xent_stream* st, bint f32) noexcept nogil:
    # the thread's pending output written, its workspace freed
    if st == NULL:
        return
    if f32:
        xent_ops.class_stream_close_f32(st)
    else:
        xent_ops.class_stream_close_f64(st)
    free(st)


cdef int run_chunks(xent_class_call* a, bint f32, int n_threads) noexcept nogil:
    # the chunks path: each long row's start, its chunks' statistics (parallel),
    # the rows' merges, the chunks' outputs (parallel)
    cdef Py_ssize_t n = a.n, per = (a.C + XENT_ROW_CHUNK - 1) // XENT_ROW_CHUNK, i, q
    cdef bint scratch = a.cap != 0 and a.out == NULL  # the softcap's y without an output
    cdef xent_stream* st
    cdef int failed[1]
    failed[0] = 0
    a.chunks = <xent_chunk*>malloc(n * per * sizeof(xent_chunk))
    a.rows = <xent_row_terms*>malloc(n * sizeof(xent_row_terms))
    if a.chunks == NULL or a.rows == NULL:
        free(a.chunks)
        free(a.rows)
        return -1
    for i in range(n):
        if f32:
            xent_ops.class_start_f32(a, i)
        else:
            xent_ops.class_start_f64(a, i)
    st = NULL
    with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
        st = workspace_open(a.C, -1, 4 if f32 else 8) if scratch else NULL
        if scratch and st == NULL:
            failed[0] = 1
        for q in prange(n * per, schedule="dynamic"):
            if st != NULL or not scratch:
                if f32:
                    xent_ops.class_chunk_stats_f32(a, q, st)
                else:
                    xent_ops.class_chunk_stats_f64(a, q, st)
        free(st)
    if failed[0] == 0:
        for i in range(n):
            if f32:
                xent_ops.class_row_merge_f32(a, i)
            else:
                xent_ops.class_row_merge_f64(a, i)
        if a.out != NULL:
            for q in prange(n * per, schedule="dynamic", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                if f32:
                    xent_ops.class_chunk_out_f32(a, q)
                else:
                    xent_ops.class_chunk_out_f64(a, q)
    free(a.chunks)
    free(a.rows)
    a.chunks, a.rows = NULL, NULL
    return -failed[0]


cdef int run_rows(xent_class_call* a, ClassPath path, bint f32, int n_threads) noexcept nogil:
    # the rows path: a task a row; streamed (a run of rows a task, their
    # outputs through the thread's stream) or with the thread's scratch row
    # where the call needs one
    cdef Py_ssize_t n = a.n, c = a.C, per = (c + XENT_ROW_CHUNK - 1) // XENT_ROW_CHUNK, i, j
    cdef Py_ssize_t step = STREAM_TASK // c if c < STREAM_TASK else 1
    cdef size_t itemsize = 4 if f32 else 8
    cdef bint scratch = a.cap != 0 and a.out == NULL
    cdef int sop = stream_op(a) if path == PATH_STREAMED else -1
    cdef xent_stream* st
    cdef int failed[1]
    failed[0] = 0
    if per > XENT_STACK_CHUNKS:
        a.chunks = <xent_chunk*>malloc(n * per * sizeof(xent_chunk))
        if a.chunks == NULL:
            return -1
    if sop < 0 and not scratch:
        for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c), num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            cls_row(a, i, NULL, f32)
    else:
        st = NULL
        with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
            # each thread's workspace (out of memory: a stream falls back to
            # the plain path, the same values)
            st = workspace_open(c, sop, itemsize)
            if scratch and st == NULL:
                failed[0] = 1
            for i in prange(0, n, step, schedule="dynamic"):
                if st != NULL or not scratch:
                    for j in range(i, min(i + step, n)):
                        cls_row(a, j, st, f32)
            cls_close(st, f32)
    free(a.chunks)
    a.chunks = NULL
    return -failed[0]


# ------------------------------------------------------- the reduced loss
# A reduced loss ("sum", "mean") is the sum of the per-row losses in groups
# of LOSS_GROUP rows: each group's sum (group_sum, compensated), then the
# groups' sums in order, compensated: one rule for every path, the
# fast path and loss_sum, deterministic (groups do not depend on the thread
# count) and accurate for any n. On the blocks path a group is one task whose
# losses stay in the thread's scratch (no per-row array: at a few classes it
# would be as large as the logits, written, faulted in and read again).

cdef inline void neumaier(double* s, double* c, double v) noexcept nogil:
    cdef double t = s[0] + v
    if (s[0] if s[0] >= 0 else -s[0]) >= (v if v >= 0 else -v):
        c[0] += (s[0] - t) + v
    else:
        c[0] += (v - t) + s[0]
    s[0] = t


cdef inline double neumaier_value(double s, double c) noexcept nogil:
    return s + c if s - s == 0 else s  # (inf or NaN: the plain sum)


cdef inline double group_sum(const double* v, Py_ssize_t n) noexcept nogil:
    # one group's sum (xent_loss_group_sum_, src/xent_rows_impl.h)
    return xent_ops.loss_group_sum(v, n)


cdef double grouped_sum(const double* v, Py_ssize_t n) noexcept nogil:
    # the reduced loss of n per-row losses
    cdef double s = 0.0, c = 0.0
    cdef Py_ssize_t g = 0
    while g < n:
        neumaier(&s, &c, group_sum(v + g, min(<Py_ssize_t>LOSS_GROUP, n - g)))
        g += LOSS_GROUP
    return neumaier_value(s, c)


cdef void rows_call(const xent_class_call* a, Py_ssize_t i0, Py_ssize_t nr, size_t itemsize,
                    double* loss, xent_class_call* sub) noexcept nogil:
    # sub: the call on rows i0 .. i0 + nr - 1 of a, their losses into loss
    cdef Py_ssize_t row = a.C * <Py_ssize_t>itemsize
    sub[0] = a[0]
    sub.n = nr
    sub.x = <const char*>a.x + i0 * row
    if a.out != NULL:
        sub.out = <char*>a.out + i0 * row
    if a.hess != NULL:
        sub.hess = <char*>a.hess + i0 * row
    if a.argmax != NULL:
        sub.argmax = a.argmax + i0
    if a.lse != NULL:
        sub.lse = <char*>a.lse + i0 * <Py_ssize_t>itemsize
    if a.target != NULL:
        sub.target = <const char*>a.target + i0 * row
    if a.labels != NULL:
        sub.labels = a.labels + i0
    if a.sw != NULL:
        sub.sw = a.sw + i0
    if a.gs != NULL:
        sub.gs = a.gs + i0 * a.gss
    sub.loss = loss


cdef double blocks_group(const xent_class_call* a, Py_ssize_t i0, Py_ssize_t nr, bint f32,
                         char* ws) noexcept nogil:
    # the blocks of rows i0 .. i0 + nr - 1 and the sum of their losses, in
    # the workspace ws (a call, then LOSS_GROUP losses)
    cdef xent_class_call* sub = <xent_class_call*>ws
    cdef double* loss = <double*>(ws + sizeof(xent_class_call))
    cdef Py_ssize_t i = 0
    rows_call(a, i0, nr, 4 if f32 else 8, loss, sub)
    while i < nr:
        cls_block(sub, i, min(<Py_ssize_t>XENT_BLOCK, nr - i), f32)
        i += XENT_BLOCK
    return group_sum(loss, nr)


cdef int run_blocks_sum(const xent_class_call* a, bint f32, int n_threads, double* total) noexcept nogil:
    # the blocks path of a reduced loss: a group of rows a task
    cdef Py_ssize_t n = a.n, ng = (n + LOSS_GROUP - 1) // LOSS_GROUP, g, nr
    cdef double* part = <double*>malloc(ng * sizeof(double))
    cdef double s = 0.0, c = 0.0
    cdef char* ws
    cdef int failed[1]
    if part == NULL:
        return -1
    failed[0] = 0
    ws = NULL
    with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
        ws = <char*>malloc(sizeof(xent_class_call) + LOSS_GROUP * sizeof(double))
        if ws == NULL:
            failed[0] = 1
        for g in prange(ng, schedule="dynamic"):
            if ws != NULL:
                nr = min(<Py_ssize_t>LOSS_GROUP, n - g * LOSS_GROUP)
                part[g] = blocks_group(a, g * LOSS_GROUP, nr, f32, ws)
        free(ws)
    if failed[0] == 0:
        for g in range(ng):
            neumaier(&s, &c, part[g])
        total[0] = neumaier_value(s, c)
    free(part)
    return -failed[0]


# ------------------------------------------------------------- bfloat16
# A call on bfloat16 rows (itemsize 2: x, a probability target, the outputs
# out, hess and lse hold bfloat16 bits) runs as float32 on widened rows, in
# place (the outputs overwrite the widened rows), then narrowed into the
# caller's outputs. As a rule a task is a group of rows widened in its
# thread's workspace, sized to stay in the core's cache, so no N x C float32
# array exists; a call the float32 path would split into chunks of long rows
# (too few rows for the threads) is widened whole instead, so that every
# thread works on it. The values are those of the float32 call on the
# widened rows, bit for bit (a row's value does not depend on its path but
# for the block path, which the class count alone chooses).

cdef enum:
    BF16_GROUP_BYTES = 262144  # float32 bytes of a group's rows (at least one row)
    BF16_PIECE = 65536         # values a task of a parallel conversion


cdef void bf16_convert(const void* s, void* d, Py_ssize_t m, bint widen, int n_threads) noexcept nogil:
    # m values widened (bfloat16 bits to float32) or narrowed (rounded to
    # nearest even), in pieces of BF16_PIECE on n_threads
    cdef Py_ssize_t q, lo, nq = (m + BF16_PIECE - 1) // BF16_PIECE
    for q in prange(nq, schedule="static", num_threads=n_threads, use_threads_if=n_threads > 1):
        lo = q * BF16_PIECE
        if widen:
            xent_ops.bf16_widen(<const uint16_t*>s + lo, <float*>d + lo, min(<Py_ssize_t>BF16_PIECE, m - lo))
        else:
            xent_ops.bf16_narrow(<const float*>s + lo, <uint16_t*>d + lo, min(<Py_ssize_t>BF16_PIECE, m - lo))


cdef inline Py_ssize_t bf16_arrays(const xent_class_call* a) noexcept nogil:
    # the float32 arrays of a widened row: x (and the outputs), target, hess
    return 1 + (a.target != NULL) + (a.hess != NULL)


cdef int bf16_rows(const xent_class_call* a, Py_ssize_t i0, Py_ssize_t nr, Py_ssize_t cap,
                   char* ws, double* loss, int n_threads, double* total) noexcept nogil:
    # rows i0 .. i0 + nr - 1 of a on n_threads, in the workspace ws (64-byte
    # aligned): the call, then for cap rows their x, target and hess as
    # a has them, and cap lse values, float32; their losses into loss, or
    # their reduced loss into total. -1 if out of memory.
    cdef xent_class_call* sub = <xent_class_call*>ws
    cdef Py_ssize_t c = a.C, m = nr * c
    cdef float* f = <float*>(ws + ((sizeof(xent_class_call) + 63) & ~(<size_t>63)))
    cdef int status
    rows_call(a, i0, nr, 2, loss, sub)
    bf16_convert(<const uint16_t*>a.x + i0 * c, f, m, True, n_threads)
    sub.x = f
    if a.out != NULL:
        sub.out = f
    f += cap * c
    if a.target != NULL:
        bf16_convert(<const uint16_t*>a.target + i0 * c, f, m, True, n_threads)
        sub.target = f
        f += cap * c
    if a.hess != NULL:
        sub.hess = f
        f += cap * c
    if a.lse != NULL:
        sub.lse = f
    status = run_class(sub, 4, n_threads, total)
    if a.out != NULL:
        bf16_convert(sub.out, <uint16_t*>a.out + i0 * c, m, False, n_threads)
    if a.hess != NULL:
        bf16_convert(sub.hess, <uint16_t*>a.hess + i0 * c, m, False, n_threads)
    if a.lse != NULL:
        bf16_convert(sub.lse, <uint16_t*>a.lse + i0, nr, False, 1)
    return status


cdef int run_bf16(xent_class_call* a, int n_threads, double* total) noexcept nogil:
    # the call on bfloat16 rows (above); with total, the reduced loss
    cdef Py_ssize_t n = a.n, c = a.C, g, ng, cap
    cdef size_t head = ((sizeof(xent_class_call) + 63) & ~(<size_t>63)) + 64
    cdef double* loss = a.loss
    cdef char* ws
    cdef void* raw
    cdef int failed[1]
    cdef int status
    if class_path(a, 4, n_threads) == PATH_CHUNKS:  # widened whole: every thread on its rows
        raw = malloc(head + (bf16_arrays(a) * n * c + n) * sizeof(float))
        if raw == NULL:
            return -1
        status = bf16_rows(a, 0, n, n, <char*>((<size_t>raw + 63) & ~(<size_t>63)), a.loss,
                           n_threads, total)
        free(raw)
        return status
    cap = min(max(<Py_ssize_t>1, <Py_ssize_t>BF16_GROUP_BYTES // (4 * c)), n) if c > 0 else n
    ng = (n + cap - 1) // cap
    failed[0] = 0
    if total != NULL:  # (the groups' losses, then their sum as the float32 call sums them)
        loss = <double*>malloc(n * sizeof(double))
        if loss == NULL:
            return -1
    ws, raw = NULL, NULL
    with parallel(num_threads=n_threads, use_threads_if=n_threads > 1 and ng > 1):
        raw = malloc(head + (bf16_arrays(a) * cap * c + cap) * sizeof(float))
        ws = <char*>((<size_t>raw + 63) & ~(<size_t>63)) if raw != NULL else NULL
        if ws == NULL:
            failed[0] = 1
        for g in prange(ng, schedule="dynamic"):
            if ws != NULL:
                if bf16_rows(a, g * cap, min(cap, n - g * cap), cap, ws,
                             loss + g * cap if loss != NULL else NULL, 1, NULL) != 0:
                    failed[0] = 1
        free(raw)
    if total != NULL:
        if failed[0] == 0:
            total[0] = grouped_sum(loss, n)
        free(loss)
    return -failed[0]


cdef int run_class(xent_class_call* a, size_t itemsize, int n_threads, double* total=NULL) noexcept nogil:
    # the call on its path (class_path); -1 if out of memory. With total
    # (a.loss NULL), the reduced loss goes there instead of per-row losses.
    # itemsize 2: bfloat16 rows (run_bf16).
    cdef ClassPath path
    cdef Py_ssize_t n = a.n, i
    cdef bint f32 = itemsize == 4
    cdef int status
    if total != NULL:
        total[0] = 0.0
    if n == 0:
        return 0
    if itemsize == 2:
        return run_bf16(a, n_threads, total)
    path = class_path(a, itemsize, n_threads)
    if total != NULL:
        if path == PATH_BLOCKS:
            return run_blocks_sum(a, f32, n_threads, total)
        a.loss = <double*>malloc(n * sizeof(double))
        if a.loss == NULL:
            return -1
        status = run_class(a, itemsize, n_threads)
        if status == 0:
            total[0] = grouped_sum(a.loss, n)
        free(a.loss)
        a.loss = NULL
        return status
    if path == PATH_BLOCKS:
        for i in prange(0, n, XENT_BLOCK, schedule="dynamic", chunksize=BLOCKS_PER_CHUNK,
                        num_threads=n_threads, use_threads_if=n_threads > 1):
            cls_block(a, i, min(<Py_ssize_t>XENT_BLOCK, n - i), f32)
        return 0
    if path == PATH_CHUNKS:
        return run_chunks(a, f32, n_threads)
    return run_rows(a, path, f32, n_threads)


cdef xent_class_call class_call(int op, const cfloat[:, ::1] x):
    # a call on the rows of x; the rest zeroed
    cdef xent_class_call a
    memset(&a, 0, sizeof(a))
    a.op = op
    a.n, a.C = x.shape[0], x.shape[1]
    a.x = &x[0, 0] if a.n > 0 and a.C > 0 else NULL
    a.ignore = -1
    return a


cdef inline void* rows_out(cfloat[:, ::1] out) noexcept:
    # the output rows, NULL for None or no values
    return &out[0, 0] if out is not None and out.shape[0] > 0 and out.shape[1] > 0 else NULL


cdef double call_class(xent_class_call* a, size_t itemsize, int n_threads, bint reduced=False) except? -1:
    # the call; reduced (a.loss NULL): returns the reduced loss
    cdef int status
    cdef double total = 0.0
    with nogil:
        status = run_class(a, itemsize, n_threads, &total if reduced else NULL)
    if status != 0:
        raise MemoryError()
    return total


def class_path_of(int op, Py_ssize_t n, Py_ssize_t c, size_t itemsize, int n_threads, bint out=True):
    """The path (0 blocks, 1 rows, 2 streamed rows, 3 chunks) a call of op
    (XENT_CLS_*: 0 logsumexp, 1 softmax, 2 log_softmax, 3 cross-entropy with
    labels) on n x c values of itemsize bytes takes (for tests)."""
    cdef xent_class_call a
    cdef double dummy = 0
    memset(&a, 0, sizeof(a))
    a.op, a.n, a.C = op, n, c
    a.out = &dummy if out else NULL
    a.labels = <const int64_t*>&dummy
    return <int>class_path(&a, itemsize, n_threads)


def long_rows_stream(Py_ssize_t n, Py_ssize_t c, size_t itemsize, int n_threads):
    """Whether long rows (n, c) of itemsize bytes on n_threads are taken a row
    per task with their output streamed (for tests)."""
    return c >= LONG_ROW and class_path_of(XENT_CLS_SOFTMAX, n, c, itemsize, n_threads) == PATH_STREAMED
