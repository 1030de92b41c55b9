"""CAGrad: the best worst-case task improvement in a ball around the mean gradient."""

from __future__ import annotations

import math

import numpy as np

from paretomtl._checks import check_choice, check_count, check_real
from paretomtl._kernels.cagrad import (
    STATUS_UNBOUNDED,
    cagrad_search,
    inner_certificate,
)
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.nash_mtl import origin_in_hull

_RESCALES = (0, 1, 2)
# KKT residual (relative to max_i G_ii) under which a search stopped by rounding
# counts as converged: the certificate decides, not the path.
_KKT_ACCEPT = 1e-9
_RIDGE = 1e-6  # squared: 1e-12
# Search range for mu, and the largest mu tried when the origin is outside the hull.
_MU_MAX = 1e16
_MU_LIMIT = 1e300


def inner_kkt_residual(G: np.ndarray, w: np.ndarray, rho: float) -> float:
    r"""Largest violation of the optimality conditions of CAGrad's inner problem.

    For :math:`F(w) = b^\top w + \rho \|g_w\|` on the simplex (:math:`b = G 1 / K`,
    :math:`\|g_w\| = \sqrt{w^\top G w} > 0`), with :math:`\gamma = \nabla F(w) = b +
    \rho G w / \|g_w\|` and :math:`\lambda = w^\top \gamma`: :math:`\gamma_i = \lambda`
    where :math:`w_i > 0` and :math:`\gamma_i \ge \lambda` elsewhere. Returns the
    largest violation divided by :math:`\max_i G_{ii}` (inf when :math:`g_w = 0`).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.cagrad import inner_kkt_residual
        >>> float(inner_kkt_residual(np.eye(2), np.array([0.5, 0.5]), 0.1))
        0.0
    """
    K = G.shape[0]
    n = math.sqrt(max(float(w @ G @ w), 0.0))
    scale = float(np.max(np.diagonal(G)))
    if n == 0.0 or scale == 0.0:
        return math.inf if scale > 0 else 0.0
    gamma = G @ np.full(K, 1.0 / K) + rho * (G @ w) / n
    lam = float(w @ gamma) / float(w.sum())
    support = w > 0
    low = float(np.max(lam - gamma, initial=0.0))
    equal = float(np.max(np.abs(gamma[support] - lam), initial=0.0))
    return max(low, equal) / scale


def _dual_cone_projection(G: np.ndarray) -> tuple[np.ndarray, float]:
    """``(lambda, dist)``: the projection of g0 onto {d : J d >= 0} is
    g0 + J^T lambda, lambda >= 0 (non-negative least squares on a factor of G)."""
    from scipy.optimize import nnls  # (rare route: imported when needed)

    K = G.shape[0]
    mean = np.full(K, 1.0 / K)
    gd = G @ mean
    live = np.diagonal(G) > 0.0
    if np.all(gd[live] >= 0.0):  # g0 is in the cone: its own projection
        return np.zeros(K), 0.0
    # A zero gradient's multiplier moves nothing (kept at 0, not left to nnls's
    # tolerance, which let ~1e-5 through and made the weights depend on rounding).
    G = G[np.ix_(live, live)]
    # The factor G = L L^T is taken from the unit gradients' Gram matrix (L = D F,
    # C = F F^T, D the norms), so that every task keeps its own relative accuracy
    # (a factor of G itself blurs tasks 6 decades down: d was 1e-4 outside the
    # cone); eigenvalues of C at rounding level are noise whose square roots
    # (~1e-8) would move d that far, and are dropped.
    norms = np.sqrt(np.diagonal(G))
    evals, evecs = np.linalg.eigh(G / np.outer(norms, norms))
    evals = np.where(evals > 64.0 * K * 2.220446049250313e-16 * evals.max(), evals, 0.0)
    L = norms[:, None] * (evecs * np.sqrt(evals))
    # Where the origin is in the hull, lambda is not unique (lambda + t v, J^T v = 0,
    # v >= 0, is as good): a ridge of 1e-12 on each lambda_i ||g_i|| (the length it
    # adds to d) picks a bounded one and moves d by about 1e-12 of the lengths. (A
    # ridge on lambda itself kept a task 8 decades below the other from its
    # multiplier ~1e8: d stayed at g0, half outside the cone.)
    n = G.shape[0]
    A = np.vstack([L.T, _RIDGE * np.diag(np.sqrt(np.diagonal(G)))])
    b = np.concatenate([-(L.T @ mean[live]), np.zeros(n)])
    part, _ = nnls(A, b, maxiter=50 * n)
    # nnls stops at its own tolerance; on its support the least-squares solution
    # is the exact one (kept when positive and closer to the cone): multipliers
    # ~1e4 on a tiny task left d at 2e-9 of the scale outside the cone.
    act = part > 0.0
    if np.any(act):
        polish = np.linalg.lstsq(A[:, act], b, rcond=None)[0]
        if np.all(polish > 0.0):
            trial = np.zeros(n)
            trial[act] = polish
            if _cone_gap(G, mean[live] + trial) < _cone_gap(G, mean[live] + part):
                part = trial
    lam = np.zeros(K)
    lam[live] = part
    return lam, math.sqrt(max(float(part @ G @ part), 0.0))


