"""Properties every loss weighting shares, parametrised over the registry (kind="loss").

Each registered method has at least one case below (a constructor for K tasks and the
domain its losses must lie in); a new method without a case fails
``test_every_loss_method_has_a_case``.
"""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import (
    COSMOS,
    FAMO,
    IMTLL,
    PBI,
    ConstantWeighting,
    DynamicWeightAverage,
    EqualWeighting,
    GeneralizedMeanWeighting,
    GeometricLossStrategy,
    InitialLossNormalization,
    LiveLossNormalization,
    LossWeighting,
    PriorLossNormalization,
    RandomLossWeighting,
    SmoothTchebycheff,
    UncertaintyWeighting,
    available,
    info,
)
from tests.asserts import assert_same_state

# (registry name, constructor of K, domain of the losses, symmetric in the tasks)
CASES = {
    "constant": ("constant", lambda K: ConstantWeighting(K, np.arange(1, K + 1) / K), "finite"),
    "equal": ("equal", EqualWeighting, "finite"),
    "initial-loss": ("initial-loss", lambda K: InitialLossNormalization(K, warmup_steps=3), "> 0"),
    "initial-loss-given": (
        "initial-loss",
        lambda K: InitialLossNormalization(K, initial_losses=np.linspace(1, 2, K)),
        "finite",
    ),
    "prior-loss": (
        "prior-loss",
        lambda K: PriorLossNormalization(K, np.linspace(0.5, 2, K)),
        "finite",
    ),
    "live-loss": ("live-loss", LiveLossNormalization, "> 0"),
    "gm-2.5": ("generalized-mean", lambda K: GeneralizedMeanWeighting(K, 2.5), "> 0"),
    "gm-0": ("generalized-mean", lambda K: GeneralizedMeanWeighting(K, 0.0), "> 0"),
    "gm--3": ("generalized-mean", lambda K: GeneralizedMeanWeighting(K, -3.0), "> 0"),
    "gm-inf": ("generalized-mean", lambda K: GeneralizedMeanWeighting(K, np.inf), "> 0"),
    "gm--inf": ("generalized-mean", lambda K: GeneralizedMeanWeighting(K, -np.inf), "> 0"),
    "gls": ("gls", GeometricLossStrategy, "> 0"),
    "uncertainty-adam": (
        "uncertainty",
        lambda K: UncertaintyWeighting(
            K, ["regression", "classification"] * (K // 2) + ["regression"] * (K % 2), lr=0.05
        ),
        ">= 0",
    ),
    "uncertainty-sgd": (
        "uncertainty",
        lambda K: UncertaintyWeighting(
            K, "regression", lr=0.1, optimizer="sgd", initial_log_variances=-0.5
        ),
        ">= 0",
    ),
    "dwa-epoch": ("dwa", lambda K: DynamicWeightAverage(K, temperature=2.0), "> 0"),
    "dwa-step": ("dwa", lambda K: DynamicWeightAverage(K, temperature=0.5, per="step"), "> 0"),
    "dwa-epoch-steps": ("dwa", lambda K: DynamicWeightAverage(K, epoch_steps=2), "> 0"),
    "rlw-normal": ("rlw", lambda K: RandomLossWeighting(K, seed=7), "finite"),
    "rlw-uniform": (
        "rlw",
        lambda K: RandomLossWeighting(K, seed=8, distribution="uniform"),
        "finite",
    ),
    "imtl-l-adam": ("imtl-l", lambda K: IMTLL(K, lr=0.05), ">= 0"),
    "imtl-l-sgd": (
        "imtl-l",
        lambda K: IMTLL(K, lr=0.1, optimizer="sgd", initial_scales=np.linspace(-0.5, 0.5, K)),
        ">= 0",
    ),
    "famo": ("famo", lambda K: FAMO(K, lr=0.1), ">= 0"),
    "famo-sgd": (
        "famo",
        lambda K: FAMO(K, lr=0.5, gamma=0.01, optimizer="sgd", min_losses=-6.0),
        "finite",
    ),
    "stch-epoch": ("stch", SmoothTchebycheff, ">= 0"),
    "stch-step": (
        "stch",
        lambda K: SmoothTchebycheff(K, mu=0.5, warmup_epochs=1, per="step"),
        ">= 0",
    ),
    "stch-reference": (
        "stch",
        lambda K: SmoothTchebycheff(
            K,
            mu=0.2,
            preference=np.linspace(0.5, 1.5, K),
            warmup_epochs=0,
            reference=np.linspace(1.0, 2.0, K),
        ),
        ">= 0",
    ),
    "cosmos": ("cosmos", COSMOS, "finite"),
    "cosmos-preference": (
        "cosmos",
        lambda K: COSMOS(K, lambda_=0.5, preference=np.linspace(1.0, 0.0, K), eps=1e-3),
        "finite",
    ),
    "pbi": ("pbi", PBI, "finite"),
    "pbi-reference": (
        "pbi",
        lambda K: PBI(K, theta=2.0, preference=np.linspace(1.0, 2.0, K), reference=-0.5, eps=1e-12),
        "finite",
    ),
}
# Cases whose weights do not single out a task by its index: permuting the losses
# permutes the weights.
EQUIVARIANT = [
    "equal", "initial-loss", "live-loss", "gm-2.5", "gm-0", "gm--3", "gm-inf", "gm--inf", "gls",
    "uncertainty-sgd", "dwa-epoch", "dwa-step", "dwa-epoch-steps",
    "imtl-l-adam", "famo", "famo-sgd", "stch-epoch", "stch-step", "cosmos", "pbi",
]  # fmt: skip
IDS = sorted(CASES)


def make(case, K):
    return CASES[case][1](K)


def signed(obj):
    """Whether the method's weights may be negative (COSMOS, PBI: gradients of scalarised
    losses that penalise leaving a preference ray); the others promise weights >= 0."""
    return getattr(type(obj), "weight_domain", ">= 0") == "finite"


def step(obj, losses, t):
    """One training step; DWA in epoch mode closes an epoch every third step."""
    w = obj.update(losses)
    if isinstance(obj, DynamicWeightAverage) and obj.per == "epoch" and t % 3 == 2:
        obj.end_epoch()
    return w


def run(obj, losses, start=0):
    return [step(obj, L, start + t) for t, L in enumerate(losses)]


def assert_plain(value, path="state"):
    """Only numpy arrays and python data: what pickle, torch.save and a JSON-ish dump take."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), path
            assert_plain(v, f"{path}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            assert_plain(v, f"{path}[{i}]")
    else:
        assert value is None or isinstance(value, (bool, int, float, str, np.ndarray)), (
            f"{path} is a {type(value).__name__}"
        )


loss_sequences = st.integers(1, 5).flatmap(
    lambda K: st.lists(
        st.lists(st.floats(1e-3, 1e3), min_size=K, max_size=K), min_size=2, max_size=10
    )
)


def test_every_loss_method_has_a_case():
    names = available("loss")
    assert set(names) == {c[0] for c in CASES.values()}
    assert {
        "constant", "equal", "initial-loss", "prior-loss", "live-loss", "generalized-mean",
        "gls", "uncertainty", "dwa", "rlw",
    } <= set(names)  # fmt: skip
    for name in names:
        m = info(name)
        assert issubclass(m.obj, LossWeighting)
        assert m.paper and m.summary
        assert m.obj.__doc__ and "Example:" in m.obj.__doc__


@pytest.mark.parametrize("case", IDS)
def test_registry_object_is_the_class(case):
    name, _, _ = CASES[case]
    assert isinstance(make(case, 3), info(name).obj)


@pytest.mark.parametrize("case", IDS)
@given(losses=loss_sequences)
def test_contract_of_update(case, losses):
    K = len(losses[0])
    obj = make(case, K)
    assert obj.weights is None
    for t, L in enumerate(losses):
        given_losses = np.array(L)
        w = step(obj, given_losses, t)
        np.testing.assert_array_equal(given_losses, L)  # the input is not modified
        assert isinstance(w, np.ndarray) and w.dtype == np.float64 and w.shape == (K,)
        assert np.isfinite(w).all() and (signed(obj) or (w >= 0).all())
        np.testing.assert_array_equal(obj.weights, w)
        kept = w.copy()
        w[:] = -1.0  # the returned array is the caller's: the state is not affected
        np.testing.assert_array_equal(obj.weights, kept)
    obj.reset()
    assert obj.weights is None


@pytest.mark.parametrize("case", IDS)
def test_accepts_lists_tuples_and_arrays(case):
    a, b, c = make(case, 3), make(case, 3), make(case, 3)
    for t in range(4):
        L = [0.5 + t, 2.0, 1.5 / (t + 1)]
        wa, wb, wc = step(a, L, t), step(b, tuple(L), t), step(c, np.array(L, dtype=np.float32), t)
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_allclose(wa, wc, rtol=1e-6)  # float32 losses, float64 weights
        assert wc.dtype == np.float64


@pytest.mark.parametrize("case", IDS)
@given(losses=loss_sequences, split=st.integers(0, 10))
def test_resumed_run_is_bit_identical(case, losses, split):
    K = len(losses[0])
    split = min(split, len(losses))
    straight = make(case, K)
    expected = run(straight, losses)
    first = make(case, K)
    run(first, losses[:split])
    state = first.state_dict()
    saved = copy.deepcopy(state)
    assert_plain(state)
    run(first, losses[split:], start=split)  # the saved state is a copy
    assert_same_state(state, saved)
    resumed = make(case, K)
    run(resumed, losses[: len(losses) // 2])  # whatever it did before is overwritten
    resumed.load_state_dict(state)
    state["weights"] = "clobbered"  # and the loaded object holds no reference to the dict
    got = run(resumed, losses[split:], start=split)
    for w, e in zip(got, expected[split:], strict=True):
        assert w.tobytes() == e.tobytes()
    assert_same_state(resumed.state_dict(), straight.state_dict())


@pytest.mark.parametrize("case", IDS)
@given(losses=loss_sequences)
def test_reset_is_a_fresh_start(case, losses):
    K = len(losses[0])
    obj = make(case, K)
    run(obj, losses)
    obj.reset()
    assert obj.weights is None
    assert_same_state(obj.state_dict(), make(case, K).state_dict())
    fresh = run(make(case, K), losses)
    for w, e in zip(run(obj, losses), fresh, strict=True):
        assert w.tobytes() == e.tobytes()


def bad_values(domain):
    values = [np.nan, np.inf, -np.inf]
    if domain in ("> 0", ">= 0"):
        values += [-1.0, -1e-300]
    if domain == "> 0":
        values += [0.0, -0.0]
    return values


@pytest.mark.parametrize("case", IDS)
@pytest.mark.parametrize("task", [0, 2])
def test_bad_loss_names_the_task_and_changes_nothing(case, task):
    obj = make(case, 3)
    run(obj, [[1.0, 2.0, 3.0], [0.5, 1.5, 2.5]])
    for value in bad_values(CASES[case][2]):
        before = obj.state_dict()
        L = [1.0, 1.0, 1.0]
        L[task] = value
        with pytest.raises(ValueError, match=rf"losses\[{task}\] \(task {task}\) is"):
            obj.update(L)
        assert_same_state(obj.state_dict(), before)


@pytest.mark.parametrize("case", IDS)
def test_allowed_edge_values_are_accepted(case):
    domain = CASES[case][2]
    edge = {"finite": -5.0, ">= 0": 0.0, "> 0": 1e-300}[domain]
    obj = make(case, 2)
    w = obj.update([edge, 1.0])
    assert np.isfinite(w).all()


@pytest.mark.parametrize("case", IDS)
@pytest.mark.parametrize(
    "losses", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [[1.0, 2.0, 3.0]], 1.0, []], ids=str
)
def test_wrong_number_of_losses(case, losses):
    obj = make(case, 3)
    run(obj, [[1.0, 2.0, 3.0]])
    before = obj.state_dict()
    with pytest.raises(ValueError, match=r"losses must have shape \(3,\)"):
        obj.update(losses)
    assert_same_state(obj.state_dict(), before)


@pytest.mark.parametrize("case", IDS)
def test_one_task(case):
    obj = make(case, 1)
    for t in range(4):
        w = step(obj, [2.0**-t], t)
        assert w.shape == (1,) and np.isfinite(w).all() and w[0] > 0


@pytest.mark.parametrize("case", IDS)
def test_load_state_dict_checks_method_and_tasks(case):
    state = make(case, 3).state_dict()
    with pytest.raises(ValueError, match="tasks"):
        make(case, 2).load_state_dict(state)
    other = EqualWeighting(3) if CASES[case][0] != "equal" else LiveLossNormalization(3)
    with pytest.raises(ValueError, match="state is for"):
        other.load_state_dict(state)


@pytest.mark.parametrize("case", IDS)
def test_a_malformed_state_changes_nothing(case):
    obj = make(case, 3)
    run(obj, [[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    before = obj.state_dict()
    other = make(case, 3)
    run(other, [[5.0, 1.0, 0.5]] * 4)
    broken = other.state_dict()
    extra = [k for k in broken if k not in ("method", "num_tasks", "hyperparameters", "weights")]
    if extra:  # the method's own state, read after the hyper-parameters are set
        del broken[extra[-1]]
    elif broken["hyperparameters"]:
        broken["hyperparameters"].popitem()
    else:
        pytest.skip("no state beyond the weights")
    with pytest.raises(ValueError, match="missing"):  # names the field, no bare KeyError
        obj.load_state_dict(broken)
    assert_same_state(obj.state_dict(), before)


@pytest.mark.parametrize("case", EQUIVARIANT)
@given(losses=loss_sequences, seed=st.integers(0, 2**32 - 1))
def test_permuting_the_tasks_permutes_the_weights(case, losses, seed):
    K = len(losses[0])
    perm = np.random.default_rng(seed).permutation(K)
    a, b = make(case, K), make(case, K)
    for t, L in enumerate(losses):
        L = np.array(L)
        np.testing.assert_allclose(step(b, L[perm], t), step(a, L, t)[perm], rtol=1e-12)


@pytest.mark.parametrize("case", IDS)
def test_repr_names_the_class(case):
    assert repr(make(case, 2)).startswith(type(make(case, 2)).__name__ + "(num_tasks=2")


REQUIRED = {"constant": {"weights": [1.0]}, "prior-loss": {"prior_losses": [1.0]}}
REQUIRED["generalized-mean"] = {"gamma": 1.0}


@pytest.mark.parametrize("num_tasks", [0, -1, 1.5, "3", True, None])
@pytest.mark.parametrize("name", available("loss"))
def test_bad_num_tasks(name, num_tasks):
    with pytest.raises(ValueError, match="num_tasks"):
        info(name).obj(num_tasks, **REQUIRED.get(name, {}))
