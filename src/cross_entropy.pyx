# Kernels of softmax cross-entropy and the negative log-likelihood, with the
# gradient fused into the same row pass.
#
# Every loss here is, per row i, a weighted sum over the classes
#
#     loss_i = sw_i * sum_c a_c * (lse_i - x_c)  +  sw_i * z * lse_i**2
#
# with target coefficients a_c (class weight w_c times the smoothed target
# mass: (1 - eps) * onehot_y + eps / C for labels, (1 - eps) * t_c + eps / C
# for probabilities) and sample weight sw_i. With A = sum_c a_c it is computed
# from the shifted row as sw_i * (A * log(s) - sum_c a_c (x_c - m)) so that a
# large common offset loses no digits, and its gradient is
#
#     dloss_i/dx_c = sw_i * ((A + 2 z lse_i) * softmax_c - a_c),
#
# scaled by the upstream/reduction factor gs_i. Terms with a_c == 0 are
# skipped, so -inf logits of classes without target mass are exact.
#
# Passes per row: max; the target sums (reads x and the target); exp, stored
# into the gradient row (which may be x itself: every read of x comes before
# the write of the same row); scale. The loss is written per row in float64;
# the Python layer (xent/_cross_entropy.py) validates, computes the reduction
# denominator and gs, and reduces.

from cython.parallel cimport prange
from libc.math cimport log

from _rows cimport (
    floating, row_max, row_sum_exp, row_store_exp, row_scale_sub, xent_row_ops, xent_ops,
    xent_isa_table,
)

include "_isa.pxi"


cdef inline double weight_of(const double* w, Py_ssize_t c) noexcept nogil:
    # class weight of class c; w is NULL when no class weights were given
    return w[c] if w != NULL else 1.0


cdef inline const double* data_or_null(const double[::1] a) noexcept:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline void finish_row(floating* g, Py_ssize_t c, double s, double p_coef,
                            double eps_c, const double* w,
                            Py_ssize_t y, double y_coef) noexcept nogil:
    # g holds the exps e_j; make it p_coef * e_j / s - f * a_j where the target
    # part of a_j is split into eps_c * w_j (smoothing) and y_coef at column y.
    row_scale_sub(g, c, p_coef / s, eps_c, w if eps_c != 0 else NULL)
    if y >= 0:
        g[y] = <floating>(g[y] - y_coef)


