"""Smart-meter assets: raw (files + database) -> silver -> presentation, on UK settlement days.

Thin: load, call a transform, return, attach metadata. The design is in the package docstring.

`build_assets(buckets)` builds them for a bucket count (`SMART_METER_BUCKETS`, read once at load, gives
`ASSETS`). With one bucket every asset is on UK days. With N > 1 the per-meterpoint assets (raw readings, the
ingestion log, silver readings and quarantine) are on UK day x meterpoint bucket, with a `meterpoint_bucket`
column that is a physical Delta partition column next to the day, so the N runs of a day write disjoint files
of the same tables; the presentation aggregates stay on UK days and read every bucket of their day
(`MultiToSingleDimensionPartitionMapping` on `date`).

The database (agreements, products, meterpoints) and active agreements are not daily facts: they are
unpartitioned tables versioned by content (write mode `replace_if_changed`: a new Delta version only when the
delivered rows change, so the table's Delta history is the database's history), with the content hash as the
Dagster data version. Silver joins them as of each reading's day through the agreements' validity dates.
"""

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetSelection,
    AssetSpec,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    Config,
    DataVersion,
    MetadataValue,
    MultiPartitionKey,
    MultiToSingleDimensionPartitionMapping,
    Output,
    multi_asset,
)
from dagster_duckdb import DuckDBResource
from pydantic import Field

from energy_assets import settings
from energy_assets.column_docs import column_schema_metadata
from energy_assets.content_version import content_version
from energy_assets.lake.io_manager import FrameStream
from energy_assets.lake.resource import LakeResource
from energy_assets.partitions import smart_meter_bucket_count, smart_meter_partitions, uk_settlement_days
from energy_assets.smart_meter import buckets as bucketing
from energy_assets.smart_meter import columns, pipeline, presentation, silver, source
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
# the per-meterpoint tables when bucketed: day x bucket, both physical Delta partition columns
METER_PARTITIONS = {
    "partition_expr": {bucketing.DATE_DIMENSION: "settlement_date", bucketing.BUCKET_DIMENSION: bucketing.BUCKET_COLUMN},
    "partition_by": ["settlement_date", bucketing.BUCKET_COLUMN],  # day directories, a bucket directory in each
}
# whole tables, a new Delta version only when their rows change (engine write mode `replace_if_changed`)
VERSIONED = {"write_mode": "replace_if_changed"}
# Chunk sizes (SMART_METER_CHUNK_DAYS, SMART_METER_INGEST_CHUNK_BYTES) are read when a run starts; see pipeline.py.
COMMON = dict(partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run(), group_name=GROUP)


class ActiveAgreementsConfig(Config):
    """The as-of date of presentation/active_agreements for one run (the launchpad's config)."""

    as_of_date: str | None = Field(
        default=None, description="YYYY-MM-DD: the day the agreements are active on; unset: SMART_METER_AS_OF_DATE (default 2021-01-01)."
    )


