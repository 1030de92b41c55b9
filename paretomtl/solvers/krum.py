"""Krum and Multi-Krum: keep the gradients closest to their neighbours."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import check_choice, check_count
from paretomtl._kernels.krum import krum_scores
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_DISTANCES = ("squared", "euclidean")


@register(
    "krum",
    kind="gradient",
    paper=(
        "Blanchard, El Mhamdi, Guerraoui & Stainer, Machine Learning with Adversaries: "
        "Byzantine Tolerant Gradient Descent, NeurIPS 2017"
    ),
    summary="average of the n_selected gradients closest to their K - f - 2 nearest others",
)
def krum(
    grads: object = None,
    *,
    gram: object = None,
    n_byzantine: int = 0,
    n_selected: int = 1,
    distance: str = "squared",
) -> SolverResult:
    r"""Krum (and Multi-Krum): a robust choice among the gradients, from their Gram matrix.

    Each gradient is scored by its distances to its :math:`K - f - 2` nearest other
    gradients (f = ``n_byzantine``, the number of gradients that may be adversarial;
    Blanchard, El Mhamdi, Guerraoui & Stainer, "Machine Learning with Adversaries:
    Byzantine Tolerant Gradient Descent", NeurIPS 2017):

    .. math::

        s(i) = \sum_{j \in N_i} \|g_i - g_j\|^2, \qquad
        \|g_i - g_j\|^2 = G_{ii} + G_{jj} - 2 G_{ij},

    and the ``n_selected`` = m gradients with the lowest scores are averaged
    (weights 1/m; m = 1 is Krum, m > 1 Multi-Krum). Ties go to the lower task index.
    The paper's score sums *squared* distances (``distance="squared"``, default);
    TorchJD's ``KrumWeighting`` sums the distances themselves
    (``distance="euclidean"``), which can select differently (the neighbour sets are
    the same). TorchJD has no default for ``n_byzantine``; here it is 0. The paper's
    guarantee needs :math:`K > 2f + 2`; like TorchJD only :math:`K \ge f + 3` (at
    least one neighbour) is required.

    Distances from G lose precision by cancellation where two gradients are close
    next to their norms (about :math:`\epsilon \max G_{ii}` absolute on a squared
    distance, so about :math:`\sqrt{\epsilon \max G_{ii}}` on a plain one: two
    gradients 1e-9 apart at norm 1 get a plain distance of order 1e-8), which decides
    only between near-equal scores. Negative rounding is clipped to 0. The choice
    is invariant to a common positive scale of the gradients, at any scale.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        n_byzantine: f, an int >= 0 with K >= f + 3.
        n_selected: m, an int from 1 to K.
        distance: ``"squared"`` (the paper) or ``"euclidean"`` (TorchJD).

    Raises:
        ValueError: for ``n_byzantine`` or ``n_selected`` not integers in range (the
            message says which K they need), an unknown ``distance``, or bad input.

    Returns:
        SolverResult with ``weights`` (1/m on the selected tasks, 0 elsewhere),
        ``direction`` and ``extras`` (``scores`` on the scale of ``gram``'s
        distances, ``selected`` task indices, best first).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import krum
        >>> J = np.array([[1.0, 0.0], [1.1, 0.0], [0.9, 0.1], [-5.0, 3.0]])
        >>> krum(J, n_byzantine=1).weights
        array([1., 0., 0., 0.])
    """
    f = check_count(n_byzantine, "n_byzantine", minimum=0)
    m = check_count(n_selected, "n_selected", minimum=1)
    check_choice(distance, "distance", _DISTANCES)
    p = prepare_scaled(grads, gram)
    G = p.gram
    K = G.shape[0]
    if K < f + 3:
        raise ValueError(
            f"krum needs at least n_byzantine + 3 = {f + 3} gradients (each scored by its "
            f"K - n_byzantine - 2 nearest others); got K = {K}"
        )
    if m > K:
        raise ValueError(f"n_selected must be at most K = {K} (the number of tasks); got {m}")
    scores = krum_scores(G, K - f - 2, distance == "squared")
    selected = np.argsort(scores, kind="stable")[:m]
    weights = np.zeros(K)
    weights[selected] = 1.0 / m
    Gr, exponent = unscaled_gram(G, p.exponent)
    if exponent != p.exponent:
        power = 2 * (exponent - p.exponent) if distance == "squared" else exponent - p.exponent
        scores = np.ldexp(scores, power)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=Gr,
        method="krum" if m == 1 else "krum/multi",
        extras={"scores": scores, "selected": selected},
        gram_exponent=exponent,
    )