def softmax_xent_labels(
    const floating[:, ::1] x, const long long[::1] labels, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps, double z,
    long long ignore_index, double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row loss (and gradient if grad is not None) for integer labels."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, j, y
    cdef const double* w = data_or_null(class_weight)
    cdef bint has_sw = sample_weight is not None
    cdef bint want_grad = grad is not None
    cdef double total_w = 0, sw, wy, m, s, log_s, lse, shifted_sum, a_total, f
    cdef floating mf
    for j in range(c):
        total_w = total_w + weight_of(w, j)
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            y = labels[i]
            if y == ignore_index:
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
            sw = sample_weight[i] if has_sw else 1.0
            wy = weight_of(w, y)
            mf = row_max(&x[i, 0], c)
            m = mf
            # target sums, read before the gradient row (maybe x) is written
            a_total = (1 - eps) * wy
            shifted_sum = a_total * (x[i, y] - m) if a_total != 0 else 0.0
            if eps != 0:
                a_total = a_total + eps * total_w / c
                for j in range(c):
                    if weight_of(w, j) != 0:
                        shifted_sum = shifted_sum + (
                            eps / c * weight_of(w, j) * (x[i, j] - m))
            if want_grad:
                s = row_store_exp(&x[i, 0], &grad[i, 0], c, mf)
            else:
                s = row_sum_exp(&x[i, 0], c, mf)
            log_s = log(s)
            lse = m + log_s
            loss[i] = sw * (a_total * log_s - shifted_sum + z * lse * lse)
            if want_grad:
                f = grad_scale[i] * sw
                finish_row(&grad[i, 0], c, s, f * (a_total + 2 * z * lse),
                           f * eps / c, w, y, f * (1 - eps) * wy)


def softmax_xent_probs(
    const floating[:, ::1] x, const floating[:, ::1] target, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps, double z,
    double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row loss (and gradient if grad is not None) for probability targets."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, j
    cdef const double* w = data_or_null(class_weight)
    cdef bint has_sw = sample_weight is not None
    cdef bint want_grad = grad is not None
    cdef double sw, m, s, log_s, lse, shifted_sum, a_total, a, f
    cdef floating mf
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            sw = sample_weight[i] if has_sw else 1.0
            mf = row_max(&x[i, 0], c)
            m = mf
            shifted_sum = 0
            a_total = 0
            for j in range(c):
                a = weight_of(w, j) * ((1 - eps) * target[i, j] + eps / c)
                if a != 0:
                    a_total = a_total + a
                    shifted_sum = shifted_sum + a * (x[i, j] - m)
            if want_grad:
                s = row_store_exp(&x[i, 0], &grad[i, 0], c, mf)
            else:
                s = row_sum_exp(&x[i, 0], c, mf)
            log_s = log(s)
            lse = m + log_s
            loss[i] = sw * (a_total * log_s - shifted_sum + z * lse * lse)
            if want_grad:
                f = grad_scale[i] * sw
                # g_j = f * ((A + 2 z lse) p_j - a_j); a_j needs the target again
                for j in range(c):
                    grad[i, j] = <floating>(grad[i, j] * (f * (a_total + 2 * z * lse) / s) - f * (
                        weight_of(w, j) * ((1 - eps) * target[i, j] + eps / c)))


def nll_labels(
    const floating[:, ::1] lp, const long long[::1] labels, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps,
    long long ignore_index, double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row -sum_c a_c lp_c (and its gradient -a_c) for integer labels."""
    cdef Py_ssize_t n = lp.shape[0], c = lp.shape[1], i, j, y
    cdef const double* w = data_or_null(class_weight)
    cdef bint has_sw = sample_weight is not None
    cdef bint want_grad = grad is not None
    cdef double sw, wy, total, f, wj
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            y = labels[i]
            if y == ignore_index:
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
            sw = sample_weight[i] if has_sw else 1.0
            wy = weight_of(w, y)
            total = -(1 - eps) * wy * lp[i, y] if (1 - eps) * wy != 0 else 0.0
            if eps != 0:
                for j in range(c):
                    wj = weight_of(w, j)
                    if wj != 0:
                        total = total - eps / c * wj * lp[i, j]
            loss[i] = sw * total
            if want_grad:
                f = grad_scale[i] * sw
                for j in range(c):
                    grad[i, j] = <floating>(-f * eps / c * weight_of(w, j))
                grad[i, y] = <floating>(grad[i, y] - f * (1 - eps) * wy)


def nll_probs(
    const floating[:, ::1] lp, const floating[:, ::1] target, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps,
    double[::1] loss, floating[:, ::1] grad, int n_threads,
):
    """Per-row -sum_c a_c lp_c (and its gradient -a_c) for probability targets."""
    cdef Py_ssize_t n = lp.shape[0], c = lp.shape[1], i, j
    cdef const double* w = data_or_null(class_weight)
    cdef bint has_sw = sample_weight is not None
    cdef bint want_grad = grad is not None
    cdef double sw, total, a, f
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            sw = sample_weight[i] if has_sw else 1.0
            f = grad_scale[i] * sw if want_grad else 0.0
            total = 0
            for j in range(c):
                a = weight_of(w, j) * ((1 - eps) * target[i, j] + eps / c)
                if a != 0:
                    total = total - a * lp[i, j]
                if want_grad:
                    grad[i, j] = <floating>(-f * a)
            loss[i] = sw * total
