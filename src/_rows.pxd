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

from libc.stdint cimport int64_t, uint8_t, uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

cdef extern from "xent_omp.h":
    int XENT_HAVE_OPENMP
    int xent_omp_max_threads() noexcept nogil
    int xent_omp_num_threads() noexcept nogil
    const char* XENT_COMPILER
    long XENT_OPENMP_DATE
    const char* XENT_BUILD_FLAGS

cdef extern from "xent_class.h":
    enum:
        XENT_CLS_LSE
        XENT_CLS_SOFTMAX
        XENT_CLS_LOG_SOFTMAX
        XENT_CLS_CE
        XENT_CLS_FOCAL
        XENT_HESS_EXACT
        XENT_HESS_CLIP
        XENT_HESS_ABS
        XENT_SMALL_C
        XENT_BLOCK
        XENT_ROW_CHUNK
        XENT_SF_TASK
        XENT_SF_FLAT
        XENT_STACK_CHUNKS
        XENT_STREAM_CHUNKS
    Py_ssize_t XENT_SF_WS(Py_ssize_t C)
    ctypedef struct xent_chunk:
        double m, s, t, w, f
    ctypedef struct xent_row_terms:
        double m, s, log_s, k, f, ay, xy, hq, hp, om
        int skip
    ctypedef struct xent_class_call:
        int op
        Py_ssize_t n, C
        const void* x
        void* out
        void* lse
        double* loss
        const int64_t* labels
        const void* target
        int64_t ignore
        const double* w
        const double* sw
        const double* gs
        Py_ssize_t gss
        const double* u
        double eps, total_w, z, cap
        double gamma
        const double* alpha
        void* hess
        double hfac, hmin
        int hpol
        int64_t* argmax
        xent_chunk* chunks
        xent_row_terms* rows
    ctypedef struct xent_stream:
        Py_ssize_t C
        int op
        size_t itemsize
        char* scr[2]
        int next
        int pending
        const void* src
        void* dst
        double c

