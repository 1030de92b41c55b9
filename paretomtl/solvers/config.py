"""ConFIG: the conflict-free direction from the unit gradients' pseudo-inverse."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector
from paretomtl.solvers._input import combine, lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.imtl_g import unit_pinv_coefficients


@register(
    "config",
    kind="gradient",
    paper=(
        "Liu, Chu & Thuerey, ConFIG: Towards Conflict-free Training of Physics "
        "Informed Neural Networks, ICLR 2025 (arXiv:2408.11104, 2024)"
    ),
    summary="direction U^+ w on the unit gradients, length the sum of the gradients' projections",
)
def config(
    grads: object = None, *, gram: object = None, pref_vector: object = None
) -> SolverResult:
    r"""ConFIG (Conflict-Free Inverse Gradients), computed from the Gram matrix.

    With unit gradients :math:`u_i = g_i / \|g_i\|` (rows of U) and preference
    weights w (ones by default), ConFIG (Liu, Chu & Thuerey, "ConFIG: Towards
    Conflict-free Training of Physics Informed Neural Networks", ICLR 2025, eq. 2)
    takes

    .. math::

        d_0 = U^+ w, \qquad \hat d = d_0 / \|d_0\|, \qquad
        d = \Big(\sum_i g_i \cdot \hat d\Big)\, \hat d,

    the direction whose cosines with the gradients are proportional to w (equal by
    default), with the length of the sum of the gradients' projections on it. In
    Gram space, with :math:`n_i = \sqrt{G_{ii}}` and the cosine matrix
    :math:`C = N^{-1} G N^{-1} = U U^\top`: :math:`d_0 = \sum_i v_i g_i`,
    :math:`v = N^{-1} C^+ w`, so :math:`\|d_0\|^2 = v^\top G v`,
    :math:`\sum_i g_i \cdot d_0 = \mathbf 1^\top G v` and

    .. math::

        \alpha = v\, \frac{\mathbf 1^\top G v}{v^\top G v},\qquad d = \alpha^\top J.

    Where the unit gradients are linearly independent and w > 0, every
    :math:`g_i \cdot d = n_i w_i \|d\| / \|d_0\| > 0`: no task's loss rises. For
    K = 2 and w = 1, :math:`d = \tfrac{n_1 + n_2}{2}(u_1 + u_2)`. The direction is
    that of IMTL-G's (``imtl-g``) when w = 1; only the length differs.

    :math:`C^+` comes from C's eigendecomposition (eigenvalues at or below
    :math:`8K\epsilon\lambda_{\max}` count as zero), zero gradients get weight 0,
    and :math:`v = 0` (e.g. :math:`g_2 = -g_1`) gives zero weights. The authors'
    code (github.com/tum-pbs/ConFIG, ``ConFIG_update``) and TorchJD's ``ConFIG``
    take the least-squares solution / pseudo-inverse of U itself (K x M), which
    resolves singular values of U down to about :math:`K\epsilon` where the Gram
    route resolves them down to about :math:`\sqrt{K\epsilon}`: they agree except
    for unit gradients within about 1e-7 of linear dependence, and where
    :math:`d_0 = 0` (opposite gradients), where TorchJD normalises its rounding
    (a direction of about 1e-8 of the norms) and this gives 0. Both default to
    w = 1 (TorchJD's ``pref_vector``; the authors' ``EqualWeight``); the authors'
    code uses a separate two-task formula (``ConFIG_update_double``) that is this
    one in exact arithmetic. The weights are invariant to a common positive scale
    of the gradients, at any scale.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        pref_vector: w, K finite numbers; None for ones.

    Raises:
        ValueError: for a ``pref_vector`` of the wrong shape or not finite, bad
            ``grads``/``gram``, or a nonzero gradient too short next to the longest
            for float64 to hold its Gram entries.

    Returns:
        SolverResult with ``weights`` :math:`\alpha`, ``direction`` and ``extras``
        (``rank`` of C, ``length`` :math:`\sum_i g_i\cdot\hat d` on the scale of
        ``gram``).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import config
        >>> res = config(np.array([[3.0, 0.0], [0.0, 1.0]]))
        >>> res.direction  # (3 + 1) / 2 * (u1 + u2)
        array([2., 2.])
        >>> res.weights
        array([0.66666667, 2.        ])
    """
    p = prepare_scaled(grads, gram)
    K = p.gram.shape[0]
    w = np.ones(K) if pref_vector is None else as_real_task_vector(pref_vector, "pref_vector", K)
    if p.lost:
        raise lost_error(p.lost, "config")
    sol = unit_pinv_coefficients(p.gram, w)
    v = sol.coefficients
    Gv = p.gram @ v
    norm2 = float(v @ Gv)
    if norm2 > 0.0:
        length_num = float(Gv.sum())
        weights = v * (length_num / norm2)
        length = length_num / np.sqrt(norm2)
    else:
        weights, length = np.zeros(K), 0.0
    G, exponent = unscaled_gram(p.gram, p.exponent)
    if exponent != p.exponent:
        length = float(np.ldexp(length, exponent - p.exponent))
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="config",
        extras={"rank": sol.rank, "length": float(length)},
        gram_exponent=exponent,
    )
