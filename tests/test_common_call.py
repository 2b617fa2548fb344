"""The common call of softmax_cross_entropy (small C-contiguous float32/float64
logits, 1-D int32/int64 labels, default options) takes a short path: the same
bits as the general path, and the same errors for the same bad input."""

import numpy as np
import pytest

import xent
from xent import _cross_entropy
from xent import _kernels as _compiled  # must import: never skip


def general(x, y, **kw):
    # n_threads=1 is not the default: the general path validates and runs
    return xent.softmax_cross_entropy(x, y, n_threads=1, **kw)


def test_the_short_path_is_taken(monkeypatch):
    calls = []
    real = _compiled.labels_scan

    def spy(*a):
        calls.append(a)
        return real(*a)

    monkeypatch.setattr(_cross_entropy._k, "labels_scan", spy)
    xent.softmax_cross_entropy(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
    assert len(calls) == 1
    general(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
    assert len(calls) == 1


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
    (np.zeros((2, 3)), np.array([[0], [1]], np.int64)),  # 2-D labels
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
                                dict(return_grad=1), dict(z_loss="0")])
def test_defaults_of_another_type_go_to_the_general_path(kw):
    x, y = np.zeros((2, 3)), np.array([0, 1])
    try:
        want = general(x, y, **kw)
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e), match=None) as got:
            xent.softmax_cross_entropy(x, y, **kw)
        assert str(got.value) == str(e)
    else:
        got = xent.softmax_cross_entropy(x, y, **kw)
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
