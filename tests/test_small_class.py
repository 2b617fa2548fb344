"""The small-class path's block kernels (C <= 64, blocks of 16 rows) for
integer labels without smoothing: the common case has its own code (the
portable xent_block_labels_fast and, for float32 rows of at most 16 classes on
AVX-512, xent_block16_labels_f32 with the block held in registers). Checked on
every instruction-set path against a float64 reference, against the general
block code (which a partial block of fewer than 16 rows takes), and for the
blocks that fall back to the general code (a non-finite row maximum)."""

import numpy as np
import pytest

import xent
from test_cross_entropy import ref_cross_entropy
from xent import _dispatch

PATHS = _dispatch.supported_isas()
N_ROWS = 16 * 5 + 3  # five full blocks and a partial one

OPTIONS = {
    "plain": {},
    "class-weights": {"weight": True},
    "sample-weights": {"sample_weight": True},
    "ignored": {"ignore_index": 1},
    "z-loss": {"z_loss": 0.01},
    "all": {"weight": True, "sample_weight": True, "ignore_index": 0, "z_loss": 0.01},
}


def _problem(n_classes, dtype, opts, seed=7):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N_ROWS, n_classes)) * 4).astype(dtype)
    labels = rng.integers(0, n_classes, N_ROWS)
    kw = {}
    if opts.get("weight"):
        kw["weight"] = rng.random(n_classes) + 0.1
    if opts.get("sample_weight"):
        sw = rng.random(N_ROWS) + 0.1
        sw[[3, 20, 21]] = 0.0  # weight 0 counts for nothing
        kw["sample_weight"] = sw
    if "ignore_index" in opts:
        kw["ignore_index"] = opts["ignore_index"]
    if "z_loss" in opts:
        kw["z_loss"] = opts["z_loss"]
    return x, labels, kw


def _tolerances(dtype):
    eps = np.finfo(dtype).eps
    return dict(rtol=4 * eps, atol=4 * eps)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [2, 3, 10, 16, 17, 40, 64])
@pytest.mark.parametrize("opt", list(OPTIONS))
def test_blocks_against_float64_reference(isa, dtype, n_classes, opt):
    x, labels, kw = _problem(n_classes, dtype, OPTIONS[opt])
    grad_loss = np.random.default_rng(3).random(N_ROWS) + 0.5
    with _dispatch.use_isa(isa):
        loss, grad = xent.softmax_cross_entropy(x, labels, reduction="none", return_grad=True,
                                                grad_loss=grad_loss, **kw)
        mean, gmean = xent.softmax_cross_entropy(x, labels, return_grad=True, **kw)
    want, want_grad = ref_cross_entropy(x.astype(np.float64), labels, reduction="none", **kw)
    want_mean, want_gmean = ref_cross_entropy(x.astype(np.float64), labels, **kw)
    tol = _tolerances(dtype)
    assert loss.dtype == grad.dtype == dtype
    np.testing.assert_allclose(loss, want, **tol)
    np.testing.assert_allclose(grad, want_grad * grad_loss[:, None], **tol)
    np.testing.assert_allclose(mean, want_mean, **tol)
    scale = np.abs(want_gmean).max()
    np.testing.assert_allclose(gmean, want_gmean, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [3, 10, 16, 33])