cdef extern from "xent_rows.h":
    ctypedef struct xent_row_ops:
        const char* name
        int streams
        float (*max_f32)(const float* x, Py_ssize_t n) noexcept nogil
        double (*sumexp_f32)(const float* x, float* e, Py_ssize_t n, float m) noexcept nogil
        void (*scale_f32)(float* e, Py_ssize_t n, double k) noexcept nogil
        double (*sum_f32)(const float* x, Py_ssize_t n) noexcept nogil
        double (*dot_f32)(const float* a, const float* b, Py_ssize_t n) noexcept nogil
        void (*softmax_vjp_f32)(const float* p, const float* g, float* out, Py_ssize_t n, double dot) noexcept nogil
        void (*log_softmax_vjp_f32)(const float* lp, const float* g, float* out, Py_ssize_t n, double total) noexcept nogil
        float (*exp_f32)(float x) noexcept nogil
        double (*max_f64)(const double* x, Py_ssize_t n) noexcept nogil
        double (*sumexp_f64)(const double* x, double* e, Py_ssize_t n, double m) noexcept nogil
        void (*scale_f64)(double* e, Py_ssize_t n, double k) noexcept nogil
        double (*sum_f64)(const double* x, Py_ssize_t n) noexcept nogil
        double (*dot_f64)(const double* a, const double* b, Py_ssize_t n) noexcept nogil
        void (*softmax_vjp_f64)(const double* p, const double* g, double* out, Py_ssize_t n, double dot) noexcept nogil
        void (*log_softmax_vjp_f64)(const double* lp, const double* g, double* out, Py_ssize_t n, double total) noexcept nogil
        double (*exp_f64)(double x) noexcept nogil
        double (*bce_logits_f32)(const float* x, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const float* g, Py_ssize_t gst, double gscale, double smooth, float* loss, float* grad, int stream, float* hess, double hfac, int hpol, double hmin) noexcept nogil
        double (*bce_logits_f64)(const double* x, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const double* g, Py_ssize_t gst, double gscale, double smooth, double* loss, double* grad, int stream, double* hess, double hfac, int hpol, double hmin) noexcept nogil
        double (*bce_probs_f32)(const float* p, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const float* g, Py_ssize_t gst, double gscale, double smooth, double clip, float* loss, float* grad) noexcept nogil
        double (*bce_probs_f64)(const double* p, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const double* g, Py_ssize_t gst, double gscale, double smooth, double clip, double* loss, double* grad) noexcept nogil
        double (*bfocal_f32)(const float* x, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const float* g, Py_ssize_t gst, double gscale, double smooth, double gamma, double alpha, int has_alpha, float* loss, float* grad, float* hess, double hfac, int hpol, double hmin) noexcept nogil
        double (*bfocal_probs_f32)(const float* x, const float* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const float* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const float* g, Py_ssize_t gst, double gscale, double smooth, double clip, double gamma, double alpha, int has_alpha, float* loss, float* grad) noexcept nogil
        double (*bfocal_f64)(const double* x, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const double* g, Py_ssize_t gst, double gscale, double smooth, double gamma, double alpha, int has_alpha, double* loss, double* grad, double* hess, double hfac, int hpol, double hmin) noexcept nogil
        double (*bfocal_probs_f64)(const double* x, const double* t, Py_ssize_t n, const double* pw, Py_ssize_t pws, const double* w, Py_ssize_t ws, const uint8_t* m, Py_ssize_t ms, const double* g, Py_ssize_t gst, double gscale, double smooth, double clip, double gamma, double alpha, int has_alpha, double* loss, double* grad) noexcept nogil
        void (*sfocal_probs_f32)(const float* x, const float* t, const int64_t* labels, Py_ssize_t nrows, Py_ssize_t C, const double* alpha, double gamma, double smooth, const double* gs, Py_ssize_t gss, double* loss, float* grad, double* ws) noexcept nogil
        void (*sfocal_probs_f64)(const double* x, const double* t, const int64_t* labels, Py_ssize_t nrows, Py_ssize_t C, const double* alpha, double gamma, double smooth, const double* gs, Py_ssize_t gss, double* loss, double* grad, double* ws) noexcept nogil
        void (*info_f32)(const float* p, const float* q, Py_ssize_t nrows, Py_ssize_t C, int mode, int clip, double lo, double hi, const double* f, Py_ssize_t fs, float* grad, double* out, float* terms, const uint8_t* w, Py_ssize_t wrs, Py_ssize_t wcs, double smooth, int renorm, double gamma, const double* alpha) noexcept nogil
        void (*info_f64)(const double* p, const double* q, Py_ssize_t nrows, Py_ssize_t C, int mode, int clip, double lo, double hi, const double* f, Py_ssize_t fs, double* grad, double* out, double* terms, const uint8_t* w, Py_ssize_t wrs, Py_ssize_t wcs, double smooth, int renorm, double gamma, const double* alpha) noexcept nogil
        void (*distill_f32)(const float* s, const float* t, Py_ssize_t nrows, Py_ssize_t C, double it, int mode, double beta, const double* w, Py_ssize_t wst, const double* f, Py_ssize_t fs, double* loss, float* grad, double* ws) noexcept nogil
        void (*distill_f64)(const double* s, const double* t, Py_ssize_t nrows, Py_ssize_t C, double it, int mode, double beta, const double* w, Py_ssize_t wst, const double* f, Py_ssize_t fs, double* loss, double* grad, double* ws) noexcept nogil
        void (*scaled_f32)(const float* x, Py_ssize_t nrows, Py_ssize_t C, const float* b, Py_ssize_t brs, Py_ssize_t bcs, const uint8_t* w, Py_ssize_t wrs, Py_ssize_t wcs, int op, float* res, float* sgn, float* out, float* E) noexcept nogil
        void (*scaled_f64)(const double* x, Py_ssize_t nrows, Py_ssize_t C, const double* b, Py_ssize_t brs, Py_ssize_t bcs, const uint8_t* w, Py_ssize_t wrs, Py_ssize_t wcs, int op, double* res, double* sgn, double* out, double* E) noexcept nogil
        void (*class_block_f32)(const xent_class_call* a, Py_ssize_t i0, Py_ssize_t nb) noexcept nogil
        void (*class_row_f32)(const xent_class_call* a, Py_ssize_t i, xent_stream* st) noexcept nogil
        void (*class_start_f32)(const xent_class_call* a, Py_ssize_t i) noexcept nogil
        void (*class_chunk_stats_f32)(const xent_class_call* a, Py_ssize_t q, xent_stream* st) noexcept nogil
        void (*class_row_merge_f32)(const xent_class_call* a, Py_ssize_t i) noexcept nogil
        void (*class_chunk_out_f32)(const xent_class_call* a, Py_ssize_t q) noexcept nogil
        void (*class_stream_close_f32)(xent_stream* st) noexcept nogil
        void (*class_block_f64)(const xent_class_call* a, Py_ssize_t i0, Py_ssize_t nb) noexcept nogil
        void (*class_row_f64)(const xent_class_call* a, Py_ssize_t i, xent_stream* st) noexcept nogil
        void (*class_start_f64)(const xent_class_call* a, Py_ssize_t i) noexcept nogil
        void (*class_chunk_stats_f64)(const xent_class_call* a, Py_ssize_t q, xent_stream* st) noexcept nogil
        void (*class_row_merge_f64)(const xent_class_call* a, Py_ssize_t i) noexcept nogil
        void (*class_chunk_out_f64)(const xent_class_call* a, Py_ssize_t q) noexcept nogil
        void (*class_stream_close_f64)(xent_stream* st) noexcept nogil
        double (*loss_group_sum)(const double* v, Py_ssize_t n) noexcept nogil
        void (*bf16_widen)(const uint16_t* s, float* d, Py_ssize_t n) noexcept nogil
        void (*bf16_narrow)(const float* s, uint16_t* d, Py_ssize_t n) noexcept nogil
    double XENT_NEAR_ONE_F32
    double XENT_NEAR_ONE_F64
    enum:
        XENT_SCALED_LSE
        XENT_SCALED_SOFTMAX
        XENT_SCALED_LOG_SOFTMAX
    enum:
        XENT_DISTILL_FORWARD
        XENT_DISTILL_REVERSE
        XENT_DISTILL_JSD
    enum:
        XENT_STREAM_SUB
        XENT_STREAM_MUL
        XENT_STREAM_SHIFT
    Py_ssize_t xent_stream_bytes
    void xent_set_stream_bytes(Py_ssize_t n) noexcept nogil
    Py_ssize_t xent_stream_min_c[2]
    Py_ssize_t xent_block_max_c[2]
    void xent_set_stream_min_c(Py_ssize_t f32, Py_ssize_t f64) noexcept nogil
    const xent_row_ops* xent_ops
    const xent_row_ops* xent_isa_table(int i, int* supported) noexcept nogil
    const char* const xent_op_names[]

