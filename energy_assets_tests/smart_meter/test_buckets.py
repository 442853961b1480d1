"""Meterpoint buckets (SMART_METER_BUCKETS): a UK day split into N bucket runs that write the same Delta tables
concurrently gives the same silver and presentation tables as the day unsplit.

The assets are built for a bucket count explicitly (`build_assets(3)`), so nothing is reloaded."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections import Counter
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, MultiPartitionKey, materialize
from deltalake import DeltaTable
from polars.testing import assert_frame_equal

from energy_assets import settings
from energy_assets.devtools.smart_meter_generator import meterpoint_ids
from energy_assets.smart_meter import assets as sm_assets
from energy_assets.smart_meter import buckets
from energy_assets.smart_meter.checks import build_checks
from energy_assets.smart_meter.sensors import bucket_run_requests
from energy_assets_tests.smart_meter.conftest import smart_meter_resources

DAY = "2021-03-28"  # the spring clock change: 46 half-hours
N = 3
PER_METERPOINT = [sm_assets.RAW_READINGS, sm_assets.INGESTION_LOG, sm_assets.SILVER_READINGS, sm_assets.QUARANTINE]
DATABASE = [sm_assets.RAW_AGREEMENTS, sm_assets.RAW_PRODUCTS, sm_assets.RAW_METERPOINTS]
PRESENTATION = [sm_assets.ACTIVE_AGREEMENTS, sm_assets.TOTAL_HALF_HOUR, sm_assets.PER_PRODUCT_DAY, sm_assets.GOLD_HALF_HOUR,
                sm_assets.GOLD_AVG_BY_PRODUCT, sm_assets.WITHOUT_AGREEMENT]  # fmt: skip
COMPARED = [sm_assets.RAW_READINGS, sm_assets.SILVER_READINGS, sm_assets.QUARANTINE, *PRESENTATION]


def test_a_meterpoints_bucket_is_the_same_in_every_process():
    ids = meterpoint_ids(50, seed=3)
    here = [buckets.bucket_of(i, 7) for i in ids]
    code = "import sys; from energy_assets.smart_meter.buckets import bucket_of; print(*[bucket_of(i, 7) for i in sys.argv[1:]])"
    for seed in ("1", "2"):  # Python's hash() would differ between these processes
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, *ids], env=env, capture_output=True, text=True, check=True).stdout
        assert [int(b) for b in out.split()] == here
    assert buckets.file_bucket(f"{ids[0]}.json", 7) == str(here[0])
    assert set(here) <= set(range(7))


def test_buckets_are_balanced():
    counts = Counter(buckets.bucket_of(i, 8) for i in meterpoint_ids(16_000, seed=11))
    assert sorted(counts) == list(range(8))
    assert max(counts.values()) < 1.1 * 2_000 and min(counts.values()) > 0.9 * 2_000, counts


def test_bucketed_sensor_requests_one_run_per_day_and_bucket_and_one_database_run():
    ids = meterpoint_ids(12, seed=5)
    days = [dt.date(2021, 3, 26), dt.date(2021, 3, 27)]
    touched = pl.DataFrame({"source_file": [f"{i}.json" for i in ids for _ in days], "settlement_date": days * len(ids)})
    versions = pl.DataFrame({"file_name": [f"{i}.json" for i in ids], "content_hash": ["h"] * len(ids)})
    requests = bucket_run_requests(versions, touched, N, "ingest", "db")
    db = [r for r in requests if r.job_name == "db"]
    ingest = [r for r in requests if r.job_name == "ingest"]
    assert [r.partition_key for r in db] == [None]  # the database is one unpartitioned table, loaded once per tick
    expected = {(d.isoformat(), str(buckets.bucket_of(i, N))) for i in ids for d in days}
    assert {(r.partition_key.keys_by_dimension["date"], r.partition_key.keys_by_dimension["bucket"]) for r in ingest} == expected
    assert len({r.run_key for r in requests}) == len(requests)
    # another set of versions is another database run; days outside the partitions request nothing
    other = bucket_run_requests(versions.with_columns(content_hash=pl.lit("h2")), touched, N, "ingest", "db")
    assert [r.run_key for r in other if r.job_name == "db"] != [r.run_key for r in db]
    before = touched.with_columns(settlement_date=pl.lit(dt.date(1999, 1, 1)))
    assert bucket_run_requests(versions, before, N, "ingest", "db") == []


def _run(defs, selection, partition_key, resources):
    with DagsterInstance.ephemeral() as instance:
        result = materialize(defs, selection=selection, partition_key=partition_key, resources=resources, instance=instance, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        checks = result.get_asset_check_evaluations()
        assert all(e.passed for e in checks), [e.check_name for e in checks if not e.passed]
        return result


def _table(lake, key: AssetKey) -> pl.DataFrame:
    df = pl.read_delta(str(lake.joinpath(*key.path)))
    df = df.drop([c for c in df.columns if c in ("ingested_at", buckets.BUCKET_COLUMN)])
    return df.sort(df.columns, nulls_last=True)


def bucket_run(lake: str, readings: str, db: str, bucket: str) -> int:
    """One (DAY, bucket) run of the per-meterpoint assets, in its own process (as a worker runs it); returns the
    files it read. Processes, not threads: each run owns its delta-rs runtime, as on separate workers."""
    drop = {"readings": Path(readings), "db": Path(db)}
    three = [*sm_assets.build_assets(N), *build_checks(N)]
    result = _run(three, PER_METERPOINT, MultiPartitionKey({"date": DAY, "bucket": bucket}), smart_meter_resources(Path(lake), drop))
    return int(result.asset_materializations_for_node("smart_meter_ingestion")[0].metadata["files_read"].value)


@pytest.mark.slow  # about 30-50 s: four runs, three of them in spawned processes
def test_a_day_in_three_concurrent_bucket_runs_equals_the_day_unsplit(tmp_path, drop):
    shutil.copytree(settings.DATA_DIR / "readings", drop["readings"], dirs_exist_ok=True)
    shutil.copy(settings.DATA_DIR / "case_study.db", drop["db"])

    whole = tmp_path / "whole"
    one = [*sm_assets.build_assets(1), *build_checks(1)]
    _run(one, None, DAY, smart_meter_resources(whole, drop))

    split = tmp_path / "split"
    res = smart_meter_resources(split, drop)
    three = [*sm_assets.build_assets(N), *build_checks(N)]
    _run(three, DATABASE, None, res)  # unpartitioned
    keys = buckets.bucket_keys(N)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=N, mp_context=ctx) as pool:  # N runs of one day writing the same tables at once
        files_read = list(pool.map(bucket_run, *zip(*[(str(split), str(drop["readings"]), str(drop["db"]), b) for b in keys])))
    # a bucket run again: nothing new to read, its slice rebuilt from the rows already ingested (idempotent)
    again = _run(three, PER_METERPOINT, MultiPartitionKey({"date": DAY, "bucket": "0"}), res)
    assert again.asset_materializations_for_node("smart_meter_ingestion")[0].metadata["files_read"].value == 0
    _run(three, PRESENTATION, DAY, res)

    # each bucket run read only its own files and wrote them under (day, bucket) Delta partitions
    for bucket, n in zip(keys, files_read, strict=True):
        assert n == len([f for f in drop["readings"].glob("*.json") if buckets.file_bucket(f.name, N) == bucket]) > 0
    silver = DeltaTable(str(split / "silver" / "smart_meter_readings"))
    assert silver.metadata().partition_columns == ["settlement_date", buckets.BUCKET_COLUMN]
    rows = pl.read_delta(str(split / "silver" / "smart_meter_readings"))
    per_bucket = rows.group_by(buckets.BUCKET_COLUMN).agg(pl.col("meterpoint_id").unique())
    for bucket, ids in per_bucket.iter_rows():
        assert {buckets.file_bucket(f"{i}.json", N) for i in ids} == {bucket}  # a meterpoint lives in one bucket
    assert per_bucket.height == N

    for key in COMPARED:
        expected, got = _table(whole, key), _table(split, key)
        assert expected.height > 0, key
        # averages are re-combined from per-bucket sums: equal but for the last bits
        assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


def test_the_carbon_footprint_of_a_day_reads_every_bucket_of_that_day(tmp_path, drop):
    from dagster import AssetSpec, Definitions

    from energy_assets.carbon.assets import CARBON_ASSETS
    from energy_assets.partitions import uk_settlement_days

    neso = [AssetSpec(["silver", t], partitions_def=uk_settlement_days) for t in ("neso_carbon_intensity", "neso_regional_intensity")]
    graph = Definitions(assets=[*sm_assets.build_assets(N), *CARBON_ASSETS, *neso], resources=smart_meter_resources(tmp_path, drop)).resolve_asset_graph()
    footprint, silver = AssetKey(["gold", "smart_meter_carbon_footprint"]), sm_assets.SILVER_READINGS
    day_defs, bucketed = graph.get(footprint).partitions_def, graph.get(silver).partitions_def
    mapping = graph.get_partition_mapping(footprint, silver)
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        day_defs.subset_with_partition_keys([DAY]), day_defs, bucketed
    ).partitions_subset.get_partition_keys()
    assert sorted(upstream) == sorted(MultiPartitionKey({"date": DAY, "bucket": b}) for b in buckets.bucket_keys(N))
