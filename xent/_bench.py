"""``python -m xent bench``: time xent against its peers and against ``np.copyto``.

Every case is timed for xent, a plain NumPy implementation, SciPy, PyTorch
and JAX (``jax.jit`` of optax and ``jax.nn``; when importable) and ``np.copyto`` of the same input (the memory-speed
reference). Each timing is the median of at least ``--repeats`` calls (more for
short calls: each turn times calls for at least 30 ms), taken in three rounds in
which the implementations take turns, each after 50 ms of warm-up calls. The result
is a markdown table on stdout; progress goes to stderr.
"""

import importlib
import json
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

import xent

from ._threads import requested_threads


# --- plain NumPy peers (in the input dtype, as a user would write them) ------

def np_logsumexp(x):
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[:, 0]


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def np_log_softmax(x):
    d = x - x.max(axis=-1, keepdims=True)
    d -= np.log(np.exp(d).sum(axis=-1, keepdims=True))
    return d


def np_cross_entropy(x, target):
    """Mean softmax cross-entropy of integer targets and its gradient
    ``(softmax(x) - onehot(target)) / N``, fused as a NumPy user would."""
    n = x.shape[0]
    rows = np.arange(n)
    d = x - x.max(axis=-1, keepdims=True)
    e = np.exp(d)
    s = e.sum(axis=-1, keepdims=True)
    loss = (np.log(s[:, 0]) - d[rows, target]).mean(dtype=np.float64)
    e *= (1.0 / n) / s  # in place: e becomes the gradient
    e[rows, target] -= x.dtype.type(1.0 / n)
    return x.dtype.type(loss), e


def np_bce_with_logits(x, t):
    """Mean binary cross-entropy from logits and its gradient, as a NumPy user
    would write the stable form."""
    e = np.exp(-np.abs(x))
    loss = np.mean(np.maximum(x, 0) - x * t + np.log1p(e), dtype=np.float64)
    sig = np.where(x >= 0, 1, e) / (1 + e)
    return x.dtype.type(loss), (sig - t) / x.size


def np_distill(s, t, temperature=2.0):
    """KL(softmax(t / T) || softmax(s / T)) averaged over rows and its
    gradient (Q - P) / (T N), as a NumPy user would write it."""
    ls, lt = np_log_softmax(s / temperature), np_log_softmax(t / temperature)
    p = np.exp(lt)
    loss = np.sum(p * (lt - ls), dtype=np.float64) / len(s)
    return s.dtype.type(loss), (np.exp(ls) - p) / (temperature * len(s))


def np_softmax_backward(p, g):
    return p * (g - (p * g).sum(axis=-1, keepdims=True))


def np_log_softmax_backward(lp, g):
    return g - np.exp(lp) * g.sum(axis=-1, keepdims=True)


# --- the case list and the implementations of each operation ----------------

@dataclass(frozen=True)
class Case:
    name: str
    op: str  # key of implementations()
    rows: int
    cols: int
    dtype: str = "float32"


CE = "softmax_cross_entropy fwd+bwd"
CASES = (
    Case("logsumexp", "logsumexp", 4096, 32000),
    Case("softmax", "softmax", 4096, 32000),
    Case("log_softmax", "log_softmax", 4096, 32000),
    Case(CE, "cross_entropy", 4096, 32000),
    Case(CE, "cross_entropy", 1024, 128256),  # an LLM vocabulary (Llama 3): rows split into chunks
    Case(CE, "cross_entropy", 65536, 10),
    Case(CE, "cross_entropy", 4096, 8192, "float64"),
    Case(CE, "cross_entropy", 64, 250),  # 16000 elements: small enough for one thread
    Case("kl_divergence_with_logits fwd+bwd (T=2, distillation)", "distill", 4096, 32000),
    Case("binary_cross_entropy_with_logits fwd+bwd", "bce_logits", 1, 16 * 2**20),
    Case("multilabel_cross_entropy fwd+bwd (class mean)", "multilabel", 200000, 100, "float64"),
)
BINARY_OPS = ("bce_logits", "multilabel")  # their targets are 0/1 arrays of the input's shape
PAIR_OPS = ("distill",)  # their "target" is a second array of logits (the teacher's)
PLOT_CLASSES = (10, 100, 1000, 10000, 32000, 128256)
PLOT_ELEMENTS = 32 * 2**20
QUICK_ROWS = 8  # --quick divides the rows (and the plot's element count) by this


