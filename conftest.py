"""Shared pytest set-up: Hypothesis profiles, and the tests' one time unit (``tests/timing.py``)."""

from __future__ import annotations

import os

# The one read of LAB_TIMEOUT_FACTOR happens on this import, so a bad value stops the run at once,
# naming the variable. Tests import FACTOR, scaled and wait_until from ``timing`` themselves.
import timing  # noqa: F401
from hypothesis import HealthCheck, settings

# The lab's fixtures (lab, lab_factory, lab_spec), options (--lab-*) and markers.
pytest_plugins = ["lab.pytest_plugin"]

# HYPOTHESIS_PROFILE=nightly for the long runs (make nightly); default keeps make test fast.
settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "nightly", max_examples=20_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True,
)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=False, print_blob=True)
# mutation testing (make mutation): few examples, the same ones for every mutant, no database,
# so a mutant's verdict does not depend on luck or on what an earlier mutant's run stored.
settings.register_profile(
    "mutation", max_examples=25, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=False,
)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "default"))
