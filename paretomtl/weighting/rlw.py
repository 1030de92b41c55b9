"""Random Loss Weighting: fresh random loss weights at every step."""

from __future__ import annotations

import copy

import numpy as np

from paretomtl.solvers._registry import register
from paretomtl.weighting._base import LossWeighting

_DISTRIBUTIONS = ("normal", "uniform")


def _generator_from_state(state: dict) -> np.random.Generator:
    """A Generator on a new bit generator of the kind ``state`` names, in that state."""
    name = state["bit_generator"]
    bit_generator_class = getattr(np.random, name, None)
    if not (isinstance(bit_generator_class, type)) or not issubclass(
        bit_generator_class, np.random.BitGenerator
    ):
        raise ValueError(f"unknown bit generator {name!r} in the state")
    bit_generator = bit_generator_class()
    bit_generator.state = copy.deepcopy(state)
    return np.random.Generator(bit_generator)


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
    as LibMTL's earlier version offered. The losses are checked (finite) but do not
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

    _hyperparameters = ("distribution",)

    def __init__(
        self,
        num_tasks: int,
        seed: int | np.random.Generator | None = None,
        distribution: str = "normal",
    ) -> None:
        super().__init__(num_tasks)
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}; got {distribution!r}")
        if isinstance(seed, np.random.Generator):
            initial = seed.bit_generator.state
        elif seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
            if seed is not None and seed < 0:
                raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
            initial = np.random.default_rng(seed).bit_generator.state
        else:
            raise TypeError(f"seed must be an int, None or numpy.random.Generator; got {seed!r}")
        self.distribution = distribution
        self._initial_rng_state = copy.deepcopy(initial)
        self.reset()

    def _reset(self) -> None:
        self._rng = _generator_from_state(self._initial_rng_state)

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        K = self.num_tasks
        z = self._rng.standard_normal(K) if self.distribution == "normal" else self._rng.random(K)
        e = np.exp(z - z.max())
        return e / e.sum()

    def _state(self) -> dict:
        return {
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "initial_rng": copy.deepcopy(self._initial_rng_state),
        }

    def _load_state(self, state: dict) -> None:
        rng = _generator_from_state(state["rng"])
        initial = copy.deepcopy(state["initial_rng"])
        self._rng, self._initial_rng_state = rng, initial
