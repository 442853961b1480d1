"""Partitions line up with UK settlement days and settings fall back to working local defaults."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dagster import EnvVar

from energy_assets import partitions, settings


@pytest.mark.parametrize("day,half_hours", [("2021-03-27", 48), ("2021-03-28", 46), ("2021-10-31", 50), ("2021-07-01", 48)])
def test_uk_settlement_day_windows_hold_46_48_or_50_half_hours(day, half_hours):
    window = partitions.uk_settlement_days.time_window_for_partition_key(day)
    assert window.start.tzinfo is not None and window.start.utcoffset() is not None
    assert window.start.astimezone(ZoneInfo("Europe/London")).time() == dt.time(0, 0)
    # (aware datetimes sharing one ZoneInfo subtract by wall clock: compare in UTC)
    utc = dt.timezone.utc
    assert (window.end.astimezone(utc) - window.start.astimezone(utc)).total_seconds() == half_hours * 1800


def test_summer_uk_day_starts_at_23_00_utc_the_day_before():
    window = partitions.uk_settlement_days.time_window_for_partition_key("2021-07-01")
    assert window.start.astimezone(dt.timezone.utc) == dt.datetime(2021, 6, 30, 23, 0, tzinfo=dt.timezone.utc)


def test_electricity_maps_partitions_are_utc_days_by_zone(monkeypatch):
    keys = partitions.utc_day_by_zone.get_partition_keys(current_time=dt.datetime(2021, 1, 3, 12, tzinfo=dt.timezone.utc))
    assert "2021-01-01|GR" in keys
    # zones shape the graph: read once when the code location loads, so a later change needs a reload
    loaded = settings.graph()
    monkeypatch.setenv("ELECTRICITY_MAPS_ZONES", "GR, DE,FR")
    assert settings.graph() is loaded
    settings.graph.cache_clear()
    try:
        assert settings.graph().electricity_maps_zones == ("GR", "DE", "FR")
        monkeypatch.setenv("ELECTRICITY_MAPS_ZONES", "GR,x' OR 1=1")
        settings.graph.cache_clear()
        with pytest.raises(settings.SettingError, match="ELECTRICITY_MAPS_ZONES: .* is not a zone key"):
            settings.graph()
    finally:
        monkeypatch.undo()
        settings.graph.cache_clear()
    assert settings.graph().electricity_maps_zones == loaded.electricity_maps_zones


def test_lake_uri_defaults_to_data_lake_and_accepts_object_store_uris(monkeypatch, tmp_path):
    monkeypatch.delenv("ENERGY_LAKE_URI", raising=False)
    assert settings.lake_uri() == str(settings.PROJECT_ROOT / "data" / "lake")
    monkeypatch.setenv("ENERGY_LAKE_URI", "s3://bucket/lake")
    assert settings.lake_uri() == "s3://bucket/lake"
    monkeypatch.setenv("ENERGY_LAKE_URI", str(tmp_path / "rel" / ".." / "lake"))
    assert settings.lake_uri() == str(tmp_path / "lake")


def test_env_var_passes_set_variables_as_envvar(monkeypatch):
    monkeypatch.delenv("ENERGY_ASSETS_SOURCE", raising=False)
    assert settings.env_var("ENERGY_ASSETS_SOURCE") == "live"
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "replay")
    value = settings.env_var("ENERGY_ASSETS_SOURCE")
    assert isinstance(value, EnvVar) and value.env_var_name == "ENERGY_ASSETS_SOURCE"


def test_renamed_variables_are_still_read_with_a_warning_naming_the_new_one(monkeypatch):
    monkeypatch.delenv("ENERGY_LAKE_VACUUM_RETENTION_HOURS", raising=False)
    monkeypatch.setenv("LAKE_VACUUM_RETENTION_HOURS", "12")
    with pytest.warns(DeprecationWarning, match="ENERGY_LAKE_VACUUM_RETENTION_HOURS"):
        assert settings.vacuum_retention_hours() == 12


def test_unregistered_names_and_bad_values_are_refused(monkeypatch):
    with pytest.raises(KeyError, match="NOT_A_SETTING is not a setting"):
        settings.get("NOT_A_SETTING")
    monkeypatch.setenv("SMART_METER_CHUNK_DAYS", "a week")
    with pytest.raises(settings.SettingError, match="SMART_METER_CHUNK_DAYS must be a whole number, not 'a week'"):
        settings.smart_meter_chunk_days()
    monkeypatch.setenv("ENERGY_LAKE_STORAGE_OPTIONS", "[1, 2]")
    with pytest.raises(settings.SettingError, match="ENERGY_LAKE_STORAGE_OPTIONS must be a JSON object"):
        settings.lake_storage_options()


def test_source_mode_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "fixtures")
    with pytest.raises(ValueError, match="ENERGY_ASSETS_SOURCE"):
        settings.source_mode()
