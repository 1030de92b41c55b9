"""A convex bi-objective quadratic whose Pareto front is known in closed form."""

from __future__ import annotations

import numpy as np

from paretomtl.problems._base import Problem
from paretomtl.problems._registry import register_problem

_SET_CHECK_POINTS = 1025  # λ values at which the Pareto set is checked against the box


@register_problem
class ConvexQuadratic(Problem):
    r"""Two convex quadratics, :math:`f_i(x) = \tfrac12 (x - a_i)^\top A_i (x - a_i)`.

    Gradient :math:`A_i(x - a_i)`, Hessian :math:`A_i` (so :meth:`hvp` is
    :math:`A_i v`), with symmetric positive definite :math:`A_i` (default the
    identity).

    *Pareto set.* Both :math:`f_i` are strictly convex, so the Pareto set is
    exactly the set of minimisers of the weighted sums
    :math:`(1-\lambda) f_1 + \lambda f_2`, :math:`\lambda \in [0, 1]` (every Pareto
    point of a convex problem minimises some weighted sum, and each weighted sum
    has one minimiser, which is Pareto optimal: for :math:`0 < \lambda < 1`
    because a dominating point would lower the sum, at the ends because the
    minimiser of :math:`f_i` alone is unique; Miettinen, Nonlinear Multiobjective
    Optimization, Kluwer 1999, thms 3.1.2-3.1.3). Setting the gradient of the sum
    to zero:

    .. math::

        x(\lambda) = \bigl((1-\lambda)A_1 + \lambda A_2\bigr)^{-1}
                     \bigl((1-\lambda)A_1 a_1 + \lambda A_2 a_2\bigr),
        \qquad F(\lambda) = (f_1(x(\lambda)), f_2(x(\lambda))).

    *Closed form with* :math:`A_1 = A_2 = I`: :math:`x(\lambda) = a_1 + \lambda(a_2 -
    a_1)`, so with :math:`D = \|a_2 - a_1\|`, :math:`f_1 = \tfrac12\lambda^2 D^2`,
    :math:`f_2 = \tfrac12(1-\lambda)^2 D^2`, and eliminating :math:`\lambda`,

    .. math::

        \sqrt{2 f_1} + \sqrt{2 f_2} = D,\qquad 0 \le f_i \le D^2/2,

    a convex curve. The defaults, :math:`a_{1,2} = \pm\tfrac{1}{\sqrt{2n}}(1,\dots,1)`
    (D = √2), give :math:`\sqrt{f_1} + \sqrt{f_2} = 1`. The front's parameter is
    :math:`\lambda`; the box (default :math:`[-1, 1]^n`) must hold the Pareto set,
    which is checked at construction, so the bounds never bind at Pareto points.

    Args:
        n_var: the number of variables (default 10).
        centers: :math:`(a_1, a_2)`, shape (2, n_var); default
            :math:`\pm(1, \dots, 1)/\sqrt{2n}`.
        hessians: :math:`(A_1, A_2)`, shape (2, n_var, n_var), symmetric positive
            definite; default the identity.
        lower, upper: the box, scalars or arrays of shape (n_var,).

    Example:
        >>> import numpy as np
        >>> from paretomtl.problems import ConvexQuadratic
        >>> problem = ConvexQuadratic(n_var=2)
        >>> front = problem.pareto_front(3)
        >>> front
        array([[0.  , 1.  ],
               [0.25, 0.25],
               [1.  , 0.  ]])
        >>> np.sqrt(front).sum(axis=1)
        array([1., 1., 1.])
    """

    name = "convex-quadratic"
    paper = (
        "a textbook convex example: Miettinen, Nonlinear Multiobjective Optimization, "
        "Kluwer 1999 (weighted sums trace the Pareto set of convex problems)"
    )
    has_hvp = True

    def __init__(
        self,
        n_var: int = 10,
        *,
        centers: object = None,
        hessians: object = None,
        lower: object = -1.0,
        upper: object = 1.0,
    ) -> None:
        super().__init__(n_var, 2, lower, upper)
        n = self.n_var
        if centers is None:
            a = np.full(n, 1.0 / np.sqrt(2.0 * n))
            centers = np.stack([a, -a])
        C = np.array(centers, dtype=np.float64)
        if C.shape != (2, n) or not np.all(np.isfinite(C)):
            raise ValueError(f"centers must be a finite array of shape (2, {n}); got {C.shape}")
        if hessians is None:
            H = np.stack([np.eye(n), np.eye(n)])
            self._identity = True
        else:
            H = np.array(hessians, dtype=np.float64)
            if H.shape != (2, n, n) or not np.all(np.isfinite(H)):
                raise ValueError(
                    f"hessians must be a finite array of shape (2, {n}, {n}); got {H.shape}"
                )
            for i in range(2):
                if not np.allclose(H[i], H[i].T, rtol=1e-12, atol=0.0):
                    raise ValueError(f"hessians[{i}] must be symmetric")
                if np.linalg.eigvalsh(H[i])[0] <= 0:
                    raise ValueError(f"hessians[{i}] must be positive definite")
            self._identity = bool(np.all(H == np.eye(n)))
        C.flags.writeable = False
        H.flags.writeable = False
        self.centers = C
        self.hessians = H
        X = self._set_at(np.linspace(0.0, 1.0, _SET_CHECK_POINTS))
        if np.any(X < self.lower) or np.any(X > self.upper):
            raise ValueError(
                "the Pareto set leaves the box [lower, upper]; widen lower/upper so that "
                f"it holds every x(λ) (it spans [{X.min(axis=0)}, {X.max(axis=0)}])"
            )
        self._freeze()

    def __repr__(self) -> str:
        extra = "" if self._identity else ", hessians=..."
        return f"ConvexQuadratic(n_var={self.n_var}{extra})"

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = X[:, None, :] - self.centers[None, :, :]  # (n, 2, d)
        J = np.einsum("ikl,nil->nik", self.hessians, D)
        return 0.5 * np.einsum("nik,nik->ni", D, J), J

    def _hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        return np.einsum("ikl,nl->nik", self.hessians, V)

    def front_pieces(self) -> tuple[tuple[float, float], ...]:
        return ((0.0, 1.0),)

    def _set_at(self, t: np.ndarray) -> np.ndarray:
        lam = np.asarray(t, dtype=np.float64)[:, None]
        a1, a2 = self.centers
        if self._identity:
            return (1.0 - lam) * a1 + lam * a2
        A1, A2 = self.hessians
        M = (1.0 - lam)[:, :, None] * A1 + lam[:, :, None] * A2
        rhs = (1.0 - lam) * (A1 @ a1) + lam * (A2 @ a2)
        return np.linalg.solve(M, rhs[:, :, None])[:, :, 0]

    def _front_at(self, t: np.ndarray) -> np.ndarray:
        lam = np.asarray(t, dtype=np.float64)
        if self._identity:
            d2 = float(np.sum((self.centers[1] - self.centers[0]) ** 2))
            return np.stack([0.5 * lam**2 * d2, 0.5 * (1.0 - lam) ** 2 * d2], axis=1)
        return self._evaluate(self._set_at(lam))[0]
