# Instruction-set selection and the streaming thresholds (test hooks), for
# xent._dispatch.

from _rows cimport XENT_COMPILER, XENT_OPENMP_DATE, XENT_BUILD_FLAGS
from _rows cimport xent_row_ops, xent_ops, xent_isa_table, xent_op_names, xent_stream_bytes, xent_set_stream_bytes, xent_stream_min_c, xent_set_stream_min_c, xent_block_max_c, XENT_SMALL_C


def build_info():
    """What built the kernels: the compiler's version string, the OpenMP
    specification date (0: built serial) and setup.py's compile flags."""
    return {
        "compiler": XENT_COMPILER.decode(errors="replace"),
        "openmp_date": XENT_OPENMP_DATE,
        "flags": XENT_BUILD_FLAGS.decode(errors="replace"),
    }


def isa_paths():
    """The instruction-set paths compiled in, best first, as (name, supported)."""
    cdef int i = 0, supported = 0
    cdef const xent_row_ops* ops
    out = []
    while True:
        ops = xent_isa_table(i, &supported)
        if ops == NULL:
            return out
        out.append((ops.name.decode(), bool(supported)))
        i += 1


def op_names():
    """The names of the row operations of every instruction set's table, in
    table order (XENT_OPS of src/xent_rows.h)."""
    cdef int i = 0
    out = []
    while xent_op_names[i] != NULL:
        out.append(xent_op_names[i].decode())
        i += 1
    return out


def set_isa(name):
    """Run the kernels on the path ``name`` (must be supported)."""
    cdef int i = 0, supported = 0
    cdef const xent_row_ops* ops
    while True:
        ops = xent_isa_table(i, &supported)
        if ops == NULL:
            raise ValueError(f"unknown instruction-set path {name!r}")
        if ops.name.decode() == name:
            if not supported:
                raise ValueError(f"this CPU cannot run the {name!r} path")
            global xent_ops
            xent_ops = ops
            return
        i += 1


def get_isa():
    """The path the kernels run on."""
    return xent_ops.name.decode()


def set_stream_bytes(Py_ssize_t n):
    """Stream outputs of at least n bytes (a test hook; see _rows.pxd)."""
    xent_set_stream_bytes(n)


def get_stream_bytes():
    return xent_stream_bytes


def set_stream_classes(Py_ssize_t f32, Py_ssize_t f64):
    """Stream only rows of at least this many classes (a test hook)."""
    xent_set_stream_min_c(f32, f64)


def get_stream_classes():
    return xent_stream_min_c[0], xent_stream_min_c[1]


def set_block_classes(Py_ssize_t f32, Py_ssize_t f64):
    """Rows of at most this many classes (float32, float64; at most
    XENT_SMALL_C) take the block path (a test and benchmark hook)."""
    xent_block_max_c[0] = max(0, min(f32, <Py_ssize_t>XENT_SMALL_C))
    xent_block_max_c[1] = max(0, min(f64, <Py_ssize_t>XENT_SMALL_C))


def get_block_classes():
    return xent_block_max_c[0], xent_block_max_c[1]