def _cone_gap(G: np.ndarray, x: np.ndarray) -> float:
    """How far d = x^T J is outside the dual cone, task by task relative to the
    task's norm and the size of the problem, ||d|| + ||g0||:
    max_i -g_i^T d / (||g_i|| (||d|| + ||g0||)), 0 when inside. (An absolute gap on
    G / max_i G_ii would excuse a tiny task whose improvement is negative: one 9
    decades below the others was at -0.07 of its own scale; ||g0|| keeps a d at
    rounding level of 0, the projection when the cone is {0}, from counting as far.)"""
    K = G.shape[0]
    gd = G @ x
    nd = math.sqrt(max(float(x @ gd), 0.0))
    g0 = math.sqrt(max(float(np.sum(G)) / (K * K), 0.0))
    norms = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    ok = norms > 0.0
    if nd + g0 == 0.0 or not np.any(ok):
        return 0.0
    return float(np.max(-gd[ok] / (norms[ok] * (nd + g0)), initial=0.0))


@register(
    "cagrad",
    kind="gradient",
    paper=(
        "Liu, Liu, Jin, Stone & Liu, Conflict-Averse Gradient Descent for Multi-task "
        "Learning, NeurIPS 2021"
    ),
    summary="the best worst-case task improvement within c ||g0|| of the mean gradient",
)
def cagrad(
    grads: object = None,
    *,
    gram: object = None,
    c: float = 0.4,
    rescale: int = 1,
    tol: float = 1e-13,
    max_iter: int = 200,
) -> SolverResult:
    r"""Conflict-Averse Gradient descent (CAGrad), its inner problem solved exactly.

    With :math:`g_0 = \frac1K \sum_i g_i` the mean gradient, CAGrad's direction
    maximises the worst task's improvement in a ball around it,

    .. math::

        \max_d \min_i g_i^\top d \quad\text{s.t.}\quad \|d - g_0\| \le c \|g_0\|,

    whose dual is, on the simplex :math:`\Delta` (with :math:`g_w = \sum_i w_i g_i`),

    .. math::

        w^* = \arg\min_{w \in \Delta} g_w^\top g_0 + c \|g_0\| \|g_w\|, \qquad
        d = g_0 + \frac{c \|g_0\|}{\|g_w^*\|} g_w^*,

    all from G: :math:`g_w^\top g_0 = w^\top G 1 / K`, :math:`\|g_w\|^2 = w^\top G w`,
    :math:`\|g_0\|^2 = 1^\top G 1 / K^2`. ``rescale`` divides d by 1 (0), by
    :math:`1 + c^2` (1) or by :math:`1 + c` (2). Liu et al., "Conflict-Averse
    Gradient Descent for Multi-task Learning", NeurIPS 2021.

    The inner problem is solved exactly (not by a generic solver's 20 steps): at
    :math:`w^*` it coincides with the simplex QP with uniform lower bounds
    :math:`z_i \ge \tau / K`, :math:`\tau = 1 / (1 + \mu)`, whose min-norm point
    gives :math:`d = (1 + \mu) g_z` (CAGrad moves from the mean, :math:`\mu = 0`,
    towards MGDA, :math:`\mu \to \infty`); :math:`\mu` is the root of the monotone
    :math:`\|d(\mu) - g_0\| = c \|g_0\|`, found by a search that is exact on each
    support (:mod:`paretomtl._kernels.cagrad`), each step one call of the exact
    bounded-simplex kernel. ``kkt_residual`` certifies :math:`w^*` (the inner
    problem's optimality conditions, relative to :math:`\max_i G_{ii}`) and
    ``objective`` is its value :math:`F(w^*)`; ``converged`` is that certificate
    at most 1e-9 (not the search's own stop). Where G is nearly singular and
    :math:`\mu` large (nearly colinear gradients whose hull almost reaches the
    origin: eigenvalues ~1e-10, :math:`\mu \sim 10^4`), :math:`w^*` is fixed by
    float64 only to a residual that grows with :math:`\mu` (2.8e-9 at
    :math:`\mu = 2.3 \cdot 10^4` by mpmath on the returned weights, 1.9e-7 at
    :math:`1.3 \cdot 10^5`): ``converged`` is then False, while :math:`F(w^*)`
    still matches cvxpy's optimum (it is flat there to first order).

    Degenerate cases: ``c = 0`` or :math:`g_0 = 0` give the mean (weights 1/K);
    when the origin is in the convex hull of the gradients and the dual cone
    :math:`\{d : g_i^\top d \ge 0\ \forall i\}` comes within :math:`c \|g_0\|` of
    :math:`g_0`, the inner optimum has :math:`g_w^* = 0` (where the inner objective is
    not differentiable), every point of that cone in the ball solves the primal, and
    the one nearest :math:`g_0` is returned: the projection of :math:`g_0` onto the
    cone, the limit of the search as :math:`\mu \to \infty` (``method`` is
    ``"cagrad/dual-cone"``, ``extras["dual_cone"]`` True).

    Defaults and peers: ``c = 0.4``, the value of the paper's NYUv2 and Cityscapes
    runs (authors' ``run.sh``) and of the Nash-MTL authors' CAGrad; TorchJD's
    ``CAGrad(c)`` requires c (its docs use 0.5) and LibMTL defaults to
    ``calpha = 0.5``. ``rescale = 1`` as the authors' NYUv2 code, the Nash-MTL
    authors' code and LibMTL; TorchJD does not rescale (``rescale=0``) and returns
    weights 0 where :math:`\|g_w\| < 10^{-4}` (here: the dual-cone projection). The
    authors' training loop multiplies d by K ("to match the sum loss"); here d is
    the mean-scaled direction.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        c: radius factor, >= 0 (0: the mean gradient).
        rescale: 0, 1 or 2 (see above).
        tol: relative tolerance on :math:`\|d - g_0\| = c\|g_0\|` for the search, in [0, 1).
        max_iter: cap on the search's QP evaluations, >= 1.

    Returns:
        SolverResult with ``weights`` (``direction = weights @ grads``),
        ``extras``: ``"inner_weights"`` (:math:`w^*`), ``"mu"``
        (:math:`c\|g_0\| / \|g_w^*\|`), ``"dual_cone"``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import cagrad
        >>> res = cagrad(np.array([[1.0, 0.0], [0.0, 1.0]]), c=0.5, rescale=0)
        >>> res.direction.round(6)  # symmetric: d = g0 (1 + c)
        array([0.75, 0.75])
    """
    c = check_real(c, "c", low=0.0)
    rescale = check_choice(rescale, "rescale", _RESCALES)
    tol = check_real(tol, "tol", low=0.0, high=1.0, high_open=True)
    max_iter = check_count(max_iter, "max_iter", minimum=1)
    p = prepare_scaled(grads, gram)
    G = p.gram
    K = G.shape[0]
    scale = float(np.max(np.diagonal(G)))
    Gs = G / scale if scale > 0 else G
    mean = np.full(K, 1.0 / K)
    g0sq = max(float(mean @ Gs @ mean), 0.0)
    rho = c * math.sqrt(g0sq)
    it, converged, residual, mu, dual, objective = 0, True, 0.0, 0.0, False, 0.0
    inner = mean.copy()
    method = "cagrad/exact"
    if rho <= 0.0 or K == 1:
        weights = mean.copy()  # c = 0, g0 = 0, or one task: d = g0
        if K == 1:
            weights = mean * (1.0 + c)
            objective = (1.0 + c) * g0sq
        else:  # F(w) = g_w^T g0 alone: its minimum is at the vertex of least g_i^T g0
            b = Gs @ mean
            inner = np.zeros(K)
            inner[int(np.argmin(b))] = 1.0
            objective = float(b.min())
    else:
        z, mu, it, status, _, nu, _ = cagrad_search(
            Gs, rho, float(tol), int(max_iter), 1.0, _MU_MAX
        )
        use_cone = False
        if status == STATUS_UNBOUNDED or mu > 1e4:
            inside, _ = origin_in_hull(Gs)
            if inside:  # psi stays bounded: the cone is reached if within the ball
                lam, dist = _dual_cone_projection(Gs)
                # The ridge biases lambda where reaching the cone needs a large
                # multiplier (norms over many decades): the point is then short of
                # the cone and no projection; it is taken only once certified in it.
                gap = _cone_gap(Gs, mean + lam)
                use_cone = status == STATUS_UNBOUNDED or (
                    dist <= rho * (1.0 + 1e-9) and gap <= _KKT_ACCEPT
                )
            elif status == STATUS_UNBOUNDED:
                # Tiny gradients next to large ones: the root lies beyond 1e16, near
                # rho / sqrt(nu) (psi grows as mu sqrt(nu)); search on from there.
                start = max(_MU_MAX, rho / math.sqrt(nu)) if nu > 0 else _MU_MAX
                z, mu, it2, status, _, nu, _ = cagrad_search(
                    Gs, rho, float(tol), int(max_iter), start, _MU_LIMIT
                )
                it += it2
        weights = (1.0 + mu) * z
        if use_cone:
            lam, dist = _dual_cone_projection(Gs)
            weights = mean + lam
            dual = True
            method = "cagrad/dual-cone"
            mu = math.inf
            # The inner optimum: a hull point at the origin, where F = 0; found on the
            # unit gradients (each task to its own relative accuracy: MGDA's point on
            # G itself left g_w at 1e-3 of the scale with tasks 6 decades apart)
            # and mapped back, w_i proportional to lambda_i / ||g_i||.
            _, unit = origin_in_hull(Gs)
            norms = np.sqrt(np.diagonal(Gs))
            inner = np.where(norms > 0.0, unit / np.where(norms > 0.0, norms, 1.0), unit)
            inner = inner / inner.sum()
            # The primal certificate: every task's improvement >= 0 within rounding
            # (relative to its norm and d's), and the distance within the ball.
            residual = max(_cone_gap(Gs, weights), dist - rho, 0.0)
            converged = residual <= _KKT_ACCEPT
        else:
            inner, residual, objective = inner_certificate(Gs, z, mu, rho)
            converged = residual <= _KKT_ACCEPT  # the certificate decides, not the path
    if rescale == 1:
        weights = weights / (1.0 + c * c)
    elif rescale == 2:
        weights = weights / (1.0 + c)
    Gr, exponent = unscaled_gram(G, p.exponent)
    # F scales as G: report it on the reported Gram matrix's scale.
    objective = float(np.ldexp(objective * scale, 2 * (exponent - p.exponent)))
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=Gr,
        method=method,
        iterations=int(it),
        converged=bool(converged),
        objective=objective,
        kkt_residual=float(residual),
        extras={"inner_weights": inner, "mu": float(mu), "dual_cone": dual},
        gram_exponent=exponent,
    )
