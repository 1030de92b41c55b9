"""The registry: names, lookups and the shared contract of gradient methods."""

import numpy as np
import pytest

from paretomtl import solvers
from paretomtl.solvers import SolverResult, available, get, info


def test_founding_methods_are_registered():
    for name in ("mgda", "pareto-step", "pcgrad", "gradnorm"):
        assert name in available()
        assert info(name).paper
    assert get("mgda") is solvers.mgda
    assert get("pareto_step") is solvers.pareto_step  # underscores accepted
    assert get("GradNorm") is solvers.GradNorm
    assert set(available("gradient")) >= {"mgda", "pareto-step", "pcgrad"}
    assert available("stateful") == ("gradnorm",)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"available: .*mgda"):
        get("mgda2")


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        solvers.register("mgda", kind="gradient", paper="", summary="")(lambda: None)


@pytest.mark.parametrize("name", available("gradient"))
def test_gradient_methods_share_the_contract(name):
    rng = np.random.default_rng(1)
    J = rng.standard_normal((4, 9))
    res = get(name)(J)
    assert isinstance(res, SolverResult)
    assert res.weights.shape == (4,)
    np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.gram, J @ J.T, rtol=1e-12)
    gram_only = get(name)(gram=J @ J.T, **({"seed": 0} if name == "pcgrad" else {}))
    assert gram_only.direction is None
    with pytest.raises(ValueError, match="grads"):
        get(name)(np.ones(3))
