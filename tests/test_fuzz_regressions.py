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


# reduction="mean" divides by a weighted denominator (sum of sample_weight *
# weight[target], or of sample_weight). With subnormal weights 1/denominator
# overflowed to inf: NaN or inf loss and gradient, where the mean of the
# losses is finite (and does not change when every weight is scaled alike).

TINY = 5e-324  # the smallest subnormal float64


def _assert_same(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-14, atol=0)


def test_nll_loss_mean_with_a_subnormal_class_weight():
    # the fuzzer's input: one class, weight 5e-324, label smoothing, in place
    x = np.array([[-8.0], [-5.0], [-7.125], [4.4375]])
    y = np.zeros(4, dtype=np.uint8)
    want = xent.nll_loss(x, y, label_smoothing=0.5, grad_loss=-8.0, return_grad=True)
    got = xent.nll_loss(x.copy(), y, weight=np.array([TINY]), label_smoothing=0.5,
                        grad_loss=-8.0, return_grad=True)
    _assert_same(got, want)


@pytest.mark.parametrize("loss", [xent.softmax_cross_entropy, xent.nll_loss])
@pytest.mark.parametrize("which", ["weight", "sample_weight", "both"])
def test_class_losses_mean_with_subnormal_weights(loss, which):
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    y = np.array([2, 0, 1])
    if which == "both":  # each normal, their products subnormal (but not 0)
        kw = {"weight": np.full(3, 1e-200), "sample_weight": np.full(3, 1e-120)}
    elif which == "weight":
        kw = {"weight": np.full(3, TINY)}
    else:
        kw = {"sample_weight": np.full(3, 2 * TINY)}
    want = loss(x, y, return_grad=True)
    got = loss(x, y, return_grad=True, **kw)
    assert np.isfinite(got[0]) and np.isfinite(got[1]).all()
    _assert_same(got, want)


TARGETS = [np.array([2, 1]), np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])]  # labels, probabilities


@pytest.mark.parametrize("target", TARGETS, ids=["labels", "probs"])
def test_softmax_cross_entropy_mean_with_subnormal_sample_weights_and_z_loss(target):
    x = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, 0.0]])
    want = xent.softmax_cross_entropy(x, target, z_loss=0.1, return_grad=True)
    got = xent.softmax_cross_entropy(x, target, z_loss=0.1, sample_weight=np.full(2, TINY),
                                     return_grad=True)
    _assert_same(got, want)


def test_softmax_cross_entropy_mean_with_subnormal_class_weights_and_z_loss():
    # with labels the denominator is the sum of the targets' class weights,
    # which the z_loss term does not have: the mean is about 1e322 here, so
    # +inf; its gradient is infinite, never NaN
    x = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, 0.0]])
    loss, grad = xent.softmax_cross_entropy(x, TARGETS[0], z_loss=0.1, weight=np.full(3, TINY),
                                            return_grad=True)
    assert loss == np.inf and not np.isnan(grad).any()


def test_multilabel_mean_with_subnormal_sample_weights():
    x = np.array([[0.5, -1.0], [2.0, 0.0], [1.0, -3.0]])
    t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    want = xent.multilabel_cross_entropy(x, t, return_grad=True)
    got = xent.multilabel_cross_entropy(x, t, sample_weight=np.full(3, 3 * TINY), return_grad=True)
    _assert_same(got, want)


@pytest.mark.parametrize("loss", [xent.softmax_cross_entropy, xent.nll_loss])
def test_class_losses_mean_with_the_targets_class_weight_subnormal_and_another_large(loss):
    # every target in class 1, of weight 5e-324; class 0 weighs 2 but has no
    # target mass: the mean is that of the unweighted losses
    x = np.array([[0.5, -1.0], [0.0, 0.0], [1.0, 2.0]])
    y = np.array([1, 1, 1])
    got = loss(x, y, weight=np.array([2.0, TINY]), return_grad=True)
    _assert_same(got, loss(x, y, return_grad=True))


def test_softmax_cross_entropy_mean_subnormal_class_weight_z_loss_and_zero_lse():
    # one class and a zero logit: logsumexp is 0, so the z_loss term is 0
    # (z_loss is scaled up with the class weights: never inf * 0)
    x, y = np.zeros((2, 1)), np.array([0, 0])
    loss, grad = xent.softmax_cross_entropy(x, y, z_loss=0.5, weight=np.array([TINY]),
                                            return_grad=True)
    assert loss == 0 and not grad.any()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 10, 17])
@pytest.mark.parametrize("skip", ["sample_weight", "ignore_index"])
def test_a_skipped_row_with_a_nan_logit_has_a_zero_gradient(isa, dtype, c, skip):
    """A row that counts for nothing (sample weight 0, or its label ignored)
    has gradient 0 even where its logits hold NaN, on every path (was: NaN at
    the NaN's position on the float32 register block of 16 rows: exp(NaN) * 0
    is NaN). Found by hypothesis (tests/test_properties_losses.py)."""
    for n in (1, 16, 40):  # one row; one register block; blocks and a tail
        x = np.random.default_rng(c).standard_normal((n, c)).astype(dtype)
        x[0, 1] = np.nan
        y = np.ones(n, np.int64)
        sw = np.ones(n)
        if skip == "sample_weight":
            sw[0] = 0.0
        else:
            y[0] = -100
        for reduction in ("none", "mean"):
            loss, grad = xent.softmax_cross_entropy(x, y, sample_weight=sw, reduction=reduction,
                                                    return_grad=True)
            assert np.all(grad[0] == 0), (n, reduction, grad[0])
            assert np.all(np.isfinite(grad[1:])) and np.all(np.isfinite(loss)), (n, reduction)
