"""Checkpoints through torch.save / torch.load(weights_only=True), torch's default.

Every stateful method (iterated from the registries: every loss weighting, every
``stateful-gradient`` method, and the ConflictTracker) and Aggregators of several kinds,
after a few steps, are saved with ``torch.save``, loaded back with ``torch.load(...,
weights_only=True)`` into a fresh object, and must continue bit for bit. The plain form
itself (``paretomtl.state.plain``) is checked on its own: nothing from numpy, exact round
trips for every dtype, lists up to ``LIST_LIMIT`` entries and bytes beyond.
"""

import inspect
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from paretomtl import solvers, weighting
from paretomtl.solvers import ConflictTracker
from paretomtl.state import ARRAY_TAG, LIST_LIMIT, from_plain, plain
from tests.asserts import assert_same_state

torch = pytest.importorskip("torch")

# The arguments a class cannot do without; everything else is its default.
REQUIRED = {
    "constant": {"weights": [0.5, 1.0, 2.0]},
    "prior-loss": {"prior_losses": [1.0, 0.5, 2.0]},
    "generalized-mean": {"gamma": 2.0},
    "uncertainty": {"task_types": ("regression", "classification", "regression")},
}
SEEDED = {"seed": 7}
K = 3


def every_stateful():
    names = [("weighting", n) for n in weighting.available()]
    names += [("solvers", n) for n in solvers.available("stateful-gradient")]
    return [*names, ("solvers", "conflict-tracker")]


def build(family, name):
    if name == "conflict-tracker":
        return ConflictTracker(K, beta1=0.8)
    cls = weighting.get(name) if family == "weighting" else solvers.get(name)
    options = dict(REQUIRED.get(name, {}))
    if "seed" in inspect.signature(cls).parameters:
        options.update(SEEDED)
    return cls(K, **options)


def drive(obj, seed, steps):
    """``steps`` updates with inputs drawn from ``seed``; the outputs as bytes."""
    return drive_from(obj, seed, 0, steps)


def through_torch(state):
    """``torch.save`` then ``torch.load(..., weights_only=True)`` (in memory)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def walk(x, path=()):
    yield path, x
    if isinstance(x, dict):
        for k, v in x.items():
            yield from walk(v, (*path, k))
    elif isinstance(x, list | tuple):
        for i, v in enumerate(x):
            yield from walk(v, (*path, i))


PLAIN_TYPES = (dict, list, tuple, str, bytes, int, float, bool, type(None))


def test_the_list_covers_both_registries():
    names = {n for _, n in every_stateful()}
    assert set(weighting.available()) <= names
    assert set(solvers.available("stateful-gradient")) <= names
    assert (
        len(names) == len(weighting.available()) + len(solvers.available("stateful-gradient")) + 1
    )


@pytest.mark.parametrize(("family", "name"), every_stateful(), ids=lambda x: x)
def test_every_stateful_method_resumes_bit_for_bit_after_torch_load(family, name):
    straight = build(family, name)
    expected = drive(straight, 1, 5)
    first = build(family, name)
    drive(first, 1, 3)
    saved = first.state_dict()
    for path, value in walk(saved):  # plain Python only: nothing from numpy
        assert isinstance(value, PLAIN_TYPES), (path, type(value))
    loaded = through_torch(saved)
    assert_same_state(loaded, saved)
    resumed = build(family, name)
    drive(resumed, 99, 2)  # another history, overwritten by the checkpoint
    resumed.load_state_dict(loaded)
    assert drive_from(resumed, 1, 3, 5) == expected[3:]  # steps 4 and 5 of the straight run
    assert_same_state(resumed.state_dict(), straight.state_dict())


def drive_from(obj, seed, start, stop, M=4):
    """Steps ``start`` to ``stop`` of :func:`drive` with ``seed`` (earlier draws skipped)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(stop):
        losses = rng.uniform(0.1, 3.0, K)
        norms = rng.uniform(0.1, 2.0, K) if isinstance(obj, weighting.GradNorm) else None
        J = None
        if not isinstance(obj, weighting.LossWeighting):
            J = rng.standard_normal((K, M))
        if t < start:
            continue
        if norms is not None:
            w = obj(losses, norms)
        elif isinstance(obj, weighting.LossWeighting):
            w = obj(losses)
            if hasattr(obj, "end_epoch") and getattr(obj, "per", "step") == "epoch" and t % 2:
                obj.end_epoch()
        elif isinstance(obj, ConflictTracker):
            w = obj.update(J).mean_cosine
        else:
            extra = (
                {"losses": losses} if "losses" in inspect.signature(obj.update).parameters else {}
            )
            result = obj.update(J, **extra)
            w = result.direction if result.weights is None else result.weights
        out.append(np.asarray(w).tobytes())
    return out


