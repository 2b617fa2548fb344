# bfloat16 <-> float32 arrays, for xent/_bfloat16.py: the row library's
# conversions (xent_bf16_widen_/xent_bf16_narrow_, src/xent_rows_impl.h:
# exact widening, narrowing to nearest with ties to even, NaN kept, overflow
# to +-inf) over chunks of BF16_CHUNK values in parallel. They validate
# nothing (the Python layer passes C-contiguous arrays of the same length).

from cython.parallel cimport prange
from libc.stdint cimport uint16_t, uint32_t

from _rows cimport xent_ops


cdef enum:
    BF16_CHUNK = 65536


def bf16_widen(const uint16_t[::1] src, uint32_t[::1] dst, int n_threads):
    """dst (float32 bits) = src (bfloat16 bits) << 16."""
    cdef Py_ssize_t n = src.shape[0], q, lo
    cdef Py_ssize_t nq = (n + BF16_CHUNK - 1) // BF16_CHUNK
    if n == 0:
        return
    for q in prange(nq, nogil=True, num_threads=n_threads, schedule="static"):
        lo = q * BF16_CHUNK
        xent_ops.bf16_widen(&src[lo], <float*>&dst[lo], min(<Py_ssize_t>BF16_CHUNK, n - lo))


def bf16_narrow(const uint32_t[::1] src, uint16_t[::1] dst, int n_threads):
    """dst (bfloat16 bits) = src (float32 bits) rounded to nearest, ties to even."""
    cdef Py_ssize_t n = src.shape[0], q, lo
    cdef Py_ssize_t nq = (n + BF16_CHUNK - 1) // BF16_CHUNK
    if n == 0:
        return
    for q in prange(nq, nogil=True, num_threads=n_threads, schedule="static"):
        lo = q * BF16_CHUNK
        xent_ops.bf16_narrow(<const float*>&src[lo], &dst[lo], min(<Py_ssize_t>BF16_CHUNK, n - lo))
