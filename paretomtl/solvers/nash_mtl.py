"""Nash-MTL: the Nash bargaining solution G a = 1/a of the task gradients, by Newton."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from paretomtl._checks import check_count, check_gram_size, check_num_tasks, check_real
from paretomtl._kernels.bargaining import STATUS_CONVERGED, power_newton
from paretomtl._kernels.simplex_qp import solve_exact
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, count, real, value

# A min-norm point of the (projected) gradients' hull below this, relative to the
# largest squared norm, counts as the origin: float64 Gram entries carry about
# K eps of rounding, so a cancelling combination computes to that size.
_HULL_ZERO = 64.0 * 2.220446049250313e-16
_SUPPORT_MIN = 1e-9


class PowerSolution(NamedTuple):
    """Solution of G w = w^(-p) (see :func:`solve_power_equation`)."""

    weights: np.ndarray
    iterations: int
    converged: bool
    residual: float
    route: str  # "newton" or "reduced"
    unbounded: tuple[int, ...]  # tasks whose weights diverge (reduced route)


def _schur(G: np.ndarray, S: list[int], R: list[int]) -> tuple[np.ndarray, np.ndarray, float]:
    """``(C, X, cond)``: the Gram matrix of the gradients of R projected off span(g_S),
    C = G_RR - G_RS G_SS^+ G_SR, X = G_SS^+ G_SR, and the condition number of the
    part of G_SS inverted (C's rounding is about eps cond times G's entries)."""
    if not S:
        return G[np.ix_(R, R)], np.zeros((0, len(R))), 1.0
    Gss = G[np.ix_(S, S)]
    evals, evecs = np.linalg.eigh(Gss)
    keep = evals > 1e-12 * max(float(evals.max()), 0.0)
    pinv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    X = pinv @ G[np.ix_(S, R)]
    C = G[np.ix_(R, R)] - G[np.ix_(R, S)] @ X
    cond = float(evals.max() / evals[keep].min()) if np.any(keep) else 1.0
    return 0.5 * (C + C.T), X, cond


def _newton(G: np.ndarray, p: float, tol: float, max_iter: int):
    """Newton on G (positive diagonal), task by task rescaled: w = s v with
    s_i = G_ii^(-1/(1+p)), so that v = 1 solves it for orthogonal gradients (see
    :mod:`paretomtl._kernels.bargaining`); the start is the best multiple of v = 1."""
    s = np.diagonal(G) ** (-1.0 / (1.0 + p))
    B = np.ascontiguousarray(s[:, None] * G * s[None, :])
    c = s ** (1.0 - p)
    q = float(B.sum())
    t = (float(c.sum()) / q) ** (1.0 / (1.0 + p)) if q > 0.0 else 1.0
    v, it, status, res = power_newton(
        B, c, float(p), np.full(G.shape[0], t), float(tol), int(max_iter)
    )
    return s * v, it, status, res


def _within_rounding(G: np.ndarray, w: np.ndarray, p: float) -> bool:
    """Whether every residual w_i^p (G w)_i - 1 is within what rounding in G w
    leaves, 4 (K + 2) eps (w_i^p (|G| |w|)_i + 1) (the kernel's bound, on G itself)."""
    K = G.shape[0]
    f = w**p
    r = np.abs(f * (G @ w) - 1.0)
    bound = 4.0 * (K + 2) * 2.220446049250313e-16 * (f * (np.abs(G) @ np.abs(w)) + 1.0)
    return bool(np.all(np.isfinite(w)) and np.all(w > 0) and np.all(r <= bound))


def _hull_min(G: np.ndarray) -> tuple[np.ndarray, float]:
    K = G.shape[0]
    G = np.ascontiguousarray(G)
    lam, _, _, obj, _ = solve_exact(G, np.zeros(K), 1e-15 * K, max(100, 20 * K))
    return lam, float(obj)


def origin_in_hull(G: np.ndarray) -> tuple[bool, np.ndarray]:
    """Whether the origin is in the convex hull of the gradients (within rounding), and
    the min-norm combination of the unit gradients found.

    Asked of the unit gradients (the correlation matrix): the answer does not depend
    on each task's scale, and there it is decided at the rounding level of numbers of
    order one (min-norm value below 64 K eps). A zero gradient puts the origin in it.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.nash_mtl import origin_in_hull
        >>> origin_in_hull(np.array([[1.0, -1.0], [-1.0, 1.0]]))[0]  # g and -g
        True
        >>> origin_in_hull(np.array([[1e-20, 0.0], [0.0, 1.0]]))[0]  # orthogonal
        False
    """
    d = np.diagonal(G)
    K = G.shape[0]
    if np.any(d <= 0.0):
        lam = (d <= 0.0).astype(np.float64)
        return True, lam / lam.sum()
    r = 1.0 / np.sqrt(d)
    lam, nu = _hull_min(r[:, None] * G * r[None, :])
    return nu <= _HULL_ZERO * K, lam


def solve_power_equation(
    G: np.ndarray, p: float, *, tol: float = 1e-10, max_iter: int = 100
) -> PowerSolution:
    r"""Solve :math:`G w = w^{-p}` (elementwise power), :math:`w > 0`, for a PSD G.

    The equation is the stationarity condition of the strictly convex
    :math:`\Phi(w) = \tfrac12 w^\top G w + \sum_i h(w_i)`, :math:`h' = -w^{-p}`, solved
    by damped Newton (:mod:`paretomtl._kernels.bargaining`) to
    :math:`\max_i |w_i^p (G w)_i - 1| \le` ``tol`` (or to what rounding in
    :math:`G w` allows: where the hull test says a solution exists, at any size,
    e.g. near-singular G with weights ~1e5 and residuals ~1e-5, checked against
    mpmath to 1e-8). A solution exists exactly when the origin is not in the
    convex hull of the gradients (:math:`\min_{\lambda \in \Delta} \lambda^\top G
    \lambda > 0`); otherwise :math:`\Phi` has no minimiser and the weights of the
    tasks S in the support of the vanishing combinations diverge. Then (route
    ``"reduced"``) the answer is the limit of the direction: the other tasks R solve
    the equation on their gradients projected off :math:`\mathrm{span}(g_S)` (the Schur
    complement :math:`C = G_{RR} - G_{RS} G_{SS}^+ G_{SR}`), whose hull excludes the
    origin, and the tasks in S take the weights :math:`-G_{SS}^+ G_{SR} w_R` that
    remove the projection, so that :math:`d = w^\top J` is orthogonal to every
    :math:`g_i, i \in S` (their utilities :math:`g_i^\top d` go to 0, as their weights
    go to infinity). It is the limit of the solution for :math:`G + \epsilon I` as
    :math:`\epsilon \to 0` (tested).

    Args:
        G: K x K PSD float64 Gram matrix (any scale).
        p: the power, > 0 (1 for Nash-MTL, 1 / alpha for FairGrad).
        tol: relative residual at which Newton stops.
        max_iter: Newton iteration cap (per solve).

    Returns:
        :class:`PowerSolution`.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.nash_mtl import solve_power_equation
        >>> solve_power_equation(np.diag([4.0, 1.0]), 1.0).weights  # 4 a^2 = 1, b^2 = 1
        array([0.5, 1. ])
    """
    K = G.shape[0]
    scale = float(np.max(np.diagonal(G)))
    if scale <= 0.0:  # every gradient zero: nothing to bargain over
        return PowerSolution(np.zeros(K), 0, True, 0.0, "reduced", tuple(range(K)))
    Gs = G / scale
    factor = scale ** (-1.0 / (1.0 + p))
    it = 0
    if np.all(np.diagonal(Gs) > 0.0):
        w, it, status, res = _newton(Gs, p, tol, max_iter)
        if status == STATUS_CONVERGED:
            return PowerSolution(w * factor, int(it), True, float(res), "newton", ())
        if not origin_in_hull(Gs)[0]:
            # A solution exists, so the kernel's cap on a rounding-level residual (its
            # guard against weights running away) does not apply: Newton stopped
            # where rounding in G w allows no better is converged; else report where
            # it stopped.
            done = _within_rounding(Gs, w, p)
            return PowerSolution(w * factor, int(it), done, float(res), "newton", ())
    S: list[int] = []
    R = list(range(K))
    while R:
        C, _, cond = _schur(Gs, S, R)
        dC = np.diagonal(C)
        # Projected norms at rounding level next to their own: g_i in span(g_S). The
        # projection amplifies G's rounding by G_SS's condition number (nearly
        # parallel g_S: a projected norm of 6e-11 from rounding at cond 1e6, for a
        # g_i exactly in span(g_S) in 2-D, led Newton on noise).
        limit = _HULL_ZERO * K * max(cond, 1.0)
        zero = [R[i] for i in range(len(R)) if dC[i] <= limit * Gs[R[i], R[i]]]
        if zero:  # gradients inside span(g_S) (zero gradients when S is empty)
            S += zero
            R = [i for i in R if i not in zero]
            continue
        inside, lam = origin_in_hull(C)
        if not inside:
            break
        # The support of the vanishing combination (entries at rounding level are
        # not in it; a task missed here is found in a later round).
        moved = [R[i] for i in range(len(R)) if lam[i] > _SUPPORT_MIN]
        S += moved
        R = [i for i in R if i not in moved]
    w = np.zeros(K)
    res, converged = 0.0, True
    if R:
        C, X, _ = _schur(Gs, S, R)
        top = float(np.max(np.diagonal(C)))
        b, it2, status, res = _newton(C / top, p, tol, max_iter)
        it += int(it2)
        converged = status == STATUS_CONVERGED
        b = b * top ** (-1.0 / (1.0 + p))
        w[R] = b
        if S:
            w[S] = -(X @ b) + 0.0  # (no negative zeros)
    S.sort()
    return PowerSolution(w * factor, int(it), bool(converged), float(res), "reduced", tuple(S))


def _positive_count(x: object, K: int, where: str) -> int:
    return check_count(x, where, minimum=1)


def _max_iter(x: object, K: int, where: str) -> int:
    return check_count(x, where, minimum=1)


@register(
    "nash-mtl",
    kind="stateful-gradient",
    paper=(
        "Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, Multi-Task "
        "Learning as a Bargaining Game, ICML 2022"
    ),
    summary="the Nash bargaining solution G a = 1/a, by Newton; optional reuse and norm clip",
)
class NashMTL(Stateful):
    r"""Nash-MTL: the direction the tasks would agree on in a Nash bargaining game.

    The update is :math:`d = \sum_i a_i g_i` with :math:`a > 0` the solution of

    .. math::

        G a = 1 / a \quad (\text{elementwise}), \qquad\text{i.e.}\qquad
        a_i\, g_i^\top d = 1 \text{ for every } i,

    the maximiser of :math:`\sum_i \log g_i^\top d` on the unit ball, rescaled
    (Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022),
    equivalently the minimiser of :math:`\tfrac12 a^\top G a - \sum_i \log a_i`. It is
    computed here by damped Newton on that strictly convex function, to a relative
    residual :math:`\max_i |a_i (G a)_i - 1| \le` ``tol`` (``kkt_residual``); the
    paper's own route (a sequence of convex programs through cvxpy/ECOS, at most 20
    in the authors' code) and the convex program itself through cvxpy serve as the
    test references.

    Options, as in the authors' code (AvivNavon/nash-mtl, ``methods/weight_methods.py``)
    and in both peers (TorchJD ``NashMTL``, LibMTL ``Nash_MTL``):

    - Normalisation: the authors' code (and both peers) divide G by its Frobenius
      norm before their solve, but multiply the same factor back inside their
      constraint :math:`-\log(a_i \|G\|_F) - \log (G a)_i / \|G\|_F \le 0`, so
      that they solve :math:`G a = 1/a` on G itself (checked: their weights satisfy
      it to about 1e-7, not the normalised equation). The normalisation only
      conditions their solver; Newton here needs none (it works on the unit
      gradients' Gram matrix, a_i = v_i / ||g_i||, and maps back exactly, so task
      norms over many decades cost nothing). The weights scale as 1/t for
      gradients t J; the direction's norm does not depend on the scale.
    - ``max_norm`` (default 1.0, as the authors and both peers; 0 disables): the
      direction is scaled down to norm ``max_norm`` when longer (its norm is
      :math:`\sqrt{a^\top G a}`, from G). The authors and LibMTL clip the shared
      parameters' gradient with ``torch.nn.utils.clip_grad_norm_`` (factor
      ``max_norm / (norm + 1e-6)``), TorchJD the combined vector (``max_norm / norm``,
      as here).
    - ``update_weights_every`` (default 1): the weights are solved at steps 0, n, 2n,
      ...; the steps between reuse the last solved (unclipped) weights, clipped
      against the current gradients.

    When no solution exists (the origin is in the convex hull of the gradients: a zero
    gradient, two opposite ones), the weights of the tasks in the vanishing
    combinations diverge; the result is then the limit of the direction (see
    :func:`solve_power_equation`): ``method`` ends in ``"/reduced"``, and
    ``extras["unbounded_tasks"]`` lists those tasks (their weights are the finite
    ones that make the limit direction, possibly negative). Never a silent fallback:
    a Newton solve stopped by ``max_iter`` reports ``converged=False``.

    Args:
        num_tasks: K >= 1.
        max_norm: clip threshold for the direction's norm, >= 0 (0: no clipping).
        update_weights_every: solve every n-th step, n >= 1.
        tol: Newton's stopping residual, in (0, 1).
        max_iter: Newton's iteration cap (per solve), >= 1.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import NashMTL
        >>> nash = NashMTL(2, max_norm=0.0)
        >>> res = nash(np.array([[2.0, 0.0], [0.0, 1.0]]))  # 4 a^2 = 1, b^2 = 1
        >>> res.weights, res.direction
        (array([0.5, 1. ]), array([1., 1.]))
    """

    hyperparameters = {
        "max_norm": real(low=0.0),
        "update_weights_every": value(_positive_count),
        "tol": real(low=0.0, high=1.0, low_open=True, high_open=True),
        "max_iter": value(_max_iter),
    }
    fields = {"_weights": array("K"), "_step": count()}

    def __init__(
        self,
        num_tasks: int,
        max_norm: float = 1.0,
        update_weights_every: int = 1,
        tol: float = 1e-10,
        max_iter: int = 100,
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.max_norm = check_real(max_norm, "max_norm", low=0.0)
        self.update_weights_every = check_count(
            update_weights_every, "update_weights_every", minimum=1
        )
        self.tol = check_real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
        self.max_iter = check_count(max_iter, "max_iter", minimum=1)
        self.reset()

    def reset(self) -> None:
        """Step back to 0 and the stored weights to ones (the peers' initial value)."""
        self._weights = np.ones(self.num_tasks)
        self._step = 0

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    @property
    def weights(self) -> np.ndarray:
        """The last solved weights, before clipping (a copy)."""
        return self._weights.copy()

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One Nash-MTL step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights`` (after clipping), ``direction`` (with
            ``grads``), ``kkt_residual`` (:math:`\\max_i |a_i (G a)_i - 1|` of the
            solve, 0 on a reused step), ``extras``: ``"solved"`` (False on a reused
            step), ``"norm"`` (the direction's norm before clipping), ``"clipped"``,
            ``"unbounded_tasks"``.
        """
        p = prepare_scaled(grads, gram)
        G = p.gram
        check_gram_size(G, self.num_tasks, "NashMTL")
        solve = self._step % self.update_weights_every == 0
        it, converged, res, route, unbounded = 0, True, 0.0, "reused", ()
        if solve:
            sol = solve_power_equation(G, 1.0, tol=self.tol, max_iter=self.max_iter)
            a = np.ldexp(sol.weights, p.exponent)  # G is that of 2**e grads
            it, converged, res, route, unbounded = (
                sol.iterations,
                sol.converged,
                sol.residual,
                sol.route,
                sol.unbounded,
            )
        else:
            a = self._weights.copy()
        norm = math.ldexp(math.sqrt(max(float(a @ G @ a), 0.0)), -p.exponent)
        clipped = self.max_norm > 0.0 and norm > self.max_norm
        w = a * (self.max_norm / norm) if clipped else a
        if solve:
            self._weights = a.copy()
        self._step += 1
        Gr, exponent = unscaled_gram(G, p.exponent)
        return SolverResult(
            weights=w,
            direction=combine(w, p.grads),
            gram=Gr,
            method=f"nash-mtl/{route}",
            iterations=it,
            converged=converged,
            kkt_residual=res,
            extras={
                "solved": solve,
                "norm": norm,
                "clipped": clipped,
                "unbounded_tasks": unbounded,
            },
            gram_exponent=exponent,
        )

    __call__ = update
