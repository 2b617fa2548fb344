"""Type aliases of xent's public annotations, in one place.

The aliases are evaluated at import time, so they use ``typing.Union`` and
``typing.Optional`` (Python 3.9); the annotations that use them are not
(``from __future__ import annotations`` in every annotated module).
"""

from typing import Any, Callable, Literal, Optional, Tuple, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ArrayLike",
    "Axes",
    "F",
    "FloatArray",
    "FloatResult",
    "FloatScalar",
    "FocalHessian",
    "GradHess",
    "IntArray",
    "KLReduction",
    "LossArgmaxResult",
    "LossGradHess",
    "LossResult",
    "NDArray",
    "ObjectiveKind",
    "Reduced",
    "Reduction",
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
#: scalar for a single vector, an array for a batch).
FloatResult = Union[FloatScalar, FloatArray]
#: A loss, or a loss and its gradient (``return_grad``).
LossResult = Union[FloatResult, Tuple[FloatResult, FloatArray]]
#: Per-sample int64 results (``return_argmax``).
IntArray = NDArray[np.int64]
#: softmax_cross_entropy's: the loss, then the gradient (``return_grad``),
#: then the argmax (``return_argmax``).
LossArgmaxResult = Union[LossResult, Tuple[FloatResult, IntArray],
                         Tuple[FloatResult, FloatArray, IntArray]]

#: The reductions of the losses.
Reduction = Literal["mean", "sum", "none"]
#: The reductions that return a scalar.
Reduced = Literal["mean", "sum"]
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
