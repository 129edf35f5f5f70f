"""Shared test configuration.

Hypothesis profiles: `default` keeps the suite fast; `HYPOTHESIS_PROFILE=deep` runs far
more examples when hunting for disagreements between the engines.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None)
settings.register_profile(
    "deep", deadline=None, max_examples=3000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
