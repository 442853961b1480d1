"""Presentation, pure: the aggregates of silver (DuckDB SQL over the silver rows of a chunk of days, registered
as `silver` in an in-memory connection the caller hands over) and the active agreements (polars). Frames in,
frames out; no Dagster, no I/O.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from energy_assets.smart_meter.ingestion import UK_TZ
from energy_assets.smart_meter.silver import typed_agreements, typed_products

def active_agreements(agreements: pl.DataFrame, products: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Agreements active on `as_of` with strict bounds: valid_from < as_of AND (valid_to IS NULL OR valid_to > as_of)."""
    typed = typed_agreements(agreements)
    return (
        typed.filter((pl.col("valid_from") < as_of) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > as_of)))
        .join(typed_products(products), on="product_id", how="left")
        .select(
            "agreement_id",
            "meterpoint_id",
            product_display_name="display_name",
            is_variable="is_variable",
            product_id="product_id",
            agreement_valid_from="valid_from",
            agreement_valid_to="valid_to",
            as_of_date=pl.lit(as_of, pl.Date),
        )
        .sort("agreement_id")
    )


# Presentation aggregates, run by DuckDB over the silver rows registered as `silver` (Arrow).
# Sums are rounded to the Wh (3 decimals); the readings are delivered with at most 3 decimals.
TOTAL_CONSUMPTION_HALF_HOUR_SQL = """
SELECT interval_start_utc AS interval_start,
       count(DISTINCT meterpoint_id)::BIGINT AS meterpoint_count,
       round(sum(consumption_kwh), 3) AS total_consumption_kwh,
       settlement_date
FROM silver
GROUP BY interval_start_utc, settlement_date
ORDER BY interval_start
"""

CONSUMPTION_PER_PRODUCT_PER_DAY_SQL = """
SELECT product_display_name,
       settlement_date AS date,
       count(DISTINCT meterpoint_id)::BIGINT AS meterpoint_count,
       round(sum(consumption_kwh), 3) AS total_consumption_kwh
FROM silver
WHERE agreement_id IS NOT NULL
GROUP BY product_display_name, settlement_date
ORDER BY date, product_display_name
"""

# Per half-hour and product: `{value}` is the average (the table), or the sum it is rebuilt from (a bucket's partial).
_PER_HALF_HOUR_AND_PRODUCT_SQL = """
SELECT interval_start_utc AS interval_start,
       product_display_name,
       {value},
       count(*)::BIGINT AS reading_count,
       settlement_date
FROM silver
WHERE agreement_id IS NOT NULL
GROUP BY interval_start_utc, product_display_name, settlement_date
"""

GOLD_AVG_HALF_HOUR_BY_PRODUCT_SQL = _PER_HALF_HOUR_AND_PRODUCT_SQL.format(value="avg(consumption_kwh) AS avg_consumption_kwh") + (
    "ORDER BY interval_start, product_display_name\n"
)

READINGS_WITHOUT_AGREEMENT_SQL = """
SELECT meterpoint_id,
       count(*)::BIGINT AS reading_count,
       round(sum(consumption_kwh), 3) AS total_consumption_kwh,
       min(interval_start_utc) AS first_interval_start,
       max(interval_start_utc) AS last_interval_start,
       settlement_date
FROM silver
WHERE agreement_id IS NULL
GROUP BY meterpoint_id, settlement_date
ORDER BY settlement_date, meterpoint_id
"""


def gold_aggregate_per_half_hour(total: pl.DataFrame) -> pl.DataFrame:
    """The half-hour totals as dashboards use them: UTC and UK local start, average per meterpoint."""
    return total.select(
        "interval_start",
        interval_start_local=pl.col("interval_start").dt.convert_time_zone(UK_TZ).dt.replace_time_zone(None),
        meterpoint_count="meterpoint_count",
        total_consumption_kwh="total_consumption_kwh",
        avg_consumption_kwh_per_meterpoint=(pl.col("total_consumption_kwh") / pl.col("meterpoint_count")).round(6),
        settlement_date="settlement_date",
    )


# ---------------------------------------------------------------------------------------------- DuckDB
# The silver columns the aggregates use: only these are loaded, a chunk of days at a time.
SILVER_COLUMNS = ["meterpoint_id", "interval_start_utc", "consumption_kwh", "agreement_id", "product_display_name", "settlement_date"]

