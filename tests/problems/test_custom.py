"""Problems from user functions and from pymoo: derivatives, checks, tracing equal to built-ins."""

import numpy as np
import pytest

from paretomtl.front import simplex_rays, trace
from paretomtl.problems import ZDT1
from paretomtl.problems.custom import FunctionProblem, from_functions, from_pymoo


# ZDT1 written out by hand (Zitzler, Deb & Thiele 2000), independent of paretomtl's code.
def zdt1_f(x):
    g = 1.0 + 9.0 / (len(x) - 1) * x[1:].sum()
    return np.array([x[0], g * (1.0 - np.sqrt(x[0] / g))])


def zdt1_jac(x):
    n = len(x)
    c = 9.0 / (n - 1)
    g = 1.0 + c * x[1:].sum()
    J = np.zeros((2, n))
    J[0, 0] = 1.0
    with np.errstate(divide="ignore"):
        J[1, 0] = -0.5 * np.sqrt(g / x[0])
    J[1, 1:] = c * (1.0 - 0.5 * np.sqrt(x[0] / g))
    return J


# Fonseca-Fleming, with its Hessians in closed form:
# f = 1 - exp(-q), q = |x - a|^2: grad = 2 e (x - a), Hess = 2 e (I - 2 (x - a)(x - a)^T).
def ff_parts(x):
    a = np.full(len(x), 1.0 / np.sqrt(len(x)))
    return [(d, np.exp(-(d @ d))) for d in (x - a, x + a)]


def ff_f(x):
    return np.array([1.0 - e for _, e in ff_parts(x)])


def ff_jac(x):
    return np.stack([2.0 * e * d for d, e in ff_parts(x)])


def ff_hessians(x):
    n = len(x)
    return np.stack([2.0 * e * (np.eye(n) - 2.0 * np.outer(d, d)) for d, e in ff_parts(x)])


