/* Row primitives of xent, written once and compiled once per instruction set.
 *
 * src/xent_isa.c includes this file once per instruction set, with XENT_SFX
 * set to a name suffix and the compiler flags of that ISA (baseline SSE2,
 * AVX2+FMA, AVX-512). Everything is plain C whose loops the compiler
 * vectorises for that ISA: `#pragma omp simd` gives it leave to
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

/* Fused multiply-adds where the instruction set has them: the polynomials
 * below are written with them, and nothing else is fused (setup.py compiles
 * with -ffp-contract=off), so that every path of an instruction set rounds a
 * formula the same way: the row, streamed and block paths give the same
 * bits. */
#if defined(__FMA__)
#define XENT_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define XENT_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define XENT_FMAF(a, b, c) ((a) * (b) + (c))
#define XENT_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* the scalar math below is inlined into the vectorised loops that call it */
#ifndef XENT_MATH
#if defined(__GNUC__)
#define XENT_MATH __attribute__((always_inline))
#else
#define XENT_MATH
#endif
#endif

static inline XENT_MATH float XENT_F(xent_expf_)(float x, float lo, float hi)
{
    /* clamp to [lo, hi] = [-104, 89] (NaN passes through both comparisons
     * unchanged; the bounds come from xent_expf_bounds, see xent_rows.h);
     * below lo the result is 0 (as exp(lo) rounds), computed from 0 instead:
     * the subnormal steps of exp(lo) would cost a microcode assist each,
     * and logits masked with -inf are common */
    const int under = x < lo;
    float xc = under ? 0.0f : x;
    xc = xc > hi ? hi : xc;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    union { uint32_t u; float f; } kb;
    kb.f = XENT_FMAF(xc, 1.44269504088896341f, magic); /* k + magic: k in its low bits */
    float fk = kb.f - magic;
    float r = XENT_FMAF(fk, 2.12194440e-4f, XENT_FMAF(fk, -0.693359375f, xc));
    /* exp(r) on |r| <= 0.3466: 1 + r + r^2 * P(r) */
    float p = 1.9875691500e-4f;
    p = XENT_FMAF(p, r, 1.3981999507e-3f);
    p = XENT_FMAF(p, r, 8.3334519073e-3f);
    p = XENT_FMAF(p, r, 4.1665795894e-2f);
    p = XENT_FMAF(p, r, 1.6666665459e-1f);
    p = XENT_FMAF(p, r, 5.0000001201e-1f);
    p = XENT_FMAF(p, r * r, r) + 1.0f;
    /* 2^k as 2^k1 * 2^k2 with k1 = floor(k / 2), k2 = k - k1, each a normal
     * float, so that p * 2^k1 is exact and the one rounding is the last; the
     * integer k from the bits of k + magic (0x4B400000: the bits of magic),
     * all in integer arithmetic (no float-to-int conversion) */
    int32_t k = (int32_t)(kb.u - 0x4B400000u);
    int32_t k1 = k >> 1, k2 = k - k1;
    union { uint32_t u; float f; } s1, s2;
    s1.u = (uint32_t)(k1 + 127) << 23;
    s2.u = (uint32_t)(k2 + 127) << 23;
    return under ? 0.0f : (p * s1.f) * s2.f;
}

static inline XENT_MATH double XENT_F(xent_exp_)(double x, double lo, double hi)
{
    /* [lo, hi] = [-746, 710] (unlike xent_expf_, below lo the clamped
     * value's subnormal exp is computed, rounding to 0: the select that
     * would avoid it kept GCC from vectorising the focal terms' loops) */
    double xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double fk = XENT_FMA(xc, 1.4426950408889634074, magic) - magic;
    /* ln2 = hi + lo with hi's low bits zero, so fk * hi is exact */
    double r = XENT_FMA(fk, -1.90821492927058770002e-10, XENT_FMA(fk, -6.93147180369123816490e-01, xc));
    /* exp(r) on |r| <= 0.3466 by its Taylor polynomial of degree 13,
     * 1 + r + r^2 q(r), q of degree 11 by Estrin's scheme (pairs, then
     * powers r^2, r^4, r^8: a third of Horner's latency, so that a row's
     * exps overlap) */
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double a0 = XENT_FMA(r, 1.0 / 6.0, 0.5), a1 = XENT_FMA(r, 1.0 / 120.0, 1.0 / 24.0);
    double a2 = XENT_FMA(r, 1.0 / 5040.0, 1.0 / 720.0), a3 = XENT_FMA(r, 1.0 / 362880.0, 1.0 / 40320.0);
    double a4 = XENT_FMA(r, 1.0 / 39916800.0, 1.0 / 3628800.0);
    double a5 = XENT_FMA(r, 1.0 / 6227020800.0, 1.0 / 479001600.0);
    double b0 = XENT_FMA(r2, a1, a0), b1 = XENT_FMA(r2, a3, a2), b2 = XENT_FMA(r2, a5, a4);
    double p = XENT_FMA(r8, b2, XENT_FMA(r4, b1, b0));
    p = XENT_FMA(p, r2, r) + 1.0;
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

/* exp of one value (the ops exp_f32/exp_f64) */
static float XENT_F(xent_exp_f32_)(float x)
{
    return XENT_F(xent_expf_)(x, xent_expf_bounds[0], xent_expf_bounds[1]);
}

static double XENT_F(xent_exp_f64_)(double x)
{
    return XENT_F(xent_exp_)(x, xent_exp_bounds[0], xent_exp_bounds[1]);
}

/* log, branch-free so that it vectorises: x = 2^e * m with m in
 * [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.1716,
 * by its odd series (to t^21 in float64, t^9 in float32). Subnormal input is
 * scaled first; 0 gives -inf, +inf gives +inf, NaN and negative input NaN. */
static inline XENT_MATH double XENT_F(xent_log_reduced_)(double m)
{
    /* log(m) for m in [sqrt(1/2), sqrt(2)) */
    double t = (m - 1.0) / (m + 1.0), t2 = t * t;
    /* p = sum_i t2^i / (2i + 3), i <= 9, by Estrin's scheme (a third of
     * Horner's latency: the small-class path waits on it) */
    double t4 = t2 * t2, t8 = t4 * t4;
    double q0 = XENT_FMA(t2, 1.0 / 5, 1.0 / 3), q1 = XENT_FMA(t2, 1.0 / 9, 1.0 / 7);
    double q2 = XENT_FMA(t2, 1.0 / 13, 1.0 / 11), q3 = XENT_FMA(t2, 1.0 / 17, 1.0 / 15);
    double q4 = XENT_FMA(t2, 1.0 / 21, 1.0 / 19);
    double p = XENT_FMA(t8, XENT_FMA(t8, q4, XENT_FMA(t4, q3, q2)), XENT_FMA(t4, q1, q0));
    return XENT_FMA(2.0 * t, t2 * p, 2.0 * t);
}

static inline XENT_MATH double XENT_F(xent_log_)(double x)
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
    double r = XENT_FMA(e, 6.93147180369123816490e-01, XENT_FMA(e, 1.90821492927058770002e-10, log_m));
    return x > 0.0 && x < INFINITY ? r : (x == 0.0 ? -INFINITY : (x == INFINITY ? x : NAN));
}

static inline XENT_MATH float XENT_F(xent_logf_)(float x)
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
    p = XENT_FMAF(p, f, -1.1514610310e-1f);
    p = XENT_FMAF(p, f, 1.1676998740e-1f);
    p = XENT_FMAF(p, f, -1.2420140846e-1f);
    p = XENT_FMAF(p, f, 1.4249322787e-1f);
    p = XENT_FMAF(p, f, -1.6668057665e-1f);
    p = XENT_FMAF(p, f, 2.0000714765e-1f);
    p = XENT_FMAF(p, f, -2.4999993993e-1f);
    p = XENT_FMAF(p, f, 3.3333331174e-1f);
    float y = p * f * z + e * -2.12194440e-4f - 0.5f * z;
    float r = (f + y) + e * 0.693359375f;
    return x > 0.0f && x < INFINITY ? r : (x == 0.0f ? -INFINITY : (x == INFINITY ? x : NAN));
}

/* log1p(x) for x in [-1, 1]: with u = 1 + x (rounded),
 * log1p(x) = log(u) + (x - (u - 1)) / u, the second term correcting the
 * rounding of u (so log1p(x) = x where u == 1); -inf at x = -1. */
static inline XENT_MATH double XENT_F(xent_log1p_)(double x)
{
    double u = 1.0 + x;
    return x == -1.0 ? -INFINITY : XENT_F(xent_log_)(u) + (x - (u - 1.0)) / u;
}

