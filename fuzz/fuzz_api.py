#!/usr/bin/env python3
"""Fuzz target for xent's public API.

Each input picks one public function (every function of ``xent.__all__`` and
``xent.metrics.log_loss``), builds its arrays (fuzzed dtype, rank 0-4, shape
with 0-sized axes and C=1, layout: Fortran, permuted, negative strides,
steps, stride 0, unaligned, read-only, big-endian, Python lists; values with
+-inf, NaN, huge, subnormal, out-of-range and negative labels) and keyword
arguments (valid and invalid: axis, reduction, weights, ignore_index,
label_smoothing, eps, gamma, alpha, n_threads, out=/grad_out= of wrong shape,
dtype or layout or overlapping the inputs, return_grad, grad_loss, ...), calls
it and checks the contract:

* it returns a result of the right structure, shape and dtype (``out=`` /
  ``grad_out=`` returned as given), or raises TypeError or ValueError; any
  other exception, a crash or a hang (--timeout) is a failure;
* inputs are never modified: every array the harness builds lives in a byte
  buffer (with guard bytes around it) compared byte for byte before and
  after the call; only the bytes of ``out=``/``grad_out=`` may change, and
  only when the call returns (when it raises, nothing at all);
* ``out=``/``grad_out=`` overlapping an input raises, but for the
  documented in-place form (the very same view of the input);
* results share no memory with the inputs (unless they are ``out=``);
* the result equals, bit for bit (NaN for NaN), that of the same call on
  C-contiguous copies of the inputs without ``out=``/``grad_out=``, on
  another thread count (1, or all cores when the call asked for 1);
* with all-finite inputs of valid ranges (|values| <= 1e4, probabilities in
  [0, 1], log-probabilities <= 0, weights >= 0), no output holds a NaN.

Run it:

    python fuzz/fuzz_api.py -max_total_time=600        # atheris (coverage-guided)
    python fuzz/fuzz_api.py --seconds 120 [--seed 1]   # plain random loop, no atheris
    python fuzz/fuzz_api.py crash-<sha1> ...            # re-run saved inputs

Without atheris installed the first form runs the random loop too
(``-max_total_time=N`` and ``-runs=N`` are honoured). The fuzzed bytes are
read through ``atheris.FuzzedDataProvider`` when atheris is importable (so a
saved input replays the same with either runner), else through the
pure-Python ``ByteProvider`` below (``--no-atheris`` forces it); a saved
input replays under the provider it was found with.
"""

import argparse
import contextlib
import copy
import faulthandler
import hashlib
import inspect
import io
import math
import operator
import os
import pickle
import sys
import time
import warnings

import numpy as np

try:
    import atheris
except ImportError:  # the random loop needs no atheris
    atheris = None

xent = None  # imported by _load(), under atheris' instrumentation when it runs

# ------------------------------------------------------------------ fuzzed data


