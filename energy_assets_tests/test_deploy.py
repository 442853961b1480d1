"""The deployment files match the code: deploy/Dockerfile and deploy/helm/values.yaml (Dagster's Helm chart).

They are not deployed here (no cluster, no image build); this test parses them and checks every name they share
with the code: the module the code server serves, the package the image installs, every environment variable,
the Secret holding the Electricity Maps key.
"""

import importlib
import re
import shlex

import pytest
import yaml
from dagster import Definitions

from energy_assets import settings
from energy_assets.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
SECRET = yaml.safe_load((DEPLOY / "helm" / "secret.example.yaml").read_text())
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
# variables delta-rs / object_store read themselves (README, "The lake on object storage")
STANDARD_AWS = {"AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ALLOW_HTTP", "AWS_PROFILE"}
SECRET_SETTINGS = {"ELECTRICITY_MAPS_API_KEY"}


def _deployment() -> dict:
    deployments = VALUES["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    return deployments[0]


def _module_of(args: list[str]) -> str:
    flag = next(i for i, a in enumerate(args) if a in ("-m", "--module-name"))
    return args[flag + 1]


def test_the_code_server_serves_the_module_that_defines_defs():
    deployment = _deployment()
    assert VALUES["dagster-user-deployments"]["enabled"] is True
    module = importlib.import_module(_module_of(deployment["dagsterApiGrpcArgs"]))
    assert isinstance(module.defs, Definitions)
    assert module.__name__ == "energy_assets.definitions"
    assert deployment["port"] == 3030


def test_every_environment_variable_is_a_setting_or_a_standard_aws_variable():
    deployment = _deployment()
    names = set(deployment["env"])
    names |= {entry.split("=", 1)[0] for entry in VALUES["runLauncher"]["config"]["k8sRunLauncher"].get("envVars", [])}
    commented = set(re.findall(r"#\s*([A-Z][A-Z0-9_]+):", (DEPLOY / "helm" / "values.yaml").read_text()))
    unknown = sorted(n for n in names | commented if n not in settings.SETTINGS and n not in STANDARD_AWS)
    assert not unknown, f"not settings of energy_assets.settings: {unknown}"
    assert "ENERGY_LAKE_URI" in names and deployment["env"]["ENERGY_LAKE_URI"].startswith("s3://")
    # graph-shaping values parse as the code location would parse them
    assert settings.parse_executor(deployment["env"]["ENERGY_ASSETS_EXECUTOR"]) in settings.EXECUTORS
    assert settings.parse_zones(deployment["env"]["ELECTRICITY_MAPS_ZONES"])
    # no secret in the values: the key and credentials come from the Secret only
    assert not names & (SECRET_SETTINGS | {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"})


def test_the_electricity_maps_key_comes_from_the_secret_the_pods_mount():
    deployment = _deployment()
    name = SECRET["metadata"]["name"]
    assert SECRET["kind"] == "Secret"
    assert {"name": name} in deployment["envSecrets"]
    assert {"name": name} in VALUES["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    keys = set(SECRET["stringData"])
    assert SECRET_SETTINGS <= keys
    assert all(k in settings.SETTINGS or k in STANDARD_AWS for k in keys), keys


def test_the_run_launcher_is_the_k8s_one_and_runs_queue_with_the_instances_limits():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert VALUES["postgresql"]["enabled"] in (True, False)
    instance = yaml.safe_load((DEPLOY / "dagster-postgres.yaml").read_text())
    queued = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert queued["dequeueIntervalSeconds"] == instance["run_queue"]["dequeue_interval_seconds"] == 1


def test_the_postgres_instance_uses_the_projects_event_log_on_the_same_database():
    """deploy/dagster-postgres.yaml: runs and schedules are dagster-postgres's, the event log is the project's
    subclass (energy_assets/postgres_storage.py), all three on the same connection settings."""
    pytest.importorskip("dagster_postgres", reason="dagster-postgres (the production instance's storage) is not installed")
    import dagster_postgres

    instance = yaml.safe_load((DEPLOY / "dagster-postgres.yaml").read_text())
    assert "storage" not in instance  # the combined `storage: postgres:` cannot name another event log class
    expected = {
        "run_storage": dagster_postgres.PostgresRunStorage,
        "event_log_storage": dagster_postgres.PostgresEventLogStorage,
        "schedule_storage": dagster_postgres.PostgresScheduleStorage,
    }
    for section, base in expected.items():
        cls = getattr(importlib.import_module(instance[section]["module"]), instance[section]["class"])
        assert issubclass(cls, base), section
        assert instance[section]["config"] == instance["run_storage"]["config"], section
    assert instance["event_log_storage"]["module"] == "energy_assets.postgres_storage"
    assert instance["run_storage"]["config"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_the_dockerfile_installs_this_package_and_serves_the_same_module():
    lines = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    copied = [shlex.split(line)[1:-1] for line in lines if line.startswith("COPY ")]
    assert ["energy_assets"] in copied and ["setup.py", "pyproject.toml", "README.md"] in copied
    install = next(shlex.split(line)[1:] for line in lines if line.startswith("RUN pip install"))
    extras = re.fullmatch(r"\.\[([a-z0-9,]+)\]", install[-1])
    assert extras, install
    import ast

    setup_call = ast.parse((PROJECT_ROOT / "setup.py").read_text()).body[-1].value
    kw = {k.arg: k.value for k in setup_call.keywords}
    assert ast.literal_eval(kw["name"]) == "energy_assets"
    declared = ast.literal_eval(kw["extras_require"])
    for extra in extras.group(1).split(","):
        assert extra in declared, extra
    assert any(r.startswith("dagster-k8s") for r in declared["k8s"]) and any(r.startswith("dagster-postgres") for r in declared["k8s"])
    cmd = next(line for line in lines if line.startswith("CMD "))
    command = yaml.safe_load(cmd[4:])  # the exec form is a JSON list
    assert command[:3] == ["dagster", "api", "grpc"]
    assert _module_of(command) == _module_of(_deployment()["dagsterApiGrpcArgs"])
