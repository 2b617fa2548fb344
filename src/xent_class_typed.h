/* The softmax family's paths (xent_class.h) for one floating type: a
 * template included by xent_rows_impl.h once per type, after the typed
 * primitives (xent_rows_typed.h), with XENT_T, XENT_G, XENT_EXP, XENT_LOG,
 * XENT_TANH and XENT_KAHAN set.
 *
 * Every path computes a row from the same terms:
 *   m = max_j x_j (x_j the logits, or cap tanh(x_j / cap) with a softcap),
 *   s = sum_j exp(x_j - m) (float64; Kahan-compensated for double input),
 *   log_s = log(s), or log1p of the terms other than the max's near s = 1,
 *   the cross-entropy's loss and gradient factor k from xent_ce_terms_,
 *   the outputs:  softmax k e_j (k = 1 / s),  log_softmax (x_j - m) - log_s,
 *                 cross-entropy gradient k e_j - f a_j (times the softcap's
 *                 1 - (y_j / cap)^2),
 * with the target coefficients a_j = w_j ((1 - eps) t_j + eps / C) (t the
 * one-hot label or the probability row), A = sum_j a_j and the target sum
 * T = sum_j a_j (x_j - m) taken over a_j != 0 only (a -inf logit without
 * target mass is exact), a row's max of +inf carrying its whole softmax (the
 * contract of src/_rows.pxd).
 */

/* this instruction set's row loops for XENT_T */
static inline double XENT_G(xent_c_sumexp_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m)
{
#ifdef XENT_AVX512
    if (sizeof(XENT_T) == 4)
        return XENT_F(xent_sumexp16_f32_)((const float *)x, (float *)e, n, (float)m);
#endif
    return XENT_G(xent_sumexp_)(x, e, n, m);
}

static inline void XENT_G(xent_c_scale_)(XENT_T *e, ptrdiff_t n, double k)
{
#ifdef XENT_AVX512
    if (sizeof(XENT_T) == 4) {
        XENT_F(xent_scale16_f32_)((float *)e, n, k);
        return;
    }
#endif
    XENT_G(xent_scale_)(e, n, k);
}

static inline void XENT_G(xent_c_scale_sub_)(XENT_T *e, ptrdiff_t n, double k, double c, const double *w)
{
#ifdef XENT_AVX512
    if (sizeof(XENT_T) == 4) {
        XENT_F(xent_scale_sub16_f32_)((float *)e, n, k, c, w);
        return;
    }
#endif
    XENT_G(xent_scale_sub_)(e, n, k, c, w);
}

/* x - m with the limit 0 for x == m == +inf (the +inf entries of a row carry
 * its whole softmax) */
static inline double XENT_G(xent_c_shifted_)(double x, double m)
{
    return (x == m && m == INFINITY) ? 0.0 : x - m;
}

/* The sum of exps of a run whose max m is +inf, -inf or NaN (the
 * contract's limits: 1 at the +inf entries of a +inf max, else 0; NaN
 * anywhere makes the sum NaN), those exps into e unless NULL (e may be x). */
static double XENT_G(xent_c_nonfinite_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m)
{
    /* (vectorised: a run of -inf, a masked block of classes, is common) */
    int nan = 0;
    double s = 0.0;
    const int pinf = m == INFINITY;
#pragma omp simd reduction(| : nan) reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++) {
        nan |= x[j] != x[j];
        s += (pinf && x[j] == INFINITY) ? 1.0 : 0.0;
    }
    if (nan)
        for (ptrdiff_t j = 0; j < n; j++)
            if (x[j] != x[j]) {
                s = (double)x[j]; /* (the first NaN's payload, as before) */
                break;
            }
    if (e) {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (pinf && x[j] == INFINITY) ? (XENT_T)1 : (XENT_T)0;
    }
    return s;
}

/* sum_{j != skip} e_j of a row's exps e_j = exp(v_j - m): v the exps
 * themselves (exps) or the logits, whose exps are then taken as the
 * statistics step takes them (xent_c_sumexp_, the same values). Lanes by
 * position, so that the sum is the same bits whichever v it is given. */
static double XENT_G(xent_c_others_sum_)(const XENT_T *v, ptrdiff_t n, ptrdiff_t skip, XENT_T m, int exps)
{
    enum { TMP = 256 };
    double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0};
    XENT_T tmp[TMP];
    for (ptrdiff_t j0 = 0; j0 < n; j0 += TMP) {
        ptrdiff_t len = n - j0 < TMP ? n - j0 : TMP;
        const XENT_T *e = v + j0;
        if (!exps) {
            XENT_G(xent_c_sumexp_)(v + j0, tmp, len, m);
            e = tmp;
        }
        /* (j0 is a multiple of XENT_LANES: element l goes to lane l % XENT_LANES) */
        ptrdiff_t l = 0;
        for (; l + XENT_LANES <= len; l += XENT_LANES) {
#pragma omp simd
            for (int q = 0; q < XENT_LANES; q++) {
                XENT_T ev = j0 + l + q == skip ? (XENT_T)0 : e[l + q];
                XENT_ACC(acc[q], comp[q], ev);
            }
        }
        for (int q = 0; l < len; l++, q++) {
            XENT_T ev = j0 + l == skip ? (XENT_T)0 : e[l];
            XENT_ACC(acc[q], comp[q], ev);
        }
    }
    double t = 0.0, c = 0.0;
    for (int l = 0; l < XENT_LANES; l++)
        XENT_ACC(t, c, acc[l] - comp[l]);
    (void)c;
    return t;
}

/* log(s) of a row of finite max m whose sum of exps is s (s >= 1): near 1,
 * where log(s) is tiny and s has lost its low digits against the max's exp
 * of 1, log1p of the other terms, summed apart (xent_c_others_sum_), so that
 * logsumexp([0, -40]) is 4.2483542552915889e-18 (SciPy 1.15's result) where
 * m + log(s) gives 0. v: the row's exps (exps) or logits. The threshold
 * (XENT_NEAR_ONE_F32/_F64, xent_rows.h) is where log(s) would no longer be
 * within a small fraction of an ulp of the input type. */
static double XENT_G(xent_c_log_s_)(const XENT_T *v, ptrdiff_t n, XENT_T m, double s, int exps)
{
    const double near = sizeof(XENT_T) == 4 ? XENT_NEAR_ONE_F32 : XENT_NEAR_ONE_F64;
    if (!(s < near) || !(m - m == 0))
        return log(s);
    /* the first exp of exactly 1 (the max's own, or one as close), found
     * in the exps whichever v is given: the same term is set apart */
    ptrdiff_t i = -1;
    if (exps) {
        for (ptrdiff_t j = 0; j < n && i < 0; j++)
            i = v[j] == (XENT_T)1 ? j : -1;
    } else {
        /* (only a logit within `close` of m can have an exp of 1: those are
         * the ones whose exp is taken, as the statistics step takes it) */
        const double close = sizeof(XENT_T) == 4 ? 1e-6 : 1e-15;
        for (ptrdiff_t j = 0; j < n && i < 0; j++)
            if ((double)v[j] - (double)m > -close) {
                XENT_T e1;
                XENT_G(xent_c_sumexp_)(v + j, &e1, 1, m);
                i = e1 == (XENT_T)1 ? j : -1;
            }
    }
    if (i < 0) /* (no entry at the max: not the row of m) */
        return log(s);
    return log1p(XENT_G(xent_c_others_sum_)(v, n, i, m, exps));
}

/* The softcap's y_j = cap tanh(x_j / cap) into y (may be x). */
static void XENT_G(xent_c_softcap_)(const XENT_T *x, XENT_T *y, ptrdiff_t n, double cap)
{
    XENT_EXP_BOUNDS;
    const XENT_T c = (XENT_T)cap;
    if (c == (XENT_T)INFINITY) { /* a cap beyond the type's range: the limit, y = x */
        if (y != x)
            memcpy(y, x, (size_t)n * sizeof(XENT_T));
        return;
    }
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        y[j] = c * XENT_TANH(x[j] / c);
}

/* The class-only target coefficient a_j of class j of a row (tr its
 * probability row, or NULL: labels, where only the smoothing's u_j is
 * class-only). */
static inline double XENT_G(xent_c_coef_)(const xent_class_call *a, const XENT_T *tr, ptrdiff_t j)
{
    if (tr)
        return (a->w ? a->w[j] : 1.0) * ((1.0 - a->eps) * (double)tr[j] + a->eps / (double)a->C);
    return a->u[j];
}

/* Over classes j0 .. j0 + width - 1 of a row (xr, tr: the row starts):
 * sum_j a_j (x_j - m) over the class-only coefficients a_j != 0, and their
 * sum into *wsum; lane sums, so that the value does not depend on where the
 * row lies in memory. */
static inline __attribute__((always_inline)) void XENT_G(xent_c_tsum_lanes_)(
    const XENT_T *xr, const XENT_T *tr, const double *w, const double *u, double e1, double e2,
    ptrdiff_t j, double m, double *ts, double *ws)
{
    /* XENT_LANES classes from j: a_j = w_j (e1 t_j + e2), or u_j (labels) */
#pragma omp simd
    for (int l = 0; l < XENT_LANES; l++) {
        double c = tr ? (w ? w[j + l] : 1.0) * (e1 * (double)tr[j + l] + e2) : u[j + l];
        ts[l] += c != 0 ? c * XENT_G(xent_c_shifted_)((double)xr[j + l], m) : 0.0;
        ws[l] += c;
    }
}

static double XENT_G(xent_c_tsum_)(const xent_class_call *a, const XENT_T *xr, const XENT_T *tr,
                                   ptrdiff_t j0, ptrdiff_t width, double m, double *wsum)
{
    if (!tr && !a->u) {
        *wsum = 0.0;
        return 0.0;
    }
    double ts[XENT_LANES] = {0}, ws[XENT_LANES] = {0};
    const double *w = a->w, *u = a->u, e1 = 1.0 - a->eps, e2 = a->eps / (double)a->C;
    ptrdiff_t j = j0, end = j0 + width;
    /* (the cases apart, so that each loop is vectorised without tests) */
    if (!tr)
        for (; j + XENT_LANES <= end; j += XENT_LANES)
            XENT_G(xent_c_tsum_lanes_)(xr, NULL, NULL, u, e1, e2, j, m, ts, ws);
    else if (w)
        for (; j + XENT_LANES <= end; j += XENT_LANES)
            XENT_G(xent_c_tsum_lanes_)(xr, tr, w, NULL, e1, e2, j, m, ts, ws);
    else
        for (; j + XENT_LANES <= end; j += XENT_LANES)
            XENT_G(xent_c_tsum_lanes_)(xr, tr, NULL, NULL, e1, e2, j, m, ts, ws);
    for (int l = 0; j < end; j++, l++) {
        double c = XENT_G(xent_c_coef_)(a, tr, j);
        ts[l] += c != 0 ? c * XENT_G(xent_c_shifted_)((double)xr[j], m) : 0.0;
        ws[l] += c;
    }
    double t = 0.0, wt = 0.0;
    for (int l = 0; l < XENT_LANES; l++) {
        t += ts[l];
        wt += ws[l];
    }
    *wsum = wt;
    return t;
}

