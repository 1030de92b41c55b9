"""Every stateful method refuses a malformed state, names the bad field, and stays as it was.

Parametrised over every stateful class in the registries (the loss weightings and the
stateful gradient methods) and ConflictTracker. From a valid state, taken after a few
steps, hypothesis derives malformed ones, one class of damage per test:

- ``nan``, ``inf``: an entry of an array (or a number) replaced by NaN or +-inf;
- ``shape``: an array (or a list) of the wrong shape or length;
- ``count``: an integer replaced by a negative, a float, a bool or a string;
- ``type``: any value replaced by one of the wrong type (a string, a dict, a complex
  number, None, a bool, an array of bools or strings, ...);
- ``missing``, ``unknown``: a key deleted or added, at any level;
- ``generator``: a corrupt bit-generator state (unknown names, out-of-range or
  non-integer words, missing or extra keys, an even PCG increment, ...);
- ``nested``: a wrong nested state (another class, another K, not a dict);
- ``cross``: fields that pass their own checks but contradict each other;
- ``encoded``: an array saved as bytes (``paretomtl.state.plain``) with a bad dtype,
  shape or data.

Each load must raise ValueError or TypeError whose message names the field, and
leave ``state_dict()`` exactly as it was, bit for bit. Finally a valid state of
another object of the same class and K loads and continues bit for bit.

States come in two forms: the plain form ``state_dict()`` writes (lists and bytes, no
numpy), and the numpy arrays that earlier versions wrote (old checkpoints, built here by
the old exporter); both are damaged and loaded.
"""

import copy
import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers, weighting
from paretomtl.solvers import ConflictTracker, GradVac, MomentumPCGrad
from paretomtl.state import ARRAY_TAG, Stateful, from_plain, plain
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
    GradNorm,
    InitialLossNormalization,
    LiveLossNormalization,
    PriorLossNormalization,
    RandomLossWeighting,
    SmoothTchebycheff,
    UncertaintyWeighting,
)
from tests.asserts import assert_same_state

