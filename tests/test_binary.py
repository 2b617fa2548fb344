"""Binary and multi-label losses against NumPy float64 references, Keras'
documented examples, extremes, finite differences and bad input."""

import itertools
import warnings

import mpmath
import numpy as np
import pytest

import xent
from conftest import finite_difference_grad, layouts

inf, nan = np.inf, np.nan


def ref_bce_logits(x, t, pos_weight=None, weight=None, smoothing=0.0):
    """Element-wise loss and gradient from the definitions, float64."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64) * (1 - smoothing) + smoothing / 2
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    w = 1.0 if weight is None else np.asarray(weight, dtype=np.float64)
    softplus_neg = np.logaddexp(0.0, -x)  # log(1 + exp(-x))
    L = 1 + (pw - 1) * t
    loss = w * ((1 - t) * x + L * softplus_neg)
    sig = 0.5 * (1 + np.tanh(x / 2))
    grad = w * (L * sig - pw * t)
    return np.broadcast_to(loss, x.shape), np.broadcast_to(grad, x.shape)


def ref_bce_probs(p, t, eps, pos_weight=None, weight=None, smoothing=0.0):
    p = np.asarray(p, dtype=np.float64)
    pc = np.clip(p, eps, 1 - eps)
    t = np.asarray(t, dtype=np.float64) * (1 - smoothing) + smoothing / 2
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    w = 1.0 if weight is None else np.asarray(weight, dtype=np.float64)
    loss = -w * (pw * t * np.log(pc) + (1 - t) * np.log1p(-pc))
    grad = np.where(pc == p, w * ((1 - t) / (1 - pc) - pw * t / pc), 0.0)
    return np.broadcast_to(loss, p.shape), np.broadcast_to(grad, p.shape)


def reduce(loss, grad, reduction):
    if reduction == "none":
        return loss, grad
    if reduction == "sum":
        return loss.sum(), grad
    return loss.mean(), grad / loss.size


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5)) * 4
    return dict(x=x, t=rng.random((6, 5)), hard=(rng.random((6, 5)) > 0.5).astype(float),
                pw=rng.random(5) + 0.5, w=rng.random((6, 1)) + 0.2, p=1 / (1 + np.exp(-x)))


OPTIONS = list(itertools.product([False, True], [False, True], [0.0, 0.2],
                                 ["mean", "sum", "none"], ["t", "hard"]))


@pytest.mark.parametrize("use_pw,use_w,eps,reduction,target", OPTIONS)
def test_bce_with_logits_every_option(data, use_pw, use_w, eps, reduction, target):
    kw = dict(pos_weight=data["pw"] if use_pw else None, weight=data["w"] if use_w else None)
    loss, grad = xent.binary_cross_entropy_with_logits(
        data["x"], data[target], label_smoothing=eps, reduction=reduction, return_grad=True, **kw)
    want = reduce(*ref_bce_logits(data["x"], data[target], smoothing=eps, **kw), reduction)
    np.testing.assert_allclose(loss, want[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grad, want[1], rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("use_pw,use_w,eps,reduction,target", OPTIONS)
def test_bce_on_probabilities_every_option(data, use_pw, use_w, eps, reduction, target):
    kw = dict(pos_weight=data["pw"] if use_pw else None, weight=data["w"] if use_w else None)
    loss, grad = xent.binary_cross_entropy(
        data["p"], data[target], label_smoothing=eps, reduction=reduction, return_grad=True, **kw)
    clip = np.finfo(np.float64).eps
    want = reduce(*ref_bce_probs(data["p"], data[target], clip, smoothing=eps, **kw), reduction)
    np.testing.assert_allclose(loss, want[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grad, want[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("class_reduction", ["sum", "mean"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_sw", [False, True])
def test_multilabel_against_reference(data, class_reduction, reduction, use_sw):
    sw = np.linspace(0.5, 2, 6) if use_sw else None
    gl = np.linspace(-1, 1, 6) if reduction == "none" else 1.5
    loss, grad = xent.multilabel_cross_entropy(
        data["x"], data["hard"], class_reduction=class_reduction, pos_weight=data["pw"],
        sample_weight=sw, reduction=reduction, return_grad=True, grad_loss=gl)
    el, eg = ref_bce_logits(data["x"], data["hard"], pos_weight=data["pw"])
    per = el.sum(-1) / (5 if class_reduction == "mean" else 1)
    g = eg / (5 if class_reduction == "mean" else 1)
    s = np.ones(6) if sw is None else sw
    per, g = per * s, g * s[:, None]
    if reduction == "none":
        want, g = per, g * gl[:, None]
    elif reduction == "sum":
        want, g = per.sum(), g * gl
    else:
        want, g = per.sum() / s.sum(), g * gl / s.sum()
    np.testing.assert_allclose(loss, want, rtol=1e-13)
    np.testing.assert_allclose(grad, g, rtol=1e-12, atol=1e-16)


def test_multilabel_shapes():
    x = np.zeros((2, 3, 4))
    t = np.zeros((2, 3, 4))
    assert xent.multilabel_cross_entropy(x, t, reduction="none").shape == (2, 3)
    np.testing.assert_allclose(xent.multilabel_cross_entropy(x, t), 4 * np.log(2), rtol=1e-15)
    np.testing.assert_allclose(xent.multilabel_cross_entropy(x, t, class_reduction="mean"),
                               np.log(2), rtol=1e-15)


# ------------------------------------------------- published Keras examples


def test_keras_binary_crossentropy_examples():
    # The examples of keras.losses.BinaryCrossentropy's documentation. Keras
    # averages over the last axis, then over the batch ("sum_over_batch_size"),
    # and weights whole samples: here weight=[[w0], [w1]] with the mean over
    # all elements is the same computation.
    y_true = np.array([0.0, 1.0, 0.0, 0.0])
    logits = np.array([-18.6, 0.51, 2.94, -12.8])
    assert round(float(xent.binary_cross_entropy_with_logits(logits, y_true)), 3) == 0.865
    y_true2, logits2 = y_true.reshape(2, 2), logits.reshape(2, 2)
    assert round(float(xent.binary_cross_entropy_with_logits(logits2, y_true2)), 3) == 0.865
    # documented as 0.243 (printed truncated): the value is 0.24364 (PyTorch agrees)
    assert abs(float(xent.binary_cross_entropy_with_logits(
        logits2, y_true2, weight=[[0.8], [0.2]])) - 0.243) < 1e-3
    y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    keras = dict(eps=1e-7)
    assert round(float(xent.binary_cross_entropy(y_pred, y_true, **keras)), 3) == 0.815
    assert round(float(xent.binary_cross_entropy(y_pred, y_true, weight=[[1.0], [0.0]],
                                                 **keras)), 3) == 0.458
    # Keras' "sum" adds the per-sample means: 1.630
    per = xent.binary_cross_entropy(y_pred, y_true, reduction="none", **keras).mean(-1)
    assert round(float(per.sum()), 3) == 1.630
    np.testing.assert_allclose(per, [0.916, 0.714], atol=5e-4)


# ------------------------------------------------------------ extremes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_never_nan(dtype):
    x = np.array([-inf, -1e4, -100.0, -1e-30, 0.0, 1e-30, 100.0, 1e4, inf], dtype=dtype)
    for t in (0.0, 1.0, 0.5):
        target = np.full_like(x, t)
        loss, grad = xent.binary_cross_entropy_with_logits(x, target, reduction="none",
                                                           return_grad=True)
        assert not np.isnan(loss).any() and not np.isnan(grad).any(), t
        # exact values of log(1 + exp(x)) - x t, with mpmath at 50 digits
        mpmath.mp.dps = 50
        want = [float(max(v, 0) - v * t + mpmath.log1p(mpmath.exp(-abs(v))))
                for v in map(mpmath.mpf, x[1:-1].astype(float))]
        np.testing.assert_allclose(loss[1:-1], want, rtol=2e-6 if dtype == np.float32 else 1e-14,
                                   atol=np.finfo(dtype).smallest_subnormal)
    # exact limits at +-inf
    loss = xent.binary_cross_entropy_with_logits(np.array([inf, -inf, inf, -inf]),
                                                 np.array([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0, inf, inf])
    # NaN propagates element-wise
    loss = xent.binary_cross_entropy_with_logits(np.array([nan, 1.0]), np.array([0.0, 1.0]),
                                                 reduction="none")
    assert np.isnan(loss[0]) and np.isfinite(loss[1])


def test_probabilities_exactly_zero_and_one():
    p = np.array([0.0, 1.0, 0.0, 1.0])
    t = np.array([1.0, 0.0, 0.0, 1.0])
    loss, grad = xent.binary_cross_entropy(p, t, reduction="none", return_grad=True)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(loss[:2], -np.log(np.finfo(np.float64).eps), rtol=1e-12)
    np.testing.assert_allclose(loss[2:], -np.log1p(-np.finfo(np.float64).eps), rtol=1e-12)
    assert not grad.any()  # clipped: the derivative of the clipped function
    # Keras' eps and no clipping at all
    loss = xent.binary_cross_entropy(p, t, eps=1e-7, reduction="none")
    np.testing.assert_allclose(loss[0], -np.log(1e-7), rtol=1e-12)
    loss = xent.binary_cross_entropy(p, t, eps=0.0, reduction="none")
    np.testing.assert_array_equal(loss, [inf, inf, 0.0, 0.0])
    f32 = xent.binary_cross_entropy(p.astype(np.float32), t, reduction="none")
    np.testing.assert_allclose(f32[0], -np.log(np.finfo(np.float32).eps), rtol=1e-6)


# ---------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradients_by_finite_differences(data, reduction):
    kw = dict(pos_weight=data["pw"], weight=data["w"], label_smoothing=0.1, reduction=reduction)
    gl = np.linspace(-1, 2, 30).reshape(6, 5) if reduction == "none" else 0.7
    _, g = xent.binary_cross_entropy_with_logits(data["x"], data["t"], return_grad=True,
                                                 grad_loss=gl, **kw)
    fd = finite_difference_grad(
        lambda z: np.sum(gl * xent.binary_cross_entropy_with_logits(z, data["t"], **kw)),
        data["x"])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    p = np.clip(data["p"], 0.01, 0.99)
    _, g = xent.binary_cross_entropy(p, data["t"], return_grad=True, grad_loss=gl, **kw)
    fd = finite_difference_grad(
        lambda z: np.sum(gl * xent.binary_cross_entropy(z, data["t"], **kw)), p, h=1e-7)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)
    kw.pop("reduction")
    gl = np.linspace(-1, 2, 6) if reduction == "none" else 0.7
    _, g = xent.multilabel_cross_entropy(data["x"], data["t"], reduction=reduction,
                                         return_grad=True, grad_loss=gl, **kw)
    fd = finite_difference_grad(lambda z: np.sum(gl * xent.multilabel_cross_entropy(
        z, data["t"], reduction=reduction, **kw)), data["x"])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


# --------------------------------------------- dtypes, layouts, threads


@pytest.mark.parametrize("dtype,rtol", [(np.float16, 3e-3), (np.float32, 3e-6)])
def test_low_precision(data, dtype, rtol):
    x = data["x"].astype(dtype)
    loss, grad = xent.binary_cross_entropy_with_logits(x, data["t"], pos_weight=data["pw"],
                                                       return_grad=True)
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
    want = reduce(*ref_bce_logits(x, data["t"], pos_weight=data["pw"]), "mean")
    np.testing.assert_allclose(loss, want[0], rtol=rtol)
    np.testing.assert_allclose(grad, want[1], rtol=rtol, atol=rtol * 1e-2)


def test_layouts_and_inputs_unchanged(data):
    want = xent.binary_cross_entropy_with_logits(data["x"], data["t"], reduction="none")
    for name, x in layouts(data["x"]):
        before = x.copy()
        got = xent.binary_cross_entropy_with_logits(x, data["t"], reduction="none")
        np.testing.assert_array_equal(got, want, err_msg=name)
        np.testing.assert_array_equal(x, before)


def test_integer_and_bool_targets(data):
    hard = data["hard"]
    want = xent.binary_cross_entropy_with_logits(data["x"], hard)
    assert xent.binary_cross_entropy_with_logits(data["x"], hard.astype(np.int8)) == want
    assert xent.binary_cross_entropy_with_logits(data["x"], hard.astype(bool)) == want


def test_grad_out_in_place(data):
    x = data["x"].copy()
    want = xent.binary_cross_entropy_with_logits(x, data["t"], return_grad=True)
    got = xent.binary_cross_entropy_with_logits(x, data["t"], return_grad=True, grad_out=x)
    assert got[1] is x and got[0] == want[0]
    np.testing.assert_array_equal(x, want[1])


@pytest.mark.parametrize("shape", [(3_000_001,), (700, 1000)])
def test_bit_identical_for_any_thread_count(shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    t = rng.random(shape).astype(np.float32)
    runs = [xent.binary_cross_entropy_with_logits(x, t, return_grad=True, n_threads=n)
            for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss.tobytes() == runs[0][0].tobytes()
        assert grad.tobytes() == runs[0][1].tobytes()


def test_empty_input():
    loss, grad = xent.binary_cross_entropy_with_logits(np.zeros((0, 3)), np.zeros((0, 3)),
                                                       return_grad=True)
    assert loss == 0 and grad.shape == (0, 3)


# ------------------------------------------------------------ bad input


LOSSES = [xent.binary_cross_entropy_with_logits, xent.binary_cross_entropy,
          xent.multilabel_cross_entropy]


@pytest.mark.parametrize("f", LOSSES)
def test_bad_input(f):
    x = np.full((2, 3), 0.5)
    t = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got 1.5 at index \(1, 2\)"):
        f(x, np.array([[0, 0, 0], [0, 0, 1.5]]))
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got -1"):
        f(x, np.array([[0, -1, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match=r"target: expected the shape of .* \(2, 3\), got \(3,\)"):
        f(x, np.zeros(3))
    with pytest.raises(TypeError, match="target: expected real numbers"):
        f(x, np.full((2, 3), "a"))
    with pytest.raises(TypeError, match=r"^(logits|probs): expected a floating-point array"):
        f(np.zeros((2, 3), complex), t)
    with pytest.raises(ValueError, match=r"pos_weight: expected a scalar or shape \(3,\)"):
        f(x, t, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match=r"weight: expected a shape broadcastable to \(2, 3\), got \(2,\)"):
        f(x, t, weight=np.ones(2))
    with pytest.raises(ValueError, match=r"label_smoothing: expected a finite number in \[0.0, 1.0\]"):
        f(x, t, label_smoothing=2.0)
    with pytest.raises(ValueError, match="reduction: expected one of"):
        f(x, t, reduction="avg")
    buf = np.full((2, 3), 9.0)
    with pytest.raises(TypeError, match="grad_out: expected dtype float64, got float32"):
        f(x, t, return_grad=True, grad_out=buf.astype(np.float32))
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\]"):
        f(x, t + 2, return_grad=True, grad_out=buf)
    np.testing.assert_array_equal(buf, 9.0)  # nothing written


def test_probabilities_outside_unit_interval_and_bad_eps():
    t = np.zeros(3)
    with pytest.raises(ValueError, match=r"probs: expected values in \[0, 1\], got 1.2 at index \(1,\)"):
        xent.binary_cross_entropy(np.array([0.5, 1.2, 0.1]), t)
    with pytest.raises(ValueError, match=r"eps: expected a number in \[0, 0.5\), got -0.001"):
        xent.binary_cross_entropy(np.full(3, 0.5), t, eps=-1e-3)
    with pytest.raises(ValueError, match="eps: "):
        xent.binary_cross_entropy(np.full(3, 0.5), t, eps=0.5)


def test_multilabel_bad_options():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="class_reduction: expected 'sum' or 'mean', got 'max'"):
        xent.multilabel_cross_entropy(x, x, class_reduction="max")
    with pytest.raises(ValueError, match=r"sample_weight: expected the batch shape \(2,\), got \(3,\)"):
        xent.multilabel_cross_entropy(x, x, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="logits: expected at least one axis"):
        xent.multilabel_cross_entropy(np.float64(0.0), np.float64(0.0))


# ------------------------------------------- regressions from the review


def test_weights_with_odd_strides_are_read_correctly():
    st = np.zeros(4, np.dtype([("w", "<f8"), ("b", "i1")]))  # a 9-byte stride
    st["w"] = [1, 2, 3, 4]
    x, t = np.zeros(4), np.ones(4)
    want = xent.binary_cross_entropy_with_logits(x, t, weight=np.array([1.0, 2, 3, 4]),
                                                 reduction="none")
    got = xent.binary_cross_entropy_with_logits(x, t, weight=st["w"], reduction="none")
    np.testing.assert_array_equal(got, want)
    got = xent.binary_cross_entropy_with_logits(x, t, grad_loss=st["w"], reduction="none",
                                                return_grad=True)[1]
    np.testing.assert_array_equal(got, -0.5 * np.array([1.0, 2, 3, 4]))


def test_zero_weight_times_an_infinite_loss_is_zero():
    loss = xent.binary_cross_entropy_with_logits(np.array([-inf, 0.0]), np.ones(2),
                                                 weight=np.array([0.0, 1.0]), reduction="none",
                                                 return_grad=True)
    np.testing.assert_array_equal(loss[0], [0.0, np.log(2)])
    assert not np.isnan(loss[1]).any()


def test_eps_zero_gradient_where_the_prediction_is_right():
    _, g = xent.binary_cross_entropy(np.array([0.0, 1.0]), np.array([0.0, 1.0]), eps=0,
                                     reduction="none", return_grad=True)
    np.testing.assert_array_equal(g, [1.0, -1.0])


def test_tiny_eps_still_clips_in_float32():
    loss = xent.binary_cross_entropy(np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0]),
                                     eps=1e-10, reduction="none")
    assert np.isfinite(loss).all()


def test_multilabel_with_zero_classes():
    np.testing.assert_array_equal(
        xent.multilabel_cross_entropy(np.zeros((3, 0)), np.zeros((3, 0)), reduction="none"),
        np.zeros(3))


def test_big_endian_input_is_accepted():
    x = np.array([[0.5, -1.0], [2.0, 0.0]], dtype=">f8")
    np.testing.assert_array_equal(
        xent.binary_cross_entropy_with_logits(x, np.ones((2, 2))),
        xent.binary_cross_entropy_with_logits(x.astype("<f8"), np.ones((2, 2))))
    np.testing.assert_array_equal(xent.softmax(x), xent.softmax(x.astype(np.float64)))


def test_targets_of_bool_and_integer_scalars_and_lists():
    # regression: bool targets were accepted as arrays but not as a list or a
    # numpy scalar (TypeError), though documented as 0/1 values
    x = np.array([0.3, -1.2])
    want = xent.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0]))
    assert xent.binary_cross_entropy_with_logits(x, [True, False]) == want
    assert xent.binary_cross_entropy_with_logits(x, [1, 0]) == want
    assert xent.binary_cross_entropy_with_logits(np.float64(0.3), np.bool_(True)) == \
        xent.binary_cross_entropy_with_logits(np.float64(0.3), 1.0)
    with pytest.raises(TypeError, match="target: expected real numbers"):
        xent.binary_cross_entropy_with_logits(x, ["a", "b"])


def test_multilabel_sample_of_weight_zero_counts_for_nothing():
    # regression: a sample of weight 0 with an infinite element loss gave
    # 0 * inf = NaN (and a RuntimeWarning), and a NaN gradient for a NaN logit
    x = np.array([[inf, 0.0], [1.0, 2.0], [nan, 0.0]])
    t = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    sw = np.array([0.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = xent.multilabel_cross_entropy(x, t, sample_weight=sw, reduction="none",
                                                   return_grad=True)
    want, want_grad = xent.multilabel_cross_entropy(x[1:2], t[1:2], reduction="none",
                                                    return_grad=True)
    np.testing.assert_array_equal(loss, [0.0, want[0], 0.0])
    np.testing.assert_array_equal(grad, [[0, 0], want_grad[0], [0, 0]])
    assert xent.multilabel_cross_entropy(x, t, sample_weight=sw) == want[0]


def test_gradient_at_a_nan_probability_is_nan():
    # regression: the gradient was 0 at a NaN probability (taken as clipped)
    loss, grad = xent.binary_cross_entropy(np.array([nan, 0.3, 0.0]), np.array([1.0, 0.5, 1.0]),
                                           reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(grad[0])
    assert np.isfinite(grad[1]) and grad[2] == 0  # 0 is clipped to eps: gradient 0


def test_a_zero_upstream_gradient_is_a_zero_gradient_even_where_it_is_infinite():
    """binary_cross_entropy without clipping (eps=0) at p = 0 with t = 1: the
    loss is inf and the gradient -inf; an upstream gradient of 0 gives 0 there,
    not 0 * inf = NaN, as a zero weight does (found by the fuzz target)."""
    p = np.array([[0.0, 0.5], [1.0, 0.25]])
    t = np.array([[1.0, 1.0], [0.0, 1.0]])
    loss, g = xent.binary_cross_entropy(p, t, eps=0.0, return_grad=True, grad_loss=0.0)
    assert loss == np.inf and np.array_equal(g, np.zeros_like(p))
    _, g1 = xent.binary_cross_entropy(p, t, eps=0.0, return_grad=True)
    assert g1[0, 0] == -np.inf and g1[1, 0] == np.inf
    _, gn = xent.binary_cross_entropy(p, t, eps=0.0, reduction="none", return_grad=True,
                                      grad_loss=np.array([[0.0, 1.0], [2.0, 0.0]]))
    assert gn[0, 0] == 0 and gn[1, 0] == np.inf and gn[1, 1] == 0


@pytest.mark.parametrize("f", [xent.binary_cross_entropy_with_logits, xent.binary_focal_loss_with_logits])
def test_reduced_loss_does_not_depend_on_the_weights_layout(f):
    """A weight broadcast from one value per column, or a full weight of any
    strides, gives the bits of its contiguous copy (found by the fuzz target:
    the reduced loss's partial sums followed the weights' layout)."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(64, 16)) * 3
    t = (rng.random((64, 16)) > 0.5).astype(float)
    col = rng.random(16) + 0.5
    full = np.asfortranarray(rng.random((64, 16)) + 0.5)
    for w in (np.broadcast_to(col, x.shape), full, full[::-1][::-1]):
        a = f(x, t, weight=w, return_grad=True)
        b = f(x, t, weight=np.ascontiguousarray(w), return_grad=True)
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
    gl = np.broadcast_to(rng.random(16), x.shape)
    a = f(x, t, reduction="none", grad_loss=gl, return_grad=True)
    b = f(x, t, reduction="none", grad_loss=np.ascontiguousarray(gl), return_grad=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