# The parallel loops hand out work dynamically, in chunks (a thread that is
# held up, as on a shared machine, leaves its share to the others; a row's
# result does not depend on the thread that computes it): blocks of the
# small-class path BLOCKS_PER_CHUNK at a time, rows about 16K values at a time.
cdef enum:
    BLOCKS_PER_CHUNK = 64
    # rows of a group of the reduced loss (src/class_rows.pxi): a multiple
    # of XENT_BLOCK, so that a group's blocks are the plain path's
    LOSS_GROUP = 1024


cdef inline Py_ssize_t rows_per_chunk(Py_ssize_t c) noexcept nogil:
    return 16384 // c if 0 < c < 16384 else 1


# ------------------------------------------------- the softmax family's paths
# (src/xent_class.h). Rows of at least LONG_ROW classes whose count leaves
# fewer than LONG_ROWS_PER_THREAD a thread are split into chunk tasks (so a
# single huge row uses every thread); any other row is a task of its own
# (its chunks then stay in the cache between its steps). Outputs of at least
# xent_stream_bytes (beyond the cache; a test hook changes it), of rows of
# at least xent_stream_min_c classes whose exps fit a scratch row of
# STREAM_ROW_BYTES, are streamed on the instruction sets that can (AVX-512):
# a plain store beyond the cache first reads the line it writes, a
# non-temporal one does not.
cdef enum:
    LONG_ROW = 65536
    LONG_ROWS_PER_THREAD = 4
    STREAM_ROW_BYTES = 1048576
    STREAM_TASK = 262144  # values of a streamed task (its rows share a stream)

cdef enum ClassPath:
    PATH_BLOCKS = 0     # XENT_BLOCK rows at a time, transposed
    PATH_ROWS = 1       # a row a task
    PATH_STREAMED = 2   # a row a task, the outputs streamed
    PATH_CHUNKS = 3     # a chunk of a long row a task


