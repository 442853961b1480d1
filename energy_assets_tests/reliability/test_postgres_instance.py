"""The production Dagster instance: deploy/dagster-postgres.yaml on a real PostgreSQL server.

A throwaway server is started on a loopback port (see postgres_server.py); the instance is loaded from the
shipped YAML exactly as `DAGSTER_HOME` would load it, with the connection from DAGSTER_PG_* variables.
"""

import datetime as dt
import multiprocessing as mp
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, DagsterInstance, asset, materialize

from energy_assets.instance_storage import latest_materialization_targets
from energy_assets.lake.io_manager import DeltaLakeIOManager

from energy_assets.lake.resource import LakeResource
from energy_assets.range_checks import latest_materializations
from energy_assets.settings import PROJECT_ROOT
from energy_assets_tests.reliability._workers import DAYS, materialize_pooled
from energy_assets_tests.reliability.postgres_server import postgres  # noqa: F401

pytest.importorskip("dagster_postgres", reason="dagster-postgres (the production instance's storage) is not installed")

DEPLOY_YAML = PROJECT_ROOT / "deploy" / "dagster-postgres.yaml"


@pytest.fixture
def pg_home(postgres, tmp_path, monkeypatch):
    """A DAGSTER_HOME holding the shipped production dagster.yaml, pointed at the test server."""
    # a fresh database per test, so tests do not see each other's runs
    database = postgres.create_database(f"dagster_{tmp_path.name.lower().replace('-', '_')}"[:60])
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    env = {**postgres.env(), "DAGSTER_PG_DB": database}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return home, env


@asset(key_prefix="silver", partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
def daily(context: AssetExecutionContext) -> pl.DataFrame:
    start, end = (t.date() for t in context.partition_time_window)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    return pl.DataFrame({"day": days, "value": list(range(len(days)))})


def test_partitioned_materialisation_on_the_postgres_instance(pg_home, tmp_path, postgres):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    from energy_assets import postgres_storage

    home, env = pg_home
    io = DeltaLakeIOManager(lake=LakeResource(root_uri=str(tmp_path / "lake")))
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        # the project's event log (an atomic pool-slot claim), a dagster-postgres event log in every other way
        assert type(instance.event_log_storage) is postgres_storage.PostgresEventLogStorage
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        tags = {"dagster/asset_partition_range_start": "2024-01-02", "dagster/asset_partition_range_end": "2024-01-04"}
        assert materialize([daily], resources={"io_manager": io}, instance=instance, tags=tags).success
        assert materialize([daily], resources={"io_manager": io}, instance=instance, partition_key="2024-01-08").success
        # range checks read their targets from the index columns; on PostgreSQL the same as Dagster's records
        days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-08", "2024-01-09"]
        targets = latest_materialization_targets(instance, daily.key, days)
        records = latest_materializations(instance, daily.key, days)
        assert sorted(targets) == sorted(records) == days[:4]
        for day, (storage_id, run_id, at) in targets.items():
            assert (storage_id, run_id) == (records[day].storage_id, records[day].run_id) and abs(at - records[day].timestamp) < 1e-5

    # a second process (webserver, daemon) opening the same instance sees the history
    with DagsterInstance.from_config(str(home)) as reopened:
        assert len(reopened.get_runs()) == 2
        assert reopened.get_materialized_partitions(AssetKey(["silver", "daily"])) == {"2024-01-02", "2024-01-03", "2024-01-04", "2024-01-08"}
    # ... and so does one with dagster-postgres's stock event log (what the YAML's comment offers as the way back)
    stock_home = tmp_path / "stock_home"
    stock_home.mkdir()
    stock_yaml = (home / "dagster.yaml").read_text()
    assert "module: energy_assets.postgres_storage" in stock_yaml
    (stock_home / "dagster.yaml").write_text(stock_yaml.replace("module: energy_assets.postgres_storage", "module: dagster_postgres.event_log"))
    with DagsterInstance.from_config(str(stock_home)) as stock:
        assert type(stock.event_log_storage) is PostgresEventLogStorage
        assert len(stock.get_runs()) == 2
        assert stock.get_materialized_partitions(AssetKey(["silver", "daily"])) == {"2024-01-02", "2024-01-03", "2024-01-04", "2024-01-08"}
    import psycopg2

    conn = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password, dbname=env["DAGSTER_PG_DB"])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs")
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] == 4  # one per partition
    conn.close()
    assert pl.read_delta(str(tmp_path / "lake" / "silver" / "daily")).height == 4


def test_parallel_partition_runs_share_the_api_pool_limit(pg_home, tmp_path):
    """Three runs (three processes) for three partitions of one table, released at once, on the shared instance.

    The asset is in a pool with one slot (as deploy/dagster-postgres.yaml gives every pool): each 'API call'
    step waits inside for up to two seconds for the others, and never sees one; yet every partition lands.
    (With dagster-postgres's stock event log two steps could claim the one slot, about one run in ten: see
    energy_assets/postgres_storage.py and test_pool_slot_claim.py.)
    (Without the pool the three steps meet inside; that control depends on process start-up times under
    load, so it is not part of the suite.)"""
    home, env = pg_home
    pool = "neso_api"
    markers = tmp_path / "inside"
    markers.mkdir()
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    # as at deploy time (`dagster instance concurrency set neso_api 1`): a pool first met by several runs at
    # once makes Dagster 1.13 insert its default limit concurrently (UniqueViolation on Postgres)
    with DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(pool, 1)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=3, mp_context=ctx) as executor:
        barrier = manager.Barrier(3)
        futures = [
            executor.submit(materialize_pooled, env, str(home), str(tmp_path / "lake"), day, pool, str(markers), 3, 2.0, barrier)
            for day in days
        ]
        results = [f.result(timeout=180) for f in futures]
    assert all(r["success"] for r in results)
    table = pl.read_delta(str(tmp_path / "lake" / "bronze" / "api_readings")).sort("day")
    assert table["day"].cast(pl.String).to_list() == days
    assert table["most_inside"].to_list() == [1, 1, 1]
    with DagsterInstance.from_config(str(home)) as instance:
        info = instance.event_log_storage.get_concurrency_info(pool)
        assert info.slot_count == 1 and info.active_slot_count == 0  # every slot given back
