/* Row primitives of xent, written once and compiled once per instruction set.
 *
 * xent_rows.h includes this file several times, each time with XENT_SFX set
 * to a name suffix and, on x86-64, with GCC/Clang told to target another ISA
 * (baseline SSE2, AVX2+FMA, AVX-512). Everything is plain C whose loops the
 * compiler vectorises for that ISA: `#pragma omp simd` gives it leave to
 * reorder the reductions (the only reassociation anywhere: no -ffast-math).
 *
 * exp is computed branch-free so that it vectorises: x = k ln2 + r with
 * |r| <= ln2/2 (Cody-Waite split of ln2), exp(r) by a polynomial, then the
 * scaling by 2^k done in two steps so that subnormal results are rounded
 * correctly and overflow gives +inf. NaN propagates, -inf gives 0.
 *
 * Sums of exps are accumulated in float64: plain lanes for float32 input,
 * Kahan-compensated lanes for float64 input.
 */

#define XENT_CAT2(a, b) a##b
#define XENT_CAT(a, b) XENT_CAT2(a, b)
#define XENT_F(name) XENT_CAT(name, XENT_SFX)

/* Lanes of the float64 accumulators: enough independent chains to hide the
 * add latency at every vector width. */
#define XENT_LANES 16

static inline float XENT_F(xent_expf_)(float x)
{
    /* clamp (NaN passes through both comparisons unchanged) */
    float xc = x < -104.0f ? -104.0f : x;
    xc = xc > 89.0f ? 89.0f : xc;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float fk = (xc * 1.44269504088896341f + magic) - magic;
    float r = (xc - fk * 0.693359375f) - fk * -2.12194440e-4f;
    /* exp(r) on |r| <= 0.3466: 1 + r + r^2 * P(r) */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * (r * r) + r) + 1.0f;
    /* 2^k as 2^k1 * 2^k2, each a normal float */
    float fk1 = (fk * 0.5f + magic) - magic;
    float fk2 = fk - fk1;
    /* integer k from the bits of k + magic (no float-to-int conversion) */
    union { uint32_t u; float f; } s1, s2;
    s1.f = fk1 + magic;
    s2.f = fk2 + magic;
    s1.u = (s1.u - 0x4B400000u + 127) << 23; /* 0x4B400000: the bits of magic */
    s2.u = (s2.u - 0x4B400000u + 127) << 23;
    return (p * s1.f) * s2.f;
}

static inline double XENT_F(xent_exp_)(double x)
{
    double xc = x < -746.0 ? -746.0 : x;
    xc = xc > 710.0 ? 710.0 : xc;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double fk = (xc * 1.4426950408889634074 + magic) - magic;
    /* ln2 = hi + lo with hi's low bits zero, so fk * hi is exact */
    double r = (xc - fk * 6.93147180369123816490e-01) - fk * 1.90821492927058770002e-10;
    /* exp(r) on |r| <= 0.3466 by its Taylor polynomial of degree 13 */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = (p * (r * r) + r) + 1.0;
    double fk1 = (fk * 0.5 + magic) - magic;
    double fk2 = fk - fk1;
    /* integer k from the bits of k + magic: only 64-bit add and shift */
    union { uint64_t u; double f; } s1, s2;
    s1.f = fk1 + magic;
    s2.f = fk2 + magic;
    s1.u = (s1.u - UINT64_C(0x4338000000000000) + 1023) << 52; /* bits of magic */
    s2.u = (s2.u - UINT64_C(0x4338000000000000) + 1023) << 52;
    return (p * s1.f) * s2.f;
}

/* log for the per-row sums (float64), branch-free so that it vectorises across
 * rows: x = 2^e * m with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(t) with
 * t = (m - 1) / (m + 1), |t| <= 0.1716, by its series to t^21. Exact results
 * for 0 (-inf), +inf, NaN and negative input (NaN); not meant for subnormal
 * input (the sums it takes are 0 or >= 1). */
static inline double XENT_F(xent_log_)(double x)
{
    union { double f; uint64_t u; } v, ev;
    v.f = x;
    ev.u = UINT64_C(0x4330000000000000) | (v.u >> 52); /* 2^52 + biased exponent */
    double e = (ev.f - 4503599627370496.0) - 1023.0;
    v.u = (v.u & UINT64_C(0x000fffffffffffff)) | UINT64_C(0x3ff0000000000000);
    double m = v.f; /* in [1, 2) */
    int big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    e = big ? e + 1.0 : e;
    double t = (m - 1.0) / (m + 1.0), t2 = t * t;
    double p = 1.0 / 21;
    p = p * t2 + 1.0 / 19;
    p = p * t2 + 1.0 / 17;
    p = p * t2 + 1.0 / 15;
    p = p * t2 + 1.0 / 13;
    p = p * t2 + 1.0 / 11;
    p = p * t2 + 1.0 / 9;
    p = p * t2 + 1.0 / 7;
    p = p * t2 + 1.0 / 5;
    p = p * t2 + 1.0 / 3;
    double log_m = 2.0 * t + (2.0 * t) * (t2 * p);
    double r = e * 6.93147180369123816490e-01 + (e * 1.90821492927058770002e-10 + log_m);
    return x > 0.0 && x < INFINITY ? r : (x == 0.0 ? -INFINITY : (x == INFINITY ? x : NAN));
}

