"""The common call (small C-contiguous float32/float64 input, 1-D
int32/int64 labels or targets of the input's dtype, default options, with
or without a preallocated output) of
softmax_cross_entropy, logsumexp, softmax, log_softmax and
binary_cross_entropy_with_logits takes a short, compiled path (src/fast.pxi):
the same bits as the general path, and the same errors for the same bad
input (the short path never raises: it leaves anything uncertain to the
general path)."""

import contextlib

import numpy as np
import pytest

import xent
from xent import _cross_entropy
from xent import _kernels as _compiled  # must import: never skip


FAST = ("fast_ce", "fast_rows", "fast_bce")


@contextlib.contextmanager
def general_path():
    """Every call in it takes the general path: the compiled common calls
    answer None ("not the common call"), as they do for any other input."""
    saved = {name: getattr(_compiled, name) for name in FAST}
    for name in FAST:
        setattr(_compiled, name, lambda *a: None)
    try:
        yield
    finally:
        for name, f in saved.items():
            setattr(_compiled, name, f)


def on_general_path(f, *args, **kw):
    with general_path():
        return f(*args, **kw)


def general(x, y, **kw):
    return on_general_path(xent.softmax_cross_entropy, x, y, **kw)


def answers(monkeypatch):
    """A list recording, for each compiled common call made from now on,
    whether it answered (returned a result, not None)."""
    answered = []
    for name in FAST:
        def spy(*a, _real=getattr(_compiled, name)):
            r = _real(*a)
            answered.append(r is not None)
            return r
        monkeypatch.setattr(_compiled, name, spy)
    return answered


def test_the_short_path_is_taken(monkeypatch):
    answered = answers(monkeypatch)
    xent.softmax_cross_entropy(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
    assert answered == [True]
    general(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
    assert answered == [True]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(64, 10), (1, 1), (3, 1000), (16, 65), (40, 7)])
def test_same_bits_as_the_general_path(dtype, label_dtype, shape):
    rng = np.random.default_rng(sum(shape))
    n, c = shape
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x[0, 0] = -np.inf
    y = rng.integers(0, c, n).astype(label_dtype)
    y[::5] = -100
    for return_grad in (False, True):
        fast = xent.softmax_cross_entropy(x, y, return_grad=return_grad)
        slow = general(x, y, return_grad=return_grad)
        fast, slow = (fast, slow) if return_grad else ((fast,), (slow,))
        for a, b in zip(fast, slow):
            assert type(a) is type(b) and a.dtype == b.dtype
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


OPTIONS = [  # the options the compiled common call also takes (src/fast.pxi: fast_ce)
    dict(label_smoothing=0.1), dict(label_smoothing=1), dict(ignore_index=2), dict(ignore_index=0),
    dict(ignore_index=-(2**63)), dict(z_loss=1e-4), dict(z_loss=3), dict(reduction="sum"),
    dict(reduction="none"), dict(weight="f64"), dict(weight="f32"), dict(weight="zeros"),
    dict(weight="tiny"), dict(weight="negative"), dict(weight="nan"),
    dict(weight="f32", label_smoothing=0.2, z_loss=0.5, ignore_index=1, reduction="mean"),
    dict(weight="f64", reduction="none", label_smoothing=0.3),
    dict(probs="same"), dict(probs="other"), dict(probs="same", weight="f32", reduction="sum"),
    dict(probs="same", label_smoothing=0.1, z_loss=0.01, reduction="none"),
    dict(sample_weight="f64"), dict(sample_weight="f32"), dict(sample_weight="zeros"),
    dict(sample_weight="tiny"), dict(sample_weight="negative"),
    dict(sample_weight="f32", weight="f64", label_smoothing=0.1),
    dict(sample_weight="f64", probs="same"), dict(sample_weight="f64", reduction="sum"),
]


def _weight(kind, c, dtype):
    rng = np.random.default_rng(c)
    w = rng.random(c) + 0.5
    w = {"f64": w, "f32": w.astype(np.float32), "zeros": np.zeros(c), "tiny": np.full(c, 1e-310),
         "negative": w - 1.0, "nan": np.where(np.arange(c) == 1, np.nan, w)}[kind]
    return w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (1, 1), (3, 1000), (16, 65)])
