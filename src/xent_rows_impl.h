/* Row primitives of xent, written once and compiled once per instruction set.
 *
 * xent_rows.h includes this file several times, each time with XENT_SFX set
 * to a name suffix and, on x86-64, with GCC/Clang told to target another ISA
 * (baseline SSE2, AVX2+FMA, AVX-512). Everything is plain C whose loops the
 * compiler vectorises for that ISA: `#pragma omp simd` gives it leave to
 * reorder the reductions (the only reassociation anywhere: no fast-math).
 *
 * exp is computed branch-free so that it vectorises: x = k ln2 + r with
 * |r| <= ln2/2 (Cody-Waite split of ln2), exp(r) by a polynomial, then the
 * scaling by 2^k done in two steps so that subnormal results are rounded
 * correctly and overflow gives +inf. NaN propagates, -inf gives 0.
 *
 * Sums of exps are accumulated in float64: plain lanes for float32 input,
 * Kahan-compensated lanes for float64 input.
 *
 * The typed primitives are written once, in xent_rows_typed.h, and included
 * here for float and for double.
 */

#define XENT_CAT2(a, b) a##b
#define XENT_CAT(a, b) XENT_CAT2(a, b)
#define XENT_F(name) XENT_CAT(name, XENT_SFX)

/* Lanes of the float64 accumulators: enough independent chains to hide the
 * add latency at every vector width. */
#define XENT_LANES 16

static inline float XENT_F(xent_expf_)(float x, float lo, float hi)
{
    /* clamp to [lo, hi] = [-104, 89] (NaN passes through both comparisons
     * unchanged; the bounds come from xent_expf_bounds, see xent_rows.h) */
    float xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    union { uint32_t u; float f; } kb;
    kb.f = xc * 1.44269504088896341f + magic; /* k + magic: k in its low bits */
    float fk = kb.f - magic;
    float r = (xc - fk * 0.693359375f) - fk * -2.12194440e-4f;
    /* exp(r) on |r| <= 0.3466: 1 + r + r^2 * P(r) */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * (r * r) + r) + 1.0f;
    /* 2^k as 2^k1 * 2^k2 with k1 = floor(k / 2), k2 = k - k1, each a normal
     * float, so that p * 2^k1 is exact and the one rounding is the last; the
     * integer k from the bits of k + magic (0x4B400000: the bits of magic),
     * all in integer arithmetic (no float-to-int conversion) */
    int32_t k = (int32_t)(kb.u - 0x4B400000u);
    int32_t k1 = k >> 1, k2 = k - k1;
    union { uint32_t u; float f; } s1, s2;
    s1.u = (uint32_t)(k1 + 127) << 23;
    s2.u = (uint32_t)(k2 + 127) << 23;
    return (p * s1.f) * s2.f;
}

