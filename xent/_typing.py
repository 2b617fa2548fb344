"""Type aliases of xent's public annotations, in one place.

The aliases are evaluated at import time, so they use ``typing.Union`` and
``typing.Optional`` (Python 3.9); the annotations that use them are not
(``from __future__ import annotations`` in every annotated module).

The ``*Options`` TypedDicts list each function's keyword options other than
the flags that change its result's type: the overloads spell out those flags
(``return_grad``, ``return_argmax``, ``return_loss``) and the positional
parameters, and take the rest as ``**options: Unpack[<Function>Options]``
(``Unpack`` imported for the type checker only); the implementation's own
signature stays the one the function runs with. Adding an option to a
function: its implementation's signature, and its key here.
"""

from typing import Any, Callable, Literal, Optional, Tuple, TypedDict, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ArrayLike",
    "Axes",
    "BinaryCrossEntropyOptions",
    "BinaryCrossEntropyWithLogitsOptions",
    "BinaryFocalGradHessOptions",
    "BinaryFocalLossOptions",
    "BinaryFocalLossProbsOptions",
    "ClassLossOptions",
    "CrossEntropyOptions",
    "F",
    "FloatArray",
    "FloatResult",
    "FloatScalar",
    "FocalHessian",
    "GradHess",
    "IntArray",
    "KLDivergenceOptions",
    "KLReduction",
    "LogisticGradHessOptions",
    "LogsumexpOptions",
    "LossArgmaxResult",
    "LossGradHess",
    "LossOptions",
    "LossResult",
    "MultilabelCrossEntropyOptions",
    "NDArray",
    "ObjectiveKind",
    "Reduction",
    "SoftmaxCrossEntropyOptions",
    "SoftmaxFocalGradHessOptions",
    "SoftmaxFocalLossOptions",
    "SoftmaxGradHessOptions",
    "SoftmaxHessian",
    "SoftmaxLossGradHess",
    "Threads",
]

#: A float array returned by xent: the input's floating dtype (float16,
#: float32 or float64), or float64 where documented.
FloatArray = NDArray[np.floating[Any]]
#: A NumPy floating scalar (``np.float64``, ``np.float32``, ...): the value
#: of a loss reduced by ``"mean"`` or ``"sum"`` (a 0-d result).
FloatScalar = np.floating[Any]
#: A value that is a scalar or an array depending on the input's shape
#: (``logsumexp``; the information functions' per-vector values: a NumPy
#: scalar for a single vector, an array for a batch) or on ``reduction``
#: (the losses: the overloads do not tell the reductions apart).
FloatResult = Union[FloatScalar, FloatArray]
#: A loss, or a loss and its gradient (``return_grad``).
LossResult = Union[FloatResult, Tuple[FloatResult, FloatArray]]
#: Per-sample int64 results (``return_argmax``).
IntArray = NDArray[np.int64]
#: softmax_cross_entropy's: the loss, then the gradient (``return_grad``),
#: then the argmax (``return_argmax``).
LossArgmaxResult = Union[LossResult, Tuple[FloatResult, IntArray],
                         Tuple[FloatResult, FloatArray, IntArray]]

#: The reductions of the losses ("mean" and "sum": a NumPy scalar, "none":
#: an array; the loss is typed ``FloatResult`` whatever the reduction).
Reduction = Literal["mean", "sum", "none"]
#: kl_divergence's reductions: PyTorch's ``"batchmean"`` and the terms
#: themselves (``"elementwise"``) too.
KLReduction = Literal["none", "sum", "mean", "batchmean", "elementwise"]

#: xent.objectives: the hessian options of the softmax and logistic
#: objectives (a float: that factor times the diagonal), of the focal ones,
#: and the losses the boosting adapters take.
SoftmaxHessian = Union[Literal["diagonal", "xgboost", "lightgbm"], float]
FocalHessian = Literal["exact", "clip", "abs"]
ObjectiveKind = Literal["softmax", "softmax_focal", "logistic", "focal"]
#: The boosting objectives' results: (grad, hess), and with ``return_loss``
#: the per-sample losses first (float64 for the softmax objectives; the
#: logits' compute dtype, element-wise, for the binary ones).
GradHess = Tuple[FloatArray, FloatArray]
SoftmaxLossGradHess = Tuple[NDArray[np.float64], FloatArray, FloatArray]
LossGradHess = Tuple[FloatArray, FloatArray, FloatArray]

#: The class axis (or axes) of the log-sum-exp family: an int, a tuple of
#: ints, or None (all axes).
Axes = Optional[Union[int, Tuple[int, ...]]]
#: An OpenMP thread count: None (the default: OMP_NUM_THREADS and
#: threadpoolctl limits), a count, or a negative count back from the cores.
Threads = Optional[int]

#: A function type, kept by signature-preserving decorators.
F = TypeVar("F", bound=Callable[..., Any])


# -- the keyword options of the overloaded functions (total=False: each one
# may be left out; the defaults are the implementations')

class LossOptions(TypedDict, total=False):
    """The losses' shared keyword options."""

    reduction: Reduction
    grad_loss: Optional[ArrayLike]
    grad_out: Optional[FloatArray]
    n_threads: Threads


