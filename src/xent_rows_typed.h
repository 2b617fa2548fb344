/* The typed row primitives: a template included by xent_rows_impl.h once per
 * floating type (and so once per type and instruction set), with
 *   XENT_T      the element type (float or double)
 *   XENT_TN     its name in function names (f32 or f64)
 *   XENT_EXP    the vectorisable exp for XENT_T, in functions that declare
 *               XENT_EXP_BOUNDS (its clamp bounds, loaded once) first
 *   XENT_LOG, XENT_LOG1P  the vectorisable log and log1p for XENT_T
 *   XENT_KAHAN  1 to Kahan-compensate the float64 sums of exps (double input)
 * Every sum is accumulated in float64; every product with a float64 factor
 * is formed in float64 and rounded once to XENT_T.
 */

#define XENT_G(name) XENT_CAT(XENT_CAT(XENT_CAT(name, XENT_TN), _), XENT_SFX)

#if XENT_KAHAN
#define XENT_ACC(s, c, v)                  \
    do {                                   \
        double y_ = (double)(v) - (c);     \
        double t_ = (s) + y_;              \
        (c) = (t_ - (s)) - y_;             \
        (s) = t_;                          \
    } while (0)
#else
#define XENT_ACC(s, c, v) ((s) += (double)(v))
#endif

/* The row maximum (-inf for an empty row; NaN handling is the caller's). */
static XENT_T XENT_G(xent_max_)(const XENT_T *x, ptrdiff_t n)
{
    XENT_T m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (ptrdiff_t j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* The end of xent_sumexp_ (and of the streamed row's loop) from position j:
 * the tail into the lanes (the lanes past the end adding 0), and the lanes
 * summed. */
static inline double XENT_G(xent_sumexp_end_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, ptrdiff_t j,
                                              XENT_T m, double *acc, double *comp)
{
    XENT_EXP_BOUNDS;
    XENT_T xin[XENT_LANES], v[XENT_LANES];
    if (j < n) {
        int len = (int)(n - j);
        for (int l = 0; l < XENT_LANES; l++)
            xin[l] = l < len ? x[j + l] : m;
        /* (past the end: m, its exp then zeroed; a filler of -inf would make
         * subnormal exps, each instruction on them a microcode assist) */
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            v[l] = l < len ? XENT_EXP(xin[l] - m) : (XENT_T)0;
        if (e)
            for (int l = 0; l < len; l++)
                e[j + l] = v[l];
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            XENT_ACC(acc[l], comp[l], v[l]);
    }
    double s = 0.0, c = 0.0;
    for (int l = 0; l < XENT_LANES; l++)
        XENT_ACC(s, c, acc[l] - comp[l]);
    (void)c;
    return s;
}

/* sum_j exp(x_j - m), in XENT_LANES float64 lanes; writes the exps to e
 * unless e is NULL (e may be x). */
static double XENT_G(xent_sumexp_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m)
{
    XENT_EXP_BOUNDS;
    double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0};
    XENT_T v[XENT_LANES];
    ptrdiff_t j = 0;
    for (; j + XENT_LANES <= n; j += XENT_LANES) {
        if (e) { /* store in the same loop (a separate copy becomes a slow rep movs) */
#pragma omp simd
            for (int l = 0; l < XENT_LANES; l++)
                e[j + l] = v[l] = XENT_EXP(x[j + l] - m);
        } else {
#pragma omp simd
            for (int l = 0; l < XENT_LANES; l++)
                v[l] = XENT_EXP(x[j + l] - m);
        }
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            XENT_ACC(acc[l], comp[l], v[l]);
    }
    return XENT_G(xent_sumexp_end_)(x, e, n, j, m, acc, comp);
}

#if defined(XENT_AVX512) && XENT_KAHAN
/* A finished float64 output value from v, as the plain loops compute it:
 * XENT_STREAM_SUB xent_scale_sub_ (no weights), XENT_STREAM_MUL xent_scale_,
 * XENT_STREAM_SHIFT xent_shift_ (k the shift, c log s). */
#define XENT_OUT64(v, op)                                                                    \
    ((op) == XENT_STREAM_MUL     ? (XENT_T)((double)(v) * k)                                 \
     : (op) == XENT_STREAM_SHIFT ? (XENT_T)(((double)(v) - k) - c)                           \
                                 : (XENT_T)(((v) == 0 && k_inf ? 0.0 : (double)(v) * k) - c))

static XENT_T XENT_G(xent_out1_)(XENT_T v, double k, double c, int op)
{
    int k_inf = k == INFINITY || k == -INFINITY;
    return XENT_OUT64(v, op);
}

/* The streamed row for float64 on AVX-512 (as xent_sumexp_stream_f32_):
 * xent_sumexp_'s loop and sums, bit for bit, the next row prefetched; with
 * out, in the same loop, the previous row's outputs XENT_OUT64(ep_j) written
 * by xent_ntw64_ (x NULL: only that), then fenced. */
static inline __attribute__((always_inline)) double XENT_G(xent_sumexp_stream_body_)(
    const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m, const XENT_T *ep, XENT_T *out, double k,
    double c, int op)
{
    XENT_EXP_BOUNDS;
    double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0};
    XENT_T v[XENT_LANES], o[XENT_LANES];
    int k_inf = k == INFINITY || k == -INFINITY;
    XENT_F(xent_ntw64_) w;
    XENT_F(xent_ntw64_init_)(&w, out); /* (unused without out) */
    ptrdiff_t j = 0;
    for (; j + XENT_LANES <= n; j += XENT_LANES) {
        if (x) {
            _mm_prefetch((const char *)(x + n + j), _MM_HINT_T1);
            _mm_prefetch((const char *)(x + n + j + 8), _MM_HINT_T1);
            if (e) {
#pragma omp simd
                for (int l = 0; l < XENT_LANES; l++)
                    e[j + l] = v[l] = XENT_EXP(x[j + l] - m);
            } else {
#pragma omp simd
                for (int l = 0; l < XENT_LANES; l++)
                    v[l] = XENT_EXP(x[j + l] - m);
            }
#pragma omp simd
            for (int l = 0; l < XENT_LANES; l++)
                XENT_ACC(acc[l], comp[l], v[l]);
        }
        if (out) {
#pragma omp simd
            for (int l = 0; l < XENT_LANES; l++)
                o[l] = XENT_OUT64(ep[j + l], op);
            for (int q = 0; q < XENT_LANES; q += 8)
                XENT_F(xent_ntw64_put_)(&w, j + q, _mm512_loadu_pd(o + q));
        }
    }
    if (out) {
        ptrdiff_t jj = j;
        unsigned len = (unsigned)(n - j);
        for (unsigned l = 0; l < len; l++)
            o[l] = XENT_OUT64(ep[j + l], op);
        if (len >= 8) {
            XENT_F(xent_ntw64_put_)(&w, jj, _mm512_loadu_pd(o));
            jj += 8;
        }
        unsigned rest = (unsigned)(n - jj);
        XENT_F(xent_ntw64_end_)(&w, jj, rest ? _mm512_maskz_loadu_pd((__mmask8)((1u << rest) - 1), o + (jj - j))
                                             : _mm512_setzero_pd(), rest);
        _mm_sfence();
    }
    if (!x)
        return 0.0;
    return XENT_G(xent_sumexp_end_)(x, e, n, j, m, acc, comp);
}

static double XENT_G(xent_sumexp_stream_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m,
                                          const XENT_T *ep, XENT_T *out, double k, double c, int op)
{
    switch (op) { /* (one loop per output) */
    case XENT_STREAM_MUL:
        return XENT_G(xent_sumexp_stream_body_)(x, e, n, m, ep, out, k, c, XENT_STREAM_MUL);
    case XENT_STREAM_SHIFT:
        return XENT_G(xent_sumexp_stream_body_)(x, e, n, m, ep, out, k, c, XENT_STREAM_SHIFT);
    default:
        return XENT_G(xent_sumexp_stream_body_)(x, e, n, m, ep, out, k, c, XENT_STREAM_SUB);
    }
}
#undef XENT_OUT64
#endif

/* e_j = e_j * k - c * w_j (w NULL: w_j = 1); an e_j of 0 stays 0 even when
 * k is infinite (a +inf logit elsewhere in the row: the limit; a NaN k
 * still makes the row NaN) */
static void XENT_G(xent_scale_sub_)(XENT_T *e, ptrdiff_t n, double k, double c, const double *w)
{
    int k_inf = k == INFINITY || k == -INFINITY;
    if (w) {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (XENT_T)((e[j] == 0 && k_inf ? 0.0 : (double)e[j] * k) - c * w[j]);
    } else {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (XENT_T)((e[j] == 0 && k_inf ? 0.0 : (double)e[j] * k) - c);
    }
}

/* e_j = e_j * k */
static void XENT_G(xent_scale_)(XENT_T *e, ptrdiff_t n, double k)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        e[j] = (XENT_T)((double)e[j] * k);
}

/* out_j = (x_j - m) - log_s (out may be x) */
static void XENT_G(xent_shift_)(const XENT_T *x, XENT_T *out, ptrdiff_t n, double m, double log_s)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (XENT_T)(((double)x[j] - m) - log_s);
}

static double XENT_G(xent_sum_)(const XENT_T *x, ptrdiff_t n)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++)
        s += (double)x[j];
    return s;
}

/* log(s) for a row of finite maximum m whose sum of exps is s (s >= 1):
 * near 1, where log(s) is tiny and s itself has lost its low digits against
 * the max's exp of 1, it is log1p of the other terms, summed apart:
 * m + log1p(t) keeps logsumexp([0, -40]) = 4.2483542552915889e-18 (SciPy
 * 1.15's result), where m + log(s) gives 0. v is the row's logits, or with
 * exps its exps e_j = exp(x_j - m) (then the max's own is 1 exactly). The
 * threshold (XENT_NEAR_ONE_F32/_F64 in xent_rows.h) is where log(s) is no
 * longer within a fraction of an ulp of the input type. A non-finite m or
 * s: log(s). */
#define XENT_NEAR_ONE (sizeof(XENT_T) == 4 ? XENT_NEAR_ONE_F32 : XENT_NEAR_ONE_F64)
static double XENT_G(xent_log_s_)(const XENT_T *v, ptrdiff_t n, XENT_T m, double s, int exps)
{
    if (!(s < XENT_NEAR_ONE) || !(m - m == 0))
        return log(s);
    XENT_T top = exps ? (XENT_T)1 : m;
    ptrdiff_t i = 0;
    while (i < n && v[i] != top)
        i++;
    if (i == n) /* (no entry at the max: not the row of m) */
        return log(s);
    double t = exps ? XENT_G(xent_sum_)(v, i) + XENT_G(xent_sum_)(v + i + 1, n - i - 1)
                    : XENT_G(xent_sumexp_)(v, NULL, i, m) +
                          XENT_G(xent_sumexp_)(v + i + 1, NULL, n - i - 1, m);
    return log1p(t);
}

static double XENT_G(xent_dot_)(const XENT_T *a, const XENT_T *b, ptrdiff_t n)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++)
        s += (double)a[j] * (double)b[j];
    return s;
}

/* out_j = p_j * (g_j - dot) (out may be p or g) */
static void XENT_G(xent_softmax_vjp_)(const XENT_T *p, const XENT_T *g, XENT_T *out, ptrdiff_t n,
                                      double dot)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (XENT_T)((double)p[j] * ((double)g[j] - dot));
}

/* out_j = g_j - exp(lp_j) * total (out may be lp or g) */
static void XENT_G(xent_log_softmax_vjp_)(const XENT_T *lp, const XENT_T *g, XENT_T *out,
                                          ptrdiff_t n, double total)
{
    XENT_EXP_BOUNDS;
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (XENT_T)((double)g[j] - (double)XENT_EXP(lp[j]) * total);
}

/* ---------------------------------------------- element-wise binary losses
 * Over n elements; pw (pos_weight), w (weight) and g (upstream gradient) are
 * read at pw[j * pws], w[j * ws], g[j * gst] (a stride of 0 repeats one value);
 * loss and grad are written per element unless NULL. Target mass is smoothed
 * as t' = t (1 - smooth) + smooth / 2. Returns the sum of the element losses.
 * Terms whose coefficient is 0 are 0 even where the logit or log-probability
 * is infinite (no 0 * inf). The work goes in blocks of XENT_EB elements whose
 * weights are gathered first, so that the arithmetic is one branch-free,
 * vectorised loop whatever the strides; it is done in XENT_T (float32 math
 * for float32 data, at most a few ulp), the sums in float64. */

