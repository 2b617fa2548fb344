# bfloat16 <-> float32, for xent/_bfloat16.py. A bfloat16 is the high half of
# a float32's bits: widening is exact (a shift), narrowing rounds to nearest,
# ties to even, in integer arithmetic: NaN stays NaN (the quiet bit set in
# what is kept of its payload), values beyond the largest bfloat16 round to
# +-inf, subnormals round as IEEE rounding does. Both run over chunks of
# BF16_CHUNK values in parallel; they validate nothing (the Python layer
# passes C-contiguous arrays of the same length).

from cython.parallel cimport prange
from libc.stdint cimport uint16_t, uint32_t


cdef enum:
    BF16_CHUNK = 65536


cdef inline uint16_t bf16_round(uint32_t u) noexcept nogil:
    if (u & 0x7FFFFFFFu) > 0x7F800000u:  # NaN
        return <uint16_t>((u >> 16) | 0x0040u)
    return <uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16)


cdef void bf16_widen_chunk(const uint16_t* s, uint32_t* d, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = (<uint32_t>s[i]) << 16


cdef void bf16_narrow_chunk(const uint32_t* s, uint16_t* d, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = bf16_round(s[i])


def bf16_widen(const uint16_t[::1] src, uint32_t[::1] dst, int n_threads):
    """dst (float32 bits) = src (bfloat16 bits) << 16."""
    cdef Py_ssize_t n = src.shape[0], q, lo
    cdef Py_ssize_t nq = (n + BF16_CHUNK - 1) // BF16_CHUNK
    if n == 0:
        return
    for q in prange(nq, nogil=True, num_threads=n_threads, schedule="static"):
        lo = q * BF16_CHUNK
        bf16_widen_chunk(&src[lo], &dst[lo], min(<Py_ssize_t>BF16_CHUNK, n - lo))


def bf16_narrow(const uint32_t[::1] src, uint16_t[::1] dst, int n_threads):
    """dst (bfloat16 bits) = src (float32 bits) rounded to nearest, ties to even."""
    cdef Py_ssize_t n = src.shape[0], q, lo
    cdef Py_ssize_t nq = (n + BF16_CHUNK - 1) // BF16_CHUNK
    if n == 0:
        return
    for q in prange(nq, nogil=True, num_threads=n_threads, schedule="static"):
        lo = q * BF16_CHUNK
        bf16_narrow_chunk(&src[lo], &dst[lo], min(<Py_ssize_t>BF16_CHUNK, n - lo))
