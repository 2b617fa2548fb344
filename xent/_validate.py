"""The one validation layer every public function goes through.

Everything here runs before a kernel is called, so a bad argument raises a
TypeError or ValueError that names the argument, what was expected and what
was received, and nothing has been written yet. Checks are O(1) or O(N) in the
number of rows; none reads the N x C data, except ``probability_array`` of the
scikit-learn-compatible metrics, whose contract (range errors) requires it.

It also turns an array and its class axes into the layout the kernels take: a
C-contiguous ``(n_rows, C)`` array in the compute dtype (float32 or float64;
float16 is computed in float32). Arrays already in that layout are passed
through without a copy; anything else (another axis, Fortran order, negative
strides, float16) is copied once.
"""

import math
import numbers
import operator
from typing import Any, Callable

import numpy as np

from ._typing import F, NDArray

try:  # NumPy >= 1.25
    from numpy.exceptions import AxisError, TooHardError
except ImportError:  # pragma: no cover - older NumPy
    from numpy import AxisError, TooHardError  # type: ignore[attr-defined, no-redef, unused-ignore]

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def is_bfloat16(dtype: Any) -> bool:
    """Whether ``dtype`` is ``ml_dtypes.bfloat16`` (kind 'V', 2 bytes)."""
    return dtype.kind == "V" and dtype.itemsize == 2 and dtype.name == "bfloat16" and \
        getattr(dtype.type, "__module__", "") == "ml_dtypes"


def bfloat16_check(arr: Any, name: str) -> None:
    """BFloat16Input if ``arr`` (an ndarray a validator refuses by its dtype)
    is bfloat16: the public function widens it and calls again."""
    if arr.dtype.kind == "V" and is_bfloat16(arr.dtype):
        raise BFloat16Input(
            f"{name}: a bfloat16 array is accepted as an ndarray (ml_dtypes.bfloat16), got "
            f"bfloat16 values xent cannot widen (inside a list or another container)")


