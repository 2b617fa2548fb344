"""The log-sum-exp family: logsumexp, softmax, log_softmax and their gradients.

Public functions validate (``_validate``), pick the kernel for the compute
dtype (``_dispatch``) and the thread count (``_threads``), and call the
compiled kernels of ``src/softmax.pxi`` on ``(n_rows, C)`` arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Tuple, Union, overload

import numpy as np

from ._bfloat16 import bfloat16_io
from . import _threads
from ._dispatch import kernel
from . import _kernels as _k
from ._validate import (
    Rows, as_values, bf16_outputs, boolean, caller_memory, check_out, class_axes, compute_dtype,
    deliver, fill_doc, float_array, mask_array, row_operand, same_shape,
)
from ._typing import (
    ArrayLike, Axes, FloatArray, FloatResult, LogsumexpOptions, LossResult, Threads,
)

if TYPE_CHECKING:  # (typing_extensions: for the type checker only)
    from typing_extensions import Unpack

_NAN_INF_NOTES = """
    Rows are shifted by their maximum ``m`` and the sum of ``exp(x - m)`` is
    accumulated in float64 (for float32 input too), with one ``exp`` per
    element. A row of only ``-inf`` (or an empty row) has logsumexp ``-inf``
    and softmax 0; a row holding ``+inf`` has logsumexp ``+inf`` and its
    softmax is the limit: ``1/k`` at each of its ``k`` infinite entries, 0
    elsewhere. A NaN makes its own row NaN and no other.
