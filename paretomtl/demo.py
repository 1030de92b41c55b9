"""Deprecated: moved to :mod:`paretomtl.cli.demo`; this module re-exports its names."""

import warnings

from paretomtl.cli.demo import (
    DESCENT_METHODS,
    METHOD,
    OUT,
    PROBLEM,
    RAYS,
    SEED,
    descent,
    run,
)

__all__ = [
    "DESCENT_METHODS",
    "METHOD",
    "OUT",
    "PROBLEM",
    "RAYS",
    "SEED",
    "descent",
    "run",
]

warnings.warn(
    "paretomtl.demo moved to paretomtl.cli.demo; import from there",
    DeprecationWarning,
    stacklevel=2,
)
