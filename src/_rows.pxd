# Shared row primitives of every xent kernel.
#
# A "row" is the contiguous run of C values along the class axis. Every loss
# shifts its row by the row maximum m and sums exp(x_j - m); the functions here
# are the one place where that is done. The vectorised loops themselves are C
# (xent_rows_impl.h), compiled once per instruction set and called through the
# table xent_ops (xent_rows.h); this file adds the NaN/inf conventions and the
# fused-type front ends the Cython kernels call.
#
# Conventions (the NaN/inf contract of the whole library):
#   * row_max returns -inf for an empty row or a row of -inf; a NaN may or may
#     not be returned (either way the row's sum below is NaN).
#   * For a finite m, the weights are e_j = exp(x_j - m) and s = sum_j e_j >= 1
#     (NaN when the row holds a NaN).
#   * For an infinite m the weights are the limits: with m = +inf, e_j = 1 at
#     the +inf entries and 0 elsewhere (s = their count); with m = -inf every
#     e_j = 0 (s = 0). A NaN anywhere in the row makes s NaN.
#   Then logsumexp = m + log(s) holds in every case (-inf + log 0 = -inf).
#
# Accumulation: sums of exps are accumulated in float64 for float32 and
# float64 input alike (Kahan-compensated lanes for float64 input); the exp
# itself is computed in the input precision (at most a few ulp, tested).

from libc.math cimport log, INFINITY, NAN

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cdef extern from "xent_omp.h":
    int XENT_HAVE_OPENMP
    int xent_omp_max_threads() noexcept nogil
    int xent_omp_num_threads() noexcept nogil

