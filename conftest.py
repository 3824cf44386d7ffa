"""Shared pytest set-up: Hypothesis profiles, the scalable time unit, markers."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "default"))

#: Multiply every timing tolerance in tests by this factor on slow machines.
LAB_TIMEOUT_FACTOR = float(os.getenv("LAB_TIMEOUT_FACTOR", "1"))
