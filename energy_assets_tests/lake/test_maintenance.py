"""The lake maintenance job: compaction and vacuum make the file count fall and leave the data unchanged."""

import datetime as dt
import os

import polars as pl
import pytest
from dagster import AssetExecutionContext, DagsterInstance, DailyPartitionsDefinition, Definitions, asset, materialize
from deltalake import DeltaTable

from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.lake.store import Lake
from energy_assets.maintenance.definitions import LakeMaintenance, lake_maintenance_job
from energy_assets.maintenance.tables import VacuumSettings, table_retention_hours

days = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-31", timezone="Europe/London")


@asset(key_prefix="bronze", partitions_def=days, metadata={"partition_expr": "day", "write_mode": "append"})
def polls(context: AssetExecutionContext) -> pl.DataFrame:
    """One small file per poll, as a bronze table gets."""
    poll = int(context.run.tags["poll"])
    return pl.DataFrame({"day": [dt.date.fromisoformat(context.partition_key)] * 3, "poll": [poll] * 3, "reading": [poll * 10 + i for i in range(3)]})


@asset(key_prefix="silver", partitions_def=days, metadata={"partition_expr": "day"})
def daily(context: AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"day": [dt.date.fromisoformat(context.partition_key)], "version": [int(context.run.tags["poll"])]})


POLL_DAYS = ("2024-01-02", "2024-01-03")
POLLS = 6


def build_lake(root) -> dict[str, pl.DataFrame]:
    io = DeltaLakeIOManager(lake=LakeResource(root_uri=str(root)))
    instance = DagsterInstance.ephemeral()
    for poll in range(POLLS):
        for day in POLL_DAYS:
            assert materialize([polls], resources={"io_manager": io}, instance=instance, partition_key=day, tags={"poll": str(poll)}).success
    for version in range(3):  # each overwrite leaves the replaced file behind for time travel
        assert materialize([daily], resources={"io_manager": io}, instance=instance, partition_key="2024-01-02", tags={"poll": str(version)}).success
    return contents(root)


def contents(root) -> dict[str, pl.DataFrame]:
    return {
        "bronze/polls": pl.read_delta(str(root / "bronze" / "polls")).sort("day", "poll", "reading"),
        "silver/daily": pl.read_delta(str(root / "silver" / "daily")).sort("day"),
    }


def parquet_on_disk(path) -> int:
    """Data files (checkpoints in _delta_log are parquet too, but not data)."""
    return sum(f.endswith(".parquet") for d, _, files in os.walk(path) for f in files if "_delta_log" not in d)


def active_files(path) -> int:
    return len(DeltaTable(str(path)).file_uris())


DEFAULT_VACUUM = {"vacuum_retention_hours": 168, "enforce_retention_duration": True}


def run_maintenance(root, **settings):
    lake = LakeResource(root_uri=str(root))
    defs = Definitions(
        assets=[polls, daily],
        jobs=[lake_maintenance_job],
        resources={"lake": lake, "io_manager": DeltaLakeIOManager(lake=lake), "lake_maintenance": LakeMaintenance(**{**DEFAULT_VACUUM, **settings})},
    )
    return defs.get_job_def("lake_maintenance_job").execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)


def observations(result) -> dict[str, dict]:
    return {
        "/".join(e.event_specific_data.asset_observation.asset_key.path): {
            k: v.value for k, v in e.event_specific_data.asset_observation.metadata.items()
        }
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }


def test_default_retention_compacts_and_keeps_recent_history(tmp_path):
    before = build_lake(tmp_path)
    bronze = tmp_path / "bronze" / "polls"
    assert active_files(bronze) == POLLS * len(POLL_DAYS)
    version_before = DeltaTable(str(bronze)).version()

    result = run_maintenance(tmp_path)  # 168 h, enforced: nothing younger than a week is deleted
    assert result.success
    seen = observations(result)
    assert seen["bronze/polls"]["files_before"] == POLLS * len(POLL_DAYS)
    assert seen["bronze/polls"]["files_after"] == len(POLL_DAYS)  # one file per partition
    assert seen["bronze/polls"]["files_vacuumed"] == 0
    assert seen["silver/daily"]["files_after"] == 1
    assert active_files(bronze) == len(POLL_DAYS)
    after = contents(tmp_path)
    for name, frame in before.items():
        assert after[name].equals(frame), name
    # the replaced small files are still there: a reader of the version before compaction still works
    assert pl.read_delta(str(bronze), version=version_before).height == before["bronze/polls"].height


