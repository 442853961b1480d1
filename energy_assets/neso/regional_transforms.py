"""Pure polars transforms of the NESO regional endpoint: bronze rows -> one row per half-hour and region.

No Dagster, no I/O. Bodies kept in bronze are decoded with `str.json_decode` against the API's schema; the
newest usable fetch of each (half-hour, region) wins. Regional data is forecast only: there is no actual.
"""

from __future__ import annotations

import polars as pl

from energy_assets.neso.transforms import (  # bronze rows are the national ones (energy_assets.bronze)
    ALLOWED_INDEX,
    PLAUSIBLE_GCO2_PER_KWH,
    USABLE,
    attach_fetches,
    decode_records,
    fetch_facts,
    newest_per,
    settlement_period,
)

REGION_IDS = tuple(range(1, 19))  # 1..17 plus 18 = GB

SILVER_REGIONAL_SCHEMA = pl.Schema(
    {
        "period_start": pl.Datetime("us", "UTC"),
        "period_end": pl.Datetime("us", "UTC"),
        "settlement_date": pl.Date,
        "settlement_period": pl.Int16,
        "region_id": pl.Int16,
        "region_shortname": pl.String,
        "dno_region": pl.String,
        "forecast_gco2_per_kwh": pl.Int32,
        "intensity_index": pl.String,
        "fetched_at": pl.Datetime("us", "UTC"),
        "source_request_url": pl.String,
    }
)

REGIONAL_BODY = pl.Struct(
    {
        "data": pl.List(
            pl.Struct(
                {
                    "from": pl.String,
                    "to": pl.String,
                    "regions": pl.List(
                        pl.Struct(
                            {
                                "regionid": pl.Int64,
                                "dnoregion": pl.String,
                                "shortname": pl.String,
                                "intensity": pl.Struct({"forecast": pl.Int64, "index": pl.String}),
                            }
                        )
                    ),
                }
            )
        )
    }
)


class NesoRegionalDataError(ValueError):
    """A regional payload that parsed but holds values the silver schema does not allow."""


def parse_regional(bronze: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Every (half-hour, region) record of every usable bronze payload, with the fetch it came from (the
    national decoding and fetch attachment: a record belongs to the bronze rows of its own UK day)."""
    facts = fetch_facts(bronze)
    if facts.filter(USABLE).is_empty():
        return pl.DataFrame(schema={"period_start": pl.Datetime("us", "UTC")})
    records = (
        decode_records(bronze, REGIONAL_BODY, facts)
        .explode("regions")
        .filter(pl.col("regions").is_not_null())
        .unnest("regions")
        .unnest("intensity")
    )
    return attach_fetches(records, facts)


def forecast_record_problem(region_ids: tuple[int, ...] = REGION_IDS) -> pl.Expr:
    """Why a decoded regional-format forecast record cannot be kept (null when it can): the one rule for the
    regional silver (regions 1..18) and the forecast archive (0 = national too)."""
    lo, hi = PLAUSIBLE_GCO2_PER_KWH
    return (
        pl.when(pl.col("period_start").is_null() | pl.col("period_end").is_null())
        .then(pl.lit("unparseable from/to timestamp"))
        .when(pl.col("period_end") - pl.col("period_start") != pl.duration(minutes=30))
        .then(pl.lit("period is not 30 minutes long"))
        .when(pl.col("regionid").is_null() | ~pl.col("regionid").is_in(list(region_ids)))
        .then(pl.lit(f"regionid not in {min(region_ids)}..{max(region_ids)}"))
        .when(pl.col("forecast").is_null())
        .then(pl.lit("forecast missing"))
        .when(pl.col("index").is_null() | ~pl.col("index").is_in(list(ALLOWED_INDEX)))
        .then(pl.lit("index not in " + ", ".join(ALLOWED_INDEX)))
        .when(~pl.col("forecast").is_between(lo, hi))
        .then(pl.lit(f"forecast outside {lo}..{hi} gCO2/kWh"))
        .otherwise(None)
    )


def regional_violations(records: pl.DataFrame) -> pl.DataFrame:
    """Records the silver schema cannot hold, each with a reason (empty when all are fine)."""
    return records.with_columns(forecast_record_problem().alias("reason")).filter(pl.col("reason").is_not_null())


def build_silver_regional(records: pl.DataFrame) -> pl.DataFrame:
    """One row per (half-hour, region), newest fetch wins; raises `NesoRegionalDataError` on bad values."""
    if records.is_empty() or "forecast" not in records.columns:
        return pl.DataFrame(schema=SILVER_REGIONAL_SCHEMA)
    bad = regional_violations(records)
    if bad.height:
        first = bad.row(0, named=True)
        raise NesoRegionalDataError(
            f"{bad.height} NESO regional record(s) break the silver schema; first: {first['reason']} in the record "
            f"from={first['from']!r} regionid={first['regionid']} forecast={first['forecast']} index={first['index']!r} "
            f"of GET {first['request_url']} (fetched {first['fetched_at']})"
        )
    newest = newest_per(records, ["period_start", "regionid"])
    return (
        newest.with_columns(settlement_period())
        .select(
            "period_start",
            "period_end",
            "settlement_date",
            "settlement_period",
            pl.col("regionid").alias("region_id"),
            pl.col("shortname").alias("region_shortname"),
            pl.col("dnoregion").alias("dno_region"),
            pl.col("forecast").alias("forecast_gco2_per_kwh"),
            pl.col("index").alias("intensity_index"),
            "fetched_at",
            pl.col("request_url").alias("source_request_url"),
        )
        .cast(dict(SILVER_REGIONAL_SCHEMA))
        .sort("period_start", "region_id")
    )


def incomplete_periods(silver: pl.DataFrame) -> pl.DataFrame:
    """Half-hours that do not carry all 18 regions exactly once."""
    return (
        silver.group_by("period_start")
        .agg(pl.len().alias("rows"), pl.col("region_id").n_unique().alias("regions"))
        .filter((pl.col("rows") != len(REGION_IDS)) | (pl.col("regions") != len(REGION_IDS)))
        .sort("period_start")
    )
