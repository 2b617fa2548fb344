"""softmax_cross_entropy and nll_loss against a NumPy float64 reference."""

import itertools

import mpmath
import numpy as np
import pytest

import xent
from conftest import finite_difference_grad, ref_log_softmax, ref_logsumexp

inf = np.inf


def ref_cross_entropy(x, target, *, axis=-1, weight=None, sample_weight=None, ignore_index=-100,
                      label_smoothing=0.0, z_loss=0.0, reduction="mean", log_probs=False):
    """Loss and gradient, written from the definitions in float64."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    c = x.shape[-1]
    lp = x if log_probs else ref_log_softmax(x)
    lse = np.zeros(x.shape[:-1]) if log_probs else ref_logsumexp(x)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    target = np.asarray(target)
    eps = label_smoothing
    if target.dtype.kind in "iu":
        valid = target != ignore_index
        t = np.eye(c)[np.where(valid, target, 0)]
        den = np.where(valid, w[np.where(valid, target, 0)], 0.0)
    else:
        t = np.moveaxis(target.astype(np.float64), axis, -1)
        valid = np.ones(x.shape[:-1], dtype=bool)
        den = np.ones(x.shape[:-1])
    a = w * ((1 - eps) * t + eps / c)
    with np.errstate(invalid="ignore"):
        per = -np.where(a != 0, a * lp, 0.0).sum(-1) + z_loss * lse**2
    per = np.where(valid, per, 0.0)
    sw = np.ones(x.shape[:-1]) if sample_weight is None else np.asarray(sample_weight, float)
    per, den = per * sw, den * sw
    if log_probs:
        grad = -a
    else:
        grad = (a.sum(-1, keepdims=True) + 2 * z_loss * lse[..., None]) * np.exp(lp) - a
    grad = np.where(valid[..., None], grad, 0.0) * sw[..., None]
    if reduction == "none":
        return per, np.moveaxis(grad, -1, axis)
    if reduction == "sum":
        return per.sum(), np.moveaxis(grad, -1, axis)
    scale = 0.0 if den.sum() == 0 else 1.0 / den.sum()
    return per.sum() * scale, np.moveaxis(grad * scale, -1, axis)


def make_data(n_rows, n_classes, seed=2024):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, n_classes)) * 3
    labels = rng.integers(0, n_classes, n_rows)
    labels[2] = -100
    labels[:2] = [0, n_classes - 1]
    probs = rng.dirichlet(np.ones(n_classes), size=n_rows)
    return dict(x=x, labels=labels, probs=probs, weight=rng.random(n_classes) + 0.1,
                sample_weight=rng.random(n_rows) + 0.1)


# C <= 64 runs through the small-class path (blocks of 16 rows; 37 rows give a
# partial block), C > 64 through the row path: both are checked everywhere.
@pytest.fixture(scope="module", params=[(7, 5), (37, 13), (9, 100)], ids=["C5", "C13", "C100"])
def data(request):
    return make_data(*request.param)


OPTIONS = list(itertools.product(
    ["labels", "probs"], [False, True], [False, True], [0.0, 0.25, 1.0], [0.0, 1e-2],
    ["mean", "sum", "none"]))


@pytest.mark.parametrize("kind,use_w,use_sw,eps,z,reduction", OPTIONS)
def test_every_option_combination_against_reference(data, kind, use_w, use_sw, eps, z, reduction):
    kw = dict(weight=data["weight"] if use_w else None,
              sample_weight=data["sample_weight"] if use_sw else None,
              label_smoothing=eps, reduction=reduction)
    target = data[kind]
    loss, grad = xent.softmax_cross_entropy(data["x"], target, z_loss=z, return_grad=True, **kw)
    want_loss, want_grad = ref_cross_entropy(data["x"], target, z_loss=z, **kw)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)
    assert np.asarray(loss).dtype == np.float64
    assert xent.softmax_cross_entropy(data["x"], target, z_loss=z, **kw).tobytes() == np.asarray(loss).tobytes()
    # nll_loss on log-probabilities: the same loss without z
    lp = xent.log_softmax(data["x"])
    nl, ng = xent.nll_loss(lp, target, return_grad=True, **kw)
    want_nl, want_ng = ref_cross_entropy(lp, target, log_probs=True, **kw)
    np.testing.assert_allclose(nl, want_nl, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ng, want_ng, rtol=1e-13, atol=1e-15)
    if z == 0:
        np.testing.assert_allclose(nl, loss, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("axis", [1, 0, -1])
def test_class_axis_anywhere(kind, axis):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5))
    c = x.shape[axis]
    batch = tuple(n for i, n in enumerate(x.shape) if i != axis % 3)
    if kind == "labels":
        target = rng.integers(0, c, size=batch)
    else:
        target = np.moveaxis(rng.dirichlet(np.ones(c), size=batch), -1, axis)
    w = rng.random(c)
    for reduction in ("mean", "none"):
        got = xent.softmax_cross_entropy(x, target, axis=axis, weight=w, label_smoothing=0.1,
                                         reduction=reduction, return_grad=True)
        want = ref_cross_entropy(x, target, axis=axis, weight=w, label_smoothing=0.1,
                                 reduction=reduction)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
        assert got[1].shape == x.shape
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-6), (np.float16, 2e-3)])
def test_low_precision_inputs(data, dtype, rtol):
    x = data["x"].astype(dtype)
    n = x.shape[0]
    for target in (data["labels"], data["probs"].astype(dtype)):
        loss, grad = xent.softmax_cross_entropy(x, target, weight=data["weight"],
                                                label_smoothing=0.1, return_grad=True)
        assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
        want = ref_cross_entropy(x, target, weight=data["weight"], label_smoothing=0.1)
        np.testing.assert_allclose(loss, want[0], rtol=rtol)
        np.testing.assert_allclose(grad, want[1], rtol=rtol, atol=rtol * 1e-2)
        per = xent.softmax_cross_entropy(x, target, reduction="none")
        assert per.dtype == dtype and per.shape == (n,)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                         np.uint32, np.int64, np.uint64])
def test_any_integer_label_dtype(data, label_dtype):
    labels = np.maximum(data["labels"], 0).astype(label_dtype)
    got = xent.softmax_cross_entropy(data["x"], labels)
    want = xent.softmax_cross_entropy(data["x"], labels.astype(np.int64))
    assert got == want


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_by_finite_differences(data, kind, reduction):
    kw = dict(weight=data["weight"], sample_weight=data["sample_weight"], label_smoothing=0.2,
              z_loss=0.05, reduction=reduction)
    target = data[kind]
    gl = np.random.default_rng(1).standard_normal(len(target)) if reduction == "none" else 1.7
    _, grad = xent.softmax_cross_entropy(data["x"], target, return_grad=True, grad_loss=gl, **kw)
    fd = finite_difference_grad(lambda z: np.sum(gl * xent.softmax_cross_entropy(z, target, **kw)), data["x"])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)
    lp = xent.log_softmax(data["x"])
    kw.pop("z_loss")
    _, grad = xent.nll_loss(lp, target, return_grad=True, grad_loss=gl, **kw)
    fd = finite_difference_grad(lambda z: np.sum(gl * xent.nll_loss(z, target, **kw)), lp)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


def test_grad_loss_broadcasts_for_none(data):
    _, g1 = xent.softmax_cross_entropy(data["x"], data["labels"], reduction="none",
                                       return_grad=True, grad_loss=3.0)
    _, g2 = xent.softmax_cross_entropy(data["x"], data["labels"], reduction="none",
                                       return_grad=True, grad_loss=np.full(len(data["x"]), 3.0))
    _, g0 = xent.softmax_cross_entropy(data["x"], data["labels"], reduction="none",
                                       return_grad=True)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_allclose(g1, 3 * g0, rtol=1e-14, atol=1e-15)


# ------------------------------------------------------------ semantics


def test_loss_is_exact_at_large_offsets():
    mpmath.mp.dps = 60
    rows = np.array([[1e300, 1e300 * (1 - 1e-15), -1e300], [1e15 + 3.0, 1e15, 1e15 - 7.0],
                     [-1e300, -1e300 * (1 + 1e-15), -1e300 * (1 + 3e-15)]])
    labels = np.array([1, 2, 0])
    got = xent.softmax_cross_entropy(rows, labels, reduction="none")
    for row, y, g in zip(rows, labels, got):
        xs = [mpmath.mpf(float(v)) for v in row]
        m = max(xs)
        want = mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in xs)) - (xs[y] - m)
        assert abs(g - float(want)) <= 2e-15 * max(1.0, abs(float(want)))


def test_masked_vocabulary_is_exact():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 8))
    mask = np.zeros((6, 8), dtype=bool)
    mask[:, [1, 5, 6]] = True
    xm = np.where(mask, -inf, x)
    labels = np.array([0, 2, 3, 4, 7, 0])
    loss, grad = xent.softmax_cross_entropy(xm, labels, reduction="none", return_grad=True)
    keep = [0, 2, 3, 4, 7]
    small = x[:, keep]
    small_labels = np.searchsorted(keep, labels)
    l2, g2 = xent.softmax_cross_entropy(small, small_labels, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, l2)
    np.testing.assert_array_equal(grad[:, keep], g2)
    assert not grad[:, [1, 5, 6]].any()
    # probability targets without mass on the masked classes: also exact
    p = np.zeros((6, 8))
    p[:, keep] = rng.dirichlet(np.ones(5), size=6)
    lp, gp = xent.softmax_cross_entropy(xm, p, reduction="none", return_grad=True)
    assert np.isfinite(lp).all() and np.isfinite(gp).all()
    # with label smoothing the masked classes carry mass: +inf loss
    assert np.isposinf(xent.softmax_cross_entropy(xm, labels, label_smoothing=0.1))


@pytest.mark.parametrize("n_classes", [3, 100])
def test_infinite_logits(n_classes):
    pad = np.zeros((2, n_classes - 3))
    x = np.hstack([np.array([[0.0, -inf, 1.0], [0.0, 0.0, 0.0]]), pad])
    per, grad = xent.softmax_cross_entropy(x, np.array([1, 0]), reduction="none",
                                           return_grad=True)
    assert per[0] == inf and np.isfinite(per[1]) and np.isfinite(grad[1]).all()
    # a +inf logit of another class: +inf loss; of the target class alone: 0
    y = np.hstack([np.array([[inf, 0.0, 1.0], [inf, 5.0, 1.0]]), pad])
    for z in (0.0, 0.1):
        per, g = xent.softmax_cross_entropy(y, np.array([1, 0]), reduction="none", z_loss=z,
                                            return_grad=True)
        assert per[0] == inf, z
        assert per[1] == (0.0 if z == 0 else inf), z
        # the finite logits of a row holding +inf get the limits of their
        # gradient: -1 at a finite target, 0 elsewhere (not NaN, z_loss or not)
        np.testing.assert_array_equal(g[0, 1:3], [-1.0, 0.0])
        np.testing.assert_array_equal(g[1, 1:], 0.0)


def test_minus_inf_target_logit_gives_plus_inf():
    assert xent.nll_loss(np.array([[0.0, -inf]]), np.array([1])) == inf
    # an all -inf row has no defined loss: NaN, and no other row is touched
    per = xent.softmax_cross_entropy(np.array([[-inf, -inf], [0.0, 1.0]]), np.array([0, 1]),
                                     reduction="none")
    assert np.isnan(per[0]) and np.isfinite(per[1])


def test_nan_stays_in_its_sample():
    x = np.zeros((3, 4))
    x[1, 2] = np.nan
    loss, grad = xent.softmax_cross_entropy(x, np.array([0, 0, 0]), reduction="none",
                                            return_grad=True)
    assert np.isnan(loss[1]) and np.isnan(grad[1]).all()
    assert np.isfinite(loss[[0, 2]]).all() and np.isfinite(grad[[0, 2]]).all()


def test_all_targets_ignored_gives_zero_mean_and_zero_grad():
    x = np.random.default_rng(0).standard_normal((4, 3))
    labels = np.full(4, -100)
    loss, grad = xent.softmax_cross_entropy(x, labels, return_grad=True)
    assert loss == 0.0 and not grad.any()
    loss, grad = xent.softmax_cross_entropy(x, labels, reduction="sum", return_grad=True)
    assert loss == 0.0 and not grad.any()
    # zero total weight is the same case
    loss, grad = xent.softmax_cross_entropy(x, np.zeros(4, int), weight=[0.0, 1.0, 1.0],
                                            return_grad=True)
    assert loss == 0.0 and not grad.any()
    # a custom ignore_index
    loss = xent.softmax_cross_entropy(x, np.array([0, 7, 7, 1]), ignore_index=7)
    want = ref_cross_entropy(x, np.array([0, 7, 7, 1]), ignore_index=7)[0]
    np.testing.assert_allclose(loss, want, rtol=1e-14)


def test_empty_batch():
    loss, grad = xent.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int), return_grad=True)
    assert loss == 0.0 and grad.shape == (0, 3)
    per = xent.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int), reduction="none")
    assert per.shape == (0,)


def test_z_loss_term():
    x = np.array([[1.0, 2.0, 3.0]])
    lse = ref_logsumexp(x)[0]
    base = xent.softmax_cross_entropy(x, np.array([2]))
    with_z = xent.softmax_cross_entropy(x, np.array([2]), z_loss=1e-2)
    np.testing.assert_allclose(with_z - base, 1e-2 * lse**2, rtol=1e-13)


# ------------------------------------------------------------ buffers


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_grad_out_in_place_over_the_logits(data, kind, eps):
    x = data["x"].copy()
    want_loss, want_grad = xent.softmax_cross_entropy(x, data[kind], weight=data["weight"],
                                                      label_smoothing=eps, z_loss=1e-3,
                                                      return_grad=True)
    loss, grad = xent.softmax_cross_entropy(x, data[kind], weight=data["weight"],
                                            label_smoothing=eps, z_loss=1e-3,
                                            return_grad=True, grad_out=x)
    assert grad is x
    assert loss == want_loss
    np.testing.assert_array_equal(x, want_grad)
    lp = xent.log_softmax(data["x"])
    want = xent.nll_loss(lp, data[kind], label_smoothing=eps, return_grad=True)
    got = xent.nll_loss(lp, data[kind], label_smoothing=eps, return_grad=True, grad_out=lp)
    assert got[1] is lp and got[0] == want[0]
    np.testing.assert_array_equal(lp, want[1])


def test_grad_out_buffer_and_layouts(data):
    want = xent.softmax_cross_entropy(data["x"], data["labels"], return_grad=True)[1]
    buf = np.full(data["x"].shape, 9.0)
    _, g = xent.softmax_cross_entropy(data["x"], data["labels"], return_grad=True, grad_out=buf)
    assert g is buf
    np.testing.assert_array_equal(buf, want)
    fbuf = np.asfortranarray(np.zeros(data["x"].shape))
    xent.softmax_cross_entropy(data["x"], data["labels"], return_grad=True, grad_out=fbuf)
    np.testing.assert_array_equal(fbuf, want)
    # in-place over Fortran-ordered logits (the copy path)
    xf = np.asfortranarray(data["x"])
    xent.softmax_cross_entropy(xf, data["labels"], return_grad=True, grad_out=xf)
    np.testing.assert_array_equal(xf, want)


def test_inputs_are_never_modified(data):
    args = {k: v.copy() for k, v in data.items()}
    for kind in ("labels", "probs"):
        xent.softmax_cross_entropy(args["x"], args[kind], weight=args["weight"],
                                   sample_weight=args["sample_weight"], label_smoothing=0.1,
                                   z_loss=0.1, return_grad=True)
        xent.nll_loss(args["x"], args[kind], weight=args["weight"], return_grad=True)
    for k in data:
        np.testing.assert_array_equal(args[k], data[k])


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("n_classes", [97, 10], ids=["row-path", "small-class-path"])
def test_bit_identical_for_any_thread_count(kind, n_classes):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4099, n_classes)).astype(np.float32)
    target = (rng.integers(0, n_classes, 4099) if kind == "labels"
              else rng.dirichlet(np.ones(n_classes), 4099).astype(np.float32))
    runs = [xent.softmax_cross_entropy(x, target, label_smoothing=0.1, z_loss=1e-4,
                                       return_grad=True, n_threads=n) for n in (1, 2, 3, -1)]
    for loss, grad in runs[1:]:
        assert loss.tobytes() == runs[0][0].tobytes()
        assert grad.tobytes() == runs[0][1].tobytes()


@pytest.mark.parametrize("n_classes", [5, 70])
@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_ignored_or_zero_weight_samples_count_for_nothing(n_classes, kind):
    """Even with NaN or -inf logits (both paths: C <= 64 and C > 64)."""
    x = np.zeros((3, n_classes))
    x[0, 1] = np.nan
    x[1, 0] = -inf
    labels = np.array([-100, 0, 2])
    target = labels if kind == "labels" else np.eye(n_classes)[np.maximum(labels, 0)]
    sw = np.array([0.0 if kind == "probs" else 1.0, 0.0, 1.0])
    loss, grad = xent.softmax_cross_entropy(x, target, sample_weight=sw, reduction="none",
                                            return_grad=True)
    np.testing.assert_array_equal(loss[:2], 0.0)
    np.testing.assert_array_equal(grad[:2], 0.0)
    assert np.isfinite(loss[2]) and np.isfinite(grad[2]).all()


def test_out_of_range_ignore_index_is_a_value_error():
    with pytest.raises(ValueError, match="ignore_index: expected a 64-bit integer, got"):
        xent.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), ignore_index=2**63)


@pytest.mark.parametrize("n_classes", [5000, 10])
def test_peak_memory_of_forward_and_backward(n_classes):
    """Forward only: O(N); forward+backward: one gradient buffer + O(N);
    grad_out=logits: O(N) (tracemalloc sees NumPy's allocations)."""
    import tracemalloc

    n_rows = 2_000_000 // n_classes * 10
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_rows, n_classes), dtype=np.float32)
    y = rng.integers(0, n_classes, n_rows)
    o_n = 64 * n_rows + (1 << 20)  # a few float64/int64 per row, and slack

    def peak(fn):
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(lambda: xent.softmax_cross_entropy(x, y)) < o_n
    assert peak(lambda: xent.softmax_cross_entropy(x, y, return_grad=True)) < x.nbytes + o_n
    assert peak(lambda: xent.softmax_cross_entropy(x, y, return_grad=True, grad_out=x)) < o_n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("eps,z,use_w,use_sw", [(0.0, 0.0, False, False), (0.2, 0.0, True, True),
                                                (0.0, 1e-2, True, False)])