def test_short_retention_with_explicit_opt_out_deletes_replaced_and_orphaned_files(tmp_path):
    before = build_lake(tmp_path)
    bronze = tmp_path / "bronze" / "polls"
    orphan = bronze / "day=2024-01-02" / "part-from-a-killed-write.parquet"
    orphan.write_bytes(b"not referenced by any commit")
    on_disk_before = parquet_on_disk(bronze)

    result = run_maintenance(tmp_path, vacuum_retention_hours=0, enforce_retention_duration=False)
    assert result.success
    # every file from before (the small ones, now compacted, and the orphan) is gone; only the compacted remain
    assert observations(result)["bronze/polls"]["files_vacuumed"] == on_disk_before
    assert parquet_on_disk(bronze) == len(POLL_DAYS) < on_disk_before
    assert not orphan.exists()
    assert parquet_on_disk(tmp_path / "silver" / "daily") == 1
    after = contents(tmp_path)
    for name, frame in before.items():
        assert after[name].equals(frame), name


def test_retention_below_the_tables_minimum_is_refused_unless_opted_out(tmp_path):
    before = build_lake(tmp_path)
    on_disk = parquet_on_disk(tmp_path)
    result = run_maintenance(tmp_path, vacuum_retention_hours=24)
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "bronze/polls" in error and "silver/daily" in error
    assert "24 h" in error and "168 h" in error and "LAKE_VACUUM_ENFORCE_RETENTION" in error
    assert parquet_on_disk(tmp_path) == on_disk
    after = contents(tmp_path)
    for name, frame in before.items():
        assert after[name].equals(frame), name


def test_unset_vacuum_settings_are_read_from_the_environment_when_the_run_starts(tmp_path, monkeypatch):
    build_lake(tmp_path)
    on_disk = parquet_on_disk(tmp_path)
    maintenance = LakeMaintenance()  # built before the variables are set, as the code location's is
    monkeypatch.setenv("ENERGY_LAKE_VACUUM_RETENTION_HOURS", "24")
    monkeypatch.delenv("ENERGY_LAKE_VACUUM_ENFORCE_RETENTION", raising=False)
    monkeypatch.delenv("LAKE_VACUUM_ENFORCE_RETENTION", raising=False)
    lake = LakeResource(root_uri=str(tmp_path))
    defs = Definitions(jobs=[lake_maintenance_job], resources={"lake": lake, "lake_maintenance": maintenance})
    result = defs.get_job_def("lake_maintenance_job").execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    assert "vacuum retention 24 h is shorter" in str(result.get_step_failure_events()[0].event_specific_data.error)
    assert parquet_on_disk(tmp_path) == on_disk


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv("LAKE_VACUUM_RETENTION_HOURS", raising=False)
    monkeypatch.delenv("LAKE_VACUUM_ENFORCE_RETENTION", raising=False)
    assert VacuumSettings.from_env() == VacuumSettings(168, True)
    monkeypatch.setenv("LAKE_VACUUM_RETENTION_HOURS", "240")
    monkeypatch.setenv("LAKE_VACUUM_ENFORCE_RETENTION", "false")
    assert VacuumSettings.from_env() == VacuumSettings(240, False)
    monkeypatch.setenv("LAKE_VACUUM_RETENTION_HOURS", "a week")
    with pytest.raises(ValueError, match="LAKE_VACUUM_RETENTION_HOURS"):
        VacuumSettings.from_env()


def test_discovery_lists_local_tables_and_known_keys_only_when_they_exist(tmp_path):
    build_lake(tmp_path)
    (tmp_path / "gold" / "not_a_table").mkdir(parents=True)
    names = [t.name for t in Lake(str(tmp_path)).tables(known=[["gold", "missing"], ["silver", "daily"]])]
    assert names == ["bronze/polls", "silver/daily"]
    assert table_retention_hours(DeltaTable(str(tmp_path / "silver" / "daily"))) == 168


def test_maintain_command_compacts_and_reports_every_table(tmp_path, capsys, monkeypatch):
    from energy_assets.maintenance.cli import main

    monkeypatch.delenv("LAKE_VACUUM_RETENTION_HOURS", raising=False)
    monkeypatch.delenv("LAKE_VACUUM_ENFORCE_RETENTION", raising=False)
    before = build_lake(tmp_path)
    assert main(["--lake", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 Delta tables" in out and f"| bronze/polls | {POLLS * len(POLL_DAYS)} | {len(POLL_DAYS)} |" in out
    after = contents(tmp_path)
    for name, frame in before.items():
        assert after[name].equals(frame), name
    assert main(["--lake", str(tmp_path), "--retention-hours", "1"]) == 1  # below the tables' 168 h, enforced
    assert "LAKE_VACUUM_ENFORCE_RETENTION" in capsys.readouterr().err
