"""The registry: names, lookups and the shared contract of gradient methods."""

import numpy as np
import pytest

from paretomtl import solvers, weighting
from paretomtl.solvers import SolverResult, available, get, info


def test_founding_methods_are_registered():
    for name in ("mgda", "pareto-step", "pcgrad"):
        assert name in available()
        assert info(name).paper
    assert get("mgda") is solvers.mgda
    assert get("pareto_step") is solvers.pareto_step  # underscores accepted
    assert set(available("gradient")) >= {"mgda", "pareto-step", "pcgrad"}
    # GradNorm, the fourth founding method, is a loss weighting: registered there,
    # still importable from here.
    assert weighting.get("GradNorm") is solvers.GradNorm is weighting.GradNorm
    assert weighting.available("gradient-norm") == ("gradnorm",)


def test_each_family_lists_only_its_own_kind():
    assert not set(available()) & set(weighting.available())
    assert set(available()) == set(available("gradient")) | set(available("stateful-gradient"))
    for name in weighting.available():
        with pytest.raises(ValueError, match=f"'{name}' is in paretomtl.weighting"):
            get(name)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"available: .*mgda"):
        get("mgda2")


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        solvers.register("mgda", kind="gradient", paper="", summary="")(lambda: None)
    with pytest.raises(ValueError, match="kind must be one of"):
        solvers.register("new", kind="loss", paper="", summary="")


@pytest.mark.parametrize("name", available("gradient"))
def test_gradient_methods_share_the_contract(name):
    rng = np.random.default_rng(1)
    J = rng.standard_normal((4, 9))
    losses = np.linspace(1.0, 2.0, 4)  # read only by the methods that take them (EPO)
    res = solvers.method(name)(J, losses=losses)
    assert isinstance(res, SolverResult)
    assert res.weights.shape == (4,)
    np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.gram, J @ J.T, rtol=1e-12)
    gram_only = solvers.method(name, seed=0) if name == "pcgrad" else solvers.method(name)
    assert gram_only(gram=J @ J.T, losses=losses).direction is None
    with pytest.raises(ValueError, match="grads"):
        solvers.method(name)(np.ones(3), losses=losses)


def test_the_object_form_checks_its_options_and_keeps_its_generator():
    with pytest.raises(ValueError, match="valid options: max_iter, method, tol"):
        solvers.method("mgda", tolerance=1e-3)
    J = np.random.default_rng(2).standard_normal((5, 7))
    pcgrad = solvers.method("pcgrad", seed=3)
    first, second = pcgrad(J), pcgrad(J)  # one generator: fresh orders at each call
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(first.weights, solvers.pcgrad(J, seed=rng).weights)
    np.testing.assert_array_equal(second.weights, solvers.pcgrad(J, seed=rng).weights)
    with pytest.raises(ValueError, match="num_tasks"):
        solvers.method("gradvac")
    assert solvers.method("gradvac", num_tasks=5, beta=0.5).beta == 0.5


def test_asking_for_another_familys_kind_names_its_place():
    with pytest.raises(ValueError, match=r"'loss' methods are in paretomtl.weighting"):
        available("loss")
    with pytest.raises(ValueError, match=r"'gradnorm' is in paretomtl.weighting"):
        info("gradnorm")