static inline XENT_MATH float XENT_F(xent_log1pf_)(float x)
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
static inline XENT_MATH float XENT_F(xent_log1p_unitf_)(float e, float r)
{
    (void)r;
    float p = 5.253457929939032e-3f;
    p = XENT_FMAF(p, e, -2.958850748836994e-2f);
    p = XENT_FMAF(p, e, 7.836166769266129e-2f);
    p = XENT_FMAF(p, e, -1.3674770295619965e-1f);
    p = XENT_FMAF(p, e, 1.9111430644989014e-1f);
    p = XENT_FMAF(p, e, -2.4844369292259216e-1f);
    p = XENT_FMAF(p, e, 3.3319270610809326e-1f);
    p = XENT_FMAF(p, e, -4.9999502301216125e-1f);
    return XENT_FMAF(e, p * e, e); /* (fused as the AVX-512 BCE loop's) */
}

static inline XENT_MATH double XENT_F(xent_log1p_unit_)(double e, double r)
{
    double u = 1.0 + e;
    int big = u > 1.4142135623730951;
    double m = big ? u * 0.5 : u;
    double log_m = XENT_F(xent_log_reduced_)(m);
    double lo = big ? 1.90821492927058770002e-10 : 0.0, hi = big ? 6.93147180369123816490e-01 : 0.0;
    return hi + (lo + log_m + (e - (u - 1.0)) * r);
}

/* tanh, branch-free so that it vectorises (Cephes' method): for |x| < 0.625
 * the odd polynomial (float32) or rational function (float64) in x^2; above,
 * 1 - 2 / (exp(2|x|) + 1) with the sign of x (exp's clamp makes +-inf give
 * +-1). NaN propagates. For the softcap of the cross-entropy, c tanh(x / c). */