def test_long_rows_split_into_chunks(dtype, kind, eps, z, use_w, use_sw):
    """Rows of >= long_row classes are computed by chunks (the class axis split
    over threads): the same values as the float64 reference, for any thread
    count, in place too."""
    from xent import _kernels as kernels
    rng = np.random.default_rng(8)
    n, c = 5, kernels.long_row + 2 * kernels.row_chunk + 17
    x = (rng.standard_normal((n, c)) * 3 + 20).astype(dtype)
    x[1, 100:] -= 100  # the max in the first chunk only
    x[3, -1] = 60  # the max in the last chunk only
    labels = rng.integers(0, c, n)
    labels[2] = -100
    labels[3] = c - 1
    t = rng.dirichlet(np.ones(c), size=n).astype(dtype) if kind == "probs" else labels
    w = rng.random(c) + 0.5 if use_w else None
    sw = np.array([1.0, 0.5, 2.0, 0.0, 1.5]) if use_sw else None
    kw = dict(weight=w, sample_weight=sw, label_smoothing=eps, z_loss=z, reduction="none",
              return_grad=True, grad_loss=np.ones(n))
    if kind == "labels":  # the reference takes the one-hot rows; ignored rows checked apart
        onehot = np.zeros((n, c))
        onehot[np.arange(n), np.maximum(labels, 0)] = 1
        want, want_g = ref_cross_entropy(x, onehot, weight=w, sample_weight=sw,
                                         label_smoothing=eps, z_loss=z, reduction="none")
        want[2], want_g[2] = 0, 0
    else:
        want, want_g = ref_cross_entropy(x, t, weight=w, sample_weight=sw, label_smoothing=eps,
                                         z_loss=z, reduction="none")
    rtol, gtol = (1e-12, 1e-15) if dtype == np.float64 else (2e-6, 1e-9)
    runs = [xent.softmax_cross_entropy(x, t, n_threads=nt, **kw) for nt in (1, 2, 3)]
    for loss, grad in runs:
        np.testing.assert_allclose(loss, want, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(grad, want_g, rtol=1e-5, atol=gtol)
        assert loss.tobytes() == runs[0][0].tobytes() and grad.tobytes() == runs[0][1].tobytes()
    y = x.copy()
    _, g = xent.softmax_cross_entropy(y, t, grad_out=y, **kw)
    assert g is y and g.tobytes() == runs[0][1].tobytes()


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_long_rows_keep_the_non_finite_conventions(kind):
    """A long row holding a short row and -inf elsewhere (whole chunks of -inf,
    no target mass there) gives the short row's results, for +-inf and NaN
    rows too: the chunked path keeps the conventions of the row path."""
    from xent import _kernels as kernels
    c = kernels.long_row + kernels.row_chunk
    inf = np.inf
    short = np.array([[0.0, -inf, 1.0, 2.0], [inf, 0.0, 1.0, 2.0], [inf, 5.0, 1.0, inf],
                      [-inf, -inf, -inf, -inf], [0.0, np.nan, 1.0, 2.0], [3.0, 1.0, 2.0, 0.0]])
    labels = np.array([1, 1, 0, 2, 0, 3])
    long = np.full((len(short), c), -inf)
    cols = [0, 5, kernels.row_chunk + 3, c - 1]  # spread over the chunks
    long[:, cols] = short
    if kind == "labels":
        t_short, t_long = labels, np.array(cols)[labels]
    else:
        t_short = np.eye(4)[labels] * 0.75 + 0.0625
        t_long = np.zeros_like(long)
        t_long[:, cols] = t_short
    with np.errstate(invalid="ignore"):
        ls, gs = xent.softmax_cross_entropy(short, t_short, reduction="none", return_grad=True)
        ll, gl = xent.softmax_cross_entropy(long, t_long, reduction="none", return_grad=True)
    np.testing.assert_allclose(ll, ls, rtol=1e-15)
    np.testing.assert_allclose(gl[:, cols], gs, rtol=1e-15, atol=1e-300)
    rest = np.delete(gl, cols, axis=1)
    assert (np.isnan(rest) == np.isnan(gs[:, :1])).all()  # NaN rows stay NaN throughout
    assert not np.nan_to_num(rest, nan=0.0).any()


def test_nll_sample_of_weight_zero_counts_for_nothing():
    # regression: nll_loss gave 0 * inf = NaN for a sample of weight 0 with a
    # -inf log-probability (softmax_cross_entropy gave 0, as documented)
    lp = np.array([[-inf, 0.0], [np.log(0.5), np.log(0.5)], [np.nan, 0.0]])
    sw = np.array([0.0, 1.0, 0.0])
    for target in (np.array([0, 1, 1]), np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0]])):
        loss, grad = xent.nll_loss(lp, target, sample_weight=sw, reduction="none",
                                   return_grad=True)
        np.testing.assert_array_equal(loss, [0.0, np.log(2), 0.0])
        np.testing.assert_array_equal(grad, [[0, 0], [0, -1], [0, 0]])
        want = xent.softmax_cross_entropy(lp, target, sample_weight=sw, reduction="none")
        np.testing.assert_array_equal(loss, want)


