"""ZDT1-3: values against pymoo, analytic fronts, ZDT3's pieces, the x1 = 0 boundary."""

import itertools

import numpy as np
import pytest

from paretomtl.problems import ZDT1, ZDT2, ZDT3

FRONTS = {
    ZDT1: lambda f1: 1 - np.sqrt(f1),
    ZDT2: lambda f1: 1 - f1**2,
    ZDT3: lambda f1: 1 - np.sqrt(f1) - f1 * np.sin(10 * np.pi * f1),
}


@pytest.mark.parametrize("cls", [ZDT1, ZDT2, ZDT3])
def test_values_match_pymoo(cls):
    zdt = pytest.importorskip("pymoo.problems.multi.zdt")
    ours = cls()
    theirs = getattr(zdt, cls.__name__)(n_var=ours.n_var)
    X = np.random.default_rng(0).random((50, ours.n_var))
    X[0, 0] = 0.0  # the boundary, where the front starts
    np.testing.assert_allclose(
        ours.evaluate_batch(X)[0], theirs.evaluate(X), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("cls", [ZDT1, ZDT2, ZDT3])
@pytest.mark.parametrize("spacing", ["parameter", "arclength"])
def test_front_lies_on_the_analytic_curve(cls, spacing):
    F = cls().pareto_front(500, spacing=spacing)
    np.testing.assert_allclose(F[:, 1], FRONTS[cls](F[:, 0]), rtol=0, atol=1e-14)


@pytest.mark.parametrize("cls", [ZDT1, ZDT2, ZDT3])
def test_pareto_set_is_on_the_boundary(cls):
    X = cls(n_var=8).pareto_set(50)
    assert np.all(X[:, 1:] == 0.0)
    assert X[0, 0] == 0.0


def test_parameter_spacing_is_even_in_f1_as_pymoo():
    np.testing.assert_allclose(ZDT1().pareto_front(11)[:, 0], np.linspace(0, 1, 11))
    zdt = pytest.importorskip("pymoo.problems.multi.zdt")
    np.testing.assert_allclose(ZDT1().pareto_front(100), zdt.ZDT1().pareto_front(100), atol=1e-15)


def test_zdt3_pieces_are_exactly_the_nondominated_part_of_the_curve():
    pieces = ZDT3.pieces()
    pymoo_regions = [  # pymoo's constants, to 1e-7 (its second start is ~5e-8 high)
        (0.0, 0.0830015349),
        (0.182228780, 0.2577623634),
        (0.4093136748, 0.4538821041),
        (0.6183967944, 0.6525117038),
        (0.8233317983, 0.8518328654),
    ]
    np.testing.assert_allclose(pieces, pymoo_regions, atol=1e-7)
    h = FRONTS[ZDT3]
    x = np.linspace(0, 1, 400_001)
    y = h(x)
    running_min = np.minimum.accumulate(np.concatenate([[np.inf], y[:-1]]))
    nondominated = y < running_min
    inside = np.zeros_like(nondominated)
    for lo, hi in pieces:
        inside |= (x >= lo) & (x <= hi)
    # A grid sees a local minimum only at its nodes: disagreement is allowed within
    # one grid step of a piece's end.
    step = x[1] - x[0]
    ends = np.array(pieces).ravel()
    for xi in x[nondominated != inside]:
        assert np.min(np.abs(ends - xi)) <= step
    for (_, prev_hi), (lo, _) in itertools.pairwise(pieces):
        assert h(lo) < h(prev_hi) <= h(np.nextafter(lo, 0))  # starts are open, but barely


def test_zdt3_front_is_not_dominated_by_the_dense_curve():
    F = ZDT3().pareto_front(300)
    x = np.linspace(0, 1, 1_000_001)  # the whole curve f2 = h(f1), sorted by f1
    best_f2 = np.minimum.accumulate(FRONTS[ZDT3](x))  # least f2 among f1' <= x
    # a curve point with f1' <= f1 dominates f unless its f2' > f2 (or it is f itself)
    k = np.searchsorted(x, F[:, 0], side="right") - 1
    assert np.all(best_f2[k] >= F[:, 1] - 1e-12)
    # and the points are spread over all five pieces
    counts = [np.sum((F[:, 0] >= lo) & (F[:, 0] <= hi)) for lo, hi in ZDT3.pieces()]
    assert sum(counts) == 300 and min(counts) > 10


@pytest.mark.parametrize("cls", [ZDT1, ZDT3])
def test_derivative_is_minus_infinity_at_x1_zero(cls):
    p = cls(n_var=4)
    with np.errstate(all="raise"):
        values, jac = p.evaluate(np.zeros(4))
    assert np.all(np.isfinite(values))
    assert jac[1, 0] == -np.inf and np.all(np.isfinite(jac[1, 1:]))
    with pytest.raises(ValueError, match="unbounded at x"):
        p.hvp(np.zeros(4), np.ones(4))


def test_zdt2_is_smooth_at_x1_zero():
    p = ZDT2(n_var=4)
    assert np.all(np.isfinite(p.evaluate(np.zeros(4))[1]))
    assert np.all(np.isfinite(p.hvp(np.zeros(4), np.ones(4))))


def test_n_var_must_leave_a_distance_variable():
    with pytest.raises(ValueError, match="n_var must be >= 2"):
        ZDT1(n_var=1)