/* ------------------------------------------------ rows and their chunks */

static inline ptrdiff_t XENT_G(xent_c_per_)(ptrdiff_t C)
{
    return (C + XENT_ROW_CHUNK - 1) / XENT_ROW_CHUNK;
}

/* The start of row i: whether it counts for nothing (its loss 0, its
 * gradient 0: an ignored label or a sample weight of 0), and what must be
 * read before any output is written (the label's logit). Returns r->skip. */
static int XENT_G(xent_c_start_)(const xent_class_call *a, ptrdiff_t i, xent_row_terms *r)
{
    r->skip = 0;
    r->xy = 0.0;
    r->ay = 0.0;
    r->hq = r->hp = r->om = 0.0;
    if (a->op != XENT_CLS_CE && a->op != XENT_CLS_FOCAL)
        return 0;
    double sw = a->sw ? a->sw[i] : 1.0;
    r->f = a->gs[i * a->gss] * sw;
    if (sw == 0 || (a->labels && a->labels[i] == a->ignore)) {
        r->skip = 1;
        return 1;
    }
    if (a->labels) {
        int64_t y = a->labels[i];
        /* (with a softcap, y's transformed value comes with its chunk) */
        r->xy = a->cap != 0 ? 0.0 : (double)((const XENT_T *)a->x)[i * a->C + y];
        r->ay = (1.0 - a->eps) * (a->w ? a->w[y] : 1.0);
    }
    return 0;
}

/* The first NaN of x[0 .. n-1] (*nan set), else the first entry equal to m
 * (its max), -1 if none: blocks of 64 tested vectorised, the block of the
 * hit then scanned. */
static ptrdiff_t XENT_G(xent_c_argmax_)(const XENT_T *x, ptrdiff_t n, XENT_T m, int *nan)
{
    ptrdiff_t first = -1;
    *nan = 0;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 64) {
        const ptrdiff_t len = n - j0 < 64 ? n - j0 : 64;
        const int want_max = first < 0;
        int hit = 0;
#pragma omp simd reduction(| : hit)
        for (ptrdiff_t j = 0; j < len; j++)
            hit |= (x[j0 + j] != x[j0 + j]) | (want_max & (x[j0 + j] == m));
        if (!hit)
            continue;
        for (ptrdiff_t j = 0; j < len; j++) {
            if (x[j0 + j] != x[j0 + j]) {
                *nan = 1;
                return j0 + j;
            }
            if (first < 0 && x[j0 + j] == m)
                first = j0 + j;
        }
    }
    return first;
}

/* A skipped row: loss 0 and a zero gradient row. */
static void XENT_G(xent_c_skip_)(const xent_class_call *a, ptrdiff_t i)
{
    a->loss[i] = 0.0;
    if (a->argmax)
        a->argmax[i] = -1;
    if (a->out)
        memset((XENT_T *)a->out + i * a->C, 0, (size_t)a->C * sizeof(XENT_T));
    if (a->hess) { /* the policy's value of 0 */
        XENT_T h0 = (XENT_T)XENT_F(xent_hess_policy_)(0.0, a->hpol, a->hmin);
        XENT_T *H = (XENT_T *)a->hess + i * a->C;
        for (ptrdiff_t j = 0; j < a->C; j++)
            H[j] = h0;
    }
}

/* S - 1 of a row (the other exps of the max's: om / S is 1 - p of the max
 * without cancellation near p = 1, from log S, which keeps it there) */
static inline double XENT_G(xent_c_om_)(double S, double log_s)
{
    return S < 2.0 ? expm1(log_s) : S - 1.0;
}

/* The hessian of chunk j0 of row i (width classes) from its exps e (the
 * output row before its gradient is written), chunk factor fq and terms r */
static void XENT_G(xent_c_hess_)(const xent_class_call *a, ptrdiff_t i, ptrdiff_t j0, ptrdiff_t width,
                                 const XENT_T *e, double fq, const xent_row_terms *r)
{
    XENT_T *H = (XENT_T *)a->hess + i * a->C + j0;
    const double pk = r->s == 0 ? 0.0 : 1.0 / r->s, om = r->om, hq = r->hq, hp = r->hp, hmin = a->hmin;
    const int pol = a->hpol;
    const ptrdiff_t y = a->labels[i] - j0;
#pragma omp simd
    for (ptrdiff_t j = 0; j < width; j++) {
        double h = XENT_F(xent_softmax_h_)((double)e[j] * fq, pk, om, j == y, hq, hp);
        H[j] = (XENT_T)XENT_F(xent_hess_policy_)(h, pol, hmin);
    }
}

/* Whether a call's rows store their exps (softmax; the gradient without a
 * softcap, whose output pass takes exp(y_j - m) from the stored y_j). */
static inline int XENT_G(xent_c_stores_exps_)(const xent_class_call *a)
{
    return a->out && a->cap == 0 &&
           (a->op == XENT_CLS_SOFTMAX || a->op == XENT_CLS_CE || a->op == XENT_CLS_FOCAL);
}

#ifdef XENT_AVX512
/* The streamed rows' loops for XENT_T (src/xent_rows_impl.h) */
static inline double XENT_G(xent_c_stream_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m,
                                            const XENT_T *ep, XENT_T *out, double k, double c, int op)
{
    if (sizeof(XENT_T) == 4)
        return XENT_F(xent_sumexp_stream_f32_)((const float *)x, (float *)e, n, (float)m,
                                                (const float *)ep, (float *)out, k, c, op);
    return XENT_F(xent_sumexp_stream_f64_)((const double *)x, (double *)e, n, (double)m,
                                           (const double *)ep, (double *)out, k, c, op);
}

static inline XENT_T XENT_G(xent_c_out1_)(XENT_T v, double k, double c, int op)
{
    if (sizeof(XENT_T) == 4)
        return (XENT_T)XENT_F(xent_out1_f32_)((float)v, k, c, op);
    return (XENT_T)XENT_F(xent_out1_f64_)((double)v, k, c, op);
}

/* Chunk j0 of the pending row written (if it is live), fenced, and its
 * entry set apart fixed; x (unless NULL): the current row's chunk at the same
 * place, its sum of exps (finite max m) returned and its exps into e. */
static double XENT_G(xent_c_stream_chunk_)(xent_stream *st, const XENT_T *x, XENT_T *e, ptrdiff_t j0,
                                           ptrdiff_t width, XENT_T m)
{
    ptrdiff_t q = j0 / XENT_ROW_CHUNK;
    int live = st->pending && st->live[q];
    const XENT_T *ep = live ? (const XENT_T *)st->src + j0 : NULL;
    XENT_T *out = live ? (XENT_T *)st->dst + j0 : NULL;
    double s = 0.0;
    if (x || live)
        s = XENT_G(xent_c_stream_)(x, e, width, m, ep, out, live ? st->k[q] : 0.0, st->c, st->op);
    if (live) {
        st->live[q] = 0;
        if (j0 <= st->fix && st->fix < j0 + width) /* (after the stream's fence) */
            ((XENT_T *)st->dst)[st->fix] =
                (XENT_T)((double)XENT_G(xent_c_out1_)(((const XENT_T *)st->src)[st->fix], st->k[q], st->c,
                                                       st->op) -
                         st->fix_delta);
    }
    return s;
}

/* Every live chunk of the pending row written; nothing pending after. */
static void XENT_G(xent_c_stream_flush_)(xent_stream *st)
{
    if (st->pending)
        for (ptrdiff_t j0 = 0; j0 < st->C; j0 += XENT_ROW_CHUNK) {
            ptrdiff_t width = st->C - j0 < XENT_ROW_CHUNK ? st->C - j0 : XENT_ROW_CHUNK;
            XENT_G(xent_c_stream_chunk_)(st, NULL, NULL, j0, width, 0);
        }
    st->pending = 0;
}
#endif

/* Step 1 of a row: the statistics of its chunk j0 (row i of the call):
 * into ck its max, sum of exps and target sums; the exps into E (the row's
 * exps, unless NULL); with a softcap, Y (the row's transformed logits) is
 * written first and read instead of x (and the label's y into r->xy). With
 * a stream (st streaming), the pending row's chunk j0 is written in the same
 * loop. */
static void XENT_G(xent_c_stats_)(const xent_class_call *a, ptrdiff_t i, ptrdiff_t j0, XENT_T *E,
                                  XENT_T *Y, xent_stream *st, xent_chunk *ck, xent_row_terms *r)
{
    const ptrdiff_t C = a->C;
    const ptrdiff_t width = C - j0 < XENT_ROW_CHUNK ? C - j0 : XENT_ROW_CHUNK;
    const XENT_T *xr = (const XENT_T *)a->x + i * C;
    const XENT_T *tr = a->target ? (const XENT_T *)a->target + i * C : NULL;
    if (Y) {
        XENT_G(xent_c_softcap_)(xr + j0, Y + j0, width, a->cap);
        xr = Y;
        if (a->labels && j0 <= a->labels[i] && a->labels[i] < j0 + width)
            r->xy = (double)Y[a->labels[i]];
    }
    XENT_T m = XENT_G(xent_max_)(xr + j0, width);
    ck->m = (double)m;
    if (a->argmax)
        ck->am = XENT_G(xent_c_argmax_)(xr + j0, width, m, &ck->anan);
    ck->w = 0.0;
    ck->t = a->op == XENT_CLS_CE ? XENT_G(xent_c_tsum_)(a, xr, tr, j0, width, (double)m, &ck->w) : 0.0;
    XENT_T *e = E ? E + j0 : NULL;
#ifdef XENT_AVX512
    if (st) {
        if (m - m == 0) {
            ck->s = XENT_G(xent_c_stream_chunk_)(st, xr + j0, e, j0, width, m);
            return;
        }
        XENT_G(xent_c_stream_chunk_)(st, NULL, NULL, j0, width, 0);
    }
#else
    (void)st;
#endif
    ck->s = m - m == 0 ? XENT_G(xent_c_sumexp_)(xr + j0, e, width, m)
                       : XENT_G(xent_c_nonfinite_)(xr + j0, e, width, m);
}