static inline XENT_MATH float XENT_F(xent_tanhf_)(float x, float lo, float hi)
{
    float ax = x < 0 ? -x : x, z = x * x;
    float p = -5.70498872745e-3f;
    p = XENT_FMAF(p, z, 2.06390887954e-2f);
    p = XENT_FMAF(p, z, -5.37397155531e-2f);
    p = XENT_FMAF(p, z, 1.33314422036e-1f);
    p = XENT_FMAF(p, z, -3.33332819422e-1f);
    float small = p * z * x + x;
    float e = XENT_F(xent_expf_)(ax + ax, lo, hi);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

static inline XENT_MATH double XENT_F(xent_tanh_)(double x, double lo, double hi)
{
    double ax = x < 0 ? -x : x, z = x * x;
    double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3;
    double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3;
    double small = x + x * (z * (p / q));
    double e = XENT_F(xent_exp_)(ax + ax, lo, hi);
    double big = 1.0 - 2.0 / (e + 1.0);
    big = x < 0 ? -big : big;
    return ax < 0.625 ? small : big;
}

/* The loss of a softmax cross-entropy row, and in k the factor of its exps
 * in the gradient: from the row max m, its sum of exps s, log_s = log(s)
 * (xent_log_s_), the target mass A = sum_j a_j and target sum
 * T = sum_j a_j (x_j - m), the sample weight sw, the gradient factor f (the
 * upstream scale times sw) and the z-loss z:
 *     loss = sw (A log_s - T + z lse^2),  k = f (A + 2 z lse) / s,
 * lse = m + log_s; the gradient is then g_j = k e_j - f a_j. A sample of
 * weight 0 counts for nothing, whatever its logits (no 0 * inf). Every path
 * of every instruction set takes its terms from here. */
static inline XENT_MATH double XENT_F(xent_ce_terms_)(double m, double s, double log_s, double A, double T,
                                            double sw, double f, double z, double *k)
{
    /* (branch-free, for the loops over a block's rows; the z terms are
     * selected away when z == 0: no 0 * inf for an infinite lse) */
    double lse = m + log_s;
    double zk = z == 0 ? 0.0 : 2.0 * z * lse, zl = z == 0 ? 0.0 : z * lse * lse;
    double kk = f * (A + zk) / s, loss = sw * ((A * log_s - T) + zl);
    *k = sw == 0 ? 0.0 : kk;
    return sw == 0 ? 0.0 : loss;
}

/* The softmax focal loss's terms (Lin et al. 2017) of a class of softmax p
 * and lp = log p, from the powers w = (1 - p)^gamma and w1 = (1 - p)^(gamma-1)
 * and the class factor a (alpha times the target mass):
 *     loss = a w (-lp),
 *     D = gamma w1 p lp - w,
 * returns the loss and in *ad = a D; the row's gradient is then
 * f (a_j D_j - p_j sum_c a_c D_c). A term with a zero factor a or w is 0
 * (no 0 * inf), but a NaN factor a (a NaN target) makes it NaN; a NaN lp (a
 * row of only -inf: no loss defined) gives a NaN D, also for gamma = 0.
 * Branch-free, for vectorised loops. */
static inline XENT_MATH double XENT_F(xent_focal_core_)(double lp, double p, double w, double w1, double gamma,
                                                        double a, double *ad)
{
    double extra = gamma * w1 * p * lp;
    double d = -w + ((gamma != 0 && p > 0 && p < 1) ? extra : 0.0);
    d = lp == lp ? d : lp;
    *ad = a == 0 ? 0.0 : a * d;
    return a == 0 ? 0.0 : a * (w == 0 ? 0.0 : w * -lp); /* (a NaN factor stays NaN) */
}

/* The same terms from lp and log1m = log(1 - p), the powers as
 * exp(gamma log1m) (0^0 = 1): the rows with one target class. */
static inline XENT_MATH double XENT_F(xent_focal_terms_)(double lp, double log1m, double gamma, double a,
                                                         double *ad)
{
    const double lo = xent_exp_bounds[0], hi = xent_exp_bounds[1];
    double p = XENT_F(xent_exp_)(lp, lo, hi);
    double w = gamma == 0 ? 1.0 : XENT_F(xent_exp_)(gamma * log1m, lo, hi);
    double w1 = XENT_F(xent_exp_)((gamma - 1.0) * log1m, lo, hi);
    return XENT_F(xent_focal_core_)(lp, p, w, w1, gamma, a, ad);
}

/* The hessian's policy (XENT_HESS_*, xent_class.h) on one value h: as
 * computed, at least the floor, or |h| at least the floor (NaN stays NaN). */
static inline XENT_MATH double XENT_F(xent_hess_policy_)(double h, int pol, double floor)
{
    h = pol == XENT_HESS_ABS ? (h < 0 ? -h : h) : h;
    return pol == XENT_HESS_EXACT ? h : (h < floor ? floor : h);
}

/* One class's entry of the diagonal of a softmax loss's hessian, from its
 * exp e = exp(x_j - M) relative to the row's max (its chunk's factor
 * applied), pk = 1 / S, om = S - 1 (the other exps of the max's row: 1 - p
 * at e == 1 is om / S, no cancellation near p = 1) and the row's terms hq,
 * hp (xent_class.h):
 *     h = hq d^2 + hp p (1 - p),  d = [j == y] - p,
 * a zero d giving 0 whatever hq (an infinite hq at p = 1). */
static inline XENT_MATH double XENT_F(xent_softmax_h_)(double e, double pk, double om, int is_y, double hq,
                                                       double hp)
{
    double p = e * pk;
    double q = e == 1.0 ? om * pk : 1.0 - p;
    double d = is_y ? q : p;
    double t = d == 0 ? 0.0 : hq * d * d;
    return t + hp * p * q;
}

/* The hessian's terms of the softmax focal loss of one target class (the
 * row's gradient f a D (d_j), xent_focal_terms_): with D' = dD/dp,
 *     hq = a p D',  (hp = -a D, from *ad)
 *     D' = gamma (1 - p)^(gamma-1) (log p + 2)
 *          - gamma (gamma - 1) p (1 - p)^(gamma-1) log p / (1 - p),
 * log p / (1 - p) -> -1 at p = 1; 0 for gamma = 0 (the weighted CE). */
static inline XENT_MATH double XENT_F(xent_focal_hq_)(double lp, double log1m, double gamma, double a)
{
    const double lo = xent_exp_bounds[0], hi = xent_exp_bounds[1];
    double p = XENT_F(xent_exp_)(lp, lo, hi);
    double omp = XENT_F(xent_exp_)(log1m, lo, hi);
    double w1 = gamma == 1.0 ? 1.0 : XENT_F(xent_exp_)((gamma - 1.0) * log1m, lo, hi);
    /* (kept finite: (1 - p)^(gamma-1) of a p near 1 with gamma < 1 overflows,
     * where the hessian's products with (1 - p)^2 vanish) */
    w1 = w1 < 1e300 ? w1 : 1e300;
    double ratio = omp > 0 ? lp / omp : -1.0;
    double br = (lp + 2.0) - (gamma == 1.0 ? 0.0 : (gamma - 1.0) * p * ratio);
    double dd = gamma * w1 * br;
    double hq = a * p * dd;
    hq = gamma == 0 || a == 0 || p == 0 ? 0.0 : hq;
    return lp == lp ? hq : lp;
}

#ifdef XENT_AVX512
#ifndef XENT_INLINE
#define XENT_INLINE __attribute__((always_inline))
#endif
/* Transposes of 16 x 16 float32 tiles for the small-class path, in registers
 * (64 shuffles; scalar loads and stores would take 512 memory operations).
 * xent_t16_ transposes r in place: r[i] lane j becomes r[j] lane i. */
static inline XENT_INLINE void XENT_F(xent_t16_)(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* r[4q + j], 128-bit lane L: elements 4L + j of rows 4q .. 4q + 3 */
    for (int j = 0; j < 4; j++) {
        __m512 a = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        __m512 b = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        __m512 c = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        __m512 d = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
        t[j] = _mm512_shuffle_f32x4(a, c, 0x88);
        t[8 + j] = _mm512_shuffle_f32x4(a, c, 0xdd);
        t[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
    }
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

/* ws[c * 16 + b] = x[b * ld + c] for b < 16, c < w (w <= 16) */
static inline void XENT_F(xent_t16_in_)(const float *x, ptrdiff_t ld, ptrdiff_t w, float *ws)
{
    __mmask16 k = (__mmask16)((1u << w) - 1);
    __m512 r[16];
    for (int b = 0; b < 16; b++)
        r[b] = _mm512_maskz_loadu_ps(k, x + b * ld);
    XENT_F(xent_t16_)(r);
    for (ptrdiff_t c = 0; c < w; c++)
        _mm512_storeu_ps(ws + c * 16, r[c]);
}

/* x[b * ld + c] = ws[c * 16 + b] for b < 16, c < w (w <= 16) */
static inline void XENT_F(xent_t16_out_)(const float *ws, ptrdiff_t w, float *x, ptrdiff_t ld)
{
    __mmask16 k = (__mmask16)((1u << w) - 1);
    __m512 r[16];
    for (int c = 0; c < 16; c++)
        r[c] = c < w ? _mm512_loadu_ps(ws + c * 16) : _mm512_setzero_ps();
    XENT_F(xent_t16_)(r);
    for (int b = 0; b < 16; b++)
        _mm512_mask_storeu_ps(x + b * ld, k, r[b]);
}
/* The float64 tiles: 8 x 8 in registers (24 shuffles). xent_t8_ transposes
 * r in place: r[i] lane j becomes r[j] lane i. */
static inline XENT_INLINE void XENT_F(xent_t8_)(__m512d r[8])
{
    __m512d t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    /* t[2q + j], 128-bit lane L: elements 2L + j of rows 2q, 2q + 1 */
    for (int j = 0; j < 2; j++) {
        __m512d a = _mm512_shuffle_f64x2(t[j], t[2 + j], 0x88);
        __m512d b = _mm512_shuffle_f64x2(t[j], t[2 + j], 0xdd);
        __m512d c = _mm512_shuffle_f64x2(t[4 + j], t[6 + j], 0x88);
        __m512d d = _mm512_shuffle_f64x2(t[4 + j], t[6 + j], 0xdd);
        r[j] = _mm512_shuffle_f64x2(a, c, 0x88);
        r[4 + j] = _mm512_shuffle_f64x2(a, c, 0xdd);
        r[2 + j] = _mm512_shuffle_f64x2(b, d, 0x88);
        r[6 + j] = _mm512_shuffle_f64x2(b, d, 0xdd);
    }
}

/* ws[c * 16 + b] = x[b * ld + c] for b < 16, c < w (w <= 8) */
static inline void XENT_F(xent_t8_in_)(const double *x, ptrdiff_t ld, ptrdiff_t w, double *ws)
{
    __mmask8 k = (__mmask8)((1u << w) - 1);
    for (int h = 0; h < 16; h += 8) {
        __m512d r[8];
        for (int b = 0; b < 8; b++)
            r[b] = _mm512_maskz_loadu_pd(k, x + (h + b) * ld);
        XENT_F(xent_t8_)(r);
        for (ptrdiff_t c = 0; c < w; c++)
            _mm512_storeu_pd(ws + c * 16 + h, r[c]);
    }
}

/* x[b * ld + c] = ws[c * 16 + b] for b < 16, c < w (w <= 8) */
static inline void XENT_F(xent_t8_out_)(const double *ws, ptrdiff_t w, double *x, ptrdiff_t ld)
{
    __mmask8 k = (__mmask8)((1u << w) - 1);
    for (int h = 0; h < 16; h += 8) {
        __m512d r[8];
        for (int c = 0; c < 8; c++)
            r[c] = c < w ? _mm512_loadu_pd(ws + c * 16 + h) : _mm512_setzero_pd();
        XENT_F(xent_t8_)(r);
        for (int b = 0; b < 8; b++)
            _mm512_mask_storeu_pd(x + (h + b) * ld, k, r[b]);
    }
}

/* Narrow blocks (C <= XENT_NARROW_C classes): the block's rows are C whole
 * vectors in memory (16 rows of C float32, or 8 rows of C float64), so a
 * class's lanes come from them by two-table permutes (ceil(C/2) a class,
 * the pairs of vectors told apart by a mask) and go back the same way: for
 * C = 2, 2 permutes and 2 loads where the 16 x 16 transpose takes 64
 * shuffles and 16 masked loads. f = b C + c is the flat position of class c
 * of row b; with C a constant (the callers' cases) the indices and masks
 * are constants. */
#define XENT_NARROW_C 8
#define XENT_IOTA16(E) E(15), E(14), E(13), E(12), E(11), E(10), E(9), E(8), \
                       E(7), E(6), E(5), E(4), E(3), E(2), E(1), E(0)
#define XENT_IOTA8(E) E(7), E(6), E(5), E(4), E(3), E(2), E(1), E(0)

/* v[c] = class c of the 16 rows at x (C vectors), c < C */
static inline XENT_INLINE void XENT_F(xent_tn16_in_)(const float *x, const int C, __m512 v[])
{
    __m512 X[XENT_NARROW_C + 1];
    for (int k = 0; k < C; k++)
        X[k] = _mm512_loadu_ps(x + 16 * k);
    X[C] = X[C - 1];
    for (int c = 0; c < C; c++) {
#define XENT_E(b) (((b) * C + c) & 31)
        const __m512i idx = _mm512_set_epi32(XENT_IOTA16(XENT_E));
#undef XENT_E
        __m512 o = _mm512_permutex2var_ps(X[0], idx, X[1]);
        for (int j = 1; 2 * j < C; j++) {
            unsigned m = 0;
            for (int b = 0; b < 16; b++)
                m |= (unsigned)(((b * C + c) >> 5) == j) << b;
            o = _mm512_mask_mov_ps(o, (__mmask16)m, _mm512_permutex2var_ps(X[2 * j], idx, X[2 * j + 1]));
        }
        v[c] = o;
    }
}

/* the 16 rows at x (C vectors) from v[c] = class c of the rows, c < C */
static inline XENT_INLINE void XENT_F(xent_tn16_out_)(const __m512 v[], const int C, float *x)
{
    for (int k = 0; k < C; k++) {
        /* lane p: f = 16 k + p, row f / C, class f % C: lane f / C of
         * v[f % C], from the pair (v[2j], v[2j + 1]) with j = (f % C) / 2 */
#define XENT_E(p) ((16 * k + (p)) / C + 16 * (((16 * k + (p)) % C) & 1))
        const __m512i idx = _mm512_set_epi32(XENT_IOTA16(XENT_E));
#undef XENT_E
        __m512 o = _mm512_setzero_ps();
        for (int j = 0; 2 * j < C; j++) {
            unsigned m = 0;
            for (int p = 0; p < 16; p++)
                m |= (unsigned)((((16 * k + p) % C) >> 1) == j) << p;
            if (m == 0)
                continue;
            __m512 hi = 2 * j + 1 < C ? v[2 * j + 1] : v[2 * j];
            o = _mm512_mask_mov_ps(o, (__mmask16)m, _mm512_permutex2var_ps(v[2 * j], idx, hi));
        }
        _mm512_storeu_ps(x + 16 * k, o);
    }
}

/* the float64 pair: v[c] = class c of the 8 rows at x (C vectors) */
static inline XENT_INLINE void XENT_F(xent_tn8_in_)(const double *x, const int C, __m512d v[])
{
    __m512d X[XENT_NARROW_C + 1];
    for (int k = 0; k < C; k++)
        X[k] = _mm512_loadu_pd(x + 8 * k);
    X[C] = X[C - 1];
    for (int c = 0; c < C; c++) {
#define XENT_E(b) (long long)(((b) * C + c) & 15)
        const __m512i idx = _mm512_set_epi64(XENT_IOTA8(XENT_E));
#undef XENT_E
        __m512d o = _mm512_permutex2var_pd(X[0], idx, X[1]);
        for (int j = 1; 2 * j < C; j++) {
            unsigned m = 0;
            for (int b = 0; b < 8; b++)
                m |= (unsigned)(((b * C + c) >> 4) == j) << b;
            o = _mm512_mask_mov_pd(o, (__mmask8)m, _mm512_permutex2var_pd(X[2 * j], idx, X[2 * j + 1]));
        }
        v[c] = o;
    }
}

static inline XENT_INLINE void XENT_F(xent_tn8_out_)(const __m512d v[], const int C, double *x)
{
    for (int k = 0; k < C; k++) {
#define XENT_E(p) (long long)((8 * k + (p)) / C + 8 * (((8 * k + (p)) % C) & 1))
        const __m512i idx = _mm512_set_epi64(XENT_IOTA8(XENT_E));
#undef XENT_E
        __m512d o = _mm512_setzero_pd();
        for (int j = 0; 2 * j < C; j++) {
            unsigned m = 0;
            for (int p = 0; p < 8; p++)
                m |= (unsigned)((((8 * k + p) % C) >> 1) == j) << p;
            if (m == 0)
                continue;
            __m512d hi = 2 * j + 1 < C ? v[2 * j + 1] : v[2 * j];
            o = _mm512_mask_mov_pd(o, (__mmask8)m, _mm512_permutex2var_pd(v[2 * j], idx, hi));
        }
        _mm512_storeu_pd(x + 8 * k, o);
    }
}

/* log(s) of 8 float64 lanes of finite s >= 1 (a row's sum of exps, one of
 * them exp(0)): xent_log_'s reduction, with vgetexppd/vgetmantpd for the
 * exponent and mantissa, and its series */
static inline XENT_INLINE __m512d XENT_F(xent_log8_sum_)(__m512d s)
{
    const __m512d one = _mm512_set1_pd(1.0);
    __m512d e = _mm512_getexp_pd(s);
    __m512d m = _mm512_getmant_pd(s, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __mmask8 big = _mm512_cmp_pd_mask(m, _mm512_set1_pd(1.4142135623730951), _CMP_GT_OQ);
    m = _mm512_mask_mul_pd(m, big, m, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, big, e, one);
    __m512d t = _mm512_div_pd(_mm512_sub_pd(m, one), _mm512_add_pd(m, one));
    __m512d t2 = _mm512_mul_pd(t, t), t4 = _mm512_mul_pd(t2, t2), t8 = _mm512_mul_pd(t4, t4);
#define XENT_Q(c0, c1) _mm512_fmadd_pd(t2, _mm512_set1_pd(c1), _mm512_set1_pd(c0))
    __m512d q0 = XENT_Q(1.0 / 3, 1.0 / 5), q1 = XENT_Q(1.0 / 7, 1.0 / 9);
    __m512d q2 = XENT_Q(1.0 / 11, 1.0 / 13), q3 = XENT_Q(1.0 / 15, 1.0 / 17);
    __m512d q4 = XENT_Q(1.0 / 19, 1.0 / 21);
#undef XENT_Q
    __m512d p = _mm512_add_pd(_mm512_fmadd_pd(t4, q1, q0),
                              _mm512_mul_pd(t8, _mm512_fmadd_pd(t8, q4, _mm512_fmadd_pd(t4, q3, q2))));
    __m512d t_2 = _mm512_add_pd(t, t);
    __m512d log_m = _mm512_fmadd_pd(t_2, _mm512_mul_pd(t2, p), t_2);
    return _mm512_fmadd_pd(e, _mm512_set1_pd(6.93147180369123816490e-01),
                           _mm512_fmadd_pd(e, _mm512_set1_pd(1.90821492927058770002e-10), log_m));
}

/* exp(x) of 16 float32 lanes with x <= 0 or NaN (the shifted logits of a
 * row): xent_expf_'s reduction and polynomial, with the scaling by 2^k done by
 * vscalefps (one rounding, subnormal results included, as in xent_expf_).
 * -inf gives 0, NaN NaN. */
static inline XENT_INLINE __m512 XENT_F(xent_expf16_)(__m512 x, __m512 lo)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    /* below lo: 0, computed from 0 (as xent_expf_: no subnormal steps) */
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ); /* (NaN kept) */
    __m512 xc = _mm512_maskz_mov_ps(keep, x);
    __m512 fk = _mm512_sub_ps(_mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), magic), magic);
    __m512 r = _mm512_fnmadd_ps(fk, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(fk, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, fk);
}

/* exp(x) of 8 float64 lanes (the float64 block path's exps, x <= 0, -inf or
 * NaN; any x works): table-driven, 21 vector operations where xent_exp_'s
 * degree-13 polynomial, vectorised by the compiler, takes about 34. With
 * k = round(16 x / ln2) = 16 e + j (j = k mod 16, the low bits of k + magic:
 * vpermt2pd reads only an index's 4 low bits), r = x - k ln2/16 (|r| <=
 * ln2/32, a two-part ln2/16), exp(x) = 2^e 2^(j/16) exp(r), 2^(j/16) as
 * T_j + t_j (the double nearest it and its tail, from two 16-entry tables
 * held in registers), exp(r) - 1 by its Taylor polynomial of degree 7
 * (truncation below 1.3e-18 relative), summed as T_j + (T_j p + t_j): one
 * rounding of a value in [0.97, 1.96] after terms below 2^-60 relative, so
 * within about 0.51 ulp; then vscalefpd, 2^floor(k/16) with one rounding
 * (subnormal results included, overflow +inf). x is clamped to [lo, hi]
 * first ([-746, 710]: 0 and +inf beyond; NaN passes the clamp). Not bit for
 * bit xent_exp_ (the paths that must agree bit for bit, rows, chunks and
 * streamed rows, do not take it). */
static inline XENT_INLINE __m512d XENT_F(xent_exp8_)(__m512d x, __m512d lo, __m512d hi)
{
    const __m512d T0 = _mm512_set_pd(1.3542555469368927, 1.2968395546510096, 1.241857812073484,
                                     1.189207115002721, 1.1387886347566916, 1.0905077326652577,
                                     1.0442737824274138, 1.0);
    const __m512d T1 = _mm512_set_pd(1.9152065613971474, 1.8340080864093424, 1.7562521603732995,
                                     1.681792830507429, 1.6104903319492543, 1.5422108254079407,
                                     1.4768261459394993, 1.4142135623730951);
    const __m512d t0 = _mm512_set_pd(7.70094837980299e-17, 2.5382502794888315e-17, 4.658027591836937e-17,
                                     3.982015231465646e-17, 8.912812676025408e-17, -3.046782079812471e-17,
                                     8.551889705537965e-17, 0.0);
    const __m512d t1 = _mm512_set_pd(-1.0619946056195963e-16, 3.283107224245627e-17, 2.960140695448873e-17,
                                     8.199010020581497e-17, 2.4707192569797888e-17, 7.949834809697621e-17,
                                     -3.483994556892796e-17, -9.667293313452913e-17);
    const __m512d magic = _mm512_set1_pd(6755399441055744.0); /* 1.5 * 2^52 */
    __m512d xc = _mm512_min_pd(hi, _mm512_max_pd(lo, x)); /* (vmaxpd/vminpd: NaN from x passes) */
    __m512d kb = _mm512_fmadd_pd(xc, _mm512_set1_pd(23.083120654223414), magic); /* 16 / ln2 */
    __m512d k = _mm512_sub_pd(kb, magic);
    /* ln2/16 = 0.04332166910171509 (its low 32 bits zero) + 2.9683281493947953e-08 */
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0.04332166910171509), xc);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(2.9683281493947953e-08), r);
    __m512d r2 = _mm512_mul_pd(r, r), r4 = _mm512_mul_pd(r2, r2);
    __m512d a = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 6.0), _mm512_set1_pd(0.5));
    __m512d b = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 120.0), _mm512_set1_pd(1.0 / 24.0));
    __m512d c = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 5040.0), _mm512_set1_pd(1.0 / 720.0));
    __m512d q = _mm512_fmadd_pd(r4, c, _mm512_fmadd_pd(r2, b, a));
    __m512d p = _mm512_fmadd_pd(r2, q, r); /* exp(r) - 1 */
    __m512i j = _mm512_castpd_si512(kb);
    __m512d T = _mm512_permutex2var_pd(T0, j, T1), t = _mm512_permutex2var_pd(t0, j, t1);
    __m512d y = _mm512_add_pd(T, _mm512_fmadd_pd(T, p, t));
    return _mm512_scalef_pd(y, _mm512_mul_pd(k, _mm512_set1_pd(0.0625))); /* (floor(k / 16) by vscalefpd) */
}

