"""paretomtl: multi-objective optimisation for multi-task learning.

K tasks give K gradients per step that differ in size, speed and direction;
paretomtl turns them into one update. ``paretomtl.solvers`` works on raw numpy
arrays (K x M gradients or their K x K Gram matrix) with numba kernels underneath;
``paretomtl.weighting`` turns the K losses into loss weights (GradNorm, uncertainty
weighting, DWA, loss normalisations, ...); ``paretomtl.front`` traces Pareto fronts
of ``paretomtl.problems``; ``paretomtl.adapters`` connects the methods to training
frameworks. The layers, the one protocol every method follows and where a new
method goes are described in the repository's ``docs/design.md``.

Importing paretomtl compiles nothing; each numba kernel compiles on first use and is
cached on disk.

Example:
    >>> import numpy as np
    >>> import paretomtl
    >>> paretomtl.solvers.mgda(np.eye(3)).weights.round(4)
    array([0.3333, 0.3333, 0.3333])
"""

from paretomtl import solvers, weighting

__version__ = "0.1.0"
__all__ = ["__version__", "solvers", "weighting"]