@pytest.mark.parametrize("k", range(len(OPTIONS)))
def test_options_same_bits_as_the_general_path(dtype, shape, k, monkeypatch):
    rng = np.random.default_rng(k)
    n, c = shape
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x[0, 0] = -np.inf
    kw = dict(OPTIONS[k])
    y = rng.integers(0, c, n)
    y[::5] = kw.get("ignore_index", -100)
    probs = kw.pop("probs", None)
    if probs:  # probability rows (one of them not normalised, one with zeros)
        ty = dtype if probs == "same" else (np.float64 if dtype == np.float32 else np.float32)
        y = rng.dirichlet(np.ones(c), n).astype(ty)
        y[0] *= 1.5
        y[-1, ::2] = 0
    if "weight" in kw:
        kw["weight"] = _weight(kw["weight"], c, dtype)
    if "sample_weight" in kw:
        kw["sample_weight"] = _weight(kw["sample_weight"], n, dtype)
    answered = []  # whether the compiled call took it (not None)
    real = _compiled.fast_ce

    def spy(*a):
        r = real(*a)
        answered.append(r is not None)
        return r

    monkeypatch.setattr(_cross_entropy._k, "fast_ce", spy)
    for return_grad in (False, True):
        with np.errstate(all="ignore"):
            fast = xent.softmax_cross_entropy(x, y, return_grad=return_grad, **kw)
            slow = general(x, y, return_grad=return_grad, **kw)
        fast, slow = (fast, slow) if return_grad else ((fast,), (slow,))
        for a, b in zip(fast, slow):
            assert type(a) is type(b) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    # asked both times; it answers all but the weights whose mean it leaves to
    # the general path when 1 / (the mean's denominator) is not finite
    # (subnormal weights: rescaled there; NaN)
    leaves = probs == "other"  # (a target of another dtype: the general path casts it)
    if OPTIONS[k].get("reduction", "mean") == "mean" and not leaves:
        with np.errstate(all="ignore"):
            kept = np.ones(n, bool) if probs else y != kw.get("ignore_index", -100)
            d = np.ones(n)
            if "weight" in kw and not probs:
                d[kept] = np.asarray(kw["weight"], np.float64)[y[kept]]
            if "sample_weight" in kw:
                d = d * np.asarray(kw["sample_weight"], np.float64)
            d = d[kept].sum()
            leaves = bool(d != 0 and not np.isfinite(1 / d))
    assert answered == [not leaves] * 2


@pytest.mark.parametrize("name,part", [("weight", slice(0, 3)), ("sample_weight", slice(4, 6))])
def test_weights_apart_from_the_gradient_output(name, part):
    # grad_out that is the weights' memory: the general path's error
    x = np.zeros((2, 3))
    w = np.ones(6)
    kw = {name: w[part]}
    with pytest.raises(ValueError) as fast:
        xent.softmax_cross_entropy(x, np.array([0, 1]), return_grad=True, grad_out=w.reshape(2, 3), **kw)
    with pytest.raises(ValueError) as slow:
        general(x, np.array([0, 1]), return_grad=True, grad_out=w.reshape(2, 3), **kw)
    assert str(fast.value) == str(slow.value)


def test_every_label_ignored_gives_zero():
    x = np.ones((3, 4), np.float32)
    loss, grad = xent.softmax_cross_entropy(x, np.full(3, -100), return_grad=True)
    assert loss == 0 and loss.dtype == np.float32 and not grad.any()


def test_inputs_are_not_written():
    x = np.arange(12.0).reshape(3, 4)
    y = np.array([0, 3, -100], np.int32)
    x.flags.writeable = False
    y.flags.writeable = False
    xent.softmax_cross_entropy(x, y, return_grad=True)
    assert (x == np.arange(12.0).reshape(3, 4)).all() and list(y) == [0, 3, -100]


BAD = [
    (np.zeros((2, 3)), np.array([0, 3])),           # a label past the classes
    (np.zeros((2, 3)), np.array([0, -1])),          # negative, not ignore_index
    (np.zeros((2, 3)), np.array([0, -101])),
    (np.zeros((2, 3)), np.array([0, 2**40])),
    (np.zeros((2, 3)), np.array([0, 1, 2])),        # one label too many
    (np.zeros((2, 3)), np.array([[0, 1]], np.int64)),  # 2-D labels (not (B, 1): those are Keras')
    (np.zeros((2, 3)), np.array([0.0, 1.0])),       # float labels: probabilities, wrong shape
    (np.zeros((2, 0)), np.zeros(2, np.int64)),      # no classes
    (np.zeros((2, 3), np.complex128), np.array([0, 1])),
    (np.zeros((2, 3), np.float32), np.array([0, 5], np.int32)),
]


