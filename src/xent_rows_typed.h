/* The typed row primitives: a template included by xent_rows_impl.h once per
 * floating type (and so once per type and instruction set), with
 *   XENT_T      the element type (float or double)
 *   XENT_TN     its name in function names (f32 or f64)
 *   XENT_EXP    the vectorisable exp for XENT_T
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

/* sum_j exp(x_j - m), in XENT_LANES float64 lanes; writes the exps to e
 * unless e is NULL (e may be x). The tail is padded with -inf (exp 0). */
static double XENT_G(xent_sumexp_)(const XENT_T *x, XENT_T *e, ptrdiff_t n, XENT_T m)
{
    double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0};
    XENT_T xin[XENT_LANES], v[XENT_LANES];
    for (ptrdiff_t j = 0; j < n; j += XENT_LANES) {
        ptrdiff_t len = n - j < XENT_LANES ? n - j : XENT_LANES;
        const XENT_T *src = x + j;
        if (len < XENT_LANES) {
            for (int l = 0; l < XENT_LANES; l++)
                xin[l] = l < len ? x[j + l] : -INFINITY;
            src = xin;
        }
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            v[l] = XENT_EXP(src[l] - m);
        if (e)
            memcpy(e + j, v, (size_t)len * sizeof(XENT_T));
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            XENT_ACC(acc[l], comp[l], v[l]);
    }
    double s = 0.0, c = 0.0;
    for (int l = 0; l < XENT_LANES; l++)
        XENT_ACC(s, c, acc[l] - comp[l]);
    return s;
}

