"""Pytest plugin: one throwaway Prefect API for the whole test run (each xdist worker its own).

Registered in tests/conftest.py. `prefect_harness` starts Prefect's `prefect_test_harness` (a
subprocess server on a free loopback port with a temporary SQLite database) the first time a test asks
for it and keeps it until the session ends; it yields the API URL, for tests that run flows in
subprocesses (`PREFECT_API_URL`). Flows run in this process, in its task-runner threads, or on Dask
workers (the Dask runner ships the settings context) all report to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# A cold server on a busy two-core machine (xdist workers, Dask clusters) can take minutes to start.
STARTUP_TIMEOUT = 240


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """Run flows against a throwaway Prefect API, started once per test session; yield its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        # The harness's server would otherwise try to report usage over the network.
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        with prefect_test_harness(server_startup_timeout=STARTUP_TIMEOUT):
            yield str(PREFECT_API_URL.value())
