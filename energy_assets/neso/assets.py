"""NESO Carbon Intensity assets: raw responses (bronze), clean half-hours (silver), features (gold) of the
national intensity and the generation mix, and the regional intensity (bronze and silver, forecast only).

All are partitioned by UK settlement day and run partition ranges in one run (single-run backfills), so a
backfill fetches in as few requests as the API allows (request chunks of 13 days that never cross 1 January).
Every bronze table follows the one bronze contract (`energy_assets.bronze`): the same columns, the same
merge rule, the same blocking "newest fetch usable" rule.
"""

import datetime as dt

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    BackfillPolicy,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from energy_assets.bronze import bronze_metadata, requests_by_partition
from energy_assets.column_docs import column_schema_metadata
from energy_assets.neso import columns, regional_transforms, transforms
from energy_assets.neso.client import GENERATION, INTENSITY, REGIONAL, NesoClient, request_chunks
from energy_assets.partitions import uk_settlement_days

GROUP = "neso"
REGIONAL_GROUP = "neso_regional"
KINDS = {"delta", "polars"}
PARTITION_META = {"partition_expr": "settlement_date"}
# One row per distinct payload of a request and day: a revised payload adds a row (bodies are never
# rewritten); refetching identical content adds no row but moves that row's fetched_at forward, so
# "newest fetch" is true again after an outage, or when the API reverts to an earlier payload.
BRONZE_META = {**bronze_metadata("settlement_date"), **column_schema_metadata(columns.BRONZE)}
COMMON = dict(group_name=GROUP, kinds=KINDS, partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run())
REGIONAL_COMMON = {**COMMON, "group_name": REGIONAL_GROUP}


