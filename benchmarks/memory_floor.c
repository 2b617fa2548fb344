/* The memory floor of this machine for the 4096x32000 float32 shape of the
 * bench, on one thread and on two: a plain read of the array, a read with a
 * plain write of another array (each written line first read), a read with
 * a streamed (non-temporal) write, and memcpy. Best of 10 per figure.
 * Not part of the package or the tests; x86-64 with AVX-512 and GCC:
 *
 *   gcc -O3 -fopenmp benchmarks/memory_floor.c -o /tmp/memory_floor && /tmp/memory_floor
 *
 * A kernel at memory speed on two threads can be at most (one-thread floor /
 * two-thread floor) faster on two than on one. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4096
#define C 32000
static float *x, *g;

__attribute__((target("avx512f"))) static double run(int nt, int mode)
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

int main(void)
{
    const char *name[] = {"read", "read + plain write", "read + streamed write", "memcpy"};
    x = aligned_alloc(64, (size_t)N * C * sizeof(float));
    g = aligned_alloc(64, (size_t)N * C * sizeof(float));
    for (size_t i = 0; i < (size_t)N * C; i++) {
        x[i] = (float)i;
        g[i] = 0;
    }
    double best[3][4];
    for (int nt = 1; nt <= 2; nt++)
        for (int m = 0; m < 4; m++)
            best[nt][m] = 1e9;
    for (int r = 0; r < 10; r++)
        for (int nt = 1; nt <= 2; nt++)
            for (int m = 0; m < 4; m++) {
                double t = run(nt, m);
                if (t < best[nt][m])
                    best[nt][m] = t;
            }
    printf("| 4096x32000 float32 | 1 thread ms | 2 threads ms | ratio |\n| --- | ---: | ---: | ---: |\n");
    for (int m = 0; m < 4; m++)
        printf("| %s | %.1f | %.1f | %.2fx |\n", name[m], best[1][m] * 1e3, best[2][m] * 1e3,
               best[1][m] / best[2][m]);
    return 0;
}
