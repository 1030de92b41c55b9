"""The dual of the Tchebycheff (min-max) step: a small QP on the simplex, solved exactly."""

from __future__ import annotations

import itertools

import numpy as np

MAX_OBJECTIVES = 10  # 2^K - 1 faces are enumerated


def simplex_qp(gram: np.ndarray, linear: np.ndarray) -> np.ndarray:
    r"""Exact minimiser of :math:`\tfrac12 \lambda^\top G \lambda - c^\top \lambda` on the simplex.

    Face enumeration: for each support S (smallest first) solve the KKT equations
    :math:`G_{SS}\lambda_S - \nu\mathbf 1 = c_S`, :math:`\mathbf 1^\top\lambda_S = 1`
    and return the first solution with :math:`\lambda_S \ge 0` and
    :math:`(G\lambda - c)_i \ge \nu` off S: by convexity it is a global minimiser.
    Exact up to rounding, for K <= 10 (the fronts have 2 or 3 objectives). Our MGDA
    kernel cannot take it: it minimises :math:`\lambda^\top G\lambda` only, and no
    Gram matrix :math:`H` has :math:`\lambda^\top H \lambda = \lambda^\top G\lambda -
    2c^\top\lambda + \kappa` on the simplex in general (G = 0 with non-constant c
    would need the indefinite :math:`\kappa\mathbf 1\mathbf 1^\top - c\mathbf 1^\top -
    \mathbf 1 c^\top`).
    """
    K = gram.shape[0]
    if K == 1:
        return np.ones(1)
    # The minimiser is unchanged by scaling the objective; at unit scale the KKT
    # matrix's G block and its +-1 border are comparable (a G block of 1e-10 beside
    # the border made a backward-stable solve fail the residual test).
    scale = max(float(np.abs(gram).max()), float(np.abs(linear).max()), 1e-300)
    gram, linear = gram / scale, linear / scale
    tol = 1e-10
    vertex_values = 0.5 * np.diagonal(gram) - linear
    best = np.eye(K)[int(np.argmin(vertex_values))]  # always feasible
    best_value = float(vertex_values.min())
    for size in range(1, K + 1):
        for S in itertools.combinations(range(K), size):
            idx = list(S)
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = gram[np.ix_(idx, idx)]
            kkt[:size, size] = -1.0
            kkt[size, :size] = 1.0
            rhs = np.concatenate([linear[idx], [1.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
            # rounding: per row, plus the normwise level of a backward-stable solve
            bound = 1e-9 * (np.abs(kkt) @ np.abs(sol) + np.abs(rhs))
            bound += 1e-12 * np.abs(kkt).max() * np.abs(sol).max()
            if (np.abs(kkt @ sol - rhs) > bound).any() or sol[:size].min() < -1e-12:
                continue
            lam = np.zeros(K)
            lam[idx] = np.clip(sol[:size], 0.0, None)
            lam /= lam.sum()
            slack = gram @ lam - linear
            nu = float(slack[idx].mean())
            if np.all(slack >= nu - tol):
                return lam
            value = 0.5 * lam @ gram @ lam - linear @ lam
            if value < best_value:
                best, best_value = lam, value
    return best  # only reached when rounding defeats every KKT check: the best candidate


def box_minimax_step(
    slopes: np.ndarray, levels: np.ndarray, t: float, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact :math:`\arg\min_{low \le d \le high} \max_i (a_i + b_i^\top d) + \|d\|^2/(2t)`.

    With ``slopes`` B (rows :math:`b_i`), ``levels`` a, ``low <= 0 <= high``. The
    dual is :math:`\max_{\lambda\in\Delta} q(\lambda)`, with
    :math:`q(\lambda) = \lambda^\top a + \sum_k \min_{d_k \in [low_k, high_k]}
    ((B^\top\lambda)_k d_k + d_k^2/(2t))`, concave and :math:`C^1`, and the primal
    step :math:`d(\lambda) = \mathrm{clip}(-tB^\top\lambda, low, high)`. On a fixed
    pattern P of clipped coordinates q is the dual of the problem with those
    coordinates held at their bound and the others free: a simplex QP
    (:func:`simplex_qp`), whose maximiser :math:`\hat\lambda` is a Newton point.
    Each round takes the pattern at the current :math:`\lambda`, solves that QP,
    and moves to the maximiser of q on the segment :math:`[\lambda, \hat\lambda]`
    (exact line search: bisection on the monotone derivative), so q increases
    monotonically; it stops when :math:`\hat\lambda`'s own pattern is P, where
    :math:`\nabla q(\hat\lambda)` is the QP's gradient and the QP's KKT conditions are
    q's: :math:`\hat\lambda` is a maximiser and the step is exact. (Updating the
    pattern without the line search can cycle.) Returns ``(d, lam)``.
    """
    K, n = slopes.shape
    lam = np.full(K, 1.0 / K)

    def pattern(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = -t * (lam @ slopes)
        return s <= low, s >= high

    def slope(lam: np.ndarray, delta: np.ndarray) -> float:  # directional derivative of q
        d = np.clip(-t * (lam @ slopes), low, high)
        return float(delta @ (levels + slopes @ d))

    for _ in range(4 * n + 20):
        fixed_low, fixed_high = pattern(lam)
        free = ~(fixed_low | fixed_high)
        held = np.where(fixed_low, low, np.where(fixed_high, high, 0.0))
        B_free = slopes[:, free]
        lam_hat = simplex_qp(t * (B_free @ B_free.T), levels + slopes @ held)
        hat_low, hat_high = pattern(lam_hat)
        if np.array_equal(hat_low, fixed_low) and np.array_equal(hat_high, fixed_high):
            lam = lam_hat
            break
        delta = lam_hat - lam
        if slope(lam + delta, delta) >= 0.0:
            alpha = 1.0
        else:
            lo_a, hi_a = 0.0, 1.0
            for _ in range(60):
                mid = 0.5 * (lo_a + hi_a)
                if slope(lam + mid * delta, delta) >= 0.0:
                    lo_a = mid
                else:
                    hi_a = mid
            alpha = lo_a
        if alpha == 0.0:
            break
        lam = lam + alpha * delta
    return np.clip(-t * (lam @ slopes), low, high), lam