#define XENT_EB 512

/* dst[l] = scale * src[l * stride] for l < len, with the common strides (0:
 * one repeated value, 1: contiguous) as plain vectorised loops */
static inline void XENT_G(xent_gather_)(XENT_T *dst, const XENT_T *src, ptrdiff_t stride,
                                        int len, double scale);

/* The weights of len elements (as xent_gather_), 0 where the mask m (unless
 * NULL; element l at m[l * ms]) is 0: the binary losses' where= */
static inline void XENT_G(xent_weights_)(XENT_T *dst, const XENT_T *w, ptrdiff_t ws,
                                         const uint8_t *m, ptrdiff_t ms, int len)
{
    XENT_G(xent_gather_)(dst, w, ws, len, 1.0);
    if (m && ms == 1) {
        for (int l = 0; l < len; l++)
            dst[l] = m[l] ? dst[l] : (XENT_T)0;
    } else if (m) {
        for (int l = 0; l < len; l++)
            dst[l] = m[l * ms] ? dst[l] : (XENT_T)0;
    }
}

static inline void XENT_G(xent_gather_)(XENT_T *dst, const XENT_T *src, ptrdiff_t stride,
                                        int len, double scale)
{
    if (stride == 0) {
        XENT_T v = (XENT_T)(scale * (double)src[0]);
        for (int l = 0; l < len; l++)
            dst[l] = v;
    } else if (stride == 1) {
        XENT_T k = (XENT_T)scale;
        for (int l = 0; l < len; l++)
            dst[l] = src[l] * k;
    } else {
        for (int l = 0; l < len; l++)
            dst[l] = (XENT_T)(scale * (double)src[l * stride]);
    }
}


/* The frame shared by the binary losses: its body computes double lj (the loss)
 * and gj (the gradient before gscale * g) from xj, tj, pwj, wj (the macro
 * arguments: a statement block). */
#define XENT_BINARY_LOOP(...)                                                     \
    double total = 0.0;                                                           \
    XENT_T wv[XENT_EB], gv[XENT_EB], pv[XENT_EB], lv[XENT_EB], gr[XENT_EB];       \
    for (ptrdiff_t j0 = 0; j0 < n; j0 += XENT_EB) {                               \
        int len = n - j0 < XENT_EB ? (int)(n - j0) : XENT_EB;                     \
        XENT_G(xent_weights_)(wv, w + j0 * ws, ws, m ? m + j0 * ms : NULL, ms, len); \
        XENT_G(xent_gather_)(gv, g + j0 * gst, gst, len, gscale);                \
        for (int l = 0; l < len; l++)                                             \
            pv[l] = (XENT_T)pw[pws ? (j0 + l) * pws : 0];                         \
        _Pragma("omp simd reduction(+ : total)")                                  \
        for (int l = 0; l < len; l++) {                                           \
            XENT_T xj = x[j0 + l], pwj = pv[l], wj = wv[l];                       \
            XENT_T tj = t[j0 + l] * (XENT_T)(1.0 - smooth) + (XENT_T)(0.5 * smooth); \
            XENT_T lj, gj;                                                        \
            __VA_ARGS__                                                           \
            lv[l] = wj == 0 ? 0 : wj * lj; /* weight 0: 0, even for inf */        \
            /* a zero weight or upstream gradient: 0, even for an infinite gj */  \
            gr[l] = (wj == 0 || gv[l] == 0) ? 0 : gv[l] * wj * gj;                \
            total += (double)lv[l];                                               \
        }                                                                         \
        if (loss)                                                                 \
            for (int l = 0; l < len; l++)                                         \
                loss[j0 + l] = lv[l];                                             \
        if (grad)                                                                 \
            for (int l = 0; l < len; l++)                                         \
                grad[j0 + l] = gr[l];                                             \
    }                                                                             \
    return total;

/* From logits, when pos_weight, weight and the upstream gradient are each one
 * value for the whole span (the common case: no weights, a reduced loss): one
 * fused, branch-free loop, the log1p specialised to its argument in [0, 1]. */
static double XENT_G(xent_bce_logits_uniform_)(const XENT_T *x,
                                               const XENT_T *t, ptrdiff_t n,
                                               XENT_T pw, XENT_T w, XENT_T gw, double smooth,
                                               XENT_T *loss, XENT_T *grad, int stream)
{
    XENT_EXP_BOUNDS;
    XENT_T lv[XENT_EB], gr[XENT_EB];
    const XENT_T a = (XENT_T)(1.0 - smooth), b = (XENT_T)(0.5 * smooth);
    double total = 0.0;
    if (w == 0) { /* zero weight: zero loss and gradient, whatever x is */
        for (ptrdiff_t j = 0; loss && j < n; j++)
            loss[j] = 0;
        for (ptrdiff_t j = 0; grad && j < n; j++)
            grad[j] = 0;
        return 0.0;
    }
#if defined(XENT_AVX512)
    if (sizeof(XENT_T) == 4 && pw == 1 && w == 1 && smooth == 0)
        return XENT_F(xent_bce_plain16_f32_)((const float *)x, (const float *)t, n, (float)gw,
                                             (float *)loss, (float *)grad, stream);
#endif
    for (ptrdiff_t j0 = 0; j0 < n; j0 += XENT_EB) {
        int len = n - j0 < XENT_EB ? (int)(n - j0) : XENT_EB;
        const XENT_T *xb = x + j0, *tb = t + j0;
        XENT_T *lo = loss ? loss + j0 : lv;
        XENT_T *go = grad ? grad + j0 : gr;
        double bt = 0.0;
        if (pw == 1 && w == 1 && smooth == 0) {
            /* the plain loss max(x, 0) - x t + log1p(e): the same terms with
             * the factors of 1 left out */
#pragma omp simd reduction(+ : bt)
            for (int l = 0; l < len; l++) {
                XENT_T xj = xb[l], tj = tb[l];
                XENT_T e = XENT_EXP(xj < 0 ? xj : -xj), r = 1 / (1 + e);
                XENT_T lin_c = xj >= 0 ? 1 - tj : -tj;
                XENT_T lin = lin_c == 0 ? 0 : lin_c * xj;
                XENT_T sig = xj >= 0 ? r : e * r;
                XENT_T lj = lin + XENT_LOG1P_UNIT(e, r);
                lo[l] = lj;
                go[l] = gw * (sig - tj);
                bt += (double)lj;
            }
            total += bt;
            continue;
        }
#pragma omp simd reduction(+ : bt)
        for (int l = 0; l < len; l++) {
            XENT_T xj = xb[l], tj = tb[l] * a + b;
            XENT_T e = XENT_EXP(xj < 0 ? xj : -xj), r = 1 / (1 + e);
            XENT_T L = 1 + (pw - 1) * tj;
            XENT_T lin_c = xj >= 0 ? 1 - tj : -pw * tj;
            XENT_T lin = lin_c == 0 ? 0 : lin_c * xj;
            XENT_T sig = xj >= 0 ? r : e * r;
            XENT_T lj = w * (lin + L * XENT_LOG1P_UNIT(e, r));
            lo[l] = lj;
            go[l] = gw * (L * sig - pw * tj);
            bt += (double)lj;
        }
        total += bt;
    }
    return total;
}

/* From logits x: with e = exp(-|x|) and L = 1 + (pw - 1) t',
 *   loss = w * ((x >= 0 ? (1 - t') x : -pw t' x) + L log1p(e)),
 *   grad = gscale * g * w * (L sigmoid(x) - pw t').
 * stream: the gradient may be written with non-temporal stores (an output
 * beyond the cache; the caller fences), where a kernel does that. */
static double XENT_G(xent_bce_logits_)(const XENT_T *x, const XENT_T *t, ptrdiff_t n,
                                       const double *pw, ptrdiff_t pws,
                                       const XENT_T *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms,
                                       const XENT_T *g, ptrdiff_t gst, double gscale,
                                       double smooth, XENT_T *loss, XENT_T *grad, int stream,
                                       XENT_T *hess, double hfac, int hpol, double hmin)
{
    XENT_EXP_BOUNDS;
    /* Three simple loops per block (exp and 1/(1 + e); log1p(e) = log(u) +
     * (e - (u - 1)) / u from that reciprocal; the rest) instead of the shared
     * frame: GCC vectorises them, where it gives up on the fused body. */
    if (ws == 0 && gst == 0 && pws == 0 && !hess && !m) {
        XENT_T gv = (XENT_T)(gscale * (double)g[0]);
        return XENT_G(xent_bce_logits_uniform_)(x, t, n, (XENT_T)pw[0], w[0], gv * w[0],
                                                smooth, loss, grad, stream);
    }
    XENT_T ev[XENT_EB], rv[XENT_EB], lg[XENT_EB];
    double total = 0.0;
    XENT_T wv[XENT_EB], gv[XENT_EB], pv[XENT_EB], lv[XENT_EB], gr[XENT_EB];
    for (ptrdiff_t j0 = 0; j0 < n; j0 += XENT_EB) {
        int len = n - j0 < XENT_EB ? (int)(n - j0) : XENT_EB;
        XENT_G(xent_weights_)(wv, w + j0 * ws, ws, m ? m + j0 * ms : NULL, ms, len);
        XENT_G(xent_gather_)(gv, g + j0 * gst, gst, len, gscale);
        for (int l = 0; l < len; l++)
            pv[l] = (XENT_T)pw[pws ? (j0 + l) * pws : 0];
#pragma omp simd
        for (int l = 0; l < len; l++) {
            XENT_T xj = x[j0 + l];
            XENT_T e = XENT_EXP(xj < 0 ? xj : -xj);
            ev[l] = e;
            rv[l] = 1 / (1 + e);
        }
#pragma omp simd
        for (int l = 0; l < len; l++)
            lg[l] = XENT_LOG1P_UNIT(ev[l], rv[l]);
#pragma omp simd reduction(+ : total)
        for (int l = 0; l < len; l++) {
            XENT_T xj = x[j0 + l], pwj = pv[l], wj = wv[l];
            XENT_T tj = t[j0 + l] * (XENT_T)(1.0 - smooth) + (XENT_T)(0.5 * smooth);
            XENT_T L = 1 + (pwj - 1) * tj, e = ev[l], r = rv[l];
            XENT_T lin_c = xj >= 0 ? 1 - tj : -pwj * tj;
            XENT_T lin = lin_c == 0 ? 0 : lin_c * xj;
            XENT_T sig = xj >= 0 ? r : e * r;
            XENT_T lj = lin + L * lg[l], gj = L * sig - pwj * tj;
            lv[l] = wj == 0 ? 0 : wj * lj;
            gr[l] = wj == 0 ? 0 : gv[l] * wj * gj;
            total += (double)lv[l];
        }
        if (loss)
            for (int l = 0; l < len; l++)
                loss[j0 + l] = lv[l];
        if (grad)
            for (int l = 0; l < len; l++)
                grad[j0 + l] = gr[l];
        if (hess) { /* the second derivative hfac g w L sigmoid(x) (1 - sigmoid(x)), then the policy (xent_class.h) */
#pragma omp simd
            for (int l = 0; l < len; l++) {
                XENT_T tj = t[j0 + l] * (XENT_T)(1.0 - smooth) + (XENT_T)(0.5 * smooth);
                XENT_T L = 1 + (pv[l] - 1) * tj, r = rv[l];
                double h = hfac * (double)gv[l] * (double)wv[l] * (double)L * ((double)ev[l] * (double)r * (double)r);
                h = wv[l] == 0 ? 0.0 : h;
                hess[j0 + l] = (XENT_T)XENT_F(xent_hess_policy_)(h, hpol, hmin);
            }
        }
    }
    return total;
}

/* len second derivatives h into out after the hessian policy
 * (xent_hess_policy_), the policy tested out of the loops, each loop calling
 * it with its constant: a select on the policy alone in a longer loop kept
 * GCC from vectorising that loop */
