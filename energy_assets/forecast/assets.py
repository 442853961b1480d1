"""Forecast archive assets: every fw48h answer (bronze) and one row per (issue, region, half-hour) (silver).

Partitioned by the UK day of issue. A run fetches the forecasts as published *now*: past days cannot be
backfilled (the API keeps no history of its forecasts), so a run for any other day than today fails with a
clear error in live mode; in replay mode it replays the recorded issues of its days.
"""

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, Failure, MetadataValue, asset

from energy_assets import settings
from energy_assets.bronze import bronze_metadata
from energy_assets.column_docs import column_schema_metadata
from energy_assets.forecast import archive, columns
from energy_assets.forecast.client import fetch_issue, recorded_issue_times
from energy_assets.neso.assets import run_days
from energy_assets.neso.client import UTC, NesoClient, uk_today
from energy_assets.partitions import uk_settlement_days

GROUP = "neso_forecast"
KINDS = {"delta", "polars"}
COMMON = dict(group_name=GROUP, kinds=KINDS, partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run())


class PastIssueError(Failure):
    """A run asked for forecasts of a day that is not today: they cannot be fetched any more."""


def issue_moments(days: list[dt.date], now: dt.datetime, mode: str, samples_dir: Path) -> tuple[list[dt.datetime], bool]:
    """(moments to fetch an issue at, recorded?) for a run over `days`: now (live, today only) or the
    recordings of those days under `samples_dir` (replay)."""
    if mode == settings.REPLAY:
        return recorded_issue_times(samples_dir, days), True
    today = uk_today(now)
    others = [d for d in days if d != today]
    if others:
        raise PastIssueError(
            description=(
                f"forecast archive: cannot fetch issues for {', '.join(d.isoformat() for d in others)} at {now:%Y-%m-%d %H:%M}Z "
                f"(today is {today}): NESO keeps no history of its forecasts, so past days cannot be backfilled; "
                "the archive grows only from the sensor's fetches (or replays recordings with ENERGY_ASSETS_SOURCE=replay)"
            )
        )
    return [now], False


@asset(
    key_prefix="bronze",
    name="neso_forecast",
    metadata={**bronze_metadata("issue_date"), **column_schema_metadata(columns.BRONZE)},
    description=(
        "Raw NESO 48-hour forecast answers (/intensity/{from}/fw48h national, /regional/intensity/{from}/fw48h "
        "regional), verbatim, one row per distinct answer with its true fetch time; partitioned by the UK day of "
        "issue. The only history of what NESO forecast: the API keeps none, so past days cannot be backfilled."
    ),
    **COMMON,
)
def bronze_neso_forecast(context: AssetExecutionContext, neso: NesoClient) -> pl.DataFrame:
    days = run_days(context)
    moments, recorded = issue_moments(days, dt.datetime.now(UTC), neso.http.mode(), neso.http.replay_dir())
    responses = [r for moment in moments for r in fetch_issue(neso, moment, recorded)]
    failed = [r for r in responses if not r.ok]
    for r in failed:
        context.log.error(f"NESO forecast: unusable answer kept in bronze: {r.problem}")
    context.add_output_metadata(
        {
            "issues": MetadataValue.int(len(moments)),
            "requests": MetadataValue.int(len(responses)),
            "failed_requests": MetadataValue.int(len(failed)),
            "first_problem": MetadataValue.text(failed[0].problem if failed else ""),
        }
    )
    return archive.bronze_rows(responses)


@asset(
    key_prefix="silver",
    name="neso_forecast_archive",
    ins={"bronze": AssetIn(key=["bronze", "neso_forecast"])},
    metadata={"partition_expr": "issue_date", **column_schema_metadata(columns.SILVER_ARCHIVE)},
    description=(
        "Every NESO 48-hour forecast ever fetched: one row per (issued_at, region_id, period_start). issued_at is "
        "the true fetch time (never earlier: a forecast is not claimed before it was seen); region_id 0 = national "
        "(/intensity), 1..17 DNO regions, 18 = GB (/regional/intensity); lead_minutes = period_start - issued_at "
        "(negative for the half-hour in progress); lead_bucket = half-hours ahead of the half-hour in progress "
        "(0..96); forecast_gco2_per_kwh, intensity_index. Partitioned by the UK day of issue; past days cannot be "
        "backfilled (the API keeps no forecast history). Unusable answers are never read; records the table cannot "
        "hold stay in bronze and are counted in the metadata."
    ),
    **COMMON,
)
def silver_neso_forecast_archive(context: AssetExecutionContext, bronze: pl.DataFrame) -> pl.DataFrame:
    built, rejected = archive.build_archive(bronze)
    if rejected.height:
        first = rejected.row(0, named=True)
        context.log.warning(
            f"{rejected.height} forecast record(s) not archived; first: {first['reason']} (from={first['record_from']!r}, "
            f"region {first['region_id']}) in GET {first['source_request_url']}"
        )
    context.add_output_metadata(
        {
            "bronze_rows": MetadataValue.int(bronze.height),
            "issues": MetadataValue.int(built["issued_at"].n_unique()),
            "records_rejected": MetadataValue.int(rejected.height),
            "rejected_reasons": MetadataValue.json(dict(rejected.group_by("reason").len().iter_rows()) if rejected.height else {}),
        }
    )
    return built


ARCHIVE_ASSETS = [bronze_neso_forecast, silver_neso_forecast_archive]
