"""GradNorm: loss weights that equalise the tasks' gradient norms at a shared layer."""

from __future__ import annotations

import numpy as np

from paretomtl._optim import descent_step
from paretomtl.solvers._registry import register


def _as_positive_vector(x: object, name: str, K: int, allow_zero: bool = False) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},), one entry per task; got {arr.shape}")
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        need = "finite and >= 0" if allow_zero else "finite and > 0"
        raise ValueError(f"{name}[{i}] (task {i}) is {float(arr[i])!r}; each entry must be {need}")
    return arr


@register(
    "gradnorm",
    kind="stateful",
    paper=(
        "Chen, Badrinarayanan, Lee & Rabinovich, GradNorm: Gradient Normalization for "
        "Adaptive Loss Balancing in Deep Multitask Networks, ICML 2018"
    ),
    summary="learn loss weights so that weighted gradient norms follow relative training rates",
)
class GradNorm:
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

    The optimiser: ``"sgd"`` is :math:`w_i \leftarrow w_i - \eta\,\partial_i`;
    ``"adam"`` (default) is Adam (Kingma & Ba 2015; beta = (0.9, 0.999), eps =
    1e-8, bias-corrected), whose steps are about ``lr`` whatever the scale of the
    gradient norms. With SGD a step is proportional to :math:`n_i`, so tasks whose
    gradients are 100x larger jump to the floor and back: scale ``lr`` to your norms.
    The paper trains w with the network's optimiser; Adam is the common choice.

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
        >>> from paretomtl.solvers import GradNorm
        >>> gn = GradNorm(2, alpha=1.0, lr=0.1, optimizer="sgd")
        >>> gn.update(losses=[1.0, 1.0], grad_norms=[1.0, 3.0])
        array([1.22222222, 0.77777778])
    """

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
        if not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
            raise ValueError(f"num_tasks must be a positive integer; got {num_tasks!r}")
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be finite and >= 0; got {alpha!r}")
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be finite and > 0; got {lr!r}")
        if not np.isfinite(min_weight) or not 0 < min_weight < 1:
            raise ValueError(f"min_weight must lie in (0, 1); got {min_weight!r}")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}")
        self.optimizer = optimizer
        self.num_tasks = int(num_tasks)
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.min_weight = float(min_weight)
        self._given_initial = (
            None
            if initial_losses is None
            else _as_positive_vector(initial_losses, "initial_losses", self.num_tasks)
        )
        self.reset()

    def reset(self) -> None:
        """Back to the start: weights all 1, L(0) forgotten (unless it was given)."""
        self._weights = np.ones(self.num_tasks)
        self._initial = None if self._given_initial is None else self._given_initial.copy()
        self._step = 0
        self._m = np.zeros(self.num_tasks)  # Adam's first and second moments
        self._v = np.zeros(self.num_tasks)

    @property
    def weights(self) -> np.ndarray:
        """The current loss weights w(t) (a copy), summing to K."""
        return self._weights.copy()

    @property
    def initial_losses(self) -> np.ndarray | None:
        """:math:`L_i(0)`, once known."""
        return None if self._initial is None else self._initial.copy()

    def update(self, losses: object, grad_norms: object) -> np.ndarray:
        """One GradNorm step; returns the weights w(t+1) for the next step.

        Args:
            losses: the K task losses :math:`L_i(t)` (unweighted, > 0).
            grad_norms: :math:`n_i = \\|\\nabla_W L_i(t)\\|`, norms of the unweighted
                task gradients at the shared layer W (>= 0).
        """
        K = self.num_tasks
        L = _as_positive_vector(losses, "losses", K)
        n = _as_positive_vector(grad_norms, "grad_norms", K, allow_zero=True)
        if self._initial is None:
            self._initial = L.copy()
        ratio = L / self._initial
        r = ratio / ratio.mean()
        w = self._weights
        Gw = w * n
        target = Gw.mean() * r**self.alpha
        grad = np.sign(Gw - target) * n
        self._step += 1
        step, self._m, self._v = descent_step(
            self.optimizer, grad, self.lr, self._m, self._v, self._step
        )
        w = np.maximum(w - step, self.min_weight)
        self._weights = w * (K / w.sum())
        return self.weights

    def state_dict(self) -> dict:
        """Plain-data state (copies); :meth:`load_state_dict` restores it exactly."""
        return {
            "num_tasks": self.num_tasks,
            "alpha": self.alpha,
            "lr": self.lr,
            "min_weight": self.min_weight,
            "optimizer": self.optimizer,
            "adam_m": self._m.copy(),
            "adam_v": self._v.copy(),
            "weights": self._weights.copy(),
            "initial_losses": None if self._initial is None else self._initial.copy(),
            "given_initial_losses": (
                None if self._given_initial is None else self._given_initial.copy()
            ),
            "step": self._step,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict`; K must match."""
        if int(state["num_tasks"]) != self.num_tasks:
            raise ValueError(
                f"state is for {state['num_tasks']} tasks, this GradNorm has {self.num_tasks}"
            )
        self.alpha = float(state["alpha"])
        self.lr = float(state["lr"])
        self.min_weight = float(state["min_weight"])
        self.optimizer = str(state["optimizer"])
        self._m = np.array(state["adam_m"], dtype=np.float64)
        self._v = np.array(state["adam_v"], dtype=np.float64)
        self._weights = np.array(state["weights"], dtype=np.float64)
        init = state["initial_losses"]
        self._initial = None if init is None else np.array(init, dtype=np.float64)
        given = state["given_initial_losses"]
        self._given_initial = None if given is None else np.array(given, dtype=np.float64)
        self._step = int(state["step"])

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step
