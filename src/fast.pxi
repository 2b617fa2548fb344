# The common call, in compiled code: a small C-contiguous, aligned, native
# float32/float64 ndarray, with the options a training loop sets:
# logsumexp, softmax and log_softmax of a vector or of rows;
# softmax_cross_entropy of int32/int64 labels or probability rows of the
# logits' dtype, with ignore_index, label_smoothing, z_loss, reduction and
# class and sample weights (float32/float64 ndarrays);
# binary_cross_entropy_with_logits with reduction, label_smoothing and
# pos_weight; each with or without a preallocated output (out=/grad_out=:
# the input itself, or an ndarray apart from the inputs, C-contiguous, of
# the input's shape and dtype). These functions check that, the option
# values included, and run the kernel on one thread (an input this small
# always runs on one) with no other Python work; they return None whenever
# anything is not certainly so (another type, layout, size or dtype; an
# option of another kind; a label out of range; a target outside [0, 1]),
# and the public function then takes its general path, which raises its own
# errors. The values are those of the general path, bit for bit
# (tests/test_common_call.py).

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE
from libc.stdint cimport int32_t, int64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.math cimport isfinite
from libc.string cimport memset

from _rows cimport xent_ops, xent_class_call, XENT_CLS_LSE, XENT_CLS_SOFTMAX, XENT_CLS_LOG_SOFTMAX, XENT_CLS_CE

import numpy as _np

cdef object _ndarray = _np.ndarray
cdef object _empty = _np.empty
cdef object _f32 = _np.dtype(_np.float32)
cdef object _f64 = _np.dtype(_np.float64)

#: inputs of fewer elements run on one thread (xent._threads.MIN_PARALLEL_ELEMENTS)
cdef enum:
    FAST_MAX_ELEMENTS = 32768


cdef int float_view(object a, Py_buffer* v, int ndim, bint writable):
    # 1 and a view of a: an exact ndarray, C-contiguous, aligned, of ndim
    # dimensions (ndim 0: 1 or 2), native float32 or float64; else 0 (no
    # view held)
    if type(a) is not _ndarray:
        return 0
    try:
        PyObject_GetBuffer(a, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0))
    except Exception:
        return 0
    if ((v.ndim != ndim if ndim else not 1 <= v.ndim <= 2) or v.format == NULL or v.format[1] != 0 or not (v.format[0] == b'f' or v.format[0] == b'd')
            or (<uintptr_t>v.buf) % <uintptr_t>v.itemsize != 0):
        PyBuffer_Release(v)
        return 0
    return 1


cdef inline bint apart(const Py_buffer* a, const Py_buffer* b) noexcept:
    # the memory of a and b does not overlap
    return (<char*>a.buf + a.len <= <char*>b.buf) or (<char*>b.buf + b.len <= <char*>a.buf)


cdef int out_view(object o, Py_buffer* v, const Py_buffer* xv, const Py_buffer* other):
    # 1 and a writable view of o: an exact ndarray of x's shape and dtype,
    # C-contiguous and aligned, that is x itself (the in-place form) or does
    # not overlap x, nor other (unless NULL); else 0 (no view held): the
    # general path then checks it and raises its errors
    cdef int k
    if not float_view(o, v, xv.ndim, True):
        return 0
    if v.itemsize != xv.itemsize or not (v.buf == xv.buf or apart(v, xv)) or (other != NULL and not apart(v, other)):
        PyBuffer_Release(v)
        return 0
    for k in range(xv.ndim):
        if v.shape[k] != xv.shape[k]:
            PyBuffer_Release(v)
            return 0
    return 1


cdef inline Py_ssize_t rows_of(const Py_buffer* v) noexcept:
    return v.shape[0] if v.ndim == 2 else 1


cdef inline Py_ssize_t cols_of(const Py_buffer* v) noexcept:
    return v.shape[v.ndim - 1]


def loss_sum(const double[::1] loss):
    """The reduced loss of per-row losses (grouped_sum, src/class_rows.pxi)."""
    return grouped_sum(&loss[0], loss.shape[0]) if loss.shape[0] > 0 else 0.0