/* The values log S is recomputed from near S = 1 (xent_c_log_s_): the exps of
 * a one-chunk row (relative to its max M; *exps set), else its logits (its
 * softcapped logits Y) while they are still there; NULL: none. */
static inline const XENT_T *XENT_G(xent_c_vrow_)(const xent_class_call *a, ptrdiff_t i, ptrdiff_t per,
                                                  const XENT_T *E, const XENT_T *Y, int *exps)
{
    const XENT_T *xr = (const XENT_T *)a->x + i * a->C;
    *exps = 0;
    if (a->cap != 0) /* (y in the output row; a scratch row's is not kept by the chunks path) */
        return a->out ? Y : NULL;
    if (!XENT_G(xent_c_stores_exps_)(a))
        return xr;
    if (per == 1) {
        *exps = 1;
        return E;
    }
    return (const void *)((XENT_T *)a->out + i * a->C) == (const void *)xr ? NULL : xr;
}

/* sum_{j != y} exp(x_j - M) of a row of max M and sum S (for log(1 - p_y)
 * near p_y = 1): from V, the row's exps (vexps) or logits; without them,
 * S - exp(x_y - M). */
static double XENT_G(xent_c_others_)(const XENT_T *V, ptrdiff_t C, double M, int64_t y, int vexps, double S,
                                     double xy)
{
    if (!V || !(M - M == 0))
        return S - exp(XENT_G(xent_c_shifted_)(xy, M));
    return XENT_G(xent_c_others_sum_)(V, C, y, (XENT_T)M, vexps);
}

/* Step 2 of a row: its chunks' statistics merged in chunk order into r (and
 * each chunk's factor f_q = exp(m_q - M) into ck[q].f): M, S, log S, and the
 * op's terms (lse, the loss and k). V: the row's exps (vexps) or logits, for
 * log S near 1; NULL where neither is left. */
static void XENT_G(xent_c_merge_)(const xent_class_call *a, ptrdiff_t i, xent_chunk *ck, ptrdiff_t per,
                                  const XENT_T *V, int vexps, xent_row_terms *r)
{
    double M = -INFINITY, S = 0.0, T = 0.0, W = 0.0;
    for (ptrdiff_t q = 0; q < per; q++)
        M = ck[q].m > M ? ck[q].m : M;
    if (a->argmax) { /* the first chunk's NaN, else the first chunk of the row's max */
        int64_t am = -1;
        for (ptrdiff_t q = 0; q < per && am < 0; q++)
            am = ck[q].anan ? (int64_t)(q * XENT_ROW_CHUNK + ck[q].am) : -1;
        for (ptrdiff_t q = 0; q < per && am < 0; q++)
            am = ck[q].m == M && ck[q].am >= 0 ? (int64_t)(q * XENT_ROW_CHUNK + ck[q].am) : -1;
        a->argmax[i] = am;
    }
    for (ptrdiff_t q = 0; q < per; q++) {
        double contrib;
        if (ck[q].w == 0)
            contrib = 0.0;
        else if (ck[q].m == -INFINITY) /* a chunk of -inf only: each x_j - M is -inf - M */
            contrib = ck[q].w * (-INFINITY - M);
        else if (ck[q].m == M)
            contrib = ck[q].t;
        else
            contrib = ck[q].t + (ck[q].m - M) * ck[q].w;
        /* (m_q == M: factor 1, also for M = +-inf, where m_q - M is NaN) */
        ck[q].f = ck[q].m == M ? 1.0 : exp(ck[q].m - M);
        S += ck[q].s * ck[q].f;
        T += contrib;
        W += ck[q].w;
    }
    r->m = M;
    r->s = S;
    r->log_s = V ? XENT_G(xent_c_log_s_)(V, a->C, (XENT_T)M, S, vexps) : log(S);
    switch (a->op) {
    case XENT_CLS_LSE:
        ((XENT_T *)a->lse)[i] = (XENT_T)(M + r->log_s);
        return;
    case XENT_CLS_SOFTMAX:
        r->k = S == 0 ? 0.0 : 1.0 / S; /* all -inf: the softmax is 0, not 0/0 */
        if (a->lse)
            ((XENT_T *)a->lse)[i] = (XENT_T)(M + r->log_s);
        return;
    case XENT_CLS_LOG_SOFTMAX:
        return;
    }
    if (a->op == XENT_CLS_FOCAL) {
        /* one target class: log p and log(1 - p) from the merged terms (near
         * p = 1, 1 - p as the sum of the other exps over S, no cancellation) */
        int64_t y = a->labels[i];
        double lp = XENT_G(xent_c_shifted_)(r->xy, M) - r->log_s;
        double p = exp(lp);
        double log1m = p < 0.5 ? log1p(-p) : log(XENT_G(xent_c_others_)(V, a->C, M, y, vexps, S, r->xy)) - r->log_s;
        double ad;
        a->loss[i] = (a->sw ? a->sw[i] : 1.0) * XENT_F(xent_focal_terms_)(lp, log1m, a->gamma, a->alpha[y], &ad);
        /* g = k e_j - f ay [j == y] with k = -f a D / S, ay = -a D (f: gs sw) */
        r->k = -r->f * ad / S;
        r->ay = -ad;
        if (a->hess) {
            r->hq = a->hfac * r->f * XENT_F(xent_focal_hq_)(lp, log1m, a->gamma, a->alpha[y]);
            r->hp = -a->hfac * r->f * ad;
            r->om = XENT_G(xent_c_om_)(S, r->log_s);
        }
        return;
    }
    double A = W;
    if (a->labels) {
        if (r->ay != 0)
            T += r->ay * XENT_G(xent_c_shifted_)(r->xy, M);
        A = r->ay + (a->eps != 0 ? a->eps * a->total_w / (double)a->C : 0.0);
    }
    double sw = a->sw ? a->sw[i] : 1.0;
    a->loss[i] = XENT_F(xent_ce_terms_)(M, S, r->log_s, A, T, sw, r->f, a->z, &r->k);
    if (a->hess) {
        r->hp = a->hfac * r->f * A;
        r->om = XENT_G(xent_c_om_)(S, r->log_s);
    }
}

/* A chunk's factor for its outputs: k f_q (a chunk whose exps vanish against
 * the row's max: 0, also for an infinite k; a NaN k stays NaN). */
static inline double XENT_G(xent_c_chunk_k_)(const xent_row_terms *r, const xent_chunk *ck)
{
    return (ck->f == 0 && r->k == r->k) ? 0.0 : r->k * ck->f;
}

/* log_softmax of a span of a row of max m and sum s: (x - m) - log s, with
 * the limits of the contract (all -inf: -inf; a +inf max: -log k at the k
 * +inf entries, -inf elsewhere; NaN propagating through log s). */
static void XENT_G(xent_c_log_softmax_)(const XENT_T *x, XENT_T *out, ptrdiff_t n, double m, double s,
                                        double log_s)
{
    if (s == 0) {
        for (ptrdiff_t j = 0; j < n; j++)
            out[j] = -INFINITY;
    } else if (m == INFINITY && s == s) {
        for (ptrdiff_t j = 0; j < n; j++)
            out[j] = x[j] == INFINITY ? (XENT_T)(-log_s) : (XENT_T)-INFINITY;
    } else {
        XENT_G(xent_shift_)(x, out, n, m, log_s);
    }
}

/* Step 3 of a row: the outputs of its chunk j0 from its merged terms r: O
 * the row's output, E its exps (NULL: not stored), Y its softcapped logits. */
static void XENT_G(xent_c_out_)(const xent_class_call *a, ptrdiff_t i, ptrdiff_t j0, const xent_row_terms *r,
                                const xent_chunk *ck, const XENT_T *E, const XENT_T *Y)
{
    const ptrdiff_t C = a->C;
    const ptrdiff_t width = C - j0 < XENT_ROW_CHUNK ? C - j0 : XENT_ROW_CHUNK;
    const XENT_T *xr = (const XENT_T *)a->x + i * C;
    XENT_T *O = (XENT_T *)a->out + i * C + j0;
    if (a->op == XENT_CLS_LOG_SOFTMAX) {
        XENT_G(xent_c_log_softmax_)(xr + j0, O, width, r->m, r->s, r->log_s);
        return;
    }
    double k = XENT_G(xent_c_chunk_k_)(r, ck);
    if (E && E + j0 != O)
        memcpy(O, E + j0, (size_t)width * sizeof(XENT_T));
    if (a->op == XENT_CLS_SOFTMAX) {
        XENT_G(xent_c_scale_)(O, width, k);
        return;
    }
    const double F = r->f;
    const int64_t y = a->labels ? a->labels[i] : -1;
    const XENT_T *tr = a->target ? (const XENT_T *)a->target + i * C : NULL;
    if (Y) { /* the softcap: g_j = (k exp(y_j - M) - F a_j) (1 - (y_j / cap)^2) */
        XENT_EXP_BOUNDS;
        const double cap = a->cap, kk = r->k, ay = r->ay;
        const XENT_T Mt = (XENT_T)r->m;
        /* a zero exp's term: 0 k, or 0 for an infinite k (an invariant
         * value: a select on kk's test and e's in the loop did not vectorise) */
        const double kz = kk == INFINITY || kk == -INFINITY ? 0.0 : 0.0 * kk;
        /* the coefficients a_j a block at a time (the class-only ones of
         * xent_c_coef_, each its own simple loop, then the label's ay): a
         * select on which source in the loop kept GCC from vectorising it */
        const double *w = tr && a->w ? a->w + j0 : NULL, *u = !tr && a->u ? a->u + j0 : NULL;
        const double e1 = 1.0 - a->eps, e2 = a->eps / (double)C;
        enum { XENT_CB = 512 }; /* (a block of coefficients, on the stack) */
        double cv[XENT_CB];
        for (ptrdiff_t b0 = 0; b0 < width; b0 += XENT_CB) {
            const int len = width - b0 < XENT_CB ? (int)(width - b0) : XENT_CB;
            const XENT_T *yr = Y + j0 + b0, *t = tr ? tr + j0 + b0 : NULL;
            if (t && w) {
#pragma omp simd
                for (int l = 0; l < len; l++)
                    cv[l] = w[b0 + l] * (e1 * (double)t[l] + e2) + 0.0;
            } else if (t) {
#pragma omp simd
                for (int l = 0; l < len; l++)
                    cv[l] = e1 * (double)t[l] + e2 + 0.0;
            } else if (u) {
#pragma omp simd
                for (int l = 0; l < len; l++)
                    cv[l] = u[b0 + l] + 0.0;
            } else {
                for (int l = 0; l < len; l++)
                    cv[l] = 0.0;
            }
            if (j0 + b0 <= y && y < j0 + b0 + len) /* (+ 0.0 above: the others' a_j + 0, as before) */
                cv[y - j0 - b0] += ay;
            XENT_T *o = O + b0;
#pragma omp simd
            for (int l = 0; l < len; l++) {
                double e = (double)XENT_EXP(yr[l] - Mt);
                double g = (e == 0 ? kz : e * kk) - F * cv[l];
                double tj = (double)yr[l] / cap;
                o[l] = (XENT_T)(g * (1.0 - tj * tj));
            }
        }
        return;
    }
    if (tr) { /* probabilities: g_j = k e_j - F a_j, rounded once */
        const double *w = a->w ? a->w + j0 : NULL, e1 = 1.0 - a->eps, e2 = a->eps / (double)C;
        const XENT_T *t = tr + j0;
        const int kinf = k == INFINITY || k == -INFINITY;
        if (w) {
#pragma omp simd
            for (ptrdiff_t j = 0; j < width; j++) {
                double e = (double)O[j];
                double g = (e == 0 && kinf) ? 0.0 : e * k;
                O[j] = (XENT_T)(g - F * (w[j] * (e1 * (double)t[j] + e2)));
            }
        } else {
#pragma omp simd
            for (ptrdiff_t j = 0; j < width; j++) {
                double e = (double)O[j];
                double g = (e == 0 && kinf) ? 0.0 : e * k;
                O[j] = (XENT_T)(g - F * (e1 * (double)t[j] + e2));
            }
        }
        return;
    }
    if (a->hess) /* (from the exps, before the gradient replaces them) */
        XENT_G(xent_c_hess_)(a, i, j0, width, O, ck->f, r);
    /* labels: g_j = k e_j - F u_j (smoothing; u_j = eps / C without class
     * weights: one constant, as the streamed rows take it) */
    if (a->u && !a->w)
        XENT_G(xent_c_scale_sub_)(O, width, k, F * a->u[0], NULL);
    else
        XENT_G(xent_c_scale_sub_)(O, width, k, a->u ? F : 0.0, a->u ? a->u + j0 : NULL);
    if (j0 <= y && y < j0 + width)
        O[y - j0] = (XENT_T)((double)O[y - j0] - F * r->ay);
}

