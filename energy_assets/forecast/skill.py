"""Forecast skill by lead time: pure polars functions of the archive and the national actuals. No Dagster, no I/O.

Every archived forecast is paired with a *reference* for its half-hour:

- national (region 0): the final actual, the actual of `silver/neso_carbon_intensity` as last fetched at least
  24 h after the half-hour ended (earlier fetches may still be revised). `reference = "final_actual"`.
- regional (1..18): NESO publishes no regional actuals, so the stand-in is the final forecast, the forecast of
  the newest issue made during the half-hour itself (lead bucket 0). The pair of that issue with itself is
  not scored. `reference = "final_forecast_stand_in"`: this measures how far forecasts move before the period,
  not how wrong they are.

Null, zero and missing stay distinct: a pair whose final actual is null (published without a value) counts in
`n_reference_null`; one without a final reference yet (less than 24 h, or no issue captured during the
half-hour) counts in `n_reference_missing`; neither is scored. A zero reference is scored (MAE, RMSE, bias,
P(|error| >= 50 g)) but not divided by: MAPE uses only references above zero (`n_mape`), null when there are none.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from energy_assets.forecast.archive import NATIONAL_REGION_ID
from energy_assets.neso.transforms import UK_TZ

FINAL_AFTER = dt.timedelta(hours=24)
BIG_ERROR_GCO2 = 50
ROLLING_DAYS = 30
FINAL_ACTUAL = "final_actual"
FINAL_FORECAST = "final_forecast_stand_in"
DAY, ROLLING = "day", "rolling_30d"

SKILL_SCHEMA = pl.Schema(
    {
        "region_id": pl.Int16,
        "reference": pl.String,
        "window": pl.String,
        "day": pl.Date,
        "lead_bucket": pl.Int16,
        "n": pl.Int64,
        "n_reference_null": pl.Int64,
        "n_reference_missing": pl.Int64,
        "n_reference_zero": pl.Int64,
        "n_mape": pl.Int64,
        "mae_gco2_per_kwh": pl.Float64,
        "rmse_gco2_per_kwh": pl.Float64,
        "bias_gco2_per_kwh": pl.Float64,
        "mape_fraction": pl.Float64,
        "p_abs_error_ge_50g": pl.Float64,
    }
)

_PAIR_SCHEMA = {
    "region_id": pl.Int16,
    "reference": pl.String,
    "day": pl.Date,
    "lead_bucket": pl.Int16,
    "forecast": pl.Float64,
    "reference_value": pl.Float64,
    "status": pl.String,  # scored | null | missing
}


def final_actuals(intensity: pl.DataFrame) -> pl.DataFrame:
    """(period_start, actual, status) for half-hours whose actual was last fetched >= 24 h after they ended:
    status "scored" with a value, "null" when the final answer had none."""
    final = intensity.filter(pl.col("fetched_at") >= pl.col("period_end") + pl.duration(hours=int(FINAL_AFTER.total_seconds() // 3600)))
    return final.select(
        "period_start",
        pl.col("actual_gco2_per_kwh").cast(pl.Float64).alias("reference_value"),
        pl.when(pl.col("actual_gco2_per_kwh").is_null()).then(pl.lit("null")).otherwise(pl.lit("scored")).alias("status"),
    )


def final_forecasts(archive: pl.DataFrame) -> pl.DataFrame:
    """(region_id, period_start, reference_value, reference_issued_at): the regional stand-in reference."""
    return (
        archive.filter((pl.col("region_id") != NATIONAL_REGION_ID) & (pl.col("lead_bucket") == 0))
        .sort("issued_at")
        .group_by("region_id", "period_start")
        .agg(pl.col("forecast_gco2_per_kwh").last().cast(pl.Float64).alias("reference_value"), pl.col("issued_at").last().alias("reference_issued_at"))
    )


def pairs(archive: pl.DataFrame, intensity: pl.DataFrame) -> pl.DataFrame:
    """Every archived forecast with its reference and status (scored, null, missing)."""
    day = pl.col("period_start").dt.convert_time_zone(UK_TZ).dt.date().alias("day")
    national = archive.filter(pl.col("region_id") == NATIONAL_REGION_ID).join(final_actuals(intensity), on="period_start", how="left")
    national = national.with_columns(pl.col("status").fill_null("missing"), pl.lit(FINAL_ACTUAL).alias("reference"))
    regional = archive.filter(pl.col("region_id") != NATIONAL_REGION_ID).join(final_forecasts(archive), on=["region_id", "period_start"], how="left")
    regional = regional.filter(pl.col("reference_issued_at").is_null() | (pl.col("issued_at") != pl.col("reference_issued_at")))
    regional = regional.with_columns(
        pl.when(pl.col("reference_value").is_null()).then(pl.lit("missing")).otherwise(pl.lit("scored")).alias("status"),
        pl.lit(FINAL_FORECAST).alias("reference"),
    )
    cols = [pl.col(c) for c in ("region_id", "reference")] + [day, pl.col("lead_bucket"), pl.col("forecast_gco2_per_kwh").alias("forecast"), pl.col("reference_value"), pl.col("status")]
    return pl.concat([national.select(cols), regional.select(cols)]).cast(_PAIR_SCHEMA)


def _daily_sums(p: pl.DataFrame) -> pl.DataFrame:
    err = pl.col("forecast") - pl.col("reference_value")
    scored = pl.col("status") == "scored"
    return p.group_by("region_id", "reference", "day", "lead_bucket").agg(
        scored.sum().cast(pl.Int64).alias("n"),
        (pl.col("status") == "null").sum().cast(pl.Int64).alias("n_reference_null"),
        (pl.col("status") == "missing").sum().cast(pl.Int64).alias("n_reference_missing"),
        (scored & (pl.col("reference_value") == 0)).sum().cast(pl.Int64).alias("n_reference_zero"),
        (scored & (pl.col("reference_value") > 0)).sum().cast(pl.Int64).alias("n_mape"),
        err.filter(scored).abs().sum().alias("s_abs"),
        (err.filter(scored) ** 2).sum().alias("s_sq"),
        err.filter(scored).sum().alias("s_err"),
        (err.abs() / pl.col("reference_value")).filter(scored & (pl.col("reference_value") > 0)).sum().alias("s_ape"),
        (scored & (err.abs() >= BIG_ERROR_GCO2)).sum().cast(pl.Int64).alias("n_big"),
    )


def _metrics(sums: pl.DataFrame, window: str) -> pl.DataFrame:
    n = pl.col("n")
    some = n > 0
    return sums.select(
        "region_id",
        "reference",
        pl.lit(window).alias("window"),
        "day",
        "lead_bucket",
        "n",
        "n_reference_null",
        "n_reference_missing",
        "n_reference_zero",
        "n_mape",
        pl.when(some).then(pl.col("s_abs") / n).alias("mae_gco2_per_kwh"),
        pl.when(some).then((pl.col("s_sq") / n).sqrt()).alias("rmse_gco2_per_kwh"),
        pl.when(some).then(pl.col("s_err") / n).alias("bias_gco2_per_kwh"),
        pl.when(pl.col("n_mape") > 0).then(pl.col("s_ape") / pl.col("n_mape")).alias("mape_fraction"),
        pl.when(some).then(pl.col("n_big") / n).alias("p_abs_error_ge_50g"),
    )


def build_skill(archive: pl.DataFrame, intensity: pl.DataFrame) -> pl.DataFrame:
    """Skill per (region, lead bucket, UK day of the forecast half-hour) and over the 30 days ending on each day."""
    if archive.is_empty():
        return pl.DataFrame(schema=SKILL_SCHEMA)
    daily = _daily_sums(pairs(archive, intensity))
    days = daily.select(pl.col("day").unique().alias("end_day"))
    rolling = (
        daily.join(days, how="cross")
        .filter((pl.col("day") <= pl.col("end_day")) & (pl.col("day") > pl.col("end_day") - pl.duration(days=ROLLING_DAYS)))
        .group_by("region_id", "reference", "end_day", "lead_bucket")
        .agg(pl.exclude("day").sum())
        .rename({"end_day": "day"})
    )
    out = pl.concat([_metrics(daily, DAY), _metrics(rolling.select(daily.columns), ROLLING)])
    return out.cast(dict(SKILL_SCHEMA)).sort("region_id", "window", "day", "lead_bucket")


def latest_rolling_rmse(skill: pl.DataFrame) -> pl.DataFrame:
    """(region_id, lead_bucket, rmse) of the newest rolling-30-day window with scored pairs, per region."""
    rolling = skill.filter((pl.col("window") == ROLLING) & (pl.col("n") > 0))
    if rolling.is_empty():
        return pl.DataFrame(schema={"region_id": pl.Int16, "lead_bucket": pl.Int16, "rmse_gco2_per_kwh": pl.Float64})
    newest = rolling.group_by("region_id").agg(pl.col("day").max().alias("newest"))
    return rolling.join(newest, on="region_id").filter(pl.col("day") == pl.col("newest")).select("region_id", "lead_bucket", "rmse_gco2_per_kwh")
