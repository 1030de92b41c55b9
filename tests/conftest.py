"""Shared test configuration: hypothesis profiles.

``HYPOTHESIS_PROFILE=ci`` (the default) keeps the suite fast; ``thorough`` runs
thousands of cases per property and is meant to be run by hand:

    HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests -q
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
