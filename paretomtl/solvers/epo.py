r"""EPO search's direction: Exact Pareto Optimal search (Mahapatra & Rajan, ICML 2020)."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._input import combine, lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_TINY = np.finfo(np.float64).tiny


def non_uniformity(losses: object, preference: object) -> float:
    r"""EPO's non-uniformity :math:`\mu_r(l)`: how far :math:`r \odot l` is from equal.

    .. math::

        \hat l_i = \frac{r_i l_i}{\sum_j r_j l_j}, \qquad
        \mu_r(l) = \mathrm{KL}\bigl(\hat l \,\big\|\, \tfrac1m \mathbf 1\bigr)
                 = \sum_i \hat l_i \log(m\,\hat l_i) \;\ge 0,

    zero exactly when :math:`r_i l_i` is the same for every i, the preference of
    Mahapatra & Rajan, "Multi-Task Learning with User Preferences: Gradient Descent
    with Controlled Ascent in Pareto Optimization", ICML 2020 (eq. 3). Terms with
    :math:`\hat l_i = 0` contribute 0.

    Args:
        losses: l, shape (m,), non-negative (all :math:`r_i l_i = 0` counts as equal).
        preference: r, shape (m,), non-negative.

    Example:
        >>> from paretomtl.solvers import non_uniformity
        >>> non_uniformity([2.0, 1.0], [1.0, 2.0]), round(non_uniformity([1.0, 1.0], [1.0, 0.0]), 6)
        (0.0, 0.693147)
    """
    l, r = _check(losses, preference)
    rl = r * l
    if not rl.any():
        return 0.0  # every r_i l_i is 0: equal
    h = rl / rl.sum()
    h = h[h > 0]
    return float(max(np.sum(h * np.log(len(rl) * h)), 0.0))


def _check(losses: object, preference: object) -> tuple[np.ndarray, np.ndarray]:
    l = np.asarray(losses, dtype=np.float64)
    r = np.asarray(preference, dtype=np.float64)
    if l.ndim != 1 or r.shape != l.shape:
        raise ValueError(
            f"losses and preference must be 1-D of the same length; got {l.shape} and {r.shape}"
        )
    if not np.isfinite(l).all() or (l < 0).any():
        raise ValueError(f"losses must be finite and >= 0 (shift them if not); got {l}")
    if not np.isfinite(r).all() or (r < 0).any() or not (r > 0).any():
        raise ValueError(f"preference must be finite, >= 0 and not all zero; got {r}")
    return l, r


# HiGHS settings tried in turn: tight tolerances first. On degenerate programs (a zero
# gradient, nearly parallel rows) HiGHS can end a feasible program with status
# "unknown", or even "infeasible", under one setting and solve it under another.
_ATTEMPTS = (
    {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10, "presolve": False},
    {"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9},
    {},  # HiGHS's defaults
)
_FEASIBLE = 1e-9  # accepted violation of a unit constraint row by HiGHS's answer


def _linprog(c: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray) -> tuple[np.ndarray | None, str]:
    """max c'a over the simplex with A_ub a >= b_ub (HiGHS).

    Returns ``(a, "optimal")`` for the first setting whose answer passes the check
    below, else ``(None, "infeasible")`` if some setting found the program infeasible,
    else ``(None, "failed")``.
    HiGHS's tolerances are absolute, so the cost and every row are scaled to unit
    size first (neither changes the argmax or the feasible set): with a cost of size
    1e-18 every vertex is "optimal" to a 1e-10 dual tolerance, and the answer would
    be HiGHS's starting vertex. Rows that are exactly zero stay as they are. Each
    answer is checked against the scaled rows before it is accepted.
    """
    from scipy.optimize import linprog

    m = len(c)
    top = float(np.abs(c).max())
    if top > 0:
        c = c / top
    if len(A_ub):  # unit rows: HiGHS's absolute feasibility tolerance becomes relative
        norm = np.abs(A_ub).max(axis=1)
        norm = np.where(norm > 0, norm, 1.0)
        A_ub, b_ub = A_ub / norm[:, None], b_ub / norm
    infeasible = False
    for options in _ATTEMPTS:
        res = linprog(
            -c,
            A_ub=-A_ub if len(A_ub) else None,
            b_ub=-b_ub if len(b_ub) else None,
            A_eq=np.ones((1, m)),
            b_eq=[1.0],
            bounds=[(0.0, None)] * m,
            method="highs",
            options=options,
        )
        infeasible |= res.status == 2
        if res.status != 0:
            continue
        a = np.clip(res.x, 0.0, None)
        a = a / a.sum()
        if not len(A_ub) or (A_ub @ a >= b_ub - _FEASIBLE).all():
            return a, "optimal"
    return None, "infeasible" if infeasible else "failed"


# Safety factor on the first-order rounding bounds of the adjustment a (below): a few
# ulps of change in a loss, as well as the rounding of l_hat, log and mu, stay under it.
_ROUNDING_FACTOR = 8.0
_U = np.finfo(np.float64).eps / 2  # unit roundoff


def _rounding_bounds(
    C: np.ndarray, r: np.ndarray, hat: np.ndarray, mu: float, a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the rounding error of a and of C a, computed from l, r and C.

    a_i = r_i (log(m l_hat_i) - mu) is formed from l_hat = r l / sum(r l), whose entries
    carry relative errors of about (m + 1) u; log turns them into absolute errors, and
    mu adds the weighted sum of the same. To first order, with u the unit roundoff,

        |da_i| <= u r_i (2m + 4 + 2 |log(m l_hat_i)| + (m + 1) sum_j l_hat_j |log(m l_hat_j)|
                         + |mu|),

    times a safety factor; (C a)_j adds m u sum_i |C_ji| |a_i| for the product.
    """
    m = len(r)
    logs = np.abs(np.log(m * np.maximum(hat, _TINY)))
    da = _ROUNDING_FACTOR * _U * r * (2 * m + 4 + 2 * logs + (m + 1) * float(hat @ logs) + mu)
    absC = np.abs(C)
    dCa = absC @ da + m * _U * (absC @ np.abs(a))
    return da, dCa


