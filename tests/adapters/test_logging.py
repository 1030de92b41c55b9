"""StepInfo flattened to named scalars: the names, and the values against an independent
route (the per-task gradients built by hand, the moving averages computed by hand)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters.logging import flatten  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402
from tests.adapters.test_torch import Net, data, explicit_jacobian  # noqa: E402

PAIRS = ["0-1", "0-2", "1-2"]


def cosines_of(J):
    n = np.linalg.norm(J, axis=1)
    return (J @ J.T) / np.outer(n, n), n


def step(agg, net, x, ys):
    net.zero_grad()
    losses, _ = net.losses(x, ys)
    J = explicit_jacobian(losses, net.shared())
    values = [float(v.detach()) for v in losses]
    return agg.backward(losses, net.shared()), J, values


def test_names_and_values_of_a_tracked_gradient_step():
    net, (x, ys) = Net(), data()
    agg = Aggregator("mgda", track_conflicts={"beta1": 0.9, "beta2": 0.999})
    info, J, values = step(agg, net, x, ys)
    out = flatten(info)
    expected_keys = (
        {f"mtl/weight/{i}" for i in range(3)}
        | {f"mtl/loss/{i}" for i in range(3)}
        | {f"mtl/grad_norm/{i}" for i in range(3)}
        | {f"mtl/cosine/{p}" for p in PAIRS}
        | {f"mtl/conflicts/{f}/{p}" for f in ("mean_cosine", "cosine_std", "conflict_frequency")
           for p in PAIRS}
        | {"mtl/conflicts/step", "mtl/converged", "mtl/iterations", "mtl/objective",
           "mtl/kkt_residual", "mtl/skipped"}
    )  # fmt: skip
    assert set(out) == expected_keys
    assert all(type(v) is float for v in out.values())
    C, norms = cosines_of(J)
    reference = solvers.mgda(J)
    for i in range(3):
        assert out[f"mtl/weight/{i}"] == pytest.approx(reference.weights[i], rel=1e-6, abs=1e-9)
        assert out[f"mtl/loss/{i}"] == pytest.approx(values[i], rel=1e-15)
        assert out[f"mtl/grad_norm/{i}"] == pytest.approx(norms[i], rel=1e-6)
    for p in PAIRS:
        i, j = map(int, p.split("-"))
        assert out[f"mtl/cosine/{p}"] == pytest.approx(C[i, j], abs=1e-6)
        # after one step the bias-corrected averages are this step's values
        assert out[f"mtl/conflicts/mean_cosine/{p}"] == pytest.approx(C[i, j], abs=1e-6)
        assert out[f"mtl/conflicts/cosine_std/{p}"] == pytest.approx(0.0, abs=1e-6)
        assert out[f"mtl/conflicts/conflict_frequency/{p}"] == float(C[i, j] < 0)
    assert out["mtl/conflicts/step"] == 1.0
    assert out["mtl/skipped"] == 0.0 and out["mtl/converged"] == 1.0
    assert out["mtl/objective"] == pytest.approx(reference.objective, rel=1e-6)

    with torch.no_grad():  # a second, different step: the averages by hand
        for p in net.parameters():
            if p.grad is not None:
                p -= 0.3 * p.grad
    info2, J2, _ = step(agg, net, x, ys)
    out2 = flatten(info2)
    C2, _ = cosines_of(J2)
    b1, b2 = 0.9, 0.999
    for p in PAIRS:
        i, j = map(int, p.split("-"))
        c1, c2 = C[i, j], C2[i, j]
        m = ((1 - b1) * b1 * c1 + (1 - b1) * c2) / (1 - b1**2)
        v = ((1 - b2) * b2 * c1**2 + (1 - b2) * c2**2) / (1 - b2**2)
        f = ((1 - b1) * b1 * (c1 < 0) + (1 - b1) * (c2 < 0)) / (1 - b1**2)
        assert out2[f"mtl/conflicts/mean_cosine/{p}"] == pytest.approx(m, abs=1e-6)
        assert out2[f"mtl/conflicts/cosine_std/{p}"] == pytest.approx(
            np.sqrt(max(v - m * m, 0.0)), abs=1e-5
        )
        assert out2[f"mtl/conflicts/conflict_frequency/{p}"] == pytest.approx(f, abs=1e-12)
    assert out2["mtl/conflicts/step"] == 2.0


def test_task_names_and_prefix():
    net, (x, ys) = Net(), data()
    info, _, values = step(Aggregator("pcgrad", seed=0), net, x, ys)
    out = flatten(info, prefix="train.", names=["depth", "seg", "normal"])
    assert out["train.loss/seg"] == pytest.approx(values[1], rel=1e-15)
    assert {
        "train.cosine/depth-seg",
        "train.cosine/depth-normal",
        "train.cosine/seg-normal",
    } <= set(out)
    assert not any(k.startswith("mtl/") for k in out)
    assert all(k.startswith("train.") for k in out)
    bare = flatten(info, prefix="")
    assert "weight/0" in bare and "skipped" in bare


def test_skipped_step_has_no_weights():
    net, (x, ys) = Net(), data()
    losses, _ = net.losses(x, ys)
    losses[1] = losses[1] * float("nan")
    info = Aggregator("mgda", on_nonfinite="skip").backward(losses, net.shared())
    out = flatten(info)
    assert out["mtl/skipped"] == 1.0
    assert not any(k.startswith("mtl/weight/") for k in out)
    assert np.isnan(out["mtl/loss/1"]) and np.isfinite(out["mtl/loss/0"])


def test_loss_weighting_and_direction_only_methods():
    net, (x, ys) = Net(), data()
    info, _, _ = step(Aggregator("live-loss"), net, x, ys)
    out = flatten(info)
    assert {f"mtl/weight/{i}" for i in range(3)} <= set(out)
    assert not any("cosine" in k or "grad_norm" in k or "converged" in k for k in out)
    np.testing.assert_allclose([out[f"mtl/weight/{i}"] for i in range(3)], info.weights)

    info, J, _ = step(Aggregator("graddrop", seed=0), net, x, ys)
    out = flatten(info)
    assert not any(k.startswith("mtl/weight/") for k in out)  # GradDrop has no weights
    np.testing.assert_allclose(
        [out[f"mtl/grad_norm/{i}"] for i in range(3)], np.linalg.norm(J, axis=1), rtol=1e-6
    )


def test_a_solver_result_flattens_too():
    J = np.array([[1.0, 0.0], [-0.5, 1.0], [0.0, 2.0]])
    res = solvers.mgda(J)
    out = flatten(res, prefix="")
    C, norms = cosines_of(J)
    assert out["weight/2"] == res.weights[2]
    assert out["grad_norm/1"] == pytest.approx(norms[1], rel=1e-15)
    assert out["cosine/0-1"] == pytest.approx(C[0, 1], rel=1e-15)
    assert out["converged"] == 1.0 and "loss/0" not in out and "skipped" not in out


def test_bad_arguments_are_named():
    J = np.eye(2)
    res = solvers.mgda(J)
    with pytest.raises(ValueError, match="names has 3 entries for 2 tasks"):
        flatten(res, names=["a", "b", "c"])
    with pytest.raises(ValueError, match="distinct"):
        flatten(res, names=["a", "a"])
    with pytest.raises(TypeError, match="names"):
        flatten(res, names="ab")
    with pytest.raises(TypeError, match="prefix"):
        flatten(res, prefix=None)
    with pytest.raises(TypeError, match="StepInfo"):
        flatten({"weights": [0.5, 0.5]})