def shape(case, div=1):
    """The case's (rows, cols), ``div`` times smaller for --quick (in rows, or
    in columns for a case of fewer rows than ``div``)."""
    if case.rows >= div:
        return case.rows // div, case.cols
    return case.rows, case.cols // div


def _optional(name):
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a broken install
        return None


def jax_implementations(jax):
    """{op: (name, fn)}: jax.jit of optax / jax.nn, the arrays put on the
    device once per call (as a NumPy user calling it would), the results
    blocked on; None for ops it lacks."""
    import jax.numpy as jnp  # type: ignore[import-not-found, import-untyped, unused-ignore]
    import jax.scipy.special  # type: ignore[import-not-found, import-untyped, unused-ignore]

    nn = jax.nn
    try:
        import optax  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        optax = None

    def ce(x, t):
        if optax is not None:
            loss = optax.softmax_cross_entropy_with_integer_labels(x, t).mean()
        else:
            loss = -jnp.take_along_axis(nn.log_softmax(x), t[:, None], axis=-1).mean()
        return loss

    def bce(x, t):
        if optax is not None:
            return optax.sigmoid_binary_cross_entropy(x, t).mean()
        return jnp.mean(jnp.maximum(x, 0) - x * t + jnp.log1p(jnp.exp(-jnp.abs(x))))

    lse = jax.jit(lambda x: jax.scipy.special.logsumexp(x, axis=-1))
    sm = jax.jit(lambda x: nn.softmax(x, axis=-1))
    lsm = jax.jit(lambda x: nn.log_softmax(x, axis=-1))
    ce_vg = jax.jit(jax.value_and_grad(ce))
    bce_vg = jax.jit(jax.value_and_grad(bce))

    def run(fn, *args):
        return jax.block_until_ready(fn(*args))

    return {
        "logsumexp": lambda x, t, o: run(lse, x),
        "softmax": lambda x, t, o: run(sm, x),
        "log_softmax": lambda x, t, o: run(lsm, x),
        "cross_entropy": lambda x, t, o: run(ce_vg, x, t),
        "bce_logits": lambda x, t, o: run(bce_vg, x, t),
    }


# the peers the bench measures when installed, and how to add each one
PEER_INSTALL = {
    "scipy": ("the SciPy rows (scipy.special.logsumexp, softmax, log_softmax)", "pip install scipy"),
    "torch": ("the PyTorch rows (torch.nn.functional, forward and backward)",
              "pip install torch==2.13.0  (any recent version; for the CPU-only build elsewhere: "
              "pip install torch --index-url https://download.pytorch.org/whl/cpu)"),
    "jax": ("the JAX rows (jax.jit of optax / jax.nn)", "pip install jax optax"),
}


def missing_peers(versions):
    """Lines telling how to add the peers that are not installed."""
    lines = []
    for name, (rows, command) in PEER_INSTALL.items():
        if versions.get(name) == "not installed":
            lines.append(f"- {name} is not installed, so {rows} are missing: {command}")
    if lines:
        lines.insert(0, "Peers not measured (install them for their rows):")
    return lines


