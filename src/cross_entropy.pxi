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
# scaled by the upstream/reduction factor gs_i; with a softcap, the logits are
# first cap * tanh(x / cap) and the gradient is chained through it. Terms
# with a_c == 0 are skipped, so -inf logits of classes without target mass
# are exact. The softmax cross-entropy runs on the softmax family's paths
# (src/class_rows.pxi; the terms in src/xent_class_typed.h). The loss is
# written per row in float64; the Python layer (xent/_cross_entropy.py)
# validates, computes the reduction denominator and gs, and reduces.

from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from _rows cimport floating, cfloat, xent_class_call, XENT_CLS_CE, XENT_CLS_FOCAL


cdef inline double weight_of(const double* w, Py_ssize_t c) noexcept nogil:
    # class weight of class c; w is NULL when no class weights were given
    return w[c] if w != NULL else 1.0


cdef inline const double* data_or_null(const double[::1] a) noexcept:
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef double* ce_options(xent_class_call* a, const double[::1] class_weight,
                        const double[::1] sample_weight, const double[:] grad_scale, double eps,
                        double z, double cap) except? NULL:
    # the cross-entropy's options into a (ce_set)
    return ce_set(a, data_or_null(class_weight), data_or_null(sample_weight),
                  &grad_scale[0] if a.n > 0 else NULL, grad_scale.strides[0] // sizeof(double),
                  eps, z, cap)


cdef double* ce_set(xent_class_call* a, const double* w, const double* sw, const double* gs,
                    Py_ssize_t gss, double eps, double z, double cap) except? NULL:
    # the cross-entropy's options into a (w, sw: NULL for none; gs[i * gss]
    # the per-row gradient scale); returns the smoothing's buffer (a.u:
    # eps / C * w_j, C + 1 doubles), NULL without smoothing (no O(C) memory
    # for a row of a huge number of classes); the caller frees it. The
    # general path (ce_options) and the common call (src/fast.pxi) both set
    # their calls here.
    cdef Py_ssize_t j, c = a.C
    cdef double* u = NULL
    a.w, a.sw, a.gs, a.gss = w, sw, gs, gss
    a.eps, a.z, a.cap = eps, z, cap
    a.total_w = 0
    for j in range(c):
        a.total_w += weight_of(a.w, j)
    if eps != 0:
        u = <double*>malloc((c + 1) * sizeof(double))
        if u == NULL:
            raise MemoryError()
        for j in range(c):
            u[j] = eps / c * weight_of(a.w, j)
    a.u = u
    return u


cdef void hess_options(xent_class_call* a, cfloat[:, ::1] hess, double hfac, double hmin,
                       int hpol) noexcept:
    # the hessian's output and policy (xent_class.h), with a gradient only
    a.hess = rows_out(hess) if a.out != NULL else NULL
    a.hfac, a.hmin, a.hpol = hfac, hmin, hpol


def softmax_xent_labels(
    const cfloat[:, ::1] x, const long long[::1] labels, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps, double z,
    long long ignore_index, double[::1] loss, cfloat[:, ::1] grad, int n_threads,
    double cap=0.0, cfloat[:, ::1] hess=None, double hfac=1.0, int hpol=0, double hmin=0.0,
    int64_t[::1] argmax=None,
):
    """Per-row loss into loss (None: the reduced loss is returned, as
    grouped_sum of them) and the gradient if grad is not None, for integer
    labels; with hess (and grad; no z-loss or softcap), the diagonal of the
    hessian, its factor hfac, policy hpol (XENT_HESS_*) and floor hmin; with
    argmax, each row's argmax (-1 for a row that counts for nothing)."""
    cdef xent_class_call a = class_call(XENT_CLS_CE, x)
    cdef double* u
    cdef double total
    a.out = rows_out(grad)
    hess_options(&a, hess, hfac, hmin, hpol)
    a.argmax = &argmax[0] if argmax is not None and a.n > 0 else NULL
    a.labels = <const int64_t*>&labels[0] if a.n > 0 else NULL
    a.ignore = ignore_index
    a.loss = &loss[0] if loss is not None and a.n > 0 else NULL
    u = ce_options(&a, class_weight, sample_weight, grad_scale, eps, z, cap)
    try:
        total = call_class(&a, sizeof(cfloat), n_threads, loss is None)
    finally:
        free(u)
    return total if loss is None else None


