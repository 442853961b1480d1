"""Shared fixtures: a throwaway lake, a real (ephemeral) Dagster instance, a fast HTTP session.

API tests talk to a real HTTP server on 127.0.0.1 (pytest-httpserver's `httpserver` fixture); nothing
here reaches the internet.
"""

import os

# No test reaches the internet: the real APIs' base URLs point at a closed loopback port (a test points a
# client at its own local server), and the developer's shell settings do not leak in. Set before the
# project is imported, so resources built at import follow it too.
CLOSED_LOOPBACK = "http://127.0.0.1:9"
os.environ["NESO_API_BASE_URL"] = CLOSED_LOOPBACK
os.environ["ELECTRICITY_MAPS_API_BASE_URL"] = CLOSED_LOOPBACK
for _name in ("ENERGY_ASSETS_SOURCE", "ENERGY_ASSETS_SAMPLES_DIR", "ELECTRICITY_MAPS_API_KEY", "ENERGY_LAKE_URI"):
    os.environ.pop(_name, None)

import pytest  # noqa: E402
from dagster import DagsterInstance  # noqa: E402

from energy_assets.http import HttpSession  # noqa: E402
from energy_assets.lake.io_manager import DeltaLakeIOManager  # noqa: E402
from energy_assets.lake.resource import LakeResource


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
def lake_resource(lake_root):
    return LakeResource(root_uri=str(lake_root))


@pytest.fixture
def lake_io(lake_resource):
    return DeltaLakeIOManager(lake=lake_resource)


@pytest.fixture
def resources(lake_resource, lake_io, fast_http):
    return {"lake": lake_resource, "io_manager": lake_io, "http": fast_http}


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict:
    """ONE real `energy-assets demo` (a subprocess on a fresh lake and instance, as a user runs it), shared by
    the tests that read its result (mark them `xdist_group("demo")` so they share one worker): its lake, serving
    file, instance, environment and output. Tests that change what it made work on a copy (`copy_demo`)."""
    import shutil
    import subprocess
    import sys

    from energy_assets import settings

    state = tmp_path_factory.mktemp("demo")
    home = state / "dagster_home"
    home.mkdir()
    shutil.copy(settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENERGY_", "SMART_METER_", "ELECTRICITY_MAPS_", "NESO_"))}
    env.update(ENERGY_LAKE_URI=str(state / "lake"), DAGSTER_HOME=str(home), ENERGY_DUCKDB_PATH=str(state / "energy.duckdb"), DAGSTER_DISABLE_TELEMETRY="1")
    result = subprocess.run([sys.executable, "-m", "energy_assets.cli", "demo"], env=env, cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return {"state": state, "lake": state / "lake", "db": state / "energy.duckdb", "home": home, "env": env, "stdout": result.stdout}


def copy_demo(demo_run: dict, target) -> dict:
    """A private copy of the shared demo's lake, serving file and instance, with the environment pointing at it."""
    import shutil

    shutil.copytree(demo_run["state"], target)
    env = {**demo_run["env"], "ENERGY_LAKE_URI": str(target / "lake"), "DAGSTER_HOME": str(target / "dagster_home"),
           "ENERGY_DUCKDB_PATH": str(target / "energy.duckdb")}  # fmt: skip
    return {**demo_run, "state": target, "lake": target / "lake", "db": target / "energy.duckdb", "home": target / "dagster_home", "env": env}
