# Kernels of the element-wise binary losses: binary cross-entropy from logits
# and from probabilities (and through them the multi-label loss), loss and
# gradient in one pass with one exp and one log1p per element.
#
# The data are (n_rows, C) C-contiguous arrays, C the last axis (pos_weight is
# per column). Work is split into tasks of at most CHUNK elements of one row,
# so that even a single long row runs on every thread; each task's loss sum is
# written to partial[task] and the Python layer (xent/_binary.py) adds them in
# a fixed order, so results do not depend on the thread count. The element
# math is in xent_rows_typed.h (xent_bce_logits_*, xent_bce_probs_*).

from cython.parallel cimport prange

from libc.stdint cimport uint8_t
from _rows cimport floating, xent_ops, xent_stream_bytes


cdef enum:
    CHUNK = 16384

#: elements per task
chunk = CHUNK


def n_tasks(Py_ssize_t n_rows, Py_ssize_t c):
    """Number of tasks (and of partial sums) for an (n_rows, c) array."""
    return n_rows * ((c + CHUNK - 1) // CHUNK) if c > 0 else 0


cdef inline Py_ssize_t stride_of(const floating[:, :] a) noexcept nogil:
    # element stride along the last axis (0 when broadcast)
    return a.strides[1] // sizeof(floating)


def bce_rows(
    const floating[:, ::1] x, const floating[:, ::1] t, const double[:] pos_weight,
    const floating[:, :] weight, const floating[:, :] grad_loss,
    const double[:] row_gscale, double smooth, double clip, bint from_logits,
    floating[:, ::1] loss, double[::1] partial, floating[:, ::1] grad, int n_threads,
    floating[:, ::1] hess=None, double hfac=1.0, int hpol=0, double hmin=0.0,
    const uint8_t[:, :] mask=None,
):
    """Binary cross-entropy of x (logits, or probabilities clipped to
    [clip, 1 - clip]) against t: per-task loss sums into partial, per-element
    losses into loss and gradients into grad (each unless None). mask (unless
    None, x's shape, any strides): an element where it is 0 has weight 0."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1]
    cdef Py_ssize_t per_row = (c + CHUNK - 1) // CHUNK if c > 0 else 0
    cdef Py_ssize_t k, i, j0, m
    cdef Py_ssize_t ws = stride_of(weight), gst = stride_of(grad_loss)
    cdef Py_ssize_t pws = pos_weight.strides[0] // sizeof(double)
    cdef bint masked = mask is not None
    cdef Py_ssize_t ms = mask.strides[1] if masked else 0
    cdef const uint8_t* mp
    cdef bint want_loss = loss is not None, want_grad = grad is not None
    cdef bint want_hess = hess is not None and want_grad
    # a gradient beyond the cache may be streamed (see _rows.pxd)
    cdef int stream = want_grad and n * c * <Py_ssize_t>sizeof(floating) >= xent_stream_bytes
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
            if floating is float:
                if from_logits:
                    partial[k] = xent_ops.bce_logits_f32(
                        &x[i, j0], &t[i, j0], m, &pos_weight[j0], pws, &weight[i, j0], ws,
                        mp, ms, &grad_loss[i, j0], gst, row_gscale[i], smooth, lp, gp, stream, hp, hfac, hpol, hmin)
                else:
                    partial[k] = xent_ops.bce_probs_f32(
                        &x[i, j0], &t[i, j0], m, &pos_weight[j0], pws, &weight[i, j0], ws,
                        mp, ms, &grad_loss[i, j0], gst, row_gscale[i], smooth, clip, lp, gp)
            else:
                if from_logits:
                    partial[k] = xent_ops.bce_logits_f64(
                        &x[i, j0], &t[i, j0], m, &pos_weight[j0], pws, &weight[i, j0], ws,
                        mp, ms, &grad_loss[i, j0], gst, row_gscale[i], smooth, lp, gp, stream, hp, hfac, hpol, hmin)
                else:
                    partial[k] = xent_ops.bce_probs_f64(
                        &x[i, j0], &t[i, j0], m, &pos_weight[j0], pws, &weight[i, j0], ws,
                        mp, ms, &grad_loss[i, j0], gst, row_gscale[i], smooth, clip, lp, gp)


def first_outside_unit_interval(const floating[::1] a, int n_threads):
    """Index of the first value outside [0, 1] (NaN is not outside), or -1.

    A validation helper (one parallel read of the data), not a kernel."""
    cdef Py_ssize_t n = a.shape[0], n_chunks = (n + CHUNK - 1) // CHUNK, k, j, j0, j1
    cdef unsigned char[::1] bad = bytearray(n_chunks)
    cdef int count
    with nogil:
        for k in prange(n_chunks, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            j0 = k * CHUNK
            j1 = min(n, j0 + CHUNK)
            count = 0
            for j in range(j0, j1):
                count = count + ((a[j] < 0) | (a[j] > 1))
            bad[k] = count > 0
    for k in range(n_chunks):
        if bad[k]:
            for j in range(k * CHUNK, min(n, (k + 1) * CHUNK)):
                if a[j] < 0 or a[j] > 1:
                    return j
    return -1