/* Non-temporal stores of a float32 row whose values are computed 16 at a
 * time at positions 0, 16, 32, ... of the row (so the lanes of any sum taken
 * alongside do not depend on where the output lies). Beyond the cache a plain
 * store first reads the line it writes; vmovntps does not. Each vector is
 * realigned to the output's 64-byte lines with the one before it (vpermt2ps)
 * and streamed; the partial lines at both ends, which the neighbouring rows
 * share, get masked plain stores. The caller fences (sfence) before the
 * values are read or overwritten. */
typedef struct {
    float *out;
    __m512 prev;  /* the vector before */
    __m512i idx;  /* lane l of a line: index l + 16 - d of (prev, next) */
    unsigned d;   /* the output's offset in its line, in floats */
} XENT_F(xent_ntw_);

static inline XENT_INLINE void XENT_F(xent_ntw_init_)(XENT_F(xent_ntw_) *w, float *out)
{
    w->out = out;
    /* (16: an output not 4-byte aligned, which the Python layer never
     * passes: plain unaligned stores) */
    w->d = ((uintptr_t)out & 3) ? 16u : (unsigned)(((uintptr_t)out & 63) >> 2);
    w->idx = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32(16 - (int)w->d));
    w->prev = _mm512_setzero_ps();
}

/* the values of positions j .. j + 15 (j = 0, 16, 32, ... in turn) */
static inline XENT_INLINE void XENT_F(xent_ntw_put_)(XENT_F(xent_ntw_) *w, ptrdiff_t j, __m512 r)
{
    if (w->d == 0) {
        _mm512_stream_ps(w->out + j, r);
        return;
    }
    if (w->d == 16) {
        _mm512_storeu_ps(w->out + j, r);
        return;
    }
    if (j == 0) /* positions 0 .. 15 - d: the rest of the first line */
        _mm512_mask_storeu_ps(w->out, (__mmask16)(0xFFFFu >> w->d), r);
    else /* positions j - d .. j + 15 - d: a whole line */
        _mm512_stream_ps(w->out + j - w->d, _mm512_permutex2var_ps(w->prev, w->idx, r));
    w->prev = r;
}