def test_full_blocks_agree_with_the_general_code(isa, dtype, n_classes):
    """Rows 0-14 alone are a partial block (the general code); in a full block
    they take the fast code: losses within an ulp, gradients within two ulps of
    the row's scale (the general code rounds the target's e * k before it
    subtracts the target term f * w_y: an ulp of that term, many ulps of the
    difference when they cancel; the fast code rounds once)."""
    x, labels, kw = _problem(n_classes, dtype, OPTIONS["all"])
    kw["sample_weight"] = kw["sample_weight"][:16]
    with _dispatch.use_isa(isa):
        fast = xent.softmax_cross_entropy(x[:16], labels[:16], reduction="none",
                                          return_grad=True, **kw)
        kw["sample_weight"] = kw["sample_weight"][:15]
        general = xent.softmax_cross_entropy(x[:15], labels[:15], reduction="none",
                                             return_grad=True, **kw)
    np.testing.assert_array_max_ulp(fast[0][:15], general[0], maxulp=1)
    eps = np.finfo(dtype).eps
    target_term = kw["sample_weight"] * kw["weight"][labels[:15]]
    row_scale = np.maximum(np.abs(general[1]).max(axis=1), target_term)[:, None]
    assert (np.abs(fast[1][:15] - general[1]) <= 2 * eps * row_scale).all()


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [4, 10, 20])
@pytest.mark.parametrize("special", ["nan", "+inf", "all -inf", "huge"])
def test_blocks_with_non_finite_rows(isa, dtype, n_classes, special):
    """A row whose maximum is not finite (or whose gradient scale overflows)
    sends its block to the general code: that row follows the documented
    conventions, and the block's other rows are unchanged."""
    x, labels, _ = _problem(n_classes, dtype, {})
    x = x[:32].copy()
    labels = labels[:32]
    r = 5
    grad_loss = np.ones(32)
    if special == "nan":
        x[r, 1] = np.nan
    elif special == "+inf":
        x[r, :2] = np.inf
        labels[r] = 0
    elif special == "all -inf":
        x[r] = -np.inf
    else:  # an upstream gradient so large that the gradient scale overflows
        grad_loss[r] = np.finfo(np.float64).max
    with np.errstate(all="ignore"), _dispatch.use_isa(isa):
        loss, grad = xent.softmax_cross_entropy(x, labels, reduction="none", return_grad=True,
                                                grad_loss=grad_loss)
        alone = [xent.softmax_cross_entropy(x[i:i + 1], labels[i:i + 1], reduction="none",
                                            return_grad=True, grad_loss=grad_loss[i:i + 1])
                 for i in range(32)]
    for i in range(32):
        # rows alone go through the general code (a partial block)
        np.testing.assert_array_max_ulp(loss[i], alone[i][0][0], maxulp=1)
        if i == r:
            np.testing.assert_array_equal(grad[i], alone[i][1][0])
        else:
            eps = np.finfo(dtype).eps
            scale = max(np.abs(grad[i]).max(), grad_loss[i])  # (see the test above)
            assert (np.abs(grad[i] - alone[i][1][0]) <= 2 * eps * scale).all()
    if special == "nan":
        assert np.isnan(loss[r]) and np.isnan(grad[r]).all()
    elif special == "+inf":
        np.testing.assert_allclose(loss[r], np.log(2.0))
        np.testing.assert_allclose(grad[r, :2], [-0.5, 0.5])
    elif special == "all -inf":
        assert np.isnan(loss[r])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_blocks_are_bit_identical_for_any_thread_count(dtype):
    x, labels, kw = _problem(10, dtype, OPTIONS["all"], seed=11)
    x = np.tile(x, (50, 1))
    labels = np.tile(labels, 50)
    kw["sample_weight"] = np.tile(kw["sample_weight"], 50)
    runs = [xent.softmax_cross_entropy(x, labels, return_grad=True, n_threads=n, **kw)
            for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss.tobytes() == runs[0][0].tobytes()
        assert grad.tobytes() == runs[0][1].tobytes()


def test_in_place_gradient_over_full_blocks():
    x, labels, _ = _problem(10, np.float32, {})
    want = xent.softmax_cross_entropy(x, labels, return_grad=True)
    buf = x.copy()
    got = xent.softmax_cross_entropy(buf, labels, return_grad=True, grad_out=buf)
    assert got[1] is buf
    assert got[0] == want[0]
    np.testing.assert_array_equal(buf, want[1])


def test_float64_block_exps_against_mpmath(isa):
    """The exps of the float64 block path (on AVX-512 its table-driven exp,
    elsewhere the polynomial of the rows), each seen alone: rows of a 0 and
    nine entries at most -40, whose sum of exps rounds to 1 exactly, so the
    softmax of an entry is its exp. Within 1 ulp of mpmath for normal
    results, 1 unit of the last place for subnormal ones, 0 for -inf."""
    import mpmath

    rng = np.random.default_rng(3)
    d = np.concatenate([-rng.uniform(40, 50, 3000), -rng.uniform(40, 708, 6000),
                        -rng.uniform(700, 746, 3000), [-40.0, -708.4, -745.1, -745.2, -np.inf, -1000.0]])
    d = np.concatenate([d, np.full(-d.size % 9, -45.0)])
    x = np.concatenate([np.zeros((d.size // 9, 1)), d.reshape(-1, 9)], axis=1)
    with _dispatch.use_isa(isa):
        p = xent.softmax(x)
    assert np.all(p[:, 0] == 1.0)
    got = p[:, 1:].reshape(-1)
    mpmath.mp.prec = 80
    tiny = np.finfo(np.float64).tiny
    worst = 0.0
    for v, g in zip(d, got):
        want = mpmath.exp(mpmath.mpf(float(v)))
        unit = np.spacing(float(want)) if float(want) >= tiny else 2.0 ** -1074
        e = float(abs(mpmath.mpf(float(g)) - want) / unit)
        worst = max(worst, e)
        assert e <= 1.0, (v, g, float(want), e)
    assert got[d == -np.inf].tolist() == [0.0] and got[d == -1000.0].tolist() == [0.0]
