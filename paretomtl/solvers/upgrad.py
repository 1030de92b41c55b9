"""UPGrad: average the projections of every task gradient onto the dual cone."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._dual_cone import lifted, pref_weights, project
from paretomtl.solvers._input import combine, lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult


@register(
    "upgrad",
    kind="gradient",
    paper=(
        "Quinton & Rey, Jacobian Descent for Multi-Objective Optimization, arXiv:2406.16232, 2024"
    ),
    summary="the preference-weighted mean of each gradient's projection onto the dual cone",
)
def upgrad(
    grads: object = None, *, gram: object = None, pref_vector: object = None
) -> SolverResult:
    r"""UPGrad (unconflicting projection of gradients), exact, in Gram space.

    Each task gradient :math:`g_i` is projected onto the dual cone :math:`\{x :
    \langle g_j, x\rangle \ge 0\ \forall j\}` and the projections are combined with
    the preference vector p:

    .. math::

        d = \sum_i p_i\, \pi(g_i), \qquad \pi(g_i) = J^\top v^*(e_i), \qquad
        v^*(u) = \arg\min_{v \ge u} v^\top G v,

    so the weights are :math:`w = \sum_i p_i v^*(e_i)` (Quinton & Rey, "Jacobian
    Descent for Multi-Objective Optimization", arXiv:2406.16232, 2024, Algorithm
    UPGrad with Proposition 1). TorchJD's ``UPGradWeighting`` projects
    :math:`p_i e_i` and sums, the same thing since :math:`v^*(p_i e_i) = p_i
    v^*(e_i)` for :math:`p_i \ge 0`. d lies in the dual cone (no task's loss rises to
    first order along -d), and where no two gradients conflict (:math:`G \ge 0`
    entrywise) every projection is the gradient itself and d is the p-weighted sum
    (the mean for the default p).

    Each of the K box QPs is solved exactly by an active-set method (Lawson-Hanson on
    :math:`v = e_i + x`, :math:`x \ge 0`), all in one compiled kernel; see
    :mod:`paretomtl.solvers._dual_cone` for the canonical v chosen where G is
    singular (the direction is unique either way).

    Differences from TorchJD (0.18): TorchJD solves each QP with quadprog on
    :math:`G / \operatorname{tr} G + \epsilon I` with ``norm_eps = reg_eps = 1e-4``:
    the ridge (needed because quadprog wants a positive definite matrix) is the
    whole difference: TorchJD's default weights are the exact projection for that
    regularised matrix (agreement to 1e-14, tested), and they differ from the exact
    ones for G by about 0.5 % where every :math:`G_{ii}` is far above
    :math:`10^{-4} \operatorname{tr} G`, by far more where a task's squared norm is
    near that (measured on MTL-like G, norms over two decades: 10 % median, up to
    80 %). With both eps near 1e-12 the two agree to about 1e-10 on positive
    definite G (tested). Here no ridge is added: singular G, zero gradients and
    duplicated tasks are solved as they are.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        pref_vector: K finite non-negative preferences, not all zero; default
            ``None``, the uniform 1/K (as TorchJD's).

    Returns:
        SolverResult with the weights :math:`w`; ``iterations`` summed over the K
        projections; ``kkt_residual`` the largest of their KKT residuals (relative
        to :math:`\max_i G_{ii}`); ``extras``: ``"cone_violation"`` (how far d is
        from the dual cone, relative to :math:`\max_i G_{ii} \|w\|_1`, 0 up to
        rounding) and ``"stalled"`` (projections that ended with a numerically
        dependent task still violating its condition by more than 1e-9).

    Raises:
        ValueError: bad ``grads``/``gram`` or ``pref_vector`` (the message names it),
            or a nonzero gradient too short next to the longest for float64 to hold
            its Gram entries (its constraint would be lost).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import upgrad
        >>> J = np.array([[1.0, 0.0], [-1.0, 1.0]])  # <g1, g2> = -1 < 0
        >>> res = upgrad(J)
        >>> res.weights  # (e1 + e2 / 2) / 2 + (e1 + e2) / 2
        array([1.  , 0.75])
        >>> res.direction, J @ res.direction  # both rates >= 0
        (array([0.25, 0.75]), array([0.25, 0.5 ]))
    """
    p = prepare_scaled(grads, gram)
    if p.lost:  # a lost row's constraint <g_i, d> >= 0 would vanish unseen
        raise lost_error(p.lost, "upgrad")
    K = p.gram.shape[0]
    pref = pref_weights(pref_vector, K)
    scaled, e = lifted(pref)  # subnormal preferences cannot underflow
    if pref_vector is None:
        proj = project(p.gram, np.eye(K), scaled)
    else:  # a task with preference 0 needs no projection
        rows = np.flatnonzero(pref)
        proj = project(p.gram, np.eye(K)[rows], scaled[rows])
    weights = np.ldexp(proj.weights, e)
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="upgrad",
        iterations=proj.iterations,
        converged=proj.converged,
        kkt_residual=proj.residual,
        extras={"cone_violation": proj.violation, "stalled": proj.stalled},
        gram_exponent=exponent,
    )