class ByteProvider:
    """The subset of ``atheris.FuzzedDataProvider`` this target uses, in pure
    Python. Reads the bytes in order; once they run out every call returns
    its smallest choice (as atheris' does)."""

    def __init__(self, data):
        self._data = bytes(data)
        self._pos = 0

    def remaining_bytes(self):
        return len(self._data) - self._pos

    def ConsumeBytes(self, count):
        count = max(0, min(count, self.remaining_bytes()))
        out = self._data[self._pos:self._pos + count]
        self._pos += count
        return out

    def ConsumeIntInRange(self, lo, hi):
        span = hi - lo
        if span <= 0:
            return lo
        raw = self.ConsumeBytes((span.bit_length() + 7) // 8)
        return lo + int.from_bytes(raw, "little") % (span + 1)


def make_provider(data, provider="auto"):
    if provider == "atheris" or (provider == "auto" and atheris is not None):
        return atheris.FuzzedDataProvider(data)
    return ByteProvider(data)


class ContractViolation(AssertionError):
    """The function broke the contract on this input."""


GUARD = 16  # guard bytes before and after every buffer
MODERATE = 1e4  # |values| up to this count as "valid range" for the NaN check
SPECIALS = np.array([
    np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e300, 3.4e38, 65504.0,
    7e4, 1e-300, 5e-324, 1.4e-45, 6e-8, 1e4, -1e4, 2.2250738585072014e-308, 1 - 2**-53,
    1 + 2**-52, -0.5, 2.0, 700.0, -700.0, 90.0, -90.0,
])
DIMS = (2, 3, 1, 0, 4, 5, 7, 16, 17, 33, 64, 65, 100)
BIG_SHAPES = ((2050, 17), (40, 1000), (33000,), (8, 2, 2100), (1, 40000), (17, 3, 700),
              (1, 66000), (3, 65537))  # also rows of >= 65536 classes (split along the row)
FLOATS = ("float64", "float32", "float16")
try:  # bfloat16 (ml_dtypes) where installed: xent takes it without importing it
    import ml_dtypes as _ml_dtypes
    BF16 = np.dtype(_ml_dtypes.bfloat16)
    FLOATS += ("bfloat16",)
except ImportError:
    BF16 = None


def _bf16(dt):
    """Whether ``dt`` is bfloat16 (never, without ml_dtypes: a dtype compared
    with None would be compared with float64)."""
    return BF16 is not None and dt == BF16
ODD_FLOATS = (">f8", ">f4", ">f2", "int64", "int32", "uint8", "bool", "complex128",
              "object", "longdouble", "str", "datetime64[s]", "list")
INTS = ("int64", "int32", "int8", "uint8", "int16", "uint16", "uint32", "uint64", ">i8")
ODD_INTS = ("float64", "float32", "bool", "object", "list", "complex64", "str")


class Ctx:
    """One fuzz input: the data reader, the buffers of the arrays built from
    it, and whether the inputs are all finite and in range (``valid``)."""

    def __init__(self, fdp):
        self.f = fdp
        self.bufs = []  # every harness-made array is a view of one of these
        self.loose = []  # inputs outside the buffers (lists, object/str arrays)
        self.valid = True

    # --- primitives: the first choice is what exhausted data gives
    def int(self, lo, hi):
        return self.f.ConsumeIntInRange(lo, hi)

    def pick(self, seq):
        return seq[self.f.ConsumeIntInRange(0, len(seq) - 1)]

    def rare(self, n):
        """True once in ``n`` (False when the data has run out)."""
        return self.f.ConsumeIntInRange(0, n - 1) == n - 1

    def raw(self, n):
        """``n`` fuzzed bytes as uint8 (repeated cyclically when short)."""
        b = np.frombuffer(self.f.ConsumeBytes(min(n, 1024)), np.uint8)
        if n == 0:
            return b[:0]
        return np.resize(b if b.size else np.zeros(1, np.uint8), n)

    # --- shapes and values
    def shape(self, min_rank=0, max_rank=4):
        if self.rare(48):  # large enough for the threaded path
            s = self.pick(BIG_SHAPES)
            if min_rank <= len(s) <= max_rank:
                return s
        rank = self.pick(tuple(r for r in (2, 1, 3, 0, 4) if min_rank <= r <= max_rank))
        dims = [self.pick(DIMS) for _ in range(rank)]
        while math.prod(dims) > 4096:
            dims[dims.index(max(dims))] //= 4
        return tuple(dims)

    def reals(self, shape, role="real"):
        """float64 values: role "real", "prob" (in [0, 1]), "simplex" (rows
        summing to 1), "logprob" (<= 0) or "weight" (>= 0), with a fuzzed
        share of special values."""
        n = math.prod(shape)
        r = self.raw(3 * n)
        thr, val, idx = r[0::3], r[1::3].astype(np.float64), r[2::3]
        share = self.pick((0, 0, 8, 32, 128, 256))  # out of 256
        if role in ("prob", "simplex"):
            base = val / 255.0
        elif role == "logprob":
            base = -val / 16.0
        elif role == "weight":
            base = val / 64.0
        else:
            base = (val - 128.0) * self.pick((1 / 16, 1.0, 1 / 1024, 8.0, 64.0))
        v = np.where(thr < share, SPECIALS[idx % SPECIALS.size], base).reshape(shape)
        if role == "simplex" and v.ndim and v.shape[-1]:
            with np.errstate(all="ignore"):
                total = v.sum(-1, keepdims=True)
                v = np.where(total > 0, v / np.where(total > 0, total, 1), 1 / v.shape[-1])
        return v

    def labels(self, shape, c, ignore_index=-100):
        n = math.prod(shape)
        r = self.raw(n).astype(np.int64)
        mode = self.pick(("valid", "ignore", "any", "extreme"))
        if mode == "valid":
            v = r % max(c, 1)
        elif mode == "ignore":
            ig = ignore_index if isinstance(ignore_index, int) and -2**63 <= ignore_index < 2**63 else -100
            v = np.where(r % 5 == 0, ig, r % max(c, 1))
        elif mode == "any":
            v = r % (c + 6) - 3
        else:
            ext = np.array([0, -1, c, 2**31 - 1, -2**31, 2**63 - 1, -2**63, 255, -100], np.int64)
            v = np.where(r % 3 == 0, ext[r % ext.size], r % max(c, 1))
        return v.reshape(shape)

    # --- arrays
    def _buffer(self, nbytes):
        fill = self.pick((0xA5, 0x00, 0xFF, 0x7F))
        buf = np.full(nbytes + 2 * GUARD + 1, fill, dtype=np.uint8)
        self.bufs.append(buf)
        return buf

    def strided(self, shape, dtype, layout=None, allow_broadcast=True):
        """An uninitialised array in a new buffer, in a fuzzed memory layout."""
        dt = np.dtype(dtype)
        assert not dt.hasobject, "object arrays cannot live in a byte buffer"
        isz, nd = dt.itemsize, len(shape)
        kind = layout or self.pick(("C", "C", "F", "perm", "neg", "step", "unaligned", "mixed",
                                    "broadcast"))
        order = list(range(nd))  # outermost to innermost in memory
        steps, neg, bcast, off = [1] * nd, [False] * nd, [False] * nd, 0
        if kind == "F":
            order.reverse()
        if kind in ("perm", "mixed") and nd > 1:
            rest, order = order[:], []
            while rest:
                order.append(rest.pop(self.int(0, len(rest) - 1)))
        if kind in ("neg", "mixed") and nd:
            neg = [self.int(0, 1) == 1 for _ in range(nd)]
            if kind == "neg":
                neg[-1] = True
        if kind in ("step", "mixed") and nd:
            steps = [self.pick((1, 2, 3)) for _ in range(nd)]
            if kind == "step":
                steps[-1] = 2
        if kind in ("unaligned", "mixed") and isz > 1:
            off = self.pick((1, isz // 2 or 1, 3))
        if kind == "broadcast" and allow_broadcast and nd:
            bcast[self.int(0, nd - 1)] = True
        strides, s = [0] * nd, isz
        for ax in reversed(order):
            if bcast[ax]:
                continue
            strides[ax] = s * steps[ax]
            s = s * steps[ax] * max(shape[ax], 1)
        if 0 in shape:  # no element: any strides fit in the guard bytes
            s = 0
        start = GUARD + off
        for ax in range(nd):
            if neg[ax] and shape[ax] > 1 and strides[ax]:
                if s:
                    start += (shape[ax] - 1) * strides[ax]
                strides[ax] = -strides[ax]
        buf = self._buffer(s + off)
        return np.ndarray(shape, dt, buffer=buf, offset=start, strides=strides)

    def array(self, values, dtype, role="real"):
        """``values`` (float64, int64 or bool) as an input of ``dtype``; ``role``
        is the range in which it counts as valid (see _in_range)."""
        shape = values.shape
        if dtype == "list" and values.size == 0:
            dtype = "float64"  # a list of 0 elements loses the shape
        with np.errstate(all="ignore"):
            if dtype == "list":
                out = values.tolist()
                self.loose.append(out)
            elif dtype == "object":
                out = np.array(values, dtype=object)  # Python floats/ints/bools
                self.loose.append(out)
            elif dtype == "str":
                out = values.astype(str)
                self.loose.append(out)
            else:
                dt = np.dtype(dtype)
                out = self.strided(shape, dt)
                if dt.kind == "M":
                    vals = np.nan_to_num(values, nan=0.0, posinf=1e9, neginf=-1e9).astype(np.int64)
                elif dt.kind == "b":
                    vals = values != 0
                elif dt.kind in "iu" and values.dtype.kind == "f":
                    vals = np.nan_to_num(values, nan=0.0).clip(-2.0**62, 2.0**62).astype(np.int64)
                else:
                    vals = values
                np.copyto(out, np.asarray(vals).astype(dt), casting="unsafe")
                if self.rare(6) or any(s == 0 and n > 1 for s, n in zip(out.strides, shape)):
                    out.flags.writeable = False  # stride 0: read-only, as np.broadcast_to's
        self.valid &= _in_range(out, role)
        return out

    def floats(self, shape, role="real", odd=8, valid_role=None):
        """A float input: float16/32/64 mostly, an odd dtype once in ``odd``;
        values made for ``role``, valid in ``valid_role`` (default: the same)."""
        dt = self.pick(ODD_FLOATS) if self.rare(odd) else self.pick(FLOATS)
        return self.array(self.reals(shape, role), dt, valid_role or role)

    def ints(self, shape, c, ignore_index=-100):
        dt = self.pick(ODD_INTS) if self.rare(10) else self.pick(INTS)
        return self.array(self.labels(shape, c, ignore_index), dt, "label")

    # --- keyword arguments
    def scalar(self, good, bad=()):
        """A scalar argument: one of ``good`` (valid) or, once in 5, of ``bad``."""
        if bad and self.rare(5):
            self.valid = False
            return self.pick(bad)
        return self.pick(good)

    def out(self, shape, dtype, inputs=()):
        """An out=/grad_out= buffer: right or wrong in shape, dtype, layout,
        writeability, or overlapping the ``inputs`` (ndarrays)."""
        dtype = np.dtype(dtype)
        if dtype.kind not in "biufc" and not _bf16(dtype):  # e.g. object: never on a raw byte buffer
            dtype = np.dtype(np.float64)
        kind = self.pick(("good", "good", "same", "view", "shape", "dtype", "readonly", "list",
                          "shifted", "scalar", "reshaped"))
        arrays = [a for a in inputs if isinstance(a, np.ndarray) and _base_buffer(a, self.bufs) is not None]
        if kind == "reshaped":  # an input of another shape, same size, seen in the out shape
            arrays = [a for a in arrays if a.size == math.prod(shape) and a.flags.writeable]
            kind = "view" if arrays else "good"
            shape_view = True
        else:
            shape_view = False
        if kind in ("same", "view", "shifted") and arrays:
            a = self.pick(arrays)
            if kind == "same":
                o = a
            elif shape_view:
                o = a.reshape(shape)  # a view when a's layout allows it, else a copy
            elif kind == "view":
                o = self.pick((a[::-1] if a.ndim else a, a.T, a.reshape(-1) if a.flags.c_contiguous else a))
            else:  # a C-contiguous array on a's memory, from its start or one element on
                base = _base_buffer(a, self.bufs)
                start = _addr(a) - _addr(base) + self.pick((0, dtype.itemsize))
                try:
                    o = np.ndarray(shape, dtype, buffer=base, offset=start)
                except (TypeError, ValueError):  # a's buffer is too small
                    o = a
            return o
        if kind == "list":
            return np.zeros(shape).tolist()
        if kind == "scalar":
            return self.pick((0.0, None, "out"))
        if kind == "shape":
            shape = self.pick((shape + (1,), shape[:-1], (1,) + shape, (), (3,),
                               tuple(n + 1 for n in shape)))
        if kind == "dtype":
            dtype = np.dtype(self.pick(("float64", "float32", "float16", "int64", "complex128",
                                        ">f8")))
        o = self.strided(shape, dtype, allow_broadcast=False)
        with np.errstate(all="ignore"):
            np.copyto(o, np.array(self.pick((np.nan, 0.0, 7.0, -np.inf))).astype(dtype),
                      casting="unsafe")
        if kind == "readonly":
            o.flags.writeable = False
        return o


def _addr(a):
    return np.asarray(a).__array_interface__["data"][0]


def _base_buffer(a, bufs):
    for b in bufs:
        if np.may_share_memory(a, b):
            return b
    return None


def _in_range(a, role):
    """Whether input ``a`` is all finite, moderate and in its role's range."""
    if isinstance(a, list):
        try:
            a = np.asarray(a)
        except ValueError:
            return False
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        return False
    if role == "label":
        return True
    with np.errstate(all="ignore"):
        v = a.astype(np.float64)
        ok = bool(np.isfinite(v).all() and (np.abs(v) <= MODERATE).all())
        if role in ("prob", "simplex"):
            ok = ok and bool(((v >= 0) & (v <= 1)).all())
        elif role == "logprob":
            ok = ok and bool((v <= 0).all())
        elif role == "weight":
            ok = ok and bool((v >= 0).all())
    return ok


# ------------------------------------------------------------------- arguments

N_THREADS_GOOD = (None, 1, 2, -1, -2, -3, 10**6, -(10**6), np.int64(2), np.int8(-1))
N_THREADS_BAD = (0, 2**63, 2**64 + 1, 10**30, -(10**30), True, 1.5, "2", np.uint64(2**64 - 1),
                 np.float64(2.0), [1])
REDUCTIONS = ("mean", "sum", "none")
REDUCTIONS_BAD = ("MEAN", None, 0, b"sum", ["sum"], "", np.str_("sum"))
BOOLS_BAD = (1, 0, None, "yes", np.array(True), [True])
REAL_BAD = (np.nan, np.inf, -np.inf, 10**400, -(10**400), 2**1024, True, None, "0.1", 0.1j,
            np.float64(np.nan), np.array(0.1), [0.1], np.longdouble("1e4000"))
HUGE = (1e300, 1e30, 2**100, 10**20)


def _axis_model(axis, ndim, tuple_ok):
    """The sorted class axes ``axis`` names, or None when it is invalid."""
    if axis is None:
        return tuple(range(ndim)) if tuple_ok else None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    if not tuple_ok and isinstance(axis, (tuple, list)):
        return None
    out = []
    for a in items:
        if isinstance(a, (bool, np.bool_)):
            return None
        try:
            a = operator.index(a)
        except TypeError:
            return None
        if not -ndim <= a < ndim:
            return None
        out.append(a % ndim)
    if len(set(out)) != len(out):
        return None
    return tuple(sorted(out))


def _axis_arg(c, ndim, tuple_ok):
    good = [-1]
    if ndim:
        good += list(range(-ndim, ndim))
    if tuple_ok:
        good += [None, tuple(range(ndim)), (0, -1) if ndim > 1 else (0,) if ndim else ()]
        if ndim > 2:
            good += [(1, 2), [0, 2]]
    bad = (ndim, -ndim - 1, 2**70, 1.0, True, "0", (0, 0), np.float64(0), [0, [1]])
    if not tuple_ok:
        bad += (None, (0,), (0, 1))
    return c.pick(good) if not c.rare(6) else c.pick(bad)


def _native(dt):
    dt = np.dtype(dt)
    return dt.newbyteorder("=") if dt.kind == "f" else dt


def _shape_of(a):
    try:
        return np.shape(np.asarray(a))
    except Exception:
        return None


def _dtype_of(a):
    """The dtype a float input computes and returns in (integers and bools
    are promoted to float64)."""
    dt = _native(np.asarray(a).dtype)
    return np.dtype(np.float64) if dt.kind in "biu" else dt


def _result_dtype(*arrays):
    """np.result_type of the inputs' dtypes (float64 when there is none); a
    bfloat16 input counts as float32 (it is widened), and a float32 result
    is bfloat16 when the first input is (xent/_bfloat16.py)."""
    try:
        dts = [_dtype_of(a) for a in arrays]
        rt = np.result_type(*[np.dtype(np.float32) if _bf16(d) else d for d in dts])
        return BF16 if dts and _bf16(dts[0]) and rt == np.float32 else rt
    except (TypeError, ValueError):
        return np.dtype(np.float64)


def _opt(c, kwargs, name, make, omit=3):
    """Set ``kwargs[name] = make()`` unless left out (1 time in ``omit``)."""
    if c.rare(omit):
        return
    kwargs[name] = make()


class Call:
    """A call under test: function, arguments, and the expected results."""

    def __init__(self, name, fn, args, kwargs, expect, outs=(), in_place=()):
        self.name, self.fn, self.args, self.kwargs = name, fn, args, kwargs
        self.expect = expect  # () -> [(shape, dtype, out-or-None)], or "float", or None
        self.out_names = outs  # keyword arguments that are output buffers
        self.in_place = in_place  # positional inputs an output may be (same view): in place


def _row_mask(c, batch):
    """A where= of the row losses: a mask of the batch shape, its leading
    axis, a scalar; rarely any shape or a float array."""
    sh = c.pick((tuple(batch), tuple(batch[:1]) + (1,) * max(0, len(batch) - 1), ()))
    if c.rare(8):
        sh = c.shape()
    if c.rare(8):
        return c.floats(sh)
    return (c.raw(math.prod(sh)).reshape(sh) % 3) != 0


def _element_mask(c, shape):
    """A where= of the element-wise and information functions: a mask of the
    input's shape, its last axis, its leading axis (a trailing 1), a scalar;
    rarely any shape or a float array."""
    lead = tuple(shape[:1]) + (1,) * max(0, len(shape) - 1)
    sh = c.pick((tuple(shape), tuple(shape[-1:]), lead, ()))
    if c.rare(8):
        sh = c.shape()
    if c.rare(8):
        return c.floats(sh)
    return (c.raw(math.prod(sh)).reshape(sh) % 3) != 0


# --- the log-sum-exp family

def _b_softmax_like(c, name):
    shape = c.shape()
    x = c.floats(shape)
    kw = {}
    _opt(c, kw, "axis", lambda: _axis_arg(c, len(shape), True))
    axes = _axis_model(kw.get("axis", -1), len(shape), True)
    keepdims = return_grad = return_sign = False

    def operand():  # (b and where: x's shape, its last axis, a scalar; rarely any
        # shape, but not one that x broadcasts to: tests/test_logsumexp_options.py has those)
        sh = c.pick((shape, shape[-1:], ())) if not c.rare(8) else c.shape()
        try:
            return shape if np.broadcast_shapes(shape, sh) != tuple(shape) else sh
        except ValueError:
            return sh
    def mask():
        sh = operand()
        return (c.raw(math.prod(sh)).reshape(sh) % 4) != 0 if not c.rare(8) else c.floats(sh)
    _opt(c, kw, "where", mask, 2)
    if name == "logsumexp":
        _opt(c, kw, "b", lambda: c.floats(operand()), 2)
        _opt(c, kw, "keepdims", lambda: c.scalar((False, True, np.True_), BOOLS_BAD))
        _opt(c, kw, "return_sign", lambda: c.scalar((False, True), BOOLS_BAD), 2)
        _opt(c, kw, "return_grad", lambda: c.scalar((False, True), BOOLS_BAD))
        keepdims, return_grad = kw.get("keepdims", False), kw.get("return_grad", False)
        return_sign = kw.get("return_sign", False)
        if "b" in kw and return_sign is not True:
            c.valid = False  # (a negative sum of finite terms is NaN without the sign)
    if axes is None:
        out_shape = shape
    elif name == "logsumexp":
        out_shape = tuple((1 if i in axes else n) for i, n in enumerate(shape) if keepdims or i not in axes)
    else:
        out_shape = shape
    operands = [x] + ([kw["b"]] if "b" in kw else [])
    _opt(c, kw, "out", lambda: c.out(out_shape, _result_dtype(*operands) if _shape_of(x) is not None
                                     else "f8", operands), 2)
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))

    def expect():
        dt = _result_dtype(*operands)
        res = [(out_shape, dt, kw.get("out"))]
        if return_sign:
            res.append((out_shape, dt, None))
        if return_grad:
            res.append((shape, dt, None))
        return res
    return Call(name, getattr(xent, name), [x], kw, expect, ("out",),
                () if name == "logsumexp" else (0,))


def _b_backward(c, name):
    shape = c.shape()
    role = "prob" if name == "softmax_backward" else "logprob"
    y = c.floats(shape, role)
    gshape = shape if not c.rare(10) else c.shape()
    g = c.floats(gshape)
    kw = {}
    _opt(c, kw, "axis", lambda: _axis_arg(c, len(shape), True))
    _opt(c, kw, "out", lambda: c.out(shape, _result_dtype(y, g), [y, g]), 2)
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))

    def expect():
        return [(shape, _result_dtype(y, g), kw.get("out"))]
    return Call(name, getattr(xent, name), [y, g], kw, expect, ("out",), (0, 1))