@pytest.mark.parametrize("x,y", BAD)
def test_same_errors_as_the_general_path(x, y):
    with pytest.raises((TypeError, ValueError)) as fast:
        xent.softmax_cross_entropy(x, y, return_grad=True)
    with pytest.raises((TypeError, ValueError)) as slow:
        general(x, y, return_grad=True)
    assert type(fast.value) is type(slow.value) and str(fast.value) == str(slow.value)


@pytest.mark.parametrize("kw", [dict(axis=-1.0), dict(ignore_index=-100.0),
                                dict(label_smoothing=False), dict(reduction=np.str_("bad")),
                                dict(return_grad=1), dict(z_loss="0"),
                                dict(label_smoothing=np.float64(0.1)), dict(label_smoothing=1.5),
                                dict(label_smoothing=float("nan")), dict(z_loss=-1.0),
                                dict(z_loss=float("inf")), dict(z_loss=10**400),
                                dict(ignore_index=2**63), dict(ignore_index=True),
                                dict(reduction="batchmean"), dict(weight=[1.0, 2.0, 3.0]),
                                dict(weight=np.ones(3, np.float16)), dict(weight=np.ones(4)),
                                dict(weight=np.ones((1, 3))), dict(weight=np.ones(3, np.int64)),
                                dict(sample_weight=[1.0, 2.0]), dict(sample_weight=np.ones(3)),
                                dict(sample_weight=np.ones((2, 1))), dict(sample_weight=np.ones(2, bool))])
def test_defaults_of_another_type_go_to_the_general_path(kw, monkeypatch):
    x, y = np.zeros((2, 3)), np.array([0, 1])
    try:
        want = general(x, y, **kw)
    except (TypeError, ValueError) as e:
        answered = answers(monkeypatch)
        with pytest.raises(type(e), match=None) as got:
            xent.softmax_cross_entropy(x, y, **kw)
        assert str(got.value) == str(e)
    else:
        answered = answers(monkeypatch)
        got = xent.softmax_cross_entropy(x, y, **kw)
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    assert not any(answered)  # (the compiled call declined it, or was not asked)


# --- the other functions with a compiled common call ----------------------

ROWS = {  # name: (call, the general path's call)
    "logsumexp": (lambda x: xent.logsumexp(x), lambda x: on_general_path(xent.logsumexp, x)),
    "softmax": (lambda x: xent.softmax(x), lambda x: on_general_path(xent.softmax, x)),
    "log_softmax": (lambda x: xent.log_softmax(x), lambda x: on_general_path(xent.log_softmax, x)),
}


def _same(fast, slow):
    fast, slow = (fast, slow) if isinstance(fast, tuple) else ((fast,), (slow,))
    for a, b in zip(fast, slow):
        assert type(a) is type(b) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _same_outcome(fast, slow):
    """fast() raises what slow() raises (type and message), or gives its bits"""
    try:
        want = slow()
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)) as got:
            fast()
        assert str(got.value) == str(e)
    else:
        _same(fast(), want)


@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (1, 1), (3, 1000), (16, 65), (40, 7), (200, 150),
                                   (10,), (1,), (1000,), (32767,), (40000,)])
