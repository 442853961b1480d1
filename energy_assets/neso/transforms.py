"""Pure polars transforms of the NESO domain: bronze rows -> silver half-hours -> gold features.

No Dagster, no I/O. Parsing decodes the raw bodies kept in bronze with `str.json_decode` against the API's
schema, so every payload of a partition is reparsed the same way, every time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from energy_assets.bronze import bronze_schema, fetch_columns, without_bodies
from energy_assets.neso.client import FetchedResponse

UK_TZ = "Europe/London"
API_TIME_FORMAT = "%Y-%m-%dT%H:%MZ"
ALLOWED_INDEX = ("very low", "low", "moderate", "high", "very high")
# Low-carbon fuels: nuclear and renewables, biomass included as the GB grid's reporting counts it.
# Imports, gas, coal and "other" are not low-carbon here.
LOW_CARBON_FUELS = ("nuclear", "wind", "solar", "hydro", "biomass")
FLAG_ACTUAL_ZERO = "actual_zero"
FLAG_ACTUAL_MISSING = "actual_missing_for_settled_period"
SETTLED_AFTER = dt.timedelta(hours=1)  # actuals appear ~30 min after a period ends; one hour is "settled"
PLAUSIBLE_GCO2_PER_KWH = (0, 1000)

BRONZE_SCHEMA = pl.Schema(bronze_schema({"settlement_date": pl.Date()}))  # the one bronze contract (energy_assets.bronze)
BRONZE_PARTITION = ["settlement_date"]

SILVER_INTENSITY_SCHEMA = pl.Schema(
    {
        "period_start": pl.Datetime("us", "UTC"),
        "period_end": pl.Datetime("us", "UTC"),
        "settlement_date": pl.Date,
        "settlement_period": pl.Int16,
        "forecast_gco2_per_kwh": pl.Int32,
        "actual_gco2_per_kwh": pl.Int32,
        "intensity_index": pl.String,
        "fetched_at": pl.Datetime("us", "UTC"),
        "data_quality_flag": pl.String,
        "source_request_url": pl.String,
    }
)

SILVER_MIX_SCHEMA = pl.Schema(
    {
        "period_start": pl.Datetime("us", "UTC"),
        "settlement_date": pl.Date,
        "fuel": pl.String,
        "generation_fraction": pl.Float64,
        "fetched_at": pl.Datetime("us", "UTC"),
    }
)

INTENSITY_BODY = pl.Struct(
    {
        "data": pl.List(
            pl.Struct(
                {
                    "from": pl.String,
                    "to": pl.String,
                    "intensity": pl.Struct({"forecast": pl.Int64, "actual": pl.Int64, "index": pl.String}),
                }
            )
        )
    }
)
_GENERATION_BODY = pl.Struct(
    {
        "data": pl.List(
            pl.Struct(
                {
                    "from": pl.String,
                    "to": pl.String,
                    "generationmix": pl.List(pl.Struct({"fuel": pl.String, "perc": pl.Float64})),
                }
            )
        )
    }
)


class NesoDataError(ValueError):
    """A payload that parsed but holds values the schema does not allow."""


# ------------------------------------------------------------------------------------------ bronze
def bronze_rows(responses: Sequence[FetchedResponse]) -> pl.DataFrame:
    """One bronze row per response and UK day it was requested for (in the responses' order, then the days'); the
    body kept verbatim. A row per response, exploded by its days: the 13 rows of a body share its one copy (a year
    of generation bodies is 170 MB as 365 rows; building them row by row copied each body 13 times)."""
    per_response = pl.DataFrame(
        [{**fetch_columns(r), "settlement_date": list(r.days)} for r in responses if r.days],  # no day: no row
        schema={**BRONZE_SCHEMA, "settlement_date": pl.List(pl.Date)},
    )
    return per_response.explode("settlement_date").select(list(BRONZE_SCHEMA))


def settlement_period() -> pl.Expr:
    """`settlement_period` (1..46/48/50): the half-hours since UK local midnight of `settlement_date`,
    counted in UTC so that clock-change days come out right."""
    local_midnight = pl.col("settlement_date").cast(pl.Datetime("us")).dt.replace_time_zone(UK_TZ).dt.convert_time_zone("UTC")
    return (((pl.col("period_start") - local_midnight).dt.total_minutes() // 30) + 1).alias("settlement_period")


# ------------------------------------------------------------------------------------------ parsing
def _uk_date(col: str) -> pl.Expr:
    return pl.col(col).dt.convert_time_zone(UK_TZ).dt.date()


USABLE = pl.col("problem").is_null()


def fetch_facts(bronze: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Every bronze row's day and fetch facts, without its body (one scan of a lazy bronze table's narrow columns)."""
    return without_bodies(bronze, BRONZE_PARTITION)


