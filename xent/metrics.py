"""Metrics with scikit-learn's interface, computed on xent's compiled kernels.

``log_loss`` is a drop-in for :func:`sklearn.metrics.log_loss` (scikit-learn
1.9) that does not import scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np

from ._bfloat16 import bfloat16_io
from ._information import _cross_entropy
from ._validate import boolean, is_dask, label_array, probability_array, sample_weights
from ._typing import ArrayLike

__all__ = ["log_loss"]


def _classes(y, labels):
    """The sorted class set, as scikit-learn's LabelBinarizer finds it, with its
    warnings and errors; returns (classes, y's column indices)."""
    if labels is not None:
        lab = label_array(labels, "labels")
        if lab.ndim == 2 and lab.shape[0] == 1:
            lab = lab[0]  # (one row of labels: scikit-learn takes it as its labels)
        if lab.ndim != 1:
            raise ValueError(f"labels: expected a 1-D array of labels, got shape {lab.shape} "
                             f"(Multioutput target data is not supported with label "
                             f"binarization)")
        classes = np.unique(lab)
        if classes.size != lab.size:
            raise ValueError(f"labels: expected distinct labels, got {labels}")
        if np.any(classes != lab):
            warnings.warn(
                f"Labels passed were {labels}. But this function "
                "assumes labels are ordered lexicographically. "
                f"Pass the ordered labels={classes.tolist()} and ensure that "
                "the columns of y_proba correspond to this ordering.",
                UserWarning,
                stacklevel=3,
            )
        try:
            known = np.isin(y, classes)
        except TypeError:  # labels of incomparable kinds
            known = np.zeros(y.shape, dtype=bool)
        if not known.all():
            undeclared = set(y[~known].tolist()) - set(lab.tolist())
            raise ValueError(
                f"y_true contains values {undeclared} not belonging "
                f"to the passed labels {labels}."
            )
    else:
        classes = np.unique(y)
    if classes.shape[0] < 2:
        if labels is None:
            raise ValueError(
                "y_true contains only one label ({0}). Please "
                "provide the list of all expected class labels explicitly through the "
                "labels argument.".format(classes[0])
            )
        raise ValueError(
            "The labels array needs to contain at least two "
            "labels, got {0}.".format(classes)
        )
    return classes, np.searchsorted(classes, y).astype(np.int64)


@bfloat16_io
def log_loss(y_true: ArrayLike, y_proba: Optional[ArrayLike] = None, *, normalize: bool = True,
             sample_weight: Optional[ArrayLike] = None, labels: Optional[ArrayLike] = None,
             y_pred: ArrayLike = "deprecated") -> float:
    """Log loss (logistic loss, cross-entropy) of predicted probabilities.

    A drop-in for :func:`sklearn.metrics.log_loss` (scikit-learn 1.9: the same
    arguments, clipping, warnings and errors) that needs no scikit-learn: for
    sample ``i`` with true class ``y_i``, ``loss_i = -log(clip(p_i[y_i]))``,
    computed by :func:`xent.cross_entropy`'s compiled kernel for integer
    labels; the result is their mean (or sum), weighted by ``sample_weight``.

    Parameters
    ----------
    y_true : array_like, shape (n_samples,) or (n_samples, n_classes)
        True labels: any sortable labels (numbers or strings, not a mix), as
        with :func:`numpy.unique`; the classes are their sorted unique values
        unless ``labels`` is given. A 2-D array of 0/1 is a label-indicator
        matrix (one column per class; rows with several 1s add their terms).
    y_proba : array_like of float, shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, one column per class in the sorted order of
        the classes (as ``predict_proba`` returns them). A 1-D array (or one
        column) is the probability of the greater of two classes. Integer and
        bool input is converted to float64; float16/32/64 are kept.
    normalize : bool, default True
        Return the (weighted) mean of the per-sample losses; else their
        (weighted) sum.
    sample_weight : array_like of shape (n_samples,), optional
        Per-sample weights.
    labels : array_like, optional
        The class labels, when ``y_true`` does not hold them all (needed when
        it holds a single class). They are assumed sorted, as the columns of
        ``y_proba`` are: unsorted labels give a UserWarning. One row of labels
        (shape ``(1, n_classes)``) is taken as they are, as by scikit-learn.
    y_pred : array_like, deprecated
        scikit-learn 1.9's old name of ``y_proba``: accepted with its
        FutureWarning; giving both is a ValueError.

    Returns
    -------
    loss : float

    Raises
    ------
    ValueError
        As scikit-learn: ``y_proba`` with NaN, infinity, or values outside
        ``[0, 1]``; lengths that differ; a single class; ``y_true`` holding
        labels not in ``labels``; a class count that differs from ``y_proba``'s
        columns; all sample weights 0; both ``y_proba`` and ``y_pred``.
    ZeroDivisionError
        As scikit-learn: with ``normalize``, sample weights (not all 0) that
        sum to 0.

    Warns
    -----
    UserWarning
        When a row of ``y_proba`` does not sum to 1 within a relative tolerance
        of ``sqrt(eps)`` (and ``atol=1e-8``, :func:`numpy.isclose`): nothing is
        renormalised. When ``labels`` is not sorted.

    Notes
    -----
    Probabilities are clipped to ``[eps, 1 - eps]`` with
    ``eps = np.finfo(y_proba.dtype).eps``, as in current scikit-learn, so a
    zero probability of the true class gives ``-log(eps)`` (about 36.04 in
    float64), not infinity.

    Unlike :func:`xent.cross_entropy`, this function reads every probability:
    scikit-learn's contract (the range errors and the row-sum warning) cannot
    be met otherwise, so the O(N x C) checks here are unavoidable. The
    losses are computed in float64 (scikit-learn computes them in the input's
    dtype), so float32 and float16 results agree with scikit-learn's to
    their precision, not bit for bit. Messages name ``y_proba`` where
    scikit-learn's say ``y_prob``.

    Examples
    --------
    >>> from xent.metrics import log_loss
    >>> round(log_loss(["spam", "ham", "ham", "spam"],
    ...                [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]), 5)
    0.21616
    >>> round(log_loss([2, 0], [0.3, 0.9]), 5)        # 1-D: P(class 2)
    1.75328
    >>> round(log_loss([1, 1], [[0.2, 0.8], [0.4, 0.6]], labels=[0, 1]), 5)
    0.36698

    Dask arrays (``y_true`` or ``y_proba``) are taken by
    :func:`xent.dask.log_loss`: a 0-d dask array, computed lazily.
    """
    if not (isinstance(y_pred, str) and y_pred == "deprecated"):
        if y_proba is not None:
            raise ValueError("Cannot use both `y_pred` and `y_proba`. `y_pred` is deprecated, "
                             "use `y_proba` instead.")
        warnings.warn("`y_pred` was renamed to `y_proba` in version 1.9 and will be removed "
                      "in 1.11. Use `y_proba` instead.", FutureWarning, stacklevel=2)
        y_proba = y_pred
    if y_proba is None:
        raise ValueError("y_proba: expected the predicted probabilities, got None")
    normalize = boolean(normalize, "normalize")
    if is_dask(y_true) or is_dask(y_proba):
        import xent.dask as xd
        return xd.log_loss(y_true, y_proba, normalize=normalize, sample_weight=sample_weight,
                           labels=labels)
    proba = probability_array(y_proba, "y_proba")
    n = proba.shape[0]

    yt = np.asarray(y_true)
    indicator = yt.ndim == 2 and yt.shape[1] > 1
    if yt.ndim == 2 and yt.shape[1] == 1:
        yt = yt[:, 0]
        y_true = yt
    if yt.ndim not in (1, 2):
        raise ValueError(f"y_true: expected a 1-D array of labels or a 2-D label-indicator "
                         f"matrix, got shape {yt.shape}")
    if yt.shape[0] != n:
        raise ValueError(
            f"y_proba: expected one row per sample of y_true ({yt.shape[0]}), got {n} "
            f"(Found input variables with inconsistent numbers of samples: "
            f"{[int(n), int(yt.shape[0])]})"
        )
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.ndim != 1:
            raise ValueError(f"sample_weight: expected a 1-D array of {n} weights, "
                             f"got shape {sw.shape}")
        if sw.shape[0] != n:
            raise ValueError(
                f"sample_weight: expected one weight per sample ({n}), got {sw.shape[0]} "
                f"(Found input variables with inconsistent numbers of samples: "
                f"{[int(n), int(n), int(sw.shape[0])]})"
            )
        sw = sample_weights(sw, (n,))
        if not np.any(sw != 0):
            raise ValueError("sample_weight: Sample weights must contain at least one "
                             "non-zero number.")

    if indicator:
        if labels is not None:
            raise ValueError("labels: not supported with a label-indicator y_true (2-D), "
                             "whose columns are the classes")
        if yt.dtype.kind not in "biuf" or not np.isin(yt, (0, 1)).all():
            raise ValueError("y_true: a 2-D y_true is a label-indicator matrix and must "
                             "hold only 0 and 1")
        classes = np.arange(yt.shape[1])
        target = yt
    else:
        y = label_array(y_true, "y_true")
        classes, target = _classes(y, labels)

    if proba.ndim == 1:
        proba = proba[:, np.newaxis]
    if proba.shape[1] == 1:
        proba = np.concatenate([1 - proba, proba], axis=1)

    eps = float(np.finfo(proba.dtype).eps)
    sums = np.sum(proba, axis=1)
    if not np.all(np.isclose(sums, np.asarray(1, dtype=sums.dtype), rtol=math.sqrt(eps))):
        warnings.warn("The y_proba values do not sum to one. Make sure to pass probabilities.",
                      UserWarning, stacklevel=2)

    if classes.shape[0] != proba.shape[1]:
        if labels is None:
            raise ValueError(
                "y_true and y_proba contain different number of "
                "classes: {0} vs {1}. Please provide the true "
                "labels explicitly through the labels argument. "
                "Classes found in "
                "y_true: {2}".format(classes.shape[0], proba.shape[1], classes)
            )
        raise ValueError(
            "The number of classes in labels is different "
            "from that in y_proba. Classes found in "
            "labels: {0}".format(classes)
        )

    if indicator:
        target = target.astype(proba.dtype)
    losses = _cross_entropy(target, proba, -1, eps, "none", False, None, upper=1.0 - eps,
                            raw=True)
    if sw is None:
        return float(np.mean(losses) if normalize else np.sum(losses))
    if not normalize:
        return float(np.dot(losses, sw))
    total_weight = float(np.sum(sw))
    if total_weight == 0:  # (scikit-learn's error type)
        raise ZeroDivisionError("sample_weight: Weights sum to zero, can't be normalized")
    return float(np.dot(losses, sw) / total_weight)
