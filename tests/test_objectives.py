"""xent.objectives: gradients and hessian diagonals for gradient boosting.

The hessians against finite differences of the gradients (float64) and
mpmath at extreme margins; the policies; every path of the softmax family
(blocks, rows, chunks) and every thread count giving the same bits; bad
input; and, when XGBoost and LightGBM are importable (.ci/run installs them),
real boosting runs reproducing their native objectives.
"""

import importlib.util

import mpmath
import numpy as np
import pytest

import xent._kernels  # noqa: F401  (the compiled extension must import)
import xent
from xent import objectives as O

HAVE_XGB = importlib.util.find_spec("xgboost") is not None
HAVE_LGB = importlib.util.find_spec("lightgbm") is not None


# --- float64 references, from the definitions --------------------------------

def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _p_one_minus_p(x):
    """p (1 - p) of the softmax, 1 - p of each row's max from the sum of
    the other terms (no cancellation near p = 1)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    s = e.sum(axis=1, keepdims=True)
    top = np.argmax(x, axis=1)
    rest = e.copy()
    rest[np.arange(len(x)), top] = 0
    p = e / s
    q = np.where(np.arange(x.shape[1]) == top[:, None], rest.sum(axis=1, keepdims=True) / s, 1 - p)
    return p * q


def _lse(x):
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def ref_softmax_loss(x, y, sw=None, eps=0.0):
    c = x.shape[1]
    a = (1 - eps) * np.eye(c)[y] + eps / c
    loss = (a * (_lse(x)[:, None] - x)).sum(axis=1)
    return loss if sw is None else loss * sw


def ref_softmax_focal_loss(x, y, gamma, alpha=None, sw=None):
    p = _softmax(x)[np.arange(len(y)), y]
    al = 1.0 if alpha is None else np.broadcast_to(alpha, (x.shape[1],))[y]
    loss = -al * (1 - p) ** gamma * np.log(p)
    return loss if sw is None else loss * sw


def ref_logistic_loss(x, t, sw=None):
    loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return loss if sw is None else loss * (sw if x.ndim == 1 else sw[:, None])


def ref_binary_focal_loss(x, t, gamma, alpha=None, sw=None):
    p = 1 / (1 + np.exp(-x))
    q = t * (1 - p) + (1 - t) * p
    a = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    loss = a * q ** gamma * ref_logistic_loss(x, t)
    return loss if sw is None else loss * (sw if x.ndim == 1 else sw[:, None])


# the objectives with their references and option sets (a small registry)
SOFTMAX_CASES = [
    ("softmax", O.softmax_grad_hess, ref_softmax_loss, {}),
    ("softmax-smooth", O.softmax_grad_hess, ref_softmax_loss, {"label_smoothing": 0.1}),
    ("softmax_focal-2", O.softmax_focal_grad_hess, ref_softmax_focal_loss,
     {"gamma": 2.0, "alpha": 0.3}),
    ("softmax_focal-1.5", O.softmax_focal_grad_hess, ref_softmax_focal_loss, {"gamma": 1.5}),
    ("softmax_focal-0.5", O.softmax_focal_grad_hess, ref_softmax_focal_loss, {"gamma": 0.5}),
    ("softmax_focal-1", O.softmax_focal_grad_hess, ref_softmax_focal_loss, {"gamma": 1.0}),
]
BINARY_CASES = [
    ("logistic", O.logistic_grad_hess, ref_logistic_loss, {}),
    ("focal-2", O.binary_focal_grad_hess, ref_binary_focal_loss, {"gamma": 2.0, "alpha": 0.25}),
    ("focal-0.5", O.binary_focal_grad_hess, ref_binary_focal_loss, {"gamma": 0.5}),
    ("focal-3.3", O.binary_focal_grad_hess, ref_binary_focal_loss, {"gamma": 3.3}),
]


def _ref_kwargs(name, kw, sw):
    k = {"sw": sw}
    if "label_smoothing" in kw:
        k["eps"] = kw["label_smoothing"]
    if "gamma" in kw:
        k["gamma"] = kw["gamma"]
    if "alpha" in kw:
        k["alpha"] = kw["alpha"]
    return k


def _own_derivative(fn, x, *args, h=1e-6, **kw):
    """d grad[idx] / d x[idx] for every element by central differences."""
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        out[idx] = (fn(up, *args, **kw)[0][idx] - fn(down, *args, **kw)[0][idx]) / (2 * h)
    return out


def _loss_gradient(ref, x, *args, h=1e-6, **kw):
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        lu, ld = ref(up, *args, **kw), ref(down, *args, **kw)
        at = idx[:lu.ndim]  # (only this sample's loss changes)
        out[idx] = (lu[at] - ld[at]) / (2 * h)
    return out


@pytest.mark.parametrize("c", [2, 5, 70])
@pytest.mark.parametrize("name,fn,ref,kw", SOFTMAX_CASES, ids=[c[0] for c in SOFTMAX_CASES])
def test_softmax_objectives_by_finite_differences(name, fn, ref, kw, c):
    rng = np.random.default_rng(c)
    n = 21
    x = rng.normal(size=(n, c)) * 3
    y = rng.integers(0, c, n)
    sw = rng.uniform(0, 2, n)
    sw[3] = 0.0
    loss, g, h = fn(x, y, sample_weight=sw, return_loss=True, **kw)
    rk = _ref_kwargs(name, kw, sw)
    np.testing.assert_allclose(loss, ref(x, y, **rk), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, _loss_gradient(ref, x, y, **rk), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, _own_derivative(fn, x, y, sample_weight=sw, **kw),
                               rtol=1e-5, atol=1e-8)
    assert np.all(g[3] == 0)
    # the same values in float32 (its rounding), C- and F-ordered
    g32, h32 = fn(x.astype(np.float32), y.astype(np.int32), sample_weight=sw, **kw)
    assert g32.dtype == h32.dtype == np.float32
    np.testing.assert_allclose(h32, h, rtol=1e-4, atol=1e-6)
    gf, hf = fn(np.asfortranarray(x), y, sample_weight=sw, **kw)
    assert np.array_equal(gf, g) and np.array_equal(hf, h)


@pytest.mark.parametrize("shape", [(40,), (13, 3)])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("name,fn,ref,kw", BINARY_CASES, ids=[c[0] for c in BINARY_CASES])
def test_binary_objectives_by_finite_differences(name, fn, ref, kw, soft, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape) * 4
    t = rng.uniform(size=shape) if soft else rng.integers(0, 2, shape).astype(np.float64)
    sw = rng.uniform(0, 2, shape[0])
    loss, g, h = fn(x, t, sample_weight=sw, return_loss=True, **kw)
    rk = _ref_kwargs(name, kw, sw)
    np.testing.assert_allclose(loss, ref(x, t, **rk), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g, _loss_gradient(ref, x, t, **rk), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, _own_derivative(fn, x, t, sample_weight=sw, **kw),
                               rtol=1e-5, atol=1e-8)


def test_softmax_hessian_at_extreme_margins_against_mpmath():
    mpmath.mp.dps = 50
    for row in ([0.0, -40.0], [30.0, -10.0, -25.0], [700.0, 0.0, -700.0], [1e-3, 0.0]):
        x = np.array([row])
        for label in range(len(row)):
            g, h = O.softmax_grad_hess(x, np.array([label]))
            e = [mpmath.exp(mpmath.mpf(v)) for v in row]
            s = sum(e)
            for j in range(len(row)):
                p = e[j] / s
                want = float(p * sum(e[k] for k in range(len(row)) if k != j) / s)
                assert h[0, j] == pytest.approx(want, rel=1e-14, abs=0), (row, label, j)
                # (the gradient's label entry p - 1 is exact to an ulp of 1, as the
                # cross-entropy's; the hessian keeps its relative accuracy)
                assert g[0, j] == pytest.approx(float(p - (j == label)), rel=1e-14, abs=2.3e-16)
    for x in (-40.0, -5.0, 0.5, 40.0, 700.0):
        g, h = O.logistic_grad_hess(np.array([x]), np.array([1.0]))
        e = mpmath.exp(-mpmath.mpf(x))
        assert h[0] == pytest.approx(float(e / (1 + e) ** 2), rel=1e-14, abs=0)


def test_binary_focal_is_not_convex():
    # gamma = 2, t = 1: the second derivative's minimum, about -0.047 near x = -3.85
    x = np.linspace(-8, 2, 2001)
    t = np.ones_like(x)
    _, h = O.binary_focal_grad_hess(x, t, gamma=2.0)
    k = int(np.argmin(h))
    assert h[k] == pytest.approx(-0.047, abs=1e-3) and x[k] == pytest.approx(-3.85, abs=0.02)
    _, hc = O.binary_focal_grad_hess(x, t, gamma=2.0, hessian="clip", min_hessian=1e-3)
    assert np.array_equal(hc, np.maximum(h, 1e-3))
    _, ha = O.binary_focal_grad_hess(x, t, gamma=2.0, hessian="abs")
    assert np.array_equal(ha, np.abs(h))
    _, hs = O.softmax_focal_grad_hess(np.stack([x, np.zeros_like(x)], 1), np.zeros(x.size, int),
                                      gamma=2.0)
    assert hs.min() < 0
    _, hsc = O.softmax_focal_grad_hess(np.stack([x, np.zeros_like(x)], 1), np.zeros(x.size, int),
                                       gamma=2.0, hessian="clip", min_hessian=1e-6)
    assert np.array_equal(hsc, np.maximum(hs, 1e-6))


def test_hessian_policies():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) * 5
    y = rng.integers(0, 4, 50)
    sw = rng.uniform(0, 2, 50)
    sw[0] = 0
    d = _p_one_minus_p(x) * sw[:, None]
    _, h = O.softmax_grad_hess(x, y, sample_weight=sw)
    np.testing.assert_allclose(h, d, rtol=1e-13)
    _, hx = O.softmax_grad_hess(x, y, sample_weight=sw, hessian="xgboost")
    np.testing.assert_allclose(hx, np.maximum(2 * d, 1e-16), rtol=1e-13)
    assert np.all(hx[0] == 1e-16)  # weight 0: XGBoost's floor
    _, hl = O.softmax_grad_hess(x, y, sample_weight=sw, hessian="lightgbm")
    np.testing.assert_allclose(hl, 4 / 3 * d, rtol=1e-13)
    _, hf = O.softmax_grad_hess(x, y, sample_weight=sw, hessian=0.5, min_hessian=1e-3)
    np.testing.assert_allclose(hf, np.maximum(0.5 * d, 1e-3), rtol=1e-13)
    xb = rng.normal(size=30) * 5
    tb = rng.integers(0, 2, 30)
    _, hb = O.logistic_grad_hess(xb, tb, hessian="xgboost")
    sb = 1 / (1 + np.exp(-xb)) / (1 + np.exp(xb))  # p (1 - p), no cancellation
    np.testing.assert_allclose(hb, np.maximum(sb, 1e-16), rtol=1e-13)


@pytest.mark.parametrize("c", [3, 48, 65, 300, 70000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_path_and_thread_count_same_bits(c, dtype):
    """Blocks, rows and (70000 classes, few rows) chunks; the reduced-loss
    group path too: the same values as the float64 reference, the same bits
    for any thread count."""
    rng = np.random.default_rng(c)
    n = 3 if c > 10000 else 100
    x = (rng.normal(size=(n, c)) * 4).astype(dtype)
    y = rng.integers(0, c, n)
    runs = [O.softmax_grad_hess(x, y, label_smoothing=0.05, n_threads=t) for t in (1, 2, 3)]
    for g, h in runs[1:]:
        assert np.array_equal(g, runs[0][0]) and np.array_equal(h, runs[0][1])
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(runs[0][1], _p_one_minus_p(x.astype(np.float64)), rtol=tol,
                               atol=1e-30)
    fr = [O.softmax_focal_grad_hess(x, y, gamma=2.0, n_threads=t) for t in (1, 2)]
    assert np.array_equal(fr[0][1], fr[1][1])


def test_output_buffers_and_untouched_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6))
    y = rng.integers(0, 6, 64)
    x0, y0 = x.copy(), y.copy()
    g, h = O.softmax_grad_hess(x, y)
    go, ho = np.empty_like(x), np.empty_like(x)
    g2, h2 = O.softmax_grad_hess(x, y, grad_out=go, hess_out=ho)
    assert g2 is go and h2 is ho and np.array_equal(go, g) and np.array_equal(ho, h)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)


def _untouched(call, bufs):
    before = [b.copy() for b in bufs]
    call()
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, bufs))


@pytest.mark.parametrize("call,exc,words", [
    (lambda x, y, g, h: O.softmax_grad_hess(x, y.astype(float), grad_out=g, hess_out=h),
     TypeError, ["labels", "integer", "float64"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, np.where(y == 0, 7, y), grad_out=g, hess_out=h),
     ValueError, ["labels", "[0, 4)", "7"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y[:-1], grad_out=g, hess_out=h),
     ValueError, ["labels", "(32,)", "(31,)"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x[:, 0], y, grad_out=g, hess_out=h),
     ValueError, ["logits", "(n_samples, n_classes)", "(32,)"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, hessian="newton", grad_out=g, hess_out=h),
     ValueError, ["hessian", "'xgboost'", "'newton'"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, hessian=-1.0, grad_out=g, hess_out=h),
     ValueError, ["hessian", "-1.0"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, min_hessian=-1e-3, grad_out=g, hess_out=h),
     ValueError, ["min_hessian", "-0.001"]),
    (lambda x, y, g, h: O.softmax_focal_grad_hess(x, y, min_hessian=1e-3, grad_out=g, hess_out=h),
     ValueError, ["min_hessian", "'clip'"]),
    (lambda x, y, g, h: O.softmax_focal_grad_hess(x, y, hessian="diagonal", grad_out=g, hess_out=h),
     ValueError, ["hessian", "'exact'", "'diagonal'"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, sample_weight=np.ones(3), grad_out=g, hess_out=h),
     ValueError, ["sample_weight", "(32,)", "(3,)"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, grad_out=g, hess_out=g),
     ValueError, ["hess_out", "grad_out"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, grad_out=g, hess_out=x),
     ValueError, ["hess_out", "logits"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, grad_out=g.astype(np.float32), hess_out=h),
     TypeError, ["grad_out", "float64", "float32"]),
    (lambda x, y, g, h: O.logistic_grad_hess(x, x * 3, grad_out=g, hess_out=h),
     ValueError, ["targets", "[0, 1]"]),
    (lambda x, y, g, h: O.logistic_grad_hess(x, np.zeros(3), grad_out=g, hess_out=h),
     ValueError, ["targets", "(32, 4)", "(3,)"]),
    (lambda x, y, g, h: O.binary_focal_grad_hess(x, np.zeros_like(x), gamma=-1, grad_out=g,
                                                 hess_out=h),
     ValueError, ["gamma", "-1"]),
    (lambda x, y, g, h: O.softmax_grad_hess(x, y, return_loss=1, grad_out=g, hess_out=h),
     TypeError, ["return_loss", "bool", "1"]),
])
def test_bad_input_named_before_anything_is_written(call, exc, words):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(32, 4))
    y = rng.integers(0, 4, 32)
    g, h = np.full_like(x, np.nan), np.full_like(x, np.nan)
    x0 = x.copy()
    with pytest.raises(exc) as info:
        call(x, y, g, h)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert np.all(np.isnan(g)) and np.all(np.isnan(h)) and np.array_equal(x, x0)


def test_adapter_options_checked_at_construction():
    with pytest.raises(ValueError, match="kind"):
        O.xgboost("hinge")
    with pytest.raises(ValueError, match="hessian"):
        O.lightgbm("softmax", hessian="exact")
    with pytest.raises(TypeError, match="return_loss"):
        O.xgboost("softmax", return_loss=True)
    obj = O.xgboost("softmax")
    with pytest.raises(ValueError, match="whole-number"):
        obj(np.array([0.5, 1.0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_class"):
        obj(np.array([0.0, 1.0]), np.zeros(2))


# --- real boosting runs -------------------------------------------------------

def _multiclass(n=1500, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    w = rng.normal(size=(12, k))
    y = np.argmax(X @ w + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def _binary(n=1500, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    y = (X @ rng.normal(size=12) + rng.logistic(size=n) > 0).astype(int)
    return X, y


@pytest.mark.skipif(not HAVE_XGB, reason="xgboost not installed (an optional peer)")
def test_xgboost_reproduces_its_native_objectives():
    import xgboost as xgb

    X, y = _multiclass()
    d = xgb.DMatrix(X, label=y, weight=np.random.default_rng(3).uniform(0.5, 2, len(y)))
    params = dict(num_class=4, max_depth=4, eta=0.3, base_score=0.5, tree_method="hist",
                  seed=0, nthread=2)
    native = xgb.train(dict(params, objective="multi:softprob"), d, 20)
    custom = xgb.train(dict(params, disable_default_eval_metric=1), d, 20,
                       obj=O.xgboost("softmax", hessian="xgboost"))
    diff = np.abs(native.predict(d, output_margin=True) - custom.predict(d, output_margin=True))
    assert diff.max() <= 1e-6

    Xb, yb = _binary()
    db = xgb.DMatrix(Xb, label=yb)
    pb = dict(max_depth=4, eta=0.3, tree_method="hist", seed=0, nthread=2)
    native = xgb.train(dict(pb, objective="binary:logistic", base_score=0.5), db, 20)
    # (the custom objective's base_score is a margin: logit(0.5) = 0)
    custom = xgb.train(dict(pb, base_score=0.0, disable_default_eval_metric=1), db, 20,
                       obj=O.xgboost("logistic", hessian="xgboost"))
    diff = np.abs(native.predict(db, output_margin=True) - custom.predict(db, output_margin=True))
    assert diff.max() <= 1e-6

    # the metric: XGBoost's own mlogloss of the same margins
    obj = O.xgboost("softmax", hessian="xgboost")
    res = {}
    xgb.train(dict(params, disable_default_eval_metric=1), d, 5, obj=obj,
              custom_metric=obj.metric, evals=[(d, "train")], evals_result=res, verbose_eval=False)
    m = xgb.train(dict(params, objective="multi:softprob", eval_metric="mlogloss"), d, 5,
                  evals=[(d, "train")], evals_result=(r2 := {}), verbose_eval=False)
    assert m is not None
    np.testing.assert_allclose(res["train"]["mlogloss"], r2["train"]["mlogloss"], rtol=1e-5)


@pytest.mark.skipif(not HAVE_XGB, reason="xgboost not installed (an optional peer)")
def test_xgboost_scikit_learn_api_and_focal():
    import xgboost as xgb

    X, y = _multiclass()
    w = np.random.default_rng(4).uniform(0.5, 2, len(y))
    ours = xgb.XGBClassifier(objective=O.xgboost("softmax", hessian="xgboost"), n_estimators=8,
                             max_depth=3, base_score=0.5)
    ours.fit(X, y, sample_weight=w)
    theirs = xgb.XGBClassifier(objective="multi:softprob", n_estimators=8, max_depth=3,
                               base_score=0.5)
    theirs.fit(X, y, sample_weight=w)
    diff = np.abs(ours.predict(X, output_margin=True) - theirs.predict(X, output_margin=True))
    assert diff.max() <= 1e-6
    # the focal objectives train (their loss goes down) and meet the LightGBM adapter's TypeError
    for kind, (Xk, yk) in (("softmax_focal", (X, y)), ("focal", _binary())):
        obj = O.xgboost(kind, gamma=2.0)
        d = xgb.DMatrix(Xk, label=yk)
        extra = {"num_class": 4} if kind == "softmax_focal" else {"base_score": 0.0}
        res = {}
        xgb.train(dict(max_depth=3, eta=0.3, disable_default_eval_metric=1, **extra), d, 15,
                  obj=obj, custom_metric=obj.metric, evals=[(d, "train")], evals_result=res,
                  verbose_eval=False)
        curve = res["train"][kind]
        assert curve[-1] < 0.6 * curve[0], curve
    if HAVE_LGB:
        import lightgbm as lgb

        with pytest.raises(TypeError, match="xent.objectives.lightgbm"):
            O.xgboost("softmax")(np.zeros((3, 4)), lgb.Dataset(X[:3], label=y[:3]))


@pytest.mark.skipif(not HAVE_LGB, reason="lightgbm not installed (an optional peer)")
def test_lightgbm_reproduces_its_native_objectives():
    import lightgbm as lgb

    X, y = _multiclass()
    w = np.random.default_rng(5).uniform(0.5, 2, len(y))
    base = dict(num_class=4, boost_from_average=False, verbose=-1, num_threads=2, seed=0,
                deterministic=True)
    native = lgb.train(dict(base, objective="multiclass"), lgb.Dataset(X, label=y, weight=w), 20)
    obj = O.lightgbm("softmax", hessian="lightgbm")
    custom = lgb.train(dict(base, objective=obj), lgb.Dataset(X, label=y, weight=w), 20)
    assert np.array_equal(native.predict(X, raw_score=True), custom.predict(X, raw_score=True))
    Xb, yb = _binary()
    nb = dict(boost_from_average=False, verbose=-1, num_threads=2, deterministic=True)
    native = lgb.train(dict(nb, objective="binary"), lgb.Dataset(Xb, label=yb), 20)
    custom = lgb.train(dict(nb, objective=O.lightgbm("logistic")), lgb.Dataset(Xb, label=yb), 20)
    assert np.array_equal(native.predict(Xb, raw_score=True), custom.predict(Xb, raw_score=True))
    # what LightGBM is handed: float32, Fortran order (its ravel and cast copy nothing)
    g, h = obj(np.zeros((5, 4)), lgb.Dataset(X[:5], label=y[:5]).construct())
    assert g.dtype == h.dtype == np.float32 and g.flags.f_contiguous and h.flags.f_contiguous
    # the scikit-learn API, and the metric as an feval
    ours = lgb.LGBMClassifier(objective=O.lightgbm("softmax", hessian="lightgbm"),
                              n_estimators=10, verbose=-1, boost_from_average=False)
    theirs = lgb.LGBMClassifier(objective="multiclass", n_estimators=10, verbose=-1,
                                boost_from_average=False)
    ours.fit(X, y, sample_weight=w)
    theirs.fit(X, y, sample_weight=w)
    assert np.array_equal(ours.predict(X, raw_score=True), theirs.predict(X, raw_score=True))
    res = {}
    dtrain = lgb.Dataset(X, label=y, weight=w)
    lgb.train(dict(base, objective=obj, metric="None"), dtrain, 5, feval=obj.metric,
              valid_sets=[dtrain], callbacks=[lgb.record_evaluation(res)])
    r2 = {}
    dtrain2 = lgb.Dataset(X, label=y, weight=w)
    lgb.train(dict(base, objective="multiclass", metric="multi_logloss"), dtrain2, 5,
              valid_sets=[dtrain2], callbacks=[lgb.record_evaluation(r2)])
    np.testing.assert_allclose(res["training"]["multi_logloss"], r2["training"]["multi_logloss"],
                               rtol=1e-6)
    if HAVE_XGB:
        import xgboost as xgb

        with pytest.raises(TypeError, match="xent.objectives.xgboost"):
            obj(np.zeros((3, 4)), xgb.DMatrix(X[:3], label=y[:3]))


def test_focal_hessians_at_extreme_margins_against_mpmath():
    """The second derivatives of the focal losses, by mpmath's numerical
    differentiation of the loss at 60 digits, where p is within 1e-13 of 0
    or 1."""
    mpmath.mp.dps = 60

    def binary(x, t, gamma, alpha):
        p = 1 / (1 + mpmath.exp(-x))
        q = t * (1 - p) + (1 - t) * p
        ce = mpmath.log(1 + mpmath.exp(-abs(x))) + (x if x > 0 else 0) - x * t
        return (alpha * t + (1 - alpha) * (1 - t)) * q ** gamma * ce

    for x in (-30.0, -12.0, -3.85, 0.25, 12.0, 30.0):
        for t in (0.0, 1.0, 0.3):
            for gamma in (2.0, 0.5, 3.0):
                g, h = O.binary_focal_grad_hess(np.array([x]), np.array([t]), gamma=gamma,
                                                alpha=0.25)
                loss = lambda v: binary(v, mpmath.mpf(t), gamma, mpmath.mpf(0.25))  # noqa: E731
                want = mpmath.diff(loss, mpmath.mpf(x), 2)
                assert h[0] == pytest.approx(float(want), rel=1e-9, abs=1e-300), (x, t, gamma)
                want = mpmath.diff(loss, mpmath.mpf(x), 1)
                assert g[0] == pytest.approx(float(want), rel=1e-9, abs=1e-300), (x, t, gamma)

    def softmax_focal(row, y, gamma):
        e = [mpmath.exp(v) for v in row]
        p = e[y] / sum(e)
        return -(1 - p) ** gamma * mpmath.log(p)

    for row in ([0.0, -30.0], [12.0, 0.0, -5.0], [-20.0, 0.0, 1.0]):
        for y in range(len(row)):
            for gamma in (2.0, 1.5):
                _, h = O.softmax_focal_grad_hess(np.array([row]), np.array([y]), gamma=gamma)
                for j in range(len(row)):
                    def f(v, j=j):
                        r = [mpmath.mpf(a) for a in row]
                        r[j] = v
                        return softmax_focal(r, y, gamma)
                    want = mpmath.diff(f, mpmath.mpf(row[j]), 2)
                    assert h[0, j] == pytest.approx(float(want), rel=1e-9, abs=1e-300), (row, y, j)


def test_labels_of_any_integer_dtype():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 5))
    y = rng.integers(0, 5, 40)
    want = O.softmax_grad_hess(x, y)
    for dt in (np.uint8, np.int8, np.int16, np.uint32, np.int32, np.uint64):
        got = O.softmax_grad_hess(x, y.astype(dt))
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(TypeError, match="labels"):
        O.softmax_grad_hess(x, y.astype(bool))


def test_review_findings():
    """Outputs must not overlap the caller's own (promoted) logits; focal
    hessians at margins where (1 - p)^(gamma - 1) overflows are finite (their
    limits), not NaN."""
    L = np.array([[1, 2, 3], [4, 5, 6]], np.int64)
    L0 = L.copy()
    with pytest.raises(ValueError, match="grad_out: must not overlap the memory of logits"):
        O.softmax_grad_hess(L, [0, 1], grad_out=L.view(np.float64))
    with pytest.raises(ValueError, match="hess_out: must not overlap the memory of logits"):
        O.logistic_grad_hess(L, np.zeros((2, 3)), hess_out=L.view(np.float64))
    assert np.array_equal(L, L0)
    for x, y in (([[720.0, 0.0]], [0]), ([[0.0, 720.0]], [0]), ([[-720.0, 0.0, 700.0]], [2])):
        for gamma in (0.01, 0.5, 2.0):
            g, h = O.softmax_focal_grad_hess(np.array(x), np.array(y), gamma=gamma)
            assert np.all(np.isfinite(g)) and np.all(np.isfinite(h)), (x, y, gamma)
    for x in (-720.0, 720.0, -40.0):
        for t in (0.0, 1.0, 0.5):
            for gamma in (0.01, 0.5, 2.0):
                g, h = O.binary_focal_grad_hess(np.array([x]), np.array([t]), gamma=gamma)
                assert np.isfinite(g[0]) and np.isfinite(h[0]), (x, t, gamma)
    _, g0 = xent.binary_focal_loss_with_logits(np.array([-720.0]), np.array([0.0]), gamma=0.01,
                                               return_grad=True, grad_loss=0.0)
    assert g0[0] == 0