/* the end: j the position after the last whole vector put, tail the values of
 * the len < 16 positions from j */
static inline XENT_INLINE void XENT_F(xent_ntw_end_)(XENT_F(xent_ntw_) *w, ptrdiff_t j, __m512 tail,
                                                      unsigned len)
{
    if (w->d != 0 && w->d != 16 && j > 0) /* the last d values of the last vector */
        _mm512_mask_storeu_ps(w->out + j - 16, (__mmask16)(0xFFFFu << (16 - w->d)), w->prev);
    if (len)
        _mm512_mask_storeu_ps(w->out + j, (__mmask16)((1u << len) - 1), tail);
}

/* The same for float64 rows: 8 values a vector, realigned with vpermt2pd. */
typedef struct {
    double *out;
    __m512d prev;
    __m512i idx;
    unsigned d; /* the output's offset in its line, in doubles (8: not 8-byte aligned) */
} XENT_F(xent_ntw64_);

static inline XENT_INLINE void XENT_F(xent_ntw64_init_)(XENT_F(xent_ntw64_) *w, double *out)
{
    w->out = out;
    w->d = ((uintptr_t)out & 7) ? 8u : (unsigned)(((uintptr_t)out & 63) >> 3);
    w->idx = _mm512_add_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi64(8 - (int)w->d));
    w->prev = _mm512_setzero_pd();
}

static inline XENT_INLINE void XENT_F(xent_ntw64_put_)(XENT_F(xent_ntw64_) *w, ptrdiff_t j, __m512d r)
{
    if (w->d == 0) {
        _mm512_stream_pd(w->out + j, r);
        return;
    }
    if (w->d == 8) {
        _mm512_storeu_pd(w->out + j, r);
        return;
    }
    if (j == 0)
        _mm512_mask_storeu_pd(w->out, (__mmask8)(0xFFu >> w->d), r);
    else
        _mm512_stream_pd(w->out + j - w->d, _mm512_permutex2var_pd(w->prev, w->idx, r));
    w->prev = r;
}

static inline XENT_INLINE void XENT_F(xent_ntw64_end_)(XENT_F(xent_ntw64_) *w, ptrdiff_t j, __m512d tail,
                                                        unsigned len)
{
    if (w->d != 0 && w->d != 8 && j > 0)
        _mm512_mask_storeu_pd(w->out + j - 8, (__mmask8)(0xFFu << (8 - w->d)), w->prev);
    if (len)
        _mm512_mask_storeu_pd(w->out + j, (__mmask8)((1u << len) - 1), tail);
}

/* A finished output value from v (a stored exp, or a logit for the shift):
 * with k and c below 1e38 in magnitude, split into float32 pairs kh + kl and
 * ch + cl (kd and cd: k and c in float64),
 * XENT_OUT_SUB    (v kh - ch) + (v kl - cl)  (xent_scale_sub16_f32_)
 * XENT_OUT_MUL    v kh + v kl, one rounding   (xent_scale16_f32_)
 * XENT_OUT_SHIFT  (v - k) - c in float64, rounded once (xent_shift_f32_) */
enum { XENT_OUT_SUB = XENT_STREAM_SUB, XENT_OUT_MUL = XENT_STREAM_MUL, XENT_OUT_SHIFT = XENT_STREAM_SHIFT };
typedef struct {
    __m512 kh, kl, ch, cl;
    __m512d kd, cd;
} XENT_F(xent_outk_);

static inline XENT_INLINE XENT_F(xent_outk_) XENT_F(xent_outk_init_)(double k, double c)
{
    XENT_F(xent_outk_) q;
    const float khf = (float)k, chf = (float)c;
    q.kh = _mm512_set1_ps(khf);
    q.kl = _mm512_set1_ps((float)(k - (double)khf));
    q.ch = _mm512_set1_ps(chf);
    q.cl = _mm512_set1_ps((float)(c - (double)chf));
    q.kd = _mm512_set1_pd(k);
    q.cd = _mm512_set1_pd(c);
    return q;
}

static inline XENT_INLINE __m512 XENT_F(xent_out16_)(__m512 v, const XENT_F(xent_outk_) *q, int op)
{
    if (op == XENT_OUT_MUL)
        return _mm512_fmadd_ps(v, q->kh, _mm512_mul_ps(v, q->kl));
    if (op == XENT_OUT_SHIFT) {
        __m512d lo = _mm512_sub_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), q->kd), q->cd);
        __m512d hi = _mm512_sub_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), q->kd), q->cd);
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
    }
    return _mm512_add_ps(_mm512_fmsub_ps(v, q->kh, q->ch), _mm512_fmsub_ps(v, q->kl, q->cl));
}

/* sum_j exp(x_j - m) of a float32 row on AVX-512, as xent_sumexp_f32_ (the
 * exps to e unless e is NULL; e may be x; float64 sums), with the exp of
 * xent_expf16_ and both clamps (x_j - m may be positive or NaN here). Four
 * float64 accumulators; the tail is a masked load padded with -inf.
 * With out: in the same loop, out_j = xent_out16_(ep_j) streamed to memory
 * (xent_ntw_), the previous row finished while this one is computed; x NULL:
 * only that. prefetch: the n values after x (the next row) into the cache. */
static inline XENT_INLINE double XENT_F(xent_sumexp16_body_)(const float *x, float *e, ptrdiff_t n,
                                                             float m, int prefetch, const float *ep,
                                                             float *out, double k, double c, int op)
{
    const __m512 lo = _mm512_set1_ps(xent_expf_bounds[0]), hi = _mm512_set1_ps(xent_expf_bounds[1]);
    const __m512 mv = _mm512_set1_ps(m);
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    const XENT_F(xent_outk_) q = XENT_F(xent_outk_init_)(k, c);
    XENT_F(xent_ntw_) w;
    XENT_F(xent_ntw_init_)(&w, out); /* (unused without out) */
    ptrdiff_t j = 0;
    for (; j + 32 <= n; j += 32) {
        if (x) {
            if (prefetch) {
                _mm_prefetch((const char *)(x + n + j), _MM_HINT_T1);
                _mm_prefetch((const char *)(x + n + j + 16), _MM_HINT_T1);
            }
            __m512 v0 = XENT_F(xent_expf16_)(_mm512_min_ps(hi, _mm512_sub_ps(_mm512_loadu_ps(x + j), mv)), lo);
            __m512 v1 = XENT_F(xent_expf16_)(_mm512_min_ps(hi, _mm512_sub_ps(_mm512_loadu_ps(x + j + 16), mv)), lo);
            if (e) {
                _mm512_storeu_ps(e + j, v0);
                _mm512_storeu_ps(e + j + 16, v1);
            }
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v0)));
            a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v0, 1)));
            a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm512_castps512_ps256(v1)));
            a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v1, 1)));
        }
        if (out) {
            XENT_F(xent_ntw_put_)(&w, j, XENT_F(xent_out16_)(_mm512_loadu_ps(ep + j), &q, op));
            XENT_F(xent_ntw_put_)(&w, j + 16,
                                  XENT_F(xent_out16_)(_mm512_loadu_ps(ep + j + 16), &q, op));
        }
    }
    if (out) {
        ptrdiff_t jj = j;
        if (n - jj >= 16) {
            XENT_F(xent_ntw_put_)(&w, jj, XENT_F(xent_out16_)(_mm512_loadu_ps(ep + jj), &q, op));
            jj += 16;
        }
        unsigned len = (unsigned)(n - jj);
        __m512 tail = _mm512_setzero_ps();
        if (len)
            tail = XENT_F(xent_out16_)(_mm512_maskz_loadu_ps((__mmask16)((1u << len) - 1), ep + jj), &q, op);
        XENT_F(xent_ntw_end_)(&w, jj, tail, len);
        _mm_sfence();
    }
    if (!x)
        return 0.0;
    for (; j < n; j += 16) {
        ptrdiff_t len = n - j < 16 ? n - j : 16;
        __mmask16 km = (__mmask16)((1u << len) - 1);
        /* the lanes past the end hold m, their exps are zeroed after: a
         * filler of -inf would make subnormal exps, each instruction on
         * them a microcode assist (measured: a row of 17 classes 5x slower) */
        __m512 xv = _mm512_mask_loadu_ps(mv, km, x + j);
        __m512 v = _mm512_maskz_mov_ps(km, XENT_F(xent_expf16_)(_mm512_min_ps(hi, _mm512_sub_ps(xv, mv)), lo));
        if (e)
            _mm512_mask_storeu_ps(e + j, km, v);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

static double XENT_F(xent_sumexp16_f32_)(const float *x, float *e, ptrdiff_t n, float m)
{
    return XENT_F(xent_sumexp16_body_)(x, e, n, m, 0, NULL, NULL, 0.0, 0.0, XENT_OUT_SUB);
}

/* The streamed row (see the row kernels of src/cross_entropy.pxi and
 * src/softmax.pxi): the exps of row x into e (unless NULL) and their sum, as
 * xent_sumexp16_f32_, the next row prefetched; and unless out is NULL, the
 * previous row's output from its exps (or logits, for the shift) ep,
 * streamed (x NULL: only that). For op XENT_OUT_SUB and XENT_OUT_MUL, k and c
 * below 1e38 in magnitude. */
static double XENT_F(xent_sumexp_stream_f32_)(const float *x, float *e, ptrdiff_t n, float m,
                                                const float *ep, float *out, double k, double c, int op)
{
    if (!out)
        return XENT_F(xent_sumexp16_body_)(x, e, n, m, 1, NULL, NULL, 0.0, 0.0, XENT_OUT_SUB);
#define XENT_BODY(op_) (x ? XENT_F(xent_sumexp16_body_)(x, e, n, m, 1, ep, out, k, c, op_) \
                          : XENT_F(xent_sumexp16_body_)(NULL, NULL, n, 0.0f, 0, ep, out, k, c, op_))
    switch (op) {
    case XENT_OUT_MUL:
        return XENT_BODY(XENT_OUT_MUL);
    case XENT_OUT_SHIFT:
        return XENT_BODY(XENT_OUT_SHIFT);
    default:
        return XENT_BODY(XENT_OUT_SUB);
    }
#undef XENT_BODY
}

