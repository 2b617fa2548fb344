"""xent.metrics.log_loss: a NumPy float64 reference, scikit-learn parity (when
installed) for values, warnings and errors, and the compiled kernel under it."""

import doctest
import re
import warnings

import numpy as np
import pytest

import xent
from xent import metrics
from xent.metrics import log_loss
from xent import _kernels as _compiled  # must import: never skip


def ref_log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None):
    """scikit-learn's definition, written out in NumPy (1-D labels only)."""
    proba = np.asarray(y_proba)
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    y = np.asarray(y_true)
    if y.ndim == 2:
        y = y[:, 0]
    classes = np.unique(np.asarray(labels) if labels is not None else y)
    if proba.ndim == 1:
        proba = proba[:, None]
    if proba.shape[1] == 1:
        proba = np.concatenate([1 - proba, proba], axis=1)
    eps = np.finfo(proba.dtype).eps
    q = np.clip(proba.astype(np.float64), eps, 1 - eps)
    idx = np.searchsorted(classes, y)
    losses = -np.log(q[np.arange(len(y)), idx])
    if sample_weight is None:
        return losses.mean() if normalize else losses.sum()
    w = np.asarray(sample_weight, dtype=np.float64)
    return np.dot(losses, w) / w.sum() if normalize else np.dot(losses, w)


def _rng_case(n, c, seed, kind="int"):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(c), size=n)
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)  # every class present
    if kind == "str":
        names = np.array([f"class-{k:02d}" for k in range(c)])
        y = names[y]
    return y, proba


def _cases():
    yb, pb = _rng_case(40, 2, 1)
    ym, pm = _rng_case(60, 5, 2)
    ys, ps = _rng_case(30, 4, 3, "str")
    yl, pl = _rng_case(500, 50, 4)
    w = np.random.default_rng(5).random(60) + 0.1
    perfect = np.eye(3)[[0, 1, 2, 1]]
    return {
        "binary": (yb, pb, {}),
        "binary-1d": (yb, pb[:, 1], {}),
        "binary-column": (yb, pb[:, 1:], {}),
        "binary-strings-1d": (np.where(yb == 1, "yes", "no"), pb[:, 1], {}),
        "binary-bool": (yb.astype(bool), pb[:, 1], {}),
        "binary-float-labels": (yb.astype(float), pb, {}),
        "multiclass": (ym, pm, {}),
        "multiclass-lists": (ym.tolist(), pm.tolist(), {}),
        "multiclass-weights": (ym, pm, {"sample_weight": w}),
        "multiclass-sum": (ym, pm, {"normalize": False}),
        "multiclass-weights-sum": (ym, pm, {"sample_weight": w, "normalize": False}),
        "negative-weight": (ym, pm, {"sample_weight": w - 0.5}),
        "strings": (ys, ps, {}),
        "strings-object": (ys.astype(object), ps, {}),
        "strings-labels": (ys, ps, {"labels": sorted(set(ys.tolist()))}),
        "labels-extra-class": (ym[ym != 4], pm[ym != 4], {"labels": [0, 1, 2, 3, 4]}),
        "labels-single-class-in-y": ([3, 3, 3], [[0.1, 0.9], [0.4, 0.6], [0.2, 0.8]],
                                     {"labels": [1, 3]}),
        "labels-binary-1d": ([1, 1, 1], [0.9, 0.6, 0.8], {"labels": [0, 1]}),
        "large": (yl, pl, {}),
        "float32": (ym, pm.astype(np.float32), {}),
        "float16": (ym, pm.astype(np.float16), {}),
        "int-proba": ([0, 1, 2, 1], perfect.astype(int), {}),
        "perfect": ([0, 1, 2, 1], perfect, {}),
        "all-wrong": ([1, 2, 0, 0], perfect, {}),
        "zeros-and-ones-1d": ([0, 1, 1, 0], [0.0, 1.0, 0.0, 1.0], {}),
        "not-summing-to-one": (ym, pm * 1.01, {}),
        "uint8-labels": (np.array([1, 2, 2], dtype=np.uint8), [[0.3, 0.7], [0.4, 0.6], [0.1, 0.9]],
                         {"labels": [1, 2]}),
    }


CASES = _cases()
TOL = {np.dtype(np.float64): 1e-13, np.dtype(np.float32): 1e-6, np.dtype(np.float16): 2e-3}


def _tol(y_proba):
    arr = np.asarray(y_proba)
    return TOL.get(arr.dtype, 1e-13)


