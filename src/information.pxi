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
# The rows are xent_info_ of src/xent_rows_typed.h (the vectorised float64
# log of the active instruction set, Kahan-compensated float64 lane sums).
# KL uses log(p_j / q_j) (one rounding of the ratio, no cancellation between
# two logs when p_j ~ q_j) unless the ratio overflows, underflows or is not a
# positive number, where it falls back to log(p_j) - log(q_j).
#
# The modes' numbers are xent_info_'s (0, 1, 2). As in every
# xent kernel a row is computed by one thread, so results are bit-identical
# for any thread count, and nothing is validated here (xent/_validate.py and
# xent/_information.py do it).

from cython.parallel cimport prange
from libc.math cimport exp, log, log1p
from libc.string cimport memset

from libc.stdint cimport uint8_t

from _rows cimport floating, xent_ops


# what a probability-row kernel computes
MODE_CROSS_ENTROPY = 0
MODE_KL = 1
MODE_ENTROPY = 2
MODE_FOCAL = 3  # -sum alpha_j p_j (1 - q_j)^gamma log q_j (gamma and alpha given)
# flags of the mode: q given as log q, p given as log p (PyTorch's kl_div)
MODE_LOG_Q = 4
MODE_LOG_P = 8

cdef enum:
    TASK_VALUES = 16384

cdef enum:
    XENT_MODE = 0
    KL_MODE = 1
    ENTROPY_MODE = 2


