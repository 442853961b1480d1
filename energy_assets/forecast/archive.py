"""Pure polars transforms of the forecast archive: fw48h answers in bronze -> one row per (issue, region,
half-hour) in silver, and the capture rate per UK day of issue. No Dagster, no I/O.

An *issue* is one fetch of the 48-hour forecast: its `issued_at` is the fetch time kept in bronze
(`fetched_at`), never the `{from}` of the request nor anything the body says, so a forecast is never
claimed to have been known earlier than it was fetched. Past issues cannot be fetched later: the API keeps
no history of its forecasts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from energy_assets.bronze import bronze_schema, fetch_columns
from energy_assets.neso.client import INTENSITY, REGIONAL, FetchedResponse
from energy_assets.neso.regional_transforms import REGIONAL_BODY, forecast_record_problem
from energy_assets.neso.transforms import INTENSITY_BODY, UK_TZ, decode_records

NATIONAL_REGION_ID = 0  # the national forecast (/intensity/{from}/fw48h)
GB_REGION_ID = 18  # the regional endpoint's GB total
REGION_IDS = tuple(range(0, 19))
NATIONAL_NAME = "National"
HALF_HOUR_MINUTES = 30
MAX_LEAD_BUCKET = 96

BRONZE_PARTITION = ["issue_date"]
BRONZE_SCHEMA = pl.Schema(bronze_schema({"issue_date": pl.Date()}))

ARCHIVE_SCHEMA = pl.Schema(
    {
        "issue_date": pl.Date,
        "issued_at": pl.Datetime("us", "UTC"),
        "region_id": pl.Int16,
        "region_shortname": pl.String,
        "period_start": pl.Datetime("us", "UTC"),
        "period_end": pl.Datetime("us", "UTC"),
        "lead_minutes": pl.Int32,
        "lead_bucket": pl.Int16,
        "forecast_gco2_per_kwh": pl.Int32,
        "intensity_index": pl.String,
        "source_request_url": pl.String,
    }
)

REJECTED_SCHEMA = pl.Schema(
    {
        "issue_date": pl.Date,
        "issued_at": pl.Datetime("us", "UTC"),
        "source_request_url": pl.String,
        "region_id": pl.Int64,
        "record_from": pl.String,
        "forecast": pl.Int64,
        "index": pl.String,
        "reason": pl.String,
    }
)

_NATIONAL_BODY = INTENSITY_BODY  # the national fw48h answer has the range endpoint's format
def bronze_rows(responses: Sequence[FetchedResponse]) -> pl.DataFrame:
    """One bronze row per fw48h answer, partitioned by the UK day of issue (the day it was fetched)."""
    rows = [{"issue_date": r.days[0], **fetch_columns(r)} for r in responses]
    return pl.DataFrame(rows, schema=BRONZE_SCHEMA)


def endpoint_of(request_url: pl.Expr) -> pl.Expr:
    """`regional/intensity` or `intensity`, from a fw48h request URL."""
    return pl.when(request_url.str.contains(f"/{REGIONAL}/")).then(pl.lit(REGIONAL)).otherwise(pl.lit(INTENSITY))


def _records(bronze: pl.DataFrame, endpoint: str) -> pl.DataFrame:
    """Every (half-hour, region) record of the usable `endpoint` answers, once per fetch (issue)."""
    usable = bronze.filter(pl.col("problem").is_null() & (endpoint_of(pl.col("request_url")) == endpoint))
    if usable.is_empty():
        return pl.DataFrame()
    if endpoint == INTENSITY:
        decoded = decode_records(usable, _NATIONAL_BODY).unnest("intensity").with_columns(
            pl.lit(NATIONAL_REGION_ID, pl.Int64).alias("regionid"), pl.lit(NATIONAL_NAME).alias("shortname")
        )
    else:
        decoded = (
            decode_records(usable, REGIONAL_BODY)  # the fw48h answer has the range endpoint's format
            .explode("regions")
            .filter(pl.col("regions").is_not_null())
            .unnest("regions")
            .unnest("intensity")
        )
    decoded = decoded.select("content_hash", "from", "period_start", "period_end", "regionid", "shortname", "forecast", "index")
    fetches = usable.select("issue_date", "content_hash", pl.col("fetched_at").alias("issued_at"), pl.col("request_url").alias("source_request_url"))
    return fetches.join(decoded, on="content_hash", how="inner")


def _reason() -> pl.Expr:
    """The regional records' rule (regions 0..18 here), and: a period that ended before the issue's half-hour
    is no forecast."""
    return (
        pl.when(forecast_record_problem(REGION_IDS).is_not_null())
        .then(forecast_record_problem(REGION_IDS))
        .when(pl.col("period_end") <= pl.col("issued_at").dt.truncate("30m"))
        .then(pl.lit("period ended before the issue's half-hour (not a forecast)"))
        .otherwise(None)
    )


def lead_bucket(issued_at: pl.Expr, period_start: pl.Expr) -> pl.Expr:
    """Half-hours ahead of the half-hour in progress at the issue: 0 for the period in progress, 96 for the
    last period of a 48-hour forecast."""
    return ((period_start - issued_at.dt.truncate("30m")).dt.total_minutes() // HALF_HOUR_MINUTES).cast(pl.Int16)


def build_archive(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(archive, rejected): one archive row per (issued_at, region_id, period_start) from every usable
    fw48h answer; records the archive cannot hold are returned with their reason (bronze keeps them)."""
    parts = [frame for frame in (_records(bronze, INTENSITY), _records(bronze, REGIONAL)) if frame.height]
    if not parts:
        return pl.DataFrame(schema=ARCHIVE_SCHEMA), pl.DataFrame(schema=REJECTED_SCHEMA)
    records = pl.concat(parts).with_columns(_reason().alias("reason"))
    rejected = (
        records.filter(pl.col("reason").is_not_null())
        .rename({"from": "record_from", "regionid": "region_id"})
        .select(list(REJECTED_SCHEMA))
        .cast(dict(REJECTED_SCHEMA))
    )
    good = records.filter(pl.col("reason").is_null())
    archive = (
        good.with_columns(
            ((pl.col("period_start") - pl.col("issued_at")).dt.total_minutes()).alias("lead_minutes"),
            lead_bucket(pl.col("issued_at"), pl.col("period_start")).alias("lead_bucket"),
        )
        .select(
            "issue_date",
            "issued_at",
            pl.col("regionid").alias("region_id"),
            pl.col("shortname").alias("region_shortname"),
            "period_start",
            "period_end",
            "lead_minutes",
            "lead_bucket",
            pl.col("forecast").alias("forecast_gco2_per_kwh"),
            pl.col("index").alias("intensity_index"),
            "source_request_url",
        )
        .cast(dict(ARCHIVE_SCHEMA))
        # the same content fetched twice within a fetch time is one issue; keep one row
        .unique(["issued_at", "region_id", "period_start"], keep="first", maintain_order=True)
        .sort("issued_at", "region_id", "period_start")
    )
    return archive, rejected


