"""The code location as users load it: `dagster definitions validate` and the webserver on workspace.yaml."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from energy_assets import settings


def _env(tmp_path):
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    env["ENERGY_LAKE_URI"] = str(tmp_path / "lake")
    os.makedirs(env["DAGSTER_HOME"], exist_ok=True)
    return env


def test_definitions_validate(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "energy_assets.definitions"],
        cwd=settings.PROJECT_ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_webserver_loads_the_workspace_with_every_asset(tmp_path):
    from energy_assets.definitions import defs

    port = _free_port()
    log = open(tmp_path / "webserver.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=settings.PROJECT_ROOT, env=_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        entries = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                data = _graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                                      "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
                entries = data["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            assert process.poll() is None, "the webserver exited early"
            time.sleep(1)
        assert entries, "the webserver never answered"
        assert entries[0]["name"] == "energy_assets"
        assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
        nodes = _graphql(port, "{ assetNodes { assetKey { path } } }")["data"]["assetNodes"]
        served = {"/".join(n["assetKey"]["path"]) for n in nodes}
        expected = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
        assert expected <= served
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.seek(0)
        output = log.read()
    assert "Error loading" not in output, output[-3000:]
