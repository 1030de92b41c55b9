"""DTLZ2 with three objectives (Deb, Thiele, Laumanns & Zitzler, 2005)."""

from __future__ import annotations

import numpy as np

from paretomtl.problems._base import Problem
from paretomtl.problems._registry import register_problem

_K = np.pi / 2.0
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # 1/phi


@register_problem
class DTLZ2(Problem):
    r"""DTLZ2, three objectives: the front is the unit sphere's positive octant.

    .. math::

        g = \textstyle\sum_{i=3}^{n} (x_i - \tfrac12)^2,\qquad
        \theta_j = \tfrac\pi2 x_j,

        f_1 = (1+g)\cos\theta_1\cos\theta_2,\quad
        f_2 = (1+g)\cos\theta_1\sin\theta_2,\quad
        f_3 = (1+g)\sin\theta_1,\qquad x \in [0, 1]^n,

    from Deb, Thiele, Laumanns & Zitzler, "Scalable Test Problems for Evolutionary
    Multiobjective Optimization", in Evolutionary Multiobjective Optimization,
    Springer, 2005 (first at CEC 2002), with M = 3 objectives and k = n - 2
    distance variables (the paper suggests k = 10, so n = 12). Pareto set:
    :math:`x_3 = \dots = x_n = \tfrac12` (g = 0), :math:`(x_1, x_2) \in [0, 1]^2`,
    interior to the box in the distance variables; front:
    :math:`\{f \ge 0 : \|f\| = 1\}`.

    Writing :math:`f_j = (1+g)\,u_j(x_1, x_2)`, the Jacobian is
    :math:`(1+g)\nabla u_j` in :math:`(x_1, x_2)` and :math:`u_j \nabla g`,
    :math:`\nabla g = 2(x_{3:} - \tfrac12)`, in the rest; the Hessian is
    :math:`(1+g)\nabla^2 u_j + \nabla u_j \nabla g^\top + \nabla g \nabla u_j^\top
    + 2 u_j I_{3:}`.

    :meth:`pareto_front` spreads points evenly by area (``spacing="area"``, the only
    one): on the sphere, :math:`dA = df_3\, d\varphi` with :math:`\varphi` the
    azimuth (Archimedes), so a Fibonacci lattice :math:`f_3 = (i + \tfrac12)/n`,
    :math:`\varphi = \tfrac\pi2 \{(i + \tfrac12)/\phi\}` (golden ratio
    :math:`\phi`) in that rectangle is an even spread on the octant, as the
    spherical Fibonacci lattice is on the whole sphere.

    :meth:`preference_points` has the closed form :math:`F = (1/r) / \|1/r\|`: the
    point of the sphere where :math:`r_i f_i` is the same for every i.

    Args:
        n_var: n >= 3, the number of variables (default 12: k = 10).

    Example:
        >>> import numpy as np
        >>> from paretomtl.problems import DTLZ2
        >>> problem = DTLZ2()
        >>> values, jacobian = problem.evaluate(np.full(12, 0.5))
        >>> values.round(4)
        array([0.5   , 0.5   , 0.7071])
        >>> front = problem.pareto_front(100)
        >>> np.allclose(np.linalg.norm(front, axis=1), 1.0)
        True
        >>> problem.preference_points([[1.0, 1.0, 2.0]]).round(4)
        array([[0.6667, 0.6667, 0.3333]])
    """

    name = "dtlz2"
    paper = (
        "Deb, Thiele, Laumanns & Zitzler, Scalable Test Problems for Evolutionary "
        "Multiobjective Optimization, Evolutionary Multiobjective Optimization, Springer, 2005"
    )
    has_hvp = True
    front_spacings = ("area",)

    def __init__(self, n_var: int = 12) -> None:
        if not isinstance(n_var, bool) and isinstance(n_var, (int, np.integer)) and n_var < 3:
            raise ValueError(f"n_var must be >= 3 for dtlz2 (3 objectives); got {n_var}")
        super().__init__(n_var, 3, 0.0, 1.0)
        self._freeze()

    @staticmethod
    def _u(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """u (n, 3), its gradient (n, 3, 2) and Hessian (n, 3, 2, 2) in (x1, x2)."""
        c1, s1 = np.cos(_K * X[:, 0]), np.sin(_K * X[:, 0])
        c2, s2 = np.cos(_K * X[:, 1]), np.sin(_K * X[:, 1])
        zero = np.zeros_like(c1)
        u = np.stack([c1 * c2, c1 * s2, s1], axis=1)
        du = _K * np.stack(
            [
                np.stack([-s1 * c2, -c1 * s2], 1),
                np.stack([-s1 * s2, c1 * c2], 1),
                np.stack([c1, zero], 1),
            ],
            axis=1,
        )
        d2u = _K**2 * np.stack(
            [
                np.stack([np.stack([-c1 * c2, s1 * s2], 1), np.stack([s1 * s2, -c1 * c2], 1)], 1),
                np.stack([np.stack([-c1 * s2, -s1 * c2], 1), np.stack([-s1 * c2, -c1 * s2], 1)], 1),
                np.stack([np.stack([-s1, zero], 1), np.stack([zero, zero], 1)], 1),
            ],
            axis=1,
        )
        return u, du, d2u

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = X[:, 2:] - 0.5
        g1 = 1.0 + np.einsum("nk,nk->n", r, r)
        u, du, _ = self._u(X)
        J = np.empty((X.shape[0], 3, self.n_var))
        J[:, :, :2] = g1[:, None, None] * du
        J[:, :, 2:] = u[:, :, None] * (2.0 * r)[:, None, :]
        return g1[:, None] * u, J

    def _hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        r = X[:, 2:] - 0.5
        g1 = 1.0 + np.einsum("nk,nk->n", r, r)
        u, du, d2u = self._u(X)
        vh, vt = V[:, :2], V[:, 2:]
        dg_v = 2.0 * np.einsum("nk,nk->n", r, vt)
        du_v = np.einsum("njk,nk->nj", du, vh)
        H = np.empty((X.shape[0], 3, self.n_var))
        H[:, :, :2] = g1[:, None, None] * np.einsum("njkl,nl->njk", d2u, vh)
        H[:, :, :2] += du * dg_v[:, None, None]
        H[:, :, 2:] = 2.0 * (du_v[:, :, None] * r[:, None, :] + u[:, :, None] * vt[:, None, :])
        return H

    def _parameters(self, n: int, spacing: str | None) -> np.ndarray:
        self._check_spacing(spacing)
        i = np.arange(n) + 0.5
        z = i / n
        azimuth = _K * np.mod(i * _GOLDEN, 1.0)
        return np.stack([np.arcsin(z) / _K, azimuth / _K], axis=1)  # (x1, x2)

    def _ideal(self) -> np.ndarray:
        return np.zeros(self.n_obj)  # the front's vertices e_i

    def _front_distance(self, P: np.ndarray) -> np.ndarray:
        # The front is the unit sphere in the non-negative orthant; its point nearest
        # to p maximises p.q: q = max(p, 0) / ||max(p, 0)||, or, when p <= 0, the
        # vertex e_j of the largest p_j.
        plus = np.maximum(P, 0.0)
        norm = np.linalg.norm(plus, axis=1, keepdims=True)
        vertex = np.eye(self.n_obj)[np.argmax(P, axis=1)]
        Q = np.where(norm > 0, plus / np.where(norm > 0, norm, 1.0), vertex)
        return np.linalg.norm(P - Q, axis=1)

    def _preference_points(self, R: np.ndarray) -> np.ndarray:
        # On the unit sphere, r_i f_i equal means f proportional to 1/r.
        inv = 1.0 / R
        return inv / np.linalg.norm(inv, axis=1, keepdims=True)

    def _front_at(self, t: np.ndarray) -> np.ndarray:
        return self._u(np.asarray(t, dtype=np.float64))[0]

    def _set_at(self, t: np.ndarray) -> np.ndarray:
        X = np.full((len(t), self.n_var), 0.5)
        X[:, :2] = np.clip(t, 0.0, 1.0)
        return X