static inline double XENT_F(xent_exp_)(double x, double lo, double hi)
{
    double xc = x < lo ? lo : x; /* [lo, hi] = [-746, 710] */
    xc = xc > hi ? hi : xc;
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

/* exp of one value (the table's exp_f32/exp_f64) */
static float XENT_F(xent_expf1_)(float x)
{
    return XENT_F(xent_expf_)(x, xent_expf_bounds[0], xent_expf_bounds[1]);
}

static double XENT_F(xent_exp1_)(double x)
{
    return XENT_F(xent_exp_)(x, xent_exp_bounds[0], xent_exp_bounds[1]);
}

/* log, branch-free so that it vectorises: x = 2^e * m with m in
 * [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.1716,
 * by its odd series (to t^21 in float64, t^9 in float32). Subnormal input is
 * scaled first; 0 gives -inf, +inf gives +inf, NaN and negative input NaN. */
static inline double XENT_F(xent_log_reduced_)(double m)
{
    /* log(m) for m in [sqrt(1/2), sqrt(2)) */
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
    return 2.0 * t + (2.0 * t) * (t2 * p);
}

static inline double XENT_F(xent_log_)(double x)
{
    union { double f; uint64_t u; } v, ev;
    int sub = x < 2.2250738585072014e-308;
    v.f = sub ? x * 4503599627370496.0 : x; /* * 2^52 */
    ev.u = UINT64_C(0x4330000000000000) | (v.u >> 52); /* 2^52 + biased exponent */
    double e = (ev.f - 4503599627370496.0) - (sub ? 1075.0 : 1023.0);
    v.u = (v.u & UINT64_C(0x000fffffffffffff)) | UINT64_C(0x3ff0000000000000);
    double m = v.f; /* in [1, 2) */
    int big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    e = big ? e + 1.0 : e;
    double log_m = XENT_F(xent_log_reduced_)(m);
    double r = e * 6.93147180369123816490e-01 + (e * 1.90821492927058770002e-10 + log_m);
    return x > 0.0 && x < INFINITY ? r : (x == 0.0 ? -INFINITY : (x == INFINITY ? x : NAN));
}

static inline float XENT_F(xent_logf_)(float x)
{
    /* float32: no division; log(1 + f) = f - f^2/2 + f^3 P(f) on
     * f = m - 1 in [sqrt(1/2) - 1, sqrt(2) - 1] (Cephes' logf polynomial) */
    union { float f; uint32_t u; } v, ev;
    int sub = x < 1.17549435e-38f;
    v.f = sub ? x * 8388608.0f : x; /* * 2^23 */
    ev.u = 0x4B000000u | (v.u >> 23); /* 2^23 + biased exponent */
    float e = (ev.f - 8388608.0f) - (sub ? 150.0f : 127.0f);
    v.u = (v.u & 0x007fffffu) | 0x3f800000u;
    float m = v.f;
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    float f = m - 1.0f, z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float y = p * f * z + e * -2.12194440e-4f - 0.5f * z;
    float r = (f + y) + e * 0.693359375f;
    return x > 0.0f && x < INFINITY ? r : (x == 0.0f ? -INFINITY : (x == INFINITY ? x : NAN));
}

/* log1p(x) for x in [-1, 1]: with u = 1 + x (rounded),
 * log1p(x) = log(u) + (x - (u - 1)) / u, the second term correcting the
 * rounding of u (so log1p(x) = x where u == 1); -inf at x = -1. */
static inline double XENT_F(xent_log1p_)(double x)
{
    double u = 1.0 + x;
    return x == -1.0 ? -INFINITY : XENT_F(xent_log_)(u) + (x - (u - 1.0)) / u;
}

static inline float XENT_F(xent_log1pf_)(float x)
{
    float u = 1.0f + x;
    return x == -1.0f ? -INFINITY : XENT_F(xent_logf_)(u) + (x - (u - 1.0f)) / u;
}

/* log1p(e) for e in [0, 1], as e = exp(-|x|) in the binary losses, given
 * r = 1 / u with u = 1 + e rounded.
 * float32: e * P(e), P a degree-8 fit of log1p(e) / e on [0, 1] at Chebyshev
 * nodes (at most 2.2 ulp, evaluated in float32; no reduction, r unused).
 * float64: u = 2^k m, k in {0, 1}, m in [sqrt(1/2), sqrt(2)), log(m) as in
 * xent_log_ but with no exponent bits to extract and no special values, plus
 * the correction (e - (u - 1)) / u of the rounding of u.
 * e = 0 gives 0; NaN propagates. */
static inline float XENT_F(xent_log1p_unitf_)(float e, float r)
{
    (void)r;
    float p = 5.253457929939032e-3f;
    p = p * e - 2.958850748836994e-2f;
    p = p * e + 7.836166769266129e-2f;
    p = p * e - 1.3674770295619965e-1f;
    p = p * e + 1.9111430644989014e-1f;
    p = p * e - 2.4844369292259216e-1f;
    p = p * e + 3.3319270610809326e-1f;
    p = p * e - 4.9999502301216125e-1f;
    return e + e * (p * e);
}

static inline double XENT_F(xent_log1p_unit_)(double e, double r)
{
    double u = 1.0 + e;
    int big = u > 1.4142135623730951;
    double m = big ? u * 0.5 : u;
    double log_m = XENT_F(xent_log_reduced_)(m);
    double lo = big ? 1.90821492927058770002e-10 : 0.0, hi = big ? 6.93147180369123816490e-01 : 0.0;
    return hi + (lo + log_m + (e - (u - 1.0)) * r);
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

/* The row primitives for each floating type, from one template. */
#define XENT_T float
#define XENT_TN f32
#define XENT_EXP(x) XENT_F(xent_expf_)((x), xent_lo_, xent_hi_)
#define XENT_EXP_BOUNDS const float xent_lo_ = xent_expf_bounds[0], xent_hi_ = xent_expf_bounds[1]
#define XENT_LOG XENT_F(xent_logf_)
#define XENT_LOG1P XENT_F(xent_log1pf_)
#define XENT_LOG1P_UNIT XENT_F(xent_log1p_unitf_)
#define XENT_KAHAN 0
#include "xent_rows_typed.h"
#undef XENT_T
#undef XENT_TN
#undef XENT_EXP
#undef XENT_EXP_BOUNDS
#undef XENT_LOG
#undef XENT_LOG1P
#undef XENT_LOG1P_UNIT
#undef XENT_KAHAN

#define XENT_T double
#define XENT_TN f64
#define XENT_EXP(x) XENT_F(xent_exp_)((x), xent_lo_, xent_hi_)
#define XENT_EXP_BOUNDS const double xent_lo_ = xent_exp_bounds[0], xent_hi_ = xent_exp_bounds[1]
#define XENT_LOG XENT_F(xent_log_)
#define XENT_LOG1P XENT_F(xent_log1p_)
#define XENT_LOG1P_UNIT XENT_F(xent_log1p_unit_)
#define XENT_KAHAN 1
#include "xent_rows_typed.h"
#undef XENT_T
#undef XENT_TN
#undef XENT_EXP
#undef XENT_EXP_BOUNDS
#undef XENT_LOG
#undef XENT_LOG1P
#undef XENT_LOG1P_UNIT
#undef XENT_KAHAN

/* the table of this ISA's functions */
static const xent_row_ops XENT_F(xent_ops_) = {
    XENT_ISA_NAME,
    XENT_F(xent_max_f32_), XENT_F(xent_sumexp_f32_), XENT_F(xent_scale_f32_),
    XENT_F(xent_scale_sub_f32_), XENT_F(xent_shift_f32_), XENT_F(xent_sum_f32_),
    XENT_F(xent_dot_f32_), XENT_F(xent_softmax_vjp_f32_), XENT_F(xent_log_softmax_vjp_f32_),
    XENT_F(xent_expf1_),
    XENT_F(xent_max_f64_), XENT_F(xent_sumexp_f64_), XENT_F(xent_scale_f64_),
    XENT_F(xent_scale_sub_f64_), XENT_F(xent_shift_f64_), XENT_F(xent_sum_f64_),
    XENT_F(xent_dot_f64_), XENT_F(xent_softmax_vjp_f64_), XENT_F(xent_log_softmax_vjp_f64_),
    XENT_F(xent_exp1_),
    XENT_F(xent_block_sumexp_f32_), XENT_F(xent_block_scale_f32_),
    XENT_F(xent_block_sumexp_f64_), XENT_F(xent_block_scale_f64_),
    XENT_F(xent_block_labels_f32_), XENT_F(xent_block_labels_f64_),
    XENT_F(xent_block_losses_), XENT_F(xent_log_),
    XENT_F(xent_bce_logits_f32_), XENT_F(xent_bce_logits_f64_),
    XENT_F(xent_bce_probs_f32_), XENT_F(xent_bce_probs_f64_),
};

#undef XENT_F
#undef XENT_CAT
#undef XENT_CAT2
#undef XENT_LANES
