"""The Pareto MTL toy: closed-form front, the authors' front, the segment Pareto set."""

import numpy as np

from paretomtl.problems import ParetoMTLToy


def on_front(F):
    return np.sqrt(-np.log1p(-F[:, 0])) + np.sqrt(-np.log1p(-F[:, 1]))


def test_defaults_follow_the_authors_code():
    p = ParetoMTLToy()
    assert p.n_var == 20
    assert np.all(p.lower == -1) and np.all(p.upper == 1)


def test_front_closed_form():
    for spacing in ("parameter", "arclength"):
        np.testing.assert_allclose(on_front(ParetoMTLToy().pareto_front(300, spacing=spacing)), 2.0)


def test_authors_front_lies_on_ours():
    # The authors' create_pf(): x = (x1, x1) for x1 in linspace(-1/sqrt 2, 1/sqrt 2).
    p = ParetoMTLToy(n_var=2)
    x1 = np.linspace(-1 / np.sqrt(2), 1 / np.sqrt(2), 50)
    F = p.evaluate_batch(np.stack([x1, x1], axis=1))[0]
    np.testing.assert_allclose(on_front(F), 2.0)


def test_pareto_set_is_the_segment_between_the_two_minimisers():
    p = ParetoMTLToy(n_var=4)
    X = p.pareto_set(5)
    np.testing.assert_allclose(X[0], np.full(4, 0.5))  # argmin f1 = 1/sqrt(d)
    np.testing.assert_allclose(X[-1], np.full(4, -0.5))
    assert np.allclose(X, X[:, :1])  # all coordinates equal
    np.testing.assert_allclose(p.evaluate(X[0])[1][0], 0.0, atol=1e-15)


def test_single_variable_set_touches_the_box():
    p = ParetoMTLToy(n_var=1)
    np.testing.assert_allclose(p.pareto_set(2)[:, 0], [1.0, -1.0])
