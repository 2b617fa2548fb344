"""A user's script, type-checked with ``mypy --strict`` (tests/test_typing.py,
CI) and run as plain Python: it must use the public API as users do, and
mypy must accept it without casts or ignores."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
from numpy.typing import NDArray

import xent
import xent.metrics
import xent.objectives
from xent.metrics import log_loss
from xent.objectives import logistic_grad_hess, softmax_grad_hess


def sgd_step(weights: NDArray[np.float64], features: NDArray[np.float64],
             labels: NDArray[np.int64], lr: float = 0.1) -> Tuple[float, NDArray[np.float64]]:
    """One step of softmax regression: the loss and the updated weights."""
    logits = features @ weights
    loss, grad = xent.softmax_cross_entropy(logits, labels, return_grad=True)
    new_weights: NDArray[np.float64] = weights - lr * (features.T @ grad)
    return float(loss), new_weights


def main() -> Dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 4, size=8)

    # losses: reduced (a NumPy scalar), per sample ("none": an array), with gradients
    loss = xent.softmax_cross_entropy(x, y)
    per_sample = xent.softmax_cross_entropy(x, y, reduction="none")
    assert per_sample.shape == (8,)
    loss_sum, grad = xent.softmax_cross_entropy(x, y, reduction="sum", return_grad=True,
                                                label_smoothing=0.1, n_threads=1)
    assert grad.shape == x.shape and float(loss_sum) > 0
    loss_m, grad_m, argmax = xent.softmax_cross_entropy(x, y, return_grad=True,
                                                        return_argmax=True)
    accuracy = float((argmax == y).mean())
    _, predicted = xent.softmax_cross_entropy(x, y, reduction="none", return_argmax=True)
    assert predicted.dtype == np.int64 and grad_m.shape == x.shape

    nll = xent.nll_loss(xent.log_softmax(x), y, weight=np.ones(4))
    bce, bce_grad = xent.binary_cross_entropy_with_logits(x, x > 0, return_grad=True)
    bce_p = xent.binary_cross_entropy(xent.softmax(x), np.zeros_like(x), eps=1e-7)
    multi = xent.multilabel_cross_entropy(x, x > 0, class_reduction="mean", reduction="none")
    focal = xent.binary_focal_loss_with_logits(x, x > 0, gamma=2.0, alpha=0.25)
    sfocal, sfocal_grad = xent.softmax_focal_loss(x, y, gamma=1.5, return_grad=True,
                                                  label_smoothing=0.1)
    pfocal, pfocal_grad = xent.binary_focal_loss(xent.softmax(x), x > 0, gamma=2.0, eps=1e-7,
                                                 return_grad=True)
    cfocal = xent.cross_entropy(y, xent.softmax(x), gamma=2.0, alpha=0.25, renormalize=True)
    assert multi.shape == (8,) and bce_grad.shape == sfocal_grad.shape == x.shape

    # the log-sum-exp family
    lse = xent.logsumexp(x)
    lse_row, probs = xent.logsumexp(x[0], return_grad=True)
    lse_b, sign = xent.logsumexp(x, b=np.where(x > 0, 1.0, -1.0), return_sign=True)
    lse_m, sign_m, grad_m = xent.logsumexp(x, where=x > -1.0, return_sign=True, return_grad=True)
    masked = xent.softmax(x, where=x > -1.0)
    assert np.shape(lse_b) == np.shape(sign) == np.shape(lse_m) == np.shape(sign_m) == (8,)
    assert grad_m.shape == masked.shape == x.shape
    p = xent.softmax(x, axis=-1)
    lp = xent.log_softmax(x)
    dx = xent.softmax_backward(p, np.ones_like(p))
    dlx = xent.log_softmax_backward(lp, np.ones_like(lp))
    assert probs.shape == (4,) and p.shape == dx.shape == dlx.shape == x.shape
    assert np.shape(lse) == (8,)

    # information theory (reduction "none" by default: a value per vector)
    h = xent.entropy(p)
    h_mean = xent.entropy(p, reduction="mean")
    ce, ce_grad = xent.cross_entropy(p, p, return_grad=True)
    kl = xent.kl_divergence(p, p, reduction="batchmean")
    assert np.shape(h) == np.shape(ce) == (8,) and ce_grad.shape == p.shape

    # scikit-learn's log_loss
    ll = log_loss(["spam", "ham", "ham", "spam"],
                  [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    ll2: float = xent.metrics.log_loss(y, p, normalize=False)

    # boosting objectives
    g, hess = softmax_grad_hess(x, y, hessian="xgboost")
    per_sample_loss, g2, h2 = softmax_grad_hess(x, y, return_loss=True)
    lg, lh = logistic_grad_hess(x[:, 0], (y > 1).astype(np.float64), min_hessian=1e-6)
    fg, fh = xent.objectives.binary_focal_grad_hess(x, x > 0, hessian="clip", min_hessian=1e-6)
    sg, sh = xent.objectives.softmax_focal_grad_hess(x, y, gamma=2.0, hessian="abs",
                                                     min_hessian=1e-6)
    assert g.shape == hess.shape == g2.shape == h2.shape == sg.shape == sh.shape == x.shape
    assert lg.shape == lh.shape == (8,) and fg.shape == fh.shape == x.shape
    xgb_obj = xent.objectives.xgboost("softmax", hessian="xgboost")
    xg, xh = xgb_obj(y, x.astype(np.float32))
    lgb_obj = xent.objectives.lightgbm("logistic")
    lgg, lgh = lgb_obj((y > 1).astype(np.float64), x[:, 0])
    value = xgb_obj.metric_value(y, x)  # the scikit-learn form: (y_true, margins)
    assert xg.dtype == np.float64 and lgg.dtype == lgh.dtype == np.float32 and xh.shape == x.shape

    # training
    weights = np.zeros((4, 4))
    losses: List[float] = []
    for _ in range(3):
        step_loss, weights = sgd_step(weights, x, y)
        losses.append(step_loss)
    assert losses[-1] < losses[0]

    config = xent.show_config("dicts")
    return {
        "loss": float(loss), "loss_m": float(loss_m), "accuracy": accuracy, "nll": float(nll),
        "bce": float(bce), "bce_p": float(bce_p), "focal": float(focal),
        "softmax_focal": float(sfocal), "lse_row": float(lse_row), "entropy": float(h_mean),
        "kl": float(kl), "log_loss": ll, "log_loss_sum": ll2, "metric": value,
        "per_sample_loss": per_sample_loss.tolist(), "version": config["version"],
    }


if __name__ == "__main__":
    print(main())
