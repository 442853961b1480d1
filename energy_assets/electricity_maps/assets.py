"""Electricity Maps assets: bronze responses -> silver zone-hours -> gold ML features (UTC day x zone)."""

import datetime as dt
from collections import defaultdict

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    BackfillPolicy,
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

from energy_assets.electricity_maps.client import (
    AccessDeniedError,
    ElectricityMapsError,
    ElectricityMapsResource,
    Fetch,
    InvalidApiKeyError,
)
from energy_assets.electricity_maps.transforms import (
    BRONZE_SCHEMA,
    FEATURE_COLUMNS,
    build_features,
    build_silver,
    partition_targets,
)
from energy_assets.http import HttpSession
from energy_assets.partitions import utc_day_by_zone

GROUP = "electricity_maps"
KINDS = {"delta", "polars"}
PARTITION_EXPR = {"date": "date", "zone": "zone"}
BRONZE_KEYS = ["date", "zone", "endpoint", "content_hash"]

previous_day_same_zone = MultiPartitionMapping(
    {
        "date": DimensionPartitionMapping("date", TimeWindowPartitionMapping(start_offset=-1)),
        "zone": DimensionPartitionMapping("zone", IdentityPartitionMapping()),
    }
)


def run_partitions(context: AssetExecutionContext) -> list[tuple[str, str]]:
    """(date, zone) pairs of the run, whether one partition or a single-run range."""
    return [(k.keys_by_dimension["date"], k.keys_by_dimension["zone"]) for k in context.partition_keys]


def bronze_rows(fetches: list[Fetch], problems: dict[int, str] | None = None) -> pl.DataFrame:
    """One row per response per partition it is stored for. The key is never part of a response.

    `problems` maps the index of an unusable fetch to why it failed; that row is kept (the raw answer) with
    `problem` set and silver ignores it.
    """
    problems = problems or {}
    rows = [
        {
            "date": day,
            "zone": f.zone,
            "fetched_at": f.response.fetched_at,
            "endpoint": f.endpoint,
            "request_kind": f.request_kind,
            "http_status": f.response.status,
            "body": f.response.text,
            "content_hash": f.content_hash,
            "attempts": f.response.attempts,
            "problem": problems.get(i),
        }
        for i, f in enumerate(fetches)
        for day in f.dates
    ]
    return pl.DataFrame(rows, schema=BRONZE_SCHEMA)


def _fetch_bronze(context: AssetExecutionContext, kind: str, electricity_maps: ElectricityMapsResource, http: HttpSession):
    """Yields the bronze output, then raises if a request failed for good.

    An unusable answer (error status, `{}`, truncated or non-JSON body, missing fields) is written to bronze
    with `problem` set, together with the responses fetched before it, and the step then fails naming the
    request: the raw answer is kept and nothing downstream (silver, gold) is built from an incomplete fetch.
    A failure without any answer (refused connection, timeout, missing key) or a 401/403 (about the key, not
    the data) fails before bronze is written.
    """
    api = electricity_maps.api(http)
    api.require_key()
    days_by_zone: dict[str, list[dt.date]] = defaultdict(list)
    for day, zone in run_partitions(context):
        days_by_zone[zone].append(dt.date.fromisoformat(day))
    fetches: list[Fetch] = []
    problems: dict[int, str] = {}
    failure: ElectricityMapsError | None = None
    for zone, days in sorted(days_by_zone.items()):
        try:
            fetches.extend(api.fetch_days(kind, zone, days))
        except ElectricityMapsError as exc:
            if exc.response is None or isinstance(exc, (InvalidApiKeyError, AccessDeniedError)):
                raise  # nothing arrived, or an answer about our credentials rather than the data: nothing to keep
            fetches.extend(exc.fetched)
            problems[len(fetches)] = str(exc)
            request_kind = (exc.endpoint or "").split("?")[0].rsplit("/", 1)[-1]
            fetches.append(Fetch(kind, zone, request_kind, exc.endpoint or "", exc.response, exc.dates))
            failure = exc
            break  # like a failed NESO chunk: no further requests once one has failed for good
    frame = bronze_rows(fetches, problems)
    metadata = {
        "requests": MetadataValue.int(len(fetches)),
        "endpoints": MetadataValue.json(sorted({f.endpoint for f in fetches})),
        "response_bytes": MetadataValue.int(sum(len(f.response.text) for f in fetches)),
        "retried_attempts": MetadataValue.int(sum(f.response.attempts - 1 for f in fetches)),
        "mode": MetadataValue.text("replay" if api.replay else ("paid tier" if api.paid_tier else "free tier")),
        "failed_requests": MetadataValue.int(len(problems)),
        "first_problem": MetadataValue.text(next(iter(problems.values()), "")),
    }
    yield Output(frame, metadata=metadata)
    if failure is not None:
        context.log.error(f"unusable answer kept in bronze: {failure}")
        raise failure


