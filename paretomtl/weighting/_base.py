"""The protocol of loss-based task weightings: K losses in, K weights out, plain state."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from paretomtl._checks import as_real_task_vector, check_num_tasks
from paretomtl.state import Stateful, array

SU_2022 = 'Su (Jianlin), "Multi-task learning: loss normalisation" (kexue.fm blog), 2022'


class LossWeighting(Stateful):
    r"""Base class of the loss weightings: ``update(losses) -> weights`` plus plain state.

    At each training step the trainer computes the K task losses :math:`L_i`, calls
    :meth:`update` with their values, and minimises :math:`\sum_i w_i L_i` with the
    returned weights held constant (no gradient flows through :math:`w`). For a
    method defined by an objective :math:`F(L_1, \dots, L_K)` the weights are
    :math:`w_i = \partial F / \partial L_i`, so the trainer's gradient equals
    :math:`\nabla F`.

    The contract every subclass keeps:

    - ``update(losses)`` takes this step's K loss values (a sequence or array),
      returns the (K,) float64 weights for *this* step and advances the state.
      Losses must be finite, and > 0 where the method takes logs or ratios; a wrong
      K or a bad value raises ``ValueError`` naming the task, and leaves the state
      exactly as it was.
    - ``weights`` is the last returned weight vector (a copy), ``None`` before the
      first update and after :meth:`reset`.
    - ``state_dict()`` is plain Python data (new objects, no numpy: see
      :func:`paretomtl.state.plain`; it loads with ``torch.load(...,
      weights_only=True)``); ``load_state_dict`` restores it (and the numpy arrays
      of older checkpoints), and a run resumed from it continues bit for bit.

    A weighting is also called like a function, ``weighting(losses)``, which is
    :meth:`update`; the torch adapter calls it that way. Methods that need more
    than the losses (GradNorm: gradient norms at a shared layer) list those inputs
    in ``inputs``, and the adapter computes them.

    Subclasses set ``hyperparameters`` and ``fields`` (see :class:`Stateful`: the
    options and the memory, each with the check its saved value must pass),
    ``loss_domain`` (``"finite"``, ``">= 0"`` or ``"> 0"``) and ``why`` (why the
    losses need that domain, for the error message), ``weight_domain`` (``">= 0"``,
    the default, or ``"finite"`` for the gradients of penalised scalarisations such as
    COSMOS and PBI, whose weights may be negative), and implement ``_reset`` and
    ``_compute`` (validate everything first; mutate state only once nothing can
    fail).

    Example:
        >>> import numpy as np
        >>> from paretomtl.weighting import LossWeighting
        >>> class InverseLoss(LossWeighting):
        ...     # w_i = 1 / L_i: every task's weighted loss is 1.
        ...     loss_domain = "> 0"
        ...     def _compute(self, losses):
        ...         return 1.0 / losses
        >>> InverseLoss(2)([0.5, 4.0])
        array([2.  , 0.25])
    """

    inputs: ClassVar[tuple[str, ...]] = ("losses",)
    loss_domain: ClassVar[str] = "finite"
    weight_domain: ClassVar[str] = ">= 0"
    why: ClassVar[str] = ""
    fields = {"_weights": array("K", ">= 0", optional=True)}

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self._weights: np.ndarray | None = None

    # -- the step -----------------------------------------------------------------
    def update(self, losses: object) -> np.ndarray:
        """Weights for this step's losses; advances the state.

        Args:
            losses: the K task losses of this step (their values; unweighted).

        Returns:
            The (K,) float64 weights :math:`w` to minimise :math:`\\sum_i w_i L_i` with.
        """
        L = self._check_losses(losses)
        w = np.asarray(self._compute(L), dtype=np.float64)
        self._weights = w
        return w.copy()

    def __call__(self, losses: object) -> np.ndarray:
        """The weights to apply at this step (:meth:`update`)."""
        return self.update(losses)

    def _check_losses(self, losses: object) -> np.ndarray:
        try:
            return as_real_task_vector(losses, "losses", self.num_tasks, need=self.loss_domain)
        except ValueError as exc:
            if self.why and "(task" in str(exc):
                raise ValueError(f"{exc} ({self.why})") from None
            raise

    def _require(self, losses: np.ndarray, need: str, why: str) -> None:
        """A ValueError naming the task unless every loss satisfies ``need``."""
        try:
            as_real_task_vector(losses, "losses", self.num_tasks, need=need)
        except ValueError as exc:
            raise ValueError(f"{exc} ({why})") from None

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def weights(self) -> np.ndarray | None:
        """The weights the last :meth:`update` returned (a copy); None before any."""
        return None if self._weights is None else self._weights.copy()

    # -- state --------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state right after construction."""
        self._weights = None
        self._reset()

    def _reset(self) -> None:
        pass

    def __repr__(self) -> str:
        args = "".join(f", {k.lstrip('_')}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}(num_tasks={self.num_tasks}{args})"
