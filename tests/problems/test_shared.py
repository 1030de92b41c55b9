"""Properties every registered problem must have: gradients, Hessian-vector products,
fronts, Pareto sets, input checks, immutability."""

import numpy as np
import pytest

from paretomtl.problems import Problem, available_problems, get_problem

# Small instances keep the finite differences fast; the defaults are checked too.
SMALL = {
    "paretomtl-toy": {"n_var": 5},
    "zdt1": {"n_var": 6},
    "zdt2": {"n_var": 6},
    "zdt3": {"n_var": 6},
    "dtlz2": {"n_var": 7},
    "convex-quadratic": {"n_var": 4},
}
NAMES = available_problems()


def small(name):
    return get_problem(name, **SMALL[name])


def interior_points(problem, n, seed):
    """Random points well inside the box (away from ZDT's x1 = 0 singularity)."""
    rng = np.random.default_rng(seed)
    width = problem.upper - problem.lower
    return problem.lower + width * rng.uniform(0.1, 0.9, size=(n, problem.n_var))


def central_jacobian(problem, x, h=1e-6):
    J = np.empty((problem.n_obj, problem.n_var))
    for k in range(problem.n_var):
        e = np.zeros(problem.n_var)
        e[k] = h
        J[:, k] = (problem.evaluate(x + e)[0] - problem.evaluate(x - e)[0]) / (2 * h)
    return J


def nondominated_mask(F):
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)  # [j, i]: row j dominates row i
    return ~dominated


def test_registry_lists_every_problem():
    assert set(NAMES) == set(SMALL)
    for name in NAMES:
        p = get_problem(name)
        assert isinstance(p, Problem) and p.name == name and p.paper