def test_drive_from_replays_drive():
    # The replay above is only a test if it reproduces the straight run's inputs.
    for family, name in [("weighting", "gradnorm"), ("solvers", "moco"), ("weighting", "dwa")]:
        a, b = build(family, name), build(family, name)
        assert drive(a, 4, 5) == drive_from(b, 4, 0, 5)


def test_large_tracked_gradients_are_saved_as_bytes_and_resume_bit_for_bit():
    M = 250_000  # K x M = 750 000 tracked entries, as MoCo keeps for a small network
    rng = np.random.default_rng(0)
    Js = [rng.standard_normal((K, M)) for _ in range(4)]
    losses = [rng.uniform(0.5, 2.0, K) for _ in range(4)]
    straight = solvers.MoCo(K, beta=0.7)
    directions = [straight.update(J, losses=L).direction for J, L in zip(Js, losses, strict=True)]
    first = solvers.MoCo(K, beta=0.7)
    for J, L in zip(Js[:2], losses[:2], strict=True):
        first.update(J, losses=L)
    state = first.state_dict()
    tracked = state["tracked"]
    assert set(tracked) == {ARRAY_TAG, "shape", "data"}
    assert tracked[ARRAY_TAG] == "<f8" and tracked["shape"] == [K, M]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    assert buffer.tell() < 1.7 * 8 * K * M  # protocol 2 stores bytes at about 1.55x
    buffer.seek(0)
    resumed = solvers.MoCo(K)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for J, L, d in zip(Js[2:], losses[2:], directions[2:], strict=True):
        assert resumed.update(J, losses=L).direction.tobytes() == d.tobytes()


def test_a_corrupt_encoded_array_is_refused_by_field_and_changes_nothing():
    moco = solvers.MoCo(2)
    moco.update(np.arange(2.0 * 3000).reshape(2, 3000) / 1e3, losses=[1.0, 2.0])
    good = moco.state_dict()
    before = moco.state_dict()
    tracked = good["tracked"]
    for bad, match in (
        ({**tracked, "data": tracked["data"][:-8]}, "holds"),
        ({**tracked, "shape": [2, 2999]}, "holds"),
        ({**tracked, ARRAY_TAG: "object"}, "dtype"),
        ({**tracked, "extra": 1}, "keys"),
        ({k: v for k, v in tracked.items() if k != "data"}, "keys"),
    ):
        with pytest.raises(ValueError, match=match) as error:
            moco.load_state_dict({**good, "tracked": bad})
        assert "'tracked'" in str(error.value)
        assert_same_state(moco.state_dict(), before)
    nan = np.frombuffer(tracked["data"], dtype="<f8").copy()
    nan[7] = np.nan
    with pytest.raises(ValueError, match="'tracked'"):
        moco.load_state_dict({**good, "tracked": {**tracked, "data": nan.tobytes()}})


# -- the plain form ----------------------------------------------------------------------------
DTYPES = ["<f8", ">f8", "<f4", "<i8", "<i4", "|u1", "<u4", "<u8", "|b1", "<c16", "<U3", "|S2"]


@given(
    arr=st.sampled_from(DTYPES).flatmap(
        lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0))
    )
)
def test_plain_round_trips_every_array_exactly(arr):
    out = plain(arr)
    back = from_plain(through_torch({"x": out})["x"])
    assert isinstance(back, np.ndarray) or isinstance(out, list)
    back = np.asarray(back)
    assert back.shape == arr.shape
    assert back.dtype == arr.dtype or (isinstance(out, list) and back.dtype == np.float64)
    assert back.tobytes() == arr.astype(back.dtype).tobytes()
    if isinstance(out, list):  # lists only for float64 with 1 to LIST_LIMIT entries
        assert arr.dtype == np.float64 and 1 <= arr.size <= LIST_LIMIT and arr.ndim >= 1


