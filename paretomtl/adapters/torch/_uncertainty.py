"""Uncertainty weighting with torch parameters (the framework route of the method)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from paretomtl._checks import as_real_task_vector
from paretomtl.weighting.uncertainty import TASK_FACTORS, check_task_types

UNTRAINED_WARNING = 100
"""Consecutive :meth:`UncertaintyWeightingLoss.weigh` calls with unchanged
log-variances after which a warning says that no optimiser trains them."""


class UncertaintyWeightingLoss(torch.nn.Module):
    r"""Kendall et al.'s uncertainty-weighted total loss with learnable log-variances.

    .. math::

        \mathcal L = \sum_i c_i e^{-s_i} L_i + \tfrac12 s_i,\qquad s_i = \log\sigma_i^2,

    with :math:`c_i = 1/2` for regression and 1 for classification tasks (Kendall, Gal
    & Cipolla, CVPR 2018, eqs. 7 and 10). The log-variances :math:`s` are a torch
    parameter (``log_variances``, float64, start ``initial_log_variances``) that the
    user's optimiser trains with the network, as the paper does: add this module's
    :meth:`parameters` to it. They are then in the optimiser's state, its learning-rate
    schedule and the checkpoint (``state_dict()``: ``log_variances`` and the
    ``factors`` :math:`c`).

    Two ways to use it:

    - on its own: ``total = module(losses); total.backward()`` gives the network
      :math:`\sum_i c_i e^{-s_i} \nabla L_i` and s its gradient
      :math:`-c_i e^{-s_i} L_i + 1/2`;
    - through the adapter, ``Aggregator("uncertainty", options={"task_types": ...})``
      (or ``Aggregator(module)``), which builds it (``agg.method_state``,
      ``agg.parameters()``) and at each step calls :meth:`weigh`: the weights
      :math:`c_i e^{-s_i}` for one backward of :math:`\sum_i w_i L_i`, and the same
      gradient of s written into ``log_variances.grad``. In exact distributed modes
      the losses are the global means, so every rank writes the same gradient.

    The gradient in s is that of :class:`paretomtl.weighting.UncertaintyWeighting`'s
    framework-free update (which trains s itself, with its own Adam or SGD); the
    tests check that one SGD step of each agrees. s is not bounded here: the
    optimiser owns it.

    If the log-variances stay unchanged over :data:`UNTRAINED_WARNING` (100)
    consecutive :meth:`weigh` calls, a RuntimeWarning says, once, that no optimiser
    seems to train them (their parameters were not given to it).

    Args:
        num_tasks: K >= 1.
        task_types: required: ``"regression"`` or ``"classification"`` for all
            tasks, or one per task.
        initial_log_variances: :math:`s` at the start (and after :meth:`reset`), a
            scalar or K finite values (default 0: :math:`\sigma = 1`, weights
            :math:`c_i`).

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torch import UncertaintyWeightingLoss
        >>> uw = UncertaintyWeightingLoss(2, task_types=("regression", "classification"))
        >>> total = uw([torch.tensor(2.0), torch.tensor(1.0)])  # s = 0: 0.5 * 2 + 1 * 1
        >>> float(total.detach())
        2.0
        >>> total.backward()
        >>> uw.log_variances.grad  # -c L + 1/2
        tensor([-0.5000, -0.5000], dtype=torch.float64)
    """

    def __init__(
        self,
        num_tasks: int,
        task_types: str | Sequence[str] | None = None,
        initial_log_variances: float | Sequence[float] = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be a positive integer; got {num_tasks!r}")
        types = check_task_types(task_types, num_tasks)
        s0 = as_real_task_vector(
            initial_log_variances, "initial_log_variances", num_tasks, broadcast=True
        )
        self.num_tasks = num_tasks
        self.task_types = types
        self.factors: torch.Tensor  # buffers, declared for type checkers
        self.initial_log_variances: torch.Tensor
        self.register_buffer(
            "factors", torch.tensor([TASK_FACTORS[t] for t in types], dtype=torch.float64)
        )
        self.register_buffer("initial_log_variances", torch.from_numpy(s0), persistent=False)
        self.log_variances = torch.nn.Parameter(torch.from_numpy(s0.copy()))
        self._seen: np.ndarray | None = None  # s at the last weigh(), to see if it trains
        self._unchanged = 0
        self._warned = False

    def weights(self) -> torch.Tensor:
        """The current loss weights :math:`c_i e^{-s_i}` (detached)."""
        return (self.factors * torch.exp(-self.log_variances)).detach()

    def forward(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        """The total :math:`\\sum_i c_i e^{-s_i} L_i + s_i / 2`, differentiable in
        the losses and in s."""
        L = torch.stack([loss.reshape(()) for loss in losses])
        s = self.log_variances.to(L.dtype)
        c = self.factors.to(L.dtype)
        return (c * torch.exp(-s) * L + 0.5 * s).sum()

    def weigh(self, losses: object, scale: float = 1.0) -> np.ndarray:
        """This step's weights, and the gradient of the total in s added to its ``.grad``.

        The weights :math:`w_i = c_i e^{-s_i}` are returned as a (K,) float64 array
        (for one backward of :math:`\\sum_i w_i L_i`: the network's share of the
        total's gradient); ``scale * (1/2 - w_i L_i)``, the total's derivative in
        :math:`s_i` times the GradScaler's ``scale``, is added to
        ``log_variances.grad`` as autograd adds (the optimiser's ``zero_grad``
        clears it). Losses must be K finite values >= 0 (a squared error or a
        cross-entropy); otherwise a ValueError names the task and nothing changes.

        Example:
            >>> from paretomtl.adapters.torch import UncertaintyWeightingLoss
            >>> uw = UncertaintyWeightingLoss(2, task_types="classification")
            >>> uw.weigh([2.0, 0.25])
            array([1., 1.])
            >>> uw.log_variances.grad  # 1/2 - w L
            tensor([-1.5000,  0.2500], dtype=torch.float64)
        """
        L = as_real_task_vector(
            losses,
            "losses",
            self.num_tasks,
            need=">= 0",
        )
        s = self.log_variances
        now = s.detach().to("cpu", torch.float64).numpy().copy()
        w = self.factors.detach().to("cpu").numpy() * np.exp(-now)
        with np.errstate(over="ignore", invalid="ignore"):
            grad = float(scale) * (0.5 - w * L)
        g = torch.as_tensor(grad, dtype=s.dtype, device=s.device)
        with torch.no_grad():
            if s.grad is None:
                s.grad = g
            else:
                s.grad.add_(g)
        self._watch(now)
        return w

    def _watch(self, now: np.ndarray) -> None:
        """Warn once when s has not moved for UNTRAINED_WARNING calls."""
        if self._seen is not None and now.tobytes() == self._seen.tobytes():
            self._unchanged += 1
        else:
            self._unchanged = 0
        self._seen = now
        if self._unchanged >= UNTRAINED_WARNING and not self._warned:
            self._warned = True
            warnings.warn(
                f"uncertainty weighting: the log-variances have not changed over "
                f"{UNTRAINED_WARNING} steps, so the loss weights stay where they started. "
                f"Give them to the optimizer: torch.optim.Adam([*model.parameters(), "
                f"*agg.parameters()]) (or add a param group with agg.parameters())",
                RuntimeWarning,
                stacklevel=4,
            )

    def reset(self) -> None:
        """Log-variances back to ``initial_log_variances`` (in place: the optimiser
        keeps the same parameter; its own state, e.g. Adam's moments, is the
        optimiser's to reset)."""
        with torch.no_grad():
            self.log_variances.copy_(self.initial_log_variances)
        self._seen, self._unchanged, self._warned = None, 0, False

    def load_state_dict(
        self, state_dict: Mapping, strict: bool = True, assign: bool = False
    ) -> object:
        """:meth:`torch.nn.Module.load_state_dict`, after a check of the whole state:
        a ValueError names the bad entry (not a Mapping, missing or unknown keys,
        ``log_variances`` not K finite floats, ``factors`` of other task types) and
        nothing changes."""
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                f"state must be a dict from UncertaintyWeightingLoss.state_dict(); got "
                f"{type(state_dict).__name__}"
            )
        expected = {"log_variances", "factors"}
        missing, unknown = expected - set(state_dict), set(state_dict) - expected
        if missing or (strict and unknown):
            raise ValueError(
                f"state must have the keys {sorted(expected)}; missing {sorted(missing)}, "
                f"unknown {sorted(unknown, key=str)}"
            )
        K = self.num_tasks
        s = state_dict["log_variances"]
        if not isinstance(s, torch.Tensor) or s.shape != (K,) or not s.is_floating_point():
            raise ValueError(
                f"state['log_variances'] must be a float tensor of shape ({K},); got {s!r:.80}"
            )
        if not bool(torch.isfinite(s).all()):
            raise ValueError(f"state['log_variances'] must be finite; got {s}")
        c = state_dict["factors"]
        mine = self.factors
        if (
            not isinstance(c, torch.Tensor)
            or c.shape != mine.shape
            or not bool(torch.equal(c.to(mine.device, mine.dtype), mine))
        ):
            raise ValueError(
                f"state['factors'] {c!r:.80} are not this module's ({mine.tolist()}, task "
                f"types {self.task_types}): the state is for other task types"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, task_types={self.task_types}"
