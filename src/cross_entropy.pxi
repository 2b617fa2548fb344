# Kernels of softmax cross-entropy and the negative log-likelihood, with the
# gradient fused into the same row pass.
#
# Every loss here is, per row i, a weighted sum over the classes
#
#     loss_i = sw_i * sum_c a_c * (lse_i - x_c)  +  sw_i * z * lse_i**2
#
# with target coefficients a_c (class weight w_c times the smoothed target
# mass: (1 - eps) * onehot_y + eps / C for labels, (1 - eps) * t_c + eps / C
# for probabilities) and sample weight sw_i. With A = sum_c a_c it is computed
# from the shifted row as sw_i * (A * log(s) - sum_c a_c (x_c - m)) so that a
# large common offset loses no digits, and its gradient is
#
#     dloss_i/dx_c = sw_i * ((A + 2 z lse_i) * softmax_c - a_c),
#
# scaled by the upstream/reduction factor gs_i. Terms with a_c == 0 are
# skipped, so -inf logits of classes without target mass are exact.
#
# Per row: the max; the target sums (they read x and the target, before the
# gradient row, which may be x itself, is written); the exps, stored into the
# gradient row; the scaling. Rows of few classes go through the small-class
# path of _rows.pxd (blocks of rows vectorised across rows) with the same
# per-row terms. The loss is written per row in float64; the Python layer
# (xent/_cross_entropy.py) validates, computes the reduction denominator and
# gs, and reduces.

from cython.parallel cimport parallel, prange
from libc.math cimport exp, fabs, log, INFINITY, NAN
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _rows cimport (
    LONG_ROW, ROW_CHUNK, BLOCKS_PER_CHUNK, chunks_per_row, chunk_width, long_by_rows, long_streams, rows_per_chunk, floating, row_max, row_sum_exp, row_store_exp, row_log_s, row_scale_sub, block_exp, block_logs, block_scale,
    xent_ops, xent_stream_bytes, XENT_SMALL_C, XENT_BLOCK,
    XENT_STREAM_SUB, is_finite, streams, stream_task_rows, Stream, stream_open, stream_row, stream_pend,
    stream_close, stream_free_row, stream_chunk, stream_long_written, stream_long_pend,
    stream_long_flush,
)



cdef inline double weight_of(const double* w, Py_ssize_t c) noexcept nogil:
    # class weight of class c; w is NULL when no class weights were given
    return w[c] if w != NULL else 1.0


cdef inline const double* data_or_null(const double[::1] a) noexcept:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef struct Options:
    # what every row of one call shares
    Py_ssize_t c
    const double* w          # class weights or NULL
    const double* sw         # sample weights or NULL
    const double* u          # eps / C * w_j, the smoothing part of a_j (NULL if eps == 0)
    double eps
    double z
    double total_w           # sum_j w_j
    long long ignore_index


cdef inline double shifted_logit(floating x, double m) noexcept nogil:
    # x - m, with the limit 0 for x == m == +inf (the +inf entries of a row
    # carry its whole softmax: see the conventions in _rows.pxd)
    return 0.0 if (x == m and m == INFINITY) else x - m


cdef inline double label_target_sums(const floating* xr, Py_ssize_t y, double m, double wy,
                                     const Options* o, double* a_total) noexcept nogil:
    # A = sum_j a_j into a_total; returns sum_j a_j (x_j - m) (a_j != 0 only)
    cdef Py_ssize_t j
    cdef double a = (1 - o.eps) * wy
    cdef double shifted = a * shifted_logit(xr[y], m) if a != 0 else 0.0
    if o.eps != 0:
        a += o.eps * o.total_w / o.c
        for j in range(o.c):
            if o.u[j] != 0:
                shifted += o.u[j] * shifted_logit(xr[j], m)
    a_total[0] = a
    return shifted


cdef inline double prob_coef(const floating* tr, Py_ssize_t j, const Options* o) noexcept nogil:
    # a_j for a probability target row tr
    return weight_of(o.w, j) * ((1 - o.eps) * tr[j] + o.eps / o.c)


