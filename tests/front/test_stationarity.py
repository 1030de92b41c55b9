"""Bound-aware Pareto stationarity: zero on the known Pareto sets, positive off them,
an upper bound of the exact (KKT) measure, and its invariances."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paretomtl.front import bound_aware_stationarity
from paretomtl.front.stationarity import stationarity_from_jacobian
from paretomtl.problems import DTLZ2, ZDT1, ZDT2, ZDT3, ConvexQuadratic, ParetoMTLToy, Problem


class Linear(Problem):
    """f_i(x) = c_i . x on a box: a problem with a prescribed constant Jacobian."""

    name = "linear-test"

    def __init__(self, jacobian, lower, upper):
        self.jacobian = np.asarray(jacobian, dtype=float)
        super().__init__(self.jacobian.shape[1], self.jacobian.shape[0], lower, upper)

    def _evaluate(self, X):
        J = np.broadcast_to(self.jacobian, (X.shape[0], *self.jacobian.shape))
        return X @ self.jacobian.T, J.copy()


SETS = [ZDT1(n_var=10), ZDT2(n_var=10), ZDT3(n_var=10), ConvexQuadratic(), ParetoMTLToy(), DTLZ2()]


@pytest.mark.parametrize("problem", SETS, ids=repr)
def test_zero_on_the_pareto_set(problem):
    for x in problem.pareto_set(33):
        assert bound_aware_stationarity(problem, x).value < 1e-24


def test_zdt1_end_with_infinite_derivative():
    # At x1 = 0, d f2 / d x1 = -inf: that gradient gets weight 0, f1's projected one is 0.
    problem = ZDT1(n_var=4)
    st0 = bound_aware_stationarity(problem, np.zeros(4))
    assert st0.value == 0.0
    np.testing.assert_array_equal(st0.weights, [1.0, 0.0])


@pytest.mark.parametrize("problem", [ZDT1(n_var=10), ZDT2(n_var=10)], ids=repr)
def test_positive_off_the_zdt_set(problem):
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = np.concatenate([[rng.uniform(0.05, 0.95)], rng.uniform(0.0, 0.3, 9)])
        x[rng.integers(1, 10)] = 0.1  # at least one tail coordinate off its bound
        assert bound_aware_stationarity(problem, x).value > 1e-3


def test_positive_off_the_interior_sets():
    quad = ConvexQuadratic(n_var=4)
    toy = ParetoMTLToy(n_var=4)
    shift = np.array([0.3, -0.3, 0.0, 0.0])  # orthogonal to the segments' direction
    for x in quad.pareto_set(9)[1:-1]:
        assert bound_aware_stationarity(quad, x + shift).value > 1e-3
    for x in toy.pareto_set(9)[1:-1]:
        assert bound_aware_stationarity(toy, x + shift).value > 1e-3


def test_sign_convention_at_the_bounds():
    # One objective, x at its lower bound: a positive gradient asks to decrease x (blocked).
    lower_blocked = Linear([[1.0, 0.0]], [0.0, -1.0], [1.0, 1.0])
    assert bound_aware_stationarity(lower_blocked, [0.0, 0.0]).value == 0.0
    assert bound_aware_stationarity(lower_blocked, [1.0, 0.0]).value == 1.0
    upper_blocked = Linear([[-2.0, 0.0]], [0.0, -1.0], [1.0, 1.0])
    assert bound_aware_stationarity(upper_blocked, [1.0, 0.0]).value == 0.0
    assert bound_aware_stationarity(upper_blocked, [0.0, 0.0]).value == 4.0


def test_the_surrogate_can_miss_a_critical_point_but_the_kkt_residual_does_not():
    # g1 = -g2: critical everywhere (1/2 g1 + 1/2 g2 = 0), but at x1's lower bound the
    # per-gradient projection removes g1's first component: theta = 0.2 (docstring).
    problem = Linear([[1.0, 1.0], [-1.0, -1.0]], [0.0, -1.0], [1.0, 1.0])
    s = bound_aware_stationarity(problem, [0.0, 0.0])
    assert s.value == pytest.approx(0.2)
    np.testing.assert_allclose(s.weights, [0.6, 0.4])
    assert s.kkt_residual <= s.value
    assert bound_aware_stationarity(problem, [0.5, 0.0]).value == pytest.approx(0.0, abs=1e-30)


def _exact_measure(J, at_lower, at_upper):
    """min over the simplex of ||Pi(sum_i lam_i g_i)||^2, by cvxpy."""
    cp = pytest.importorskip("cvxpy")
    K, n = J.shape
    lam = cp.Variable(K)
    v = J.T @ lam
    parts = []
    for k in range(n):
        if at_lower[k]:
            parts.append(cp.minimum(v[k], 0))
        elif at_upper[k]:
            parts.append(cp.maximum(v[k], 0))
        else:
            parts.append(v[k])
    prob = cp.Problem(
        cp.Minimize(cp.sum([cp.square(p) for p in parts])), [lam >= 0, cp.sum(lam) == 1]
    )
    prob.solve()
    return prob.value


@given(
    arrays(np.float64, (3, 4), elements=st.floats(-3, 3)),
    arrays(np.int8, (4,), elements=st.integers(-1, 1)),
)
def test_kkt_residual_le_value_with_equality_without_sign_conflicts(J, where):
    at_lower, at_upper = where == -1, where == 1
    s = stationarity_from_jacobian(J, at_lower, at_upper)
    assert s.kkt_residual <= s.value + 1e-12
    conflict = ((J > 0).any(axis=0) & (J < 0).any(axis=0)) & (at_lower | at_upper)
    if not conflict.any():  # Pi is then linear on the gradients: the two coincide
        assert s.kkt_residual == pytest.approx(s.value, rel=1e-9, abs=1e-12)


def test_exact_measure_le_kkt_residual():
    rng = np.random.default_rng(0)
    for _ in range(12):
        J = rng.normal(size=(3, 4))
        where = rng.integers(-1, 2, size=4)
        s = stationarity_from_jacobian(J, where == -1, where == 1)
        assert _exact_measure(J, where == -1, where == 1) <= s.kkt_residual + 1e-6


@given(
    arrays(np.float64, (3, 5), elements=st.floats(-3, 3)),
    arrays(np.int8, (5,), elements=st.integers(-1, 1)),
    st.permutations(range(3)),
    st.floats(1e-3, 1e3),
)
def test_permutation_and_scale(J, where, perm, c):
    at_lower, at_upper = where == -1, where == 1
    base = stationarity_from_jacobian(J, at_lower, at_upper)
    permuted = stationarity_from_jacobian(J[list(perm)], at_lower, at_upper)
    scaled = stationarity_from_jacobian(c * J, at_lower, at_upper)
    tol = 1e-9 * max(1.0, float((J**2).sum()))
    assert permuted.value == pytest.approx(base.value, rel=1e-7, abs=tol)
    assert scaled.value == pytest.approx(c**2 * base.value, rel=1e-7, abs=c**2 * tol)
    np.testing.assert_allclose(permuted.direction, base.direction, atol=1e-6 * (1 + abs(J).max()))


def test_nan_gradient_is_rejected():
    with pytest.raises(ValueError, match="objective 1"):
        stationarity_from_jacobian(
            np.array([[1.0, 0.0], [np.nan, 0.0]]), np.zeros(2, bool), np.zeros(2, bool)
        )