def _call(f, y, p, kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = f(y, p, **kw)
    return value, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("name", CASES)
def test_against_numpy_reference(name):
    y, p, kw = CASES[name]
    value, _ = _call(log_loss, y, p, kw)
    assert type(value) is float
    np.testing.assert_allclose(value, ref_log_loss(y, p, **kw), rtol=_tol(p), atol=1e-15)


@pytest.mark.parametrize("name", CASES)
def test_scikit_learn_parity(name):
    sk = pytest.importorskip("sklearn.metrics")
    y, p, kw = CASES[name]
    got, got_w = _call(log_loss, y, p, kw)
    want, want_w = _call(sk.log_loss, y, p, kw)
    np.testing.assert_allclose(got, want, rtol=_tol(p), atol=1e-15)
    # the same warnings (scikit-learn's messages say y_prob for our y_proba)
    want_w = [(c, m.replace("y_prob ", "y_proba ")) for c, m in want_w]
    assert got_w == want_w


def test_parity_is_exact_in_float64():
    sk = pytest.importorskip("sklearn.metrics")
    for name in ("binary", "multiclass", "strings", "perfect", "all-wrong", "multiclass-weights"):
        y, p, kw = CASES[name]
        assert log_loss(y, p, **kw) == pytest.approx(sk.log_loss(y, p, **kw), rel=1e-15, abs=1e-300)


def test_clipping_to_the_dtypes_eps():
    eps = np.finfo(np.float64).eps
    # a zero probability of the true class: -log(eps), not inf
    assert log_loss([0, 1], [[0.0, 1.0], [0.5, 0.5]], normalize=False) == pytest.approx(
        -np.log(eps) - np.log(0.5), rel=1e-15)
    # a probability of one: -log(1 - eps), as scikit-learn
    assert log_loss([0, 1], [[1.0, 0.0], [0.0, 1.0]]) == pytest.approx(-np.log1p(-eps), rel=1e-12)
    eps32 = float(np.finfo(np.float32).eps)
    got = log_loss([0, 1], np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32))
    assert got == pytest.approx(-np.log(eps32), rel=1e-15)


def test_rows_not_summing_to_one_warn_and_are_not_renormalised():
    p = np.array([[0.2, 0.7], [0.5, 0.5]])
    with pytest.warns(UserWarning, match="The y_proba values do not sum to one"):
        value = log_loss([1, 0], p)
    assert value == pytest.approx(-(np.log(0.7) + np.log(0.5)) / 2, rel=1e-15)
    # within sqrt(eps) of 1: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss([1, 0], np.array([[0.3, 0.7 + 1e-9], [0.5, 0.5]]))


def test_unsorted_labels_warn():
    with pytest.warns(UserWarning, match=re.escape(
            "Labels passed were ['b', 'a']. But this function assumes labels are ordered "
            "lexicographically. Pass the ordered labels=['a', 'b'] and ensure that the columns "
            "of y_proba correspond to this ordering.")):
        log_loss(["a", "b"], [[0.9, 0.1], [0.2, 0.8]], labels=["b", "a"])


def test_the_compiled_label_kernel_does_the_work(monkeypatch):
    from xent import _information

    calls = []
    real = _information.kernel

    def spy(name, dtype):
        calls.append((name, np.dtype(dtype)))
        return real(name, dtype)

    monkeypatch.setattr(_information, "kernel", spy)
    y, p, _ = CASES["multiclass"]
    log_loss(y, p)
    log_loss(y, p.astype(np.float32))
    assert calls == [("labels_rows", np.dtype(np.float64)),
                     ("labels_rows", np.dtype(np.float32))]


def test_label_indicator_y_true():
    p = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    y = np.array([[0, 1, 0], [1, 0, 0]])
    assert log_loss(y, p) == pytest.approx(-(np.log(0.7) + np.log(0.6)) / 2, rel=1e-15)
    multi = np.array([[0, 1, 1], [1, 0, 0]])
    want = -(np.log(0.7) + np.log(0.1) + np.log(0.6)) / 2
    assert log_loss(multi, p) == pytest.approx(want, rel=1e-15)
    try:
        from sklearn.metrics import log_loss as sk_log_loss
    except ImportError:
        return
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-15)
    assert log_loss(multi, p) == pytest.approx(sk_log_loss(multi, p), rel=1e-15)