cdef extern from "xent_rows.h":
    ctypedef struct xent_row_ops:
        const char* name
        float (*max_f32)(const float* x, Py_ssize_t n) noexcept nogil
        double (*sumexp_f32)(const float* x, float* e, Py_ssize_t n, float m) noexcept nogil
        void (*scale_f32)(float* e, Py_ssize_t n, double k) noexcept nogil
        void (*scale_sub_f32)(float* e, Py_ssize_t n, double k, double c, const double* w) noexcept nogil
        void (*shift_f32)(const float* x, float* out, Py_ssize_t n, double m, double log_s) noexcept nogil
        double (*sum_f32)(const float* x, Py_ssize_t n) noexcept nogil
        double (*dot_f32)(const float* a, const float* b, Py_ssize_t n) noexcept nogil
        void (*softmax_vjp_f32)(const float* p, const float* g, float* out, Py_ssize_t n, double dot) noexcept nogil
        void (*log_softmax_vjp_f32)(const float* lp, const float* g, float* out, Py_ssize_t n, double total) noexcept nogil
        float (*exp_f32)(float x) noexcept nogil
        double (*log_s_f32)(const float* v, Py_ssize_t n, float m, double s, int exps) noexcept nogil
        double (*max_f64)(const double* x, Py_ssize_t n) noexcept nogil
        double (*sumexp_f64)(const double* x, double* e, Py_ssize_t n, double m) noexcept nogil
        void (*scale_f64)(double* e, Py_ssize_t n, double k) noexcept nogil
        void (*scale_sub_f64)(double* e, Py_ssize_t n, double k, double c, const double* w) noexcept nogil
        void (*shift_f64)(const double* x, double* out, Py_ssize_t n, double m, double log_s) noexcept nogil
        double (*sum_f64)(const double* x, Py_ssize_t n) noexcept nogil
        double (*dot_f64)(const double* a, const double* b, Py_ssize_t n) noexcept nogil
        void (*softmax_vjp_f64)(const double* p, const double* g, double* out, Py_ssize_t n, double dot) noexcept nogil
        void (*log_softmax_vjp_f64)(const double* lp, const double* g, double* out, Py_ssize_t n, double total) noexcept nogil
        double (*exp_f64)(double x) noexcept nogil
        double (*log_s_f64)(const double* v, Py_ssize_t n, double m, double s, int exps) noexcept nogil
        void (*block_logs_f32)(const float* x, Py_ssize_t nb, Py_ssize_t c, const double* m, const double* s, double* ls) noexcept nogil
        void (*block_logs_f64)(const double* x, Py_ssize_t nb, Py_ssize_t c, const double* m, const double* s, double* ls) noexcept nogil
        void (*block_sumexp_f32)(const float* x, Py_ssize_t nb, Py_ssize_t c, float* ws, float* m, double* s) noexcept nogil
        void (*block_scale_f32)(float* ws, Py_ssize_t nb, Py_ssize_t c, const double* k, const double* f, const double* u, float* out) noexcept nogil
        void (*block_sumexp_f64)(const double* x, Py_ssize_t nb, Py_ssize_t c, double* ws, double* m, double* s) noexcept nogil
        void (*block_scale_f64)(double* ws, Py_ssize_t nb, Py_ssize_t c, const double* k, const double* f, const double* u, double* out) noexcept nogil
        void (*block_labels_f32)(const float* x, Py_ssize_t nb, Py_ssize_t c, const int64_t* y, int64_t ignore, const double* sw, const double* gs, Py_ssize_t gss, const double* w, const double* u, double eps, double total_w, double z, double* loss, float* grad) noexcept nogil
        void (*block_labels_f64)(const double* x, Py_ssize_t nb, Py_ssize_t c, const int64_t* y, int64_t ignore, const double* sw, const double* gs, Py_ssize_t gss, const double* w, const double* u, double eps, double total_w, double z, double* loss, double* grad) noexcept nogil
        void (*block_losses)(const double* m, const double* s, const double* ls, const double* a, const double* shifted, const double* sw, const double* f, double z, double* k, double* loss) noexcept nogil
        double (*bce_logits_f32)(const float* x, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const float* g, Py_ssize_t gst, double gscale, double smooth, float* loss, float* grad, int stream) noexcept nogil
        double (*bce_logits_f64)(const double* x, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const double* g, Py_ssize_t gst, double gscale, double smooth, double* loss, double* grad, int stream) noexcept nogil
        double (*bce_probs_f32)(const float* p, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const float* g, Py_ssize_t gst, double gscale, double smooth, double clip, float* loss, float* grad) noexcept nogil
        double (*bce_probs_f64)(const double* p, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const double* g, Py_ssize_t gst, double gscale, double smooth, double clip, double* loss, double* grad) noexcept nogil
        double (*bfocal_f32)(const float* x, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const float* g, Py_ssize_t gst, double gscale, double smooth, double gamma, double alpha, int has_alpha, float* loss, float* grad) noexcept nogil
        double (*bfocal_f64)(const double* x, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const double* g, Py_ssize_t gst, double gscale, double smooth, double gamma, double alpha, int has_alpha, double* loss, double* grad) noexcept nogil
        void (*info_f32)(const float* p, const float* q, Py_ssize_t nrows, Py_ssize_t C, int mode, int clip, double lo, double hi, double f, float* grad, double* out) noexcept nogil
        void (*info_f64)(const double* p, const double* q, Py_ssize_t nrows, Py_ssize_t C, int mode, int clip, double lo, double hi, double f, double* grad, double* out) noexcept nogil
        double (*sumexp_stream_f32)(const float* x, float* e, Py_ssize_t n, float m, const float* ep, float* out, double k, double c, int op) noexcept nogil
        float (*out1_f32)(float v, double k, double c, int op) noexcept nogil
        double (*sumexp_stream_f64)(const double* x, double* e, Py_ssize_t n, double m, const double* ep, double* out, double k, double c, int op) noexcept nogil
        double (*out1_f64)(double v, double k, double c, int op) noexcept nogil
    double XENT_NEAR_ONE_F32
    double XENT_NEAR_ONE_F64
    enum:
        XENT_SMALL_C
        XENT_BLOCK
        XENT_STREAM_SUB
        XENT_STREAM_MUL
        XENT_STREAM_SHIFT
    Py_ssize_t xent_stream_bytes
    void xent_set_stream_bytes(Py_ssize_t n) noexcept nogil
    Py_ssize_t xent_stream_min_c[2]
    void xent_set_stream_min_c(Py_ssize_t f32, Py_ssize_t f64) noexcept nogil
    const xent_row_ops* xent_ops
    const xent_row_ops* xent_isa_table(int i, int* supported) noexcept nogil
    const char* const xent_op_names[]

# The parallel loops hand out work dynamically, in chunks (a thread that is
# held up, as on a shared machine, leaves its share to the others; each row's
# result does not depend on the thread that computes it): blocks of the
# small-class path BLOCKS_PER_CHUNK at a time, rows about 16K values at a time.
cdef enum:
    BLOCKS_PER_CHUNK = 64


cdef inline Py_ssize_t rows_per_chunk(Py_ssize_t c) noexcept nogil:
    return 16384 // c if 0 < c < 16384 else 1