CASES = {
    "constant": lambda K: ConstantWeighting(K, np.linspace(0.5, 2.0, K)),
    "equal": EqualWeighting,
    "initial-loss": lambda K: InitialLossNormalization(K, warmup_steps=3),
    "initial-loss-given": lambda K: InitialLossNormalization(
        K, initial_losses=np.linspace(1.0, 2.0, K)
    ),
    "prior-loss": lambda K: PriorLossNormalization(K, np.linspace(0.5, 2.0, K)),
    "live-loss": LiveLossNormalization,
    "generalized-mean": lambda K: GeneralizedMeanWeighting(K, 2.5),
    "generalized-mean-inf": lambda K: GeneralizedMeanWeighting(K, -np.inf),
    "gls": GeometricLossStrategy,
    "uncertainty-adam": lambda K: UncertaintyWeighting(K, "classification", lr=0.05),
    "uncertainty-sgd": lambda K: UncertaintyWeighting(K, "regression", lr=0.1, optimizer="sgd"),
    "dwa-epoch": DynamicWeightAverage,
    "dwa-step": lambda K: DynamicWeightAverage(K, temperature=0.5, per="step"),
    "dwa-epoch-steps": lambda K: DynamicWeightAverage(K, epoch_steps=3),
    "rlw": lambda K: RandomLossWeighting(K, seed=3),
    "rlw-mt19937": lambda K: RandomLossWeighting(
        K, seed=np.random.Generator(np.random.MT19937(5)), distribution="uniform"
    ),
    "gradnorm-adam": lambda K: GradNorm(K, alpha=1.0, lr=0.05),
    "gradnorm-sgd": lambda K: GradNorm(
        K, lr=0.01, optimizer="sgd", initial_losses=np.linspace(1.0, 2.0, K)
    ),
    "gradvac": lambda K: GradVac(K, beta=0.3, seed=1),
    "gradvac-philox": lambda K: GradVac(
        K,
        beta=0.5,
        seed=np.random.Generator(np.random.Philox(2)),
        reduction="mean",
        target_update="when-below",
    ),
    "momentum-pcgrad": lambda K: MomentumPCGrad(K, beta1=0.8, beta2=0.9, threshold=0.2, seed=4),
    "conflict-tracker": lambda K: ConflictTracker(K, beta1=0.7, beta2=0.95),
    "moco": lambda K: solvers.MoCo(K, beta=0.6, gamma=0.3, rho=0.1),
    "moco-libmtl": lambda K: solvers.MoCo(K, lambda_update="softmax", normalization="loss"),
    "db-mtl": lambda K: solvers.DBMTL(K, beta=0.8, beta_sigma=0.5),
    "nash-mtl": lambda K: solvers.NashMTL(K, max_norm=0.5, update_weights_every=2),
    "pcd": lambda K: solvers.PCD(K, tau=0.1, beta=0.9),
    "pcd-vector": lambda K: solvers.PCD(K, tau=np.linspace(0.0, 0.5, K - 1), beta=0.0, eps=0.0),
    "modo": lambda K: solvers.MoDo(K, gamma=0.3, rho=0.05),
    "sdmgrad": lambda K: solvers.SDMGrad(
        K, lambda_=0.5, n_iter=5, pref_vector=np.linspace(1.0, 2.0, K)
    ),
    "cr-mogm": lambda K: solvers.CRMOGM(K, alpha=0.7),
    "cr-mogm-init": lambda K: solvers.CRMOGM(
        K, alpha=0.7, initial_weights=np.linspace(0.5, 1.0, K)
    ),
    "excess-mtl": lambda K: solvers.ExcessMTL(K, robust_step_size=0.5, n_warmup_steps=2),
    "cosmos": lambda K: COSMOS(K, lambda_=2.0, preference=np.linspace(1.0, 0.0, K)),
    "pbi": lambda K: PBI(K, theta=5.0, preference=np.linspace(0.5, 1.0, K), reference=-0.1),
    "imtl-l": lambda K: IMTLL(K, lr=0.05),
    "imtl-l-sgd": lambda K: IMTLL(K, lr=0.1, optimizer="sgd", initial_scales=0.5),
    "famo": lambda K: FAMO(K, lr=0.1),
    "famo-sgd": lambda K: FAMO(K, lr=0.5, gamma=0.01, optimizer="sgd", min_losses=-1.0),
    "stch": lambda K: SmoothTchebycheff(K, mu=0.5, warmup_epochs=1, per="step"),
    "stch-reference": lambda K: SmoothTchebycheff(
        K, mu=0.2, warmup_epochs=0, reference=np.linspace(1.0, 2.0, K)
    ),
}
OPTIONAL = {
    "weights",
    "given_initial_losses",
    "initial_losses",
    "initial_weights",
    "pref_vector",
    "reference",
    "previous",
    "epoch_steps",
    "data",  # an encoded array without entries has data None
}  # None may be valid there
ADDED = {"epoch_steps"}  # keys that states saved before them lack: they load with a default
KXM_FIELDS = {"buffer", "tracked", "sq_sum"}  # K x M gradients: any M >= 1 is valid
VALID_INFINITE = {"gamma": (np.inf, -np.inf), "threshold": (np.inf,)}


def make(case, K):
    return CASES[case](K)


def reads_losses(obj):
    return "losses" in inspect.signature(obj.update).parameters


def drive(obj, seed, steps):
    """``steps`` updates with random inputs; the outputs, copied."""
    rng = np.random.default_rng(seed)
    K = obj.num_tasks
    out = []
    for t in range(steps):
        if isinstance(obj, GradNorm):
            w = obj(rng.uniform(0.1, 3.0, K), rng.uniform(0.0, 2.0, K))
        elif isinstance(obj, weighting.LossWeighting):
            w = obj(rng.uniform(0.1, 3.0, K))
            if isinstance(obj, DynamicWeightAverage) and obj.per == "epoch" and t % 2 == 1:
                obj.end_epoch()
        else:
            extra = {"losses": rng.uniform(0.1, 3.0, K)} if reads_losses(obj) else {}
            result = obj.update(rng.standard_normal((K, 3)), **extra)
            if isinstance(obj, ConflictTracker):
                w = result.mean_cosine
            else:
                w = result.direction if result.weights is None else result.weights
        out.append(np.array(w, copy=True))
    return out


def numpy_form(obj):
    """The state as earlier versions saved it: numpy arrays (an old checkpoint)."""

    def export(x):
        if isinstance(x, np.random.Generator):
            return copy.deepcopy(x.bit_generator.state)
        if isinstance(x, Stateful):
            return numpy_form(x)
        return copy.deepcopy(x)

    state = {
        "method": type(obj).__name__,
        "num_tasks": obj.num_tasks,
        "hyperparameters": {a.lstrip("_"): export(getattr(obj, a)) for a in obj.hyperparameters},
    }
    state.update({a.lstrip("_"): export(getattr(obj, a)) for a in obj.fields})
    return state


