/* One instruction set's row primitives and table (xent_rows.h).
 *
 * setup.py compiles this file once per instruction set, with that set's
 * compiler flags and one of XENT_ISA_BASELINE, XENT_ISA_AVX2 or
 * XENT_ISA_AVX512 defined (and XENT_X86_DISPATCH in all three when the
 * vectorised sets are built: x86-64 with GCC or Clang). The baseline
 * object also holds what the module shares: the exp bounds, the streaming
 * thresholds, the table pointer in use and the run-time ISA check.
 */
#include "xent_rows.h"

#if defined(XENT_ISA_AVX512)
#include <immintrin.h>
#define XENT_SFX _avx512
#define XENT_ISA_NAME "avx512"
#define XENT_AVX512 1
#elif defined(XENT_ISA_AVX2)
#include <immintrin.h>
#define XENT_SFX _avx2
#define XENT_ISA_NAME "avx2"
#else
#ifndef XENT_ISA_BASELINE
#define XENT_ISA_BASELINE 1
#endif
#define XENT_SFX _baseline
#define XENT_ISA_NAME "baseline"
#endif

#include "xent_rows_impl.h"

#ifdef XENT_ISA_BASELINE
float xent_expf_bounds[2] = {-104.0f, 89.0f};
double xent_exp_bounds[2] = {-746.0, 710.0};

ptrdiff_t xent_stream_bytes = (ptrdiff_t)32 << 20;
/* Streamed rows pay a scratch round trip per row that only long rows repay.
 * Measured (benchmarks/streaming_ab.py, 64-128 MiB, 2 threads, softmax
 * cross-entropy fwd+bwd / softmax / log_softmax as a ratio to np.copyto),
 * float32 streamed against plain: C=100 10.1/2.5, C=1000 2.2/1.3, C=2048
 * 1.26/1.28, C=4096 0.99/1.25, C=32000 0.82/1.16; float64 is never faster
 * streamed on these (C=4096 1.81/1.48, C=131072 1.67/1.40), so it is off. */
ptrdiff_t xent_stream_min_c[2] = {2048, PTRDIFF_MAX};

/* Measured (docs/performance.md, "The block path's crossover"): the
 * block path against the rows path, softmax cross-entropy fwd+bwd and
 * softmax, 32 and 64 MiB, 1 and 2 threads. logsumexp, with no output to
 * transpose back, stays ahead to twice these (class_path, src/_rows.pxd). */
ptrdiff_t xent_block_max_c[2] = {64, 48};

void xent_set_stream_bytes(ptrdiff_t n) { xent_stream_bytes = n; }

void xent_set_stream_min_c(ptrdiff_t f32, ptrdiff_t f64)
{
    xent_stream_min_c[0] = f32;
    xent_stream_min_c[1] = f64;
}

const xent_row_ops *xent_ops = &xent_ops__baseline;

#define XENT_OP_NAME(ret, name, params) #name,
const char *const xent_op_names[] = {XENT_OPS(XENT_OP_NAME) NULL};
#undef XENT_OP_NAME

const xent_row_ops *xent_isa_table(int i, int *supported)
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