def run_days(context: AssetExecutionContext) -> list[dt.date]:
    """The UK settlement days a run covers (one partition or a range)."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def bronze_counts(bronze: pl.LazyFrame) -> tuple[int, int]:
    """Rows of the bronze slice, and how many of them are unusable answers (bodies are not read)."""
    rows, unusable = bronze.select(pl.len(), pl.col("problem").is_not_null().sum()).collect().row(0)
    return int(rows), int(unusable)


def _fetch_to_bronze(context: AssetExecutionContext, neso: NesoClient, endpoint: str) -> pl.DataFrame:
    days = run_days(context)
    responses = neso.fetch_days(endpoint, days)
    frame = transforms.bronze_rows(responses)
    failed = [r for r in responses if not r.ok]
    for r in failed:
        # Kept in bronze (the raw answer, verbatim) and failed by the bronze check.
        context.log.error(f"NESO {endpoint}: unusable answer kept in bronze: {r.problem}")
    lines = [(day.isoformat(), f"- `{r.request_url}` -> {r.http_status}") for r in responses for day in r.days]
    context.add_output_metadata(
        {
            "requests": MetadataValue.int(len(responses)),
            "requests_planned": MetadataValue.int(len(request_chunks(days, neso.max_days_per_request))),
            "days": MetadataValue.int(len(days)),
            "failed_requests": MetadataValue.int(len(failed)),
            "first_problem": MetadataValue.text(failed[0].problem if failed else ""),
        }
    )
    # each partition's own request(s): a year's 29 URLs on each of its 365 days said nothing about any of them
    for key, own in requests_by_partition(lines).items():
        context.add_asset_metadata({"request_urls": MetadataValue.md("\n".join(own))}, partition_key=key)
    return frame


@asset(
    key_prefix="bronze",
    name="neso_carbon_intensity",
    metadata=BRONZE_META,
    description=(
        "Raw NESO Carbon Intensity API responses (/intensity/{from}/{to}): one row per distinct response and UK "
        "settlement day it covers, with fetched_at (UTC, the latest fetch that returned this content), request URL, "
        "HTTP status, the body verbatim, its SHA-256 and the problem when the answer was unusable (500, {}, "
        "truncated JSON...). The only history of forecasts, which the API overwrites: every revision adds a row, "
        "no body is ever rewritten or deleted; an identical refetch only moves fetched_at forward."
    ),
    **COMMON,
)
def bronze_neso_carbon_intensity(context: AssetExecutionContext, neso: NesoClient) -> pl.DataFrame:
    return _fetch_to_bronze(context, neso, INTENSITY)


@asset(
    key_prefix="bronze",
    name="neso_generation_mix",
    metadata=BRONZE_META,
    description=(
        "Raw NESO generation-mix responses (/generation/{from}/{to}): one row per distinct response and UK "
        "settlement day, same columns and write rules as bronze/neso_carbon_intensity. Auxiliary to the national "
        "intensity: its check fails on an unusable answer but does not block the intensity features."
    ),
    # Fetched after the intensity's chain (its bronze check, silver and silver checks): that work fills the wait
    # the per-host politeness interval imposes between the two feeds' requests instead of following the last one.
    op_tags={"dagster/priority": "-1"},
    **COMMON,
)
def bronze_neso_generation_mix(context: AssetExecutionContext, neso: NesoClient) -> pl.DataFrame:
    return _fetch_to_bronze(context, neso, GENERATION)


SILVER_INTENSITY_KEY = AssetKey(["silver", "neso_carbon_intensity"])
QUARANTINE_KEY = AssetKey(["silver", "neso_carbon_intensity_quarantine"])


@multi_asset(
    name="silver_neso_carbon_intensity",
    ins={"bronze": AssetIn(key=["bronze", "neso_carbon_intensity"])},
    outs={
        "silver": AssetOut(
            key=SILVER_INTENSITY_KEY,
            metadata={**PARTITION_META, **column_schema_metadata(columns.SILVER_CARBON_INTENSITY)},
            is_required=False,  # subsettable: either output may be selected alone
            kinds=KINDS,
            description=(
                "National carbon intensity per half-hour (UTC period_start/period_end, UK settlement_date and "
                "settlement_period 1..46/48/50), forecast and actual gCO2/kWh, index, the fetched_at of the version "
                "kept (newest fetch wins) and a data_quality_flag (actual_zero, actual_missing_for_settled_period). "
                "Rebuilt from every usable bronze payload of the partition; unique on period_start; records that "
                "break the schema go to silver/neso_carbon_intensity_quarantine instead."
            ),
        ),
        "quarantine": AssetOut(
            key=QUARANTINE_KEY,
            metadata={**PARTITION_META, **column_schema_metadata(columns.SILVER_CARBON_INTENSITY_QUARANTINE)},
            is_required=False,
            kinds=KINDS,
            description=(
                "Intensity records of usable bronze payloads that silver cannot hold (unparseable time, not 30 "
                "minutes, forecast missing, index outside the five values, value outside 0..1000 gCO2/kWh), each "
                "with the request it came from and the reason. Rebuilt with silver; empty when all is well."
            ),
        ),
    },
    can_subset=True,
    **{k: v for k, v in COMMON.items() if k != "kinds"},
)
def silver_neso_carbon_intensity(context: AssetExecutionContext, bronze: pl.LazyFrame):
    """Subsettable: either output can be materialised alone (e.g. `--select silver/neso_carbon_intensity`);
    both come from the same parse, so only the selected ones are written. Bronze is scanned: each distinct body is
    read once, not once per day it covers."""
    selected = {name for name, key in (("silver", SILVER_INTENSITY_KEY), ("quarantine", QUARANTINE_KEY)) if key in context.selected_asset_keys}
    rows, unusable = bronze_counts(bronze)
    records = transforms.parse_intensity(bronze)
    valid, quarantine = transforms.split_intensity(records)
    if "silver" in selected:
        silver = transforms.build_silver_intensity(valid)
        flags = silver.group_by("data_quality_flag").len().drop_nulls()
        yield Output(
            silver,
            output_name="silver",
            metadata={
                "bronze_rows": MetadataValue.int(rows),
                "bronze_rows_unusable": MetadataValue.int(unusable),
                "records_parsed": MetadataValue.int(records.height),
                "records_quarantined": MetadataValue.int(quarantine.height),
                "superseded_versions": MetadataValue.int(valid.height - silver.height),
                "flagged": MetadataValue.int(int(flags["len"].sum()) if flags.height else 0),
                **{f"flag_{row['data_quality_flag']}": MetadataValue.int(row["len"]) for row in flags.iter_rows(named=True)},
            },
        )
    if quarantine.height:
        first = quarantine.row(0, named=True)
        context.log.warning(
            f"{quarantine.height} NESO intensity record(s) quarantined; first: {first['reason']} "
            f"(from={first['record_from']!r}) in GET {first['request_url']}"
        )
    if "quarantine" in selected:
        yield Output(
            quarantine,
            output_name="quarantine",
            metadata={
                "records_quarantined": MetadataValue.int(quarantine.height),
                "reasons": MetadataValue.json(dict(quarantine.group_by("reason").len().iter_rows()) if quarantine.height else {}),
            },
        )


@asset(
    key_prefix="silver",
    name="neso_generation_mix",
    ins={"bronze": AssetIn(key=["bronze", "neso_generation_mix"])},
    metadata={**PARTITION_META, **column_schema_metadata(columns.SILVER_GENERATION_MIX)},
    description=(
        "GB generation mix per half-hour and fuel (biomass, coal, imports, gas, nuclear, other, hydro, solar, "
        "wind) as generation_fraction (share of generation, 0..1), from the newest usable bronze payload of each "
        "half-hour; unusable answers are never read, so an outage leaves the half-hours out (gold says so)."
    ),
    **COMMON,
)
def silver_neso_generation_mix(context: AssetExecutionContext, bronze: pl.LazyFrame) -> pl.DataFrame:
    mix = transforms.build_silver_mix(bronze)  # bronze scanned: each distinct body read once
    context.add_output_metadata(
        {
            "bronze_rows": MetadataValue.int(bronze_counts(bronze)[0]),
            "periods": MetadataValue.int(mix["period_start"].n_unique()),
        }
    )
    return mix


@asset(
    key_prefix="gold",
    name="neso_carbon_intensity_features",
    ins={
        "intensity": AssetIn(
            key=["silver", "neso_carbon_intensity"],
            partition_mapping=TimeWindowPartitionMapping(start_offset=-1, allow_nonexistent_upstream_partitions=True),
        ),
        "mix": AssetIn(key=["silver", "neso_generation_mix"]),
    },
    metadata={**PARTITION_META, **column_schema_metadata(columns.GOLD_FEATURES)},
    description=(
        "Per half-hour features: forecast error (actual - forecast), absolute and relative error, rolling 24 h "
        "mean and max of intensity (actual, else forecast; windows reach into the previous day), low-carbon share "
        "of generation (nuclear + wind + solar + hydro + biomass, fraction 0..1) and UK-local calendar features. "
        "Built from the intensity alone when the generation mix is missing: low_carbon_share_fraction is then "
        "null and mix_missing_reason says why (the generation mix is auxiliary, energy_assets.bronze.AUXILIARY_RULE)."
    ),
    **COMMON,
)
def gold_neso_carbon_intensity_features(
    context: AssetExecutionContext, intensity: pl.DataFrame, mix: pl.DataFrame
) -> pl.DataFrame:
    days = run_days(context)
    features = transforms.build_features(intensity, mix, days)
    context.add_output_metadata(
        {
            "input_periods_incl_previous_day": MetadataValue.int(intensity.height),
            "periods_without_mix": MetadataValue.int(features["mix_missing_reason"].is_not_null().sum()),
            "periods_without_actual": MetadataValue.int(features["forecast_error_gco2_per_kwh"].null_count()),
        }
    )
    return features


@asset(
    key_prefix="bronze",
    name="neso_regional_intensity",
    metadata=BRONZE_META,
    description=(
        "Raw NESO regional carbon intensity responses (/regional/intensity/{from}/{to}: 17 DNO regions plus GB, "
        "forecast only): one row per distinct response and UK settlement day it covers, same columns and write "
        "rules as bronze/neso_carbon_intensity."
    ),
    **REGIONAL_COMMON,
)
def bronze_neso_regional_intensity(context: AssetExecutionContext, neso: NesoClient) -> pl.DataFrame:
    return _fetch_to_bronze(context, neso, REGIONAL)


@asset(
    key_prefix="silver",
    name="neso_regional_intensity",
    ins={"bronze": AssetIn(key=["bronze", "neso_regional_intensity"])},
    metadata={**PARTITION_META, **column_schema_metadata(columns.SILVER_REGIONAL_INTENSITY)},
    description=(
        "Forecast carbon intensity per half-hour and NESO region: period_start/period_end (UTC), settlement_date and "
        "settlement_period, region_id (1..17 DNO regions, 18 = GB), region_shortname, dno_region, "
        "forecast_gco2_per_kwh, intensity_index, fetched_at of the version kept (newest fetch wins). Unique on "
        "(period_start, region_id). The regional endpoint publishes no actuals."
    ),
    **REGIONAL_COMMON,
)
def silver_neso_regional_intensity(context: AssetExecutionContext, bronze: pl.LazyFrame) -> pl.DataFrame:
    records = regional_transforms.parse_regional(bronze)  # bronze scanned: each distinct body read once
    silver = regional_transforms.build_silver_regional(records)
    rows, unusable = bronze_counts(bronze)
    context.add_output_metadata(
        {
            "bronze_rows": MetadataValue.int(rows),
            "bronze_rows_unusable": MetadataValue.int(unusable),
            "records_parsed": MetadataValue.int(records.height),
            "superseded_versions": MetadataValue.int(records.height - silver.height),
            "periods": MetadataValue.int(silver["period_start"].n_unique()),
            "regions": MetadataValue.int(silver["region_id"].n_unique()),
        }
    )
    return silver


NESO_REGIONAL_ASSETS = [bronze_neso_regional_intensity, silver_neso_regional_intensity]

NESO_ASSETS = [
    bronze_neso_carbon_intensity,
    bronze_neso_generation_mix,
    silver_neso_carbon_intensity,
    silver_neso_generation_mix,
    gold_neso_carbon_intensity_features,
]
