"""The one validation layer every public function goes through.

Everything here runs before a kernel is called, so a bad argument raises a
TypeError or ValueError that names the argument, what was expected and what
was received, and nothing has been written yet. Checks are O(1) or O(N) in the
number of rows; none reads the N x C data.

It also turns an array and its class axes into the layout the kernels take: a
C-contiguous ``(n_rows, C)`` array in the compute dtype (float32 or float64;
float16 is computed in float32). Arrays already in that layout are passed
through without a copy; anything else (another axis, Fortran order, negative
strides, float16) is copied once.
"""

import operator

import numpy as np

try:  # NumPy >= 1.25
    from numpy.exceptions import AxisError, TooHardError
except ImportError:  # pragma: no cover - older NumPy
    from numpy import AxisError, TooHardError

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def float_array(x, name):
    """``x`` as an ndarray of float16/32/64 (no copy); TypeError otherwise."""
    arr = np.asarray(x)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: expected a floating-point array (float16, float32 or float64), "
            f"got dtype {arr.dtype}"
        )
    return arr


def compute_dtype(dtype):
    """The dtype a kernel runs in for an input of ``dtype``."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def class_axes(axis, ndim, name="axis"):
    """Normalise ``axis`` (None, an int or a tuple of ints) to a sorted tuple."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError(f"{name}: expected an integer or a tuple of integers, got {axis!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(
                f"{name}: expected an integer or a tuple of integers, got {axis!r}"
            ) from None
        if not -ndim <= a < ndim:
            raise AxisError(
                f"{name}: expected an axis in [{-ndim}, {ndim}) for an array of "
                f"{ndim} dimension(s), got {a}"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: expected distinct axes, got {axis!r}")
    return tuple(sorted(out))


def positive_int(value, name):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {value!r}") from None


class Rows:
    """An array seen as ``n_rows`` rows of ``C`` values along its class axes.

    ``data(dtype)`` is the C-contiguous ``(n_rows, C)`` array that the kernels
    read. ``to_full(a2d)`` maps a kernel output of the same 2-D shape
    back to the original shape and axis order (a view, no copy), and
    ``to_batch(a1d, keepdims)`` does the same for one value per row.
    """

    def __init__(self, x, axes):
        self.x = x
        self.shape = x.shape
        self.axes = axes
        self.batch_axes = tuple(a for a in range(x.ndim) if a not in axes)
        self.batch_shape = tuple(x.shape[a] for a in self.batch_axes)
        self.n_classes = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        self.n_rows = int(np.prod(self.batch_shape, dtype=np.int64))
        self.trailing = axes == tuple(range(x.ndim - len(axes), x.ndim))
        self.moved_shape = self.batch_shape + tuple(x.shape[a] for a in axes)

    def data(self, dtype):
        """The rows as a C-contiguous (n_rows, C) array of ``dtype`` (copied if needed)."""
        x = self.x
        if not self.trailing:
            k = len(self.axes)
            x = np.moveaxis(x, self.axes, range(x.ndim - k, x.ndim))
        # C-contiguous and aligned: the compiled loops may assume both.
        return np.require(x, dtype=dtype, requirements=["C", "A"]).reshape(self.shape2d)

    @property
    def shape2d(self):
        return (self.n_rows, self.n_classes)

    def to_full(self, a2d):
        a = a2d.reshape(self.moved_shape)
        if self.trailing:
            return a
        k = len(self.axes)
        return np.moveaxis(a, range(a.ndim - k, a.ndim), self.axes)

    def batch_out_shape(self, keepdims):
        if not keepdims:
            return self.batch_shape
        return tuple(1 if a in self.axes else n for a, n in enumerate(self.shape))

    def to_batch(self, a1d, keepdims):
        return a1d.reshape(self.batch_out_shape(keepdims))

    def direct_full(self, out, dtype):
        """A 2-D view of ``out`` the kernel can write into, or None."""
        if out is None or out.dtype != dtype or not self.trailing:
            return None
        if not (out.flags.c_contiguous and out.flags.aligned):
            return None
        return out.reshape(self.shape2d)

    @staticmethod
    def direct_flat(out, dtype):
        if out is None or out.dtype != dtype:
            return None
        if not (out.flags.c_contiguous and out.flags.aligned):
            return None
        return out.reshape(-1)


def _same_view(a, b):
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )


def _overlaps(a, b):
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except TooHardError:
        return True


def check_out(out, name, shape, dtype, inputs=(), in_place_ok=False):
    """Validate a caller-provided output buffer; returns it (or None).

    ``inputs`` is a sequence of ``(arg_name, array)`` the output must not
    overlap. With ``in_place_ok`` the output may be exactly one of them (same
    memory, shape and strides): the kernels that allow it read each element
    before writing the same element.
    """
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    for arg, arr in inputs:
        if not isinstance(arr, np.ndarray) or not _overlaps(out, arr):
            continue
        if in_place_ok and _same_view(out, arr):
            continue
        hint = f" (the in-place form is {name}={arg} itself)" if in_place_ok else ""
        raise ValueError(f"{name}: must not overlap the memory of {arg}{hint}")
    return out


def same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(
            f"{b_name}: expected the shape of {a_name} {a.shape}, got {b.shape}"
        )
