"""The registry of xent's public functions.

One entry per public function (and per variant worth measuring on its own:
probability targets, label smoothing), saying what it reads, what it returns,
its options, how to make typical inputs for it and what it should compute: a
NumPy float64 reference written from the definition. The registry drives the
registry tests (``tests/test_registry.py``: every function against its
reference, its gradient against finite differences, bit-identity across
thread counts, inputs untouched), the fuzz target's list of functions
(``fuzz/fuzz_api.py``) and the benchmark grid (``python -m xent bench
--grid``): a function is tested and measured by being registered here.

This module imports only NumPy (the public functions are looked up lazily).
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Entry", "ENTRIES", "entry", "public_names"]


# --- float64 references, from the definitions --------------------------------

def _lse(x):
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))[..., 0]


def _scaled_lse(x, b, where):
    """log|sum b exp(x)| over the kept entries (where, b != 0), its sign, and
    the kept mask (x, b broadcast)."""
    x = np.asarray(x, np.float64)
    b = np.ones_like(x) if b is None else np.broadcast_to(np.asarray(b, np.float64), x.shape)
    keep = b != 0
    if where is not None:
        keep = keep & np.broadcast_to(where, x.shape)
    xk = np.where(keep, x, -np.inf)
    m = np.max(xk, axis=-1, keepdims=True)
    mf = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.sum(np.where(keep, b * np.exp(xk - mf), 0.0), axis=-1, keepdims=True)
        return (mf + np.log(np.abs(s)))[..., 0], np.sign(s)[..., 0], keep, b, xk, mf, s


def ref_logsumexp(x, b=None, where=None):
    if b is None and where is None:
        return _lse(x)
    lse, sign = _scaled_lse(x, b, where)[:2]
    return np.where(sign < 0, np.nan, lse)


def ref_softmax(x, where=None):
    if where is None:
        return np.exp(x - _lse(x)[..., None])
    _, _, keep, b, xk, mf, s = _scaled_lse(x, None, where)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(keep, np.exp(xk - mf) / s, 0.0)


def ref_log_softmax(x, where=None):
    if where is None:
        return x - _lse(x)[..., None]
    lse, _, keep = _scaled_lse(x, None, where)[:3]
    return np.where(keep, np.asarray(x, np.float64) - lse[..., None], -np.inf)


def ref_softmax_backward(p, g):
    return p * (g - np.sum(p * g, axis=-1, keepdims=True))


def ref_log_softmax_backward(lp, g):
    return g - np.exp(lp) * np.sum(g, axis=-1, keepdims=True)


def _reduce(per, reduction, denominator):
    if reduction == "none":
        return per
    total = np.sum(per)
    if reduction == "sum":
        return total
    return 0.0 if denominator == 0 else total / denominator


def _class_coefficients(target, c, weight, label_smoothing, ignore_index):
    """a (n, c), the rows that count, the mean's per-row denominators."""
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    target = np.asarray(target)
    n = target.shape[0]
    if target.dtype.kind in "iu":
        valid = target != ignore_index
        lab = np.where(valid, target, 0)
        t = np.zeros((n, c))
        t[np.arange(n), lab] = 1.0
        den = np.where(valid, w[lab], 0.0)
    else:
        t = target.astype(np.float64)
        valid = np.ones(n, dtype=bool)
        den = np.ones(n)
    a = w * ((1 - label_smoothing) * t + label_smoothing / c)
    return a, valid, den


def ref_softmax_cross_entropy(x, target, *, weight=None, sample_weight=None, ignore_index=-100,
                              label_smoothing=0.0, z_loss=0.0, softcap=None, reduction="mean"):
    x = np.asarray(x, dtype=np.float64)
    if softcap is not None:
        x = softcap * np.tanh(x / softcap)
    a, valid, den = _class_coefficients(target, x.shape[-1], weight, label_smoothing, ignore_index)
    lse = _lse(x)
    with np.errstate(invalid="ignore"):
        per = np.sum(np.where(a != 0, a * (lse[:, None] - x), 0.0), axis=-1) + z_loss * lse**2
    sw = np.ones(len(per)) if sample_weight is None else np.asarray(sample_weight, float)
    per = np.where(valid, per, 0.0) * sw
    return _reduce(per, reduction, np.sum(den * sw))