def _focal_options(c, kw, n_classes):
    """gamma and per-class alpha (softmax_focal_loss, cross_entropy)"""
    _opt(c, kw, "gamma", lambda: c.scalar((2.0, 0.0, 0, 0.5, 1, 5.0), (-1.0,) + HUGE + REAL_BAD), 2)

    def alpha():
        if c.int(0, 1):
            return c.scalar((0.25, 0.0, 1.0, 1), (-0.5, 1.5) + REAL_BAD)
        return c.floats((n_classes,) if not c.rare(5) else c.shape(), "weight", odd=6)
    _opt(c, kw, "alpha", alpha, 2)


# --- softmax cross-entropy, NLL, softmax focal

def _loss_common(c, kw, x, batch, reduction_default="mean"):
    _opt(c, kw, "reduction", lambda: c.scalar(REDUCTIONS, REDUCTIONS_BAD))
    reduction = kw.get("reduction", reduction_default)
    _opt(c, kw, "return_grad", lambda: c.scalar((True, False, np.False_), BOOLS_BAD))
    per_sample = batch if reduction == "none" else ()

    def grad_loss():
        if c.rare(3):
            return c.scalar((1.0, 0.5, 2, np.float32(3.0), -1.0), (np.nan, np.inf, 1j, None, "1"))
        shape = c.pick((per_sample, (), (1,) * len(per_sample), per_sample[-1:], (3,)))
        return c.floats(shape)
    _opt(c, kw, "grad_loss", grad_loss, 2)
    return reduction