/* one value of xent_out16_ (the same instructions, lane 0) */
static float XENT_F(xent_out1_f32_)(float v, double k, double c, int op)
{
    const XENT_F(xent_outk_) q = XENT_F(xent_outk_init_)(k, c);
    return _mm512_cvtss_f32(XENT_F(xent_out16_)(_mm512_set1_ps(v), &q, op));
}

/* Binary cross-entropy from float32 logits on AVX-512, the plain case of
 * xent_bce_logits_uniform_ (no pos_weight, weight 1, no smoothing): the same
 * terms, e = exp(-|x|) by xent_expf16_, loss max(x, 0) - x t + log1p(e),
 * gradient gw (sigmoid(x) - t); loss and grad written unless NULL; returns
 * the sum of the losses (float64 lanes). */
static double XENT_F(xent_bce_plain16_f32_)(const float *x, const float *t, ptrdiff_t n,
                                            float gw, float *loss, float *grad, int stream)
{
    const __m512 lo = _mm512_set1_ps(xent_expf_bounds[0]), one = _mm512_set1_ps(1.0f);
    const __m512 zero = _mm512_setzero_ps(), sign = _mm512_set1_ps(-0.0f), g = _mm512_set1_ps(gw);
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    XENT_F(xent_ntw_) nw;
    stream = stream && grad;
    if (stream)
        XENT_F(xent_ntw_init_)(&nw, grad);
    for (ptrdiff_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        /* (plain loads but in the tail: masked loads measured much slower here) */
        __m512 xv = k == 0xFFFF ? _mm512_loadu_ps(x + j) : _mm512_maskz_loadu_ps(k, x + j);
        __m512 tv = k == 0xFFFF ? _mm512_loadu_ps(t + j) : _mm512_maskz_loadu_ps(k, t + j);
        __m512 e = XENT_F(xent_expf16_)(_mm512_or_ps(xv, sign), lo); /* exp(-|x|) */
        __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e));
        __mmask16 pos = _mm512_cmp_ps_mask(xv, zero, _CMP_GE_OQ);
        __m512 lin_c = _mm512_mask_sub_ps(_mm512_xor_ps(tv, sign), pos, one, tv); /* 1 - t or -t */
        __m512 lin = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(lin_c, zero, _CMP_NEQ_UQ), lin_c, xv);
        __m512 sig = _mm512_mask_mov_ps(_mm512_mul_ps(e, r), pos, r);
        /* log1p(e) on [0, 1]: xent_log1p_unitf_'s polynomial */
        __m512 p = _mm512_set1_ps(5.253457929939032e-3f);
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(-2.958850748836994e-2f));
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(7.836166769266129e-2f));
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(-1.3674770295619965e-1f));
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(1.9111430644989014e-1f));
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(-2.4844369292259216e-1f));
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(3.3319270610809326e-1f));
        p = _mm512_fmadd_ps(p, e, _mm512_set1_ps(-4.9999502301216125e-1f));
        __m512 lj = _mm512_add_ps(lin, _mm512_fmadd_ps(e, _mm512_mul_ps(p, e), e));
        lj = _mm512_maskz_mov_ps(k, lj); /* (the tail's lanes add nothing) */
        if (loss)
            _mm512_mask_storeu_ps(loss + j, k, lj);
        if (stream) {
            if (k == 0xFFFF)
                XENT_F(xent_ntw_put_)(&nw, j, _mm512_mul_ps(g, _mm512_sub_ps(sig, tv)));
            else
                XENT_F(xent_ntw_end_)(&nw, j, _mm512_mul_ps(g, _mm512_sub_ps(sig, tv)), (unsigned)(n - j));
        } else if (grad) {
            _mm512_mask_storeu_ps(grad + j, k, _mm512_mul_ps(g, _mm512_sub_ps(sig, tv)));
        }
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(lj)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(lj, 1)));
    }
    if (stream) {
        if (n % 16 == 0)
            XENT_F(xent_ntw_end_)(&nw, n, _mm512_setzero_ps(), 0);
        _mm_sfence();
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

static double XENT_F(xent_log_s_f32_)(const float *v, ptrdiff_t n, float m, double s, int exps);

/* The common case of the small-class path for float32 rows of C <= 16
 * classes on AVX-512 (the block path of xent_class_typed.h, its loss terms
 * xent_ce_terms_): the 16 rows are transposed in registers, and the
 * block's classes stay there from the load of the logits to the store of the
 * gradient. Returns 0, having written nothing, when a row maximum is not
 * finite or a gradient scale beyond 1e38. */
static inline __attribute__((always_inline)) int XENT_F(xent_block16_body_)(
    const float *x, const ptrdiff_t C, const int64_t *y, int64_t ignore, const double *sw,
    const double *gs, ptrdiff_t gss, const double *w, double z, double *loss, float *grad)
{
    const __m512 lo = _mm512_set1_ps(xent_expf_bounds[0]);
    const __mmask16 kc = (__mmask16)((1u << C) - 1);
    __m512 v[16];
    /* the block 8 ahead into the cache (the hardware prefetcher alone left
     * these loads the costliest instructions here: some 6% faster measured;
     * a prefetch past the end of the rows is harmless) */
    for (ptrdiff_t l = 0; l < 16 * C; l += 16) /* (an address, not a pointer past the end) */
        _mm_prefetch((const char *)((uintptr_t)x + sizeof(float) * (size_t)(8 * 16 * C + l)),
                     _MM_HINT_T0);
    if (C <= XENT_NARROW_C) {
        XENT_F(xent_tn16_in_)(x, (int)C, v); /* v[c]: class c of the 16 rows */
    } else {
        for (int b = 0; b < 16; b++)
            v[b] = _mm512_maskz_loadu_ps(kc, x + b * C);
        XENT_F(xent_t16_)(v);
    }
    __m512 m = v[0];
#pragma GCC unroll 16
    for (ptrdiff_t c = 1; c < C; c++)
        m = _mm512_max_ps(v[c], m); /* (a NaN makes m NaN) */
    if (_mm512_cmp_ps_mask(_mm512_sub_ps(m, m), _mm512_setzero_ps(), _CMP_EQ_OQ) != 0xFFFF)
        return 0;
    /* the per-row terms, in two halves of 8 float64 lanes; rows not kept
     * (ignored, or of weight 0) get sw = f = a = 0 */
    __m512d sw_[2], f_[2];
    __mmask8 keep_[2];
    const __m512i ig = _mm512_set1_epi64(ignore);
    for (int h = 0; h < 2; h++) {
        __m512d swh = sw ? _mm512_loadu_pd(sw + 8 * h) : _mm512_set1_pd(1.0);
        __m512d gsh;
        if (gss == 0) {
            gsh = _mm512_set1_pd(gs[0]);
        } else {
            double g8[8];
            for (int b = 0; b < 8; b++)
                g8[b] = gs[(8 * h + b) * gss];
            gsh = _mm512_loadu_pd(g8);
        }
        keep_[h] = _mm512_cmpneq_epi64_mask(_mm512_loadu_si512(y + 8 * h), ig) &
                   _mm512_cmp_pd_mask(swh, _mm512_setzero_pd(), _CMP_NEQ_UQ);
        sw_[h] = _mm512_maskz_mov_pd(keep_[h], swh);
        f_[h] = _mm512_maskz_mul_pd(keep_[h], gsh, swh);
    }
    __mmask16 keep = (__mmask16)(keep_[0] | ((unsigned)keep_[1] << 8));
    __m512i yi = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_loadu_si512(y))),
        _mm512_cvtepi64_epi32(_mm512_loadu_si512(y + 8)), 1);
    yi = _mm512_mask_blend_epi32(keep, _mm512_set1_epi32(-1), yi);
    /* exps, their float64 sums, and the target's logit picked out */
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512 xy = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (ptrdiff_t c = 0; c < C; c++) {
        __mmask16 hit = _mm512_cmpeq_epi32_mask(yi, _mm512_set1_epi32((int)c));
        xy = _mm512_mask_mov_ps(xy, hit, v[c]);
        __m512 e = XENT_F(xent_expf16_)(_mm512_sub_ps(v[c], m), lo);
        v[c] = e;
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    /* the losses and gradient scales, in float64, from the shared terms */
    __m512d k_[2], td_[2], lv_[2], others[2];
    __mmask16 others_seen = 0;
    int others_done = 0;
    __mmask8 in_range = 0xFF;
    const __m512d big = _mm512_set1_pd(1e38);
    for (int h = 0; h < 2; h++) {
        __m256 mh = h ? _mm512_extractf32x8_ps(m, 1) : _mm512_castps512_ps256(m);
        __m256 xh = h ? _mm512_extractf32x8_ps(xy, 1) : _mm512_castps512_ps256(xy);
        __m512d a = _mm512_maskz_mov_pd(keep_[h], _mm512_set1_pd(1.0));
        if (w) {
            double wv[8];
            for (int b = 0; b < 8; b++)
                wv[b] = (keep_[h] >> b) & 1 ? w[y[8 * h + b]] : 0.0;
            a = _mm512_loadu_pd(wv);
        }
        __mmask8 nz = _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_NEQ_UQ);
        __m512d sh = _mm512_maskz_mul_pd(nz, a, _mm512_cvtps_pd(_mm256_sub_ps(xh, mh)));
        __m512d sh_ = h ? s1 : s0;
        __m512d log_s = XENT_F(xent_log8_sum_)(sh_);
        __mmask8 near = _mm512_cmp_pd_mask(sh_, _mm512_set1_pd(XENT_NEAR_ONE_F32), _CMP_LT_OQ);
        if (near) {
            /* s near 1 (a confident row): log1p of the terms other than the
             * max's own exp of 1 (the first exp of exactly 1), summed from the
             * exps still in the registers, all 16 rows at once: log1p(t) =
             * log(u) + (t - (u - 1)) / u with u = 1 + t */
            if (!others_done) {
                __m512d t0 = _mm512_setzero_pd(), t1 = t0;
                __mmask16 seen = 0;
#pragma GCC unroll 16
                for (ptrdiff_t c = 0; c < C; c++) {
                    __mmask16 top = _mm512_cmp_ps_mask(v[c], _mm512_set1_ps(1.0f), _CMP_EQ_OQ) & ~seen;
                    seen |= top;
                    __m512 e = _mm512_maskz_mov_ps((__mmask16)~top, v[c]);
                    t0 = _mm512_add_pd(t0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
                    t1 = _mm512_add_pd(t1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
                }
                others[0] = t0;
                others[1] = t1;
                others_seen = seen;
                others_done = 1;
            }
            __m512d t = others[h], u = _mm512_add_pd(t, _mm512_set1_pd(1.0));
            __m512d l1p = _mm512_add_pd(XENT_F(xent_log8_sum_)(u),
                                        _mm512_div_pd(_mm512_sub_pd(t, _mm512_sub_pd(u, _mm512_set1_pd(1.0))), u));
            log_s = _mm512_mask_mov_pd(log_s, near & (__mmask8)(others_seen >> (8 * h)), l1p);
        }
        /* the loss and k from the terms every path takes (xent_ce_terms_) */
        double mv8[8], sv8[8], lsv[8], av[8], shv[8], swv[8], fv[8], kv[8], lossv[8];
        _mm512_storeu_pd(mv8, _mm512_cvtps_pd(mh));
        _mm512_storeu_pd(sv8, sh_);
        _mm512_storeu_pd(lsv, log_s);
        _mm512_storeu_pd(av, a);
        _mm512_storeu_pd(shv, sh);
        _mm512_storeu_pd(swv, sw_[h]);
        _mm512_storeu_pd(fv, f_[h]);
#pragma omp simd
        for (int b = 0; b < 8; b++)
            lossv[b] = XENT_F(xent_ce_terms_)(mv8[b], sv8[b], lsv[b], av[b], shv[b], swv[b], fv[b], z, &kv[b]);
        lv_[h] = _mm512_maskz_mov_pd(keep_[h], _mm512_loadu_pd(lossv));
        k_[h] = _mm512_loadu_pd(kv);
        td_[h] = _mm512_mul_pd(f_[h], a);
        /* k and f * w_y are split into float32 pairs below: within its range */
        in_range &= _mm512_cmp_pd_mask(_mm512_abs_pd(k_[h]), big, _CMP_LT_OQ) &
                    _mm512_cmp_pd_mask(_mm512_abs_pd(td_[h]), big, _CMP_LT_OQ);
    }
    if (in_range != 0xFF)
        return 0;
    __m512d k0 = k_[0], k1 = k_[1], td0 = td_[0], td1 = td_[1];
    _mm512_storeu_pd(loss, lv_[0]);
    _mm512_storeu_pd(loss + 8, lv_[1]);
    if (!grad)
        return 1;
    /* g = e * k - f * w_y at the target, in float32 with k = kh + kl and
     * f * w_y = th + tl split into float32 pairs: (e kh - th) + (e kl - tl),
     * each term one fused operation, as close to the float64 value rounded
     * once as makes no difference but in rare ties; rows not kept: 0 (by the
     * mask, not by k = f = 0: a NaN logit's exp times 0 is NaN) */
    __m512 kh, kl, th, tl;
    {
        __m256 kh0 = _mm512_cvtpd_ps(k0), kh1 = _mm512_cvtpd_ps(k1);
        __m256 th0 = _mm512_cvtpd_ps(td0), th1 = _mm512_cvtpd_ps(td1);
        kh = _mm512_insertf32x8(_mm512_castps256_ps512(kh0), kh1, 1);
        th = _mm512_insertf32x8(_mm512_castps256_ps512(th0), th1, 1);
        kl = _mm512_insertf32x8(
            _mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_sub_pd(k0, _mm512_cvtps_pd(kh0)))),
            _mm512_cvtpd_ps(_mm512_sub_pd(k1, _mm512_cvtps_pd(kh1))), 1);
        tl = _mm512_insertf32x8(
            _mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_sub_pd(td0, _mm512_cvtps_pd(th0)))),
            _mm512_cvtpd_ps(_mm512_sub_pd(td1, _mm512_cvtps_pd(th1))), 1);
    }
