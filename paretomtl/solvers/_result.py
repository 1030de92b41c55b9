"""The result object every gradient-space solver returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class SolverResult:
    """Weights, direction and diagnostics of one solver call.

    Attributes:
        weights: (K,) float64 combination weights, the direction being
            ``weights @ grads``; None for the methods whose direction is no such
            combination of the current gradients (GradDrop's sign masks, TrimmedMean's
            coordinate-wise trimming, methods that combine tracked gradients: see
            ``extras`` for their own weights).
        direction: (M,) combined gradient when ``grads`` was given, else None. Its dtype
            is that of ``grads`` (float32 for float16 input). Always set by the methods
            that need ``grads`` (``needs_grads``), which refuse a Gram matrix alone.
        gram: the K x K float64 Gram matrix the weights were computed from: the one
            passed as ``gram``, else ``grads @ grads.T``; where float64 cannot hold
            that (gradient norms beyond about 1e154, or below about 1e-154), the Gram
            matrix of ``2**gram_exponent * grads``, which gives the same weights to
            every method that computes it this way (each is invariant to a common
            positive scale of the gradients).
        method: registry name of the method and algorithm, e.g. ``"mgda/exact"``.
        iterations: iterations of an iterative or active-set algorithm (0 if none).
        converged: False when an iteration cap stopped the algorithm first.
        objective: the minimised value where the method has one (``w^T G w`` for MGDA
            and the Pareto step), else NaN.
        kkt_residual: largest violation of the method's optimality conditions, relative
            to ``max_i G_ii`` (NaN where the method is not an optimisation problem).
        extras: method-specific diagnostics (e.g. PCGrad's number of projections).
        gram_exponent: 0, or the power of two the gradients were multiplied by to
            form ``gram`` (see ``gram``); ``objective`` is then on that scale too.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mgda
        >>> res = mgda(np.array([[1e200, 0.0], [0.0, 1e200]]))
        >>> res.weights, res.gram_exponent  # (1e200)**2 overflows: gram is 2**-665 grads'
        (array([0.5, 0.5]), -665)
        >>> bool(np.isclose(np.sqrt(res.gram[0, 0]), 1e200 * 2.0**-665))
        True
    """

    weights: np.ndarray | None
    direction: np.ndarray | None
    gram: np.ndarray
    method: str
    iterations: int = 0
    converged: bool = True
    objective: float = float("nan")
    kkt_residual: float = float("nan")
    extras: dict = field(default_factory=dict)
    gram_exponent: int = 0

    def __repr__(self) -> str:
        w = (
            "None"
            if self.weights is None
            else np.array2string(self.weights, precision=4, separator=", ")
        )
        d = (
            "None"
            if self.direction is None
            else f"<{self.direction.shape[0]} x {self.direction.dtype}>"
        )
        return (
            f"SolverResult(method={self.method!r}, weights={w}, direction={d}, "
            f"iterations={self.iterations}, converged={self.converged}, "
            f"objective={self.objective:.6g}, kkt_residual={self.kkt_residual:.3g})"
        )
