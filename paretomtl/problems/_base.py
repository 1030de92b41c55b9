"""The :class:`Problem` base class: box bounds, checked evaluation, sampled true fronts."""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np
from scipy.optimize import brentq, minimize_scalar

_ARCLENGTH_GRID = 4097  # dense parameter points per piece when spacing="arclength"
_RTOL = 4.0 * np.finfo(np.float64).eps  # brentq's smallest relative tolerance
_XTOL = 1e-300  # no absolute floor: roots near t = 0 are found to full relative precision


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)  # a private copy
    a.flags.writeable = False
    return a


def check_count(n: object, name: str) -> int:
    """``n`` as a positive int, or a ValueError (TypeError) naming ``name``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"{name} must be >= 1; got {n}")
    return int(n)


class Problem:
    """A differentiable multi-objective problem on a box, with its true Pareto front.

    Minimise :math:`F(x) = (f_1(x), \\dots, f_m(x))` over the box
    :math:`\\{x : \\text{lower} \\le x \\le \\text{upper}\\}`. A problem knows its
    values and analytic Jacobian (:meth:`evaluate`, :meth:`evaluate_batch`),
    Hessian-vector products where :attr:`has_hvp` (:meth:`hvp`, :meth:`hvp_batch`),
    and its true Pareto front and set, sampled to any density (:meth:`pareto_front`,
    :meth:`pareto_set`; row i of the set maps to row i of the front), with the exact
    points of preference vectors on it (:meth:`preference_points`).

    Problems are immutable: attributes cannot be reassigned and ``lower`` /
    ``upper`` are read-only arrays. Points outside the box, of the wrong shape or
    not finite are rejected with a ValueError naming the argument.

    Subclasses implement ``_evaluate(X) -> (F, J)`` on an (n, n_var) array, and
    ``_parameters(n, spacing)``, ``_front_at(t)``, ``_set_at(t)`` describing the
    front by a parameter ``t``; two-objective problems implement
    :meth:`front_pieces` (the parameter intervals of the possibly disconnected
    front) instead of ``_parameters``, and get :meth:`preference_points` from it
    too.

    Attributes:
        name: the registry name (``get_problem(name)``).
        paper: where the problem comes from (authors, venue, year).
        n_var: number of variables.
        n_obj: number of objectives.
        lower, upper: the box bounds, arrays of shape (n_var,).
        has_hvp: whether :meth:`hvp` is available.
        front_spacings: the values :meth:`pareto_front` accepts for ``spacing``;
            the first is the default.

    Example:
        >>> from paretomtl.problems import get_problem
        >>> problem = get_problem("zdt1", n_var=3)
        >>> problem
        ZDT1(n_var=3)
        >>> values, jacobian = problem.evaluate([0.25, 0.0, 0.0])
        >>> values
        array([0.25, 0.5 ])
        >>> jacobian.shape
        (2, 3)
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    has_hvp: ClassVar[bool] = False
    front_spacings: ClassVar[tuple[str, ...]] = ("parameter", "arclength")

    n_var: int
    n_obj: int
    lower: np.ndarray
    upper: np.ndarray

    def __init__(self, n_var: int, n_obj: int, lower: object, upper: object) -> None:
        self.n_var = check_count(n_var, "n_var")
        self.n_obj = int(n_obj)
        lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), (self.n_var,))
        hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), (self.n_var,))
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise ValueError(f"need finite bounds with lower < upper; got {lo} and {hi}")
        self.lower = _readonly(lo)
        self.upper = _readonly(hi)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, key: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"{type(self).__name__} is immutable; build a new problem to change {key!r}"
            )
        object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_var={self.n_var})"

    # ----------------------------------------------------------------- checks
    def _check_points(self, X: object, name: str, single: bool, in_box: bool) -> np.ndarray:
        arr = np.asarray(X, dtype=np.float64)
        want = f"({self.n_var},)" if single else f"(n, {self.n_var})"
        ok = (
            arr.shape == (self.n_var,) if single else (arr.ndim == 2 and arr.shape[1] == self.n_var)
        )
        if not ok:
            raise ValueError(f"{name} must have shape {want} for {self!r}; got {arr.shape}")
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = idx[0] if single else idx
            raise ValueError(f"{name}[{where}] is {float(arr[idx])!r}; entries must be finite")
        if in_box:
            out = (arr < self.lower) | (arr > self.upper)
            if out.any():
                idx = tuple(int(i) for i in np.argwhere(out)[0])
                j = idx[-1]
                where = idx[0] if single else idx
                raise ValueError(
                    f"{name}[{where}] = {float(arr[idx])!r} lies outside the box "
                    f"[{self.lower[j]}, {self.upper[j]}] of {self.name}; project it first, "
                    "e.g. np.clip(x, problem.lower, problem.upper)"
                )
        return arr

    # ------------------------------------------------------------ evaluation
    def evaluate(self, x: object) -> tuple[np.ndarray, np.ndarray]:
        """Objective values and Jacobian at one point.

        Args:
            x: a point of the box, shape (n_var,).

        Returns:
            ``(values, jacobian)``: shapes (n_obj,) and (n_obj, n_var); row i of the
            Jacobian is the gradient of :math:`f_i`.

        Example:
            >>> from paretomtl.problems import get_problem
            >>> values, jacobian = get_problem("convex-quadratic", n_var=2).evaluate([0.0, 0.0])
            >>> values.round(4)
            array([0.25, 0.25])
        """
        x = self._check_points(x, "x", single=True, in_box=True)
        F, J = self._evaluate(x[None, :])
        return F[0], J[0]

    def evaluate_batch(self, X: object) -> tuple[np.ndarray, np.ndarray]:
        """Values and Jacobians at n points at once (vectorised).

        Args:
            X: points of the box, shape (n, n_var).

        Returns:
            ``(values, jacobians)``: shapes (n, n_obj) and (n, n_obj, n_var).

        Example:
            >>> import numpy as np
            >>> from paretomtl.problems import get_problem
            >>> values, jacobians = get_problem("zdt2", n_var=4).evaluate_batch(np.zeros((5, 4)))
            >>> values.shape, jacobians.shape
            ((5, 2), (5, 2, 4))
        """
        X = self._check_points(X, "X", single=False, in_box=True)
        return self._evaluate(X)

    def hvp(self, x: object, v: object) -> np.ndarray:
        """Hessian-vector products of every objective: row i is :math:`\\nabla^2 f_i(x)\\, v`.

        Args:
            x: a point of the box, shape (n_var,).
            v: a direction, shape (n_var,).

        Returns:
            An (n_obj, n_var) array.

        Raises:
            NotImplementedError: when the problem has no Hessian-vector products
                (``has_hvp`` is False).

        Example:
            >>> import numpy as np
            >>> from paretomtl.problems import get_problem
            >>> get_problem("convex-quadratic", n_var=2).hvp(np.zeros(2), [1.0, 2.0])
            array([[1., 2.],
                   [1., 2.]])
        """
        if not self.has_hvp:
            raise NotImplementedError(f"{self.name} has no Hessian-vector products")
        x = self._check_points(x, "x", single=True, in_box=True)
        v = self._check_points(v, "v", single=True, in_box=False)
        return self._hvp(x[None, :], v[None, :])[0]

    def hvp_batch(self, X: object, V: object) -> np.ndarray:
        """Hessian-vector products at n points at once: row k is ``hvp(X[k], V[k])``.

        Args:
            X: points of the box, shape (n, n_var).
            V: directions, shape (n, n_var), one per point.

        Returns:
            An (n, n_obj, n_var) array.

        Raises:
            NotImplementedError: when the problem has no Hessian-vector products
                (``has_hvp`` is False).

        Example:
            >>> import numpy as np
            >>> from paretomtl.problems import get_problem
            >>> get_problem("convex-quadratic", n_var=2).hvp_batch(np.zeros((2, 2)), np.eye(2))
            array([[[1., 0.],
                    [1., 0.]],
            <BLANKLINE>
                   [[0., 1.],
                    [0., 1.]]])
        """
        if not self.has_hvp:
            raise NotImplementedError(f"{self.name} has no Hessian-vector products")
        X = self._check_points(X, "X", single=False, in_box=True)
        V = self._check_points(V, "V", single=False, in_box=False)
        if V.shape != X.shape:
            raise ValueError(f"V must have the shape of X, {X.shape}; got {V.shape}")
        return self._hvp(X, V)

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ----------------------------------------------------------- true front
    def pareto_front(self, n_points: int, *, spacing: str | None = None) -> np.ndarray:
        """``n_points`` points of the true Pareto front, shape (n_points, n_obj).

        Two-objective fronts are sorted by increasing :math:`f_1`; ``spacing`` says
        how: ``"parameter"`` (default) spaces the points evenly in the problem's
        parameter of the front (for ZDT: evenly in :math:`f_1 = x_1`, as pymoo
        does), ``"arclength"`` evenly along the curve. Disconnected fronts (ZDT3)
        are sampled on their non-dominated pieces only, the gaps skipped.

        Example:
            >>> from paretomtl.problems import get_problem
            >>> get_problem("zdt1").pareto_front(3)
            array([[0.        , 1.        ],
                   [0.5       , 0.29289322],
                   [1.        , 0.        ]])
        """
        return self._front_at(self._parameters(check_count(n_points, "n_points"), spacing))

    def pareto_set(self, n_points: int, *, spacing: str | None = None) -> np.ndarray:
        """The points of the Pareto set that map to :meth:`pareto_front` (same rows).

        Returns an (n_points, n_var) array; ``evaluate`` of row i gives row i of
        ``pareto_front(n_points, spacing=spacing)``.

        Example:
            >>> from paretomtl.problems import get_problem
            >>> get_problem("zdt1", n_var=3).pareto_set(3)
            array([[0. , 0. , 0. ],
                   [0.5, 0. , 0. ],
                   [1. , 0. , 0. ]])
        """
        return self._set_at(self._parameters(check_count(n_points, "n_points"), spacing))

    @cached_property
    def ideal_point(self) -> np.ndarray:
        """The ideal (utopia) point: each objective's minimum over the true front.

        Zeros for every problem here but ZDT3, whose :math:`f_2` reaches about
        -0.7734 (the nearest of 4097 points per front piece, refined by a bounded
        scalar minimisation). Front methods measure preferences from it by default
        (``ideal=None``). A problem without a known front gives zeros.

        Example:
            >>> from paretomtl.problems import get_problem
            >>> get_problem("zdt3").ideal_point.round(4)
            array([ 0.    , -0.7734])
        """
        try:
            out = self._ideal()
        except NotImplementedError:  # no known front: measure from the origin
            out = np.zeros(self.n_obj)
        out.setflags(write=False)
        return out

    def _ideal(self) -> np.ndarray:
        if self.n_obj != 2:
            raise NotImplementedError
        return np.array([self._front_minimum(lambda F, i=i: F[:, i]) for i in range(2)])

    def front_distance(self, points: object) -> np.ndarray:
        """Euclidean distance from each objective vector to the true Pareto front.

        Accurate to about 1e-8 (1e-16 for DTLZ2), unlike the distance to a finite
        sample (1000 points of ZDT1's front leave gaps of 1.5e-3, so a point on the
        front can sit 7e-4 from the nearest sample point). Two-objective fronts: the
        nearest of 4097 parameter points per piece, refined by a bounded scalar
        minimisation of the squared distance over the neighbouring parameter
        interval (a minimum found to rounding in the squared distance is found to
        its square root in the distance). DTLZ2 has a closed form.
        GD against the true front is ``front_distance(points).mean()``.

        Args:
            points: objective vectors, shape (n, n_obj).

        Returns:
            An (n,) array of distances >= 0.

        Example:
            >>> from paretomtl.problems import get_problem
            >>> zdt1 = get_problem("zdt1")
            >>> zdt1.front_distance([[0.25, 0.5], [0.25, 0.6]]).round(6)
            array([0.      , 0.068742])
        """
        P = np.asarray(points, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != self.n_obj or not np.isfinite(P).all():
            raise ValueError(
                f"points must be finite with shape (n, {self.n_obj}); got shape {P.shape}"
            )
        return self._front_distance(P)

    def _front_distance(self, P: np.ndarray) -> np.ndarray:
        if self.n_obj != 2:
            raise NotImplementedError(f"{self.name} has no exact distance to its front")
        squared = [self._front_minimum(lambda F, p=p: ((F - p) ** 2).sum(axis=1)) for p in P]
        return np.sqrt(np.maximum(squared, 0.0))

    def preference_points(self, rays: object) -> np.ndarray:
        r"""The points of the true front where :math:`r_i (f_i - z_i)` is the same for every i.

        For a preference vector r with every :math:`r_i > 0`, the exact Pareto optimal
        point of EPO (Mahapatra & Rajan, "Multi-Task Learning with User Preferences:
        Gradient Descent with Controlled Ascent in Pareto Optimization", ICML 2020):
        the front point F with :math:`r_1 (F_1 - z_1) = \dots = r_m (F_m - z_m)`, z
        the :attr:`ideal_point`. :func:`paretomtl.front.preference_points` takes
        rays with zeros too (it lifts them first) and calls this.

        *Two objectives* (here, from :meth:`front_pieces`): along the front's
        parameter t, :math:`f_1` rises and :math:`f_2` falls, so
        :math:`h(t) = r_1 (f_1(t) - z_1) - r_2 (f_2(t) - z_2)` is increasing and
        changes sign on at most one piece; there ``scipy.optimize.brentq`` solves
        :math:`h(t) = 0` to full precision in t. If no piece changes sign, the
        crossing falls in a gap of a disconnected front (ZDT3), and no front point
        meets the preference: the point returned is then the front point that
        minimises :math:`\max_i r_i (f_i - z_i)`, the Tchebycheff point of the
        front, which is the end of one of the two pieces next to the gap (the max
        falls along the piece before the gap and rises along the piece after it).
        Where the crossing exists it is also the Tchebycheff point, so the rule is
        one: the minimiser of :math:`\max_i r_i (f_i - z_i)` over the true front.
        The values are those of the front's parametrisation, so the
        :math:`r_i (f_i - z_i)` agree to its rounding (about 1e-15 relative, less
        where it cancels, e.g. ZDT1's :math:`f_2 = 1 - \sqrt{f_1}` near
        :math:`f_1 = 1`). Other problems give their closed form (DTLZ2).

        Args:
            rays: (n_rays, n_obj) preference vectors, every entry finite and > 0.

        Returns:
            An (n_rays, n_obj) array, row k the point of ray k.

        Raises:
            NotImplementedError: when the problem does not know these points
                (neither two objectives with :meth:`front_pieces` nor a closed form).

        Example:
            >>> from paretomtl.problems import get_problem
            >>> get_problem("zdt1").preference_points([[0.5, 0.5], [1.0, 3.0]]).round(4)
            array([[0.382 , 0.382 ],
                   [0.6261, 0.2087]])
        """
        R = np.asarray(rays, dtype=np.float64)
        if R.ndim != 2 or R.shape[0] < 1 or R.shape[1] != self.n_obj:
            raise ValueError(f"rays must have shape (n_rays >= 1, {self.n_obj}); got {R.shape}")
        if not (np.isfinite(R) & (R > 0)).all():
            k = int(np.argmax(~(np.isfinite(R) & (R > 0)).all(axis=1)))
            raise ValueError(
                f"rays must be finite and > 0 in every entry (lift zeros first, as "
                f"paretomtl.front.preference_points does); row {k} is {np.array2string(R[k])}"
            )
        return self._preference_points(R)

    def _preference_points(self, R: np.ndarray) -> np.ndarray:
        if self.n_obj != 2:
            raise NotImplementedError(f"{self!r} has no exact preference points")
        pieces = self.front_pieces()
        z = np.asarray(self.ideal_point, dtype=np.float64)
        return np.array([self._tchebycheff_point(pieces, r, z) for r in R])

    def _tchebycheff_point(self, pieces, r: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The minimiser of max_i r_i (f_i - z_i) over a two-objective front (r > 0)."""

        def front(t: float) -> np.ndarray:
            return self._front_at(np.array([t]))[0]

        def h(t: float) -> float:
            f = front(t)
            return float(r[0] * (f[0] - z[0]) - r[1] * (f[1] - z[1]))

        candidates = []
        for lo, hi in pieces:
            h_lo, h_hi = h(lo), h(hi)
            if h_lo <= 0.0 <= h_hi:  # h rises along the piece: the crossing is here
                t = brentq(h, lo, hi, xtol=_XTOL, rtol=_RTOL, maxiter=500)
                return front(t)
            candidates += [front(lo), front(hi)]
        # No crossing on the front (a gap of a disconnected front): its Tchebycheff point.
        F = np.array(candidates)
        return F[np.argmin(((F - z) * r).max(axis=1))]

    def _front_minimum(self, score) -> float:
        """min over the two-objective front of score(F) (rows of F -> values): the
        smallest of 4097 parameter points per piece, refined by a bounded scalar
        minimisation over the parameter interval around it."""
        best = np.inf
        for lo, hi in self.front_pieces():
            t = np.linspace(lo, hi, _ARCLENGTH_GRID)
            values = score(self._front_at(t))
            j = int(np.argmin(values))
            best = min(best, float(values[j]))
            a, b = t[max(j - 1, 0)], t[min(j + 1, len(t) - 1)]
            if b > a:
                res = minimize_scalar(
                    lambda u: float(score(self._front_at(np.array([u])))[0]),
                    bounds=(a, b),
                    method="bounded",
                    options={"xatol": 1e-14 * max(1.0, abs(hi - lo))},
                )
                best = min(best, float(res.fun))
        return best

    def _check_spacing(self, spacing: str | None) -> str:
        if spacing is None:
            return self.front_spacings[0]
        if spacing not in self.front_spacings:
            raise ValueError(
                f"spacing must be one of {', '.join(map(repr, self.front_spacings))} "
                f"for {self.name}; got {spacing!r}"
            )
        return spacing

    def front_pieces(self) -> tuple[tuple[float, float], ...]:
        """The intervals of the front's parameter t that the true front is made of.

        Two-objective problems describe their front as a curve :math:`F(t)`, with
        t as each problem's docstring defines it (for ZDT, :math:`t = x_1 = f_1`);
        along t, :math:`f_1` rises and :math:`f_2` falls. The pieces are sorted,
        one per connected part of the front (five for ZDT3). :meth:`pareto_front`,
        :meth:`front_distance` and :meth:`preference_points` read the front from
        them.

        Raises:
            NotImplementedError: when the problem does not describe its front so
                (DTLZ2, a surface; a problem without a known front).

        Example:
            >>> from paretomtl.problems import get_problem
            >>> get_problem("zdt1").front_pieces()
            ((0.0, 1.0),)
        """
        raise NotImplementedError(f"{self!r} does not describe its front by parameter intervals")

    def _front_at(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _set_at(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _parameters(self, n: int, spacing: str | None) -> np.ndarray:
        """Front parameters of n points spread over the pieces (two objectives)."""
        spacing = self._check_spacing(spacing)
        pieces = self.front_pieces()
        if spacing == "parameter":
            grids = [np.array([lo, hi]) for lo, hi in pieces]
            lengths = [np.array([0.0, hi - lo]) for lo, hi in pieces]
        else:
            grids, lengths = [], []
            for lo, hi in pieces:
                # Chebyshev-like nodes, dense at the ends, where fronts such as
                # ZDT1's (f2 = 1 - sqrt(f1)) have unbounded slope.
                u = np.linspace(0.0, np.pi, _ARCLENGTH_GRID)
                t = lo + (hi - lo) * 0.5 * (1.0 - np.cos(u))
                t[0], t[-1] = lo, hi
                step = np.linalg.norm(np.diff(self._front_at(t), axis=0), axis=1)
                grids.append(t)
                lengths.append(np.concatenate([[0.0], np.cumsum(step)]))
        totals = np.array([s[-1] for s in lengths])
        cum = np.concatenate([[0.0], np.cumsum(totals)])
        s = np.linspace(0.0, cum[-1], n)
        # A sample at a junction belongs to the end of the piece before it: the start
        # of the next piece of a disconnected front is weakly dominated by that end.
        k = np.clip(np.searchsorted(cum, s, side="left") - 1, 0, len(pieces) - 1)
        t = np.empty(n)
        for j in range(len(pieces)):
            sel = k == j
            t[sel] = np.interp(s[sel] - cum[j], lengths[j], grids[j])
        return t
