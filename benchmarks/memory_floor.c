/* The memory floor of this machine for the 4096x32000 float32 shape of the
 * bench, on one thread and on two, medians of 9 runs:
 *
 * 1. plain memory traffic: a read of the array, a read with a plain write of
 *    another array (each written line first read), a read with a streamed
 *    (non-temporal) write, and memcpy;
 * 2. a synthetic kernel shaped like xent's streamed rows: read a row, a chain
 *    of k dependent FMAs on each vector of 16 values (the arithmetic), stream
 *    the result out, the next row prefetched. Growing k slows one thread
 *    down; the table shows how much faster two threads can then be, for a
 *    kernel as fast on one thread as a given xent kernel.
 *
 * Not part of the package or the tests; x86-64 with AVX-512 and GCC:
 *
 *   gcc -O3 -fopenmp benchmarks/memory_floor.c -o /tmp/memory_floor && /tmp/memory_floor
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4096
#define C 32000
#define RUNS 9
static float *x, *g;

__attribute__((target("avx512f"))) static double traffic(int nt, int mode)
{
    double t = omp_get_wtime();
    float tot = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : tot)
    for (long i = 0; i < N; i++) {
        const float *xr = x + i * C;
        float *gr = g + i * C;
        if (mode == 0) {
            __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
            for (long j = 0; j < C; j += 64) {
                a = _mm512_add_ps(a, _mm512_load_ps(xr + j));
                b = _mm512_add_ps(b, _mm512_load_ps(xr + j + 16));
                c = _mm512_add_ps(c, _mm512_load_ps(xr + j + 32));
                d = _mm512_add_ps(d, _mm512_load_ps(xr + j + 48));
            }
            tot += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
        } else if (mode == 1) {
            for (long j = 0; j < C; j += 16)
                _mm512_store_ps(gr + j, _mm512_add_ps(_mm512_load_ps(xr + j), _mm512_load_ps(xr + j)));
        } else if (mode == 2) {
            for (long j = 0; j < C; j += 16)
                _mm512_stream_ps(gr + j, _mm512_add_ps(_mm512_load_ps(xr + j), _mm512_load_ps(xr + j)));
        } else {
            memcpy(gr, xr, C * sizeof(float));
        }
    }
    _mm_sfence();
    if (tot == 1.5f)
        puts("");
    return omp_get_wtime() - t;
}

__attribute__((target("avx512f"))) static double synthetic(int nt, int k)
{
    double t = omp_get_wtime();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8)
    for (long i = 0; i < N; i++) {
        const float *xr = x + i * C;
        float *gr = g + i * C;
        const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
        for (long j = 0; j < C; j += 32) {
            _mm_prefetch((const char *)(xr + C + j), _MM_HINT_T1);
            _mm_prefetch((const char *)(xr + C + j + 16), _MM_HINT_T1);
            __m512 v = _mm512_load_ps(xr + j), w = _mm512_load_ps(xr + j + 16);
            for (int q = 0; q < k; q++) {
                v = _mm512_fmadd_ps(v, a, b);
                w = _mm512_fmadd_ps(w, a, b);
            }
            _mm512_stream_ps(gr + j, v);
            _mm512_stream_ps(gr + j + 16, w);
        }
    }
    _mm_sfence();
    return omp_get_wtime() - t;
}

static int cmp(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

static double median(double *t)
{
    qsort(t, RUNS, sizeof(double), cmp);
    return t[RUNS / 2];
}

int main(void)
{
    const char *name[] = {"read", "read + plain write", "read + streamed write", "memcpy"};
    const int ks[] = {0, 8, 16, 20, 24, 28, 32, 48};
    const int nk = (int)(sizeof(ks) / sizeof(ks[0]));
    x = aligned_alloc(64, (size_t)N * C * sizeof(float));
    g = aligned_alloc(64, (size_t)N * C * sizeof(float));
    for (size_t i = 0; i < (size_t)N * C; i++) {
        x[i] = (float)(i % 1000);
        g[i] = 0;
    }
    double t1[RUNS], t2[RUNS];
    printf("| 4096x32000 float32 | 1 thread ms | 2 threads ms | ratio |\n| --- | ---: | ---: | ---: |\n");
    for (int m = 0; m < 4; m++) {
        for (int r = 0; r < RUNS; r++) { /* one thread and two take turns */
            t1[r] = traffic(1, m);
            t2[r] = traffic(2, m);
        }
        double a = median(t1), b = median(t2);
        printf("| %s | %.1f | %.1f | %.2fx |\n", name[m], a * 1e3, b * 1e3, a / b);
    }
    printf("\n| synthetic streamed kernel, k FMAs a vector | 1 thread ms | 2 threads ms | ratio |\n"
           "| --- | ---: | ---: | ---: |\n");
    for (int q = 0; q < nk; q++) {
        for (int r = 0; r < RUNS; r++) {
            t1[r] = synthetic(1, ks[q]);
            t2[r] = synthetic(2, ks[q]);
        }
        double a = median(t1), b = median(t2);
        printf("| k = %d | %.1f | %.1f | %.2fx |\n", ks[q], a * 1e3, b * 1e3, a / b);
    }
    return 0;
}
