"""Shared pytest set-up: the hypothesis profiles of the fuzz tests (tests/test_fuzz.py).

Two profiles, both derandomized (a fixed seed per test, so a failure reproduces from the
command line alone) with no deadline (a fit's run time varies with the machine) and no
example database (nothing written into the checkout):

- ``default``: few examples per test, so that the fuzz file takes a few seconds in the
  ordinary test run;
- ``ci``: the fuzzing campaign, selected with the environment variable ``NATVI_FUZZ=ci``
  (``NATVI_FUZZ=ci pytest -q tests/test_fuzz.py --hypothesis-show-statistics``), with enough
  examples for more than 2,000 generated cases over the fuzz tests in a few minutes.

The fuzz tests scale these counts per test (cheap family checks get more examples than
fits) with ``_scaled`` in tests/test_fuzz.py: with the ``ci`` profile, 4,200 cases in
about a minute and a half.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "derandomize": True, "database": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

settings.register_profile("default", max_examples=6, **_COMMON)
settings.register_profile("ci", max_examples=120, **_COMMON)
settings.load_profile("ci" if os.environ.get("NATVI_FUZZ") == "ci" else "default")