cdef inline double prob_target_sums(const floating* xr, const floating* tr, double m,
                                    const Options* o, double* a_total) noexcept nogil:
    cdef Py_ssize_t j
    cdef double a, total = 0, shifted = 0
    for j in range(o.c):
        a = prob_coef(tr, j, o)
        if a != 0:
            total += a
            shifted += a * shifted_logit(xr[j], m)
    a_total[0] = total
    return shifted


cdef inline double row_loss(double m, double s, double log_s, double a_total, double shifted,
                            double sw, double f, double z, double* k) noexcept nogil:
    # the loss of a row (log_s = log(s) from row_log_s), and in k the factor
    # of its exps in the gradient (the block path computes the same in
    # xent_block_losses)
    cdef double lse = m + log_s
    if sw == 0:  # a sample of weight 0 counts for nothing, whatever its logits
        k[0] = 0
        return 0.0
    if z == 0:  # (no 0 * inf when lse is infinite)
        k[0] = f * a_total / s
        return sw * (a_total * log_s - shifted)
    k[0] = f * (a_total + 2 * z * lse) / s
    return sw * (a_total * log_s - shifted + z * lse * lse)


cdef inline void zero_row(floating* g, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(c):
        g[j] = 0


cdef inline double row_sw(const Options* o, Py_ssize_t i) noexcept nogil:
    return o.sw[i] if o.sw != NULL else 1.0


# ---------------------------------------------------------------- labels

cdef inline void labels_row(const floating* xr, Py_ssize_t i, long long y, const Options* o,
                            double gs, double* loss, floating* gr) noexcept nogil:
    # one row through the row path; gr is the gradient row or NULL
    cdef Py_ssize_t j
    cdef double sw, wy, m, s, a_total, shifted, k, f
    cdef floating mf
    sw = row_sw(o, i)
    if y == o.ignore_index or sw == 0:  # counts for nothing, whatever the logits hold
        loss[i] = 0
        if gr != NULL:
            zero_row(gr, o.c)
        return
    wy = weight_of(o.w, y)
    mf = row_max(xr, o.c)
    m = mf
    shifted = label_target_sums(xr, y, m, wy, o, &a_total)
    s = row_store_exp(xr, gr, o.c, mf) if gr != NULL else row_sum_exp(xr, o.c, mf)
    f = gs * sw
    loss[i] = row_loss(m, s, row_log_s(<const floating*>gr if gr != NULL else xr, o.c, mf, s, gr != NULL), a_total,
                       shifted, sw, f, o.z, &k)
    if gr != NULL:
        row_scale_sub(gr, o.c, k, f if o.u != NULL else 0.0, o.u)
        gr[y] = <floating>(gr[y] - f * (1 - o.eps) * wy)


cdef void labels_rows_streamed(const floating* x, Py_ssize_t i0, Py_ssize_t i1,
                               const long long* labels, const Options* o, const double[:] gs,
                               double* loss, floating* g, Stream* st) noexcept nogil:
    # Rows i0 .. i1 - 1 through the row path with the gradient streamed (see
    # _rows.pxd; o.u is NULL): each row's exps go to a scratch row of the
    # thread, and the thread's row before is finished from its own in the same
    # loop. The terms are those of labels_row, bit for bit; the rows
    # labels_row treats apart (ignored, of weight 0, of a non-finite maximum,
    # or a gradient scale beyond 1e38) go through it; all rows when st is
    # NULL (out of memory).
    cdef Py_ssize_t c = o.c, i
    cdef floating* e
    cdef long long y
    cdef double sw, wy, m, s, a_total, shifted, k, f
    cdef floating mf
    for i in range(i0, i1):
        y = labels[i]
        sw = row_sw(o, i)
        mf = row_max(x + i * c, c) if not (y == o.ignore_index or sw == 0 or st == NULL) else 0
        if y == o.ignore_index or sw == 0 or st == NULL or not is_finite(mf):
            labels_row(x + i * c, i, y, o, gs[i], loss, g + i * c)
            continue
        wy = weight_of(o.w, y)
        m = mf
        shifted = label_target_sums(x + i * c, y, m, wy, o, &a_total)
        s = stream_row(st, x + i * c, mf, <void**>&e)
        f = gs[i] * sw
        loss[i] = row_loss(m, s, row_log_s(e, c, mf, s, True), a_total, shifted, sw, f, o.z, &k)
        if fabs(k) < 1e38:
            stream_pend(st, e, g + i * c, k, 0.0, y, f * (1 - o.eps) * wy)
        else:
            memcpy(g + i * c, e, c * sizeof(floating))
            row_scale_sub(g + i * c, c, k, 0.0, NULL)
            g[i * c + y] = <floating>(g[i * c + y] - f * (1 - o.eps) * wy)


cdef struct Block:
    # per-row terms of a block of the small-class path
    double m[XENT_BLOCK]
    double s[XENT_BLOCK]
    double a[XENT_BLOCK]
    double shifted[XENT_BLOCK]
    double sw[XENT_BLOCK]
    double f[XENT_BLOCK]
    double k[XENT_BLOCK]
    double loss[XENT_BLOCK]
    double ls[XENT_BLOCK]


cdef inline void block_start(Block* blk, const floating* x, Py_ssize_t nb, Py_ssize_t c,
                             floating* ws) noexcept nogil:
    # the exps of the block into ws, m and s into blk; other terms zeroed
    cdef floating m[XENT_BLOCK]
    cdef Py_ssize_t b
    block_exp(x, nb, c, ws, m, blk.s)
    for b in range(XENT_BLOCK):
        blk.m[b] = m[b]
        blk.a[b] = 0
        blk.shifted[b] = 0
        blk.sw[b] = 0
        blk.f[b] = 0


cdef inline void labels_block(const floating* x, Py_ssize_t i0, Py_ssize_t nb,
                              const long long* labels, const Options* o, const double[:] gs,
                              double* loss, floating* grad) noexcept nogil:
    # rows i0 .. i0+nb-1 through the small-class path (all of it in C:
    # xent_block_labels in src/xent_rows_typed.h, the same terms as labels_row)
    cdef const double* sw = o.sw + i0 if o.sw != NULL else NULL
    cdef Py_ssize_t gss = gs.strides[0] // sizeof(double)
    if floating is float:
        xent_ops.block_labels_f32(x + i0 * o.c, nb, o.c, <const int64_t*>(labels + i0), o.ignore_index, sw,
                                  &gs[i0], gss, o.w, o.u, o.eps, o.total_w, o.z, loss + i0,
                                  grad + i0 * o.c if grad != NULL else NULL)
    else:
        xent_ops.block_labels_f64(x + i0 * o.c, nb, o.c, <const int64_t*>(labels + i0), o.ignore_index, sw,
                                  &gs[i0], gss, o.w, o.u, o.eps, o.total_w, o.z, loss + i0,
                                  grad + i0 * o.c if grad != NULL else NULL)


# ---------------------------------------------------------- probabilities

cdef inline void probs_row(const floating* xr, const floating* tr, Py_ssize_t i,
                           const Options* o, double gs, double* loss, floating* gr) noexcept nogil:
    cdef Py_ssize_t j
    cdef double sw = row_sw(o, i), m, s, a_total, shifted, k, f
    cdef floating mf
    if sw == 0:  # counts for nothing, whatever the logits hold
        loss[i] = 0
        if gr != NULL:
            zero_row(gr, o.c)
        return
    mf = row_max(xr, o.c)
    m = mf
    shifted = prob_target_sums(xr, tr, m, o, &a_total)
    s = row_store_exp(xr, gr, o.c, mf) if gr != NULL else row_sum_exp(xr, o.c, mf)
    f = gs * sw
    loss[i] = row_loss(m, s, row_log_s(<const floating*>gr if gr != NULL else xr, o.c, mf, s, gr != NULL), a_total,
                       shifted, sw, f, o.z, &k)
    if gr != NULL:
        # g_j = k e_j - f a_j; a_j needs the target row again
        row_scale_sub(gr, o.c, k, 0.0, NULL)
        for j in range(o.c):
            gr[j] = <floating>(gr[j] - f * prob_coef(tr, j, o))


cdef inline void probs_block(const floating* x, const floating* t, Py_ssize_t i0, Py_ssize_t nb,
                             const Options* o, const double[:] gs, double* loss,
                             floating* grad) noexcept nogil:
    cdef floating ws[XENT_SMALL_C * XENT_BLOCK]
    cdef Block blk
    cdef Py_ssize_t b, i, j, c = o.c
    block_start(&blk, x + i0 * c, nb, c, ws)
    for b in range(nb):
        i = i0 + b
        blk.sw[b] = row_sw(o, i)
        blk.f[b] = gs[i] * blk.sw[b]
        blk.shifted[b] = prob_target_sums(x + i * c, t + i * c, blk.m[b], o, &blk.a[b])
    block_logs(x + i0 * c, nb, c, blk.m, blk.s, blk.ls)
    xent_ops.block_losses(blk.m, blk.s, blk.ls, blk.a, blk.shifted, blk.sw, blk.f, o.z, blk.k, blk.loss)
    for b in range(nb):
        loss[i0 + b] = blk.loss[b] if blk.sw[b] != 0 else 0.0
    if grad == NULL:
        return
    block_scale(ws, nb, c, blk.k, blk.f, NULL, grad + i0 * c)
    for b in range(nb):
        i = i0 + b
        if blk.sw[b] == 0:
            zero_row(grad + i * c, c)
            continue
        for j in range(c):
            grad[i * c + j] -= <floating>(blk.f[b] * prob_coef(t + i * c, j, o))


# ------------------------------------------------------------- long rows
# Rows of at least LONG_ROW classes are split into chunks of ROW_CHUNK
# classes, whatever the thread count (so results do not depend on it):
#  1. per chunk k (a parallel task): its max m_k, the sum s_k of its exps
#     (stored into the gradient row), and the target sums of the coefficients
#     that depend on the class only (smoothing u_j for labels, a_j for
#     probabilities): T_k = sum a_j (x_j - m_k), W_k = sum a_j;
#  2. per row, in chunk order: M = max m_k, factors f_k = exp(m_k - M),
#     S = sum s_k f_k, the target sum relative to M (T_k + (m_k - M) W_k),
#     the loss and the gradient factor k, as the row path computes them;
#  3. per chunk (a parallel task): g_j = e_j k f_k - f a_j.

long_row = LONG_ROW
row_chunk = ROW_CHUNK


cdef inline double chunk_target_sums(const floating* xr, const floating* tr, Py_ssize_t j0,
                                     Py_ssize_t width, double m, const Options* o,
                                     double* wsum) noexcept nogil:
    # over classes j0 .. j0+width-1 of a row (xr, tr: row starts; tr NULL for
    # labels): sum a_j shifted_logit(x_j, m) over the class-only coefficients
    # a_j != 0, and their sum into wsum
    cdef Py_ssize_t j
    cdef double a, shifted = 0, total = 0
    if tr == NULL and o.u == NULL:  # labels without smoothing: every a_j is 0
        wsum[0] = 0
        return 0
    for j in range(j0, j0 + width):
        if tr != NULL:
            a = prob_coef(tr, j, o)
        else:
            a = o.u[j] if o.u != NULL else 0.0
        if a != 0:
            total = total + a
            shifted = shifted + a * shifted_logit(xr[j], m)
    wsum[0] = total
    return shifted


cdef struct LongRows:
    # the work of ce_long_rows, per task q (T = n * per of them) and per row i
    Py_ssize_t per, tasks
    double* mk    # [T] the chunk's max, then its factor f_k = exp(m_k - M)
    double* sk    # [T] the sum of its exps
    double* tk    # [T] its target sum T_k
    double* wk    # [T] its W_k
    double* krow  # [n] the row's gradient factor k
    double* frow  # [n] its weight factor
    double* xy    # [n] its target logit (labels)
    double* arow  # [n] the target's coefficient (labels)
    double* skip  # [n] != 0: the row counts for nothing


cdef inline void ce_long_chunk_stats(const floating* x, const floating* t, const Options* o,
                                  floating* er, Py_ssize_t q, LongRows* L, Stream* st) noexcept nogil:
    # 1. task q: its max, target sums and sum of exps (the exps into the
    # row's er, the gradient row or a scratch row, unless NULL); with st (a
    # long row streamed), the pending row's same chunk is written meanwhile
    cdef Py_ssize_t c = o.c, i = q // L.per, j0 = (q % L.per) * ROW_CHUNK
    cdef Py_ssize_t width = chunk_width(c, j0)
    cdef const floating* xr = x + i * c
    cdef floating mf
    if L.skip[i] != 0:
        return
    mf = row_max(xr + j0, width)
    L.mk[q] = mf
    L.tk[q] = chunk_target_sums(xr, t + i * c if t != NULL else NULL, j0, width, mf, o, &L.wk[q])
    if st != NULL:
        if is_finite(mf):
            L.sk[q] = stream_chunk(st, xr + j0, mf, j0, width, er + j0)
            return
        stream_chunk(st, NULL, 0.0, j0, width, NULL)
    if er != NULL:
        L.sk[q] = row_store_exp(xr + j0, er + j0, width, mf)
    else:
        L.sk[q] = row_sum_exp(xr + j0, width, mf)


cdef inline void ce_long_row_merge(floating xy, const floating* xr, const long long* labels,
                                const Options* o, const double[:] gs, Py_ssize_t i, double* loss,
                                LongRows* L) noexcept nogil:
    # 2. row i, in chunk order: its loss and gradient factors (xy: its target
    # logit, for labels; xr: its logits, NULL where the gradient has
    # overwritten them, for row_log_s)
    cdef Py_ssize_t q, per = L.per
    cdef double top, total, total_a, shifted, contrib, sw, wy
    if L.skip[i] != 0:
        loss[i] = 0
        return
    top = -INFINITY
    for q in range(i * per, (i + 1) * per):
        if L.mk[q] > top:
            top = L.mk[q]
    total = 0
    shifted = 0
    for q in range(i * per, (i + 1) * per):
        if L.wk[q] == 0:
            contrib = 0
        elif L.mk[q] == -INFINITY:  # a chunk of -inf only: each x_j - M is -inf - M
            contrib = L.wk[q] * (-INFINITY - top)
        elif L.mk[q] == top:
            contrib = L.tk[q]
        else:
            contrib = L.tk[q] + (L.mk[q] - top) * L.wk[q]
        L.mk[q] = 1.0 if L.mk[q] == top else exp(L.mk[q] - top)  # now f_k
        total = total + L.sk[q] * L.mk[q]
        shifted = shifted + contrib
    if labels != NULL:
        wy = weight_of(o.w, labels[i])
        L.arow[i] = (1 - o.eps) * wy
        if L.arow[i] != 0:
            shifted = shifted + L.arow[i] * shifted_logit(xy, top)
        total_a = L.arow[i] + (o.eps * o.total_w / o.c if o.eps != 0 else 0.0)
    else:
        total_a = 0
        for q in range(i * per, (i + 1) * per):
            total_a = total_a + L.wk[q]
    sw = row_sw(o, i)
    L.frow[i] = gs[i] * sw
    loss[i] = row_loss(top, total, row_log_s(xr, o.c, <floating>top, total, False) if xr != NULL else log(total),
                       total_a, shifted, sw, L.frow[i], o.z, &L.krow[i])


cdef inline double ce_long_chunk_k(Py_ssize_t q, const LongRows* L) noexcept nogil:
    # task q's gradient factor k f_k (a chunk whose exps vanish against the
    # row's max: 0, also for an infinite k; a NaN k stays NaN, as in the row
    # path)
    cdef Py_ssize_t i = q // L.per
    return 0.0 if (L.mk[q] == 0 and L.krow[i] == L.krow[i]) else L.krow[i] * L.mk[q]


cdef inline void ce_long_chunk_grad(const floating* t, const long long* labels, const Options* o,
                                 floating* grad, Py_ssize_t q, const LongRows* L) noexcept nogil:
    # 3. task q: g_j = e_j k f_k - f a_j
    cdef Py_ssize_t c = o.c, i = q // L.per, j0 = (q % L.per) * ROW_CHUNK, y
    cdef Py_ssize_t width = chunk_width(c, j0)
    cdef floating* gr = grad + i * c
    cdef double kk
    if L.skip[i] != 0:
        zero_row(gr + j0, width)
        return
    kk = ce_long_chunk_k(q, L)
    if labels != NULL:
        row_scale_sub(gr + j0, width, kk, L.frow[i] if o.u != NULL else 0.0,
                      o.u + j0 if o.u != NULL else NULL)
        y = labels[i]
        if j0 <= y < j0 + width:
            gr[y] = <floating>(gr[y] - L.frow[i] * L.arow[i])
    else:
        row_scale_sub(gr + j0, width, kk, 0.0, NULL)
        for y in range(j0, j0 + width):
            gr[y] = <floating>(gr[y] - L.frow[i] * prob_coef(t + i * c, y, o))


cdef inline void ce_long_row_task(const floating* x, const floating* t, const long long* labels,
                               const Options* o, const double[:] gs, Py_ssize_t i, double* loss,
                               floating* grad, LongRows* L, Stream* st) noexcept nogil:
    # row i of ce_long_rows as one task, the three steps. With st (the thread's
    # long rows streamed: labels, no smoothing), the exps go to a scratch row,
    # the row before is written meanwhile, and this row's gradient is left
    # pending.
    cdef Py_ssize_t c = o.c, q, j0, y
    cdef floating* er = grad + i * c if grad != NULL else NULL
    cdef double kk
    if st != NULL:
        if L.skip[i] != 0:
            stream_long_flush(st)
            st = NULL  # its gradient is zero
        else:
            er = <floating*>stream_free_row(st)
    for q in range(i * L.per, (i + 1) * L.per):
        ce_long_chunk_stats(x, t, o, er, q, L, st)
    if st != NULL:
        stream_long_written(st)
    ce_long_row_merge(<floating>L.xy[i], x + i * c if <const void*>grad != <const void*>x else NULL, labels, o,
                   gs, i, loss, L)
    if grad == NULL:
        return
    for q in range(i * L.per, (i + 1) * L.per):
        if st != NULL:
            kk = ce_long_chunk_k(q, L)
            st.ks[q - i * L.per] = kk if fabs(kk) < 1e38 else NAN
            if st.ks[q - i * L.per] == kk:
                continue
            j0 = (q - i * L.per) * ROW_CHUNK
            memcpy(grad + i * c + j0, er + j0, chunk_width(c, j0) * sizeof(floating))
        ce_long_chunk_grad(t, labels, o, grad, q, L)
    if st != NULL:
        y = labels[i]
        stream_long_pend(st, er, grad + i * c, 0.0, y if st.ks[y // ROW_CHUNK] == st.ks[y // ROW_CHUNK] else -1,
                         L.frow[i] * L.arow[i])


cdef int ce_long_rows(const floating* x, const floating* t, const long long* labels,
                   const Options* o, const double[:] gs, Py_ssize_t n, double* loss,
                   floating* grad, int n_threads) noexcept nogil:
    # softmax cross-entropy of n long rows (labels, or probability targets t
    # when labels is NULL) by chunks, the three steps above: in tasks of whole
    # rows when there are enough rows for every thread (the row's exps still
    # in the cache for step 3; a large gradient for labels without smoothing
    # streamed past the cache, see long_streams), else in tasks of chunks;
    # the same values either way. Returns -1 if out of memory.
    cdef Py_ssize_t c = o.c, per = chunks_per_row(c), tasks = n * per
    cdef Py_ssize_t q, i, y
    cdef double* buf = <double*>malloc((4 * tasks + 5 * n + 1) * sizeof(double))
    cdef LongRows L
    cdef double sw
    cdef Stream* st
    if buf == NULL:
        return -1
    L.per = per
    L.tasks = tasks
    L.mk = buf
    L.sk = L.mk + tasks
    L.tk = L.sk + tasks
    L.wk = L.tk + tasks
    L.krow = L.wk + tasks
    L.frow = L.krow + n
    L.xy = L.frow + n
    L.arow = L.xy + n
    L.skip = L.arow + n
    # the rows that count for nothing; the target logits, read before any
    # gradient (which may be x) is written
    for i in range(n):
        sw = row_sw(o, i)
        y = labels[i] if labels != NULL else 0
        L.skip[i] = sw == 0 or (labels != NULL and y == o.ignore_index)
        L.xy[i] = x[i * c + y] if labels != NULL and L.skip[i] == 0 else 0.0
    if long_by_rows(n, n_threads):
        if grad != NULL and labels != NULL and o.u == NULL and long_streams(n, c, sizeof(floating)):
            st = NULL
            with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
                st = stream_open(c, XENT_STREAM_SUB, sizeof(floating))  # each thread's scratch
                for i in prange(n, schedule="dynamic"):
                    ce_long_row_task(x, t, labels, o, gs, i, loss, grad, &L, st)
                stream_close(st)
        else:
            for i in prange(n, schedule="dynamic", num_threads=n_threads, use_threads_if=n_threads > 1):
                ce_long_row_task(x, t, labels, o, gs, i, loss, grad, &L, NULL)
    else:
        for q in prange(tasks, schedule="dynamic", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            ce_long_chunk_stats(x, t, o, grad + (q // per) * c if grad != NULL else NULL, q, &L, NULL)
        for i in range(n):
            ce_long_row_merge(<floating>L.xy[i], x + i * c if <const void*>grad != <const void*>x else NULL,
                           labels, o, gs, i, loss, &L)
        if grad != NULL:
            for q in prange(tasks, schedule="dynamic", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                ce_long_chunk_grad(t, labels, o, grad, q, &L)
    free(buf)
    return 0


# ------------------------------------------------------------ entry points

cdef double* smoothing_buffer(Py_ssize_t c, double eps) except? NULL:
    # room for Options.u: C doubles, needed only with label smoothing (without
    # it, NULL: no O(C) memory for a row of a huge number of classes)
    if eps == 0:
        return NULL
    cdef double* u = <double*>malloc((c + 1) * sizeof(double))
    if u == NULL:
        raise MemoryError()
    return u


cdef Options make_options(Py_ssize_t c, const double[::1] class_weight,
                          const double[::1] sample_weight, double eps, double z,
                          long long ignore_index, double* u):
    cdef Options o
    cdef Py_ssize_t j
    o.c = c
    o.w = data_or_null(class_weight)
    o.sw = data_or_null(sample_weight)
    o.eps = eps
    o.z = z
    o.ignore_index = ignore_index
    o.total_w = 0
    for j in range(c):
        o.total_w += weight_of(o.w, j)
        if u != NULL:
            u[j] = eps / c * weight_of(o.w, j)
    o.u = u
    return o


def softmax_xent_labels(
    const floating[:, ::1] x, const long long[::1] labels, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps, double z,
    long long ignore_index, double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row loss (and gradient if grad is not None) for integer labels."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, nb
    cdef floating* g = &grad[0, 0] if grad is not None and grad.shape[0] > 0 else NULL
    cdef const floating* xp = &x[0, 0] if n > 0 else NULL
    cdef double* u = smoothing_buffer(c, eps)
    cdef Options o = make_options(c, class_weight, sample_weight, eps, z, ignore_index, u)
    cdef int status = 0
    cdef Stream* st
    try:
        with nogil:
            if c >= LONG_ROW and n > 0:
                status = ce_long_rows(xp, <const floating*>NULL, &labels[0], &o, grad_scale, n,
                                   &loss[0], g, n_threads)
            elif c <= XENT_SMALL_C:
                for i in prange(0, n, XENT_BLOCK, schedule="dynamic", chunksize=BLOCKS_PER_CHUNK,
                                num_threads=n_threads,
                                use_threads_if=n_threads > 1):
                    nb = XENT_BLOCK if i + XENT_BLOCK <= n else n - i
                    labels_block(xp, i, nb, &labels[0], &o, grad_scale, &loss[0], g)
            elif g != NULL and u == NULL and streams(n, c, sizeof(floating)):
                st = NULL
                with parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
                    st = stream_open(c, XENT_STREAM_SUB, sizeof(floating))  # each thread's own
                    for i in prange(0, n, stream_task_rows(c), schedule="dynamic"):
                        labels_rows_streamed(xp, i, min(i + stream_task_rows(c), n), &labels[0],
                                             &o, grad_scale, &loss[0], g, st)
                    stream_close(st)
            else:
                for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c),
                                num_threads=n_threads, use_threads_if=n_threads > 1):
                    labels_row(xp + i * c, i, labels[i], &o, grad_scale[i], &loss[0],
                               g + i * c if g != NULL else NULL)
    finally:
        free(u)
    if status != 0:
        raise MemoryError()


def softmax_xent_probs(
    const floating[:, ::1] x, const floating[:, ::1] target, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps, double z,
    double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row loss (and gradient if grad is not None) for probability targets."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, nb
    cdef floating* g = &grad[0, 0] if grad is not None and grad.shape[0] > 0 else NULL
    cdef const floating* xp = &x[0, 0] if n > 0 else NULL
    cdef const floating* tp = &target[0, 0] if n > 0 else NULL
    cdef double* u = smoothing_buffer(c, eps)
    cdef Options o = make_options(c, class_weight, sample_weight, eps, z, 0, u)
    cdef int status = 0
    try:
        with nogil:
            if c >= LONG_ROW and n > 0:
                status = ce_long_rows(xp, tp, <const long long*>NULL, &o, grad_scale, n,
                                   &loss[0], g, n_threads)
            elif c <= XENT_SMALL_C:
                for i in prange(0, n, XENT_BLOCK, schedule="dynamic", chunksize=BLOCKS_PER_CHUNK,
                                num_threads=n_threads,
                                use_threads_if=n_threads > 1):
                    nb = XENT_BLOCK if i + XENT_BLOCK <= n else n - i
                    probs_block(xp, tp, i, nb, &o, grad_scale, &loss[0], g)
            else:
                for i in prange(n, schedule="dynamic", chunksize=rows_per_chunk(c),
                                num_threads=n_threads, use_threads_if=n_threads > 1):
                    probs_row(xp + i * c, tp + i * c, i, &o, grad_scale[i], &loss[0],
                              g + i * c if g != NULL else NULL)
    finally:
        free(u)
    if status != 0:
        raise MemoryError()


def nll_labels(
    const floating[:, ::1] lp, const long long[::1] labels, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps,
    long long ignore_index, double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row -sum_c a_c lp_c (and its gradient -a_c) for integer labels."""
    cdef Py_ssize_t n = lp.shape[0], c = lp.shape[1], i, j, y
    cdef const double* w = data_or_null(class_weight)
    cdef bint has_sw = sample_weight is not None
    cdef bint want_grad = grad is not None
    cdef double sw, wy, total, f, wj
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            y = labels[i]
            sw = sample_weight[i] if has_sw else 1.0
            if y == ignore_index or sw == 0:  # counts for nothing, whatever lp holds
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
            wy = weight_of(w, y)
            total = -(1 - eps) * wy * lp[i, y] if (1 - eps) * wy != 0 else 0.0
            if eps != 0:
                for j in range(c):
                    wj = weight_of(w, j)
                    if wj != 0:
                        total = total - eps / c * wj * lp[i, j]
            loss[i] = sw * total
            if want_grad:
                f = grad_scale[i] * sw
                for j in range(c):
                    grad[i, j] = <floating>(-f * eps / c * weight_of(w, j))
                grad[i, y] = <floating>(grad[i, y] - f * (1 - eps) * wy)


def nll_probs(
    const floating[:, ::1] lp, const floating[:, ::1] target, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps,
    double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row -sum_c a_c lp_c (and its gradient -a_c) for probability targets."""
    cdef Py_ssize_t n = lp.shape[0], c = lp.shape[1], i, j
    cdef const double* w = data_or_null(class_weight)
    cdef bint has_sw = sample_weight is not None
    cdef bint want_grad = grad is not None
    cdef double sw, total, a, f
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            sw = sample_weight[i] if has_sw else 1.0
            if sw == 0:  # counts for nothing, whatever lp and the target hold
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
            f = grad_scale[i] * sw if want_grad else 0.0
            total = 0
            for j in range(c):
                a = weight_of(w, j) * ((1 - eps) * target[i, j] + eps / c)
                if a != 0:
                    total = total - a * lp[i, j]
                if want_grad:
                    grad[i, j] = <floating>(-f * a)
            loss[i] = sw * total


def labels_scan(const long long[::1] labels, long long n_classes, long long ignore_index):
    """The number of labels that are not ignore_index, or -1 if one is neither
    ignore_index nor in [0, n_classes) (the fast path of softmax_cross_entropy
    then leaves the call, and its error, to the general path)."""
    cdef Py_ssize_t i, n = labels.shape[0], kept = 0
    cdef long long y
    cdef bint bad = False
    with nogil:
        for i in range(n):
            y = labels[i]
            bad = bad | ((y != ignore_index) & ((y < 0) | (y >= n_classes)))
            kept += y != ignore_index
    return -1 if bad else kept