/* The per-row loss terms of a block of the small-class path (see
 * src/cross_entropy.pyx): with log_s = log(s), lse = m + log_s,
 *   loss = sw * (a * log_s - shifted + z * lse^2),  k = f * (a + 2 z lse) / s. */
static void XENT_F(xent_block_losses_)(const double *m, const double *s, const double *a,
                                       const double *shifted, const double *sw, const double *f,
                                       double z, double *k, double *loss)
{
    if (z != 0.0) {
#pragma omp simd
        for (int b = 0; b < XENT_BLOCK; b++) {
            double log_s = XENT_F(xent_log_)(s[b]), lse = m[b] + log_s;
            k[b] = f[b] * (a[b] + 2.0 * z * lse) / s[b];
            loss[b] = sw[b] * (a[b] * log_s - shifted[b] + z * lse * lse);
        }
    } else {
#pragma omp simd
        for (int b = 0; b < XENT_BLOCK; b++) {
            double log_s = XENT_F(xent_log_)(s[b]);
            k[b] = f[b] * a[b] / s[b];
            loss[b] = sw[b] * (a[b] * log_s - shifted[b]);
        }
    }
}

/* ---------------------------------------------------------------- float32 */

static float XENT_F(xent_max_f32_)(const float *x, ptrdiff_t n)
{
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (ptrdiff_t j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* sum_j exp(x_j - m); writes the exps to e unless e is NULL (e may be x). */
static double XENT_F(xent_sumexp_f32_)(const float *x, float *e, ptrdiff_t n, float m)
{
    double acc[XENT_LANES] = {0};
    ptrdiff_t j = 0;
    for (; j + XENT_LANES <= n; j += XENT_LANES) {
        float v[XENT_LANES];
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            v[l] = XENT_F(xent_expf_)(x[j + l] - m);
        if (e)
            memcpy(e + j, v, sizeof v);
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            acc[l] += v[l];
    }
    if (j < n) { /* the tail, padded with -inf (whose exp is 0) to a full block */
        ptrdiff_t rest = n - j;
        float xin[XENT_LANES], v[XENT_LANES];
        for (int l = 0; l < XENT_LANES; l++)
            xin[l] = l < rest ? x[j + l] : -INFINITY;
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            v[l] = XENT_F(xent_expf_)(xin[l] - m);
        if (e)
            memcpy(e + j, v, (size_t)rest * sizeof(float));
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            acc[l] += v[l];
    }
    double s = 0.0;
    for (int l = 0; l < XENT_LANES; l++)
        s += acc[l];
    return s;
}

/* e_j = e_j * k (in float64) */
static void XENT_F(xent_scale_f32_)(float *e, ptrdiff_t n, double k)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        e[j] = (float)((double)e[j] * k);
}

/* e_j = e_j * k - c * w_j  (w NULL: all w_j = 1) */
static void XENT_F(xent_scale_sub_f32_)(float *e, ptrdiff_t n, double k, double c, const double *w)
{
    if (w) {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (float)((double)e[j] * k - c * w[j]);
    } else {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = (float)((double)e[j] * k - c);
    }
}

/* out_j = (x_j - m) - log_s  (out may be x) */
static void XENT_F(xent_shift_f32_)(const float *x, float *out, ptrdiff_t n, double m, double log_s)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (float)(((double)x[j] - m) - log_s);
}

static double XENT_F(xent_sum_f32_)(const float *x, ptrdiff_t n)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++)
        s += x[j];
    return s;
}

static double XENT_F(xent_dot_f32_)(const float *a, const float *b, ptrdiff_t n)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++)
        s += (double)a[j] * b[j];
    return s;
}

/* out_j = p_j * (g_j - dot)  (out may be p or g) */
static void XENT_F(xent_softmax_vjp_f32_)(const float *p, const float *g, float *out, ptrdiff_t n, double dot)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (float)((double)p[j] * ((double)g[j] - dot));
}

