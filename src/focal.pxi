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
# Terms with a zero factor are 0 (no 0 * inf). Both run on the vectorised
# float64 exp/log of the active instruction set: the binary loss in
# xent_bfocal_ (xent_rows_typed.h), the softmax one's terms in
# xent_focal_core_ (xent_rows_impl.h), with class indices on the softmax
# family's paths (class_rows.pxi) and with probability targets in
# xent_sfocal_probs_ (xent_class_typed.h: 1 - p as (s - e) / s, integer
# gammas up to 4 as products). Tasks and partial sums as in binary.pxi.

from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from _rows cimport floating, xent_ops, XENT_SF_TASK, XENT_SF_WS


def binary_focal_rows(
    const floating[:, ::1] x, const floating[:, ::1] t, double gamma, double alpha,
    bint has_alpha, const floating[:, :] weight, const floating[:, :] grad_loss,
    const double[:] row_gscale, double smooth, floating[:, ::1] loss, double[::1] partial,
    floating[:, ::1] grad, int n_threads, floating[:, ::1] hess=None, double hfac=1.0, int hpol=0, double hmin=0.0,
    double probs_clip=-1.0, const uint8_t[:, :] mask=None,
):
    """Element-wise binary focal loss from logits (xent_bfocal_ of
    xent_rows_typed.h), or with probs_clip >= 0 from probabilities x clipped
    to [probs_clip, 1 - probs_clip] in the cross-entropy (xent_bfocal_probs_;
    no hess): per-task sums into partial, per-element losses into loss and
    gradients into grad (each unless None). mask: as bce_rows'."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1]
    cdef Py_ssize_t per_row = (c + CHUNK - 1) // CHUNK if c > 0 else 0
    cdef Py_ssize_t k, i, j0, m
    cdef Py_ssize_t ws = stride_of(weight), gst = stride_of(grad_loss)
    cdef bint want_loss = loss is not None, want_grad = grad is not None
    cdef bint want_hess = hess is not None and want_grad
    cdef double one = 1.0
    cdef bint masked = mask is not None
    cdef Py_ssize_t ms = mask.strides[1] if masked else 0
    cdef const uint8_t* mp
    cdef floating* lp
    cdef floating* gp
    cdef floating* hp
    with nogil:
        for k in prange(n * per_row, schedule="dynamic", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            i = k // per_row
            j0 = (k % per_row) * CHUNK
            m = min(CHUNK, c - j0)
            lp = &loss[i, j0] if want_loss else NULL
            gp = &grad[i, j0] if want_grad else NULL
            hp = &hess[i, j0] if want_hess else NULL
            mp = &mask[i, j0] if masked else NULL
            if probs_clip >= 0:
                if floating is float:
                    partial[k] = xent_ops.bfocal_probs_f32(
                        &x[i, j0], &t[i, j0], m, &one, 0, &weight[i, j0], ws, mp, ms, &grad_loss[i, j0],
                        gst, row_gscale[i], smooth, probs_clip, gamma, alpha, has_alpha, lp, gp)
                else:
                    partial[k] = xent_ops.bfocal_probs_f64(
                        &x[i, j0], &t[i, j0], m, &one, 0, &weight[i, j0], ws, mp, ms, &grad_loss[i, j0],
                        gst, row_gscale[i], smooth, probs_clip, gamma, alpha, has_alpha, lp, gp)
            elif floating is float:
                partial[k] = xent_ops.bfocal_f32(
                    &x[i, j0], &t[i, j0], m, &one, 0, &weight[i, j0], ws, mp, ms, &grad_loss[i, j0], gst,
                    row_gscale[i], smooth, gamma, alpha, has_alpha, lp, gp, hp, hfac, hpol, hmin)
            else:
                partial[k] = xent_ops.bfocal_f64(
                    &x[i, j0], &t[i, j0], m, &one, 0, &weight[i, j0], ws, mp, ms, &grad_loss[i, j0], gst,
                    row_gscale[i], smooth, gamma, alpha, has_alpha, lp, gp, hp, hfac, hpol, hmin)


def softmax_focal_rows(
    const floating[:, ::1] x, const floating[:, ::1] target, const double[::1] alpha, double gamma,
    const double[:] grad_scale, double[::1] loss, floating[:, ::1] grad, int n_threads,
    const long long[::1] labels=None, double smooth=0.0,
):
    """Per-row softmax focal loss against probability targets (the rows of
    xent_sfocal_probs_, xent_class_typed.h; class indices without smoothing
    take the softmax family's paths), or class labels (target None; a label
    outside [0, C) gives its row only the smoothing's mass: the caller gives
    such rows, ignored ones, a gradient scale of 0): alpha holds one factor per
    class, smooth the label smoothing of the targets, grad (unless None; it
    may be x) gets the gradient. A task is a run of rows of at most
    XENT_SF_TASK values (or one row); each thread has a workspace of
    XENT_SF_WS(C) doubles."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], k, i0, nr
    cdef Py_ssize_t per = XENT_SF_TASK // c if c < XENT_SF_TASK else 1
    cdef Py_ssize_t wsize = XENT_SF_WS(c)
    cdef Py_ssize_t gss = grad_scale.strides[0] // sizeof(double)
    cdef bint want_grad = grad is not None
    cdef double* ws
    cdef int failed[1]
    cdef const int64_t* lab
    failed[0] = 0
    if n == 0:
        return
    if c == 0:
        loss[:] = 0
        return
    if labels is not None:
        lab = <const int64_t*>&labels[0]
        target = x  # (not read: a valid view for the pointer below)
    else:
        lab = NULL
    ws = NULL
    with nogil, parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
        ws = <double*>malloc(wsize * sizeof(double))
        if ws == NULL:
            failed[0] = 1
        for k in prange((n + per - 1) // per, schedule="dynamic"):
            if ws != NULL:
                i0 = k * per
                nr = min(per, n - i0)
                if floating is float:
                    xent_ops.sfocal_probs_f32(&x[i0, 0], &target[i0, 0], lab + i0 if lab != NULL else NULL, nr, c, &alpha[0],
                                              gamma, smooth,
                                              &grad_scale[i0] if gss != 0 else &grad_scale[0], gss,
                                              &loss[i0], &grad[i0, 0] if want_grad else NULL, ws)
                else:
                    xent_ops.sfocal_probs_f64(&x[i0, 0], &target[i0, 0], lab + i0 if lab != NULL else NULL, nr, c, &alpha[0],
                                              gamma, smooth,
                                              &grad_scale[i0] if gss != 0 else &grad_scale[0], gss,
                                              &loss[i0], &grad[i0, 0] if want_grad else NULL, ws)
        free(ws)
    if failed[0]:
        raise MemoryError("softmax_focal_loss: no memory for the workspace of a thread")
