/* Row primitives of xent with run-time instruction-set dispatch.
 *
 * xent_rows_impl.h is compiled once per instruction set into a table of
 * function pointers (xent_row_ops). Each extension module holds a pointer to
 * the table in use, chosen at import (xent._dispatch): the best the CPU has,
 * or the one XENT_ISA names. The build itself targets the portable baseline
 * (no -march=native); the AVX2 and AVX-512 versions are compiled with GCC's
 * target pragmas and only ever called on CPUs that have those instructions.
 */
#ifndef XENT_ROWS_H
#define XENT_ROWS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *name;
    float (*max_f32)(const float *x, ptrdiff_t n);
    double (*sumexp_f32)(const float *x, float *e, ptrdiff_t n, float m);
    void (*scale_f32)(float *e, ptrdiff_t n, double k);
    void (*scale_sub_f32)(float *e, ptrdiff_t n, double k, double c, const double *w);
    void (*shift_f32)(const float *x, float *out, ptrdiff_t n, double m, double log_s);
    double (*sum_f32)(const float *x, ptrdiff_t n);
    double (*dot_f32)(const float *a, const float *b, ptrdiff_t n);
    void (*softmax_vjp_f32)(const float *p, const float *g, float *out, ptrdiff_t n, double dot);
    void (*log_softmax_vjp_f32)(const float *lp, const float *g, float *out, ptrdiff_t n, double total);
    float (*exp_f32)(float x);
    double (*log_s_f32)(const float *v, ptrdiff_t n, float m, double s, int exps);
    double (*max_f64)(const double *x, ptrdiff_t n);
    double (*sumexp_f64)(const double *x, double *e, ptrdiff_t n, double m);
    void (*scale_f64)(double *e, ptrdiff_t n, double k);
    void (*scale_sub_f64)(double *e, ptrdiff_t n, double k, double c, const double *w);
    void (*shift_f64)(const double *x, double *out, ptrdiff_t n, double m, double log_s);
    double (*sum_f64)(const double *x, ptrdiff_t n);
    double (*dot_f64)(const double *a, const double *b, ptrdiff_t n);
    void (*softmax_vjp_f64)(const double *p, const double *g, double *out, ptrdiff_t n, double dot);
    void (*log_softmax_vjp_f64)(const double *lp, const double *g, double *out, ptrdiff_t n, double total);
    double (*exp_f64)(double x);
    double (*log_s_f64)(const double *v, ptrdiff_t n, double m, double s, int exps);
    void (*block_sumexp_f32)(const float *x, ptrdiff_t nb, ptrdiff_t C, float *ws, float *m, double *s);
    void (*block_scale_f32)(float *ws, ptrdiff_t nb, ptrdiff_t C, const double *k, const double *f,
                            const double *u, float *out);
    void (*block_logs_f32)(const float *x, ptrdiff_t nb, ptrdiff_t C, const double *m, const double *s,
                           double *ls);
    void (*block_sumexp_f64)(const double *x, ptrdiff_t nb, ptrdiff_t C, double *ws, double *m, double *s);
    void (*block_scale_f64)(double *ws, ptrdiff_t nb, ptrdiff_t C, const double *k, const double *f,
                            const double *u, double *out);
    void (*block_logs_f64)(const double *x, ptrdiff_t nb, ptrdiff_t C, const double *m, const double *s,
                           double *ls);
    void (*block_labels_f32)(const float *x, ptrdiff_t nb, ptrdiff_t C, const int64_t *y,
                             int64_t ignore, const double *sw, const double *gs, ptrdiff_t gss,
                             const double *w, const double *u, double eps, double total_w,
                             double z, double *loss, float *grad);
    void (*block_labels_f64)(const double *x, ptrdiff_t nb, ptrdiff_t C, const int64_t *y,
                             int64_t ignore, const double *sw, const double *gs, ptrdiff_t gss,
                             const double *w, const double *u, double eps, double total_w,
                             double z, double *loss, double *grad);
    void (*block_losses)(const double *m, const double *s, const double *ls, const double *a,
                         const double *shifted, const double *sw, const double *f, double z, double *k,
                         double *loss);
    double (*log_f64)(double x);
    double (*bce_logits_f32)(const float *x, const float *t, ptrdiff_t n, const double *pw,
                             ptrdiff_t pws, const float *w, ptrdiff_t ws, const float *g, ptrdiff_t gst,
                             double gscale, double smooth, float *loss, float *grad, int stream);
    double (*bce_logits_f64)(const double *x, const double *t, ptrdiff_t n, const double *pw,
                             ptrdiff_t pws, const double *w, ptrdiff_t ws, const double *g, ptrdiff_t gst,
                             double gscale, double smooth, double *loss, double *grad, int stream);
    double (*bce_probs_f32)(const float *p, const float *t, ptrdiff_t n, const double *pw,
                            ptrdiff_t pws, const float *w, ptrdiff_t ws, const float *g, ptrdiff_t gst,
                            double gscale, double smooth, double clip, float *loss, float *grad);
    double (*bce_probs_f64)(const double *p, const double *t, ptrdiff_t n, const double *pw,
                            ptrdiff_t pws, const double *w, ptrdiff_t ws, const double *g, ptrdiff_t gst,
                            double gscale, double smooth, double clip, double *loss, double *grad);
    double (*bfocal_f32)(const float *x, const float *t, ptrdiff_t n, const double *pw,
                         ptrdiff_t pws, const float *w, ptrdiff_t ws, const float *g, ptrdiff_t gst,
                         double gscale, double smooth, double gamma, double alpha, int has_alpha,
                         float *loss, float *grad);
    double (*bfocal_f64)(const double *x, const double *t, ptrdiff_t n, const double *pw,
                         ptrdiff_t pws, const double *w, ptrdiff_t ws, const double *g, ptrdiff_t gst,
                         double gscale, double smooth, double gamma, double alpha, int has_alpha,
                         double *loss, double *grad);
    void (*info_f32)(const float *p, const float *q, ptrdiff_t nrows, ptrdiff_t C, int mode,
                     int clip, double lo, double hi, double f, float *grad, double *out);
    void (*info_f64)(const double *p, const double *q, ptrdiff_t nrows, ptrdiff_t C, int mode,
                     int clip, double lo, double hi, double f, double *grad, double *out);
    /* Streamed rows (outputs beyond the cache written with non-temporal
     * stores; see xent_sumexp_stream16_f32_): NULL where this ISA has none. */
    double (*sumexp_stream_f32)(const float *x, float *e, ptrdiff_t n, float m, const float *ep,
                                float *out, double k, double c, int op);
    float (*out1_f32)(float v, double k, double c, int op);
    double (*sumexp_stream_f64)(const double *x, double *e, ptrdiff_t n, double m, const double *ep,
                                double *out, double k, double c, int op);
    double (*out1_f64)(double v, double k, double c, int op);
} xent_row_ops;

