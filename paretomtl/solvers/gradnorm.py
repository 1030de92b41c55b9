"""GradNorm is a loss weighting: it lives in :mod:`paretomtl.weighting.gradnorm`.

It stays importable from here (``paretomtl.solvers.GradNorm``) as one of the four
founding methods.
"""

from paretomtl.weighting.gradnorm import GradNorm

__all__ = ["GradNorm"]