static inline void XENT_G(xent_hess_store_)(const double *h, XENT_T *out, int len, int pol, double floor)
{
    if (pol == XENT_HESS_EXACT) {
#pragma omp simd
        for (int l = 0; l < len; l++)
            out[l] = (XENT_T)XENT_F(xent_hess_policy_)(h[l], XENT_HESS_EXACT, floor);
    } else if (pol == XENT_HESS_ABS) {
#pragma omp simd
        for (int l = 0; l < len; l++)
            out[l] = (XENT_T)XENT_F(xent_hess_policy_)(h[l], XENT_HESS_ABS, floor);
    } else {
#pragma omp simd
        for (int l = 0; l < len; l++)
            out[l] = (XENT_T)XENT_F(xent_hess_policy_)(h[l], XENT_HESS_CLIP, floor);
    }
}

/* The probability losses' clip [clip, 1 - clip] in XENT_T, kept inside
 * (0, 1) when clip > 0 is tiny */
static inline void XENT_G(xent_probs_bounds_)(double clip, XENT_T *lo, XENT_T *hi)
{
    *lo = (XENT_T)clip;
    *hi = (XENT_T)(1.0 - clip);
    if (clip > 0 && *lo == 0)
        *lo = (XENT_T)(sizeof(XENT_T) == 4 ? 1.40129846e-45 : 4.9406564584124654e-324);
    if (clip > 0 && *hi == 1)
        *hi = (XENT_T)(sizeof(XENT_T) == 4 ? 0.99999994039535522 : 0.99999999999999989);
}

/* From probabilities x clipped to [clip, 1 - clip]:
 *   loss = -w * (pw t' log p + (1 - t') log(1 - p)),
 *   grad = gscale * g * w * ((1 - t') / (1 - p) - pw t' / p), 0 where p was clipped. */
static double XENT_G(xent_bce_probs_)(const XENT_T *x, const XENT_T *t, ptrdiff_t n,
                                      const double *pw, ptrdiff_t pws,
                                      const XENT_T *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms,
                                      const XENT_T *g, ptrdiff_t gst, double gscale,
                                      double smooth, double clip, XENT_T *loss, XENT_T *grad)
{
    XENT_T lo, hi;
    XENT_G(xent_probs_bounds_)(clip, &lo, &hi);
    XENT_BINARY_LOOP({
        XENT_T pc = xj < lo ? lo : (xj > hi ? hi : xj);
        XENT_T pos_c = pwj * tj, neg_c = 1 - tj;
        XENT_T pos = pos_c == 0 ? 0 : pos_c * XENT_LOG(pc);
        XENT_T neg = neg_c == 0 ? 0 : neg_c * XENT_LOG1P(-pc);
        XENT_T d = (neg_c == 0 ? 0 : neg_c / (1 - pc)) - (pos_c == 0 ? 0 : pos_c / pc);
        lj = -(pos + neg);
        gj = xj < lo || xj > hi ? 0 : d; /* (a NaN p is not clipped: NaN) */
    })
}

/* The focal powers of len values o in [0, 1]: w = o^gamma, w1 = o^(gamma - 1)
 * (0^0 = 1); an integer gamma up to 4 by products (exact to gamma roundings,
 * and no exp or log), else exp(gamma log o). Each step one vectorised loop. */
static inline void XENT_G(xent_focal_pow_)(const double *o, int len, double gamma, double *w,
                                           double *w1)
{
    const int gi = gamma >= 0 && gamma <= 4 && gamma == (double)(int)gamma ? (int)gamma : -1;
    if (gi >= 0) {
        for (int l = 0; l < len; l++)
            w1[l] = 1.0;
        for (int k = 1; k < gi; k++) {
#pragma omp simd
            for (int l = 0; l < len; l++)
                w1[l] *= o[l];
        }
#pragma omp simd
        for (int l = 0; l < len; l++)
            w[l] = gi == 0 ? 1.0 : w1[l] * o[l];
        return;
    }
    /* (gamma is neither 0 nor 1 here: no select on it in the loop, whose
     * invariant condition kept GCC from vectorising it) */
    const double elo = xent_exp_bounds[0], ehi = xent_exp_bounds[1], gm1 = gamma - 1.0;
#pragma omp simd
    for (int l = 0; l < len; l++) {
        double lo = XENT_F(xent_log_)(o[l]);
        w[l] = XENT_F(xent_exp_)(gamma * lo, elo, ehi);
        /* (finite: o^(gamma-1) of an o near 0 with gamma < 1 would overflow,
         * where its products with o's powers vanish) */
        double v1 = XENT_F(xent_exp_)(gm1 * lo, elo, ehi);
        w1[l] = v1 < 1e300 ? v1 : 1e300;
    }
}

/* Binary focal loss from probabilities x (Keras' from_logits=False), every
 * term in float64: with q = 1 - p_t = t' (1 - p) + (1 - t') p from the
 * unclipped p, the cross-entropy ce = -(t' log pc + (1 - t') log(1 - pc)) of
 * pc, p clipped to [clip, 1 - clip] (its derivative 0 where clipped), and
 * a = alpha t' + (1 - alpha)(1 - t') (1 without alpha),
 *   loss = w * a * q^gamma * ce,
 *   grad = gscale * g * w * a * (q^gamma dce/dp + gamma q^(gamma-1) (1 - 2t') ce),
 * the powers as exp(gamma log q) (q^0 = 1); a term with a zero factor is 0.
 * pw is unused (the frame's; pass one value). */
static double XENT_G(xent_bfocal_probs_)(const XENT_T *x, const XENT_T *t, ptrdiff_t n,
                                         const double *pw, ptrdiff_t pws,
                                         const XENT_T *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms,
                                         const XENT_T *g, ptrdiff_t gst, double gscale,
                                         double smooth, double clip, double gamma, double alpha,
                                         int has_alpha, XENT_T *loss, XENT_T *grad)
{
    XENT_T lo_t, hi_t;
    XENT_G(xent_probs_bounds_)(clip, &lo_t, &hi_t);
    const double lo = (double)lo_t, hi = (double)hi_t;
    const double a1 = has_alpha ? alpha : 1.0, a0 = has_alpha ? 1.0 - alpha : 1.0;
    const double sa = 1.0 - smooth, sb = 0.5 * smooth;
    (void)pws;
    double pv[XENT_EB], tv[XENT_EB], lpc[XENT_EB], l1p[XENT_EB], qv[XENT_EB], qg[XENT_EB],
           qg1[XENT_EB], ld[XENT_EB], grd[XENT_EB];
    XENT_T wv[XENT_EB], gv[XENT_EB];
    double total = 0.0;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += XENT_EB) {
        int len = n - j0 < XENT_EB ? (int)(n - j0) : XENT_EB;
        XENT_G(xent_weights_)(wv, w + j0 * ws, ws, m ? m + j0 * ms : NULL, ms, len);
        XENT_G(xent_gather_)(gv, g + j0 * gst, gst, len, gscale);
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double p = (double)x[j0 + l], td = (double)t[j0 + l] * sa + sb;
            double pc = p < lo ? lo : (p > hi ? hi : p);
            pv[l] = p;
            tv[l] = td;
            lpc[l] = XENT_F(xent_log_)(pc);
            l1p[l] = XENT_F(xent_log1p_)(pc < 1.0 ? -pc : -1.0);
            qv[l] = td * (1.0 - p) + (1.0 - td) * p;
        }
        XENT_G(xent_focal_pow_)(qv, len, gamma, qg, qg1);
#pragma omp simd reduction(+ : total)
        for (int l = 0; l < len; l++) {
            double p = pv[l], td = tv[l], pc = p < lo ? lo : (p > hi ? hi : p);
            double pos_c = td, neg_c = 1.0 - td;
            double ce = -((pos_c == 0 ? 0.0 : pos_c * lpc[l]) + (neg_c == 0 ? 0.0 : neg_c * l1p[l]));
            double dce = (neg_c == 0 ? 0.0 : neg_c / (1.0 - pc)) - (pos_c == 0 ? 0.0 : pos_c / pc);
            dce = p < lo || p > hi ? 0.0 : dce; /* (a NaN p is not clipped: NaN) */
            double extra = gamma * qg1[l] * (1.0 - 2.0 * td) * ce;
            extra = gamma != 0 && ce != 0 && td != 0.5 ? extra : 0.0;
            double a = a1 * td + a0 * (1.0 - td), wd = (double)wv[l], gd = (double)gv[l];
            double lj = qg[l] != 0 ? wd * a * (qg[l] * ce) : 0.0;
            double gj = gd * wd * a * ((qg[l] != 0 ? qg[l] * dce : 0.0) + extra);
            /* a zero weight, alpha term or upstream gradient: 0, even for an infinite term */
            lj = a != 0 && wd != 0 ? lj : 0.0;
            grd[l] = a != 0 && wd != 0 && gd != 0 ? gj : 0.0;
            ld[l] = lj;
            total += lj;
        }
        if (loss)
            for (int l = 0; l < len; l++)
                loss[j0 + l] = (XENT_T)ld[l];
        if (grad)
            for (int l = 0; l < len; l++)
                grad[j0 + l] = (XENT_T)grd[l];
    }
    return total;
}

/* Binary focal loss from logits x (Lin et al. 2017), every term in float64:
 * with e = exp(-|x|), p = sigmoid(x), q = 1 - p_t = t' (1 - p) + (1 - t') p,
 * ce = max(x, 0) - x t' + log1p(e) and a = alpha t' + (1 - alpha)(1 - t')
 * (1 without alpha),
 *   loss = w * a * q^gamma * ce,
 *   grad = gscale * g * w * a * (q^gamma (p - t') + gamma q^(gamma-1) (1 - 2t') p (1 - p) ce),
 * the powers as exp(gamma log q) (q^0 = 1), a term with a zero factor 0
 * (no 0 * inf at x = +-inf). pw is unused (the frame's; pass one value). */
static double XENT_G(xent_bfocal_)(const XENT_T *x, const XENT_T *t, ptrdiff_t n,
                                   const double *pw, ptrdiff_t pws,
                                   const XENT_T *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms,
                                   const XENT_T *g, ptrdiff_t gst, double gscale,
                                   double smooth, double gamma, double alpha, int has_alpha,
                                   XENT_T *loss, XENT_T *grad, XENT_T *hess, double hfac, int hpol, double hmin)
{
    /* staged simple loops over a block (GCC vectorises each; it gives up on
     * the fused body, as in xent_bce_logits_) */
    /* (the powers of q: xent_focal_pow_) */
    const double sa = 1.0 - smooth, sb = 0.5 * smooth, gm1 = gamma - 1.0;
    /* a = a1 t' + a0 (1 - t'): 1 without alpha */
    const double a1 = has_alpha ? alpha : 1.0, a0 = has_alpha ? 1.0 - alpha : 1.0;
    double ev[XENT_EB], rv[XENT_EB], qv[XENT_EB], lg[XENT_EB], qg[XENT_EB], qg1[XENT_EB];
    double xv[XENT_EB], tv[XENT_EB], wd[XENT_EB], gd[XENT_EB], ld[XENT_EB], grd[XENT_EB];
    double hv[XENT_EB]; /* (the second derivatives before the policy) */
    XENT_T wv[XENT_EB], gv[XENT_EB], et[XENT_EB], rt[XENT_EB];
    XENT_EXP_BOUNDS;
    double total = 0.0;
    (void)pw;
    (void)pws;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += XENT_EB) {
        int len = n - j0 < XENT_EB ? (int)(n - j0) : XENT_EB;
        const XENT_T *xb = x + j0, *tb = t + j0;
        XENT_G(xent_weights_)(wv, w + j0 * ws, ws, m ? m + j0 * ms : NULL, ms, len);
        XENT_G(xent_gather_)(gv, g + j0 * gst, gst, len, gscale);
#pragma omp simd
        for (int l = 0; l < len; l++) {
            xv[l] = (double)xb[l];
            tv[l] = (double)tb[l] * sa + sb;
            wd[l] = (double)wv[l];
            gd[l] = (double)gv[l];
        }
        /* exp(-|x|), 1 / (1 + e) and log1p(e) in the input's precision
         * (a few of its ulp), the rest in float64 */
#pragma omp simd
        for (int l = 0; l < len; l++) {
            XENT_T xj = xb[l];
            XENT_T e = XENT_EXP(xj < 0 ? xj : -xj);
            et[l] = e;
            rt[l] = 1 / (1 + e);
        }
#pragma omp simd
        for (int l = 0; l < len; l++) {
            lg[l] = (double)XENT_LOG1P_UNIT(et[l], rt[l]);
            ev[l] = (double)et[l];
            rv[l] = (double)rt[l];
        }
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double xd = xv[l], td = tv[l], e = ev[l], r = rv[l];
            double p = xd >= 0 ? r : e * r, omp = xd >= 0 ? e * r : r;
            qv[l] = td * omp + (1.0 - td) * p;
        }
        XENT_G(xent_focal_pow_)(qv, len, gamma, qg, qg1);
