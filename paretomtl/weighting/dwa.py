"""Dynamic Weight Average: weight each task by how slowly its loss is falling."""

from __future__ import annotations

import warnings

import numpy as np

from paretomtl._checks import check_choice, check_count, check_real
from paretomtl.state import added, array, choice, count, real, value
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register

UNCLOSED_WARNING = 1000
"""Updates in a first epoch that no :meth:`DynamicWeightAverage.end_epoch` has closed
after which a warning says that the weights stay 1 until two epochs have ended."""


def _check_epoch_steps(x: object, K: int, where: str) -> int | None:
    """None, or the number of updates >= 1 after which an epoch ends by itself."""
    return None if x is None else check_count(x, where, minimum=1)


def _check_history(x: object, K: int, where: str) -> list[np.ndarray]:
    """At most the last two period averages, each K positive losses."""
    if not isinstance(x, list | tuple) or len(x) > 2:
        text = repr(x) if len(repr(x)) < 80 else repr(x)[:77] + "..."
        raise ValueError(f"{where} must be a list of at most 2 arrays; got {text}")
    check = array("K", "> 0").check
    return [check(h, K, f"{where}[{i}]") for i, h in enumerate(x)]


def period_weights(history: list[np.ndarray], temperature: float) -> np.ndarray:
    """``K softmax(r / T)`` with ``r`` the ratio of the two averages in ``history``."""
    K = history[0].size
    # A ratio can overflow to inf (losses 1e300 apart): the softmax's limit then
    # splits the weight among the infinite entries.
    with np.errstate(over="ignore"):
        z = (history[1] / history[0]) / temperature
    top = z.max()
    e = (z == top).astype(np.float64) if np.isinf(top) else np.exp(z - top)
    return K * e / e.sum()


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
    (``per="epoch"``, the default: the paper's choice and its code's, the mean of the
    training losses of the epoch's steps) or a single step (``per="step"``). A task
    whose loss falls slowly (:math:`r_i` near 1) gets more weight; the weights sum
    to K. They are 1 until two periods of history exist (the paper's first two
    epochs). The temperature T (paper: 2) softens the weighting; large T gives
    equal weights.

    **Epochs must end.** :meth:`update` knows steps, not epochs: per epoch the
    weights stay 1 (and then constant) until epochs are closed, in one of two ways.

    - ``epoch_steps=N``: the epoch ends by itself after N updates (``N =
      len(train_loader)``); no call is needed. Through the torch adapter:
      ``Aggregator("dwa", options={"epoch_steps": len(loader)})``.
    - :meth:`end_epoch` at the end of each epoch (through the adapter,
      ``agg.method_state.end_epoch()``). It closes the epoch if the epoch saw an
      update and is a no-op otherwise (returning False): an epoch without updates has
      no average losses, so calling it before the first step, twice in a row, after
      an epoch that ``epoch_steps`` already closed, or after an epoch whose steps
      were all skipped (non-finite losses) changes nothing.

    With neither, the weights never change: after :data:`UNCLOSED_WARNING` (1000)
    updates in a first epoch that nothing closed, a RuntimeWarning says so, once
    (ignore it if an epoch really is that long, or pass ``epoch_steps``).

    Within an epoch the weights are constant: :meth:`update` returns the current
    epoch's weights and adds the losses to its average. In step mode :meth:`update`
    returns weights from the two previous steps' losses and then records this
    step's. Losses must be > 0 (their ratios are taken). Any positive float64 losses
    give finite weights: an epoch's average is a running mean (a sum of losses near
    1e308 would overflow), and a ratio beyond float64's range gets the softmax's
    limit (all the weight on the tasks whose ratio is infinite).

    Args:
        num_tasks: K >= 1.
        temperature: T > 0 (default 2.0, the paper's).
        per: ``"epoch"`` (default) or ``"step"``.
        epoch_steps: with ``per="epoch"``, the number of updates after which an
            epoch ends by itself (an int >= 1), or None (default): epochs end only
            at :meth:`end_epoch`.

    Example:
        >>> from paretomtl.weighting import DynamicWeightAverage
        >>> dwa = DynamicWeightAverage(2, temperature=1.0, per="step")
        >>> dwa.update([1.0, 1.0]), dwa.update([0.5, 1.0])  # no history yet
        (array([1., 1.]), array([1., 1.]))
        >>> dwa.update([0.4, 1.0])  # r = (0.5, 1): 2 * softmax(r)
        array([0.75508134, 1.24491866])
        >>> per_epoch = DynamicWeightAverage(2, temperature=1.0, epoch_steps=2)
        >>> for losses in ([1.0, 1.0], [1.0, 1.0], [0.5, 1.0], [0.5, 1.0]):  # two epochs
        ...     w = per_epoch.update(losses)
        >>> per_epoch.periods, per_epoch.update([1.0, 1.0])  # epoch 3: r = (0.5, 1)
        (2, array([0.75508134, 1.24491866]))
    """

    hyperparameters = {
        "temperature": real(low=0.0, low_open=True),
        "per": choice("epoch", "step"),
        "epoch_steps": added(value(_check_epoch_steps), None),  # states saved before it: None
    }
    fields = {
        "_history": value(_check_history),
        "_loss_mean": array("K", ">= 0"),
        "_count": count(),
        "_period_weights": array("K", ">= 0"),
        "_periods": count(),
    }
    loss_domain = "> 0"
    why = "DWA takes ratios of consecutive average losses"

    def __init__(
        self,
        num_tasks: int,
        temperature: float = 2.0,
        per: str = "epoch",
        *,
        epoch_steps: int | None = None,
    ) -> None:
        super().__init__(num_tasks)
        self.temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        self.per = check_choice(per, "per", ("epoch", "step"))
        self.epoch_steps = _check_epoch_steps(epoch_steps, num_tasks, "epoch_steps")
        if self.per == "step" and self.epoch_steps is not None:
            raise ValueError(
                f"epoch_steps is for per='epoch' (got epoch_steps={epoch_steps!r} with "
                f"per='step', where every update is a period)"
            )
        self.reset()

    def _reset(self) -> None:
        K = self.num_tasks
        self._history: list[np.ndarray] = []  # the last two period averages, oldest first
        self._loss_mean = np.zeros(K)  # the open epoch's running mean (a sum could overflow)
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
            self._period_weights = period_weights(self._history, self.temperature)

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        w = self._period_weights.copy()
        if self.per == "step":
            self._close(losses)
            return w
        # The running mean of positive losses: no sum to overflow, each step's
        # difference is between two numbers of the same sign.
        self._count += 1
        self._loss_mean = self._loss_mean + (losses - self._loss_mean) / self._count
        if self._count == self.epoch_steps:
            self.end_epoch()
        elif self.epoch_steps is None and self._periods == 0 and self._count == UNCLOSED_WARNING:
            warnings.warn(
                f"DynamicWeightAverage (per='epoch') has had {UNCLOSED_WARNING} updates and no "
                "epoch has ended, so its weights are still all 1: they change only once two "
                "epochs have ended. Call end_epoch() at the end of each epoch "
                "(agg.method_state.end_epoch() through the torch Aggregator), or pass "
                "epoch_steps=len(train_loader) to end epochs by themselves, or per='step'",
                RuntimeWarning,
                stacklevel=4,
            )
        return w

    def end_epoch(self) -> bool:
        """Close the epoch: its average losses set the next epoch's weights.

        A no-op, returning False, when no :meth:`update` came since the last epoch
        ended (before the first step, a second call, an epoch already closed by
        ``epoch_steps``): such an epoch has no average. Returns True when an epoch
        was closed.

        Example:
            >>> from paretomtl.weighting import DynamicWeightAverage
            >>> dwa = DynamicWeightAverage(2)
            >>> dwa.end_epoch()  # nothing to close yet
            False
            >>> _ = dwa.update([1.0, 2.0])
            >>> dwa.end_epoch(), dwa.periods
            (True, 1)
        """
        if self.per != "epoch":
            raise ValueError(
                "end_epoch() is for per='epoch'; with per='step' every update is a period"
            )
        if self._count == 0:
            return False
        averages = self._loss_mean
        self._loss_mean = np.zeros(self.num_tasks)
        self._count = 0
        self._close(averages)
        return True

    def check_state(self, values: dict) -> None:
        history, periods = values["_history"], values["_periods"]
        if len(history) != min(periods, 2):
            raise ValueError(
                f"state['history'] holds {len(history)} period averages but state['periods'] "
                f"is {periods}: it must hold the last min(periods, 2) = {min(periods, 2)}"
            )
        pw = values["_period_weights"]
        expected = np.ones(pw.size)
        if len(history) == 2:
            expected = period_weights(history, values["temperature"])
        # Recomputed from the history; the tolerance allows exp() of another machine.
        if not np.allclose(pw, expected, rtol=1e-9, atol=1e-12):
            raise ValueError(
                f"state['period_weights'] {pw} do not match the history: K softmax(r / T) "
                f"of state['history'] is {expected} (all 1 before two periods)"
            )
        count, mean = values["_count"], values["_loss_mean"]
        steps = values["epoch_steps"]
        if steps is not None and values["per"] == "step":
            raise ValueError(f"state['hyperparameters']['epoch_steps'] is {steps} with per='step'")
        if values["per"] == "step" and count != 0:
            raise ValueError(f"state['count'] must be 0 with per='step'; got {count}")
        if steps is not None and count >= steps:
            raise ValueError(
                f"state['count'] is {count}, but an epoch ends after "
                f"state['hyperparameters']['epoch_steps'] = {steps} updates"
            )
        if count == 0 and (mean != 0).any():
            raise ValueError(f"state['loss_mean'] must be 0 when state['count'] is 0; got {mean}")
        if count > 0 and (mean <= 0).any():
            raise ValueError(
                f"state['loss_mean'] must be > 0 (a mean of positive losses) when "
                f"state['count'] is {count}; got {mean}"
            )
        w = values["_weights"]
        if w is None and periods + count > 0:
            raise ValueError(
                "state['weights'] is None but the state has seen updates (state['periods'] "
                f"{periods}, state['count'] {count})"
            )
        if w is not None and not np.isclose(w.sum(), w.size, rtol=1e-9, atol=0.0):
            raise ValueError(f"state['weights'] must sum to K = {w.size}; got {w}")
