"""paretomtl's methods through TorchJD's own machinery equal paretomtl's own answers.

Every registered gradient method, stateless and stateful, on random and hard matrices:
the weights of ``paretomtl.adapters.torchjd.weighting`` (a TorchJD ``Weighting`` on the
Gramian) and the ``.grad`` that TorchJD's ``backward`` + ``jac_to_grad`` write through
``paretomtl.adapters.torchjd.aggregator`` equal the numpy solver's weights and
direction within 1e-6 (relative); stateful methods over several steps, against the
same class driven by hand. A small model trained one step with TorchJD's
``mtl_backward`` (and the ``autogram`` engine) gets the same gradients as
:class:`paretomtl.adapters.torch.Aggregator`.
"""

import copy
import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchjd")

from torchjd.aggregation import Aggregator as JDAggregator  # noqa: E402
from torchjd.aggregation import GramianWeightedAggregator, Weighting  # noqa: E402
from torchjd.autogram import Engine  # noqa: E402
from torchjd.autojac import backward as jd_backward  # noqa: E402
from torchjd.autojac import jac_to_grad, mtl_backward  # noqa: E402

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters import torchjd as ptjd  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402
from tests.solvers.test_every_method_hard import (  # noqa: E402
    FAMILIES,
    MIN_TASKS,
    OPTIONS_FOR,
    hard_jacobian,
    takes,
)

METHODS = solvers.available()
NEEDS_GRADS = {n for n in METHODS if getattr(solvers.get(n), "needs_grads", False)}
SIZES = (2, 5)
LARGE = {"conflicting": 17, "scaled": 17}  # one larger K for these families
STEPS = 3
RTOL = 1e-6


def _options(name, K):
    return OPTIONS_FOR.get(name, lambda K: {})(K)


def _seeded(name):
    entry = solvers.info(name)
    params = inspect.signature(entry.obj).parameters
    return "seed" in params


def reference(name, K):
    """The numpy method built by hand, with the seed the adapter objects get."""
    entry = solvers.info(name)
    seed = {"seed": 0} if _seeded(name) else {}
    if entry.kind == "stateful-gradient":
        return solvers.method(name, num_tasks=K, **seed, **_options(name, K))
    return solvers.method(name, **seed, **_options(name, K))


def reads_losses(name):
    return takes(solvers.get(name), "losses")


def steps_of(J, steps=STEPS):
    """A few Jacobians near J (the state of a stateful method then matters)."""
    rng = np.random.default_rng(7)
    return [J * (1.0 + 0.1 * t) + 0.05 * t * rng.standard_normal(J.shape) for t in range(steps)]


def torch_gram(J):
    """J J^T with torch's float64 product, as TorchJD's and our adapter's Gramian is formed."""
    T = torch.from_numpy(J)
    return (T @ T.T).numpy()