def distinct_usable_bodies(bronze: pl.DataFrame | pl.LazyFrame, facts: pl.DataFrame | None = None) -> pl.DataFrame:
    """`content_hash` and `body` once per distinct usable body. Bronze keeps a copy of a response's body for each
    day it covers (a year of NESO: 365 copies of 29 bodies); from a lazy scan of the table, each body is read from the
    first day's partition that holds it only (the others' files are pruned by their partition value). `facts`: the
    rows' `fetch_facts`, when the caller has them."""
    if isinstance(bronze, pl.DataFrame):
        return bronze.filter(USABLE).select("content_hash", "body").unique("content_hash")
    day = BRONZE_PARTITION[0]
    facts = fetch_facts(bronze) if facts is None else facts
    firsts = facts.filter(USABLE).group_by("content_hash").agg(pl.col(day).min())
    wanted = pl.col(day).is_in(firsts[day].implode()) & pl.col("content_hash").is_in(firsts["content_hash"].implode())
    return bronze.filter(wanted & USABLE).select("content_hash", "body").collect().unique("content_hash")


def decode_records(bronze: pl.DataFrame | pl.LazyFrame, body_dtype: pl.Struct, facts: pl.DataFrame | None = None) -> pl.DataFrame:
    """Each distinct usable body decoded once and exploded to one row per half-hour record."""
    bodies = distinct_usable_bodies(bronze, facts)
    return (
        bodies.with_columns(pl.col("body").str.json_decode(body_dtype).struct.field("data").alias("record"))
        .drop("body")
        .explode("record")
        .filter(pl.col("record").is_not_null())
        .unnest("record")
        .with_columns(
            pl.col("from").str.to_datetime(API_TIME_FORMAT, time_zone="UTC", strict=False).dt.cast_time_unit("us").alias("period_start"),
            pl.col("to").str.to_datetime(API_TIME_FORMAT, time_zone="UTC", strict=False).dt.cast_time_unit("us").alias("period_end"),
        )
    )


def attach_fetches(records: pl.DataFrame, bronze: pl.DataFrame) -> pl.DataFrame:
    """Each record joined to the bronze rows (fetches) of its own UK day that carried its body (`bronze`: the rows,
    or their `fetch_facts`)."""
    fetches = bronze.filter(USABLE).select("settlement_date", "content_hash", "fetched_at", "request_url")
    dated = records.with_columns(_uk_date("period_start").alias("settlement_date"))
    placed = dated.filter(pl.col("settlement_date").is_not_null()).join(fetches, on=["content_hash", "settlement_date"], how="inner")
    # A record whose time cannot be read belongs to no day: keep it (with its request) so validation reports it.
    unplaced = dated.filter(pl.col("settlement_date").is_null()).drop("settlement_date").join(
        fetches.sort("fetched_at").unique("content_hash", keep="last"), on="content_hash", how="inner"
    )
    return pl.concat([placed, unplaced.select(placed.columns)]) if unplaced.height else placed