# ------------------------------------------------------------------------------------ capture rate
def expected_issues(day: dt.date, interval_seconds: int, now: dt.datetime | None = None) -> int:
    """Issues a sensor fetching every `interval_seconds` should have captured on the UK day `day` (46, 48 or
    50 half-hours long), counting only the part of the day that has passed at `now`."""
    from energy_assets.neso.client import uk_day_bounds_utc

    start, end = uk_day_bounds_utc(day)
    if now is not None:
        end = min(end, max(start, now))
    return int((end - start).total_seconds() // interval_seconds)


def capture_rate(archive: pl.DataFrame, days: Sequence[dt.date], interval_seconds: int, now: dt.datetime | None = None) -> pl.DataFrame:
    """Per UK day of issue: national issues seen (distinct sensor-interval slots with a national forecast),
    issues expected at the sensor interval, and their ratio (null when none were expected yet)."""
    national = archive.filter(pl.col("region_id") == NATIONAL_REGION_ID)
    slot = pl.col("issued_at").dt.truncate(f"{interval_seconds}s")
    seen = dict(national.group_by("issue_date").agg(slot.n_unique().alias("n")).iter_rows())
    rows = []
    for day in sorted(days):
        expected = expected_issues(day, interval_seconds, now)
        got = int(seen.get(day, 0))
        rows.append({"issue_date": day, "issues_seen": got, "issues_expected": expected, "capture_rate": (min(got, expected) / expected) if expected else None})
    return pl.DataFrame(rows, schema={"issue_date": pl.Date, "issues_seen": pl.Int64, "issues_expected": pl.Int64, "capture_rate": pl.Float64})


def uk_day(col: str) -> pl.Expr:
    return pl.col(col).dt.convert_time_zone(UK_TZ).dt.date()