def run_days(context: AssetExecutionContext) -> list[dt.date]:
    """The UK settlement days of the run (one partition or a single-run range)."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def run_day_buckets(context: AssetExecutionContext, buckets: int) -> tuple[list[dt.date], pipeline.Bucketing]:
    """The UK days and the meterpoint buckets of a bucketed run (one (day, bucket) or a box of them)."""
    pdef = context.assets_def.partitions_def
    keys = [k if isinstance(k, MultiPartitionKey) else pdef.get_partition_key_from_str(k) for k in context.partition_keys]  # type: ignore[union-attr]
    days = sorted({dt.date.fromisoformat(k.keys_by_dimension[bucketing.DATE_DIMENSION]) for k in keys})
    keys_b = sorted({k.keys_by_dimension[bucketing.BUCKET_DIMENSION] for k in keys}, key=int)
    return days, pipeline.Bucketing(buckets, tuple(keys_b))


def _name(key: AssetKey) -> str:
    return key.to_python_identifier()


DATABASE = (RAW_AGREEMENTS, RAW_PRODUCTS, RAW_METERPOINTS)


def any_day_when_inputs_change(ignore_database: bool = False) -> AutomationCondition:
    """`eager()` for any day (not only the latest): a partition whose inputs were updated, once none is missing
    or in progress. Used only when bucketed. `ignore_database`: a new version of the (unpartitioned) database
    does not by itself re-run every day of silver; it applies to the days processed after it (re-run older days
    to re-attribute them). The database must still exist before silver runs."""
    eager = AutomationCondition.eager().without(AutomationCondition.in_latest_time_window())
    if ignore_database:
        eager = eager.replace(
            AutomationCondition.any_deps_updated(), AutomationCondition.any_deps_updated().ignore(AssetSelection.assets(*DATABASE))
        )
        return eager.with_label("eager_any_day: the partition's readings changed (any day)")
    return eager.with_label("eager_any_day: the partition's inputs changed (any day)")


def _columns(key: AssetKey, bucketed: bool) -> dict:
    docs = dict(columns.TABLES[key])
    if bucketed:
        docs[bucketing.BUCKET_COLUMN] = columns.METERPOINT_BUCKET
    return docs


def build_assets(buckets: int = 1) -> list[AssetsDefinition]:
    """The smart-meter assets for `buckets` meterpoint buckets per day (see the module docstring)."""
    bucketed = buckets > 1
    per_meter = dict(COMMON, partitions_def=smart_meter_partitions(buckets))
    meter = METER_PARTITIONS if bucketed else DAY
    # day-partitioned inputs of a bucketed asset, and bucketed inputs of a day-partitioned one: by the date
    mapping = MultiToSingleDimensionPartitionMapping(partition_dimension_name=bucketing.DATE_DIMENSION) if bucketed else None

    # bucketed, a day is several runs: what reads other assets follows its inputs by automation (sensors.py)
    follow = any_day_when_inputs_change() if bucketed else None
    follow_readings = any_day_when_inputs_change(ignore_database=True) if bucketed else None

    def outs(specs: list[AssetSpec], per_meterpoint: bool = False, automated: bool = False, condition: AutomationCondition | None = None) -> dict[str, AssetOut]:
        """Typed outputs (the IO manager writes them) described by specs; the multi-asset's inputs feed every output
        (its deps) and its `group_name` (COMMON) is every output's group."""
        return {
            _name(spec.key): AssetOut.from_spec(
                spec.replace_attributes(automation_condition=(condition or follow) if automated else None).merge_attributes(
                    metadata=column_schema_metadata(_columns(spec.key, bucketed and per_meterpoint))
                )
            )
            for spec in specs
        }

    # ------------------------------------------------------------------------------------------------ raw
    @multi_asset(
        name="smart_meter_ingestion",
        outs=outs([
            AssetSpec(
                RAW_READINGS,
                description=(
                    "Smart-meter readings exactly as delivered in the readings folder (text cells), one row per row of "
                    "each `<meterpoint_id>.json`, with source_file, source_row and "
                    "ingested_at. Partitioned by the UK local date of interval_start. A run reads only file versions "
                    "it has not ingested for its days (see raw/ingestion_log); a new version of a file replaces that "
                    "file's rows on the days its rows touch."
                ),
                metadata=meter,
                kinds={"delta", "polars", "duckdb"},
            ),
            AssetSpec(
                INGESTION_LOG,
                description=(
                    "Ingestion log: one row per file version and settlement day ingested: file name, SHA-256 content "
                    "hash, size, mtime, rows in the file, first/last local interval, every day its rows touch, rows "
                    "written to that day, parse error (malformed file) and time. A version already logged for a day "
                    "is not read again for that day; a changed file is."
                ),
                metadata={**meter, "write_mode": "append", "merge_keys": ["file_name", "content_hash", "settlement_date"]},
                kinds={"delta", "polars"},
            ),
        ], per_meterpoint=True),
        **per_meter,
    )
    def smart_meter_ingestion(context: AssetExecutionContext, smart_meter: SmartMeterSource, lake: LakeResource):
        days, run_buckets = run_day_buckets(context, buckets) if bucketed else (run_days(context), None)
        run = pipeline.Ingestion(lake.lake(), smart_meter.folder(), days, settings.smart_meter_ingest_chunk_bytes(), buckets=run_buckets)
        yield Output(
            FrameStream(schema=run.raw_schema, batches=run.raw_batches, metadata=run.metadata),
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
        outs=outs([
            AssetSpec(
                RAW_AGREEMENTS,
                description=(
                    "The `agreement` table of the utility's SQLite database (SMART_METER_DB_PATH) as delivered, one row per "
                    "agreement. Versioned by content: a new Delta version only when the database's rows change (the Delta "
                    "history is the table's history). Silver attributes a reading to the agreement valid on its day."
                ),
                metadata=VERSIONED,
                kinds={"delta", "polars", "sqlite"},
            ),
            AssetSpec(
                RAW_PRODUCTS,
                description="The `product` table as delivered (display_name is not unique; product_id is). Versioned by content.",
                metadata=VERSIONED,
                kinds={"delta", "polars", "sqlite"},
            ),
            AssetSpec(
                RAW_METERPOINTS,
                description="The `meterpoint` table as delivered (meterpoint_id -> one of 13 regions). Versioned by content.",
                metadata=VERSIONED,
                kinds={"delta", "polars", "sqlite"},
            ),
        ]),
        group_name=GROUP,
    )
    def smart_meter_database(smart_meter: SmartMeterSource):
        tables = source.read_static_tables(Path(smart_meter.db_path))
        for key, table in ((RAW_AGREEMENTS, tables.agreements), (RAW_PRODUCTS, tables.products), (RAW_METERPOINTS, tables.meterpoints)):
            version = content_version(table, sort_by=table.columns)
            yield Output(table, output_name=_name(key), data_version=DataVersion(version), metadata={"content_version": version})


    # ------------------------------------------------------------------------------------------------ silver
    @multi_asset(
        name="smart_meter_silver",
        ins={
            "raw_readings": AssetIn(RAW_READINGS),
            "agreements": AssetIn(RAW_AGREEMENTS),
            "products": AssetIn(RAW_PRODUCTS),
            "meterpoints": AssetIn(RAW_METERPOINTS),
        },
        outs=outs([
            AssetSpec(
                SILVER_READINGS,
                description=(
                    "One row per (meterpoint_id, interval_start_utc): UTC and UK-local start, consumption_kwh, and the "
                    "agreement, product (product_id, product_display_name, is_variable) and region valid at the "
                    "reading's time, half-open [valid_from, valid_to) in UK local days, from the database's current version. Duplicates removed (first in file "
                    "order kept); the ambiguous autumn hour: first occurrence in file order = BST, second = GMT. "
                    "Readings without a covering agreement are kept with null agreement columns; "
                    "covering_agreement_count > 1 marks overlapping agreements (the latest-starting one is used)."
                ),
                metadata=meter,
                kinds={"delta", "polars"},
            ),
            AssetSpec(
                QUARANTINE,
                description=(
                    "Every raw row that is not in silver, with the reason and its source file/row: disposition "
                    "'quarantined' (malformed file, bad or non-existent timestamp, off the half-hour, missing or unknown "
                    "meterpoint, non-numeric, negative or implausible consumption) or 'duplicate'. "
                    "Raw rows = silver rows + quarantine rows, per day."
                ),
                metadata=meter,
                kinds={"delta", "polars"},
            ),
        ], per_meterpoint=True, automated=True, condition=follow_readings),
        **per_meter,
    )
    def smart_meter_silver(
        context: AssetExecutionContext,
        raw_readings: pl.LazyFrame,
        agreements: pl.DataFrame,
        products: pl.DataFrame,
        meterpoints: pl.DataFrame,
    ):
        days, run_buckets = run_day_buckets(context, buckets) if bucketed else (run_days(context), None)
        run = pipeline.Silver(raw_readings, agreements, products, meterpoints, days, settings.smart_meter_chunk_days(), buckets=run_buckets)
        # the database versions read are in the materialisation's provenance (dagster/input_data_version/raw/...)
        yield Output(FrameStream(schema=run.readings_schema, batches=run.readings, metadata=run.metadata), output_name=_name(SILVER_READINGS))
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
        ins={"silver": AssetIn(SILVER_READINGS, partition_mapping=mapping)},
        outs=outs([
            AssetSpec(
                TOTAL_HALF_HOUR,
                description="One row per half-hour (interval_start, UTC): distinct meterpoints with readings and total kWh (to the Wh), all readings.",
                metadata=DAY,
                kinds={"delta", "duckdb"},
            ),
            AssetSpec(
                PER_PRODUCT_DAY,
                description=(
                    "One row per product display name per UK day (date): distinct meterpoints with readings and total kWh. "
                    "Products sharing a display name are one row; readings without an agreement are in "
                    "presentation/readings_without_agreement instead."
                ),
                metadata={"partition_expr": "date"},
                kinds={"delta", "duckdb"},
            ),
            AssetSpec(
                GOLD_HALF_HOUR,
                description="The half-hour aggregate as served to dashboards: UTC and UK-local start, meterpoints, total kWh and kWh per meterpoint.",
                metadata=DAY,
                kinds={"delta", "polars"},
            ),
            AssetSpec(
                GOLD_AVG_BY_PRODUCT,
                description="Average kWh per reading per half-hour (interval_start, UTC) per product display name, with the reading count.",
                metadata=DAY,
                kinds={"delta", "duckdb"},
            ),
            AssetSpec(
                WITHOUT_AGREEMENT,
                description="Readings no agreement covers, per meterpoint and day (count, kWh, first/last half-hour): reported, not dropped.",
                metadata=DAY,
                kinds={"delta", "duckdb"},
            ),
        ], automated=True),
        **COMMON,
    )
    def smart_meter_presentation(context: AssetExecutionContext, silver: pl.LazyFrame, smart_meter_duckdb: DuckDBResource):
        with smart_meter_duckdb.get_connection() as con:
            all_buckets = pipeline.Bucketing(buckets, tuple(bucketing.bucket_keys(buckets))) if bucketed else None
            tables = pipeline.presentation_tables(con, silver, run_days(context), settings.smart_meter_chunk_days(), buckets=all_buckets)
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
        outs=outs([
            AssetSpec(
                ACTIVE_AGREEMENTS,
                description=(
                    "Agreements active on one as-of date with strict bounds valid_from < as_of AND (valid_to IS NULL OR "
                    "valid_to > as_of): agreement id, meterpoint id, product display name, is_variable. The date is the "
                    "run's config `as_of_date` (choose it in the launchpad), else SMART_METER_AS_OF_DATE (default "
                    "2021-01-01). One set, versioned by content."
                ),
                metadata=VERSIONED,
                kinds={"delta", "polars"},
            )
        ], automated=True),
        group_name=GROUP,
    )
    def smart_meter_active_agreements(
        config: ActiveAgreementsConfig, agreements: pl.DataFrame, products: pl.DataFrame, smart_meter: SmartMeterSource
    ):
        as_of = smart_meter.as_of(config.as_of_date)
        active = presentation.active_agreements(agreements, products, as_of)
        version = content_version(active, sort_by=["agreement_id"])
        yield Output(active, output_name=_name(ACTIVE_AGREEMENTS), data_version=DataVersion(version), metadata={"as_of_date": as_of.isoformat()})


    return [smart_meter_ingestion, smart_meter_database, smart_meter_silver, smart_meter_presentation, smart_meter_active_agreements]


BUCKETS = smart_meter_bucket_count()  # SMART_METER_BUCKETS, read once at load
ASSETS = build_assets(BUCKETS)
