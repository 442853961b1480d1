"""Smart-meter assets: raw (files + database) -> silver -> presentation, on UK settlement days.

Thin: load, call a transform, return, attach metadata. The design is in the package docstring.
"""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
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
from deltalake.exceptions import TableNotFoundError

from energy_assets.lake.io_manager import storage_options_from_env
from energy_assets.partitions import uk_settlement_days
from energy_assets.smart_meter import source, transforms
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
    return {_name(spec.key): AssetOut.from_spec(spec.replace_attributes(deps=[])) for spec in specs}


def _read_lake(smart_meter: SmartMeterSource, key: AssetKey, schema: dict, days: list[dt.date] | None) -> pl.DataFrame:
    """Rows of one of our own Delta tables (all, or only the given settlement days); empty if absent."""
    uri = smart_meter.table_uri(*key.path)
    try:
        lf = pl.scan_delta(uri, storage_options=storage_options_from_env() or None)
        if days is not None:
            lf = lf.filter(pl.col("settlement_date").is_in(days))
        return lf.collect().cast(schema)  # type: ignore[arg-type]
    except (TableNotFoundError, FileNotFoundError):
        return pl.DataFrame(schema=schema)


def _read_log(smart_meter: SmartMeterSource, days: list[dt.date]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From the ingestion log: every version's identity (narrow columns, no lists) and the (file, hash, day)
    rows of the run's days (partition-pruned). Cost grows with files and versions, not with rows."""
    schema = transforms.LOG_SCHEMA
    versions_schema = {c: schema[c] for c in transforms.VERSION_COLUMNS}
    logged_schema = {c: schema[c] for c in ("file_name", "content_hash", "settlement_date")}
    try:
        lf = pl.scan_delta(smart_meter.table_uri(*INGESTION_LOG.path), storage_options=storage_options_from_env() or None)
        versions = lf.select(transforms.VERSION_COLUMNS).unique(["file_name", "content_hash", "size_bytes", "modified_ns"]).collect()
        logged = lf.filter(pl.col("settlement_date").is_in(days)).select(list(logged_schema)).collect()
        return versions.cast(versions_schema), logged.cast(logged_schema)  # type: ignore[arg-type]
    except (TableNotFoundError, FileNotFoundError):
        return pl.DataFrame(schema=versions_schema), pl.DataFrame(schema=logged_schema)


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
def smart_meter_ingestion(context: AssetExecutionContext, smart_meter: SmartMeterSource):
    days = run_days(context)
    folder_path = smart_meter.folder()
    folder = source.snapshot_folder(folder_path)
    versions, logged = _read_log(smart_meter, days)
    known = transforms.known_versions(folder, versions)
    to_read = transforms.files_to_read(known, logged, days)
    now = dt.datetime.now(dt.UTC)
    with ThreadPoolExecutor(max_workers=1) as pool:  # hashing (GIL released) overlaps the DuckDB parse
        hashing = pool.submit(source.hash_files, folder_path, to_read)
        parsed = source.parse_reading_files(folder_path, to_read)
        hashes = hashing.result()
    new = transforms.raw_rows(parsed, folder, now)
    del parsed  # each copy of the rows is released as soon as the next exists
    per_day = transforms.per_file_day(new)
    summary = transforms.version_summary(per_day, hashes, folder, new)
    replace = transforms.replacements(summary, logged, days)
    existing = _read_lake(smart_meter, RAW_READINGS, transforms.RAW_SCHEMA, days)
    raw = transforms.merge_raw(existing, new, replace, per_day, days)
    del new, existing
    log_new = transforms.log_rows(summary, replace, per_day, now)
    malformed = summary.filter(pl.col("file_error").is_not_null())
    replaced_rows = int(per_day.join(replace.select(source_file="file_name", settlement_date="settlement_date"), on=["source_file", "settlement_date"], how="semi")["rows_in_partition"].sum())
    context.log.info(
        f"{folder.height} files in {folder_path}; read {len(to_read)} ({replaced_rows} rows for the run's days); "
        f"{replace.height} (file, day) pairs (re)ingested for {days[0]}..{days[-1]}"
    )
    yield Output(
        raw,
        output_name=_name(RAW_READINGS),
        metadata={
            "files_in_folder": folder.height,
            "files_read": len(to_read),
            "files_not_opened_already_ingested": folder.height - len(to_read),
            "file_days_replaced": replace.height,
            "rows_ingested": replaced_rows,
            "rows_kept_from_earlier_ingestions": raw.height - replaced_rows,
            "malformed_files": MetadataValue.json(malformed.select("file_name", "file_error").to_dicts()),
        },
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
            transforms.snapshot(table, days),
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
    # loaded lazily so that the raw rows are freed as soon as the transform is done with them
    result = transforms.silver_readings(raw_readings.collect(), agreements, products, meterpoints)
    stats = result.stats
    balance = stats["rows_in"] == stats["rows_kept"] + stats["duplicates"] + stats["quarantined"]
    if not balance:  # cannot happen by construction; refuse to write rather than lose rows
        raise RuntimeError(f"smart-meter silver row accounting does not balance: {stats}")
    accounting = {k: MetadataValue.int(v) for k, v in stats.items()}
    accounting["row_accounting"] = MetadataValue.text(
        f"{stats['rows_in']} rows in = {stats['rows_kept']} kept + {stats['duplicates']} duplicates + {stats['quarantined']} quarantined"
    )
    if stats["readings_without_agreement"]:
        context.log.warning(f"{stats['readings_without_agreement']} readings have no covering agreement (kept, product columns null)")
    yield Output(result.readings, output_name=_name(SILVER_READINGS), metadata=accounting)
    yield Output(
        result.quarantine,
        output_name=_name(QUARANTINE),
        metadata={
            "quarantined": stats["quarantined"],
            "duplicates": stats["duplicates"],
            "reasons": MetadataValue.json(
                result.quarantine.group_by("disposition", pl.col("reason").str.extract(r"^([a-z_]+)")).len().sort("len", descending=True).to_dicts()
            ),
        },
    )


# ------------------------------------------------------------------------------------------------ presentation
SILVER_COLUMNS = ["meterpoint_id", "interval_start_utc", "consumption_kwh", "agreement_id", "product_display_name", "settlement_date"]


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
    rows = silver.select(SILVER_COLUMNS).collect()  # only the columns the aggregates use
    with smart_meter_duckdb.get_connection() as con:
        con.register("silver", rows.to_arrow())
        total = _utc(con.sql(transforms.TOTAL_CONSUMPTION_HALF_HOUR_SQL).pl(), "interval_start")
        per_product = con.sql(transforms.CONSUMPTION_PER_PRODUCT_PER_DAY_SQL).pl()
        avg_by_product = _utc(con.sql(transforms.GOLD_AVG_HALF_HOUR_BY_PRODUCT_SQL).pl(), "interval_start")
        without = _utc(con.sql(transforms.READINGS_WITHOUT_AGREEMENT_SQL).pl(), "first_interval_start", "last_interval_start")
        con.unregister("silver")
    yield Output(total, output_name=_name(TOTAL_HALF_HOUR), metadata={"total_consumption_kwh": float(total["total_consumption_kwh"].sum())})
    yield Output(per_product, output_name=_name(PER_PRODUCT_DAY), metadata={"products": per_product["product_display_name"].n_unique()})
    yield Output(transforms.gold_aggregate_per_half_hour(total), output_name=_name(GOLD_HALF_HOUR))
    yield Output(avg_by_product, output_name=_name(GOLD_AVG_BY_PRODUCT))
    yield Output(
        without,
        output_name=_name(WITHOUT_AGREEMENT),
        metadata={
            "readings_without_agreement": int(without["reading_count"].sum()),
            "meterpoints_without_agreement": without["meterpoint_id"].n_unique(),
        },
    )


def _utc(df: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """DuckDB hands timestamps with time zone back in its session zone: normalise to UTC."""
    return df.with_columns(pl.col(c).dt.convert_time_zone("UTC").dt.cast_time_unit("us") for c in columns)


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
    active = transforms.active_agreements(agreements, products, as_of)
    yield Output(active, output_name=_name(ACTIVE_AGREEMENTS), metadata={"as_of_date": as_of.isoformat()})


ASSETS = [smart_meter_ingestion, smart_meter_database, smart_meter_silver, smart_meter_presentation, smart_meter_active_agreements]
