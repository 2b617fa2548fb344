"""bfloat16 input and output for every public function.

bfloat16 arrays come from ``ml_dtypes`` (what JAX hands NumPy, and what the
bytes of a PyTorch bf16 tensor are viewed as); xent recognises the dtype by
its name and module, without importing ``ml_dtypes``. A public function
wrapped by :func:`bfloat16_io` takes bfloat16 arrays wherever it takes
floating-point arrays:

* each bfloat16 argument is widened to float32 (exactly: a bfloat16 is the
  high half of a float32's bits; a compiled, parallel shift into a new array,
  so the caller's array is never touched);
* the function runs as on float32 input (sums of exps in float64);
* its float32 results are rounded to bfloat16, to nearest with ties to even
  (a compiled integer rounding; NaN stays NaN, overflow gives +-inf). A
  bfloat16 ``out=``/``grad_out=``/``hess_out=`` receives its result only
  after the call returned, so nothing is written when it raises, and
  ``grad_out=logits`` works in place as for float32.

A call without a bfloat16 array costs nothing more: the function runs, and
only its validation, meeting a bfloat16 input, hands the call back here
(``BFloat16Input``). The results are bfloat16 where the call on the widened
arrays returns float32 and the first input that is not an integer array
(integer arrays are class labels) is bfloat16; a float64 result (of a
float64 input beside it) stays float64. A gradient is bfloat16 when the
input it is the gradient of is.

The softmax family (``logsumexp``, ``softmax``, ``log_softmax``, and
``softmax_cross_entropy`` and ``softmax_focal_loss`` with class indices)
does not come here: its kernels read the bfloat16 bits themselves
(``src/class_rows.pxi``, ``run_bf16``: a group of rows at a time widened in
a thread's cache-sized workspace, computed as float32, narrowed into the
outputs), with the same results bit for bit and no N x C float32 array.
Its outputs are then bfloat16 or absent; a float32 output, or probability
targets, take the widening route above.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _kernels as _k
from . import _threads
from ._buffers import BUFFERS
from ._typing import F
from ._validate import BFloat16Input, DaskInput, check_out, is_bfloat16, same_view

#: the keyword arguments that are outputs of the functions that take them
OUT_NAMES = ("out", "grad_out", "hess_out")

_CHUNK = 65536  # values a task of the conversion kernels (BF16_PIECE, src/class_rows.pxi)


def _is_bf16_array(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "V" and is_bfloat16(a.dtype)


def _threads_for(n: int) -> int:
    return _threads.threads_for(None, max(1, -(-n // _CHUNK)), n)


def widen(a: np.ndarray) -> np.ndarray:
    """A float32 array of ``a``'s (bfloat16) values, ``a``'s shape, exact: in
    memory reused across calls (``xent._buffers``), for the call's duration."""
    # (C-contiguous and aligned: the compiled loop reads uint16_t)
    bits = np.require(a, requirements=["C", "A"]).view(np.uint16).reshape(-1)
    out = BUFFERS.empty(a.shape, np.float32)  # (a temporary of the call: memory reused)
    _k.bf16_widen(bits, out.reshape(-1).view(np.uint32), _threads_for(bits.size))
    return out


def narrow(a: np.ndarray, dtype: np.dtype[Any], out: np.ndarray | None = None) -> np.ndarray:
    """``a`` (float32) rounded to bfloat16 ``dtype``, to nearest with ties to
    even: a new array, or written into ``out`` (a bfloat16 array of its shape)."""
    src = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    direct = out is not None and out.flags.c_contiguous and out.flags.aligned
    dst = out if direct else np.empty(a.shape, dtype)
    assert dst is not None
    _k.bf16_narrow(src.view(np.uint32), dst.reshape(-1).view(np.uint16), _threads_for(src.size))
    if out is not None and not direct:
        out[...] = dst  # (same dtype: a copy of the bits into the caller's layout)
        return out
    return dst


