# Kernels of the focal losses (Lin et al. 2017), loss and gradient in one pass.
#
# Binary, element-wise, from logits x with targets t in [0, 1]:
#     p = sigmoid(x), q = 1 - p_t = t (1 - p) + (1 - t) p,
#     loss = a_t * q**gamma * ce,   ce = max(x, 0) - x t + log1p(exp(-|x|)),
#     a_t = alpha t + (1 - alpha) (1 - t)  (1 without alpha),
#     d loss / dx = a_t * (gamma q**(gamma-1) (1 - 2t) p (1 - p) ce + q**gamma (p - t)).
# Softmax, per row, with target mass t_c (one-hot for labels) and class
# factors alpha_c, log p_c = (x_c - m) - log(s) (with the softmax's limit for
# a row holding +inf: x_c - m is 0 at its +inf entries, see _rows.pxd):
#     loss = -sum_c a_c (1 - p_c)**gamma log p_c,   a_c = alpha_c t_c,
#     d loss / dx_j = a_j D_j - p_j sum_c a_c D_c,
#     D_c = gamma (1 - p_c)**(gamma-1) p_c log p_c - (1 - p_c)**gamma.
# Powers are taken in log space, (1 - p)**gamma = exp(gamma log(1 - p)) with
# log(1 - p) from expm1 / log1p so that p near 1 loses nothing. Terms with a
# zero factor are skipped (no 0 * inf). The binary loss runs on the
# vectorised float64 exp/log of the active instruction set (xent_bfocal_ in
# xent_rows_typed.h); the softmax focal loss is still scalar libm math.
# Tasks and partial sums as in binary.pxi.

from cython.parallel cimport prange
from libc.math cimport exp, expm1, fabs, log, log1p, INFINITY

from _rows cimport floating, row_max, row_store_exp, row_sum_exp, row_scale, xent_ops


cdef inline double shifted_logit(double x, double m) noexcept nogil:
    # x - m, with the limit 0 for x == m == +inf
    return 0.0 if (x == m and m == INFINITY) else x - m


cdef inline double pow_log(double log_base, double gamma) noexcept nogil:
    # base**gamma from log(base), with 0**0 = 1
    if gamma == 0:
        return 1.0
    return exp(gamma * log_base)