class DaskInput(TypeError):
    """Raised by ``float_array`` on a dask array, before anything is
    computed or written; the public function (``xent._bfloat16.bfloat16_io``)
    answers it with the ``xent.dask`` function of its name, so that a dask
    array in gives a dask array out instead of being computed into memory."""


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a dask array (without importing dask)."""
    t = type(x)
    return t.__module__.startswith("dask.") and hasattr(t, "__dask_graph__")


class BFloat16Input(TypeError):
    """Raised by the validation layer (``float_array``) on a bfloat16 input,
    before anything is written; ``xent._bfloat16.bfloat16_io`` answers it. Reaching the
    caller (a bfloat16 value it cannot widen, e.g. inside a list), it is the
    TypeError the message says."""


def float_array(x: Any, name: str, bf16: bool = False) -> NDArray[Any]:
    """``x`` as an ndarray of float16/32/64 (no copy for those); integers and
    bools promoted to float64, as NumPy's ufuncs and SciPy do (a copy);
    TypeError for anything else (complex, object, strings, datetimes, long
    double). ``bf16``: a bfloat16 array is taken as it is (the caller's
    kernels read bfloat16, ``BITS``), else it raises ``BFloat16Input``."""
    if type(x) is not np.ndarray and is_dask(x):
        raise DaskInput(f"{name}: expected a NumPy array, got a dask array (xent.dask has the "
                        f"functions that take dask arrays, lazily)")
    arr = np.asarray(x)
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))  # byte-swapped: a native copy
    elif arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype not in FLOAT_DTYPES:
        if bf16 and is_bfloat16(arr.dtype):
            return arr
        bfloat16_check(arr, name)
        raise TypeError(
            f"{name}: expected a floating-point array (float16, float32 or float64; integers "
            f"and bools are promoted to float64), got dtype {arr.dtype}"
        )
    return arr


def caller_memory(name, given, arr):
    """``[(name, given)]`` when ``arr`` (what ``float_array`` made of the
    caller's ``given``) is a copy, as for byte-swapped input, else ``[]``.
    Outputs are checked not to overlap these too: the copy shares no memory
    with them, but the caller's array does."""
    if isinstance(given, np.ndarray) and not np.may_share_memory(given, arr):
        return [(name, given)]
    return []


#: the dtype of the kernels that read bfloat16: its bits (src/class_rows.pxi's
#: run_bf16 widens them to float32 in the cache, a group of rows at a time)
BITS = np.dtype(np.uint16)


def bf16_outputs(*outs):
    """Whether a call with these outputs (each None or an array) can have its
    bfloat16 input read by the kernels as it is: each output None or
    bfloat16 (a float output: the call is widened, ``BFloat16Input``)."""
    return all(o is None or (isinstance(o, np.ndarray) and is_bfloat16(o.dtype)) for o in outs)


def as_values(a, dtype):
    """A kernel's output ``a`` seen as values of the result ``dtype``
    (bfloat16 bits, ``BITS``, as bfloat16; anything else as it is)."""
    return a.view(dtype) if a.dtype == BITS and dtype.kind == "V" else a


def compute_dtype(dtype):
    """The dtype a kernel runs in for an input of ``dtype`` (bfloat16: ``BITS``)."""
    if dtype.kind == "V" and is_bfloat16(dtype):
        return BITS
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


def integer(value, name):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {value!r}") from None


def row_constant(n, value):
    """One float64 value seen as ``n`` (one per row): a stride-0 array, what
    np.broadcast_to gives without its overhead."""
    return np.ndarray((n,), np.float64, np.array([value], np.float64), strides=(0,))


def ignore_index_value(ignore_index):
    """``ignore_index`` as an int within int64 (the kernels' label type)."""
    ignore_index = integer(ignore_index, "ignore_index")
    if not -(2**63) <= ignore_index < 2**63:
        raise ValueError(f"ignore_index: expected a 64-bit integer, got {ignore_index}")
    return ignore_index


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
        self.n_classes = math.prod(x.shape[a] for a in axes)
        self.n_rows = math.prod(self.batch_shape)
        self.trailing = axes == tuple(range(x.ndim - len(axes), x.ndim))
        self.moved_shape = self.batch_shape + tuple(x.shape[a] for a in axes)

    def data(self, dtype):
        """The rows as a C-contiguous (n_rows, C) array of ``dtype`` (copied if needed)."""
        x = self.x
        if not self.trailing:
            k = len(self.axes)
            x = np.moveaxis(x, self.axes, range(x.ndim - k, x.ndim))
        # C-contiguous and aligned: the compiled loops may assume both.
        if dtype == BITS and x.dtype.kind == "V":  # bfloat16 as its bits
            return np.require(x, requirements=["C", "A"]).reshape(self.shape2d).view(BITS)
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
        if out is not None and dtype == BITS and out.dtype.kind == "V":
            out = out.view(BITS)  # (a bfloat16 output as its bits)
        if out is None or out.dtype != dtype or not self.trailing:
            return None
        if not (out.flags.c_contiguous and out.flags.aligned):
            return None
        return out.reshape(self.shape2d)

    @staticmethod
    def direct_flat(out, dtype):
        if out is not None and dtype == BITS and out.dtype.kind == "V":
            out = out.view(BITS)  # (a bfloat16 output as its bits)
        if out is None or out.dtype != dtype:
            return None
        if not (out.flags.c_contiguous and out.flags.aligned):
            return None
        return out.reshape(-1)


def row_operand(v, name, rows, of="x"):
    """``v`` (an array broadcastable to the shape of ``rows``' array: ``b=``,
    a boolean ``where=``) as the ``(n_rows, C)`` view the kernels read, its
    classes at a stride of 0 or 1 element and its rows at any whole-element
    stride: no copy for the common forms (the full shape, a value per class,
    a value per row, a scalar), a copy of ``v`` otherwise (never of ``x``)."""
    try:
        full = np.broadcast_to(v, rows.shape)
    except ValueError:
        raise ValueError(f"{name}: expected an array broadcastable to the shape {rows.shape} of {of}, "
                         f"got shape {np.shape(v)}") from None
    if not rows.trailing:
        k = len(rows.axes)
        full = np.moveaxis(full, rows.axes, range(full.ndim - k, full.ndim))
    v2 = full.reshape(rows.shape2d)  # (a view where the strides allow it)
    size = v2.itemsize
    if (v2.strides[1] not in (0, size) and v2.shape[1] > 1) or v2.strides[0] % size or not v2.flags.aligned:
        v2 = np.require(v2, requirements=["C", "A"])
    if v2.shape[1] <= 1 and v2.strides[1] != 0:  # (one class: any stride addresses it)
        v2 = np.lib.stride_tricks.as_strided(v2, strides=(v2.strides[0], 0))
    return v2


def mask_array(where, name="where"):
    """A boolean mask as an ndarray of bool (TypeError for any other dtype)."""
    if type(where) is not np.ndarray and is_dask(where):
        raise DaskInput(f"{name}: expected a NumPy array, got a dask array")
    w = np.asarray(where)
    if w.dtype != np.bool_:
        raise TypeError(f"{name}: expected a boolean array (True keeps an entry), got dtype {w.dtype}")
    return w


def _steps(a):
    """The strides that address elements (an axis of length 1 has no step)."""
    return tuple(st for st, n in zip(a.strides, a.shape) if n > 1)


def same_view(a, b):
    """The same elements at the same addresses (strides of axes of length 1,
    which address nothing, do not count)."""
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and _steps(a) == _steps(b)
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
        if in_place_ok and same_view(out, arr):
            continue
        hint = f" (the in-place form is {name}={arg} itself)" if in_place_ok else ""
        raise ValueError(f"{name}: must not overlap the memory of {arg}{hint}")
    return out


def upstream_grad(grad_loss, reduction, shape, dtype=np.float64):
    """The upstream gradient of a loss: a 0-d array for "mean"/"sum" (default
    1), or an array of ``dtype`` broadcast to the per-sample ``shape`` for
    "none" (a view: no copy)."""
    gl = np.ones((), dtype) if grad_loss is None else real_array(grad_loss, "grad_loss")
    if reduction != "none":
        if gl.ndim != 0:
            raise ValueError(
                f"grad_loss: expected a scalar for reduction={reduction!r}, got shape {gl.shape}")
        return gl
    try:
        return np.broadcast_to(gl.astype(dtype, copy=False), shape)
    except ValueError:
        raise ValueError(f"grad_loss: expected a shape broadcastable to the per-sample shape "
                         f"{tuple(shape)}, got {gl.shape}") from None


def check_grad_out(grad_out, return_grad, name, x, others):
    """A loss's ``grad_out``: needs ``return_grad``; may be the input ``x``
    itself (in place) and must overlap none of ``others`` ((name, array) pairs)."""
    if grad_out is None:
        return None
    if not return_grad:
        raise ValueError("grad_out: given, but return_grad is False")
    check_out(grad_out, "grad_out", x.shape, x.dtype, [(name, x)], in_place_ok=True)
    return check_out(grad_out, "grad_out", x.shape, x.dtype, others)


def fill_doc(**parts: str) -> Callable[[F], F]:
    """Decorator: substitute ``%(name)s`` markers of a docstring (shared sections)."""

    def decorate(func):
        func.__doc__ = func.__doc__ % parts
        return func

    return decorate


def deliver(full, out, dtype):
    """Return a kernel result ``full`` (original axis order): into ``out`` if
    given (unless it already is a view of it), else converted to ``dtype``."""
    if out is not None:
        if not np.may_share_memory(full, out):
            np.copyto(out, full, casting="same_kind")
        return out
    if full.dtype != dtype:
        full = full.astype(dtype)
    return full


def same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(
            f"{b_name}: expected the shape of {a_name} {a.shape}, got {b.shape}"
        )


REDUCTIONS = ("none", "sum", "mean")


def reduction_mode(reduction, allowed=REDUCTIONS):
    """``reduction`` checked against the ``allowed`` names (the losses' three
    by default; the information and distillation losses name more)."""
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"reduction: expected one of {', '.join(map(repr, allowed))}, "
                         f"got {reduction!r}")
    return reduction


