"""The readings-folder sensor and the 08:00 UK schedule.

Sensor: the cursor maps each file name to [size, mtime_ns, sha256] of the version last seen. A file whose
size or mtime changed is hashed; a new hash is a new version, and its rows' settlement days are read.
The days of all new versions in one tick are merged into contiguous ranges, one run per range (single
run backfill tags), so N files delivering the same day give one run, not N runs racing on one partition.
The run key is derived from the versions and the range, so a re-evaluated tick never launches twice.

Schedule: 08:00 Europe/London every day, the settlement day that just ended (yesterday, UK local),
whatever the sensor did: files that arrived without a trigger are still processed.
"""

import datetime as dt
import hashlib
import json
from zoneinfo import ZoneInfo

import polars as pl
from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from energy_assets.partitions import uk_settlement_days
from energy_assets.smart_meter import ingestion, source
from energy_assets.smart_meter.assets import GROUP
from energy_assets.smart_meter.source import SmartMeterSource

UK = ZoneInfo("Europe/London")
TARGET = AssetSelection.groups(GROUP)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def contiguous_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted distinct days as inclusive (first, last) runs of consecutive days."""
    if not days:
        return []
    s = pl.DataFrame({"d": sorted(set(days))}, schema={"d": pl.Date})
    grouped = (
        s.with_columns(gap=(pl.col("d").diff().dt.total_days().fill_null(1) != 1).cum_sum())
        .group_by("gap", maintain_order=True)
        .agg(first=pl.col("d").min(), last=pl.col("d").max())
    )
    return list(zip(grouped["first"].to_list(), grouped["last"].to_list(), strict=True))


def new_versions(folder: pl.DataFrame, cursor: dict, readings_dir) -> tuple[pl.DataFrame, dict]:
    """(file_name, content_hash) of versions not in the cursor, and the cursor for the current folder."""
    seen = pl.DataFrame(
        [(name, v[0], v[1], v[2]) for name, v in cursor.items()],
        schema={"file_name": pl.String, "size_bytes": pl.Int64, "modified_ns": pl.Int64, "content_hash": pl.String},
        orient="row",
    )
    joined = folder.join(seen, on="file_name", how="left", suffix="_seen")
    stat_changed = joined.filter(
        pl.col("content_hash").is_null()
        | (pl.col("size_bytes") != pl.col("size_bytes_seen"))
        | (pl.col("modified_ns") != pl.col("modified_ns_seen"))
    )
    hashes = source.hash_files(readings_dir, stat_changed["file_name"].to_list())
    rehashed = stat_changed.select("file_name", "size_bytes", "modified_ns", old_hash="content_hash").join(hashes, on="file_name")
    fresh = rehashed.filter(pl.col("old_hash").is_null() | (pl.col("old_hash") != pl.col("content_hash")))
    unchanged = joined.join(stat_changed.select("file_name"), on="file_name", how="anti").select(
        "file_name", "size_bytes", "modified_ns", "content_hash"
    )
    current = pl.concat([unchanged, rehashed.select("file_name", "size_bytes", "modified_ns", "content_hash")])
    new_cursor = {name: [size, mtime, h] for name, size, mtime, h in current.iter_rows()}  # per file
    return fresh.select("file_name", "content_hash"), new_cursor


def run_requests_for(versions: pl.DataFrame, touched: pl.DataFrame) -> list[RunRequest]:
    """One run per contiguous range of days touched by the new versions (single-run backfill tags)."""
    first = dt.date.fromisoformat(uk_settlement_days.start.strftime("%Y-%m-%d"))
    last_key = uk_settlement_days.get_last_partition_key()
    last = dt.date.fromisoformat(last_key) if last_key else first
    days = [d for d in touched["settlement_date"].unique().to_list() if first <= d <= last]
    ident = ",".join(sorted(f"{n}@{h}" for n, h in versions.iter_rows()))
    requests = []
    for start, end in contiguous_ranges(days):
        run_key = "smart-meter-" + hashlib.sha256(f"{ident}|{start}|{end}".encode()).hexdigest()[:20]
        if start == end:
            requests.append(RunRequest(run_key=run_key, partition_key=start.isoformat()))
        else:
            requests.append(RunRequest(run_key=run_key, tags={RANGE_START: start.isoformat(), RANGE_END: end.isoformat()}))
    return requests


@sensor(
    name="smart_meter_readings_sensor",
    description=(
        "Watches SMART_METER_READINGS_DIR: a new or changed file version (by content hash) requests runs of the "
        "smart-meter assets for exactly the settlement days its rows touch. Cursor: file -> [size, mtime, sha256]."
    ),
    target=TARGET,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
)
def smart_meter_readings_sensor(context: SensorEvaluationContext, smart_meter: SmartMeterSource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    readings_dir = smart_meter.folder()
    folder = source.snapshot_folder(readings_dir)
    versions, new_cursor = new_versions(folder, cursor, readings_dir)
    if versions.is_empty():
        return SensorResult(skip_reason=SkipReason(f"no new file versions among {folder.height} files"), cursor=json.dumps(new_cursor))
    names = versions["file_name"].to_list()
    parsed = source.parse_reading_files(readings_dir, names)
    raw = ingestion.raw_rows(parsed, folder, dt.datetime.now(dt.UTC))
    touched = raw.select("source_file", "settlement_date").unique()
    requests = run_requests_for(versions, touched)
    context.log.info(f"{len(names)} new file versions touching {touched['settlement_date'].n_unique()} days -> {len(requests)} runs")
    return SensorResult(run_requests=requests, cursor=json.dumps(new_cursor))


@schedule(
    name="smart_meter_daily_schedule",
    description="08:00 UK time: process the settlement day that just ended, whatever the sensor saw.",
    cron_schedule="0 8 * * *",
    execution_timezone="Europe/London",
    target=TARGET,
    default_status=DefaultScheduleStatus.STOPPED,
)
def smart_meter_daily_schedule(context: ScheduleEvaluationContext):
    day = context.scheduled_execution_time.astimezone(UK).date() - dt.timedelta(days=1)
    return RunRequest(run_key=f"smart-meter-daily-{day.isoformat()}", partition_key=day.isoformat())
