# bfloat16 <-> float32 arrays, for xent/_bfloat16.py: the row library's
# conversions (xent_bf16_widen_/xent_bf16_narrow_, src/xent_rows_impl.h:
# exact widening, narrowing to nearest with ties to even, NaN kept, overflow
# to +-inf) in parallel pieces (bf16_convert, src/class_rows.pxi). They
# validate nothing (the Python layer passes C-contiguous arrays of the same
# length).

from libc.stdint cimport uint16_t, uint32_t


def bf16_widen(const uint16_t[::1] src, uint32_t[::1] dst, int n_threads):
    """dst (float32 bits) = src (bfloat16 bits) << 16."""
    if src.shape[0] > 0:
        with nogil:
            bf16_convert(&src[0], &dst[0], src.shape[0], True, n_threads)


def bf16_narrow(const uint32_t[::1] src, uint16_t[::1] dst, int n_threads):
    """dst (bfloat16 bits) = src (float32 bits) rounded to nearest, ties to even."""
    if src.shape[0] > 0:
        with nogil:
            bf16_convert(&src[0], &dst[0], src.shape[0], False, n_threads)