@pytest.mark.parametrize("f", [xent.softmax_cross_entropy, xent.nll_loss])
def test_mean_with_a_zero_denominator_is_zero_even_for_infinite_losses(f):
    # regression: "mean" multiplied the sum by 0, so an infinite loss (z_loss at
    # a +inf logit, label smoothing at a -inf one) gave NaN instead of 0
    x = np.array([[inf, 0.0, -inf], [0.0, 1.0, 2.0]])
    kw = dict(weight=np.array([1.0, 0.0, 1.0]), label_smoothing=0.5, return_grad=True)
    if f is xent.softmax_cross_entropy:
        kw["z_loss"] = 1e-3
    loss, grad = f(x, np.array([1, 1]), **kw)  # every label has class weight 0
    assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("c", [3, 10, 100])
@pytest.mark.parametrize("case", ["labels", "probs", "smoothing", "focal", "weights"])
def test_reduced_loss_is_the_grouped_sum_of_the_rows(rng, c, case):
    """A reduced loss is the kernels' grouped sum of the per-row losses
    (xent._kernels.loss_sum: groups of 1024 rows) bit for bit, on the block
    path (which sums its groups without a per-row array) and the rows and
    streamed paths, for any thread count; and "mean" is that sum over the
    denominator."""
    from xent import _dispatch, _kernels
    n = 2 * 1024 + 517
    x = rng.standard_normal((n, c)) * 3
    y = rng.integers(0, c, n)
    y[::7] = -100
    fn, kw = xent.softmax_cross_entropy, {}
    target = y
    if case == "probs":
        target = rng.dirichlet(np.ones(c), n)
    elif case == "smoothing":
        kw = dict(label_smoothing=0.1)
    elif case == "focal":
        fn, kw = xent.softmax_focal_loss, dict(gamma=2.0)
    elif case == "weights":
        kw = dict(weight=rng.random(c) + 0.5, sample_weight=rng.random(n))
    rows = fn(x, target, reduction="none", **kw)
    want = _kernels.loss_sum(np.ascontiguousarray(rows, dtype=np.float64))
    assert want == pytest.approx(float(np.sum(rows)), rel=1e-12)
    for block, stream in [(1024, 1 << 62), (0, 1 << 62), (0, 0)]:
        with _dispatch.use_block_classes(block), _dispatch.use_stream_bytes(stream):
            for threads in (1, 2):
                got = fn(x, target, reduction="sum", n_threads=threads, **kw)
                assert got == want, (block, stream, threads)
                got, g = fn(x, target, reduction="sum", return_grad=True, n_threads=threads, **kw)
                assert got == want, (block, stream, threads)
    kept = np.count_nonzero(y != -100) if case in ("labels", "smoothing", "focal") else n
    if case != "weights":  # (times the reciprocal of the denominator)
        assert fn(x, target, **kw) == pytest.approx(want / kept, rel=3e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 10, 16, 63, 300, 70000])