def ref_nll_loss(lp, target, *, weight=None, sample_weight=None, ignore_index=-100,
                 label_smoothing=0.0, reduction="mean"):
    lp = np.asarray(lp, dtype=np.float64)
    a, valid, den = _class_coefficients(target, lp.shape[-1], weight, label_smoothing, ignore_index)
    with np.errstate(invalid="ignore"):
        per = -np.sum(np.where(a != 0, a * lp, 0.0), axis=-1)
    sw = np.ones(len(per)) if sample_weight is None else np.asarray(sample_weight, float)
    per = np.where(valid, per, 0.0) * sw
    return _reduce(per, reduction, np.sum(den * sw))


def ref_softmax_focal_loss(x, target, *, gamma=2.0, alpha=None, ignore_index=-100,
                           sample_weight=None, label_smoothing=0.0, reduction="mean"):
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[-1]
    target = np.asarray(target)
    lp = ref_log_softmax(x)
    if target.dtype.kind in "iu":
        valid = target != ignore_index
        t = np.zeros_like(x)
        t[np.arange(len(x)), np.where(valid, target, 0)] = 1.0
        t[~valid] = 0.0
    else:
        t = target.astype(np.float64)
        valid = np.ones(len(x), dtype=bool)
    t = np.where(valid[:, None], t * (1 - label_smoothing) + label_smoothing / c, 0.0)
    a = np.ones(c) if alpha is None else np.broadcast_to(np.asarray(alpha, float), (c,))
    with np.errstate(invalid="ignore"):
        per = np.sum(np.where(t != 0, -a * t * (-np.expm1(lp)) ** gamma * lp, 0.0), axis=-1)
    sw = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, float)
    return _reduce(per * sw, reduction, np.sum(np.where(valid, sw, 0.0)))


def _smoothed(t, s):
    return np.asarray(t, dtype=np.float64) * (1 - s) + 0.5 * s


def ref_binary_cross_entropy_with_logits(x, t, *, pos_weight=None, weight=None,
                                         label_smoothing=0.0, reduction="mean"):
    x, t = np.asarray(x, dtype=np.float64), _smoothed(t, label_smoothing)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, float)
    w = 1.0 if weight is None else np.asarray(weight, float)
    per = w * ((1 - t) * x + (1 + (pw - 1) * t) * np.logaddexp(0, -x))
    return _reduce(per, reduction, per.size)


def ref_binary_cross_entropy(p, t, *, eps=None, pos_weight=None, weight=None,
                             label_smoothing=0.0, reduction="mean"):
    dt = np.asarray(p).dtype
    eps = float(np.finfo(dt if dt.kind == "f" and dt.itemsize >= 4 else np.float32).eps) if eps is None else eps
    p, t = np.asarray(p, dtype=np.float64), _smoothed(t, label_smoothing)
    p = np.clip(p, eps, 1 - eps)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, float)
    w = 1.0 if weight is None else np.asarray(weight, float)
    per = -w * (pw * t * np.log(p) + (1 - t) * np.log1p(-p))
    return _reduce(per, reduction, per.size)


def ref_multilabel_cross_entropy(x, t, *, class_reduction="sum", sample_weight=None,
                                 reduction="mean", **kw):
    per = ref_binary_cross_entropy_with_logits(x, t, reduction="none", **kw)
    per = per.mean(-1) if class_reduction == "mean" else per.sum(-1)
    sw = np.ones(len(per)) if sample_weight is None else np.asarray(sample_weight, float)
    return _reduce(per * sw, reduction, np.sum(sw))


def ref_binary_focal_loss(p, t, *, gamma=2.0, alpha=None, eps=None, weight=None,
                          label_smoothing=0.0, reduction="mean"):
    # (the focal factor from the unclipped p, the cross-entropy from the clipped one)
    q_p = np.asarray(p, dtype=np.float64)
    ce = ref_binary_cross_entropy(p, t, eps=eps, label_smoothing=label_smoothing,
                                  reduction="none")
    t = _smoothed(t, label_smoothing)
    q = t * (1 - q_p) + (1 - t) * q_p
    a = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    w = 1.0 if weight is None else np.asarray(weight, float)
    per = w * a * q**gamma * ce
    return _reduce(per, reduction, per.size)


