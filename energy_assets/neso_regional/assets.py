"""NESO regional carbon intensity (forecast only): raw responses (bronze) and one row per half-hour and region
(silver). Partitioned by UK settlement day; partition ranges run in one run and fetch in as few requests as
the API allows.
"""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from energy_assets.neso.client import day_chunks
from energy_assets.neso_regional import transforms
from energy_assets.neso_regional.client import NesoRegionalClient
from energy_assets.partitions import uk_settlement_days

GROUP = "neso_regional"
KINDS = {"delta", "polars"}
PARTITION_META = {"partition_expr": "settlement_date"}
COMMON = dict(group_name=GROUP, kinds=KINDS, partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run())


def run_days(context: AssetExecutionContext) -> list[dt.date]:
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


@asset(
    key_prefix="bronze",
    name="neso_regional_intensity",
    metadata={
        **PARTITION_META,
        "write_mode": "append",
        # insert-only: refetching identical content adds nothing, a revised forecast adds a row
        "merge_keys": ["settlement_date", "request_url", "content_hash"],
    },
    description=(
        "Raw NESO regional carbon intensity responses (/regional/intensity/{from}/{to}: 17 DNO regions plus GB, "
        "forecast only), append-only: one row per response and UK settlement day it covers, with fetched_at (UTC), "
        "request URL, HTTP status, the body verbatim, its SHA-256 and the problem when the answer was unusable."
    ),
    **COMMON,
)
def bronze_neso_regional_intensity(context: AssetExecutionContext, neso_regional: NesoRegionalClient) -> pl.DataFrame:
    days = run_days(context)
    responses = neso_regional.fetch_days(days)
    failed = [r for r in responses if not r.ok]
    for r in failed:
        context.log.error(f"NESO regional: unusable answer kept in bronze: {r.problem}")
    context.add_output_metadata(
        {
            "requests": MetadataValue.int(len(responses)),
            "requests_planned": MetadataValue.int(len(day_chunks(days, neso_regional.max_days_per_request))),
            "days": MetadataValue.int(len(days)),
            "failed_requests": MetadataValue.int(len(failed)),
            "request_urls": MetadataValue.md("\n".join(f"- `{r.request_url}` -> {r.http_status}" for r in responses)),
            "first_problem": MetadataValue.text(failed[0].problem if failed else ""),
        }
    )
    return transforms.bronze_rows(responses)


@asset(
    key_prefix="silver",
    name="neso_regional_intensity",
    ins={"bronze": AssetIn(key=["bronze", "neso_regional_intensity"])},
    metadata=PARTITION_META,
    description=(
        "Forecast carbon intensity per half-hour and NESO region: period_start/period_end (UTC), settlement_date and "
        "settlement_period, region_id (1..17 DNO regions, 18 = GB), region_shortname, dno_region, "
        "forecast_gco2_per_kwh, intensity_index, fetched_at of the version kept (newest fetch wins). Unique on "
        "(period_start, region_id). The regional endpoint publishes no actuals."
    ),
    **COMMON,
)
def silver_neso_regional_intensity(context: AssetExecutionContext, bronze: pl.DataFrame) -> pl.DataFrame:
    records = transforms.parse_regional(bronze)
    silver = transforms.build_silver_regional(records)
    context.add_output_metadata(
        {
            "bronze_rows": MetadataValue.int(bronze.height),
            "bronze_rows_unusable": MetadataValue.int(bronze.filter(pl.col("problem").is_not_null()).height),
            "records_parsed": MetadataValue.int(records.height),
            "superseded_versions": MetadataValue.int(records.height - silver.height),
            "periods": MetadataValue.int(silver["period_start"].n_unique()),
            "regions": MetadataValue.int(silver["region_id"].n_unique()),
        }
    )
    return silver


NESO_REGIONAL_ASSETS = [bronze_neso_regional_intensity, silver_neso_regional_intensity]
