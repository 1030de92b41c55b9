"""GradNorm: loss weights that equalise the tasks' gradient norms at a shared layer."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector, check_choice, check_num_tasks, check_real
from paretomtl.state import added, array, choice, count, real
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._optim import ADAM_MOMENT_BOUNDS, check_moments, descent_step
from paretomtl.weighting._registry import register

_TINY = float(np.finfo(np.float64).tiny)
# Gradient norms above this are scaled (by a power of two, exactly) before w * n, which
# could otherwise overflow; weights summing beyond [1 / _LARGE, _LARGE] are scaled by
# their max before K / sum, which could overflow too.
_LARGE = 2.0**500


def training_rates(losses: np.ndarray, initial_losses: np.ndarray) -> np.ndarray:
    r""":math:`r_i = \tilde L_i / \mathrm{mean}_j \tilde L_j`, :math:`\tilde L = L / L(0)`.

    The plain formula where every ratio is a normal float64 number, else the same in
    log space (ratios beyond float64's range, losses 1e-320 against 1e308).
    """
    with np.errstate(over="ignore", divide="ignore"):
        ratio = losses / initial_losses
        mean = ratio.mean()
    if np.isfinite(mean) and ratio.min() >= _TINY:
        return ratio / mean
    log_ratio = np.log(losses) - np.log(initial_losses)
    e = np.exp(log_ratio - log_ratio.max())
    return e / e.mean()


def _renormalised(w: np.ndarray) -> np.ndarray:
    """``w`` (> 0) scaled to sum to K (divided by its max first if the sum is extreme)."""
    with np.errstate(over="ignore"):
        total = w.sum()
    if not 1.0 / _LARGE < total < _LARGE:
        w = w / w.max()
        total = w.sum()
    return w * (w.size / total)


@register(
    "gradnorm",
    kind="gradient-norm",
    paper=(
        "Chen, Badrinarayanan, Lee & Rabinovich, GradNorm: Gradient Normalization for "
        "Adaptive Loss Balancing in Deep Multitask Networks, ICML 2018"
    ),
    summary="learn loss weights so that weighted gradient norms follow relative training rates",
)
class GradNorm(LossWeighting):
    r"""GradNorm's loss weights, updated from losses and gradient norms alone.

    At step t the model minimises :math:`\sum_i w_i(t) L_i(t)`. With
    :math:`n_i = \|\nabla_W L_i\|` the norm of the *unweighted* task gradient at the
    chosen shared layer W, GradNorm (Chen et al., ICML 2018) sets

    .. math::

        G_i = w_i n_i,\quad \bar G = \tfrac1K \textstyle\sum_j G_j,\quad
        \tilde L_i = L_i / L_i(0),

        r_i = \tilde L_i / \big(\tfrac1K\textstyle\sum_j \tilde L_j\big),

        L_{grad} = \textstyle\sum_i \big| G_i - \bar G\, r_i^{\alpha} \big|,

    treats the targets :math:`\bar G r_i^\alpha` as constants, and takes an
    optimiser step on the weights with the gradient

    .. math::

        \partial L_{grad} / \partial w_i
        = \operatorname{sign}(w_i n_i - \bar G r_i^\alpha)\, n_i,

    then floors the weights at ``min_weight`` (they must stay positive) and
    renormalises them to sum to K. Nothing here needs a framework: the adapters
    compute :math:`n_i` and call :meth:`update`.

    Extreme inputs: any positive float64 losses and finite norms give finite weights.
    The training rates are computed in log space when the ratios
    :math:`L_i / L_i(0)` leave float64's range, the norms are scaled by a power of
    two (exactly, only the signs matter) when :math:`w_i n_i` could overflow, and
    :math:`\bar G r_i^\alpha` takes its limit when :math:`r_i^\alpha` overflows.
    Weights whose sum before renormalising is beyond 1e150 or below 1e-150 are first
    divided by their largest (a weight far below the others may then round to 0, and
    floors below 1e-308 are subnormal numbers); an update that itself overflows
    float64 (``lr`` times a huge norm with SGD, or a huge ``lr``) raises a ValueError
    naming ``lr`` and changes nothing.

    Two ways to step it: :meth:`update` returns the weights w(t+1) for the next
    step (the paper's order); calling the object, ``gradnorm(losses, grad_norms)``,
    returns the weights w(t) to apply at this step and then advances to w(t+1),
    which is how every loss weighting is called (the torch adapter does this).

    The optimiser: ``"sgd"`` is :math:`w_i \leftarrow w_i - \eta\,\partial_i`;
    ``"adam"`` (default) is Adam (Kingma & Ba 2015; beta = (0.9, 0.999), eps =
    1e-8, bias-corrected), whose steps are about ``lr`` whatever the scale of the
    gradient norms (Adam's gradient is clipped to :math:`\pm 2^{500}`, about 3e150,
    before it enters the moments, whose squares would overflow; by that invariance
    the clip matters only when norms beyond it meet much smaller ones in the
    moments' memory). With SGD a step is proportional to :math:`n_i`, so tasks whose
    gradients are 100x larger jump to the floor and back: scale ``lr`` to your norms.
    The paper trains w with the network's optimiser; Adam is the common choice.

    :meth:`average_weights` returns the time average of the weights applied so far,
    which the paper proposes as fixed weights for a fresh run (a grid search in one
    run); :meth:`reset_average` starts its window anew, e.g. after a warm-up.

    Defaults: ``alpha = 1.5`` (the paper's common choice for real tasks; its
    synthetic example uses 0.12), ``lr = 0.025``. The first call records
    :math:`L_i(0)` unless ``initial_losses`` is given.

    Args:
        num_tasks: K >= 1.
        alpha: asymmetry, >= 0 (0 pulls all gradient norms to their mean).
        lr: step size of the weight update, > 0.
        optimizer: ``"adam"`` or ``"sgd"``.
        initial_losses: optional :math:`L_i(0)`; otherwise the first losses seen.
        min_weight: positive floor applied before renormalising.

    Example:
        >>> from paretomtl.weighting import GradNorm
        >>> gn = GradNorm(2, alpha=1.0, lr=0.1, optimizer="sgd")
        >>> gn.update(losses=[1.0, 1.0], grad_norms=[1.0, 3.0])
        array([1.22222222, 0.77777778])
    """

    inputs = ("losses", "grad_norms")
    loss_domain = "> 0"
    hyperparameters = {
        "alpha": real(low=0.0),
        "lr": real(low=0.0, low_open=True),
        "optimizer": choice("adam", "sgd"),
        "min_weight": real(low=0.0, high=1.0, low_open=True, high_open=True),
        "_given_initial_losses": array("K", "> 0", optional=True),
    }
    fields = {
        "_weights": array("K", ">= 0"),
        "_initial_losses": array("K", "> 0", optional=True),
        "_step": count(),
        "_adam_m": array("K", low=-ADAM_MOMENT_BOUNDS[0], high=ADAM_MOMENT_BOUNDS[0]),
        "_adam_v": array("K", ">= 0", high=ADAM_MOMENT_BOUNDS[1]),
        # The time average's window (states saved before it existed start a new one).
        "_weights_sum": added(array("K", ">= 0", optional=True), None),
        "_averaged_steps": added(count(), 0),
    }

    def __init__(
        self,
        num_tasks: int,
        alpha: float = 1.5,
        lr: float = 0.025,
        *,
        optimizer: str = "adam",
        initial_losses: object = None,
        min_weight: float = 1e-6,
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.alpha = check_real(alpha, "alpha", low=0.0)
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.min_weight = check_real(
            min_weight, "min_weight", low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.optimizer = check_choice(optimizer, "optimizer", ("adam", "sgd"))
        self._given_initial_losses = (
            None
            if initial_losses is None
            else as_real_task_vector(initial_losses, "initial_losses", self.num_tasks, need="> 0")
        )
        self.reset()

    def reset(self) -> None:
        """Back to the start: weights all 1, L(0) forgotten (unless it was given)."""
        given = self._given_initial_losses
        self._weights = np.ones(self.num_tasks)
        self._initial_losses = None if given is None else given.copy()
        self._step = 0
        self._adam_m = np.zeros(self.num_tasks)  # Adam's first and second moments
        self._adam_v = np.zeros(self.num_tasks)
        self.reset_average()

    def reset_average(self) -> None:
        """Start a new window for :meth:`average_weights` (e.g. after a warm-up);
        the weights themselves are unchanged."""
        self._weights_sum = np.zeros(self.num_tasks)
        self._averaged_steps = 0

    def average_weights(self) -> np.ndarray:
        r"""The time average of the weights applied since the start (or the last
        :meth:`reset_average`): :math:`\bar w = \frac1T \sum_{t} w(t)` over the T
        updates in the window, where w(t) is the weight vector in force when update t
        was made (the one ``gradnorm(losses, grad_norms)`` returns). It sums to K.

        The GradNorm paper (Chen et al. 2018, section 5.3) reports that these
        time-averaged weights, used as fixed loss weights in a fresh run, come close to
        the best fixed weights a grid search finds: a grid search in one run.

        Raises:
            ValueError: no update has been made in the window yet.

        Example:
            >>> from paretomtl.weighting import GradNorm
            >>> gn = GradNorm(2, alpha=1.0, lr=0.1, optimizer="sgd")
            >>> gn([1.0, 1.0], [1.0, 3.0])  # applies w(0), moves to w(1)
            array([1., 1.])
            >>> gn([1.0, 1.0], [1.0, 3.0])  # applies w(1)
            array([1.22222222, 0.77777778])
            >>> gn.average_weights()  # (w(0) + w(1)) / 2
            array([1.11111111, 0.88888889])
        """
        if self._averaged_steps == 0:
            since = "since reset_average()" if self._step else "yet"
            raise ValueError(
                f"average_weights(): no GradNorm update {since}; call it after at least "
                "one update (gradnorm(losses, grad_norms) or update())"
            )
        return self._weights_sum / self._averaged_steps

    @property
    def weights(self) -> np.ndarray:
        """The current loss weights w(t) (a copy), summing to K."""
        return self._weights.copy()

    @property
    def initial_losses(self) -> np.ndarray | None:
        """:math:`L_i(0)`, once known."""
        return None if self._initial_losses is None else self._initial_losses.copy()

    def update(self, losses: object, grad_norms: object) -> np.ndarray:
        """One GradNorm step; returns the weights w(t+1) for the next step.

        Args:
            losses: the K task losses :math:`L_i(t)` (unweighted, > 0).
            grad_norms: :math:`n_i = \\|\\nabla_W L_i(t)\\|`, norms of the unweighted
                task gradients at the shared layer W (>= 0).
        """
        K = self.num_tasks
        L = self._check_losses(losses)
        n = as_real_task_vector(grad_norms, "grad_norms", K, need=">= 0")
        L0 = L.copy() if self._initial_losses is None else self._initial_losses
        r = training_rates(L, L0)
        w = self._weights
        # Only the signs of G_i - target_i are used: a common power-of-two scale of the
        # norms changes no bit of them, and keeps w * n finite.
        scaled = np.ldexp(n, -int(np.frexp(n.max())[1])) if n.max() > _LARGE else n
        Gw = w * scaled
        with np.errstate(over="ignore", invalid="ignore"):
            target = Gw.mean() * r**self.alpha
        target[np.isnan(target)] = 0.0  # 0 * inf: a zero mean of G has target 0
        grad = np.sign(Gw - target) * n
        step = self._step + 1
        delta, m, v = descent_step(self.optimizer, grad, self.lr, self._adam_m, self._adam_v, step)
        if not np.isfinite(delta).all():
            i = int(np.flatnonzero(~np.isfinite(delta))[0])
            raise ValueError(
                f"lr = {self.lr!r} is too large here: the {self.optimizer} step on the weight "
                f"of task {i} (grad_norms[{i}] = {float(n[i])!r}) overflows float64; "
                "use a smaller lr"
            )
        total = self._weights_sum
        if total is None:  # a state saved before the time average existed: a new window
            total, self._averaged_steps = np.zeros(K), 0
        self._weights_sum = np.add(total, w)
        self._averaged_steps += 1
        self._weights = _renormalised(np.maximum(w - delta, self.min_weight))
        self._initial_losses, self._adam_m, self._adam_v, self._step = L0, m, v, step
        return self.weights

    def __call__(self, losses: object, grad_norms: object) -> np.ndarray:
        """The weights w(t) to apply at this step; then one update to w(t+1)."""
        weights = self.weights
        self.update(losses, grad_norms)
        return weights

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        K, step, w = self.num_tasks, values["_step"], values["_weights"]
        given, initial = values["_given_initial_losses"], values["_initial_losses"]
        if not np.isclose(w.sum(), K, rtol=1e-9, atol=0.0):
            raise ValueError(f"state['weights'] must sum to K = {K}; got {w} (sum {w.sum()!r})")
        if given is not None and (initial is None or initial.tobytes() != given.tobytes()):
            raise ValueError(
                "state['initial_losses'] must equal the given initial losses "
                f"(state['hyperparameters']['given_initial_losses'] = {given}); got {initial}"
            )
        if step > 0 and initial is None:
            raise ValueError(
                f"state['initial_losses'] is None after state['step'] = {step} updates "
                "(the first update records them)"
            )
        # Weights or initial losses set at step 0 are a warm start, allowed; moments at
        # step 0 would be amplified by the bias correction, 1 / (1 - beta^t).
        check_moments(values)
        averaged, total = values["_averaged_steps"], values["_weights_sum"]
        if averaged > step:
            raise ValueError(
                f"state['averaged_steps'] = {averaged} exceeds state['step'] = {step}: "
                "the time average cannot span more updates than were made"
            )
        if total is None and averaged > 0:
            raise ValueError(
                f"state['weights_sum'] is None with state['averaged_steps'] = {averaged}: "
                "the time average needs the sum of the weights it averages"
            )
        if total is not None and not np.isclose(total.sum(), K * averaged, rtol=1e-6, atol=0.0):
            raise ValueError(
                f"state['weights_sum'] must sum to K * state['averaged_steps'] = "
                f"{K * averaged}; got {total} (sum {total.sum()!r})"
            )
