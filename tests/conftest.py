"""Fixtures and the hypothesis profiles of the test suite; shared helpers are in helpers.py."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# The hypothesis profiles. "default" is a fixed example set, so that CI runs are reproducible;
# "thorough" draws 25 times as many, fresh on every run (a failure prints the blob that
# reproduces it). Choose one with hypothesis' own option, `pytest --hypothesis-profile=thorough`,
# or, where the command line cannot be changed, the environment variable HYPOTHESIS_PROFILE.
# What each runs, in examples per property: test_core_vs_reference.py max_examples, and
# test_fuzz.py EXAMPLES_FACTOR times that (test_fuzz.py checks the README's figures).
settings.register_profile("default", derandomize=True, database=None, deadline=None,
                          max_examples=40, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", derandomize=False, database=None, print_blob=True,
                          deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Before hypothesis' own plugin, which loads --hypothesis-profile again and adds
    # --hypothesis-verbosity on top of it.
    profile = config.getoption("--hypothesis-profile", default=None)
    settings.load_profile(profile or os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


@pytest.fixture
def xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    return X, Y