"""


def _rowwise(kernel_name, arrays, axis, out, n_threads, given, in_place_ok=True,
             split_long_rows=False):
    """Run a row kernel mapping rows of ``arrays`` to rows of one output
    (``given``: the caller's objects the arrays were made from)."""
    names = [n for n, _ in arrays]
    values = [a for _, a in arrays]
    for name, a in arrays[1:]:
        same_shape(values[0], names[0], a, name)
    dtype = np.result_type(*values)
    cdt = compute_dtype(dtype)
    rows = Rows(values[0], class_axes(axis, values[0].ndim))
    callers = [m for (name, a), g in zip(arrays, given) for m in caller_memory(name, g, a)]
    check_out(out, "out", values[0].shape, dtype, arrays + callers, in_place_ok=in_place_ok)
    tasks = _threads.row_tasks(rows.n_rows, rows.n_classes) if split_long_rows else rows.n_rows
    nt = _threads.threads_for(n_threads, tasks, values[0].size)
    res = rows.direct_full(out, cdt)
    if res is None:
        res = np.empty(rows.shape2d, dtype=cdt)
    data = [rows.data(cdt)] + [Rows(a, rows.axes).data(cdt) for a in values[1:]]
    kernel(kernel_name, cdt)(*data, res, nt)
    return deliver(rows.to_full(as_values(res, dtype)), out, dtype)


_WHERE_DOC = """where : array_like of bool, optional
        Entries where it is False are left out, whatever their value (NaN
        and infinities included), as if they were ``-inf``: JAX's and
        optax's ``where=``. Broadcast to the shape of ``x``. Computed in the
        kernels' one pass, no copy of ``x``."""


def _scaled(x_given, x, axis, b, where, op, out, n_threads, keepdims=False, return_sign=False,
            return_grad=False):
    """The log-sum-exp family with scale factors ``b`` and a mask ``where``
    (either None): ``op`` a ``SCALED_*`` mode of ``src/softmax.pxi``."""
    lse_op = op == _k.SCALED_LSE
    dtype = x.dtype
    b_given = b
    if b is not None:
        b = float_array(b, "b")
        # (a Python number takes x's precision, as in NumPy and SciPy)
        python_number = isinstance(b_given, (bool, int, float)) and not isinstance(b_given, np.generic)
        dtype = x.dtype if python_number else np.result_type(x.dtype, b.dtype)
    w = None if where is None else mask_array(where)
    shape = x.shape
    if b is not None:  # (SciPy broadcasts x and b against each other)
        try:
            shape = np.broadcast_shapes(x.shape, b.shape)
        except ValueError:
            raise ValueError(f"b: expected an array broadcastable against x of shape {x.shape}, "
                             f"got shape {b.shape}") from None
        if shape != x.shape:
            x = np.broadcast_to(x, shape)
    rows = Rows(x, class_axes(axis, x.ndim))
    cdt = compute_dtype(dtype)
    if b is not None and b.dtype != cdt:
        b = b.astype(cdt)  # (b's own values in the compute type; never x)
    bv = None if b is None else row_operand(b, "b", rows)
    wv = None if w is None else row_operand(w, "where", rows).view(np.uint8)
    inputs = [("x", x)] + caller_memory("x", x_given, x)
    inputs += [(n, v) for n, v in (("b", b), ("b", b_given), ("where", w)) if isinstance(v, np.ndarray)]
    nt = _threads.threads_for(n_threads, rows.n_rows, x.size)
    if lse_op:
        check_out(out, "out", rows.batch_out_shape(keepdims), dtype, inputs)
        res = Rows.direct_flat(out, cdt)
        if res is None:
            res = np.empty(rows.n_rows, dtype=cdt)
        sgn = np.empty(rows.n_rows, dtype=cdt) if return_sign else None
        grad = np.empty(rows.shape2d, dtype=cdt) if return_grad else None
    else:
        check_out(out, "out", shape, dtype, inputs, in_place_ok=True)
        res = np.empty(rows.n_rows, dtype=cdt)
        sgn = None
        grad = rows.direct_full(out, cdt)
        if grad is None:
            grad = np.empty(rows.shape2d, dtype=cdt)
    data = rows.data(cdt)
    kernel("scaled_rows", cdt)(data, bv, wv, op, res, sgn, grad, nt)
    if not lse_op:
        return deliver(rows.to_full(as_values(grad, dtype)), out, dtype)
    result = deliver(rows.to_batch(as_values(res, dtype), keepdims), out, dtype)
    if out is None and result.ndim == 0:
        result = result[()]
    results = [result]
    if return_sign:
        sign = rows.to_batch(sgn.astype(dtype, copy=False), keepdims)
        results.append(sign[()] if sign.ndim == 0 else sign)
    if return_grad:
        results.append(deliver(rows.to_full(as_values(grad, dtype)), None, dtype))
    return results[0] if len(results) == 1 else tuple(results)



@overload
def logsumexp(x: ArrayLike, axis: Axes = ..., *, return_sign: Literal[False] = ...,
              return_grad: Literal[False] = ...,
              **options: Unpack[LogsumexpOptions]) -> FloatResult: ...
@overload
def logsumexp(x: ArrayLike, axis: Axes = ..., *, return_sign: Literal[False] = ...,
              return_grad: Literal[True],
              **options: Unpack[LogsumexpOptions]) -> Tuple[FloatResult, FloatArray]: ...
@overload
def logsumexp(x: ArrayLike, axis: Axes = ..., *, return_sign: Literal[True],
              return_grad: Literal[False] = ...,
              **options: Unpack[LogsumexpOptions]) -> Tuple[FloatResult, FloatResult]: ...
@overload
def logsumexp(x: ArrayLike, axis: Axes = ..., *, return_sign: Literal[True],
              return_grad: Literal[True],
              **options: Unpack[LogsumexpOptions]) -> Tuple[FloatResult, FloatResult, FloatArray]: ...
@overload
def logsumexp(x: ArrayLike, axis: Axes = ..., *, return_sign: bool = ..., return_grad: bool = ...,
              **options: Unpack[LogsumexpOptions]) -> Union[LossResult, Tuple[Any, ...]]: ...
@fill_doc(nan_inf=_NAN_INF_NOTES, where=_WHERE_DOC)
@bfloat16_io
def logsumexp(x: ArrayLike, axis: Axes = -1, *, b: Optional[ArrayLike] = None,
              where: Optional[ArrayLike] = None, keepdims: bool = False, return_sign: bool = False,
              return_grad: bool = False, out: Optional[FloatArray] = None,
              n_threads: Threads = None) -> Union[LossResult, Tuple[Any, ...]]:
    """Log of the sum of exponentials along an axis, ``log(sum(b * exp(x)))``.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Input. Integer and bool input is promoted to float64 (as SciPy's
        ``logsumexp``); complex and object input raise TypeError.
        Note SciPy's default ``axis=None`` (all axes) where xent's is -1.
    axis : int, tuple of int or None, default -1
        Axis or axes reduced (the class axes); the others are batch axes.
        None reduces over all axes.
    b : array_like of float, optional
        Scale factors, SciPy's ``b``: the result is ``log(sum(b * exp(x)))``.
        Broadcast against ``x`` (as SciPy, the result takes the broadcast
        shape); negative factors are allowed (subtraction, see
        ``return_sign``). An entry whose ``b`` is 0 adds nothing, even when
        ``x`` is infinite or NaN there (as SciPy). The result dtype is
        ``result_type(x, b)``.
    %(where)s
        A row with no entry left is ``-inf``.
    keepdims : bool, default False
        Keep the reduced axes with length 1.
    return_sign : bool, default False
        Also return the sign of the sum (+1, -1, or 0 for a sum of 0; NaN
        for NaN), the result then being ``log(abs(sum))``. Without it, a
        negative sum gives NaN (as SciPy).
    return_grad : bool, default False
        Also return the gradient of the result with respect to ``x``:
        ``softmax(x, axis)``, or with ``b``/``where``,
        ``b * exp(x) / sum(b * exp(x))`` (0 where an entry is left out; the
        gradient of ``log(abs(sum))``), computed in the same pass.
    out : ndarray, optional
        Where to write the result: shape of the result, its dtype,
        writeable, not overlapping ``x``, ``b`` or ``where``.
    n_threads : int or None, default None
        OpenMP threads. None honours ``OMP_NUM_THREADS`` and threadpoolctl
        limits; negative counts back from the number of cores (-1 = all).
        Small inputs always run on one thread. Results do not depend on it.

    Returns
    -------
    lse : ndarray or numpy scalar
        ``x.dtype`` (with ``b``: ``result_type(x, b)``; float16 input is
        computed in float32).
    sign : ndarray or numpy scalar, only if ``return_sign``
        The sign of ``sum(b * exp(x))``, the dtype and shape of ``lse``.
    grad : ndarray, only if ``return_grad``
        The gradient, the shape of ``x`` (broadcast with ``b``) and the
        dtype of ``lse``.

    Notes
    -----%(nan_inf)s
    Examples
    --------
    >>> import numpy as np, xent
    >>> float(xent.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> xent.logsumexp(np.array([[0.0, -np.inf], [-np.inf, -np.inf]]))
    array([  0., -inf])
    >>> xent.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    >>> float(xent.logsumexp([1.0, 5.0, np.nan], where=[True, False, False]))
    1.0
    """
    if (type(axis) is int and axis == -1 and keepdims is False and return_grad is False
            and out is None and b is None and where is None and return_sign is False
            and _threads.valid_count(n_threads)):
        done = _k.fast_rows(0, x)  # (compiled; None: not the common call)
        if done is not None:
            return done
    keepdims = boolean(keepdims, "keepdims")
    return_sign = boolean(return_sign, "return_sign")
    return_grad = boolean(return_grad, "return_grad")
    if b is not None or where is not None or return_sign:
        return _scaled(x, float_array(x, "x"), axis, b, where, _k.SCALED_LSE, out, n_threads,
                       keepdims, return_sign, return_grad)
    x_given, x = x, float_array(x, "x", bf16_outputs(out))
    rows = Rows(x, class_axes(axis, x.ndim))
    dtype, cdt = x.dtype, compute_dtype(x.dtype)
    check_out(out, "out", rows.batch_out_shape(keepdims), dtype,
              [("x", x)] + caller_memory("x", x_given, x))
    nt = _threads.threads_for(n_threads, _threads.row_tasks(rows.n_rows, rows.n_classes), x.size)

    lse = Rows.direct_flat(out, cdt)
    if lse is None:
        lse = np.empty(rows.n_rows, dtype=cdt)
    data = rows.data(cdt)
    if return_grad:
        probs = np.empty(rows.shape2d, dtype=cdt)
        kernel("softmax_rows", cdt)(data, probs, nt, lse)
    else:
        kernel("logsumexp_rows", cdt)(data, lse, nt)
    result = deliver(rows.to_batch(as_values(lse, dtype), keepdims), out, dtype)
    if out is None and result.ndim == 0:
        result = result[()]
    if return_grad:
        return result, deliver(rows.to_full(as_values(probs, dtype)), None, dtype)
    return result


@fill_doc(nan_inf=_NAN_INF_NOTES, where=_WHERE_DOC)
@bfloat16_io
def softmax(x: ArrayLike, axis: Axes = -1, *, where: Optional[ArrayLike] = None,
            out: Optional[FloatArray] = None, n_threads: Threads = None) -> FloatArray:
    """Softmax along an axis, ``exp(x - logsumexp(x, axis, keepdims=True))``.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Input logits.
    axis : int, tuple of int or None, default -1
        The class axis (or axes) normalised over.
    %(where)s
        Their probability is 0; a row with no entry left is 0.
    out : ndarray, optional
        Shape and dtype of ``x``, writeable. ``out=x`` computes in place;
        any other overlap with ``x`` is an error.
    n_threads : int or None, default None
        See :func:`logsumexp`.

    Returns
    -------
    ndarray
        Probabilities summing to 1 along ``axis``, dtype of ``x``.

    Notes
    -----%(nan_inf)s
    For an axis other than the last, or non-C-contiguous input, the input is
    first copied into contiguous rows; the result then has the class axis
    innermost in memory (a view with the shape of ``x``).
    """
    if where is not None:
        return _scaled(x, float_array(x, "x"), axis, None, where, _k.SCALED_SOFTMAX, out, n_threads)
    if type(axis) is int and axis == -1 and _threads.valid_count(n_threads):
        done = _k.fast_rows(1, x, out)  # (compiled; None: not the common call)
        if done is not None:
            return done
    return _rowwise("softmax_rows", [("x", float_array(x, "x", bf16_outputs(out)))], axis, out,
                    n_threads, [x], split_long_rows=True)


@fill_doc(nan_inf=_NAN_INF_NOTES, where=_WHERE_DOC)
@bfloat16_io
def log_softmax(x: ArrayLike, axis: Axes = -1, *, where: Optional[ArrayLike] = None,
                out: Optional[FloatArray] = None, n_threads: Threads = None) -> FloatArray:
    """Log of the softmax along an axis, ``x - logsumexp(x, axis, keepdims=True)``.

    Computed as ``(x - m) - log(sum(exp(x - m)))`` with ``m`` the row maximum,
    so a large common offset loses no digits.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Input logits.
    axis : int, tuple of int or None, default -1
        The class axis (or axes).
    %(where)s
        Their log-probability is ``-inf``; a row with no entry left is
        ``-inf``.
    out : ndarray, optional
        Shape and dtype of ``x``, writeable; ``out=x`` computes in place.
    n_threads : int or None, default None
        See :func:`logsumexp`.

    Returns
    -------
    ndarray
        Log-probabilities, dtype of ``x``.

    Notes
    -----%(nan_inf)s
    Accordingly a row of only ``-inf`` gives ``-inf`` everywhere, and a row
    with ``k`` entries ``+inf`` gives ``-log(k)`` there and ``-inf`` elsewhere.
    """
    if where is not None:
        return _scaled(x, float_array(x, "x"), axis, None, where, _k.SCALED_LOG_SOFTMAX, out,
                       n_threads)
    if type(axis) is int and axis == -1 and _threads.valid_count(n_threads):
        done = _k.fast_rows(2, x, out)  # (compiled; None: not the common call)
        if done is not None:
            return done
    return _rowwise("log_softmax_rows", [("x", float_array(x, "x", bf16_outputs(out)))], axis, out,
                    n_threads, [x], split_long_rows=True)


@bfloat16_io
def softmax_backward(probs: ArrayLike, grad_probs: ArrayLike, axis: Axes = -1, *,
                     out: Optional[FloatArray] = None, n_threads: Threads = None) -> FloatArray:
    """Vector-Jacobian product of softmax: the gradient with respect to its input.

    With ``p = softmax(x, axis)`` and an upstream gradient ``g = dL/dp``, returns
    ``dL/dx = p * (g - sum(p * g, axis, keepdims=True))``. The dot product is
    accumulated in float64.

    Parameters
    ----------
    probs : array_like of float
        The softmax output ``p``.
    grad_probs : array_like of float
        ``dL/dp``, same shape as ``probs``.
    axis : int, tuple of int or None, default -1
        The axis the softmax was taken over.
    out : ndarray, optional
        Shape of ``probs``, dtype ``result_type(probs, grad_probs)``; may be
        ``probs`` or ``grad_probs`` itself (in place).
    n_threads : int or None, default None
        See :func:`logsumexp`.

    Returns
    -------
    ndarray
        ``dL/dx``, dtype ``result_type(probs, grad_probs)``.
    """
    p = float_array(probs, "probs")
    g = float_array(grad_probs, "grad_probs")
    return _rowwise("softmax_backward_rows", [("probs", p), ("grad_probs", g)],
                    axis, out, n_threads, [probs, grad_probs])


@bfloat16_io
def log_softmax_backward(log_probs: ArrayLike, grad_log_probs: ArrayLike, axis: Axes = -1, *,
                         out: Optional[FloatArray] = None,
                         n_threads: Threads = None) -> FloatArray:
    """Vector-Jacobian product of log_softmax: the gradient with respect to its input.

    With ``lp = log_softmax(x, axis)`` and ``g = dL/dlp``, returns
    ``dL/dx = g - exp(lp) * sum(g, axis, keepdims=True)`` (one ``exp`` per
    element; the sum accumulated in float64).

    Parameters
    ----------
    log_probs : array_like of float
        The log_softmax output ``lp``.
    grad_log_probs : array_like of float
        ``dL/dlp``, same shape as ``log_probs``.
    axis : int, tuple of int or None, default -1
        The axis the log_softmax was taken over.
    out : ndarray, optional
        Shape of ``log_probs``, dtype ``result_type(log_probs, grad_log_probs)``;
        may be either input itself (in place).
    n_threads : int or None, default None
        See :func:`logsumexp`.

    Returns
    -------
    ndarray
        ``dL/dx``, dtype ``result_type(log_probs, grad_log_probs)``.
    """
    lp = float_array(log_probs, "log_probs")
    g = float_array(grad_log_probs, "grad_log_probs")
    return _rowwise("log_softmax_backward_rows", [("log_probs", lp), ("grad_log_probs", g)],
                    axis, out, n_threads, [log_probs, grad_log_probs])
