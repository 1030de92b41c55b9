"""Dynamic Weight Average: weight each task by how slowly its loss is falling."""

from __future__ import annotations

import numpy as np

from paretomtl.state import array, choice, count, real, value
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register


def _check_history(x: object, K: int, where: str) -> list[np.ndarray]:
    """At most the last two period averages, each K positive losses."""
    if not isinstance(x, list | tuple) or len(x) > 2:
        raise ValueError(f"{where} must be a list of at most 2 arrays; got {x!r}")
    check = array("K", "> 0").check
    return [check(h, K, f"{where}[{i}]") for i, h in enumerate(x)]


@register(
    "dwa",
    kind="loss",
    paper=("Liu, Johns & Davison, End-to-End Multi-Task Learning with Attention, CVPR 2019"),
    summary="w_i = K softmax(r / T)_i, r_i = ratio of the last two epoch-average losses",
)
class DynamicWeightAverage(LossWeighting):
    r"""Dynamic Weight Average (DWA; Liu, Johns & Davison, CVPR 2019).

    .. math::

        w_i(t) = \frac{K \exp(r_i(t-1)/T)}{\sum_j \exp(r_j(t-1)/T)},\qquad
        r_i(t-1) = \frac{\bar L_i(t-1)}{\bar L_i(t-2)},

    where :math:`\bar L_i(t)` is task i's loss averaged over period t: an epoch
    (``per="epoch"``, the paper's choice and its code's: the mean of the step losses
    between two :meth:`end_epoch` calls) or a single step (``per="step"``). A task
    whose loss falls slowly (:math:`r_i` near 1) gets more weight; the weights sum
    to K. They are 1 until two periods of history exist (the paper's first two
    epochs). The temperature T (paper: 2) softens the weighting; large T gives
    equal weights.

    In epoch mode the weights are constant within an epoch: :meth:`update` returns
    the current epoch's weights and adds the losses to its average;
    :meth:`end_epoch` closes the epoch and sets the next one's weights. In step mode
    :meth:`update` returns weights from the two previous steps' losses and then
    records this step's. Losses must be > 0 (their ratios are taken).

    Args:
        num_tasks: K >= 1.
        temperature: T > 0 (default 2.0, the paper's).
        per: ``"epoch"`` (default) or ``"step"``.

    Example:
        >>> from paretomtl.weighting import DynamicWeightAverage
        >>> dwa = DynamicWeightAverage(2, temperature=1.0, per="step")
        >>> dwa.update([1.0, 1.0]), dwa.update([0.5, 1.0])  # no history yet
        (array([1., 1.]), array([1., 1.]))
        >>> dwa.update([0.4, 1.0])  # r = (0.5, 1): 2 * softmax(r)
        array([0.75508134, 1.24491866])
    """

    hyperparameters = {"temperature": real(low=0.0, low_open=True), "per": choice("epoch", "step")}
    fields = {
        "_history": value(_check_history),
        "_loss_sum": array("K"),
        "_count": count(),
        "_period_weights": array("K", ">= 0"),
        "_periods": count(),
    }
    loss_domain = "> 0"
    why = "DWA takes ratios of consecutive average losses"

    def __init__(self, num_tasks: int, temperature: float = 2.0, per: str = "epoch") -> None:
        super().__init__(num_tasks)
        if isinstance(temperature, bool) or not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be finite and > 0; got {temperature!r}")
        if per not in ("epoch", "step"):
            raise ValueError(f"per must be 'epoch' or 'step'; got {per!r}")
        self.temperature = float(temperature)
        self.per = per
        self.reset()

    def _reset(self) -> None:
        K = self.num_tasks
        self._history: list[np.ndarray] = []  # the last two period averages, oldest first
        self._loss_sum = np.zeros(K)  # the open epoch's running sum and count
        self._count = 0
        self._period_weights = np.ones(K)
        self._periods = 0

    @property
    def periods(self) -> int:
        """How many periods (epochs or steps) have been closed."""
        return self._periods

    @property
    def average_losses(self) -> np.ndarray | None:
        """:math:`\\bar L(t-1)`, the last closed period's average losses (None if none)."""
        return None if not self._history else self._history[-1].copy()

    def _close(self, averages: np.ndarray) -> None:
        self._history = [*self._history, averages][-2:]
        self._periods += 1
        if len(self._history) == 2:
            # A ratio can overflow to inf (losses 1e300 apart): the softmax's limit then
            # splits the weight among the infinite entries.
            with np.errstate(over="ignore"):
                z = (self._history[1] / self._history[0]) / self.temperature
            top = z.max()
            e = (z == top).astype(np.float64) if np.isinf(top) else np.exp(z - top)
            self._period_weights = self.num_tasks * e / e.sum()

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        w = self._period_weights.copy()
        if self.per == "step":
            self._close(losses)
        else:
            self._loss_sum = self._loss_sum + losses
            self._count += 1
        return w

    def end_epoch(self) -> None:
        """Close the epoch: its average losses set the next epoch's weights."""
        if self.per != "epoch":
            raise ValueError(
                "end_epoch() is for per='epoch'; with per='step' every update is a period"
            )
        if self._count == 0:
            raise ValueError("end_epoch() with no update() since the last epoch ended")
        averages = self._loss_sum / self._count
        self._loss_sum = np.zeros(self.num_tasks)
        self._count = 0
        self._close(averages)