#pragma GCC unroll 16
    for (ptrdiff_t c = 0; c < C; c++) {
        __mmask16 hit = _mm512_cmpeq_epi32_mask(yi, _mm512_set1_epi32((int)c));
        __m512 hi_ = _mm512_fmsub_ps(v[c], kh, _mm512_maskz_mov_ps(hit, th));
        __m512 lo_ = _mm512_fmsub_ps(v[c], kl, _mm512_maskz_mov_ps(hit, tl));
        v[c] = _mm512_maskz_add_ps(keep, hi_, lo_);
    }
    if (C <= XENT_NARROW_C) {
        XENT_F(xent_tn16_out_)(v, (int)C, grad); /* back to rows */
        return 1;
    }
#pragma GCC unroll 16
    for (ptrdiff_t c = C; c < 16; c++)
        v[c] = _mm512_setzero_ps();
    XENT_F(xent_t16_)(v);
    for (int b = 0; b < 16; b++)
        _mm512_mask_storeu_ps(grad + b * C, kc, v[b]);
    return 1;
}

static int XENT_F(xent_block16_labels_f32_)(const float *x, ptrdiff_t C, const int64_t *y,
                                            int64_t ignore, const double *sw, const double *gs,
                                            ptrdiff_t gss, const double *w, double z,
                                            double *loss, float *grad)
{
#define XENT_CASE(n) case n: return XENT_F(xent_block16_body_)(x, n, y, ignore, sw, gs, gss, w, z, loss, grad);
    switch (C) {
    XENT_CASE(2) XENT_CASE(3) XENT_CASE(4) XENT_CASE(5) XENT_CASE(6) XENT_CASE(7) XENT_CASE(8)
    XENT_CASE(9) XENT_CASE(10) XENT_CASE(11) XENT_CASE(12) XENT_CASE(13) XENT_CASE(14)
    XENT_CASE(15) XENT_CASE(16)
    default: return XENT_F(xent_block16_body_)(x, C, y, ignore, sw, gs, gss, w, z, loss, grad);
    }
#undef XENT_CASE
}
#endif