def test_inputs_are_never_modified():
    y, p, _ = CASES["multiclass"]
    w = np.linspace(0.5, 2, len(y))
    saved = y.copy(), p.copy(), w.copy()
    log_loss(y, p, sample_weight=w, labels=np.arange(5))
    log_loss(y[:10] % 2, p[:10, 0])
    for a, b in zip((y, p, w), saved):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ errors

P = [[0.2, 0.8], [0.6, 0.4]]
Q3 = [[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]

# the messages scikit-learn gives, which log_loss mirrors (y_prob -> y_proba)
SKLEARN_MESSAGES = [
    (([1, 3], P), {"labels": [1, 2]},
     "y_true contains values {3} not belonging to the passed labels [1, 2]."),
    ((["a", "c"], P), {"labels": ["a", "b"]},
     "y_true contains values {'c'} not belonging to the passed labels ['a', 'b']."),
    (([0, 1, 2], [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]), {},
     "y_true and y_proba contain different number of classes: 3 vs 2. Please provide the true "
     "labels explicitly through the labels argument. Classes found in y_true: [0 1 2]"),
    (([0, 2], Q3), {},
     "y_true and y_proba contain different number of classes: 2 vs 3. Please provide the true "
     "labels explicitly through the labels argument. Classes found in y_true: [0 2]"),
    (([0, 1], Q3), {"labels": [0, 1]},
     "The number of classes in labels is different from that in y_proba. Classes found in "
     "labels: [0 1]"),
    (([0, 1], [0.2, 0.6]), {"labels": [0, 1, 2]},
     "The number of classes in labels is different from that in y_proba. Classes found in "
     "labels: [0 1 2]"),
    (([1, 1], P), {},
     "y_true contains only one label (1). Please provide the list of all expected class labels "
     "explicitly through the labels argument."),
    ((["x", "x"], P), {},
     "y_true contains only one label (x). Please provide the list of all expected class labels "
     "explicitly through the labels argument."),
    (([1, 1], P), {"labels": [1]},
     "The labels array needs to contain at least two labels, got [1]."),
]


@pytest.mark.parametrize("args,kw,message", SKLEARN_MESSAGES)
def test_scikit_learn_error_messages(args, kw, message):
    with pytest.raises(ValueError) as info:
        log_loss(*args, **kw)
    assert str(info.value) == message


@pytest.mark.parametrize("args,kw,message", SKLEARN_MESSAGES)
def test_scikit_learn_error_messages_parity(args, kw, message):
    sk = pytest.importorskip("sklearn.metrics")
    with pytest.raises(ValueError) as info:
        sk.log_loss(*args, **kw)
    assert str(info.value).replace("y_prob.", "y_proba.").replace("y_prob ", "y_proba ") == message


@pytest.mark.parametrize("y,p,kw,exc,pattern", [
    ([0, 1], [[0.2, 1.9], [0.6, 0.4]], {}, ValueError,
     r"^y_proba: expected probabilities in \[0, 1\], got values greater than 1: 1.9"),
    ([0, 1], [[0.2, -0.1], [0.6, 0.4]], {}, ValueError,
     r"^y_proba: expected probabilities in \[0, 1\], got values lower than 0: -0.1"),
    ([0, 1], [[0.2, np.nan], [0.6, 0.4]], {}, ValueError, r"^y_proba: Input contains NaN"),
    ([0, 1], [[0.2, np.inf], [0.6, 0.4]], {}, ValueError, r"^y_proba: Input contains infinity"),
    ([0, 1, 1], P, {}, ValueError,
     r"^y_proba: expected one row per sample of y_true \(3\), got 2 \(Found input variables "
     r"with inconsistent numbers of samples: \[2, 3\]\)"),
    ([0, 1], P, {"sample_weight": [1, 2, 3]}, ValueError,
     r"^sample_weight: expected one weight per sample \(2\), got 3"),
    ([0, 1], P, {"sample_weight": [[1, 2]]}, ValueError, r"^sample_weight: expected a 1-D array"),
    ([0, 1], P, {"sample_weight": [0, 0]}, ValueError,
     r"^sample_weight: Sample weights must contain at least one non-zero number"),
    ([0, 1], P, {"sample_weight": [1, -1]}, ZeroDivisionError,
     r"^sample_weight: Weights sum to zero, can't be normalized"),
    ([0, 1], P, {"sample_weight": [True, False]}, TypeError, r"^sample_weight: expected real numbers"),
    ([], np.zeros((0, 2)), {}, ValueError, r"^y_proba: expected at least one sample"),
    ([0, 1], [[[0.2, 0.8]], [[0.6, 0.4]]], {}, ValueError,
     r"^y_proba: expected a 1-D or 2-D array, got 3 dimension"),
    ([0, 1], [["a", "b"], ["c", "d"]], {}, TypeError, r"^y_proba: expected real probabilities"),
    ([0, 1], np.array(P, dtype=complex), {}, TypeError, r"^y_proba: expected real probabilities"),
    ([0, 1], P, {"normalize": 1}, TypeError, r"^normalize: expected a bool, got 1"),
    ([0.5, 1.5], P, {}, ValueError, r"^y_true: Unknown label type: continuous values"),
    ([None, 1], P, {}, ValueError, r"^y_true: Unknown label type"),
    (["a", 1], P, {}, ValueError, r"^y_true: Mix of label input types \(string and number\)"),
    ([0, 1], P, {"labels": [0, "a"]}, ValueError,
     r"^labels: Mix of label input types \(string and number\)"),
    ([0, 1], P, {"labels": [0, 1, 1]}, ValueError, r"^labels: expected distinct labels"),
    ([0, 1], P, {"labels": [[0, 1], [2, 3]]}, ValueError,
     r"^labels: expected a 1-D array .*Multioutput target data is not supported"),
    ([0, 1], P, {"y_pred": P}, ValueError, r"^Cannot use both `y_pred` and `y_proba`"),
    ([[0, 1], [1, 0]], P, {"labels": [0, 1]}, ValueError,
     r"^labels: not supported with a label-indicator y_true"),
    ([[0, 2], [1, 0]], P, {}, ValueError, r"^y_true: a 2-D y_true is a label-indicator matrix"),
    (np.zeros((2, 2, 2)), P, {}, ValueError, r"^y_true: expected a 1-D array of labels"),
])
def test_bad_input(y, p, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        log_loss(y, p, **kw)


def test_every_bad_input_scikit_learn_rejects_too():
    sk = pytest.importorskip("sklearn.metrics")
    cases = [
        ([0, 1], [[0.2, 1.9], [0.6, 0.4]], {}), ([0, 1], [[0.2, np.nan], [0.6, 0.4]], {}),
        ([0, 1, 1], P, {}), ([0, 1], P, {"sample_weight": [1, 2, 3]}),
        ([0, 1], P, {"sample_weight": [0, 0]}), ([0.5, 1.5], P, {}), (["a", 1], P, {}),
        ([0, 1], P, {"labels": [0, "a"]}), ([None, 1], P, {}), ([], np.zeros((0, 2)), {}),
    ]
    for y, p, kw in cases:
        with pytest.raises(ValueError):
            sk.log_loss(y, p, **kw)
        with pytest.raises(ValueError):
            log_loss(y, p, **kw)


def test_the_y_pred_alias_and_one_row_of_labels_as_scikit_learn():
    """scikit-learn 1.9 renamed y_pred to y_proba: the old keyword still works
    with a FutureWarning; labels of shape (1, C) are its labels."""
    with pytest.warns(FutureWarning, match="`y_pred` was renamed to `y_proba` in version 1.9"):
        got = log_loss([0, 1], y_pred=P)
    assert got == log_loss([0, 1], P)
    with pytest.raises(ValueError, match="^y_proba: expected the predicted probabilities"):
        log_loss([0, 1])
    assert log_loss([0, 1], P, labels=[[0, 1]]) == log_loss([0, 1], P, labels=[0, 1])
    sk = pytest.importorskip("sklearn.metrics")
    with pytest.warns(FutureWarning):
        assert got == pytest.approx(sk.log_loss([0, 1], y_pred=P), rel=1e-15)
    assert log_loss([0, 1], P, labels=[[0, 1]]) == pytest.approx(
        sk.log_loss([0, 1], P, labels=[[0, 1]]), rel=1e-15)
    for exc, kw in ((ValueError, {"y_proba": P, "y_pred": P}),
                    (ZeroDivisionError, {"y_proba": P, "sample_weight": [1, -1]})):
        with pytest.raises(exc):
            sk.log_loss([0, 1], **kw)
        with pytest.raises(exc):
            log_loss([0, 1], **kw)


def test_docstring_examples():
    result = doctest.testmod(metrics)
    assert result.attempted > 0 and result.failed == 0
    for section in ("Parameters", "Returns", "Examples"):
        assert section in log_loss.__doc__
    assert xent.metrics.log_loss is log_loss
