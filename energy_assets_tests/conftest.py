"""Shared fixtures: a throwaway lake, a real (ephemeral) Dagster instance, a fast HTTP session.

API tests talk to a real HTTP server on 127.0.0.1 (pytest-httpserver's `httpserver` fixture); nothing
here reaches the internet.
"""

import pytest
from dagster import DagsterInstance

from energy_assets.http import HttpSession
from energy_assets.lake.io_manager import DeltaLakeIOManager


@pytest.fixture
def lake_root(tmp_path):
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def fast_http():
    """The real session with test-sized timings: retries in milliseconds, no politeness delay."""
    return HttpSession(
        connect_timeout_s=1.0,
        read_timeout_s=1.0,
        max_attempts=4,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        max_total_wait_s=2.0,
        min_interval_s=0.0,
    )


@pytest.fixture
def lake_io(lake_root):
    return DeltaLakeIOManager(root_uri=str(lake_root))


@pytest.fixture
def resources(lake_io, fast_http):
    return {"io_manager": lake_io, "http": fast_http}
