"""The two-objective synthetic problem of Pareto MTL (Lin et al., NeurIPS 2019)."""

from __future__ import annotations

import numpy as np

from paretomtl.problems._base import Problem
from paretomtl.problems._registry import register_problem


@register_problem
class ParetoMTLToy(Problem):
    r"""The synthetic problem of Pareto MTL, with a concave front.

    .. math::

        f_1(x) = 1 - e^{-\|x - a\|^2},\qquad f_2(x) = 1 - e^{-\|x + a\|^2},\qquad
        a = \tfrac{1}{\sqrt d}(1, \dots, 1) \in \mathbb R^d,

    from Lin, Zhen, Li, Zhang & Kwong, "Pareto Multi-Task Learning", NeurIPS 2019
    (section 5; the authors' code uses d = 20 and starts from
    :math:`x \sim U(-0.5, 0.5)^d`). Gradient and Hessian, with
    :math:`q = \|x - a\|^2`: :math:`\nabla f_1 = 2e^{-q}(x - a)`,
    :math:`\nabla^2 f_1 = 2e^{-q}(I - 2(x-a)(x-a)^\top)`, and likewise for
    :math:`f_2` with :math:`-a`.

    Pareto set: the segment :math:`[-a, a]`. Each :math:`f_i` is increasing in the
    distance to :math:`\pm a`, and projecting any x onto the segment brings it
    strictly closer to both ends unless x is on it. With :math:`x = s\,a`,
    :math:`s \in [-1, 1]`, the front is
    :math:`(1 - e^{-(1-s)^2},\ 1 - e^{-(1+s)^2})`, i.e.

    .. math::

        \sqrt{-\ln(1 - f_1)} + \sqrt{-\ln(1 - f_2)} = 2,
        \qquad 0 \le f_i \le 1 - e^{-4}.

    The paper's problem is unconstrained; here the box is :math:`[-1, 1]^d`, which
    holds the Pareto set (:math:`|x_i| \le 1/\sqrt d`) and the paper's starting
    points, so the bounds never bind at Pareto points (for d = 1 the set's ends
    touch the box, where the gradient of the nearer objective vanishes). The
    front's parameter is :math:`t = (1 - s)/2 \in [0, 1]`.

    Args:
        n_var: d, the number of variables (default 20, as in the authors' code).

    Example:
        >>> from paretomtl.problems import ParetoMTLToy
        >>> problem = ParetoMTLToy(n_var=2)
        >>> values, jacobian = problem.evaluate([0.0, 0.0])
        >>> values.round(4)
        array([0.6321, 0.6321])
        >>> problem.pareto_front(3).round(4)
        array([[0.    , 0.9817],
               [0.6321, 0.6321],
               [0.9817, 0.    ]])
    """

    name = "paretomtl-toy"
    paper = "Lin, Zhen, Li, Zhang & Kwong, Pareto Multi-Task Learning, NeurIPS 2019"
    has_hvp = True

    def __init__(self, n_var: int = 20) -> None:
        super().__init__(n_var, 2, -1.0, 1.0)
        self._a = np.full(self.n_var, 1.0 / np.sqrt(self.n_var))
        self._freeze()

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = np.stack([X - self._a, X + self._a], axis=1)  # (n, 2, d)
        q = np.einsum("nid,nid->ni", D, D)
        return -np.expm1(-q), 2.0 * np.exp(-q)[:, :, None] * D

    def _hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        D = np.stack([X - self._a, X + self._a], axis=1)
        q = np.einsum("nid,nid->ni", D, D)
        Dv = np.einsum("nid,nd->ni", D, V)
        return 2.0 * np.exp(-q)[:, :, None] * (V[:, None, :] - 2.0 * Dv[:, :, None] * D)

    def front_pieces(self) -> tuple[tuple[float, float], ...]:
        return ((0.0, 1.0),)

    def _front_at(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return np.stack([-np.expm1(-4.0 * t**2), -np.expm1(-4.0 * (1.0 - t) ** 2)], axis=1)

    def _set_at(self, t: np.ndarray) -> np.ndarray:
        s = 1.0 - 2.0 * np.asarray(t, dtype=np.float64)
        return np.clip(s[:, None] * self._a, self.lower, self.upper)
