"""Column descriptions of the smart-meter tables (unit and meaning): one dict per table, the one source of truth
used by the assets' `dagster/column_schema`, the IO manager's reported schema and the DuckDB column comments
(`energy_assets.column_docs`). `TABLES` maps each table's asset key to its dict."""

import polars as pl
from dagster import AssetKey

from energy_assets.column_docs import LOCAL_TS, UTC_TS

SETTLEMENT_DATE = (pl.Date, "UK settlement day (Europe/London calendar day) of the reading; the partition.")
METERPOINT_ID = (pl.String, "Smart meter (meterpoint) identifier.")
PRODUCT_ID = (pl.String, "Tariff product identifier (unique).")
PRODUCT_DISPLAY_NAME = (pl.String, "Tariff product's display name (several products can share one).")
IS_VARIABLE = (pl.Boolean, "True for a variable-rate tariff, false for a fixed one.")
REGION = (pl.String, "The meterpoint's region (one of 13 GB regions, e.g. London, East Midlands).")
AGREEMENT_ID = (pl.Int64, "Supply agreement identifier.")
VALID_FROM = (pl.Date, "First UK local day the agreement covers (inclusive).")
VALID_TO = (pl.Date, "UK local day the agreement ends (exclusive); null while open-ended.")
INGESTED_AT = (UTC_TS, "When the run that read the row ran (UTC).")
KWH_TOTAL = (pl.Float64, "Total consumption, kWh.")
METERPOINT_COUNT = (pl.Int64, "Distinct meterpoints with readings.")
READING_COUNT = (pl.Int64, "Half-hourly readings counted.")
INTERVAL_START = (UTC_TS, "Start of the half-hour (UTC).")

RAW_READINGS = {
    "meterpoint_id": (pl.String, "Meterpoint identifier as delivered (text)."),
    "interval_start": (pl.String, "Start of the half-hour as delivered: UK local wall-clock time, text 'YYYY-MM-DD HH:MM:SS'."),
    "consumption_delta": (pl.String, "Consumption in the half-hour as delivered, kWh: the cell's text as written (0.500 stays 0.500; parsed and checked in silver)."),
    "source_file": (pl.String, "The readings file the row came from (<meterpoint_id>.json)."),
    "source_row": (pl.Int64, "0-based position of the row in the file's data array (file order); null on a malformed file's placeholder row."),
    "file_error": (pl.String, "Why the file could not be parsed (one placeholder row per malformed file); null for a parsed row."),
    "ingested_at": INGESTED_AT,
    "settlement_date": (pl.Date, "UK local date of interval_start; the partition."),
}

INGESTION_LOG = {
    "file_name": (pl.String, "The readings file."),
    "content_hash": (pl.String, "SHA-256 (hex) of the file's bytes: the version ingested."),
    "size_bytes": (pl.Int64, "File size, bytes."),
    "modified_ns": (pl.Int64, "File modification time, nanoseconds since the Unix epoch."),
    "rows_in_file": (pl.Int64, "Rows in the whole file."),
    "first_interval_local": (pl.String, "Earliest interval_start in the file (UK local, as delivered)."),
    "last_interval_local": (pl.String, "Latest interval_start in the file (UK local, as delivered)."),
    "settlement_dates_touched": (pl.List(pl.Date), "Every UK day the file's rows fall on."),
    "first_settlement_date": (pl.Date, "First of those days."),
    "last_settlement_date": (pl.Date, "Last of those days."),
    "file_error": (pl.String, "Why the file could not be parsed; null when it was."),
    "settlement_date": (pl.Date, "The UK day this log row is for (the partition)."),
    "rows_in_partition": (pl.Int64, "Rows of this file version written to that day."),
    "ingested_at": INGESTED_AT,
}

RAW_AGREEMENTS = {
    "agreement_id": AGREEMENT_ID,
    "agreement_valid_from": (pl.String, "First day the agreement covers, as delivered (text 'YYYY-MM-DD', UK local)."),
    "agreement_valid_to": (pl.String, "Day the agreement ends (exclusive), as delivered (text; null while open-ended)."),
    "product_id": PRODUCT_ID,
    "meterpoint_id": METERPOINT_ID,
    "account_id": (pl.String, "Customer account identifier."),
}

RAW_PRODUCTS = {
    "display_name": PRODUCT_DISPLAY_NAME,
    "is_variable": (pl.Int64, "1 for a variable-rate tariff, 0 for a fixed one, as delivered."),
    "id": (pl.Int64, "The database's row id of the product."),
    "product_id": PRODUCT_ID,
}

RAW_METERPOINTS = {
    "region": REGION,
    "meterpoint_id": METERPOINT_ID,
}

SILVER_READINGS = {
    "meterpoint_id": METERPOINT_ID,
    "interval_start_utc": (UTC_TS, "Start of the half-hour (UTC); with meterpoint_id, unique."),
    "interval_start_local": (LOCAL_TS, "Start of the half-hour in UK local wall-clock time (no zone; the autumn hour appears twice)."),
    "consumption_kwh": (pl.Float64, "Electricity consumed in the half-hour, kWh (0..50)."),
    "agreement_id": (pl.Int64, "The agreement covering the reading's time; null when none does."),
    "agreement_valid_from": VALID_FROM,
    "agreement_valid_to": VALID_TO,
    "product_id": (pl.String, "Product of the covering agreement; null without one."),
    "product_display_name": (pl.String, "Display name of that product; null without an agreement."),
    "is_variable": (pl.Boolean, "True for a variable-rate product; null without an agreement."),
    "region": REGION,
    "covering_agreement_count": (pl.Int32, "Agreements covering the reading (0, 1, or more when they overlap: then the latest-starting one is used)."),
    "settlement_date": SETTLEMENT_DATE,
}

