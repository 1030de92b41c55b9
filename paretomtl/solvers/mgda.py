"""MGDA: the minimum-norm element of the convex hull of the task gradients."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice
from paretomtl.solvers import _simplex
from paretomtl.solvers._input import (
    Prepared,
    combine,
    lost_error,
    prepare_scaled,
    unscaled_gram,
)
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_METHODS = ("exact", "frank-wolfe", "cvxpy")
_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@register(
    "mgda",
    kind="gradient",
    paper="Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, NeurIPS 2018",
    summary="min-norm point of the convex hull of the task gradients (exact active set)",
)
def mgda(
    grads: object = None,
    *,
    gram: object = None,
    method: str = "exact",
    tol: float | None = None,
    max_iter: int | None = None,
    normalization: str = "none",
    losses: object = None,
) -> SolverResult:
    r"""MGDA's common descent direction: the min-norm point of the gradients' hull.

    .. math::

        w^\star = \arg\min_{w \in \Delta} \Big\| \sum_i w_i g_i \Big\|^2
                = \arg\min_{w \in \Delta} w^\top G w,
        \qquad \Delta = \{w \ge 0,\ \textstyle\sum_i w_i = 1\}

    (Désidéri 2012; Sener & Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018). If the direction :math:`d = \sum_i w_i g_i` is
    nonzero, :math:`\langle g_i, d\rangle \ge \|d\|^2 > 0` for every task: a step
    along -d decreases every loss. If it is zero, the point is Pareto-stationary.

    Optimality certificate (reported as ``kkt_residual``, relative to
    :math:`\max_i G_{ii}`): with :math:`v = w^\top G w`, every :math:`(Gw)_i \ge v`, with
    equality wherever :math:`w_i > 0`.

    Algorithms (``method``):

    - ``"exact"`` (default): closed form for K = 2; otherwise Wolfe's minimum-norm
      point algorithm (Math. Programming 1976) on G, compiled with numba: a finite
      active-set method that ends at the exact optimum up to rounding (with an
      exchange step for near-duplicate gradients and iterative refinement).
    - ``"frank-wolfe"``: Frank-Wolfe with exact line search from the uniform
      weights; stops when the duality gap :math:`v - \min_i (Gw)_i` falls below
      ``tol`` (default 1e-6, relative to :math:`\max_i G_{ii}`) or after
      ``max_iter`` (default 250) iterations. Sener & Koltun's code
      (``MinNormSolver.find_min_norm_element_FW``) differs: it starts from the best
      pair's two-task min-norm point, stops when the weights change by less than
      1e-5 in L1, and its 250-iteration cap never acts (its counter is never
      incremented); their training script uses the projected-gradient variant.
    - ``"cvxpy"``: cvxpy's default QP solver (reference; needs ``paretomtl[cvxpy]``).

    Degenerate input: zero gradients give the uniform weights over the zero rows
    (the min-norm value is 0); all-zero gradients, uniform weights; K = 1, weight 1.
    Identical gradients have many optimal weightings; the direction and ``G w`` are
    unique, the weights are one optimum. The argmin is invariant to a common positive
    scale of the gradients (not to per-task scales), so G is divided by its largest
    diagonal entry before solving, and gradients whose Gram matrix over- or
    underflows float64 (norms beyond about 1e±154) are multiplied by a power of two
    first (exact; ``gram_exponent`` says which): any common scale gives the same
    weights, bit for bit, wherever the scaled gradients are exact. Gradients shorter
    than about 1e-135 of the longest count as zero next to it.

    Gradient normalisation (``normalization``), from Sener & Koltun's code
    (github.com/isl-org/MultiObjectiveOptimization, ``gradient_normalizers`` in
    ``multi_task/min_norm_solvers.py``; "optional and not included in the paper"),
    which LibMTL exposes as ``mgda_gn``: each gradient is divided by a normaliser
    :math:`c_i` before the min-norm solve, :math:`\tilde g_i = g_i / c_i`, i.e. the
    problem above is solved on :math:`D G D`, :math:`D = \operatorname{diag}(1/c)`:

    - ``"none"`` (default): :math:`c_i = 1`, plain MGDA (bit for bit as without
      the option);
    - ``"l2"``: :math:`c_i = \|g_i\|`, so MGDA sees unit gradients (no longer
      collapsing onto the shortest);
    - ``"loss"``: :math:`c_i = L_i`, the task's loss value (``losses`` needed);
    - ``"loss+"``: :math:`c_i = L_i \|g_i\|` (``losses`` needed).

    A zero gradient is left as it is (:math:`c_i` = 1 for ``"l2"``, :math:`L_i` for
    ``"loss+"``); a nonzero gradient too short next to the longest for float64 to
    hold its Gram entries (below about 1e-135 of its norm) raises a ValueError,
    since normalised it may count. With :math:`\lambda` the min-norm weights of the normalised
    gradients, the reported ``weights`` are on the *original* gradients,
    :math:`w_i = \lambda_i / c_i`, so that ``direction = weights @ grads`` is the
    min-norm point of the normalised hull, :math:`\sum_i \lambda_i \tilde g_i`; the
    weights then no longer sum to 1. LibMTL's ``MGDA`` forms the same direction but
    returns :math:`\lambda` (``extras["normalized_weights"]`` here; the normalisers
    are ``extras["normalizers"]``); Sener & Koltun's training script instead uses
    :math:`\lambda` as loss scales on the *unnormalised* losses (direction
    :math:`\sum_i \lambda_i g_i`). ``objective`` is :math:`w^\top G w` (the squared
    norm of the direction), ``kkt_residual`` the certificate of the normalised
    problem (relative to its largest diagonal entry).

    Args:
        grads: K x M array of task gradients, one per row (float16/32/64).
        gram: K x K Gram matrix ``grads @ grads.T``, instead of or besides ``grads``.
        method: ``"exact"``, ``"frank-wolfe"`` or ``"cvxpy"``.
        tol: optimality tolerance of ``"exact"`` and ``"frank-wolfe"``, in [0, 1)
            (relative to max_i G_ii); None for the route's default.
        max_iter: iteration cap of ``"exact"`` and ``"frank-wolfe"``, an int >= 1;
            None for the route's default.
        normalization: ``"none"`` (default), ``"l2"``, ``"loss"`` or ``"loss+"``.
        losses: the K loss values, positive and finite; read (and then required)
            only by ``"loss"`` and ``"loss+"``, ignored otherwise.

    Raises:
        ValueError: for an unknown ``method``, ``tol`` outside [0, 1) or NaN,
            ``max_iter`` not an int >= 1, either given with ``method="cvxpy"``
            (which would ignore it), bad ``grads`` or ``gram``, a ``gram`` that
            is not ``grads @ grads.T`` (when both are given), an unknown
            ``normalization``, or ``losses`` missing, of the wrong shape, not
            positive or not finite where the normalisation reads them.
        TypeError: for a ``tol`` that is not a real number, or non-real input.

    Returns:
        SolverResult with ``weights``, ``direction`` (None without ``grads``),
        ``objective`` = :math:`w^\top G w` (the squared norm of the direction),
        ``kkt_residual``, ``iterations`` and ``converged``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mgda
        >>> res = mgda(np.array([[1.0, 0.0], [0.0, 2.0]]))
        >>> res.weights
        array([0.8, 0.2])
        >>> res.direction
        array([0.8, 0.4])
        >>> short = np.array([[1e-3, 0.0], [0.0, 1.0]])
        >>> float(mgda(short).weights[0]) > 0.999999  # plain MGDA: onto the short one
        True
        >>> unit = mgda(short, normalization="l2")  # min-norm point of the unit gradients
        >>> unit.direction, unit.weights
        (array([0.5, 0.5]), array([500. ,   0.5]))
    """
    method, tol, max_iter = _simplex.check_options(
        method, tol, max_iter, _METHODS, ("exact", "frank-wolfe")
    )
    check_choice(normalization, "normalization", _NORMALIZATIONS)
    p = prepare_scaled(grads, gram)
    if normalization == "none":
        sol = _simplex.solve(p.gram, None, method, tol=tol, max_iter=max_iter)
        return _simplex.to_result(p, sol, f"mgda/{method}")
    return _normalized(p, method, tol, max_iter, normalization, losses)


def _normalized(
    p: Prepared,
    method: str,
    tol: float | None,
    max_iter: int | None,
    normalization: str,
    losses: object,
) -> SolverResult:
    """MGDA on D G D, D = diag(1 / c) (see :func:`mgda`); weights on the original grads."""
    K = p.gram.shape[0]
    if p.lost:  # normalised, a short gradient is no longer negligible next to the rest
        raise lost_error(p.lost, f"mgda with normalization={normalization!r}")
    if normalization in ("loss", "loss+"):
        if losses is None:
            raise ValueError(
                f"normalization={normalization!r} divides each gradient by its loss: pass "
                f"losses= (K = {K} positive finite values)"
            )
        L = as_real_task_vector(losses, "losses", K, need="> 0")
    else:
        L = np.ones(K)
    d = np.diagonal(p.gram)
    n = np.sqrt(d)  # norms of 2**e * grads
    zero = d == 0.0
    fast = _direct(p, n, zero, L, normalization, method, tol, max_iter)
    if fast is not None:
        return fast
    # Each normaliser c_i (of the true grads) as mantissa * 2**expo, so that neither
    # c_i nor 1 / c_i needs to exist in float64: c = (norm part) * (loss part).
    mant, expo = np.frexp(L)
    if normalization != "loss":
        m_n, e_n = np.frexp(np.where(zero, 1.0, n))
        e_n = np.where(zero, e_n, e_n - p.exponent)  # n_true = n / 2**e
        mant, e_m = np.frexp(mant * m_n)  # a product in [0.25, 1): exact
        expo = expo + e_n + e_m
    # D' = 2**(shift) / c: largest entry in [0.5, 1], exact powers of two apart.
    inv = 1.0 / mant  # in (1, 2]
    shift = int((-expo).max()) if K else 0
    scaled_inv = np.ldexp(inv, np.maximum(-expo - shift, -1100))  # = 2**-shift / c_i
    with np.errstate(under="ignore", over="ignore"):
        Gn = p.gram * scaled_inv[:, None] * scaled_inv[None, :]
    top = float(np.diagonal(Gn).max())
    if top > 0.0:
        Gn = np.ldexp(Gn, -2 * (int(np.frexp(top)[1]) // 2))
    sol = _simplex.solve(Gn, None, method, tol=tol, max_iter=max_iter)
    lam = sol.weights
    # w_i = lam_i / c_i = lam_i * inv_i * 2**(-expo_i), formed in two factors.
    with np.errstate(over="ignore"):
        weights = np.ldexp(lam * inv, -expo)
    if not np.isfinite(weights).all():
        i = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise ValueError(
            f"normalization={normalization!r}: the normaliser of task {i} is so small "
            f"(about 2**{int(expo[i]) - 1}) that the weight lam_{i} / c_{i} on its "
            f"original gradient overflows float64"
        )
    G, exponent = unscaled_gram(p.gram, p.exponent)
    with np.errstate(over="ignore", under="ignore"):
        objective = float(weights @ G @ weights)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method=f"mgda/{method}/{normalization}",
        iterations=sol.iterations,
        converged=sol.converged,
        objective=objective,
        kkt_residual=sol.kkt_residual,
        extras={
            "normalized_weights": lam,
            "normalizers": _ldexp_quiet(mant, expo),
            "normalization": normalization,
        },
        gram_exponent=exponent,
    )


def _direct(p, n, zero, L, normalization, method, tol, max_iter):
    """The common case, on the normalisers themselves: unscaled gradients and every
    c_i in [2**-100, 2**100] with D G D inside float64's range; else None."""
    if p.exponent != 0 or not (2.0**-100 <= float(L.min()) and float(L.max()) <= 2.0**100):
        return None
    c = L if normalization == "loss" else np.where(zero, 1.0, n) * L
    lo, hi = float(c.min()), float(c.max())
    top = float(np.diagonal(p.gram).max())
    if not (2.0**-100 <= lo and hi <= 2.0**100 and top < 2.0**800 * lo * lo):
        return None
    inv = 1.0 / c
    Gn = p.gram * inv[:, None] * inv[None, :]
    sol = _simplex.solve(Gn, None, method, tol=tol, max_iter=max_iter)
    lam = sol.weights
    weights = lam * inv
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=p.gram,
        method=f"mgda/{method}/{normalization}",
        iterations=sol.iterations,
        converged=sol.converged,
        objective=float(lam @ Gn @ lam),
        kkt_residual=sol.kkt_residual,
        extras={"normalized_weights": lam, "normalizers": c, "normalization": normalization},
    )


def mgda_weights(gram: np.ndarray, *, method: str = "exact") -> np.ndarray:
    """MGDA weights from a Gram matrix alone (see :func:`mgda`).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mgda_weights
        >>> mgda_weights(np.array([[1.0, 0.0], [0.0, 4.0]]))
        array([0.8, 0.2])
    """
    return mgda(gram=gram, method=method).weights


def _ldexp_quiet(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(x, e)
