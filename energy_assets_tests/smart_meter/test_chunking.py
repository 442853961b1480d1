"""Ingestion (chunks of files), silver and presentation (chunks of days) give the same tables whatever the
chunk size: one file and one day per chunk against the defaults, on the committed sample (clock change,
duplicates, bad rows, a malformed file's absence included)."""

import shutil

import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from dagster_duckdb import DuckDBResource
from polars.testing import assert_frame_equal

from energy_assets import settings
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.smart_meter.assets import ASSETS
from energy_assets.smart_meter.checks import CHECKS
from energy_assets.smart_meter.ingestion import file_chunks
from energy_assets.smart_meter.silver import day_chunks
from energy_assets.smart_meter.source import SmartMeterSource

TABLES = [
    ("raw", "smart_meter_readings"), ("raw", "ingestion_log"), ("silver", "smart_meter_readings"), ("silver", "smart_meter_quarantine"),
    ("presentation", "total_consumption_half_hour"), ("presentation", "consumption_per_product_per_day"),
    ("presentation", "gold_aggregate_per_half_hour"), ("presentation", "gold_avg_half_hour_by_product"),
    ("presentation", "readings_without_agreement"),
]  # fmt: skip


def test_day_chunks_and_file_chunks_cover_everything_in_order():
    import datetime as dt

    days = [dt.date(2021, 3, 26) + dt.timedelta(days=i) for i in range(5)]
    assert day_chunks(days, 2) == [days[0:2], days[2:4], days[4:5]]
    assert day_chunks(days, 0) == [[d] for d in days]
    files = pl.DataFrame({"file_name": ["c", "a", "b", "d", "e"], "size_bytes": [40, 40, 40, 200, 10]})
    assert file_chunks(files, 100) == [["a", "b", "c"], ["d"], ["e"]]
    assert file_chunks(files, 1) == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert file_chunks(files.head(0), 100) == []


def build(root, drop, monkeypatch, chunk_days, chunk_bytes) -> dict[str, pl.DataFrame]:
    # read when the run starts, not at import
    monkeypatch.setenv("SMART_METER_CHUNK_DAYS", str(chunk_days))
    monkeypatch.setenv("SMART_METER_INGEST_CHUNK_BYTES", str(chunk_bytes))
    lake = root / "lake"
    lake_resource = LakeResource(root_uri=str(lake))
    resources = {
        "lake": lake_resource,
        "io_manager": DeltaLakeIOManager(lake=lake_resource),
        "smart_meter": SmartMeterSource(readings_dir=str(drop["readings"]), db_path=str(drop["db"])),
        "smart_meter_duckdb": DuckDBResource(database=":memory:"),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*ASSETS, *CHECKS], resources=resources, instance=instance, raise_on_error=False,
            tags={"dagster/asset_partition_range_start": "2021-03-26", "dagster/asset_partition_range_end": "2021-03-29"},
        )  # fmt: skip
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
    out = {}
    for layer, name in TABLES:
        df = pl.read_delta(str(lake / layer / name))
        df = df.drop([c for c in df.columns if c == "ingested_at"])
        out[f"{layer}/{name}"] = df.sort(df.columns, nulls_last=True)
    return out


@pytest.mark.parametrize("chunk_days, chunk_bytes", [(1, 1), (3, 20_000)])
def test_chunked_runs_equal_the_default_run(tmp_path, drop, monkeypatch, chunk_days, chunk_bytes):
    shutil.copytree(settings.DATA_DIR / "readings", drop["readings"], dirs_exist_ok=True)
    shutil.copy(settings.DATA_DIR / "case_study.db", drop["db"])
    expected = build(tmp_path / "default", drop, monkeypatch, 15, 64 << 20)
    got = build(tmp_path / "chunked", drop, monkeypatch, chunk_days, chunk_bytes)
    assert expected["silver/smart_meter_readings"].height > 0 and expected["silver/smart_meter_quarantine"].height > 0
    for key, table in expected.items():
        # averages may differ in the last bits: DuckDB adds in another order (as it may in parallel anyway)
        assert_frame_equal(got[key], table, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


def test_chunk_sizes_are_read_when_the_run_starts(tmp_path, drop, monkeypatch):
    """The settings decide the chunks a run uses (read at run time, not at import): one file per ingestion chunk
    and one day per silver chunk here, and the streamed batches add up to the same rows."""
    import datetime as dt

    from energy_assets.lake.store import Lake
    from energy_assets.smart_meter import pipeline

    shutil.copytree(settings.DATA_DIR / "readings", drop["readings"], dirs_exist_ok=True)
    monkeypatch.setenv("SMART_METER_INGEST_CHUNK_BYTES", "1")
    monkeypatch.setenv("SMART_METER_CHUNK_DAYS", "1")
    days = [dt.date(2021, 3, 26) + dt.timedelta(days=i) for i in range(4)]
    run = pipeline.Ingestion(Lake(str(tmp_path / "lake")), drop["readings"], days, settings.smart_meter_ingest_chunk_bytes())
    assert run.file_chunks == [[name] for name in sorted(run.to_read)] and len(run.to_read) == 100
    batches = list(run.raw_batches())
    assert len(batches) == 100 + 1  # one per file, then the rows kept from earlier ingestions (none: empty lake)
    assert batches[-1].height == 0
    assert run.metadata["rows_ingested"] == sum(b.height for b in batches)
    assert run.log_rows()["rows_in_partition"].sum() == run.metadata["rows_ingested"]
    assert pipeline.Silver(pl.LazyFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), days, settings.smart_meter_chunk_days()).chunks == [[d] for d in days]


def test_detached_frames_keep_every_type_and_value():
    """The per-chunk frames kept across chunks (ingestion's plan, silver's quarantine) are copied out of the chunk's
    buffers (memory follows the chunk: BENCHMARKS.md 1d); the copy must be the same frame, types included."""
    import datetime as dt

    from energy_assets.smart_meter.ingestion import LOG_SCHEMA
    from energy_assets.smart_meter.pipeline import detached
    from energy_assets.smart_meter.silver import QUARANTINE_SCHEMA

    log = pl.DataFrame(
        [{name: None for name in LOG_SCHEMA} | {"file_name": "aaaaaaaaaa-with-a-long-name.json", "settlement_dates_touched": [dt.date(2021, 3, 28)],
          "ingested_at": dt.datetime(2021, 3, 28, 1, tzinfo=dt.UTC), "rows_in_partition": 3}],
        schema=LOG_SCHEMA,
    )  # fmt: skip
    quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    for frame in (log, quarantine, log.head(0)):
        copy = detached(frame)
        assert copy.schema == frame.schema
        assert copy.equals(frame, null_equal=True)