SILVER_QUARANTINE = {
    "source_file": (pl.String, "The readings file of the raw row."),
    "source_row": (pl.Int64, "Position of the raw row in that file (0-based)."),
    "meterpoint_id": (pl.String, "Meterpoint identifier as delivered."),
    "interval_start": (pl.String, "interval_start as delivered (UK local, text)."),
    "consumption_delta": (pl.String, "Consumption as delivered (kWh, text)."),
    "disposition": (pl.String, "quarantined (unusable row) or duplicate (an earlier row in file order has the same meterpoint and half-hour)."),
    "reason": (pl.String, "Why the row is not in silver."),
    "ingested_at": INGESTED_AT,
    "settlement_date": (pl.Date, "UK day of the raw row (the partition)."),
}

ACTIVE_AGREEMENTS = {
    "agreement_id": AGREEMENT_ID,
    "meterpoint_id": METERPOINT_ID,
    "product_display_name": PRODUCT_DISPLAY_NAME,
    "is_variable": IS_VARIABLE,
    "product_id": PRODUCT_ID,
    "agreement_valid_from": VALID_FROM,
    "agreement_valid_to": VALID_TO,
    "as_of_date": (pl.Date, "The day the agreement is active on (SMART_METER_AS_OF_DATE): valid_from < as_of_date and (valid_to null or > as_of_date)."),
}

TOTAL_CONSUMPTION_HALF_HOUR = {
    "interval_start": INTERVAL_START,
    "meterpoint_count": METERPOINT_COUNT,
    "total_consumption_kwh": (pl.Float64, "Total consumption of all meterpoints in the half-hour, kWh (to the Wh)."),
    "settlement_date": SETTLEMENT_DATE,
}

CONSUMPTION_PER_PRODUCT_PER_DAY = {
    "product_display_name": PRODUCT_DISPLAY_NAME,
    "date": (pl.Date, "UK settlement day; the partition."),
    "meterpoint_count": METERPOINT_COUNT,
    "total_consumption_kwh": (pl.Float64, "Total consumption of the product's readings on the day, kWh."),
}

GOLD_AGGREGATE_PER_HALF_HOUR = {
    "interval_start": INTERVAL_START,
    "interval_start_local": (LOCAL_TS, "Start of the half-hour in UK local wall-clock time (no zone)."),
    "meterpoint_count": METERPOINT_COUNT,
    "total_consumption_kwh": (pl.Float64, "Total consumption in the half-hour, kWh."),
    "avg_consumption_kwh_per_meterpoint": (pl.Float64, "total_consumption_kwh / meterpoint_count, kWh."),
    "settlement_date": SETTLEMENT_DATE,
}

GOLD_AVG_HALF_HOUR_BY_PRODUCT = {
    "interval_start": INTERVAL_START,
    "product_display_name": PRODUCT_DISPLAY_NAME,
    "avg_consumption_kwh": (pl.Float64, "Average consumption per reading of the product in the half-hour, kWh."),
    "reading_count": READING_COUNT,
    "settlement_date": SETTLEMENT_DATE,
}

READINGS_WITHOUT_AGREEMENT = {
    "meterpoint_id": METERPOINT_ID,
    "reading_count": (pl.Int64, "Readings of the meterpoint on the day that no agreement covers."),
    "total_consumption_kwh": (pl.Float64, "Their consumption, kWh."),
    "first_interval_start": (UTC_TS, "Start of the first such half-hour (UTC)."),
    "last_interval_start": (UTC_TS, "Start of the last such half-hour (UTC)."),
    "settlement_date": SETTLEMENT_DATE,
}

TABLES = {
    AssetKey(["raw", "smart_meter_readings"]): RAW_READINGS,
    AssetKey(["raw", "ingestion_log"]): INGESTION_LOG,
    AssetKey(["raw", "agreements"]): RAW_AGREEMENTS,
    AssetKey(["raw", "products"]): RAW_PRODUCTS,
    AssetKey(["raw", "meterpoints"]): RAW_METERPOINTS,
    AssetKey(["silver", "smart_meter_readings"]): SILVER_READINGS,
    AssetKey(["silver", "smart_meter_quarantine"]): SILVER_QUARANTINE,
    AssetKey(["presentation", "active_agreements"]): ACTIVE_AGREEMENTS,
    AssetKey(["presentation", "total_consumption_half_hour"]): TOTAL_CONSUMPTION_HALF_HOUR,
    AssetKey(["presentation", "consumption_per_product_per_day"]): CONSUMPTION_PER_PRODUCT_PER_DAY,
    AssetKey(["presentation", "gold_aggregate_per_half_hour"]): GOLD_AGGREGATE_PER_HALF_HOUR,
    AssetKey(["presentation", "gold_avg_half_hour_by_product"]): GOLD_AVG_HALF_HOUR_BY_PRODUCT,
    AssetKey(["presentation", "readings_without_agreement"]): READINGS_WITHOUT_AGREEMENT,
}

# Only in the per-meterpoint tables of a bucketed lake (SMART_METER_BUCKETS > 1): see smart_meter/buckets.py.
METERPOINT_BUCKET = (pl.String, "The meterpoint's bucket, '0'..'N-1' (first 32 bits of the SHA-256 of the meterpoint id, modulo SMART_METER_BUCKETS); a partition next to the day.")