def implementations(n_threads, scipy_special=None, torch=None, jax=None):
    """{op: [(name, fn(x, target, out))]}: xent first, then the available peers."""
    nt = n_threads
    impls = {
        "logsumexp": [("xent", lambda x, t, o, n_threads=nt: xent.logsumexp(x, n_threads=n_threads)),
                      ("numpy", lambda x, t, o: np_logsumexp(x))],
        "softmax": [("xent", lambda x, t, o, n_threads=nt: xent.softmax(x, out=o, n_threads=n_threads)),
                    ("xent (allocating)", lambda x, t, o: xent.softmax(x, n_threads=nt)),
                    ("numpy", lambda x, t, o: np_softmax(x))],
        "log_softmax": [("xent", lambda x, t, o, n_threads=nt: xent.log_softmax(
                            x, out=o, n_threads=n_threads)),
                        ("xent (allocating)", lambda x, t, o: xent.log_softmax(x, n_threads=nt)),
                        ("numpy", lambda x, t, o: np_log_softmax(x))],
        "cross_entropy": [
            ("xent", lambda x, t, o, n_threads=nt: xent.softmax_cross_entropy(
                x, t, return_grad=True, grad_out=o, n_threads=n_threads)),
            ("xent (allocating)", lambda x, t, o: xent.softmax_cross_entropy(
                x, t, return_grad=True, n_threads=nt)),
            ("numpy", lambda x, t, o: np_cross_entropy(x, t))],
        "distill": [
            ("xent", lambda x, t, o, n_threads=nt: xent.kl_divergence_with_logits(
                x, t, temperature=2.0, return_grad=True, grad_out=o, n_threads=n_threads)),
            ("numpy", lambda x, t, o: np_distill(x, t))],
        "bce_logits": [
            ("xent", lambda x, t, o, n_threads=nt: xent.binary_cross_entropy_with_logits(
                x, t, return_grad=True, grad_out=o, n_threads=n_threads)),
            ("numpy", lambda x, t, o: np_bce_with_logits(x, t))],
        "multilabel": [
            ("xent", lambda x, t, o, n_threads=nt: xent.multilabel_cross_entropy(
                x, t, class_reduction="mean", return_grad=True, grad_out=o,
                n_threads=n_threads)),
            # the mean over samples of class means is the mean over all elements
            ("numpy", lambda x, t, o: np_bce_with_logits(x, t))],
    }
    if requested_threads(n_threads) > 1:  # the thread scaling: xent on one thread
        for op, rows in impls.items():
            fn = rows[0][1]
            rows.insert(1, ("xent (1 thread)", lambda x, t, o, fn=fn: fn(x, t, o, n_threads=1)))
    if scipy_special is not None:
        for op in ("logsumexp", "softmax", "log_softmax"):
            fn = getattr(scipy_special, op)
            impls[op].append(("scipy", lambda x, t, o, fn=fn: fn(x, axis=-1)))
    if torch is not None:
        F = torch.nn.functional
        tensor = torch.from_numpy
        impls["logsumexp"].append(("torch", lambda x, t, o: torch.logsumexp(tensor(x), -1)))
        impls["softmax"].append(("torch", lambda x, t, o: torch.softmax(tensor(x), -1)))
        impls["log_softmax"].append(("torch", lambda x, t, o: torch.log_softmax(tensor(x), -1)))

        def torch_ce(x, t, o):
            xt = tensor(x).requires_grad_()
            loss = F.cross_entropy(xt, tensor(t))
            return loss, torch.autograd.grad(loss, xt)[0]

        impls["cross_entropy"].append(("torch", torch_ce))

        def torch_binary(loss_fn):
            def run(x, t, o):
                xt = tensor(x).requires_grad_()
                loss = loss_fn(xt, tensor(t))
                return loss, torch.autograd.grad(loss, xt)[0]
            return run

        def torch_distill(x, t, o):  # the composition PyTorch users write
            xt = tensor(x).requires_grad_()
            loss = F.kl_div(F.log_softmax(xt / 2.0, -1), F.log_softmax(tensor(t) / 2.0, -1),
                            reduction="batchmean", log_target=True)
            return loss, torch.autograd.grad(loss, xt)[0]

        impls["distill"].append(("torch", torch_distill))
        impls["bce_logits"].append(("torch", torch_binary(F.binary_cross_entropy_with_logits)))
        impls["multilabel"].append(("torch", torch_binary(F.multilabel_soft_margin_loss)))
    if jax is not None:
        for op, fn in jax_implementations(jax).items():
            impls[op].append(("jax", fn))
    return impls


#: xent.torch against torch.nn.functional, forward + backward through autograd
#: (name, op, rows, cols, dtype, in the default run): the speed table of the
#: PyTorch page (``--only tensors`` runs them all; the default run keeps two,
#: a large and a small call, so that it stays within 3 minutes)
TORCH_CASES = (
    ("cross_entropy", "ce", 4096, 32000, "float32", True),
    ("cross_entropy", "ce", 1024, 128256, "float32", False),
    ("cross_entropy", "ce", 4096, 32000, "bfloat16", False),
    ("cross_entropy", "ce", 64, 10, "float32", True),
    ("cross_entropy label_smoothing=0.1", "ce_ls", 256, 100, "float32", False),
    ("binary_cross_entropy_with_logits", "bce", 4096, 4096, "float32", False),
)