#pragma omp simd reduction(+ : total)
        for (int l = 0; l < len; l++) {
            double xd = xv[l], td = tv[l], e = ev[l], r = rv[l];
            double p = xd >= 0 ? r : e * r, omp = xd >= 0 ? e * r : r, pq = p * omp;
            double lin_c = xd >= 0 ? 1.0 - td : -td;
            double ce = (lin_c == 0 ? 0.0 : lin_c * xd) + lg[l];
            double a = a1 * td + a0 * (1.0 - td);
            double extra = gamma * qg1[l] * (1.0 - 2.0 * td) * pq * ce;
            extra = qv[l] > 0 ? extra : 0.0;
            extra = ce != 0 ? extra : 0.0;
            extra = pq != 0 ? extra : 0.0;
            double f = wd[l] * a;
            double lj = qg[l] * ce;
            lj = qg[l] != 0 ? f * lj : 0.0;
            /* a zero weight or alpha term is 0 even when the other is NaN */
            lj = a != 0 ? lj : 0.0;
            lj = wd[l] != 0 ? lj : 0.0;
            /* p - t' as (1 - t') p - t' (1 - p): no cancellation near p = t' = 1 */
            double gj = gd[l] * f * (qg[l] * ((1.0 - td) * p - td * omp) + extra);
            ld[l] = lj;
            gj = a != 0 ? gj : 0.0;
            grd[l] = wd[l] != 0 ? gj : 0.0;
            total += lj;
        }
        if (hess) {
            /* the second derivative, with s = p (1 - p), u = dq/dx = (1 - 2t') s:
             *   a (gamma (gamma-1) q^(gamma-2) u^2 ce
             *      + gamma q^(gamma-1) ((1 - 2t') s (1 - 2p) ce + 2 u (p - t')) + q^gamma s),
             * q^(gamma-2) u as q^(gamma-1) (u / q); terms with a zero factor 0 */
            XENT_T *ho = hess + j0;
#pragma omp simd
            for (int l = 0; l < len; l++) {
                double xd = xv[l], td = tv[l], e = ev[l], r = rv[l];
                double p = xd >= 0 ? r : e * r, omp = xd >= 0 ? e * r : r, sq = p * omp;
                double lin_c = xd >= 0 ? 1.0 - td : -td;
                double ce = (lin_c == 0 ? 0.0 : lin_c * xd) + lg[l];
                double a = a1 * td + a0 * (1.0 - td), q = qv[l], u = (1.0 - 2.0 * td) * sq;
                double t1 = gamma * gm1 * qg1[l] * (u / q) * u * ce;
                t1 = q > 0 && u != 0 && ce != 0 && gamma != 0 && gamma != 1.0 ? t1 : 0.0;
                double t2 = gamma * qg1[l] * ((1.0 - 2.0 * td) * sq * (omp - p) * ce + 2.0 * u * ((1.0 - td) * p - td * omp));
                t2 = q > 0 && sq != 0 && gamma != 0 ? t2 : 0.0;
                double t3 = qg[l] != 0 ? qg[l] * sq : 0.0;
                double h = hfac * gd[l] * wd[l] * a * (t1 + t2 + t3);
                hv[l] = a != 0 && wd[l] != 0 ? h : 0.0;
            }
            XENT_G(xent_hess_store_)(hv, ho, len, hpol, hmin);
        }
        if (loss) {
            XENT_T *lo = loss + j0;
#pragma omp simd
            for (int l = 0; l < len; l++)
                lo[l] = (XENT_T)ld[l];
        }
        if (grad) {
            XENT_T *go = grad + j0;
#pragma omp simd
            for (int l = 0; l < len; l++)
                go[l] = (XENT_T)grd[l];
        }
    }
    return total;
}

/* The information-theory rows (src/information.pxi): mode 0
 * H(p, q) = -sum p log q, 1 KL(p || q) = sum p log(p / q), 2 H(p) = -sum p log p
 * (q not read), each term in float64 from the input values with the
 * vectorised float64 log; a term with p == 0 is 0 (NaN if q is NaN); with clip,
 * q outside [lo, hi] is moved to the bound and its gradient is 0. KL takes
 * log(p / q) (one rounding, no cancellation near p == q) unless the ratio is
 * not a normal positive number, then log p - log q. grad (unless NULL) gets
 * -f p / q. The sums are Kahan-compensated in float64; once a term is
 * infinite or NaN the plain sum (inf or NaN) is the value.
 *
 * xent_info_terms_: the terms tv and gradients of len (<= XENT_EB) values. */
static inline double XENT_G(xent_info_terms_)(const XENT_T *pb, const XENT_T *qb, int len,
                                            int mode, double clo, double chi, double f,
                                            const double *fv, double *tv, XENT_T *go, XENT_T *to,
                                            const uint8_t *wm, double qs, double sm1, double sm2,
                                            double gamma, const double *av, int usum)
{
    /* (qs: q's factor before the clip, 1 / its row sum with renormalisation;
     * p becomes sm1 p + sm2, the label smoothing: 1 and 0 without; gamma and
     * av, each value's class factor: the focal mode's; usum: return the sum
     * of q_j dterm/dq_j over the entries kept and not clipped (-p_j for the
     * cross-entropy, a_j D_j for the focal terms): the renormalisation's) */
    double u_total = 0.0;
    double pv[XENT_EB], qv[XENT_EB], lq[XENT_EB], lr[XENT_EB], lp[XENT_EB];
    const int logq = mode & XENT_INFO_LOG_Q, logp = mode & XENT_INFO_LOG_P;
    mode &= 3;
#pragma omp simd
    for (int l = 0; l < len; l++) {
        double qd = (double)qb[l] * qs;
        qd = qd < clo ? clo : qd;
        qd = qd > chi ? chi : qd;
        pv[l] = (double)pb[l] * sm1 + sm2;
        qv[l] = qd;
    }
    if (wm) {
        /* an entry left out (wm 0, where=) is a term of p == 0 with q == 1
         * (its log 0): 0, with a 0 gradient, whatever its values */
        const double p0 = logp ? -INFINITY : 0.0, q1 = logq ? 0.0 : 1.0;
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double k = (double)wm[l];
            pv[l] = k != 0 ? pv[l] : p0;
            qv[l] = k != 0 ? qv[l] : q1;
        }
    }
    if (logq || logp) {
        /* log-probabilities given (PyTorch's kl_div): lq = q (log_input), lp = p
         * and p = exp(lp) (log_target); KL terms p (lp - lq), cross-entropy
         * terms -p lq; a zero p gives 0 (NaN for a NaN log q) */
        const double elo = xent_exp_bounds[0], ehi = xent_exp_bounds[1];
        if (logp) {
#pragma omp simd
            for (int l = 0; l < len; l++) {
                lp[l] = pv[l];
                pv[l] = pv[l] == -INFINITY ? 0.0 : XENT_F(xent_exp_)(pv[l], elo, ehi);
            }
        } else if (mode == 1) {
            /* (the mode tested out of the loop: a select on it alone kept
             * GCC from vectorising the loop) */
#pragma omp simd
            for (int l = 0; l < len; l++)
                lp[l] = XENT_F(xent_log_)(pv[l]);
        } else {
            for (int l = 0; l < len; l++)
                lp[l] = 0.0;
        }
        if (logq) {
#pragma omp simd
            for (int l = 0; l < len; l++)
                lq[l] = qv[l];
        } else {
#pragma omp simd
            for (int l = 0; l < len; l++)
                lq[l] = XENT_F(xent_log_)(qv[l]);
        }
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double v = mode == 1 ? pv[l] * (lp[l] - lq[l]) : -pv[l] * lq[l];
            double qn = lq[l] != lq[l] ? lq[l] : 0.0;
            tv[l] = pv[l] == 0 ? qn : v;
        }
        if (to)
            for (int l = 0; l < len; l++)
                to[l] = (XENT_T)tv[l];
        if (go) {
            /* d / d log q = -p; d / d q = -p / q */
#pragma omp simd
            for (int l = 0; l < len; l++) {
                double fl = fv ? fv[l] : f, qd = (double)qb[l] * qs;
                double g = logq ? -fl * pv[l] : -fl * (pv[l] / qv[l]);
                g = !logq && (qd < clo || qd > chi) ? 0.0 : g; /* (0 where q was clipped) */
                go[l] = (XENT_T)(pv[l] == 0 ? 0.0 : g);
            }
        }
        return 0.0; /* (no renormalisation of log inputs) */
    }
    if (mode == 1) {
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double r = pv[l] / qv[l];
            r = r < INFINITY ? r : -1.0; /* -1 marks the fallback (a NaN log) */
            lr[l] = r >= 2.2250738585072014e-308 ? r : -1.0;
        }
        /* (p == 0: a zero term, set below; a float count, in its own loop,
         * so that GCC vectorises it) */
        double fallback = 0.0;
#pragma omp simd reduction(+ : fallback)
        for (int l = 0; l < len; l++)
            fallback += lr[l] < 0 ? (pv[l] != 0 ? 1.0 : 0.0) : 0.0;
#pragma omp simd
        for (int l = 0; l < len; l++)
            lr[l] = XENT_F(xent_log_)(lr[l]);
        /* log p - log q only where the ratio is not a normal positive
         * number (a zero, an overflow, a NaN): most blocks have none */
        if (fallback) {
#pragma omp simd
            for (int l = 0; l < len; l++) {
                lp[l] = XENT_F(xent_log_)(pv[l]);
                lq[l] = XENT_F(xent_log_)(qv[l]);
            }
        } else {
            for (int l = 0; l < len; l++)
                lp[l] = lq[l] = 0.0;
        }
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double r = pv[l] / qv[l];
            double v = pv[l] * (lp[l] - lq[l]);
            v = r >= 2.2250738585072014e-308 ? (r < INFINITY ? pv[l] * lr[l] : v) : v;
            tv[l] = v;
        }
    } else if (mode == XENT_INFO_FOCAL) {
        /* the focal terms -a p (1 - q)^gamma log q (xent_focal_core_ with q
         * for the softmax), a D into lr: the gradient is f a D / q */
        double w[XENT_EB], w1[XENT_EB];
#pragma omp simd
        for (int l = 0; l < len; l++) {
            lq[l] = XENT_F(xent_log_)(qv[l]);
            /* 1 - q (exact for q >= 1/2), 0 above 1, NaN for NaN */
            lp[l] = qv[l] < 1.0 ? 1.0 - qv[l] : (qv[l] == qv[l] ? 0.0 : qv[l]);
        }
        XENT_G(xent_focal_pow_)(lp, len, gamma, w, w1);
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double d;
            tv[l] = XENT_F(xent_focal_core_)(lq[l], qv[l], w[l], w1[l], gamma, av[l] * pv[l], &d);
            lr[l] = d;
        }
    } else {
#pragma omp simd
        for (int l = 0; l < len; l++)
            lq[l] = XENT_F(xent_log_)(qv[l]);
#pragma omp simd
        for (int l = 0; l < len; l++)
            tv[l] = -pv[l] * lq[l];
    }
    /* p == 0: 0, or the NaN of a NaN q (clipping keeps a NaN) */
#pragma omp simd
    for (int l = 0; l < len; l++) {
        double qn = qv[l] != qv[l] ? qv[l] : 0.0;
        tv[l] = pv[l] == 0 ? qn : tv[l];
    }
    if (to)
        for (int l = 0; l < len; l++)
            to[l] = (XENT_T)tv[l];
    if (go) {
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double qd = (double)qb[l] * qs;
            /* (a zero factor a_j: 0, also at q = 0) */
            double r = mode == XENT_INFO_FOCAL ? (lr[l] == 0 ? 0.0 : lr[l] / qv[l]) : -(pv[l] / qv[l]);
            double g = (fv ? fv[l] : f) * r; /* (f * p may underflow) */
            g = qd < clo ? 0.0 : g;
            g = qd > chi ? 0.0 : g;
            go[l] = (XENT_T)(pv[l] == 0 ? 0.0 : g);
        }
    }
    if (usum) {
        const double *uv = mode == XENT_INFO_FOCAL ? lr : pv, us = mode == XENT_INFO_FOCAL ? 1.0 : -1.0;
#pragma omp simd reduction(+ : u_total)
        for (int l = 0; l < len; l++) {
            double qd = (double)qb[l] * qs;
            double u = us * uv[l]; /* (exact: a factor +-1, no select on the mode) */
            u_total += (qd < clo || qd > chi || pv[l] == 0) ? 0.0 : u;
        }
    }
    return u_total;
}

