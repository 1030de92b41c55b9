"""Replace ``sum(losses).backward()`` with a paretomtl method, by name or as an object."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from paretomtl._checks import check_count
from paretomtl.adapters.torch._distributed import (
    DISTRIBUTED,
    EXCHANGES,
    Group,
    Traffic,
    fingerprint,
    is_sharded,
    local_part,
    resolve_mode,
)
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
from paretomtl.state import generator, plain

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
        accumulated: True for a call inside :meth:`Aggregator.accumulate`: the
            per-task gradients were added to those held for the next solving call,
            nothing was solved or written (``weights``, ``gram`` are None).
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
    accumulated: bool = False


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

    Uncertainty weighting (``"uncertainty"``, Kendall et al. 2018) learns one
    log-variance per task with the network. By name, its log-variances are torch
    parameters that *your* optimizer trains (an
    :class:`~paretomtl.adapters.torch.UncertaintyWeightingLoss`, built at once):
    ``agg = Aggregator("uncertainty", options={"task_types": ["regression",
    "classification"]})`` (``task_types`` is required; with one type for all tasks
    pass ``num_tasks``), then ``torch.optim.Adam([*model.parameters(),
    *agg.parameters()])``. Each step writes their gradient into their ``.grad``; they
    are in your optimizer's state and schedule, and in :meth:`state_dict`. A
    :class:`~paretomtl.weighting.UncertaintyWeighting` object passed itself keeps its
    own numpy optimizer (with a warning).

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
        distributed: how a step is synchronised over the processes of a
            ``torch.distributed`` job (see "Several processes" below): ``"auto"``
            (default: ``"exact"`` when a process group of more than one rank is
            initialised, ``"sharded"`` when the shared parameters are DTensors, else
            ``"off"``), ``"exact"``, ``"local"``, ``"sharded"`` or ``"off"``.
        process_group: the ``torch.distributed`` group to synchronise over (default:
            the whole job).
        exchange: how exact mode exchanges the per-task gradients:
            ``"all-reduce"``, ``"reduce-scatter"`` or ``"auto"`` (reduce-scatter,
            except on gloo, where the all-reduce route measured faster).
        ddp: the ``DistributedDataParallel`` module the losses come from, if the
            model is wrapped in one. The aggregator synchronises every gradient itself
            (the per-task gradients bypass DDP's reducer); ``ddp=`` switches the
            reducer off for gradient methods and broadcasts DDP's buffers after each
            step as DDP would, and lets loss weightings use DDP's own all-reduce.

    Several processes (``torch.distributed``; DDP or ``fully_shard``):

    - ``"exact"`` (replicated parameters): every rank gets the per-task gradients
      of the *global* batch, so every rank holds the same Gram matrix, weights,
      method state and update that one process on the whole batch would (the losses
      a method reads are the global means too). The per-task gradients are
      reduce-scattered (each rank gets 1/R of the columns of the global K x M
      Jacobian), each rank forms its shard's Gram, one all-reduce of K x K numbers
      sums them, and the combined shards are all-gathered: (K + 1) / 2 times the
      bytes of DDP's all-reduce. Methods that need the K x M gradients get the
      whole global Jacobian (an all-reduce, K times DDP's bytes). Task-specific
      gradients are averaged as DDP averages them.
    - ``"local"``: each rank solves on its own batch's per-task gradients and the
      combined gradients are averaged like DDP's (DDP's bytes); the weights, and a
      stateful method's state, then differ between ranks.
    - ``"sharded"`` (``torch.distributed.fsdp.fully_shard``): one backward per task
      lets FSDP reduce-scatter each task's gradient, so each rank holds its shard of
      every global per-task gradient; the shards' Grams are summed by one all-reduce
      of K x K numbers and each rank combines its own shard. Exact. Pass
      ``task_params`` (the parameters outside the shared trunk), and collect both
      lists once before training: between forward and backward ``fully_shard``
      registers unsharded stand-ins in place of a module's parameters.
    - Representation mode is exact with one K x K all-reduce: the features of
      different ranks are different coordinates, so the global Gram is the sum of
      the ranks' Grams over R².
    - Loss weightings see the global mean losses (exact and sharded modes), GradNorm
      the norms of the global per-task gradients at ``layer``.
    - Every rank learns at the start of a step whether any rank has a non-finite
      loss, and skips or raises with the others; a non-finite gradient reaches every
      rank's Gram through the sums. Ranks passing different tasks or parameters are
      refused, on every rank, before anything is written.

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
        distributed: str = "auto",
        process_group: object | None = None,
        exchange: str = "auto",
        ddp: torch.nn.Module | None = None,
    ) -> None:
        if distributed not in DISTRIBUTED:
            raise ValueError(f"distributed must be one of {DISTRIBUTED}; got {distributed!r}")
        if exchange not in EXCHANGES:
            raise ValueError(f"exchange must be one of {EXCHANGES}; got {exchange!r}")
        if ddp is not None and not isinstance(ddp, torch.nn.parallel.DistributedDataParallel):
            raise TypeError(
                f"ddp must be the torch.nn.parallel.DistributedDataParallel module the "
                f"losses come from; got a {type(ddp).__name__}"
            )
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
        self.distributed = distributed
        self.exchange = exchange
        if process_group is None and ddp is not None:
            process_group = ddp.process_group  # the ranks DDP synchronises
        self._process_group = process_group
        self._group: Group | None = None  # built at the first step
        self._replicas_checked = False
        self._seeded = seed is not None
        self._ddp = ddp
        if ddp is not None and isinstance(self.route, GradientRoute) and ddp.static_graph:
            raise ValueError(
                "ddp was built with static_graph=True, whose first backward queues DDP's "
                "own all-reduce of every gradient; the aggregator synchronises the "
                "gradients itself: build the DDP module with static_graph=False"
            )
        if ddp is not None and isinstance(self.route, GradientRoute):
            # The per-task gradients bypass DDP's reducer: switch it off, so that it
            # neither waits for hooks that never fire nor averages a second time.
            ddp.require_backward_grad_sync = False
        self._accumulating = False
        self._pending: dict | None = None  # per-task gradients held by accumulate()
        self._mode: str | None = None

    # -- state -------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the method's state: a method built from a name is rebuilt (now if
        num_tasks is known, else at the next step); a given object is reset."""
        self._tracker = None
        self.steps = 0
        self._pending = None
        self._replicas_checked = False
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

    def end_epoch(self) -> bool:
        """End an epoch for a method that averages over epochs (DWA's loss ratios):
        ``method_state.end_epoch()``, or False before the first step, when no method
        exists yet. DWA can also end its epochs itself:
        ``Aggregator("dwa", options={"epoch_steps": len(loader)})``."""
        if self._method is None:
            return False
        end = getattr(self._method, "end_epoch", None)
        if end is None:
            raise ValueError(f"{self.method!r} has no epochs to end (no end_epoch())")
        return end()

    def parameters(self):
        """The method's torch parameters, for the optimizer: uncertainty weighting's
        log-variances (``Aggregator("uncertainty", ...)``); none for other methods."""
        if isinstance(self._method, torch.nn.Module):
            return self._method.parameters()
        return iter(())

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
            "rng": plain(self._rng.bit_generator.state),  # MT19937's key is an array
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
        method = self.route.loaded(self._method, state["method_state"])
        self._method = method
        self._tracker = tracker
        self.steps = steps
        self._rng.bit_generator.state = rng
        self._pending = None
        self._replicas_checked = False

    # -- several processes and several micro-batches --------------------------------
    @property
    def traffic(self) -> Traffic:
        """Bytes this aggregator's collectives sent from this rank (ring model), and
        how many calls; zero when no step was distributed."""
        return Traffic() if self._group is None else self._group.traffic

    @property
    def distributed_mode(self) -> str | None:
        """The mode steps run in (``"off"``, ``"exact"``, ``"local"``, ``"sharded"``);
        None before the first step, where ``"auto"`` is resolved."""
        return self._mode

    @contextlib.contextmanager
    def accumulate(self):
        """Accumulate the per-task gradients of several micro-batches; solve once.

        Calls of :meth:`backward` inside the block add each micro-batch's per-task
        gradients (and loss values) to those held, and write nothing; the next call
        outside the block adds its own and solves once on the sum, the Jacobian of
        the whole optimizer step, as TorchJD's ``jac_to_grad`` does. Without the
        block each micro-batch is solved on its own and the combined gradients add
        up in ``.grad``: another direction (``benchmarks/distributed.py``, 4
        micro-batches, MGDA: cosine 0.988 median, 0.953 at worst, between the two). In
        distributed modes nothing is communicated until the solving call. Gradient
        methods only, not in representation mode (the features of every micro-batch
        would have to keep their graphs).

        Example:
            >>> import torch
            >>> from paretomtl.adapters.torch import Aggregator
            >>> trunk, heads = torch.nn.Linear(3, 4), [torch.nn.Linear(4, 1) for _ in range(2)]
            >>> agg = Aggregator("mgda")
            >>> for micro in range(3):
            ...     z = trunk(torch.randn(5, 3))
            ...     losses = [h(z).pow(2).mean() for h in heads]
            ...     if micro < 2:
            ...         with agg.accumulate():
            ...             info = agg.backward(losses, trunk.parameters())
            ...     else:
            ...         info = agg.backward(losses, trunk.parameters())
            >>> info.accumulated, info.weights.shape
            (False, (2,))
        """
        if isinstance(self.route, LossRoute):
            raise ValueError(
                f"accumulate() holds per-task gradients; {self.method!r} is a loss "
                f"weighting that never forms them: call backward() on every micro-batch "
                f"(its gradients add up in .grad as autograd's do)"
            )
        if self.mode == "representation":
            raise ValueError(
                "accumulate() is not available in representation mode: the combined "
                "gradient at the features of every micro-batch would need that "
                "micro-batch's graph kept until the solving call; use mode='autograd'"
            )
        if self._accumulating:
            raise RuntimeError("accumulate() blocks do not nest")
        self._accumulating = True
        try:
            yield self
        finally:
            self._accumulating = False

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
        mode = self._resolve_distributed(shared, scaler)
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
        if bad.any() and mode == "off":  # distributed: decided with the other ranks
            i = int(np.flatnonzero(bad)[0])
            return self._non_finite(f"loss of task {i} is {values[i]}", shared, scaler, values)
        method = self._method_for(K)
        if mode != "off":
            return self._distributed_step(
                method,
                losses,
                values,
                shared,
                features,
                task_params,
                layer,
                scale,
                scaler,
                retain_graph,
            )
        if isinstance(self.route, GradientRoute):
            return self._gradient_step(
                method, losses, values, shared, features, task_params, scale, scaler, retain_graph
            )
        return self._loss_step(method, losses, values, shared, layer, scale, scaler, retain_graph)

    def _non_finite(self, why, shared, scaler, values) -> StepInfo:
        if self._accumulating:  # the solving call of this optimizer step skips too
            self._pending = {**(self._pending or {}), "bad": why}
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
        # Task-specific parameters: one ordinary backward of the summed losses, later.
        inputs, task_list = self._inputs(losses, shared, features, task_params)
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
        if self._accumulating or self._pending is not None:
            held = self._hold(jac, values, None)
            if held is None:  # inside accumulate(): task-specific .grad as autograd
                if task_list:
                    torch.autograd.backward(
                        [loss.reshape(()) for loss in losses],
                        inputs=task_list,
                        retain_graph=retain_graph,
                    )
                return self._accumulated_info(values)
            jac, values, _, why = held
            if why is not None:
                return self._non_finite(why, shared, scaler, values)
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
        weights = self.route.weigh(method, values, norms, scale)
        total = sum(float(w) * loss.reshape(()) for w, loss in zip(weights, losses, strict=True))
        total.backward(retain_graph=retain_graph)
        self.steps += 1
        return StepInfo(weights=weights, losses=values, gram=None, cosines=None, method=self.method)

    # -- held micro-batches ---------------------------------------------------------
    def _hold(self, jac, values, task_grads):
        """Inside :meth:`accumulate`: add this micro-batch to the held sums, return
        None. Outside, with sums held: return (jac, values, task_grads, why) for the
        whole step (``why`` names a non-finite value met on the way) and forget them."""
        held = self._pending or {}
        if "jac" in held:
            shapes = [None if J is None else tuple(J.shape) for J in held["jac"]]
            if len(shapes) != len(jac) or any(
                a is not None and J is not None and a != tuple(J.shape)
                for a, J in zip(shapes, jac, strict=False)
            ):
                self._pending = None
                raise ValueError(
                    "the micro-batches of one accumulated step must pass the same losses "
                    "(K tasks) and the same shared parameters; the held gradients were "
                    "dropped"
                )
        if self._accumulating:
            if "jac" not in held:
                held = {
                    **held,
                    "jac": [None if J is None else J.clone() for J in jac],
                    "values": values.copy(),
                    "task": None if task_grads is None else [t.clone() for t in task_grads],
                }
            else:
                held["jac"] = [_add(a, b) for a, b in zip(held["jac"], jac, strict=True)]
                held["values"] = held["values"] + values
                if task_grads is not None:
                    held["task"] = [
                        a.add_(b) for a, b in zip(held["task"], task_grads, strict=True)
                    ]
            self._pending = held
            return None
        self._pending = None
        if "jac" in held:
            jac = [_add(a, b) for a, b in zip(held["jac"], jac, strict=True)]
            values = held["values"] + values
            if task_grads is not None:
                task_grads = [a.add_(b) for a, b in zip(held["task"], task_grads, strict=True)]
        return jac, values, task_grads, held.get("bad")

    def _accumulated_info(self, values: np.ndarray) -> StepInfo:
        return StepInfo(
            weights=None,
            losses=values,
            gram=None,
            cosines=None,
            method=self.method,
            accumulated=True,
        )

    # -- several processes ------------------------------------------------------------
    def _resolve_distributed(self, shared, scaler) -> str:
        """The mode of this step; the process group is set up on the first call."""
        if self._mode is None:
            mode = resolve_mode(self.distributed, self._process_group, shared)
            if mode != "off":
                if mode == "sharded":
                    if self.mode == "representation":
                        raise ValueError(
                            "distributed='sharded' does not take mode='representation' "
                            "(the features are not sharded); use mode='autograd'"
                        )
                    if isinstance(self.route, GradientRoute) and self.route.needs_grads:
                        raise ValueError(
                            f"distributed='sharded' cannot run {self.method!r}: it needs "
                            f"the whole K x M gradients (needs_grads), which no rank holds "
                            f"under fully_shard; use a Gram-space method, or replicated "
                            f"parameters (DDP) with distributed='exact'"
                        )
                    if "grad_norms" in self.route.inputs:
                        raise ValueError(
                            f"distributed='sharded' cannot run {self.method!r}: its "
                            f"per-task norms at layer= need that layer's whole gradients; "
                            f"keep the layer replicated and use distributed='exact'"
                        )
                if (
                    self.mode == "representation"
                    and isinstance(self.route, GradientRoute)
                    and self.route.needs_grads
                ):
                    raise ValueError(
                        f"{self.method!r} needs the K x M gradients at the features, "
                        f"which are different coordinates on every rank: in distributed "
                        f"training use it in mode='autograd'"
                    )
                self._group = Group(self._process_group, mode, self.exchange)
            self._mode = mode
        if self._mode == "sharded" and scaler is not None:
            raise ValueError(
                "distributed='sharded' does not take scaler=; FSDP's mixed precision "
                "(MixedPrecisionPolicy) needs no loss scaling in bfloat16"
            )
        return self._mode

    def _check_replicas(self) -> None:
        """Exact and sharded modes: every rank must start from the same random
        generator and method state. Where no seed was given, a generator that differs,
        and the state of a method the adapter built, are replaced by rank 0's; with a
        seed any difference (a different seed, a checkpoint loaded on some ranks only),
        and a different state of an object the user gave, raises on every rank."""
        grp = self._group
        method_state = (
            self._method.state_dict() if self.route.stateful and self._method is not None else None
        )
        digestible = method_state
        if isinstance(self._method, torch.nn.Module):  # a pickled tensor holds a random id
            digestible = {k: (str(v.dtype), v.tolist()) for k, v in method_state.items()}
        rng_differs = grp.agree(
            {"generator": fingerprint(self._rng.bit_generator.state)}, False, quiet=True
        )
        state_differs = grp.agree({"method state": fingerprint(digestible)}, False, quiet=True)
        # Differences that a missing seed explains are settled by rank 0; others raise.
        seeded_differ = self._seeded and (rng_differs or state_differs)
        if seeded_differ or (state_differs and self.route.given):
            what = ["the aggregator's generator (a different seed on each rank)"] * rng_differs
            what += [
                f"the state of {self.method!r} (a checkpoint loaded on some ranks only, "
                f"or an unseeded object)"
            ] * state_differs
            raise ValueError(
                f"paretomtl: the ranks hold different random generators or states: "
                f"{' and '.join(what)}; exact distributed training needs the same seed "
                f"and state on every rank"
            )
        if rng_differs or state_differs:
            state = [self._rng.bit_generator.state, method_state if state_differs else None]
            torch.distributed.broadcast_object_list(state, src=0, group=grp.group)
            self._rng.bit_generator.state = state[0]
            if state[1] is not None:
                self._method.load_state_dict(state[1])
        self._replicas_checked = True

    def _distributed_step(
        self,
        method,
        losses,
        values,
        shared,
        features,
        task_params,
        layer,
        scale,
        scaler,
        retain_graph,
    ) -> StepInfo:
        grp = self._group
        if grp.mode != "local" and not self._replicas_checked:
            self._check_replicas()
        if isinstance(self.route, LossRoute):
            return self._distributed_loss_step(
                method, losses, values, shared, layer, scale, scaler, retain_graph
            )
        if grp.mode == "sharded":
            return self._sharded_step(
                method, losses, values, shared, task_params, scale, retain_graph
            )
        return self._replicated_step(
            method, losses, values, shared, features, task_params, scale, scaler, retain_graph
        )

    def _finish(self, result, G_unscaled, values) -> StepInfo:
        if self._ddp is not None and self._ddp.broadcast_buffers:
            # DDP broadcasts rank 0's buffers (BatchNorm statistics) before each forward
            # only while its reducer runs; with the reducer handed over, done here.
            self._group.broadcast_buffers(list(self._ddp.module.buffers()))
        conflicts = None
        if self._track is not None:
            if self._tracker is None:
                self._tracker = ConflictTracker(len(values), **self._track)
            conflicts = self._tracker.update(gram=G_unscaled)
        self.steps += 1
        return StepInfo(
            weights=result.weights,
            losses=values,
            gram=G_unscaled,
            cosines=_cosines(G_unscaled),
            method=self.method,
            result=result,
            conflicts=conflicts,
        )

    def _agreed_gram(self, G, shared, scaler, values):
        """None if G is finite (the same on every rank, or agreed on); else the
        skipped step's info (every rank takes this branch together)."""
        if np.isfinite(G).all():
            return None
        bad = ~np.isfinite(np.diagonal(G))
        i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        where = "" if self._group.mode == "local" else " (on some rank)"
        return self._non_finite(
            f"gradient of task {i} has NaN or Inf{where}", shared, scaler, values
        )

    def _inputs(self, losses, shared, features, task_params):
        """What the per-task gradients are taken at (the shared parameters, or the
        features in representation mode) and the task-specific parameters (given, or
        the graph's other leaves)."""
        if self.mode == "representation":
            if features is None:
                raise ValueError("mode='representation' needs features= (the shared z)")
            inputs = _as_param_list(
                [features] if isinstance(features, torch.Tensor) else features, "features"
            )
        else:
            inputs = shared
        if task_params is not None:
            return inputs, _trainable(task_params, "task_params")
        exclude = {id(t) for t in shared} | {id(t) for t in inputs}
        return inputs, [t for t in graph_leaves(losses) if id(t) not in exclude]

    def _open_step(self, K, shared, task_list, values, scaler) -> StepInfo | None:
        """The agreement that opens a distributed step (sizes, a non-finite loss on any
        rank, a bad micro-batch held): None to go on, else the skipped step's info,
        taken on every rank together. Inside accumulate() nothing is communicated."""
        bad = ~np.isfinite(values)
        if self._accumulating:
            if not bad.any():
                return None
            i = int(np.flatnonzero(bad)[0])
            return self._non_finite(f"loss of task {i} is {values[i]}", shared, scaler, values)
        held_bad = (self._pending or {}).get("bad")
        sizes = {
            "the number of tasks": K,
            "the shared entries": sum(p.numel() for p in shared),
            "the task-specific entries": sum(p.numel() for p in task_list),
        }
        if not self._group.agree(sizes, bool(bad.any()) or held_bad is not None):
            return None
        self._pending = None
        why = held_bad or "a loss is non-finite on some rank"
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            why = f"loss of task {i} is {values[i]} on rank {self._group.rank}"
        return self._non_finite(why, shared, scaler, values)

    def _replicated_step(
        self, method, losses, values, shared, features, task_params, scale, scaler, retain_graph
    ) -> StepInfo:
        grp = self._group
        K = len(losses)
        representation = self.mode == "representation"
        inputs, task_list = self._inputs(losses, shared, features, task_params)
        skipped = self._open_step(K, shared, task_list, values, scaler)
        if skipped is not None:
            return skipped
        mode = "autograd" if representation else self.mode
        direct = (
            grp.mode == "exact"
            and not representation
            and not self._accumulating
            and self._pending is None
            and (grp.exchange == "all-reduce" or self.route.needs_grads)
        )
        flat = out = None
        if direct:  # the Jacobian written straight into the buffer the all-reduce sends
            dtype = _common_dtype([*inputs, *task_list])
            M = sum(x.numel() for x in inputs)
            T = sum(t.numel() for t in task_list)
            flat = torch.empty(K * M + T, dtype=dtype, device=inputs[0].device)
            out, start = [], 0
            for x in inputs:
                out.append(flat[: K * M].view(K, M)[:, start : start + x.numel()].view(K, *x.shape))
                start += x.numel()
        jac = per_task_grads(
            losses,
            inputs,
            mode,
            self._jacobian_buffers,
            retain_graph=retain_graph or bool(task_list) or representation,
            out=out,
        )
        if representation and any(J is None for J in jac):
            i = next(i for i, J in enumerate(jac) if J is None)
            raise ValueError(f"features[{i}] is not on the path of any loss")
        task_grads = _grads_or_zeros(losses, task_list, retain_graph=retain_graph or representation)
        if self._accumulating or self._pending is not None:
            held = self._hold(jac, values, task_grads)
            if held is None:
                return self._accumulated_info(values)
            jac, values, task_grads, _ = held
        local_values = values
        if grp.mode == "exact":
            values = grp.sum_numpy(values) / grp.size
        if representation:
            return self._replicated_representation(
                method,
                losses,
                local_values,
                values,
                shared,
                inputs,
                jac,
                task_list,
                task_grads,
                scale,
                scaler,
                retain_graph,
            )
        jac = [
            torch.zeros((K, *x.shape), dtype=x.dtype, device=x.device) if J is None else J
            for x, J in zip(inputs, jac, strict=True)
        ]
        dtype = _common_dtype([*jac, *task_grads])
        device = jac[0].device
        M = sum(x.numel() for x in inputs)
        T = sum(t.numel() for t in task_grads)
        if grp.mode == "local":
            G = gram_matrix(jac, K, self.gram_precision)
            if grp.agree({}, not np.isfinite(G).all()):
                return self._non_finite(
                    "a gradient has NaN or Inf on some rank", shared, scaler, values
                )
            G_unscaled = G / (scale * scale)
            buf = torch.empty(M + T, dtype=dtype, device=device)
            if self.route.needs_grads:
                grads = _flat_numpy(jac, inputs, K, scale)
                result = self.route.solve(method, G_unscaled, values, grads)
                buf[:M] = (
                    torch.from_numpy(np.ascontiguousarray(result.direction)).to(
                        device=device, dtype=dtype
                    )
                    * scale
                )
            else:
                result = self.route.solve(method, G_unscaled, values)
                w = torch.as_tensor(result.weights, dtype=dtype, device=device)
                start = 0
                for J in jac:
                    n = J[0].numel()
                    buf[start : start + n] = torch.tensordot(w, J.reshape(K, n).to(dtype), dims=1)
                    start += n
            _fill(buf[M:], task_grads)
            grp.mean_(buf)
            _add_into_grads(shared, buf[:M])
            _add_into_grads(task_list, buf[M:])
            return self._finish(result, G_unscaled, values)
        # exact mode
        if grp.exchange == "all-reduce" or self.route.needs_grads:
            if flat is not None and flat.dtype == dtype:
                buf = flat
                Jg = buf[: K * M].view(K, M)
            else:
                buf = torch.empty(K * M + T, dtype=dtype, device=device)
                Jg = buf[: K * M].view(K, M)
                start = 0
                for J in jac:
                    n = J[0].numel()
                    Jg[:, start : start + n] = J.reshape(K, n)
                    start += n
            _fill(buf[K * M :], task_grads)
            grp.mean_(buf)
            G = gram_matrix([Jg], K, self.gram_precision)
            skipped = self._agreed_gram(G, shared, scaler, values)
            if skipped is not None:
                return skipped
            G_unscaled = G / (scale * scale)
            if self.route.needs_grads:
                grads = _flat_numpy([Jg], [Jg[0]], K, scale)
                result = self.route.solve(method, G_unscaled, values, grads)
                d = torch.from_numpy(np.ascontiguousarray(result.direction)).to(device) * scale
            else:
                result = self.route.solve(method, G_unscaled, values)
                w = torch.as_tensor(result.weights, dtype=dtype, device=device)
                d = torch.tensordot(w, Jg, dims=1)
            _add_into_grads(shared, d)
            _add_into_grads(task_list, buf[K * M :])
            return self._finish(result, G_unscaled, values)
        # exact mode, reduce-scatter: each rank gets 1/R of the columns of global J
        R = grp.size
        chunk = -(-M // R)
        send = torch.zeros(R, K, chunk, dtype=dtype, device=device)
        start = 0
        for J in jac:
            n = J[0].numel()
            flat = J.reshape(K, n)
            lo = start
            while lo < start + n:
                r, offset = divmod(lo, chunk)
                hi = min(start + n, (r + 1) * chunk)
                send[r, :, offset : offset + hi - lo] = flat[:, lo - start : hi - start]
                lo = hi
            start += n
        shard = torch.empty(K * chunk, dtype=dtype, device=device)
        grp.reduce_scatter_mean(shard, send.view(-1))
        del send
        shard = shard.view(K, chunk)
        task_buf = None
        if T:
            task_buf = torch.empty(T, dtype=dtype, device=device)
            _fill(task_buf, task_grads)
            grp.mean_(task_buf)
        G = grp.sum_numpy(gram_matrix([shard], K, self.gram_precision))
        skipped = self._agreed_gram(G, shared, scaler, values)
        if skipped is not None:
            return skipped
        G_unscaled = G / (scale * scale)
        result = self.route.solve(method, G_unscaled, values)
        w = torch.as_tensor(result.weights, dtype=dtype, device=device)
        full = torch.empty(R * chunk, dtype=dtype, device=device)
        grp.all_gather(full, torch.tensordot(w, shard, dims=1).contiguous())
        _add_into_grads(shared, full[:M])
        if task_buf is not None:
            _add_into_grads(task_list, task_buf)
        return self._finish(result, G_unscaled, values)

    def _replicated_representation(
        self,
        method,
        losses,
        local_values,
        values,
        shared,
        inputs,
        jac,
        task_list,
        task_grads,
        scale,
        scaler,
        retain_graph,
    ) -> StepInfo:
        """Representation mode over several ranks: the features of different ranks are
        different coordinates, so the global Gram is the ranks' Grams summed over R²
        (each rank's loss is 1/R of the global one)."""
        grp = self._group
        K = len(losses)
        G = gram_matrix(jac, K, self.gram_precision)
        if grp.mode == "exact":
            G = grp.sum_numpy(G) / (grp.size * grp.size)
            skipped = self._agreed_gram(G, shared, scaler, values)
        elif grp.agree({}, not np.isfinite(G).all()):
            skipped = self._non_finite(
                "a gradient has NaN or Inf on some rank", shared, scaler, values
            )
        else:
            skipped = None
        if skipped is not None:
            return skipped
        G_unscaled = G / (scale * scale)
        result = self.route.solve(method, G_unscaled, values)
        combined = [
            torch.tensordot(
                torch.as_tensor(result.weights, dtype=J.dtype, device=J.device), J, dims=1
            )
            for J in jac
        ]
        trunk = torch.autograd.grad(
            inputs, shared, grad_outputs=combined, allow_unused=True, retain_graph=retain_graph
        )
        trunk = [
            torch.zeros_like(p) if g is None else g for p, g in zip(shared, trunk, strict=True)
        ]
        dtype = _common_dtype([*trunk, *task_grads])
        M = sum(g.numel() for g in trunk)
        buf = torch.empty(
            M + sum(t.numel() for t in task_grads), dtype=dtype, device=trunk[0].device
        )
        _fill(buf[:M], trunk)
        _fill(buf[M:], task_grads)
        grp.mean_(buf)
        _add_into_grads(shared, buf[:M])
        _add_into_grads(task_list, buf[M:])
        return self._finish(result, G_unscaled, values)

    def _sharded_step(
        self, method, losses, values, shared, task_params, scale, retain_graph
    ) -> StepInfo:
        """fully_shard: one backward per task, FSDP reduce-scatters each task's
        gradient; each rank holds its shard of every global per-task gradient."""
        grp = self._group
        K = len(losses)
        if task_params is None:
            raise ValueError(
                "distributed='sharded' needs task_params= (the parameters outside the "
                "shared trunk, e.g. model.heads.parameters()): their gradients are read "
                "from .grad after each task's backward"
            )
        task_list = _trainable(task_params, "task_params")
        for i, p in enumerate(task_list):
            if not is_sharded(p):
                raise ValueError(
                    f"task_params[{i}] is a plain tensor, not a DTensor sharded by "
                    f"fully_shard: between forward and backward fully_shard swaps a module's "
                    f"parameters for unsharded tensors, whose .grad it never writes. Collect "
                    f"the parameter lists once, before training (heads = "
                    f"list(model.heads.parameters())), and pass those; put any parameter "
                    f"outside fully_shard under DDP instead"
                )
        shared_ids = {id(p) for p in shared}
        overlap = [i for i, p in enumerate(task_list) if id(p) in shared_ids]
        if overlap:
            raise ValueError(f"task_params[{overlap[0]}] is also in shared_params")
        skipped = self._open_step(K, shared, task_list, values, None)
        if skipped is not None:
            return skipped
        everything = [*shared, *task_list]
        stash = [p.grad for p in everything]
        for p in everything:
            p.grad = None
        jac = [
            torch.zeros((K, local_part(p).numel()), dtype=p.dtype, device=local_part(p).device)
            for p in shared
        ]
        task_grads = [None] * len(task_list)
        try:
            for i, loss in enumerate(losses):
                loss.reshape(()).backward(retain_graph=retain_graph or i < K - 1)
                for J, p in zip(jac, shared, strict=True):
                    if p.grad is not None:
                        J[i] = local_part(p.grad).reshape(-1)
                        p.grad = None
                for j, p in enumerate(task_list):
                    if p.grad is not None:
                        g = p.grad
                        task_grads[j] = g if task_grads[j] is None else task_grads[j] + g
                        p.grad = None
        finally:
            for p, g in zip(everything, stash, strict=True):
                p.grad = g
        task_grads = [
            torch.zeros_like(p) if g is None else g
            for p, g in zip(task_list, task_grads, strict=True)
        ]
        if self._accumulating or self._pending is not None:
            held = self._hold(jac, values, task_grads)
            if held is None:
                return self._accumulated_info(values)
            jac, values, task_grads, _ = held
        values = grp.sum_numpy(values) / grp.size
        G = grp.sum_numpy(gram_matrix(jac, K, self.gram_precision))
        skipped = self._agreed_gram(G, shared, None, values)
        if skipped is not None:
            return skipped
        result = self.route.solve(method, G, values)
        for p, J in zip(shared, jac, strict=True):
            w = torch.as_tensor(result.weights, dtype=J.dtype, device=J.device)
            part = torch.tensordot(w, J, dims=1).view(local_part(p).shape)
            _add_local_grad(p, part)
        for p, g in zip(task_list, task_grads, strict=True):
            p.grad = g if p.grad is None else p.grad + g
        return self._finish(result, G, values)

    def _distributed_loss_step(
        self, method, losses, values, shared, layer, scale, scaler, retain_graph
    ) -> StepInfo:
        grp = self._group
        K = len(losses)
        bad_loss = not np.isfinite(values).all()
        if grp.agree({"the number of tasks": K}, bad_loss):
            return self._non_finite("a loss is non-finite on some rank", shared, scaler, values)
        if grp.mode != "local":
            values = grp.sum_numpy(values) / grp.size
        norms = None
        if "grad_norms" in self.route.inputs:
            if layer is None:
                raise ValueError(
                    f"{self.method} needs layer= (the parameters of the shared layer W whose "
                    "per-task gradient norms it balances; the paper uses the last shared layer)"
                )
            layer_params = _as_param_list(layer, "layer")
            jac = per_task_grads(losses, layer_params, "autograd")
            jac = [
                torch.zeros((K, *x.shape), dtype=x.dtype, device=x.device) if J is None else J
                for x, J in zip(layer_params, jac, strict=True)
            ]
            if grp.mode == "exact":
                n = sum(x.numel() for x in layer_params)
                buf = torch.empty(K, n, dtype=_common_dtype(jac), device=jac[0].device)
                start = 0
                for J in jac:
                    m = J[0].numel()
                    buf[:, start : start + m] = J.reshape(K, m)
                    start += m
                jac = [grp.mean_(buf)]
            G_layer = gram_matrix(jac, K)
            bad = not np.isfinite(G_layer).all()
            if grp.mode == "local":
                bad = grp.agree({}, bad)
            if bad:
                return self._non_finite(
                    "a gradient at layer has NaN or Inf on some rank", shared, scaler, values
                )
            norms = np.sqrt(np.clip(np.diagonal(G_layer), 0.0, None)) / scale
        weights = self.route.weigh(method, values, norms, scale)
        total = sum(float(w) * loss.reshape(()) for w, loss in zip(weights, losses, strict=True))
        if self._ddp is not None or grp.mode == "sharded":
            total.backward(retain_graph=retain_graph)  # DDP's or FSDP's own averaging
        else:
            leaves = graph_leaves(losses)
            grads = _grads_or_zeros([total], leaves, retain_graph=retain_graph)
            buf = torch.empty(
                sum(g.numel() for g in grads), dtype=_common_dtype(grads), device=grads[0].device
            )
            _fill(buf, grads)
            grp.mean_(buf)
            _add_into_grads(leaves, buf)
        self.steps += 1
        return StepInfo(weights=weights, losses=values, gram=None, cosines=None, method=self.method)


def _trainable(params: Iterable[torch.Tensor], name: str) -> list[torch.Tensor]:
    """The tensors of ``params`` that require grad (none is fine)."""
    if isinstance(params, torch.Tensor):
        params = [params]
    out = list(params)
    for i, p in enumerate(out):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name}[{i}] is a {type(p).__name__}, not a torch.Tensor")
    return [p for p in out if p.requires_grad]


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return None if b is None else b.clone()
    return a if b is None else a.add_(b)