# name -> (SQL, timestamp columns DuckDB hands back in its session zone)
AGGREGATES = {
    "total": (TOTAL_CONSUMPTION_HALF_HOUR_SQL, ("interval_start",)),
    "per_product": (CONSUMPTION_PER_PRODUCT_PER_DAY_SQL, ()),
    "avg": (GOLD_AVG_HALF_HOUR_BY_PRODUCT_SQL, ("interval_start",)),
    "without": (READINGS_WITHOUT_AGREEMENT_SQL, ("first_interval_start", "last_interval_start")),
}


def aggregate(con: duckdb.DuckDBPyConnection, silver: pl.DataFrame, aggregates: dict | None = None) -> dict[str, pl.DataFrame]:
    """The four SQL aggregates of `silver` (rows of SILVER_COLUMNS), registered as `silver` on an in-memory
    connection for the duration of the call. Timestamps come back in the connection's zone (see `combine`)."""
    con.register("silver", silver.to_arrow())
    try:
        return {name: con.sql(sql).pl() for name, (sql, _) in (aggregates or AGGREGATES).items()}
    finally:
        con.unregister("silver")


# ---------------------------------------------------------------------------------------------- buckets
# A bucketed day (SMART_METER_BUCKETS > 1) is aggregated one bucket at a time and the partial aggregates are
# combined: sums and counts add up, distinct meterpoint counts too (a meterpoint lives in exactly one bucket),
# a meterpoint's row of readings_without_agreement is in one bucket only. The average needs the partial sums,
# so its partial aggregate keeps the unrounded sum instead of the average.
GOLD_AVG_PARTIAL_SQL = _PER_HALF_HOUR_AND_PRODUCT_SQL.format(value="sum(consumption_kwh) AS sum_consumption_kwh")

PARTIAL_AGGREGATES = {**AGGREGATES, "avg": (GOLD_AVG_PARTIAL_SQL, ("interval_start",))}


def combine_buckets(partials: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """The aggregates of one chunk of days from the per-bucket partial aggregates (`PARTIAL_AGGREGATES`), with
    the columns and order of `AGGREGATES`. Totals are re-rounded to the Wh (the readings have at most 3
    decimals, so the rounded partial sums add up to the rounded sum)."""
    def cat(name: str) -> pl.DataFrame:
        return pl.concat([p[name] for p in partials], how="vertical")

    kwh = pl.col("total_consumption_kwh").sum().round(3)
    total = (
        cat("total").group_by("interval_start", "settlement_date")
        .agg(meterpoint_count=pl.col("meterpoint_count").sum(), total_consumption_kwh=kwh)
        .select("interval_start", "meterpoint_count", "total_consumption_kwh", "settlement_date")
        .sort("interval_start", nulls_last=True)
    )  # fmt: skip
    per_product = (
        cat("per_product").group_by("product_display_name", "date")
        .agg(meterpoint_count=pl.col("meterpoint_count").sum(), total_consumption_kwh=kwh)
        .select("product_display_name", "date", "meterpoint_count", "total_consumption_kwh")
        .sort("date", "product_display_name", nulls_last=True)
    )  # fmt: skip
    avg = (
        cat("avg").group_by("interval_start", "product_display_name", "settlement_date")
        .agg(pl.col("sum_consumption_kwh").sum(), pl.col("reading_count").sum())
        .select(
            "interval_start", "product_display_name",
            avg_consumption_kwh=pl.col("sum_consumption_kwh") / pl.col("reading_count"),
            reading_count="reading_count", settlement_date="settlement_date",
        )
        .sort("interval_start", "product_display_name", nulls_last=True)
    )  # fmt: skip
    without = cat("without").sort("settlement_date", "meterpoint_id", nulls_last=True)
    return {"total": total, "per_product": per_product, "avg": avg, "without": without}


def combine(parts: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """The aggregates of consecutive chunks of days, concatenated in day order (which keeps each ORDER BY,
    every aggregate groups by day), timestamps normalised to UTC; plus the gold half-hour table."""
    tables = {
        name: utc(pl.concat([part[name] for part in parts], how="vertical"), *columns)
        for name, (_, columns) in AGGREGATES.items()
    }
    tables["gold"] = gold_aggregate_per_half_hour(tables["total"])
    return tables


def utc(df: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """DuckDB hands timestamps with time zone back in its session zone: normalise to UTC."""
    return df.with_columns(pl.col(c).dt.convert_time_zone("UTC").dt.cast_time_unit("us") for c in columns)