/* XENT_LANES values v added to the lanes: raw (plain) and acc - comp
 * (Kahan-compensated) */
static inline __attribute__((always_inline)) void XENT_G(xent_info_lanes_)(
    const double *__restrict v, double *__restrict raw, double *__restrict acc, double *__restrict comp)
{
#pragma omp simd
    for (int k = 0; k < XENT_LANES; k++) {
        raw[k] += v[k];
        double y = v[k] - comp[k], t = acc[k] + y;
        comp[k] = (t - acc[k]) - y;
        acc[k] = t;
    }
}

/* Rows of fewer classes than this are taken XENT_EB values (whole rows) at a
 * time and summed row by row; longer rows are summed in XENT_LANES lanes. */
#define XENT_INFO_SHORT 48

/* out[i] = the mode's value of row i of the nrows x C arrays p and q (row
 * stride C); grad, unless NULL, the same shape. */
/* The where= mask of rows r0 .. r0 + nr - 1, columns j0 .. j0 + width - 1 into
 * mv (row i at w + i * wrs, class j at j * wcs, wcs 0 or 1), row-major */
static inline void XENT_G(xent_info_mask_)(const uint8_t *w, ptrdiff_t wrs, ptrdiff_t wcs,
                                           ptrdiff_t r0, ptrdiff_t nr, ptrdiff_t j0,
                                           ptrdiff_t width, uint8_t *mv)
{
    for (ptrdiff_t r = 0; r < nr; r++) {
        const uint8_t *wr = w + (r0 + r) * wrs;
        if (wcs == 0)
            memset(mv + r * width, wr[0] != 0, (size_t)width);
        else
            for (ptrdiff_t j = 0; j < width; j++)
                mv[r * width + j] = wr[j0 + j] != 0;
    }
}

/* Renormalisation (Keras' probability losses): q's row sum over the kept
 * entries, and after the terms, the gradient's term of the sum. With
 * q_j = r_j / s, dL/dr_k = (dL/dq_k - sum_j q_j dL/dq_j) / s over the kept
 * entries: the terms wrote f qs dL/dq_k; every kept entry gets
 * add = -f qs U, U = sum_j q_j dL/dq_j (xent_info_terms_' usum: no product
 * of an infinite derivative and a zero q). */
static double XENT_G(xent_info_rowsum_)(const XENT_T *qr, ptrdiff_t C, const uint8_t *w,
                                        ptrdiff_t wrs, ptrdiff_t wcs, ptrdiff_t i)
{
    uint8_t mv[XENT_EB];
    double s = 0.0;
    for (ptrdiff_t j0 = 0; j0 < C; j0 += XENT_EB) {
        int len = C - j0 < XENT_EB ? (int)(C - j0) : XENT_EB;
        if (w) { /* (two loops: a select on !w in the loop kept it scalar) */
            XENT_G(xent_info_mask_)(w, wrs, wcs, i, 1, j0, len, mv);
#pragma omp simd reduction(+ : s)
            for (int l = 0; l < len; l++)
                s += mv[l] ? (double)qr[j0 + l] : 0.0;
        } else {
#pragma omp simd reduction(+ : s)
            for (int l = 0; l < len; l++)
                s += (double)qr[j0 + l];
        }
    }
    return s;
}

static void XENT_G(xent_info_renorm_grad_)(XENT_T *gr, ptrdiff_t C, const uint8_t *w,
                                           ptrdiff_t wrs, ptrdiff_t wcs, ptrdiff_t i, double add)
{
    uint8_t mv[XENT_EB];
    for (ptrdiff_t j0 = 0; j0 < C; j0 += XENT_EB) {
        int len = C - j0 < XENT_EB ? (int)(C - j0) : XENT_EB;
        if (w)
            XENT_G(xent_info_mask_)(w, wrs, wcs, i, 1, j0, len, mv);
#pragma omp simd
        for (int l = 0; l < len; l++) {
            double g = (double)gr[j0 + l] + add;
            gr[j0 + l] = (!w || mv[l]) ? (XENT_T)g : (XENT_T)0;
        }
    }
}

static void XENT_G(xent_info_)(const XENT_T *p, const XENT_T *q, ptrdiff_t nrows, ptrdiff_t C,
                               int mode, int clip, double lo, double hi, const double *f,
                               ptrdiff_t fs, XENT_T *grad, double *out, XENT_T *terms,
                               const uint8_t *w, ptrdiff_t wrs, ptrdiff_t wcs, double smooth,
                               int renorm, double gamma, const double *alpha)
{
    double tv[XENT_EB], fv[XENT_EB], av[XENT_EB];
    uint8_t mv[XENT_EB];
    const double clo = clip ? lo : -INFINITY, chi = clip ? hi : INFINITY;
    const double sm1 = 1.0 - smooth, sm2 = C > 0 ? smooth / (double)C : 0.0;
    if ((mode & 3) == 2)
        q = p;
    if (C < XENT_INFO_SHORT && !renorm) {
        ptrdiff_t per = C > 0 ? XENT_EB / C : 0;
        for (ptrdiff_t i0 = 0; i0 < nrows; i0 += per) {
            ptrdiff_t nr = nrows - i0 < per ? nrows - i0 : per;
            if (C > 0 && grad && fs)
                for (ptrdiff_t r = 0; r < nr; r++)
                    for (ptrdiff_t j = 0; j < C; j++)
                        fv[r * C + j] = f[(i0 + r) * fs];
            if (C > 0 && w)
                XENT_G(xent_info_mask_)(w, wrs, wcs, i0, nr, 0, C, mv);
            if (alpha)
                for (ptrdiff_t r = 0; r < nr; r++)
                    memcpy(av + r * C, alpha, (size_t)C * sizeof(double));
            if (C > 0)
                XENT_G(xent_info_terms_)(p + i0 * C, q + i0 * C, (int)(nr * C), mode, clo, chi,
                                         f[0], fs ? fv : NULL, tv, grad ? grad + i0 * C : NULL,
                                         terms ? terms + i0 * C : NULL, w ? mv : NULL, 1.0, sm1,
                                         sm2, gamma, av, 0);
            for (ptrdiff_t r = 0; r < nr; r++) {
                const double *tr = tv + r * C;
                double sr = 0.0, s = 0.0, c = 0.0;
                for (ptrdiff_t j = 0; j < C; j++) {
                    sr += tr[j];
                    double y = tr[j] - c, t = s + y;
                    c = (t - s) - y;
                    s = t;
                }
                out[i0 + r] = sr - sr == 0 ? s : sr;
            }
            if (per == 0)
                break;
        }
        if (C == 0)
            for (ptrdiff_t i = 0; i < nrows; i++)
                out[i] = 0.0;
        return;
    }
    for (ptrdiff_t i = 0; i < nrows; i++) {
        const XENT_T *pr = p + i * C, *qr = q + i * C;
        double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0}, raw[XENT_LANES] = {0};
        const double qs = renorm ? 1.0 / XENT_G(xent_info_rowsum_)(qr, C, w, wrs, wcs, i) : 1.0;
        double usum = 0.0;
        for (ptrdiff_t j0 = 0; j0 < C; j0 += XENT_EB) {
            int len = C - j0 < XENT_EB ? (int)(C - j0) : XENT_EB;
            if (w)
                XENT_G(xent_info_mask_)(w, wrs, wcs, i, 1, j0, len, mv);
            usum += XENT_G(xent_info_terms_)(pr + j0, qr + j0, len, mode, clo, chi, f[i * fs] * qs, NULL,
                                     tv, grad ? grad + i * C + j0 : NULL,
                                     terms ? terms + i * C + j0 : NULL, w ? mv : NULL, qs, sm1, sm2,
                                     gamma, alpha ? alpha + j0 : NULL, renorm && grad);
            int l = 0;
            for (; l + XENT_LANES <= len; l += XENT_LANES)
                XENT_G(xent_info_lanes_)(tv + l, raw, acc, comp);
            for (int k = 0; l < len; l++, k++) {
                double v = tv[l];
                raw[k] += v;
                double y = v - comp[k], t = acc[k] + y;
                comp[k] = (t - acc[k]) - y;
                acc[k] = t;
            }
        }
        double sr = 0.0, s = 0.0, c = 0.0;
        for (int k = 0; k < XENT_LANES; k++) {
            sr += raw[k];
            double y = (acc[k] - comp[k]) - c, t = s + y;
            c = (t - s) - y;
            s = t;
        }
        out[i] = sr - sr == 0 ? s : sr;
        if (renorm && grad)
            XENT_G(xent_info_renorm_grad_)(grad + i * C, C, w, wrs, wcs, i, -f[i * fs] * qs * usum);
    }
}

#undef XENT_INFO_SHORT

/* ------------------------------------------------ distillation from logits
 * Per row i of the student logits s and the teacher logits t (C values
 * each), at the inverse temperature it = 1 / T, with the rows' maxima ms and
 * mt: Q = softmax((s - ms) it) (the student's), P = softmax((t - mt) it)
 * (the teacher's), from the type's vectorised exps e^s_j, e^t_j and their
 * float64 sums Ss, St (Ls, Lt their logs); u_j = (t_j - mt) - (s_j - ms)
 * (in the type: 0 where the shifted logits agree), so that
 * log P_j - log Q_j = it u_j - (Lt - Ls):
 *   XENT_DISTILL_FORWARD  KL(P || Q) = (it / St) sum e^t_j u_j + Ls - Lt
 *   XENT_DISTILL_REVERSE  KL(Q || P) = -(it / Ss) sum e^s_j u_j + Lt - Ls
 *   XENT_DISTILL_JSD      beta KL(P || M) + (1 - beta) KL(Q || M),
 *                         M = beta P + (1 - beta) Q,
 * the JSD's log(max(P, Q) / M) as -log1p(c (min / max - 1)) (c = 1 - beta
 * where P is the larger, beta where Q is), the other log-ratio through
 * log Q - log P: exactly 0 where P == Q. A term whose weight (P_j or Q_j)
 * is 0 is 0. loss[i] = w_i value (w NULL: 1; 0 where w_i == 0, even for a
 * NaN row); grad (unless NULL) row i = f_i d value / d s:
 *   forward  it (Q - P)
 *   reverse  it Q (log Q - log P - value)
 *   JSD      it Q (v - sum_j Q_j v_j), v = (1 - beta) (log Q - log M)
 * (0 where f_i == 0). A row whose maximum in either input is not finite
 * (only -inf, or a +inf) is NaN; a NaN entry makes its row NaN through the
 * sums. Passes over a row: the two maxima; the exps, their sums and the KL
 * modes' sum (the exps kept: e^s in the gradient row, e^t in ws); the
 * gradient (and the JSD's terms). ws: 2 C doubles. */
/* The exps pass of a distillation row: e^s_j into es, e^t_j into et, their
 * float64 sums, and sum_j ew_j u_j (ew = e^t with fwd, else e^s; a term of a
 * zero ew is 0), in XENT_DL lanes (the products in the type). fwd is a
 * constant at each call: the loop is compiled for each. */
