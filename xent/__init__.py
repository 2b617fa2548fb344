"""xent: fast, exact cross-entropy losses and the log-sum-exp family for NumPy.

The hot loops are typed Cython compiled to C with OpenMP (``xent._kernels``);
this package validates input, dispatches on dtype and calls them.
"""

__version__ = "0.1.0"

from ._binary import binary_cross_entropy, binary_cross_entropy_with_logits, multilabel_cross_entropy
from ._config import show_config
from ._cross_entropy import nll_loss, softmax_cross_entropy
from ._focal import binary_focal_loss, binary_focal_loss_with_logits, softmax_focal_loss
from ._information import cross_entropy, entropy, kl_divergence
from ._distill import jensen_shannon_with_logits, kl_divergence_with_logits
from . import metrics
from ._partials import (
    PARTIAL_STATS, cross_entropy_denominator, log_softmax_from_partials, logsumexp_from_partials,
    merge_partials, nll_loss_block_grad, nll_loss_from_partials, softmax_cross_entropy_block_grad,
    softmax_cross_entropy_from_partials, softmax_from_partials, softmax_partials,
)
from ._softmax import log_softmax, log_softmax_backward, logsumexp, softmax, softmax_backward

__all__ = [
    "__version__",
    "cross_entropy_denominator",
    "log_softmax_from_partials",
    "logsumexp_from_partials",
    "merge_partials",
    "nll_loss_block_grad",
    "nll_loss_from_partials",
    "softmax_cross_entropy_block_grad",
    "softmax_cross_entropy_from_partials",
    "softmax_from_partials",
    "softmax_partials",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_focal_loss",
    "binary_focal_loss_with_logits",
    "cross_entropy",
    "entropy",
    "jensen_shannon_with_logits",
    "kl_divergence",
    "kl_divergence_with_logits",
    "log_softmax",
    "log_softmax_backward",
    "logsumexp",
    "metrics",
    "multilabel_cross_entropy",
    "nll_loss",
    "show_config",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_focal_loss",
]
