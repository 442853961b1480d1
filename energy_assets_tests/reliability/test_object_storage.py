"""The lake on object storage: `ENERGY_LAKE_URI=s3://...` against a local S3-compatible server (moto).

Environment variables configure it, as in a deployment: a default `LakeResource()` reads `ENERGY_LAKE_URI`
when a run starts; delta-rs and polars read `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION` and `AWS_ALLOW_HTTP` themselves (or `ENERGY_LAKE_STORAGE_OPTIONS` as JSON). The storage options
may also be given to the `LakeResource` itself. Commits use S3 conditional puts (`If-None-Match: *`), which
delta-rs 1.x does by default, so concurrent writers are safe without a lock table.
"""

import datetime as dt
import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import polars as pl
import pytest
from dagster import AssetCheckSeverity, AssetExecutionContext, AssetIn, BackfillPolicy, DagsterInstance, asset, materialize

from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets_tests.reliability._workers import DAYS, KEYS_PER_DAY, materialize_day
from energy_assets_tests.reliability.s3_server import list_keys, s3_endpoint, s3_lake  # noqa: F401

RANGE = {"dagster/asset_partition_range_start": "2024-01-02", "dagster/asset_partition_range_end": "2024-01-04"}


def read(uri: str) -> pl.DataFrame:
    return pl.read_delta(uri)