/* out_j = g_j - exp(lp_j) * total  (out may be lp or g) */
static void XENT_F(xent_log_softmax_vjp_f32_)(const float *lp, const float *g, float *out, ptrdiff_t n, double total)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (float)((double)g[j] - (double)XENT_F(xent_expf_)(lp[j]) * total);
}

/* ---------------------------------------------------------------- float64 */

static double XENT_F(xent_max_f64_)(const double *x, ptrdiff_t n)
{
    double m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (ptrdiff_t j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

static double XENT_F(xent_sumexp_f64_)(const double *x, double *e, ptrdiff_t n, double m)
{
    /* Kahan-compensated lanes */
    double acc[XENT_LANES] = {0}, comp[XENT_LANES] = {0};
    ptrdiff_t j = 0;
    for (; j + XENT_LANES <= n; j += XENT_LANES) {
        double v[XENT_LANES];
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            v[l] = XENT_F(xent_exp_)(x[j + l] - m);
        if (e)
            memcpy(e + j, v, sizeof v);
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++) {
            double y = v[l] - comp[l];
            double t = acc[l] + y;
            comp[l] = (t - acc[l]) - y;
            acc[l] = t;
        }
    }
    if (j < n) { /* the tail, padded with -inf (whose exp is 0) to a full block */
        ptrdiff_t rest = n - j;
        double xin[XENT_LANES], v[XENT_LANES];
        for (int l = 0; l < XENT_LANES; l++)
            xin[l] = l < rest ? x[j + l] : -INFINITY;
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++)
            v[l] = XENT_F(xent_exp_)(xin[l] - m);
        if (e)
            memcpy(e + j, v, (size_t)rest * sizeof(double));
#pragma omp simd
        for (int l = 0; l < XENT_LANES; l++) {
            double y = v[l] - comp[l];
            double t = acc[l] + y;
            comp[l] = (t - acc[l]) - y;
            acc[l] = t;
        }
    }
    double s = 0.0, c = 0.0;
    for (int l = 0; l < XENT_LANES; l++) {
        double y = (acc[l] - comp[l]) - c, t = s + y;
        c = (t - s) - y;
        s = t;
    }
    return s;
}

static void XENT_F(xent_scale_f64_)(double *e, ptrdiff_t n, double k)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        e[j] = e[j] * k;
}

static void XENT_F(xent_scale_sub_f64_)(double *e, ptrdiff_t n, double k, double c, const double *w)
{
    if (w) {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = e[j] * k - c * w[j];
    } else {
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++)
            e[j] = e[j] * k - c;
    }
}

static void XENT_F(xent_shift_f64_)(const double *x, double *out, ptrdiff_t n, double m, double log_s)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = (x[j] - m) - log_s;
}

static double XENT_F(xent_sum_f64_)(const double *x, ptrdiff_t n)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++)
        s += x[j];
    return s;
}

static double XENT_F(xent_dot_f64_)(const double *a, const double *b, ptrdiff_t n)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (ptrdiff_t j = 0; j < n; j++)
        s += a[j] * b[j];
    return s;
}

static void XENT_F(xent_softmax_vjp_f64_)(const double *p, const double *g, double *out, ptrdiff_t n, double dot)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = p[j] * (g[j] - dot);
}

static void XENT_F(xent_log_softmax_vjp_f64_)(const double *lp, const double *g, double *out, ptrdiff_t n, double total)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++)
        out[j] = g[j] - XENT_F(xent_exp_)(lp[j]) * total;
}

/* ------------------------------------------------- the small-class path
 * For rows of few classes (C <= XENT_SMALL_C) the per-row work is too small to
 * vectorise along the row: these functions take a block of up to
 * XENT_BLOCK rows, transpose it into the workspace ws (ws[c * XENT_BLOCK + b]
 * is class c of row b) and vectorise across the rows instead.
 */

/* Stage 1: ws = exp(x - m) per row, m[b] the row maximum, s[b] the sum
 * (float64; Kahan lanes for float64). Rows nb..XENT_BLOCK-1 are padding. */