@register(
    "epo",
    kind="gradient",
    paper=(
        "Mahapatra & Rajan, Multi-Task Learning with User Preferences: Gradient Descent "
        "with Controlled Ascent in Pareto Optimization, ICML 2020"
    ),
    summary="EPO search's step: balance r_i L_i toward equal, then descend every loss",
)
def epo(
    grads: object = None,
    *,
    gram: object = None,
    losses: object,
    preference: object = None,
    eps: float = 1e-4,
) -> SolverResult:
    r"""EPO search's combination weights for one step (Mahapatra & Rajan, ICML 2020).

    With the Gram matrix :math:`C = JJ^\top` of the task gradients, the losses l and
    the preference r (the sought point has :math:`r_i l_i` equal for all i),
    :math:`\hat l = r\odot l / \sum_j r_j l_j`, the non-uniformity
    :math:`\mu = \sum_i \hat l_i \log(m \hat l_i)` (:func:`non_uniformity`) and the
    adjustment :math:`a_i = r_i (\log(m\hat l_i) - \mu)` (so :math:`\nabla_l \mu =
    a / \sum_j r_j l_j`), the weights :math:`\beta` solve a linear program over the
    simplex, and the update is :math:`-J^\top\beta` (the loss changes at rate
    :math:`-C\beta`):

    *Balance mode* (:math:`\mu > \epsilon`), the paper's eq. 11:
    :math:`\max_\beta \beta^\top C a` subject to
    :math:`(C\beta)_j \ge 0` for the losses :math:`j \in J^*` with the largest
    :math:`r_j l_j` (they must not rise), and :math:`(C\beta)_j \ge (Ca)_j` for the
    other j with :math:`(Ca)_j \le 0`; the j with :math:`(Ca)_j > 0` are free (when
    none is, all :math:`(C\beta)_j \ge 0`). It steers :math:`\hat l` toward uniform:
    :math:`\mu` falls at rate :math:`\beta^\top C a / \sum_j r_j l_j`.

    *Descent mode* (:math:`\mu \le \epsilon`), eq. 12: :math:`\max_\beta
    \mathbf 1^\top C\beta` subject to :math:`C\beta \ge 0` (no loss rises to first
    order) and :math:`\beta^\top C a \ge \min(0, \max_j (Ca)_j)` (the paper's
    "restricted" descent: :math:`\mu` does not rise where it can be held).

    The balance program and the descent program without its last constraint are
    always feasible (the MGDA weights satisfy them, since :math:`(C\beta_{MGDA})_j
    \ge \beta_{MGDA}^\top C \beta_{MGDA} \ge 0`); the restricted descent program
    can be infeasible, and then the relaxed one (the paper's ``relax`` option) is
    solved (``extras["relaxed"]``). They are solved exactly by HiGHS
    (scipy.optimize.linprog) on :math:`C / \max_{ij} |C_{ij}|`, with the objective
    and each constraint row scaled to unit size, and each answer is checked against
    the rows (violations up to 1e-9) before it is used. On degenerate programs
    HiGHS can stop with status "unknown", or call a feasible program infeasible,
    under one setting and solve it under another: settings are tried in turn, the
    restricted program counts as infeasible only when none gives a checked answer,
    and if the balance or relaxed program gets none the weights are MGDA's, with
    ``converged`` False. At a Pareto stationary point on the preference ray the
    descent program's optimum is 0.

    Invariance: both programs are homogeneous in C, and :math:`\hat l` is
    normalised, so the weights do not change when every gradient is multiplied by
    one positive number, or every loss is (the authors' code, dbmptr/EPOSearch,
    shares both); they do change with per-task scales of either, and with the scale
    of r (the balance rows' right-hand sides are :math:`(Ca)_j`, proportional to r).
    A power-of-two factor leaves them bit-identical, any other changes them by
    rounding only; gradients whose Gram matrix float64 cannot hold (norms beyond
    about 1e±154) are rescaled by a power of two first (``gram_exponent``).

    Rounding: where :math:`r_i l_i` are equal to working precision (each
    :math:`|a_i|` within a bound on its rounding error, a few ulps of the losses
    included), a is noise: the losses count as balanced (descent mode, whatever
    ``eps``), and a row :math:`\beta^\top Ca \ge \ldots` within its rounding
    bound is satisfied and dropped rather than scaled up to a binding unit row.
    The weights are then those of the relaxed program, the same for losses a few
    ulps apart, which the signs of the rounding in a would otherwise decide.

    Args:
        grads: K x M task gradients, one per row (or give ``gram``).
        gram: K x K Gram matrix, instead of or besides ``grads``.
        losses: l, shape (K,), non-negative (EPO's logarithm needs :math:`r_i l_i >
            0`; shift losses by a lower bound if they can be negative).
        preference: r, shape (K,), non-negative, not all zero; None means ones (the
            point where every loss is equal).
        eps: the non-uniformity threshold between the two modes (the paper's 1e-4).

    Returns:
        SolverResult with ``weights`` :math:`\beta`, ``direction`` :math:`J^\top\beta`
        (descend along its negative), ``objective`` :math:`\mu`, and ``extras``:
        ``mode`` (``"balance"`` or ``"descent"``), ``relaxed``, ``adjustment`` a,
        ``rate`` (the LP's optimal value, on the scale of ``gram``: see
        ``gram_exponent``) and ``lp_status`` (``"optimal"``, or
        ``"failed"`` / ``"infeasible"`` when the MGDA fallback was used; then
        ``converged`` is False).

    Raises:
        ValueError: for bad ``losses``, ``preference`` or ``eps``, and for a nonzero
            gradient too short next to the longest (below about 1e-135 of its norm)
            for float64 to hold its Gram entries: its constraint would vanish.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import epo
        >>> J = np.eye(2)                  # f_i = x_i^2/2 at x = (2, 1): l = (2, 0.5)
        >>> res = epo(J * [[2.0], [1.0]], losses=[2.0, 0.5], preference=[1.0, 1.0])
        >>> res.extras["mode"], res.weights  # only the larger loss is pushed down
        ('balance', array([1., 0.]))

    In a PyTorch loop the adapter passes the losses:
    ``Aggregator("epo", options={"preference": r}).backward(losses, params)``.
    """
    p = prepare_scaled(grads, gram)
    if p.lost:  # a lost row's constraint (C beta)_j >= 0 would vanish unseen
        raise lost_error(p.lost, "epo")
    J = p.grads
    C, exponent = unscaled_gram(p.gram, p.exponent)  # reported, and the rate's scale
    if preference is None:
        preference = np.ones(C.shape[0])
    l, r = _check(losses, preference)
    K = C.shape[0]
    if l.shape != (K,):
        raise ValueError(f"losses must have shape ({K},), one per task; got {l.shape}")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"eps must be a number >= 0; got {eps!r}")
    rl = r * l
    hat = rl / rl.sum() if rl.any() else np.full(K, 1.0 / K)
    mu = non_uniformity(l, r)
    a = r * (np.log(K * np.maximum(hat, _TINY)) - mu)
    Ca = C @ a
    # The programs are homogeneous in C (the weights are invariant to a common scale
    # of the gradients); solve them on C / max |C_ij| (from the Gram matrix of the
    # gradients times a power of two, where float64 cannot hold theirs), report the
    # rate on C.
    scale = float(np.abs(p.gram).max())
    Cs = p.gram / scale if scale > 0 else p.gram
    Cas = Cs @ a
    da, dCa = _rounding_bounds(Cs, r, hat, mu, a)
    # r_i l_i equal to working precision: a is rounding noise, and so is C a.
    balanced = bool((np.abs(a) <= da).all())
    flat = bool((np.abs(Cas) <= dCa).all())
    relaxed = False
    if mu > eps and not balanced:
        mode = "balance"
        free = Cas > 0
        top = rl >= rl.max() * (1 - 1e-12)
        if free.any():
            rows = ~free | top
            rhs = np.where(top, 0.0, Cas)[rows]
        else:
            rows, rhs = np.ones(K, dtype=bool), np.zeros(K)
        beta, status = _linprog(Cas, Cs[rows], rhs)
        objective_vec = Ca
    else:
        mode = "descent"
        status = "infeasible"
        if not flat:  # a restriction row at rounding level is satisfied, not scaled up
            A = np.vstack([Cs, Cas[None, :]])
            b = np.concatenate([np.zeros(K), [min(0.0, float(Cas.max()))]])
            beta, status = _linprog(Cs.sum(axis=0), A, b)
            relaxed = status == "infeasible"
        if status == "infeasible":  # the paper's relaxed program (or the row dropped)
            beta, status = _linprog(Cs.sum(axis=0), Cs, np.zeros(K))
        objective_vec = C.sum(axis=0)
    if beta is None:  # HiGHS failed on every setting: MGDA's weights, flagged
        from paretomtl.solvers.mgda import mgda

        beta = mgda(gram=C).weights
    return SolverResult(
        weights=beta,
        direction=combine(beta, J),
        gram=C,
        method=f"epo/{mode}",
        converged=status == "optimal",
        objective=mu,
        gram_exponent=exponent,
        extras={
            "mode": mode,
            "relaxed": relaxed,
            "adjustment": a,
            "rate": float(objective_vec @ beta),
            "lp_status": status,
        },
    )