def ref_binary_focal_loss_with_logits(x, t, *, gamma=2.0, alpha=None, weight=None,
                                      label_smoothing=0.0, reduction="mean"):
    x, t = np.asarray(x, dtype=np.float64), _smoothed(t, label_smoothing)
    p = 0.5 * (1 + np.tanh(x / 2))
    ce = np.logaddexp(0, x) - x * t
    q = t * (1 - p) + (1 - t) * p
    a = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    w = 1.0 if weight is None else np.asarray(weight, float)
    per = w * a * q**gamma * ce
    return _reduce(per, reduction, per.size)


def _xlogy(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p == 0, 0.0, p * np.log(q))


def ref_entropy(p, *, reduction="none"):
    p = np.asarray(p, dtype=np.float64)
    per = -np.sum(_xlogy(p, p), axis=-1)
    return _reduce(per, reduction, len(per))


def ref_cross_entropy(p, q, *, eps=None, gamma=0.0, alpha=None, sample_weight=None,
                      reduction="none"):
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p)
    if p.dtype.kind in "iu":  # (class labels: one-hot)
        p = np.eye(q.shape[-1])[p]
    p = p.astype(np.float64)
    if eps is not None:
        q = np.clip(q, eps, 1.0)
    a = 1.0 if alpha is None else np.asarray(alpha, float)
    per = -np.sum(a * (1 - q) ** gamma * _xlogy(p, q), axis=-1)
    sw = np.ones(len(per)) if sample_weight is None else np.asarray(sample_weight, float)
    return _reduce(per * sw, reduction, np.sum(sw))


def ref_kl_divergence(p, q, *, eps=None, reduction="none", log_input=False, log_target=False,
                      sample_weight=None):
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if eps is not None:
        q = np.clip(q, eps, 1.0)
    if log_input or log_target:  # (PyTorch's kl_div: log-probabilities given)
        pp = np.exp(p) if log_target else p
        with np.errstate(divide="ignore"):
            lp = p if log_target else np.log(p)
            lq = q if log_input else np.log(q)
        terms = np.where(pp == 0, 0.0, pp * (lp - lq))
    else:
        terms = _xlogy(p, p) - _xlogy(p, q)
    if sample_weight is not None:
        terms = terms * np.asarray(sample_weight, float)[..., None]
    if reduction == "elementwise":
        return terms
    per = np.sum(terms, axis=-1)
    if reduction == "batchmean":
        return np.sum(per) / (terms.shape[0] if terms.ndim else 1)
    return _reduce(per, reduction, len(per) if sample_weight is None else np.sum(sample_weight))


def _distill_reduce(per, x, sample_weight, reduction, scale):
    sw = np.ones(np.shape(per)) if sample_weight is None else np.asarray(sample_weight, float)
    per = per * sw * scale
    if reduction == "batchmean":  # (the first batch axis; the classes are last here)
        return np.sum(per) / (x.shape[0] if x.ndim > 1 else 1)
    return _reduce(per, reduction, np.sum(sw))


def ref_kl_divergence_with_logits(s, t, *, temperature=1.0, reverse=False,
                                  scale_by_temperature_squared=False, sample_weight=None,
                                  reduction="batchmean"):
    s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
    lq, lp = ref_log_softmax(s / temperature), ref_log_softmax(t / temperature)
    if reverse:
        lp, lq = lq, lp
    with np.errstate(invalid="ignore"):
        per = np.sum(np.where(lp == -np.inf, 0.0, np.exp(lp) * (lp - lq)), axis=-1)
    return _distill_reduce(per, s, sample_weight, reduction,
                           temperature ** 2 if scale_by_temperature_squared else 1.0)


