"""DualProj: project the preference-weighted sum of the gradients onto the dual cone."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._dual_cone import lifted, pref_weights, project
from paretomtl.solvers._input import combine, lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult


@register(
    "dualproj",
    kind="gradient",
    paper=(
        "Quinton & Rey, Jacobian Descent for Multi-Objective Optimization, "
        "arXiv:2406.16232, 2024 (the projection of Lopez-Paz & Ranzato, Gradient "
        "Episodic Memory for Continual Learning, NeurIPS 2017, Eq. 11)"
    ),
    summary="the projection of the preference-weighted sum of the gradients onto the dual cone",
)
def dualproj(
    grads: object = None, *, gram: object = None, pref_vector: object = None
) -> SolverResult:
    r"""DualProj: the projection of :math:`J^\top p` onto the dual cone, exact.

    .. math::

        d = J^\top v^*(p), \qquad v^*(p) = \arg\min_{v \ge p} v^\top G v,

    the point of the dual cone :math:`\{x : \langle g_j, x\rangle \ge 0\ \forall j\}`
    closest to the p-weighted sum of the gradients (Quinton & Rey, "Jacobian Descent
    for Multi-Objective Optimization", arXiv:2406.16232, 2024, where it is DualProj;
    the dual problem is GEM's, Lopez-Paz & Ranzato, NeurIPS 2017, Eq. 11). The
    weights are :math:`v^*(p)`; p defaults to the uniform 1/K (TorchJD's
    ``pref_vector=None``), so without conflict (:math:`G p \ge 0`) d is the mean
    gradient. One box QP, solved exactly by the active-set kernel of
    :mod:`paretomtl.solvers._dual_cone` (see there for the canonical v where G is
    singular; the direction is unique either way).

    Differences from TorchJD (0.18): its ``DualProjWeighting`` solves the QP with
    quadprog on :math:`G / \operatorname{tr} G + \epsilon I`, ``norm_eps = reg_eps =
    1e-4``. Its default weights are the exact projection for that regularised
    matrix (to 1e-14, tested); the ridge moves them from the exact ones for G by
    about 0.5 % on well-scaled G, by more where a task's squared norm is near
    :math:`10^{-4} \operatorname{tr} G`. With both eps near 1e-12 the two agree to
    about 1e-10 on positive definite G (tested). No ridge here.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        pref_vector: K finite non-negative preferences, not all zero; default
            ``None``, the uniform 1/K.

    Returns:
        SolverResult with the weights :math:`v^*(p)`, ``objective`` :math:`\|d\|^2 =
        v^\top G v` (on the scale of ``gram``), ``kkt_residual`` (relative to
        :math:`\max_i G_{ii} \|p\|_1`), ``iterations`` of the active set, and
        ``extras`` ``"cone_violation"`` and ``"stalled"`` as for :func:`upgrad`.

    Raises:
        ValueError: bad ``grads``/``gram`` or ``pref_vector``, or a nonzero gradient
            too short next to the longest for float64 to hold its Gram entries.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import dualproj
        >>> J = np.array([[1.0, 0.0], [-1.0, 1.0]])  # mean (0, 0.5): <g1, mean> = 0
        >>> dualproj(J).weights  # already in the cone: the mean
        array([0.5, 0.5])
        >>> res = dualproj(J, pref_vector=[0.0, 1.0])  # g2 conflicts with g1
        >>> res.weights, res.direction  # g2 + g1 is orthogonal to g1
        (array([1., 1.]), array([0., 1.]))
    """
    p = prepare_scaled(grads, gram)
    if p.lost:  # a lost row's constraint <g_i, d> >= 0 would vanish unseen
        raise lost_error(p.lost, "dualproj")
    K = p.gram.shape[0]
    pref = pref_weights(pref_vector, K)
    scaled, e = lifted(pref)  # subnormal preferences cannot underflow
    proj = project(p.gram, scaled[None, :])
    weights = np.ldexp(proj.weights, e)
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="dualproj",
        iterations=proj.iterations,
        converged=proj.converged,
        objective=float(weights @ G @ weights),
        kkt_residual=proj.residual,
        extras={"cone_violation": proj.violation, "stalled": proj.stalled},
        gram_exponent=exponent,
    )