#define XENT_DEFINE_BLOCK(T, SFX, EXP, KAHAN)                                              \
    static void XENT_F(xent_block_sumexp_##SFX##_)(const T *x, ptrdiff_t nb, ptrdiff_t C, \
                                                   T *ws, T *m, double *s)                 \
    {                                                                                      \
        double comp[XENT_BLOCK];                                                           \
        ptrdiff_t b0 = 0;                                                                  \
        if (nb == XENT_BLOCK) {                                                            \
            for (ptrdiff_t c = 0; c < C; c++) {                                            \
                _Pragma("omp simd")                                                        \
                for (int b = 0; b < XENT_BLOCK; b++)                                       \
                    ws[c * XENT_BLOCK + b] = x[b * C + c];                                 \
            }                                                                              \
        } else {                                                                           \
            for (; b0 < nb; b0++)                                                          \
                for (ptrdiff_t c = 0; c < C; c++)                                          \
                    ws[c * XENT_BLOCK + b0] = x[b0 * C + c];                               \
            for (ptrdiff_t c = 0; c < C; c++)                                              \
                for (int b = (int)b0; b < XENT_BLOCK; b++)                                 \
                    ws[c * XENT_BLOCK + b] = (T)0;                                         \
        }                                                                                  \
        for (int b = 0; b < XENT_BLOCK; b++) {                                             \
            m[b] = -INFINITY;                                                              \
            s[b] = 0.0;                                                                    \
            comp[b] = 0.0;                                                                 \
        }                                                                                  \
        for (ptrdiff_t c = 0; c < C; c++) {                                                \
            const T *w = ws + c * XENT_BLOCK;                                              \
            _Pragma("omp simd")                                                            \
            for (int b = 0; b < XENT_BLOCK; b++)                                           \
                m[b] = w[b] > m[b] ? w[b] : m[b];                                          \
        }                                                                                  \
        for (ptrdiff_t c = 0; c < C; c++) {                                                \
            T *w = ws + c * XENT_BLOCK;                                                    \
            _Pragma("omp simd")                                                            \
            for (int b = 0; b < XENT_BLOCK; b++) {                                         \
                T v = EXP(w[b] - m[b]);                                                    \
                w[b] = v;                                                                  \
                if (KAHAN) {                                                               \
                    double y = v - comp[b], t = s[b] + y;                                  \
                    comp[b] = (t - s[b]) - y;                                              \
                    s[b] = t;                                                              \
                } else {                                                                   \
                    s[b] += v;                                                             \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    /* Stage 2: out[b, c] = ws[c, b] * k[b] - f[b] * u[c] (no offset if u is NULL),        \
     * computed in float64, for the nb real rows (out may be x). */                        \
    static void XENT_F(xent_block_scale_##SFX##_)(T *ws, ptrdiff_t nb, ptrdiff_t C,        \
                                                  const double *k, const double *f,        \
                                                  const double *u, T *out)                 \
    {                                                                                      \
        for (ptrdiff_t c = 0; c < C; c++) {                                                \
            T *w = ws + c * XENT_BLOCK;                                                    \
            double uc = u ? u[c] : 0.0;                                                    \
            _Pragma("omp simd")                                                            \
            for (int b = 0; b < XENT_BLOCK; b++)                                           \
                w[b] = (T)((double)w[b] * k[b] - f[b] * uc);                               \
        }                                                                                  \
        for (ptrdiff_t b = 0; b < nb; b++) {                                               \
            _Pragma("omp simd")                                                            \
            for (ptrdiff_t c = 0; c < C; c++)                                              \
                out[b * C + c] = ws[c * XENT_BLOCK + b];                                   \
        }                                                                                  \
    }

XENT_DEFINE_BLOCK(float, f32, XENT_F(xent_expf_), 0)
XENT_DEFINE_BLOCK(double, f64, XENT_F(xent_exp_), 1)
#undef XENT_DEFINE_BLOCK

/* the table of this ISA's functions */
static const xent_row_ops XENT_F(xent_ops_) = {
    XENT_ISA_NAME,
    XENT_F(xent_max_f32_), XENT_F(xent_sumexp_f32_), XENT_F(xent_scale_f32_),
    XENT_F(xent_scale_sub_f32_), XENT_F(xent_shift_f32_), XENT_F(xent_sum_f32_),
    XENT_F(xent_dot_f32_), XENT_F(xent_softmax_vjp_f32_), XENT_F(xent_log_softmax_vjp_f32_),
    XENT_F(xent_expf_),
    XENT_F(xent_max_f64_), XENT_F(xent_sumexp_f64_), XENT_F(xent_scale_f64_),
    XENT_F(xent_scale_sub_f64_), XENT_F(xent_shift_f64_), XENT_F(xent_sum_f64_),
    XENT_F(xent_dot_f64_), XENT_F(xent_softmax_vjp_f64_), XENT_F(xent_log_softmax_vjp_f64_),
    XENT_F(xent_exp_),
    XENT_F(xent_block_sumexp_f32_), XENT_F(xent_block_scale_f32_),
    XENT_F(xent_block_sumexp_f64_), XENT_F(xent_block_scale_f64_),
    XENT_F(xent_block_losses_), XENT_F(xent_log_),
};

#undef XENT_F
#undef XENT_CAT
#undef XENT_CAT2
#undef XENT_LANES