@asset(key_prefix="silver", partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
def daily(context: AssetExecutionContext) -> pl.DataFrame:
    start, end = (t.date() for t in context.partition_time_window)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    return pl.DataFrame({"day": days, "value": [int(context.run.tags.get("v", "1"))] * len(days)})


seen: dict[str, int] = {}


@asset(key_prefix="presentation", ins={"daily": AssetIn(key=["silver", "daily"])})
def all_days(daily: pl.DataFrame) -> pl.DataFrame:
    seen["rows"] = daily.height
    return daily.select(pl.len().alias("days"))


def keyed(context: AssetExecutionContext) -> pl.DataFrame:
    batch = int(context.run.tags["batch"])
    day = dt.date.fromisoformat(context.partition_key)
    rows = {1: [(1, 10, 1), (2, 20, 1)], 2: [(2, 21, 2), (3, 30, 2)]}[batch]
    return pl.DataFrame(
        {"day": [day] * len(rows), "period": [r[0] for r in rows], "mw": [r[1] for r in rows], "fetched": [r[2] for r in rows]}
    )


@asset(key_prefix="silver", partitions_def=DAYS, metadata={"partition_expr": "day", "write_mode": "merge", "merge_keys": ["period"], "merge_order_by": "fetched"})
def merged(context: AssetExecutionContext) -> pl.DataFrame:
    return keyed(context)


@asset(key_prefix="bronze", partitions_def=DAYS, metadata={"partition_expr": "day", "write_mode": "append", "merge_keys": ["period", "fetched"]})
def appended(context: AssetExecutionContext) -> pl.DataFrame:
    return keyed(context)


def lake_io_manager(lake: LakeResource | None = None) -> DeltaLakeIOManager:
    """The code location's wiring: one `LakeResource` (default: from the environment) under the IO manager."""
    return DeltaLakeIOManager(lake=lake or LakeResource())


def test_partitioned_writes_reads_merge_and_append_on_s3(s3_lake, s3_endpoint):
    io = lake_io_manager()
    assert io.lake.lake().root == s3_lake  # configured from ENERGY_LAKE_URI alone
    instance = DagsterInstance.ephemeral()

    assert materialize([daily], resources={"io_manager": io}, instance=instance, partition_key="2024-01-06").success
    for v in ("1", "2"):  # a single-run range, twice: overwrites exactly its partitions
        assert materialize([daily], resources={"io_manager": io}, instance=instance, tags={**RANGE, "v": v}).success
    table = read(f"{s3_lake}/silver/daily").sort("day")
    assert table["day"].cast(pl.String).to_list() == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-06"]
    assert table["value"].to_list() == [2, 2, 2, 1]

    result = materialize([daily, all_days], selection=[all_days], resources={"io_manager": io}, instance=instance)
    assert result.success and seen["rows"] == 4
    meta = result.asset_materializations_for_node("presentation__all_days")[0].metadata
    assert meta["dagster/uri"].value == f"{s3_lake}/presentation/all_days"

    for batch in ("1", "2", "2"):
        assert materialize([merged, appended], resources={"io_manager": io}, instance=instance, partition_key="2024-01-05", tags={"batch": batch}).success
    assert read(f"{s3_lake}/silver/merged").sort("period").select("period", "mw").rows() == [(1, 10), (2, 21), (3, 30)]
    assert read(f"{s3_lake}/bronze/appended").height == 4  # insert-only on (period, fetched): the repeat adds nothing

    prefix = s3_lake.split("/", 3)[3]
    keys = list_keys(s3_endpoint, prefix)
    assert any(k.endswith(".parquet") for k in keys) and any("/_delta_log/" in k for k in keys)


def test_storage_options_may_come_from_energy_lake_storage_options(s3_lake, s3_endpoint, monkeypatch):
    options = {k: __import__("os").environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP")}
    for key in options:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ENERGY_LAKE_STORAGE_OPTIONS", json.dumps(options))
    io = lake_io_manager()
    assert materialize([daily], resources={"io_manager": io}, instance=DagsterInstance.ephemeral(), partition_key="2024-01-07").success
    assert pl.read_delta(f"{s3_lake}/silver/daily", storage_options=options).height == 1


def test_storage_options_given_to_the_lake_resource_write_and_read_through_the_io_manager(s3_lake, s3_endpoint, monkeypatch):
    """No AWS_* variable and no ENERGY_LAKE_URI: root and storage options come from the resource alone."""
    options = {k: __import__("os").environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP")}
    for key in (*options, "ENERGY_LAKE_URI", "ENERGY_LAKE_STORAGE_OPTIONS"):
        monkeypatch.delenv(key, raising=False)
    io = lake_io_manager(LakeResource(root_uri=s3_lake, storage_options=options))
    instance = DagsterInstance.ephemeral()
    for v in ("1", "2"):
        assert materialize([daily], resources={"io_manager": io}, instance=instance, tags={**RANGE, "v": v}).success
    result = materialize([daily, all_days], selection=[all_days], resources={"io_manager": io}, instance=instance)
    assert result.success and seen["rows"] == 3
    meta = result.asset_materializations_for_node("presentation__all_days")[0].metadata
    assert meta["dagster/uri"].value == f"{s3_lake}/presentation/all_days"
    table = pl.read_delta(f"{s3_lake}/silver/daily", storage_options=options).sort("day")
    assert table["day"].cast(pl.String).to_list() == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert table["value"].to_list() == [2, 2, 2]
    prefix = s3_lake.split("/", 3)[3]
    assert any(k.endswith(".parquet") and "/silver/daily/" in k for k in list_keys(s3_endpoint, prefix))


@pytest.fixture
def s3_pool(s3_lake):
    # spawned after the fixture set the environment: the workers see the same lake and credentials
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=3, mp_context=ctx) as executor:
        yield executor, manager


def test_concurrent_runs_on_s3_all_land_without_duplicates(s3_lake, s3_pool):
    executor, manager = s3_pool
    assert materialize_day(s3_lake, "overwrite", "2024-01-10", 0)["success"]

    def parallel(days, values):
        barrier = manager.Barrier(len(days))
        futures = [executor.submit(materialize_day, s3_lake, "overwrite", d, v, barrier) for d, v in zip(days, values, strict=True)]
        results = [f.result(timeout=180) for f in futures]
        assert all(r["success"] for r in results), [r["error"] for r in results]
        return results

    parallel(["2024-01-11", "2024-01-12", "2024-01-13"], [1, 2, 3])
    same = parallel(["2024-01-10"] * 3, [4, 5, 6])
    assert max(r["commit_attempts"] for r in same) > 1  # the conflicts happened on S3 too

    table = read(f"{s3_lake}/silver/readings")
    assert table.group_by("day", "key").len()["len"].max() == 1
    per_day = dict(table.group_by(pl.col("day").cast(pl.String)).agg(pl.col("value").unique()).rows())
    assert {d: sorted(v) for d, v in per_day.items() if d != "2024-01-10"} == {"2024-01-11": [1], "2024-01-12": [2], "2024-01-13": [3]}
    assert len(per_day["2024-01-10"]) == 1 and per_day["2024-01-10"][0] in (4, 5, 6)
    assert table.height == 4 * KEYS_PER_DAY


def test_maintenance_job_compacts_and_vacuums_tables_on_s3(s3_lake, s3_endpoint, monkeypatch, tmp_path):
    from energy_assets_tests.lake.test_maintenance import polls
    from energy_assets_tests.reliability._workers import run_maintenance_from_code_location

    io = lake_io_manager()
    for poll in range(4):
        assert materialize([polls], resources={"io_manager": io}, instance=DagsterInstance.ephemeral(), partition_key="2024-01-02", tags={"poll": str(poll)}).success
    uri = f"{s3_lake}/bronze/polls"
    before = read(uri).sort("poll", "reading")
    prefix = uri.split("/", 3)[3] + "/"

    def data_files() -> int:
        return sum(k.endswith(".parquet") and "/_delta_log/" not in k for k in list_keys(s3_endpoint, prefix))

    assert data_files() == 4
    monkeypatch.setenv("LAKE_VACUUM_RETENTION_HOURS", "0")
    monkeypatch.setenv("LAKE_VACUUM_ENFORCE_RETENTION", "false")
    # an object-store lake is listed from the code location's asset keys
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        result = run_maintenance_from_code_location(instance)
        assert result.success
        observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        assert [e.event_specific_data.asset_observation.asset_key.path for e in observed] == [["bronze", "polls"]]
        meta = observed[0].event_specific_data.asset_observation.metadata
        assert (meta["files_before"].value, meta["files_after"].value) == (4, 1)
    assert data_files() == 1
    assert read(uri).sort("poll", "reading").equals(before)


@pytest.mark.slow
def test_the_uk_days_pipeline_runs_on_s3_and_writes_every_table_of_the_job_there(s3_lake, s3_endpoint, monkeypatch):
    """The project's real uk_days_job (replayed sources, sample days) with the lake on S3: every check passes and
    every table of the job is on S3 with rows, found by listing the bucket through delta-rs (as maintenance and
    serving find them). Re-running on S3 without duplicates and maintenance on S3 have their own tests above;
    the Celery test (energy_assets_tests/distributed) runs NESO and smart-meter backfills on S3 again."""
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "replay")
    from energy_assets import definitions
    from energy_assets.lake.store import Lake
    from energy_assets.settings import SAMPLE_DAYS

    defs = definitions.build_definitions()  # resources read ENERGY_LAKE_URI now
    instance = DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": SAMPLE_DAYS[0], "dagster/asset_partition_range_end": SAMPLE_DAYS[-1]}
    result = defs.get_job_def("uk_days_job").execute_in_process(instance=instance, tags=tags)
    assert result.success
    checks = result.get_asset_check_evaluations()
    # the replayed forecast archive holds 4 issues a day on purpose, so its capture-rate check warns; all else passes
    failed = [c for c in checks if not c.passed]
    assert checks and {c.check_name for c in failed} <= {"capture_rate"}, [c.check_name for c in failed]
    assert all(c.severity == AssetCheckSeverity.WARN for c in failed)

    lake = Lake.from_settings()  # the bucket prefix of ENERGY_LAKE_URI, listed through delta-rs's object store
    assert lake.root == s3_lake
    rows = {ref.name: lake.scan((ref.layer, ref.table)).select(pl.len()).collect().item() for ref in lake.tables()}
    # every table the job writes is on S3 (asset keys [layer, table]); the lake holds no other table
    job_keys = {k.to_user_string() for k in defs.get_job_def("uk_days_job").asset_layer.executable_asset_keys}
    assert set(rows) == job_keys, set(rows) ^ job_keys
    written = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert written == job_keys
    empty_by_design = {k for k in rows if k.endswith("quarantine")}  # the samples have no unusable rows
    assert all(rows[k] > 0 for k in rows.keys() - empty_by_design), {k: v for k, v in rows.items() if v == 0}


def test_smart_meter_self_reads_use_the_lake_resource_options_on_s3(s3_lake, monkeypatch, tmp_path):
    """The smart-meter ingestion reads its own log and raw rows back through the one lake resource: with no AWS_*
    variable set, only the resource's options can reach the bucket. A re-run reads nothing again (it found the
    log on S3) and leaves every table as it was."""
    from dagster_duckdb import DuckDBResource

    from energy_assets.smart_meter.source import SmartMeterSource
    from energy_assets_tests.smart_meter.test_assets import meta, run, small_drop

    options = {k: __import__("os").environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP")}
    for key in (*options, "ENERGY_LAKE_URI", "ENERGY_LAKE_STORAGE_OPTIONS"):
        monkeypatch.delenv(key, raising=False)
    drop = {"readings": tmp_path / "readings", "db": tmp_path / "case_study.db"}
    drop["readings"].mkdir()
    small_drop(drop)
    lake = LakeResource(root_uri=s3_lake, storage_options=options)
    resources = {
        "lake": lake,
        "io_manager": DeltaLakeIOManager(lake=lake),
        "smart_meter": SmartMeterSource(readings_dir=str(drop["readings"]), db_path=str(drop["db"])),
        "smart_meter_duckdb": DuckDBResource(database=":memory:"),
    }
    instance = DagsterInstance.ephemeral()
    first = run(resources, instance, "2021-03-26", "2021-03-27")
    assert meta(first, "raw/smart_meter_readings")["files_read"] == 3
    silver = pl.read_delta(f"{s3_lake}/silver/smart_meter_readings", storage_options=options)
    second = run(resources, instance, "2021-03-26", "2021-03-27")
    assert meta(second, "raw/smart_meter_readings")["files_read"] == 0
    again = pl.read_delta(f"{s3_lake}/silver/smart_meter_readings", storage_options=options)
    assert again.sort(again.columns).equals(silver.sort(silver.columns)) and silver.height == 3 * 2 * 48
