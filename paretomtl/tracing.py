"""Deprecated: moved to :mod:`paretomtl.cli.trace`; this module re-exports its names."""

import warnings

from paretomtl.cli.trace import (
    FRONT_SAMPLE_2D,
    FRONT_SAMPLE_ND,
    INDICATORS_NOTE,
    PLOT_NOTE,
    REFERENCE,
    ProgressBar,
    check_writable,
    indicators,
    plot_front,
    prepare,
    trace_to_folder,
    true_front,
)

__all__ = [
    "FRONT_SAMPLE_2D",
    "FRONT_SAMPLE_ND",
    "INDICATORS_NOTE",
    "PLOT_NOTE",
    "REFERENCE",
    "ProgressBar",
    "check_writable",
    "indicators",
    "plot_front",
    "prepare",
    "trace_to_folder",
    "true_front",
]

warnings.warn(
    "paretomtl.tracing moved to paretomtl.cli.trace; import from there",
    DeprecationWarning,
    stacklevel=2,
)