def assert_close(actual, expected, what, scale=None):
    """Equal within RTOL relative to ``scale`` (default: the largest expected entry;
    for a direction, the size of the terms it sums, :func:`direction_scale`)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected)
    if scale is None:
        scale = float(np.abs(expected).max(initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def direction_scale(J, result):
    """The size of the terms of ``w @ J``: a direction that cancels to near zero is
    known only relative to them (for a method without weights, to the size of J)."""
    w = np.ones(J.shape[0]) if result.weights is None else np.abs(result.weights)
    return float((w @ np.abs(J)).max(initial=0.0))


def cases():
    for name in METHODS:
        for family in FAMILIES:
            for K in (*SIZES, *([LARGE[family]] if family in LARGE else [])):
                if K >= MIN_TASKS.get(name, 1):
                    yield pytest.param(name, family, K, id=f"{name}-{family}-{K}")


@pytest.mark.parametrize(("name", "family", "K"), list(cases()))
def test_through_torchjd_equals_ours(name, family, K):
    """jac_to_grad(aggregator) and weighting(gramian) against the numpy method."""
    J0 = hard_jacobian(family, K)
    options = _options(name, K)
    seed = 0 if _seeded(name) else None
    agg = ptjd.aggregator(name, options=options or None, seed=seed)
    ref_agg = reference(name, K)
    gram_path = name not in NEEDS_GRADS
    if gram_path:
        assert isinstance(agg, GramianWeightedAggregator)
        weigh = ptjd.weighting(name, options=options or None, seed=seed)
        assert isinstance(weigh, Weighting)
        ref_weigh = reference(name, K)
    else:
        assert isinstance(agg, JDAggregator)
        with pytest.raises(ValueError, match="aggregator"):
            ptjd.weighting(name, options=options or None)
    memory = solvers.info(name).kind == "stateful-gradient" or _seeded(name)
    for t, J in enumerate(steps_of(J0, STEPS if memory else 1)):
        losses = np.linspace(1.0, 2.0, K) + t
        extra = {"losses": losses} if reads_losses(name) else {}
        G = torch_gram(J)
        expected = ref_agg(J, gram=G, **extra)

        x = torch.zeros(J.shape[1], dtype=torch.float64, requires_grad=True)
        jd_backward(torch.from_numpy(J) @ x, inputs=[x])  # x.jac = J, by TorchJD
        agg.set_losses(torch.from_numpy(losses))
        weights = jac_to_grad([x], agg)
        assert_close(
            x.grad.numpy(),
            expected.direction,
            f"{name} step {t}: direction",
            direction_scale(J, expected),
        )
        if gram_path:
            assert_close(weights.numpy(), expected.weights, f"{name} step {t}: jac_to_grad weights")
            weigh.set_losses(list(losses))
            w = weigh(torch.from_numpy(G))
            assert w.dtype == torch.float64 and w.shape == (K,)
            expected_w = ref_weigh(gram=G, **extra).weights
            assert_close(w.numpy(), expected_w, f"{name} step {t}: weighting")
        else:
            assert weights is None  # no Weighting: jac_to_grad returns no weights


@pytest.mark.parametrize("name", ["mgda", "upgrad", "cagrad", "gradvac", "nash-mtl"])
def test_optimize_gramian_computation(name):
    """jac_to_grad's Gramian-only route (TorchJD sums per-tensor Gramians) agrees."""
    torch.manual_seed(0)
    K = 3
    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    J = torch.randn(K, 17, dtype=torch.float64)
    outputs = J[:, :12] @ a.reshape(-1) + J[:, 12:] @ b
    jd_backward(outputs, inputs=[a, b])
    agg = ptjd.aggregator(name, seed=0 if _seeded(name) else None)
    weights = jac_to_grad([a, b], agg, optimize_gramian_computation=True)
    Jn = J.numpy()
    expected = reference(name, K)(Jn, gram=torch_gram(Jn))
    assert_close(weights.numpy(), expected.weights, "weights")
    got = torch.cat([a.grad.reshape(-1), b.grad]).numpy()
    assert_close(got, expected.direction, "direction")


class Net(torch.nn.Module):
    def __init__(self, tasks=3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(5, 12), torch.nn.Tanh(), torch.nn.Linear(12, 6), torch.nn.Tanh()
        )
        self.heads = torch.nn.ModuleList(torch.nn.Linear(6, 1) for _ in range(tasks))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.6)
        self.double()

    def forward(self, x, ys):
        z = self.trunk(x)
        losses = [((h(z).squeeze(-1) - y) ** 2).mean() for h, y in zip(self.heads, ys, strict=True)]
        return losses, z


def batch(tasks=3, n=24):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    ys = [torch.sin(x[:, 0] * (k + 1)) * (-1) ** k + 0.2 * k for k in range(tasks)]
    return x, ys


def grads_of(net):
    return {n: p.grad.detach().clone() for n, p in net.named_parameters()}


MODEL_CASES = [
    ("mgda", None),
    ("upgrad", None),
    ("pcgrad", None),
    ("epo", None),
    ("gradvac", None),
    ("trimmed-mean", {"trim_number": 1}),
    ("moco", None),
]


