"""paretomtl.adapters.torch problem(): autograd derivatives equal closed forms and numpy ones."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl.adapters.torch import problem  # noqa: E402
from paretomtl.front import simplex_rays, trace  # noqa: E402
from paretomtl.problems.custom import from_functions  # noqa: E402

# Fonseca-Fleming in numpy with closed-form derivatives (f, Jacobian, the parts d, e).
from tests.problems.test_custom import ff_f, ff_jac, ff_parts  # noqa: E402


def ff_torch(x):
    a = 1.0 / math.sqrt(x.numel())
    return torch.stack(
        [1.0 - torch.exp(-((x - a) ** 2).sum()), 1.0 - torch.exp(-((x + a) ** 2).sum())]
    )


def ff_hvp(x, v):
    return np.stack([2.0 * e * (v - 2.0 * d * (d @ v)) for d, e in ff_parts(x)])


def test_values_jacobian_hvp_equal_the_closed_forms():
    n = 3
    p = problem(ff_torch, n, lower=-2.0, upper=2.0)
    assert (p.n_var, p.n_obj) == (n, 2) and not p.hvp_by_differences
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, v = rng.uniform(-1.5, 1.5, n), rng.normal(size=n)
        F, J = p.evaluate(x)
        np.testing.assert_allclose(F, ff_f(x), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(J, ff_jac(x), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(p.hvp(x, v), ff_hvp(x, v), rtol=1e-12, atol=1e-14)


def test_autograd_hvp_agrees_with_differences_of_the_autograd_jacobian():
    p = problem(ff_torch, 4, lower=-2.0, upper=2.0)
    fd = from_functions(
        lambda x: p.evaluate(x)[0], lambda x: p.evaluate(x)[1], 4, 2, lower=-2.0, upper=2.0
    )
    rng = np.random.default_rng(1)
    X, V = rng.uniform(-1, 1, (4, 4)), rng.normal(size=(4, 4))
    np.testing.assert_allclose(p.hvp_batch(X, V), fd.hvp_batch(X, V), atol=1e-8)


def test_tracing_the_torch_problem_equals_tracing_the_numpy_one():
    lo, hi = -4.0, 4.0
    pt = problem(ff_torch, 3, lower=lo, upper=hi)
    pn = from_functions(ff_f, ff_jac, 3, 2, lower=lo, upper=hi, hvp=ff_hvp)
    rays = simplex_rays(2, 5)
    for method in ("tchebycheff", "continuation"):
        out_t = trace(pt, method, rays, x0=np.zeros(3))
        out_n = trace(pn, method, rays, x0=np.zeros(3))
        np.testing.assert_allclose(out_t.points, out_n.points, atol=1e-9)
    # the true front: F(s) = (1 - exp(-(s - 1)^2), 1 - exp(-(s + 1)^2)), s in [-1, 1]
    out = trace(pt, "tchebycheff", rays, x0=np.zeros(3))
    s = np.sqrt(3) * out.xs.mean(axis=1)
    np.testing.assert_allclose(out.xs, np.repeat(s[:, None] / np.sqrt(3), 3, axis=1), atol=1e-7)
    front = np.stack([1 - np.exp(-((s - 1) ** 2)), 1 - np.exp(-((s + 1) ** 2))], axis=1)
    np.testing.assert_allclose(out.points, front, atol=1e-12)
    np.testing.assert_allclose(out.points[2], [1 - math.exp(-1)] * 2, atol=1e-8)


def test_float32_and_bad_functions():
    p = problem(ff_torch, 2, lower=-1.0, upper=1.0, dtype=torch.float32)
    F, J = p.evaluate([0.1, 0.2])
    assert F.dtype == np.float64
    np.testing.assert_allclose(J, ff_jac(np.array([0.1, 0.2])), rtol=1e-5)
    with pytest.raises(TypeError, match=r"fn \(.*<lambda>\) must return a torch.Tensor"):
        problem(lambda x: [1.0, 2.0], 2, lower=-1.0, upper=1.0)
    with pytest.raises(ValueError, match=r"shape \(K,\); got \(2, 1\)"):
        problem(lambda x: torch.stack([x.sum(), x.prod()])[:, None], 2, lower=-1.0, upper=1.0)
    with pytest.raises(TypeError, match="dtype must be a floating"):
        problem(ff_torch, 2, lower=-1.0, upper=1.0, dtype=torch.int64)
