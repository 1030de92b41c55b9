"""A :class:`paretomtl.problems.Problem` from a torch function: autograd Jacobians and HVPs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.func import jacrev, jvp

from paretomtl.problems.custom import FunctionProblem, from_functions


def problem(
    fn: Callable[[torch.Tensor], torch.Tensor],
    n_var: int,
    *,
    lower: object,
    upper: object,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    ideal: object = None,
    name: str | None = None,
) -> FunctionProblem:
    r"""A problem whose objectives are a torch function, differentiated by autograd.

    ``fn`` maps a 1-D tensor x of shape (n_var,) to the K objective values, shape (K,);
    K is read from one call at the box's centre. The Jacobian is
    ``torch.func.jacrev(fn)(x)`` (reverse mode, one pass per objective, vectorised);
    the Hessian-vector products :math:`\nabla^2 f_i(x)\,v`, row i, are the derivative of
    the Jacobian along v, forward-over-reverse:
    ``torch.func.jvp(jacrev(fn), (x,), (v,))[1]`` (exact, not by differences;
    Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation 1994).
    Every front method (:func:`paretomtl.front.trace`) accepts the result, including
    ``"continuation"``; it is a :class:`paretomtl.problems.custom.FunctionProblem`
    with its checks (shapes, finite values, no NaN derivatives, named errors).

    Args:
        fn: the objectives, a function of a tensor of shape (n_var,) made of torch
            operations (``torch.func`` transforms it: no in-place changes of x, no
            ``.item()`` or numpy inside).
        n_var: the number of variables.
        lower, upper: the box, finite, scalars or arrays of shape (n_var,).
        dtype: the dtype x is given to ``fn`` in (default float64; float32 loses
            about half the digits, and the front methods' tolerances expect float64).
        device: where x lives (default torch's default device).
        ideal: the ideal point the front methods measure preferences from; default
            zeros.
        name: shown in messages; default ``fn.__name__``.

    Returns:
        A :class:`~paretomtl.problems.custom.FunctionProblem`, values and derivatives
        as float64 numpy arrays.

    Example:
        Fonseca & Fleming's problem (Evolutionary Computation 3(1), 1995), whose
        Pareto set is :math:`x_1 = \dots = x_n \in [-1/\sqrt n, 1/\sqrt n]`:

        >>> import math, torch
        >>> from paretomtl.adapters.torch import problem
        >>> def fonseca_fleming(x):
        ...     a = 1 / math.sqrt(x.numel())
        ...     return torch.stack([1 - torch.exp(-((x - a) ** 2).sum()),
        ...                         1 - torch.exp(-((x + a) ** 2).sum())])
        >>> p = problem(fonseca_fleming, 2, lower=-4.0, upper=4.0)
        >>> p.n_obj, p.evaluate([0.0, 0.0])[0].round(4)
        (2, array([0.6321, 0.6321]))
        >>> p.hvp([0.0, 0.0], [1.0, 0.0]).shape
        (2, 2)
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__} {fn!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype; got {dtype!r}")
    if isinstance(n_var, bool) or not isinstance(n_var, (int, np.integer)) or n_var < 1:
        raise ValueError(f"n_var must be an int >= 1; got {n_var!r}")
    label = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "fn"
    device = torch.device(device) if device is not None else None

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

    def call(x: torch.Tensor) -> torch.Tensor:
        out = fn(x)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"fn ({label}) must return a torch.Tensor of shape (K,); got {type(out).__name__}"
            )
        if out.ndim != 1:
            raise ValueError(
                f"fn ({label}) must return the K objectives as shape (K,); got {tuple(out.shape)}"
            )
        return out

    jac = jacrev(call)

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    def values(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return numpy(call(tensor(x)))

    def jacobian(x: np.ndarray) -> np.ndarray:
        return numpy(jac(tensor(x)))

    def hvp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return numpy(jvp(jac, (tensor(x),), (tensor(v),))[1])

    values.__qualname__, jacobian.__qualname__, hvp.__qualname__ = (
        label,
        f"jacrev({label})",
        f"jvp(jacrev({label}))",
    )
    lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), (int(n_var),))
    hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), (int(n_var),))
    centre = 0.5 * (lo + hi)
    n_obj = int(values(centre).shape[0]) if np.isfinite(centre).all() else 2
    return from_functions(
        values,
        jacobian,
        n_var,
        n_obj,
        lower=lower,
        upper=upper,
        hvp=hvp,
        ideal=ideal,
        name=name if name is not None else label,
    )


__all__ = ["problem"]