@pytest.mark.parametrize(("name", "options"), MODEL_CASES)
def test_mtl_backward_equals_our_aggregator(name, options):
    """TorchJD's mtl_backward + jac_to_grad with our aggregator and our own Aggregator
    write the same .grad into every parameter (shared: combined; heads: their own),
    over two SGD steps (stateful methods carry their state between them)."""
    x, ys = batch()
    ours, theirs = Net(), Net()
    seed = 0 if _seeded(name) else None
    agg = Aggregator(name, options=options, seed=seed)
    jd_agg = ptjd.aggregator(name, options=options, seed=seed)
    for step in range(2):
        ours.zero_grad()
        theirs.zero_grad()
        losses, _ = ours(x, ys)
        info = agg.backward(losses, ours.trunk.parameters())
        losses_jd, z = theirs(x, ys)
        mtl_backward(losses_jd, features=z)
        jd_agg.set_losses(losses_jd)
        weights = jac_to_grad(theirs.trunk.parameters(), jd_agg)
        a, b = grads_of(ours), grads_of(theirs)
        assert a.keys() == b.keys()
        for key in a:
            assert_close(b[key].numpy(), a[key].numpy(), f"{name} step {step}: {key}.grad")
        if info.weights is not None:
            assert_close(weights.numpy(), info.weights, f"{name} step {step}: weights")
        for net in (ours, theirs):
            with torch.no_grad():
                for p in net.parameters():
                    p -= 0.1 * p.grad


@pytest.mark.parametrize("name", ["mgda", "upgrad", "imtl-g", "gradvac"])
def test_autogram_engine_with_our_weighting(name):
    """TorchJD's autogram engine (the Gramian without the Jacobian) with our weighting
    gives the trunk the same gradient as our Aggregator."""
    x, ys = batch()
    ours, theirs = Net(), Net()
    losses, _ = ours(x, ys)
    info = Aggregator(name, seed=0 if _seeded(name) else None).backward(
        losses, ours.trunk.parameters()
    )
    engine = Engine(theirs.trunk, batch_dim=None)
    losses_jd, _ = theirs(x, ys)
    stacked = torch.stack(losses_jd)
    gramian = engine.compute_gramian(stacked)
    weights = ptjd.weighting(name, seed=0 if _seeded(name) else None)(gramian)
    stacked.backward(weights)
    assert_close(weights.numpy(), info.weights, "weights")
    for (key, p), q in zip(ours.trunk.named_parameters(), theirs.trunk.parameters(), strict=True):
        assert_close(q.grad.numpy(), p.grad.numpy(), f"trunk {key}")


def test_float32_jacobian_keeps_its_dtype_and_a_float64_gramian():
    """A float32 J: the update comes back in float32, from the float64-accumulated
    Gramian (not TorchJD's float32 J @ J.T)."""
    rng = np.random.default_rng(3)
    J = rng.standard_normal((4, 3000)).astype(np.float32)
    agg = ptjd.aggregator("mgda", gram_precision="float64")
    d = agg(torch.from_numpy(J))
    assert d.dtype == torch.float32
    J64 = J.astype(np.float64)
    expected = solvers.mgda(J64, gram=J64 @ J64.T)
    np.testing.assert_allclose(agg.last_result.gram, J64 @ J64.T, rtol=1e-13)
    assert_close(d.numpy(), expected.direction, "direction")


def test_objects_and_functions_are_used_as_given():
    """A stateful object is the state holder; a user's f(gram) -> weights works."""
    K = 3
    J = hard_jacobian("conflicting", K)
    mine = solvers.GradVac(K, seed=4)
    by_hand = solvers.GradVac(K, seed=4)
    w = ptjd.weighting(mine)
    for Jt in steps_of(J):
        G = torch_gram(Jt)
        assert_close(w(torch.from_numpy(G)).numpy(), by_hand(gram=G).weights, "GradVac object")
    assert w.method_state is mine

    def inverse_norms(gram):
        return 1.0 / np.sqrt(np.diagonal(gram))

    G = torch_gram(J)
    got = ptjd.weighting(inverse_norms)(torch.from_numpy(G))
    assert_close(got.numpy(), 1.0 / np.sqrt(np.diagonal(G)), "user function")