def _b_class_loss(c, name):
    shape = c.shape(min_rank=0 if c.rare(12) else 1)
    x = c.floats(shape, "logprob" if name == "nll_loss" and c.int(0, 1) else "real")
    kw = {}
    axis = -1
    if c.int(0, 1):
        kw["axis"] = axis = _axis_arg(c, len(shape), False)
    axes = _axis_model(axis, len(shape), False)
    if axes:
        batch = tuple(n for i, n in enumerate(shape) if i not in axes)
        n_classes = shape[axes[0]]
    else:
        batch, n_classes = shape[:-1], shape[-1] if shape else 1
    ignore_index = -100
    if name != "softmax_focal_loss" or c.int(0, 1):
        if c.int(0, 1):
            ignore_index = c.scalar((-100, 0, -1, n_classes - 1, n_classes, 2**63 - 1, -2**63,
                                     np.int64(-100), np.int32(1)),
                                    (2**63, -2**63 - 1, 10**30, True, 1.0, None, "x",
                                     np.uint64(2**64 - 1)))
            kw["ignore_index"] = ignore_index
    kind = c.pick(("labels", "labels", "probs", "wrong"))
    if kind == "labels":
        t = c.ints(batch, n_classes, ignore_index)
    elif kind == "probs":
        t = c.floats(shape, c.pick(("simplex", "prob", "real")))
    else:
        t = c.array(c.reals(c.shape()), c.pick(FLOATS + INTS + ODD_FLOATS))
    reduction = _loss_common(c, kw, x, batch)
    _opt(c, kw, "sample_weight", lambda: c.floats(
        batch if not c.rare(6) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "where", lambda: _row_mask(c, batch), 3)
    if name != "softmax_focal_loss":
        _opt(c, kw, "weight", lambda: c.floats(
            (n_classes,) if not c.rare(6) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "label_smoothing", lambda: c.scalar((0.0, 0.1, 1.0, 0, 1, 0.5, np.float32(0.2)),
                                                    (-0.1, 1.5) + REAL_BAD), 2)
    if name == "softmax_cross_entropy":
        _opt(c, kw, "z_loss", lambda: c.scalar((0.0, 1e-4, 1.0, 0), (-1.0,) + HUGE + REAL_BAD), 2)
        _opt(c, kw, "softcap", lambda: c.scalar((None, 30.0, 1e-3, 1, np.float32(50.0), 1e300),
                                                (0.0, -1.0) + tuple(v for v in REAL_BAD if v is not None)), 3)
    if name == "softmax_focal_loss":
        _focal_options(c, kw, n_classes)
    return_grad = kw.get("return_grad", False)
    if c.int(0, 1):
        kw["grad_out"] = c.out(shape, _dtype_of(x), [x, t] + [kw.get(k) for k in (
            "weight", "sample_weight", "grad_loss", "alpha")])
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))
    if name == "softmax_cross_entropy":
        _opt(c, kw, "return_argmax", lambda: c.scalar((False, True, np.True_), BOOLS_BAD), 3)
    return_argmax = kw.get("return_argmax", False)

    def expect():
        dt = _dtype_of(x)
        res = [(batch if reduction == "none" else (), dt, None)]
        if return_grad:
            res.append((shape, dt, kw.get("grad_out")))
        if return_argmax:
            res.append((batch, np.dtype(np.int64), None))
        return res
    return Call(name, getattr(xent, name), [x, t], kw, expect, ("grad_out",), (0,))


# --- element-wise binary losses

def _b_binary(c, name):
    min_rank = 1 if name == "multilabel_cross_entropy" and not c.rare(8) else 0
    shape = c.shape(min_rank=min_rank)
    role = "prob" if name in ("binary_cross_entropy", "binary_focal_loss") else "real"
    x = c.floats(shape, role)
    tshape = shape if not c.rare(10) else c.shape()
    t = c.array(c.reals(tshape, c.pick(("prob", "prob", "real"))),
                c.pick(("float64", "float32", "float16", "int64", "bool", "uint8")) if not c.rare(8)
                else c.pick(ODD_FLOATS + INTS), "prob")
    cols = shape[-1] if shape else 1
    kw = {}
    batch = shape[:-1] if name == "multilabel_cross_entropy" else shape
    reduction = _loss_common(c, kw, x, batch)
    if name not in ("binary_focal_loss_with_logits", "binary_focal_loss"):
        _opt(c, kw, "pos_weight", lambda: c.floats(
            c.pick(((cols,), (), (1,))) if not c.rare(5) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "weight", lambda: c.floats(
        c.pick((shape, shape[-1:], ())) if not c.rare(5) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "label_smoothing", lambda: c.scalar((0.0, 0.1, 1.0, 0), (-0.1, 1.5) + REAL_BAD), 2)
    if name != "multilabel_cross_entropy":  # (its where= is a mask of samples, below)
        _opt(c, kw, "where", lambda: _element_mask(c, shape), 3)
    if name in ("binary_cross_entropy", "binary_focal_loss"):
        _opt(c, kw, "eps", lambda: c.scalar((None, 1e-7, 1e-3, 0.0, 0.49, 0), (0.5, 1.0, -1e-7) + REAL_BAD), 2)
    if name in ("binary_focal_loss_with_logits", "binary_focal_loss"):
        _opt(c, kw, "gamma", lambda: c.scalar((2.0, 0.0, 0, 0.5, 1, 5.0), (-1.0,) + HUGE + REAL_BAD), 2)
        _opt(c, kw, "alpha", lambda: c.scalar((None, 0.25, 0.0, 1.0, 1), (-0.5, 1.5) + REAL_BAD), 2)
    if name == "multilabel_cross_entropy":
        _opt(c, kw, "class_reduction", lambda: c.scalar(("sum", "mean"), ("none", None, 1, "SUM")), 2)
        _opt(c, kw, "sample_weight", lambda: c.floats(
            batch if not c.rare(5) else c.shape(), "weight", odd=6), 2)
        _opt(c, kw, "where", lambda: _row_mask(c, batch), 3)
    return_grad = kw.get("return_grad", False)
    if c.int(0, 1):
        kw["grad_out"] = c.out(shape, _dtype_of(x), [x, t] + [kw.get(k) for k in (
            "weight", "pos_weight", "sample_weight", "grad_loss")])
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))
    if name == "softmax_cross_entropy":
        _opt(c, kw, "return_argmax", lambda: c.scalar((False, True, np.True_), BOOLS_BAD), 3)
    return_argmax = kw.get("return_argmax", False)

    def expect():
        dt = _dtype_of(x)
        res = [(batch if reduction == "none" else (), dt, None)]
        if return_grad:
            res.append((shape, dt, kw.get("grad_out")))
        if return_argmax:
            res.append((batch, np.dtype(np.int64), None))
        return res
    return Call(name, getattr(xent, name), [x, t], kw, expect, ("grad_out",), (0,))


# --- information theory

def _rows_axis(c, shape, kw):
    """An ``axis=`` (left out half the time) for a one-class-axis function on
    ``shape``: (its class axes, or None when invalid; the batch shape)."""
    axis = -1
    if c.int(0, 1):
        kw["axis"] = axis = _axis_arg(c, len(shape), False)
    axes = _axis_model(axis, len(shape), False)
    return axes, tuple(n for i, n in enumerate(shape) if not axes or i not in axes)


