"""ZDT1, ZDT2 and ZDT3 (Zitzler, Deb & Thiele, Evolutionary Computation 2000)."""

from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import brentq

from paretomtl.problems._base import Problem
from paretomtl.problems._registry import register_problem

_ZDT_PAPER = (
    "Zitzler, Deb & Thiele, Comparison of Multiobjective Evolutionary Algorithms: "
    "Empirical Results, Evolutionary Computation 8(2), 2000"
)
_OMEGA = 10.0 * np.pi  # ZDT3's sine frequency


class _ZDT(Problem):
    r"""Shared ZDT structure: :math:`f_1 = x_1`, :math:`f_2 = g + \varphi(x_1, g)`.

    With :math:`g = 1 + c \sum_{i \ge 2} x_i`, :math:`c = 9/(n-1)`, on
    :math:`[0, 1]^n`. Since g is affine, :math:`\nabla f_2 = (\varphi_1,\
    c(1 + \varphi_g)\mathbf 1)` and the Hessian of :math:`f_2` has the blocks
    :math:`\varphi_{11}`, :math:`c\,\varphi_{1g}\mathbf 1` and
    :math:`c^2\varphi_{gg}\mathbf 1\mathbf 1^\top`; :math:`f_1` is linear.
    Subclasses give ``_phi(x1, g, order)``.
    """

    paper = _ZDT_PAPER
    has_hvp = True
    _hessian_unbounded_at_zero = True

    def __init__(self, n_var: int = 30) -> None:
        if not isinstance(n_var, bool) and isinstance(n_var, (int, np.integer)) and n_var < 2:
            raise ValueError(f"n_var must be >= 2 for {self.name}; got {n_var}")
        super().__init__(n_var, 2, 0.0, 1.0)
        self._c = 9.0 / (self.n_var - 1)
        self._freeze()

    def _phi(self, x1: np.ndarray, g: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def _g(self, X: np.ndarray) -> np.ndarray:
        return 1.0 + self._c * X[:, 1:].sum(axis=1)

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x1, g = X[:, 0], self._g(X)
        phi, phi_1, phi_g = self._phi(x1, g, 1)
        F = np.stack([x1, g + phi], axis=1)
        J = np.zeros((X.shape[0], 2, self.n_var))
        J[:, 0, 0] = 1.0
        J[:, 1, 0] = phi_1
        J[:, 1, 1:] = (self._c * (1.0 + phi_g))[:, None]
        return F, J

    def _hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        x1, g = X[:, 0], self._g(X)
        if self._hessian_unbounded_at_zero and np.any(x1 <= 0):
            raise ValueError(
                f"the Hessian of {self.name} is unbounded at x[0] = 0; "
                "call hvp at points with x[0] > 0"
            )
        p11, p1g, pgg = self._phi(x1, g, 2)
        v1, cv = V[:, 0], self._c * V[:, 1:].sum(axis=1)
        H = np.zeros((X.shape[0], 2, self.n_var))
        H[:, 1, 0] = p11 * v1 + p1g * cv
        H[:, 1, 1:] = (self._c * (p1g * v1 + pgg * cv))[:, None]
        return H

    def front_pieces(self) -> tuple[tuple[float, float], ...]:
        return ((0.0, 1.0),)

    def _front_at(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        one = np.ones_like(t)
        return np.stack([t, one + self._phi(t, one, 0)[0]], axis=1)

    def _set_at(self, t: np.ndarray) -> np.ndarray:
        X = np.zeros((len(t), self.n_var))
        X[:, 0] = t
        return X


@register_problem
class ZDT1(_ZDT):
    r"""ZDT1: a convex front, :math:`f_2 = 1 - \sqrt{f_1}`.

    .. math::

        f_1 = x_1,\quad g = 1 + \tfrac{9}{n-1}\textstyle\sum_{i=2}^n x_i,\quad
        f_2 = g\,\bigl(1 - \sqrt{x_1 / g}\bigr) = g - \sqrt{x_1 g},
        \qquad x \in [0, 1]^n,

    from Zitzler, Deb & Thiele, Evolutionary Computation 8(2), 2000. The Pareto
    set lies on the boundary of the box: :math:`x_1 \in [0, 1]`,
    :math:`x_2 = \dots = x_n = 0` (g = 1 at its minimum), so the lower bounds of
    :math:`x_2..x_n` are active at every Pareto point. The front's parameter is
    :math:`t = x_1 = f_1`.

    At :math:`x_1 = 0` the derivative :math:`\partial f_2/\partial x_1 =
    -\tfrac12\sqrt{g/x_1}` is :math:`-\infty`: :meth:`evaluate` returns ``-inf``
    there, and :meth:`hvp` needs :math:`x_1 > 0`.

    True hypervolume with reference point (1.1, 1.1): the part of the square
    :math:`[0, 1.1]^2` that the front does not dominate is the area under it
    (for :math:`f_1 \in [1, 1.1]` the end (1, 0) dominates the whole column), so
    :math:`HV = 1.1^2 - \int_0^1 (1 - \sqrt{f_1})\,df_1 = 1.21 - 1/3 \approx 0.8767`.

    Args:
        n_var: n >= 2, the number of variables (default 30, as in the paper).

    Example:
        >>> from paretomtl.problems import ZDT1
        >>> values, jacobian = ZDT1(n_var=3).evaluate([0.25, 0.0, 0.0])
        >>> values, jacobian[1]
        (array([0.25, 0.5 ]), array([-1.   ,  3.375,  3.375]))
    """

    name = "zdt1"

    def _phi(self, x1, g, order):
        with np.errstate(divide="ignore"):
            if order == 0:
                return (-np.sqrt(x1 * g),)
            if order == 1:
                return -np.sqrt(x1 * g), -0.5 * np.sqrt(g / x1), -0.5 * np.sqrt(x1 / g)
            return (
                0.25 * np.sqrt(g) * x1**-1.5,
                -0.25 / np.sqrt(x1 * g),
                0.25 * np.sqrt(x1) * g**-1.5,
            )


@register_problem
class ZDT2(_ZDT):
    r"""ZDT2: a concave front, :math:`f_2 = 1 - f_1^2`.

    .. math::

        f_1 = x_1,\quad g = 1 + \tfrac{9}{n-1}\textstyle\sum_{i=2}^n x_i,\quad
        f_2 = g\,\bigl(1 - (x_1 / g)^2\bigr) = g - x_1^2 / g,
        \qquad x \in [0, 1]^n,

    from Zitzler, Deb & Thiele, Evolutionary Computation 8(2), 2000. The Pareto
    set lies on the boundary of the box: :math:`x_1 \in [0, 1]`,
    :math:`x_2 = \dots = x_n = 0`. Linear scalarisation finds only the two ends of
    this front. The front's parameter is :math:`t = x_1 = f_1`.

    Args:
        n_var: n >= 2, the number of variables (default 30, as in the paper).

    Example:
        >>> from paretomtl.problems import ZDT2
        >>> ZDT2().pareto_front(3)
        array([[0.  , 1.  ],
               [0.5 , 0.75],
               [1.  , 0.  ]])
    """

    name = "zdt2"
    _hessian_unbounded_at_zero = False

    def _phi(self, x1, g, order):
        if order == 0:
            return (-(x1**2) / g,)
        if order == 1:
            return -(x1**2) / g, -2.0 * x1 / g, x1**2 / g**2
        return -2.0 / g, 2.0 * x1 / g**2, -2.0 * x1**2 / g**3


@register_problem
class ZDT3(_ZDT):
    r"""ZDT3: a front of five disconnected pieces.

    .. math::

        f_1 = x_1,\quad g = 1 + \tfrac{9}{n-1}\textstyle\sum_{i=2}^n x_i,\quad
        f_2 = g\Bigl(1 - \sqrt{x_1/g} - \tfrac{x_1}{g}\sin(10\pi x_1)\Bigr)
            = g - \sqrt{x_1 g} - x_1 \sin(10\pi x_1),

    on :math:`[0, 1]^n`, from Zitzler, Deb & Thiele, Evolutionary Computation 8(2),
    2000. The Pareto set lies on the boundary of the box
    (:math:`x_2 = \dots = x_n = 0`) with :math:`x_1` restricted to the pieces where
    :math:`h(x_1) = 1 - \sqrt{x_1} - x_1\sin(10\pi x_1)` is below its value at
    every smaller :math:`x_1`. They are computed here (:attr:`pieces`): each ends at
    a local minimum of h (:math:`h' = 0`) and the next starts, open, where h falls
    back to that minimum; about [0, 0.0830], (0.1822, 0.2578], (0.4093, 0.4539],
    (0.6184, 0.6525], (0.8233, 0.8518]. :meth:`pareto_front` samples only these.
    As for ZDT1, :math:`\partial f_2/\partial x_1 = -\infty` at :math:`x_1 = 0`.

    Args:
        n_var: n >= 2, the number of variables (default 30, as in the paper).

    Example:
        >>> from paretomtl.problems import ZDT3
        >>> len(ZDT3.pieces())
        5
        >>> ZDT3().pareto_front(2).round(4)
        array([[ 0.    ,  1.    ],
               [ 0.8518, -0.7734]])
    """

    name = "zdt3"

    def _phi(self, x1, g, order):
        s, c = np.sin(_OMEGA * x1), np.cos(_OMEGA * x1)
        with np.errstate(divide="ignore"):
            if order == 0:
                return (-np.sqrt(x1 * g) - x1 * s,)
            if order == 1:
                return (
                    -np.sqrt(x1 * g) - x1 * s,
                    -0.5 * np.sqrt(g / x1) - s - _OMEGA * x1 * c,
                    -0.5 * np.sqrt(x1 / g),
                )
            return (
                0.25 * np.sqrt(g) * x1**-1.5 - 2.0 * _OMEGA * c + _OMEGA**2 * x1 * s,
                -0.25 / np.sqrt(x1 * g),
                0.25 * np.sqrt(x1) * g**-1.5,
            )

    @staticmethod
    @functools.cache
    def pieces() -> tuple[tuple[float, float], ...]:
        """The x_1 (= f_1) intervals of ZDT3's front; all but the first open on the left.

        The left ends returned are the smallest floats whose h lies strictly below
        the previous piece's end.
        """
        return _zdt3_pieces()

    def front_pieces(self) -> tuple[tuple[float, float], ...]:
        return self.pieces()


def _h3(x: float) -> float:
    return 1.0 - np.sqrt(x) - x * np.sin(_OMEGA * x)


def _dh3(x: float) -> float:
    return -0.5 / np.sqrt(x) - np.sin(_OMEGA * x) - _OMEGA * x * np.cos(_OMEGA * x)


def _zdt3_pieces() -> tuple[tuple[float, float], ...]:
    grid = np.linspace(0.0, 1.0, 100_001)
    h = 1.0 - np.sqrt(grid) - grid * np.sin(_OMEGA * grid)
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], h[:-1]]))
    keep = h < best_before
    edges = np.flatnonzero(np.diff(keep.astype(np.int8)))
    starts = [0, *(edges[keep[edges + 1]] + 1)]
    ends = [*edges[keep[edges]], len(grid) - 1] if keep[-1] else list(edges[keep[edges]])
    pieces, prev_min = [], None
    for i0, i1 in zip(starts, ends, strict=True):
        if prev_min is None:
            lo = 0.0
        else:
            lo = brentq(lambda x, v=prev_min: _h3(x) - v, grid[i0 - 1], grid[i0], xtol=1e-16)
            while _h3(lo) >= prev_min:
                lo = np.nextafter(lo, 1.0)
        hi = brentq(_dh3, grid[i1 - 1], grid[i1 + 1], xtol=1e-16)
        pieces.append((float(lo), float(hi)))
        prev_min = _h3(hi)
    return tuple(pieces)