def test_torchjd_class_names_are_accepted():
    J = torch.from_numpy(hard_jacobian("gaussian", 4))
    for torchjd_name, ours in [
        ("IMTLG", "imtl-g"),
        ("AlignedMTL", "aligned-mtl"),
        ("UPGrad", "upgrad"),
    ]:
        assert ptjd.weighting(torchjd_name + "Weighting").method == ours
        assert torch.equal(ptjd.aggregator(torchjd_name)(J), ptjd.aggregator(ours)(J))


def test_state_dict_round_trip_continues_bit_for_bit():
    """The method's state rides in nn.Module's state_dict (extra state)."""
    K = 3
    J = hard_jacobian("conflicting", K)
    Gs = [torch.from_numpy(torch_gram(Jt)) for Jt in steps_of(J)]
    for name in ["gradvac", "momentum-pcgrad", "nash-mtl", "pcgrad"]:
        first = ptjd.weighting(name, seed=0 if _seeded(name) else None)
        first(Gs[0])
        saved = copy.deepcopy(first.state_dict())
        later = ptjd.weighting(name, seed=99 if _seeded(name) else None)
        later.load_state_dict(saved)
        for G in Gs[1:]:
            assert torch.equal(first(G), later(G)), name
    agg = ptjd.aggregator("moco")
    agg(torch.from_numpy(J))
    state = agg.state_dict()
    resumed = ptjd.aggregator("moco")
    resumed.load_state_dict(copy.deepcopy(state))
    J2 = torch.from_numpy(steps_of(J)[1])
    assert torch.equal(agg(J2), resumed(J2))


def test_corrupt_state_is_refused_and_changes_nothing():
    G = torch.from_numpy(torch_gram(hard_jacobian("conflicting", 3)))
    w = ptjd.weighting("gradvac", seed=0)
    w(G)
    before = copy.deepcopy(w.state_dict())
    bad = copy.deepcopy(before)
    bad["_extra_state"]["method_state"]["num_tasks"] = 5
    with pytest.raises(ValueError, match="method_state"):
        w.load_state_dict(bad)
    bad = copy.deepcopy(before)
    bad["_extra_state"]["method"] = "mgda"
    with pytest.raises(ValueError, match="mgda"):
        w.load_state_dict(bad)
    after = w.state_dict()["_extra_state"]
    assert after["steps"] == before["_extra_state"]["steps"]
    np.testing.assert_array_equal(
        after["method_state"]["targets"], before["_extra_state"]["method_state"]["targets"]
    )


def test_clear_errors():
    G = torch.from_numpy(torch_gram(hard_jacobian("conflicting", 3)))
    with pytest.raises(ValueError, match="loss weighting"):
        ptjd.weighting("dwa")
    with pytest.raises(ValueError, match="needs_grads"):
        ptjd.weighting("graddrop")
    with pytest.raises(ValueError, match="unknown method"):
        ptjd.aggregator("no-such-method")
    with pytest.raises(ValueError, match="set_losses"):
        ptjd.weighting("epo")(G)
    stateful = ptjd.weighting("gradvac")
    stateful(G)
    with pytest.raises(ValueError, match="reset"):
        stateful(G[:2, :2])
    stateful.reset()
    assert stateful(G[:2, :2]).shape == (2,)
    with pytest.raises(ValueError, match="square"):
        ptjd.weighting("mgda")(torch.ones(2, 3))
    with pytest.raises(ValueError, match="gram_precision"):
        ptjd.aggregator("mgda", gram_precision="half")
    with pytest.raises(ValueError, match="2 losses"):
        w = ptjd.weighting("epo")
        w.set_losses([1.0, 2.0])
        w(G)
