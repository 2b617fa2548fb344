/* Row primitives of xent with run-time instruction-set dispatch.
 *
 * xent_rows_impl.h is compiled once per instruction set (src/xent_isa.c)
 * into a table of function pointers (xent_row_ops). The kernels call through
 * xent_ops, the table in use, chosen at import (xent._dispatch): the best the
 * CPU has, or the one XENT_ISA names. The AVX2 and AVX-512 tables are only
 * ever called on CPUs that have those instructions.
 */
#ifndef XENT_ROWS_H
#define XENT_ROWS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xent_class.h"

/* The operations of an instruction set, declared once: X(return type, name,
 * parameter list), each for float32 (f32, R = float) and float64 (f64, R =
 * double). From this list follow the table's struct (below), each
 * instruction set's table (xent_rows_impl.h: .name = xent_<name>_<isa>) and
 * the names Python sees (xent_op_names; tests/test_build.py checks the
 * Cython mirror in src/_rows.pxd against them). */
#define XENT_OPS(X)                                                                                     \
    XENT_TYPED_OPS(X, f32, float) XENT_TYPED_OPS(X, f64, double)                                        \
    /* the sum of a group of per-row losses (the reduced loss, class_rows.pxi) */                      \
    X(double, loss_group_sum, (const double *v, ptrdiff_t n))                                           \
    /* bfloat16 <-> float32 (bfloat16.pxi; the bfloat16 groups of class_rows.pxi) */                   \
    X(void, bf16_widen, (const uint16_t *s, float *d, ptrdiff_t n))                                     \
    X(void, bf16_narrow, (const float *s, uint16_t *d, ptrdiff_t n))

