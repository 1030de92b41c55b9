"""Conflict statistics over time: moving averages of the pairwise gradient cosines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paretomtl._checks import check_gram_size, check_num_tasks, check_real
from paretomtl.solvers._input import lost_error, prepare_scaled
from paretomtl.state import Stateful, array, count, real

# Relative rounding in v_hat - m_hat^2 below which the spread is taken as 0.
_VAR_ROUNDING = 64 * np.finfo(np.float64).eps


def bias_correction(beta: float, step: int) -> float:
    """Adam's bias correction :math:`1 - \\beta^t`, accurate also when beta^t is near 1.

    Computed as ``-expm1(t * log1p(beta - 1))`` (``beta - 1`` is exact), which keeps
    full relative precision where ``1 - beta**t`` would cancel (beta = 0.999, small t).
    It is 1 for beta = 0 and t >= 1.
    """
    if beta == 0.0:
        return 1.0
    return float(-np.expm1(step * np.log1p(beta - 1.0)))


def cosines(G: np.ndarray) -> np.ndarray:
    """Pairwise cosines ``G_ij / (||g_i|| ||g_j||)`` of a Gram matrix, clipped to [-1, 1].

    A zero gradient has cosine 0 with every gradient, itself included; every other
    diagonal entry is exactly 1.
    """
    norms = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    denom = np.outer(norms, norms)
    nonzero = denom > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        C = np.where(nonzero, G / np.where(nonzero, denom, 1.0), 0.0)
    C = np.clip(C, -1.0, 1.0)
    np.fill_diagonal(C, (norms > 0).astype(np.float64))
    return C


@dataclass(frozen=True, eq=False)
class ConflictStats:
    r"""Pairwise conflict statistics after one :meth:`ConflictTracker.update`.

    Every array is K x K, symmetric, a copy (changing it changes no state).

    Attributes:
        cosine: this step's cosines :math:`c_{ij}` (0 where a gradient is zero).
        mean_cosine: :math:`\hat m_{ij}`, bias-corrected EMA of the cosine (beta1).
        mean_square_cosine: :math:`\hat v_{ij}`, bias-corrected EMA of :math:`c_{ij}^2`
            (beta2).
        conflict_frequency: :math:`\hat f_{ij}`, bias-corrected EMA of
            :math:`[c_{ij} < 0]` (beta1): the recent fraction of steps in conflict.
        cosine_std: :math:`\sqrt{\max(\hat v_{ij} - \hat m_{ij}^2, 0)}`.
        step: t, the number of updates so far (1 after the first).
    """

    cosine: np.ndarray
    mean_cosine: np.ndarray
    mean_square_cosine: np.ndarray
    conflict_frequency: np.ndarray
    cosine_std: np.ndarray
    step: int


class ConflictTracker(Stateful):
    r"""First and second moments of the pairwise gradient cosines over training.

    At step t, with :math:`c_{ij}(t) = \langle g_i, g_j\rangle / (\|g_i\| \|g_j\|)`
    (read off the Gram matrix) and :math:`m, v, f` starting at 0:

    .. math::

        m_{ij} &\leftarrow \beta_1 m_{ij} + (1 - \beta_1)\, c_{ij}, &
        \hat m_{ij} &= m_{ij} / (1 - \beta_1^t),

        v_{ij} &\leftarrow \beta_2 v_{ij} + (1 - \beta_2)\, c_{ij}^2, &
        \hat v_{ij} &= v_{ij} / (1 - \beta_2^t),

        f_{ij} &\leftarrow \beta_1 f_{ij} + (1 - \beta_1)\, [c_{ij} < 0], &
        \hat f_{ij} &= f_{ij} / (1 - \beta_1^t),

    and :math:`s_{ij} = \sqrt{\max(\hat v_{ij} - \hat m_{ij}^2, 0)}` (a difference
    within rounding of 0, :math:`64\,\epsilon\,\hat v_{ij}`, counts as 0, so that a
    constant cosine has spread exactly 0). The division by :math:`1 - \beta^t` is
    Adam's bias correction (Kingma & Ba, "Adam: A Method for Stochastic
    Optimization", ICLR 2015): it undoes the pull towards the zero start,
    so that a constant cosine c gives :math:`\hat m = c` from the first step on, and
    :math:`\hat m` is an average of the cosines seen, weighted
    :math:`\propto \beta_1^{t-s}`. With ``beta = 0`` a moment is this step's value.

    The two moments have different memories (about :math:`1 / (1 - \beta)` steps:
    10 and 1000 by default, as in Adam), so :math:`s_{ij}` is the spread of the long
    window's cosines around the recent mean; pass ``beta2=beta1`` for the ordinary
    standard deviation of one window (then :math:`\hat v \ge \hat m^2`).

    A zero gradient has cosine 0 with every task (so it counts as no conflict); the
    diagonal holds 1 for each non-zero gradient. GradVac (Wang et al., ICLR 2021)
    keeps a moving average of cosines of this kind as its targets; here they are
    diagnostics, and :class:`~paretomtl.solvers.momentum_pcgrad.MomentumPCGrad`
    acts on them.

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        beta1: decay of the first moment and of the conflict frequency, in [0, 1).
        beta2: decay of the second moment, in [0, 1).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import ConflictTracker
        >>> tracker = ConflictTracker(2)
        >>> stats = tracker.update(np.array([[1.0, 0.0], [-1.0, 1.0]]))  # cos -0.7071
        >>> stats.mean_cosine[0, 1].round(4), stats.conflict_frequency[0, 1]
        (np.float64(-0.7071), np.float64(1.0))
        >>> stats = tracker.update(np.array([[1.0, 0.0], [1.0, 1.0]]))  # cos +0.7071
        >>> stats.mean_cosine[0, 1].round(4), stats.conflict_frequency[0, 1].round(4)
        (np.float64(0.0372), np.float64(0.4737))
    """

    hyperparameters = {
        "beta1": real(low=0.0, high=1.0, high_open=True),
        "beta2": real(low=0.0, high=1.0, high_open=True),
    }
    fields = {  # EMAs of cosines, their squares and 0/1 indicators
        "_first_moment": array("KxK", low=-1.0, high=1.0),
        "_second_moment": array("KxK", ">= 0", high=1.0),
        "_conflict_moment": array("KxK", ">= 0", high=1.0),
        "_step": count(),
    }

    def __init__(self, num_tasks: int, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.beta1 = check_real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = check_real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.reset()

    def reset(self) -> None:
        """Forget the history: moments back to 0, step to 0."""
        K = self.num_tasks
        self._first_moment = np.zeros((K, K))
        self._second_moment = np.zeros((K, K))
        self._conflict_moment = np.zeros((K, K))
        self._step = 0

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        # An EMA of t values within [lowest, 1] from a zero start lies within
        # [lowest, 1] * (1 - beta^t), to rounding (which the EMA damps: eps / (1 - beta)).
        t = values["_step"]
        for key, beta, lowest in (
            ("first_moment", values["beta1"], -1.0),
            ("second_moment", values["beta2"], 0.0),
            ("conflict_moment", values["beta1"], 0.0),
        ):
            moment = values["_" + key]
            reach = bias_correction(beta, t) if t > 0 else 0.0
            slack = 16 * np.finfo(np.float64).eps / (1.0 - beta) if t > 0 else 0.0
            out = (moment > reach + slack) | (moment < lowest * reach - slack)
            if out.any():
                raise ValueError(
                    f"state[{key!r}] has entries that {t} updates cannot reach (they lie "
                    f"within [{lowest * reach:g}, {reach:g}] for state['step'] = {t} and "
                    f"beta {beta:g}): {moment[out][:3]}"
                )

    def update(self, grads: object = None, *, gram: object = None) -> ConflictStats:
        """Add one step's gradients (K x M) or Gram matrix (K x K); return the statistics."""
        p = prepare_scaled(grads, gram)  # cosines need the Gram at any scale
        if p.lost:
            raise lost_error(p.lost, "ConflictTracker")
        check_gram_size(p.gram, self.num_tasks, "ConflictTracker")
        return self.update_gram(p.gram)

    __call__ = update

    def update_gram(self, G: np.ndarray) -> ConflictStats:
        """The update on an already validated float64 Gram matrix of the right size."""
        C = cosines(G)
        b1, b2 = self.beta1, self.beta2
        self._first_moment = b1 * self._first_moment + (1.0 - b1) * C
        self._second_moment = b2 * self._second_moment + (1.0 - b2) * (C * C)
        self._conflict_moment = b1 * self._conflict_moment + (1.0 - b1) * (C < 0.0)
        self._step += 1
        return self._stats(C)

    def _stats(self, C: np.ndarray) -> ConflictStats:
        t = self._step
        c1 = bias_correction(self.beta1, t)
        c2 = bias_correction(self.beta2, t)
        m_hat = self._first_moment / c1
        v_hat = self._second_moment / c2
        var = v_hat - m_hat * m_hat
        # A constant cosine leaves only rounding in var: count that as exactly 0.
        var[var <= _VAR_ROUNDING * v_hat] = 0.0
        return ConflictStats(
            cosine=C.copy(),
            mean_cosine=m_hat,
            mean_square_cosine=v_hat,
            conflict_frequency=self._conflict_moment / c1,
            cosine_std=np.sqrt(var),
            step=t,
        )
