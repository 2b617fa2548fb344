# Partial statistics of the softmax family over blocks of classes: what a row
# block of logits split along the class axis (a Dask chunk, a tensor-parallel
# shard, an MPI rank's slice) needs to give the exact log-sum-exp, softmax
# cross-entropy and gradient of the whole row without any block seeing the
# others (xent/_partials.py is the public, validated front end).
#
# One row's statistics over a block of classes, float64, PARTIAL_STATS values:
#   m   the block's maximum (an element of the row, so exact in its dtype);
#   o   sum_j exp(x_j - m) over the block's entries other than its first
#       maximum: S - 1 with S the block's sum of exps, kept apart from the 1
#       so that log(S) = log1p(o) keeps its relative accuracy when the other
#       entries are tiny (a confident prediction). The NaN/inf contract of
#       src/_rows.pxd: m = -inf (an empty or all -inf block) has o = -1
#       (S = 0); m = +inf has o = (the count of +inf entries) - 1; a NaN in
#       the block makes o NaN;
#   xt  the target class's logit when the label falls in the block, else 0;
#   ax  sum_j a_j (x_j - m), a_j the block's class-only target coefficients
#       (label smoothing's eps/C w_j, or probability targets' mass), skipping
#       a_j == 0; -inf (times the sign of the mass) against an all -inf block;
#   a   sum_j a_j.
# Two blocks' statistics merge exactly (merge_stats: log-add-exp on (m, o),
# the ax shifted to the common maximum, sums for xt and a), so any tree of
# merges gives the row's statistics up to float64 rounding; the merge is
# -inf safe (an all -inf block is the identity). Each row is computed by one
# thread: results do not depend on the thread count. Nothing is validated
# here.

from cython.parallel cimport prange
from libc.math cimport exp, INFINITY
from libc.stdint cimport int64_t

from libc.string cimport memcpy, memset

from _rows cimport (floating, is_finite, nonfinite_row_sum, row_max, row_scale, row_store_exp,
                    row_sum, row_sum_exp)

PARTIAL_STATS = 5

cdef enum:
    ST_M = 0
    ST_O = 1
    ST_XT = 2
    ST_AX = 3
    ST_A = 4
    NSTAT = 5


cdef inline double block_other_exps(const floating* x, Py_ssize_t c, floating m) noexcept nogil:
    # o of a row block whose maximum m is finite: the exps other than the first max's
    cdef Py_ssize_t j = 0
    cdef double o = 0.0
    while j < c and x[j] != m:
        j += 1
    if j > 0:
        o += row_sum_exp(x, j, m)
    if j + 1 < c:
        o += row_sum_exp(x + j + 1, c - j - 1, m)
    return o


cdef inline double stored_other_exps(const floating* x, floating* e, Py_ssize_t c,
                                     floating m) noexcept nogil:
    # o of a row block whose maximum m is finite, its exps written to e
    cdef Py_ssize_t j = 0
    while j < c and x[j] != m:
        j += 1
    row_store_exp(x, e, c, m)
    return (row_sum(e, j) if j > 0 else 0.0) + (row_sum(e + j + 1, c - j - 1) if j + 1 < c else 0.0)


def partial_stats(const floating[:, ::1] x, const int64_t[::1] labels, int64_t offset,
                  int64_t ignore, const floating[:, ::1] probs, const double[::1] v,
                  const double[::1] u, double[:, ::1] out, int n_threads,
                  floating[:, ::1] exps=None):
    """out[i] = the statistics of row i of the class block x (see above).

    labels (or None): global class indices, the block holding classes
    [offset, offset + C); a label equal to ignore counts nowhere. The class
    coefficients a_j: probs[i, j] * v[j] (probs or None) plus u[j] (or None).
    exps (or None): receives exp(x_ij - m_i) (the limits for an infinite
    m_i), for partial_grad(from_exps=True): the gradient without a second exp.
    """
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, j
    cdef floating m
    cdef double o, xt, ax, a, coef
    cdef int64_t y
    cdef const floating* xi
    cdef bint has_labels = labels is not None, has_probs = probs is not None
    cdef bint has_u = u is not None, coefs = has_probs or has_u
    cdef bint store = exps is not None
    if n == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            xi = &x[i, 0] if c > 0 else NULL
            if c > 0:
                m = row_max(xi, c)
            else:
                m = -INFINITY
            if is_finite(m):
                if store:
                    o = stored_other_exps(xi, &exps[i, 0], c, m)
                else:
                    o = block_other_exps(xi, c, m)
            else:
                if store and c > 0:
                    o = row_store_exp(xi, &exps[i, 0], c, m) - 1.0
                else:
                    o = (nonfinite_row_sum(xi, c, m) if c > 0 else 0.0) - 1.0
            xt = 0.0
            if has_labels:
                y = labels[i]
                if y != ignore and offset <= y < offset + c:
                    xt = xi[y - offset]
            ax = 0.0
            a = 0.0
            if coefs:
                for j in range(c):
                    coef = 0.0
                    if has_probs:
                        coef = probs[i, j] * v[j]
                    if has_u:
                        coef = coef + u[j]
                    if coef != 0:
                        a = a + coef
                        if m == -INFINITY:
                            ax = ax + coef * (-INFINITY)
                        elif m == INFINITY:
                            if xi[j] != INFINITY:
                                ax = ax + coef * (xi[j] - m)
                        else:
                            ax = ax + coef * (<double>xi[j] - <double>m)
            out[i, ST_M] = m
            out[i, ST_O] = o
            out[i, ST_XT] = xt
            out[i, ST_AX] = ax
            out[i, ST_A] = a


