"""PyTorch drop-ins: ``torch.nn.functional``'s losses computed by xent's kernels.

``import xent.torch as xt`` (PyTorch >= 2.4; ``pip install "xent[torch]"``).
Each function takes PyTorch's arguments, in PyTorch's order, with the class
axis at dim 1, and behaves as the ``torch.nn.functional`` function it
replaces, down to the mean over no samples being NaN (the NumPy API returns
0 there). :func:`cross_entropy` also takes xent's ``z_loss`` and ``softcap``.

How a call runs:

* On CPU tensors of float16, bfloat16, float32 or float64 with the arguments
  the fused kernels take, the forward pass calls the NumPy API on views of
  the tensors' memory (no copy; bfloat16 as ``ml_dtypes.bfloat16``, which the
  cross-entropy's kernels read directly and the others widen) and, when the input needs a gradient, writes that
  gradient in the same pass. The backward pass scales it by the upstream
  gradient: no second pass over the logits.
* Anything else goes to the ``torch.nn.functional`` function itself: tensors
  on another device (never a silent copy to the CPU), a target or weight
  that requires a gradient, arguments PyTorch rejects (so the error is
  PyTorch's own, type and message), and the few options the kernels lack
  (listed with each function).
* In eager mode a ``torch.autograd.Function`` carries the call (the cheapest
  route through autograd); under ``torch.compile`` the same forward and
  backward are ``torch.library.custom_op`` operators with fake (meta)
  implementations and registered autograd, so a compiled training step
  traces through them with no graph break.

The gradients are first-order only: differentiating the backward again (a
double backward, ``create_graph=True`` then a second ``grad``) raises.
:func:`patch` routes ``torch.nn.functional`` (and so ``nn.CrossEntropyLoss``
and the other loss modules) to these functions without editing a script.
"""

import functools
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

try:
    import torch  # type: ignore[import-not-found, unused-ignore]
except ImportError as _missing:  # tested in a subprocess without torch
    raise ImportError(
        "xent.torch needs PyTorch (2.4 or newer): pip install \"xent[torch]\"") from _missing

import numpy as np

import xent
from xent._buffers import BUFFERS as _BUFFERS

_fwAD = torch.autograd.forward_ad

__all__ = [
    "binary_cross_entropy",
    "empty_cache",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "kl_div",
    "log_softmax",
    "logsumexp",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "patch",
    "softmax",
]

_F = torch.nn.functional
#: the functions patch() replaces, as torch defined them (the fallbacks call
#: these, never the possibly patched attributes of torch.nn.functional)
_ORIGINAL: Dict[str, Callable[..., Any]] = {name: getattr(_F, name) for name in (
    "cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy",
    "multilabel_soft_margin_loss", "kl_div", "log_softmax", "softmax")}
_ORIGINAL["logsumexp"] = torch.logsumexp

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_REDUCTIONS = ("mean", "sum", "none")


# --- tensors <-> arrays -------------------------------------------------------

def empty_cache() -> None:
    """Release the memory xent.torch keeps for reuse (see the PyTorch page of
    the docs): up to four arrays, each the size of a gradient it computed."""
    _BUFFERS.clear()


def _bfloat16_dtype() -> Optional[np.dtype]:
    """NumPy's bfloat16 (``ml_dtypes``, installed with the ``torch`` extra),
    or None: bfloat16 tensors are then widened by PyTorch instead."""
    try:
        import ml_dtypes  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


_BF16 = _bfloat16_dtype()
_NP_DTYPES = {torch.float16: np.float16, torch.bfloat16: _BF16 or np.float32,
              torch.float32: np.float32, torch.float64: np.float64}