def _as_float(value):
    """float(value), or inf (with its sign) for an int too large for a float
    (where float() raises OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def real_scalar(value, name, low=None, high=None):
    """A finite real number, optionally within [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = _as_float(value)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        bounds = f" in [{low}, {high}]" if high is not None else (f" >= {low}" if low is not None else "")
        raise ValueError(f"{name}: expected a finite number{bounds}, got {value!r}")
    return value


def positive_or_none(value, name):
    """None, or a finite real number > 0 (as a float)."""
    if value is None:
        return None
    value = real_scalar(value, name)
    if not value > 0:
        raise ValueError(f"{name}: expected None or a finite number > 0, got {value!r}")
    return value


def real_array(a, name):
    """Integer or float array-like as an aligned, native float64 array (no bool,
    complex or object)."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        bfloat16_check(arr, name)
        raise TypeError(f"{name}: expected real numbers (an integer or float dtype), got dtype {arr.dtype}")
    return np.require(arr, dtype=np.float64, requirements=["A"])


def class_weights(weight, n_classes):
    """Per-class weights of shape (C,) as contiguous float64, or None."""
    if weight is None:
        return None
    w = real_array(weight, "weight")
    if w.shape != (n_classes,):
        raise ValueError(f"weight: expected shape ({n_classes},) (one weight per class), got {w.shape}")
    return np.require(w, requirements=["C", "A"])


def focal_factors(alpha, n_classes, name="alpha"):
    """The focal losses' per-class factors: a scalar or shape (C,) as
    contiguous float64 of shape (C,) (None: ones)."""
    if alpha is None:
        return np.ones(n_classes)
    al = real_array(alpha, name)
    if al.ndim > 1 or al.size not in (1, n_classes):
        raise ValueError(f"{name}: expected a scalar or shape ({n_classes},) (one factor per "
                         f"class), got shape {al.shape}")
    return np.ascontiguousarray(np.broadcast_to(al.reshape(-1), (n_classes,)), dtype=np.float64)


#: the docstring of ``where=`` on the losses of one value per sample
ROW_WHERE_DOC = """where : array_like of bool, optional
        optax's mask of samples, broadcastable to the batch shape: a sample
        where it is False counts for nothing, exactly as a sample weight of
        0 (loss 0, gradient 0, left out of the mean's denominator), even
        when its values are NaN or infinite; a batch with no sample left
        has a ``"mean"`` of 0 with a 0 gradient. Applied in the kernels
        (the sample is skipped), never by copying the input."""


def sample_weights(sample_weight, batch_shape, where=None):
    """Per-sample weights of the batch shape, flattened to float64, or None.
    ``where``: a boolean mask broadcastable to the batch shape (optax's): a
    sample where it is False has weight 0 (it counts for nothing: loss 0,
    gradient 0, out of the mean's denominator, whatever its values)."""
    sw = None
    if sample_weight is not None:
        sw = real_array(sample_weight, "sample_weight")
        if sw.shape != tuple(batch_shape):
            raise ValueError(
                f"sample_weight: expected the batch shape {tuple(batch_shape)}, got {sw.shape}"
            )
        sw = np.require(sw, requirements=["C", "A"]).reshape(-1)
    if where is None:
        return sw
    w = mask_array(where)
    try:
        keep = np.broadcast_to(w, tuple(batch_shape)).reshape(-1)
    except ValueError:
        raise ValueError(f"where: expected a boolean array broadcastable to the batch shape "
                         f"{tuple(batch_shape)}, got shape {w.shape}") from None
    if sw is None:
        return keep.astype(np.float64)
    return np.where(keep, sw, 0.0)


def reciprocal_overflows(denom):
    """Whether ``1 / denom`` of a nonzero mean's denominator overflows (it is
    below 2**-1024: subnormal weights)."""
    return denom != 0 and not math.isfinite(1.0 / denom)


def scaled_up(weights):
    """``(weights * 2**k, k)`` with the k >= 0 that brings max|weights| into
    [0.5, 1) (``(weights, 0)`` when it is 0, non-finite or >= 0.5; None stays
    None). Exact: a weighted mean is the same for weights scaled by a power
    of two, and tiny weights no longer underflow in the kernels' products."""
    if weights is None or weights.size == 0:
        return weights, 0
    top = float(np.max(np.abs(weights)))
    if not 0 < top < 0.5:  # NaN and inf fail too
        return weights, 0
    k = -math.frexp(top)[1]
    return np.ldexp(weights, k), k


def scaled_by(weights, k):
    """``weights * 2**k``: exact, but clamped to the largest finite float64, so
    that a weight pushed past it still contributes 0 where it has no mass."""
    big = np.finfo(np.float64).max
    with np.errstate(over="ignore"):
        return np.clip(np.ldexp(weights, k), -big, big)


def class_labels(target, rows, ignore_index, name="target", of="the logits'"):
    """Validate integer class indices against ``rows``; returns int64 (n_rows,)
    labels, and whether all of them are classes (none is ``ignore_index``).

    Labels of the batch shape plus a trailing axis of 1 (Keras' ``(B, 1)``
    sparse labels) are taken as the batch shape.
    Every label must lie in [0, C) or equal ``ignore_index`` (an O(N) check);
    ``ignore_index=None``: no label is ignored. ``name`` is the argument's
    name and ``of`` whose shape the labels follow, for the messages.
    """
    t = target
    if t.shape == tuple(rows.batch_shape) + (1,):
        t = t[..., 0]  # a trailing singleton axis, as Keras' sparse losses accept: (B, 1) as (B,)
    if t.shape != rows.batch_shape:
        hint = (f" ({name} of {of} shape are probabilities and need a float dtype)"
                if t.shape == rows.shape and ignore_index is None else "")
        raise ValueError(
            f"{name}: integer class indices must have {of} shape without the "
            f"class axis, {rows.batch_shape}, got {t.shape}{hint}"
        )
    flat = t.reshape(-1)
    c = rows.n_classes
    # one reduction proves the common case (every label a class: as unsigned
    # integers of the same size, negative labels are huge); the mask that
    # finds a bad label is built only when some label is not one
    # (viewed as unsigned, a negative label is at least 2^(bits - 1): past the
    # classes only when there are no more classes than that; an int8 label
    # of -122 is 134 as uint8, a class of 40000; then min and max)
    signed = flat.dtype.kind == "i"
    if flat.size == 0:
        all_classes = True
    elif not signed or c <= 2 ** (8 * flat.dtype.itemsize - 1):
        unsigned = flat.view(flat.dtype.str.replace("i", "u")) if signed else flat
        all_classes = bool(unsigned.max() < c)
    else:
        all_classes = bool(flat.min() >= 0 and flat.max() < c)
    if not all_classes:
        bad = (flat < 0) | (flat >= c)
        if ignore_index is not None:
            bad &= flat != ignore_index
    if not all_classes and bad.any():
        k = int(np.argmax(bad))
        where = np.unravel_index(k, t.shape) if t.ndim else ()
        also = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(
            f"{name}: expected class indices in [0, {c}){also}, "
            f"got {flat[k]} at index {tuple(int(i) for i in where)}"
        )
    # aligned too: the kernels load the labels as int64 (a view of a byte
    # buffer at an odd offset is contiguous but not aligned)
    return np.require(flat, dtype=np.int64, requirements=["C", "A"]), bool(all_classes)


def boolean(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return bool(value)


def clip_eps(eps, name="eps"):
    """None, or a real number strictly between 0 and 1 (a clipping bound)."""
    if eps is None:
        return None
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected None or a real number in (0, 1), got {eps!r}")
    value = _as_float(eps)
    if not 0.0 < value < 1.0:  # NaN fails too
        raise ValueError(f"{name}: expected None or a number in (0, 1), got {value!r}")
    return value


def target_kind(target, rows):
    """'labels' for integer targets, 'probs' for float targets of the logits' shape."""
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        return "labels", t
    if t.dtype.kind == "f":
        if t.shape != rows.shape:
            hint = (" (integer class indices need an integer dtype)"
                    if t.shape == rows.batch_shape else "")
            raise ValueError(
                f"target: float targets are class probabilities and must have the "
                f"logits' shape {rows.shape}, got {t.shape}{hint}"
            )
        return "probs", t
    bfloat16_check(t, "target")
    raise TypeError(
        f"target: expected integer class indices or float class probabilities, "
        f"got dtype {t.dtype}"
    )


# ------------------------------------------------ scikit-learn-compatible metrics

def _is_str(v):
    return isinstance(v, (str, bytes, np.str_, np.bytes_))


def _check_label_kinds(values, name):
    """Labels must be all strings or all numbers (scikit-learn refuses a mix).

    ``values`` is what the caller passed: a list of "a" and 1 becomes a string
    array in NumPy, so the Python objects are looked at (O(N)) when the
    input was not an ndarray, or is an object array.
    """
    arr = np.asarray(values)
    if isinstance(values, np.ndarray) and arr.dtype != object:
        return
    if arr.dtype.kind not in "OUS":
        return
    objs = np.asarray(values, dtype=object).ravel()
    kinds = set()
    for v in objs:
        if _is_str(v):
            kinds.add("string")
        elif isinstance(v, (numbers.Number, np.bool_)) and not (
                isinstance(v, numbers.Real) and not math.isfinite(v)):
            kinds.add("number")
        else:
            raise ValueError(f"{name}: Unknown label type: expected class labels "
                             f"(numbers or strings), got {v!r}")
    if len(kinds) > 1:
        raise ValueError(
            f"{name}: Mix of label input types (string and number); "
            f"Got {np.unique(arr.astype(str))}."
        )


def label_array(values, name):
    """A 1-D array of class labels (numbers or strings), checked as scikit-learn does."""
    _check_label_kinds(values, name)
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        kinds = {_is_str(v) for v in arr.ravel()}
        arr = arr.astype(str) if kinds == {True} else arr
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: expected class labels, got complex dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(
                f"{name}: Unknown label type: continuous values (class labels must be "
                f"integers, integral floats or strings), got {arr[bad].flat[0]!r}"
            )
    if arr.dtype.kind == "O":
        try:
            np.unique(arr)
        except TypeError:
            raise ValueError(f"{name}: expected class labels that can be sorted, got "
                             f"values of types {sorted({type(v).__name__ for v in arr.ravel()})}"
                             ) from None
    return arr


def probability_array(values, name):
    """Probabilities for a scikit-learn-compatible metric: a float array of 1 or 2
    dimensions (float16/32/64 kept, integers and bool converted to float64),
    finite and within [0, 1]. These checks read every value: scikit-learn's
    contract requires them (the one O(N x C) validation here)."""
    proba = np.asarray(values)
    kind = proba.dtype.kind
    if kind in "biu":
        proba = proba.astype(np.float64)
    elif kind == "O":
        try:
            proba = proba.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected real probabilities, got an object array "
                            "that does not convert to float64") from None
    elif kind == "f":
        if proba.dtype not in (np.float16, np.float32, np.float64):
            proba = proba.astype(np.float64)
    else:
        bfloat16_check(proba, name)
        raise TypeError(f"{name}: expected real probabilities (a float, integer or bool "
                        f"dtype), got dtype {proba.dtype}")
    if proba.ndim not in (1, 2):
        raise ValueError(f"{name}: expected a 1-D or 2-D array, got {proba.ndim} dimension(s) "
                         f"(shape {proba.shape})")
    if proba.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got shape {proba.shape}")
    if proba.size == 0:
        raise ValueError(f"{name}: expected at least one column, got shape {proba.shape}")
    low, high = proba.min(), proba.max()
    if np.isnan(low) or np.isnan(high):
        raise ValueError(f"{name}: Input contains NaN.")
    if np.isinf(low) or np.isinf(high):
        raise ValueError(f"{name}: Input contains infinity or a value too large for "
                         f"{proba.dtype!r}.")
    if high > 1:
        raise ValueError(f"{name}: expected probabilities in [0, 1], got values greater "
                         f"than 1: {high}")
    if low < 0:
        raise ValueError(f"{name}: expected probabilities in [0, 1], got values lower "
                         f"than 0: {low}")
    return proba
