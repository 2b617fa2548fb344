"""64-bit indexing: inputs of more than 2**31 elements, checked against values
known analytically.

The inputs cost almost no memory: each is an anonymous private mapping that
is never written except for a few marker values, so its pages all map the
kernel's shared zero page (reading 8 GiB of it takes no RAM, and it stays in
the CPU's cache). Such arrays are C-contiguous and aligned, so the validation
layer hands them to the kernels as they are, which then walk a (N, C) index
space of more than 2**31 elements (checked: the peak resident memory of each
call stays far below one copy of the input). Markers are written in rows past
element 2**31 (and in the row that straddles it), where an index computed in
32 bits would wrap, so a wrapped index would move or lose them.

The forward passes of the losses and of logsumexp return O(N) values and run
by default. Outputs of the input's size (softmax, gradients) need 8.6 GB of
real memory: those tests are marked ``slow`` (deselect with ``-m "not slow"``).
"""

import contextlib
import math
import mmap
import sys
import warnings

import numpy as np
import pytest

import xent

pytestmark = pytest.mark.skipif(
    sys.maxsize < 2**32 or not hasattr(mmap, "MAP_ANONYMOUS") or not sys.platform.startswith("linux"),
    reason="needs a 64-bit Linux (anonymous mappings backed by the zero page)")