def ref_jensen_shannon_with_logits(s, t, *, beta=0.5, temperature=1.0,
                                   scale_by_temperature_squared=False, sample_weight=None,
                                   reduction="batchmean"):
    s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
    lq, lp = ref_log_softmax(s / temperature), ref_log_softmax(t / temperature)
    p, q = np.exp(lp), np.exp(lq)
    with np.errstate(divide="ignore"):
        lm = np.log(beta * p + (1 - beta) * q)
    if beta == 0.0:  # (Liger-Kernel's limits: the forward and reverse KL)
        per = np.sum(p * (lp - lq), axis=-1)
    elif beta == 1.0:
        per = np.sum(q * (lq - lp), axis=-1)
    else:
        per = np.sum(beta * p * (lp - lm) + (1 - beta) * q * (lq - lm), axis=-1)
    return _distill_reduce(per, s, sample_weight, reduction,
                           temperature ** 2 if scale_by_temperature_squared else 1.0)


def ref_log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None):
    y_proba = np.asarray(y_proba, dtype=np.float64)
    y_proba = y_proba / y_proba.sum(-1, keepdims=True)
    eps = np.finfo(y_proba.dtype).eps
    y_proba = np.clip(y_proba, eps, 1 - eps)
    per = -np.log(y_proba[np.arange(len(y_true)), np.asarray(y_true)])
    sw = np.ones(len(per)) if sample_weight is None else np.asarray(sample_weight, float)
    return np.sum(per * sw) / (np.sum(sw) if normalize else 1.0)


# --- the partial statistics of class blocks (xent/_partials.py) ---------------

def ref_partials(x, target=None, *, class_offset=0, n_classes=None, weight=None,
                 ignore_index=-100, label_smoothing=0.0):
    """A block's statistics from their definition (finite logits)."""
    x = np.asarray(x, dtype=np.float64)
    n, c = x.shape
    big = class_offset + c if n_classes is None else n_classes
    m = x.max(-1)
    e = np.exp(x - m[:, None])
    first = np.argmax(x, axis=-1)
    e[np.arange(n), first] = 0.0
    w = np.ones(big) if weight is None else np.asarray(weight, np.float64)
    wb = w[class_offset:class_offset + c]
    a = np.broadcast_to(wb * label_smoothing / big, (n, c)).copy()
    xt = np.zeros(n)
    if target is not None:
        t = np.asarray(target)
        if t.dtype.kind in "iu":
            inside = (t != ignore_index) & (t >= class_offset) & (t < class_offset + c)
            xt[inside] = x[np.arange(n)[inside], t[inside] - class_offset]
        else:
            a = a + (1 - label_smoothing) * wb * t
    ax = np.sum(np.where(a != 0, a * (x - m[:, None]), 0.0), axis=-1)
    return np.stack([m, e.sum(-1), xt, ax, a.sum(-1)], axis=-1)


def ref_softmax_cross_entropy_grad(x, target, *, weight=None, sample_weight=None,
                                   ignore_index=-100, label_smoothing=0.0, z_loss=0.0):
    """d sum_i loss_i / d x of the softmax cross-entropy, from its definition."""
    x = np.asarray(x, dtype=np.float64)
    a, valid, _ = _class_coefficients(target, x.shape[-1], weight, label_smoothing, ignore_index)
    lse = _lse(x)
    g = (a.sum(-1) + 2 * z_loss * lse)[:, None] * np.exp(x - lse[:, None]) - a
    sw = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, float)
    return np.where(valid[:, None], g * sw[:, None], 0.0)


def ref_nll_loss_grad(lp, target, *, weight=None, sample_weight=None, ignore_index=-100,
                      label_smoothing=0.0):
    a, valid, _ = _class_coefficients(target, np.shape(lp)[-1], weight, label_smoothing,
                                      ignore_index)
    sw = np.ones(len(a)) if sample_weight is None else np.asarray(sample_weight, float)
    return np.where(valid[:, None], -a * sw[:, None], 0.0)


def ref_denominator(x, target, *, weight=None, sample_weight=None, ignore_index=-100):
    _, valid, den = _class_coefficients(target, np.shape(x)[-1], weight, 0.0, ignore_index)
    sw = np.ones(len(den)) if sample_weight is None else np.asarray(sample_weight, float)
    return float(np.sum(np.where(valid, den, 0.0) * sw))