/* e_j = e_j * k - c * w_j (w NULL: w_j = 1) */
static void XENT_G(xent_scale_sub_)(XENT_T *e, ptrdiff_t n, double k, double c, const double *w)
{
    if (w) {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (XENT_T)((double)e[j] * k - c * w[j]);
    } else {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (XENT_T)((double)e[j] * k - c);
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
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (XENT_T)((double)g[j] - (double)XENT_EXP(lp[j]) * total);
}

/* ---------------------------------------------- element-wise binary losses
 * Over n elements; pw (pos_weight), w (weight) and g (upstream gradient) are
 * read at pw[j], w[j * ws], g[j * gs_stride] (a stride of 0 repeats one
 * value); loss and grad are written per element unless NULL. Target mass is
 * smoothed as t' = t (1 - smooth) + smooth / 2. Returns the sum of the
 * element losses. Terms whose coefficient is 0 are 0 even where the logit or
 * log-probability is infinite (no 0 * inf). */

/* From logits: with e = exp(-|x|) and L = 1 + (pw - 1) t',
 *   loss = w * ((x >= 0 ? (1 - t') x : -pw t' x) + L log1p(e)),
 *   grad = gscale * g * w * (L sigmoid(x) - pw t'). */
static double XENT_G(xent_bce_logits_)(const XENT_T *x, const XENT_T *t, ptrdiff_t n,
                                       const double *pw, const XENT_T *w, ptrdiff_t ws,
                                       const XENT_T *g, ptrdiff_t gst, double gscale,
                                       double smooth, XENT_T *loss, XENT_T *grad)
{
    double total = 0.0;
#pragma omp simd reduction(+ : total)
    for (ptrdiff_t j = 0; j < n; j++) {
        double xj = x[j], tj = (double)t[j] * (1.0 - smooth) + 0.5 * smooth;
        double pwj = pw[j], wj = w[j * ws];
        double L = 1.0 + (pwj - 1.0) * tj;
        double ax = xj < 0 ? -xj : xj;
        double e = (double)XENT_EXP((XENT_T)-ax);
        double lin_c = xj >= 0 ? 1.0 - tj : -pwj * tj;
        double lin = lin_c == 0.0 ? 0.0 : lin_c * xj;
        double lj = wj * (lin + L * XENT_F(xent_log1p_)(e));
        total += lj;
        if (loss)
            loss[j] = (XENT_T)lj;
        if (grad) {
            double sig = xj >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            grad[j] = (XENT_T)(gscale * (double)g[j * gst] * wj * (L * sig - pwj * tj));
        }
    }
    return total;
}

/* From probabilities p clipped to [clip, 1 - clip]:
 *   loss = -w * (pw t' log p + (1 - t') log(1 - p)),
 *   grad = gscale * g * w * ((1 - t') / (1 - p) - pw t' / p), 0 where p was clipped. */
static double XENT_G(xent_bce_probs_)(const XENT_T *p, const XENT_T *t, ptrdiff_t n,
                                      const double *pw, const XENT_T *w, ptrdiff_t ws,
                                      const XENT_T *g, ptrdiff_t gst, double gscale,
                                      double smooth, double clip, XENT_T *loss, XENT_T *grad)
{
    double total = 0.0;
#pragma omp simd reduction(+ : total)
    for (ptrdiff_t j = 0; j < n; j++) {
        double pj = p[j], tj = (double)t[j] * (1.0 - smooth) + 0.5 * smooth;
        double pwj = pw[j], wj = w[j * ws];
        double pc = pj < clip ? clip : (pj > 1.0 - clip ? 1.0 - clip : pj);
        double pos_c = pwj * tj, neg_c = 1.0 - tj;
        double pos = pos_c == 0.0 ? 0.0 : pos_c * XENT_F(xent_log_)(pc);
        double neg = neg_c == 0.0 ? 0.0 : neg_c * XENT_F(xent_log1p_)(-pc);
        double lj = -wj * (pos + neg);
        total += lj;
        if (loss)
            loss[j] = (XENT_T)lj;
        if (grad) {
            double d = neg_c / (1.0 - pc) - pos_c / pc;
            grad[j] = (XENT_T)(pc == pj ? gscale * (double)g[j * gst] * wj * d : 0.0);
        }
    }
    return total;
}

/* ------------------------------------------------- the small-class path
 * For rows of few classes (C <= XENT_SMALL_C) the work of one row is too small
 * to vectorise along the row: these take a block of up to XENT_BLOCK rows,
 * transpose it into the workspace ws (ws[c * XENT_BLOCK + b] is class c of
 * row b) and vectorise across the rows instead.
 */

/* Stage 1: ws = exp(x - m) per row, m[b] the row maximum, s[b] the sum.
 * Rows nb..XENT_BLOCK-1 are padding. */
static void XENT_G(xent_block_sumexp_)(const XENT_T *x, ptrdiff_t nb, ptrdiff_t C, XENT_T *ws,
                                       XENT_T *m, double *s)
{
    double comp[XENT_BLOCK];
    if (nb == XENT_BLOCK) {
        for (ptrdiff_t c = 0; c < C; c++) {
#pragma omp simd
            for (int b = 0; b < XENT_BLOCK; b++)
                ws[c * XENT_BLOCK + b] = x[b * C + c];
        }
    } else {
        for (ptrdiff_t c = 0; c < C; c++)
            for (int b = 0; b < XENT_BLOCK; b++)
                ws[c * XENT_BLOCK + b] = b < nb ? x[b * C + c] : (XENT_T)0;
    }
    for (int b = 0; b < XENT_BLOCK; b++) {
        m[b] = -INFINITY;
        s[b] = 0.0;
        comp[b] = 0.0;
    }
    for (ptrdiff_t c = 0; c < C; c++) {
        const XENT_T *w = ws + c * XENT_BLOCK;
#pragma omp simd
        for (int b = 0; b < XENT_BLOCK; b++)
            m[b] = w[b] > m[b] ? w[b] : m[b];
    }
    for (ptrdiff_t c = 0; c < C; c++) {
        XENT_T *w = ws + c * XENT_BLOCK;
#pragma omp simd
        for (int b = 0; b < XENT_BLOCK; b++) {
            XENT_T v = XENT_EXP(w[b] - m[b]);
            w[b] = v;
            XENT_ACC(s[b], comp[b], v);
        }
    }
    for (int b = 0; b < XENT_BLOCK; b++)
        s[b] -= comp[b];
}

/* Stage 2: out[b, c] = ws[c, b] * k[b] - f[b] * u[c] (no offset if u is NULL),
 * for the nb real rows (out may be the block's x). */
static void XENT_G(xent_block_scale_)(XENT_T *ws, ptrdiff_t nb, ptrdiff_t C, const double *k,
                                      const double *f, const double *u, XENT_T *out)
{
    for (ptrdiff_t c = 0; c < C; c++) {
        XENT_T *w = ws + c * XENT_BLOCK;
        double uc = u ? u[c] : 0.0;
#pragma omp simd
        for (int b = 0; b < XENT_BLOCK; b++)
            w[b] = (XENT_T)((double)w[b] * k[b] - f[b] * uc);
    }
    for (ptrdiff_t b = 0; b < nb; b++) {
#pragma omp simd
        for (ptrdiff_t c = 0; c < C; c++)
            out[b * C + c] = ws[c * XENT_BLOCK + b];
    }
}

#undef XENT_ACC
#undef XENT_G