def test_values_and_jacobian_equal_the_builtin_zdt1():
    p, ref = from_functions(zdt1_f, zdt1_jac, 4, 2, lower=0.0, upper=1.0), ZDT1(n_var=4)
    X = np.random.default_rng(0).uniform(0.01, 1.0, size=(20, 4))
    F, J = p.evaluate_batch(X)
    F_ref, J_ref = ref.evaluate_batch(X)
    np.testing.assert_allclose(F, F_ref, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(J, J_ref, rtol=1e-13)
    assert p.has_hvp and p.hvp_by_differences


def test_difference_hvp_matches_the_closed_form_hessian_inside_and_at_the_box_edge():
    n = 4
    p = from_functions(ff_f, ff_jac, n, 2, lower=-1.0, upper=1.0)
    rng = np.random.default_rng(1)
    for _ in range(10):
        x, v = rng.uniform(-0.9, 0.9, n), rng.normal(size=n)
        np.testing.assert_allclose(p.hvp(x, v), ff_hessians(x) @ v, atol=1e-8)
    # At a corner: one-sided differences along v, coordinate by coordinate when v
    # leaves the box both ways (x_0 at its upper bound, x_1 at its lower one).
    x = np.array([1.0, -1.0, 0.2, 0.0])
    for v in (np.array([-1.0, 1.0, 0.5, 0.0]), np.array([1.0, 1.0, 0.0, 0.3])):
        np.testing.assert_allclose(p.hvp(x, v), ff_hessians(x) @ v, atol=1e-8)
    V = rng.normal(size=(3, n))
    X = np.tile(x, (3, 1))
    np.testing.assert_allclose(
        p.hvp_batch(X, V), np.einsum("ikl,nl->nik", ff_hessians(x), V), atol=1e-8
    )


def test_given_hvp_is_used_and_checked():
    p = from_functions(ff_f, ff_jac, 3, 2, lower=-1, upper=1, hvp=lambda x, v: ff_hessians(x) @ v)
    x, v = np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(p.hvp(x, v), ff_hessians(x) @ v, rtol=1e-15)
    assert not p.hvp_by_differences
    bad = from_functions(ff_f, ff_jac, 3, 2, lower=-1, upper=1, hvp=lambda x, v: np.ones(3))
    with pytest.raises(ValueError, match=r"hvp .*returned shape \(3,\).*shape \(2, 3\)"):
        bad.hvp(x, v)


def test_tracing_equals_tracing_the_builtin_zdt1():
    p, ref = from_functions(zdt1_f, zdt1_jac, 4, 2, lower=0.0, upper=1.0), ZDT1(n_var=4)
    rays = simplex_rays(2, 5)
    for method in ("tchebycheff", "epo"):
        out, want = trace(p, method, rays, seed=3), trace(ref, method, rays, seed=3)
        np.testing.assert_allclose(out.points, want.points, atol=1e-7)
        assert out.converged.all() == want.converged.all()
    # and the points are on the true front f_2 = 1 - sqrt(f_1) (closed form)
    np.testing.assert_allclose(out.points[:, 1], 1.0 - np.sqrt(out.points[:, 0]), atol=1e-7)


def test_continuation_walks_the_front_with_difference_hvps():
    a = np.array([0.5, 0.0, 0.0])
    p = from_functions(
        lambda x: np.array([(x - a) @ (x - a), (x + a) @ (x + a)]),
        lambda x: np.stack([2 * (x - a), 2 * (x + a)]),
        3,
        2,
        lower=-1.0,
        upper=1.0,
    )
    out = trace(p, "continuation", simplex_rays(2, 6), seed=0)
    # sqrt(f_1) + sqrt(f_2) = |a_1 - a_2| = 1 on the front
    np.testing.assert_allclose(np.sqrt(out.points).sum(axis=1), 1.0, atol=1e-6)
    assert np.ptp(out.points[:, 0]) > 0.9


def test_ideal_and_unknown_front():
    p = from_functions(ff_f, ff_jac, 2, 2, lower=-1, upper=1, ideal=-0.5, name="ff")
    np.testing.assert_array_equal(p.ideal_point, [-0.5, -0.5])
    assert repr(p) == "FunctionProblem('ff', n_var=2, n_obj=2)"
    with pytest.raises(NotImplementedError):
        p.front_distance([[0.1, 0.2]])
    with pytest.raises(AttributeError, match="immutable"):
        p.n_var = 3


def test_wrong_output_is_an_error_naming_the_function():
    def my_values(x):
        return np.array([x[0], x[1], 0.0])

    def nan_jacobian(x):
        return np.full((2, 2), np.nan)

    p = from_functions(my_values, ff_jac, 2, 2, lower=-1, upper=1)
    with pytest.raises(ValueError, match=r"f \(.*my_values\) returned shape \(3,\).*shape \(2,\)"):
        p.evaluate([0.0, 0.0])
    p = from_functions(ff_f, nan_jacobian, 2, 2, lower=-1, upper=1)
    with pytest.raises(ValueError, match=r"jacobian \(.*nan_jacobian\) returned nan.*not NaN"):
        p.evaluate([0.0, 0.0])
    p = from_functions(lambda x: np.array([np.inf, 0.0]), ff_jac, 2, 2, lower=-1, upper=1)
    with pytest.raises(ValueError, match=r"f \(.*lambda.*\) returned inf.*finite"):
        p.evaluate([0.0, 0.0])
    p = from_functions(lambda x: "ab", ff_jac, 2, 2, lower=-1, upper=1)
    with pytest.raises(TypeError, match=r"must return numbers of shape \(2,\); got str"):
        p.evaluate([0.0, 0.0])
    with pytest.raises(TypeError, match="jacobian must be callable"):
        from_functions(ff_f, np.eye(2), 2, 2, lower=-1, upper=1)
    with pytest.raises(ValueError, match="n_obj must be >= 2"):
        from_functions(ff_f, ff_jac, 2, 1, lower=-1, upper=1)
    with pytest.raises(ValueError, match="lower < upper"):
        from_functions(ff_f, ff_jac, 2, 2, lower=1, upper=-1)
    assert isinstance(from_functions(ff_f, ff_jac, 2, 2, lower=-1, upper=1), FunctionProblem)


# ------------------------------------------------------------------ pymoo
def pymoo_quadratics():
    """A vectorised pymoo problem that sets dF itself: f_{1,2} = |x -+ a|^2."""
    pymoo_problem = pytest.importorskip("pymoo.core.problem")

    class Quadratics(pymoo_problem.Problem):
        def __init__(self):
            super().__init__(n_var=3, n_obj=2, xl=-1.0, xu=1.0)
            self.a = np.array([0.5, 0.0, 0.0])

        def _evaluate(self, X, out, *args, **kwargs):
            D1, D2 = X - self.a, X + self.a
            out["F"] = np.stack([(D1**2).sum(1), (D2**2).sum(1)], axis=1)
            if "dF" in out:
                out["dF"] = np.stack([2 * D1, 2 * D2], axis=1)

    return Quadratics()


def test_pymoo_problem_with_df_is_traced_to_its_closed_form_front():
    p = from_pymoo(pymoo_quadratics())
    assert p.n_var == 3 and p.n_obj == 2
    np.testing.assert_array_equal(p.lower, -1.0)
    out = trace(p, "tchebycheff", simplex_rays(2, 5), seed=0)
    np.testing.assert_allclose(np.sqrt(out.points).sum(axis=1), 1.0, atol=1e-8)
    assert out.converged.all()


def test_pymoo_zdt1_with_autograd_gradients_equals_the_builtin_zdt1():
    pytest.importorskip("autograd")
    automatic = pytest.importorskip("pymoo.gradient.automatic")
    pymoo_problems = pytest.importorskip("pymoo.problems")
    p = from_pymoo(automatic.AutomaticDifferentiation(pymoo_problems.get_problem("zdt1", n_var=4)))
    X = np.random.default_rng(2).uniform(0.01, 1.0, size=(6, 4))
    F, J = p.evaluate_batch(X)
    F_ref, J_ref = ZDT1(n_var=4).evaluate_batch(X)
    np.testing.assert_allclose(F, F_ref, rtol=1e-13)
    np.testing.assert_allclose(J, J_ref, rtol=1e-12)


def test_pymoo_problem_without_gradients_is_refused_with_what_to_do():
    pymoo_problems = pytest.importorskip("pymoo.problems")
    with pytest.raises(ValueError, match=r"pymoo problem ZDT1 gives no gradients.*from_functions"):
        from_pymoo(pymoo_problems.get_problem("zdt1", n_var=4))
    with pytest.raises(ValueError, match=r"has 2 constraints"):
        from_pymoo(pymoo_problems.get_problem("bnh"))
    with pytest.raises(TypeError, match=r"pymoo\.core\.problem\.Problem"):
        from_pymoo(ZDT1())