/* A whole row as one task (the rows path): steps 1-3 over its chunks. st:
 * the thread's workspace (NULL when the call needs none): two scratch rows,
 * streaming the row's output when st->op >= 0. */
static void XENT_G(xent_class_row_)(const xent_class_call *a, ptrdiff_t i, xent_stream *st)
{
    const ptrdiff_t C = a->C, per = XENT_G(xent_c_per_)(C);
    xent_chunk stack_ck[XENT_STACK_CHUNKS];
    xent_chunk *ck = per <= XENT_STACK_CHUNKS ? stack_ck : a->chunks + i * per;
    xent_row_terms r;
    if (XENT_G(xent_c_start_)(a, i, &r)) {
        XENT_G(xent_c_skip_)(a, i);
        return;
    }
    XENT_T *O = a->out ? (XENT_T *)a->out + i * C : NULL;
    const int streaming = st && st->op >= 0;
    /* the softcap's y: in the output row, or the thread's scratch row */
    XENT_T *Y = a->cap != 0 ? (O ? O : (XENT_T *)st->scr[0]) : NULL;
    XENT_T *E = NULL;
    if (XENT_G(xent_c_stores_exps_)(a))
        E = streaming ? (XENT_T *)st->scr[st->next] : O;
    for (ptrdiff_t q = 0; q < per; q++)
        XENT_G(xent_c_stats_)(a, i, q * XENT_ROW_CHUNK, E, Y, streaming ? st : NULL, &ck[q], &r);
    int vexps;
    const XENT_T *V = XENT_G(xent_c_vrow_)(a, i, per, E, Y, &vexps);
    XENT_G(xent_c_merge_)(a, i, ck, per, V, vexps, &r);
    if (!O)
        return;
#ifdef XENT_AVX512
    if (streaming) {
        /* each chunk pending (its factor within the float32 split) or
         * written now, on the plain path */
        int any = 0;
        /* the output's offset: log s (the shift), F eps / C (smoothing
         * without class weights, the one u_j), else 0 */
        const double c = st->op == XENT_STREAM_SHIFT ? r.log_s
                         : (st->op == XENT_STREAM_SUB && a->u) ? r.f * a->u[0] : 0.0;
        for (ptrdiff_t q = 0; q < per; q++) {
            double k;
            if (st->op == XENT_STREAM_SHIFT)
                k = r.m - r.m == 0 ? r.m : NAN;
            else
                k = XENT_G(xent_c_chunk_k_)(&r, &ck[q]);
            int live = k - k == 0 && (k < 0 ? -k : k) < XENT_SPLIT_MAX && (c < 0 ? -c : c) < XENT_SPLIT_MAX;
            st->k[q] = k;
            st->live[q] = (unsigned char)live;
            any |= live;
            if (!live)
                XENT_G(xent_c_out_)(a, i, q * XENT_ROW_CHUNK, &r, &ck[q], E, NULL);
        }
        st->src = st->op == XENT_STREAM_SHIFT ? (const void *)((const XENT_T *)a->x + i * C) : (const void *)E;
        st->dst = O;
        st->c = c;
        st->fix = -1;
        if (st->op == XENT_STREAM_SUB) {
            int64_t y = a->labels[i];
            if (st->live[y / XENT_ROW_CHUNK]) {
                st->fix = y;
                st->fix_delta = r.f * r.ay;
            }
        }
        st->pending = any;
        if (any && st->op != XENT_STREAM_SHIFT)
            st->next ^= 1;
        return;
    }
#endif
    for (ptrdiff_t q = 0; q < per; q++)
        XENT_G(xent_c_out_)(a, i, q * XENT_ROW_CHUNK, &r, &ck[q], E, Y);
}

/* The chunks path (few long rows): the steps as three parallel loops over
 * a call's chunks (q = i * per + chunk) and rows, the statistics in
 * a->chunks and a->rows. Step 0, a row's start, comes first (serially). */
static void XENT_G(xent_class_start_)(const xent_class_call *a, ptrdiff_t i)
{
    XENT_G(xent_c_start_)(a, i, &a->rows[i]);
}

static void XENT_G(xent_class_chunk_stats_)(const xent_class_call *a, ptrdiff_t q, xent_stream *st)
{
    const ptrdiff_t per = XENT_G(xent_c_per_)(a->C), i = q / per;
    if (a->rows[i].skip)
        return;
    XENT_T *O = a->out ? (XENT_T *)a->out + i * a->C : NULL;
    /* the softcap's y: in the output row, or the thread's scratch row */
    XENT_T *Y = a->cap != 0 ? (O ? O : (XENT_T *)st->scr[0]) : NULL;
    XENT_G(xent_c_stats_)(a, i, (q % per) * XENT_ROW_CHUNK, XENT_G(xent_c_stores_exps_)(a) ? O : NULL, Y,
                          NULL, &a->chunks[q], &a->rows[i]);
}

static void XENT_G(xent_class_row_merge_)(const xent_class_call *a, ptrdiff_t i)
{
    const ptrdiff_t C = a->C, per = XENT_G(xent_c_per_)(C);
    xent_row_terms *r = &a->rows[i];
    if (r->skip) {
        XENT_G(xent_c_skip_)(a, i);
        return;
    }
    const XENT_T *O = a->out ? (const XENT_T *)a->out + i * C : NULL;
    int vexps;
    const XENT_T *V = XENT_G(xent_c_vrow_)(a, i, per, O, O, &vexps);
    XENT_G(xent_c_merge_)(a, i, a->chunks + i * per, per, V, vexps, r);
}

static void XENT_G(xent_class_chunk_out_)(const xent_class_call *a, ptrdiff_t q)
{
    const ptrdiff_t C = a->C, per = XENT_G(xent_c_per_)(C), i = q / per;
    if (!a->out || a->rows[i].skip)
        return;
    XENT_T *O = (XENT_T *)a->out + i * C;
    XENT_G(xent_c_out_)(a, i, (q % per) * XENT_ROW_CHUNK, &a->rows[i], &a->chunks[q],
                        XENT_G(xent_c_stores_exps_)(a) ? O : NULL, a->cap != 0 ? O : NULL);
}

#ifdef XENT_AVX512
static void XENT_G(xent_class_stream_close_)(xent_stream *st)
{
    XENT_G(xent_c_stream_flush_)(st);
}
#else
static void XENT_G(xent_class_stream_close_)(xent_stream *st)
{
    (void)st;
}
#endif

/* ------------------------------------------------------------ blocks
 * Rows of at most XENT_SMALL_C classes, nb <= XENT_BLOCK at a time (rows
 * i0 .. i0 + nb - 1), transposed into workspaces (xw[c * XENT_BLOCK + b]:
 * class c of row b) so that every step is a loop over the block's rows,
 * vectorised. The terms are the rows path's (xent_ce_terms_); the body is
 * specialised for each op and target kind (the arguments op, probs and cap
 * are constants at each call of it). */

#if defined(XENT_AVX512) && XENT_BLOCK == 16
/* a narrow block's rows to and from its workspace (xent_tn16_in_ and the
 * rest: C a constant in each case) */
static inline __attribute__((always_inline)) void XENT_G(xent_c_narrow_)(const XENT_T *x, XENT_T *w,
                                                                         const int C, const int in)
{
    if (sizeof(XENT_T) == 4) {
        __m512 v[XENT_NARROW_C];
        if (in) {
            XENT_F(xent_tn16_in_)((const float *)x, C, v);
            for (int c = 0; c < C; c++)
                _mm512_storeu_ps((float *)w + 16 * c, v[c]);
        } else {
            for (int c = 0; c < C; c++)
                v[c] = _mm512_loadu_ps((const float *)w + 16 * c);
            XENT_F(xent_tn16_out_)(v, C, (float *)x);
        }
    } else {
        __m512d v[XENT_NARROW_C];
        for (int h = 0; h < 2; h++) {
            if (in) {
                XENT_F(xent_tn8_in_)((const double *)x + 8 * h * C, C, v);
                for (int c = 0; c < C; c++)
                    _mm512_storeu_pd((double *)w + 16 * c + 8 * h, v[c]);
            } else {
                for (int c = 0; c < C; c++)
                    v[c] = _mm512_loadu_pd((const double *)w + 16 * c + 8 * h);
                XENT_F(xent_tn8_out_)(v, C, (double *)x + 8 * h * C);
            }
        }
    }
}

