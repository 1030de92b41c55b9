"""Random Loss Weighting: fresh random loss weights at every step."""

from __future__ import annotations

import copy

import numpy as np

from paretomtl._checks import as_generator, check_choice
from paretomtl.state import array, choice, generator, same_plain, value
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register

_DISTRIBUTIONS = ("normal", "uniform")


@register(
    "rlw",
    kind="loss",
    paper=(
        "Lin, Ye, Xu, Shi & Zhang, Reasonable Effectiveness of Random Weighting: "
        "A Litmus Test for Multi-Task Learning, TMLR 2022"
    ),
    summary="random weights softmax(z), z ~ N(0, I), drawn afresh at every step",
)
class RandomLossWeighting(LossWeighting):
    r"""Random Loss Weighting (RLW; Lin, Ye, Xu, Shi & Zhang, TMLR 2022).

    At every step draw :math:`z \sim p(z)` and use

    .. math::

        w = \operatorname{softmax}(z),\qquad
        w_i = \frac{e^{z_i}}{\sum_j e^{z_j}},\qquad z \sim \mathcal N(0, I_K),

    so the weights are positive and sum to 1. The paper proposes RLW as a baseline
    any loss-balancing method should beat, and studies several distributions; the
    standard normal followed by softmax is its default and the one in its authors'
    library (LibMTL, ``LibMTL/weighting/RLW.py``: ``F.softmax(torch.randn(K))``).
    ``distribution="uniform"`` draws :math:`z \sim U(0, 1)^K` instead (then softmax),
    as LibMTL's earlier version offered (a ``dist`` option, until its 2022-01-06
    "update RLW"). The losses are checked (finite) but do not
    affect the weights.

    Randomness: ``seed`` is an int, None (fresh entropy) or a
    :class:`numpy.random.Generator`, whose current state is *copied* (the passed
    generator is not advanced). The same seed gives the same weights bit for bit;
    :meth:`state_dict` carries the generator's state, and :meth:`reset` rewinds it to
    its state at construction.

    Args:
        num_tasks: K >= 1.
        seed: int, None or Generator.
        distribution: ``"normal"`` (default) or ``"uniform"``.

    Example:
        >>> from paretomtl.weighting import RandomLossWeighting
        >>> rlw = RandomLossWeighting(3, seed=0)
        >>> w = rlw.update([1.0, 2.0, 3.0])
        >>> w.round(4), round(float(w.sum()), 12)
        (array([0.2902, 0.2242, 0.4855]), 1.0)
    """

    hyperparameters = {"distribution": choice(*_DISTRIBUTIONS)}
    fields = {
        "_weights": array("K", "> 0", optional=True),
        "_rng": generator(),
        "_initial_rng": value(generator().check),
    }

    def __init__(
        self,
        num_tasks: int,
        seed: int | np.random.Generator | None = None,
        distribution: str = "normal",
    ) -> None:
        super().__init__(num_tasks)
        self.distribution = check_choice(distribution, "distribution", _DISTRIBUTIONS)
        self._initial_rng = copy.deepcopy(as_generator(seed).bit_generator.state)
        self.reset()

    def _reset(self) -> None:
        bit_generator = getattr(np.random, self._initial_rng["bit_generator"])()
        bit_generator.state = copy.deepcopy(self._initial_rng)
        self._rng = np.random.Generator(bit_generator)

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        K = self.num_tasks
        z = self._rng.standard_normal(K) if self.distribution == "normal" else self._rng.random(K)
        e = np.exp(z - z.max())
        return e / e.sum()

    def check_state(self, values: dict) -> None:
        rng, initial, w = values["_rng"], values["_initial_rng"], values["_weights"]
        if rng["bit_generator"] != initial["bit_generator"]:
            raise ValueError(
                f"state['rng'] is a {rng['bit_generator']} state but state['initial_rng'] a "
                f"{initial['bit_generator']} one: the generator is a copy of the initial one"
            )
        if (w is None) != same_plain(rng, initial):
            raise ValueError(
                "state['weights'] must be None exactly when state['rng'] is still at "
                "state['initial_rng'] (no draw since the start or the last reset); got "
                f"weights {w} with the generator {'not ' * (w is None)}advanced"
            )
        if w is not None and not np.isclose(w.sum(), 1.0, rtol=0.0, atol=1e-9):
            raise ValueError(f"state['weights'] must sum to 1 (a softmax); got {w}")
