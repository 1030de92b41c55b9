"""How the adapter turns what the user gave (a name, an object, a function) into a step.

A gradient method is any callable that maps the Gram matrix (and, where it reads them,
the losses) to a :class:`~paretomtl.solvers.SolverResult` or to K weights: a
registered solver (by name), a :class:`~paretomtl.solvers.Solver`, a stateful object
such as :class:`~paretomtl.solvers.GradVac`, or the user's own ``f(gram) -> weights``.
A method that declares ``needs_grads = True`` (GradDrop, TrimmedMean: the attribute of
the function, the class or the object) is called with the K x M gradients as a numpy
array on the CPU and the Gram matrix, ``method(grads, gram=G)``, and must return a
``SolverResult`` whose ``direction`` (M,) the adapter writes back.
A loss weighting is a :class:`~paretomtl.weighting.LossWeighting` (by name or as an
object), called with the losses and whatever else its ``inputs`` name. Uncertainty
weighting by name (``"uncertainty"``) is the exception: its log-variances are learnt
with the network, so the adapter builds them as torch parameters for the user's
optimiser (:class:`~paretomtl.adapters.torch.UncertaintyWeightingLoss`, a
:class:`ParameterRoute`); the numpy object, given itself, keeps its own optimiser and
warns. The choice is made once, when the adapter is built; the step never asks which
method it runs.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from paretomtl import solvers, weighting
from paretomtl.adapters.torch._uncertainty import UncertaintyWeightingLoss
from paretomtl.solvers import Solver, SolverResult
from paretomtl.weighting import LossWeighting, UncertaintyWeighting
from paretomtl.weighting.uncertainty import TASK_TYPES_HELP, check_task_types


@dataclass
class Route:
    """A method's name, how to build it for K tasks, and what it is called with.

    Attributes:
        name: the registry name, or the object's class or function name.
        build: ``build(K)`` returns the method object for K tasks.
        fixed: True when the object is built once and never rebuilt: the user gave
            it, or its torch parameters are in the user's optimiser.
        stateful: whether the method keeps memory between steps.
        inputs: what a call needs besides the Gram matrix or losses (``"losses"``
            for gradient methods that read them, ``"grads"`` for those that need the
            K x M gradients themselves, ``"grad_norms"`` for GradNorm).
        given: True when the user gave the object itself (default: ``fixed``); the
            adapter then never overwrites its state on its own (distributed ranks
            that disagree raise instead of adopting rank 0's).
    """

    name: str
    build: Callable[[int], Callable]
    fixed: bool
    stateful: bool
    inputs: tuple[str, ...]
    given: bool | None = None

    def __post_init__(self) -> None:
        if self.given is None:
            self.given = self.fixed

    def loaded(self, current: Any, saved: dict | None) -> Any:
        """The method object holding ``saved`` (a ``state_dict()``), or None for none
        saved where the method is rebuilt at the next step. The state is loaded into a
        copy first, so a bad one raises a ValueError (``state['method_state']: ...``)
        and leaves ``current`` as it was; an object the user gave is loaded in place."""
        method = current if self.fixed else None
        if saved is None:
            return method
        try:
            trial = copy.deepcopy(method) if method is not None else self.build(saved["num_tasks"])
            trial.load_state_dict(saved)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"state['method_state']: {exc}") from None
        if method is None:
            return trial
        method.load_state_dict(saved)  # checked on the copy above
        return method


class GradientRoute(Route):
    """Per-task gradients, their Gram matrix, the method's weights, the combination."""

    @property
    def needs_grads(self) -> bool:
        """Whether the method is given the K x M gradients (the K x M path)."""
        return "grads" in self.inputs

    def solve(
        self,
        method: Callable,
        G: np.ndarray,
        losses: np.ndarray,
        grads: np.ndarray | None = None,
    ) -> SolverResult:
        """The method's result on the Gram matrix (a bare weight vector is wrapped),
        or on ``grads`` and the Gram matrix for a method that needs the gradients."""
        extra = {"losses": losses} if "losses" in self.inputs else {}
        if self.needs_grads:
            return self._checked_direction(method(grads, gram=G, **extra), grads.shape[1])
        if "gram" in self.inputs:
            out = method(gram=G, **extra)
        else:
            out = method(G, **extra)
        if isinstance(out, SolverResult):
            return out
        K = G.shape[0]
        try:
            weights = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            weights = np.full(0, np.nan)
        if weights.shape != (K,) or not np.isfinite(weights).all():
            raise ValueError(
                f"the method {self.name!r} must return K = {K} finite weights or a "
                f"SolverResult; got {out!r}"
            )
        return SolverResult(weights=weights, direction=None, gram=G, method=self.name)

    def _checked_direction(self, out: object, M: int) -> SolverResult:
        d = getattr(out, "direction", None) if isinstance(out, SolverResult) else None
        if not isinstance(d, np.ndarray) or d.shape != (M,):
            seen = f"direction {d!r:.80}" if isinstance(out, SolverResult) else f"{out!r:.80}"
            raise ValueError(
                f"the method {self.name!r} needs the gradients (needs_grads) and must "
                f"return a SolverResult whose direction has M = {M} entries; got {seen}"
            )
        if not np.isfinite(d).all():
            raise ValueError(
                f"the method {self.name!r} returned a direction with NaN or Inf from "
                f"finite gradients; no .grad was changed"
            )
        return out


class LossRoute(Route):
    """The losses (and GradNorm's norms) in, loss weights out, one weighted backward."""

    def weigh(
        self,
        method: Callable,
        losses: np.ndarray,
        grad_norms: np.ndarray | None,
        scale: float = 1.0,
    ):
        """This step's loss weights (``scale``, the GradScaler's, is for methods with
        torch parameters: see :class:`ParameterRoute`)."""
        if "grad_norms" in self.inputs:
            return method(losses, grad_norms)
        return method(losses)


class ParameterRoute(LossRoute):
    """A loss weighting whose own parameters are torch parameters that the user's
    optimiser trains (uncertainty weighting's log-variances): the method gives this
    step's weights and writes its parameters' gradient (times the GradScaler's
    ``scale``, as autograd would under a scaled loss) into their ``.grad``."""

    def weigh(self, method, losses, grad_norms, scale: float = 1.0):
        """This step's loss weights; the parameters' gradient into their ``.grad``."""
        return method.weigh(losses, scale=scale)


_UNCERTAINTY_OPTIONS = ("task_types", "initial_log_variances")


def _uncertainty_builder(name: str, options: dict) -> Callable[[int | None], Callable]:
    """``build(K)`` for ``Aggregator("uncertainty")``: the torch module, built once
    when the aggregator is (K from ``num_tasks`` or from one task type per task)."""
    numpy_only = sorted(set(options) & {"lr", "optimizer", "seed"})
    if numpy_only:
        raise ValueError(
            f"{name!r} through the torch adapter trains its log-variances with your "
            f"optimizer: {numpy_only} do not apply (set their learning rate in your "
            f"optimizer, e.g. a param group for agg.parameters()). It takes "
            f"{list(_UNCERTAINTY_OPTIONS)}; for the framework-free route with its own "
            f"optimizer pass Aggregator(paretomtl.weighting.UncertaintyWeighting(K, ...))"
        )
    unknown = sorted(set(options) - set(_UNCERTAINTY_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown options {unknown} for {name!r}; it takes {list(_UNCERTAINTY_OPTIONS)}"
        )
    types = options.get("task_types")

    def build(num_tasks: int | None) -> UncertaintyWeightingLoss:
        if types is None:
            raise ValueError(
                f"Aggregator({name!r}) needs options={{'task_types': ...}}, required: "
                f"{TASK_TYPES_HELP}"
            )
        if num_tasks is None and isinstance(types, str):
            raise ValueError(
                f"Aggregator({name!r}) builds its log-variances as torch parameters when "
                f"it is created, for your optimizer (agg.parameters()), so it needs K now: "
                f"pass num_tasks=K, or options={{'task_types': [...]}} with one type per task"
            )
        K = num_tasks if num_tasks is not None else len(check_task_types(types, None))
        return UncertaintyWeightingLoss(K, **{"task_types": types, **options})

    return build


def _parameters(obj: Callable) -> dict:
    try:
        return dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # some builtins have no signature
        return {}


def _builder(cls: type, options: dict, seed: object) -> Callable[[int], Callable]:
    options = dict(options)
    if "seed" not in options and "seed" in _parameters(cls):
        options["seed"] = seed  # e.g. RLW's random weights, GradVac's orders

    def build(num_tasks: int) -> Callable:
        return cls(num_tasks, **options)

    return build


def _name_of(obj: object) -> str:
    if isinstance(obj, UncertaintyWeightingLoss):
        return "uncertainty"
    for registry in (solvers.REGISTRY, weighting.REGISTRY):
        for name in registry.available():
            if registry.get(name) in (obj, type(obj)):
                return name
    return getattr(obj, "name", None) or getattr(obj, "__name__", type(obj).__name__)


def _object_route(obj: object) -> Route:
    name = _name_of(obj)
    stateful = callable(getattr(obj, "state_dict", None))
    if isinstance(obj, UncertaintyWeightingLoss):
        return ParameterRoute(name, lambda K: obj, True, True, ())
    if isinstance(obj, UncertaintyWeighting):
        warnings.warn(
            "UncertaintyWeighting trains its log-variances itself, with its own numpy "
            f"optimizer ({obj.optimizer!r}, lr={obj.lr!r}), not with yours: your optimizer, "
            "LR scheduler and model checkpoint do not see them (agg.state_dict() does). "
            "For torch parameters that your optimizer trains use "
            "Aggregator('uncertainty', options={'task_types': ...}) and add "
            "agg.parameters() to the optimizer",
            UserWarning,
            stacklevel=4,
        )
    if isinstance(obj, LossWeighting):
        return LossRoute(name, lambda K: obj, True, stateful, tuple(obj.inputs[1:]))
    if not callable(obj):
        raise TypeError(
            f"method must be a registry name, a loss weighting or a callable gradient "
            f"method f(gram) -> weights; got {type(obj).__name__}"
        )
    params = _parameters(obj)
    inputs = tuple(k for k in ("gram", "losses") if k in params)
    if getattr(obj, "needs_grads", False):
        inputs = ("grads", *inputs)
    return GradientRoute(name, lambda K: obj, True, stateful, inputs)


def resolve(method: object, options: dict, seed: object, rng: np.random.Generator) -> Route:
    """The route for ``method`` (a name or an object) with its ``options``.

    ``seed`` goes to the constructors of random stateful methods built by name;
    ``rng`` is the generator stateless random methods (PCGrad) draw from.
    """
    if not isinstance(method, str):
        if options:
            raise ValueError(
                "options= is for methods given by name; an object carries its own "
                f"options (got options {sorted(options)} with a {type(method).__name__})"
            )
        return _object_route(method)
    if method in solvers.REGISTRY:
        entry = solvers.info(method)
        grads = ("grads",) if getattr(entry.obj, "needs_grads", False) else ()
        if entry.kind == "stateful-gradient":
            losses = ("losses",) if "losses" in _parameters(entry.obj.__call__) else ()
            return GradientRoute(
                entry.name,
                _builder(entry.obj, options, seed),
                False,
                True,
                (*grads, "gram", *losses),
            )
        if "seed" in _parameters(entry.obj) and "seed" not in options:
            options = {**options, "seed": rng}
        fn = Solver(entry.obj, **options)
        return GradientRoute(entry.name, lambda K: fn, False, False, (*grads, "gram", "losses"))
    if method in weighting.REGISTRY:
        entry = weighting.info(method)
        if entry.obj is UncertaintyWeighting:
            return ParameterRoute(
                entry.name, _uncertainty_builder(entry.name, options), True, True, (), given=False
            )
        inputs = tuple(entry.obj.inputs[1:])
        return LossRoute(entry.name, _builder(entry.obj, options, seed), False, True, inputs)
    raise ValueError(
        f"unknown method {method!r}; gradient methods: {', '.join(solvers.available())}; "
        f"loss weightings: {', '.join(weighting.available())}"
    )