def softmax_xent_probs(
    const cfloat[:, ::1] x, const cfloat[:, ::1] target, const double[::1] class_weight,
    const double[::1] sample_weight, const double[:] grad_scale, double eps, double z,
    double[::1] loss, cfloat[:, ::1] grad, int n_threads, double cap=0.0,
    int64_t[::1] argmax=None,
):
    """softmax_xent_labels for probability targets."""
    cdef xent_class_call a = class_call(XENT_CLS_CE, x)
    cdef double* u
    cdef double total
    a.out = rows_out(grad)
    a.argmax = &argmax[0] if argmax is not None and a.n > 0 else NULL
    a.target = &target[0, 0] if a.n > 0 else NULL
    a.loss = &loss[0] if loss is not None and a.n > 0 else NULL
    u = ce_options(&a, class_weight, sample_weight, grad_scale, eps, z, cap)
    try:
        total = call_class(&a, sizeof(cfloat), n_threads, loss is None)
    finally:
        free(u)
    return total if loss is None else None


def softmax_focal_labels(
    const cfloat[:, ::1] x, const long long[::1] labels, const double[::1] alpha, double gamma,
    long long ignore_index, const double[:] grad_scale, double[::1] loss, cfloat[:, ::1] grad,
    int n_threads, cfloat[:, ::1] hess=None, double hfac=1.0, int hpol=0, double hmin=0.0,
    const double[::1] sample_weight=None,
):
    """Per-row softmax focal loss of integer labels (alpha: one factor per
    class), and its gradient if grad is not None, on the softmax family's
    paths (the focal terms of xent_focal_terms_); loss None: as
    softmax_xent_labels."""
    cdef xent_class_call a = class_call(XENT_CLS_FOCAL, x)
    cdef double total
    a.out = rows_out(grad)
    hess_options(&a, hess, hfac, hmin, hpol)
    a.labels = <const int64_t*>&labels[0] if a.n > 0 else NULL
    a.ignore = ignore_index
    a.loss = &loss[0] if loss is not None and a.n > 0 else NULL
    a.gs = &grad_scale[0] if a.n > 0 else NULL
    a.gss = grad_scale.strides[0] // sizeof(double)
    a.gamma = gamma
    a.alpha = &alpha[0]
    a.sw = data_or_null(sample_weight)  # (the loss and gradient times sw; 0: nothing)
    total = call_class(&a, sizeof(cfloat), n_threads, loss is None)
    return total if loss is None else None


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
            sw = sample_weight[i] if has_sw else 1.0
            if y == ignore_index or sw == 0:  # counts for nothing, whatever lp holds
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
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
            if sw == 0:  # counts for nothing, whatever lp and the target hold
                loss[i] = 0
                if want_grad:
                    for j in range(c):
                        grad[i, j] = 0
                continue
            f = grad_scale[i] * sw if want_grad else 0.0
            total = 0
            for j in range(c):
                a = weight_of(w, j) * ((1 - eps) * target[i, j] + eps / c)
                if a != 0:
                    total = total - a * lp[i, j]
                if want_grad:
                    grad[i, j] = <floating>(-f * a)
            loss[i] = sw * total


def labels_scan(const long long[::1] labels, long long n_classes, long long ignore_index):
    """The number of labels that are not ignore_index, or -1 if one is neither
    ignore_index nor in [0, n_classes) (the fast path of softmax_cross_entropy
    then leaves the call, and its error, to the general path)."""
    cdef Py_ssize_t i, n = labels.shape[0], kept = 0
    cdef long long y
    cdef bint bad = False
    with nogil:
        for i in range(n):
            y = labels[i]
            bad = bad | ((y != ignore_index) & ((y < 0) | (y >= n_classes)))
            kept += y != ignore_index
    return -1 if bad else kept