def _b_information(c, name):
    shape = c.shape()
    kw = {}
    axes, batch = _rows_axis(c, shape, kw)
    n_classes = shape[axes[0]] if axes else 1
    q = c.floats(shape, c.pick(("simplex", "prob", "real")), valid_role="prob")
    labels = False
    if name == "cross_entropy" and c.int(0, 2) == 0:
        p, labels = c.ints(batch, n_classes, None), True
    elif name != "entropy":
        p = c.floats(shape if not c.rare(10) else c.shape(), c.pick(("simplex", "prob", "real")),
                     valid_role="prob")
    more = ("batchmean", "elementwise") if name == "kl_divergence" else ()
    _opt(c, kw, "reduction", lambda: c.scalar(REDUCTIONS + more, REDUCTIONS_BAD))
    reduction = kw.get("reduction", "none")
    return_grad = False
    if name != "entropy":
        _opt(c, kw, "eps", lambda: c.scalar((None, 1e-7, 1e-3, 0.5, 0.999), (0.0, 1.0, -1e-7) + REAL_BAD), 2)
        _opt(c, kw, "return_grad", lambda: c.scalar((True, False, np.False_), BOOLS_BAD))
        return_grad = kw.get("return_grad", False)
        if name == "cross_entropy":
            _opt(c, kw, "renormalize", lambda: c.scalar((False, True, np.True_), BOOLS_BAD), 3)
            _opt(c, kw, "label_smoothing", lambda: c.scalar((0.0, 0.1, 1.0, 0), (-0.1, 1.5) + REAL_BAD), 3)
            _focal_options(c, kw, n_classes)
        if name == "kl_divergence":
            _opt(c, kw, "log_input", lambda: c.scalar((False, True, np.True_), BOOLS_BAD), 2)
            _opt(c, kw, "log_target", lambda: c.scalar((False, True), BOOLS_BAD), 2)

        def grad_loss():
            if c.rare(3):
                return c.scalar((1.0, 0.5, 2, -1.0), (np.nan, np.inf, 1j, "1"))
            per = shape if reduction == "elementwise" else batch if reduction == "none" else ()
            return c.floats(c.pick((per, (), per[-1:], (3,))))
        _opt(c, kw, "grad_loss", grad_loss, 2)
        _opt(c, kw, "sample_weight", lambda: c.floats(
            batch if not c.rare(5) else c.shape(), "weight", odd=6), 3)
    _opt(c, kw, "where", lambda: _element_mask(c, shape), 3)
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))
    args = [q] if name == "entropy" else [p, q]

    def expect():
        try:  # (integer p are class labels, whatever the builder meant: the dtype decides)
            int_p = name == "cross_entropy" and np.asarray(p).dtype.kind in "iu"
        except (TypeError, ValueError):
            int_p = False
        if name == "entropy":
            dt = _dtype_of(q)
        elif labels or int_p:
            dt = _dtype_of(q)
        else:
            dt = _result_dtype(p, q)
        res = [(batch if reduction == "none" else shape if reduction == "elementwise" else (),
                dt, None)]
        if return_grad:
            res.append((shape, _dtype_of(q), None))
        return res
    return Call(name, getattr(xent, name), args, kw, expect)


# --- distillation from logits

def _b_distill(c, name):
    shape = c.shape(min_rank=1)
    kw = {}
    _, batch = _rows_axis(c, shape, kw)
    student = c.floats(shape, valid_role="real")
    teacher = c.floats(shape if not c.rare(10) else c.shape(), valid_role="real")
    if c.int(0, 2) == 0:  # mostly the same dtype (another one is a TypeError)
        try:
            teacher = np.asarray(teacher).astype(np.asarray(student).dtype)
        except (TypeError, ValueError, OverflowError):
            pass
    _opt(c, kw, "temperature", lambda: c.scalar((1.0, 2.0, 0.5, 7, np.float32(1.5), 1e-3),
                                                (0.0, -1.0, 1e-320) + REAL_BAD), 2)
    if name == "kl_divergence_with_logits":
        _opt(c, kw, "reverse", lambda: c.scalar((False, True, np.True_), BOOLS_BAD), 2)
    else:
        _opt(c, kw, "beta", lambda: c.scalar((0.5, 0.0, 1.0, 0.1, 0.9), (-0.1, 1.5) + REAL_BAD), 2)
    _opt(c, kw, "scale_by_temperature_squared", lambda: c.scalar((False, True), BOOLS_BAD), 2)
    _opt(c, kw, "sample_weight", lambda: c.floats(batch if not c.rare(5) else c.shape()), 2)
    _opt(c, kw, "where", lambda: _row_mask(c, batch), 3)
    more = ("batchmean",)
    _opt(c, kw, "reduction", lambda: c.scalar(REDUCTIONS + more, REDUCTIONS_BAD))
    reduction = kw.get("reduction", "batchmean")
    _opt(c, kw, "return_grad", lambda: c.scalar((True, False, np.False_), BOOLS_BAD))
    return_grad = kw.get("return_grad", False)

    def grad_loss():
        if c.rare(3):
            return c.scalar((1.0, 0.5, 2, -1.0), (np.nan, np.inf, 1j, "1"))
        per = batch if reduction == "none" else ()
        return c.floats(c.pick((per, (), per[-1:], (3,))))
    _opt(c, kw, "grad_loss", grad_loss, 2)
    if return_grad and not c.rare(2):
        kw["grad_out"] = c.out(shape, _dtype_of(student), [student, teacher])
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))

    def expect():
        dt = _dtype_of(student)
        res = [(batch if reduction == "none" else (), dt, None)]
        if return_grad:
            res.append((shape, dt, kw.get("grad_out")))
        return res
    return Call(name, getattr(xent, name), [student, teacher], kw, expect, outs=("grad_out",),
                in_place=(0,))


# --- scikit-learn's log_loss and show_config

def _b_log_loss(c, name):
    n = c.pick((4, 1, 2, 3, 0, 7, 33))
    k = c.pick((2, 3, 1, 4, 0))
    kind = c.pick(("int", "str", "float", "indicator", "column", "bool", "object", "mixed", "nan"))
    lab = c.labels((n,), max(k, 1))
    if kind == "int":
        y = c.array(lab, c.pick(INTS))
    elif kind == "str":
        y = np.array(["abcdefgh"[i % 8] for i in lab])
        c.loose.append(y)
    elif kind == "float":
        y = c.array(lab.astype(np.float64) + c.pick((0.0, 0.5)), c.pick(FLOATS))
    elif kind == "indicator":
        y = c.array((c.raw(n * max(k, 1)).reshape(n, max(k, 1)) % 2).astype(np.float64),
                    c.pick(("int64", "bool", "float32", "float64")))
    elif kind == "column":
        y = c.array(lab.reshape(n, 1).astype(np.float64), "int64")
    elif kind == "bool":
        y = c.array(lab % 2, "bool")
    elif kind == "object":
        y = np.array([int(v) for v in lab] or [], dtype=object)
        c.loose.append(y)
    elif kind == "mixed":
        y = [("a" if v % 2 else int(v)) for v in lab]
        c.loose.append(y)
    else:
        y = c.array(np.where(lab % 2 == 0, np.nan, lab), "float64")
    pshape = c.pick(((n, k), (n, k), (n,), (n, 1))) if not c.rare(6) else \
        c.pick(((n, k, 1), (n + 1, k), (), (n, k + 1)))
    proba = c.floats(pshape, c.pick(("simplex", "prob", "real")) if c.rare(4) else "simplex",
                     odd=6, valid_role="prob")
    kw = {}
    if c.int(0, 1):
        kw["sample_weight"] = c.floats((n,) if not c.rare(5) else c.shape(), "weight", odd=6)
    if c.int(0, 2) == 0:
        kw["labels"] = c.pick((list(range(k)), list(range(k))[::-1], [0, 0, 1], ["a", "b"],
                               np.arange(k).reshape(1, -1) if k else [], None, list(range(k + 1))))
        if isinstance(kw["labels"], list):
            c.loose.append(kw["labels"])
    _opt(c, kw, "normalize", lambda: c.scalar((True, False, np.False_), BOOLS_BAD))
    return Call(name, xent.metrics.log_loss, [y, proba], kw, lambda: "float")


def _b_show_config(c, name):
    kw = {}
    _opt(c, kw, "mode", lambda: c.scalar(("dicts", "stdout"), ("x", None, 1, ["dicts"], np.array(["a", "b"]))))
    return Call(name, xent.show_config, [], kw, lambda: None)