def torch_case(torch, op, rows, cols, dtype):
    """(bytes as a NumPy array for the np.copyto reference, target, impls):
    each impl runs forward + backward of a fresh leaf sharing the logits."""
    import xent.torch as xtorch

    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((rows, cols), dtype=np.float32)).to(
        getattr(torch, dtype))
    if op == "bce":
        t = torch.from_numpy((rng.random((rows, cols)) > 0.5).astype(np.float32)).to(x.dtype)
        pair = (xtorch.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)
        kw = {}
    else:
        t = torch.from_numpy(rng.integers(0, cols, rows))
        pair = (xtorch.cross_entropy, F.cross_entropy)
        kw = {"label_smoothing": 0.1} if op == "ce_ls" else {}

    def step(fn):
        def run(a, b, o):
            leaf = x.detach().requires_grad_()
            loss = fn(leaf, t, **kw)
            loss.backward()
            return loss, leaf.grad
        return run

    bits = x.view(torch.int16) if dtype == "bfloat16" else x
    return bits.numpy(), None, [("xent.torch", step(pair[0])), ("torch", step(pair[1]))]


def torch_labels(div, only):
    """The PyTorch cases --only selects: [(label, op, rows, cols, dtype)]."""
    out = []
    for name, op, rows, cols, dtype, default in TORCH_CASES:
        rows = rows // div if rows >= div else rows
        label = f"xent.torch {name} fwd+bwd {rows}x{cols} {dtype} tensors"
        if (default and not only) or (only and any(text in label for text in only)):
            out.append((label, name, op, rows, cols, dtype))
    return out


def run_torch_cases(torch, selected, repeats, progress):
    records = []
    for label, name, op, rows, cols, dtype in selected:
        x, t, impls = torch_case(torch, op, rows, cols, dtype)
        medians = measure(label, x, t, impls, repeats, progress)
        records.append({"name": f"{name} fwd+bwd", "shape": [rows, cols], "dtype": dtype,
                        "medians_s": medians,
                        "ratio_to_copyto": {k: v / medians["np.copyto"]
                                            for k, v in medians.items()},
                        "torch_over_xent": medians["torch"] / medians["xent.torch"]})
    return records