def _common_dtype(tensors: Sequence[torch.Tensor]) -> torch.dtype:
    dtype = tensors[0].dtype if tensors else torch.float32
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _grads_or_zeros(
    roots: Sequence[torch.Tensor], params: Sequence[torch.Tensor], *, retain_graph: bool
) -> list[torch.Tensor]:
    """Gradients of the summed ``roots`` at ``params`` (zeros where unreached)."""
    if not params:
        return []
    grads = torch.autograd.grad(
        [r.reshape(()) for r in roots], list(params), allow_unused=True, retain_graph=retain_graph
    )
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _fill(buf: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
    """Copy ``tensors`` one after another into the flat ``buf``."""
    start = 0
    for t in tensors:
        n = t.numel()
        buf[start : start + n] = t.reshape(-1)
        start += n


def _add_into_grads(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """``p.grad += `` each parameter's piece of ``flat`` (in its shape and dtype)."""
    start = 0
    for p in params:
        n = p.numel()
        piece = flat[start : start + n].view(p.shape).to(device=p.device, dtype=p.dtype, copy=True)
        start += n
        if p.grad is None:
            p.grad = piece
        else:
            p.grad.add_(piece)


def _add_local_grad(p: torch.Tensor, part: torch.Tensor) -> None:
    """Add this rank's ``part`` to the DTensor parameter's sharded ``.grad``."""
    from torch.distributed.tensor import DTensor

    grad = DTensor.from_local(
        part.to(dtype=p.dtype),
        p.device_mesh,
        p.placements,
        run_check=False,
        shape=p.shape,
        stride=p.stride(),
    )
    p.grad = grad if p.grad is None else p.grad + grad


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
