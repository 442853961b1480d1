"""Smart-meter assets: raw (files + database) -> silver -> presentation, on UK settlement days.

Thin: load, call a transform, return, attach metadata. The design is in the package docstring.
"""

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetSpec,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)
from dagster_duckdb import DuckDBResource

from energy_assets import settings
from energy_assets.column_docs import column_schema_metadata
from energy_assets.lake.io_manager import FrameStream
from energy_assets.lake.resource import LakeResource
from energy_assets.partitions import uk_settlement_days
from energy_assets.smart_meter import columns, ingestion, pipeline, presentation, silver, source
from energy_assets.smart_meter.source import SmartMeterSource

GROUP = "smart_meter"

RAW_READINGS = AssetKey(["raw", "smart_meter_readings"])
INGESTION_LOG = AssetKey(["raw", "ingestion_log"])
RAW_AGREEMENTS = AssetKey(["raw", "agreements"])
RAW_PRODUCTS = AssetKey(["raw", "products"])
RAW_METERPOINTS = AssetKey(["raw", "meterpoints"])
SILVER_READINGS = AssetKey(["silver", "smart_meter_readings"])
QUARANTINE = AssetKey(["silver", "smart_meter_quarantine"])
ACTIVE_AGREEMENTS = AssetKey(["presentation", "active_agreements"])
TOTAL_HALF_HOUR = AssetKey(["presentation", "total_consumption_half_hour"])
PER_PRODUCT_DAY = AssetKey(["presentation", "consumption_per_product_per_day"])
GOLD_HALF_HOUR = AssetKey(["presentation", "gold_aggregate_per_half_hour"])
GOLD_AVG_BY_PRODUCT = AssetKey(["presentation", "gold_avg_half_hour_by_product"])
WITHOUT_AGREEMENT = AssetKey(["presentation", "readings_without_agreement"])

DAY = {"partition_expr": "settlement_date"}
SNAPSHOT = {"partition_expr": "snapshot_date"}
# Chunk sizes (SMART_METER_CHUNK_DAYS, SMART_METER_INGEST_CHUNK_BYTES) are read when a run starts; see pipeline.py.
COMMON = dict(partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run(), group_name=GROUP)


