"""A training step's diagnostics as flat named scalars, for any logger.

:func:`flatten` turns the :class:`~paretomtl.adapters.torch.StepInfo` of
``Aggregator.backward`` (or a :class:`~paretomtl.solvers.SolverResult`, e.g. the
``last_result`` of a TorchJD adapter object) into ``{name: float}``, the shape every
logger takes: ``SummaryWriter.add_scalar`` in a loop, Lightning's ``self.log_dict``,
``wandb.log``, MLflow's ``log_metrics``. No logger is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from paretomtl.solvers import ConflictStats, SolverResult

__all__ = ["flatten"]

_CONFLICT_FIELDS = ("mean_cosine", "cosine_std", "conflict_frequency")


def _task_names(names: Sequence[str] | None, K: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(K)]
    if isinstance(names, str):
        raise TypeError(f"names must be a sequence of K task names, not the string {names!r}")
    out = list(names)
    if len(out) != K:
        raise ValueError(f"names has {len(out)} entries for {K} tasks; give one name per task")
    for i, n in enumerate(out):
        if not isinstance(n, str) or not n:
            raise TypeError(f"names[{i}] must be a non-empty string; got {n!r}")
    if len(set(out)) != K:
        raise ValueError(f"names must be distinct; got {out}")
    return out


def _pairs(matrix: np.ndarray, key: str, tasks: list[str], out: dict[str, float]) -> None:
    K = len(tasks)
    for i in range(K):
        for j in range(i + 1, K):
            out[f"{key}/{tasks[i]}-{tasks[j]}"] = float(matrix[i, j])


def _per_task(values: np.ndarray, key: str, tasks: list[str], out: dict[str, float]) -> None:
    for name, v in zip(tasks, np.asarray(values, dtype=np.float64), strict=True):
        out[f"{key}/{name}"] = float(v)


def _diagnostics(result: SolverResult, prefix: str, out: dict[str, float]) -> None:
    out[f"{prefix}converged"] = float(bool(result.converged))
    out[f"{prefix}iterations"] = float(result.iterations)
    for key in ("objective", "kkt_residual"):
        value = float(getattr(result, key))
        if np.isfinite(value):
            out[f"{prefix}{key}"] = value


def flatten(
    info: object, prefix: str = "mtl/", *, names: Sequence[str] | None = None
) -> dict[str, float]:
    """One step's weights, losses, gradient geometry and conflicts as named floats.

    Keys (``prefix`` first, tasks by index or by ``names``; pairs ``i-j`` with i < j):

    - ``weight/i``: the weight of task i in the combined gradient (left out where the
      method has none, e.g. GradDrop, and on skipped or accumulating steps);
    - ``loss/i``: the loss value (StepInfo only);
    - ``grad_norm/i``: :math:`\\sqrt{G_{ii}}`, the norm of task i's gradient at the
      shared parameters (or features), and ``cosine/i-j``: the cosine of the
      gradients of tasks i and j (where the Gram matrix was formed);
    - ``conflicts/mean_cosine/i-j``, ``conflicts/cosine_std/i-j``,
      ``conflicts/conflict_frequency/i-j``: the moving statistics of
      ``Aggregator(..., track_conflicts=True)``, and ``conflicts/step``;
    - ``converged`` (1.0 or 0.0), ``iterations``, and ``objective`` and
      ``kkt_residual`` where finite: the solver's diagnostics;
    - ``skipped`` (1.0 or 0.0, StepInfo only).

    Args:
        info: a :class:`~paretomtl.adapters.torch.StepInfo` or a
            :class:`~paretomtl.solvers.SolverResult`.
        prefix: put before every key (``"mtl/"``; ``""`` for none).
        names: K distinct task names to use instead of the indices.

    Returns:
        dict from name to Python float.

    Example:
        >>> import torch
        >>> from paretomtl.adapters.logging import flatten
        >>> from paretomtl.adapters.torch import Aggregator
        >>> _ = torch.manual_seed(0)
        >>> trunk, heads = torch.nn.Linear(3, 4), [torch.nn.Linear(4, 1) for _ in range(2)]
        >>> z = trunk(torch.randn(8, 3))
        >>> losses = [h(z).pow(2).mean() for h in heads]
        >>> info = Aggregator("mgda", track_conflicts=True).backward(losses, trunk.parameters())
        >>> scalars = flatten(info, names=["depth", "seg"])
        >>> sorted(k for k in scalars if not k.startswith("mtl/conflicts"))[:6]
        ['mtl/converged', 'mtl/cosine/depth-seg', 'mtl/grad_norm/depth', 'mtl/grad_norm/seg', \
'mtl/iterations', 'mtl/kkt_residual']
        >>> round(scalars["mtl/weight/depth"] + scalars["mtl/weight/seg"], 12)
        1.0
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string; got {type(prefix).__name__}")
    out: dict[str, float] = {}
    if isinstance(info, SolverResult):
        gram = np.asarray(info.gram, dtype=np.float64)
        tasks = _task_names(names, gram.shape[0])
        if info.weights is not None:
            _per_task(info.weights, f"{prefix}weight", tasks, out)
        _geometry(gram, None, prefix, tasks, out)
        _diagnostics(info, prefix, out)
        return out
    if not all(hasattr(info, a) for a in ("weights", "losses", "gram", "cosines", "skipped")):
        raise TypeError(
            f"info must be a StepInfo (Aggregator.backward's return) or a SolverResult; "
            f"got {type(info).__name__}"
        )
    step: Any = info  # a StepInfo (duck-typed: this module does not import torch)
    losses = np.asarray(step.losses, dtype=np.float64)
    tasks = _task_names(names, losses.shape[0])
    skipped = bool(step.skipped)
    accumulated = bool(getattr(step, "accumulated", False))
    if step.weights is not None and not skipped and not accumulated:
        _per_task(step.weights, f"{prefix}weight", tasks, out)
    _per_task(losses, f"{prefix}loss", tasks, out)
    if step.gram is not None:
        _geometry(np.asarray(step.gram, dtype=np.float64), step.cosines, prefix, tasks, out)
    conflicts = getattr(step, "conflicts", None)
    if isinstance(conflicts, ConflictStats):
        for field in _CONFLICT_FIELDS:
            _pairs(getattr(conflicts, field), f"{prefix}conflicts/{field}", tasks, out)
        out[f"{prefix}conflicts/step"] = float(conflicts.step)
    result = getattr(step, "result", None)
    if isinstance(result, SolverResult):
        _diagnostics(result, prefix, out)
    out[f"{prefix}skipped"] = float(skipped)
    return out


def _geometry(
    gram: np.ndarray,
    cosines: np.ndarray | None,
    prefix: str,
    tasks: list[str],
    out: dict[str, float],
) -> None:
    """Gradient norms and pairwise cosines from the Gram matrix."""
    norms = np.sqrt(np.clip(np.diagonal(gram), 0.0, None))
    _per_task(norms, f"{prefix}grad_norm", tasks, out)
    if cosines is None:
        denom = np.outer(norms, norms)
        with np.errstate(invalid="ignore", divide="ignore"):
            cosines = np.where(denom > 0, gram / np.where(denom > 0, denom, 1.0), 0.0)
        cosines = np.clip(cosines, -1.0, 1.0)
    _pairs(np.asarray(cosines, dtype=np.float64), f"{prefix}cosine", tasks, out)