# Streamed rows: an output of at least xent_stream_bytes (beyond the cache;
# 32 MiB, a test hook in _isa.pxi changes it) of rows of
# XENT_SMALL_C < C < LONG_ROW classes is written with non-temporal stores, on
# the ISAs that have sumexp_stream_f32/_f64 (AVX-512). Beyond the cache a plain
# store first reads the line it writes; a streamed one does not. The rows go
# in tasks of about STREAM_TASK values; each row's exps go to a scratch row of
# the thread while the thread's row before is finished from its own and
# written (see xent_sumexp_stream_f32_ in xent_rows_impl.h): the same
# values, bit for bit, as the plain row path.
cdef enum:
    STREAM_TASK = 262144


cdef inline bint stream_isa(size_t itemsize) noexcept nogil:
    return xent_ops.sumexp_stream_f32 != NULL if itemsize == 4 else xent_ops.sumexp_stream_f64 != NULL


cdef inline bint streams(Py_ssize_t n, Py_ssize_t c, size_t itemsize) noexcept nogil:
    return (stream_isa(itemsize) and XENT_SMALL_C < c < LONG_ROW
            and c >= xent_stream_min_c[itemsize == 8]
            and n * c * <Py_ssize_t>itemsize >= xent_stream_bytes)


cdef inline Py_ssize_t stream_task_rows(Py_ssize_t c) noexcept nogil:
    return STREAM_TASK // c if c < STREAM_TASK else 1


cdef inline Py_ssize_t stream_row_pad(Py_ssize_t c) noexcept nogil:
    return (c + 15) & ~(<Py_ssize_t>15)


cdef enum:
    LONG_STREAM_CHUNKS = 16  # the most chunks of a streamed long row (see long_streams)


cdef struct Stream:
    # a thread's streamed rows: its scratch and the row whose output is pending
    Py_ssize_t n        # the row length
    size_t itemsize     # 4 (float32) or 8 (float64)
    int op              # XENT_STREAM_SUB, _MUL or _SHIFT
    char* scr           # two scratch rows, 64-byte aligned, stream_row_pad(n) values apart
    const void* src     # the pending row's exps (or logits for _SHIFT); NULL: none
    void* out           # where its output goes
    double k, c         # its factors (sumexp_stream_f32/_f64)
    Py_ssize_t fix      # an entry set apart after its stores (-1: none):
    double fix_delta    # out[fix] = out1(src[fix]) - fix_delta, rounded once
    Py_ssize_t per      # a long row pending: its chunks (0: a row of the row path)
    double ks[LONG_STREAM_CHUNKS]  # and each chunk's k (NaN: written already)


cdef inline Stream* stream_open(Py_ssize_t n, int op, size_t itemsize) noexcept nogil:
    # a thread's state (NULL if out of memory: the caller takes the plain path)
    cdef Stream* st = <Stream*>malloc(sizeof(Stream) + 2 * stream_row_pad(n) * itemsize + 64)
    if st != NULL:
        st.n, st.itemsize, st.op, st.src, st.out, st.fix, st.per = n, itemsize, op, NULL, NULL, -1, 0
        st.scr = <char*>((<size_t>(st + 1) + 63) & ~(<size_t>63))
    return st


cdef inline void stream_out(const void* src, void* out, Py_ssize_t n, double k, double c, int op,
                            size_t itemsize) noexcept nogil:
    # out_j = the op (k, c) of src_j for n values, streamed, then fenced
    if itemsize == 4:
        xent_ops.sumexp_stream_f32(NULL, NULL, n, 0, <const float*>src, <float*>out, k, c, op)
    else:
        xent_ops.sumexp_stream_f64(NULL, NULL, n, 0, <const double*>src, <double*>out, k, c, op)


cdef inline void stream_set1(const void* src, void* out, Py_ssize_t j, double k, double c, int op,
                             double delta, size_t itemsize) noexcept nogil:
    # out_j = (stream_out's out_j) - delta, rounded once: an entry set apart
    # after its stream
    if itemsize == 4:
        (<float*>out)[j] = <float>(xent_ops.out1_f32((<const float*>src)[j], k, c, op) - delta)
    else:
        (<double*>out)[j] = xent_ops.out1_f64((<const double*>src)[j], k, c, op) - delta