TWO31 = 2**31
ROWS = {  # (N, C) with N * C just past 2**31 (the row holding element 2**31 is
    # not the last one), through each kernel path
    "row path": (TWO31 // 1000 + 2, 1000),
    "small-class path": (TWO31 // 48 + 2, 48),
    "one row": (1, TWO31 + 16),  # (rows this long are split into chunks over threads)
}


def zeros(n, dtype):
    """A writeable array of n zeros that costs no memory until written."""
    mm = mmap.mmap(-1, n * np.dtype(dtype).itemsize,
                   flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mm, dtype=dtype)


def readonly(a):
    v = a.view()
    v.setflags(write=False)
    return v


class Zeros:
    """One zero mapping of ``n`` float32 values shared by the tests of this
    module; ``marked(shape, marks)`` sets marker values (flat index: value),
    yields the read-only (N, C) view, and zeroes them again."""

    def __init__(self, n, dtype=np.float32):
        self.base = zeros(n, dtype)

    @contextlib.contextmanager
    def marked(self, shape, marks=()):
        flat = self.base[:math.prod(shape)]
        for k, v in marks:
            flat[k] = v
        try:
            yield readonly(flat.reshape(shape))
        finally:
            for k, _ in marks:
                flat[k] = 0


@pytest.fixture(scope="module")
def x_pages():
    return Zeros(TWO31 + 2**16)


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


@contextlib.contextmanager
def no_copy_of_the_input(limit=1.5 * 2**30):
    """Assert that the block's peak resident memory grows by less than
    ``limit`` (one copy of an input would be 8 GiB), where Linux lets the
    peak be reset (/proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        start = _status("VmRSS")
    except OSError:
        start = None
    yield
    if start is not None:
        grown = _status("VmHWM") - start
        assert grown < limit, f"peak memory grew by {grown / 2**30:.1f} GiB: the input was copied"


def markers(shape):
    """(row, column) of the markers: the row holding element 2**31, the last
    row, and row 0 (a control); in one row, columns on both sides of 2**31."""
    n, c = shape
    if n == 1:
        return [(0, 5), (0, TWO31 - 1), (0, TWO31 + 7)]
    return [(0, 3), (TWO31 // c, (TWO31 % c)), (n - 1, c - 1)]


def flat(shape, rc):
    return rc[0] * shape[1] + rc[1]


def check_rows(got, shape, special, others, rtol=2e-6):
    """Per-row results: ``special`` {row: value} at the marked rows, ``others``
    everywhere else (in chunks: fresh memory is slow on some virtual machines)."""
    got = np.asarray(got).reshape(-1)
    assert got.shape == (shape[0],)
    for r, v in special.items():
        np.testing.assert_allclose(got[r], v, rtol=rtol, err_msg=f"row {r}")
    for r0 in range(0, got.size, 2**20):
        chunk = got[r0:r0 + 2**20].astype(np.float64)
        chunk[[r - r0 for r in special if r0 <= r < r0 + chunk.size]] = others
        np.testing.assert_allclose(chunk, others, rtol=rtol, err_msg=f"rows from {r0}")


# ------------------------------------------------------------ log-sum-exp


@pytest.mark.parametrize("path", ROWS)
def test_logsumexp(x_pages, path):
    shape = ROWS[path]
    n, c = shape
    marks = markers(shape)
    vals = [3.0, 5.0, 7.0]
    with x_pages.marked(shape, [(flat(shape, rc), v) for rc, v in zip(marks, vals)]) as x, \
            no_copy_of_the_input():
        lse = xent.logsumexp(x)
    assert lse.dtype == np.float32 and lse.shape == (n,)
    if n == 1:
        want = math.log(c - 3 + sum(math.exp(v) for v in vals))
        np.testing.assert_allclose(lse[0], want, rtol=2e-6)
    else:
        special = {r: math.log(c - 1 + math.exp(v)) for (r, _), v in zip(marks, vals)}
        check_rows(lse, shape, special, math.log(c))


# --------------------------------------------------- softmax cross-entropy


def marked_labels(n, marks):
    """Class 0 everywhere but at the marked rows, whose label is the marked column."""
    labels = zeros(n, np.int64)
    for r, col in marks:
        labels[r] = col
    return readonly(labels)


@pytest.mark.parametrize("path", ROWS)
def test_softmax_cross_entropy_with_labels(x_pages, path):
    shape = ROWS[path]
    c = shape[1]
    marks = markers(shape)
    v = 6.0
    with x_pages.marked(shape, [(flat(shape, rc), v) for rc in marks]) as x, \
            no_copy_of_the_input():
        loss = xent.softmax_cross_entropy(x, marked_labels(shape[0], marks), reduction="none")
    # lse - x[label], the label on a marker (one row: the last of its k markers)
    k = {r: sum(m[0] == r for m in marks) for r, _ in marks}
    check_rows(loss, shape, {r: math.log(c - k[r] + k[r] * math.exp(v)) - v for r in k},
               math.log(c))


def test_nll_loss_with_labels(x_pages):
    shape = ROWS["row path"]
    c = shape[1]
    marks = markers(shape)
    v = -6.0
    with x_pages.marked(shape, [(flat(shape, rc), v) for rc in marks]) as lp, \
            no_copy_of_the_input():
        nll = xent.nll_loss(lp, marked_labels(shape[0], marks), label_smoothing=0.5,
                            reduction="none")
    # -(1 - eps) lp[label] - eps / C sum(lp): the marked entries only
    check_rows(nll, shape, {r: -(0.5 + 0.5 / c) * v for r, _ in marks}, 0.0)


@pytest.mark.parametrize("path", ["row path", "one row"])
def test_softmax_cross_entropy_with_probabilities(x_pages, path):
    """The target is the same zero pages (logit 1 and target mass 1 at the markers)."""
    shape = ROWS[path]
    c = shape[1]
    marks = markers(shape)
    with x_pages.marked(shape, [(flat(shape, rc), 1.0) for rc in marks]) as x, \
            no_copy_of_the_input():
        loss = xent.softmax_cross_entropy(x, x, reduction="none")
    # k markers in a row: k (lse - 1); no target mass elsewhere: 0
    k = {r: sum(m[0] == r for m in marks) for r, _ in marks}
    check_rows(loss, shape, {r: k[r] * (math.log(c - k[r] + k[r] * math.e) - 1) for r in k},
               0.0)


# -------------------------------------------------- element-wise binary losses


def test_multilabel_and_binary_cross_entropy_from_logits(x_pages):
    """multilabel_cross_entropy runs the kernel of binary_cross_entropy_with_logits
    (and the range check of the targets) and gives one value per row. The
    targets are the same zero pages (logit 1 and target 1 at the markers)."""
    shape = ROWS["row path"]
    c = shape[1]
    marks = markers(shape)
    log2 = float(np.float32(math.log(2)))  # each element's loss (x = t = 0), in float32
    with x_pages.marked(shape, [(flat(shape, rc), 1.0) for rc in marks]) as x, \
            no_copy_of_the_input():
        per_sample = xent.multilabel_cross_entropy(x, x, reduction="none")
    # x = t = 1: (1 - t) x + log1p(exp(-x)) = log1p(exp(-1))
    check_rows(per_sample, shape, {r: (c - 1) * log2 + math.log1p(math.exp(-1)) for r, _ in marks},
               c * log2)


# ----------------------------------------------------- information theory


def test_cross_entropy_of_probabilities(x_pages):
    """The kernel of cross_entropy, kl_divergence and entropy (one row loop,
    three element terms), here H(p, p) with p = q the same zero pages."""
    shape = ROWS["row path"]
    marks = markers(shape)
    with x_pages.marked(shape, [(flat(shape, rc), 0.5) for rc in marks]) as p, \
            no_copy_of_the_input():
        hpp = xent.cross_entropy(p, p)
    check_rows(hpp, shape, {r: 0.5 * math.log(2) for r, _ in marks}, 0.0)  # 0 log 0 = 0


def test_cross_entropy_with_labels_and_log_loss(x_pages):
    shape = ROWS["row path"]
    n, c = shape
    marks = markers(shape)
    labels = zeros(n, np.int64)
    for r, col in marks:
        labels[r] = col
    labels = readonly(labels)
    eps32 = float(np.finfo(np.float32).eps)
    with x_pages.marked(shape, [(flat(shape, rc), 0.5) for rc in marks]) as q, \
            no_copy_of_the_input():
        value = xent.cross_entropy(labels, q, eps=1e-7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # rows do not sum to 1
            ll = xent.metrics.log_loss(labels, q, labels=np.arange(c))
    check_rows(value, shape, {r: math.log(2) for r, _ in marks}, -math.log(np.float32(1e-7)))
    # scikit-learn's clipping: 0 becomes the dtype's eps
    np.testing.assert_allclose(ll, ((n - 3) * -math.log(eps32) + 3 * math.log(2)) / n,
                               rtol=1e-12)


# ------------------------------------ outputs of the input's size (8.6 GB)


@pytest.mark.slow
def test_gradient_of_the_input_size(x_pages):
    """The gradient of softmax cross-entropy (softmax minus one-hot), written
    through 2**31 values of the row path: 8.6 GB of real memory."""
    shape = ROWS["row path"]
    n, c = shape
    marks = markers(shape)
    v = 2.0
    with x_pages.marked(shape, [(flat(shape, rc), v) for rc in marks]) as x:
        loss, g = xent.softmax_cross_entropy(x, marked_labels(n, marks), reduction="sum",
                                             return_grad=True)
    rows = {r: math.log(c - 1 + math.exp(v)) - v for r, _ in marks}
    np.testing.assert_allclose(loss, (n - 3) * math.log(c) + sum(rows.values()), rtol=1e-6)
    assert g.shape == shape and g.dtype == np.float32
    # rows of zeros with label 0: 1/C, and 1/C - 1 at column 0, as float32 sees them
    p = np.float32(1 / c)
    at_label = np.float32(float(p) - 1.0)
    marked = dict(marks)
    for r0 in range(0, n, 2**12):  # blocks of rows: no temporaries of the output's size
        blk = g[r0:r0 + 2**12]
        rows_here = [r for r in marked if r0 <= r < r0 + len(blk)]
        same = blk == p
        same[:, 0] = blk[:, 0] == at_label
        same[[r - r0 for r in rows_here]] = True  # checked below
        assert same.all(), f"rows from {r0}"
        for r in rows_here:
            e = np.exp(np.where(np.arange(c) == marked[r], v, 0.0))
            want = e / e.sum()
            want[marked[r]] -= 1
            np.testing.assert_allclose(g[r], want, rtol=2e-6, atol=1e-7, err_msg=f"row {r}")