/* 1: the block went by xent_c_narrow_ (nb == XENT_BLOCK, C <= XENT_NARROW_C) */
static inline int XENT_G(xent_c_narrow_io_)(const XENT_T *x, XENT_T *w, ptrdiff_t nb, ptrdiff_t C, int in)
{
    if (nb != XENT_BLOCK)
        return 0;
    switch (C) {
#define XENT_CASE(n) case n: XENT_G(xent_c_narrow_)(x, w, n, in); return 1;
    XENT_CASE(1) XENT_CASE(2) XENT_CASE(3) XENT_CASE(4) XENT_CASE(5) XENT_CASE(6) XENT_CASE(7) XENT_CASE(8)
#undef XENT_CASE
    }
    return 0;
}
#endif

static inline void XENT_G(xent_c_t_in_)(const XENT_T *x, ptrdiff_t nb, ptrdiff_t C, XENT_T *w)
{
#if defined(XENT_AVX512) && XENT_BLOCK == 16
    if (XENT_G(xent_c_narrow_io_)((XENT_T *)x, w, nb, C, 1))
        return;
    if (sizeof(XENT_T) == 4 && nb == XENT_BLOCK) {
        for (ptrdiff_t c0 = 0; c0 < C; c0 += 16)
            XENT_F(xent_t16_in_)((const float *)x + c0, C, C - c0 < 16 ? C - c0 : 16, (float *)w + c0 * 16);
        return;
    }
    if (sizeof(XENT_T) == 8 && nb == XENT_BLOCK) {
        for (ptrdiff_t c0 = 0; c0 < C; c0 += 8)
            XENT_F(xent_t8_in_)((const double *)x + c0, C, C - c0 < 8 ? C - c0 : 8, (double *)w + c0 * 16);
        return;
    }
#endif
    if (nb == XENT_BLOCK) {
        for (ptrdiff_t c = 0; c < C; c++)
#pragma omp simd
            for (int b = 0; b < XENT_BLOCK; b++)
                w[c * XENT_BLOCK + b] = x[b * C + c];
    } else {
        for (ptrdiff_t c = 0; c < C; c++)
            for (int b = 0; b < XENT_BLOCK; b++)
                w[c * XENT_BLOCK + b] = b < nb ? x[b * C + c] : (XENT_T)0;
    }
}

static inline void XENT_G(xent_c_t_out_)(const XENT_T *w, ptrdiff_t nb, ptrdiff_t C, XENT_T *out)
{
#if defined(XENT_AVX512) && XENT_BLOCK == 16
    if (XENT_G(xent_c_narrow_io_)(out, (XENT_T *)w, nb, C, 0))
        return;
    if (sizeof(XENT_T) == 4 && nb == XENT_BLOCK) {
        for (ptrdiff_t c0 = 0; c0 < C; c0 += 16)
            XENT_F(xent_t16_out_)((const float *)w + c0 * 16, C - c0 < 16 ? C - c0 : 16, (float *)out + c0, C);
        return;
    }
    if (sizeof(XENT_T) == 8 && nb == XENT_BLOCK) {
        for (ptrdiff_t c0 = 0; c0 < C; c0 += 8)
            XENT_F(xent_t8_out_)((const double *)w + c0 * 16, C - c0 < 8 ? C - c0 : 8, (double *)out + c0, C);
        return;
    }
#endif
    if (nb == XENT_BLOCK) {
        for (ptrdiff_t c = 0; c < C; c++) {
            const XENT_T *v = w + c * XENT_BLOCK;
            XENT_T *o = out + c;
            for (int b = 0; b < XENT_BLOCK; b++)
                o[b * C] = v[b];
        }
    } else {
        for (ptrdiff_t c = 0; c < C; c++)
            for (ptrdiff_t b = 0; b < nb; b++)
                out[b * C + c] = w[c * XENT_BLOCK + b];
    }
}