cdef inline double shifted(double ax, double a, double m, double big) noexcept nogil:
    # ax (relative to m) relative to the larger maximum big
    if a == 0 or m == big:
        return ax
    return ax + a * (m - big)


def merge_stats(const double[:, ::1] st, Py_ssize_t k, double[:, ::1] out, int n_threads):
    """out[i] = the merge, in block order, of the k statistics of row i held
    side by side in st[i] (k * PARTIAL_STATS values). out may be st's first
    PARTIAL_STATS columns' memory only if st is not read after."""
    cdef Py_ssize_t n = st.shape[0], i, b
    cdef double m, o, xt, ax, a, mb, ob
    if n == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            m = st[i, ST_M]
            o = st[i, ST_O]
            xt = st[i, ST_XT]
            ax = st[i, ST_AX]
            a = st[i, ST_A]
            for b in range(1, k):
                mb = st[i, b * NSTAT + ST_M]
                ob = st[i, b * NSTAT + ST_O]
                if mb == m:
                    o = o + ob + 1.0
                    ax = ax + st[i, b * NSTAT + ST_AX]
                elif m > mb:
                    o = o + (1.0 + ob) * exp(mb - m)
                    ax = ax + shifted(st[i, b * NSTAT + ST_AX], st[i, b * NSTAT + ST_A], mb, m)
                else:  # (mb > m, or a NaN maximum: NaN o either way)
                    o = ob + (1.0 + o) * exp(m - mb)
                    ax = shifted(ax, a, m, mb) + st[i, b * NSTAT + ST_AX]
                    m = mb
                xt = xt + st[i, b * NSTAT + ST_XT]
                a = a + st[i, b * NSTAT + ST_A]
            out[i, ST_M] = m
            out[i, ST_O] = o
            out[i, ST_XT] = xt
            out[i, ST_AX] = ax
            out[i, ST_A] = a


def partial_grad(const floating[:, ::1] x, const double[:, ::1] st, const int64_t[::1] labels,
                 int64_t offset, const floating[:, ::1] probs, const double[::1] v,
                 const double[::1] u, const double[::1] f, const double[::1] k,
                 const double[::1] ay, floating[:, ::1] out, int n_threads, bint from_exps=False):
    """out[i, j] = f[i] * (k[i] * exp(x[i, j] - M_i) - a_ij) for the class block x,
    with M_i = st[i, 0] the row's global maximum (its merged statistics), a_ij
    the block's target coefficients: ay[i] at the label (labels, or None;
    global indices, the block holding [offset, offset + C)), probs[i, j] * v[j]
    (probs or None) and u[j] (or None). A row with f[i] == 0 is 0. out may be x.
    One pass: the exps are written, then scaled and shifted in cache.
    from_exps: x holds the block's exps exp(x_ij - m_i) (partial_stats' exps)
    and k[i] the factor exp(m_i - M_i) already: no exp is taken."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i, j, yl
    cdef floating mm
    cdef floating* oi
    cdef double fk, fi, ey, coef
    cdef bint has_labels = labels is not None, has_probs = probs is not None
    cdef bint has_u = u is not None
    if n == 0 or c == 0:
        return
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads,
                        use_threads_if=n_threads > 1):
            oi = &out[i, 0]
            fi = f[i]
            if fi == 0:
                memset(oi, 0, c * sizeof(floating))
                continue
            mm = <floating>st[i, ST_M]
            yl = -1
            if has_labels and offset <= labels[i] < offset + c:
                yl = labels[i] - offset
            if k[i] == 0:  # (no softmax term: nll_loss, a row of -inf; no exp taken)
                memset(oi, 0, c * sizeof(floating))
            elif from_exps:
                if oi != &x[i, 0]:
                    memcpy(oi, &x[i, 0], c * sizeof(floating))
            else:
                row_store_exp(&x[i, 0], oi, c, mm)
            fk = fi * k[i]
            if not is_finite(fk):  # (+inf logits with z-loss: an exp of 0 stays 0, the limit)
                for j in range(c):
                    coef = 0.0
                    if has_probs:
                        coef = probs[i, j] * v[j]
                    if has_u:
                        coef = coef + u[j]
                    if j == yl:
                        coef = coef + ay[i]
                    oi[j] = <floating>((oi[j] * fk if oi[j] != 0 else 0.0) - fi * coef)
            elif has_probs or has_u:
                for j in range(c):
                    coef = 0.0
                    if has_probs:
                        coef = probs[i, j] * v[j]
                    if has_u:
                        coef = coef + u[j]
                    if j == yl:
                        coef = coef + ay[i]
                    oi[j] = <floating>(oi[j] * fk - fi * coef)
            elif yl >= 0:
                ey = oi[yl]
                row_scale(oi, c, fk)
                oi[yl] = <floating>(ey * fk - fi * ay[i])
            else:
                row_scale(oi, c, fk)