# --- the partial statistics of class blocks (xent/_partials.py)

def _compute_dtype(x):
    dt = _dtype_of(x)
    return np.dtype(np.float32) if dt == np.float16 else dt


def _part_target(c, kw_or_none, batch, block_shape, n_classes, ignore_index):
    """A target for a partials call: labels of the whole rows, the block's
    probabilities, a wrong array, or None."""
    kind = c.pick(("labels", "labels", "probs", "none", "wrong"))
    if kind == "labels":
        return c.ints(batch, n_classes, ignore_index)
    if kind == "probs":
        return c.floats(block_shape, c.pick(("simplex", "prob", "real")))
    if kind == "none":
        return None
    return c.array(c.reals(c.shape()), c.pick(FLOATS + INTS + ODD_FLOATS))


def _genuine_stats(c, batch, pieces=2):
    """Merged statistics of a random row (float64, from softmax_partials), or
    once in 8 arbitrary float64 (then not a valid input: may give NaN)."""
    if c.rare(8):
        c.valid = False
        return c.array(c.reals(batch + (5 * c.pick((1, 1, 2)),)), c.pick(("float64", "float32")))
    C = c.pick((1, 3, 7, 40))
    x = c.reals(batch + (C,))
    with np.errstate(all="ignore"):
        if not np.isfinite(x).all():
            c.valid = False
        cut = c.int(0, C)
        parts = [xent.softmax_partials(x[..., :cut], n_classes=C),
                 xent.softmax_partials(x[..., cut:], class_offset=cut)]
        return xent.merge_partials(*parts[:pieces])


def _b_softmax_partials(c, name):
    shape = c.shape(min_rank=0 if c.rare(12) else 1)
    x = c.floats(shape)
    batch, cb = shape[:-1], (shape[-1] if shape else 0)
    kw = {}
    off = 0
    if c.int(0, 1):
        off = kw["class_offset"] = c.scalar((0, 3, cb, np.int64(2)), (-1, 1.5, True, None, "1"))
    off_n = off if isinstance(off, (int, np.integer)) and not isinstance(off, bool) else 0
    n = off_n + cb
    if c.int(0, 1):
        n = kw["n_classes"] = c.scalar((off_n + cb, off_n + cb + 5, np.int32(off_n + cb)),
                                       (off_n + cb - 1, 1.5, "3", None if False else -1))
    n_int = n if isinstance(n, (int, np.integer)) and n > 0 else max(cb, 1)
    ig = -100
    if c.int(0, 1):
        ig = kw["ignore_index"] = c.scalar((-100, 0, n_int - 1), (2**63, 1.0, None))
    t = _part_target(c, kw, batch, shape, n_int, ig)
    args = [x] if t is None and c.int(0, 1) else [x, t]
    _opt(c, kw, "weight", lambda: c.floats((n_int,) if not c.rare(6) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "label_smoothing", lambda: c.scalar((0.0, 0.1, 1.0), (-0.1, 1.5) + REAL_BAD), 2)
    _opt(c, kw, "return_exps", lambda: c.scalar((False, True), BOOLS_BAD), 2)
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))

    def expect():
        res = [(batch + (5,), np.dtype(np.float64), None)]
        if kw.get("return_exps") is True:
            res.append((shape, _compute_dtype(x), None))
        return res
    return Call(name, xent.softmax_partials, args, kw, expect)


def _b_merge_partials(c, name):
    batch = c.shape(max_rank=2)
    k = c.pick((1, 2, 3))
    sts = [_genuine_stats(c, batch, c.pick((1, 2))) for _ in range(k)]
    if c.rare(8):
        sts[-1] = c.array(c.reals(c.shape()), c.pick(FLOATS))
    kw = {}
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))

    def expect():  # (one array of k blocks side by side: its batch shape)
        return [(np.shape(sts[0])[:-1] + (5,), np.dtype(np.float64), None)]
    return Call(name, xent.merge_partials, sts, kw, expect)


def _b_logsumexp_from_partials(c, name):
    batch = c.shape(max_rank=2)
    st = _genuine_stats(c, batch)

    def expect():
        return [(batch, np.dtype(np.float64), None)]
    return Call(name, xent.logsumexp_from_partials, [st], {}, expect)


def _b_softmax_from_partials(c, name):
    batch = c.shape(max_rank=2)
    shape = batch + (c.pick((1, 2, 5, 17)),)
    x = c.floats(shape)
    st = _genuine_stats(c, batch)
    if c.rare(8):
        st = _genuine_stats(c, c.shape(max_rank=2))  # another batch shape
    kw = {}
    if name == "softmax_from_partials":
        _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))
        _opt(c, kw, "out", lambda: c.out(shape, _dtype_of(x), [x, st]), 3)

    def expect():
        return [(shape, _dtype_of(x), kw.get("out"))]
    return Call(name, getattr(xent, name), [x, st], kw, expect, ("out",), (0,))


