"""Replace ``sum(losses).backward()`` with a paretomtl method, by name or as an object."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from paretomtl._checks import check_count
from paretomtl.adapters.torch._jacobian import (
    MODES,
    PRECISIONS,
    accumulate_combination,
    fill_non_finite,
    gram_matrix,
    graph_leaves,
    per_task_grads,
)
from paretomtl.adapters.torch._routes import GradientRoute, LossRoute, resolve
from paretomtl.solvers import ConflictStats, ConflictTracker, SolverResult
from paretomtl.state import generator

_ON_NON_FINITE = ("raise", "skip")


@dataclass(frozen=True, eq=False)
class StepInfo:
    """What one aggregated backward did (all numpy, on the CPU).

    Attributes:
        weights: (K,) weights of the task gradients in the combined gradient; None
            for a method whose direction is no such combination (GradDrop,
            TrimmedMean: ``result.direction`` is what was written).
        losses: (K,) float64 loss values (divided by the GradScaler's scale, if any).
        gram: (K, K) float64 Gram matrix of the task gradients at the shared
            parameters (at the features in representation mode), unscaled; None for
            loss-weighting methods, which never form the per-task gradients.
        cosines: (K, K) pairwise cosines of the task gradients (0 where a gradient is
            zero); None when ``gram`` is None.
        method: registry name of the method.
        result: the solver's full result for gradient methods, else None.
        skipped: True when a non-finite loss or gradient made the step a no-op
            (``on_nonfinite="skip"``, or a GradScaler was given).
        reason: why the step was skipped.
        conflicts: with ``track_conflicts``, the :class:`ConflictStats` of this step
            (this step's cosines and their bias-corrected moving averages).
    """

    weights: np.ndarray
    losses: np.ndarray
    gram: np.ndarray | None
    cosines: np.ndarray | None
    method: str
    result: SolverResult | None = None
    skipped: bool = False
    reason: str | None = None
    conflicts: ConflictStats | None = None


def _cosines(G: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    denom = np.outer(norms, norms)
    with np.errstate(invalid="ignore", divide="ignore"):
        C = np.where(denom > 0, G / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(C, -1.0, 1.0)


def _as_param_list(
    params: Iterable[torch.Tensor], name: str, *, skip_frozen: bool = False
) -> list[torch.Tensor]:
    """The tensors of ``params``, each once; with ``skip_frozen`` those that do not
    require grad are left out, as torch's backward leaves them (else refused)."""
    if isinstance(params, torch.Tensor):
        params = [params]
    out = list(params)
    if not out:
        raise ValueError(f"{name} is empty; pass the parameters (or tensors) to differentiate")
    seen: dict[int, int] = {}
    for i, p in enumerate(out):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name}[{i}] is a {type(p).__name__}, not a torch.Tensor")
        if id(p) in seen:
            raise ValueError(
                f"{name}[{i}] appears more than once (first as {name}[{seen[id(p)]}]); "
                f"its gradient would be added twice: pass each tensor once"
            )
        seen[id(p)] = i
        if not p.requires_grad and not skip_frozen:
            raise ValueError(f"{name}[{i}] does not require grad")
    live = [p for p in out if p.requires_grad]
    if not live:
        raise ValueError(f"no {name} requires grad: every tensor of {name} is frozen")
    return live


class Aggregator:
    """A paretomtl method in a PyTorch training loop, kept between steps.

    Gradient methods (``mgda``, ``pareto-step``, ``pcgrad``, ...) get the per-task
    gradients of the shared parameters, form their Gram matrix on the device,
    accumulated in float64 (a sum of per-tensor products, never a flattened K x M
    copy; see ``gram_precision``), solve for the
    weights on the CPU (K x K numbers cross over), and write ``sum_i w_i g_i`` into
    the shared parameters' ``.grad`` on the device, accumulating like autograd.
    Task-specific parameters (found by walking the autograd graph, or given) get
    their ordinary gradients from one backward of ``sum(losses)``. Shared parameters
    that do not require grad are skipped, as torch's backward skips them; one listed
    twice is refused. A task whose gradient at the shared parameters is zero (its
    loss does not reach them) is named in a RuntimeWarning, once.

    Methods that need the gradients themselves, not only their Gram matrix
    (``needs_grads``: ``graddrop``, ``trimmed-mean``, and stateful ones such as those
    that track the gradients) get the K x M per-task gradients as one numpy array on
    the CPU (in the parameters' dtype; bfloat16 as float32), the Gram matrix, and the
    losses where they read them; their ``result.direction`` is written into
    ``.grad`` (into the features' backward in representation mode).

    Loss weightings (``dwa``, ``uncertainty``, ``live-loss``, ... and ``gradnorm``)
    need no per-task Jacobian: they weight the losses and run one ordinary backward
    of ``sum_i w_i L_i``. GradNorm also takes the per-task gradient norms at
    ``layer`` (the shared layer W of the paper). Their state lives in
    :attr:`method_state` (``agg.method_state.end_epoch()`` for DWA per epoch).

    Per-task gradients (``mode``):

    - ``"autograd"``: one ``torch.autograd.grad`` per task, graph retained between;
    - ``"batched"``: one call with ``is_grads_batched=True`` (vmap), falling back to
      ``"autograd"`` with a warning where the model does not support it;
    - ``"representation"``: gradients w.r.t. the shared ``features`` z passed to
      :meth:`backward` (Sener & Koltun's MGDA-UB): the method combines those, and one
      backward of z with the combined gradient fills the trunk.

    Mixed precision: pass the GradScaler as ``scaler=`` and the *unscaled* losses.
    The adapter scales each loss, aggregates the scaled gradients, and leaves
    ``.grad`` scaled for ``scaler.step``; the Gram matrix and losses are divided by
    the scale before the method sees them (MGDA, the Pareto step and PCGrad have
    scale-invariant weights anyway; GradNorm's step size does not). A non-finite
    gradient then writes inf into the shared ``.grad`` so that ``scaler.step`` skips
    the step and ``scaler.update`` lowers the scale, instead of raising.

    The method may be given by name (``"mgda"``; ``options`` go to it) or as an
    object: ``Aggregator(solvers.method("pcgrad", reduction="mean"))``,
    ``Aggregator(GradVac(3, beta=0.5))``, ``Aggregator(DynamicWeightAverage(2))``, or
    any function ``f(gram) -> weights`` (K weights, or a ``SolverResult``; a
    ``losses`` parameter also receives the step's loss values). What the step does
    is chosen here, once, from what the method is.

    Args:
        method: a registry name (``paretomtl.solvers.available()``,
            ``paretomtl.weighting.available()``) or a method object or function.
        mode: ``"autograd"``, ``"batched"`` or ``"representation"``.
        on_nonfinite: ``"raise"`` (default: ValueError naming the task, every
            ``.grad`` untouched) or ``"skip"`` (no ``.grad`` written,
            ``info.skipped``).
        seed: int or Generator for methods with randomness (PCGrad's task orders).
        options: keyword options for a method given by name (e.g.
            ``{"lower_bounds": [.2, .2]}`` for ``pareto-step``; for stateful methods,
            their constructor's arguments).
        num_tasks: K, to build a stateful method's object at once (otherwise at the
            first step).
        gram_precision: ``"blockwise"`` (default: float32 products over 4096-column
            blocks, TF32 off, summed in float64; about 1e-7 relative, the size of
            the error that gradients computed in float32 already carry, and 2-3x
            faster than ``"float64"`` on the benchmark CPU) or ``"float64"``
            (low-precision gradients widened to float64 block by block: exact to
            float64 rounding, which shows where the combined direction is much
            shorter than the task gradients, near a Pareto-stationary point).
            float64 gradients are exact either way.
        track_conflicts: True (or a dict of ``ConflictTracker`` options, e.g.
            ``{"beta1": 0.99}``) to track the pairwise cosines' moving averages and
            report them in ``info.conflicts`` (gradient methods only).

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torch import Aggregator
        >>> trunk, heads = torch.nn.Linear(4, 8), [torch.nn.Linear(8, 1) for _ in range(2)]
        >>> x = torch.randn(16, 4)
        >>> losses = [h(torch.relu(trunk(x))).pow(2).mean() for h in heads]
        >>> agg = Aggregator("mgda")
        >>> info = agg.backward(losses, trunk.parameters())
        >>> info.weights.shape, heads[0].weight.grad is not None
        ((2,), True)
    """

    def __init__(
        self,
        method: object = "mgda",
        *,
        mode: str = "autograd",
        on_nonfinite: str = "raise",
        seed: int | np.random.Generator | None = None,
        options: dict | None = None,
        num_tasks: int | None = None,
        track_conflicts: bool | dict = False,
        gram_precision: str = "blockwise",
    ) -> None:
        if gram_precision not in PRECISIONS:
            raise ValueError(f"gram_precision must be one of {PRECISIONS}; got {gram_precision!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        if on_nonfinite not in _ON_NON_FINITE:
            raise ValueError(f"on_nonfinite must be one of {_ON_NON_FINITE}; got {on_nonfinite!r}")
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.options = dict(options or {})
        self.route = resolve(method, self.options, seed, self._rng)
        if track_conflicts and isinstance(self.route, LossRoute):
            raise ValueError(
                f"track_conflicts needs the task gradients; {self.route.name!r} is a loss "
                f"weighting that never forms them"
            )
        self._track = (
            (dict(track_conflicts) if isinstance(track_conflicts, dict) else {})
            if track_conflicts
            else None
        )
        self.method = self.route.name
        self.gram_precision = gram_precision
        self.mode = mode
        self.on_nonfinite = on_nonfinite
        self._num_tasks = num_tasks
        fixed_or_known = self.route.fixed or num_tasks is not None
        self._method = self.route.build(num_tasks) if fixed_or_known else None
        self._tracker = None
        self.steps = 0
        self._unreached: set[int] = set()  # tasks already warned about (a zero gradient)
        self._jacobian_buffers: dict = {}  # CPU Jacobian memory reused between steps

    # -- state -------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the method's state: a method built from a name is rebuilt (now if
        num_tasks is known, else at the next step); a given object is reset."""
        self._tracker = None
        self.steps = 0
        if not self.route.fixed:
            K = self._num_tasks
            self._method = None if K is None else self.route.build(K)
        elif self.route.stateful:
            self._method.reset()

    @property
    def method_state(self):
        """The method object in use (e.g. ``DynamicWeightAverage``, to call its
        ``end_epoch()``); None before the first step for a method built from a
        name when ``num_tasks`` was not given."""
        return self._method

    def _method_for(self, K: int):
        if self._method is None:
            self._method = self.route.build(K)
        have = getattr(self._method, "num_tasks", K)
        if have != K:
            raise ValueError(f"this {self.method} has {have} tasks; got {K} losses")
        return self._method

    def state_dict(self) -> dict:
        """Plain-data state: the method's state, the random generator's, the step."""
        stateful = self.route.stateful and self._method is not None
        return {
            "method": self.method,
            "steps": self.steps,
            "rng": self._rng.bit_generator.state,
            "method_state": self._method.state_dict() if stateful else None,
            "conflicts": None if self._tracker is None else self._tracker.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output; a resumed run continues bit for bit.

        Everything is checked before anything changes: a malformed state raises a
        ValueError naming its field and leaves the aggregator (and a method object
        it was given) as it was."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict from Aggregator.state_dict(); got {state!r}")
        expected = {"method", "steps", "rng", "method_state", "conflicts"}
        if set(state) != expected:
            raise ValueError(
                f"state must have the keys {sorted(expected)}; missing "
                f"{sorted(expected - set(state), key=str)}, unknown "
                f"{sorted(set(state) - expected, key=str)}"
            )
        if state["method"] != self.method:
            raise ValueError(f"state is for method {state['method']!r}, not {self.method!r}")
        steps = check_count(state["steps"], "state['steps']")
        rng = generator().check(state["rng"], 0, "state['rng']")
        if rng["bit_generator"] != type(self._rng.bit_generator).__name__:
            raise ValueError(
                f"state['rng'] is a {rng['bit_generator']} state; this aggregator's "
                f"generator is a {type(self._rng.bit_generator).__name__}"
            )
        tracked = state["conflicts"]
        tracker = None
        if tracked is not None:
            try:
                tracker = ConflictTracker(tracked["num_tasks"], **(self._track or {}))
                tracker.load_state_dict(tracked)
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"state['conflicts']: {exc}") from None
        saved = state["method_state"]
        method = self._method if self.route.fixed else None
        if saved is not None:
            try:
                trial = copy.deepcopy(method) if method is not None else None
                if trial is None:
                    trial = self.route.build(saved["num_tasks"])
                trial.load_state_dict(saved)
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"state['method_state']: {exc}") from None
            if method is None:
                method = trial
            else:
                method.load_state_dict(saved)  # the user's own object, checked above
        self._method = method
        self._tracker = tracker
        self.steps = steps
        self._rng.bit_generator.state = rng

    # -- the step ------------------------------------------------------------------
    def backward(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Iterable[torch.Tensor],
        *,
        features: torch.Tensor | Sequence[torch.Tensor] | None = None,
        task_params: Iterable[torch.Tensor] | None = None,
        layer: Iterable[torch.Tensor] | None = None,
        scaler: object | None = None,
        retain_graph: bool = False,
    ) -> StepInfo:
        """Compute the combined gradient of ``losses`` and accumulate it into ``.grad``.

        Args:
            losses: K scalar loss tensors (unscaled, also under a GradScaler).
            shared_params: parameters every task uses (the trunk).
            features: shared features z (tensor or tensors) in representation mode.
            task_params: task-specific parameters; found from the graph if None.
            layer: the shared layer W whose gradient norms GradNorm balances.
            scaler: a ``torch.amp.GradScaler`` (or ``torch.cuda.amp.GradScaler``).
            retain_graph: keep the graph after the call, as in ``Tensor.backward``.

        Returns:
            :class:`StepInfo` with the weights, losses, Gram matrix and cosines.
        """
        losses = list(losses)
        K = len(losses)
        if K == 0:
            raise ValueError("losses is empty; pass one scalar loss per task")
        for i, loss in enumerate(losses):
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError(f"losses[{i}] (task {i}) must be a scalar tensor")
            if not loss.requires_grad:
                raise ValueError(f"losses[{i}] (task {i}) does not require grad")
        shared = _as_param_list(shared_params, "shared_params", skip_frozen=True)
        scale = 1.0
        if scaler is not None:
            scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
            losses = [scaler.scale(loss) for loss in losses]
        detached = [loss.detach().reshape(()).to(torch.float64) for loss in losses]
        if len({t.device for t in detached}) == 1:
            values = torch.stack(detached).cpu().numpy() / scale  # one transfer
        else:
            values = np.array([float(t) for t in detached]) / scale
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return self._non_finite(f"loss of task {i} is {values[i]}", shared, scaler, values)
        method = self._method_for(K)
        if isinstance(self.route, GradientRoute):
            return self._gradient_step(
                method, losses, values, shared, features, task_params, scale, scaler, retain_graph
            )
        return self._loss_step(method, losses, values, shared, layer, scale, scaler, retain_graph)

    def _non_finite(self, why, shared, scaler, values) -> StepInfo:
        if scaler is not None:
            fill_non_finite(shared)
        elif self.on_nonfinite == "raise":
            raise ValueError(
                f"non-finite values: {why}; no .grad was changed "
                f"(pass on_nonfinite='skip' to skip such steps)"
            )
        K = len(values)
        return StepInfo(
            weights=np.full(K, np.nan),
            losses=values,
            gram=None,
            cosines=None,
            method=self.method,
            skipped=True,
            reason=why,
        )

    def _gradient_step(
        self, method, losses, values, shared, features, task_params, scale, scaler, retain_graph
    ) -> StepInfo:
        K = len(losses)
        representation = self.mode == "representation"
        if representation:
            if features is None:
                raise ValueError("mode='representation' needs features= (the shared z)")
            inputs = _as_param_list(
                [features] if isinstance(features, torch.Tensor) else features, "features"
            )
        else:
            inputs = shared
        # Task-specific parameters: one ordinary backward of the summed losses, later.
        if task_params is None:
            exclude = {id(t) for t in shared} | {id(t) for t in inputs}
            task_list = [t for t in graph_leaves(losses) if id(t) not in exclude]
        else:
            task_list = list(task_params)
        # Free the graph with the last per-task backward when nothing else needs it.
        keep = retain_graph or bool(task_list) or representation
        mode = "autograd" if representation else self.mode
        jac = per_task_grads(losses, inputs, mode, self._jacobian_buffers, retain_graph=keep)
        if representation:
            for i, J in enumerate(jac):
                if J is None:
                    raise ValueError(
                        f"features[{i}] is not on the path of any loss: no loss depends on "
                        f"it, so the trunk would get no gradient; pass the shared features "
                        f"the heads are computed from"
                    )
        G = gram_matrix(jac, K, self.gram_precision)
        bad = ~np.isfinite(np.diagonal(G))
        if bad.any() or not np.isfinite(G).all():
            i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
            return self._non_finite(f"gradient of task {i} has NaN or Inf", shared, scaler, values)
        self._warn_unreached(np.diagonal(G), "the shared features" if representation else None)
        G_unscaled = G / (scale * scale)
        if self.route.needs_grads:
            grads = _flat_numpy(jac, inputs, K, scale)
            result = self.route.solve(method, G_unscaled, values, grads)
            weights = result.weights
            pieces = _direction_pieces(result.direction, inputs, jac, scale)
            if representation:
                torch.autograd.backward(
                    [z for z, d in zip(inputs, pieces, strict=True) if d is not None],
                    grad_tensors=[d for d in pieces if d is not None],
                    inputs=shared,
                    retain_graph=True if task_list else retain_graph,
                )
            else:
                for p, d in zip(inputs, pieces, strict=True):
                    if d is None:
                        continue
                    if p.grad is None:
                        p.grad = d
                    else:
                        p.grad.add_(d)
        elif self.mode == "representation":
            result = self.route.solve(method, G_unscaled, values)
            weights = result.weights
            combined = [
                None
                if J is None
                else torch.tensordot(
                    torch.as_tensor(weights, dtype=J.dtype, device=J.device), J, dims=1
                )
                for J in jac
            ]
            pairs = [(z, d) for z, d in zip(inputs, combined, strict=True) if d is not None]
            torch.autograd.backward(
                [z for z, _ in pairs],
                grad_tensors=[d for _, d in pairs],
                inputs=shared,
                retain_graph=True if task_list else retain_graph,
            )
        else:
            result = self.route.solve(method, G_unscaled, values)
            weights = result.weights
            accumulate_combination(shared, jac, weights)
        if task_list:
            torch.autograd.backward(
                [loss.reshape(()) for loss in losses],  # summed, across devices too
                inputs=task_list,
                retain_graph=retain_graph,
            )
        conflicts = None
        if self._track is not None:
            if self._tracker is None:
                self._tracker = ConflictTracker(K, **self._track)
            conflicts = self._tracker.update(gram=G_unscaled)
        self.steps += 1
        return StepInfo(
            weights=weights,
            losses=values,
            gram=G_unscaled,
            cosines=_cosines(G_unscaled),
            method=self.method,
            result=result,
            conflicts=conflicts,
        )

    def _warn_unreached(self, norms_squared: np.ndarray, where: str | None) -> None:
        """A RuntimeWarning, once per task, for a task whose shared gradient is zero."""
        for i in np.flatnonzero(norms_squared == 0):
            if int(i) in self._unreached:
                continue
            self._unreached.add(int(i))
            warnings.warn(
                f"paretomtl: task {i} has a zero gradient at {where or 'the shared parameters'}"
                f" (its loss does not depend on them, or is exactly stationary): {self.method}"
                f" may weight it so that the shared parameters stop training; check that "
                f"task {i}'s head is computed from the shared trunk",
                RuntimeWarning,
                stacklevel=4,
            )

    def _loss_step(self, method, losses, values, shared, layer, scale, scaler, retain_graph):
        K = len(losses)
        norms = None
        if "grad_norms" in self.route.inputs:
            if layer is None:
                raise ValueError(
                    f"{self.method} needs layer= (the parameters of the shared layer W whose "
                    "per-task gradient norms it balances; the paper uses the last shared layer)"
                )
            layer_params = _as_param_list(layer, "layer")
            G_layer = gram_matrix(per_task_grads(losses, layer_params, "autograd"), K)
            if not np.isfinite(G_layer).all():
                i = int(np.flatnonzero(~np.isfinite(np.diagonal(G_layer)))[0])
                return self._non_finite(
                    f"gradient of task {i} has NaN or Inf", shared, scaler, values
                )
            norms = np.sqrt(np.clip(np.diagonal(G_layer), 0.0, None)) / scale
        # The weighting validates the losses first, so a bad step leaves .grad untouched.
        weights = self.route.weigh(method, values, norms)
        total = sum(float(w) * loss.reshape(()) for w, loss in zip(weights, losses, strict=True))
        total.backward(retain_graph=retain_graph)
        self.steps += 1
        return StepInfo(weights=weights, losses=values, gram=None, cosines=None, method=self.method)


def _numpy_dtype(jac: Sequence[torch.Tensor | None], inputs: Sequence[torch.Tensor]):
    """The torch dtype of the K x M array: the parameters' (promoted where they
    differ), float32 for those numpy lacks (bfloat16)."""
    dtypes = [J.dtype for J in jac if J is not None] or [x.dtype for x in inputs]
    dtype = dtypes[0]
    for other in dtypes[1:]:
        dtype = torch.promote_types(dtype, other)
    if dtype not in (torch.float16, torch.float32, torch.float64):
        dtype = torch.float32
    return dtype


def _flat_numpy(
    jac: Sequence[torch.Tensor | None], inputs: Sequence[torch.Tensor], K: int, scale: float
) -> np.ndarray:
    """The K x M Jacobian as a new numpy array on the CPU, rows the tasks, columns the
    inputs' entries in order (zeros where no task reaches an input), divided by the
    GradScaler's scale (float16 then widened to float32 first, so nothing underflows)."""
    dtype = _numpy_dtype(jac, inputs)
    if scale != 1.0 and dtype == torch.float16:
        dtype = torch.float32
    devices = {J.device for J in jac if J is not None}
    # One transfer where every block lives on one device; else each block to the CPU.
    where = devices.pop() if len(devices) == 1 else torch.device("cpu")
    blocks = [
        torch.zeros(K, x.numel(), dtype=dtype, device=where)
        if J is None
        else J.detach().reshape(K, -1).to(device=where, dtype=dtype)
        for x, J in zip(inputs, jac, strict=True)
    ]
    flat = torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0].clone()
    if scale != 1.0:
        flat = flat / scale  # a power of two for torch's GradScaler: exact
    return flat.cpu().numpy()