def test_rows_same_bits_as_the_general_path(name, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.flat[0] = -np.inf
    if len(shape) == 2 and shape[0] > 2:
        x[-1] = np.nan
    fast, slow = ROWS[name]
    _same(fast(x), slow(x))


@pytest.mark.parametrize("name", list(ROWS))
def test_rows_short_path_is_taken(name, monkeypatch):
    from xent import _softmax

    answered = []  # whether the compiled call took it (not None)
    real = _compiled.fast_rows

    def spy(*a):
        r = real(*a)
        answered.append(r is not None)
        return r

    monkeypatch.setattr(_softmax._k, "fast_rows", spy)
    ROWS[name][0](np.zeros((4, 3)))
    ROWS[name][0](np.zeros(5, np.float32))  # (a vector: one row)
    assert answered == [True, True]


@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.parametrize("x", [np.zeros((3, 4), np.float16), np.zeros((3, 4), order="F")[:, ::2],
                               np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.zeros((2, 3, 4)),
                               np.arange(5.0), np.zeros((300, 300), np.float32),
                               np.zeros((3, 4)).astype(">f8"), np.zeros((3, 0)), np.zeros((0, 3)),
                               [[1.0, 2.0]], np.zeros((3, 4), np.int64), np.zeros((3, 4), complex)])
def test_rows_other_inputs_take_the_general_path(name, x):
    fast, slow = ROWS[name]
    _same_outcome(lambda: fast(x), lambda: slow(x))


def _bce_general(x, t, **kw):
    return on_general_path(xent.binary_cross_entropy_with_logits, x, t, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (1, 1), (7,), (1,), (3, 1000), (2, 10000), (1, 20000)])
def test_bce_same_bits_as_the_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    t = (rng.random(shape) < 0.4).astype(dtype)
    t.reshape(-1)[::3] = 0.25
    x.reshape(-1)[:3] = [np.inf, -np.inf, np.nan][:x.size]
    for return_grad in (False, True):
        _same(xent.binary_cross_entropy_with_logits(x, t, return_grad=return_grad),
              _bce_general(x, t, return_grad=return_grad))


BCE_OPTIONS = [  # the options fast_bce also takes (reduction, smoothing, pos_weight)
    dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2), dict(label_smoothing=1),
    dict(pos_weight="row"), dict(pos_weight="one"), dict(pos_weight="row32"),
    dict(pos_weight="row", reduction="none", label_smoothing=0.1),
    dict(pos_weight="one", reduction="sum"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (1, 1), (7,), (2,), (1,), (40, 1), (3, 1000), (1, 20000),
                                   (3, 5000)])
@pytest.mark.parametrize("k", range(len(BCE_OPTIONS)))
def test_bce_options_same_bits_as_the_general_path(dtype, shape, k, monkeypatch):
    rng = np.random.default_rng(k)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    t = (rng.random(shape) < 0.4).astype(dtype)
    t.reshape(-1)[::3] = 0.25
    x.reshape(-1)[:3] = [np.inf, -np.inf, np.nan][:x.size]
    kw = dict(BCE_OPTIONS[k])
    c = shape[-1]
    pw = kw.get("pos_weight")
    if pw is not None:
        kw["pos_weight"] = {"row": rng.random(c) * 3, "row32": (rng.random(c) * 3).astype(np.float32),
                            "one": np.array([2.5])}[pw]
    answered = []
    real = _compiled.fast_bce

    def spy(*a):
        r = real(*a)
        answered.append(r is not None)
        return r

    monkeypatch.setattr(_compiled, "fast_bce", spy)
    for return_grad in (False, True):
        _same(xent.binary_cross_entropy_with_logits(x, t, return_grad=return_grad, **kw),
              _bce_general(x, t, return_grad=return_grad, **kw))
    assert answered == [x.size > 1] * 2  # (one element: see the next test)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_one_element_nan_as_the_general_path(dtype, reduction):
    # one element takes the general path (its weights' views there have
    # nonzero strides: the kernel's other body, whose NaN has the other sign)
    for x, t in [([np.nan], [0.5]), ([-1.0], [np.nan]), ([np.nan, 1.0], [0.5, 0.5])]:
        x, t = np.array(x, dtype), np.array(t, dtype)
        _same(xent.binary_cross_entropy_with_logits(x, t, return_grad=True, reduction=reduction),
              _bce_general(x, t, return_grad=True, reduction=reduction))


@pytest.mark.parametrize("kw", [dict(pos_weight=[1.0, 2.0, 3.0]), dict(pos_weight=np.ones(3, np.int64)),
                                dict(pos_weight=np.ones(2)), dict(pos_weight=np.ones((1, 3))),
                                dict(pos_weight=2.0), dict(pos_weight=np.ones(3, np.float16)),
                                dict(reduction="batchmean"), dict(reduction=np.str_("sum")),
                                dict(label_smoothing=1.5), dict(label_smoothing=np.float32(0.5)),
                                dict(label_smoothing=float("nan")), dict(label_smoothing=True)])
