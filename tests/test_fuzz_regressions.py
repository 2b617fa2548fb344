"""Regression tests for what fuzz/fuzz_api.py found: each is the smallest
input of a failure, and the contract it broke (a bad argument raises
TypeError or ValueError and writes nothing; valid input gives no NaN)."""

import numpy as np
import pytest

import xent

X = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
Y = np.array([2, 0])
T = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
P = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])

# A Python int too large for a float (float() raises OverflowError on it).
HUGE_INTS = [10**400, -(10**400), 2**1024]

SCALAR_ARGS = [
    ("softmax_cross_entropy label_smoothing", lambda v: xent.softmax_cross_entropy(X, Y, label_smoothing=v)),
    ("softmax_cross_entropy z_loss", lambda v: xent.softmax_cross_entropy(X, Y, z_loss=v)),
    ("nll_loss label_smoothing", lambda v: xent.nll_loss(X, Y, label_smoothing=v)),
    ("bce_with_logits label_smoothing", lambda v: xent.binary_cross_entropy_with_logits(X, T, label_smoothing=v)),
    ("binary_cross_entropy eps", lambda v: xent.binary_cross_entropy(P, T, eps=v)),
    ("multilabel label_smoothing", lambda v: xent.multilabel_cross_entropy(X, T, label_smoothing=v)),
    ("binary_focal gamma", lambda v: xent.binary_focal_loss_with_logits(X, T, gamma=v)),
    ("binary_focal alpha", lambda v: xent.binary_focal_loss_with_logits(X, T, alpha=v)),
    ("softmax_focal gamma", lambda v: xent.softmax_focal_loss(X, Y, gamma=v)),
    ("cross_entropy eps", lambda v: xent.cross_entropy(P, P, eps=v)),
    ("kl_divergence eps", lambda v: xent.kl_divergence(P, P, eps=v)),
]


@pytest.mark.parametrize("value", HUGE_INTS, ids=["10**400", "-10**400", "2**1024"])
@pytest.mark.parametrize("name, call", SCALAR_ARGS, ids=[n for n, _ in SCALAR_ARGS])
def test_huge_python_int_scalar_is_a_value_error(name, call, value):
    # was: OverflowError (int too large to convert to float)
    with pytest.raises(ValueError, match=name.split()[-1]):
        call(value)
