"""Electricity Maps assets: bronze responses -> silver zone-hours -> gold ML features (UTC day x zone)."""

import datetime as dt
from collections import defaultdict

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    AutomationCondition,
    BackfillPolicy,
    DataVersion,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MetadataValue,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    Output,
    TimeWindowPartitionMapping,
    asset,
    multi_asset,
)

from energy_assets.bronze import bronze_metadata, fetch_columns, requests_by_partition
from energy_assets.column_docs import column_schema_metadata
from energy_assets.content_version import content_version
from energy_assets.electricity_maps import columns
from energy_assets.electricity_maps.client import ElectricityMapsResource, Fetch
from energy_assets.electricity_maps.transforms import (
    BRONZE_SCHEMA,
    FEATURE_COLUMNS,
    build_features,
    build_silver,
    partition_targets,
)
from energy_assets.partitions import utc_day_by_zone

GROUP = "electricity_maps"
KINDS = {"delta", "polars"}
PARTITION_EXPR = {"date": "date", "zone": "zone"}

previous_day_same_zone = MultiPartitionMapping(
    {
        "date": DimensionPartitionMapping("date", TimeWindowPartitionMapping(start_offset=-1)),
        "zone": DimensionPartitionMapping("zone", IdentityPartitionMapping()),
    }
)


# silver columns that move when an identical answer is fetched again: not part of the content version
FETCH_BOOKKEEPING = ("carbon_fetched_at", "power_fetched_at")