def _partials_target_options(c, kw, batch, n, probs):
    """The target (labels of n classes, ``probs``, or a wrong array) and the
    options the loss-from-statistics and block-gradient functions share."""
    ig = -100
    if c.int(0, 1):
        ig = kw["ignore_index"] = c.scalar((-100, 0, n - 1), (2**63, 1.0, None))
    kind = c.pick(("labels", "labels", "probs", "wrong"))
    if kind == "labels":
        t = c.ints(batch, n, ig)
    elif kind == "probs":
        t = probs
    else:
        t = c.array(c.reals(c.shape()), c.pick(FLOATS + INTS + ODD_FLOATS))
    _opt(c, kw, "weight", lambda: c.floats((n,) if not c.rare(6) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "sample_weight", lambda: c.floats(batch if not c.rare(6) else c.shape(), "weight",
                                                   odd=6), 2)
    _opt(c, kw, "label_smoothing", lambda: c.scalar((0.0, 0.1, 1.0), (-0.1, 1.5) + REAL_BAD), 2)
    return t


def _b_loss_from_partials(c, name):
    batch = c.shape(max_rank=2)
    n = c.pick((1, 3, 7, 40))
    st = _genuine_stats(c, batch)
    kw = {"n_classes": c.scalar((n,), (0, -1, 1.5, None))}
    probs = None if name == "nll_loss_from_partials" else c.floats(batch + (0,))
    t = _partials_target_options(c, kw, batch, n, probs)
    reduction = "none"
    if name == "softmax_cross_entropy_from_partials":
        _opt(c, kw, "z_loss", lambda: c.scalar((0.0, 1e-4, 1.0), (-1.0,) + REAL_BAD), 2)
        _opt(c, kw, "reduction", lambda: c.scalar(REDUCTIONS, REDUCTIONS_BAD), 2)
        reduction = kw.get("reduction", "none")

    def expect():
        return [(batch if reduction == "none" else (), np.dtype(np.float64), None)]
    return Call(name, getattr(xent, name), [st, t], kw, expect)


def _b_block_grad(c, name):
    batch = c.shape(max_rank=2)
    cb = c.pick((1, 2, 5, 17))
    off = c.pick((0, 1, 3))
    n = off + cb + c.pick((0, 0, 4))
    shape = batch + (cb,)
    x = c.floats(shape, "logprob" if name == "nll_loss_block_grad" and c.int(0, 1) else "real")
    st = _genuine_stats(c, batch)
    if c.valid and not c.rare(8):  # the rows' statistics: this block's merged with the others'
        try:
            with np.errstate(all="ignore"):
                st = xent.merge_partials(st, xent.softmax_partials(np.asarray(x, np.float64)))
        except (TypeError, ValueError):
            c.valid = False
    else:
        c.valid = False  # (statistics of other rows: no contract on the values)
    kw = {"class_offset": c.scalar((off,), (-1, 1.5, None)),
          "n_classes": c.scalar((n,), (off + cb - 1, 0, None))}
    t = _partials_target_options(c, kw, batch, n, c.floats(shape, c.pick(("simplex", "prob", "real"))))
    _opt(c, kw, "grad_loss", lambda: c.scalar((1.0, 0.5, 0.0, -2.0), (np.nan, None, "1"))
         if c.int(0, 1) else c.floats(batch if not c.rare(6) else c.shape()), 2)
    args = [x, st, t]
    if name == "softmax_cross_entropy_block_grad":
        _opt(c, kw, "z_loss", lambda: c.scalar((0.0, 1e-4, 1.0), (-1.0,) + REAL_BAD), 2)
        if c.rare(3):
            try:
                with np.errstate(all="ignore"):
                    bst, e = xent.softmax_partials(np.asarray(x, np.float64), class_offset=off,
                                                   n_classes=n, return_exps=True)
                kw["exps"], kw["block_partials"] = e, bst
                c.loose += [e, bst]
            except (TypeError, ValueError):
                pass
    _opt(c, kw, "out", lambda: c.out(shape, np.float64 if "exps" in kw else _dtype_of(x),
                                     [x, st, t]), 3)
    _opt(c, kw, "n_threads", lambda: c.scalar(N_THREADS_GOOD, N_THREADS_BAD))

    def expect():
        dt = np.dtype(np.float64) if "exps" in kw else _dtype_of(x)
        return [(shape, dt, kw.get("out"))]
    return Call(name, getattr(xent, name), args, kw, expect, ("out",), (0,))


def _b_cross_entropy_denominator(c, name):
    batch = c.shape(max_rank=2)
    n = c.pick((1, 3, 40))
    kw = {"n_classes": c.scalar((n,), (0, 1.5, None))}
    ig = -100
    if c.int(0, 1):
        ig = kw["ignore_index"] = c.scalar((-100, 0, n - 1), (2**63, 1.0, None))
    t = c.ints(batch, n, ig) if c.int(0, 3) else c.floats(batch + (n,), "prob")
    _opt(c, kw, "weight", lambda: c.floats((n,) if not c.rare(6) else c.shape(), "weight", odd=6), 2)
    _opt(c, kw, "sample_weight", lambda: c.floats(batch if not c.rare(6) else c.shape(), "weight",
                                                   odd=6), 2)
    return Call(name, xent.cross_entropy_denominator, [t], kw, lambda: "float")


BUILDERS = {
    "logsumexp": _b_softmax_like,
    "softmax": _b_softmax_like,
    "log_softmax": _b_softmax_like,
    "softmax_backward": _b_backward,
    "log_softmax_backward": _b_backward,
    "softmax_cross_entropy": _b_class_loss,
    "nll_loss": _b_class_loss,
    "softmax_focal_loss": _b_class_loss,
    "binary_cross_entropy_with_logits": _b_binary,
    "binary_cross_entropy": _b_binary,
    "multilabel_cross_entropy": _b_binary,
    "binary_focal_loss_with_logits": _b_binary,
    "binary_focal_loss": _b_binary,
    "cross_entropy": _b_information,
    "kl_divergence": _b_information,
    "entropy": _b_information,
    "kl_divergence_with_logits": _b_distill,
    "jensen_shannon_with_logits": _b_distill,
    "metrics.log_loss": _b_log_loss,
    "show_config": _b_show_config,
    "softmax_partials": _b_softmax_partials,
    "merge_partials": _b_merge_partials,
    "logsumexp_from_partials": _b_logsumexp_from_partials,
    "softmax_from_partials": _b_softmax_from_partials,
    "log_softmax_from_partials": _b_softmax_from_partials,
    "softmax_cross_entropy_from_partials": _b_loss_from_partials,
    "nll_loss_from_partials": _b_loss_from_partials,
    "softmax_cross_entropy_block_grad": _b_block_grad,
    "nll_loss_block_grad": _b_block_grad,
    "cross_entropy_denominator": _b_cross_entropy_denominator,
}
FUNCTIONS = tuple(BUILDERS)


def _load():
    """Import xent; check that every public function has a builder."""
    global xent
    if xent is None:
        import xent as _x
        import xent.metrics  # noqa: F401
        xent = _x
    from xent import _registry

    # every registered public function (xent._registry), and show_config
    public = _registry.public_names() | {e.name for e in _registry.ENTRIES} | {"show_config"}
    missing = public - set(BUILDERS)
    if missing:
        raise RuntimeError(f"fuzz_api: no builder for public function(s) {sorted(missing)}")
    return xent


# ----------------------------------------------------------------- the checks

STATS = {}  # function name -> [returned, raised]


def _snapshot(c):
    return [b.tobytes() for b in c.bufs], [pickle.dumps(o) for o in c.loose]


def _byte_mask(view, buf):
    """Which bytes of ``buf`` the elements of ``view`` occupy."""
    offs = np.full((), _addr(view) - _addr(buf), np.int64)
    for n, s in zip(view.shape, view.strides):
        offs = np.add.outer(offs, np.arange(n, dtype=np.int64) * s)
    offs = np.add.outer(offs.reshape(-1), np.arange(view.itemsize)).reshape(-1)
    mask = np.zeros(buf.size, bool)
    mask[offs] = True
    return mask


def _check_unchanged(c, before, outs, call_name, raised):
    bufs_before, loose_before = before
    for buf, old in zip(c.bufs, bufs_before):
        new = buf.tobytes()
        if new == old:
            continue
        changed = np.frombuffer(new, np.uint8) != np.frombuffer(old, np.uint8)
        allowed = np.zeros(buf.size, bool)
        if not raised:
            for o in outs:
                if isinstance(o, np.ndarray) and np.may_share_memory(o, buf):
                    allowed |= _byte_mask(o, buf)
        bad = changed & ~allowed
        if bad.any():
            where = int(np.argmax(bad)) - GUARD
            what = ("raised, yet wrote into the memory of an argument" if raised else
                    "wrote outside out=/grad_out= (into an input, or outside a buffer)")
            raise ContractViolation(f"{call_name}: {what}: {int(bad.sum())} byte(s) changed, "
                                    f"the first at byte {where} of a buffer of "
                                    f"{buf.size - 2 * GUARD - 1} bytes")
    for obj, old in zip(c.loose, loose_before):
        if pickle.dumps(obj) != old:
            raise ContractViolation(f"{call_name}: modified an input passed as "
                                    f"{type(obj).__name__}")


def _same_view(a, b):
    """The same elements at the same addresses (strides of axes of length 1
    address nothing)."""
    def steps(x):
        return tuple(st for st, n in zip(x.strides, x.shape) if n > 1)
    return (_addr(a) == _addr(b) and a.shape == b.shape and steps(a) == steps(b)
            and a.dtype == b.dtype)


def _check_no_overlap(call):
    """A call that returned took no out=/grad_out= overlapping an input, but
    for the documented in-place form (the very same view of an input)."""
    inputs = [(f"argument {i}", a, i in call.in_place) for i, a in enumerate(call.args)]
    inputs += [(f"{k}=", v, False) for k, v in call.kwargs.items() if k not in call.out_names]
    for k in call.out_names:
        o = call.kwargs.get(k)
        if not isinstance(o, np.ndarray):
            continue
        for label, a, in_place_ok in inputs:
            if not isinstance(a, np.ndarray) or not np.may_share_memory(o, a):
                continue
            if in_place_ok and _same_view(o, a):
                continue
            if np.shares_memory(o, a):
                raise ContractViolation(f"{call.name}: accepted {k}= overlapping the memory "
                                        f"of {label}")


def _describe(call):
    def d(v):
        if isinstance(v, np.ndarray):
            f = v.flags
            return (f"ndarray(shape={v.shape}, dtype={v.dtype}, strides={v.strides}, "
                    f"C={f.c_contiguous}, F={f.f_contiguous}, aligned={f.aligned}, "
                    f"writeable={f.writeable})")
        r = repr(v)
        return r if len(r) < 80 else r[:77] + "..."
    args = [d(a) for a in call.args] + [f"{k}={d(v)}" for k, v in call.kwargs.items()]
    return f"xent.{call.name}({', '.join(args)})"


def _equal(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if _bf16(a.dtype):  # (compared as their exact float32 values)
        a, b = a.astype(np.float32), b.astype(np.float32)
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _check_result(c, call, result, inputs_copy):
    exp = call.expect()
    name = call.name
    if exp is None:  # show_config
        return
    if exp == "float":
        if type(result) is not float:
            raise ContractViolation(f"{name}: returned {type(result).__name__}, not float")
        if c.valid and math.isnan(result):
            raise ContractViolation(f"{name}: NaN from finite, in-range inputs")
        items = [result]
    else:
        if len(exp) > 1 and not (isinstance(result, tuple) and len(result) == len(exp)):
            raise ContractViolation(f"{name}: expected a tuple of {len(exp)}, got {type(result).__name__}")
        items = list(result) if len(exp) > 1 else [result]
        for i, (r, (shape, dtype, out)) in enumerate(zip(items, exp)):
            label = f"{name}: result {i}"
            if out is not None and r is not out:
                raise ContractViolation(f"{label}: the out= buffer was not returned")
            if not isinstance(r, (np.ndarray, np.generic)):
                raise ContractViolation(f"{label}: expected an ndarray or numpy scalar, got {type(r).__name__}")
            if r.shape != tuple(shape):
                raise ContractViolation(f"{label}: expected shape {tuple(shape)}, got {r.shape}")
            if r.dtype != dtype:
                raise ContractViolation(f"{label}: expected dtype {dtype}, got {r.dtype}")
            if c.valid and (r.dtype.kind == "f" or _bf16(r.dtype)) \
                    and np.isnan(np.asarray(r, np.float32 if _bf16(r.dtype) else r.dtype)).any():
                raise ContractViolation(f"{label}: NaN from finite, in-range inputs")
            if out is None and isinstance(r, np.ndarray):
                for buf in c.bufs:
                    if np.may_share_memory(r, buf):
                        raise ContractViolation(f"{label}: shares memory with an input")
                for obj in c.loose:
                    if isinstance(obj, np.ndarray) and np.may_share_memory(r, obj):
                        raise ContractViolation(f"{label}: shares memory with an input")
    # the same call on contiguous copies, without out=/grad_out= and on another
    # thread count, gives the same bits (results never depend on either)
    args, kwargs = inputs_copy
    for k in call.out_names:
        kwargs.pop(k, None)
    if "n_threads" in inspect.signature(call.fn).parameters:
        kwargs["n_threads"] = 1 if call.kwargs.get("n_threads") != 1 else -1
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            again = call.fn(*args, **kwargs)
    except Exception as e:
        raise ContractViolation(f"{name}: the same call on contiguous copies without "
                                f"out=/grad_out= raised {type(e).__name__}: {e}") from e
    again = list(again) if isinstance(again, tuple) else [again]
    for i, (a, b) in enumerate(zip(items, again)):
        if not _equal(a, b):
            raise ContractViolation(f"{name}: result {i} differs from the same call on "
                                    f"contiguous copies, without out=/grad_out=, with "
                                    f"n_threads={kwargs.get('n_threads')}")


def _plain_copy(v):
    if isinstance(v, np.ndarray):
        return v.copy() if v.dtype == object else np.array(v, copy=True, order="C")
    return copy.deepcopy(v)


def check_one(data, provider="auto"):
    """Build one call from ``data``, run it and check the contract."""
    _load()
    c = Ctx(make_provider(data, provider))
    name = c.pick(FUNCTIONS)
    call = BUILDERS[name](c, name)
    outs = [call.kwargs[k] for k in call.out_names if k in call.kwargs]
    inputs_copy = ([_plain_copy(a) for a in call.args],
                   {k: (v if k in call.out_names else _plain_copy(v)) for k, v in call.kwargs.items()})
    before = _snapshot(c)
    stats = STATS.setdefault(name, [0, 0])
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = call.fn(*call.args, **call.kwargs)
    except (TypeError, ValueError):
        stats[1] += 1
        _check_unchanged(c, before, outs, name, raised=True)
        return
    except Exception as e:
        raise ContractViolation(f"{_describe(call)} raised {type(e).__name__}: {e}") from e
    stats[0] += 1
    try:
        _check_unchanged(c, before, outs, name, raised=False)
        _check_no_overlap(call)
        _check_result(c, call, result, inputs_copy)
    except ContractViolation as e:
        raise ContractViolation(f"{e}\n  call: {_describe(call)}") from None


def TestOneInput(data):
    check_one(data)


# ------------------------------------------------------------------- runners


def _save(data, directory):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "crash-" + hashlib.sha1(data).hexdigest())
    with open(path, "wb") as f:
        f.write(data)
    return path


def _stats_line():
    parts = [f"{n}: {ok}/{ok + bad}" for n, (ok, bad) in sorted(STATS.items())]
    return "returned/calls per function: " + ", ".join(parts)


def _signature(e):
    """A failure's kind, for --keep-going: its message without the call."""
    return str(e).split("\n")[0].split(" raised ")[-1][:120] if " raised " in str(e) \
        else str(e).split("\n")[0][:120]


def run_random(seconds=None, runs=None, seed=0, provider="auto", artifact_dir=".", max_len=4096,
               timeout=30.0, quiet=False, keep_going=False):
    """The plain loop: random inputs from a seeded RNG until ``seconds`` or
    ``runs``. Returns (executions, failures); a failing input is saved as
    ``crash-<sha1>`` in ``artifact_dir``, and the loop stops there (with
    ``keep_going``, it goes on and reports each new kind of failure once)."""
    _load()
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    current = os.path.join(artifact_dir, ".fuzz_api-current-input")
    os.makedirs(artifact_dir, exist_ok=True)
    fd = os.open(current, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if not quiet:
        print(f"fuzz_api: random loop, seed {seed}, provider "
              f"{'atheris' if provider != 'shim' and atheris else 'ByteProvider'}; if the "
              f"process dies (crash or --timeout hang), the input it ran is {current}",
              flush=True)
    execs = failures = 0
    seen = set()
    next_report = start + 10
    try:
        while True:
            now = time.monotonic()
            if (seconds is not None and now - start >= seconds) or (runs is not None and execs >= runs):
                break
            n = int(2 ** rng.uniform(0, math.log2(max_len)))
            data = rng.bytes(n)
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            faulthandler.dump_traceback_later(timeout, exit=True)
            try:
                check_one(data, provider)
            except Exception as e:  # a contract violation, or a bug of the harness
                failures += 1
                sig = _signature(e)
                if keep_going and sig in seen:
                    execs += 1
                    continue
                seen.add(sig)
                path = _save(data, artifact_dir)
                print(f"fuzz_api: FAILURE after {execs} executions: "
                      f"{e if isinstance(e, ContractViolation) else repr(e)}\n"
                      f"  input saved to {path}; replay: python {sys.argv[0]} "
                      f"{'--no-atheris ' if provider == 'shim' else ''}{path}", flush=True)
                if not keep_going:
                    return execs + 1, failures
            finally:
                faulthandler.cancel_dump_traceback_later()
            execs += 1
            if not quiet and now >= next_report:
                next_report = now + 30
                print(f"fuzz_api: {execs} executions, {now - start:.0f} s", flush=True)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(current)
    if not quiet:
        el = time.monotonic() - start
        print(f"fuzz_api: done: {execs} executions in {el:.1f} s ({execs / max(el, 1e-9):.0f}/s), "
              f"{failures} failure(s)\n{_stats_line()}", flush=True)
    return execs, failures


def replay(paths, provider):
    _load()
    failed = 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            check_one(data, provider)
            print(f"{path}: ok")
        except ContractViolation as e:
            failed += 1
            print(f"{path}: FAILURE: {e}")
    return failed


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, help="run the plain random loop this long")
    parser.add_argument("--runs", type=int, help="run the plain random loop this many inputs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random loop")
    parser.add_argument("--no-atheris", action="store_true",
                        help="read inputs with the pure-Python ByteProvider, never atheris")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds one input may take before it counts as a hang")
    parser.add_argument("--artifact-dir", default=".", help="where failing inputs are saved")
    parser.add_argument("--keep-going", action="store_true",
                        help="random loop: go on after a failure (each kind reported once)")
    args, rest = parser.parse_known_args(argv[1:])
    warnings.simplefilter("ignore")  # not part of the contract (log_loss warns by design)
    faulthandler.enable()
    provider = "shim" if args.no_atheris else "auto"
    files = [a for a in rest if not a.startswith("-") and os.path.isfile(a)]
    flags = {a.split("=", 1)[0].lstrip("-"): a.split("=", 1)[1] for a in rest
             if a.startswith("-") and "=" in a}
    use_atheris = (atheris is not None and not args.no_atheris and args.seconds is None
                   and args.runs is None)
    if use_atheris:
        with atheris.instrument_imports(include=["xent"]):
            _load()
        if "timeout" not in flags:
            rest.append(f"-timeout={int(args.timeout)}")
        atheris.Setup([argv[0]] + rest, TestOneInput)
        atheris.Fuzz()
        return 0
    if files:
        return 1 if replay(files, provider) else 0
    seconds = args.seconds
    runs = args.runs
    if seconds is None and runs is None:
        seconds = float(flags.get("max_total_time", 60))
        runs = int(flags["runs"]) if "runs" in flags else None
    _, failures = run_random(seconds, runs, args.seed, provider, args.artifact_dir,
                             timeout=args.timeout, keep_going=args.keep_going)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
