"""paretomtl's gradient methods inside TorchJD: as Weightings and as Aggregators.

TorchJD (https://github.com/SimplexLab/TorchJD, 0.18) splits a step of Jacobian
descent in two: an ``Aggregator`` turns the K x M Jacobian into one update
(``torchjd.autojac.jac_to_grad`` after ``backward`` or ``mtl_backward``), and a
``Weighting`` turns the K x K Gramian into K weights (the ``autogram`` engine). This
module gives every paretomtl gradient method both shapes, so that a TorchJD training
loop runs our solvers with nothing else changed::

    from torchjd.autojac import jac_to_grad, mtl_backward
    from paretomtl.adapters import torchjd as ptjd

    aggregator = ptjd.aggregator("upgrad")             # instead of torchjd's UPGrad()
    mtl_backward(losses, features=z)
    jac_to_grad(trunk.parameters(), aggregator)        # returns the weights, as TorchJD's do

- :func:`weighting` (a ``torchjd.aggregation.Weighting`` on the Gramian) for every
  method that works on the Gram matrix; the methods that need the K x M gradients
  themselves (``needs_grads``: GradDrop, TrimmedMean, MoCo, DB-MTL, ExcessMTL) exist
  only as Aggregators, as in TorchJD.
- :func:`aggregator` (a ``torchjd.aggregation.Aggregator``: matrix in, vector out).
  For a Gram-space method it is a ``GramianWeightedAggregator`` whose Gramian is
  accumulated in float64 (``gram_precision``, as in
  :class:`paretomtl.adapters.torch.Aggregator`), so ``jac_to_grad`` returns its
  weights and accepts ``optimize_gramian_computation=True``.

The method is anything :class:`paretomtl.adapters.torch.Aggregator` takes as a
gradient method: a registry name (``paretomtl.solvers.available()``; TorchJD's class
names such as ``"IMTLG"`` or ``"AlignedMTL"`` are accepted too) with ``options``, a
``solvers.method(...)`` object, a stateful object (``GradVac(3)``), or a function
``f(gram) -> weights``. Stateful methods keep their memory in the returned object
(``reset()``, and ``state_dict()`` / ``load_state_dict()`` through
``nn.Module``'s extra state); methods that read the losses (EPO, MGDA with a loss
normalisation, MoCo, DB-MTL) get them from :meth:`set_losses` before each step.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

try:
    from torchjd import Stateful
    from torchjd import aggregation as jd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "paretomtl.adapters.torchjd needs TorchJD >= 0.18: pip install 'torchjd>=0.18'"
    ) from exc

if not hasattr(jd, "GramianWeightedAggregator"):  # pragma: no cover - older TorchJD
    raise ImportError(
        "paretomtl.adapters.torchjd needs TorchJD >= 0.18 (Gramian-based Weightings); "
        "pip install -U 'torchjd>=0.18'"
    )

from paretomtl.adapters.torch import Aggregator, gram_matrix
from paretomtl.solvers import SolverResult
from paretomtl.state import generator

__all__ = [
    "GradsAggregator",
    "GramAggregator",
    "GramWeighting",
    "aggregator",
    "weighting",
]

_PRECISIONS = ("blockwise", "float64")

# TorchJD's class names (lower case, "Weighting" dropped) where they differ from ours.
_TORCHJD_NAMES = {
    "alignedmtl": "aligned-mtl",
    "crmogm": "cr-mogm",
    "excessmtl": "excess-mtl",
    "imtlg": "imtl-g",
    "nashmtl": "nash-mtl",
    "trimmedmean": "trimmed-mean",
}


def _registry_name(method: str) -> str:
    key = method.lower().replace("_", "-")
    if key.endswith("weighting") and key != "weighting":
        key = key[: -len("weighting")]
    return _TORCHJD_NAMES.get(key, key)


class _Core:
    """The method, its generator, K, the losses of the next step, and its state.

    The method is resolved exactly as :class:`paretomtl.adapters.torch.Aggregator`
    resolves it (its public ``route``); only gradient methods are accepted.
    """

    def __init__(
        self,
        method: object,
        options: dict | None,
        seed: int | np.random.Generator | None,
        num_tasks: int | None,
    ) -> None:
        if isinstance(method, str):
            method = _registry_name(method)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        resolver = Aggregator(method, options=options, seed=self.rng, num_tasks=num_tasks)
        self.route: Any = resolver.route  # a gradient route (checked below)
        self.name = resolver.method
        if not hasattr(self.route, "solve"):
            raise ValueError(
                f"method {self.name!r} is a loss weighting (it weighs the losses, not the "
                f"Jacobian): TorchJD's Weightings and Aggregators see only the Jacobian or "
                f"its Gramian. Use paretomtl.adapters.torch.Aggregator({self.name!r}) in the "
                f"training loop instead; gradient methods: paretomtl.solvers.available()"
            )
        self.method: Any = resolver.method_state  # built when given or when K is known
        self.num_tasks = num_tasks
        self.steps = 0
        self.losses: np.ndarray | None = None
        self.last_result: SolverResult | None = None

    @property
    def needs_grads(self) -> bool:
        return bool(self.route.needs_grads)

    @property
    def reads_losses(self) -> bool:
        if "losses" not in self.route.inputs:
            return False
        return bool(getattr(self.method, "needs_losses", True))

    def for_tasks(self, K: int) -> Any:
        if self.method is None:
            self.method = self.route.build(K)
            self.num_tasks = K
        have = getattr(self.method, "num_tasks", None)
        if have is None:
            have = self.num_tasks
        if self.route.stateful and have is not None and have != K:
            raise ValueError(
                f"this {self.name} keeps state for {have} tasks; got a matrix with {K} rows "
                f"(call reset() to start over with another number of tasks)"
            )
        self.num_tasks = K
        return self.method

    def set_losses(self, losses: object) -> None:
        if isinstance(losses, torch.Tensor):
            values = losses.detach().to(device="cpu", dtype=torch.float64).numpy()
        elif isinstance(losses, (list, tuple)):
            values = np.array(
                [float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for v in losses]
            )
        else:
            values = np.asarray(losses, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                f"losses must be K loss values (a 1-D tensor, array or list); got shape "
                f"{values.shape}"
            )
        self.losses = values

    def solve(self, G: np.ndarray, grads: np.ndarray | None = None) -> SolverResult:
        K = G.shape[0]
        method = self.for_tasks(K)
        losses, self.losses = self.losses, None  # the losses of this step only
        if losses is not None and losses.shape != (K,):
            raise ValueError(
                f"set_losses got {losses.shape[0]} losses for a matrix with {K} rows (one "
                f"loss per task is needed)"
            )
        try:
            result = self.route.solve(method, G, losses, grads)
        except (TypeError, ValueError) as exc:
            if losses is None and self.reads_losses:
                raise ValueError(
                    f"{self.name} reads the losses of the step: call set_losses(losses) "
                    f"before each call ({exc})"
                ) from exc
            raise
        self.steps += 1
        self.last_result = result
        return result

    def reset(self) -> None:
        self.steps = 0
        self.losses = None
        self.last_result = None
        if not self.route.fixed:
            self.method = None
        elif self.route.stateful:
            self.method.reset()

    def state(self) -> dict:
        stateful = self.route.stateful and self.method is not None
        return {
            "method": self.name,
            "steps": self.steps,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "method_state": self.method.state_dict() if stateful else None,
        }

    def load(self, state: object) -> None:
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict from state_dict(); got {type(state).__name__}")
        expected = {"method", "steps", "rng", "method_state"}
        if set(state) != expected:
            raise ValueError(
                f"state must have the keys {sorted(expected)}; missing "
                f"{sorted(expected - set(state), key=str)}, unknown "
                f"{sorted(set(state) - expected, key=str)}"
            )
        if state["method"] != self.name:
            raise ValueError(f"state is for method {state['method']!r}, not {self.name!r}")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"state['steps'] must be an integer >= 0; got {steps!r}")
        rng = generator().check(state["rng"], 0, "state['rng']")
        saved = state["method_state"]
        method: Any = self.route.loaded(self.method, saved)
        self.method = method
        self.num_tasks = getattr(method, "num_tasks", None) if saved is not None else None
        self.steps = int(steps)
        self.rng.bit_generator.state = rng
        self.losses = None


def _check_matrix(matrix: object, name: str) -> torch.Tensor:
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a 2-D tensor with K >= 1 rows; got shape {matrix.shape}")
    return matrix


def _gram_numpy(gramian: torch.Tensor) -> np.ndarray:
    """The K x K Gramian as float64 numpy, symmetrised (float32 products are not)."""
    _check_matrix(gramian, "gramian")
    if gramian.shape[0] != gramian.shape[1]:
        raise ValueError(f"gramian must be square (K x K); got shape {tuple(gramian.shape)}")
    G = gramian.detach().to(device="cpu", dtype=torch.float64).numpy()
    return 0.5 * (G + G.T)


def _float64_gram(matrix: torch.Tensor, precision: str) -> torch.Tensor:
    """The Gramian of ``matrix`` accumulated in float64 (paretomtl's torch adapter),
    on the matrix's device."""
    _check_matrix(matrix, "matrix")
    G = gram_matrix([matrix.detach()], matrix.shape[0], precision)
    return torch.from_numpy(G).to(matrix.device)


class _ExtraState:
    """``nn.Module`` extra state: the method's state, the generator's, the step."""

    _core: _Core

    def get_extra_state(self) -> dict:
        """Plain-data state for ``state_dict()`` (the method's, the generator's, the
        step count); restored by ``load_state_dict`` all or nothing."""
        return self._core.state()

    def set_extra_state(self, state: dict) -> None:
        """Restore :meth:`get_extra_state` output; a malformed state raises a
        ValueError naming its field and changes nothing."""
        self._core.load(state)


class _Controls:
    """What every object of this module offers besides TorchJD's interface."""

    _core: _Core

    def reset(self) -> None:
        """Forget the method's memory: a method built from a name is rebuilt at the
        next call (for any number of tasks), a given object is reset."""
        self._core.reset()

    def set_losses(self, losses: object) -> None:
        """The K loss values of the coming step, for methods that read them (EPO,
        MGDA with ``normalization="loss"``, MoCo, DB-MTL); used by the next call only.

        Args:
            losses: a 1-D tensor, array or list of K loss values (tensors are detached).
        """
        self._core.set_losses(losses)

    @property
    def method(self) -> str:
        """The registry name of the method (or the object's name)."""
        return self._core.name

    @property
    def method_state(self) -> Any:
        """The method object in use (its state, e.g. ``state_dict()``); None before the
        first call for a method built from a name."""
        return self._core.method

    @property
    def last_result(self) -> SolverResult | None:
        """The :class:`~paretomtl.solvers.SolverResult` of the last call (weights,
        Gram matrix, ``converged``, ``kkt_residual``), None before the first."""
        return self._core.last_result


class GramWeighting(_Controls, _ExtraState, jd.Weighting, Stateful):
    r"""A paretomtl gradient method as a TorchJD ``Weighting`` on the Gramian.

    ``weighting(G)`` returns the method's K weights for the K x K Gram matrix
    :math:`G = JJ^\top` of the task gradients (float64 on the CPU inside; the weights
    come back in G's dtype and device). Usable wherever TorchJD takes a Gramian
    weighting: the ``autogram`` engine (``losses.backward(weighting(gramian))``),
    ``GramianWeightedAggregator(weighting)``, or composed (``weighting << f``).
    Build it with :func:`weighting`.

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torchjd import weighting
        >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
        >>> w = weighting("mgda")(J @ J.T)
        >>> [round(float(v), 4) for v in w]
        [0.6, 0.4]
    """

    def __init__(
        self,
        method: object,
        *,
        options: dict | None = None,
        seed: int | np.random.Generator | None = None,
        num_tasks: int | None = None,
    ) -> None:
        super().__init__()
        self._core = _Core(method, options, seed, num_tasks)
        if self._core.needs_grads:
            raise ValueError(
                f"{self._core.name} reads the K x M gradients themselves (needs_grads), not "
                f"only their Gramian: use paretomtl.adapters.torchjd.aggregator("
                f"{self._core.name!r}), a TorchJD Aggregator, with torchjd.autojac"
            )

    def forward(self, gramian: torch.Tensor, /) -> torch.Tensor:
        """The K weights for the K x K Gramian (in its dtype, on its device)."""
        result = self._core.solve(_gram_numpy(gramian))
        if result.weights is None:
            raise ValueError(f"{self._core.name} returned no weights (weights=None)")
        dtype = gramian.dtype if gramian.is_floating_point() else torch.float64
        return torch.as_tensor(result.weights, dtype=dtype, device=gramian.device)

    def __repr__(self) -> str:
        return f"GramWeighting({self._core.name!r})"


class GramAggregator(_Controls, jd.GramianWeightedAggregator, Stateful):
    r"""A Gram-space paretomtl method as a TorchJD ``GramianWeightedAggregator``.

    ``aggregator(J)`` forms :math:`G = JJ^\top` accumulated in float64
    (``gram_precision``: ``"blockwise"``, float32 products summed in float64 over
    column blocks, or ``"float64"``, exact), takes the method's weights w on the CPU,
    and returns :math:`w^\top J` in J's dtype on J's device. ``jac_to_grad`` returns
    the weights (its hook on ``.weighting`` sees them) and, with
    ``optimize_gramian_computation=True``, calls ``.gramian_weighting`` (a
    :class:`GramWeighting`) on TorchJD's own Gramian. Build it with :func:`aggregator`.

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torchjd import aggregator
        >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
        >>> [round(float(v), 4) for v in aggregator("mgda")(J)]
        [0.0, 1.0, 1.0]
    """

    def __init__(self, weighting: GramWeighting, *, gram_precision: str = "blockwise") -> None:
        if not isinstance(weighting, GramWeighting):
            raise TypeError(
                f"weighting must be a GramWeighting (paretomtl.adapters.torchjd.weighting(...)); "
                f"got {type(weighting).__name__}"
            )
        if gram_precision not in _PRECISIONS:
            raise ValueError(f"gram_precision must be one of {_PRECISIONS}; got {gram_precision!r}")
        super().__init__(weighting)
        self.gram_precision = gram_precision
        # The Gramian in float64 instead of torchjd's J @ J.T in J's dtype.
        self.weighting = weighting << functools.partial(_float64_gram, precision=gram_precision)
        self._core = weighting._core

    def forward(self, matrix: torch.Tensor, /) -> torch.Tensor:
        """The combination :math:`w^\\top J` of the rows of ``matrix`` (J's dtype)."""
        with torch.no_grad():
            weights = self.weighting(matrix)
            return torch.tensordot(weights.to(matrix.dtype), matrix.detach(), dims=1)

    def __repr__(self) -> str:
        return f"GramAggregator({self._core.name!r}, gram_precision={self.gram_precision!r})"

    def __str__(self) -> str:
        return f"paretomtl:{self._core.name}"


class GradsAggregator(_Controls, _ExtraState, jd.Aggregator, Stateful):
    """A paretomtl method that reads the K x M gradients, as a TorchJD ``Aggregator``.

    For the ``needs_grads`` methods (GradDrop, TrimmedMean, MoCo, DB-MTL,
    ExcessMTL): ``aggregator(J)`` hands J to the method as a numpy array on the CPU
    (J's dtype; bfloat16 as float32) with its float64 Gramian, and returns the
    method's ``direction`` in J's dtype on J's device. Build it with :func:`aggregator`.

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torchjd import aggregator
        >>> J = torch.tensor([[1.0, 2.0], [3.0, -4.0], [5.0, 6.0]])
        >>> aggregator("trimmed-mean", options={"trim_number": 1})(J)
        tensor([3., 2.])
    """

    def __init__(
        self,
        method: object,
        *,
        options: dict | None = None,
        seed: int | np.random.Generator | None = None,
        num_tasks: int | None = None,
        gram_precision: str = "blockwise",
    ) -> None:
        if gram_precision not in _PRECISIONS:
            raise ValueError(f"gram_precision must be one of {_PRECISIONS}; got {gram_precision!r}")
        super().__init__()
        self._core = _Core(method, options, seed, num_tasks)
        self.gram_precision = gram_precision

    def forward(self, matrix: torch.Tensor, /) -> torch.Tensor:
        """The method's direction for the Jacobian ``matrix`` (J's dtype and device)."""
        _check_matrix(matrix, "matrix")
        with torch.no_grad():
            J = matrix.detach()
            G = gram_matrix([J], J.shape[0], self.gram_precision)
            host = J if J.dtype in (torch.float16, torch.float32, torch.float64) else J.float()
            grads = host.cpu().numpy()
            if self._core.needs_grads:
                result = self._core.solve(G, grads)
                direction = result.direction
            else:  # a Gram-space method built as a plain Aggregator
                result = self._core.solve(G)
                direction = result.weights @ grads
            return torch.as_tensor(
                np.ascontiguousarray(direction), dtype=matrix.dtype, device=matrix.device
            )

    def __repr__(self) -> str:
        return f"GradsAggregator({self._core.name!r}, gram_precision={self.gram_precision!r})"

    def __str__(self) -> str:
        return f"paretomtl:{self._core.name}"


def weighting(
    method: object,
    *,
    options: dict | None = None,
    seed: int | np.random.Generator | None = None,
    num_tasks: int | None = None,
) -> GramWeighting:
    """A paretomtl gradient method as a TorchJD ``Weighting`` of the Gramian.

    Args:
        method: a registry name (``paretomtl.solvers.available()``, or a TorchJD class
            name such as ``"UPGrad"``, ``"IMTLG"``), a ``solvers.method(...)`` object, a
            stateful object such as ``GradVac(3)``, or a function ``f(gram) ->
            weights``. Methods that need the K x M gradients (``needs_grads``) are
            refused: use :func:`aggregator`.
        options: keyword options of a method given by name (e.g. ``{"c": 0.5}`` for
            ``cagrad``; for stateful methods, their constructor's arguments).
        seed: int or numpy Generator for methods that draw random numbers.
        num_tasks: K, to build a stateful method given by name at once (otherwise
            at the first call).

    Returns:
        A :class:`GramWeighting` (an ``nn.Module``; its ``state_dict()`` carries the
        method's state).

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torchjd import weighting
        >>> G = torch.tensor([[4.0, -1.0], [-1.0, 1.0]])
        >>> [round(float(v), 4) for v in weighting("UPGrad")(G)]  # TorchJD's: [0.625, 0.9998]
        [0.625, 1.0]
    """
    return GramWeighting(method, options=options, seed=seed, num_tasks=num_tasks)


def aggregator(
    method: object,
    *,
    options: dict | None = None,
    seed: int | np.random.Generator | None = None,
    num_tasks: int | None = None,
    gram_precision: str = "blockwise",
) -> jd.Aggregator:
    """A paretomtl gradient method as a TorchJD ``Aggregator`` (matrix in, vector out).

    For ``torchjd.autojac.jac_to_grad`` after ``backward`` / ``mtl_backward``. A
    Gram-space method gives a :class:`GramAggregator` (a TorchJD
    ``GramianWeightedAggregator``: ``jac_to_grad`` returns its weights); a method
    that needs the K x M gradients a :class:`GradsAggregator`.

    Args:
        method, options, seed, num_tasks: as for :func:`weighting`; here methods
            that need the K x M gradients (GradDrop, TrimmedMean, MoCo, DB-MTL,
            ExcessMTL) are accepted too.
        gram_precision: ``"blockwise"`` (default: float32 products summed in float64,
            about 1e-7 relative) or ``"float64"`` (exact); float64 Jacobians are exact
            either way.

    Example:
        >>> import torch
        >>> from torchjd.autojac import backward, jac_to_grad
        >>> from paretomtl.adapters.torchjd import aggregator
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> backward([torch.tensor([-1.0, 1.0]) @ x, (x**2).sum()])
        >>> weights = jac_to_grad([x], aggregator("upgrad"))
        >>> x.grad, weights
        (tensor([0.5000, 2.5000]), tensor([0.5000, 0.5000], dtype=torch.float64))
    """
    if _Core(method, options, seed, None).needs_grads:  # builds nothing
        return GradsAggregator(
            method,
            options=options,
            seed=seed,
            num_tasks=num_tasks,
            gram_precision=gram_precision,
        )
    return GramAggregator(
        GramWeighting(method, options=options, seed=seed, num_tasks=num_tasks),
        gram_precision=gram_precision,
    )