#define XENT_DL 8
#define XENT_DB 256
static inline __attribute__((always_inline)) void XENT_G(xent_distill_exps_)(
    const XENT_T *sr, const XENT_T *tr, XENT_T *es, XENT_T *et, ptrdiff_t C, XENT_T ms, XENT_T mt,
    XENT_T itT, const int fwd, double *ss, double *st, double *dot)
{
    XENT_EXP_BOUNDS;
    double as[XENT_DL] = {0}, at[XENT_DL] = {0}, ad[XENT_DL] = {0};
    XENT_T pr[XENT_DB];
    for (ptrdiff_t j0 = 0; j0 < C; j0 += XENT_DB) {
        const ptrdiff_t len = C - j0 < XENT_DB ? C - j0 : XENT_DB;
        const XENT_T *sb = sr + j0, *tb = tr + j0;
        XENT_T *ab = es + j0, *bb = et + j0;
#pragma omp simd
        for (ptrdiff_t l = 0; l < len; l++) {
            XENT_T ds = sb[l] - ms, dt = tb[l] - mt;
            XENT_T ea = XENT_EXP(ds * itT), eb = XENT_EXP(dt * itT);
            XENT_T ew = fwd ? eb : ea;
            ab[l] = ea;
            bb[l] = eb;
            pr[l] = ew == 0 ? (XENT_T)0 : ew * (dt - ds);
        }
        ptrdiff_t l = 0;
        for (; l + XENT_DL <= len; l += XENT_DL) {
#pragma omp simd
            for (int k = 0; k < XENT_DL; k++) {
                as[k] += (double)ab[l + k];
                at[k] += (double)bb[l + k];
                ad[k] += (double)pr[l + k];
            }
        }
        for (int k = 0; l < len; l++, k++) {
            as[k] += (double)ab[l];
            at[k] += (double)bb[l];
            ad[k] += (double)pr[l];
        }
    }
    double s1 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int l = 0; l < XENT_DL; l++) {
        s1 += as[l];
        s2 += at[l];
        s3 += ad[l];
    }
    *ss = s1;
    *st = s2;
    *dot = s3;
}
#undef XENT_DL
#undef XENT_DB

/* Rows of fewer than XENT_DISTILL_SHORT classes: a group of whole rows,
 * XENT_DS values at most, at a time, every per-element step one flat loop
 * over the group (each row's constants broadcast to its elements) and the
 * rows' logs one vectorised loop: the same terms as the long rows' passes. */
#define XENT_DISTILL_SHORT 32
#define XENT_TMAX (sizeof(XENT_T) == 4 ? 3.4028234663852886e38 : 1.7976931348623157e308)
#define XENT_DS 256
static void XENT_G(xent_distill_short_)(const XENT_T *s, const XENT_T *t, ptrdiff_t nrows,
                                        ptrdiff_t C, double it, int mode, double beta,
                                        const double *w, ptrdiff_t wst, const double *f,
                                        ptrdiff_t fs, double *loss, XENT_T *grad)
{
    XENT_EXP_BOUNDS;
    /* (1 / T in the type: at most its largest finite value, the one-hot limit) */
    const XENT_T itT = (XENT_T)(it < (double)XENT_TMAX ? it : (double)XENT_TMAX);
    const double omb = 1.0 - beta;
    const int fwd = mode == XENT_DISTILL_FORWARD, jsd = mode == XENT_DISTILL_JSD;
    XENT_T msv[XENT_DS], mtv[XENT_DS], ea[XENT_DS], eb[XENT_DS], pr[XENT_DS];
    double ka[XENT_DS], kb[XENT_DS], kc[XENT_DS], vv[XENT_DS];
    double ss[XENT_DS], st[XENT_DS], dot[XENT_DS], ls[XENT_DS], lt[XENT_DS];
    const ptrdiff_t per = XENT_DS / C;
    for (ptrdiff_t i0 = 0; i0 < nrows; i0 += per) {
        const ptrdiff_t nr = nrows - i0 < per ? nrows - i0 : per, len = nr * C;
        const XENT_T *sb = s + i0 * C, *tb = t + i0 * C;
        XENT_T *gb = grad ? grad + i0 * C : NULL;
        for (ptrdiff_t r = 0; r < nr; r++) {
            XENT_T ms = -INFINITY, mt = -INFINITY;
            for (ptrdiff_t j = 0; j < C; j++) {
                ms = sb[r * C + j] > ms ? sb[r * C + j] : ms;
                mt = tb[r * C + j] > mt ? tb[r * C + j] : mt;
            }
            for (ptrdiff_t j = 0; j < C; j++) {
                msv[r * C + j] = ms;
                mtv[r * C + j] = mt;
            }
        }
#pragma omp simd
        for (ptrdiff_t k = 0; k < len; k++) {
            XENT_T ds = sb[k] - msv[k], dt = tb[k] - mtv[k];
            XENT_T a = XENT_EXP(ds * itT), b = XENT_EXP(dt * itT);
            XENT_T ew = fwd ? b : a;
            ea[k] = a;
            eb[k] = b;
            pr[k] = ew == 0 ? (XENT_T)0 : ew * (dt - ds);
        }
        for (ptrdiff_t r = 0; r < nr; r++) {
            double a = 0.0, b = 0.0, d = 0.0;
            for (ptrdiff_t j = 0; j < C; j++) {
                a += (double)ea[r * C + j];
                b += (double)eb[r * C + j];
                d += (double)pr[r * C + j];
            }
            ss[r] = a;
            st[r] = b;
            dot[r] = d;
        }
#pragma omp simd
        for (ptrdiff_t r = 0; r < nr; r++) {
            ls[r] = XENT_F(xent_log_)(ss[r]);
            lt[r] = XENT_F(xent_log_)(st[r]);
        }
        if (jsd) { /* the terms (xent_distill_'s), each row's constants broadcast */
            for (ptrdiff_t r = 0; r < nr; r++)
                for (ptrdiff_t j = 0; j < C; j++) {
                    ka[r * C + j] = 1.0 / ss[r];
                    kb[r * C + j] = 1.0 / st[r];
                    kc[r * C + j] = lt[r] - ls[r];
                }
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++) {
                double p = (double)eb[k] * kb[k], q = (double)ea[k] * ka[k];
                XENT_T u = (tb[k] - mtv[k]) - (sb[k] - msv[k]);
                double lqp = kc[k] - it * (double)u;
                int pge = p >= q;
                double mx = pge ? p : q, mn = pge ? q : p, c = pge ? omb : beta;
                double L = -XENT_F(xent_log1p_)(c * (mn / mx - 1.0));
                double lpm = pge ? L : L - lqp, lqm = pge ? lqp + L : L;
                double v = q == 0 ? 0.0 : omb * lqm;
                kc[k] = (p == 0 ? 0.0 : beta * p * lpm) + q * v; /* the term */
                vv[k] = v;
                ka[k] = q * v;
            }
        }
        for (ptrdiff_t r = 0; r < nr; r++) {
            const ptrdiff_t i = i0 + r;
            const double wi = w ? w[i * wst] : 1.0, fi = f ? f[i * fs] : 1.0;
            const XENT_T ms = msv[r * C], mt = mtv[r * C];
            const int bad = !(ms - ms == 0) || !(mt - mt == 0);
            double value, k1 = 0.0, k2 = 0.0, k3 = 0.0;
            if (jsd) {
                double acc = 0.0, qdot = 0.0;
                for (ptrdiff_t j = 0; j < C; j++) {
                    acc += kc[r * C + j];
                    qdot += ka[r * C + j];
                }
                value = acc;
                k1 = fi * it / ss[r];
                k2 = qdot;
            } else if (fwd) {
                value = it * dot[r] / st[r] + (ls[r] - lt[r]);
                k1 = fi * it / ss[r];
                k2 = fi * it / st[r];
            } else {
                value = -it * dot[r] / ss[r] + (lt[r] - ls[r]);
                k1 = fi * it / ss[r];
                k2 = (lt[r] - ls[r]) - value;
            }
            if (bad)
                value = NAN;
            loss[i] = wi == 0 ? 0.0 : wi * value;
            k3 = fi == 0 ? 0.0 : bad ? NAN : 1.0; /* the row's gradient: 0, NaN or computed */
            if (gb)
                for (ptrdiff_t j = 0; j < C; j++) {
                    ka[r * C + j] = k1;
                    kb[r * C + j] = k2;
                    if (!jsd)
                        kc[r * C + j] = k3;
                    else
                        pr[r * C + j] = (XENT_T)k3;
                }
        }
        if (!gb)
            continue;
        if (fwd) {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++) {
                double g = (double)ea[k] * ka[k] - (double)eb[k] * kb[k];
                gb[k] = (XENT_T)(kc[k] == 1.0 ? g : kc[k]);
            }
        } else if (!jsd) {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++) {
                XENT_T u = (tb[k] - mtv[k]) - (sb[k] - msv[k]);
                double e = (double)ea[k];
                double g = e == 0 ? 0.0 : e * ka[k] * (kb[k] - it * (double)u);
                gb[k] = (XENT_T)(kc[k] == 1.0 ? g : kc[k]);
            }
        } else {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++) {
                double g = ka[k] * (double)ea[k] * (vv[k] - kb[k]);
                gb[k] = (XENT_T)(pr[k] == 1 ? g : (double)pr[k]);
            }
        }
    }
}
#undef XENT_DS

static void XENT_G(xent_distill_)(const XENT_T *s, const XENT_T *t, ptrdiff_t nrows, ptrdiff_t C,
                                  double it, int mode, double beta, const double *w, ptrdiff_t wst,
                                  const double *f, ptrdiff_t fs, double *loss, XENT_T *grad,
                                  double *ws)
{
    /* (1 / T in the type: at most its largest finite value, the one-hot limit) */
    const XENT_T itT = (XENT_T)(it < (double)XENT_TMAX ? it : (double)XENT_TMAX);
    const double omb = 1.0 - beta;
    const int fwd = mode == XENT_DISTILL_FORWARD;
    if (C == 0) {
        for (ptrdiff_t i = 0; i < nrows; i++)
            loss[i] = 0.0;
        return;
    }
    if (C < XENT_DISTILL_SHORT) {
        XENT_G(xent_distill_short_)(s, t, nrows, C, it, mode, beta, w, wst, f, fs, loss, grad);
        return;
    }
    XENT_T *et = (XENT_T *)ws;   /* the teacher's exps */
    double *vv = ws + C;         /* the JSD's v (with a gradient) */
    for (ptrdiff_t i = 0; i < nrows; i++) {
        const XENT_T *sr = s + i * C, *tr = t + i * C;
        XENT_T *gr = grad ? grad + i * C : NULL;
        XENT_T *es = gr ? gr : et + C; /* the student's exps */
        const double wi = w ? w[i * wst] : 1.0, fi = f ? f[i * fs] : 1.0;
        XENT_T ms = -INFINITY, mt = -INFINITY;
#pragma omp simd reduction(max : ms, mt)
        for (ptrdiff_t j = 0; j < C; j++) {
            ms = sr[j] > ms ? sr[j] : ms;
            mt = tr[j] > mt ? tr[j] : mt;
        }
        if (!(ms - ms == 0) || !(mt - mt == 0)) { /* no distribution in a row */
            loss[i] = wi == 0 ? 0.0 : NAN;
            if (gr)
                for (ptrdiff_t j = 0; j < C; j++)
                    gr[j] = fi == 0 ? (XENT_T)0 : (XENT_T)NAN;
            continue;
        }
        double ss, st, dot;
        if (fwd)
            XENT_G(xent_distill_exps_)(sr, tr, es, et, C, ms, mt, itT, 1, &ss, &st, &dot);
        else
            XENT_G(xent_distill_exps_)(sr, tr, es, et, C, ms, mt, itT, 0, &ss, &st, &dot);
        const double ls = log(ss), lt = log(st);
        double value;
        if (mode != XENT_DISTILL_JSD) {
            value = fwd ? it * dot / st + (ls - lt) : -it * dot / ss + (lt - ls);
            if (gr && fi == 0) {
                memset(gr, 0, (size_t)C * sizeof(XENT_T));
            } else if (gr && fwd) {
                const double ks = fi * it / ss, kt = fi * it / st;
#pragma omp simd
                for (ptrdiff_t j = 0; j < C; j++)
                    gr[j] = (XENT_T)((double)gr[j] * ks - (double)et[j] * kt);
            } else if (gr) {
                const double ks = fi * it / ss, c0 = (lt - ls) - value;
#pragma omp simd
                for (ptrdiff_t j = 0; j < C; j++) {
                    XENT_T u = (tr[j] - mt) - (sr[j] - ms);
                    double e = (double)gr[j];
                    gr[j] = (XENT_T)(e == 0 ? 0.0 : e * ks * (c0 - it * (double)u));
                }
            }
        } else {
            const double is = 1.0 / ss, itt = 1.0 / st, dl = lt - ls;
            double acc = 0.0, qdot = 0.0;
#pragma omp simd reduction(+ : acc, qdot)
            for (ptrdiff_t j = 0; j < C; j++) {
                double p = (double)et[j] * itt, q = (double)es[j] * is;
                XENT_T u = (tr[j] - mt) - (sr[j] - ms);
                double lqp = dl - it * (double)u; /* log Q - log P */
                int pge = p >= q;
                double mx = pge ? p : q, mn = pge ? q : p, c = pge ? omb : beta;
                double L = -XENT_F(xent_log1p_)(c * (mn / mx - 1.0)); /* log(max / M) */
                double lpm = pge ? L : L - lqp, lqm = pge ? lqp + L : L;
                double v = q == 0 ? 0.0 : omb * lqm;
                acc += (p == 0 ? 0.0 : beta * p * lpm) + q * v;
                qdot += q * v;
                if (gr)
                    vv[j] = v;
            }
            value = acc;
            if (gr && fi == 0) {
                memset(gr, 0, (size_t)C * sizeof(XENT_T));
            } else if (gr) {
                const double k = fi * it * is;
#pragma omp simd
                for (ptrdiff_t j = 0; j < C; j++)
                    gr[j] = (XENT_T)(k * (double)gr[j] * (vv[j] - qdot));
            }
        }
        loss[i] = wi == 0 ? 0.0 : wi * value;
    }
}
#undef XENT_DISTILL_SHORT
#undef XENT_TMAX

