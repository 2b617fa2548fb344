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

#endif
