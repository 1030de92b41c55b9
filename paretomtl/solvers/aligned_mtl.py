"""Aligned-MTL: align the principal components of the gradients to condition number one."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice, check_real
from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_SCALE_MODES = ("min", "median", "rmse")
# float32's machine epsilon: the authors' code's rank cut-off (torch.finfo() of the
# default dtype), K * eps * lambda_max.
EPS_FLOAT32 = float(np.finfo(np.float32).eps)


@register(
    "aligned-mtl",
    kind="gradient",
    paper=(
        "Senushkin, Patakin, Kuznetsov & Konushin, Independent Component Alignment for "
        "Multi-Task Learning, CVPR 2023"
    ),
    summary="gradients' principal components rescaled to equal length (condition number 1)",
)
def aligned_mtl(
    grads: object = None,
    *,
    gram: object = None,
    pref_vector: object = None,
    scale_mode: str = "min",
    eps: float = EPS_FLOAT32,
) -> SolverResult:
    r"""Aligned-MTL: the gradient system made orthogonal with equal component lengths.

    With the eigendecomposition :math:`G = V \Lambda V^\top` of the Gram matrix
    (Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for
    Multi-Task Learning", CVPR 2023, Algorithm 1), keeping the R eigenvalues above
    :math:`K \epsilon \lambda_{\max}` (the rank; :math:`V_R, \Lambda_R`):

    .. math::

        B = \sqrt{s}\, V_R \Lambda_R^{-1/2} V_R^\top, \qquad
        \hat J = B J, \qquad d = w^\top \hat J, \qquad \alpha = B w,

    so that the aligned gradients (rows of :math:`\hat J`) have the Gram matrix
    :math:`B G B = s\, V_R V_R^\top`: R orthogonal principal components, each of
    length :math:`\sqrt{s}` (condition number one). The scale s is the smallest
    kept eigenvalue (``scale_mode="min"``, the paper's :math:`\sigma_{\min}^2`), their
    median (``"median"``, the lower middle one for an even count, as ``torch.median``)
    or their mean (``"rmse"``), as in the authors' code (github.com/SamsungLabs/MTL,
    ``optim/aligned/solver.py``) and TorchJD. w is the task preference vector.

    Defaults and peers. w defaults to ones: the authors' code and LibMTL's
    ``Aligned_MTL`` sum the aligned gradients (weights ``B.sum(0)``); TorchJD's
    ``AlignedMTLWeighting`` defaults to w = 1/K (its ``MeanWeighting``), so its
    weights are these divided by K (equal with ``pref_vector=1``). The rank
    cut-off :math:`\epsilon` defaults to float32's machine epsilon (1.19e-7), the
    authors' and LibMTL's (``torch.finfo()`` of torch's default dtype, whatever
    the Gram matrix's dtype); TorchJD uses the Gram matrix's own dtype's epsilon
    (2.2e-16 for float64): pass ``eps=2.220446049250313e-16`` to match it. The
    paper's treatment of tiny eigenvalues is this cut-off: eigen-directions below it
    are dropped (they carry no gradient, and dividing by their square root would
    amplify rounding), so B maps onto the kept components only and gradient
    components along dropped ones are discarded. With ``"min"`` the step along each
    kept component has length :math:`\sqrt{s}`, so a nearly rank-deficient G (a
    small kept eigenvalue) gives a short step: that is the method. If G = 0 (rank
    0) B is the identity, as in TorchJD, and the weights are w (the direction is 0).

    Upper-bound variant (Aligned-MTL-UB). The paper's cheaper variant applies the
    same transformation to the gradients with respect to the shared representation
    instead of the shared parameters (the authors' ``AlignedMTLUBBalancer`` calls
    the same solver on them); in Gram space the formula is unchanged, so it is
    this method with the representation-level Gram matrix: the torch adapter's
    ``Aggregator("aligned-mtl", mode="representation")``.

    B, hence the weights, is invariant to a common positive scale of the
    gradients, at any scale. ``kkt_residual`` is NaN (no optimisation problem).

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        pref_vector: w, K finite numbers; None for ones.
        scale_mode: ``"min"`` (default), ``"median"`` or ``"rmse"``.
        eps: relative rank cut-off factor, in [0, 1): eigenvalues at or below
            ``K * eps * lambda_max`` count as zero.

    Raises:
        ValueError: for an unknown ``scale_mode``, ``eps`` outside [0, 1), a
            ``pref_vector`` of the wrong shape or not finite, or bad input.

    Returns:
        SolverResult with ``weights`` :math:`\alpha = B w`, ``direction`` and
        ``extras`` (``rank`` R, ``scale`` s relative to :math:`\lambda_{\max}`,
        ``transform`` B).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import aligned_mtl
        >>> res = aligned_mtl(np.array([[2.0, 0.0], [0.0, 1.0]]))
        >>> res.weights  # B = diag(1/2, 1): both aligned gradients have length 1
        array([0.5, 1. ])
        >>> res.direction
        array([1., 1.])
    """
    check_choice(scale_mode, "scale_mode", _SCALE_MODES)
    eps = check_real(eps, "eps", low=0.0, high=1.0, high_open=True)
    p = prepare_scaled(grads, gram)
    K = p.gram.shape[0]
    w = np.ones(K) if pref_vector is None else as_real_task_vector(pref_vector, "pref_vector", K)
    lam, V = np.linalg.eigh(p.gram)
    top = float(lam[-1])
    keep = lam > K * eps * top if top > 0.0 else np.zeros(K, dtype=bool)
    rank = int(keep.sum())
    if rank == 0:
        B, rel = np.eye(K), float("nan")
    else:
        kept = lam[keep]  # ascending
        if scale_mode == "min":
            s = float(kept[0])
        elif scale_mode == "median":
            s = float(kept[(rank - 1) // 2])  # torch.median: the lower middle
        else:
            s = float(kept.mean())
        Vk = V[:, keep]
        B = (Vk * np.sqrt(s / kept)) @ Vk.T
        rel = s / top
    weights = B @ w
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method=f"aligned-mtl/{scale_mode}",
        extras={"rank": rank, "scale": rel, "transform": B},
        gram_exponent=exponent,
    )
