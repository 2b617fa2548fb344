"""Gradient-boosting objectives: xent.objectives against the NumPy reference
objective and np.copyto of the margins, interleaved, medians in one process;
then whole XGBoost and LightGBM training runs with each objective.

    python benchmarks/objectives.py [--rows 200000] [--classes 10] [--repeats 15]

The NumPy reference is the objective users write (XGBoost's demo, vectorised):
softmax by the row max, one-hot, ``g = p - y``, ``h = max(2 p (1 - p), 1e-16)``.
"""

import argparse
import time

import numpy as np

from xent import objectives as O


def numpy_softmax_objective(margins, labels, grad, hess):
    """The reference: softmax, one-hot, XGBoost's hessian (into grad, hess)."""
    e = np.exp(margins - margins.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    np.subtract(p, np.eye(margins.shape[1])[labels], out=grad)
    np.maximum(2.0 * p * (1.0 - p), 1e-16, out=hess)
    return grad, hess


def medians(fns, repeats):
    """Interleaved runs of each callable; the median seconds of each."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def kernel_table(n, c, repeats):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c)) * 2
    y = rng.integers(0, c, n)
    g, h, dst = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    g1, h1 = np.zeros_like(x), np.zeros_like(x)
    fns = {
        "np.copyto (margins)": lambda: np.copyto(dst, x),
        "xent softmax_grad_hess": lambda: O.softmax_grad_hess(x, y, hessian="xgboost",
                                                              grad_out=g, hess_out=h),
        "xent softmax_grad_hess, 1 thread": lambda: O.softmax_grad_hess(
            x, y, hessian="xgboost", grad_out=g, hess_out=h, n_threads=1),
        "xent softmax_focal_grad_hess": lambda: O.softmax_focal_grad_hess(
            x, y, hessian="clip", grad_out=g, hess_out=h),
        "NumPy reference objective": lambda: numpy_softmax_objective(x, y, g1, h1),
    }
    numpy_softmax_objective(x, y, g1, h1)
    O.softmax_grad_hess(x, y, hessian="xgboost", grad_out=g, hess_out=h)
    assert np.allclose(g, g1, atol=1e-12) and np.allclose(h, h1, rtol=1e-10)
    xb = rng.standard_normal(n * c) * 2
    tb = (rng.random(n * c) > 0.5).astype(np.float64)
    gb, hb, db = np.zeros_like(xb), np.zeros_like(xb), np.zeros_like(xb)
    fns["np.copyto (binary margins)"] = lambda: np.copyto(db, xb)
    fns["xent logistic_grad_hess"] = lambda: O.logistic_grad_hess(xb, tb, grad_out=gb, hess_out=hb)
    fns["xent binary_focal_grad_hess"] = lambda: O.binary_focal_grad_hess(
        xb, tb, hessian="clip", grad_out=gb, hess_out=hb)
    t = medians(fns, repeats)
    print(f"\n{n}x{c} float64 margins ({x.nbytes / 2**20:.1f} MiB), median of {repeats} "
          f"interleaved runs")
    print(f"| {'call':<36} | {'ms':>7} | {'x copy':>6} |")
    print(f"|{'-' * 38}|{'-' * 9}|{'-' * 8}|")
    for k, v in t.items():
        ref = t["np.copyto (binary margins)"] if ("logistic" in k or "binary" in k) else \
            t["np.copyto (margins)"]
        print(f"| {k:<36} | {v * 1e3:7.2f} | {v / ref:6.2f} |")
    print(f"NumPy reference / xent softmax_grad_hess: "
          f"{t['NumPy reference objective'] / t['xent softmax_grad_hess']:.1f}x")


SPENT = {}  # objective label -> seconds inside it (LightGBM deep-copies its params)


class Timed:
    """An objective whose calls are timed (seconds in SPENT[label])."""

    def __init__(self, fn, label):
        self.fn, self.label = fn, label
        SPENT[label] = 0.0

    @property
    def spent(self):
        return SPENT[self.label]

    def __call__(self, a, b):
        t0 = time.perf_counter()
        out = self.fn(a, b)
        SPENT[self.label] += time.perf_counter() - t0
        return out


def train_medians(runs, repeats):
    """runs: name -> (make objective or None, train(obj)); interleaved; the
    median total seconds and seconds inside the objective of each."""
    total = {k: [] for k in runs}
    inside = {k: [] for k in runs}
    for _ in range(repeats):
        for k, (make, train) in runs.items():
            obj = Timed(make(), k) if make else None
            t0 = time.perf_counter()
            train(obj)
            total[k].append(time.perf_counter() - t0)
            inside[k].append(obj.spent if obj else float("nan"))
    return {k: (float(np.median(total[k])), float(np.median(inside[k]))) for k in runs}


def training_table(n, c, rounds, repeats):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 20))
    y = np.argmax(X[:, :c] + rng.gumbel(size=(n, c)), axis=1)
    rows = []
    try:
        import xgboost as xgb
    except ImportError:
        xgb = None
    if xgb is not None:
        d = xgb.DMatrix(X, label=y)
        params = dict(num_class=c, max_depth=6, eta=0.3, base_score=0.5, tree_method="hist",
                      nthread=2, disable_default_eval_metric=1)
        bufs = {}

        def np_obj(predt, dtrain):
            labels = dtrain.get_label().astype(np.int64)
            m = predt.astype(np.float64)
            if "g" not in bufs:
                bufs["g"], bufs["h"] = np.empty_like(m), np.empty_like(m)
            return numpy_softmax_objective(m, labels, bufs["g"], bufs["h"])

        runs = {
            "XGBoost native multi:softprob": (None, lambda obj: xgb.train(
                dict(params, objective="multi:softprob"), d, rounds)),
            "XGBoost + xent objective": (lambda: O.xgboost("softmax", hessian="xgboost"),
                                         lambda obj: xgb.train(params, d, rounds, obj=obj)),
            "XGBoost + NumPy objective": (lambda: np_obj,
                                          lambda obj: xgb.train(params, d, rounds, obj=obj)),
        }
        rows.append(("xgboost", train_medians(runs, repeats)))
    try:
        import lightgbm as lgb
    except ImportError:
        lgb = None
    if lgb is not None:
        base = dict(num_class=c, verbose=-1, num_threads=2, boost_from_average=False)

        def lgb_np_obj(preds, data):
            labels = data.get_label().astype(np.int64)
            g, h = np.empty_like(preds), np.empty_like(preds)
            numpy_softmax_objective(np.ascontiguousarray(preds), labels, g, h)
            return g, h * (c / (c - 1.0)) / 2.0

        def run(obj):
            return lgb.train(dict(base, objective=obj), lgb.Dataset(X, label=y), rounds)

        runs = {
            "LightGBM native multiclass": (None, lambda obj: run("multiclass")),
            "LightGBM + xent objective": (lambda: O.lightgbm("softmax", hessian="lightgbm"), run),
            "LightGBM + NumPy objective": (lambda: lgb_np_obj, run),
        }
        rows.append(("lightgbm", train_medians(runs, repeats)))
    print(f"\nTraining {rounds} rounds on {n}x20 features, {c} classes, 2 threads, median of "
          f"{repeats} interleaved runs")
    print(f"| {'run':<34} | {'total s':>7} | {'in the objective s':>18} |")
    print(f"|{'-' * 36}|{'-' * 9}|{'-' * 20}|")
    for _, t in rows:
        for k, (v, o) in t.items():
            o = "" if o != o else f"{o:.3f}"
            print(f"| {k:<34} | {v:7.3f} | {o:>18} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--train-rows", type=int, default=100_000)
    a = ap.parse_args()
    kernel_table(a.rows, a.classes, a.repeats)
    training_table(a.train_rows, a.classes, a.rounds, max(5, a.repeats // 3))


if __name__ == "__main__":
    main()
