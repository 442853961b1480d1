"""Smart-meter assets: raw (files + database) -> silver -> presentation, on UK settlement days.

Thin: load, call a transform, return, attach metadata. The design is in the package docstring.
"""

import datetime as dt
import os
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

from energy_assets.lake.io_manager import FrameStream, storage_options_from_env
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
# Days per chunk in silver and presentation: a chunk's rows (and their text columns) are in memory at a time,
# not the whole range's. 15 days of 2,000 meterpoints = 1.4 M readings.
CHUNK_DAYS = int(os.environ.get("SMART_METER_CHUNK_DAYS", "15"))
# JSON bytes per chunk of files in ingestion: 64 MiB of the utility's files = about 1.6 M rows of text.
INGEST_CHUNK_BYTES = int(os.environ.get("SMART_METER_INGEST_CHUNK_BYTES", str(64 << 20)))
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
    # The files are read a chunk at a time (parse -> raw rows -> the chunk's share of the plan) and the raw
    # rows streamed into ONE Delta transaction, so only one chunk of text rows is in memory. Every planning
    # frame (rows per file and day, version summary, replacements) is per file, so chunks just concatenate.
    file_chunks = transforms.file_chunks(folder.filter(pl.col("file_name").is_in(to_read)), INGEST_CHUNK_BYTES) or [[]]
    plan: dict[str, list[pl.DataFrame]] = {"per_day": [], "summary": [], "replace": []}

    def raw_batches():
        for part in plan.values():
            part.clear()
        with ThreadPoolExecutor(max_workers=1) as pool:  # hashing (GIL released) overlaps the DuckDB parse
            for names in file_chunks:
                hashing = pool.submit(source.hash_files, folder_path, names)
                parsed = source.parse_reading_files(folder_path, names)
                hashes = hashing.result()
                new = transforms.raw_rows(parsed, folder, now)
                del parsed  # each copy of the rows is released as soon as the next exists
                per_day = transforms.per_file_day(new)
                summary = transforms.version_summary(per_day, hashes, folder, new)
                replace = transforms.replacements(summary, logged, days)
                plan["per_day"].append(per_day)
                plan["summary"].append(summary)
                plan["replace"].append(replace)
                added = transforms.merge_raw(pl.DataFrame(schema=transforms.RAW_SCHEMA), new, replace, per_day, days)
                del new
                yield added
        per_day, replace = pl.concat(plan["per_day"]), pl.concat(plan["replace"])
        existing = _read_lake(smart_meter, RAW_READINGS, transforms.RAW_SCHEMA, days)
        kept = transforms.kept_raw(existing, replace)
        del existing
        yield kept
        summary = pl.concat(plan["summary"])
        keys = replace.select(source_file="file_name", settlement_date="settlement_date")
        replaced_rows = int(per_day.join(keys, on=["source_file", "settlement_date"], how="semi")["rows_in_partition"].sum())
        malformed = summary.filter(pl.col("file_error").is_not_null())
        stream.metadata.clear()
        stream.metadata.update({
            "file_days_replaced": replace.height,
            "rows_ingested": replaced_rows,
            "rows_kept_from_earlier_ingestions": kept.height,
            "malformed_files": MetadataValue.json(malformed.select("file_name", "file_error").to_dicts()),
        })  # fmt: skip

    stream = FrameStream(schema=transforms.RAW_SCHEMA, batches=raw_batches)
    yield Output(
        stream,
        output_name=_name(RAW_READINGS),
        metadata={
            "files_in_folder": folder.height,
            "files_read": len(to_read),
            "files_not_opened_already_ingested": folder.height - len(to_read),
        },
    )
    per_day, summary, replace = (pl.concat(plan[k]) for k in ("per_day", "summary", "replace"))
    context.log.info(
        f"{folder.height} files in {folder_path}; read {len(to_read)}; "
        f"{replace.height} (file, day) pairs (re)ingested for {days[0]}..{days[-1]}"
    )
    log_new = transforms.log_rows(summary, replace, per_day, now)
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
    # Processed a chunk of days at a time and streamed into ONE Delta transaction: only one chunk's raw
    # rows are in memory. Days are independent in silver (see transforms.day_chunks).
    chunks = transforms.day_chunks(run_days(context), CHUNK_DAYS)
    quarantine_parts: list[pl.DataFrame] = []
    totals: dict[str, int] = {}

    def readings():
        quarantine_parts.clear()
        totals.clear()
        for chunk in chunks:
            on_days = pl.col("snapshot_date").is_in(chunk)
            raw = raw_readings.filter(pl.col("settlement_date").is_in(chunk)).collect()
            part = transforms.silver_readings(raw, agreements.filter(on_days), products.filter(on_days), meterpoints.filter(on_days))
            del raw
            totals.update(transforms.add_stats(totals, part.stats))
            quarantine_parts.append(part.quarantine)
            yield part.readings
        # after the last chunk, before the commit: a failure here leaves silver as it was
        if totals.get("rows_in", 0) != totals.get("rows_kept", 0) + totals.get("duplicates", 0) + totals.get("quarantined", 0):
            raise RuntimeError(f"smart-meter silver row accounting does not balance: {totals}")  # refuse rather than lose rows
        stream.metadata.clear()
        stream.metadata.update({k: MetadataValue.int(v) for k, v in sorted(totals.items())})
        stream.metadata["row_accounting"] = MetadataValue.text(
            f"{totals['rows_in']} rows in = {totals['rows_kept']} kept + {totals['duplicates']} duplicates + {totals['quarantined']} quarantined"
        )

    stream = FrameStream(schema=transforms.SILVER_SCHEMA, batches=readings)
    yield Output(stream, output_name=_name(SILVER_READINGS))
    stats = {k: totals.get(k, 0) for k in ("rows_in", "rows_kept", "duplicates", "quarantined", "readings_without_agreement")}
    if stats["readings_without_agreement"]:
        context.log.warning(f"{stats['readings_without_agreement']} readings have no covering agreement (kept, product columns null)")
    quarantine = (
        pl.concat(quarantine_parts, how="vertical") if quarantine_parts else pl.DataFrame(schema=transforms.QUARANTINE_SCHEMA)
    )
    yield Output(
        quarantine,
        output_name=_name(QUARANTINE),
        metadata={
            "quarantined": stats["quarantined"],
            "duplicates": stats["duplicates"],
            "reasons": MetadataValue.json(
                quarantine.group_by("disposition", pl.col("reason").str.extract(r"^([a-z_]+)")).len().sort("len", descending=True).to_dicts()
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
    # Every aggregate groups by settlement day, so the days are aggregated a chunk at a time (in day order,
    # which keeps each table's ORDER BY): only one chunk of silver (the columns used) is in memory.
    parts: dict[str, list[pl.DataFrame]] = {"total": [], "per_product": [], "avg": [], "without": []}
    with smart_meter_duckdb.get_connection() as con:
        for chunk in transforms.day_chunks(run_days(context), CHUNK_DAYS):
            rows = silver.filter(pl.col("settlement_date").is_in(chunk)).select(SILVER_COLUMNS).collect()
            con.register("silver", rows.to_arrow())
            parts["total"].append(con.sql(transforms.TOTAL_CONSUMPTION_HALF_HOUR_SQL).pl())
            parts["per_product"].append(con.sql(transforms.CONSUMPTION_PER_PRODUCT_PER_DAY_SQL).pl())
            parts["avg"].append(con.sql(transforms.GOLD_AVG_HALF_HOUR_BY_PRODUCT_SQL).pl())
            parts["without"].append(con.sql(transforms.READINGS_WITHOUT_AGREEMENT_SQL).pl())
            con.unregister("silver")
            del rows
    total = _utc(pl.concat(parts["total"], how="vertical"), "interval_start")
    per_product = pl.concat(parts["per_product"], how="vertical")
    avg_by_product = _utc(pl.concat(parts["avg"], how="vertical"), "interval_start")
    without = _utc(pl.concat(parts["without"], how="vertical"), "first_interval_start", "last_interval_start")
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