static inline __attribute__((always_inline)) void XENT_G(xent_c_block_body_)(
    const xent_class_call *a, ptrdiff_t i0, ptrdiff_t nb, const int op, const int probs, const int capped,
    const ptrdiff_t C)
{
    enum { B = XENT_BLOCK };
    XENT_EXP_BOUNDS;
    const XENT_T *x = (const XENT_T *)a->x + i0 * C;
    XENT_T xw[XENT_SMALL_C * B], ew[XENT_SMALL_C * B], tw[XENT_SMALL_C * B];
    double m[B], s[B], comp[B], ls[B], A[B], T[B], f[B], swv[B], k[B], ay[B], tt[B], om[B];
    int32_t yi[B]; /* the label, or -1 (none; ignored, or of weight 0) */
    XENT_T yv[B];  /* the label's logit, picked out by comparison */
    int skip[B];
    double hq[B], hp[B]; /* the hessian's terms (xent_class.h) */
#if defined(__GNUC__)
    /* the block 8 ahead into the cache (the strided loads of the transpose
     * otherwise wait on memory; a prefetch past the end of the rows is
     * harmless: an address, not a load) */
    for (ptrdiff_t l = 0; l < B * C * (ptrdiff_t)sizeof(XENT_T); l += 64)
        __builtin_prefetch((const char *)((uintptr_t)x + (size_t)(8 * B * C) * sizeof(XENT_T) + (size_t)l));
#endif
    XENT_G(xent_c_t_in_)(x, nb, C, xw);
    if (probs)
        XENT_G(xent_c_t_in_)((const XENT_T *)a->target + i0 * C, nb, C, tw);
    if (capped && (XENT_T)a->cap != (XENT_T)INFINITY) { /* (beyond the type's range: y = x) */
        const XENT_T c = (XENT_T)a->cap;
#pragma omp simd
        for (ptrdiff_t l = 0; l < C * B; l++)
            xw[l] = c * XENT_TANH(xw[l] / c);
    }
    /* the row maxima */
    XENT_T mt[B];
    for (int b = 0; b < B; b++)
        mt[b] = -INFINITY;
    for (ptrdiff_t c = 0; c < C; c++) {
        const XENT_T *v = xw + c * B;
#pragma omp simd
        for (int b = 0; b < B; b++)
            mt[b] = v[b] > mt[b] ? v[b] : mt[b];
    }
    if (a->argmax) {
        /* the first NaN, else the first maximum of each row (a descending scan) */
        int32_t amx[B], anan[B];
        for (int b = 0; b < B; b++)
            amx[b] = anan[b] = -1;
        for (ptrdiff_t c = C - 1; c >= 0; c--) {
            const XENT_T *v = xw + c * B;
#pragma omp simd
            for (int b = 0; b < B; b++) {
                amx[b] = v[b] == mt[b] ? (int32_t)c : amx[b];
                anan[b] = v[b] != v[b] ? (int32_t)c : anan[b];
            }
        }
        for (ptrdiff_t b = 0; b < nb; b++)
            a->argmax[i0 + b] = anan[b] >= 0 ? anan[b] : amx[b];
    }
    /* the rows' terms that do not depend on the exps */
    for (int b = 0; b < B; b++) {
        m[b] = (double)mt[b];
        s[b] = comp[b] = tt[b] = 0.0;
        A[b] = T[b] = f[b] = swv[b] = ay[b] = 0.0;
        yi[b] = -1;
        skip[b] = b >= nb;
    }
    if (op == XENT_CLS_CE || op == XENT_CLS_FOCAL) {
        if (nb == B && a->labels && !a->sw && !a->w) {
            /* (the common case, vectorised: a full block of labels without
             * sample or class weights) */
            const int64_t *lab = a->labels + i0, ign = a->ignore;
            const double *gs = a->gs + i0 * a->gss, e1 = 1.0 - a->eps;
            const ptrdiff_t gss = a->gss;
#pragma omp simd
            for (int b = 0; b < B; b++) {
                int64_t y = lab[b];
                int sk = y == ign;
                skip[b] = sk;
                swv[b] = sk ? 0.0 : 1.0;
                f[b] = sk ? 0.0 : gs[b * gss];
                yi[b] = sk ? -1 : (int32_t)y;
                ay[b] = sk ? 0.0 : e1;
            }
        } else
        for (ptrdiff_t b = 0; b < nb; b++) {
            ptrdiff_t i = i0 + b;
            double sw = a->sw ? a->sw[i] : 1.0;
            int64_t y = a->labels ? a->labels[i] : 0;
            skip[b] = sw == 0 || (a->labels && y == a->ignore);
            swv[b] = skip[b] ? 0.0 : sw;
            f[b] = skip[b] ? 0.0 : a->gs[i * a->gss] * sw;
            if (a->labels && !skip[b]) {
                yi[b] = (int32_t)y;
                ay[b] = (1.0 - a->eps) * (a->w ? a->w[y] : 1.0);
            }
        }
        /* the target sums, from the logits (before the exps) */
        if (probs) {
            const double e1 = 1.0 - a->eps, e2 = a->eps / (double)C;
            for (ptrdiff_t c = 0; c < C; c++) {
                const XENT_T *v = xw + c * B, *t = tw + c * B;
                const double wc = a->w ? a->w[c] : 1.0;
#pragma omp simd
                for (int b = 0; b < B; b++) {
                    double coef = wc * (e1 * (double)t[b] + e2);
                    T[b] += coef != 0 ? coef * XENT_G(xent_c_shifted_)((double)v[b], m[b]) : 0.0;
                    A[b] += coef;
                }
            }
        } else {
            XENT_T yc[B]; /* the label as a value of the logits' type (-1: none) */
            for (int b = 0; b < B; b++) {
                yv[b] = 0;
                yc[b] = (XENT_T)yi[b];
            }
            for (ptrdiff_t c = 0; c < C; c++) {
                const XENT_T *v = xw + c * B;
                const XENT_T cc = (XENT_T)c;
#pragma omp simd
                for (int b = 0; b < B; b++)
                    yv[b] = yc[b] == cc ? v[b] : yv[b];
            }
#pragma omp simd
            for (int b = 0; b < B; b++)
                T[b] = ay[b] != 0 ? ay[b] * XENT_G(xent_c_shifted_)((double)yv[b], m[b]) : 0.0;
            if (a->u) {
                for (ptrdiff_t c = 0; c < C; c++) {
                    const XENT_T *v = xw + c * B;
                    const double uc = a->u[c];
                    if (uc == 0)
                        continue;
#pragma omp simd
                    for (int b = 0; b < B; b++)
                        T[b] += uc * XENT_G(xent_c_shifted_)((double)v[b], m[b]);
                }
            }
            const double au = a->eps != 0 ? a->eps * a->total_w / (double)C : 0.0;
            for (int b = 0; b < B; b++)
                A[b] = ay[b] + au;
        }
    }
    /* the exps and their sums (ew; log_softmax needs only the sums) */
    double oth[B]; /* the focal loss: the sum of the exps other than the label's */
    for (int b = 0; b < B; b++)
        oth[b] = 0.0;
#if defined(XENT_AVX512) && XENT_BLOCK == 16
    if (sizeof(XENT_T) == 8) {
        /* float64: the table-driven xent_exp8_, the sums compensated as XENT_ACC */
        const __m512d lo = _mm512_set1_pd(xent_exp_bounds[0]), hi = _mm512_set1_pd(xent_exp_bounds[1]);
        const __m512d m0 = _mm512_loadu_pd((const double *)mt), m1 = _mm512_loadu_pd((const double *)mt + 8);
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, c0 = s0, c1 = s0;
        for (ptrdiff_t c = 0; c < C; c++) {
            const double *v = (const double *)xw + c * B;
            double *e = (double *)ew + c * B;
            __m512d e0 = XENT_F(xent_exp8_)(_mm512_sub_pd(_mm512_loadu_pd(v), m0), lo, hi);
            __m512d e1 = XENT_F(xent_exp8_)(_mm512_sub_pd(_mm512_loadu_pd(v + 8), m1), lo, hi);
            _mm512_storeu_pd(e, e0);
            _mm512_storeu_pd(e + 8, e1);
            __m512d y0 = _mm512_sub_pd(e0, c0), y1 = _mm512_sub_pd(e1, c1);
            __m512d u0 = _mm512_add_pd(s0, y0), u1 = _mm512_add_pd(s1, y1);
            c0 = _mm512_sub_pd(_mm512_sub_pd(u0, s0), y0);
            c1 = _mm512_sub_pd(_mm512_sub_pd(u1, s1), y1);
            s0 = u0;
            s1 = u1;
        }
        _mm512_storeu_pd(s, s0);
        _mm512_storeu_pd(s + 8, s1);
        _mm512_storeu_pd(comp, c0);
        _mm512_storeu_pd(comp + 8, c1);
        if (op == XENT_CLS_FOCAL)
            for (ptrdiff_t c = 0; c < C; c++) {
                const XENT_T *e = ew + c * B;
#pragma omp simd
                for (int b = 0; b < B; b++)
                    oth[b] += yi[b] == (int32_t)c ? 0.0 : (double)e[b];
            }
    } else
#endif
    for (ptrdiff_t c = 0; c < C; c++) {
        const XENT_T *v = xw + c * B;
        XENT_T *e = ew + c * B;
#pragma omp simd
        for (int b = 0; b < B; b++) {
            XENT_T ev = XENT_EXP(v[b] - mt[b]);
            e[b] = ev;
            XENT_ACC(s[b], comp[b], ev);
        }
        if (op == XENT_CLS_FOCAL) {
#pragma omp simd
            for (int b = 0; b < B; b++)
                oth[b] += yi[b] == (int32_t)c ? 0.0 : (double)e[b];
        }
    }
#if XENT_KAHAN
    for (int b = 0; b < B; b++)
        s[b] -= comp[b];
#endif
    /* log s: the vectorised log; near 1 (one dominant entry), log1p of the
     * terms other than the max's own exp of 1 */
#pragma omp simd
    for (int b = 0; b < B; b++)
        ls[b] = XENT_F(xent_log_)(s[b]);
    int finite = 1;
    for (int b = 0; b < B; b++)
        finite &= mt[b] - mt[b] == 0;
    const double near = sizeof(XENT_T) == 4 ? XENT_NEAR_ONE_F32 : XENT_NEAR_ONE_F64;
    int any_near = 0;
    for (int b = 0; b < B; b++) {
        any_near |= s[b] < near;
        om[b] = s[b] - 1.0;
    }
    if (any_near) {
        /* t: the exps other than 1, plus the count of 1s less one (the max's
         * own exp; rows without a 1 are not finite); in floating point
         * throughout, so that the loop is one vector operation a step */
        double ones[B];
        for (int b = 0; b < B; b++)
            ones[b] = 0.0;
        for (ptrdiff_t c = 0; c < C; c++) {
            const XENT_T *e = ew + c * B;
#pragma omp simd
            for (int b = 0; b < B; b++) {
                double ev = (double)e[b];
                tt[b] += ev == 1.0 ? 0.0 : ev;
                ones[b] += ev == 1.0 ? 1.0 : 0.0;
            }
        }
#pragma omp simd
        for (int b = 0; b < B; b++) {
            int use = s[b] < near && ones[b] != 0 && mt[b] - mt[b] == 0;
            double t = tt[b] + (ones[b] - 1.0);
            ls[b] = use ? XENT_F(xent_log1p_)(t) : ls[b];
            om[b] = use ? t : om[b];
        }
    }
    /* rows whose maximum is +inf, -inf or NaN: the contract's limits */
    if (!finite) {
        for (ptrdiff_t b = 0; b < nb; b++) {
            if (mt[b] - mt[b] == 0)
                continue;
            double sb = 0.0;
            for (ptrdiff_t c = 0; c < C; c++) {
                XENT_T v = xw[c * B + b];
                if (v != v) {
                    sb = (double)v;
                    break;
                }
                sb += (mt[b] == INFINITY && v == INFINITY) ? 1.0 : 0.0;
            }
            s[b] = sb;
            ls[b] = log(sb);
            om[b] = sb - 1.0;
            oth[b] = 0.0;
            for (ptrdiff_t c = 0; c < C; c++) {
                ew[c * B + b] = (mt[b] == INFINITY && xw[c * B + b] == INFINITY) ? (XENT_T)1 : (XENT_T)0;
                oth[b] += yi[b] == (int32_t)c ? 0.0 : (double)ew[c * B + b];
            }
            if (sb != sb)
                oth[b] = sb;
        }
    }
    /* the rows' terms and outputs */
    XENT_T *out = a->out ? (XENT_T *)a->out + i0 * C : NULL;
    if (op == XENT_CLS_LSE || op == XENT_CLS_SOFTMAX) {
        if (a->lse)
            for (ptrdiff_t b = 0; b < nb; b++)
                ((XENT_T *)a->lse)[i0 + b] = (XENT_T)(m[b] + ls[b]);
        if (op == XENT_CLS_LSE)
            return;
        for (int b = 0; b < B; b++)
            k[b] = s[b] == 0 ? 0.0 : 1.0 / s[b]; /* all -inf: the softmax is 0 */
        for (ptrdiff_t c = 0; c < C; c++) {
            XENT_T *e = ew + c * B;
#pragma omp simd
            for (int b = 0; b < B; b++)
                e[b] = (XENT_T)((double)e[b] * k[b]);
        }
        XENT_G(xent_c_t_out_)(ew, nb, C, out);
        return;
    }
    if (op == XENT_CLS_LOG_SOFTMAX) {
        for (ptrdiff_t c = 0; c < C; c++) {
            const XENT_T *v = xw + c * B;
            XENT_T *e = ew + c * B;
#pragma omp simd
            for (int b = 0; b < B; b++) {
                double o = ((double)v[b] - m[b]) - ls[b];
                o = s[b] == 0 ? -INFINITY : o;
                o = (mt[b] == INFINITY && s[b] == s[b]) ? (v[b] == INFINITY ? -ls[b] : -INFINITY) : o;
                e[b] = (XENT_T)o;
            }
        }
        XENT_G(xent_c_t_out_)(ew, nb, C, out);
        return;
    }
    if (op == XENT_CLS_FOCAL) {
        /* the focal terms of the label (as the rows path's merge): k = -f a D / s,
         * and the label's own coefficient -a D */
        double al[B];
        for (int b = 0; b < B; b++)
            al[b] = a->alpha[yi[b] >= 0 ? yi[b] : 0];
        const double gamma = a->gamma, elo = xent_exp_bounds[0], ehi = xent_exp_bounds[1];
        double lpv[B], l1v[B];
#pragma omp simd
        for (int b = 0; b < B; b++) {
            double lp = XENT_G(xent_c_shifted_)((double)yv[b], m[b]) - ls[b];
            double p = XENT_F(xent_exp_)(lp, elo, ehi);
            double log1m = p < 0.5 ? XENT_F(xent_log1p_)(-p) : XENT_F(xent_log_)(oth[b]) - ls[b];
            double ad;
            tt[b] = swv[b] * XENT_F(xent_focal_terms_)(lp, log1m, gamma, al[b], &ad);
            k[b] = -f[b] * ad / s[b];
            ay[b] = -ad;
            lpv[b] = lp;
            l1v[b] = log1m;
        }
        if (a->hess) {
#pragma omp simd
            for (int b = 0; b < B; b++) {
                hq[b] = a->hfac * f[b] * XENT_F(xent_focal_hq_)(lpv[b], l1v[b], gamma, al[b]);
                hp[b] = a->hfac * f[b] * ay[b];
            }
        }
    } else {
        /* the cross-entropy */
#pragma omp simd
        for (int b = 0; b < B; b++) {
            tt[b] = XENT_F(xent_ce_terms_)(m[b], s[b], ls[b], A[b], T[b], swv[b], f[b], a->z, &k[b]);
            hq[b] = 0.0;
            hp[b] = a->hfac * f[b] * A[b];
        }
    }
    for (ptrdiff_t b = 0; b < nb; b++)
        a->loss[i0 + b] = skip[b] ? 0.0 : tt[b];
    if (a->argmax)
        for (ptrdiff_t b = 0; b < nb; b++)
            a->argmax[i0 + b] = skip[b] ? -1 : a->argmax[i0 + b];
    if (!out)
        return;
    if (!probs && !capped && a->hess) {
        /* the hessian (xent_class.h) from the exps, before the gradient
         * replaces them, into the targets' workspace (labels: unused) */
        const double hmin = a->hmin;
        const int pol = a->hpol;
        const double h0 = XENT_F(xent_hess_policy_)(0.0, pol, hmin);
        double pk[B];
        for (int b = 0; b < B; b++)
            pk[b] = s[b] == 0 ? 0.0 : 1.0 / s[b];
        if (op == XENT_CLS_CE && pol == XENT_HESS_CLIP) {
            /* (the cross-entropy's: hq = 0, h >= 0 floored) */
            for (ptrdiff_t c = 0; c < C; c++) {
                const XENT_T *e = ew + c * B;
                XENT_T *h = tw + c * B;
#pragma omp simd
                for (int b = 0; b < B; b++) {
                    double ev = (double)e[b], p = ev * pk[b];
                    double q = ev == 1.0 ? om[b] * pk[b] : 1.0 - p;
                    double v = hp[b] * p * q;
                    v = v < hmin ? hmin : v;
                    h[b] = (XENT_T)(skip[b] ? h0 : v);
                }
            }
        } else {
            for (ptrdiff_t c = 0; c < C; c++) {
                const XENT_T *e = ew + c * B;
                XENT_T *h = tw + c * B;
#pragma omp simd
                for (int b = 0; b < B; b++) {
                    double v = XENT_F(xent_softmax_h_)((double)e[b], pk[b], om[b], yi[b] == (int32_t)c, hq[b],
                                                       hp[b]);
                    h[b] = (XENT_T)(skip[b] ? h0 : XENT_F(xent_hess_policy_)(v, pol, hmin));
                }
            }
        }
        XENT_G(xent_c_t_out_)(tw, nb, C, (XENT_T *)a->hess + i0 * C);
    }
    const double *u = a->u;
    const double e1 = 1.0 - a->eps, e2 = a->eps / (double)C;
    const double cap = a->cap;
#if defined(__FMA__)
    if (sizeof(XENT_T) == 4 && !probs && !capped && !u) {
        /* labels: g = k e - [c == y] f a_y in float32 lanes, k = kh + kl
         * and f a_y = th + tl split into float32 pairs, each term one fused
         * operation (as the float64 value rounded once but in rare ties),
         * when every factor is within the split's range */
        float kh[B], kl[B], th[B], tl[B], keep[B];
        int split = 1;
        for (int b = 0; b < B; b++) {
            double fy = f[b] * ay[b];
            split &= (k[b] < 0 ? -k[b] : k[b]) < XENT_SPLIT_MAX && (fy < 0 ? -fy : fy) < XENT_SPLIT_MAX;
            kh[b] = (float)k[b];
            kl[b] = (float)(k[b] - (double)kh[b]);
            th[b] = (float)fy;
            tl[b] = (float)(fy - (double)th[b]);
            keep[b] = skip[b] ? 0.0f : 1.0f;
        }
        if (split) {
            for (ptrdiff_t c = 0; c < C; c++) {
                float *e = (float *)ew + c * B;
#pragma omp simd
                for (int b = 0; b < B; b++) {
                    float t1 = yi[b] == (int32_t)c ? th[b] : 0.0f, t2 = yi[b] == (int32_t)c ? tl[b] : 0.0f;
                    float g = XENT_FMAF(e[b], kh[b], -t1) + XENT_FMAF(e[b], kl[b], -t2);
                    e[b] = keep[b] != 0 ? g : 0.0f;
                }
            }
            XENT_G(xent_c_t_out_)(ew, nb, C, out);
            return;
        }
    }
#endif
    for (ptrdiff_t c = 0; c < C; c++) {
        XENT_T *e = ew + c * B;
        const XENT_T *v = xw + c * B, *t = probs ? tw + c * B : NULL;
        const double uc = u ? u[c] : 0.0, wc = a->w ? a->w[c] : 1.0;
#pragma omp simd
        for (int b = 0; b < B; b++) {
            double ev = (double)e[b];
            double coef = probs ? wc * (e1 * (double)t[b] + e2) : uc + (yi[b] == c ? ay[b] : 0.0);
            double g = (ev == 0 && (k[b] == INFINITY || k[b] == -INFINITY) ? 0.0 : ev * k[b]) - f[b] * coef;
            if (capped) {
                double tc = (double)v[b] / cap;
                g *= 1.0 - tc * tc;
            }
            e[b] = skip[b] ? (XENT_T)0 : (XENT_T)g; /* (not g * 0: NaN * 0 is NaN) */
        }
    }
    XENT_G(xent_c_t_out_)(ew, nb, C, out);
}

