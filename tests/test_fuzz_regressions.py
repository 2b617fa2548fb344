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


# out=/grad_out= overlapping an input is an error (but for the in-place form,
# the very same view of the input). For a byte-swapped input, float_array
# works on a native copy, and the overlap was checked against that copy, not
# against the caller's memory: the output was written over the input.

def _byte_swapped(a):
    return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))


def _native_view_of(a):
    """A native-order float view of the memory of the byte-swapped ``a``."""
    return a.view(a.dtype.newbyteorder("="))


SWAPPED_OUT_CALLS = [
    ("softmax", lambda x, o: xent.softmax(x, out=o)),
    ("log_softmax", lambda x, o: xent.log_softmax(x, out=o)),
    ("logsumexp", lambda x, o: xent.logsumexp(x, axis=None, keepdims=True, out=o[:1, :1])),
    ("softmax_backward probs", lambda x, o: xent.softmax_backward(x, P, out=o)),
    ("softmax_backward grad_probs", lambda x, o: xent.softmax_backward(P, x, out=o)),
    ("log_softmax_backward", lambda x, o: xent.log_softmax_backward(np.log(P), x, out=o)),
    ("softmax_cross_entropy", lambda x, o: xent.softmax_cross_entropy(
        x, Y, return_grad=True, grad_out=o)),
    ("nll_loss", lambda x, o: xent.nll_loss(x, Y, return_grad=True, grad_out=o)),
    ("softmax_focal_loss", lambda x, o: xent.softmax_focal_loss(x, Y, return_grad=True, grad_out=o)),
    ("binary_cross_entropy_with_logits", lambda x, o: xent.binary_cross_entropy_with_logits(
        x, T, return_grad=True, grad_out=o)),
    ("binary_cross_entropy", lambda x, o: xent.binary_cross_entropy(
        x, T, return_grad=True, grad_out=o)),
    ("multilabel_cross_entropy", lambda x, o: xent.multilabel_cross_entropy(
        x, T, return_grad=True, grad_out=o)),
    ("binary_focal_loss_with_logits", lambda x, o: xent.binary_focal_loss_with_logits(
        x, T, return_grad=True, grad_out=o)),
]


@pytest.mark.parametrize("name, call", SWAPPED_OUT_CALLS, ids=[n for n, _ in SWAPPED_OUT_CALLS])
def test_out_overlapping_a_byte_swapped_input_is_an_error(name, call):
    x = _byte_swapped(P.copy())  # values in [0, 1]: valid for every call above
    before = x.tobytes()
    with pytest.raises(ValueError, match="overlap"):
        call(x, _native_view_of(x))
    assert x.tobytes() == before


def test_multilabel_grad_out_overlapping_sample_weight_is_an_error():
    # was: accepted; the kernel wrote the gradient over the sample weights,
    # then read them back for the loss (a wrong loss, and the weights lost)
    x, t = np.array([[0.5], [-1.0], [2.0]]), np.array([[1.0], [0.0], [1.0]])
    sw = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="sample_weight"):
        xent.multilabel_cross_entropy(x, t, sample_weight=sw, return_grad=True,
                                      grad_out=sw.reshape(3, 1))
    np.testing.assert_array_equal(sw, [1.0, 2.0, 3.0])


def test_multilabel_grad_out_overlapping_grad_loss_is_an_error():
    x, t = np.array([[0.5], [-1.0], [2.0]]), np.array([[1.0], [0.0], [1.0]])
    gl = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="grad_loss"):
        xent.multilabel_cross_entropy(x, t, reduction="none", grad_loss=gl, return_grad=True,
                                      grad_out=gl.reshape(3, 1))
    np.testing.assert_array_equal(gl, [1.0, 2.0, 3.0])


def test_softmax_focal_grad_out_overlapping_alpha_is_an_error():
    x, y = np.array([[0.5, -1.0, 2.0]]), np.array([2])
    alpha = np.array([0.25, 0.5, 0.75])
    with pytest.raises(ValueError, match="alpha"):
        xent.softmax_focal_loss(x, y, alpha=alpha, return_grad=True, grad_out=alpha.reshape(1, 3))
    np.testing.assert_array_equal(alpha, [0.25, 0.5, 0.75])
