"""ENERGY_ASSETS_EXECUTOR: the default keeps Dagster's own executor; `celery` sends steps to a broker whose URL
stays in the environment. (The Celery executor itself runs in energy_assets_tests/distributed/test_celery.py.)"""

import pytest
from dagster import in_process_executor

from energy_assets import executors, settings
from energy_assets.definitions import defs


def test_the_default_leaves_the_code_location_on_dagsters_default_executor():
    assert settings.graph().executor == "multiprocess"  # the suite runs with the default
    assert executors.build_executor("multiprocess") is None
    assert defs.executor is None
    assert executors.build_executor("in_process") is in_process_executor


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