/* Below these sums of exps log(s) is taken as log1p of the row's other
 * terms (xent_log_s_ in xent_rows_typed.h): where log(s) computed from s
 * would no longer be within a small fraction of an ulp of the input type
 * (float32: 2^-53 / 2^-20 = 2^-33 relative at worst; float64: at most half
 * an ulp of 1 against log 2). */
#define XENT_NEAR_ONE_F32 (1.0 + 0x1p-20)
#define XENT_NEAR_ONE_F64 2.0

/* the outputs of a streamed row (op of sumexp_stream_f32, out1_f32) */
#define XENT_STREAM_SUB 0 /* e k - c: cross-entropy's gradient */
#define XENT_STREAM_MUL 1 /* e k: the softmax */
#define XENT_STREAM_SHIFT 2 /* (x - k) - c from the logits: log_softmax */

/* The small-class path: rows of at most XENT_SMALL_C classes are processed
 * XENT_BLOCK at a time, vectorised across rows (see xent_rows_impl.h). */
#define XENT_SMALL_C 64
#define XENT_BLOCK 16

/* The clamp bounds of the vectorised exp, as data rather than constants:
 * with constant bounds GCC folds exp(bound) and splits every vectorised loop
 * into masked special cases (some 15 extra instructions per vector); read
 * from memory (once per function, into locals) they become one max and one
 * min instruction. Never written; one definition per extension module (this
 * header is included by one C file per module). */
#if defined(__GNUC__)
#define XENT_HIDDEN __attribute__((visibility("hidden")))
#else
#define XENT_HIDDEN
#endif
XENT_HIDDEN float xent_expf_bounds[2] = {-104.0f, 89.0f};
XENT_HIDDEN double xent_exp_bounds[2] = {-746.0, 710.0};
/* Outputs of at least this many bytes are streamed (see src/_rows.pxd). */
XENT_HIDDEN ptrdiff_t xent_stream_bytes = (ptrdiff_t)32 << 20;
static void xent_set_stream_bytes(ptrdiff_t n) { xent_stream_bytes = n; }
/* ... and only rows of at least this many classes, float32 and float64: the
 * streamed rows pay a scratch round trip per row that only long rows repay.
 * Measured (benchmarks/streaming_ab.py, 64-128 MiB, 2 threads, softmax
 * cross-entropy fwd+bwd / softmax / log_softmax as a ratio to np.copyto),
 * float32 streamed against plain: C=100 10.1/2.5, C=1000 2.2/1.3, C=2048
 * 1.26/1.28, C=4096 0.99/1.25, C=32000 0.82/1.16; float64 is never faster
 * streamed on these (C=4096 1.81/1.48, C=131072 1.67/1.40), so it is off. */
XENT_HIDDEN ptrdiff_t xent_stream_min_c[2] = {2048, PTRDIFF_MAX};
static void xent_set_stream_min_c(ptrdiff_t f32, ptrdiff_t f64)
{
    xent_stream_min_c[0] = f32;
    xent_stream_min_c[1] = f64;
}

#define XENT_SFX _baseline
#define XENT_ISA_NAME "baseline"
#include "xent_rows_impl.h"
#undef XENT_SFX
#undef XENT_ISA_NAME

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(XENT_NO_DISPATCH)
#define XENT_X86_DISPATCH 1
#include <immintrin.h> /* (its intrinsics are usable in functions of the AVX-512 target) */

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define XENT_SFX _avx2
#define XENT_ISA_NAME "avx2"
#include "xent_rows_impl.h"
#undef XENT_SFX
#undef XENT_ISA_NAME
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#define XENT_SFX _avx512
#define XENT_ISA_NAME "avx512"
#define XENT_AVX512 1
#include "xent_rows_impl.h"
#undef XENT_AVX512
#undef XENT_SFX
#undef XENT_ISA_NAME
#pragma GCC pop_options
#endif

/* The table every kernel of this module calls through. */
static const xent_row_ops *xent_ops = &xent_ops__baseline;

/* Instruction-set paths, best first, and whether this CPU can run them. */
static const xent_row_ops *xent_isa_table(int i, int *supported)
{
#ifdef XENT_X86_DISPATCH
    __builtin_cpu_init();
    switch (i) {
    case 0:
        *supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
        return &xent_ops__avx512;
    case 1:
        *supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        return &xent_ops__avx2;
    case 2:
        *supported = 1;
        return &xent_ops__baseline;
    }
#else
    if (i == 0) {
        *supported = 1;
        return &xent_ops__baseline;
    }
#endif
    *supported = 0;
    return NULL;
}

#endif