def test_return_argmax_is_numpys_argmax(dtype, c):
    """return_argmax: each row's argmax from the pass (numpy.argmax's: first
    maximum, first NaN), -1 for the rows that count for nothing; on every
    path (blocks, the float32 register block's shapes, rows, chunks of long
    rows), for any thread count, and nothing else changes."""
    rng = np.random.default_rng(c)
    n = 3 if c > 10000 else 120
    x = rng.normal(size=(n, c)).astype(dtype)
    x[1, c // 2] = np.nan
    x[2, :] = -np.inf
    x[0, [0, c - 1]] = 50  # a tie: the first
    y = rng.integers(0, c, n)
    if n > 5:
        y[5] = -100
    sw = np.ones(n)
    sw[-1] = 0
    want = np.argmax(x, axis=1)
    want[-1] = -1
    if n > 5:
        want[5] = -1
    for nt in (1, 2, 3):
        loss, grad, am = xent.softmax_cross_entropy(x, y, sample_weight=sw, return_grad=True,
                                                     return_argmax=True, n_threads=nt)
        assert am.dtype == np.int64 and np.array_equal(am, want)
        ref = xent.softmax_cross_entropy(x, y, sample_weight=sw, return_grad=True, n_threads=nt)
        assert np.array_equal(loss, ref[0], equal_nan=True)
        assert np.array_equal(grad, ref[1], equal_nan=True)
    # probability targets and the batch shape
    t = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    _, am = xent.softmax_cross_entropy(x, t, return_argmax=True)
    assert np.array_equal(am, np.argmax(x, axis=1))
    x3 = rng.normal(size=(2, c, 3)).astype(dtype)
    _, am3 = xent.softmax_cross_entropy(x3, rng.integers(0, c, (2, 3)), axis=1, reduction="none",
                                        return_argmax=True)
    assert am3.shape == (2, 3) and np.array_equal(am3, np.argmax(x3, axis=1))


def test_return_argmax_bad_input():
    with pytest.raises(TypeError, match="^return_argmax: expected a bool, got 1"):
        xent.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), return_argmax=1)


@pytest.mark.parametrize("c", [2, 10, 16])
def test_return_argmax_keeps_the_float32_register_blocks_bits(c):
    rng = np.random.default_rng(c)
    x = rng.normal(size=(64, c)).astype(np.float32)
    y = rng.integers(0, c, 64)
    y[3] = -100
    a, ga = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True)
    b, gb, am = xent.softmax_cross_entropy(x, y, reduction="none", return_grad=True,
                                           return_argmax=True)
    assert np.array_equal(a, b) and np.array_equal(ga, gb)
    want = x.argmax(1)
    want[3] = -1
    assert np.array_equal(am, want)
    # with a softcap: the argmax of the capped logits (saturation ties: the first)
    _, am = xent.softmax_cross_entropy(np.array([[100.0, 200.0]]), np.array([1]), softcap=1.0,
                                       return_argmax=True)
    assert am[0] == 0
