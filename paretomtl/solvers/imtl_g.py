"""IMTL-G: the combination with equal projections onto every task's unit gradient."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from paretomtl._kernels.imtl_g import projection_spread, unit_solve
from paretomtl.solvers._input import combine, lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

# Eigenvalues of the cosine matrix C at or below RCOND_FACTOR * K * eps * lambda_max(C)
# count as zero: C is formed from G with a relative rounding of a few eps per entry,
# which moves its eigenvalues by about K * eps * lambda_max.
RCOND_FACTOR = 8.0
_EPS = float(np.finfo(np.float64).eps)


class UnitSolve(NamedTuple):
    """``coefficients`` v with ``v @ grads`` the min-norm d solving ``u_i . d = rhs_i``."""

    coefficients: np.ndarray
    rank: int
    norms: np.ndarray


def unit_pinv_coefficients(G: np.ndarray, rhs: np.ndarray) -> UnitSolve:
    r"""Coefficients on the gradients of :math:`U^+ r`, U the unit gradients, from G alone.

    With :math:`n_i = \sqrt{G_{ii}}`, :math:`u_i = g_i / n_i` and the cosine matrix
    :math:`C = N^{-1} G N^{-1} = U U^\top` (over the nonzero gradients),

    .. math::

        U^+ r = U^\top C^+ r = \sum_i v_i g_i, \qquad v = N^{-1} C^+ r,

    the minimum-norm d with :math:`u_i \cdot d = r_i` where that system has a
    solution (its least-squares solution otherwise). Zero gradients have no unit
    vector: their coefficient is 0. :math:`C^+` is formed from the eigendecomposition
    :math:`C = Q \Lambda Q^\top`, eigenvalues at or below :math:`8 K \epsilon
    \lambda_{\max}(C)` counting as zero, and so do the components of
    :math:`Q^\top r` at or below :math:`8 K \epsilon \|r\|` (the rounding of Q: r
    orthogonal to C's range gives exactly 0, e.g. opposite gradients); or by a
    Cholesky factorisation where :math:`\operatorname{tr} C^{-1}` certifies every
    eigenvalue above that cut-off, so that :math:`C^+ = C^{-1}`. Working on C, not G,
    makes the answer independent of the gradients' norms, which may span any number
    of decades.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.imtl_g import unit_pinv_coefficients
        >>> unit_pinv_coefficients(np.diag([4.0, 1.0]), np.ones(2)).coefficients
        array([0.5, 1. ])
    """
    K = G.shape[0]
    v = np.empty(K)
    # Every eigenvalue of C certified above the cut-off (lambda_max(C) <= trace = K):
    # C^+ = C^-1, computed by Cholesky in one compiled call.
    if unit_solve(G, rhs, 1.0 / (RCOND_FACTOR * K * K * _EPS), v):
        return UnitSolve(v, K, np.sqrt(np.diagonal(G)))
    d = np.diagonal(G)
    nz = d > 0.0
    n = np.sqrt(np.maximum(d, 0.0))
    v = np.zeros(K)
    if not nz.any():
        return UnitSolve(v, 0, n)
    full = bool(nz.all())
    Gs = G if full else G[np.ix_(nz, nz)]
    ns = n if full else n[nz]
    C = (Gs / ns[:, None]) / ns[None, :]
    np.clip(C, -1.0, 1.0, out=C)
    np.fill_diagonal(C, 1.0)
    lam, Q = np.linalg.eigh(C)
    keep = lam > RCOND_FACTOR * C.shape[0] * _EPS * lam[-1]
    Qk = Q[:, keep]
    r = rhs if full else rhs[nz]
    t = Qk.T @ r
    # Components of r on C's range at the rounding of eigh's orthonormal Q (about
    # K eps ||r||) are zero: where r is orthogonal to the range in exact arithmetic
    # (e.g. r = 1 and opposite gradients), dividing that noise by lambda would make
    # a spurious answer whose size and sign depend on the order of the tasks.
    t[np.abs(t) <= RCOND_FACTOR * C.shape[0] * _EPS * np.linalg.norm(r)] = 0.0
    y = Qk @ (t / lam[keep])
    if full:
        v = y / ns
    else:
        v[nz] = y / ns
    return UnitSolve(v, int(keep.sum()), n)


@register(
    "imtl-g",
    kind="gradient",
    paper=(
        "Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, Towards Impartial Multi-task "
        "Learning, ICLR 2021"
    ),
    summary="weights summing to 1 whose direction projects equally onto every unit gradient",
)
def imtl_g(grads: object = None, *, gram: object = None) -> SolverResult:
    r"""IMTL-G, the gradient half of Impartial Multi-Task Learning, in closed form on G.

    The direction :math:`d = \sum_i \alpha_i g_i`, :math:`\sum_i \alpha_i = 1`, whose
    projections onto the unit gradients :math:`u_i = g_i / \|g_i\|` are all equal
    (Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021):

    .. math::

        u_i \cdot d = c \ \ \forall i
        \iff G\alpha = c\, n \iff
        \alpha = \frac{v}{\mathbf 1^\top v},\qquad v = G^{-1} n = N^{-1} C^{-1} \mathbf 1,

    with :math:`n_i = \|g_i\| = \sqrt{G_{ii}}`, :math:`N = \operatorname{diag}(n)` and
    the cosine matrix :math:`C = N^{-1} G N^{-1}`. The paper writes the same solution
    as :math:`\alpha_{2:K} = g_1 U^\top (D U^\top)^{-1}` with rows
    :math:`D_i = g_1 - g_{i+1}` and :math:`U_i = u_1 - u_{i+1}`, :math:`\alpha_1 = 1 -
    \sum \alpha_{2:K}`; for K = 2, :math:`\alpha = (n_2, n_1) / (n_1 + n_2)` and
    :math:`d = \frac{n_1 n_2}{n_1 + n_2}(u_1 + u_2)`, the bisector.

    Singular G. The paper's formula needs :math:`D U^\top` invertible, and says
    nothing of the singular case (its authors' code adds 1e-8 I on failure).
    Here :math:`v = N^{-1} C^+ \mathbf 1` (the direction :math:`J^\top v = U^+
    \mathbf 1` is the minimum-norm d with every :math:`u_i \cdot d = 1`, or the least
    squares one where none exists): for nonsingular G it is :math:`G^{-1} n` exactly,
    at any spread of the norms, and the direction depends on the unit gradients only
    (impartial), singular or not. Zero gradients have no unit vector: weight 0. If
    :math:`\mathbf 1^\top v = 0` (within rounding, :math:`8 K\epsilon \sum|v_i|`) no
    weights summing to 1 give equal projections but zero ones (e.g. :math:`g_2 =
    -g_1`): the weights are 0 and ``extras["degenerate"]`` is True.

    TorchJD's ``IMTLG`` (after Quinton & Rey, "Jacobian Descent for Multi-Objective
    Optimization", 2024) takes :math:`v = G^+ n` by a pseudo-inverse of G (relative
    cut-off :math:`K\epsilon` on G's own spectrum) and returns zero weights when
    :math:`|\mathbf 1^\top v| < 10^{-12}` (absolute). Both agree wherever G is
    nonsingular and well within float64's range; they differ (1) where the norms
    span many decades, since the cut-off on G drops the short gradients' directions
    (norms 1e10 and 1e-10 give TorchJD the weights (1, 0), whose direction has a
    zero projection onto the second task), (2) in the scale (not the direction) of
    d when a combination of colinear gradients of different norms vanishes (G^+ n
    then depends on the norms; for :math:`g_2 = 2 g_1` TorchJD gives d = 5/3 g_1,
    this d = 4/3 g_1; any multiple of g_1 has equal projections), and (3) where
    no equal projection exists (least squares on C here, on G there). LibMTL's
    ``IMTL`` applies the same closed form together with IMTL-L's loss scaling (see
    ``imtl-l``); it inverts :math:`D U^\top` with no guard.

    The weights are invariant to a common positive scale of the gradients (the
    direction scales with it), at any scale; a nonzero gradient too short for
    float64 to hold its Gram entries next to the longest raises a ValueError.
    ``kkt_residual`` is the relative spread of the projections
    :math:`(G\alpha)_i / n_i` (0 when they are equal).

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.

    Returns:
        SolverResult with ``weights`` (summing to 1, or all 0 when degenerate),
        ``direction``, ``kkt_residual`` and ``extras`` (``rank`` of C,
        ``degenerate``).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import imtl_g
        >>> res = imtl_g(np.array([[3.0, 0.0], [0.0, 1.0]]))
        >>> res.weights  # (n2, n1) / (n1 + n2)
        array([0.25, 0.75])
        >>> res.direction  # projections 0.75 onto both unit gradients
        array([0.75, 0.75])
    """
    p = prepare_scaled(grads, gram)
    if p.lost:
        raise lost_error(p.lost, "imtl-g")
    K = p.gram.shape[0]
    sol = unit_pinv_coefficients(p.gram, np.ones(K))
    v = sol.coefficients
    total = float(v.sum())
    size = float(np.abs(v).sum())
    degenerate = size == 0.0 or abs(total) <= RCOND_FACTOR * K * _EPS * size
    weights = np.zeros(K) if degenerate else v / total
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="imtl-g",
        kkt_residual=float(projection_spread(p.gram, weights)),
        extras={"rank": sol.rank, "degenerate": bool(degenerate)},
        gram_exponent=exponent,
    )