def torch_table(records, n_threads):
    lines = [f"### PyTorch drop-ins: `xent.torch` vs `torch.nn.functional`, "
             f"forward + backward through autograd, {n_threads} threads",
             "",
             "| function | shape | dtype | xent.torch ms | torch ms | torch / xent.torch | "
             "xent.torch vs copyto |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in records:
        m = r["medians_s"]
        lines.append(f"| {r['name']} | {'x'.join(map(str, r['shape']))} | {r['dtype']} | "
                     f"{m['xent.torch'] * 1e3:.3f} | {m['torch'] * 1e3:.3f} | "
                     f"{r['torch_over_xent']:.2f}x | "
                     f"{r['ratio_to_copyto']['xent.torch']:.2f}x |")
    return "\n".join(lines)


# --- timing -------------------------------------------------------------------

def median_time(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Progress:
    """One status line on stderr, overwritten in place."""

    def __init__(self, total, stream=sys.stderr):
        self.total, self.stream, self.i, self.width = total, stream, 0, 0

    def step(self, label):
        self.i += 1
        self._write(f"[{self.i}/{self.total}] {label} ...")

    def done(self):
        self._write("")
        self.stream.write("\r")
        self.stream.flush()

    def _write(self, text):
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)


def make_input(rows, cols, dtype, seed=0, binary=False, pair=False):
    """Logits and targets: class indices, 0/1 targets of the logits' shape,
    or (``pair``) a second array of logits."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols), dtype=np.dtype(dtype))
    if pair:
        return x, x + rng.standard_normal((rows, cols), dtype=np.dtype(dtype))
    if binary:
        return x, (rng.random((rows, cols)) > 0.5).astype(x.dtype)
    return x, rng.integers(0, cols, rows)


ROUNDS = 3
#: Pause before each implementation's turn: OpenMP runtimes (xent's, PyTorch's)
#: keep their threads spinning for a few milliseconds after a call, which on a
#: small machine would slow whatever runs next.
IDLE_S = 0.05
#: Warm-up before each turn's timed calls: calls for at least this long (and at
#: least one). After the pause, the first calls of every implementation run up
#: to twice as slow (threads waking, the CPU leaving its idle state); a single
#: warm-up call is not enough for that to pass.
WARM_S = 0.05
#: Each turn times its share of the calls and more, until its timed calls add
#: up to this long: the median of a sub-millisecond case then rests on a
#: hundred calls or more rather than a handful.
TIMED_S = 0.03


def measure(label, x, target, impls, repeats, progress):
    """{name: median seconds} for np.copyto of ``x`` and every implementation.

    The implementations take turns in ``ROUNDS`` rounds; in each, one waits
    ``IDLE_S``, runs untimed warm-up calls for ``WARM_S`` and then its share
    of the ``repeats`` timed calls, and more until they took ``TIMED_S``. A slow
    phase of a shared, noisy machine so falls on all of them alike.
    """
    out = np.empty_like(x)
    calls = [("np.copyto", lambda x, t, o: np.copyto(o, x))] + impls
    times = {name: [] for name, _ in calls}
    for r in range(ROUNDS):
        share = len(range(r, repeats, ROUNDS))
        for name, fn in calls:
            if r == 0:
                progress.step(f"{label} {name}")
            time.sleep(IDLE_S)  # let the previous one's spinning threads go to sleep
            warm_until = time.perf_counter() + WARM_S
            fn(x, target, out)  # warm-up: at least one call and WARM_S
            while time.perf_counter() < warm_until:
                fn(x, target, out)
            done, spent = 0, 0.0
            while done < share or (share and spent < TIMED_S):
                t0 = time.perf_counter()
                fn(x, target, out)
                dt = time.perf_counter() - t0
                times[name].append(dt)
                done, spent = done + 1, spent + dt
    return {name: statistics.median(ts) for name, ts in times.items()}


def summarize(case, shape, medians, nbytes):
    """A case's JSON record: medians, GB/s, ratios to np.copyto, xent speedups."""
    base, ours = medians["np.copyto"], medians["xent"]
    peers = [k for k in medians if k not in ("xent", "xent (allocating)", "np.copyto")]
    return {
        "name": case.name, "shape": list(shape), "dtype": case.dtype, "bytes": nbytes,
        "medians_s": medians,
        "gb_per_s": {k: nbytes / t / 1e9 for k, t in medians.items()},
        "ratio_to_copyto": {k: t / base for k, t in medians.items()},
        "xent_speedup": {k: medians[k] / ours for k in peers},
    }


# --- output -------------------------------------------------------------------

def header(argv, n_threads, cfg, versions, repeats):
    libs = ", ".join(f"{k} {v}" for k, v in versions.items())
    return "\n".join([
        "## xent bench",
        "",
        f"`python -m xent {' '.join(argv)}`",
        "",
        f"xent {cfg['version']}, isa {cfg['isa']}, threads {n_threads} "
        f"(OpenMP {'on' if cfg['openmp'] else 'off'}, {cfg['cores']} cores), {libs}, "
        f"{cfg['machine']}, Python {cfg['python']}",
        "",
        f"Median of at least {repeats} calls, in {ROUNDS} rounds in which the implementations take "
        f"turns, each after {WARM_S * 1e3:.0f} ms of warm-up calls and timing calls for at least "
        f"{TIMED_S * 1e3:.0f} ms. GB/s: input bytes / median. "
        "vs copyto: median / median of np.copyto of the same array. "
        "xent speedup: peer median / median of the first xent row; for \"xent (1 thread)\" "
        "that is the speedup of all threads over one. The first xent row "
        "writes into a preallocated output (`out=`/`grad_out=`, the training-loop form, "
        "as np.copyto does); \"allocating\" rows allocate it each call, as the peers do.",
        "",
    ])


def table(records):
    lines = ["| case | shape | dtype | implementation | median ms | GB/s | vs copyto | xent speedup |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in records:
        shape = "x".join(map(str, r["shape"]))
        for name, t in r["medians_s"].items():
            speedup = r["xent_speedup"].get(name)
            lines.append(
                f"| {r['name']} | {shape} | {r['dtype']} | {name} | {t * 1e3:.3f} | "
                f"{r['gb_per_s'][name]:.2f} | {r['ratio_to_copyto'][name]:.2f}x | "
                f"{'' if speedup is None else f'{speedup:.2f}x'} |")
    return "\n".join(lines)


def plot(path, sweep, title):
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, import-untyped, unused-ignore]

    fig, ax = plt.subplots(figsize=(7, 4.5))
    cs = [p["classes"] for p in sweep]
    for name in sweep[0]["gb_per_s"]:
        style = "--" if name == "np.copyto" else "-o"
        ax.plot(cs, [p["gb_per_s"][name] for p in sweep], style, label=name)
    ax.set(xscale="log", yscale="log", xlabel="classes C (N*C fixed)", ylabel="GB/s of logits", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- the command ----------------------------------------------------------------

def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help=f"shapes {QUICK_ROWS}x smaller in rows (for tests and CI)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per case, at least (default 7)")
    parser.add_argument("--threads", type=int, default=None,
                        help="n_threads for xent, and torch.set_num_threads (default: all)")
    parser.add_argument("--only", metavar="TEXT", action="append", default=None,
                        help="run only the cases whose name contains TEXT (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="save all measurements as JSON")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot GB/s against the class count (matplotlib): cross-entropy fwd+bwd "
                             "and its peers; with --grid, every function")
    parser.add_argument("--grid", action="store_true",
                        help="every registered function x class count x size x dtype: ratio to "
                             "np.copyto, GB/s, 2-vs-1 thread")
    parser.add_argument("--dask", action="store_true",
                        help="softmax cross-entropy on a dask.distributed LocalCluster (2 processes) "
                             "against the in-memory call and NumPy on Dask")
    parser.add_argument("--classes", metavar="C,C,...", help="--grid: these class counts")
    parser.add_argument("--sizes", metavar="MIB,MIB,...", help="--grid: these input sizes in MiB")
    parser.add_argument("--dtypes", metavar="float32,float64", help="--grid: these dtypes")


def run(args, argv):
    if args.repeats < 1:
        print("python -m xent bench: --repeats must be >= 1", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        except ImportError:
            print("python -m xent bench: --plot needs matplotlib, which is not installed "
                  "(pip install matplotlib)", file=sys.stderr)
            return 2

    if args.dask:
        from . import _bench_dask

        return _bench_dask.run(args)
    if args.grid:
        from . import _grid

        return _grid.run(args, argv)
    scipy_special, torch, jax = _optional("scipy.special"), _optional("torch"), _optional("jax")
    n_threads = requested_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(n_threads)
    impls = implementations(args.threads, scipy_special, torch, jax)
    cfg = xent.show_config(mode="dicts")
    versions = {"numpy": np.__version__,
                "scipy": getattr(_optional("scipy"), "__version__", "not installed"),
                "torch": getattr(torch, "__version__", "not installed"),
                "jax": getattr(jax, "__version__", "not installed")}

    div = QUICK_ROWS if args.quick else 1
    cases = [(c, *shape(c, div)) for c in CASES
             if not args.only or any(text in f"{c.name} {c.rows}x{c.cols} {c.dtype}"
                                     for text in args.only)]
    torch_selected = torch_labels(div, args.only) if torch is not None else []
    if not cases and not torch_selected:
        print(f"python -m xent bench: no case matches --only {args.only}", file=sys.stderr)
        return 2
    ce_impls = [i for i in impls["cross_entropy"]
                if i[0] not in ("xent (allocating)", "xent (1 thread)")]
    plot_cs = PLOT_CLASSES[::2] if args.quick else PLOT_CLASSES
    total = sum(1 + len(impls[c.op]) for c, _, _ in cases)
    total += 3 * len(torch_selected)
    total += len(plot_cs) * (1 + len(ce_impls)) if args.plot else 0
    progress = Progress(total)

    records = []
    for case, rows, cols in cases:
        x, target = make_input(rows, cols, case.dtype, binary=case.op in BINARY_OPS,
                               pair=case.op in PAIR_OPS)
        label = f"{case.name} {rows}x{cols} {case.dtype}"
        medians = measure(label, x, target, impls[case.op], args.repeats, progress)
        records.append(summarize(case, x.shape, medians, x.nbytes))
        del x

    torch_records = run_torch_cases(torch, torch_selected, args.repeats, progress)

    sweep = []
    if args.plot:
        elements = PLOT_ELEMENTS // div
        for c in plot_cs:
            x, target = make_input(max(1, elements // c), c, "float32")
            medians = measure(f"{CE} {len(x)}x{c}", x, target, ce_impls, args.repeats, progress)
            sweep.append({"classes": c, "shape": list(x.shape), "medians_s": medians,
                          "gb_per_s": {k: x.nbytes / t / 1e9 for k, t in medians.items()}})
            del x
    progress.done()

    print(header(argv, n_threads, cfg, versions, args.repeats))
    if records:
        print(table(records))
    if torch_records:
        print("\n" + torch_table(torch_records, n_threads))
    missing = missing_peers(versions)
    if missing:
        print("\n" + "\n".join(missing))
    if args.plot:
        plot(args.plot, sweep, f"{CE}, float32, {n_threads} threads")
        print(f"\nplot saved to {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": ["python", "-m", "xent", *argv], "machine": cfg,
                       "versions": versions, "threads": n_threads, "repeats": args.repeats,
                       "quick": args.quick, "cases": records, "torch_cases": torch_records,
                       "plot": sweep}, f, indent=1)
    return 0
