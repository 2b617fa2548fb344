# Kernels of distillation from logits (xent/_distill.py): the divergence of
# the student's softmax from the teacher's (forward or reverse
# Kullback-Leibler, or the generalised Jensen-Shannon divergence) at a
# temperature, and its gradient with respect to the student logits, in one
# pass over both rows (xent_distill_ of src/xent_rows_typed.h, the
# vectorised exp and log of the active instruction set). A row is computed
# by one thread (bit-identical results for any thread count); nothing is
# validated here.

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc

from _rows cimport floating, xent_ops, XENT_DISTILL_FORWARD, XENT_DISTILL_REVERSE, XENT_DISTILL_JSD

DISTILL_FORWARD = XENT_DISTILL_FORWARD
DISTILL_REVERSE = XENT_DISTILL_REVERSE
DISTILL_JSD = XENT_DISTILL_JSD

cdef enum:
    DISTILL_TASK_VALUES = 16384


def distill_rows(const floating[:, ::1] student, const floating[:, ::1] teacher, double inv_t,
                 int mode, double beta, const double[:] weight, const double[:] f,
                 double[::1] loss, floating[:, ::1] grad, int n_threads):
    """loss[i] = weight[i] * the mode's divergence of row i (0 where weight[i] == 0);
    grad (unless None) = f[i] * its gradient with respect to the student logits
    (f, weight: one value per row, or one value with stride 0)."""
    cdef Py_ssize_t n = student.shape[0], c = student.shape[1], k, i0, nr
    cdef Py_ssize_t per = max(1, DISTILL_TASK_VALUES // c) if c > 0 else n
    cdef Py_ssize_t tasks = (n + per - 1) // per if n > 0 else 0
    cdef Py_ssize_t ws_n = 2 * c if c > 0 else 1
    cdef Py_ssize_t fs = f.strides[0] // sizeof(double), wst = weight.strides[0] // sizeof(double)
    cdef const double* fp = &f[0]
    cdef const double* wp = &weight[0]
    cdef const floating* sp = &student[0, 0] if n > 0 and c > 0 else NULL
    cdef const floating* tp = &teacher[0, 0] if n > 0 and c > 0 else NULL
    cdef floating* g = &grad[0, 0] if grad is not None and n > 0 and c > 0 else NULL
    cdef double* lp = &loss[0] if n > 0 else NULL
    cdef double* ws
    cdef int failed[1]
    failed[0] = 0
    if n == 0:
        return
    with nogil, parallel(num_threads=n_threads, use_threads_if=n_threads > 1):
        ws = <double*>malloc(ws_n * sizeof(double))
        if ws == NULL:
            failed[0] = 1
        for k in prange(tasks, schedule="static"):
            if ws != NULL:
                i0 = k * per
                nr = min(per, n - i0)
                if floating is float:
                    xent_ops.distill_f32(sp + i0 * c if sp != NULL else NULL,
                                         tp + i0 * c if tp != NULL else NULL, nr, c, inv_t, mode,
                                         beta, wp + i0 * wst, wst, fp + i0 * fs, fs, lp + i0,
                                         g + i0 * c if g != NULL else NULL, ws)
                else:
                    xent_ops.distill_f64(sp + i0 * c if sp != NULL else NULL,
                                         tp + i0 * c if tp != NULL else NULL, nr, c, inv_t, mode,
                                         beta, wp + i0 * wst, wst, fp + i0 * fs, fs, lp + i0,
                                         g + i0 * c if g != NULL else NULL, ws)
        free(ws)
    if failed[0]:
        raise MemoryError("distillation: no memory for the workspace of a thread")
