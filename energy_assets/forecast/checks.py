"""Checks of the forecast archive: pure rules (unit-tested) and the Dagster checks using them.

- bronze: the newest fetch of each day of issue is usable (the one bronze rule, `energy_assets.bronze`),
  ERROR without blocking: silver reads only usable answers, so an outage leaves issues out, never invents any.
- silver: capture rate per UK day of issue (issues seen against issues expected at the sensor interval),
  WARN below 90 %: a sensor that stopped, or an API outage, shows here the same day.
- silver: unique (issued_at, region_id, period_start).
"""

import datetime as dt

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, asset_check

from energy_assets import bronze, settings
from energy_assets.check_outcome import CheckOutcome
from energy_assets.forecast import archive
from energy_assets.neso.checks import check_days  # the run's UK days, as every NESO check reads them
from energy_assets.neso.client import UTC
from energy_assets.partitions import uk_settlement_days
from energy_assets.range_checks import report

MIN_CAPTURE_RATE = 0.9
ARCHIVE_KEY = AssetKey(["silver", "neso_forecast_archive"])
BRONZE_KEY = AssetKey(["bronze", "neso_forecast"])


def rule_capture_rate(
    archive_rows: pl.DataFrame, days: list[dt.date], interval_seconds: int, now: dt.datetime, minimum: float = MIN_CAPTURE_RATE
) -> CheckOutcome:
    rates = archive.capture_rate(archive_rows, days, interval_seconds, now)
    low = rates.filter(pl.col("capture_rate").is_not_null() & (pl.col("capture_rate") < minimum))
    summary = "; ".join(
        f"{r['issue_date']}: {r['issues_seen']} of {r['issues_expected']}"
        + (f" ({r['capture_rate']:.0%})" if r["capture_rate"] is not None else " (none expected yet)")
        for r in rates.iter_rows(named=True)
    )
    return CheckOutcome(
        passed=low.is_empty(),
        checked=f"issues captured per UK day of issue against one every {interval_seconds} s (NESO_FORECAST_SENSOR_INTERVAL_SECONDS), at least {minimum:.0%}",
        found=(f"{low.height} day(s) below {minimum:.0%}: " if low.height else "every day at or above the minimum: ") + summary,
        details={"days": rates.height, "days_below": low.height, "interval_seconds": interval_seconds},
        offending=low if low.height else None,
        warn_only=True,
    )


def rule_unique_rows(archive_rows: pl.DataFrame) -> CheckOutcome:
    keys = ["issued_at", "region_id", "period_start"]
    dup = archive_rows.filter(pl.struct(keys).is_duplicated()).select(keys)
    return CheckOutcome(
        passed=dup.is_empty(),
        checked="(issued_at, region_id, period_start) is unique",
        found=f"{dup.height} rows share their key with another among {archive_rows.height}",
        details={"rows": archive_rows.height, "duplicate_rows": dup.height},
        offending=dup,
    )


@asset_check(
    asset=BRONZE_KEY,
    name="latest_fetch_usable",
    partitions_def=uk_settlement_days,
    blocking=False,
    description="The newest forecast answer of each day of issue is usable; ERROR without blocking (silver reads only usable answers).",
)
def bronze_neso_forecast_latest_fetch_usable(context: AssetCheckExecutionContext, bronze_neso_forecast: pl.LazyFrame) -> AssetCheckResult:  # scanned: the bodies are not read
    return report(context, bronze.rule_latest_fetch_usable(bronze_neso_forecast, archive.BRONZE_PARTITION, "bronze/neso_forecast"))


@asset_check(
    asset=ARCHIVE_KEY,
    name="capture_rate",
    partitions_def=uk_settlement_days,
    blocking=False,
    description="Issues captured per UK day of issue against one per sensor interval; WARN below 90 % (a stopped sensor or an outage).",
)
def silver_neso_forecast_capture_rate(context: AssetCheckExecutionContext, silver_neso_forecast_archive: pl.DataFrame) -> AssetCheckResult:
    interval = settings.graph().neso_forecast_sensor_interval_seconds
    return report(context, rule_capture_rate(silver_neso_forecast_archive, check_days(context), interval, dt.datetime.now(UTC)))


@asset_check(asset=ARCHIVE_KEY, name="unique_rows", partitions_def=uk_settlement_days, blocking=True, description="One row per (issued_at, region_id, period_start).")
def silver_neso_forecast_unique_rows(context: AssetCheckExecutionContext, silver_neso_forecast_archive: pl.DataFrame) -> AssetCheckResult:
    return report(context, rule_unique_rows(silver_neso_forecast_archive))


ARCHIVE_CHECKS = [bronze_neso_forecast_latest_fetch_usable, silver_neso_forecast_capture_rate, silver_neso_forecast_unique_rows]
