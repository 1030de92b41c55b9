"""Initial-loss normalisation: divide each task's loss by its value at the start."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_count, check_reciprocal
from paretomtl.state import array, count, value
from paretomtl.weighting._base import SU_2022, LossWeighting
from paretomtl.weighting._registry import register


def _check_divisors(x: object, K: int, where: str) -> np.ndarray | None:
    """None, or K losses > 0 whose reciprocals are finite."""
    arr = array("K", "> 0", optional=True).check(x, K, where)
    if arr is not None:
        check_reciprocal(arr, where)
    return arr


@register(
    "initial-loss",
    kind="loss",
    paper=SU_2022,
    summary="w_i = 1 / L_i(init): each loss measured in units of its initial value",
)
class InitialLossNormalization(LossWeighting):
    r"""Initial-loss normalisation: :math:`w_i = 1 / L_i^{(\mathrm{init})}`.

    Losses of different tasks have different units (a cross-entropy in nats, a
    squared error in metres squared); dividing each by its initial value makes them
    dimensionless (Su, "Multi-task learning: loss normalisation", kexue.fm, 2022):

    .. math::

        \textstyle\sum_i L_i / L_i^{(\mathrm{init})},\qquad
        L_i^{(\mathrm{init})} = \frac{1}{n}\sum_{t=1}^{n} L_i(t),

    the mean of the first ``n = warmup_steps`` steps' losses (Su suggests one batch,
    the default ``n = 1``), or given as ``initial_losses``. During the warm-up the
    weights use the running mean of the losses seen so far, this step's included, so
    the first step's weighted losses are all exactly 1; after it the weights are
    fixed.

    Scale invariance: if every loss of task i is multiplied by the same
    :math:`c_i > 0` (a change of units), :math:`L_i^{(\mathrm{init})}` is too, so the
    weighted losses :math:`w_i L_i` and the trainer's gradient are unchanged.

    Args:
        num_tasks: K >= 1.
        warmup_steps: n >= 1, the steps averaged into :math:`L_i^{(\mathrm{init})}`
            (default 1). Not allowed together with ``initial_losses``.
        initial_losses: the K values :math:`L_i^{(\mathrm{init})}` (finite, > 0);
            then there is no warm-up.

    During the warm-up every loss must be > 0 (it enters a divisor); after it the
    losses only need to be finite. The mean is a running mean (no sum of losses to
    overflow); one so small (below about 5.6e-309) that its reciprocal, the weight,
    overflows raises a ValueError naming the task, as does such an ``initial_losses``.

    Example:
        >>> from paretomtl.weighting import InitialLossNormalization
        >>> norm = InitialLossNormalization(2, warmup_steps=2)
        >>> norm.update([2.0, 0.5])  # running mean (2, 0.5)
        array([0.5, 2. ])
        >>> norm.update([4.0, 1.5])  # mean of two steps: (3, 1)
        array([0.33333333, 1.        ])
        >>> norm.update([1.0, 0.1])  # fixed from now on
        array([0.33333333, 1.        ])
    """

    hyperparameters = {
        "warmup_steps": value(lambda x, K, where: check_count(x, where, minimum=1)),
        "given_initial_losses": value(_check_divisors),
    }
    fields = {"_loss_mean": array("K", ">= 0"), "_count": count()}

    def __init__(
        self,
        num_tasks: int,
        *,
        warmup_steps: int | None = None,
        initial_losses: object = None,
    ) -> None:
        super().__init__(num_tasks)
        if initial_losses is not None and warmup_steps is not None:
            raise ValueError(
                "pass either warmup_steps (measure the initial losses) or initial_losses "
                "(give them), not both"
            )
        n = 1 if warmup_steps is None else warmup_steps
        self.warmup_steps = check_count(n, "warmup_steps", minimum=1)
        given = None
        if initial_losses is not None:
            K = self.num_tasks
            given = as_real_task_vector(initial_losses, "initial_losses", K, need="> 0")
            check_reciprocal(given, "initial_losses", "the weights are 1 / initial_losses")
        self.given_initial_losses = given
        self.reset()

    def _reset(self) -> None:
        self._loss_mean = np.zeros(self.num_tasks)  # the running mean of the warm-up
        self._count = 0

    @property
    def initial_losses(self) -> np.ndarray | None:
        """:math:`L_i^{(\\mathrm{init})}`: given, or the running mean (fixed after the
        warm-up); None before the first update."""
        if self.given_initial_losses is not None:
            return self.given_initial_losses.copy()
        return None if self._count == 0 else self._loss_mean.copy()

    @property
    def warming_up(self) -> bool:
        """Whether the next update still enters the initial-loss mean."""
        return self.given_initial_losses is None and self._count < self.warmup_steps

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        if not self.warming_up:
            return 1.0 / self.initial_losses
        self._require(
            losses,
            "> 0",
            "during the warm-up the losses enter L(init), which the weights divide by",
        )
        # The running mean of positive numbers: every difference is between two numbers
        # of the same sign, so nothing overflows (a sum of losses near 1e308 would).
        count = self._count + 1
        mean = self._loss_mean + (losses - self._loss_mean) / count
        with np.errstate(divide="ignore", over="ignore"):
            w = 1.0 / mean
        if not np.isfinite(w).all():
            i = int(np.flatnonzero(~np.isfinite(w))[0])
            raise ValueError(
                f"losses[{i}] (task {i}) is {float(losses[i])!r}: with it L(init) of task "
                f"{i}, the mean of its warm-up losses, would be {float(mean[i])!r}, and its "
                "weight 1 / L(init) overflows float64"
            )
        self._loss_mean, self._count = mean, count
        return w

    def check_state(self, values: dict) -> None:
        given, mean, count = values["given_initial_losses"], values["_loss_mean"], values["_count"]
        w = values["_weights"]
        if given is not None:
            if count != 0 or (mean != 0).any() or values["warmup_steps"] != 1:
                raise ValueError(
                    "with state['hyperparameters']['given_initial_losses'] there is no warm-up: "
                    "state['count'] must be 0, state['loss_mean'] 0 and warmup_steps 1; got "
                    f"{count}, {mean} and {values['warmup_steps']}"
                )
            expected = 1.0 / given
        elif count > values["warmup_steps"]:
            raise ValueError(
                f"state['count'] is {count}, beyond the {values['warmup_steps']} warm-up steps "
                "(state['hyperparameters']['warmup_steps'])"
            )
        elif count == 0:
            if (mean != 0).any() or w is not None:
                raise ValueError(
                    "state['count'] is 0 (no update yet) but state['loss_mean'] is "
                    f"{mean} and state['weights'] {w}: they must be 0 and None"
                )
            return
        else:
            check_reciprocal(mean, "state['loss_mean']")
            if w is None:
                raise ValueError(f"state['weights'] is None after state['count'] = {count} updates")
            expected = 1.0 / mean
        if w is not None and w.tobytes() != expected.tobytes():
            raise ValueError(
                f"state['weights'] must be 1 / L(init) = {expected} (or None); got {w}"
            )