static void XENT_G(xent_class_block_)(const xent_class_call *a, ptrdiff_t i0, ptrdiff_t nb)
{
    switch (a->op) {
    case XENT_CLS_LSE:
        XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_LSE, 0, 0, a->C);
        return;
    case XENT_CLS_SOFTMAX:
        XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_SOFTMAX, 0, 0, a->C);
        return;
    case XENT_CLS_LOG_SOFTMAX:
        XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_LOG_SOFTMAX, 0, 0, a->C);
        return;
    case XENT_CLS_FOCAL:
        XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_FOCAL, 0, 0, a->C);
        return;
    }
#if defined(XENT_AVX512) && XENT_BLOCK == 16
    /* float32 labels without smoothing or softcap, C <= 16 on AVX-512: the
     * block held in registers (xent_block16_labels_f32_, the same terms;
     * 0: a row the registers do not take, the general body below) */
    if (sizeof(XENT_T) == 4 && nb == XENT_BLOCK && a->C <= 16 && a->labels && !a->u && a->cap == 0 && !a->hess &&
        XENT_F(xent_block16_labels_f32_)((const float *)a->x + i0 * a->C, a->C, a->labels + i0,
                                         a->ignore, a->sw ? a->sw + i0 : NULL, a->gs + i0 * a->gss,
                                         a->gss, a->w, a->z, a->loss + i0,
                                         a->out ? (float *)a->out + i0 * a->C : NULL)) {
        /* (the registers' rows keep their loss bits; the argmax is a scan of
         * the logits, still in the cache) */
        if (a->argmax)
            for (ptrdiff_t b = 0; b < nb; b++) {
                ptrdiff_t i = i0 + b;
                const XENT_T *xr = (const XENT_T *)a->x + i * a->C;
                int nan;
                int skip = (a->sw && a->sw[i] == 0) || a->labels[i] == a->ignore;
                a->argmax[i] = skip ? -1 : XENT_G(xent_c_argmax_)(xr, a->C, XENT_G(xent_max_)(xr, a->C), &nan);
            }
        return;
    }
#endif
    if (a->target) {
        if (a->cap != 0)
            XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_CE, 1, 1, a->C);
        else
            XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_CE, 1, 0, a->C);
    } else {
        if (a->cap != 0)
            XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_CE, 0, 1, a->C);
        else if (a->C == 2)
            XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_CE, 0, 0, 2);
        else if (a->C == 10)
            XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_CE, 0, 0, 10);
        else
            XENT_G(xent_c_block_body_)(a, i0, nb, XENT_CLS_CE, 0, 0, a->C);
    }
}

/* ------------------------------ the softmax focal loss of probabilities */

/* sum_{j != skip} v_j, Kahan-compensated in lanes by position */
static double XENT_G(xent_sf_sum_)(const double *v, ptrdiff_t n, ptrdiff_t skip)
{
    if (n < XENT_LANES) { /* (no lanes) */
        double s = 0.0, c = 0.0;
        for (ptrdiff_t j = 0; j < n; j++) {
            double y = (j == skip ? 0.0 : v[j]) - c, u = s + y;
            c = (u - s) - y;
            s = u;
        }
        return s;
    }
    double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0};
    ptrdiff_t j = 0;
    for (; j + XENT_LANES <= n; j += XENT_LANES)
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++) {
            double y = (j + l == skip ? 0.0 : v[j + l]) - comp[l], u = acc[l] + y;
            comp[l] = (u - acc[l]) - y;
            acc[l] = u;
        }
    double s = 0.0, c = 0.0;
    for (; j < n; j++) {
        double y = (j == skip ? 0.0 : v[j]) - c, u = s + y;
        c = (u - s) - y;
        s = u;
    }
    for (int l = 0; l < XENT_LANES; l++) {
        double y = (acc[l] - comp[l]) - c, u = s + y;
        c = (u - s) - y;
        s = u;
    }
    return s;
}

/* (1 - p)^gamma into *w and (1 - p)^(gamma - 1) into *w1 from omp = 1 - p:
 * gi >= 0 an integer gamma, as products (a constant where inlined); -1 from
 * log(1 - p). */
static inline XENT_MATH void XENT_G(xent_sf_pow_)(double omp, double gamma, int gi, double *w, double *w1)
{
    if (gi >= 0) {
        double v = 1.0;
        for (int q = 1; q < gi; q++)
            v *= omp;
        *w1 = v;
        *w = gi == 0 ? 1.0 : v * omp;
    } else {
        const double lo = xent_exp_bounds[0], hi = xent_exp_bounds[1];
        double log1m = XENT_F(xent_log_)(omp);
        *w = XENT_F(xent_exp_)(gamma * log1m, lo, hi);
        *w1 = XENT_F(xent_exp_)((gamma - 1.0) * log1m, lo, hi);
    }
}

/* The terms of n values (xent_sfocal_probs_): the loss terms into tv, a_j D_j
 * into ad. flat: each value with its own row's statistics spread out (A the
 * class factors, M the max, L log s, S s, O the other terms' sum: s - e, or
 * its own sum near p = 1); else one row's (alpha, m, log_s, s; 1 - p as
 * (s - e) / s). gi and flat are constants where it is inlined, so that each
 * case is its own vectorised loop. */
static inline __attribute__((always_inline)) void XENT_G(xent_sf_terms_)(
    const XENT_T *x, const double *A, const double *M, const double *L, const double *S,
    const double *O, double m, double log_s, double s, const double *e, double *tv, double *ad, ptrdiff_t n,
    double gamma, int gi, int flat)
{
#pragma omp simd
    for (ptrdiff_t k = 0; k < n; k++) {
        double mk = flat ? M[k] : m, lk = flat ? L[k] : log_s, sk = flat ? S[k] : s;
        double ok = flat ? O[k] : s - e[k];
        double a = A[k]; /* (the target mass a_j, built by the caller: a select on a
                          * t given or not made GCC load it masked, slow) */
        double lp = XENT_G(xent_c_shifted_)((double)x[k], mk) - lk;
        double w, w1, dk;
        XENT_G(xent_sf_pow_)(ok / sk, gamma, gi, &w, &w1);
        tv[k] = XENT_F(xent_focal_core_)(lp, e[k] / sk, w, w1, gamma, a, &dk);
        ad[k] = dk;
    }
}