# -- walking a state ---------------------------------------------------------------------
def is_generator(x):
    return isinstance(x, dict) and isinstance(x.get("bit_generator"), str)


def is_stateful(x):
    return isinstance(x, dict) and "method" in x and "num_tasks" in x


def is_encoded(x):
    return isinstance(x, dict) and ARRAY_TAG in x


def nodes(state, path=(), in_generator=False):
    """(path, value, inside a bit-generator state) for every value below ``state``."""
    items = state.items() if isinstance(state, dict) else enumerate(state)
    for key, value in items:
        here = (*path, key)
        yield here, value, in_generator
        if isinstance(value, dict | list | tuple):
            yield from nodes(value, here, in_generator or is_generator(value))


def at(state, path):
    for key in path:
        state = state[key]
    return state


def field_names(state, path):
    """The field names an error about ``path`` must mention."""
    if not path:
        return []
    head = path[0]
    if head == "hyperparameters" and len(path) > 1:
        return [path[1]]
    value = state.get(head) if isinstance(state, dict) else None
    if is_stateful(value) and len(path) > 1:
        return [head, *field_names(value, path[1:])]
    return [head]


DELETE = object()


def apply(state, path, new):
    """A deep copy of ``state`` with ``path`` set to ``new`` (or deleted)."""
    out = copy.deepcopy(state)
    parents = [out]
    for key in path[:-1]:
        parents.append(parents[-1][key])
    # tuples (task types) are rebuilt as lists, changed, and turned back
    chain = list(zip(path, parents, strict=True))
    key, parent = chain[-1]
    container = list(parent) if isinstance(parent, tuple) else parent
    if new is DELETE:
        del container[key]
    else:
        container[key] = new
    if isinstance(parent, tuple):
        grand_key, grand = chain[-2]
        grand[grand_key] = tuple(container)
    return out


def floats_arrays(state):
    for path, value, in_gen in nodes(state):
        if not in_gen and isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
            yield path, value


