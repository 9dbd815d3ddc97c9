"""Shared test settings.

Hypothesis: the "ci" profile (selected when CI is set) is derandomized so a
CI run is repeatable; locally the default profile explores new examples.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
