"""CAGrad: the best worst-case task improvement in a ball around the mean gradient."""

from __future__ import annotations

import math

import numpy as np

from paretomtl._checks import check_choice, check_count, check_real
from paretomtl._kernels.cagrad import (
    STATUS_CONVERGED,
    STATUS_UNBOUNDED,
    cagrad_search,
    inner_certificate,
)
from paretomtl._kernels.simplex_qp import solve_exact
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
    evals, evecs = np.linalg.eigh(G)
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))  # G = L L^T
    # Where the origin is in the hull, lambda is not unique (lambda + t v, J^T v = 0,
    # v >= 0, is as good): a ridge of 1e-12 (G scaled to max_i G_ii = 1) picks a
    # bounded one and moves d by about 1e-12 |lambda|.
    A = np.vstack([L.T, _RIDGE * np.eye(K)])
    b = np.concatenate([-(L.T @ np.full(K, 1.0 / K)), np.zeros(K)])
    lam, _ = nnls(A, b, maxiter=50 * K)
    return lam, math.sqrt(max(float(lam @ G @ lam), 0.0))


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
    ``objective`` is its value :math:`F(w^*)`.

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
                use_cone = status == STATUS_UNBOUNDED or dist <= rho * (1.0 + 1e-9)
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
            # The inner optimum: a hull point at the origin (MGDA's), where F = 0.
            inner = solve_exact(Gs, np.zeros(K), 1e-15 * K, max(100, 20 * K))[0]
            # The primal certificate: every task's improvement >= 0 within rounding,
            # and the distance within the ball.
            gd = Gs @ weights
            residual = max(float(np.max(-gd, initial=0.0)), dist - rho, 0.0)
            converged = residual <= _KKT_ACCEPT
        else:
            inner, residual, objective = inner_certificate(Gs, z, mu, rho)
            converged = status == STATUS_CONVERGED or residual <= _KKT_ACCEPT
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