# -- the classes of damage ----------------------------------------------------------------
def damage_nonfinite(state, values):
    out = []
    for path, arr in floats_arrays(state):
        for v in values:
            bad = arr.copy()
            bad.flat[bad.size // 2] = v
            out.append((path, bad, field_names(state, path)))
    for path, value, in_gen in nodes(state):
        if not in_gen and isinstance(value, float):
            for v in values:
                if v not in VALID_INFINITE.get(path[-1], ()):
                    out.append((path, v, field_names(state, path)))
    return out


def damage_nan(state, case):
    return damage_nonfinite(state, [np.nan])


def damage_inf(state, case):
    return damage_nonfinite(state, [np.inf, -np.inf])


def damage_shape(state, case):
    out = []
    for path, arr in floats_arrays(state):
        names = field_names(state, path)
        for bad in (np.append(arr, arr.flat[0]), arr[None], arr.ravel()[:0], arr.ravel()[0]):
            out.append((path, bad, names))
        if arr.ndim == 2:
            out.append((path, arr[0], names))
    for path, value, in_gen in nodes(state):
        if not in_gen and isinstance(value, list | tuple) and value:
            if path[0] in KXM_FIELDS and len(path) == 2:
                continue  # a longer row of a K x M list is another M (with K = 1: valid)
            out.append((path, type(value)([*value, value[0], value[0]]), field_names(state, path)))
    return out


def damage_count(state, case):
    out = []
    for path, value, in_gen in nodes(state):
        if not in_gen and isinstance(value, int) and not isinstance(value, bool):
            low = [0] if path[-1] == "warmup_steps" else []
            for bad in (-1, -(2**70), 1.5, float(value), True, False, "3", *low):
                out.append((path, bad, field_names(state, path)))
    return out


def damage_type(state, case):
    out = []
    for path, value, in_gen in nodes(state):
        if in_gen:
            continue
        names = field_names(state, path)
        bads = ["oops", {"x": 1}, complex(1.0, 2.0), ["oops"], object()]
        if path[-1] not in OPTIONAL:
            bads.append(None)
        if not isinstance(value, int | str) or isinstance(value, bool):
            bads.append(True)
        if isinstance(value, np.ndarray):
            bads += [value.astype(bool), value.astype(str), value.astype(complex) + 1j]
        out += [(path, bad, names) for bad in bads]
    return out


def damage_missing(state, case):
    return [
        (path, DELETE, field_names(state, path))
        for path, _, _ in nodes(state)
        if _keyed(path) and path[-1] not in ADDED
    ]


def _keyed(path):
    return isinstance(path[-1], str)


def damage_unknown(state, case):
    out = [((), "bogus", ["bogus"])]
    for path, value, _ in nodes(state):
        if isinstance(value, dict):
            inside = (*path, "bogus")
            named = is_stateful(value) or path[-1] == "hyperparameters"
            names = field_names(state, inside) if named else field_names(state, path)
            out.append((path, "bogus", names))
    return out


def _generator_damages(g):
    name = g["bit_generator"]
    other = "MT19937" if name != "MT19937" else "PCG64"
    bads = [{**g, "bit_generator": n} for n in ("Generator", "BitGenerator", "NoSuch", 5, other)]
    bads += [{**g, "state": x} for x in (5, "oops", {}, None)]
    bads += [{k: v for k, v in g.items() if k != key} for key in g]
    bads.append({**g, "extra": 1})
    if isinstance(g["state"], dict):
        bads.append({**g, "state": {**g["state"], "extra": 1}})
        for key, value in g["state"].items():
            bads.append({**g, "state": {k: v for k, v in g["state"].items() if k != key}})
            if isinstance(value, int):
                for bad in (-1, 2**200, 1.5, "7", True):
                    bads.append({**g, "state": {**g["state"], key: bad}})
                if key == "inc":  # a PCG increment is odd
                    bads.append({**g, "state": {**g["state"], key: value - 1}})
            elif isinstance(value, np.ndarray):
                for bad in (value[:-1], value.astype(float), value.astype(np.int64) * 0 - 1):
                    bads.append({**g, "state": {**g["state"], key: bad}})
    out_of_range = {"has_uint32": (2, -1), "uinteger": (-1, 2**40), "buffer_pos": (-1, 5)}
    for key, extra in out_of_range.items():
        if key in g:
            bads += [{**g, key: bad} for bad in (*extra, 1.5, 0.0, "0", None)]
    if name == "MT19937":
        inner = g["state"]
        bads += [{**g, "state": {**inner, "pos": bad}} for bad in (-1, 625)]
        zero = from_plain(inner["key"]) * 0
        bads.append({**g, "state": {**inner, "key": zero}})
        bads.append({**g, "state": {**inner, "key": plain(zero)}})
    return bads


def damage_generator(state, case):
    out = []
    for path, value, in_gen in nodes(state):
        if is_generator(value) and not in_gen:
            out += [(path, bad, field_names(state, path)) for bad in _generator_damages(value)]
    return out


def damage_nested(state, case):
    out = []
    for path, value, _ in nodes(state):
        if is_stateful(value):
            K = value["num_tasks"]
            names = field_names(state, path)
            bads = [
                ConflictTracker(K + 1).state_dict(),
                GradVac(K).state_dict(),
                {**value, "method": "GradVac"},
                {**value, "num_tasks": K + 1},
                "oops",
                [],
                None,
            ]
            out += [(path, bad, names) for bad in bads]
    return out


def _scaled(x, factor):
    return None if x is None else x * factor


def damage_cross(state, case):
    """Fields that pass alone but contradict each other (case by case)."""
    K = state["num_tasks"]
    # Arithmetic on the arrays of either form (the plain form's lists become arrays).
    s = {
        k: v if k in ("history", "hyperparameters") or not isinstance(v, list) else np.array(v)
        for k, v in from_plain(state).items()
    }
    s["hyperparameters"] = {
        k: np.array(v) if isinstance(v, list) else v
        for k, v in from_plain(state["hyperparameters"]).items()
    }
    out = []

    def add(path, new, names):
        out.append((path, new, names))

    cls = s["method"]
    if cls in ("ConstantWeighting", "PriorLossNormalization", "InitialLossNormalization"):
        add(("weights",), s["weights"] * 2.0 + 1.0, ["weights"])
    if cls == "EqualWeighting":
        add(("hyperparameters", "fixed_weights"), np.full(K, 2.0), ["fixed_weights"])
    if cls == "InitialLossNormalization":
        if s["hyperparameters"]["given_initial_losses"] is None:
            add(("count",), s["hyperparameters"]["warmup_steps"] + 1, ["count"])
            add(("loss_mean",), np.zeros(K), ["loss_mean"])
            add(("weights",), None, ["weights"])
        else:
            add(("count",), 1, ["count"])
    if cls == "DynamicWeightAverage":
        add(("history",), s["history"][1:], ["history"])
        add(("period_weights",), s["period_weights"] * 0.5, ["period_weights"])
        add(("weights",), None, ["weights"])
        if s["count"]:
            add(("loss_mean",), np.zeros(K), ["loss_mean"])
        else:
            add(("loss_mean",), np.ones(K), ["loss_mean"])
        if s["hyperparameters"]["per"] == "step":
            add(("count",), 1, ["count"])
        steps = s["hyperparameters"]["epoch_steps"]
        if steps is not None:
            add(("count",), steps, ["count", "epoch_steps"])
            add(("hyperparameters", "per"), "step", ["epoch_steps"])
    if cls == "RandomLossWeighting":
        other = np.random.Generator(np.random.SFC64(1)).bit_generator.state
        add(("rng",), other, ["rng"])
        add(("weights",), None, ["weights"])
        add(("weights",), s["weights"] * 0.5, ["weights"])
    if cls == "UncertaintyWeighting":
        add(("weights",), None, ["weights"])
        if s["hyperparameters"]["optimizer"] == "sgd":
            add(("adam_m",), np.full(K, 0.1), ["adam_m"])
        if s["adam_m"].any():  # moments before any step
            add(("step",), 0, ["adam_m"])
    if cls == "GradNorm":
        add(("weights",), s["weights"] * 2.0, ["weights"])
        add(("initial_losses",), None, ["initial_losses"])
        if s["hyperparameters"]["given_initial_losses"] is not None:
            add(("initial_losses",), s["initial_losses"] * 2.0, ["initial_losses"])
        if s["hyperparameters"]["optimizer"] == "sgd":
            add(("adam_v",), np.full(K, 0.1), ["adam_m"])
        if s["adam_m"].any():  # moments before any step
            add(("step",), 0, ["adam_m"])
        add(("averaged_steps",), s["step"] + 1, ["averaged_steps"])
        if s["averaged_steps"]:
            add(("weights_sum",), s["weights_sum"] * 2.0, ["weights_sum"])
            add(("weights_sum",), None, ["weights_sum"])
    if cls == "GradVac":
        add(("targets",), s["targets"] + 0.5 * np.eye(K), ["targets"])
    if cls == "ConflictTracker":
        add(("step",), 0, ["first_moment"])
        add(("step",), 1, ["first_moment"])  # one update cannot reach beyond 1 - beta1
        add(("first_moment",), np.ones((K, K)), ["first_moment"])
    if cls == "MoCo":
        add(("step",), 0, ["tracked"])
        add(("lambda",), s["lambda"] * 0.5, ["lambda"])
    if cls == "DBMTL":
        add(("step",), 0, ["buffer"])
    if cls in ("COSMOS", "PBI"):
        add(("hyperparameters", "preference"), np.zeros(K), ["preference"])
    if cls == "PCD" and not s["ema"].any():
        add(("ema",), np.ones(K), ["ema"])
    if cls == "PCD":
        add(("step",), 0, ["ema"])
    if cls == "MomentumPCGrad":
        add(("tracker", "step"), 0, ["tracker", "first_moment"])
    return out


def damage_encoded(state, case):
    """Arrays saved as bytes, damaged: their dtype, shape or data."""
    out = []
    for path, value, _ in nodes(state):
        if not is_encoded(value):
            continue
        names = field_names(state, path)
        data, shape = value["data"], value["shape"]
        bads = [{**value, ARRAY_TAG: t} for t in ("object", "O", "<V8", "nonsense", 5, None)]
        bads += [{**value, "shape": x} for x in ([-1], [1.5], "3", [True], [*shape, 2], None)]
        bads += [{**value, "data": x} for x in ("oops", data[:-1], data + b"\0", None)]
        wider = {"|u1": "<u2", "<u4": "<u8", "<u8": "<u4", "<f8": "<f4"}.get(value[ARRAY_TAG])
        if wider:  # the same bytes read as another width: the length no longer fits
            bads.append({**value, ARRAY_TAG: wider})
        out += [(path, bad, names) for bad in bads]
    return out


DAMAGES = {
    "nan": damage_nan,
    "inf": damage_inf,
    "shape": damage_shape,
    "count": damage_count,
    "type": damage_type,
    "missing": damage_missing,
    "unknown": damage_unknown,
    "generator": damage_generator,
    "nested": damage_nested,
    "cross": damage_cross,
    "encoded": damage_encoded,
}
FORMS = ("plain", "numpy")


def sample_state(case, K=2, steps=4, seed=0, form="plain"):
    obj = make(case, K)
    drive(obj, seed, steps)
    state = obj.state_dict() if form == "plain" else numpy_form(obj)
    if form == "plain":  # the plain form really is plain: nothing from numpy
        for path, value, _ in nodes(state):
            assert not isinstance(value, np.ndarray | np.generic), (case, path)
    return state


def _damaged(case, state, kind):
    found = DAMAGES[kind](state, case)
    if kind == "unknown":  # an unknown key is added below the path, not set at it
        return [((*path, "bogus"), 1, names) for path, _, names in found]
    return found


PAIRS = [
    (case, kind)
    for case in sorted(CASES)
    for kind in DAMAGES
    if _damaged(case, sample_state(case), kind)
]
FORM_PAIRS = [
    (case, kind, form)
    for form in FORMS
    for case in sorted(CASES)
    for kind in DAMAGES
    if _damaged(case, sample_state(case, form=form), kind)
]


def test_every_stateful_class_has_a_case():
    classes = {type(make(case, 2)) for case in CASES}
    registered = {weighting.get(name) for name in weighting.available()}
    registered |= {solvers.get(name) for name in solvers.available("stateful-gradient")}
    assert registered | {ConflictTracker} <= classes
    kinds_seen = {kind for _, kind in PAIRS}
    assert kinds_seen == set(DAMAGES)
    assert {kind for _, kind, form in FORM_PAIRS if form == "numpy"} == set(DAMAGES) - {"encoded"}


@pytest.mark.parametrize(("case", "kind"), PAIRS)
@given(data=st.data())
def test_a_malformed_state_is_refused_by_name_and_changes_nothing(case, kind, data):
    K = data.draw(st.integers(1, 4), label="K")
    steps = data.draw(st.integers(2, 5), label="steps")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    state = sample_state(case, K, steps, seed)
    damages = _damaged(case, state, kind)
    path, new, names = data.draw(st.sampled_from(damages), label="damage")
    bad = apply(state, path, new)
    target = make(case, K)
    drive(target, seed + 1, data.draw(st.integers(0, 3), label="target steps"))
    before = target.state_dict()
    with pytest.raises((ValueError, TypeError)) as error:
        target.load_state_dict(bad)
    message = str(error.value)
    for name in names:
        assert f"'{name}'" in message, (path, message)
    assert_same_state(target.state_dict(), before)


@pytest.mark.parametrize("case", sorted(CASES))
@given(
    K=st.integers(1, 4),
    steps=st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 5)),
    seeds=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    form=st.sampled_from(FORMS),
)
def test_a_valid_state_of_another_object_loads_and_continues_bit_for_bit(
    case, K, steps, seeds, form
):
    source, target = make(case, K), make(case, K)
    drive(source, seeds[0], steps[0])
    drive(target, seeds[1], steps[1])
    target.load_state_dict(source.state_dict() if form == "plain" else numpy_form(source))
    assert_same_state(target.state_dict(), source.state_dict())
    for a, b in zip(drive(source, 7, steps[2]), drive(target, 7, steps[2]), strict=True):
        assert a.tobytes() == b.tobytes()
    assert_same_state(target.state_dict(), source.state_dict())


@pytest.mark.parametrize(("case", "kind", "form"), FORM_PAIRS)
@pytest.mark.parametrize("K", [1, 3])
def test_every_damage_of_one_state(case, kind, form, K):
    # Not a sample: every damage of one state, each refused by name, nothing changed.
    state = sample_state(case, K, steps=4, seed=11, form=form)
    target = make(case, K)
    drive(target, 12, 2)
    before = target.state_dict()
    for path, new, names in _damaged(case, state, kind):
        with pytest.raises((ValueError, TypeError)) as error:
            target.load_state_dict(apply(state, path, new))
        for name in names:
            assert f"'{name}'" in str(error.value), (path, new, str(error.value))
        assert_same_state(target.state_dict(), before)