/* ------------------------------- log-sum-exp with scale factors and a mask
 * (src/softmax.pxi's scaled_rows; xent/_softmax.py's b= and where=). Per
 * row of x (C values): the kept entries K = {j : w_j and b_j != 0} (an
 * entry left out adds nothing whatever its value, as SciPy's b == 0 and
 * optax's where), m = max over K, e_j = exp(x_j - m) (0 off K),
 * B = sum of b_j over the entries at the max (their exps exactly 1, set
 * apart), R = sum of b_j e_j over the others (float64 lanes; compensated
 * for double), S = B + R:
 *   XENT_SCALED_LSE      res = m + log|S|, as m + log|B| + log1p(R / B)
 *                        where R / B > -1/2 (a dominant entry keeps its
 *                        relative accuracy), sgn = sign(S) (NULL: a
 *                        negative S is NaN); out (unless NULL), the
 *                        gradient of log|S|: b_j e_j / S (0 off K)
 *   XENT_SCALED_SOFTMAX  out = e_j / S (0 off K)
 *   XENT_SCALED_LOG_SOFTMAX  out = (x_j - m) - log S (-inf off K)
 * (softmax and log_softmax are called with b == NULL, bc == 1). A row with
 * no kept entry or only -inf: res -inf, sgn 0, softmax and gradient 0,
 * log_softmax -inf. A +inf max carries the row (the limit): S = the sum of
 * b_j at its +inf entries, res +inf (NaN where b changes sign there), out
 * b_j / S there and 0 elsewhere (log_softmax: log(1 / S)). A NaN x_j in K
 * makes the row NaN (its kept outputs NaN). b and w (NULL: 1 and all
 * kept) are the row's, contiguous; bc: b's value for the whole row when b
 * is NULL. E: C values of scratch for the exps (may be out, not x). */
#define XENT_SB 256
static inline __attribute__((always_inline)) int XENT_G(xent_scaled_keep_)(
    const XENT_T *b, const uint8_t *w, ptrdiff_t j, const int hb, const int hw)
{
    /* (every load unconditional, the mask widened to the type: vectorised) */
    XENT_T wv = hw ? (XENT_T)w[j] : (XENT_T)1, bv = hb ? b[j] : (XENT_T)1;
    return (wv != 0) & (bv != 0);
}

static inline __attribute__((always_inline)) void XENT_G(xent_scaled_row_)(
    const XENT_T *x, ptrdiff_t C, const XENT_T *b, const uint8_t *w, double bc, int op,
    XENT_T *res, XENT_T *sgn, XENT_T *out, XENT_T *E, const int hb, const int hw)
{
    XENT_EXP_BOUNDS;
    XENT_T m = -INFINITY;
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (ptrdiff_t j = 0; j < C; j++) {
        int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
        XENT_T xv = x[j];
        XENT_T v = k ? xv : (XENT_T)-INFINITY;
        m = v > m ? v : m;
        nan |= k & (xv != xv);
    }
    double r_res, r_sgn, S = 0.0, log_s = 0.0;
    if (nan || m == -INFINITY || m == INFINITY) {
        /* the limits, element by element (rare rows) */
        double sinf = 0.0;
        int pos = 0, neg = 0;
        if (!nan && m == INFINITY)
            for (ptrdiff_t j = 0; j < C; j++)
                if (XENT_G(xent_scaled_keep_)(b, w, j, hb, hw) && x[j] == INFINITY) {
                    double bj = hb ? (double)b[j] : bc;
                    sinf += bj;
                    pos |= bj > 0;
                    neg |= bj < 0;
                    nan |= bj != bj;
                }
        nan |= pos && neg;
        r_res = nan ? NAN : m == INFINITY ? INFINITY : -INFINITY;
        r_sgn = nan ? NAN : m == INFINITY ? (neg ? -1.0 : 1.0) : 0.0;
        if (!sgn && r_sgn < 0)
            r_res = NAN;
        if (out) {
            const double ki = 1.0 / sinf, li = -log(sinf);
            for (ptrdiff_t j = 0; j < C; j++) {
                int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
                double bj = hb ? (double)b[j] : bc;
                double v;
                if (op == XENT_SCALED_LOG_SOFTMAX)
                    v = !k ? -INFINITY : nan ? NAN : (m == INFINITY && x[j] == INFINITY) ? li : -INFINITY;
                else
                    v = !k ? 0.0 : (nan || r_res != r_res) ? NAN
                                   : (m == INFINITY && x[j] == INFINITY) ? bj * ki : 0.0;
                out[j] = (XENT_T)v;
            }
        }
        *res = (XENT_T)r_res;
        if (sgn)
            *sgn = (XENT_T)r_sgn;
        return;
    }
    /* the exps and the two sums */
#if !XENT_KAHAN
    /* (plain float64 sums: one fused loop with the sums as reductions, the
     * exps kept in E only for the outputs) */
    double B = 0.0, R = 0.0;
    if (out) {
#pragma omp simd reduction(+ : B, R)
        for (ptrdiff_t j = 0; j < C; j++) {
            int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
            XENT_T xv = x[j];
            int mx = k & (xv == m);
            XENT_T e0 = XENT_EXP(k ? xv - m : (XENT_T)0);
            XENT_T e = mx ? (XENT_T)1 : k ? e0 : (XENT_T)0;
            double bj = hb ? (double)b[j] : bc;
            E[j] = e;
            B += mx ? bj : 0.0;
            R += (k & !mx) ? bj * (double)e : 0.0;
        }
    } else {
#pragma omp simd reduction(+ : B, R)
        for (ptrdiff_t j = 0; j < C; j++) {
            int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
            XENT_T xv = x[j];
            int mx = k & (xv == m);
            XENT_T e0 = XENT_EXP(k ? xv - m : (XENT_T)0);
            double bj = hb ? (double)b[j] : bc;
            B += mx ? bj : 0.0;
            R += (k & !mx) ? bj * (double)e0 : 0.0;
        }
    }
#else
    double ab[XENT_LANES] = {0}, cb[XENT_LANES] = {0}, ar[XENT_LANES] = {0}, cr[XENT_LANES] = {0};
    double tb[XENT_SB], tr[XENT_SB];
    for (ptrdiff_t j0 = 0; j0 < C; j0 += XENT_SB) {
        const ptrdiff_t len = C - j0 < XENT_SB ? C - j0 : XENT_SB;
#pragma omp simd
        for (ptrdiff_t l = 0; l < len; l++) {
            const ptrdiff_t j = j0 + l;
            int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
            XENT_T xv = x[j];
            int mx = k & (xv == m);
            XENT_T d = k ? xv - m : (XENT_T)0;
            XENT_T e0 = XENT_EXP(d);
            XENT_T e = mx ? (XENT_T)1 : k ? e0 : (XENT_T)0;
            double bj = hb ? (double)b[j] : bc;
            E[j] = e;
            tb[l] = mx ? bj : 0.0;
            tr[l] = (k & !mx) ? bj * (double)e : 0.0;
        }
        ptrdiff_t l = 0;
        for (; l + XENT_LANES <= len; l += XENT_LANES) {
#pragma omp simd
            for (int q = 0; q < XENT_LANES; q++) {
                XENT_ACC(ab[q], cb[q], tb[l + q]);
                XENT_ACC(ar[q], cr[q], tr[l + q]);
            }
        }
        for (int q = 0; l < len; l++, q++) {
            XENT_ACC(ab[q], cb[q], tb[l]);
            XENT_ACC(ar[q], cr[q], tr[l]);
        }
    }
    double B = 0.0, R = 0.0, c1 = 0.0, c2 = 0.0;
    for (int q = 0; q < XENT_LANES; q++) {
        XENT_ACC(B, c1, ab[q] - cb[q]);
        XENT_ACC(R, c2, ar[q] - cr[q]);
    }
    (void)c1;
    (void)c2;
#endif
    if (!(B - B == 0) || !(R - R == 0)) {
        /* an infinite term (a huge b): the compensation's inf - inf is NaN,
         * the plain sums are the limit (rare rows: element by element) */
        B = R = 0.0;
        for (ptrdiff_t j = 0; j < C; j++) {
            int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
            double bj = hb ? (double)b[j] : bc;
            if (k && x[j] == m)
                B += bj;
            else if (k) /* (E may not hold the exps: recomputed) */
                R += bj * (double)XENT_EXP(x[j] - m);
        }
    }
    S = B + R;
    const double ratio = B != 0 ? R / B : 0.0;
    if (B != 0 && ratio > -0.5 && ratio < INFINITY) /* (R / B overflowing: log|S|) */
        log_s = log(fabs(B)) + log1p(ratio);
    else
        log_s = log(fabs(S));
    r_sgn = S > 0 ? 1.0 : S < 0 ? -1.0 : S == 0 ? 0.0 : NAN;
    r_res = (double)m + log_s;
    if (!sgn && r_sgn < 0)
        r_res = NAN;
    *res = (XENT_T)r_res;
    if (sgn)
        *sgn = (XENT_T)r_sgn;
    if (!out)
        return;
    if (op == XENT_SCALED_LOG_SOFTMAX) {
#pragma omp simd
        for (ptrdiff_t j = 0; j < C; j++) {
            int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
            XENT_T v = (XENT_T)(((double)x[j] - (double)m) - log_s);
            out[j] = k ? v : (XENT_T)-INFINITY;
        }
        return;
    }
    /* softmax and the gradient: b_j e_j / S (a NaN result: NaN) */
    const double ks = r_res != r_res ? NAN : 1.0 / S;
    if (fabs(ks) == INFINITY) { /* (a subnormal S: divided, not multiplied by 1 / S) */
        for (ptrdiff_t j = 0; j < C; j++) {
            int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
            double bj = hb ? (double)b[j] : bc;
            out[j] = k ? (XENT_T)(bj * (double)E[j] / S) : (XENT_T)0;
        }
        return;
    }
#pragma omp simd
    for (ptrdiff_t j = 0; j < C; j++) {
        int k = XENT_G(xent_scaled_keep_)(b, w, j, hb, hw);
        double bj = hb ? (double)b[j] : bc;
        XENT_T v = (XENT_T)(bj * ks * (double)E[j]);
        out[j] = k ? v : (XENT_T)0;
    }
}

/* rows i0 .. i0 + nrows - 1 of the call (x: n x C contiguous; b, w: row i
 * at i * brs (wrs), class j at j * bcs (wcs), a stride 0 or 1; res, sgn: a
 * value a row; out: n x C, may be x), E: C values of scratch */
