/* The softmax family's call: what logsumexp, softmax, log_softmax and the
 * softmax cross-entropy (labels or probabilities, class and sample weights,
 * label smoothing, z-loss, softcap) compute, in one struct that every path
 * reads. The paths (src/xent_class_typed.h) are:
 *
 *   blocks   rows of few classes (xent_block_max_c), XENT_BLOCK at a time,
 *            transposed so that every step is vectorised across the rows;
 *   rows     a task is a row: its chunks of XENT_ROW_CHUNK classes (one for
 *            most rows) are each reduced to statistics (max, sum of exps,
 *            target sums), merged in chunk order, and written out; with a
 *            stream (xent_stream), the row's output is written with
 *            non-temporal stores while the thread's next row is read;
 *   chunks   a task is a chunk of a long row (too few rows for the
 *            threads): the same three steps, as three parallel loops.
 *
 * Which one a call takes is decided in one place, class_path() in
 * src/_rows.pxd. The loss terms every path uses are xent_ce_terms_ (and the
 * element-wise gradient g_j = k e_j - F a_j), written once.
 *
 * The per-row statistics of the chunk merge follow the NaN/inf contract of
 * src/_rows.pxd: a chunk whose max is -inf has s = 0, +inf the count of its
 * +inf entries, NaN a NaN sum.
 */
#ifndef XENT_CLASS_H
#define XENT_CLASS_H

#include <stddef.h>
#include <stdint.h>

/* what a call computes (xent_class_call.op) */
enum {
    XENT_CLS_LSE = 0,         /* lse[i] = logsumexp(x[i]) */
    XENT_CLS_SOFTMAX = 1,     /* out[i] = softmax(x[i]) (and lse unless NULL) */
    XENT_CLS_LOG_SOFTMAX = 2, /* out[i] = log_softmax(x[i]) */
    XENT_CLS_CE = 3,          /* loss[i] (and the gradient into out unless NULL) */
    XENT_CLS_FOCAL = 4,       /* the softmax focal loss of labels: the same outputs */
};

/* Rows of at most xent_block_max_c classes (xent_rows.h: a measured
 * crossover per type, at most XENT_SMALL_C, the block's workspace) take the
 * block path, XENT_BLOCK rows a block. */
#define XENT_SMALL_C 256
#define XENT_BLOCK 16
/* Rows are reduced in chunks of XENT_ROW_CHUNK classes. */
#define XENT_ROW_CHUNK 16384
/* A row task keeps the statistics of up to this many chunks on its stack
 * (longer rows: xent_class_call.chunks). */
#define XENT_STACK_CHUNKS 16
/* The softmax focal loss of probability targets (xent_sfocal_probs_): a
 * task is a run of rows of at most XENT_SF_TASK values (or one row); rows
 * of fewer than XENT_SF_FLAT classes are computed a task's values at once,
 * longer ones a row at a time; a thread's workspace holds XENT_SF_WS(C)
 * doubles. */
#define XENT_SF_TASK 4096
#define XENT_SF_FLAT 32
#define XENT_SF_WS(C) ((C) < XENT_SF_FLAT ? 9 * XENT_SF_TASK : 4 * (C))
/* The float32 outputs split a float64 factor into two float32 (k = kh + kl:
 * as the float64 product rounded once); factors from this magnitude on take
 * the float64 loops instead. */
#define XENT_SPLIT_MAX 1e38

/* One chunk's statistics: its max, sum of exps exp(x_j - m), and the target
 * sums of its class-only coefficients a_j (smoothing, probabilities):
 * t = sum a_j (x_j - m), w = sum a_j; after the row's merge, its factor
 * f = exp(m - M) against the row's max M. */
typedef struct {
    double m, s, t, w, f;
    ptrdiff_t am; /* with xent_class_call.argmax: the chunk's first NaN (anan), else its first max */
    int anan;
} xent_chunk;

