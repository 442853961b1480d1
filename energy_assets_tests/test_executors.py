"""ENERGY_ASSETS_EXECUTOR: the default runs every step of a launched run in the run's process; `multiprocess` is
Dagster's own; `celery` sends steps to a broker whose URL stays in the environment. (The Celery executor itself
runs in energy_assets_tests/distributed/test_celery.py.)"""

import pytest
from dagster import in_process_executor

from energy_assets import executors, settings
from energy_assets.definitions import defs


def test_the_default_runs_every_step_in_the_run_process_and_multiprocess_is_dagsters_own():
    assert settings.graph().executor == "in_process"  # the suite runs with the default
    assert defs.executor is in_process_executor
    assert executors.build_executor("in_process") is in_process_executor
    assert executors.build_executor("multiprocess") is None  # Dagster's default executor


def test_a_launched_run_of_the_code_locations_job_executes_its_steps_in_the_run_process(tmp_path, monkeypatch):
    """What the UI does: a run launched for the job (not `execute_in_process`), here one sample day of the NESO
    bronze table and its check; every step runs in the run's own process, none in a step subprocess."""
    import os

    from dagster import AssetKey, DagsterEventType, DagsterInstance, execute_job, reconstructable

    from energy_assets.settings import SAMPLE_DAYS
    from energy_assets_tests.distributed._backfill import uk_days_job

    monkeypatch.setenv("ENERGY_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "replay")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = execute_job(
            reconstructable(uk_days_job), instance=instance, tags={"dagster/partition": SAMPLE_DAYS[0]},
            asset_selection=[AssetKey(["bronze", "neso_carbon_intensity"])],
        )
        assert result.success
        events = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event is not None]
    started = [e for e in events if e.event_type == DagsterEventType.STEP_START]
    assert {e.step_key for e in started} == {"bronze__neso_carbon_intensity", "bronze__neso_carbon_intensity_bronze_neso_carbon_intensity_latest_fetch_usable"}
    assert not [e for e in events if e.event_type == DagsterEventType.STEP_WORKER_STARTING]
    assert {e.pid for e in started} == {os.getpid()}


@pytest.mark.parametrize("value", ["celery", " Celery ", "in-process", "MULTIPROCESS"])
def test_the_setting_is_parsed_leniently(value):
    assert settings.parse_executor(value) in settings.EXECUTORS


def test_an_unknown_executor_is_refused_with_the_variable_named():
    with pytest.raises(settings.SettingError, match="ENERGY_ASSETS_EXECUTOR"):
        settings.parse_executor("k8s")


def test_celery_broker_and_backend_are_env_references_when_set(monkeypatch):
    pytest.importorskip("dagster_celery", reason='pip install -e ".[distributed]"')
    monkeypatch.delenv("ENERGY_ASSETS_CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("ENERGY_ASSETS_CELERY_BACKEND_URL", raising=False)
    default = settings.SETTINGS["ENERGY_ASSETS_CELERY_BROKER_URL"].default
    assert executors.celery_config() == {"broker": default, "backend": default}
    monkeypatch.setenv("ENERGY_ASSETS_CELERY_BROKER_URL", "redis://:s3cret@broker:6379/0")
    config = executors.celery_config()
    assert config == {"broker": {"env": "ENERGY_ASSETS_CELERY_BROKER_URL"}, "backend": {"env": "ENERGY_ASSETS_CELERY_BROKER_URL"}}
    assert "s3cret" not in repr(config)
    monkeypatch.setenv("ENERGY_ASSETS_CELERY_BACKEND_URL", "redis://broker:6379/1")
    assert executors.celery_config()["backend"] == {"env": "ENERGY_ASSETS_CELERY_BACKEND_URL"}
    assert settings.celery_backend_url() == "redis://broker:6379/1"
    assert executors.build_executor("celery").name == "celery"
