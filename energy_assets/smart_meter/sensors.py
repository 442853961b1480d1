"""The readings-folder sensor and the 08:00 UK schedule.

Sensor: the cursor maps each file name to [size, mtime_ns, sha256] of the version last seen. A file whose
size or mtime changed is hashed; a new hash is a new version, and its rows' settlement days are read.
The days of all new versions in one tick are merged into contiguous ranges, one run per range (single
run backfill tags), so N files delivering the same day give one run, not N runs racing on one partition.
The run key is derived from the versions and the range, so a re-evaluated tick never launches twice.

Schedule: 08:00 Europe/London every day, the settlement day that just ended (yesterday, UK local),
whatever the sensor did: files that arrived without a trigger are still processed.

Bucketed (`SMART_METER_BUCKETS` = N > 1, `build_orchestration`): a run holds one partitioning, so a day is
several runs. The sensor and the 08:00 schedule request one ingestion run per (day, bucket) of the per-meterpoint
ingestion (raw readings + log) and one run of the database (unpartitioned, versioned by content); silver (per day
and bucket), the presentation aggregates (per day) and active agreements follow by declarative automation (the
`smart_meter_automation` sensor, on by default when bucketed) as soon as their inputs of the day are complete.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from zoneinfo import ZoneInfo

import polars as pl
from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    MultiPartitionKey,
    define_asset_job,
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
from energy_assets.smart_meter import buckets as bucketing
from energy_assets.smart_meter import ingestion, source
from energy_assets.smart_meter.assets import (
    BUCKETS,
    GROUP,
    INGESTION_LOG,
    RAW_AGREEMENTS,
    RAW_METERPOINTS,
    RAW_PRODUCTS,
    RAW_READINGS,
)
from energy_assets.smart_meter.source import SmartMeterSource

UK = ZoneInfo("Europe/London")
TARGET = AssetSelection.groups(GROUP)
# Unbucketed: the whole domain as one job on UK days. The database and active agreements are unpartitioned (versioned
# by content) and run once in every run of it, whatever its days; a job may mix unpartitioned assets with one
# partitioning. (`uk_days_job` holds every UK-day asset of every domain, with the database but not active agreements.)
smart_meter_job = define_asset_job(
    "smart_meter_job",
    selection=TARGET,
    description=(
        "The smart-meter batch for a UK day or range of days in one run: the database (a new version only when it "
        "changed), the reading files of those days -> raw -> silver -> presentation, every check. What the readings "
        "sensor and the 08:00 schedule run."
    ),
)
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


def new_file_versions(context: SensorEvaluationContext, smart_meter: SmartMeterSource) -> tuple[pl.DataFrame, pl.DataFrame, dict, int]:
    """The file versions new since the sensor's cursor, the (file, settlement day) pairs their rows touch, the next
    cursor and how many files the folder holds: the one reading of the drop that both sensors share."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    readings_dir = smart_meter.folder()
    folder = source.snapshot_folder(readings_dir)
    versions, new_cursor = new_versions(folder, cursor, readings_dir)
    if versions.is_empty():
        return versions, pl.DataFrame(), new_cursor, folder.height
    # only the days matter here: numbers are not searched for their written text
    parsed = source.parse_reading_files(readings_dir, versions["file_name"].to_list(), as_written=False)
    touched = ingestion.raw_rows(parsed, folder, dt.datetime.now(dt.UTC)).select("source_file", "settlement_date").unique()
    return versions, touched, new_cursor, folder.height


@sensor(
    name="smart_meter_readings_sensor",
    description=(
        "Watches SMART_METER_READINGS_DIR: a new or changed file version (by content hash) requests runs of the "
        "smart-meter assets for exactly the settlement days its rows touch. Cursor: file -> [size, mtime, sha256]."
    ),
    job=smart_meter_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
)
def smart_meter_readings_sensor(context: SensorEvaluationContext, smart_meter: SmartMeterSource):
    return readings_sensor_result(context, smart_meter, run_requests_for)


def readings_sensor_result(
    context: SensorEvaluationContext, smart_meter: SmartMeterSource, requests_for: Callable[[pl.DataFrame, pl.DataFrame], list[RunRequest]]
) -> SensorResult:
    """One tick of a readings sensor: the new file versions and the days they touch, the runs `requests_for` makes of
    them (or a skip when nothing is new), and the new cursor."""
    versions, touched, new_cursor, files = new_file_versions(context, smart_meter)
    if versions.is_empty():
        return SensorResult(skip_reason=SkipReason(f"no new file versions among {files} files"), cursor=json.dumps(new_cursor))
    requests = requests_for(versions, touched)
    context.log.info(f"{versions.height} new file versions touching {touched['settlement_date'].n_unique()} days -> {len(requests)} runs")
    return SensorResult(run_requests=requests, cursor=json.dumps(new_cursor))


def day_that_ended(context: ScheduleEvaluationContext) -> dt.date:
    """The UK settlement day before the schedule's tick."""
    return context.scheduled_execution_time.astimezone(UK).date() - dt.timedelta(days=1)


