"""Momentum PCGrad (experimental): PCGrad acting on the tracked, not the current, conflicts."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_generator,
    check_choice,
    check_gram_size,
    check_num_tasks,
    check_real,
)
from paretomtl._kernels.pcgrad import pcgrad_coefficients
from paretomtl.solvers._input import lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.conflict import ConflictTracker
from paretomtl.solvers.pcgrad import coefficient_result, task_orders
from paretomtl.state import Stateful, choice, generator, nested, value

_REDUCTIONS = ("sum", "mean")


def expected_gram(G: np.ndarray, mean_cosine: np.ndarray) -> np.ndarray:
    r"""The expected Gram matrix: :math:`\hat G_{ij} = \|g_i\|\,\|g_j\|\,\hat m_{ij}` off
    the diagonal, :math:`G_{ii}` on it."""
    norms = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    G_hat = np.outer(norms, norms) * mean_cosine
    np.fill_diagonal(G_hat, np.diagonal(G))
    return G_hat


def signal_to_noise(mean: np.ndarray, mean_square: np.ndarray) -> np.ndarray:
    r""":math:`|\hat m| / \sqrt{\hat v}` elementwise; 0 where :math:`\hat m = 0`, inf where
    only :math:`\hat v` is 0."""
    num = np.abs(mean)
    den = np.sqrt(np.clip(mean_square, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
    out[num == 0] = 0.0
    return out


@register(
    "momentum-pcgrad",
    kind="stateful-gradient",
    paper=(
        "experimental, no paper: PCGrad (Yu et al., NeurIPS 2020) driven by Adam-style "
        "bias-corrected moments (Kingma & Ba, ICLR 2015) of the pairwise cosines"
    ),
    summary=(
        "experimental: PCGrad that projects off the expected conflict, from moving "
        "averages of the pairwise cosines, instead of this step's"
    ),
)
class MomentumPCGrad(Stateful):
    r"""Momentum PCGrad (experimental): project off the conflicts the history expects.

    **Experimental**: defined and tested here, not taken from a paper; its merit over
    PCGrad is an open question. In ``examples/momentum_pcgrad.py`` (noisy quadratics,
    GradNorm's synthetic regression, MultiDigits; 5 seeds) it is never better than
    PCGrad by more than PCGrad's seed-to-seed spread: about 1 % better on the noisiest
    quadratics, within the noise on the trained networks.

    PCGrad (Yu et al., NeurIPS 2020) projects :math:`g_i` off :math:`g_j` whenever this
    step's :math:`\langle g_i', g_j\rangle < 0`. With minibatch gradients that cosine
    is noisy: true conflicts are missed on the steps where the noise hides them, and
    noise alone triggers projections between tasks that do not conflict. This method
    acts on the pair's history instead. A
    :class:`~paretomtl.solvers.conflict.ConflictTracker` follows the cosines
    :math:`c_{ij}` of the original gradients, giving the bias-corrected moments
    :math:`\hat m_{ij}` (rate ``beta1``) and :math:`\hat v_{ij}` (of
    :math:`c_{ij}^2`, rate ``beta2``). At each step, with this step's norms:

    .. math::

        \hat G_{ij} = \|g_i\|\,\|g_j\|\,\hat m_{ij}\ (i \ne j),\qquad
        \hat G_{ii} = \|g_i\|^2,\qquad
        \rho_{ij} = |\hat m_{ij}| / \sqrt{\hat v_{ij}},

    the *expected* Gram matrix (this step's lengths, the tracked directions) and each
    pair's signal-to-noise ratio. Then PCGrad's loop runs on :math:`\hat G`: for each
    task i, from :math:`g_i' = g_i = \sum_q A_{iq} g_q` with :math:`A = I`, over
    :math:`j` in PCGrad's random order (a permutation of all tasks, i included, drawn
    anew for every i, as :func:`~paretomtl.solvers.pcgrad.pcgrad`), with the expected
    inner product :math:`\hat e_{ij} = \sum_q A_{iq} \hat G_{qj} = (A\hat G)_{ij}`:

    .. math::

        \text{if } \hat e_{ij} < 0 \text{ and } \rho_{ij} \ge \tau:\quad
        g_i' \leftarrow g_i' - \frac{\hat e_{ij}}{\|g_j\|^2}\, g_j
        \quad (A_{ij} \mathrel{-}= \hat e_{ij} / \hat G_{jj}),

    and the update is :math:`\sum_i g_i'` (``reduction="sum"``) or the mean. The
    threshold :math:`\tau` is ``threshold`` (0: the sign alone decides); the gate is
    the pair's :math:`\rho_{ij}` also for later projections of an already projected
    :math:`g_i'` (a heuristic: noisy pairs are left alone).

    For the first projection of :math:`g_i` (and for K = 2, the whole method), the
    test is :math:`\hat m_{ij} < 0` and the step is

    .. math::

        g_i' = g_i - \hat m_{ij}\, \frac{\|g_i\|}{\|g_j\|}\, g_j :

    it removes the conflict the history expects, :math:`\hat m_{ij}\|g_i\|\|g_j\|`,
    not this step's :math:`\langle g_i, g_j\rangle`; this step's deviation from the
    expected cosine stays in :math:`g_i'`. Later projections of the same
    :math:`g_i'` use :math:`\hat e_{ij}`, the expected inner product of the already
    projected :math:`g_i'`, as PCGrad uses the current one: projecting off
    :math:`g_k` may already have removed (or created) the conflict with :math:`g_j`,
    and sizing by :math:`\hat m_{ij}` alone would then over- (or under-) project.

    Why this sizing:

    - (a) It reduces to PCGrad when the history is one step: at the first update,
      or at every update with ``beta1 = 0`` and ``threshold = 0``,
      :math:`\hat m = c`, so :math:`\hat G = G` and the loop is PCGrad's, for any K
      and the same orders (at the first update :math:`\rho_{ij} = 1`, so any
      threshold below 1 gives PCGrad). Tested.
    - (b) It is scale invariant: cosines, hence :math:`\hat m, \hat v, \rho`, do not
      depend on the gradients' lengths, and :math:`\hat G` scales like G
      (:math:`\hat G \to S\hat G S` for per-task scales :math:`S`), so the
      coefficients transform as PCGrad's, :math:`A \to S A S^{-1}` (each
      :math:`g_i'` scales with :math:`g_i`), and a common scale leaves the weights
      unchanged. Tested.
    - :math:`\hat m` is a convex combination of cosine matrices, so :math:`\hat G` is
      positive semi-definite: the Gram matrix of some vectors, in whose geometry every
      step is a true projection (afterwards :math:`\hat e_{ij} = 0`).

    Zero gradients have cosine 0 (never a conflict) and are never projected on.
    The moments describe the original gradients' cosines, whatever was projected.

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        beta1: decay of the tracked mean cosine, in [0, 1).
        beta2: decay of the tracked mean square cosine, in [0, 1).
        threshold: :math:`\tau \ge 0`, the smallest :math:`\rho_{ij}` that lets a pair
            be projected. With ``beta2 = beta1``, :math:`\rho \le 1`, and 1 means a
            cosine that has not varied.
        seed: int or ``numpy.random.Generator`` for the orders (a Generator is used as
            is); None draws fresh entropy.
        reduction: ``"sum"`` (default, as PCGrad) or ``"mean"``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import MomentumPCGrad
        >>> mp = MomentumPCGrad(2, seed=0)
        >>> mp.update(np.array([[1.0, 0.0], [-1.0, 1.0]])).direction  # first step: PCGrad
        array([0.5, 1.5])
        >>> res = mp.update(np.array([[1.0, 0.0], [0.2, 1.0]]))  # cos > 0 now ...
        >>> res.extras["projections"]  # ... but the history still expects a conflict
        2
    """

    hyperparameters = {
        "threshold": value(lambda x, K, where: _check_threshold(x, where)),
        "reduction": choice(*_REDUCTIONS),
    }
    fields = {"_tracker": nested(), "_rng": generator()}

    def __init__(
        self,
        num_tasks: int,
        beta1: float = 0.9,
        beta2: float = 0.999,
        threshold: float = 0.0,
        seed: int | np.random.Generator | None = None,
        reduction: str = "sum",
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self._tracker = ConflictTracker(self.num_tasks, beta1, beta2)
        self.threshold = _check_threshold(threshold, "threshold")
        self.reduction = check_choice(reduction, "reduction", _REDUCTIONS)
        self._rng = as_generator(seed)

    def reset(self) -> None:
        """Forget the history (the random generator keeps its state)."""
        self._tracker.reset()

    @property
    def tracker(self) -> ConflictTracker:
        """The :class:`ConflictTracker` whose moments drive the projections."""
        return self._tracker

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._tracker.step

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights``, ``direction`` (when ``grads`` was given) and
            ``extras``: ``"coefficients"`` (A), ``"projections"`` (how many),
            ``"orders"`` (K x K), ``"expected_gram"`` (:math:`\\hat G`),
            ``"signal_to_noise"`` (:math:`\\rho`), ``"stats"`` (the tracker's
            :class:`~paretomtl.solvers.conflict.ConflictStats` after this step).
        """
        p = prepare_scaled(grads, gram)  # any scale: the Gram of 2**e * grads
        if p.lost:
            raise lost_error(p.lost, "momentum-pcgrad")
        J, G = p.grads, p.gram
        check_gram_size(G, self.num_tasks, "MomentumPCGrad")
        K = self.num_tasks
        stats = self._tracker.update_gram(G)
        G_hat = expected_gram(G, stats.mean_cosine)
        rho = signal_to_noise(stats.mean_cosine, stats.mean_square_cosine)
        allowed = rho >= self.threshold
        orders = task_orders(K, self._rng)
        A, n_proj = pcgrad_coefficients(G_hat, orders, allowed)
        extras = {
            "projections": int(n_proj),
            "orders": orders,
            "expected_gram": G_hat,
            "signal_to_noise": rho,
            "stats": stats,
        }
        G, exponent = unscaled_gram(G, p.exponent)
        return coefficient_result(
            A, J, G, self.reduction, "momentum-pcgrad", extras, gram_exponent=exponent
        )

    __call__ = update


def _check_threshold(threshold: object, where: str) -> float:
    """A real number >= 0, or +inf (never project); bools and strings refused."""
    if isinstance(threshold, float | np.floating) and threshold == np.inf:
        return float(threshold)
    try:
        return check_real(threshold, where, low=0.0)
    except ValueError:
        raise ValueError(f"{where} must be >= 0 (inf: never project); got {threshold!r}") from None
