/* OpenMP queries that also compile without OpenMP (then everything is serial). */
#ifndef XENT_OMP_H
#define XENT_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define XENT_HAVE_OPENMP 1
static inline int xent_omp_max_threads(void) { return omp_get_max_threads(); }
static inline int xent_omp_num_threads(void) { return omp_get_num_threads(); }
#else
#define XENT_HAVE_OPENMP 0
static inline int xent_omp_max_threads(void) { return 1; }
static inline int xent_omp_num_threads(void) { return 1; }
#endif

/* What built the kernels (xent.show_config()): the compiler's own version
 * string, the OpenMP specification date (_OPENMP, 0 without OpenMP) and the
 * flags setup.py passed (XENT_BUILD_FLAGS, a string literal it defines). */
#if defined(__clang__) || defined(__INTEL_LLVM_COMPILER)
#define XENT_COMPILER __VERSION__ /* (names itself: "Clang 16.0.6 ...") */
#elif defined(__GNUC__)
#define XENT_COMPILER "GCC " __VERSION__
#elif defined(_MSC_FULL_VER)
#define XENT_STR2(x) #x
#define XENT_STR(x) XENT_STR2(x)
#define XENT_COMPILER "MSVC " XENT_STR(_MSC_FULL_VER)
#else
#define XENT_COMPILER "unknown"
#endif
#ifdef _OPENMP
#define XENT_OPENMP_DATE _OPENMP
#else
#define XENT_OPENMP_DATE 0
#endif
#ifndef XENT_BUILD_FLAGS
#define XENT_BUILD_FLAGS ""
#endif

#endif
