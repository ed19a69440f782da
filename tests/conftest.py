"""Shared settings of the kit's own tests: anyio backends and Hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

# `ci` is derandomized so that CI passes or fails the same way on every run.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every `@pytest.mark.anyio` test under asyncio and under trio."""
    backend: str = request.param
    return backend


@pytest.fixture(scope="session", autouse=True)
def _unmeasured_subprocesses() -> None:
    """Keep coverage out of the Python processes the tests start (kit sessions, zoo runs).

    `coverage run` with `patch = ["subprocess"]` measures every child that inherits
    `COVERAGE_PROCESS_CONFIG`; that is how the pytest-xdist workers get measured. Those
    workers (or a serial run) then drop it: their own children measure nothing the
    in-process tests do not, and tracing them would double the zoo's run time.
    """
    os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
