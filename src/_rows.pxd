# Shared row primitives of every xent kernel.
#
# A "row" is the contiguous run of C values along the class axis. Every loss
# shifts its row by the row maximum m and sums exp(x_j - m); the functions here
# are the one place where that is done, so a faster exp or a vectorised sum
# changes every kernel at once.
#
# Conventions (the NaN/inf contract of the whole library):
#   * row_max ignores NaN and returns -inf for an empty row or a row of -inf/NaN.
#   * For a finite m, the weights are e_j = exp(x_j - m) and s = sum_j e_j >= 1
#     (NaN when the row holds a NaN).
#   * For an infinite m the weights are the limits: with m = +inf, e_j = 1 at
#     the +inf entries and 0 elsewhere (s = their count); with m = -inf every
#     e_j = 0 (s = 0). A NaN anywhere in the row makes s NaN.
#   Then logsumexp = m + log(s) holds in every case (-inf + log 0 = -inf).
#
# Accumulation: sums of exps are accumulated in float64 for float32 and
# float64 input alike (Kahan-compensated for float64 input); the exp itself is
# computed in the input precision.

from libc.math cimport exp, expf, log, INFINITY

cdef extern from "xent_omp.h":
    int XENT_HAVE_OPENMP
    int xent_omp_max_threads() noexcept nogil
    int xent_omp_num_threads() noexcept nogil

ctypedef fused floating:
    float
    double


cdef inline floating xexp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline bint is_finite(floating x) noexcept nogil:
    # True for finite x; False for +-inf and NaN (x - x is NaN for those).
    return x - x == 0


cdef inline floating row_max(const floating* x, Py_ssize_t n) noexcept nogil:
    cdef floating m = -INFINITY
    cdef Py_ssize_t j
    for j in range(n):
        if x[j] > m:
            m = x[j]
    return m


cdef inline double nonfinite_row_sum(const floating* x, Py_ssize_t n, floating m) noexcept nogil:
    # s for a row whose maximum m is +inf or -inf (see the conventions above).
    cdef double s = 0.0
    cdef Py_ssize_t j
    for j in range(n):
        if x[j] != x[j]:
            return x[j]
        if m == INFINITY and x[j] == INFINITY:
            s += 1.0
    return s


cdef inline floating nonfinite_weight(floating xj, floating m) noexcept nogil:
    # e_j for a row whose maximum m is +inf or -inf.
    return 1 if (m == INFINITY and xj == INFINITY) else 0


cdef struct ExpSum:
    # Running sum of exps in float64: plain for float32 input (float64 already
    # holds 29 guard bits there), Kahan-compensated for float64 input.
    double s
    double c


cdef inline void expsum_add(ExpSum* acc, floating e) noexcept nogil:
    cdef double y, t
    if floating is float:
        acc.s += e
    else:
        y = e - acc.c
        t = acc.s + y
        acc.c = (t - acc.s) - y
        acc.s = t


cdef inline double row_sum_exp(const floating* x, Py_ssize_t n, floating m) noexcept nogil:
    # s = sum_j e_j for the row maximum m, finite or not.
    cdef ExpSum acc = ExpSum(0.0, 0.0)
    cdef Py_ssize_t j
    if not is_finite(m):
        return nonfinite_row_sum(x, n, m)
    for j in range(n):
        expsum_add(&acc, xexp(x[j] - m))
    return acc.s


cdef inline double row_store_exp(const floating* x, floating* e, Py_ssize_t n, floating m) noexcept nogil:
    # Writes e_j to e and returns s. e may be the same memory as x.
    cdef ExpSum acc = ExpSum(0.0, 0.0)
    cdef double s
    cdef floating ej
    cdef Py_ssize_t j
    if not is_finite(m):
        s = nonfinite_row_sum(x, n, m)  # before e (which may be x) is written
        for j in range(n):
            e[j] = nonfinite_weight(x[j], m)
        return s
    for j in range(n):
        ej = xexp(x[j] - m)
        e[j] = ej
        expsum_add(&acc, ej)
    return acc.s


cdef inline floating row_logsumexp(floating m, double s) noexcept nogil:
    # log(sum_j exp(x_j)) from the shift m and s (every case of the contract).
    return <floating>(m + log(s))
