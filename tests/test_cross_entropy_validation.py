"""Bad input to the losses: a clear error naming the argument, nothing written."""

import numpy as np
import pytest

import xent

X = np.zeros((4, 3))
Y = np.array([0, 1, 2, 1])
LOSSES = [xent.softmax_cross_entropy, xent.nll_loss]


def call(f, x=X, y=Y, **kw):
    return f(x, y, **kw)


@pytest.mark.parametrize("f", LOSSES)
@pytest.mark.parametrize("labels,bad", [
    ([0, 1, 3, 1], "got 3 at index (2,)"),
    ([0, -1, 2, 1], "got -1 at index (1,)"),
    ([0, 1, 2, -7], "got -7 at index (3,)"),
])
def test_labels_out_of_range(f, labels, bad):
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\) or "
                                         r"ignore_index=-100, " + bad.replace("(", r"\(").replace(")", r"\)")):
        call(f, y=np.array(labels))


@pytest.mark.parametrize("f", LOSSES)
def test_float_labels_where_integers_are_meant(f):
    with pytest.raises(ValueError, match=r"target: float targets are class probabilities .*"
                                         r"got \(4,\) \(integer class indices need an integer dtype\)"):
        call(f, y=Y.astype(float))


@pytest.mark.parametrize("f", LOSSES)
def test_target_of_wrong_dtype_or_shape(f):
    with pytest.raises(TypeError, match="target: expected integer class indices or float class "
                                        "probabilities, got dtype bool"):
        call(f, y=np.ones(4, bool))
    with pytest.raises(ValueError, match=r"target: integer class indices must have the logits' "
                                         r"shape without the class axis, \(4,\), got \(5,\)"):
        call(f, y=np.zeros(5, int))
    with pytest.raises(ValueError, match=r"target: float targets .* shape \(4, 3\), got \(4, 2\)"):
        call(f, y=np.zeros((4, 2)))


@pytest.mark.parametrize("f", LOSSES)
def test_weights_of_wrong_shape_or_type(f):
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\) \(one weight per class\), got \(4,\)"):
        call(f, weight=np.ones(4))
    with pytest.raises(TypeError, match="weight: expected real numbers .* got dtype bool"):
        call(f, weight=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"sample_weight: expected the batch shape \(4,\), got \(3,\)"):
        call(f, sample_weight=np.ones(3))


@pytest.mark.parametrize("f", LOSSES)
@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan"), float("inf")])
def test_label_smoothing_outside_unit_interval(f, eps):
    with pytest.raises(ValueError, match=r"label_smoothing: expected a finite number in \[0.0, 1.0\], got"):
        call(f, label_smoothing=eps)


def test_label_smoothing_and_z_loss_types():
    with pytest.raises(TypeError, match="label_smoothing: expected a real number, got '0.1'"):
        call(xent.softmax_cross_entropy, label_smoothing="0.1")
    with pytest.raises(ValueError, match="z_loss: expected a finite number >= 0.0, got -1.0"):
        call(xent.softmax_cross_entropy, z_loss=-1.0)


@pytest.mark.parametrize("f", LOSSES)
@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, 1])
def test_unknown_reduction(f, reduction):
    with pytest.raises(ValueError, match=r"reduction: expected one of 'none', 'sum', 'mean', got"):
        call(f, reduction=reduction)


@pytest.mark.parametrize("f", LOSSES)
def test_grad_loss_and_grad_out(f):
    with pytest.raises(ValueError, match=r"grad_loss: expected a scalar for reduction='mean', got shape \(4,\)"):
        call(f, return_grad=True, grad_loss=np.ones(4))
    with pytest.raises(ValueError, match=r"grad_loss: expected a shape broadcastable to the per-sample shape \(4,\), got \(3,\)"):
        call(f, reduction="none", return_grad=True, grad_loss=np.ones(3))
    with pytest.raises(ValueError, match="grad_out: given, but return_grad is False"):
        call(f, grad_out=np.zeros((4, 3)))
    buf = np.full((4, 3), 5.0)
    with pytest.raises(TypeError, match="grad_out: expected dtype float64, got float32"):
        call(f, return_grad=True, grad_out=buf.astype(np.float32))
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(4, 3\), got \(3, 4\)"):
        call(f, return_grad=True, grad_out=buf.T)
    ro = buf.copy()
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="grad_out: expected a writeable array"):
        call(f, return_grad=True, grad_out=ro)
    # overlapping the logits other than exactly: rejected
    big = np.zeros(15)
    x, out = big[:12].reshape(4, 3), big[3:].reshape(4, 3)
    with pytest.raises(ValueError, match="grad_out: must not overlap the memory of"):
        call(f, x=x, return_grad=True, grad_out=out)
    # overlapping a probability target: rejected
    t = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match="grad_out: must not overlap the memory of target"):
        call(f, y=t, return_grad=True, grad_out=t)
    # nothing was written by any failed call
    np.testing.assert_array_equal(buf, 5.0)
    np.testing.assert_array_equal(t, 1 / 3)