def run_days(context: AssetExecutionContext) -> list[dt.date]:
    """The UK settlement days of the run (one partition or a single-run range)."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def _name(key: AssetKey) -> str:
    return key.to_python_identifier()


def _outs(specs: list[AssetSpec]) -> dict[str, AssetOut]:
    """Typed outputs (the IO manager writes them) described by specs; inputs feed every output."""
    return {
        _name(spec.key): AssetOut.from_spec(spec.replace_attributes(deps=[]).merge_attributes(metadata=column_schema_metadata(columns.TABLES[spec.key])))
        for spec in specs
    }


# ------------------------------------------------------------------------------------------------ raw
@multi_asset(
    name="smart_meter_ingestion",
    outs=_outs([
        AssetSpec(
            RAW_READINGS,
            description=(
                "Smart-meter readings exactly as delivered in the readings folder (text cells), one row per row of "
                "each `<meterpoint_id>.json`, with source_file, source_row and "
                "ingested_at. Partitioned by the UK local date of interval_start. A run reads only file versions "
                "it has not ingested for its days (see raw/ingestion_log); a new version of a file replaces that "
                "file's rows on the days its rows touch."
            ),
            metadata=DAY,
            kinds={"delta", "polars", "duckdb"},
            group_name=GROUP,
        ),
        AssetSpec(
            INGESTION_LOG,
            description=(
                "Ingestion log: one row per file version and settlement day ingested: file name, SHA-256 content "
                "hash, size, mtime, rows in the file, first/last local interval, every day its rows touch, rows "
                "written to that day, parse error (malformed file) and time. A version already logged for a day "
                "is not read again for that day; a changed file is."
            ),
            metadata={**DAY, "write_mode": "append", "merge_keys": ["file_name", "content_hash", "settlement_date"]},
            kinds={"delta", "polars"},
            group_name=GROUP,
        ),
    ]),
    **COMMON,
)
def smart_meter_ingestion(context: AssetExecutionContext, smart_meter: SmartMeterSource, lake: LakeResource):
    days = run_days(context)
    run = pipeline.Ingestion(lake.lake(), smart_meter.folder(), days, settings.smart_meter_ingest_chunk_bytes())
    yield Output(
        FrameStream(schema=ingestion.RAW_SCHEMA, batches=run.raw_batches, metadata=run.metadata),
        output_name=_name(RAW_READINGS),
        metadata={
            "files_in_folder": run.folder.height,
            "files_read": len(run.to_read),
            "files_not_opened_already_ingested": run.folder.height - len(run.to_read),
        },
    )
    log_new = run.log_rows()
    context.log.info(
        f"{run.folder.height} files in {smart_meter.folder()}; read {len(run.to_read)}; "
        f"{run.metadata['file_days_replaced']} (file, day) pairs (re)ingested for {days[0]}..{days[-1]}"
    )
    yield Output(log_new, output_name=_name(INGESTION_LOG), metadata={"versions_logged": log_new.height})


@multi_asset(
    name="smart_meter_database",
    outs=_outs([
        AssetSpec(
            RAW_AGREEMENTS,
            description=(
                "The `agreement` table of the utility's SQLite database (SMART_METER_DB_PATH) as delivered, one "
                "snapshot per settlement day processed (snapshot_date): silver uses the snapshot of the reading's day."
            ),
            metadata=SNAPSHOT,
            kinds={"delta", "polars", "sqlite"},
            group_name=GROUP,
        ),
        AssetSpec(
            RAW_PRODUCTS,
            description="The `product` table (display_name is not unique; product_id is), one snapshot per settlement day.",
            metadata=SNAPSHOT,
            kinds={"delta", "polars", "sqlite"},
            group_name=GROUP,
        ),
        AssetSpec(
            RAW_METERPOINTS,
            description="The `meterpoint` table (meterpoint_id -> one of 13 regions), one snapshot per settlement day.",
            metadata=SNAPSHOT,
            kinds={"delta", "polars", "sqlite"},
            group_name=GROUP,
        ),
    ]),
    **COMMON,
)
def smart_meter_database(context: AssetExecutionContext, smart_meter: SmartMeterSource):
    days = run_days(context)
    tables = source.read_static_tables(Path(smart_meter.db_path))
    for key, table in ((RAW_AGREEMENTS, tables.agreements), (RAW_PRODUCTS, tables.products), (RAW_METERPOINTS, tables.meterpoints)):
        yield Output(
            ingestion.snapshot(table, days),
            output_name=_name(key),
            metadata={"rows_in_database": table.height, "snapshot_days": len(days)},
        )


# ------------------------------------------------------------------------------------------------ silver
@multi_asset(
    name="smart_meter_silver",
    ins={
        "raw_readings": AssetIn(RAW_READINGS),
        "agreements": AssetIn(RAW_AGREEMENTS),
        "products": AssetIn(RAW_PRODUCTS),
        "meterpoints": AssetIn(RAW_METERPOINTS),
    },
    outs=_outs([
        AssetSpec(
            SILVER_READINGS,
            description=(
                "One row per (meterpoint_id, interval_start_utc): UTC and UK-local start, consumption_kwh, and the "
                "agreement, product (product_id, product_display_name, is_variable) and region valid at the "
                "reading's time, half-open [valid_from, valid_to) in UK local days. Duplicates removed (first in file "
                "order kept); the ambiguous autumn hour: first occurrence in file order = BST, second = GMT. "
                "Readings without a covering agreement are kept with null agreement columns; "
                "covering_agreement_count > 1 marks overlapping agreements (the latest-starting one is used)."
            ),
            deps=[RAW_READINGS, RAW_AGREEMENTS, RAW_PRODUCTS, RAW_METERPOINTS],
            metadata=DAY,
            kinds={"delta", "polars"},
            group_name=GROUP,
        ),
        AssetSpec(
            QUARANTINE,
            description=(
                "Every raw row that is not in silver, with the reason and its source file/row: disposition "
                "'quarantined' (malformed file, bad or non-existent timestamp, off the half-hour, missing or unknown "
                "meterpoint, non-numeric, negative or implausible consumption) or 'duplicate'. "
                "Raw rows = silver rows + quarantine rows, per day."
            ),
            deps=[RAW_READINGS],
            metadata=DAY,
            kinds={"delta", "polars"},
            group_name=GROUP,
        ),
    ]),
    **COMMON,
)
def smart_meter_silver(
    context: AssetExecutionContext,
    raw_readings: pl.LazyFrame,
    agreements: pl.DataFrame,
    products: pl.DataFrame,
    meterpoints: pl.DataFrame,
):
    run = pipeline.Silver(raw_readings, agreements, products, meterpoints, run_days(context), settings.smart_meter_chunk_days())
    yield Output(FrameStream(schema=silver.SILVER_SCHEMA, batches=run.readings, metadata=run.metadata), output_name=_name(SILVER_READINGS))
    stats = run.stats
    if stats["readings_without_agreement"]:
        context.log.warning(f"{stats['readings_without_agreement']} readings have no covering agreement (kept, product columns null)")
    quarantine = run.quarantine()
    yield Output(
        quarantine,
        output_name=_name(QUARANTINE),
        metadata={
            "quarantined": stats["quarantined"],
            "duplicates": stats["duplicates"],
            "reasons": MetadataValue.json(silver.quarantine_reasons(quarantine)),
        },
    )


# ------------------------------------------------------------------------------------------------ presentation
@multi_asset(
    name="smart_meter_presentation",
    ins={"silver": AssetIn(SILVER_READINGS)},
    outs=_outs([
        AssetSpec(
            TOTAL_HALF_HOUR,
            description="One row per half-hour (interval_start, UTC): distinct meterpoints with readings and total kWh (to the Wh), all readings.",
            deps=[SILVER_READINGS],
            metadata=DAY,
            kinds={"delta", "duckdb"},
            group_name=GROUP,
        ),
        AssetSpec(
            PER_PRODUCT_DAY,
            description=(
                "One row per product display name per UK day (date): distinct meterpoints with readings and total kWh. "
                "Products sharing a display name are one row; readings without an agreement are in "
                "presentation/readings_without_agreement instead."
            ),
            deps=[SILVER_READINGS],
            metadata={"partition_expr": "date"},
            kinds={"delta", "duckdb"},
            group_name=GROUP,
        ),
        AssetSpec(
            GOLD_HALF_HOUR,
            description="The half-hour aggregate as served to dashboards: UTC and UK-local start, meterpoints, total kWh and kWh per meterpoint.",
            deps=[SILVER_READINGS],
            metadata=DAY,
            kinds={"delta", "polars"},
            group_name=GROUP,
        ),
        AssetSpec(
            GOLD_AVG_BY_PRODUCT,
            description="Average kWh per reading per half-hour (interval_start, UTC) per product display name, with the reading count.",
            deps=[SILVER_READINGS],
            metadata=DAY,
            kinds={"delta", "duckdb"},
            group_name=GROUP,
        ),
        AssetSpec(
            WITHOUT_AGREEMENT,
            description="Readings no agreement covers, per meterpoint and day (count, kWh, first/last half-hour): reported, not dropped.",
            deps=[SILVER_READINGS],
            metadata=DAY,
            kinds={"delta", "duckdb"},
            group_name=GROUP,
        ),
    ]),
    **COMMON,
)
def smart_meter_presentation(context: AssetExecutionContext, silver: pl.LazyFrame, smart_meter_duckdb: DuckDBResource):
    with smart_meter_duckdb.get_connection() as con:
        tables = pipeline.presentation_tables(con, silver, run_days(context), settings.smart_meter_chunk_days())
    total, per_product, without = tables["total"], tables["per_product"], tables["without"]
    yield Output(total, output_name=_name(TOTAL_HALF_HOUR), metadata={"total_consumption_kwh": float(total["total_consumption_kwh"].sum())})
    yield Output(per_product, output_name=_name(PER_PRODUCT_DAY), metadata={"products": per_product["product_display_name"].n_unique()})
    yield Output(tables["gold"], output_name=_name(GOLD_HALF_HOUR))
    yield Output(tables["avg"], output_name=_name(GOLD_AVG_BY_PRODUCT))
    yield Output(
        without,
        output_name=_name(WITHOUT_AGREEMENT),
        metadata={
            "readings_without_agreement": int(without["reading_count"].sum()),
            "meterpoints_without_agreement": without["meterpoint_id"].n_unique(),
        },
    )


@multi_asset(
    name="smart_meter_active_agreements",
    ins={"agreements": AssetIn(RAW_AGREEMENTS), "products": AssetIn(RAW_PRODUCTS)},
    outs=_outs([
        AssetSpec(
            ACTIVE_AGREEMENTS,
            description=(
                "Agreements active on the as-of date (SMART_METER_AS_OF_DATE, default 2021-01-01) with strict bounds "
                "valid_from < as_of AND (valid_to IS NULL OR valid_to > as_of): agreement id, meterpoint id, product "
                "display name, is_variable; one set per database snapshot (snapshot_date)."
            ),
            deps=[RAW_AGREEMENTS, RAW_PRODUCTS],
            metadata=SNAPSHOT,
            kinds={"delta", "polars"},
            group_name=GROUP,
        )
    ]),
    **COMMON,
)
def smart_meter_active_agreements(
    context: AssetExecutionContext, agreements: pl.DataFrame, products: pl.DataFrame, smart_meter: SmartMeterSource
):
    as_of = smart_meter.as_of()
    active = presentation.active_agreements(agreements, products, as_of)
    yield Output(active, output_name=_name(ACTIVE_AGREEMENTS), metadata={"as_of_date": as_of.isoformat()})


ASSETS = [smart_meter_ingestion, smart_meter_database, smart_meter_silver, smart_meter_presentation, smart_meter_active_agreements]