#define XENT_SF_CASES(flat, ...)                                                                \
    switch (gi) {                                                                               \
    case 0: XENT_G(xent_sf_terms_)(__VA_ARGS__, gamma, 0, flat); break;                         \
    case 1: XENT_G(xent_sf_terms_)(__VA_ARGS__, gamma, 1, flat); break;                         \
    case 2: XENT_G(xent_sf_terms_)(__VA_ARGS__, gamma, 2, flat); break;                         \
    case 3: XENT_G(xent_sf_terms_)(__VA_ARGS__, gamma, 3, flat); break;                         \
    case 4: XENT_G(xent_sf_terms_)(__VA_ARGS__, gamma, 4, flat); break;                         \
    default: XENT_G(xent_sf_terms_)(__VA_ARGS__, gamma, -1, flat); break;                       \
    }

/* Near s = 1 (one dominant entry of a row of exps e, its exp 1: s < 2 and
 * a finite max m), that entry's index (else -1), and in *others the other
 * terms' sum: log s is then their log1p (as xent_c_log_s_) */
static ptrdiff_t XENT_G(xent_sf_near_one_)(const double *e, ptrdiff_t C, double m, double s, double *others)
{
    ptrdiff_t jm = -1;
    *others = 0.0;
    if (s < 2.0 && m - m == 0) {
        for (ptrdiff_t j = 0; j < C && jm < 0; j++)
            jm = e[j] == 1.0 ? j : -1;
        if (jm >= 0)
            *others = XENT_G(xent_sf_sum_)(e, C, jm);
    }
    return jm;
}

/* The factor a_j = alpha_j t'_j of the C classes of row i into ar: t' the
 * target mass, t_j (labels NULL) or 1 at the label, smoothed: sm1 t + sm2 */
static inline void XENT_G(xent_sf_factors_)(const XENT_T *t, const int64_t *labels, ptrdiff_t i,
                                            ptrdiff_t C, const double *alpha, double sm1,
                                            double sm2, double *ar)
{
    if (labels) {
        for (ptrdiff_t j = 0; j < C; j++)
            ar[j] = alpha[j] * sm2;
        int64_t y = labels[i];
        if (y >= 0 && y < C) /* (an ignored row's label may be outside: no mass) */
            ar[y] = alpha[y] * (sm1 + sm2);
    } else {
        const XENT_T *tr = t + i * C;
#pragma omp simd
        for (ptrdiff_t j = 0; j < C; j++)
            ar[j] = alpha[j] * ((double)tr[j] * sm1 + sm2);
    }
}

/* The softmax focal loss of a task of nrows rows of C classes against
 * probability targets t (rows of x and t contiguous), or class labels
 * (labels not NULL; t unused), the targets smoothed (label smoothing:
 * (1 - smooth) t + smooth / C), per-class factors alpha: loss[i] and, unless grad is NULL, the gradient rows (grad may be x)
 * scaled by gs[i * gss]. Rows of fewer than XENT_SF_FLAT classes come
 * XENT_SF_TASK values a task, each step over the task's values at once
 * with each row's statistics spread out per value (so that short rows
 * vectorise); longer rows one at a time. ws: XENT_SF_WS(C) doubles. Per row:
 * the max, the exps (float64) and their compensated sum (log s near s = 1
 * from xent_sf_near_one_),
 * the terms (xent_focal_core_; 1 - p of a dominant entry from the other
 * terms), then the gradient f (a_j D_j - p_j sum_c a_c D_c). A row's +inf
 * entries carry its whole softmax (the contract of src/_rows.pxd); a NaN
 * makes its row NaN. */
static void XENT_G(xent_sfocal_probs_)(const XENT_T *x, const XENT_T *t, const int64_t *labels,
                                       ptrdiff_t nrows, ptrdiff_t C, const double *alpha, double gamma,
                                       double smooth, const double *gs, ptrdiff_t gss, double *loss,
                                       XENT_T *grad, double *ws)
{
    const double lo = xent_exp_bounds[0], hi = xent_exp_bounds[1];
    const int gi = gamma >= 0 && gamma <= 4 && gamma == (double)(int)gamma ? (int)gamma : -1;
    /* labels or smoothing: each row's factors a_j built first (xent_sf_factors_) */
    const int factors = labels != NULL || smooth != 0;
    const double sm1 = 1.0 - smooth, sm2 = smooth / (double)C;
    if (C >= XENT_SF_FLAT) {
        double *e = ws, *tv = ws + C, *ad = ws + 2 * C, *ar = ws + 3 * C;
        for (ptrdiff_t i = 0; i < nrows; i++) {
            const XENT_T *xr = x + i * C, *tr = factors ? NULL : t + i * C;
            double m = (double)XENT_G(xent_max_)(xr, C), others, log_s;
            ptrdiff_t jm;
            if (factors) {
                XENT_G(xent_sf_factors_)(t, labels, i, C, alpha, sm1, sm2, ar);
#pragma omp simd
                for (ptrdiff_t j = 0; j < C; j++)
                    e[j] = XENT_F(xent_exp_)(XENT_G(xent_c_shifted_)((double)xr[j], m), lo, hi);
            } else { /* (the target mass in the exps' pass: one pass less) */
#pragma omp simd
                for (ptrdiff_t j = 0; j < C; j++) {
                    e[j] = XENT_F(xent_exp_)(XENT_G(xent_c_shifted_)((double)xr[j], m), lo, hi);
                    ar[j] = alpha[j] * (double)tr[j];
                }
            }
            double s = XENT_G(xent_sf_sum_)(e, C, -1);
            jm = XENT_G(xent_sf_near_one_)(e, C, m, s, &others);
            log_s = jm >= 0 ? log1p(others) : XENT_F(xent_log_)(s);
            XENT_SF_CASES(0, xr, ar, NULL, NULL, NULL, NULL, m, log_s, s, e, tv, ad, C)
            if (jm >= 0) { /* the dominant entry's 1 - p from the other terms */
                double w, w1, dk;
                XENT_G(xent_sf_pow_)(others / s, gamma, gi, &w, &w1);
                tv[jm] = XENT_F(xent_focal_core_)(XENT_G(xent_c_shifted_)((double)xr[jm], m) - log_s, e[jm] / s,
                                                  w, w1, gamma, ar[jm], &dk);
                ad[jm] = dk;
            }
            double total = 0.0, sum_ad = 0.0;
#pragma omp simd reduction(+ : total, sum_ad)
            for (ptrdiff_t j = 0; j < C; j++) {
                total += tv[j];
                sum_ad += ad[j];
            }
            loss[i] = total;
            if (grad) {
                const double f = gs[i * gss], q = sum_ad / s;
                XENT_T *gr = grad + i * C;
#pragma omp simd
                for (ptrdiff_t j = 0; j < C; j++)
                    gr[j] = (XENT_T)(f * (ad[j] - e[j] * q));
            }
        }
        return;
    }
    const ptrdiff_t n = nrows * C;
    double *e = ws, *ad = ws + n, *M = ws + 2 * n, *L = ws + 3 * n, *S = ws + 4 * n, *O = ws + 5 * n,
           *A = ws + 6 * n, *rs = ws + 7 * n, *rl = rs + nrows;
    for (ptrdiff_t i = 0; i < nrows; i++) {
        const XENT_T *xr = x + i * C;
        XENT_T mt = -INFINITY;
        for (ptrdiff_t j = 0; j < C; j++)
            mt = xr[j] > mt ? xr[j] : mt;
        for (ptrdiff_t j = 0; j < C; j++)
            M[i * C + j] = (double)mt;
        if (factors)
            XENT_G(xent_sf_factors_)(t, labels, i, C, alpha, sm1, sm2, A + i * C);
        else
            for (ptrdiff_t j = 0; j < C; j++)
                A[i * C + j] = alpha[j] * (double)t[i * C + j];
    }
#pragma omp simd
    for (ptrdiff_t k = 0; k < n; k++)
        e[k] = XENT_F(xent_exp_)(XENT_G(xent_c_shifted_)((double)x[k], M[k]), lo, hi);
    for (ptrdiff_t i = 0; i < nrows; i++)
        rs[i] = XENT_G(xent_sf_sum_)(e + i * C, C, -1);
    /* each row's other terms' sum if it has a dominant entry (else -1), in
     * ad (free until the terms below), then log s, or log1p of the others'
     * sum, in one vectorised loop (a libm log1p a row cost a fifth of the
     * time at C = 2); the dominant entry found again below (its first 1) */
    double *oth = ad;
    for (ptrdiff_t i = 0; i < nrows; i++) {
        double others = 0.0;
        ptrdiff_t jm = rs[i] < 2.0 ? XENT_G(xent_sf_near_one_)(e + i * C, C, M[i * C], rs[i], &others) : -1;
        oth[i] = jm >= 0 ? others : -1.0;
    }
#pragma omp simd
    for (ptrdiff_t i = 0; i < nrows; i++)
        rl[i] = oth[i] >= 0 ? XENT_F(xent_log1p_)(oth[i]) : XENT_F(xent_log_)(rs[i]);
    for (ptrdiff_t i = 0; i < nrows; i++) {
        const double *er = e + i * C;
        const double others = oth[i], s = rs[i], log_s = rl[i];
        ptrdiff_t jm = -1;
        for (ptrdiff_t j = 0; j < C && others >= 0 && jm < 0; j++)
            jm = er[j] == 1.0 ? j : -1;
        for (ptrdiff_t j = 0; j < C; j++) {
            L[i * C + j] = log_s;
            S[i * C + j] = s;
            O[i * C + j] = j == jm ? others : s - er[j];
        }
    }
    XENT_SF_CASES(1, x, A, M, L, S, O, 0.0, 0.0, 0.0, e, O, ad, n)
    for (ptrdiff_t i = 0; i < nrows; i++) {
        double total = 0.0, sum_ad = 0.0;
        for (ptrdiff_t j = 0; j < C; j++) {
            total += O[i * C + j];
            sum_ad += ad[i * C + j];
        }
        loss[i] = total;
        if (grad) {
            double f = gs[i * gss], q = sum_ad / S[i * C];
            for (ptrdiff_t j = 0; j < C; j++) {
                L[i * C + j] = q;
                M[i * C + j] = f;
            }
        }
    }
    if (grad) {
#pragma omp simd
        for (ptrdiff_t k = 0; k < n; k++)
            grad[k] = (XENT_T)(M[k] * (ad[k] - e[k] * L[k]));
    }
}

#undef XENT_SF_CASES
