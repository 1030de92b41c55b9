"""The protocol of loss-based task weightings: K losses in, K weights out, plain state."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np


def check_num_tasks(num_tasks: object) -> int:
    """``num_tasks`` as an int >= 1, or a ValueError saying what was seen."""
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, (int, np.integer)):
        raise ValueError(f"num_tasks must be a positive integer; got {num_tasks!r}")
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive integer; got {num_tasks!r}")
    return int(num_tasks)


def as_task_vector(x: object, name: str, num_tasks: int, *, need: str = "finite") -> np.ndarray:
    """``x`` as a float64 (K,) array whose entries all satisfy ``need``.

    ``need`` is ``"finite"``, ``">= 0"`` or ``"> 0"`` (each also finite). The error
    names the first offending entry and its task: ``"losses[2] (task 2) is -1.0; ..."``.
    """
    arr = np.array(x, dtype=np.float64)  # a copy: the caller's array is never kept
    if arr.shape != (num_tasks,):
        raise ValueError(
            f"{name} must have shape ({num_tasks},), one entry per task; got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if need == ">= 0":
        bad |= arr < 0
    elif need == "> 0":
        bad |= arr <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "finite" if need == "finite" else f"finite and {need}"
        raise ValueError(f"{name}[{i}] (task {i}) is {float(arr[i])!r}; each entry must be {rule}")
    return arr


SU_2022 = 'Su (Jianlin), "Multi-task learning: loss normalisation" (kexue.fm blog), 2022'


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value)


class LossWeighting:
    r"""Base class of the loss weightings: ``update(losses) -> weights`` plus plain state.

    At each training step the trainer computes the K task losses :math:`L_i`, calls
    :meth:`update` with their values, and minimises :math:`\sum_i w_i L_i` with the
    returned weights held constant (no gradient flows through :math:`w`). For a
    method defined by an objective :math:`F(L_1, \dots, L_K)` the weights are
    :math:`w_i = \partial F / \partial L_i`, so the trainer's gradient equals
    :math:`\nabla F`.

    The contract every subclass keeps:

    - ``update(losses)`` takes this step's K loss values (a sequence or array),
      returns the (K,) float64 weights for *this* step and advances the state.
      Losses must be finite, and > 0 where the method takes logs or ratios; a wrong
      K or a bad value raises ``ValueError`` naming the task, and leaves the state
      exactly as it was.
    - ``weights`` is the last returned weight vector (a copy), ``None`` before the
      first update and after :meth:`reset`.
    - ``state_dict()`` is plain numpy/python data (copies); ``load_state_dict``
      restores it, and a run resumed from it continues bit for bit.

    Subclasses set ``_hyperparameters`` (names of attributes saved in the state),
    ``_loss_domain`` (``"finite"``, ``">= 0"`` or ``"> 0"``) and ``_why`` (why the
    losses need that domain, for the error message), and implement ``_reset``,
    ``_compute`` (validate everything first; mutate state only once nothing can
    fail), ``_state`` and ``_load_state``.
    """

    _hyperparameters: ClassVar[tuple[str, ...]] = ()
    _loss_domain: ClassVar[str] = "finite"
    _why: ClassVar[str] = ""

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self._weights: np.ndarray | None = None

    # -- the step -----------------------------------------------------------------
    def update(self, losses: object) -> np.ndarray:
        """Weights for this step's losses; advances the state.

        Args:
            losses: the K task losses of this step (their values; unweighted).

        Returns:
            The (K,) float64 weights :math:`w` to minimise :math:`\\sum_i w_i L_i` with.
        """
        L = self._check_losses(losses)
        w = np.asarray(self._compute(L), dtype=np.float64)
        self._weights = w
        return w.copy()

    def _check_losses(self, losses: object) -> np.ndarray:
        try:
            return as_task_vector(losses, "losses", self.num_tasks, need=self._loss_domain)
        except ValueError as exc:
            if self._why and "(task" in str(exc):
                raise ValueError(f"{exc} ({self._why})") from None
            raise

    def _require(self, losses: np.ndarray, need: str, why: str) -> None:
        """A ValueError naming the task unless every loss satisfies ``need``."""
        try:
            as_task_vector(losses, "losses", self.num_tasks, need=need)
        except ValueError as exc:
            raise ValueError(f"{exc} ({why})") from None

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def weights(self) -> np.ndarray | None:
        """The weights the last :meth:`update` returned (a copy); None before any."""
        return None if self._weights is None else self._weights.copy()

    # -- state --------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state right after construction."""
        self._weights = None
        self._reset()

    def _reset(self) -> None:
        pass

    def _state(self) -> dict:
        return {}

    def _load_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        """Plain-data state (copies); :meth:`load_state_dict` restores it exactly."""
        state = {
            "method": type(self).__name__,
            "num_tasks": self.num_tasks,
            "hyperparameters": {k: _copy(getattr(self, k)) for k in self._hyperparameters},
            "weights": None if self._weights is None else self._weights.copy(),
        }
        state.update(self._state())
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (hyper-parameters included).

        The state must come from the same class with the same number of tasks.
        """
        method = state.get("method")
        if method != type(self).__name__:
            raise ValueError(f"state is for {method!r}, not {type(self).__name__!r}")
        if int(state["num_tasks"]) != self.num_tasks:
            raise ValueError(
                f"state is for {state['num_tasks']} tasks; this {type(self).__name__} "
                f"has {self.num_tasks}"
            )
        backup = self.state_dict()
        try:
            weights = state["weights"]
            weights = None if weights is None else np.array(weights, dtype=np.float64)
            for k in self._hyperparameters:
                setattr(self, k, _copy(state["hyperparameters"][k]))
            self._load_state(state)
            self._weights = weights
        except Exception:
            self.load_state_dict(backup)  # a malformed state changes nothing
            raise

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hyperparameters)
        return f"{type(self).__name__}(num_tasks={self.num_tasks}{', ' if args else ''}{args})"