/* One row's merged terms (rows and chunks paths). */
typedef struct {
    double m;     /* the row max M */
    double s;     /* sum_j exp(x_j - M) */
    double log_s; /* log(s), as xent_c_log_s_ */
    double k;     /* the exps' factor in the output */
    double f;     /* the gradient factor gs sw */
    double ay;    /* the label's own coefficient (1 - eps) w_y */
    double xy;    /* the label's logit (read before any output is written) */
    double hq, hp; /* the hessian's terms (xent_class_call.hess) */
    double om;    /* S - 1, the sum of the exps other than the max's (1 - p_max = om / S) */
    int skip;     /* the row counts for nothing: loss 0, gradient 0 */
} xent_row_terms;

/* The hessian's policy (xent_class_call.hpol, the binary ops' hpol): the
 * value as computed, at least the floor, or its magnitude at least the floor. */
enum { XENT_HESS_EXACT = 0, XENT_HESS_CLIP = 1, XENT_HESS_ABS = 2 };

typedef struct {
    int op;                 /* XENT_CLS_* */
    ptrdiff_t n, C;         /* rows, classes */
    const void *x;          /* n x C, C-contiguous, float or double */
    void *out;              /* n x C outputs (may be x), or NULL */
    void *lse;              /* n values of x's type, or NULL */
    double *loss;           /* XENT_CLS_CE: n losses */
    /* XENT_CLS_CE's targets and options */
    const int64_t *labels;  /* class indices, or NULL */
    const void *target;     /* probability rows (x's type and shape), or NULL */
    int64_t ignore;         /* ignore_index (labels) */
    const double *w;        /* class weights, NULL: 1 */
    const double *sw;       /* sample weights, NULL: 1 */
    const double *gs;       /* per-row gradient scale, gs[i * gss] */
    ptrdiff_t gss;
    const double *u;        /* the smoothing's eps / C * w_j, NULL without smoothing */
    double eps, total_w, z; /* smoothing, sum_j w_j, z-loss */
    double cap;             /* softcap c: logits become c tanh(x / c); 0: none */
    double gamma;           /* XENT_CLS_FOCAL: the focusing parameter, */
    const double *alpha;    /* and the per-class factors */
    /* the diagonal of the loss's hessian (gradient boosting), x's type and
     * shape, or NULL: of XENT_CLS_CE with labels (no z-loss, softcap or
     * probabilities) and XENT_CLS_FOCAL, with the gradient. Per row, with
     * d_j = [j == y] - p_j,
     *     h_j = hq d_j^2 + hp p_j (1 - p_j)
     * (CE: hq = 0, hp = hfac F A; focal: xent_focal_hterms_), then the
     * policy hpol with the floor hmin. Calls with it never stream. */
    void *hess;
    double hfac, hmin;
    int hpol;
    /* XENT_CLS_CE: each row's argmax (the first NaN, else the first maximum
     * of the logits, after the softcap), -1 for a row that counts for
     * nothing; or NULL */
    int64_t *argmax;
    /* the chunks path's statistics (n * per chunks, n rows), and the rows
     * path's for rows of more than XENT_STACK_CHUNKS chunks; else NULL */
    xent_chunk *chunks;
    xent_row_terms *rows;
} xent_class_call;

/* The rows of a streamed task (AVX-512): each row's exps go to one of two
 * scratch rows, and its output is pending until the thread's next row is
 * read, chunk by chunk, when the pending chunk is written from the scratch
 * with non-temporal stores in the same loop. live[q] says whether chunk q of
 * the pending row is still to be written (a chunk whose factor the float32
 * split cannot take is written at once, on the plain path). */
#define XENT_STREAM_CHUNKS 16
typedef struct {
    ptrdiff_t C;
    int op;                 /* XENT_STREAM_SUB, _MUL or _SHIFT */
    size_t itemsize;
    char *scr[2];           /* two scratch rows, 64-byte aligned */
    int next;               /* the scratch row the next row's exps go to */
    int pending;            /* a row's output is pending */
    const void *src;        /* its exps (a scratch row), or logits (_SHIFT) */
    void *dst;              /* its output row */
    double c;               /* the op's offset (_SHIFT: log s) */
    double k[XENT_STREAM_CHUNKS];
    unsigned char live[XENT_STREAM_CHUNKS];
    ptrdiff_t fix;          /* an entry set apart (the label), or -1: */
    double fix_delta;       /* dst[fix] = out1(src[fix]) - fix_delta, after its chunk */
} xent_stream;

#endif