#define XENT_TYPED_OPS(X, T, R)                                                                         \
    X(R, max_##T, (const R *x, ptrdiff_t n))                                                            \
    X(double, sumexp_##T, (const R *x, R *e, ptrdiff_t n, R m))                                         \
    X(void, scale_##T, (R *e, ptrdiff_t n, double k))                                                   \
    X(double, sum_##T, (const R *x, ptrdiff_t n))                                                       \
    X(double, dot_##T, (const R *a, const R *b, ptrdiff_t n))                                           \
    X(void, softmax_vjp_##T, (const R *p, const R *g, R *out, ptrdiff_t n, double dot))                 \
    X(void, log_softmax_vjp_##T, (const R *lp, const R *g, R *out, ptrdiff_t n, double total))          \
    X(R, exp_##T, (R x))                                                                                \
    /* the element-wise binary losses (binary.pxi, focal.pxi) */                                       \
    X(double, bce_logits_##T, (const R *x, const R *t, ptrdiff_t n, const double *pw, ptrdiff_t pws,    \
                               const R *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms, const R *g, ptrdiff_t gst, double gscale,      \
                               double smooth, R *loss, R *grad, int stream, R *hess, double hfac, \
                               int hpol, double hmin))                                                            \
    X(double, bce_probs_##T, (const R *p, const R *t, ptrdiff_t n, const double *pw, ptrdiff_t pws,     \
                              const R *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms, const R *g, ptrdiff_t gst, double gscale,       \
                              double smooth, double clip, R *loss, R *grad))                            \
    X(double, bfocal_##T, (const R *x, const R *t, ptrdiff_t n, const double *pw, ptrdiff_t pws,        \
                           const R *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms, const R *g, ptrdiff_t gst, double gscale,          \
                           double smooth, double gamma, double alpha, int has_alpha, R *loss, R *grad, \
                           R *hess, double hfac, int hpol, double hmin))                                             \
    X(double, bfocal_probs_##T, (const R *x, const R *t, ptrdiff_t n, const double *pw, ptrdiff_t pws,  \
                                 const R *w, ptrdiff_t ws, const uint8_t *m, ptrdiff_t ms, const R *g, ptrdiff_t gst, double gscale,    \
                                 double smooth, double clip, double gamma, double alpha, int has_alpha, \
                                 R *loss, R *grad))                                                     \
    X(void, sfocal_probs_##T, (const R *x, const R *t, const int64_t *labels, ptrdiff_t nrows,          \
                               ptrdiff_t C, const double *alpha, double gamma, double smooth,            \
                               const double *gs, ptrdiff_t gss, double *loss, R *grad, double *ws))      \
    /* the information-theory rows (information.pxi) */                                                 \
    X(void, info_##T, (const R *p, const R *q, ptrdiff_t nrows, ptrdiff_t C, int mode, int clip,        \
                       double lo, double hi, const double *f, ptrdiff_t fs, R *grad, double *out,      \
                       R *terms, const uint8_t *w, ptrdiff_t wrs, ptrdiff_t wcs, double smooth,       \
                       int renorm, double gamma, const double *alpha))                                 \
    /* distillation from two logit arrays (distill.pxi) */                                             \
    X(void, distill_##T, (const R *s, const R *t, ptrdiff_t nrows, ptrdiff_t C, double it, int mode,    \
                          double beta, const double *w, ptrdiff_t wst, const double *f, ptrdiff_t fs,   \
                          double *loss, R *grad, double *ws))                                           \
    /* log-sum-exp, softmax and log_softmax with scale factors b and a mask (softmax.pxi) */           \
    X(void, scaled_##T, (const R *x, ptrdiff_t nrows, ptrdiff_t C, const R *b, ptrdiff_t brs,           \
                         ptrdiff_t bcs, const uint8_t *w, ptrdiff_t wrs, ptrdiff_t wcs, int op, R *res,  \
                         R *sgn, R *out, R *E))                                                         \
    /* the softmax family's paths (xent_class.h) */                                                     \
    X(void, class_block_##T, (const xent_class_call *a, ptrdiff_t i0, ptrdiff_t nb))                    \
    X(void, class_row_##T, (const xent_class_call *a, ptrdiff_t i, xent_stream *st))                    \
    X(void, class_start_##T, (const xent_class_call *a, ptrdiff_t i))                                   \
    X(void, class_chunk_stats_##T, (const xent_class_call *a, ptrdiff_t q, xent_stream *st))            \
    X(void, class_row_merge_##T, (const xent_class_call *a, ptrdiff_t i))                               \
    X(void, class_chunk_out_##T, (const xent_class_call *a, ptrdiff_t q))                               \
    X(void, class_stream_close_##T, (xent_stream *st))

#define XENT_OP_FIELD(ret, name, params) ret(*name) params;
typedef struct {
    const char *name; /* the instruction set's */
    int streams;      /* 1: its rows can stream their outputs (xent_stream) */
    XENT_OPS(XENT_OP_FIELD)
} xent_row_ops;
#undef XENT_OP_FIELD

/* the information rows' mode (info_##T): 0 H(p, q), 1 KL, 2 H(p), 3 the
 * focal cross-entropy -sum alpha_j p_j (1 - q_j)^gamma log q_j, and flags: q
 * given as log q, p given as log p (not with 3) */
#define XENT_INFO_FOCAL 3
#define XENT_INFO_LOG_Q 4
#define XENT_INFO_LOG_P 8

/* what a distillation row computes (distill_##T) */
#define XENT_DISTILL_FORWARD 0 /* KL(teacher || student) */
#define XENT_DISTILL_REVERSE 1 /* KL(student || teacher) */
#define XENT_DISTILL_JSD 2     /* the generalised Jensen-Shannon divergence */

/* what a row of scaled_##T computes */
#define XENT_SCALED_LSE 0         /* log|sum_j b_j exp(x_j)| (its sign, gradient) */
#define XENT_SCALED_SOFTMAX 1     /* the masked softmax */
#define XENT_SCALED_LOG_SOFTMAX 2 /* the masked log_softmax */

/* Below these sums of exps log(s) is taken as log1p of the row's other
 * terms (xent_log_s_ in xent_rows_typed.h): where log(s) computed from s
 * would no longer be within a small fraction of an ulp of the input type
 * (float32: 2^-53 / 2^-20 = 2^-33 relative at worst; float64: at most half
 * an ulp of 1 against log 2). */
#define XENT_NEAR_ONE_F32 (1.0 + 0x1p-20)
#define XENT_NEAR_ONE_F64 2.0

/* the outputs of a streamed row (xent_stream.op) */
#define XENT_STREAM_SUB 0 /* e k - c: cross-entropy's gradient */
#define XENT_STREAM_MUL 1 /* e k: the softmax */
#define XENT_STREAM_SHIFT 2 /* (x - k) - c from the logits: log_softmax */


/* Symbols shared by the module's C files, not exported from it. */
#if defined(__GNUC__)
#define XENT_HIDDEN __attribute__((visibility("hidden")))
#else
#define XENT_HIDDEN
#endif

/* The clamp bounds of the vectorised exp, as data rather than constants:
 * with constant bounds GCC folds exp(bound) and splits every vectorised loop
 * into masked special cases (some 15 extra instructions per vector); read
 * from memory (once per function, into locals) they become one max and one
 * min instruction. Never written. */
XENT_HIDDEN extern float xent_expf_bounds[2];   /* {-104, 89} */
XENT_HIDDEN extern double xent_exp_bounds[2];   /* {-746, 710} */
/* Outputs of at least this many bytes are streamed (see src/_rows.pxd), */
XENT_HIDDEN extern ptrdiff_t xent_stream_bytes;
/* ... of rows of at least this many classes, [float32, float64]. */
XENT_HIDDEN extern ptrdiff_t xent_stream_min_c[2];
/* Rows of at most this many classes take the block path, [float32, float64]
 * (at most XENT_SMALL_C). */
XENT_HIDDEN extern ptrdiff_t xent_block_max_c[2];
XENT_HIDDEN void xent_set_stream_bytes(ptrdiff_t n);
XENT_HIDDEN void xent_set_stream_min_c(ptrdiff_t f32, ptrdiff_t f64);

/* Each instruction set's table: src/xent_isa.c compiled once per
 * instruction set by setup.py, with that ISA's compiler flags (the build
 * itself targets the portable baseline; -march=native never). */
XENT_HIDDEN extern const xent_row_ops xent_ops__baseline;
#ifdef XENT_X86_DISPATCH
XENT_HIDDEN extern const xent_row_ops xent_ops__avx2;
XENT_HIDDEN extern const xent_row_ops xent_ops__avx512;
#endif
/* The table every kernel calls through (set by xent._dispatch). */
XENT_HIDDEN extern const xent_row_ops *xent_ops;
/* Instruction-set paths, best first (NULL past the last), and whether this
 * CPU can run them. */
XENT_HIDDEN const xent_row_ops *xent_isa_table(int i, int *supported);
/* The ops' names, in table order, NULL-terminated. */
XENT_HIDDEN extern const char *const xent_op_names[];

#endif