def recompute_days_whose_input_content_changed() -> AutomationCondition:
    """`eager()` for any day (not only the latest), triggered by a changed *data version* of an input partition
    rather than by any new materialisation of it.

    Silver reports the content hash of its rows as its data version, so the daily revision re-fetch, which rebuilds
    silver for every lookback day, recomputes gold only for the days whose silver content changed (and the day
    after each, whose 24 h rolling means and 1 h lags read it). Runs that built gold themselves do not re-trigger it;
    the first evaluation requests nothing.
    """
    content_changed = AutomationCondition.any_deps_match(
        (AutomationCondition.data_version_changed() & ~AutomationCondition.executed_with_root_target()).with_label(
            "content changed, in a run that did not build this asset"
        )
        | AutomationCondition.will_be_requested()
    ).with_label("an input partition's content changed")
    return (
        content_changed.since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("recompute days whose input content changed")


def run_partitions(context: AssetExecutionContext) -> list[tuple[str, str]]:
    """(date, zone) pairs of the run, whether one partition or a single-run range."""
    return [(k.keys_by_dimension["date"], k.keys_by_dimension["zone"]) for k in context.partition_keys]


def bronze_rows(fetches: list[Fetch]) -> pl.DataFrame:
    """One row per answer per partition it is stored for (the bronze contract). The key is never part of it."""
    rows = [
        {"date": day, "zone": f.zone, **fetch_columns(f), "request_kind": f.request_kind}
        for f in fetches
        for day in f.dates
    ]
    return pl.DataFrame(rows, schema=BRONZE_SCHEMA)


def _fetch_bronze(context: AssetExecutionContext, kind: str, electricity_maps: ElectricityMapsResource) -> Output:
    """Every answer the run's partitions need, usable or not (the bronze check fails the run before silver on
    an unusable one). Errors about the caller (no key, a rejected key, no access) raise before anything is written."""
    api = electricity_maps.api()
    api.require_key()
    days_by_zone: dict[str, list[dt.date]] = defaultdict(list)
    for day, zone in run_partitions(context):
        days_by_zone[zone].append(dt.date.fromisoformat(day))
    fetches: list[Fetch] = []
    for zone, days in sorted(days_by_zone.items()):
        fetches.extend(api.fetch_days(kind, zone, days))
    problems = [f.problem for f in fetches if f.problem]
    for problem in problems:
        context.log.warning(f"unusable answer kept in bronze: {problem}")
    metadata = {
        "requests": MetadataValue.int(len(fetches)),
        "response_bytes": MetadataValue.int(sum(len(f.body) for f in fetches)),
        "retried_attempts": MetadataValue.int(sum(max(f.attempts - 1, 0) for f in fetches)),
        "mode": MetadataValue.text("replay" if api.replay else ("paid tier" if api.paid_tier else "free tier")),
        "unusable_answers": MetadataValue.int(len(problems)),
        "first_problem": MetadataValue.text(problems[0] if problems else ""),
    }
    # each partition's own request(s), not every request of the run on each partition
    keys = dict(zip(run_partitions(context), context.partition_keys, strict=True))  # (date, zone) -> its key
    answered = [(keys[(day.isoformat(), f.zone)], f.request_url) for f in fetches for day in f.dates]
    for key, own in requests_by_partition(answered).items():
        context.add_asset_metadata({"request_urls": MetadataValue.json(sorted(own))}, partition_key=key)
    return Output(bronze_rows(fetches), metadata=metadata)


BRONZE_METADATA = {**bronze_metadata(PARTITION_EXPR), **column_schema_metadata(columns.BRONZE)}
BRONZE_DOC = (
    "Raw Electricity Maps `{kind}` answers, the one bronze contract (energy_assets/bronze.py): one row per answer "
    "per (UTC day, zone) partition it covers, with `fetched_at`, `request_url` (path and query, never the key), "
    "`http_status`, the verbatim `body`, its SHA-256 `content_hash`, `attempts`, `problem` (null when usable) and "
    "`request_kind`. Merged on (date, zone, request_url, content_hash): a revision adds a row, an identical refetch "
    "moves `fetched_at`. Unusable answers (5xx, throttled, `{{}}`, not JSON, no data) are kept and the blocking "
    "bronze check fails the run before silver. Free tier: `history` (last 24 h); paid tier and replay: `past-range`."
)


def build_assets(partitions_def: MultiPartitionsDefinition = utc_day_by_zone) -> list:
    """The four asset definitions over `partitions_def` (UTC day x zone; tests pass other zone sets)."""

    @asset(
        key_prefix="bronze",
        name="electricity_maps_carbon_intensity",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds=KINDS,
        metadata=BRONZE_METADATA,
        description=BRONZE_DOC.format(kind="carbon-intensity"),
    )
    def electricity_maps_carbon_intensity(context: AssetExecutionContext, electricity_maps: ElectricityMapsResource):
        return _fetch_bronze(context, "carbon-intensity", electricity_maps)


    @asset(
        key_prefix="bronze",
        name="electricity_maps_power_breakdown",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds=KINDS,
        metadata=BRONZE_METADATA,
        description=BRONZE_DOC.format(kind="power-breakdown"),
    )
    def electricity_maps_power_breakdown(context: AssetExecutionContext, electricity_maps: ElectricityMapsResource):
        return _fetch_bronze(context, "power-breakdown", electricity_maps)


    SILVER_METADATA = {"partition_expr": PARTITION_EXPR}


    @multi_asset(
        outs={
            "electricity_maps_energy": AssetOut(
                key_prefix="silver",
                metadata={**SILVER_METADATA, **column_schema_metadata(columns.SILVER_ENERGY)},
                kinds=KINDS,
                description=(
                    "One row per (zone, UTC hour `datetime`): carbon intensity (gCO2eq/kWh, lifecycle), the four totals "
                    "(_mw), `fossil_free_fraction` and `renewable_fraction` (0..1), one column per production and consumption source "
                    "(e.g. `production_hydro_discharge_mw`, negative when pumping; null where the zone has no such "
                    "source), `unknown_sources` for source keys the API adds later, `is_estimated`, `estimation_method` "
                    "and `updated_at`. An hour one feed has no data for is still built from the other: its columns are null and "
                    "`missing_feed` names the missing feed (carbon-intensity | power-breakdown). Power and carbon are joined on zone and hour; per hour the newest `updatedAt` "
                    "(then the newest fetch) of all bronze responses wins. Rebuilt from bronze on every run; its data version "
                    "is the hash of its rows without the fetch times (`content_version`), so a re-fetch that changed nothing "
                    "leaves it unchanged and gold is not recomputed."
                ),
            ),
            "electricity_maps_exchanges": AssetOut(
                key_prefix="silver",
                metadata={**SILVER_METADATA, **column_schema_metadata(columns.SILVER_EXCHANGES)},
                kinds=KINDS,
                description=(
                    "Cross-border flows in tidy form: one row per (zone, UTC hour, neighbour_zone, direction "
                    "import|export) with `power_mw`, from the same winning power-breakdown revision as "
                    "silver/electricity_maps_energy. Hours with empty import/export maps have no rows."
                ),
            ),
            "electricity_maps_quarantine": AssetOut(
                key_prefix="silver",
                metadata={**SILVER_METADATA, **column_schema_metadata(columns.SILVER_QUARANTINE)},
                kinds=KINDS,
                description=(
                    "Hours from bronze responses that could not be used, with the reason (missing or unparseable "
                    "datetime, not on the hour, wrong zone, non-numeric value, body not JSON) and the raw JSON row."
                ),
            ),
        },
        ins={
            "carbon_bronze": AssetIn(key=["bronze", "electricity_maps_carbon_intensity"]),
            "power_bronze": AssetIn(key=["bronze", "electricity_maps_power_breakdown"]),
        },
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
    )
    def electricity_maps_silver(context: AssetExecutionContext, carbon_bronze: pl.DataFrame, power_bronze: pl.DataFrame):
        silver = build_silver(carbon_bronze, power_bronze)
        # one version for the run's partitions: the revision schedule runs one (day, zone) at a time, so there it
        # is per partition; a range run gives every partition of the range the version of the whole range
        version = content_version(silver.energy, sort_by=("zone", "datetime"), ignore=FETCH_BOOKKEEPING)
        stats = {k: MetadataValue.int(v) for k, v in silver.stats.items()}
        estimated = int(silver.energy["is_estimated"].fill_null(False).sum())
        yield Output(
            silver.energy,
            output_name="electricity_maps_energy",
            data_version=DataVersion(version),
            metadata={
                "content_version": MetadataValue.text(version),
                **stats,
                "estimated_hours": MetadataValue.int(estimated),
                "hours_without_carbon_intensity": MetadataValue.int(int((~silver.energy["has_carbon_intensity"]).sum())),
                "hours_without_power_breakdown": MetadataValue.int(int((~silver.energy["has_power_breakdown"]).sum())),
                "hours_with_null_carbon_intensity": MetadataValue.int(
                    int((silver.energy["has_carbon_intensity"] & silver.energy["carbon_intensity_gco2_per_kwh"].is_null()).sum())
                ),
                "unknown_source_keys": MetadataValue.json(silver.unknown_sources),
                "bronze_responses": MetadataValue.int(carbon_bronze.height + power_bronze.height),
            },
        )
        yield Output(
            silver.exchanges,
            output_name="electricity_maps_exchanges",
            metadata={"neighbours": MetadataValue.json(sorted(silver.exchanges["neighbour_zone"].unique().to_list()))},
        )
        yield Output(
            silver.quarantine,
            output_name="electricity_maps_quarantine",
            metadata={"quarantined": MetadataValue.int(silver.quarantine.height)},
        )


    @asset(
        key_prefix="gold",
        name="electricity_maps_ml_features",
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds=KINDS,
        metadata={"partition_expr": PARTITION_EXPR, **column_schema_metadata(columns.GOLD_ML_FEATURES)},
        ins={"energy": AssetIn(key=["silver", "electricity_maps_energy"], partition_mapping=previous_day_same_zone)},
        automation_condition=recompute_days_whose_input_content_changed(),
        description=(
            "ML features per zone and UTC hour, ready to train on: `hour`, `day_of_week` (1 = Monday), `month`, the "
            "current consumption/production/import/export totals and carbon intensity, and for each of them "
            "`lag_<col>_1h` (the value exactly one hour earlier in the same zone, null when that hour is missing) and "
            "`rolling_avg_<col>_24h` (mean over the 24 h ending at t, by time), computed across day boundaries (the "
            "previous day of the same zone is an input) and never across zones. Load it with "
            "`pl.read_delta('<lake>/gold/electricity_maps_ml_features')`. Built with silver by the sensor and backfills; "
            "after the daily revision re-fetch (bronze and silver only) the electricity_maps_automation sensor "
            "recomputes only the days whose silver content version changed, and the day after each."
        ),
    )
    def electricity_maps_ml_features(context: AssetExecutionContext, energy: pl.DataFrame) -> pl.DataFrame:
        targets = partition_targets(run_partitions(context))
        features = build_features(energy, targets)
        context.add_output_metadata(
            {
                "input_hours_incl_previous_day": MetadataValue.int(energy.height),
                "feature_columns": MetadataValue.json(FEATURE_COLUMNS),
                "rows_with_missing_lag": MetadataValue.int(
                    int(features.select(pl.any_horizontal([pl.col(c).is_null() for c in FEATURE_COLUMNS if c.startswith("lag_")])).to_series().sum())
                ),
            }
        )
        return features

    return [electricity_maps_carbon_intensity, electricity_maps_power_breakdown, electricity_maps_silver, electricity_maps_ml_features]


ASSETS = build_assets()