def _blocks(x):
    """A row's three class blocks: (offset, block)."""
    c = x.shape[-1]
    cuts = sorted({0, c // 3, (2 * c) // 3 + 1 if c > 2 else c, c})
    return [(a, x[:, a:b]) for a, b in zip(cuts, cuts[1:])]


_STATS_OPTIONS = ("weight", "ignore_index", "label_smoothing")


def _merged_stats(x, target=None, kw=None):
    import xent

    opts = {k: v for k, v in (kw or {}).items() if k in _STATS_OPTIONS}
    c = x.shape[-1]
    return xent.merge_partials(*[xent.softmax_partials(b, target, class_offset=a, n_classes=c,
                                                       **opts) for a, b in _blocks(x)])


def _via_merge(args, kw):  # merge_partials: the row's blocks' statistics
    import xent

    x = np.asarray(args[0])
    return [xent.softmax_partials(b, class_offset=a, n_classes=x.shape[-1]) for a, b in _blocks(x)], kw


def _via_stats(args, kw):  # the merged statistics in place of the logits
    return [_merged_stats(np.asarray(args[0]))], kw


def _via_block(args, kw):  # (the logits, the rows' merged statistics)
    return [args[0], _merged_stats(np.asarray(args[0]))], kw


def _via_loss(args, kw):  # (statistics, labels) with the statistics' options
    x = np.asarray(args[0])
    return [_merged_stats(x, args[1], kw), args[1]], {**kw, "n_classes": x.shape[-1]}


def _via_grad(args, kw):  # the whole row as one block, with its statistics
    x = np.asarray(args[0])
    return [x, _merged_stats(x, args[1], kw), args[1]], {**kw, "n_classes": x.shape[-1]}


def _via_denominator(args, kw):
    return [args[1]], {**kw, "n_classes": np.shape(args[0])[-1]}


# --- inputs -------------------------------------------------------------------

def _logits(rng, n, c, dtype):
    return (rng.standard_normal((n, c)) * 3).astype(dtype)


def _simplex(rng, n, c, dtype):
    p = rng.random((n, c)) + 1e-3
    return (p / p.sum(-1, keepdims=True)).astype(dtype)


def _labels(rng, n, c, dtype):
    return rng.integers(0, c, n)


def _unit(rng, n, c, dtype):
    return rng.random((n, c)).astype(dtype)


def _open_unit(rng, n, c, dtype):
    return (rng.random((n, c)) * 0.98 + 0.01).astype(dtype)


def _normal(rng, n, c, dtype):
    return rng.standard_normal((n, c)).astype(dtype)


INPUTS = {  # role: maker(rng, n, c, dtype)
    "logits": _logits,
    "log_probs": lambda rng, n, c, dt: np.asarray(ref_log_softmax(_logits(rng, n, c, np.float64)), dt),
    "probs": _simplex,
    "labels": _labels,
    "targets": _unit,
    "open_probs": _open_unit,
    "upstream": _normal,
}


@dataclass(frozen=True)
class Entry:
    """A public function as the tests, the fuzz target and the benchmark see it.

    name: the public name (``metrics.log_loss`` for the metric); variant: a
    label for a variant of it (other inputs or options), "" for the plain
    call; inputs: the roles of its positional arguments (``INPUTS``); kwargs:
    the variant's keyword arguments; grad: whether it returns a gradient with
    ``return_grad`` (with respect to its first argument, or ``grad_wrt``);
    out: its output buffer argument ("out", "grad_out" or None); reads: how
    many arrays of the input's size it reads (the benchmark's bound);
    options: non-default values of its options, each tested on its own;
    reference: the float64 reference (positional inputs, **kwargs); default
    reduction for losses: the public function's own.
    """
    name: str
    inputs: tuple
    reference: object
    variant: str = ""
    kwargs: dict = field(default_factory=dict)
    grad: bool = False
    grad_wrt: int = 0
    out: object = None
    reads: int = 1
    options: dict = field(default_factory=dict)
    family: str = ""
    per_call: object = None  # args -> more keyword arguments for those inputs
    # (args, kwargs) -> the arguments the function is called with, made from
    # the registered inputs (the partial statistics of the logits, say);
    # the reference still sees the registered inputs
    adapt: object = None
    float64_result: bool = False  # (results in float64, whatever the input's dtype)

    @property
    def label(self):
        return f"{self.name} ({self.variant})" if self.variant else self.name

    @property
    def function(self):
        import xent

        obj = xent
        for part in self.name.split("."):
            obj = getattr(obj, part)
        return obj

    def make(self, rng, n, c, dtype):
        """Typical positional inputs of n rows of c classes."""
        return [INPUTS[role](rng, n, c, dtype) for role in self.inputs]

    def _kw(self, args, kw):
        extra = self.per_call(args) if self.per_call else {}
        return {**self.kwargs, **extra, **kw}

    def call(self, args, **kw):
        return self.bind(args, **kw)()

    def bind(self, args, **kw):
        """The call on these inputs as a function of no arguments, its
        keyword inputs (``per_call``) and adapted arguments made once, here:
        what a benchmark times is the function alone."""
        kw = self._kw(args, kw)
        if self.adapt is not None:
            args, kw = self.adapt(args, kw)
        fn = self.function
        return lambda: fn(*args, **kw)

    def expected(self, args, **kw):
        return self.reference(*args, **self._kw(args, kw))


_CE_OPTIONS = {
    "label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 12.0, "ignore_index": 1,
    "weight": "per_class", "sample_weight": "per_row", "reduction": "none",
}
_BINARY_OPTIONS = {"pos_weight": "per_class", "weight": "per_element", "label_smoothing": 0.1,
                   "reduction": "none"}

def _mask_of(shape):
    """A fixed mask of the shape: about a third of each row left out, at least
    one entry of every row kept."""
    keep = np.random.default_rng(shape).random(shape) > 0.35
    keep[..., 0] = True
    return keep


def _scaled_kw(args):  # logsumexp's b (positive, some 0) and where
    shape = np.shape(args[0])
    b = np.random.default_rng(shape).integers(1, 9, shape) / 4.0  # (exact in every float type)
    b[..., 1::5] = 0.0
    return {"b": b.astype(np.asarray(args[0]).dtype), "where": _mask_of(shape)}


def _where_kw(args):
    return {"where": _mask_of(np.shape(args[0]))}


ENTRIES = (
    Entry("logsumexp", ("logits",), ref_logsumexp, grad=True, out="out", family="lse"),
    Entry("logsumexp", ("logits",), ref_logsumexp, variant="b, where", grad=True, out="out",
          family="lse", per_call=_scaled_kw),
    Entry("softmax", ("logits",), ref_softmax, out="out", family="lse"),
    Entry("softmax", ("logits",), ref_softmax, variant="where", out="out", family="lse",
          per_call=_where_kw),
    Entry("log_softmax", ("logits",), ref_log_softmax, out="out", family="lse"),
    Entry("log_softmax", ("logits",), ref_log_softmax, variant="where", out="out", family="lse",
          per_call=_where_kw),
    Entry("softmax_backward", ("probs", "upstream"), ref_softmax_backward, out="out", reads=2,
          family="lse"),
    Entry("log_softmax_backward", ("log_probs", "upstream"), ref_log_softmax_backward, out="out",
          reads=2, family="lse"),
    Entry("softmax_cross_entropy", ("logits", "labels"), ref_softmax_cross_entropy, grad=True,
          out="grad_out", options=_CE_OPTIONS, family="class"),
    Entry("softmax_cross_entropy", ("logits", "probs"), ref_softmax_cross_entropy, variant="probs",
          grad=True, out="grad_out", reads=2,
          options={k: v for k, v in _CE_OPTIONS.items() if k != "ignore_index"}, family="class"),
    Entry("softmax_cross_entropy", ("logits", "labels"), ref_softmax_cross_entropy,
          variant="label_smoothing", kwargs={"label_smoothing": 0.1}, grad=True, out="grad_out",
          family="class"),
    Entry("softmax_cross_entropy", ("logits", "labels"), ref_softmax_cross_entropy,
          variant="softcap", kwargs={"softcap": 30.0}, grad=True, out="grad_out",
          options={k: v for k, v in _CE_OPTIONS.items() if k != "softcap"}, family="class"),
    Entry("nll_loss", ("log_probs", "labels"), ref_nll_loss, grad=True, out="grad_out",
          options={k: v for k, v in _CE_OPTIONS.items() if k not in ("z_loss", "softcap")},
          family="class"),
    Entry("softmax_focal_loss", ("logits", "labels"), ref_softmax_focal_loss, grad=True,
          out="grad_out", options={"gamma": 0.5, "alpha": "per_class", "reduction": "none",
                                   "sample_weight": "per_row"},
          family="class"),
    Entry("softmax_focal_loss", ("logits", "probs"), ref_softmax_focal_loss, variant="probs",
          grad=True, out="grad_out", reads=2, options={"gamma": 3.0, "reduction": "none",
                                                       "sample_weight": "per_row",
                                                       "label_smoothing": 0.1},
          family="class"),
    Entry("softmax_focal_loss", ("logits", "labels"), ref_softmax_focal_loss,
          variant="label_smoothing", kwargs={"label_smoothing": 0.1}, grad=True, out="grad_out",
          options={"gamma": 0.5, "alpha": "per_class", "reduction": "none",
                   "sample_weight": "per_row", "ignore_index": 1}, family="class"),
    Entry("binary_cross_entropy_with_logits", ("logits", "targets"),
          ref_binary_cross_entropy_with_logits, grad=True, out="grad_out", reads=2,
          options=_BINARY_OPTIONS, family="binary"),
    Entry("binary_cross_entropy", ("open_probs", "targets"), ref_binary_cross_entropy, grad=True,
          out="grad_out", reads=2, options={**_BINARY_OPTIONS, "eps": 1e-7}, family="binary"),
    Entry("multilabel_cross_entropy", ("logits", "targets"), ref_multilabel_cross_entropy,
          grad=True, out="grad_out", reads=2,
          options={**_BINARY_OPTIONS, "class_reduction": "mean", "sample_weight": "per_row"},
          family="binary"),
    Entry("binary_focal_loss", ("open_probs", "targets"), ref_binary_focal_loss, grad=True,
          out="grad_out", reads=2,
          options={"gamma": 0.5, "alpha": 0.25, "eps": 1e-7, "weight": "per_element",
                   "label_smoothing": 0.1, "reduction": "none"}, family="binary"),
    Entry("binary_focal_loss_with_logits", ("logits", "targets"),
          ref_binary_focal_loss_with_logits, grad=True, out="grad_out", reads=2,
          options={"gamma": 0.5, "alpha": 0.25, "weight": "per_element", "label_smoothing": 0.1,
                   "reduction": "none"}, family="binary"),
    Entry("entropy", ("probs",), ref_entropy, options={"reduction": "mean"}, family="info"),
    Entry("cross_entropy", ("probs", "probs"), ref_cross_entropy, grad=True, grad_wrt=1, reads=2,
          options={"eps": 1e-3, "reduction": "mean", "sample_weight": "per_row"}, family="info"),
    Entry("cross_entropy", ("probs", "probs"), ref_cross_entropy, variant="focal",
          kwargs={"gamma": 1.5}, grad=True, grad_wrt=1, reads=2,
          options={"eps": 1e-3, "alpha": "per_class", "reduction": "mean"}, family="info"),
    Entry("cross_entropy", ("labels", "probs"), ref_cross_entropy, variant="focal, labels",
          kwargs={"gamma": 2.0}, grad=True, grad_wrt=1, reads=1,
          options={"eps": 1e-3, "alpha": "per_class", "reduction": "sum",
                   "sample_weight": "per_row"}, family="info"),
    Entry("kl_divergence", ("probs", "probs"), ref_kl_divergence, grad=True, grad_wrt=1, reads=2,
          options={"eps": 1e-3, "reduction": "sum", "log_input": True, "log_target": True,
                   "sample_weight": "per_row"},
          family="info"),
    Entry("kl_divergence_with_logits", ("logits", "logits"), ref_kl_divergence_with_logits,
          grad=True, out="grad_out", reads=2, family="distill",
          options={"temperature": 2.5, "reverse": True, "scale_by_temperature_squared": True,
                   "sample_weight": "per_row", "reduction": "none"}),
    Entry("jensen_shannon_with_logits", ("logits", "logits"), ref_jensen_shannon_with_logits,
          grad=True, out="grad_out", reads=2, family="distill",
          options={"beta": 0.2, "temperature": 0.7, "scale_by_temperature_squared": True,
                   "sample_weight": "per_row", "reduction": "mean"}),
    Entry("metrics.log_loss", ("labels", "probs"), ref_log_loss, reads=1,
          options={"normalize": False, "sample_weight": "per_row"}, family="metric",
          per_call=lambda args: {"labels": np.arange(np.shape(args[1])[1])}),
    # the partial statistics: each checked through the whole row's reference
    Entry("softmax_partials", ("logits",), ref_partials, family="partials", float64_result=True,
          options={"label_smoothing": 0.1, "weight": "per_class", "class_offset": 3}),
    Entry("softmax_partials", ("logits", "labels"), ref_partials, variant="labels",
          family="partials", float64_result=True,
          options={"label_smoothing": 0.1, "ignore_index": 1, "weight": "per_class"}),
    Entry("merge_partials", ("logits",), ref_partials, family="partials", float64_result=True,
          adapt=_via_merge),
    Entry("logsumexp_from_partials", ("logits",), ref_logsumexp, family="partials",
          float64_result=True, adapt=_via_stats),
    Entry("softmax_from_partials", ("logits",), ref_softmax, family="partials", adapt=_via_block),
    Entry("log_softmax_from_partials", ("logits",), ref_log_softmax, family="partials",
          adapt=_via_block),
    Entry("softmax_cross_entropy_from_partials", ("logits", "labels"),
          lambda x, t, **kw: ref_softmax_cross_entropy(x, t, **{"reduction": "none", **kw}),
          family="partials", float64_result=True, adapt=_via_loss,
          options={**{k: v for k, v in _CE_OPTIONS.items() if k != "softcap"}, "reduction": "sum"}),
    Entry("softmax_cross_entropy_block_grad", ("logits", "labels"), ref_softmax_cross_entropy_grad,
          family="partials", adapt=_via_grad,
          options={k: v for k, v in _CE_OPTIONS.items() if k not in ("softcap", "reduction")}),
    Entry("nll_loss_from_partials", ("log_probs", "labels"),
          lambda x, t, **kw: ref_nll_loss(x, t, reduction="none", **kw), family="partials",
          float64_result=True, adapt=_via_loss,
          options={k: v for k, v in _CE_OPTIONS.items()
                   if k not in ("softcap", "z_loss", "reduction")}),
    Entry("nll_loss_block_grad", ("log_probs", "labels"), ref_nll_loss_grad, family="partials",
          adapt=_via_grad,
          options={k: v for k, v in _CE_OPTIONS.items()
                   if k not in ("softcap", "z_loss", "reduction")}),
    Entry("cross_entropy_denominator", ("logits", "labels"), ref_denominator, family="partials",
          float64_result=True, adapt=_via_denominator,
          options={"weight": "per_class", "sample_weight": "per_row", "ignore_index": 1}),
)


def option_value(value, rng, n, c):
    """A registered option's value for inputs of n rows of c classes."""
    if value == "per_class":
        return rng.random(c) + 0.5
    if value == "per_row":
        return rng.random(n) + 0.5
    if value == "per_element":
        return rng.random((n, c)) + 0.5
    return value


def entry(name, variant=""):
    for e in ENTRIES:
        if e.name == name and e.variant == variant:
            return e
    raise KeyError(f"no registry entry {name!r} {variant!r}")


def public_names():
    """Every public function of xent (``metrics.log_loss`` for the metric),
    which the registry must cover."""
    import xent
    import xent.metrics

    names = {n for n in xent.__all__ if callable(getattr(xent, n))
             and not isinstance(getattr(xent, n), type(xent)) and n not in ("show_config",)}
    return names | {f"metrics.{n}" for n in xent.metrics.__all__}
