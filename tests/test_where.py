"""``where=`` on the losses of one value per sample (optax's mask): every
registered function that takes it, found through the registry. A sample
where it is False counts for nothing, exactly as a sample weight of 0: loss
0, gradient 0, out of the mean's denominator, even when its values are NaN
or infinite; a batch with nothing left has a mean of 0 and a 0 gradient."""

import inspect

import numpy as np
import pytest

import xent
from xent import _registry
from xent import _kernels as _compiled  # must import: never skip  # noqa: F401

ROW_LOSSES = [e for e in _registry.ENTRIES
              if {"where", "sample_weight"} <= set(inspect.signature(e.function).parameters)
              and e.family != "partials"]
REDUCTIONS = {"kl_divergence_with_logits": "sum", "jensen_shannon_with_logits": "sum"}


def test_the_losses_with_sample_weights_all_take_where():
    names = {e.name for e in ROW_LOSSES}
    assert {"softmax_cross_entropy", "nll_loss", "softmax_focal_loss", "multilabel_cross_entropy",
            "kl_divergence_with_logits", "jensen_shannon_with_logits"} <= names


def _inputs(e, dtype=np.float64, n=23, c=7):
    rng = np.random.default_rng(len(e.label))
    args = e.make(rng, n, c, dtype)
    keep = rng.random(n) > 0.4
    keep[0] = True
    return args, keep


def _grad_kw(e):
    return {"return_grad": True} if e.grad else {}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_where_is_a_sample_weight_of_zero(e, reduction):
    args, keep = _inputs(e)
    got = e.call(args, where=keep, reduction=reduction, **_grad_kw(e))
    want = e.call(args, sample_weight=keep.astype(np.float64), reduction=reduction, **_grad_kw(e))
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    # with sample weights too: their product
    sw = np.random.default_rng(1).random(keep.size) + 0.5
    got = e.call(args, where=keep, sample_weight=sw, reduction=reduction)
    want = e.call(args, sample_weight=np.where(keep, sw, 0.0), reduction=reduction)
    assert np.asarray(got if not isinstance(got, tuple) else got[0]).tobytes() == \
        np.asarray(want if not isinstance(want, tuple) else want[0]).tobytes()


@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_a_left_out_sample_counts_for_nothing_whatever_its_values(e):
    args, keep = _inputs(e)
    x = np.array(args[0], copy=True)
    x[~keep] = np.nan
    x[np.flatnonzero(~keep)[:1]] = np.inf
    masked = [x] + list(args[1:])
    red = REDUCTIONS.get(e.name, "sum")
    value, grad = e.call(masked, where=keep, reduction=red, return_grad=True)
    assert np.isfinite(value)
    assert np.all(grad[~keep] == 0) and np.all(np.isfinite(grad))
    # the sum over the batch is the sum over the kept samples alone
    kept = [np.asarray(a)[keep] for a in args]
    np.testing.assert_allclose(value, e.call(kept, reduction=red), rtol=1e-13)
    per = e.call(masked, where=keep, reduction="none")
    assert np.all(per[~keep] == 0)


@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_nothing_left_is_a_mean_of_zero(e):
    args, keep = _inputs(e)
    value, grad = e.call(args, where=np.zeros_like(keep), reduction="mean", return_grad=True)
    assert value == 0 and not grad.any()


@pytest.mark.parametrize("e", ROW_LOSSES, ids=[e.label for e in ROW_LOSSES])
def test_where_broadcasts_to_the_batch_shape_and_checks_it(e):
    args, keep = _inputs(e)
    x = np.asarray(args[0])
    rest = [np.asarray(a) for a in args[1:]]
    # a 3-D batch: (2, 23) samples, where given per leading row
    x3 = np.stack([x, x])
    rest3 = [np.stack([a, a]) for a in rest]
    got = e.call([x3] + rest3, where=np.array([[True], [False]]), reduction="sum")
    want = e.call(args, reduction="sum")
    np.testing.assert_allclose(got, want, rtol=1e-13)
    grad_out = np.full(x.shape, 5.0)
    for bad, err, words in [(keep.astype(float), TypeError, "where: expected a boolean array"),
                            (np.ones(5, bool), ValueError, "where: expected a boolean array "
                                                           "broadcastable to the batch shape")]:
        kw = {"return_grad": True, "grad_out": grad_out} if e.out == "grad_out" else {}
        with pytest.raises(err, match=words):
            e.call(args, where=bad, **kw)
        assert np.all(grad_out == 5.0)