def binary_focal_rows(
    const floating[:, ::1] x, const floating[:, ::1] t, double gamma, double alpha,
    bint has_alpha, const floating[:, :] weight, const floating[:, :] grad_loss,
    const double[:] row_gscale, double smooth, floating[:, ::1] loss, double[::1] partial,
    floating[:, ::1] grad, int n_threads,
):
    """Element-wise binary focal loss from logits (xent_bfocal_ of
    xent_rows_typed.h): per-task sums into partial, per-element losses into
    loss and gradients into grad (each unless None)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1]
    cdef Py_ssize_t per_row = (c + CHUNK - 1) // CHUNK if c > 0 else 0
    cdef Py_ssize_t k, i, j0, m
    cdef Py_ssize_t ws = stride_of(weight), gst = stride_of(grad_loss)
    cdef bint want_loss = loss is not None, want_grad = grad is not None
    cdef double one = 1.0
    cdef floating* lp
    cdef floating* gp
    with nogil:
        for k in prange(n * per_row, schedule="dynamic", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            i = k // per_row
            j0 = (k % per_row) * CHUNK
            m = min(CHUNK, c - j0)
            lp = &loss[i, j0] if want_loss else NULL
            gp = &grad[i, j0] if want_grad else NULL
            if floating is float:
                partial[k] = xent_ops.bfocal_f32(
                    &x[i, j0], &t[i, j0], m, &one, 0, &weight[i, j0], ws, &grad_loss[i, j0], gst,
                    row_gscale[i], smooth, gamma, alpha, has_alpha, lp, gp)
            else:
                partial[k] = xent_ops.bfocal_f64(
                    &x[i, j0], &t[i, j0], m, &one, 0, &weight[i, j0], ws, &grad_loss[i, j0], gst,
                    row_gscale[i], smooth, gamma, alpha, has_alpha, lp, gp)


cdef inline double class_factor(const long long[::1] labels, const floating[:, ::1] target,
                                const double[::1] alpha, bint use_labels, Py_ssize_t i,
                                Py_ssize_t j) noexcept nogil:
    # a_j = alpha_j times the target mass of class j in row i
    if use_labels:
        return alpha[j] if j == labels[i] else 0.0
    return alpha[j] * target[i, j]


cdef inline double focal_term(double lp, double gamma, double* d) noexcept nogil:
    # for log p = lp: returns (1 - p)**gamma * (-lp), and in d
    # D = gamma (1 - p)**(gamma-1) p log p - (1 - p)**gamma (p log p -> 0 at p = 0)
    cdef double p = exp(lp)
    cdef double log1m = log(-expm1(lp)) if lp > -0.6931471805599453 else log1p(-p)
    cdef double w = pow_log(log1m, gamma)
    d[0] = -w
    if gamma != 0 and 0 < p < 1:
        d[0] = d[0] + gamma * pow_log(log1m, gamma - 1) * p * lp
    return -w * lp if w != 0 else 0.0


def softmax_focal_rows(
    const floating[:, ::1] x, const long long[::1] labels, const floating[:, ::1] target,
    const double[::1] alpha, double gamma, long long ignore_index, const double[:] grad_scale,
    double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row softmax focal loss against labels (target None) or probability
    targets (labels None); alpha holds one factor per class. Passes: max, sum
    of exps, the loss terms (classes with a target factor only), the gradient
    (each element read before it is written: grad may be x)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, j
    cdef bint want_grad = grad is not None, use_labels = labels is not None
    cdef double m, s, log_s, lp, a, d, total, sum_ad, f, xy
    cdef long long y
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            if use_labels and labels[i] == ignore_index:
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
            d = 0  # (assigned here, d is private to each thread: focal_term writes it)
            if use_labels:
                # one target class: the vectorised sum of exps (stored into the
                # gradient row, which may be x: x_y is read first), the loss
                # term at the label, and the gradient as one scaling of the
                # exps plus the label's own term
                y = labels[i]
                m = row_max(&x[i, 0], c)
                xy = x[i, y]
                if want_grad:
                    s = row_store_exp(&x[i, 0], &grad[i, 0], c, m)
                else:
                    s = row_sum_exp(&x[i, 0], c, m)
                lp = shifted_logit(xy, m) - log(s)
                a = alpha[y]
                total = 0
                sum_ad = 0
                if a != 0:
                    total = a * focal_term(lp, gamma, &d)
                    sum_ad = a * d
                loss[i] = total
                if want_grad:
                    f = grad_scale[i]
                    row_scale(&grad[i, 0], c, -f * sum_ad / s)
                    if a != 0:
                        grad[i, y] = <floating>(f * (a * d - exp(lp) * sum_ad))
                continue
            m = row_max(&x[i, 0], c)
            s = 0
            for j in range(c):
                s = s + exp(shifted_logit(x[i, j], m))
            log_s = log(s)
            total = 0
            sum_ad = 0
            for j in range(c):
                a = class_factor(labels, target, alpha, use_labels, i, j)
                if a != 0:
                    total = total + a * focal_term(shifted_logit(x[i, j], m) - log_s, gamma, &d)
                    sum_ad = sum_ad + a * d
            loss[i] = total
            if want_grad:
                f = grad_scale[i]
                for j in range(c):
                    lp = shifted_logit(x[i, j], m) - log_s
                    a = class_factor(labels, target, alpha, use_labels, i, j)
                    if a != 0:
                        focal_term(lp, gamma, &d)
                        grad[i, j] = <floating>(f * (a * d - exp(lp) * sum_ad))
                    else:
                        grad[i, j] = <floating>(-f * exp(lp) * sum_ad)