@schedule(
    name="smart_meter_daily_schedule",
    description="08:00 UK time: process the settlement day that just ended, whatever the sensor saw.",
    cron_schedule="0 8 * * *",
    execution_timezone="Europe/London",
    job=smart_meter_job,
    default_status=DefaultScheduleStatus.STOPPED,
)
def smart_meter_daily_schedule(context: ScheduleEvaluationContext):
    day = day_that_ended(context)
    return RunRequest(run_key=f"smart-meter-daily-{day.isoformat()}", partition_key=day.isoformat())


# ------------------------------------------------------------------------------------------------ bucketed
def bucket_run_requests(versions: pl.DataFrame, touched: pl.DataFrame, buckets: int, ingest_job: str, database_job: str) -> list[RunRequest]:
    """Bucketed: one ingestion run per (day, bucket) the new versions touch, and one run of the (unpartitioned,
    versioned by content) database, which commits a new version only if the database changed (silver waits for
    the database to exist)."""
    first = dt.date.fromisoformat(uk_settlement_days.start.strftime("%Y-%m-%d"))
    last_key = uk_settlement_days.get_last_partition_key()
    last = dt.date.fromisoformat(last_key) if last_key else first
    pairs = bucketing.with_file_bucket(touched, buckets).select("settlement_date", bucketing.BUCKET_COLUMN).unique()
    pairs = pairs.filter(pl.col("settlement_date").is_between(first, last)).sort("settlement_date", bucketing.BUCKET_COLUMN)
    ident = ",".join(sorted(f"{n}@{h}" for n, h in versions.iter_rows()))
    if pairs.is_empty():
        return []
    requests = [RunRequest(run_key="smart-meter-db-" + hashlib.sha256(ident.encode()).hexdigest()[:20], job_name=database_job)]
    for day, bucket in pairs.iter_rows():
        run_key = "smart-meter-" + hashlib.sha256(f"{ident}|{day}|{bucket}".encode()).hexdigest()[:20]
        key = MultiPartitionKey({bucketing.DATE_DIMENSION: day.isoformat(), bucketing.BUCKET_DIMENSION: bucket})
        requests.append(RunRequest(run_key=run_key, job_name=ingest_job, partition_key=key))
    return requests


def build_orchestration(buckets: int = 1) -> tuple[list, list]:
    """(sensors, schedules) of the domain for `buckets` meterpoint buckets per day (see the module docstring)."""
    if buckets <= 1:
        return [smart_meter_readings_sensor], [smart_meter_daily_schedule]
    ingest_job = define_asset_job(
        "smart_meter_bucket_ingestion_job",
        selection=AssetSelection.assets(RAW_READINGS, INGESTION_LOG),
        description="Ingest the reading files of one meterpoint bucket for a UK day (raw readings + ingestion log).",
    )
    database_job = define_asset_job(
        "smart_meter_database_job",
        selection=AssetSelection.assets(RAW_AGREEMENTS, RAW_PRODUCTS, RAW_METERPOINTS),
        description="Load the smart-meter database (agreements, products, meterpoints): a new table version only when it changed.",
    )

    @sensor(
        name="smart_meter_readings_sensor",
        description=(
            "Watches SMART_METER_READINGS_DIR: a new or changed file version (by content hash) requests an ingestion run per "
            "(day, meterpoint bucket) its rows touch and one load of the database; silver and presentation follow by automation."
        ),
        jobs=[ingest_job, database_job],
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.STOPPED,
    )
    def bucketed_readings_sensor(context: SensorEvaluationContext, smart_meter: SmartMeterSource):
        return readings_sensor_result(
            context, smart_meter, lambda versions, touched: bucket_run_requests(versions, touched, buckets, ingest_job.name, database_job.name)
        )

    @schedule(
        name="smart_meter_daily_schedule",
        description="08:00 UK time: ingest the settlement day that just ended, one run per meterpoint bucket.",
        cron_schedule="0 8 * * *",
        execution_timezone="Europe/London",
        job=ingest_job,
        default_status=DefaultScheduleStatus.STOPPED,
    )
    def bucketed_daily_schedule(context: ScheduleEvaluationContext):
        day = day_that_ended(context).isoformat()
        return [
            RunRequest(run_key=f"smart-meter-daily-{day}-{b}", partition_key=MultiPartitionKey({bucketing.DATE_DIMENSION: day, bucketing.BUCKET_DIMENSION: b}))
            for b in bucketing.bucket_keys(buckets)
        ]

    @schedule(
        name="smart_meter_database_daily_schedule",
        description="08:00 UK time: load the database (a new table version only when it changed).",
        cron_schedule="0 8 * * *",
        execution_timezone="Europe/London",
        job=database_job,
        default_status=DefaultScheduleStatus.STOPPED,
    )
    def database_daily_schedule(context: ScheduleEvaluationContext):
        return RunRequest(run_key=f"smart-meter-db-daily-{day_that_ended(context).isoformat()}")

    automation = AutomationConditionSensorDefinition(
        "smart_meter_automation",
        target=AssetSelection.groups(GROUP),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Bucketed smart meter: builds silver per (day, bucket) and the day's aggregates once their inputs are complete.",
    )
    return [bucketed_readings_sensor, automation], [bucketed_daily_schedule, database_daily_schedule]


SENSORS, SCHEDULES = build_orchestration(BUCKETS)
