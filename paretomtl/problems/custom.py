"""Problems defined by the user: from plain functions, or from a pymoo problem with gradients.

:func:`from_functions` turns ``f(x) -> (n_obj,)`` and its Jacobian
``jacobian(x) -> (n_obj, n_var)`` on a box into a :class:`FunctionProblem`, which every
front method accepts (:func:`paretomtl.front.trace`); :func:`from_pymoo` does the same
for a pymoo problem that returns ``"dF"``. Hessian-vector products, which Newton steps
and ``"continuation"`` use, are either given or taken by finite differences of the
Jacobian. Such problems do not know their true front: ``front_distance`` and
``pareto_front`` raise NotImplementedError, and ``ideal_point`` is the ``ideal`` given
(zeros by default). This module imports numpy only (pymoo lazily, in
:func:`from_pymoo`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from paretomtl.problems._base import Problem, check_count

_EPS = np.finfo(np.float64).eps
_CBRT_EPS = _EPS ** (1.0 / 3.0)  # the step of second-order differences, about 6e-6


def _label(fn: object, role: str) -> str:
    """'jacobian (my_jac)': the argument's role and the function's own name."""
    own = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{role} ({own})" if own and own != role else role


def _where(x: np.ndarray) -> str:
    return np.array2string(x, precision=6, threshold=8)


class FunctionProblem(Problem):
    r"""A problem given by the user's functions: values, Jacobian, optional Hessian-vector products.

    Minimise :math:`F(x) = (f_1(x), \dots, f_m(x))` over the box
    :math:`\text{lower} \le x \le \text{upper}`. Built by :func:`from_functions`
    (see there for the arguments); it behaves as every :class:`Problem` does
    (``evaluate``, ``evaluate_batch``, ``hvp``, ``hvp_batch``, checked points), so
    :func:`paretomtl.front.trace` runs any front method on it.

    *What is checked.* Each call's output is converted to float64 and must have its
    shape (values (n_obj,), Jacobian and Hessian-vector products (n_obj, n_var));
    values must be finite; Jacobian and Hessian-vector products must not be NaN
    (an infinite derivative where the box ends, such as
    :math:`\partial_x \sqrt{x}` at 0, is allowed: the front methods test for it).
    A failure is a ValueError (TypeError for output that is not numeric) naming the
    function and the point.

    *Hessian-vector products by finite differences* (``hvp=None``): row i of
    :math:`\nabla^2 f_i(x) v` is the derivative of the Jacobian along v,

    .. math::

        \nabla^2 f_i(x)\,v \approx \frac{J(x + hv) - J(x - hv)}{2h},\qquad
        h = \varepsilon^{1/3}\,\frac{\max(1, \|x\|_\infty)}{\|v\|_\infty},

    the central difference (error :math:`O(h^2)`, about 1e-10 relative for smooth
    functions; Nocedal & Wright, Numerical Optimization, 2nd ed., sec. 8.1). The
    Jacobian is only ever called inside the box: where :math:`x - hv` leaves it, the
    one-sided second-order difference :math:`(-3J(x) + 4J(x+hv) - J(x+2hv))/(2h)`
    is used (or the mirror one), with h shrunk to the room left; where v leaves the
    box both ways, :math:`\nabla^2 f_i\,v = \sum_j v_j \nabla^2 f_i\,e_j`, one
    coordinate at a time. A non-finite Jacobian nearby gives non-finite entries,
    which the front methods read as "no Newton step here".

    Attributes:
        name: the name given (default the name of ``f``).
        ideal: the ideal point the front methods measure preferences from
            (:attr:`ideal_point`).
        has_hvp: always True (given or by finite differences).
        hvp_by_differences: True when the products are by finite differences.

    Example:
        >>> import numpy as np
        >>> from paretomtl.problems.custom import from_functions
        >>> def f(x):
        ...     return np.array([x @ x, (x - 1) @ (x - 1)])
        >>> def jac(x):
        ...     return np.stack([2 * x, 2 * (x - 1)])
        >>> problem = from_functions(f, jac, n_var=2, n_obj=2, lower=-1, upper=2)
        >>> problem
        FunctionProblem('f', n_var=2, n_obj=2)
        >>> problem.evaluate([0.5, 0.5])[0]
        array([0.5, 0.5])
        >>> problem.hvp([0.5, 0.5], [1.0, 0.0]).round(8)  # 2 v for both objectives
        array([[2., 0.],
               [2., 0.]])
    """

    has_hvp = True

    def __init__(
        self,
        f: Callable,
        jacobian: Callable,
        n_var: int,
        n_obj: int,
        *,
        lower: object,
        upper: object,
        hvp: Callable | None = None,
        ideal: object = None,
        name: str | None = None,
    ) -> None:
        for arg, fn in (("f", f), ("jacobian", jacobian), ("hvp", hvp)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{arg} must be callable; got {type(fn).__name__} {fn!r}")
        if f is None or jacobian is None:
            raise TypeError(
                "f and jacobian are both needed: f(x) -> (n_obj,) values and "
                "jacobian(x) -> (n_obj, n_var); got None"
            )
        if check_count(n_obj, "n_obj") < 2:
            raise ValueError(f"n_obj must be >= 2 (a multi-objective problem); got {n_obj}")
        super().__init__(n_var, n_obj, lower, upper)
        if name is None:
            name = getattr(f, "__name__", None) or "function-problem"
        if not isinstance(name, str):
            raise TypeError(f"name must be a str or None; got {type(name).__name__}")
        self.name = name  # type: ignore[misc]  # the registry's class name, per instance here
        if ideal is None:
            z = np.zeros(self.n_obj)
        else:
            z = np.array(np.broadcast_to(np.asarray(ideal, dtype=np.float64), (self.n_obj,)))
            if not np.isfinite(z).all():
                raise ValueError(f"ideal must be finite; got {z}")
        z.flags.writeable = False
        self.ideal = z
        self._f, self._jacobian, self._hvp_fn = f, jacobian, hvp
        self._f_label = _label(f, "f")
        self._jacobian_label = _label(jacobian, "jacobian")
        self._hvp_label = _label(hvp, "hvp")
        self.hvp_by_differences = hvp is None
        self._freeze()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n_var={self.n_var}, n_obj={self.n_obj})"

    def _ideal(self) -> np.ndarray:
        return self.ideal.copy()

    # ------------------------------------------------------------ checks
    def _checked(
        self, out: object, shape: tuple, label: str, x: np.ndarray, allow_inf: bool
    ) -> np.ndarray:
        try:
            arr = np.array(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{label} must return numbers of shape {shape}; got {type(out).__name__} "
                f"at x = {_where(x)}"
            ) from exc
        if arr.shape != shape:
            raise ValueError(
                f"{label} returned shape {arr.shape} at x = {_where(x)}; it must return "
                f"shape {shape} (n_obj = {self.n_obj}, n_var = {self.n_var})"
            )
        bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            what = "not NaN" if allow_inf else "finite"
            raise ValueError(
                f"{label} returned {float(arr[idx])!r} at index {idx if len(idx) > 1 else idx[0]}"
                f" for x = {_where(x)}; its entries must be {what}"
            )
        return arr

    def _values_at(self, x: np.ndarray) -> np.ndarray:
        return self._checked(self._f(x.copy()), (self.n_obj,), self._f_label, x, False)

    def _jacobian_at(self, x: np.ndarray) -> np.ndarray:
        shape = (self.n_obj, self.n_var)
        return self._checked(self._jacobian(x.copy()), shape, self._jacobian_label, x, True)

    # -------------------------------------------------------- evaluation
    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F = np.empty((len(X), self.n_obj))
        J = np.empty((len(X), self.n_obj, self.n_var))
        for k, x in enumerate(X):
            F[k], J[k] = self._values_at(x), self._jacobian_at(x)
        return F, J

    def _hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), self.n_obj, self.n_var))
        for k, (x, v) in enumerate(zip(X, V, strict=True)):
            if self._hvp_fn is None:
                out[k] = self._difference_hvp(x, v)
            else:
                hv = self._hvp_fn(x.copy(), v.copy())
                out[k] = self._checked(hv, (self.n_obj, self.n_var), self._hvp_label, x, True)
        return out

    def _room(self, x: np.ndarray, v: np.ndarray) -> float:
        """The largest a >= 0 with x + a v in the box."""
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(
                v > 0, (self.upper - x) / v, np.where(v < 0, (self.lower - x) / v, np.inf)
            )
        return float(max(room.min(), 0.0))

    def _jacobian_along(self, x: np.ndarray, v: np.ndarray, a: float) -> np.ndarray:
        return self._jacobian_at(np.clip(x + a * v, self.lower, self.upper))

    def _difference_hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        size = float(np.abs(v).max())
        if size == 0.0:
            return np.zeros((self.n_obj, self.n_var))
        h = _CBRT_EPS * max(1.0, float(np.abs(x).max())) / size
        up, down = self._room(x, v), self._room(x, -v)
        with np.errstate(invalid="ignore", over="ignore"):
            if min(up, down) >= h:  # central
                return (self._jacobian_along(x, v, h) - self._jacobian_along(x, v, -h)) / (2 * h)
            sign, room = (1.0, up) if up >= down else (-1.0, down)
            if room > 0.0:  # one-sided, second order, inside the box
                s = min(h, 0.5 * room)
                J0 = self._jacobian_at(x)
                J1 = self._jacobian_along(x, v, sign * s)
                J2 = self._jacobian_along(x, v, sign * 2 * s)
                return sign * (-3.0 * J0 + 4.0 * J1 - J2) / (2 * s)
        # v leaves the box both ways: by linearity, one coordinate at a time.
        out = np.zeros((self.n_obj, self.n_var))
        for j in np.flatnonzero(v):
            e = np.zeros(self.n_var)
            e[j] = 1.0
            out += v[j] * self._difference_hvp(x, e)
        return out


def from_functions(
    f: Callable,
    jacobian: Callable,
    n_var: int,
    n_obj: int,
    *,
    lower: object,
    upper: object,
    hvp: Callable | None = None,
    ideal: object = None,
    name: str | None = None,
) -> FunctionProblem:
    r"""A :class:`Problem` from the user's objective function and its Jacobian.

    The front methods (:func:`paretomtl.front.trace`) need the values and the
    Jacobian at points of a box, and Hessian-vector products for Newton steps and
    ``"continuation"``. Give them as plain functions of a float64 array ``x`` of
    shape (n_var,) (a private copy, always inside the box):

    Args:
        f: ``f(x)`` -> the n_obj objective values, shape (n_obj,), finite.
        jacobian: ``jacobian(x)`` -> shape (n_obj, n_var), row i the gradient of
            :math:`f_i`; no NaN (an infinite entry at the box's edge is allowed).
        n_var: the number of variables.
        n_obj: the number of objectives, >= 2.
        lower, upper: the box, finite, scalars or arrays of shape (n_var,),
            ``lower < upper``.
        hvp: ``hvp(x, v)`` -> shape (n_obj, n_var), row i
            :math:`\nabla^2 f_i(x)\, v`. None (default): central finite differences of
            ``jacobian`` (two extra Jacobians per product, about 1e-10 relative
            error for smooth functions; one-sided at the box's edge;
            :class:`FunctionProblem` gives the formula).
        ideal: the ideal point z the front methods measure preferences from
            (:math:`f - z \ge 0` on the front), a scalar or shape (n_obj,);
            default zeros. Give it when the objectives can be negative.
        name: shown in messages and ``repr``; default ``f.__name__``.

    Returns:
        A :class:`FunctionProblem`. Wrong shapes, non-finite values or NaN
        derivatives are ValueErrors naming the function and the point.

    Example:
        Two shifted quadratics, :math:`f_{1,2} = \|x \mp a\|^2`, whose front is
        :math:`\sqrt{f_1} + \sqrt{f_2} = 2\|a\|`:

        >>> import numpy as np
        >>> from paretomtl.front import simplex_rays, trace
        >>> from paretomtl.problems.custom import from_functions
        >>> a = np.array([0.5, 0.0])
        >>> def f(x):
        ...     return np.array([(x - a) @ (x - a), (x + a) @ (x + a)])
        >>> def jac(x):
        ...     return np.stack([2 * (x - a), 2 * (x + a)])
        >>> problem = from_functions(f, jac, 2, 2, lower=-1.0, upper=1.0)
        >>> out = trace(problem, "tchebycheff", simplex_rays(2, 3), seed=0)
        >>> np.sqrt(out.points).sum(axis=1).round(6)
        array([1., 1., 1.])
    """
    return FunctionProblem(
        f, jacobian, n_var, n_obj, lower=lower, upper=upper, hvp=hvp, ideal=ideal, name=name
    )


class PymooProblem(FunctionProblem):
    """A pymoo problem that returns gradients (``"dF"``), as a :class:`Problem`.

    Built by :func:`from_pymoo`. Values and Jacobians come from one call of
    ``problem.evaluate(X, return_values_of=["F", "dF"])`` per batch; Hessian-vector
    products are by finite differences of ``dF`` (see :class:`FunctionProblem`).

    Attributes:
        pymoo_problem: the wrapped pymoo problem.

    Example:
        >>> from pymoo.gradient.automatic import AutomaticDifferentiation
        >>> from pymoo.problems import get_problem
        >>> from paretomtl.problems.custom import from_pymoo
        >>> zdt1 = AutomaticDifferentiation(get_problem("zdt1", n_var=3))
        >>> from_pymoo(zdt1).evaluate([0.25, 0.0, 0.0])[0]
        array([0.25, 0.5 ])
    """

    def __init__(self, problem: Any, *, ideal: object = None) -> None:
        label = f"pymoo problem {_pymoo_name(problem)}"
        self.pymoo_problem = problem
        self._label_pymoo = label
        super().__init__(
            self._pymoo_values,
            self._pymoo_jacobian,
            problem.n_var,
            problem.n_obj,
            lower=problem.xl,
            upper=problem.xu,
            ideal=ideal,
            name=_pymoo_name(problem),
        )

    def __repr__(self) -> str:
        return f"PymooProblem({self.name!r}, n_var={self.n_var}, n_obj={self.n_obj})"

    def _call(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F, dF = self.pymoo_problem.evaluate(X.copy(), return_values_of=["F", "dF"])
        dF = np.asarray(dF, dtype=np.float64)
        if dF.shape == (len(X), self.n_obj, self.n_var) and np.all(dF == np.inf):
            raise _no_gradients(self.pymoo_problem)
        return np.asarray(F, dtype=np.float64), dF

    def _pymoo_values(self, x: np.ndarray) -> np.ndarray:
        return self._call(x[None, :])[0][0]

    def _pymoo_jacobian(self, x: np.ndarray) -> np.ndarray:
        return self._call(x[None, :])[1][0]

    def _evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F, dF = self._call(X)
        label = self._label_pymoo
        n, m, d = len(X), self.n_obj, self.n_var
        F = self._checked(F, (n, m), f"{label}: F", X[0], False)
        dF = self._checked(dF, (n, m, d), f"{label}: dF", X[0], True)
        return F, dF


def _pymoo_name(problem: object) -> str:
    name = getattr(problem, "name", None)
    name = name() if callable(name) else name
    return str(name or type(problem).__name__)


def _no_gradients(problem: object) -> ValueError:
    name = _pymoo_name(problem)
    return ValueError(
        f"pymoo problem {name} gives no gradients: evaluate(X, return_values_of=['F', 'dF']) "
        "left dF unset (pymoo fills it with inf). Either wrap it with "
        "pymoo.gradient.automatic.AutomaticDifferentiation (when it is written with "
        "autograd.numpy), set out['dF'] in its _evaluate, or give its functions and "
        "Jacobian to paretomtl.problems.from_functions(f, jacobian, n_var, n_obj, "
        "lower=..., upper=...)"
    )


def from_pymoo(problem: object, *, ideal: object = None) -> PymooProblem:
    """A :class:`Problem` from a pymoo problem that supplies gradients.

    pymoo (https://pymoo.org, Blank & Deb, IEEE Access 2020) problems return their
    Jacobian as ``"dF"`` when asked, ``problem.evaluate(X, return_values_of=["F",
    "dF"])``, if they set ``out["dF"]`` in ``_evaluate`` or are wrapped for automatic
    differentiation (``pymoo.gradient.automatic.AutomaticDifferentiation(problem)``
    for problems written with ``autograd.numpy``, such as pymoo's ZDT and DTLZ).
    The box is the problem's ``xl``, ``xu``. Hessian-vector products are by finite
    differences of ``dF`` (:class:`FunctionProblem`). The problem is evaluated once
    here, at the box's centre, to check that gradients come back.

    Args:
        problem: a ``pymoo.core.problem.Problem`` with n_obj >= 2, finite bounds, no
            constraints and gradients.
        ideal: the ideal point (see :func:`from_functions`); default zeros.

    Returns:
        A :class:`PymooProblem`.

    Raises:
        ValueError: when the problem gives no gradients (dF unset), has constraints,
            or lacks finite bounds; the message says what to do (e.g. wrap it with
            :func:`from_functions` and give the Jacobian).

    Example:
        >>> from pymoo.problems import get_problem
        >>> from paretomtl.problems.custom import from_pymoo
        >>> from_pymoo(get_problem("zdt1"))
        Traceback (most recent call last):
        ...
        ValueError: pymoo problem ZDT1 gives no gradients: ...
    """
    try:
        from pymoo.core.problem import Problem as PymooBase
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("from_pymoo needs pymoo: pip install pymoo") from exc
    if not isinstance(problem, PymooBase):
        raise TypeError(
            f"problem must be a pymoo.core.problem.Problem; got {type(problem).__name__}"
        )
    name = _pymoo_name(problem)
    n_constr = int(getattr(problem, "n_ieq_constr", 0)) + int(getattr(problem, "n_eq_constr", 0))
    if n_constr:
        raise ValueError(
            f"pymoo problem {name} has {n_constr} constraints; the front methods handle box "
            "bounds only (fold the constraints into the objectives, or drop them)"
        )
    if getattr(problem, "vars", None) is not None or not problem.n_var or problem.n_var < 1:
        raise ValueError(f"pymoo problem {name} must have real variables (n_var >= 1)")
    if problem.xl is None or problem.xu is None:
        raise ValueError(f"pymoo problem {name} needs finite bounds xl and xu; got None")
    out = PymooProblem(problem, ideal=ideal)
    out.evaluate(0.5 * (out.lower + out.upper))  # raises when dF is unset
    return out


__all__ = ["FunctionProblem", "PymooProblem", "from_functions", "from_pymoo"]