def test_list_limit_and_scalars():
    assert isinstance(plain(np.zeros(LIST_LIMIT)), list)
    assert isinstance(plain(np.zeros((2, 2))), list)
    assert plain(np.zeros(LIST_LIMIT + 1))[ARRAY_TAG] == "<f8"
    assert plain(np.zeros((2, 0)))["shape"] == [2, 0]
    assert plain(-0.0) == 0.0 and str(plain(np.array([-0.0]))[0]) == "-0.0"
    values = plain(
        {"a": np.float64(1.5), "b": np.int32(-2), "c": np.bool_(True), "d": (np.uint8(3),)}
    )
    assert values == {"a": 1.5, "b": -2, "c": True, "d": (3,)}
    assert [type(v) for v in (values["a"], values["b"], values["c"], values["d"][0])] == [
        float,
        int,
        bool,
        int,
    ]
    with pytest.raises(TypeError, match=r"state\['x'\]"):
        plain({"x": np.array([object()])})
    with pytest.raises(ValueError, match=r"state\['w'\]\[1\] is True"):
        from_plain({"w": [0.5, True]})
    assert from_plain({"w": [True, False], "t": ("a", 1)}) == {"w": [True, False], "t": ("a", 1)}


@pytest.mark.parametrize(
    "bit_generator", [np.random.MT19937, np.random.Philox, np.random.SFC64, np.random.PCG64DXSM]
)
def test_generators_of_every_kind_through_torch(bit_generator):
    # MT19937's key, Philox's counter and SFC64's words are numpy arrays: saved as bytes.
    gv = solvers.GradVac(K, seed=np.random.Generator(bit_generator(3)))
    straight = solvers.GradVac(K, seed=np.random.Generator(bit_generator(3)))
    expected = drive(straight, 2, 4)
    drive(gv, 2, 2)
    loaded = through_torch(gv.state_dict())
    resumed = solvers.GradVac(K, seed=np.random.Generator(bit_generator(0)))
    resumed.load_state_dict(loaded)
    assert drive_from(resumed, 2, 2, 4) == expected[2:]


# -- Aggregators --------------------------------------------------------------------------------
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.trunk = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh())
        self.heads = torch.nn.ModuleList(torch.nn.Linear(6, 1) for _ in range(K))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.double()

    def losses(self, t):
        g = torch.Generator().manual_seed(100 + t)
        x = torch.randn(16, 4, generator=g, dtype=torch.float64)
        z = self.trunk(x)
        return [
            ((h(z).squeeze(-1) - (k + 1) * x[:, k]) ** 2).mean() for k, h in enumerate(self.heads)
        ]


AGGREGATORS = {
    "gradvac": dict(method="gradvac", seed=3),
    "pcgrad": dict(method="pcgrad", seed=3),
    "moco": dict(method="moco", options={"beta": 0.5}),
    "dwa-epoch-steps": dict(method="dwa", options={"epoch_steps": 2}),
    "gradnorm": dict(method="gradnorm"),
    "rlw": dict(method="rlw", seed=5),
    "mgda-conflicts": dict(method="mgda", track_conflicts=True),
}


def run(agg, net, start, stop):
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    out = []
    for t in range(start, stop):
        opt.zero_grad()
        losses = net.losses(t)
        layer = list(net.trunk[0].parameters()) if agg.method == "gradnorm" else None
        info = agg.backward(losses, net.trunk.parameters(), layer=layer)
        out.append(np.asarray(info.weights).tobytes())
        opt.step()
    out.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]).numpy().tobytes())
    return out


@pytest.mark.parametrize("case", sorted(AGGREGATORS))
def test_aggregator_checkpoint_through_torch_resumes_bit_for_bit(case):
    from paretomtl.adapters.torch import Aggregator

    kwargs = AGGREGATORS[case]
    straight = run(Aggregator(**kwargs), Net(), 0, 6)
    net, agg = Net(), Aggregator(**kwargs)
    run(agg, net, 0, 3)
    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "aggregator": agg.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    net2 = Net()
    net2.load_state_dict(checkpoint["model"])
    other = {**kwargs, "seed": 99} if "seed" in kwargs else kwargs
    agg2 = Aggregator(**other)
    agg2.load_state_dict(checkpoint["aggregator"])
    resumed = run(agg2, net2, 3, 6)
    assert resumed == straight[3:]


def test_aggregator_with_an_mt19937_generator_through_torch():
    from paretomtl.adapters.torch import Aggregator

    agg = Aggregator("pcgrad", seed=np.random.Generator(np.random.MT19937(1)))
    run(agg, Net(), 0, 2)
    through_torch(agg.state_dict())