def test_bce_options_of_another_kind_same_outcome_as_the_general_path(kw, monkeypatch):
    x, t = np.zeros((2, 3)), np.full((2, 3), 0.5)
    answered = answers(monkeypatch)  # (the general path's calls are not recorded)
    _same_outcome(lambda: xent.binary_cross_entropy_with_logits(x, t, return_grad=True, **kw),
                  lambda: _bce_general(x, t, return_grad=True, **kw))
    assert not any(answered)  # (the compiled call declined it, or was not asked)


def test_bce_pos_weight_apart_from_the_gradient_output():
    x, t, buf = np.zeros((2, 3)), np.full((2, 3), 0.5), np.ones(6)
    _same_outcome(
        lambda: xent.binary_cross_entropy_with_logits(x, t, pos_weight=buf[:3], return_grad=True,
                                                      grad_out=buf.reshape(2, 3)),
        lambda: _bce_general(x, t, pos_weight=buf[:3], return_grad=True, grad_out=buf.reshape(2, 3)))


BAD_BCE = [
    (np.zeros((2, 3)), np.full((2, 3), 1.5)),        # target outside [0, 1]
    (np.zeros((2, 3)), np.full((2, 3), -0.5)),
    (np.zeros((2, 3)), np.zeros((3, 2))),            # another shape
    (np.zeros((2, 3)), np.zeros((2, 3), np.float32)),  # another dtype: converted, general path
    (np.zeros((2, 3), np.float32), np.zeros(3, np.float32)),
    (np.zeros((2, 3), complex), np.zeros((2, 3))),
    (np.zeros((2, 3)), np.zeros((2, 3), complex)),
]


@pytest.mark.parametrize("x,t", BAD_BCE)
def test_bce_same_errors_or_results_as_the_general_path(x, t):
    _same_outcome(lambda: xent.binary_cross_entropy_with_logits(x, t, return_grad=True),
                  lambda: _bce_general(x, t, return_grad=True))


# --- preallocated outputs (out=/grad_out=): the same bits and object as the
# general path, and the same errors for outputs it refuses

def _calls(name, x, t):
    """(the call with its output o, the general path's call) of name"""
    return {
        "softmax": (lambda o: xent.softmax(x, out=o), lambda o: on_general_path(xent.softmax, x, out=o)),
        "log_softmax": (lambda o: xent.log_softmax(x, out=o),
                        lambda o: on_general_path(xent.log_softmax, x, out=o)),
        "ce": (lambda o: xent.softmax_cross_entropy(x, t, return_grad=True, grad_out=o),
               lambda o: on_general_path(xent.softmax_cross_entropy, x, t, return_grad=True, grad_out=o)),
        "bce": (lambda o: xent.binary_cross_entropy_with_logits(x, t, return_grad=True, grad_out=o),
                lambda o: on_general_path(xent.binary_cross_entropy_with_logits, x, t, return_grad=True,
                                          grad_out=o)),
    }[name]


def _problem(name, dtype, shape=(40, 7)):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x[0, 0] = -np.inf
    if name == "bce":
        t = (rng.random(shape) < 0.4).astype(dtype)
    else:
        t = rng.integers(0, shape[1], shape[0])
        t[::5] = -100
    return x, t


OUT_NAMES = ["softmax", "log_softmax", "ce", "bce"]