def result_array(a: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """Float64 results (losses) in the result ``dtype``; bfloat16 through
    float32, as the float32 call rounds them, then narrowed (the same bits
    whether a kernel read bfloat16 or the call was widened)."""
    if dtype.kind == "V" and is_bfloat16(dtype):
        return narrow(a.astype(np.float32), dtype)
    return a.astype(dtype)


def result_scalar(v: float, dtype: np.dtype[Any]) -> Any:
    """A float64 result as a scalar of the result ``dtype`` (result_array)."""
    if dtype.kind == "V" and is_bfloat16(dtype):
        return narrow(np.array([v], np.float32), dtype)[0]
    return dtype.type(v)


def _narrow_result(value: Any, dtype: np.dtype[Any], outs: Dict[int, np.ndarray]) -> Any:
    if isinstance(value, tuple):
        return tuple(_narrow_result(v, dtype, outs) for v in value)
    if isinstance(value, np.ndarray):
        if id(value) in outs:  # the float32 stand-in of a bfloat16 output
            return narrow(value, dtype, outs[id(value)])
        return narrow(value, dtype) if value.dtype == np.float32 else value
    if isinstance(value, np.float32):
        return narrow(np.asarray(value).reshape(1), dtype)[0]
    return value


#: public function name -> whether it takes grad_out (filled by bfloat16_io)
grad_out_of: Dict[str, bool] = {}


def _primary(names: List[str], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """The input whose dtype the results take: the first that is not an
    integer array (integers are class labels: ``cross_entropy(labels, q)``
    returns ``q``'s dtype), in the order of the parameters ``names``."""
    values = list(args) + [kwargs[k] for k in names[len(args):] if k in kwargs]
    for v in values:
        if isinstance(v, np.ndarray) and v.dtype.kind in "biu":
            continue
        if not isinstance(v, np.ndarray):  # (lists, scalars: as the call will see them)
            try:
                if np.asarray(v).dtype.kind in "biu":
                    continue
            except (TypeError, ValueError):  # (a ragged list: the call's validation says so)
                pass
        return v
    return None


def _input(name: str, names: List[str], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """The argument of parameter ``name`` as the call gave it, or None."""
    i = names.index(name)
    return args[i] if i < len(args) else kwargs.get(name)


def _call(fn: Callable[..., Any], names: List[str], grad_of: str, args: Tuple[Any, ...],
          kwargs: Dict[str, Any]) -> Any:
    primary = _primary(names, args, kwargs)
    dtype = primary.dtype if _is_bf16_array(primary) else None
    # the gradient takes the dtype of the input it is the gradient of
    wrt = _input(grad_of, names, args, kwargs)
    gdtype = wrt.dtype if _is_bf16_array(wrt) else None
    grad = kwargs.get("return_grad") is True
    # The bfloat16 inputs are replaced by widened copies and the bfloat16
    # outputs by float32 stand-ins, which the call's own checks can no longer
    # relate to the caller's arrays; so here: an output that is the very same
    # view of a bfloat16 input (an in-place form) gets that input's widened
    # copy as its stand-in (the call then decides whether that is allowed),
    # any other output must overlap no input and no other output.
    inputs = [(n, a) for n, a in zip(names, args) if isinstance(a, np.ndarray)] + \
        [(k, v) for k, v in kwargs.items() if k not in OUT_NAMES and isinstance(v, np.ndarray)]
    outputs = [(k, kwargs[k]) for k in OUT_NAMES if isinstance(kwargs.get(k), np.ndarray)]
    copies: Dict[int, np.ndarray] = {id(a): widen(a) for _, a in inputs if _is_bf16_array(a)}
    outs: Dict[int, np.ndarray] = {}  # stand-in's id -> the caller's bfloat16 output
    stand_ins: Dict[str, np.ndarray] = {}
    for k, o in outputs:
        rounded = (gdtype if k == "grad_out" else dtype) is not None
        if rounded and o.dtype.kind == "f" and o.itemsize < 8:
            # (a result rounded to bfloat16 goes to a bfloat16 output)
            raise TypeError(f"{k}: expected dtype bfloat16, got {o.dtype}")
        same = [a for _, a in inputs if _is_bf16_array(a) and same_view(o, a)]
        if not (rounded and _is_bf16_array(o) and same):
            check_out(o, k, o.shape, o.dtype, [(n, a) for n, a in inputs if _is_bf16_array(a)
                                               or (rounded and _is_bf16_array(o))]
                      + [(n, b) for n, b in outputs if n != k])
        if rounded and _is_bf16_array(o):
            s = copies[id(same[0])] if same else BUFFERS.empty(o.shape, np.float32)
            stand_ins[k] = s
            outs[id(s)] = o
    args = tuple(copies.get(id(a), a) for a in args)
    for k, v in list(kwargs.items()):
        if k in stand_ins:
            kwargs[k] = stand_ins[k]
        elif k not in OUT_NAMES and id(v) in copies:
            kwargs[k] = copies[id(v)]
    if gdtype is not None and grad and "grad_out" not in kwargs and grad_out_of[fn.__name__]:
        # the float32 gradient is a temporary too: in reused memory, not fresh pages
        kwargs["grad_out"] = BUFFERS.empty(wrt.shape, np.float32)
    result = fn(*args, **kwargs)
    if grad and isinstance(result, tuple):
        # the values follow the primary input's dtype, the gradient its input's
        value = result[0] if dtype is None else _narrow_result(result[0], dtype, outs)
        g = result[1] if gdtype is None else _narrow_result(result[1], gdtype, outs)
        rest = result[2:] if dtype is None else _narrow_result(result[2:], dtype, outs)
        return (value, g, *rest)
    # the results' dtype follows the primary input's, as for the other dtypes
    return result if dtype is None else _narrow_result(result, dtype, outs)


def bfloat16_io(fn: F, grad_of: Optional[str] = None) -> F:
    """Wrap public function ``fn`` to take and return bfloat16 (module
    docstring); ``grad_of``: the parameter its gradient is of (default the
    first; ``bfloat16_io_of``). The call goes straight to ``fn``; only when
    its validation meets a bfloat16 input (``BFloat16Input``, raised before
    anything is written) are the arrays widened and the call made again."""
    params = inspect.signature(fn).parameters
    names = [k for k in params if k not in OUT_NAMES]
    wrt = grad_of or names[0]
    grad_out_of[fn.__name__] = "grad_out" in params

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BFloat16Input:
            pass
        except DaskInput:
            return _dask_call(fn.__name__, args, kwargs)
        return _call(fn, names, wrt, args, kwargs)

    return wrapper  # type: ignore[return-value]


def _dask_call(name: str, args: Any, kwargs: Any) -> Any:
    """A public function given a dask array: the ``xent.dask`` function of
    the same name (same type in, same type out), or TypeError if it has none."""
    import xent.dask as xd  # (ImportError with the install hint without dask)
    fn = getattr(xd, name, None)
    if fn is None:
        raise TypeError(f"{name}: takes NumPy arrays; for dask arrays, xent.dask has "
                        f"{', '.join(xd.__all__)} (or compute the array first)")
    return fn(*args, **kwargs)


def bfloat16_io_of(grad_of: str) -> Callable[[F], F]:
    """``bfloat16_io`` for a function whose gradient is of parameter ``grad_of``."""
    return lambda fn: bfloat16_io(fn, grad_of)