BRONZE_METADATA = {"partition_expr": PARTITION_EXPR, "write_mode": "append", "merge_keys": BRONZE_KEYS}
BRONZE_DOC = (
    "Raw Electricity Maps `{kind}` responses, append-only: one row per API response per (UTC day, zone) "
    "partition it covers, with `fetched_at`, `endpoint` (path and query, never the key), `http_status`, the "
    "verbatim `body` and its SHA-256 `content_hash`. Keys (date, zone, endpoint, content_hash) make re-fetching "
    "identical data a no-op while every revision adds a row. Free tier: `history` (last 24 h); paid tier and "
    "replay: `past-range`."
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
    def electricity_maps_carbon_intensity(
        context: AssetExecutionContext, electricity_maps: ElectricityMapsResource, http: HttpSession
    ):
        yield from _fetch_bronze(context, "carbon-intensity", electricity_maps, http)


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
    def electricity_maps_power_breakdown(
        context: AssetExecutionContext, electricity_maps: ElectricityMapsResource, http: HttpSession
    ):
        yield from _fetch_bronze(context, "power-breakdown", electricity_maps, http)


    SILVER_METADATA = {"partition_expr": PARTITION_EXPR}


    @multi_asset(
        outs={
            "electricity_maps_energy": AssetOut(
                key_prefix="silver",
                metadata=SILVER_METADATA,
                kinds=KINDS,
                description=(
                    "One row per (zone, UTC hour `datetime`): carbon intensity (gCO2eq/kWh, lifecycle), the four totals "
                    "(_mw), fossil-free and renewable percentages, one column per production and consumption source "
                    "(e.g. `production_hydro_discharge_mw`, negative when pumping; null where the zone has no such "
                    "source), `unknown_sources` for source keys the API adds later, `is_estimated`, `estimation_method` "
                    "and `updated_at`. Power and carbon are joined on zone and hour; per hour the newest `updatedAt` "
                    "(then the newest fetch) of all bronze responses wins. Rebuilt from bronze on every run."
                ),
            ),
            "electricity_maps_exchanges": AssetOut(
                key_prefix="silver",
                metadata=SILVER_METADATA,
                kinds=KINDS,
                description=(
                    "Cross-border flows in tidy form: one row per (zone, UTC hour, neighbour_zone, direction "
                    "import|export) with `power_mw`, from the same winning power-breakdown revision as "
                    "silver/electricity_maps_energy. Hours with empty import/export maps have no rows."
                ),
            ),
            "electricity_maps_quarantine": AssetOut(
                key_prefix="silver",
                metadata=SILVER_METADATA,
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
        stats = {k: MetadataValue.int(v) for k, v in silver.stats.items()}
        estimated = int(silver.energy["is_estimated"].fill_null(False).sum())
        yield Output(
            silver.energy,
            output_name="electricity_maps_energy",
            metadata={
                **stats,
                "estimated_hours": MetadataValue.int(estimated),
                "hours_without_carbon_intensity": MetadataValue.int(int((~silver.energy["has_carbon_intensity"]).sum())),
                "hours_without_power_breakdown": MetadataValue.int(int((~silver.energy["has_power_breakdown"]).sum())),
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
        metadata={"partition_expr": PARTITION_EXPR},
        ins={"energy": AssetIn(key=["silver", "electricity_maps_energy"], partition_mapping=previous_day_same_zone)},
        description=(
            "ML features per zone and UTC hour, ready to train on: `hour`, `day_of_week` (1 = Monday), `month`, the "
            "current consumption/production/import/export totals and carbon intensity, and for each of them "
            "`lag_<col>_1h` (the value exactly one hour earlier in the same zone, null when that hour is missing) and "
            "`rolling_avg_<col>_24h` (mean over the 24 h ending at t, by time), computed across day boundaries (the "
            "previous day of the same zone is an input) and never across zones. Load it with "
            "`pl.read_delta('<lake>/gold/electricity_maps_ml_features')`."
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