class ClassLossOptions(LossOptions, total=False):
    """The class losses' (``nll_loss``'s) keyword options."""

    axis: int
    weight: Optional[ArrayLike]
    sample_weight: Optional[ArrayLike]
    where: Optional[ArrayLike]
    ignore_index: int
    label_smoothing: float


class SoftmaxCrossEntropyOptions(ClassLossOptions, total=False):
    """``softmax_cross_entropy``'s keyword options but ``return_grad`` and
    ``return_argmax``."""

    z_loss: float
    softcap: Optional[float]


class SoftmaxFocalLossOptions(LossOptions, total=False):
    """``softmax_focal_loss``'s keyword options but ``return_grad``."""

    gamma: float
    alpha: Optional[ArrayLike]
    axis: int
    ignore_index: int
    sample_weight: Optional[ArrayLike]
    where: Optional[ArrayLike]
    label_smoothing: float


class _ElementwiseLossOptions(LossOptions, total=False):
    weight: Optional[ArrayLike]
    where: Optional[ArrayLike]
    label_smoothing: float


class BinaryFocalLossOptions(_ElementwiseLossOptions, total=False):
    """``binary_focal_loss_with_logits``'s keyword options but ``return_grad``."""

    gamma: float
    alpha: Optional[float]


class BinaryFocalLossProbsOptions(BinaryFocalLossOptions, total=False):
    """``binary_focal_loss``'s keyword options but ``return_grad``."""

    eps: Optional[float]


class BinaryCrossEntropyWithLogitsOptions(_ElementwiseLossOptions, total=False):
    """``binary_cross_entropy_with_logits``'s keyword options but ``return_grad``."""

    pos_weight: Optional[ArrayLike]


class BinaryCrossEntropyOptions(BinaryCrossEntropyWithLogitsOptions, total=False):
    """``binary_cross_entropy``'s keyword options but ``return_grad``."""

    eps: Optional[float]


class MultilabelCrossEntropyOptions(BinaryCrossEntropyWithLogitsOptions, total=False):
    """``multilabel_cross_entropy``'s keyword options but ``return_grad``."""

    class_reduction: Literal["sum", "mean"]
    sample_weight: Optional[ArrayLike]


class _InformationOptions(TypedDict, total=False):
    eps: Optional[float]
    sample_weight: Optional[ArrayLike]
    where: Optional[ArrayLike]
    grad_loss: Optional[ArrayLike]
    n_threads: Threads


class CrossEntropyOptions(_InformationOptions, total=False):
    """``cross_entropy``'s keyword options but ``return_grad``."""

    axis: int
    label_smoothing: float
    renormalize: bool
    gamma: float
    alpha: Optional[ArrayLike]
    reduction: Reduction


class KLDivergenceOptions(_InformationOptions, total=False):
    """``kl_divergence``'s keyword-only options but ``return_grad``."""

    log_input: bool
    log_target: bool
    reduction: KLReduction


DistillReduction = Literal["batchmean", "mean", "sum", "none"]


class _DistillOptions(TypedDict, total=False):
    temperature: float
    scale_by_temperature_squared: bool
    axis: int
    sample_weight: Optional[ArrayLike]
    where: Optional[ArrayLike]
    reduction: DistillReduction
    grad_loss: Optional[ArrayLike]
    grad_out: Optional[FloatArray]
    n_threads: Threads


class KLWithLogitsOptions(_DistillOptions, total=False):
    """``kl_divergence_with_logits``' keyword-only options but ``return_grad``."""

    reverse: bool


class JSWithLogitsOptions(_DistillOptions, total=False):
    """``jensen_shannon_with_logits``' keyword-only options but ``return_grad``."""

    beta: float


class LogsumexpOptions(TypedDict, total=False):
    """``logsumexp``'s keyword-only options but ``return_grad`` and ``return_sign``."""

    b: Optional[ArrayLike]
    where: Optional[ArrayLike]
    keepdims: bool
    out: Optional[FloatArray]
    n_threads: Threads


class _GradHessOptions(TypedDict, total=False):
    sample_weight: Optional[ArrayLike]
    min_hessian: float
    grad_out: Optional[FloatArray]
    hess_out: Optional[FloatArray]
    n_threads: Threads


class LogisticGradHessOptions(_GradHessOptions, total=False):
    """``objectives.logistic_grad_hess``'s keyword options but ``return_loss``."""

    hessian: SoftmaxHessian


class SoftmaxGradHessOptions(LogisticGradHessOptions, total=False):
    """``objectives.softmax_grad_hess``'s keyword options but ``return_loss``."""

    label_smoothing: float


class _FocalGradHessOptions(_GradHessOptions, total=False):
    gamma: float
    hessian: FocalHessian


class SoftmaxFocalGradHessOptions(_FocalGradHessOptions, total=False):
    """``objectives.softmax_focal_grad_hess``'s keyword options but ``return_loss``."""

    alpha: Optional[ArrayLike]


class BinaryFocalGradHessOptions(_FocalGradHessOptions, total=False):
    """``objectives.binary_focal_grad_hess``'s keyword options but ``return_loss``."""

    alpha: Optional[float]