@pytest.mark.parametrize("name", OUT_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_place", [False, True])
def test_outputs_same_bits_and_object_as_the_general_path(name, dtype, in_place):
    x, t = _problem(name, dtype)
    fast, slow = _calls(name, x.copy() if in_place else x, t)
    if in_place:  # the in-place form: out is the input itself
        xf, xs = x.copy(), x.copy()
        fast, _ = _calls(name, xf, t)
        slow_call = _calls(name, xs, t)[1]
        got, want, of, os_ = fast(xf), slow_call(xs), xf, xs
    else:
        of, os_ = np.full_like(x, 7.0), np.full_like(x, 7.0)
        got, want = fast(of), slow(os_)
    g = got[1] if isinstance(got, tuple) else got
    w = want[1] if isinstance(want, tuple) else want
    assert g is of and w is os_
    _same(got, want)


@pytest.mark.parametrize("name", ["softmax", "ce"])
def test_outputs_take_the_short_path(name, monkeypatch):
    from xent import _softmax

    x, t = _problem(name, np.float32)
    answered = answers(monkeypatch)
    out = np.empty_like(x)
    got = _calls(name, x, t)[0](out)
    assert answered == [True] and (got is out or got[1] is out)


def _readonly(x):
    o = np.empty_like(x)
    o.flags.writeable = False
    return o


BAD_OUTPUTS = [  # an output from (x, t)
    lambda x, t: np.empty(x.shape, np.float16), lambda x, t: np.empty(x.shape[::-1], x.dtype),
    lambda x, t: np.empty(x.shape, x.dtype)[:, ::-1],
    lambda x, t: np.empty((x.shape[0], x.shape[1] + 1), x.dtype)[:, 1:],
    lambda x, t: x[:, :],  # a view of x: the in-place form
    lambda x, t: x[::-1],  # x reversed: overlapping, not x itself
    lambda x, t: np.empty(x.shape, x.dtype, order="F"), lambda x, t: [[0.0]],
    lambda x, t: np.zeros(x.shape, np.int64), lambda x, t: _readonly(x),
    lambda x, t: t if t.shape == x.shape else np.empty_like(x),  # (bce) the target itself
]


@pytest.mark.parametrize("name", OUT_NAMES)
@pytest.mark.parametrize("k", range(len(BAD_OUTPUTS)))
def test_outputs_same_errors_or_results_as_the_general_path(name, k):
    x1, t1 = _problem(name, np.float64)
    x2, t2 = _problem(name, np.float64)
    fast, slow = _calls(name, x1, t1)[0], _calls(name, x2, t2)[1]
    o1, o2 = BAD_OUTPUTS[k](x1, t1), BAD_OUTPUTS[k](x2, t2)
    _same_outcome(lambda: fast(o1), lambda: slow(o2))
    assert x1.tobytes() == x2.tobytes()


@pytest.mark.parametrize("name", OUT_NAMES)
def test_outputs_overlapping_the_input_are_refused_on_both_paths(name):
    x, t = _problem(name, np.float32)
    base = np.zeros((x.shape[0] + 1, x.shape[1]), x.dtype)
    base[:-1] = x
    xs, out = base[:-1], base[1:]  # both C-contiguous, one row apart
    before = base.copy()
    for call in _calls(name, xs, t):
        with pytest.raises(ValueError, match="must not overlap"):
            call(out)
    assert base.tobytes() == before.tobytes()


@pytest.mark.parametrize("n_threads", [None, 1, 2, -1, 10**6])
def test_any_thread_count_takes_the_short_path(n_threads, monkeypatch):
    """The common call runs on one thread (its inputs are below the parallel
    threshold) and no result depends on the thread count: any valid count
    takes it, with the general path's bits."""
    x, t = _problem("ce", np.float32)
    b = (x > 0).astype(x.dtype)
    answered = answers(monkeypatch)  # (the general path's calls are not recorded)
    for fast, slow in [
        (lambda: xent.softmax_cross_entropy(x, t, return_grad=True, n_threads=n_threads),
         lambda: general(x, t, return_grad=True, n_threads=n_threads)),
        (lambda: xent.logsumexp(x, n_threads=n_threads),
         lambda: on_general_path(xent.logsumexp, x, n_threads=n_threads)),
        (lambda: xent.softmax(x, n_threads=n_threads),
         lambda: on_general_path(xent.softmax, x, n_threads=n_threads)),
        (lambda: xent.binary_cross_entropy_with_logits(x, b, return_grad=True, n_threads=n_threads),
         lambda: on_general_path(xent.binary_cross_entropy_with_logits, x, b, return_grad=True,
                                 n_threads=n_threads)),
    ]:
        before = len(answered)
        _same(fast(), slow())
        assert answered[before:] == [True]


@pytest.mark.parametrize("n_threads", [0, 1.5, True, "2", np.int64(2), -(10**30)])
def test_other_thread_counts_get_the_general_paths_outcome(n_threads):
    x, t = _problem("ce", np.float64)
    _same_outcome(lambda: xent.softmax_cross_entropy(x, t, n_threads=n_threads),
                  lambda: general(x, t, n_threads=n_threads))
    _same_outcome(lambda: xent.logsumexp(x, n_threads=n_threads),
                  lambda: on_general_path(xent.logsumexp, x, n_threads=n_threads))
