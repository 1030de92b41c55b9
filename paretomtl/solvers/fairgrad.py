"""FairGrad: alpha-fair resource allocation among the tasks, G w = w^(-1/alpha)."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import check_count, check_real
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.nash_mtl import solve_power_equation


@register(
    "fairgrad",
    kind="gradient",
    paper="Ban & Ji, Fair Resource Allocation in Multi-Task Learning, ICML 2024",
    summary="alpha-fair weights: the positive solution of G w = w^(-1/alpha) (Newton)",
)
def fairgrad(
    grads: object = None,
    *,
    gram: object = None,
    alpha: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> SolverResult:
    r"""FairGrad: the update that allocates improvement to the tasks alpha-fairly.

    Ban & Ji ("Fair Resource Allocation in Multi-Task Learning", ICML 2024) choose
    the update d maximising :math:`\sum_i u_\alpha(g_i^\top d)` on a ball, with the
    alpha-fair utility :math:`u_\alpha(x) = x^{1-\alpha} / (1 - \alpha)`
    (:math:`\log x` for :math:`\alpha = 1`); its optimality conditions (their
    Equation 4) give :math:`d = \sum_i w_i g_i` with

    .. math::

        G w = w^{-1/\alpha} \quad (\text{elementwise}), \qquad w > 0,

    that is :math:`g_i^\top d = w_i^{-1/\alpha}`. It is solved here exactly, by damped
    Newton on the strictly convex :math:`\tfrac12 w^\top G w + \sum_i h(w_i)`,
    :math:`h' = -w^{-1/\alpha}` (:func:`~paretomtl.solvers.nash_mtl.solve_power_equation`),
    to a relative residual :math:`\max_i |w_i^{1/\alpha} (G w)_i - 1| \le` ``tol``
    (``kkt_residual``). :math:`\alpha = 1` is Nash-MTL's equation :math:`G w = 1/w`
    (``NashMTL(K, max_norm=0)``); large
    :math:`\alpha` tends to max-min fairness (equal improvements :math:`G w \propto
    1`), :math:`\alpha \to 0` to the plain sum (weights 1): ``alpha=0`` returns weights
    1 (TorchJD returns 1/K there: the same direction up to the factor K).

    The weights are not invariant to the gradients' scale: for :math:`t J` they are
    :math:`t^{-2/(1+1/\alpha)}` times those for J, and the direction
    :math:`t^{(1 - \alpha)/(1 + \alpha)}` times (scale-free for :math:`\alpha = 1`).

    When no solution exists (the origin in the convex hull of the gradients: a zero
    gradient, opposite gradients), the answer is the limit of the direction as for
    Nash-MTL: ``method`` is ``"fairgrad/reduced"`` and ``extras["unbounded_tasks"]``
    lists the tasks whose weights diverge.

    Defaults and peers: ``alpha = 1`` as the authors' code (OptMN-Lab/fairgrad,
    ``--alpha`` default 1.0) and LibMTL (``FairGrad_alpha = 1.0``); TorchJD's
    ``FairGradWeighting(alpha)`` requires it. The authors, LibMTL and TorchJD solve the
    equation by ``scipy.optimize.least_squares`` from 1/K, bounded to w >= 0, with
    its default tolerances (``max_nfev = 100 K``), and use its answer whether it
    converged or not.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        alpha: the fairness parameter, >= 0 (0: the sum; 1: proportional fairness).
        tol: Newton's stopping residual, in (0, 1).
        max_iter: Newton's iteration cap, >= 1.

    Returns:
        SolverResult with ``weights`` (``direction = weights @ grads``) and
        ``extras["unbounded_tasks"]``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import fairgrad
        >>> res = fairgrad(np.array([[2.0, 0.0], [0.0, 1.0]]), alpha=2.0)
        >>> res.weights.round(6)  # 4 w^1.5 = 1, w^1.5 = 1
        array([0.39685, 1.     ])
    """
    alpha = check_real(alpha, "alpha", low=0.0)
    tol = check_real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
    max_iter = check_count(max_iter, "max_iter", minimum=1)
    p = prepare_scaled(grads, gram)
    G = p.gram
    K = G.shape[0]
    Gr, exponent = unscaled_gram(G, p.exponent)
    if alpha == 0.0:
        w = np.ones(K)
        return SolverResult(
            weights=w,
            direction=combine(w, p.grads),
            gram=Gr,
            method="fairgrad/sum",
            kkt_residual=0.0,
            extras={"unbounded_tasks": ()},
            gram_exponent=exponent,
        )
    power = 1.0 / alpha
    sol = solve_power_equation(G, power, tol=tol, max_iter=max_iter)
    # G is the Gram matrix of 2**e grads: w(4**-e G) = 4**(e / (1 + p)) w(G).
    w = sol.weights * np.exp2(2.0 * p.exponent / (1.0 + power))
    return SolverResult(
        weights=w,
        direction=combine(w, p.grads),
        gram=Gr,
        method=f"fairgrad/{sol.route}",
        iterations=sol.iterations,
        converged=sol.converged,
        kkt_residual=sol.residual,
        extras={"unbounded_tasks": sol.unbounded},
        gram_exponent=exponent,
    )