def _array(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (bfloat16: its bits seen as
    ``ml_dtypes.bfloat16``, which the NumPy API takes; without ml_dtypes,
    widened to float32)."""
    t = t.detach()
    if t.dtype != torch.bfloat16:
        return t.numpy()
    if _BF16 is not None:
        return t.view(torch.int16).numpy().view(_BF16)
    out = _BUFFERS.empty(tuple(t.shape), np.float32)
    torch.from_numpy(out).copy_(t)
    return out


def _opt_array(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if t is None else _array(t)


def _tensor(a: Any, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of the NumPy API's result (its memory), rounded to ``dtype``
    when that is bfloat16."""
    a = a if type(a) is np.ndarray else np.asarray(a)
    if a.dtype == _BF16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    out = torch.from_numpy(a)
    if out.dtype == dtype:
        return out
    if out.numel() * 2 < _BUFFERS.MIN_BYTES:
        return out.to(dtype)
    # bfloat16 into reused memory (a uint16 array seen as bfloat16): rounded to nearest even
    bits = _BUFFERS.empty(tuple(out.shape), np.uint16)
    return torch.from_numpy(bits).view(dtype).copy_(out)


def _grad_array(x: torch.Tensor) -> np.ndarray:
    """The array the kernel writes the gradient of ``x`` into."""
    dtype = _NP_DTYPES[x.dtype]
    if x.numel() * x.element_size() < _BUFFERS.MIN_BYTES:
        return np.empty(x.shape, dtype)
    if dtype == _BF16:
        return _BUFFERS.empty(tuple(x.shape), np.uint16).view(_BF16)
    return _BUFFERS.empty(tuple(x.shape), dtype)


def _reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    """PyTorch's reduction of its legacy ``size_average``/``reduce`` arguments
    (with its deprecation warning, outside torch.compile, which would break
    the graph on it): plain Python, so that Dynamo traces it."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    new = ("mean" if size_average else "sum") if reduce else "none"
    if not torch.compiler.is_compiling():
        warnings.warn(f"size_average and reduce args will be deprecated, please use "
                      f"reduction='{new}' instead.", stacklevel=3)
    return new


#: the losses CPU autocast runs in float32 (a float16/bfloat16 input is cast
#: first, so the loss and its gradient's computation are float32's, as PyTorch's)
def _autocast(*ts: Any) -> Tuple[Any, ...]:
    if not torch.is_autocast_enabled("cpu"):
        return ts
    return tuple(t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16)
                 else t for t in ts)


def _float_input(x: Any) -> bool:
    """The input the kernels take: a plain CPU tensor of a float dtype, not empty."""
    return type(x) is torch.Tensor and x.is_cpu and x.dtype in _FLOATS and x.ndim >= 1 \
        and x.numel() > 0


def _same_dtype_vector(w: Optional[torch.Tensor], dtype: torch.dtype, size: int) -> bool:
    return w is None or (w.dtype == dtype and w.ndim == 1 and w.shape[0] == size)


def _all_ignored_nan(loss: torch.Tensor, grad: Optional[torch.Tensor], target: torch.Tensor,
                     weight: Optional[torch.Tensor], ignore_index: int, dense: bool) -> None:
    """PyTorch's mean over no (weighted) samples: 0/0, so NaN, and NaN in the
    gradient where the samples that count (with weight 0) have one: their
    whole row for cross-entropy (``dense``), their target's entry for NLL.
    The NumPy API returns 0 there. (Called when the mean is 0: a non-zero
    mean has a non-zero denominator.)"""
    valid = target != ignore_index
    if weight is None:
        den = float(valid.sum())
    else:
        den = float(weight.double()[target[valid].long()].sum())
    if den != 0.0:
        return
    loss.fill_(float("nan"))
    if grad is None:
        return
    cls = 1 if grad.dim() > 1 else 0
    if dense:
        mask = valid.unsqueeze(cls).expand_as(grad)
    else:
        mask = torch.zeros_like(grad, dtype=torch.bool).scatter_(
            cls, torch.where(valid, target, 0).long().unsqueeze(cls), valid.unsqueeze(cls))
    grad.masked_fill_(mask, float("nan"))


# --- the forward passes (the NumPy API on views), one per operator ------------
# Each returns (result, gradient); the gradient is an empty tensor when the
# call does not need it. The backward of the "scaled" ones is gradient times
# the upstream gradient, broadcast along the reduced dims.

def _class_losses(fn: Callable[..., Any], x: torch.Tensor, target: torch.Tensor,
                  weight: Optional[torch.Tensor], ignore_index: int, reduction: str,
                  need_grad: bool, **kw: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    labels = not target.is_floating_point()
    xa, ta = _array(x), (target.numpy() if labels else _array(target))
    one = x.ndim == 1 and labels  # one sample: (C,) logits, a 0-d label
    if one:
        xa, ta = xa[None], ta[None]
    if labels:
        kw["ignore_index"] = ignore_index
    if need_grad:
        ga = _grad_array(x)
        kw["grad_out"] = ga[None] if one else ga
    if weight is not None:
        kw["weight"] = _array(weight)
    # (N, C) as rows, the class axis last: the NumPy API's quickest call
    res = fn(xa, ta, axis=1 if x.ndim > 2 else -1, reduction=reduction, return_grad=need_grad,
             **kw)
    loss = res[0] if need_grad else res
    if one and reduction == "none":
        loss = loss[0]
    g = _tensor(ga, x.dtype) if need_grad else x.new_empty(0)
    out = _tensor(loss, x.dtype)
    if labels and reduction == "mean" and loss == 0:
        _all_ignored_nan(out, g if need_grad else None, target, weight, ignore_index,
                         fn is not xent.nll_loss)
    return out, g


def _ce_forward(x: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                ignore_index: int, reduction: str, label_smoothing: float, z_loss: float,
                softcap: Optional[float], need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    return _class_losses(xent.softmax_cross_entropy, x, target, weight, ignore_index, reduction,
                         need_grad, label_smoothing=label_smoothing, z_loss=z_loss,
                         softcap=softcap)


def _nll_forward(x: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                 ignore_index: int, reduction: str,
                 need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    return _class_losses(xent.nll_loss, x, target, weight, ignore_index, reduction, need_grad)


def _elementwise(fn: Callable[..., Any], x: torch.Tensor, need_grad: bool, *args: Any,
                 **kw: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    if need_grad:
        kw["grad_out"] = ga = _grad_array(x)
    res = fn(_array(x), *args, return_grad=need_grad, **kw)
    out = _tensor(res[0] if need_grad else res, x.dtype)
    return out, (_tensor(ga, x.dtype) if need_grad else x.new_empty(0))


def _bce_logits_forward(x: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                        pos_weight: Optional[torch.Tensor], reduction: str,
                        need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    return _elementwise(xent.binary_cross_entropy_with_logits, x, need_grad, _array(target),
                        weight=_opt_array(weight), pos_weight=_opt_array(pos_weight),
                        reduction=reduction)


def _bce_forward(x: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                 reduction: str, need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    return _elementwise(xent.binary_cross_entropy, x, need_grad, _array(target),
                        weight=_opt_array(weight), reduction=reduction)


def _multilabel_forward(x: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                        reduction: str, need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    return _elementwise(xent.multilabel_cross_entropy, x, need_grad, _array(target),
                        class_reduction="mean", weight=_opt_array(weight), reduction=reduction)


_KL_REDUCTION: Dict[str, Any] = {"none": "elementwise", "sum": "sum", "batchmean": "batchmean", "mean": "sum"}


def _kl_forward(x: torch.Tensor, target: torch.Tensor, reduction: str, log_target: bool,
                need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    # KL(target || exp(input)): the NumPy API's p is the target, its q the input
    res: Any = xent.kl_divergence(_array(target), _array(x), log_input=True,
                                  log_target=log_target, reduction=_KL_REDUCTION[reduction],
                                  return_grad=need_grad)
    out = _tensor(res[0] if need_grad else res, x.dtype)
    g = _tensor(res[1], x.dtype) if need_grad else x.new_empty(0)
    if reduction == "mean":  # PyTorch's "mean" is over elements
        out.div_(x.numel())
        if need_grad:
            g.div_(x.numel())
    return out, g


def _logsumexp_forward(x: torch.Tensor, dim: List[int], keepdim: bool,
                       need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    axis = tuple(dim) if len(dim) != 1 else dim[0]
    if not need_grad:
        return _tensor(xent.logsumexp(_array(x), axis=axis, keepdims=keepdim), x.dtype), \
            x.new_empty(0)
    lse, p = xent.logsumexp(_array(x), axis=axis, keepdims=keepdim, return_grad=True)
    # (the softmax comes laid out with the reduced dims last: C-contiguous, as
    # the fake implementation says; no copy when they are the last dims)
    return _tensor(lse, x.dtype), _tensor(np.ascontiguousarray(p), x.dtype)


def _softmax_forward(x: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    fn = xent.log_softmax if log else xent.softmax
    out = _grad_array(x)
    fn(_array(x), axis=dim, out=out)
    return _tensor(out, x.dtype)


def _softmax_backward(y: torch.Tensor, grad: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    fn = xent.log_softmax_backward if log else xent.softmax_backward
    out = _grad_array(y)  # (C-contiguous, as the fake implementation says)
    fn(_array(y), _array(grad.to(y.dtype)), axis=dim, out=out)
    return _tensor(out, y.dtype)


# --- backward: the saved gradient times the upstream one -----------------------

def _scaled(g: torch.Tensor, go: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``g * go`` with ``go`` viewed as ``shape`` (broadcast along reduced dims)."""
    return g * go.reshape(shape)


def _go_shape(x: torch.Tensor, out_shape: Sequence[int], kind: str, dim: Any) -> List[int]:
    """How the upstream gradient (of ``out_shape``) broadcasts against the input."""
    if kind == "elementwise" or len(out_shape) == x.dim():
        return list(out_shape)
    if len(out_shape) == 0:
        return [1] * x.dim()
    shape = list(out_shape)
    for d in sorted(d % x.dim() for d in dim):
        shape.insert(d, 1)
    return shape


class _Eager(torch.autograd.Function):
    """Eager route: one forward (gradient included when needed), a scaled backward.

    ``call`` is ``(forward, kind, dim, args)``: one argument for autograd to
    look through rather than each option.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, call: Tuple[Any, ...]) -> torch.Tensor:
        out, ctx.g = call[0](x, *call[3], True)
        ctx.call, ctx.out_shape = call, out.shape
        # (for a second backward's recomputation; autograd checks on access
        # that none of them was modified in place since)
        ctx.save_for_backward(x, *[a for a in call[3] if isinstance(a, torch.Tensor)])
        return out

    @staticmethod
    def backward(ctx: Any, go: torch.Tensor) -> Tuple[Optional[torch.Tensor], None]:
        if torch.is_grad_enabled():  # create_graph=True: a double backward to come
            raise RuntimeError(_NO_DOUBLE_BACKWARD)
        # The gradient is handed over, not kept: with no other reference left,
        # autograd stores it as the input's .grad without a copy. A second
        # backward through a retained graph computes it again.
        g, ctx.g = ctx.g, None
        forward, kind, dim, args = ctx.call
        if g is None:
            x, *saved = ctx.saved_tensors
            it = iter(saved)
            g = forward(x, *[next(it) if isinstance(a, torch.Tensor) else a for a in args],
                        True)[1]
        if go.numel() != 1 or float(go) != 1.0:
            g = _scaled(g, go, _go_shape(g, ctx.out_shape, kind, dim))
        return g, None


_EAGER_APPLY = super(torch.autograd.Function, _Eager).apply

_NO_DOUBLE_BACKWARD = (
    "xent.torch computes first derivatives only: its backward cannot be differentiated again "
    "(create_graph=True); use torch.nn.functional for higher-order gradients")


class _EagerSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
        y = _softmax_forward(x, dim, log)
        ctx.save_for_backward(y)
        ctx.dim, ctx.log = dim, log
        return y

    @staticmethod
    def backward(ctx: Any, go: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD)
        (y,) = ctx.saved_tensors
        return _softmax_backward(y, go, ctx.dim, ctx.log), None, None


# --- the custom operators (the torch.compile route) ----------------------------

def _register(name: str, forward: Callable[..., Any], kind: str,
              fake: Callable[..., Tuple[torch.Tensor, torch.Tensor]],
              dim_of: Callable[..., Any], to_torch: Callable[..., Tuple[Any, ...]]) -> Any:
    """The custom op ``xent::<name>`` of ``forward``; ``to_torch`` maps its
    arguments to the PyTorch function's, whose error is raised when the NumPy
    API refuses a value (as on the eager route)."""

    @functools.wraps(forward)
    def impl(*args: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        try:
            return forward(*args)  # type: ignore[no-any-return]
        except (ValueError, TypeError):
            _ORIGINAL[name](*to_torch(*args))
            raise

    op = torch.library.custom_op(f"xent::{name}", impl, mutates_args=())
    op.register_fake(fake)

    def setup_context(ctx: Any, inputs: Tuple[Any, ...], output: Any) -> None:
        x = inputs[0]
        out, g = output
        ctx.mark_non_differentiable(g)
        ctx.save_for_backward(g)
        ctx.shape = _go_shape(x, out.shape, kind, dim_of(*inputs))
        ctx.n_inputs = len(inputs)

    def backward(ctx: Any, go: torch.Tensor, _gg: Any) -> Tuple[Optional[torch.Tensor], ...]:
        (g,) = ctx.saved_tensors
        return (_scaled(g, go, ctx.shape),) + (None,) * (ctx.n_inputs - 1)

    op.register_autograd(backward, setup_context=setup_context)
    return op


def _fake_grad(x: torch.Tensor, need_grad: bool) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format) if need_grad \
        else x.new_empty(0)


def _fake_rows(x: torch.Tensor, target: torch.Tensor, reduction: str,
               need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    if reduction != "none":
        shape: List[int] = []
    elif target.is_floating_point():
        shape = [n for i, n in enumerate(x.shape) if i != (1 if x.dim() > 1 else 0)]
    else:
        shape = list(target.shape)
    return x.new_empty(shape), _fake_grad(x, need_grad)


def _fake_elementwise(x: torch.Tensor, reduction: str, need_grad: bool,
                      rows: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    if reduction in ("none",):
        shape = list(x.shape[:-1]) if rows else list(x.shape)
    else:
        shape = []
    return x.new_empty(shape), _fake_grad(x, need_grad)


_ce_op = _register(
    "cross_entropy", _ce_forward, "rows",
    lambda x, t, w, ii, r, ls, z, sc, ng: _fake_rows(x, t, r, ng),
    lambda x, *a: [1 if x.dim() > 1 else 0],
    lambda x, t, w, ii, r, ls, z, sc, ng: (x, t, w, None, ii, None, r, ls))
_nll_op = _register(
    "nll_loss", _nll_forward, "rows",
    lambda x, t, w, ii, r, ng: _fake_rows(x, t, r, ng),
    lambda x, *a: [1 if x.dim() > 1 else 0],
    lambda x, t, w, ii, r, ng: (x, t, w, None, ii, None, r))
_bce_logits_op = _register(
    "binary_cross_entropy_with_logits", _bce_logits_forward, "elementwise",
    lambda x, t, w, pw, r, ng: _fake_elementwise(x, r, ng), lambda *a: None,
    lambda x, t, w, pw, r, ng: (x, t, w, None, None, r, pw))
_bce_op = _register(
    "binary_cross_entropy", _bce_forward, "elementwise",
    lambda x, t, w, r, ng: _fake_elementwise(x, r, ng), lambda *a: None,
    lambda x, t, w, r, ng: (x, t, w, None, None, r))
_multilabel_op = _register(
    "multilabel_soft_margin_loss", _multilabel_forward, "rows",
    lambda x, t, w, r, ng: _fake_elementwise(x, r, ng, rows=True),
    lambda x, *a: [x.dim() - 1],
    lambda x, t, w, r, ng: (x, t, w, None, None, r))
_kl_op = _register(
    "kl_div", _kl_forward, "elementwise",
    lambda x, t, r, lt, ng: _fake_elementwise(x, "none" if r == "none" else "sum", ng),
    lambda *a: None,
    lambda x, t, r, lt, ng: (x, t, None, None, r, lt))


def _fake_lse(x: torch.Tensor, dim: List[int], keepdim: bool,
              need_grad: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    red = {d % x.dim() for d in dim}
    shape = [1 if i in red else n for i, n in enumerate(x.shape) if keepdim or i not in red]
    return x.new_empty(shape), _fake_grad(x, need_grad)


_lse_op = _register("logsumexp", _logsumexp_forward, "rows", _fake_lse,
                    lambda x, dim, keepdim, ng: dim,
                    lambda x, dim, keepdim, ng: (x, dim, keepdim))


@torch.library.custom_op("xent::softmax", mutates_args=())
def _softmax_op(x: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    return _softmax_forward(x, dim, log)


@torch.library.custom_op("xent::softmax_backward", mutates_args=())
def _softmax_backward_op(y: torch.Tensor, grad: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    return _softmax_backward(y, grad, dim, log)


@_softmax_op.register_fake
def _(x: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@_softmax_backward_op.register_fake
def _(y: torch.Tensor, grad: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
    return torch.empty_like(y, memory_format=torch.contiguous_format)


def _softmax_setup(ctx: Any, inputs: Tuple[Any, ...], output: torch.Tensor) -> None:
    ctx.save_for_backward(output)
    ctx.dim, ctx.log = inputs[1], inputs[2]


def _softmax_op_backward(ctx: Any, go: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
    (y,) = ctx.saved_tensors
    return _softmax_backward_op(y, go, ctx.dim, ctx.log), None, None


_softmax_op.register_autograd(_softmax_op_backward, setup_context=_softmax_setup)


# --- the public functions ------------------------------------------------------

#: the ATen operator torch.nn.functional.cross_entropy calls, with its
#: reduction codes (torch.nn._reduction.get_enum), or None if this PyTorch
#: has it elsewhere
_ATEN_CE: Optional[Callable[..., torch.Tensor]] = getattr(torch._C._nn, "cross_entropy_loss", None)
_ATEN_REDUCTION = {"none": 0, "mean": 1, "sum": 2}

#: Eager calls on inputs of fewer elements go to PyTorch's own function: the
#: route through autograd.Function and NumPy costs some 30-40 us a call more
#: than PyTorch's C++ op, more than the kernels save on so few values
#: (measured, docs/torch.md: 64x10 cross-entropy fwd+bwd). 0 sends every call
#: through xent; torch.compile always takes the custom ops.
MIN_ELEMENTS = 32768


def _fused(name: str, forward: Callable[..., Any], op: Any, kind: str, dim: Any,
           x: torch.Tensor, args: Tuple[Any, ...], torch_args: Tuple[Any, ...],
           torch_same: bool = True) -> torch.Tensor:
    """Run one operator on the fused route: the custom op under
    torch.compile, else the eager autograd.Function (or the forward alone
    when no gradient is needed); in eager mode, an input of fewer than
    MIN_ELEMENTS goes to PyTorch's function (``torch_same``: which computes
    what was asked, without xent's own options).

    A value the cheap checks cannot see (a class index out of range, a
    probability outside [0, 1]) makes the NumPy API raise before it writes
    anything; PyTorch's function is then called with the same arguments, so
    the error raised is PyTorch's (or, where PyTorch accepts the value, its
    result is returned).
    """
    need = x.requires_grad and torch.is_grad_enabled()
    if torch.compiler.is_compiling():
        return op(x, *args, need)[0]
    if _elsewhere(x) or (torch_same and x.numel() < MIN_ELEMENTS):
        return _ORIGINAL[name](*torch_args)
    try:
        if need:
            # (autograd.Function.apply's Python layer only unwraps functorch's
            # wrappers, of which there are none here (_elsewhere): ~2 us saved)
            return _EAGER_APPLY(x, (forward, kind, dim, args))
        return forward(x, *args, False)[0]
    except (ValueError, TypeError):
        return _ORIGINAL[name](*torch_args)


def _elsewhere(x: torch.Tensor) -> bool:
    """Whether PyTorch's machinery around the call needs PyTorch's own op:
    torch.func transforms (grad, vmap, jacrev: their wrapped tensors have no
    NumPy view), forward-mode AD (a dual tensor's tangent), torch.jit.trace
    (which would record the result as a constant)."""
    return torch._C._are_functorch_transforms_active() or torch.jit.is_tracing() or (
        _fwAD._current_level >= 0 and _fwAD.unpack_dual(x).tangent is not None)


def _plain(*ts: Any) -> bool:
    """Plain CPU tensors (or None): no subclass with __torch_function__, no
    other device, no gradient wanted for them (all but the input)."""
    for t in ts:
        if t is not None and not (type(t) is torch.Tensor and t.is_cpu and not t.requires_grad):
            return False
    return True


def _class_target_ok(x: torch.Tensor, target: Any, probabilities: bool) -> bool:
    if target.is_floating_point():
        return probabilities and target.dtype == x.dtype and target.shape == x.shape
    if target.dtype not in (torch.int64, torch.uint8):
        return False
    if x.ndim == 1:
        return target.ndim == 0
    if x.ndim == 2:
        return target.ndim == 1 and target.shape[0] == x.shape[0]
    return target.shape == x.shape[:1] + x.shape[2:]


def _same_shape_target_ok(x: torch.Tensor, target: Any) -> bool:
    return target.dtype == x.dtype and target.shape == x.shape


def _broadcast_ok(w: Optional[torch.Tensor], x: torch.Tensor) -> bool:
    if w is None:
        return True
    if w.dtype != x.dtype:
        return False
    try:
        return torch.broadcast_shapes(w.shape, x.shape) == x.shape
    except RuntimeError:
        return False


def _torch_ce_extras(input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                     ignore_index: int, reduction: str, label_smoothing: float, z_loss: float,
                     softcap: Optional[float]) -> torch.Tensor:
    """``z_loss`` and ``softcap`` in PyTorch operations, for tensors the kernels
    do not take (another device, a target that requires a gradient)."""
    x = input if softcap is None else softcap * torch.tanh(input / softcap)
    loss = _ORIGINAL["cross_entropy"](x, target, weight, ignore_index=ignore_index,
                                      reduction=reduction, label_smoothing=label_smoothing)
    if not z_loss:
        return loss
    cls = 1 if x.dim() > 1 else 0
    z = z_loss * torch.logsumexp(x, cls) ** 2
    if target.is_floating_point():
        den = z.new_tensor(float(z.numel()))
    else:
        valid = target != ignore_index
        z = z * valid
        den = valid.sum().to(z.dtype) if weight is None else \
            (weight[target.clamp(min=0)] * valid).sum()
    if reduction == "none":
        return loss + z
    return loss + (z.sum() if reduction == "sum" else z.sum() / den)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                  size_average: Optional[bool] = None, ignore_index: int = -100,
                  reduce: Optional[bool] = None, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, z_loss: float = 0.0,
                  softcap: Optional[float] = None) -> torch.Tensor:
    """:func:`torch.nn.functional.cross_entropy`, fused (loss and gradient in one pass).

    Class indices (int64 or uint8) or class probabilities as the target, the
    class axis at dim 1 (``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``). As in
    PyTorch, ``"mean"`` divides by the summed class weights of the samples
    that are not ignored, and is NaN when that is 0. ``z_loss`` adds
    ``z_loss * logsumexp(row)**2`` per counted sample and ``softcap`` caps the
    logits to ``softcap * tanh(x / softcap)`` first (see
    :func:`xent.softmax_cross_entropy`); both also work on the fallback route.
    """
    if not z_loss and softcap is None and type(input) is torch.Tensor \
            and input.numel() < MIN_ELEMENTS and not torch.compiler.is_compiling():
        # (the common small call, straight to PyTorch: _fused's rule, checked
        # first; plain tensors and arguments go to the ATen op
        # F.cross_entropy itself calls, without its Python layer)
        how = _ATEN_REDUCTION.get(reduction) if type(reduction) is str else None
        if _ATEN_CE is not None and how is not None and size_average is None \
                and reduce is None and type(target) is torch.Tensor \
                and (weight is None or type(weight) is torch.Tensor):
            return _ATEN_CE(input, target, weight, how, ignore_index, label_smoothing)
        return _ORIGINAL["cross_entropy"](input, target, weight, size_average, ignore_index,
                                          reduce, reduction, label_smoothing)
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    input, target, weight = _autocast(input, target, weight)
    torch_args = (input, target, weight, None, ignore_index, None, reduction, label_smoothing)
    if _float_input(input) and _plain(target, weight) and reduction in _REDUCTIONS \
            and _class_target_ok(input, target, True) and 0.0 <= label_smoothing <= 1.0 \
            and _same_dtype_vector(weight, input.dtype, input.shape[1 if input.ndim > 1 else 0]) \
            and z_loss >= 0 and (softcap is None or softcap > 0):
        args = (target, weight, int(ignore_index), reduction, float(label_smoothing),
                float(z_loss), None if softcap is None else float(softcap))
        return _fused("cross_entropy", _ce_forward, _ce_op, "rows",
                      [1 if input.ndim > 1 else 0], input, args, torch_args,
                      torch_same=not z_loss and softcap is None)
    if z_loss or softcap is not None:
        return _torch_ce_extras(input, target, weight, ignore_index, reduction, label_smoothing,
                                z_loss, softcap)
    return _ORIGINAL["cross_entropy"](*torch_args)


def nll_loss(input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
             size_average: Optional[bool] = None, ignore_index: int = -100,
             reduce: Optional[bool] = None, reduction: str = "mean") -> torch.Tensor:
    """:func:`torch.nn.functional.nll_loss` on log-probabilities (class indices)."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    input, weight = _autocast(input, weight)
    torch_args = (input, target, weight, None, ignore_index, None, reduction)
    if _float_input(input) and _plain(target, weight) and reduction in _REDUCTIONS \
            and _class_target_ok(input, target, False) \
            and _same_dtype_vector(weight, input.dtype, input.shape[1 if input.ndim > 1 else 0]):
        return _fused("nll_loss", _nll_forward, _nll_op, "rows", [1 if input.ndim > 1 else 0],
                      input, (target, weight, int(ignore_index), reduction), torch_args)
    return _ORIGINAL["nll_loss"](*torch_args)


def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: Optional[torch.Tensor] = None,
                                     size_average: Optional[bool] = None,
                                     reduce: Optional[bool] = None, reduction: str = "mean",
                                     pos_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`torch.nn.functional.binary_cross_entropy_with_logits`, fused.

    ``pos_weight`` as a scalar or one value per class (the last dim) takes the
    fused route; other shapes PyTorch broadcasts go to PyTorch.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    input, target, weight, pos_weight = _autocast(input, target, weight, pos_weight)
    torch_args = (input, target, weight, None, None, reduction, pos_weight)
    if _float_input(input) and _plain(target, weight, pos_weight) and reduction in _REDUCTIONS \
            and _same_shape_target_ok(input, target) and _broadcast_ok(weight, input) \
            and (pos_weight is None or (pos_weight.dtype == input.dtype and pos_weight.ndim <= 1
                                        and pos_weight.numel() in (1, input.shape[-1]))):
        return _fused("binary_cross_entropy_with_logits", _bce_logits_forward, _bce_logits_op,
                      "elementwise", None, input, (target, weight, pos_weight, reduction),
                      torch_args)
    return _ORIGINAL["binary_cross_entropy_with_logits"](*torch_args)


def binary_cross_entropy(input: torch.Tensor, target: torch.Tensor,
                         weight: Optional[torch.Tensor] = None,
                         size_average: Optional[bool] = None, reduce: Optional[bool] = None,
                         reduction: str = "mean") -> torch.Tensor:
    """:func:`torch.nn.functional.binary_cross_entropy` on probabilities.

    One difference at the ends of [0, 1]: PyTorch clamps each log at -100 and
    divides the gradient by ``max(p * (1 - p), 1e-12)``; xent clips ``p`` to
    ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of the computation's
    dtype (``xent.binary_cross_entropy``'s default). Probabilities inside that
    range give PyTorch's loss and gradient; a wrong certain prediction gives
    -log(eps) (15.9 in float32, 36.0 in float64) where PyTorch gives 100.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    input, target, weight = _autocast(input, target, weight)
    torch_args = (input, target, weight, None, None, reduction)
    if _float_input(input) and _plain(target, weight) and reduction in _REDUCTIONS \
            and _same_shape_target_ok(input, target) and _broadcast_ok(weight, input):
        return _fused("binary_cross_entropy", _bce_forward, _bce_op, "elementwise", None, input,
                      (target, weight, reduction), torch_args)
    return _ORIGINAL["binary_cross_entropy"](*torch_args)


def multilabel_soft_margin_loss(input: torch.Tensor, target: torch.Tensor,
                                weight: Optional[torch.Tensor] = None,
                                size_average: Optional[bool] = None,
                                reduce: Optional[bool] = None,
                                reduction: str = "mean") -> torch.Tensor:
    """:func:`torch.nn.functional.multilabel_soft_margin_loss`: the mean over
    classes of the binary losses from logits, one value per sample, fused."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    torch_args = (input, target, weight, None, None, reduction)
    if _float_input(input) and _plain(target, weight) and reduction in _REDUCTIONS \
            and _same_shape_target_ok(input, target) and _broadcast_ok(weight, input):
        return _fused("multilabel_soft_margin_loss", _multilabel_forward, _multilabel_op, "rows",
                      [input.ndim - 1], input, (target, weight, reduction), torch_args)
    return _ORIGINAL["multilabel_soft_margin_loss"](*torch_args)


_KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release.")


def kl_div(input: torch.Tensor, target: torch.Tensor, size_average: Optional[bool] = None,
           reduce: Optional[bool] = None, reduction: str = "mean",
           log_target: bool = False) -> torch.Tensor:
    """:func:`torch.nn.functional.kl_div`: ``input`` log-probabilities,
    ``target`` probabilities (log-probabilities with ``log_target``); PyTorch's
    reductions, its warning for ``"mean"`` included."""
    legacy = size_average is not None or reduce is not None
    if legacy and reduction == "batchmean":  # PyTorch divides its legacy reduction by N too
        return _ORIGINAL["kl_div"](input, target, size_average, reduce, reduction, log_target)
    if legacy:
        reduction = _reduction(size_average, reduce, reduction)
    input, target = _autocast(input, target)
    torch_args = (input, target, None, None, reduction, log_target)
    if _float_input(input) and _plain(target) and reduction in _REDUCTIONS + ("batchmean",) \
            and _same_shape_target_ok(input, target):
        if reduction == "mean" and not legacy and not torch.compiler.is_compiling():
            warnings.warn(_KL_MEAN_WARNING, stacklevel=2)
        return _fused("kl_div", _kl_forward, _kl_op, "elementwise", None, input,
                      (target, reduction, bool(log_target)), torch_args)
    return _ORIGINAL["kl_div"](*torch_args)


def _dim_ok(x: torch.Tensor, dim: Any) -> bool:
    return isinstance(dim, int) and not isinstance(dim, bool) and -x.dim() <= dim < x.dim()


def _softmax_public(name: str, log: bool, input: torch.Tensor, dim: Optional[int],
                    _stacklevel: int, dtype: Optional[torch.dtype]) -> torch.Tensor:
    fast = type(input) is torch.Tensor and dim is not None \
        and (dtype is None or dtype in _FLOATS)
    if fast and dtype is not None:
        input = input.to(dtype)
    if dim is None or not (fast and _float_input(input) and _dim_ok(input, dim)):
        return _ORIGINAL[name](input, dim, _stacklevel + 2, dtype)  # (the caller's line)
    d = dim % input.ndim
    if torch.compiler.is_compiling():
        return _softmax_op(input, d, log)
    if _elsewhere(input):
        return _ORIGINAL[name](input, dim, _stacklevel + 1, dtype)
    if input.requires_grad and torch.is_grad_enabled():
        return _EagerSoftmax.apply(input, d, log)
    return _softmax_forward(input, d, log)


def log_softmax(input: torch.Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
                dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """:func:`torch.nn.functional.log_softmax` (``dim=None``, PyTorch's legacy
    implicit choice, goes to PyTorch)."""
    return _softmax_public("log_softmax", True, input, dim, _stacklevel, dtype)


def softmax(input: torch.Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
            dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """:func:`torch.nn.functional.softmax` (``dim=None`` goes to PyTorch)."""
    return _softmax_public("softmax", False, input, dim, _stacklevel, dtype)


def logsumexp(input: torch.Tensor, dim: Union[int, Sequence[int]],
              keepdim: bool = False) -> torch.Tensor:
    """:func:`torch.logsumexp` over one dim or several; the gradient (the
    softmax) is written by the forward pass when the input needs one."""
    given: Any = dim
    if type(given) is int:
        dims = [given]
    elif type(given) in (tuple, list) and all(type(d) is int for d in given):
        dims = list(given)
    else:  # (tensors, NumPy integers, ...: as PyTorch takes them)
        return _ORIGINAL["logsumexp"](input, dim, keepdim)
    fast = type(keepdim) is bool and _float_input(input) and len(dims) > 0 \
        and all(_dim_ok(input, d) for d in dims) \
        and len({d % input.dim() for d in dims}) == len(dims)
    if not fast:
        return _ORIGINAL["logsumexp"](input, dim, keepdim)
    dims = [d % input.ndim for d in dims]
    return _fused("logsumexp", _logsumexp_forward, _lse_op, "rows", dims, input,
                  (dims, bool(keepdim)), (input, dim, keepdim))


# --- patch() --------------------------------------------------------------------

_PATCHES: Dict[str, Callable[..., Any]] = {
    "cross_entropy": cross_entropy, "nll_loss": nll_loss,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "binary_cross_entropy": binary_cross_entropy,
    "multilabel_soft_margin_loss": multilabel_soft_margin_loss, "kl_div": kl_div,
    "log_softmax": log_softmax, "softmax": softmax}


class patch:
    """Route ``torch.nn.functional``'s losses to xent, for scripts left unedited.

    ``xt.patch()`` replaces ``cross_entropy``, ``nll_loss``,
    ``binary_cross_entropy_with_logits``, ``binary_cross_entropy``,
    ``multilabel_soft_margin_loss``, ``kl_div``, ``log_softmax`` and
    ``softmax`` in ``torch.nn.functional`` (so ``nn.CrossEntropyLoss`` and the
    other modules that call them) until ``.undo()``; ``with xt.patch(): ...``
    undoes it on leaving the block. CPU tensors take xent's route, everything
    else PyTorch's, as with the functions of this module. A name imported
    before the call (``from torch.nn.functional import cross_entropy``) keeps
    PyTorch's function.
    """

    _active = 0  # patches not yet undone
    _saved: Dict[str, Callable[..., Any]] = {}  # what the first of them replaced

    def __init__(self) -> None:
        self._live = True
        if patch._active == 0:
            patch._saved = {name: getattr(_F, name) for name in _PATCHES}
            for name, fn in _PATCHES.items():
                setattr(_F, name, fn)
        patch._active += 1

    def undo(self) -> None:
        """End this patch; when no other is active, put back the functions
        that were there before the first. A second call does nothing."""
        if not self._live:
            return
        self._live = False
        patch._active -= 1
        if patch._active == 0:
            for name, fn in patch._saved.items():
                setattr(_F, name, fn)

    def __enter__(self) -> "patch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.undo()