cdef inline bint long_by_rows(Py_ssize_t n, int n_threads) noexcept nogil:
    return n >= LONG_ROWS_PER_THREAD * <Py_ssize_t>n_threads


cdef inline int stream_op(const xent_class_call* a) noexcept nogil:
    # the streamed output of a call (XENT_STREAM_*), or -1: none (no output,
    # a softcap, smoothing with class weights or probabilities, whose
    # gradient needs more than k e_j - c)
    if a.out == NULL or a.cap != 0 or a.hess != NULL:
        return -1
    if a.op == XENT_CLS_SOFTMAX:
        return XENT_STREAM_MUL
    if a.op == XENT_CLS_LOG_SOFTMAX:
        return XENT_STREAM_SHIFT
    if ((a.op == XENT_CLS_CE or a.op == XENT_CLS_FOCAL) and a.labels != NULL
            and (a.u == NULL or a.w == NULL)):
        return XENT_STREAM_SUB  # (smoothing without class weights: one offset)
    return -1


cdef inline bint streams(const xent_class_call* a, size_t itemsize) noexcept nogil:
    return (xent_ops.streams and stream_op(a) >= 0 and a.C > xent_block_max_c[itemsize == 8]
            and a.C * <Py_ssize_t>itemsize <= STREAM_ROW_BYTES
            and a.C >= xent_stream_min_c[itemsize == 8]
            and a.n * a.C * <Py_ssize_t>itemsize >= xent_stream_bytes)


cdef inline ClassPath class_path(const xent_class_call* a, size_t itemsize, int n_threads) noexcept nogil:
    # The one place a softmax-family call's path is chosen: from its rows,
    # classes, bytes, type, outputs and options and the thread count (which
    # changes only the task shape, never a value).
    cdef Py_ssize_t blocks = xent_block_max_c[itemsize == 8]
    if a.op == XENT_CLS_LSE:  # (no output: the block path stays ahead longer)
        blocks = min(2 * blocks, <Py_ssize_t>XENT_SMALL_C)
    if a.C <= blocks:
        return PATH_BLOCKS
    if a.C >= LONG_ROW and not long_by_rows(a.n, n_threads):
        return PATH_CHUNKS
    if streams(a, itemsize):
        return PATH_STREAMED
    return PATH_ROWS


cdef inline xent_stream* workspace_open(Py_ssize_t c, int op, size_t itemsize) noexcept nogil:
    # a thread's workspace: two scratch rows of c values, 64-byte aligned,
    # streaming op (XENT_STREAM_*; -1: scratch only); NULL if out of memory
    cdef Py_ssize_t pad = ((c + 15) & ~(<Py_ssize_t>15)) * <Py_ssize_t>itemsize
    cdef xent_stream* st = <xent_stream*>malloc(sizeof(xent_stream) + 2 * pad + 64)
    if st == NULL:
        return NULL
    memset(st, 0, sizeof(xent_stream))
    st.C, st.op, st.itemsize, st.next, st.pending = c, op, itemsize, 0, 0
    st.scr[0] = <char*>((<size_t>(st + 1) + 63) & ~(<size_t>63))
    st.scr[1] = st.scr[0] + pad
    return st


ctypedef fused floating:
    float
    double


# The element of a softmax-family call (src/class_rows.pxi): float32,
# float64, or bfloat16 bits (uint16_t: run as float32 on groups of widened
# rows, run_bf16).
ctypedef fused cfloat:
    float
    double
    uint16_t


cdef inline floating xexp(floating x) noexcept nogil:
    if floating is float:
        return xent_ops.exp_f32(x)
    else:
        return xent_ops.exp_f64(x)


# Long rows: rows of at least LONG_ROW classes are split along the class axis
# into chunks of ROW_CHUNK classes (the split never depends on the thread
# count); see src/softmax.pxi and src/cross_entropy.pxi.
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


cdef inline void row_scale(floating* e, Py_ssize_t n, double k) noexcept nogil:
    # e_j *= k (in float64)
    if floating is float:
        xent_ops.scale_f32(e, n, k)
    else:
        xent_ops.scale_f64(e, n, k)


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