def _direction_pieces(
    direction: np.ndarray,
    inputs: Sequence[torch.Tensor],
    jac: Sequence[torch.Tensor | None],
    scale: float,
) -> list[torch.Tensor | None]:
    """``direction`` (M,) cut into one tensor per input, in its shape, dtype and on its
    device, times the GradScaler's scale; None for an input no task reaches where
    the direction is 0 there (its ``.grad`` is left as autograd leaves it)."""
    d = torch.from_numpy(np.ascontiguousarray(direction))
    if scale != 1.0:
        d = d * scale
    pieces: list[torch.Tensor | None] = []
    start = 0
    copies: dict[torch.device, torch.Tensor] = {}
    for x, J in zip(inputs, jac, strict=True):
        n = x.numel()
        on = copies.get(x.device)
        if on is None:  # one transfer per device
            on = copies[x.device] = d.to(x.device)
        piece = on[start : start + n]
        start += n
        if J is None and not bool(piece.any()):
            pieces.append(None)
            continue
        pieces.append(piece.reshape(x.shape).to(x.dtype, copy=True))
    return pieces


def backward(
    losses: Sequence[torch.Tensor],
    shared_params: Iterable[torch.Tensor],
    method: object = "mgda",
    *,
    mode: str = "autograd",
    features: torch.Tensor | Sequence[torch.Tensor] | None = None,
    task_params: Iterable[torch.Tensor] | None = None,
    scaler: object | None = None,
    on_nonfinite: str = "raise",
    seed: int | np.random.Generator | None = None,
    retain_graph: bool = False,
    options: dict | None = None,
    gram_precision: str = "blockwise",
) -> StepInfo:
    """One aggregated backward in place of ``sum(losses).backward()``.

    A stateless shortcut for ``Aggregator(method, ...).backward(...)``; stateful
    methods (GradNorm) need the :class:`Aggregator` object, kept between steps.

    Example:
        >>> import torch
        >>> import paretomtl.adapters.torch as pt
        >>> trunk, heads = torch.nn.Linear(3, 5), [torch.nn.Linear(5, 1) for _ in range(3)]
        >>> z = torch.tanh(trunk(torch.randn(8, 3)))
        >>> losses = [h(z).square().mean() for h in heads]
        >>> info = pt.backward(losses, trunk.parameters(), method="pcgrad", seed=0)
        >>> info.gram.shape, trunk.weight.grad.shape
        ((3, 3), torch.Size([5, 3]))
    """
    agg = Aggregator(
        method,
        mode=mode,
        on_nonfinite=on_nonfinite,
        seed=seed,
        options=options,
        gram_precision=gram_precision,
    )
    if agg.route.stateful:
        raise ValueError(
            f"{agg.method!r} keeps state between steps: create Aggregator({agg.method!r}) "
            f"once and call its backward() every step"
        )
    return agg.backward(
        losses,
        shared_params,
        features=features,
        task_params=task_params,
        scaler=scaler,
        retain_graph=retain_graph,
    )