#ifdef XENT_AVX512
/* (defined below, called by the templates) */
static void XENT_F(xent_scale_sub16_f32_)(float *e, ptrdiff_t n, double k, double c, const double *w);
static void XENT_F(xent_scale16_f32_)(float *e, ptrdiff_t n, double k);
static double XENT_F(xent_sumexp_stream_f64_)(const double *x, double *e, ptrdiff_t n, double m,
                                              const double *ep, double *out, double k, double c, int op);
static double XENT_F(xent_out1_f64_)(double v, double k, double c, int op);
#endif

/* The row primitives for each floating type, from one template. */
#define XENT_T float
#define XENT_TN f32
#define XENT_EXP(x) XENT_F(xent_expf_)((x), xent_lo_, xent_hi_)
#define XENT_EXP_BOUNDS const float xent_lo_ = xent_expf_bounds[0], xent_hi_ = xent_expf_bounds[1]
#define XENT_LOG XENT_F(xent_logf_)
#define XENT_LOG1P XENT_F(xent_log1pf_)
#define XENT_LOG1P_UNIT XENT_F(xent_log1p_unitf_)
#define XENT_TANH(x) XENT_F(xent_tanhf_)((x), xent_lo_, xent_hi_)
#define XENT_KAHAN 0
#include "xent_rows_typed.h"
#undef XENT_T
#undef XENT_TN
#undef XENT_EXP
#undef XENT_EXP_BOUNDS
#undef XENT_LOG
#undef XENT_LOG1P
#undef XENT_LOG1P_UNIT
#undef XENT_TANH
#undef XENT_KAHAN

#define XENT_T double
#define XENT_TN f64
#define XENT_EXP(x) XENT_F(xent_exp_)((x), xent_lo_, xent_hi_)
#define XENT_EXP_BOUNDS const double xent_lo_ = xent_exp_bounds[0], xent_hi_ = xent_exp_bounds[1]
#define XENT_LOG XENT_F(xent_log_)
#define XENT_LOG1P XENT_F(xent_log1p_)
#define XENT_LOG1P_UNIT XENT_F(xent_log1p_unit_)
#define XENT_TANH(x) XENT_F(xent_tanh_)((x), xent_lo_, xent_hi_)
#define XENT_KAHAN 1
#include "xent_rows_typed.h"
#undef XENT_T
#undef XENT_TN
#undef XENT_EXP
#undef XENT_EXP_BOUNDS
#undef XENT_LOG
#undef XENT_LOG1P
#undef XENT_LOG1P_UNIT
#undef XENT_TANH
#undef XENT_KAHAN

#ifdef XENT_AVX512
/* e_j = e_j * k - c of a float32 row on AVX-512 (xent_scale_sub_f32_ without
 * class weights): k = kh + kl and c = ch + cl split into float32 pairs,
 * e_j = (e_j kh - ch) + (e_j kl - cl), each term one fused operation: as the
 * float64 value rounded once but in rare ties. Other cases (weights, k or c
 * beyond 1e38, infinite k) go to the float64 loop. */
static void XENT_F(xent_scale_sub16_f32_)(float *e, ptrdiff_t n, double k, double c,
                                          const double *w)
{
    if (w || !(fabs(k) < 1e38) || !(fabs(c) < 1e38)) {
        XENT_F(xent_scale_sub_f32_)(e, n, k, c, w);
        return;
    }
    const float khf = (float)k, chf = (float)c;
    const __m512 kh = _mm512_set1_ps(khf), kl = _mm512_set1_ps((float)(k - (double)khf));
    const __m512 ch = _mm512_set1_ps(chf), cl = _mm512_set1_ps((float)(c - (double)chf));
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(e + j);
        _mm512_storeu_ps(e + j, _mm512_add_ps(_mm512_fmsub_ps(v, kh, ch), _mm512_fmsub_ps(v, kl, cl)));
    }
    if (j < n) {
        __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, e + j);
        _mm512_mask_storeu_ps(e + j, m, _mm512_add_ps(_mm512_fmsub_ps(v, kh, ch), _mm512_fmsub_ps(v, kl, cl)));
    }
}


/* e_j = e_j * k of a float32 row on AVX-512 (xent_scale_f32_), with k split
 * as in xent_scale_sub16_f32_: e_j kh + e_j kl */
static void XENT_F(xent_scale16_f32_)(float *e, ptrdiff_t n, double k)
{
    if (!(fabs(k) < 1e38)) {
        XENT_F(xent_scale_f32_)(e, n, k);
        return;
    }
    const float khf = (float)k;
    const __m512 kh = _mm512_set1_ps(khf), kl = _mm512_set1_ps((float)(k - (double)khf));
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(e + j);
        _mm512_storeu_ps(e + j, _mm512_fmadd_ps(v, kh, _mm512_mul_ps(v, kl)));
    }
    if (j < n) {
        __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, e + j);
        _mm512_mask_storeu_ps(e + j, m, _mm512_fmadd_ps(v, kh, _mm512_mul_ps(v, kl)));
    }
}
#endif

/* The sum of a group of per-row losses (the reduced loss: its groups and
 * their order are in src/class_rows.pxi): v[i] into lane i % 8, each lane
 * compensated by Knuth's TwoSum (no branch, so it vectorises; the same bits
 * on every instruction set: additions only, in a fixed order), then the
 * lanes' sums added in lane order, Neumaier-compensated, and their errors.
 * Not finite: the plain sum. */
static double XENT_F(xent_loss_group_sum_)(const double *v, ptrdiff_t n)
{
    double s[8] = {0}, c[8] = {0};
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
#pragma omp simd
        for (int l = 0; l < 8; l++) {
            double t = s[l] + v[i + l], z = t - s[l];
            c[l] += (s[l] - (t - z)) + (v[i + l] - z);
            s[l] = t;
        }
    }
    for (int l = 0; i + l < n; l++) {
        double t = s[l] + v[i + l], z = t - s[l];
        c[l] += (s[l] - (t - z)) + (v[i + l] - z);
        s[l] = t;
    }
    double S = 0.0, E = 0.0;
    for (int l = 0; l < 8; l++) {
        double t = S + s[l];
        E += fabs(S) >= fabs(s[l]) ? (S - t) + s[l] : (s[l] - t) + S;
        S = t;
    }
    for (int l = 0; l < 8; l++)
        E += c[l];
    return S - S == 0 ? S + E : S;
}

/* bfloat16 <-> float32. A bfloat16 is the high half of a float32's bits:
 * widening is exact (a shift); narrowing rounds to nearest, ties to even, in
 * integer arithmetic: NaN stays NaN (the quiet bit set in what is kept of
 * its payload), values beyond the largest bfloat16 round to +-inf,
 * subnormals as IEEE rounding does. Branch-free, so that both vectorise. */
static void XENT_F(xent_bf16_widen_)(const uint16_t *s, float *d, ptrdiff_t n)
{
    uint32_t *u = (uint32_t *)d;
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++)
        u[i] = (uint32_t)s[i] << 16;
}

static void XENT_F(xent_bf16_narrow_)(const float *s, uint16_t *d, ptrdiff_t n)
{
    const uint32_t *u = (const uint32_t *)s;
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t v = u[i];
        uint32_t r = (v + 0x7FFFu + ((v >> 16) & 1u)) >> 16;
        uint32_t q = (v >> 16) | 0x0040u;
        d[i] = (uint16_t)((v & 0x7FFFFFFFu) > 0x7F800000u ? q : r);
    }
}

/* the table of this ISA's functions: the op `name` is xent_<name>_ of this
 * ISA (the list is XENT_OPS in xent_rows.h); on AVX-512 a few ops are
 * replaced, by name, with their intrinsics versions */
#define XENT_OP_INIT(ret, name, params) .name = XENT_F(xent_##name##_),
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Winitializer-overrides"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
#endif
XENT_HIDDEN const xent_row_ops XENT_F(xent_ops_) = {
    .name = XENT_ISA_NAME,
    XENT_OPS(XENT_OP_INIT)
#ifdef XENT_AVX512
    .streams = 1,
    .sumexp_f32 = XENT_F(xent_sumexp16_f32_),
    .scale_f32 = XENT_F(xent_scale16_f32_),
#endif
};
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#undef XENT_OP_INIT

#undef XENT_F
#undef XENT_CAT
#undef XENT_CAT2
#undef XENT_LANES