@pytest.mark.parametrize("f", LOSSES)
def test_bad_logits_and_axis(f):
    with pytest.raises(TypeError, match=r"^(logits|log_probs): expected a floating-point array"):
        f(np.zeros((4, 3), complex), Y)
    with pytest.raises(ValueError, match="axis"):
        call(f, axis=2)
    with pytest.raises(TypeError, match="axis: expected an integer"):
        call(f, axis=(0, 1))
    with pytest.raises(ValueError, match="expected at least one class along axis -1, got 0"):
        f(np.zeros((4, 0)), np.zeros(4, int))
    with pytest.raises(TypeError, match="ignore_index: expected an integer, got 1.5"):
        call(f, ignore_index=1.5)
    with pytest.raises(TypeError, match="return_grad: expected a bool"):
        call(f, return_grad=None)


def test_unaligned_integer_labels_are_handed_to_the_kernels_aligned():
    """A contiguous but unaligned int64 view (found by the ASan/UBSan run:
    a misaligned int64 load in the small-class kernel) is copied aligned."""
    from xent._validate import Rows, class_axes, class_labels
    raw = bytearray(8 * 5 + 1)
    y = np.frombuffer(raw, dtype=np.int64, offset=1, count=5)
    y[...] = [0, 1, 2, 1, 0]
    assert not y.flags.aligned
    x = np.zeros((5, 3))
    labels, all_classes = class_labels(y, Rows(x, class_axes(-1, 2)), -100)
    assert all_classes
    assert labels.flags.aligned and labels.flags.c_contiguous
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(xent.softmax_cross_entropy(x, y, reduction="none"),
                                  np.full(5, np.log(3.0)))


def test_keras_sparse_labels_with_a_trailing_axis_of_one():
    """Keras' sparse categorical losses take y_true of shape (B, 1): the
    labels of the batch shape plus a trailing 1 are the batch's labels (for
    every function taking class indices); any other extra axis is an error."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)
    for f in (xent.softmax_cross_entropy, xent.softmax_focal_loss):
        a, ga = f(x, y, return_grad=True, reduction="none")
        b, gb = f(x, y[:, None], return_grad=True, reduction="none")
        assert np.array_equal(a, b) and np.array_equal(ga, gb)
    lp = xent.log_softmax(x)
    assert xent.nll_loss(lp, y[:, None]) == xent.nll_loss(lp, y)
    q = xent.softmax(x)
    assert np.array_equal(xent.cross_entropy(y[:, None], q), xent.cross_entropy(y, q))
    # PyTorch's (N, C, d) layout: labels (N, d) or (N, d, 1)
    x3 = rng.normal(size=(3, 4, 5))
    y3 = rng.integers(0, 4, (3, 5))
    assert xent.softmax_cross_entropy(x3, y3[..., None], axis=1) == \
        xent.softmax_cross_entropy(x3, y3, axis=1)
    with pytest.raises(ValueError, match=r"target: integer class indices must have"):
        xent.softmax_cross_entropy(x, y[:, None, None])
    with pytest.raises(ValueError, match=r"target: integer class indices must have"):
        xent.softmax_cross_entropy(x, np.stack([y, y], 1))


@pytest.mark.parametrize("dtype,c", [(np.int8, 129), (np.int8, 300), (np.int16, 32769),
                                     (np.int16, 40000), (np.int32, 300)])
def test_negative_narrow_labels_are_caught_past_their_unsigned_range(dtype, c):
    """A negative int8 label viewed as uint8 is at least 128: a class when
    there are more classes than that. Such labels must still be a ValueError
    (they were taken as classes and written out of bounds: found by the fuzz
    target, as a write into another array and a crash)."""
    x = np.zeros((2, c), np.float32)
    y = np.array([1, -122], dtype)
    from xent import objectives
    calls = [lambda: xent.softmax_cross_entropy(x, y, return_grad=True),
             lambda: xent.nll_loss(x, y, return_grad=True),
             lambda: xent.softmax_focal_loss(x, y, return_grad=True),
             lambda: xent.cross_entropy(y, np.full(x.shape, 1 / c), return_grad=True),
             lambda: objectives.softmax_grad_hess(x, y)]
    for call in calls:
        with pytest.raises(ValueError, match=r"expected class indices in \[0, " + str(c)):
            call()
    # the ignored value stays ignored
    assert xent.softmax_cross_entropy(x, np.array([1, -100], dtype)) == pytest.approx(np.log(c))
