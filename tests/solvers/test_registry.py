"""The registry: names, lookups and the shared contract of gradient methods."""

import inspect

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


def needs_grads(name):
    return bool(getattr(get(name), "needs_grads", False))


def build(name, K):
    """The method as an object; random ones (a ``seed`` parameter) get seed=0."""
    entry = info(name)
    params = inspect.signature(entry.obj).parameters
    options = {"seed": 0} if "seed" in params else {}
    if entry.kind == "stateful-gradient":
        return solvers.method(name, num_tasks=K, **options)
    return solvers.method(name, **options)


def call(method, grads=None, *, gram=None, losses=None):
    """``method(grads, gram=gram)``, with ``losses`` where its signature has them."""
    params = inspect.signature(method).parameters
    extra = {"losses": losses} if "losses" in params else {}
    return method(grads, gram=gram, **extra)


METHODS = available()
GRADS_METHODS = [name for name in METHODS if needs_grads(name)]


@pytest.mark.parametrize("name", METHODS)
def test_gradient_methods_share_the_contract(name):
    rng = np.random.default_rng(1)
    K, M = 4, 9
    J = rng.standard_normal((K, M))
    losses = np.linspace(1.0, 2.0, K)  # read only by the methods that take them (EPO)
    res = call(build(name, K), J, losses=losses)
    assert isinstance(res, SolverResult)
    assert res.direction.shape == (M,) and res.direction.dtype == np.float64
    assert np.isfinite(res.direction).all()
    np.testing.assert_allclose(res.gram, J @ J.T, rtol=1e-12)
    if res.weights is None:  # only a method on the K x M gradients may have no weights
        assert needs_grads(name)
    else:
        assert res.weights.shape == (K,) and np.isfinite(res.weights).all()
        np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-12, atol=1e-14)
    # The same seed, and a Gram matrix given besides the gradients: the same answer.
    again = call(build(name, K), J, gram=J @ J.T, losses=losses)
    np.testing.assert_array_equal(again.direction, res.direction)
    if needs_grads(name):
        with pytest.raises(ValueError, match="needs grads"):
            call(build(name, K), gram=J @ J.T, losses=losses)
    else:
        gram_only = call(build(name, K), gram=J @ J.T, losses=losses)
        assert gram_only.direction is None
        np.testing.assert_allclose(gram_only.weights, res.weights, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="grads"):
        call(build(name, K), np.ones(3), losses=losses)
    with pytest.raises(ValueError, match="gram does not match grads"):
        call(build(name, K), J, gram=np.eye(K), losses=losses)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_gradients_give_a_float32_direction(name, dtype):
    J = np.random.default_rng(2).standard_normal((3, 6))
    losses = np.array([1.0, 1.5, 2.0])
    low = call(build(name, 3), J.astype(dtype), losses=losses)
    assert low.direction.dtype == np.float32
    reference = call(build(name, 3), J.astype(dtype).astype(np.float64), losses=losses)
    scale = np.abs(reference.direction).max()
    # float32 Gram products (about 1e-7 relative) may move iterative weights further.
    np.testing.assert_allclose(low.direction, reference.direction, atol=1e-3 * scale)


def test_the_k_by_m_methods_declare_it_and_solver_passes_it_on():
    assert {"graddrop", "trimmed-mean"} <= set(GRADS_METHODS)
    assert solvers.method("graddrop").needs_grads is True
    assert solvers.method("mgda").needs_grads is False
    assert not needs_grads("pcgrad")


def test_the_object_form_checks_its_options_and_keeps_its_generator():
    unknown = r"unknown option .tolerance. for mgda; valid options: .*tol"
    with pytest.raises(ValueError, match=unknown):
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