def test_registry_names_are_forgiving_and_unknown_names_listed():
    assert get_problem("ZDT_1".replace("_", "")).name == "zdt1"
    assert get_problem("Convex_Quadratic").name == "convex-quadratic"
    with pytest.raises(ValueError, match=r"unknown problem 'zdt9'.*zdt1"):
        get_problem("zdt9")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_defaults(name):
    p = get_problem(name)
    assert p.lower.shape == p.upper.shape == (p.n_var,)
    x = (p.lower + p.upper) / 2
    values, jac = p.evaluate(x)
    assert values.shape == (p.n_obj,) and jac.shape == (p.n_obj, p.n_var)
    assert p.pareto_front(7).shape == (7, p.n_obj)
    assert p.pareto_set(7).shape == (7, p.n_var)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_central_differences(name):
    p = small(name)
    for x in interior_points(p, 5, seed=1):
        np.testing.assert_allclose(p.evaluate(x)[1], central_jacobian(p, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_hvp_matches_differences_of_the_gradient(name):
    p = small(name)
    assert p.has_hvp
    rng = np.random.default_rng(2)
    h = 1e-5
    for x in interior_points(p, 5, seed=3):
        v = rng.normal(size=p.n_var)
        fd = (p.evaluate(x + h * v)[1] - p.evaluate(x - h * v)[1]) / (2 * h)
        np.testing.assert_allclose(p.hvp(x, v), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_batch_matches_single_points(name):
    p = small(name)
    X = interior_points(p, 4, seed=4)
    F, J = p.evaluate_batch(X)
    for i, x in enumerate(X):
        values, jac = p.evaluate(x)
        np.testing.assert_array_equal(F[i], values)
        np.testing.assert_array_equal(J[i], jac)


@pytest.mark.parametrize("name", NAMES)
def test_hvp_batch_matches_single_points(name):
    p = small(name)
    X = interior_points(p, 3, seed=6)
    V = np.random.default_rng(7).normal(size=X.shape)
    H = p.hvp_batch(X, V)
    assert H.shape == (3, p.n_obj, p.n_var)
    for k in range(3):
        np.testing.assert_array_equal(H[k], p.hvp(X[k], V[k]))
    with pytest.raises(ValueError, match=r"^V must have the shape of X"):
        p.hvp_batch(X, V[:2])
    with pytest.raises(ValueError, match=r"^X\[\(0, 0\)\] = .* outside the box"):
        p.hvp_batch(X - 2.0 * (p.upper - p.lower), V)


@pytest.mark.parametrize("name", NAMES)
def test_preference_points_are_on_the_front_and_meet_their_preference(name):
    p = small(name)
    R = np.random.default_rng(8).uniform(0.1, 1.0, size=(6, p.n_obj))
    F = p.preference_points(R)
    assert F.shape == R.shape
    np.testing.assert_allclose(p.front_distance(F), 0.0, atol=1e-8)
    P = R * (F - p.ideal_point)
    meets = np.isclose(P, P[:, :1], rtol=1e-10, atol=0.0).all(axis=1)
    assert meets.all() or name == "zdt3"  # ZDT3's rays may fall in a gap of its front
    with pytest.raises(ValueError, match=r"rays must be finite and > 0.*row 0"):
        p.preference_points(np.eye(p.n_obj))  # zeros: lift them first
    with pytest.raises(ValueError, match=r"rays must have shape"):
        p.preference_points(np.ones(p.n_obj))


@pytest.mark.parametrize("name", NAMES)
def test_front_pieces_are_sorted_and_disjoint(name):
    p = small(name)
    if p.n_obj != 2:
        with pytest.raises(NotImplementedError, match="parameter intervals"):
            p.front_pieces()
        return
    pieces = np.array(p.front_pieces())
    assert pieces.ndim == 2 and pieces.shape[1] == 2
    assert (pieces[:, 0] < pieces[:, 1]).all() and (pieces[1:, 0] >= pieces[:-1, 1]).all()


def test_a_problem_without_a_known_front_has_no_preference_points():
    class Bare(Problem):
        name = "bare"

        def __init__(self):
            super().__init__(2, 2, 0.0, 1.0)

    with pytest.raises(NotImplementedError):
        Bare().front_pieces()
    with pytest.raises(NotImplementedError):
        Bare().preference_points([[1.0, 1.0]])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_points", [1, 2, 5, 200])
def test_front_is_nondominated_and_the_set_maps_onto_it(name, n_points):
    p = small(name)
    for spacing in p.front_spacings:
        F = p.pareto_front(n_points, spacing=spacing)
        X = p.pareto_set(n_points, spacing=spacing)
        assert np.all(nondominated_mask(F))
        assert np.all((X >= p.lower) & (X <= p.upper))
        np.testing.assert_allclose(p.evaluate_batch(X)[0], F, rtol=1e-12, atol=1e-12)
        if p.n_obj == 2 and n_points > 1:
            assert np.all(np.diff(F[:, 0]) > 0), "two-objective fronts are sorted by f1"


@pytest.mark.parametrize("name", NAMES)
def test_pareto_points_are_not_improved_by_random_feasible_points(name):
    # No random point of the box dominates a front point (a weak, independent check
    # that the front is the true one, not just self-consistent).
    p = small(name)
    F = p.pareto_front(50)
    rng = np.random.default_rng(5)
    G = p.evaluate_batch(p.lower + (p.upper - p.lower) * rng.random((2000, p.n_var)))[0]
    dominated = np.all(G[:, None, :] <= F[None, :, :], axis=2) & np.any(
        G[:, None, :] < F[None, :, :], axis=2
    )
    assert not dominated.any()


@pytest.mark.parametrize("name", NAMES)
def test_arclength_spacing_is_even_for_curves(name):
    p = small(name)
    if "arclength" not in p.front_spacings:
        pytest.skip("not a curve")
    F = p.pareto_front(101, spacing="arclength")
    steps = np.linalg.norm(np.diff(F, axis=0), axis=1)
    if name == "zdt3":  # gaps between pieces are skipped, not walked
        steps = steps[steps < 2 * np.median(steps)]
    assert steps.max() / steps.min() < 1.05


@pytest.mark.parametrize("name", NAMES)
def test_bad_points_name_the_argument(name):
    p = small(name)
    x = (p.lower + p.upper) / 2
    with pytest.raises(ValueError, match=r"^x must have shape"):
        p.evaluate(x[:-1])
    with pytest.raises(ValueError, match=r"^x must have shape"):
        p.evaluate(x[None, :])
    bad = x.copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match=r"^x\[1\] is nan"):
        p.evaluate(bad)
    bad[1] = np.inf
    with pytest.raises(ValueError, match=r"^x\[1\] is inf"):
        p.evaluate(bad)
    out = x.copy()
    out[0] = p.upper[0] + 0.5
    with pytest.raises(ValueError, match=r"^x\[0\] = .* outside the box"):
        p.evaluate(out)
    with pytest.raises(ValueError, match=r"^X must have shape"):
        p.evaluate_batch(x)
    Xbad = np.tile(x, (3, 1))
    Xbad[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"^X\[\(2, 0\)\] is nan"):
        p.evaluate_batch(Xbad)
    with pytest.raises(ValueError, match=r"^v must have shape"):
        p.hvp(x, x[:-1])
    with pytest.raises(ValueError, match=r"^v\[0\] is nan"):
        p.hvp(x, np.full_like(x, np.nan))


@pytest.mark.parametrize("name", NAMES)
def test_bad_front_arguments_name_the_argument(name):
    p = small(name)
    with pytest.raises(ValueError, match="n_points"):
        p.pareto_front(0)
    with pytest.raises(TypeError, match="n_points"):
        p.pareto_set(2.5)
    with pytest.raises(ValueError, match="spacing"):
        p.pareto_front(5, spacing="nope")
    with pytest.raises((TypeError, ValueError), match="n_var"):
        get_problem(name, n_var=0)


@pytest.mark.parametrize("name", NAMES)
def test_problems_are_immutable(name):
    p = small(name)
    with pytest.raises(AttributeError, match="immutable"):
        p.n_var = 3
    with pytest.raises(ValueError):
        p.lower[0] = -5.0
    values = p.evaluate((p.lower + p.upper) / 2)[0]
    values[:] = 7.0  # results are the caller's own arrays
    assert not np.any(p.evaluate((p.lower + p.upper) / 2)[0] == 7.0)