static void XENT_G(xent_scaled_rows_)(const XENT_T *x, ptrdiff_t nrows, ptrdiff_t C,
                                      const XENT_T *b, ptrdiff_t brs, ptrdiff_t bcs,
                                      const uint8_t *w, ptrdiff_t wrs, ptrdiff_t wcs, int op,
                                      XENT_T *res, XENT_T *sgn, XENT_T *out, XENT_T *E)
{
    for (ptrdiff_t i = 0; i < nrows; i++) {
        const XENT_T *xr = x + i * C, *br = b ? b + i * brs : NULL;
        const uint8_t *wr = w ? w + i * wrs : NULL;
        XENT_T *orow = out ? out + i * C : NULL;
        XENT_T *er = orow && op != XENT_SCALED_LOG_SOFTMAX ? orow : E;
        double bc = 1.0;
        int none = 0;
        /* a row-constant b or w: its one value for the row (a mask of False:
         * nothing kept, whatever b) */
        if (br && bcs == 0) {
            bc = (double)br[0];
            br = NULL;
        }
        if (wr && wcs == 0) {
            none = !wr[0];
            wr = NULL;
        }
        if (none || (bc == 0 && !br)) { /* nothing kept: as a row of -inf */
            res[i] = (XENT_T)-INFINITY;
            if (sgn)
                sgn[i] = (XENT_T)0;
            if (orow) {
                XENT_T v = op == XENT_SCALED_LOG_SOFTMAX ? (XENT_T)-INFINITY : (XENT_T)0;
                for (ptrdiff_t j = 0; j < C; j++)
                    orow[j] = v;
            }
            continue;
        }
        XENT_T *ri = res + i, *si = sgn ? sgn + i : NULL;
        if (br && wr)
            XENT_G(xent_scaled_row_)(xr, C, br, wr, bc, op, ri, si, orow, er, 1, 1);
        else if (br)
            XENT_G(xent_scaled_row_)(xr, C, br, NULL, bc, op, ri, si, orow, er, 1, 0);
        else if (wr)
            XENT_G(xent_scaled_row_)(xr, C, NULL, wr, bc, op, ri, si, orow, er, 0, 1);
        else
            XENT_G(xent_scaled_row_)(xr, C, NULL, NULL, bc, op, ri, si, orow, er, 0, 0);
    }
}

/* Rows of fewer than XENT_SCALED_SHORT classes: groups of whole rows, at
 * most XENT_SS values, every per-element step one flat vectorised loop over
 * the group (each row's max and factor broadcast to its elements; b and w
 * read by flat loops when their rows are contiguous), each row's max and sums
 * a short reduction, the rows' logs one vectorised loop (xent_log_ and
 * xent_log1p_): the same terms as a row at a time. A row whose max is not
 * finite (nothing kept, +-inf, NaN: a kept NaN counts as +inf for the max)
 * or whose sum is subnormal is computed by the row path, before the group's
 * outputs. */
#define XENT_SCALED_SHORT 32
#define XENT_SS 256
static inline void XENT_G(xent_scaled_gather_)(XENT_T *dst, const XENT_T *b, const uint8_t *w,
                                               ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t nr, ptrdiff_t C)
{
    /* dst[r C + j] = b[r rs + j cs] (or w's value, 0 or 1); cs is 0 or 1 */
    if (cs == 1 && rs == C) {
        const ptrdiff_t len = nr * C;
        if (b) {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++)
                dst[k] = b[k];
        } else {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++)
                dst[k] = (XENT_T)(w[k] != 0);
        }
        return;
    }
    for (ptrdiff_t r = 0; r < nr; r++) {
        XENT_T *d = dst + r * C;
        if (cs) {
            if (b)
                for (ptrdiff_t j = 0; j < C; j++)
                    d[j] = b[r * rs + j];
            else
                for (ptrdiff_t j = 0; j < C; j++)
                    d[j] = (XENT_T)(w[r * rs + j] != 0);
        } else {
            const XENT_T v = b ? b[r * rs] : (XENT_T)(w[r * rs] != 0);
            for (ptrdiff_t j = 0; j < C; j++)
                d[j] = v;
        }
    }
}

static void XENT_G(xent_scaled_short_)(const XENT_T *x, ptrdiff_t nrows, ptrdiff_t C,
                                       const XENT_T *b, ptrdiff_t brs, ptrdiff_t bcs,
                                       const uint8_t *w, ptrdiff_t wrs, ptrdiff_t wcs, int op,
                                       XENT_T *res, XENT_T *sgn, XENT_T *out, XENT_T *E)
{
    XENT_EXP_BOUNDS;
    XENT_T bv[XENT_SS], wv[XENT_SS], ev[XENT_SS], mv[XENT_SS], xm[XENT_SS];
    unsigned char sp[XENT_SS], spv[XENT_SS];
    XENT_T fb[XENT_SS], fm[XENT_SS], fr[XENT_SS];
    double kr[XENT_SS], ls[XENT_SS], ke[XENT_SS], le[XENT_SS], Bs[XENT_SS], Rs[XENT_SS];
    XENT_T rm[XENT_SS];
    const ptrdiff_t per = XENT_SS / C;
    for (ptrdiff_t i0 = 0; i0 < nrows; i0 += per) {
        const ptrdiff_t nr = nrows - i0 < per ? nrows - i0 : per, len = nr * C;
        const XENT_T *xb = x + i0 * C;
        /* the factors and the kept flags (wv: 1 kept, 0 not) of the group */
        if (b)
            XENT_G(xent_scaled_gather_)(bv, b + i0 * brs, NULL, brs, bcs, nr, C);
        else
            for (ptrdiff_t k = 0; k < len; k++)
                bv[k] = (XENT_T)1;
        if (w)
            XENT_G(xent_scaled_gather_)(wv, NULL, w + i0 * wrs, wrs, wcs, nr, C);
        else
            for (ptrdiff_t k = 0; k < len; k++)
                wv[k] = (XENT_T)1;
#pragma omp simd
        for (ptrdiff_t k = 0; k < len; k++) {
            XENT_T xk = xb[k];
            int keep = (wv[k] != 0) & (bv[k] != 0);
            wv[k] = keep ? (XENT_T)1 : (XENT_T)0;
            xm[k] = keep ? (xk != xk ? (XENT_T)INFINITY : xk) : (XENT_T)-INFINITY;
        }
        /* each row's max over its kept entries; a row without a finite one
         * is special */
        for (ptrdiff_t r = 0; r < nr; r++) {
            /* (scalar loops, two chains: a simd reduction over a few values
             * spills its lanes and stalls on the store's forwarding) */
            const XENT_T *xr = xm + r * C;
            XENT_T m = xr[0], m2 = -INFINITY;
            ptrdiff_t j = 1;
            for (; j + 1 < C; j += 2) {
                m = xr[j] > m ? xr[j] : m;
                m2 = xr[j + 1] > m2 ? xr[j + 1] : m2;
            }
            if (j < C)
                m = xr[j] > m ? xr[j] : m;
            m = m2 > m ? m2 : m;
            const int special = !(m - m == 0);
            sp[r] = (unsigned char)special;
            rm[r] = special ? (XENT_T)0 : m;
            for (ptrdiff_t j = 0; j < C; j++) {
                mv[r * C + j] = rm[r];
                spv[r * C + j] = (unsigned char)special;
            }
        }
#pragma omp simd
        for (ptrdiff_t k = 0; k < len; k++) {
            XENT_T xk = xb[k];
            int keep = wv[k] != 0;
            int mx = keep & (xk == mv[k]);
            XENT_T d = keep ? xk - mv[k] : (XENT_T)0;
            XENT_T e0 = XENT_EXP(d);
            XENT_T e = mx ? (XENT_T)1 : keep ? e0 : (XENT_T)0;
            ev[k] = e;
            fb[k] = mx ? bv[k] : (XENT_T)0;
            fm[k] = (keep & !mx) ? bv[k] : (XENT_T)0; /* (an entry left out adds 0, whatever b) */
            fr[k] = (keep & !mx) ? e : (XENT_T)0;
        }
        /* each row's two sums; the special rows by the row path */
        for (ptrdiff_t r = 0; r < nr; r++) {
            /* (b e formed in double, as the long rows' terms: for float32
             * input the product of two floats, exact; the entries in order) */
            const XENT_T *br = fb + r * C, *rr = fr + r * C, *bb = fm + r * C;
            double B = 0.0, R = 0.0;
            for (ptrdiff_t j = 0; j < C; j++) {
                B += (double)br[j];
                R += (double)bb[j] * (double)rr[j];
            }
            const double S = B + R;
            /* (a subnormal sum with outputs: the row path divides by it) */
            if (!sp[r] && out && fabs(1.0 / S) == INFINITY && S == S) {
                sp[r] = 1;
                for (ptrdiff_t j = 0; j < C; j++)
                    spv[r * C + j] = 1;
            }
            if (sp[r]) {
                XENT_G(xent_scaled_rows_)(xb + r * C, 1, C, b ? b + (i0 + r) * brs : NULL, brs, bcs,
                                          w ? w + (i0 + r) * wrs : NULL, wrs, wcs, op, res + i0 + r,
                                          sgn ? sgn + i0 + r : NULL, out ? out + (i0 + r) * C : NULL,
                                          E);
                B = 1.0;
                R = 0.0;
            }
            Bs[r] = B;
            Rs[r] = R;
        }
        /* the rows' logs, results and output factors (one vectorised loop
         * over the rows, the results stored after it) */
#pragma omp simd
        for (ptrdiff_t r = 0; r < nr; r++) {
            const double B = Bs[r], R = Rs[r], S = B + R, ratio = B != 0 ? R / B : 0.0;
            const int use1p = (B != 0) & (ratio > -0.5) & (ratio < INFINITY);
            kr[r] = use1p ? fabs(B) : fabs(S); /* log's argument */
            ls[r] = use1p ? ratio : 0.0;       /* log1p's */
        }
#pragma omp simd
        for (ptrdiff_t r = 0; r < nr; r++) {
            kr[r] = XENT_F(xent_log_)(kr[r]);
            ls[r] = XENT_F(xent_log1p_)(ls[r]);
        }
#pragma omp simd
        for (ptrdiff_t r = 0; r < nr; r++) {
            const double B = Bs[r], R = Rs[r], S = B + R, ratio = B != 0 ? R / B : 0.0;
            const int use1p = (B != 0) & (ratio > -0.5) & (ratio < INFINITY);
            const double log_s = kr[r] + (use1p ? ls[r] : 0.0);
            const double r_sgn = S > 0 ? 1.0 : S < 0 ? -1.0 : S == 0 ? 0.0 : NAN;
            double r_res = (double)rm[r] + log_s;
            r_res = (!sgn && r_sgn < 0) ? NAN : r_res;
            Rs[r] = r_sgn;
            Bs[r] = r_res;
            kr[r] = r_res != r_res ? NAN : 1.0 / S;
            ls[r] = log_s;
        }
        for (ptrdiff_t r = 0; r < nr; r++) {
            if (sp[r]) {
                kr[r] = ls[r] = 0.0;
                continue;
            }
            res[i0 + r] = (XENT_T)Bs[r];
            if (sgn)
                sgn[i0 + r] = (XENT_T)Rs[r];
        }
        if (!out)
            continue;
        XENT_T *ob = out + i0 * C;
        for (ptrdiff_t r = 0; r < nr; r++)
            for (ptrdiff_t j = 0; j < C; j++) {
                ke[r * C + j] = kr[r];
                le[r * C + j] = ls[r];
            }
        if (op == XENT_SCALED_LOG_SOFTMAX) {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++) {
                XENT_T v = (XENT_T)(((double)xb[k] - (double)mv[k]) - le[k]);
                v = wv[k] != 0 ? v : (XENT_T)-INFINITY;
                ob[k] = spv[k] ? ob[k] : v;
            }
        } else {
#pragma omp simd
            for (ptrdiff_t k = 0; k < len; k++) {
                XENT_T v = (XENT_T)((double)bv[k] * ke[k] * (double)ev[k]);
                v = wv[k] != 0 ? v : (XENT_T)0;
                ob[k] = spv[k] ? ob[k] : v;
            }
        }
    }
}
#undef XENT_SS

static void XENT_G(xent_scaled_)(const XENT_T *x, ptrdiff_t nrows, ptrdiff_t C, const XENT_T *b,
                                 ptrdiff_t brs, ptrdiff_t bcs, const uint8_t *w, ptrdiff_t wrs,
                                 ptrdiff_t wcs, int op, XENT_T *res, XENT_T *sgn, XENT_T *out,
                                 XENT_T *E)
{
    if (C > 0 && C < XENT_SCALED_SHORT)
        XENT_G(xent_scaled_short_)(x, nrows, C, b, brs, bcs, w, wrs, wcs, op, res, sgn, out, E);
    else
        XENT_G(xent_scaled_rows_)(x, nrows, C, b, brs, bcs, w, wrs, wcs, op, res, sgn, out, E);
}
#undef XENT_SCALED_SHORT
#undef XENT_SB

#undef XENT_BINARY_LOOP
#undef XENT_EB

#include "xent_class_typed.h"

#undef XENT_ACC
#undef XENT_G
