# Kernels of the information-theory functions: entropy, cross-entropy between
# probability vectors (dense p, or integer labels) and the Kullback-Leibler
# divergence, with the gradient with respect to q.
#
# Per row i (C values along the class axis), with every term computed in
# float64 from the input values:
#
#     cross-entropy  H(p, q)  = -sum_j p_j log q_j
#     KL divergence  KL(p||q) =  sum_j p_j log(p_j / q_j)
#     entropy        H(p)     = -sum_j p_j log p_j
#
# Conventions (see xent/_information.py for the public description):
#   * a term with p_j == 0 is 0 (0 log 0 = 0, even where q_j == 0) and has a
#     0 gradient; only a NaN q_j there still makes the row NaN;
#   * with clipping on, q_j is replaced by lo where q_j < lo and by hi where
#     q_j > hi, and the gradient there is 0;
#   * a NaN in p or q gives a NaN row (the sums propagate it);
#   * the gradient is d value / d q_j = -p_j / q_j (for H(p, q) and KL),
#     times the reduction factor f.
# The row sums are compensated (Neumaier), so the result does not depend on
# the summation order beyond the last bit of a float64.
#
# KL uses log(p_j / q_j) (one rounding of the ratio, no cancellation between
# two logs when p_j ~ q_j) unless the ratio overflows, underflows or is not a
# positive number, where it falls back to log(p_j) - log(q_j).
#
# The log is the scalar libm log (vectorising it is later work). As in every
# xent kernel a row is computed by one thread, so results are bit-identical
# for any thread count, and nothing is validated here (xent/_validate.py and
# xent/_information.py do it).

from cython.parallel cimport prange
from libc.float cimport DBL_MIN
from libc.math cimport fabs, log, INFINITY
from libc.string cimport memset

from _rows cimport floating, xent_row_ops, xent_ops, xent_isa_table, xent_stream_bytes, xent_set_stream_bytes, xent_stream_min_c, xent_set_stream_min_c

include "_isa.pxi"

# what a probability-row kernel computes
MODE_CROSS_ENTROPY = 0
MODE_KL = 1
MODE_ENTROPY = 2

cdef enum:
    XENT_MODE = 0
    KL_MODE = 1
    ENTROPY_MODE = 2


cdef inline void acc(double* s, double* comp, double v) noexcept nogil:
    # Neumaier's compensated s += v (comp collects the lost low-order parts)
    cdef double t = s[0] + v
    if fabs(s[0]) >= fabs(v):
        comp[0] += (s[0] - t) + v
    else:
        comp[0] += (v - t) + s[0]
    s[0] = t


cdef inline double total(double s, double comp) noexcept nogil:
    # once a term was infinite or NaN, comp may be NaN: s alone is the answer
    return s + comp if s - s == 0 else s


cdef inline double kl_term(double pj, double qj) noexcept nogil:
    cdef double r = pj / qj
    if r >= DBL_MIN and r < INFINITY:
        return pj * log(r)
    return pj * (log(pj) - log(qj))


cdef inline double info_row(const floating* pr, const floating* qr, Py_ssize_t c, int mode,
                            bint clip, double lo, double hi, double f,
                            floating* gr) noexcept nogil:
    # the value of one row; writes the gradient row gr unless it is NULL
    cdef Py_ssize_t j
    cdef double s = 0, comp = 0, pj, qj, v
    cdef bint clipped
    for j in range(c):
        pj = pr[j]
        qj = qr[j] if mode != ENTROPY_MODE else pj
        if pj == 0:
            if gr != NULL:
                gr[j] = 0
            if qj == qj:
                continue
            acc(&s, &comp, qj)  # 0 * log(NaN): the NaN reaches the row
            continue
        clipped = False
        if clip:
            if qj < lo:
                qj = lo
                clipped = True
            elif qj > hi:
                qj = hi
                clipped = True
        if mode == XENT_MODE:
            v = -pj * log(qj)
        elif mode == KL_MODE:
            v = kl_term(pj, qj)
        else:
            v = -pj * log(pj)
        acc(&s, &comp, v)
        if gr != NULL:
            gr[j] = 0 if clipped else <floating>(-f * (pj / qj))  # (f * pj may underflow)
    return total(s, comp)


def probs_rows(const floating[:, ::1] p, const floating[:, ::1] q, int mode, bint clip,
               double lo, double hi, double f, double[::1] out, floating[:, ::1] grad,
               int n_threads):
    """out[i] = the mode's value of row i of (p, q); grad (if not None) = f * d out[i] / d q[i].

    mode: MODE_CROSS_ENTROPY, MODE_KL or MODE_ENTROPY (q is then not read; pass p).
    With clip, q is clipped to [lo, hi] (zero gradient where clipped).
    """
    cdef Py_ssize_t n = p.shape[0], c = p.shape[1], i
    cdef const floating* pp = &p[0, 0] if n > 0 and c > 0 else NULL
    cdef const floating* qp = &q[0, 0] if n > 0 and c > 0 else NULL
    cdef floating* g = &grad[0, 0] if grad is not None and n > 0 and c > 0 else NULL
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            out[i] = info_row(pp + i * c, qp + i * c, c, mode, clip, lo, hi, f,
                              g + i * c if g != NULL else NULL)


def labels_rows(const long long[::1] labels, const floating[:, ::1] q, bint clip, double lo,
                double hi, double f, double[::1] out, floating[:, ::1] grad, int n_threads):
    """out[i] = -log q[i, labels[i]] (q clipped to [lo, hi] with clip); grad (if not
    None) = f * d out[i] / d q[i]: -f / q[i, y] at the label, 0 elsewhere (and 0 if clipped).

    Only q[i, labels[i]] is read for the value.
    """
    cdef Py_ssize_t n = q.shape[0], c = q.shape[1], i
    cdef long long y
    cdef double qy
    cdef bint clipped
    cdef bint want_grad = grad is not None
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            y = labels[i]
            qy = q[i, y]
            clipped = False
            if clip:
                if qy < lo:
                    qy = lo
                    clipped = True
                elif qy > hi:
                    qy = hi
                    clipped = True
            out[i] = -log(qy)
            if want_grad:
                memset(&grad[i, 0], 0, c * sizeof(floating))
                if not clipped:
                    grad[i, y] = <floating>(-f * (1 / qy))  # the bits of one-hot p