def probs_rows(const floating[:, ::1] p, const floating[:, ::1] q, int mode, bint clip,
               double lo, double hi, const double[:] f, double[::1] out, floating[:, ::1] grad,
               int n_threads, floating[:, ::1] terms=None, const uint8_t[:, :] where=None,
               double smooth=0.0, bint renorm=False, double gamma=0.0,
               const double[::1] alpha=None):
    """out[i] = the mode's value of row i of (p, q); grad (if not None) = f[i] * d out[i] / d q[i]
    (f: one factor per row, or one value broadcast with stride 0); terms (if not None)
    the per-element terms; where (if not None, an (n, C) view whose class stride is 0 or 1)
    leaves out the entries where it is 0 (a term of p == 0: 0, gradient 0); smooth: p
    becomes (1 - smooth) p + smooth / C (the cross-entropy's label smoothing); renorm: q
    is divided by its row sum (over the kept entries) before the clip, the gradient
    through the division.

    mode: MODE_CROSS_ENTROPY, MODE_KL, MODE_ENTROPY (q is then not read; pass p) or
    MODE_FOCAL (gamma, and alpha: one factor per class, required),
    with the flags MODE_LOG_Q (q holds log q: the gradient is then d / d log q) and
    MODE_LOG_P (p holds log p). With clip, q is clipped to [lo, hi] (zero gradient
    where clipped).
    """
    cdef Py_ssize_t n = p.shape[0], c = p.shape[1], k, i0, nr
    # tasks of whole rows, about TASK_VALUES values each (a row's value does
    # not depend on which task or thread computes it)
    cdef Py_ssize_t per = max(1, TASK_VALUES // c) if c > 0 else n
    cdef Py_ssize_t tasks = (n + per - 1) // per if n > 0 else 0
    cdef const floating* pp = &p[0, 0] if n > 0 and c > 0 else NULL
    cdef const floating* qp = &q[0, 0] if n > 0 and c > 0 else NULL
    cdef floating* g = &grad[0, 0] if grad is not None and n > 0 and c > 0 else NULL
    cdef double* op = &out[0] if n > 0 else NULL
    cdef floating* tp = &terms[0, 0] if terms is not None and n > 0 and c > 0 else NULL
    cdef Py_ssize_t fs = f.strides[0] // sizeof(double)
    cdef const double* fp = &f[0]
    cdef const uint8_t* wp = &where[0, 0] if where is not None and n > 0 and c > 0 else NULL
    cdef Py_ssize_t wrs = where.strides[0] if wp != NULL else 0
    cdef Py_ssize_t wcs = where.strides[1] if wp != NULL else 0
    cdef const double* ap = &alpha[0] if alpha is not None and c > 0 else NULL
    with nogil:
        for k in prange(tasks, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            i0 = k * per
            nr = min(per, n - i0)
            if floating is float:
                xent_ops.info_f32(pp + i0 * c if pp != NULL else NULL,
                                  qp + i0 * c if qp != NULL else NULL, nr, c, mode, clip, lo,
                                  hi, fp + i0 * fs, fs, g + i0 * c if g != NULL else NULL, op + i0,
                                  tp + i0 * c if tp != NULL else NULL,
                                  wp + i0 * wrs if wp != NULL else NULL, wrs, wcs,
                                  smooth, renorm, gamma, ap)
            else:
                xent_ops.info_f64(pp + i0 * c if pp != NULL else NULL,
                                  qp + i0 * c if qp != NULL else NULL, nr, c, mode, clip, lo,
                                  hi, fp + i0 * fs, fs, g + i0 * c if g != NULL else NULL, op + i0,
                                  tp + i0 * c if tp != NULL else NULL,
                                  wp + i0 * wrs if wp != NULL else NULL, wrs, wcs,
                                  smooth, renorm, gamma, ap)


def labels_rows(const long long[::1] labels, const floating[:, ::1] q, bint clip, double lo,
                double hi, const double[:] f, double[::1] out, floating[:, ::1] grad,
                int n_threads, const uint8_t[:, :] where=None, bint renorm=False,
                double gamma=0.0, const double[::1] alpha=None):
    """out[i] = -log q[i, labels[i]] (q clipped to [lo, hi] with clip); grad (if not
    None) = f[i] * d out[i] / d q[i]: -f[i] / q[i, y] at the label, 0 elsewhere (and 0 if
    clipped); f one factor per row (stride 0: one for all).

    Only q[i, labels[i]] is read for the value, unless renorm: q[i] is then divided by
    its sum (over the kept entries) before the clip, and the gradient is f[i] (u / s -
    u / q[i, y] at the label), u: 1 unless clipped. where (if not None: an (n, C) view):
    a label whose entry is 0 there is left out (value 0, gradient 0). alpha (if not None:
    one factor per class) with gamma: the focal term -alpha_y (1 - q_y)^gamma log q_y
    (the terms of xent_focal_core_ in src/xent_rows_impl.h), whose derivative d in q_y
    replaces -1 / q_y above.
    """
    cdef Py_ssize_t n = q.shape[0], c = q.shape[1], i, j
    cdef long long y
    cdef double qy, s, inv_s, k, dq, lq, l1, w, w1
    cdef bint clipped
    cdef bint want_grad = grad is not None
    cdef bint masked = where is not None
    cdef bint focal = alpha is not None
    cdef int gi = <int>gamma if 0 <= gamma <= 4 and gamma == <int>gamma else -1
    cdef double om
    if not masked and not renorm and not focal:
        # the plain call in its own loop: the options' branches and variables cost
        # 1.2-2x at every class count when carried here (measured)
        with nogil:
            for i in prange(n, schedule="static", num_threads=n_threads,
                            use_threads_if=n_threads > 1):
                y = labels[i]
                qy = q[i, y]
                clipped = clip and (qy < lo or qy > hi)
                if clipped:
                    qy = lo if qy < lo else hi
                out[i] = -log(qy)
                if want_grad:
                    memset(&grad[i, 0], 0, c * sizeof(floating))
                    if not clipped:
                        grad[i, y] = <floating>(-f[i] * (1 / qy))  # the bits of one-hot p
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            y = labels[i]
            if masked and where[i, y] == 0:
                out[i] = 0.0
                if want_grad:
                    memset(&grad[i, 0], 0, c * sizeof(floating))
                continue
            inv_s = 1.0
            if renorm:
                s = 0.0
                for j in range(c):
                    if not masked or where[i, j] != 0:
                        s = s + q[i, j]
                inv_s = 1.0 / s
            qy = q[i, y] * inv_s
            clipped = clip and (qy < lo or qy > hi)
            if clipped:
                qy = lo if qy < lo else hi
            lq = log(qy)
            # d out / d q_y as dq / q_y: dq = -1 for the cross-entropy
            dq = -1.0
            if focal:  # (as xent_focal_core_: a zero factor or power gives 0, 0^0 = 1)
                if gi >= 0:  # (an integer gamma up to 4: products, as xent_focal_pow_)
                    om = 1 - qy if qy < 1 else (0.0 if qy == qy else qy)  # (NaN stays)
                    w1 = 1.0
                    for j in range(1, gi):
                        w1 = w1 * om
                    w = 1.0 if gi == 0 else w1 * om
                else:
                    l1 = log1p(-qy) if qy < 1 or qy != qy else log1p(-1.0)  # (NaN stays)
                    w = exp(gamma * l1)
                    w1 = exp((gamma - 1) * l1)
                k = alpha[y]
                out[i] = 0.0 if k == 0 or w == 0 else -k * w * lq
                dq = -w + (gamma * w1 * qy * lq if gamma != 0 and 0 < qy < 1 else 0.0)
                dq = (0.0 if k == 0 else k * dq) if lq == lq else lq
            else:
                out[i] = -lq
            if want_grad:
                memset(&grad[i, 0], 0, c * sizeof(floating))
                if renorm:  # q_y = r_y / s: d / d r_j = (dq / q_y) (delta_jy - q_y) / s
                    if not clipped:
                        k = f[i] * inv_s
                        for j in range(c):
                            if not masked or where[i, j] != 0:
                                grad[i, j] = <floating>(-k * dq)
                        grad[i, y] = <floating>(k * (0.0 if dq == 0 else dq / qy) - k * dq)
                elif not clipped:  # (a zero factor: 0, also at q_y = 0)
                    grad[i, y] = <floating>(f[i] * (0.0 if dq == 0 else dq / qy))
