"""SDMGrad: MGDA's weights regularised towards a preferred direction, by projected steps."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import (
    as_real_task_vector,
    check_count,
    check_gram_size,
    check_num_tasks,
    check_real,
)
from paretomtl._kernels.simplex_steps import sdmgrad_inner
from paretomtl.solvers._input import combine, prepare, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult
from paretomtl.state import Stateful, array, count, real, value

# Largest inner iteration count accepted (a step costs O(K^2); this is a guard against
# a typo such as 10**12, not a statement about convergence).
_MAX_INNER = 10**7


def _check_pref(x: object, K: int, where: str) -> np.ndarray | None:
    if x is None:
        return None
    pref_vector = as_real_task_vector(x, where, K, need=">= 0")
    if not pref_vector.sum() > 0:
        raise ValueError(f"{where} must have a positive entry; got {pref_vector}")
    return pref_vector


def _check_n_iter(x: object, K: int, where: str) -> int:
    n = check_count(x, where, minimum=1)
    if n > _MAX_INNER:
        raise ValueError(f"{where} must be an integer from 1 to {_MAX_INNER}; got {x!r}")
    return n


@register(
    "sdmgrad",
    kind="stateful-gradient",
    paper=(
        "Xiao, Ban & Ji, Direction-oriented Multi-objective Learning: Simple and Provable "
        "Stochastic Algorithms, NeurIPS 2023"
    ),
    summary="MGDA regularised towards the mean gradient; weights by warm-started projected steps",
)
class SDMGrad(Stateful):
    r"""SDMGrad (stochastic direction-oriented multi-objective gradient), on the Gram matrix.

    The direction-oriented problem of Xiao, Ban & Ji ("Direction-oriented
    Multi-objective Learning: Simple and Provable Stochastic Algorithms", NeurIPS 2023)
    looks for the weights

    .. math::

        w^\star = \arg\min_{w \in \Delta}\ \tfrac12 \|J^\top w + \lambda\, g_0\|^2,
        \qquad g_0 = J^\top \tilde w,

    a min-norm (MGDA-like) point pulled towards the preferred direction :math:`g_0`
    (the mean gradient for :math:`\tilde w = 1/K`), and updates along

    .. math::

        d = \frac{J^\top w + \lambda\, g_0}{1 + \lambda}
          = \sum_i \frac{w_i + \lambda \tilde w_i}{1 + \lambda}\, g_i .

    The weights are not solved to optimality: as in the paper's Algorithm 1, they are
    kept between updates and moved at each update by ``n_iter`` projected stochastic
    gradient steps on the objective above, whose gradient in w is
    :math:`A(w + \lambda\tilde w)` with the normalised Gram matrix

    .. math::

        A = G / s^2, \qquad s = \tfrac1K \sum_i \sqrt{\max(G_{ii}, 0)},

    so the step size ``lr`` does not depend on the gradients' scale (the paper's
    section 6.1). Each inner step is a heavy-ball step of torch.optim.SGD (the
    authors' code): :math:`v \leftarrow \mu v + A(w + \lambda\tilde w)` (v starts at
    the first gradient of each update), :math:`w \leftarrow \operatorname{Proj}_\Delta(w
    - \eta v)` with the exact sort-based projection.

    Defaults and the peers:

    - :math:`\lambda` = 0.3 (``lambda_``; the value of the paper's experiments, of the
      authors' run scripts, of LibMTL and TorchJD; the authors' class default is 0.6);
      ``n_iter`` = 20 (all); ``momentum`` = 0.5 (all); ``lr`` = 10 (the authors' code
      and TorchJD; LibMTL hard-codes 5).
    - Normalisation: ``eps`` = 0 gives the exact :math:`A = G/s^2`, invariant to a
      common scale of the gradients (any scale works: the Gram matrix is rescaled by
      a power of two where float64 could not hold it). TorchJD and LibMTL divide by
      :math:`s^2 + 10^{-8}` (``eps=1e-8`` here reproduces that); the authors' code
      uses :math:`s = \mathrm{mean}_i \sqrt{G_{ii} + 10^{-4}}`. Both differ from the
      exact form only where the squared gradient norms are not far above the
      constant. All gradients zero: A = 0 and the weights stay.
    - Rounding: at ``lr`` = 10 an inner step can multiply a difference in w by up to
      :math:`1 + \eta(1 + \mu)\|A\|` before the (non-expansive) projection, so two
      correct float64 implementations whose products round differently drift apart
      over a long run (measured against TorchJD at K = 32: 1e-14 after one update,
      1e-4 after ten); from the same inner weights one update agrees to 1e-10.
    - The authors' code multiplies the direction by K ("to match the sum loss");
      this class, TorchJD and LibMTL do not.
    - Double sampling: the paper (and TorchJD's ``SDMGradWeighting``) builds A from
      the cross product :math:`J_1 J_2^\top` of two independent minibatches and the
      direction from a third; with one set of gradients per step, this class uses
      :math:`J J^\top` and the same gradients (the two agree on the same matrices).

    Args:
        num_tasks: K >= 1; every update must bring K gradients.
        lambda_: :math:`\lambda \ge 0`, the pull towards the preferred direction
            (0: MGDA's objective; large: the preferred direction).
        lr: inner step size :math:`\eta > 0`.
        momentum: inner heavy-ball momentum :math:`\mu \in [0, 1)`.
        n_iter: inner steps per update, an integer >= 1.
        pref_vector: the preference :math:`\tilde w` (K entries >= 0, not all 0), or None for
            uniform :math:`1/K` (the mean gradient).
        eps: added to :math:`s^2` in the normalisation, >= 0 (see above).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import SDMGrad
        >>> sdm = SDMGrad(2, lambda_=0.0, lr=0.4, momentum=0.0, n_iter=1)
        >>> G = np.array([[1.0, 0.0], [0.0, 9.0]])  # s = (1 + 3) / 2: A = G / 4
        >>> sdm.update(gram=G).weights  # Proj([0.5, 0.5] - 0.4 * [0.125, 1.125])
        array([0.7, 0.3])
    """

    hyperparameters = {
        "lambda_": real(low=0.0),
        "lr": real(low=0.0, low_open=True),
        "momentum": real(low=0.0, high=1.0, high_open=True),
        "n_iter": value(_check_n_iter),
        "pref_vector": value(_check_pref),
        "eps": real(low=0.0),
    }
    fields = {
        "_w": array("K", ">= 0", high=1.0),
        "_step": count(),
    }

    def __init__(
        self,
        num_tasks: int,
        lambda_: float = 0.3,
        lr: float = 10.0,
        momentum: float = 0.5,
        n_iter: int = 20,
        pref_vector: object = None,
        eps: float = 0.0,
    ) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.lambda_ = check_real(lambda_, "lambda_", low=0.0)
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.n_iter = _check_n_iter(n_iter, self.num_tasks, "n_iter")
        self.pref_vector = _check_pref(pref_vector, self.num_tasks, "pref_vector")
        self.eps = check_real(eps, "eps", low=0.0)
        self._uniform = np.full(self.num_tasks, 1.0 / self.num_tasks)
        self.reset()

    def reset(self) -> None:
        """Inner weights back to uniform (1/K) and step to 0."""
        self._w = np.full(self.num_tasks, 1.0 / self.num_tasks)
        self._step = 0

    @property
    def inner_weights(self) -> np.ndarray:
        """The inner weights w kept between updates (a copy)."""
        return self._w.copy()

    @property
    def step(self) -> int:
        """How many updates have been made."""
        return self._step

    def check_state(self, values: dict) -> None:
        w = values["_w"]
        if abs(float(w.sum()) - 1.0) > 1e-9:
            raise ValueError(
                f"state['w'] must lie on the simplex (entries >= 0 summing to 1); its sum "
                f"is {float(w.sum())!r}"
            )

    def update(self, grads: object = None, *, gram: object = None) -> SolverResult:
        """One SDMGrad step on K x M gradients and/or their K x K Gram matrix.

        Returns:
            SolverResult with ``weights`` :math:`(w + \\lambda\\tilde w)/(1+\\lambda)`,
            ``direction`` (when ``grads`` was given), ``iterations`` (``n_iter``),
            ``converged`` (always True: a fixed number of steps is the method), and
            ``extras``: ``"inner_weights"`` (w), ``"last_change"`` (the largest
            change of w in the last inner step).
        """
        K = self.num_tasks
        if self.eps == 0.0:
            p = prepare_scaled(grads, gram)  # any scale: the Gram of 2**e * grads
            J, G, exponent = p.grads, p.gram, p.exponent
        else:
            J, G = prepare(grads, gram)
            exponent = 0
        check_gram_size(G, K, "SDMGrad")
        pref_vector = self._uniform if self.pref_vector is None else self.pref_vector
        w, change = sdmgrad_inner(
            G, self._w, pref_vector, self.lambda_, self.lr, self.momentum, self.n_iter, self.eps
        )
        weights = (w + self.lambda_ * pref_vector) / (1.0 + self.lambda_)
        self._w = w
        self._step += 1
        G_out, exp_out = unscaled_gram(G, exponent)
        return SolverResult(
            weights=weights,
            direction=combine(weights, J),
            gram=G_out,
            method="sdmgrad",
            iterations=self.n_iter,
            converged=True,
            extras={"inner_weights": w.copy(), "last_change": float(change)},
            gram_exponent=exp_out,
        )

    __call__ = update