cdef inline void stream_fixed(Stream* st) noexcept nogil:
    # the pending output written (and fenced): its entry set apart, if any
    if st.src != NULL and st.fix >= 0:
        stream_set1(st.src, st.out, st.fix, st.k, st.c, st.op, st.fix_delta, st.itemsize)
    st.src = NULL


cdef inline void* stream_free_row(Stream* st) noexcept nogil:
    # the scratch row the pending output does not use
    return st.scr + stream_row_pad(st.n) * st.itemsize if st.src == st.scr else st.scr


cdef inline double stream_row(Stream* st, const void* x, double m, void** e) noexcept nogil:
    # sum_j exp(x_j - m) of a row with a finite maximum m, the exps to a free
    # scratch row (returned in *e) unless e is NULL, while the pending output
    # is written
    cdef void* ex = NULL
    cdef double s
    if e != NULL:
        ex = stream_free_row(st)
        e[0] = ex
    if st.itemsize == 4:
        s = xent_ops.sumexp_stream_f32(<const float*>x, <float*>ex, st.n, <float>m, <const float*>st.src,
                                       <float*>st.out if st.src != NULL else NULL, st.k, st.c, st.op)
    else:
        s = xent_ops.sumexp_stream_f64(<const double*>x, <double*>ex, st.n, m, <const double*>st.src,
                                       <double*>st.out if st.src != NULL else NULL, st.k, st.c, st.op)
    stream_fixed(st)
    return s


cdef inline void stream_pend(Stream* st, const void* src, void* out, double k, double c,
                             Py_ssize_t fix, double fix_delta) noexcept nogil:
    # out (from src) is the next output to write
    st.src, st.out, st.k, st.c, st.fix, st.fix_delta = src, out, k, c, fix, fix_delta


cdef inline void stream_close(Stream* st) noexcept nogil:
    # the last pending output written; st freed
    if st == NULL:
        return
    if st.per:
        stream_long_flush(st)
    elif st.src != NULL:
        stream_out(st.src, st.out, st.n, st.k, st.c, st.op, st.itemsize)
        stream_fixed(st)
    free(st)


ctypedef fused floating:
    float
    double


cdef inline floating xexp(floating x) noexcept nogil:
    if floating is float:
        return xent_ops.exp_f32(x)
    else:
        return xent_ops.exp_f64(x)


# Long rows: rows of at least LONG_ROW classes are split along the class axis
# into chunks of ROW_CHUNK classes (the split never depends on the thread
# count); see src/softmax.pxi and src/cross_entropy.pxi.
cdef enum:
    LONG_ROW = 65536
    ROW_CHUNK = 16384


cdef inline Py_ssize_t chunks_per_row(Py_ssize_t c) noexcept nogil:
    return (c + ROW_CHUNK - 1) // ROW_CHUNK


# A row's chunks are tasks of their own only when there are too few rows to
# keep every thread busy (fewer than LONG_ROWS_PER_THREAD a thread); else a
# task is a whole row, so its exps (or logits) are still in the cache when its
# output is written. The chunks, their merge and so the values are the same
# either way.
cdef enum:
    LONG_ROWS_PER_THREAD = 4


cdef inline bint long_by_rows(Py_ssize_t n, int n_threads) noexcept nogil:
    return n >= LONG_ROWS_PER_THREAD * <Py_ssize_t>n_threads


# Long rows by rows stream their output as the rows of the row path do (see
# streams() above) when a row's exps fit a scratch row of LONG_STREAM_ROW
# bytes (in the cache): each chunk's exps go to the thread's scratch row,
# and its output is streamed from there.
cdef enum:
    LONG_STREAM_ROW = 1048576


cdef inline bint long_streams(Py_ssize_t n, Py_ssize_t c, size_t itemsize) noexcept nogil:
    return (stream_isa(itemsize) and c * <Py_ssize_t>itemsize <= LONG_STREAM_ROW
            and c >= xent_stream_min_c[itemsize == 8]
            and chunks_per_row(c) <= LONG_STREAM_CHUNKS
            and n * c * <Py_ssize_t>itemsize >= xent_stream_bytes)


cdef inline Py_ssize_t chunk_width(Py_ssize_t c, Py_ssize_t j0) noexcept nogil:
    return min(<Py_ssize_t>ROW_CHUNK, c - j0)