def newest_per(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    # Newest fetch wins; equal fetch times are broken by the content hash so the result is deterministic.
    return df.sort(["fetched_at", "content_hash"]).unique(keys, keep="last", maintain_order=True)


def parse_intensity(bronze: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Every half-hour record of every usable intensity payload, with the fetch it came from (`bronze` may be a
    lazy scan: each distinct body is then read once, `distinct_usable_bodies`)."""
    facts = fetch_facts(bronze)
    if facts.filter(USABLE).is_empty():
        return pl.DataFrame(schema={"period_start": pl.Datetime("us", "UTC")})
    decoded = decode_records(bronze, INTENSITY_BODY, facts).unnest("intensity")
    return attach_fetches(decoded, facts)


def _violation_reason() -> pl.Expr:
    lo, hi = PLAUSIBLE_GCO2_PER_KWH
    return (
        pl.when(pl.col("period_start").is_null() | pl.col("period_end").is_null())
        .then(pl.lit("unparseable from/to timestamp"))
        .when(pl.col("period_end") - pl.col("period_start") != pl.duration(minutes=30))
        .then(pl.lit("period is not 30 minutes long"))
        .when(pl.col("forecast").is_null())
        .then(pl.lit("forecast missing"))
        .when(~pl.col("index").is_in(list(ALLOWED_INDEX)) | pl.col("index").is_null())
        .then(pl.lit("index not in " + ", ".join(ALLOWED_INDEX)))
        .when(~pl.col("forecast").is_between(lo, hi) | (pl.col("actual").is_not_null() & ~pl.col("actual").is_between(lo, hi)))
        .then(pl.lit(f"forecast/actual outside {lo}..{hi} gCO2/kWh"))
        .otherwise(None)
    )


def intensity_violations(records: pl.DataFrame) -> pl.DataFrame:
    """Records the silver schema cannot hold, each with a reason (empty when all are fine)."""
    return records.with_columns(_violation_reason().alias("reason")).filter(pl.col("reason").is_not_null())


QUARANTINE_SCHEMA = pl.Schema(
    {
        "settlement_date": pl.Date,
        "request_url": pl.String,
        "fetched_at": pl.Datetime("us", "UTC"),
        "content_hash": pl.String,
        "record_from": pl.String,
        "record_to": pl.String,
        "forecast": pl.Int64,
        "actual": pl.Int64,
        "index": pl.String,
        "reason": pl.String,
    }
)


def split_intensity(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid records, quarantine): every record lands in exactly one, a quarantined one with its reason."""
    if records.is_empty() or "forecast" not in records.columns:
        return records, pl.DataFrame(schema=QUARANTINE_SCHEMA)
    checked = records.with_columns(_violation_reason().alias("reason"))
    bad = checked.filter(pl.col("reason").is_not_null())
    quarantine = (
        bad.rename({"from": "record_from", "to": "record_to"})
        .select(list(QUARANTINE_SCHEMA))
        .cast(dict(QUARANTINE_SCHEMA))
        .unique(["settlement_date", "content_hash", "record_from", "record_to", "reason"], keep="last")
        .sort("settlement_date", "fetched_at", "record_from")
    )
    return checked.filter(pl.col("reason").is_null()).drop("reason"), quarantine


def build_silver_intensity(records: pl.DataFrame) -> pl.DataFrame:
    """One row per half-hour (newest fetch wins) with settlement period and data-quality flag.

    Expects valid records (`split_intensity`); raises `NesoDataError` naming the request if given any
    value the schema does not allow.
    """
    if records.is_empty() or "forecast" not in records.columns:
        return pl.DataFrame(schema=SILVER_INTENSITY_SCHEMA)
    bad = intensity_violations(records)
    if bad.height:
        first = bad.row(0, named=True)
        raise NesoDataError(
            f"{bad.height} NESO intensity record(s) break the silver schema; first: {first['reason']} in the "
            f"record from={first['from']!r} to={first['to']!r} forecast={first['forecast']} actual={first['actual']} "
            f"index={first['index']!r} of GET {first['request_url']} (fetched {first['fetched_at']})"
        )
    newest = newest_per(records, ["period_start"])
    settled = pl.col("period_end") + pl.lit(SETTLED_AFTER) <= pl.col("fetched_at")
    flag = (
        pl.when(pl.col("actual") == 0)
        .then(pl.lit(FLAG_ACTUAL_ZERO))
        .when(pl.col("actual").is_null() & settled)
        .then(pl.lit(FLAG_ACTUAL_MISSING))
        .otherwise(None)
    )
    return (
        newest.with_columns(
            settlement_period(),
            flag.alias("data_quality_flag"),
        )
        .select(
            "period_start",
            "period_end",
            "settlement_date",
            "settlement_period",
            pl.col("forecast").alias("forecast_gco2_per_kwh"),
            pl.col("actual").alias("actual_gco2_per_kwh"),
            pl.col("index").alias("intensity_index"),
            "fetched_at",
            "data_quality_flag",
            pl.col("request_url").alias("source_request_url"),
        )
        .cast(dict(SILVER_INTENSITY_SCHEMA))
        .sort("period_start")
    )


def build_silver_mix(bronze: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per half-hour and fuel from the newest usable generation payload of each half-hour
    (`generation_fraction`: the fuel's share of generation, 0..1). Unusable answers (`problem` set) are
    never read: a half-hour without a usable answer has no row, which gold reports (`mix_missing_reason`)."""
    facts = fetch_facts(bronze)
    if facts.filter(USABLE).is_empty():
        return pl.DataFrame(schema=SILVER_MIX_SCHEMA)
    records = attach_fetches(decode_records(bronze, _GENERATION_BODY, facts), facts)
    bad = records.filter(pl.col("period_start").is_null() | pl.col("generationmix").is_null())
    if bad.height:
        first = bad.row(0, named=True)
        raise NesoDataError(
            f"{bad.height} NESO generation record(s) lack a time or a mix; first: from={first['from']!r} "
            f"of GET {first['request_url']}"
        )
    mix = (
        newest_per(records, ["period_start"])
        .explode("generationmix")
        .unnest("generationmix")
        .select("period_start", "settlement_date", "fuel", (pl.col("perc") / 100).alias("generation_fraction"), "fetched_at", "request_url")
    )
    bad = mix.filter(pl.col("fuel").is_null() | ~pl.col("generation_fraction").is_between(0, 1))
    if bad.height:
        first = bad.row(0, named=True)
        raise NesoDataError(
            f"{bad.height} generation mix entries have no fuel or a share outside 0..100 %; first: fuel={first['fuel']!r} "
            f"perc={first['generation_fraction'] * 100 if first['generation_fraction'] is not None else None} "
            f"at {first['period_start']} of GET {first['request_url']}"
        )
    mix = mix.drop("request_url")
    return mix.cast(dict(SILVER_MIX_SCHEMA)).unique(["period_start", "fuel"], keep="last").sort("period_start", "fuel")


# ------------------------------------------------------------------------------------------- gold
MIX_MISSING_DAY = "no usable generation mix for the settlement day (see the generation bronze check)"
MIX_MISSING_PERIOD = "the generation mix of the settlement day lacks this half-hour"
MIX_NOT_YET = "the half-hour had not started when the generation mix was last fetched (published as it happens)"


def build_features(intensity: pl.DataFrame, mix: pl.DataFrame, dates: Sequence[dt.date]) -> pl.DataFrame:
    """Per half-hour of `dates`: forecast error, rolling 24 h intensity, low-carbon share, calendar.

    `intensity` may hold the previous day too: the 24 h windows reach back into it, but only rows of
    `dates` are returned. Intensity is the actual value when there is a trustworthy one (not flagged as
    zero), else the forecast; an actual of 0 is flagged, so it is never divided by (relative error null).

    The generation mix is auxiliary (`energy_assets.bronze.AUXILIARY_RULE`): a half-hour without one keeps
    its row, `low_carbon_share_fraction` is null and `mix_missing_reason` says why: no usable mix for the
    day, the mix lacks the half-hour, or the half-hour had not started when the mix was fetched (the API
    publishes the mix as it happens, so today's later half-hours have none yet: expected, not a gap).
    """
    trusted_actual = pl.when(pl.col("data_quality_flag") == FLAG_ACTUAL_ZERO).then(None).otherwise(pl.col("actual_gco2_per_kwh"))
    low_carbon = (
        mix.filter(pl.col("fuel").is_in(list(LOW_CARBON_FUELS)))
        .group_by("period_start")
        .agg(pl.col("generation_fraction").sum().round(3).alias("low_carbon_share_fraction"))
    )
    days_with_mix = mix.select("settlement_date").unique().with_columns(pl.lit(True).alias("_day_has_mix"))
    latest_mix_fetch = mix["fetched_at"].max() if mix.height else None
    not_started = pl.col("period_start") >= pl.lit(latest_mix_fetch, dtype=pl.Datetime("us", "UTC")) if latest_mix_fetch else pl.lit(False)
    mix_missing_reason = (
        pl.when(pl.col("low_carbon_share_fraction").is_not_null())
        .then(None)
        .when(pl.col("_day_has_mix").is_null())
        .then(pl.lit(MIX_MISSING_DAY))
        .when(not_started)
        .then(pl.lit(MIX_NOT_YET))
        .otherwise(pl.lit(MIX_MISSING_PERIOD))
    )
    local = pl.col("period_start").dt.convert_time_zone(UK_TZ)
    df = (
        intensity.sort("period_start")
        .with_columns(trusted_actual.alias("_actual"))
        .with_columns(
            pl.coalesce("_actual", "forecast_gco2_per_kwh").cast(pl.Int32).alias("intensity_gco2_per_kwh"),
            (pl.col("_actual") - pl.col("forecast_gco2_per_kwh")).cast(pl.Int32).alias("forecast_error_gco2_per_kwh"),
        )
        .with_columns(
            pl.col("forecast_error_gco2_per_kwh").abs().alias("abs_forecast_error_gco2_per_kwh"),
            (pl.col("forecast_error_gco2_per_kwh") / pl.col("_actual")).alias("relative_forecast_error"),
            pl.col("intensity_gco2_per_kwh").cast(pl.Float64).rolling_mean_by("period_start", window_size="24h").alias("rolling_24h_mean_gco2_per_kwh"),
            pl.col("intensity_gco2_per_kwh").rolling_max_by("period_start", window_size="24h").alias("rolling_24h_max_gco2_per_kwh"),
            pl.col("intensity_gco2_per_kwh").is_not_null().cast(pl.Int32).rolling_sum_by("period_start", window_size="24h").alias("rolling_24h_period_count"),
            local.dt.hour().cast(pl.Int8).alias("hour_local"),
            local.dt.weekday().cast(pl.Int8).alias("day_of_week"),
            (local.dt.weekday() >= 6).alias("is_weekend"),
            local.dt.month().cast(pl.Int8).alias("month"),
        )
        .join(low_carbon, on="period_start", how="left")
        .join(days_with_mix, on="settlement_date", how="left")
        .with_columns(mix_missing_reason.alias("mix_missing_reason"))
        .filter(pl.col("settlement_date").is_in(list(dates)))
    )
    return df.select(
        "period_start",
        "period_end",
        "settlement_date",
        "settlement_period",
        "forecast_gco2_per_kwh",
        "actual_gco2_per_kwh",
        "intensity_gco2_per_kwh",
        "forecast_error_gco2_per_kwh",
        "abs_forecast_error_gco2_per_kwh",
        "relative_forecast_error",
        "rolling_24h_mean_gco2_per_kwh",
        "rolling_24h_max_gco2_per_kwh",
        "rolling_24h_period_count",
        "low_carbon_share_fraction",
        "mix_missing_reason",
        "hour_local",
        "day_of_week",
        "is_weekend",
        "month",
        "data_quality_flag",
    ).sort("period_start")
