"""Smooth Tchebycheff scalarisation (STCH) of the log losses, as a training weighting."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice, check_count, check_real
from paretomtl.state import array, choice, count, real
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register

# LibMTL's offset inside the logarithms: log(L + 1e-20) while warming up, then
# log(L / nadir + 1e-20); it keeps a loss of exactly 0 finite.
LOG_OFFSET = 1e-20
_TINY = float(np.finfo(np.float64).tiny)


def log_ratios(losses: np.ndarray, nadir: np.ndarray) -> np.ndarray:
    r""":math:`\log(L_i / n_i + 10^{-20})`, also where :math:`L_i / n_i` overflows."""
    with np.errstate(over="ignore"):
        ratio = losses / nadir
    finite = np.isfinite(ratio)
    if finite.all():
        return np.log(ratio + LOG_OFFSET)
    # Beyond 1.8e308 the offset is far below the last bit: log L - log n exactly.
    L, n = np.where(finite, 1.0, losses), np.where(finite, 1.0, nadir)  # only those
    return np.where(
        finite, np.log(np.where(finite, ratio, 1.0) + LOG_OFFSET), np.log(L) - np.log(n)
    )


def log_softmax_scaled(values: np.ndarray, preference: np.ndarray, mu: float) -> np.ndarray:
    r""":math:`\log\operatorname{softmax}(p \odot f / \mu)`, whose exponential is the
    gradient of :math:`\mu \log\sum_j \exp(p_j f_j / \mu)` in :math:`p \odot f`,
    without overflow for any finite f and any :math:`p, \mu > 0`: with
    :math:`q = p / \max p` and :math:`\nu = \mu / \max p` it is
    :math:`(q f - \max q f) / \nu - \log\sum\exp(\cdot)`; where :math:`\nu`
    underflows to 0, its limit (the largest :math:`q_i f_i` shares all the mass with
    its ties; the others get :math:`-\infty`), and where it overflows, the uniform
    :math:`-\log K`."""
    top = preference.max()
    y = (preference / top) * values
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        nu = mu / top
        gap = y - y.max()
        z = np.where(gap == 0.0, 0.0, -np.inf) if nu == 0.0 else gap / nu
        return z - np.log(np.exp(z).sum())


def _check_preference(x: object, K: int, where: str) -> np.ndarray:
    return as_real_task_vector(x, where, K, need="> 0", broadcast=True)


@register(
    "stch",
    kind="loss",
    paper=(
        "Lin, Zhang, Yang, Liu, Wang & Zhang, Smooth Tchebycheff Scalarization for "
        "Multi-Objective Optimization, ICML 2024"
    ),
    summary="K mu log sum_i exp(p_i log(L_i / nadir_i) / mu) after a log-loss warm-up",
)
class SmoothTchebycheff(LossWeighting):
    r"""Smooth Tchebycheff scalarisation (STCH) as LibMTL trains it.

    Paper: Xi Lin, Xiaoyuan Zhang, Zhiyuan Yang, Fei Liu, Zhenkun Wang & Qingfu Zhang,
    "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML 2024.

    The paper's smooth Tchebycheff scalarisation of objectives :math:`f_i` with a
    preference :math:`p` and an ideal point :math:`z` is

    .. math::

        g_\mu(f) = \mu \log \textstyle\sum_i \exp\big(p_i (f_i - z_i) / \mu\big),

    a smooth upper bound of :math:`\max_i p_i (f_i - z_i)` within
    :math:`\mu \log K` of it. For multi-task training the authors' code (and
    LibMTL's ``STCH``, the same code) applies it to the *log* losses normalised by a
    nadir point :math:`n` estimated during a warm-up, and scales it by K:

    .. math::

        F(L) = K \mu \log \textstyle\sum_i \exp\big(p_i \ell_i / \mu\big),\qquad
        \ell_i = \log\big(L_i / n_i + 10^{-20}\big),

    so that :math:`f_i - z_i = \log L_i - \log n_i` up to the offset. The loss
    weights are its gradient,

    .. math::

        w_i = \frac{\partial F}{\partial L_i}
            = K\, p_i\, \operatorname{softmax}(p \odot \ell / \mu)_i \,
              \frac{1}{L_i + 10^{-20} n_i} .

    At :math:`\mu \to 0` the softmax becomes the indicator of the largest
    :math:`p_i \ell_i` (ties share it): all the weight goes to the worst task
    relative to its nadir, as in Tchebycheff scalarisation; at large :math:`\mu` it
    is uniform and :math:`w_i = p_i / (L_i + 10^{-20} n_i)`, live-loss normalisation
    weighted by the preference. Both limits are reached exactly in float64 (the
    exponents are shifted by their largest before the division by :math:`\mu`).

    Warm-up (LibMTL's ``STCH_warmup_epoch``, default 4): during the first
    ``warmup_epochs`` periods the network minimises :math:`\sum_i \log(L_i +
    10^{-20})`, weights :math:`1 / (L_i + 10^{-20})`. The next period (index
    ``warmup_epochs``) is warmed up the same way and its losses are averaged: their
    mean is the nadir point :math:`n`, fixed from then on, and STCH starts with the
    period after it. So with the default the scalarisation starts at the sixth
    epoch, as in LibMTL. Given ``reference`` (:math:`n` chosen by the user), there is
    no averaging period: STCH starts right after the ``warmup_epochs`` periods.

    A period is an epoch (``per="epoch"``, LibMTL's: closed by :meth:`end_epoch`)
    or a single step (``per="step"``, every :meth:`update` closes one; the nadir is
    then one step's losses).

    Defaults: ``mu = 1.0`` (LibMTL's ``STCH_mu``; the paper studies
    :math:`\mu \in \{0.01, 0.1, 0.5, 1\}`), ``preference`` all 1 (LibMTL has none,
    i.e. all 1; torchjd's ``STCH`` scalariser defaults to :math:`1/K` each, and a
    preference :math:`c\,p` with :math:`c\,\mu` gives c times these weights),
    ``warmup_epochs = 4``, ``per = "epoch"``.

    Losses must be finite and >= 0 (they enter logarithms; LibMTL's offset keeps
    0 finite). A task whose average over the nadir period is 0 has no nadir: that
    :meth:`end_epoch` (or, per step, that :meth:`update`) raises a ValueError naming
    the task and changes nothing. A weight beyond float64's range (a loss of 0
    against a nadir below about 1e-288) raises a ValueError naming the task.

    Args:
        num_tasks: K >= 1.
        mu: the smoothing :math:`\mu > 0` (default 1.0).
        preference: :math:`p`, a scalar or K values > 0 (default 1).
        warmup_epochs: periods of log-loss warm-up before the nadir period, >= 0
            (default 4).
        per: ``"epoch"`` (default) or ``"step"``.
        reference: the nadir :math:`n` (K values > 0), or None (default) to average
            the losses of period ``warmup_epochs``.

    Example:
        >>> from paretomtl.weighting import SmoothTchebycheff
        >>> stch = SmoothTchebycheff(2, mu=1.0, warmup_epochs=0, reference=[1.0, 1.0])
        >>> stch.update([1.0, 3.0]).round(6)  # 2 softmax(log L)_i / L_i = 2 / 4 each
        array([0.5, 0.5])
        >>> SmoothTchebycheff(2, warmup_epochs=0, per="step").update([0.5, 2.0])  # warm-up
        array([2. , 0.5])
    """

    hyperparameters = {
        "mu": real(low=0.0, low_open=True),
        "preference": array("K", "> 0"),
        "warmup_epochs": count(),
        "per": choice("epoch", "step"),
        "reference": array("K", "> 0", optional=True),
    }
    fields = {
        "_periods": count(),
        "_count": count(),
        "_loss_mean": array("K", ">= 0"),
        "_nadir": array("K", "> 0", optional=True),
    }
    loss_domain = ">= 0"
    why = "STCH takes the logarithms of the losses"

    def __init__(
        self,
        num_tasks: int,
        mu: float = 1.0,
        preference: float | object = 1.0,
        warmup_epochs: int = 4,
        *,
        per: str = "epoch",
        reference: object = None,
    ) -> None:
        super().__init__(num_tasks)
        K = self.num_tasks
        self.mu = check_real(mu, "mu", low=0.0, low_open=True)
        self.preference = _check_preference(preference, K, "preference")
        self.warmup_epochs = check_count(warmup_epochs, "warmup_epochs")
        self.per = check_choice(per, "per", ("epoch", "step"))
        if reference is not None:
            reference = as_real_task_vector(reference, "reference", K, need="> 0")
        self.reference = reference
        self.reset()

    def _reset(self) -> None:
        self._periods = 0  # periods closed
        self._count = 0  # updates in the open epoch
        self._loss_mean = np.zeros(self.num_tasks)  # running mean over the nadir epoch
        self._nadir = None if self.reference is None else self.reference.copy()

    @property
    def periods(self) -> int:
        """How many periods (epochs or steps) have been closed."""
        return self._periods

    @property
    def nadir(self) -> np.ndarray | None:
        """The nadir point :math:`n` in use (a copy); None until it is known."""
        return None if self._nadir is None else self._nadir.copy()

    @property
    def phase(self) -> str:
        """``"warmup"``, ``"nadir"`` (warm-up while averaging the losses) or ``"stch"``."""
        W, e = self.warmup_epochs, self._periods
        if e < W:
            return "warmup"
        if self._nadir is None:
            return "nadir"
        return "stch"

    def _stch_weights(self, losses: np.ndarray, nadir: np.ndarray) -> np.ndarray:
        log_s = log_softmax_scaled(log_ratios(losses, nadir), self.preference, self.mu)
        p, K = self.preference, self.num_tasks
        with np.errstate(over="ignore", divide="ignore", under="ignore", invalid="ignore"):
            s = np.exp(log_s)
            gap = losses + LOG_OFFSET * nadir
            w = K * (p * s) / gap
            if (
                not np.isfinite(w).all()
                or gap.min() < _TINY
                or ((s == 0.0) & (log_s > -np.inf)).any()
            ):
                # p s overflowed, s underflowed, or the gap is subnormal or 0 (a loss of
                # 0 against a nadir below 1e-288): the same in logarithms, where
                # log(0 + 1e-20 n) = log(1e-20) + log(n) exactly.
                log_gap = np.where(losses > 0.0, np.log(gap), np.log(LOG_OFFSET) + np.log(nadir))
                w = np.exp(np.log(K * p) + log_s - log_gap)
        if not np.isfinite(w).all():
            i = int(np.flatnonzero(~np.isfinite(w))[0])
            raise ValueError(
                f"losses[{i}] (task {i}) is {float(losses[i])!r}; its STCH weight "
                f"K p softmax / (L + 1e-20 nadir) overflows float64 (nadir[{i}] = "
                f"{float(nadir[i])!r}, preference[{i}] = {float(p[i])!r})"
            )
        return w

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        phase = self.phase
        if phase == "stch":
            w = self._stch_weights(losses, self._nadir)
        else:
            w = 1.0 / (losses + LOG_OFFSET)  # the warm-up's sum of log losses: <= 1e20
            if phase == "nadir" and self.per == "step":
                self._set_nadir(losses, "losses")
        # Nothing below can fail.
        if self.per == "step":
            self._periods += 1
        else:
            self._count += 1
            if phase == "nadir":  # a running mean: no sum to overflow
                self._loss_mean = self._loss_mean + (losses - self._loss_mean) / self._count
        return w

    def _set_nadir(self, averages: np.ndarray, name: str) -> None:
        zero = averages <= 0.0
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise ValueError(
                f"{name}[{i}] (task {i}) is {float(averages[i])!r}; the nadir period's average "
                "loss must be > 0 (STCH divides the losses by it)"
            )
        self._nadir = averages.copy()

    def end_epoch(self) -> bool:
        """Close the epoch; closing the nadir epoch fixes the nadir point.

        A no-op, returning False, when no :meth:`update` came since the last epoch
        ended (before the first step, or a second call): an empty epoch has no average
        losses and does not count towards ``warmup_epochs``. Returns True when an epoch
        was closed, as ``DynamicWeightAverage.end_epoch()`` does.

        Example:
            >>> from paretomtl.weighting import SmoothTchebycheff
            >>> stch = SmoothTchebycheff(2, warmup_epochs=1)
            >>> stch.end_epoch()  # nothing to close yet
            False
            >>> _ = stch.update([1.0, 2.0])
            >>> stch.end_epoch(), stch.phase
            (True, 'nadir')
        """
        if self.per != "epoch":
            raise ValueError(
                "end_epoch() is for per='epoch'; with per='step' every update is a period"
            )
        if self._count == 0:
            return False
        if self.phase == "nadir":
            self._set_nadir(self._loss_mean, "average losses")
        self._loss_mean = np.zeros(self.num_tasks)
        self._count = 0
        self._periods += 1
        return True

    def check_state(self, values: dict) -> None:
        W, e, n = values["warmup_epochs"], values["_periods"], values["_count"]
        reference, nadir, mean = values["reference"], values["_nadir"], values["_loss_mean"]
        if reference is not None:
            if nadir is None or nadir.tobytes() != reference.tobytes():
                raise ValueError(
                    f"state['nadir'] must equal the given reference {reference}; got {nadir}"
                )
        elif (nadir is not None) != (e > W):
            raise ValueError(
                f"state['nadir'] is {nadir} after state['periods'] = {e} periods; it is set "
                f"when period {W} (warmup_epochs) closes, and only then"
            )
        if values["per"] == "step" and n != 0:
            raise ValueError(f"state['count'] must be 0 with per='step'; got {n}")
        nadir_period = reference is None and e == W
        if (not nadir_period or n == 0) and (mean != 0).any():
            raise ValueError(
                "state['loss_mean'] must be 0 outside the nadir epoch and before its first "
                f"update; got {mean}"
            )
        w = values["_weights"]
        if w is None and e + n > 0:
            raise ValueError(
                f"state['weights'] is None but the state has seen updates (state['periods'] "
                f"{e}, state['count'] {n})"
            )