# A thread's long rows by rows, streamed: a row's chunks are taken in order;
# each one's exps (for a finite max) go to the free scratch row while the
# same chunk of the thread's row before is written from the other
# (stream_chunk); then the row's output is pending (stream_long_pend), each
# chunk's k in st.ks (NaN for a chunk the caller wrote on the plain path).
cdef inline double stream_chunk(Stream* st, const void* xk, double m, Py_ssize_t j0, Py_ssize_t width,
                                void* ek) noexcept nogil:
    # the sum of exps of the chunk xk (classes j0 .. j0 + width - 1 of its row;
    # a finite max m) into ek unless NULL, while the pending row's chunk j0 is
    # written; xk NULL: only that
    cdef double k = st.ks[j0 // ROW_CHUNK] if st.src != NULL else NAN
    cdef const char* ep = NULL
    cdef char* out = NULL
    cdef double s = 0.0
    if k == k:
        ep = <const char*>st.src + j0 * <Py_ssize_t>st.itemsize
        out = <char*>st.out + j0 * <Py_ssize_t>st.itemsize
    elif xk == NULL:
        return 0.0
    if st.itemsize == 4:
        s = xent_ops.sumexp_stream_f32(<const float*>xk, <float*>ek, width, <float>m, <const float*>ep,
                                       <float*>out, k, st.c, st.op)
    else:
        s = xent_ops.sumexp_stream_f64(<const double*>xk, <double*>ek, width, m, <const double*>ep,
                                       <double*>out, k, st.c, st.op)
    if out != NULL and j0 <= st.fix < j0 + width:  # after the stream's fence
        stream_set1(st.src, st.out, st.fix, k, st.c, st.op, st.fix_delta, st.itemsize)
    return s


cdef inline void stream_long_pend(Stream* st, const void* src, void* out, double c, Py_ssize_t fix,
                                  double fix_delta) noexcept nogil:
    # the long row out (from src; its chunks' k in st.ks) is the next output
    st.src, st.out, st.c, st.fix, st.fix_delta = src, out, c, fix, fix_delta
    st.per = chunks_per_row(st.n)


cdef inline void stream_long_written(Stream* st) noexcept nogil:
    # nothing pending (the row's chunks were all written)
    st.src = NULL
    st.per = 0


cdef inline void stream_long_flush(Stream* st) noexcept nogil:
    # the pending long row written, chunk by chunk
    cdef Py_ssize_t q
    for q in range(st.per):
        stream_chunk(st, NULL, 0.0, q * ROW_CHUNK, chunk_width(st.n, q * ROW_CHUNK), NULL)
    stream_long_written(st)


cdef inline bint is_finite(floating x) noexcept nogil:
    # True for finite x; False for +-inf and NaN (x - x is NaN for those).
    return x - x == 0


cdef inline floating row_max(const floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return xent_ops.max_f32(x, n)
    else:
        return xent_ops.max_f64(x, n)


cdef inline double nonfinite_row_sum(const floating* x, Py_ssize_t n, floating m) noexcept nogil:
    # s for a row whose maximum m is +inf, -inf or NaN (see the conventions above).
    cdef double s = 0.0
    cdef Py_ssize_t j
    for j in range(n):
        if x[j] != x[j]:
            return x[j]
        if m == INFINITY and x[j] == INFINITY:
            s += 1.0
    return s


cdef inline double row_sum_exp(const floating* x, Py_ssize_t n, floating m) noexcept nogil:
    # s = sum_j e_j for the row maximum m, finite or not.
    if not is_finite(m):
        return nonfinite_row_sum(x, n, m)
    if floating is float:
        return xent_ops.sumexp_f32(x, NULL, n, m)
    else:
        return xent_ops.sumexp_f64(x, NULL, n, m)


cdef inline double row_store_exp(const floating* x, floating* e, Py_ssize_t n, floating m) noexcept nogil:
    # Writes e_j to e and returns s. e may be the same memory as x.
    cdef double s
    cdef Py_ssize_t j
    if not is_finite(m):
        s = nonfinite_row_sum(x, n, m)  # before e (which may be x) is written
        for j in range(n):
            e[j] = 1 if (m == INFINITY and x[j] == INFINITY) else 0
        return s
    if floating is float:
        return xent_ops.sumexp_f32(x, e, n, m)
    else:
        return xent_ops.sumexp_f64(x, e, n, m)


cdef inline double row_log_s(const floating* v, Py_ssize_t n, floating m, double s,
                             bint exps) noexcept nogil:
    # log(s) of a row of max m and sum of exps s: log1p of the terms other
    # than the max's own when s is near 1 (xent_log_s_ in xent_rows_typed.h;
    # v the row's logits, or with exps its exps exp(x_j - m)), else log(s)
    if floating is float:
        if s < XENT_NEAR_ONE_F32 and is_finite(m):
            return xent_ops.log_s_f32(v, n, m, s, exps)
    else:
        if s < XENT_NEAR_ONE_F64 and is_finite(m):
            return xent_ops.log_s_f64(v, n, m, s, exps)
    return log(s)


cdef inline floating row_logsumexp(floating m, double log_s) noexcept nogil:
    # log(sum_j exp(x_j)) from the shift m and log(s) (row_log_s; every case
    # of the contract)
    return <floating>(m + log_s)


cdef inline void row_scale(floating* e, Py_ssize_t n, double k) noexcept nogil:
    # e_j *= k (in float64)
    if floating is float:
        xent_ops.scale_f32(e, n, k)
    else:
        xent_ops.scale_f64(e, n, k)


cdef inline void row_scale_sub(floating* e, Py_ssize_t n, double k, double c,
                               const double* w) noexcept nogil:
    # e_j = e_j * k - c * w_j (w NULL: w_j = 1)
    if floating is float:
        xent_ops.scale_sub_f32(e, n, k, c, w)
    else:
        xent_ops.scale_sub_f64(e, n, k, c, w)


cdef inline void row_shift(const floating* x, floating* out, Py_ssize_t n, double m,
                           double log_s) noexcept nogil:
    # out_j = (x_j - m) - log_s (out may be x)
    if floating is float:
        xent_ops.shift_f32(x, out, n, m, log_s)
    else:
        xent_ops.shift_f64(x, out, n, m, log_s)


cdef inline double row_sum(const floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return xent_ops.sum_f32(x, n)
    else:
        return xent_ops.sum_f64(x, n)


cdef inline double row_dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return xent_ops.dot_f32(a, b, n)
    else:
        return xent_ops.dot_f64(a, b, n)


cdef inline void row_softmax_vjp(const floating* p, const floating* g, floating* out,
                                 Py_ssize_t n, double dot) noexcept nogil:
    # out_j = p_j * (g_j - dot)
    if floating is float:
        xent_ops.softmax_vjp_f32(p, g, out, n, dot)
    else:
        xent_ops.softmax_vjp_f64(p, g, out, n, dot)


cdef inline void row_log_softmax_vjp(const floating* lp, const floating* g, floating* out,
                                     Py_ssize_t n, double total) noexcept nogil:
    # out_j = g_j - exp(lp_j) * total
    if floating is float:
        xent_ops.log_softmax_vjp_f32(lp, g, out, n, total)
    else:
        xent_ops.log_softmax_vjp_f64(lp, g, out, n, total)


# ---------------------------------------------------------- small-class path
# Rows of at most XENT_SMALL_C classes, XENT_BLOCK at a time, vectorised
# across rows. ws is a workspace of XENT_SMALL_C * XENT_BLOCK values.

cdef inline void block_exp(const floating* x, Py_ssize_t nb, Py_ssize_t c, floating* ws,
                           floating* m, double* s) noexcept nogil:
    # ws[j * XENT_BLOCK + b] = e_j of row b (x + b * c), s[b] their sum, m[b]
    # the row maximum: the same conventions as row_store_exp, non-finite rows too
    # (those are handled in xent_block_sumexp).
    if floating is float:
        xent_ops.block_sumexp_f32(x, nb, c, ws, m, s)
    else:
        xent_ops.block_sumexp_f64(x, nb, c, ws, m, s)


cdef inline void block_logs(const floating* x, Py_ssize_t nb, Py_ssize_t c, const double* m,
                            const double* s, double* ls) noexcept nogil:
    # ls[b] = log(s[b]) of the rows x + b * c of maxima m, as row_log_s
    if floating is float:
        xent_ops.block_logs_f32(x, nb, c, m, s, ls)
    else:
        xent_ops.block_logs_f64(x, nb, c, m, s, ls)


cdef inline void block_scale(floating* ws, Py_ssize_t nb, Py_ssize_t c, const double* k,
                             const double* f, const double* u, floating* out) noexcept nogil:
    # out[b * c + j] = ws[j * XENT_BLOCK + b] * k[b] - f[b] * u[j] (u NULL: no offset)
    if floating is float:
        xent_ops.block_scale_f32(ws, nb, c, k, f, u, out)
    else:
        xent_ops.block_scale_f64(ws, nb, c, k, f, u, out)