def fast_rows(int op, x, out=None):
    """logsumexp (op 0), softmax (1) or log_softmax (2) of a 1-D x or the
    rows of a 2-D x along its last axis (softmax and log_softmax into out
    unless None: x itself or an array apart from it), or None (see the top
    of this file). The logsumexp of a 1-D x is a numpy scalar."""
    cdef Py_buffer xv, ov
    cdef xent_class_call a
    cdef object res
    cdef double lse64
    cdef float lse32
    cdef bint f32, one_row
    if not float_view(x, &xv, 0, False):
        return None
    try:
        f32 = xv.itemsize == 4
        one_row = xv.ndim == 1
        memset(&a, 0, sizeof(a))
        a.n, a.C = rows_of(&xv), cols_of(&xv)
        if a.n == 0 or a.C == 0 or a.n * a.C >= FAST_MAX_ELEMENTS or (out is not None and op == XENT_CLS_LSE):
            return None
        if out is not None:
            if not out_view(out, &ov, &xv, NULL):
                return None
            res = out
        elif op == XENT_CLS_LSE:
            res = None if one_row else _empty(a.n, _f32 if f32 else _f64)
        else:
            res = _empty(<object>a.C if one_row else (a.n, a.C), _f32 if f32 else _f64)
        if res is not None and out is None:
            PyObject_GetBuffer(res, &ov, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        a.op = op
        a.x = xv.buf
        a.ignore = -1
        if op == XENT_CLS_LSE:
            a.lse = ov.buf if res is not None else (<void*>&lse32 if f32 else <void*>&lse64)
        else:
            a.out = ov.buf
        with nogil:
            run_class(&a, xv.itemsize, 1)
        if res is None:
            return _f32.type(lse32) if f32 else _f64.type(lse64)
        PyBuffer_Release(&ov)
        return res
    finally:
        PyBuffer_Release(&xv)


#: fast_ce's reductions (the Python gate maps the names)
cdef enum:
    FAST_MEAN = 0
    FAST_SUM = 1
    FAST_NONE = 2


cdef int real_option(object v, double high, double* out):
    # 1 and v as a double when v is an exact int or float in [0, high] (a
    # value real_scalar returns unchanged); else 0
    if type(v) is float:
        out[0] = <double>v
        return 0.0 <= out[0] <= high
    if type(v) is int and 0 <= v <= high:
        out[0] = <double>v
        return 1
    return 0


cdef int reduction_code(object r):
    # FAST_MEAN, FAST_SUM or FAST_NONE for the exact str "mean", "sum" or
    # "none"; else -1
    if type(r) is not str:
        return -1
    return FAST_MEAN if r == "mean" else FAST_SUM if r == "sum" else FAST_NONE if r == "none" else -1


cdef int doubles_copy(object a, Py_ssize_t length, double** out, const char** span):
    # 1, a malloc'd float64 copy of a in out[0] (exact: real_array's
    # np.require) and a's memory [span[0], span[1]); a: an exact 1-D
    # float32/float64 ndarray of length values, C-contiguous, aligned. Else 0
    # (out[0] NULL: not the common call, or no memory).
    cdef Py_buffer v
    cdef Py_ssize_t i
    out[0] = NULL
    if type(a) is not _ndarray or not float_view(a, &v, 1, False):
        return 0
    try:
        if v.shape[0] != length:
            return 0
        out[0] = <double*>malloc(length * sizeof(double) + 1)
        if out[0] == NULL:
            return 0
        for i in range(length):
            out[0][i] = (<const float*>v.buf)[i] if v.itemsize == 4 else (<const double*>v.buf)[i]
        span[0], span[1] = <const char*>v.buf, <const char*>v.buf + v.len
        return 1
    finally:
        PyBuffer_Release(&v)


cdef inline bint apart_span(const Py_buffer* a, const char** span) noexcept:
    # a's memory does not overlap [span[0], span[1]) (NULL: nothing)
    return span[0] == NULL or <const char*>a.buf + a.len <= span[0] or span[1] <= <const char*>a.buf


def fast_ce(x, target, bint return_grad, grad_out=None, ignore_index=-100, label_smoothing=0.0,
            z_loss=0.0, reduction="mean", weight=None, sample_weight=None):
    """The softmax cross-entropy of 2-D logits x against int32/int64 labels
    or probability rows of x's dtype and shape, and its gradient (into
    grad_out unless None: x itself or an array apart from x, the labels and
    the weights), or None. The options as softmax_cross_entropy's, taken
    here when they are of the common kinds: ignore_index an int within
    int64, label_smoothing in [0, 1] and z_loss in [0, 2**53] exact ints or
    floats, reduction an exact str, class and sample weights None or
    float32/float64 ndarrays of shape (C,) and (N,)."""
    cdef Py_buffer xv, tv, gv
    cdef xent_class_call a
    cdef int64_t* labels = NULL
    cdef double* per = NULL
    cdef double* u = NULL
    cdef double* rowloss = NULL
    cdef double* w = NULL
    cdef double* sw = NULL
    cdef const char* wspan[2]
    cdef const char* sspan[2]
    cdef Py_ssize_t n, c, i, kept = 0
    cdef int status = 0
    cdef int64_t y
    cdef bint bad = False, skip, f32, probs
    cdef double scale = 1.0, denom = 0.0, value = 0.0, eps, z
    cdef int64_t ignore
    cdef int red = reduction_code(reduction)
    cdef object grad = None, res = None
    wspan[0] = sspan[0] = NULL
    if (red < 0 or type(ignore_index) is not int or not real_option(label_smoothing, 1.0, &eps)
            or not real_option(z_loss, 9007199254740992.0, &z)):
        return None
    try:
        ignore = ignore_index
    except OverflowError:
        return None
    if type(target) is not _ndarray or not float_view(x, &xv, 2, False):
        return None
    try:
        n, c = xv.shape[0], xv.shape[1]
        f32 = xv.itemsize == 4
        if n == 0 or c == 0 or n * c >= FAST_MAX_ELEMENTS:
            return None
        if ((weight is not None and not doubles_copy(weight, c, &w, wspan))
                or (sample_weight is not None and not doubles_copy(sample_weight, n, &sw, sspan))):
            return None
        try:
            PyObject_GetBuffer(target, &tv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
        except Exception:
            return None
        try:
            if tv.format[1] != 0 or (<uintptr_t>tv.buf) % <uintptr_t>tv.itemsize != 0:
                return None
            # probabilities: the logits' dtype and shape (a row each)
            probs = (tv.ndim == 2 and tv.itemsize == xv.itemsize and tv.format[0] == xv.format[0]
                     and tv.shape[0] == n and tv.shape[1] == c)
            if not probs and (tv.ndim != 1 or tv.shape[0] != n
                              or not ((tv.itemsize == 8 and (tv.format[0] == b'l' or tv.format[0] == b'q'))
                                      or (tv.itemsize == 4 and tv.format[0] == b'i'))):
                return None
            # each kept sample's share of the mean's denominator (as
            # _mean_denominator: w[y] sw, the factors given)
            per = <double*>malloc(n * sizeof(double))
            if per == NULL:
                return None
            if probs:
                for i in range(n):
                    per[i] = sw[i] if sw != NULL else 1.0
                kept = n  # (every sample counts once)
            else:
                labels = <int64_t*>malloc(n * sizeof(int64_t))
                if labels == NULL:
                    return None
                for i in range(n):
                    y = (<int64_t*>tv.buf)[i] if tv.itemsize == 8 else (<int32_t*>tv.buf)[i]
                    labels[i] = y
                    skip = y == ignore
                    bad = bad | ((not skip) & ((y < 0) | (y >= c)))
                    if not skip:
                        per[kept] = ((w[y] if w != NULL and not bad else 1.0)
                                     * (sw[i] if sw != NULL else 1.0))
                        kept += 1
                if bad:
                    return None
            if red == FAST_MEAN:
                # the kept rows' count, or grouped_sum of their shares
                if (w != NULL and not probs) or sw != NULL:
                    denom = grouped_sum(per, kept) if kept > 0 else 0.0
                else:
                    denom = <double>kept
                if denom != 0 and not isfinite(1.0 / denom):
                    return None  # (subnormal weights: the general path rescales them)
                scale = 0.0 if denom == 0 else 1.0 / denom
            memset(&a, 0, sizeof(a))
            a.op = XENT_CLS_CE
            a.n, a.C = n, c
            a.x = xv.buf
            a.labels = labels
            a.target = tv.buf if probs else NULL
            a.ignore = ignore
            u = ce_set(&a, w, sw, &scale, 0, eps, z, 0.0)
            if red == FAST_NONE:  # (before any view of an output)
                rowloss = <double*>malloc(n * sizeof(double))
                if rowloss == NULL:
                    raise MemoryError()
                a.loss = rowloss
            if grad_out is not None:
                if not return_grad or not out_view(grad_out, &gv, &xv, &tv):
                    return None
                if not apart_span(&gv, wspan) or not apart_span(&gv, sspan):
                    PyBuffer_Release(&gv)
                    return None
                grad = grad_out
                a.out = gv.buf
            elif return_grad:
                grad = _empty((n, c), _f32 if f32 else _f64)
                PyObject_GetBuffer(grad, &gv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
                a.out = gv.buf
            with nogil:
                status = run_class(&a, xv.itemsize, 1, NULL if red == FAST_NONE else &value)
                if red == FAST_MEAN:
                    value = 0.0 if denom == 0 else value * scale
                    if denom == 0 and return_grad:
                        memset(a.out, 0, n * c * xv.itemsize)
            if return_grad:
                PyBuffer_Release(&gv)
            if status != 0:
                raise MemoryError()
            if red == FAST_NONE:
                res = _empty(n, _f32 if f32 else _f64)
                PyObject_GetBuffer(res, &gv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
                for i in range(n):  # (as numpy's astype: rounded to nearest)
                    if f32:
                        (<float*>gv.buf)[i] = <float>rowloss[i]
                    else:
                        (<double*>gv.buf)[i] = rowloss[i]
                PyBuffer_Release(&gv)
            else:
                res = (_f32 if f32 else _f64).type(value)
            return (res, grad) if return_grad else res
        finally:
            PyBuffer_Release(&tv)
            free(labels)
            free(per)
            free(u)
            free(rowloss)
    finally:
        PyBuffer_Release(&xv)
        free(w)
        free(sw)


def fast_bce(x, target, bint return_grad, grad_out=None, label_smoothing=0.0, reduction="mean",
             pos_weight=None):
    """The binary cross-entropy from logits x against targets t of x's shape
    and dtype, values in [0, 1] (label_smoothing an exact int or float in
    [0, 1], reduction an exact str; pos_weight None or a float32/float64
    ndarray of shape (1,) or (C,), C the last axis), and its gradient (into
    grad_out unless None: x itself or an array apart from x, t and
    pos_weight), or None. As the general path (xent/_binary.py): one value
    of pos_weight runs the elements as one row, tasks of CHUNK elements;
    else a task is a chunk of a row; the tasks' sums reduced by grouped_sum."""
    cdef Py_buffer xv, tv, gv, pv, lv
    cdef Py_ssize_t size, n, c, i, j0, m, k = 0, nt, per_row
    cdef double scale = 1.0, total = 0.0
    cdef double one = 1.0
    cdef float one32 = 1.0
    cdef double* partial = NULL
    cdef double* pwd = NULL
    cdef const double* pw = &one
    cdef Py_ssize_t pws = 0
    cdef bint bad = False, f32, has_pw = False
    cdef int ndim, stream
    cdef object grad = None, res = None
    cdef void* lp = NULL
    cdef void* gp = NULL
    cdef double smooth
    cdef int red = reduction_code(reduction)
    if red < 0 or not real_option(label_smoothing, 1.0, &smooth):
        return None
    if type(x) is not _ndarray or type(target) is not _ndarray:
        return None
    ndim = x.ndim
    if not 1 <= ndim <= 2 or not float_view(x, &xv, ndim, False):
        return None
    try:
        if not float_view(target, &tv, ndim, False):
            return None
        try:
            if tv.itemsize != xv.itemsize or tv.shape[0] != xv.shape[0] or tv.shape[ndim - 1] != xv.shape[ndim - 1]:
                return None
            size = xv.len // xv.itemsize
            # (one element: the general path's weight views reshape to
            # nonzero strides there and take the kernel's other body, whose
            # NaN has the other sign)
            if size <= 1 or size >= FAST_MAX_ELEMENTS:
                return None
            f32 = xv.itemsize == 4
            n, c = rows_of(&xv), cols_of(&xv)
            if pos_weight is not None:
                if type(pos_weight) is not _ndarray or not float_view(pos_weight, &pv, 1, False):
                    return None
                has_pw = True
            try:
                if has_pw:
                    if pv.shape[0] != 1 and pv.shape[0] != c:
                        return None
                    pwd = <double*>malloc(pv.shape[0] * sizeof(double))
                    if pwd == NULL:
                        return None
                    for i in range(pv.shape[0]):  # (as float64: exact)
                        pwd[i] = (<const float*>pv.buf)[i] if pv.itemsize == 4 else (<const double*>pv.buf)[i]
                    pw = pwd
                    # one value: seen with stride 0 (the general path's broadcast)
                    pws = 1 if pv.shape[0] > 1 else 0
                if pws == 0 or n == 1:  # the elements as one row
                    n, c = 1, size
                for j0 in range(size):
                    if f32:
                        bad = bad | ((<float*>tv.buf)[j0] < 0) | ((<float*>tv.buf)[j0] > 1)
                    else:
                        bad = bad | ((<double*>tv.buf)[j0] < 0) | ((<double*>tv.buf)[j0] > 1)
                if bad:
                    return None
                if red == FAST_MEAN:
                    scale = 1.0 / size
                per_row = (c + CHUNK - 1) // CHUNK
                nt = n * per_row
                partial = <double*>malloc(nt * sizeof(double))  # (before any view of an output)
                if partial == NULL:
                    raise MemoryError()
                if grad_out is not None:
                    if not return_grad or not out_view(grad_out, &gv, &xv, &tv):
                        return None
                    if has_pw and not apart(&gv, &pv):
                        PyBuffer_Release(&gv)
                        return None
                    grad = grad_out
                    gp = gv.buf
                elif return_grad:
                    grad = _empty(x.shape, _f32 if f32 else _f64)
                    PyObject_GetBuffer(grad, &gv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
                    gp = gv.buf
                if red == FAST_NONE:
                    res = _empty(x.shape, _f32 if f32 else _f64)
                    PyObject_GetBuffer(res, &lv, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
                    lp = lv.buf
                stream = return_grad and size * <Py_ssize_t>xv.itemsize >= xent_stream_bytes
                with nogil:
                    for k in range(nt):  # (bce_rows' tasks, in order)
                        i = k // per_row
                        j0 = (k % per_row) * CHUNK
                        m = min(<Py_ssize_t>CHUNK, c - j0)
                        if f32:
                            partial[k] = xent_ops.bce_logits_f32(
                                <const float*>xv.buf + i * c + j0, <const float*>tv.buf + i * c + j0, m,
                                pw + j0 * pws, pws, &one32, 0, NULL, 0, &one32, 0, scale, smooth,
                                <float*>lp + i * c + j0 if lp != NULL else NULL,
                                <float*>gp + i * c + j0 if gp != NULL else NULL, stream, NULL, 1.0, 0, 0.0)
                        else:
                            partial[k] = xent_ops.bce_logits_f64(
                                <const double*>xv.buf + i * c + j0, <const double*>tv.buf + i * c + j0, m,
                                pw + j0 * pws, pws, &one, 0, NULL, 0, &one, 0, scale, smooth,
                                <double*>lp + i * c + j0 if lp != NULL else NULL,
                                <double*>gp + i * c + j0 if gp != NULL else NULL, stream, NULL, 1.0, 0, 0.0)
                    total = grouped_sum(partial, nt)
                if return_grad:
                    PyBuffer_Release(&gv)
                if red == FAST_NONE:
                    PyBuffer_Release(&lv)
                else:
                    res = (_f32 if f32 else _f64).type(total * scale if red == FAST_MEAN else total)
                return (res, grad) if return_grad else res
            finally:
                if has_pw:
                    PyBuffer_Release(&pv)
                free(pwd)
                free(partial)
        finally:
            PyBuffer_Release(&tv)
    finally:
        PyBuffer_Release(&xv)
