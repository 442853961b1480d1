"""Pure polars transforms of the carbon domain: consumption x grid intensity -> footprint -> daily summaries.

No Dagster, no I/O, no loops over rows.

Which intensity a reading gets (`intensity_source`), in this order:
1. `regional_forecast`: the NESO regional forecast for the meterpoint's region, when the region maps to a
   NESO region (`regions.py`) and that half-hour's regional forecast exists;
2. `national_actual`: the national actual, when present and trustworthy (an actual of 0 flagged by the NESO
   silver table as `actual_zero` is not);
3. `national_forecast`: the national forecast.
A reading whose half-hour has none of them keeps a null intensity, source and emissions (counted and checked).

`emissions_gco2 = consumption_kwh * intensity_gco2_per_kwh`. Daily summaries weight intensity by consumption:
`avg_intensity_gco2_per_kwh = sum(emissions) / sum(kWh with an intensity)`; `low_carbon_consumption_fraction`
(0..1) is the fraction of consumption (kWh with an index) that fell in half-hours whose index is `low` or
`very low`, `regional_intensity_consumption_fraction` (0..1) that of kWh with an intensity priced at the regional
forecast; `total_emissions_kgco2` is in kg CO2.
"""

from __future__ import annotations

import polars as pl

from energy_assets.carbon.regions import SMART_METER_REGION_TO_NESO, region_map_frame
from energy_assets.neso.transforms import FLAG_ACTUAL_ZERO  # the NESO silver flag for an untrustworthy actual of 0

UK_TZ = "Europe/London"
REGIONAL_FORECAST = "regional_forecast"
NATIONAL_ACTUAL = "national_actual"
NATIONAL_FORECAST = "national_forecast"
INTENSITY_SOURCES = (REGIONAL_FORECAST, NATIONAL_ACTUAL, NATIONAL_FORECAST)
LOW_CARBON_INDEX = ("very low", "low")
UTC_TS = pl.Datetime("us", "UTC")

FOOTPRINT_SCHEMA = pl.Schema(
    {
        "settlement_date": pl.Date,
        "interval_start_utc": UTC_TS,
        "meterpoint_id": pl.String,
        "region": pl.String,
        "neso_region_id": pl.Int16,
        "product_id": pl.String,
        "product_display_name": pl.String,
        "is_variable": pl.Boolean,
        "consumption_kwh": pl.Float64,
        "intensity_gco2_per_kwh": pl.Float64,
        "intensity_source": pl.String,
        "intensity_index": pl.String,
        "emissions_gco2": pl.Float64,
    }
)

_SUMMARY_VALUES = {
    "meterpoint_count": pl.Int64,
    "reading_count": pl.Int64,
    "total_consumption_kwh": pl.Float64,
    "total_emissions_kgco2": pl.Float64,
    "avg_intensity_gco2_per_kwh": pl.Float64,
    "low_carbon_consumption_fraction": pl.Float64,
    "regional_intensity_consumption_fraction": pl.Float64,
    "consumption_without_intensity_kwh": pl.Float64,
}
PER_PRODUCT_SCHEMA = pl.Schema(
    {"date": pl.Date, "product_display_name": pl.String, "is_variable": pl.Boolean, **_SUMMARY_VALUES}
)
PER_REGION_SCHEMA = pl.Schema(
    {"date": pl.Date, "region": pl.String, "neso_region_id": pl.Int16, "neso_region_name": pl.String, **_SUMMARY_VALUES}
)


def _as_utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A timestamp column as microsecond UTC (naive values are read as UTC, as the column name says)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        expr = expr.dt.replace_time_zone("UTC")
    elif isinstance(dtype, pl.Datetime):
        expr = expr.dt.convert_time_zone("UTC")
    return expr.dt.cast_time_unit("us").alias("interval_start_utc")


def _readings(readings: pl.DataFrame) -> pl.DataFrame:
    """The smart-meter columns the footprint needs, with the types it relies on."""
    return readings.select(
        pl.col("meterpoint_id").cast(pl.String),
        _as_utc(pl.col("interval_start_utc"), readings.schema["interval_start_utc"]),
        pl.col("region").cast(pl.String),
        pl.col("product_id").cast(pl.String),
        pl.col("product_display_name").cast(pl.String),
        pl.col("is_variable").cast(pl.Boolean),
        pl.col("consumption_kwh").cast(pl.Float64),
    )


def build_footprint(
    readings: pl.DataFrame,
    national: pl.DataFrame,
    regional: pl.DataFrame,
    mapping: dict[str, int] | None = None,
) -> pl.DataFrame:
    """One row per reading (meterpoint, half-hour) with the intensity used, its source and the emissions.

    `readings`: silver/smart_meter_readings; `national`: silver/neso_carbon_intensity; `regional`:
    silver/neso_regional_intensity. Every reading is kept (a left join on unique keys: no row is lost or doubled).
    """
    mapping = SMART_METER_REGION_TO_NESO if mapping is None else mapping
    reg = regional.select(
        pl.col("period_start").cast(UTC_TS).alias("interval_start_utc"),
        pl.col("region_id").cast(pl.Int16).alias("neso_region_id"),
        pl.col("forecast_gco2_per_kwh").cast(pl.Float64).alias("_regional_forecast"),
        pl.col("intensity_index").alias("_regional_index"),
    ).unique(["interval_start_utc", "neso_region_id"], keep="last")
    nat = national.select(
        pl.col("period_start").cast(UTC_TS).alias("interval_start_utc"),
        pl.when(pl.col("data_quality_flag").fill_null("") == FLAG_ACTUAL_ZERO)
        .then(None)
        .otherwise(pl.col("actual_gco2_per_kwh"))
        .cast(pl.Float64)
        .alias("_national_actual"),
        pl.col("actual_gco2_per_kwh").is_not_null().alias("_actual_reported"),
        pl.col("forecast_gco2_per_kwh").cast(pl.Float64).alias("_national_forecast"),
        pl.col("intensity_index").alias("_national_index"),
    ).unique("interval_start_utc", keep="last")
    source = (
        pl.when(pl.col("_regional_forecast").is_not_null())
        .then(pl.lit(REGIONAL_FORECAST))
        .when(pl.col("_national_actual").is_not_null())
        .then(pl.lit(NATIONAL_ACTUAL))
        .when(pl.col("_national_forecast").is_not_null())
        .then(pl.lit(NATIONAL_FORECAST))
        .otherwise(None)
    )
    # The national index follows the actual when one was reported; falling back to the forecast because the
    # actual was untrustworthy leaves no index that describes the value used.
    index = (
        pl.when(pl.col("intensity_source") == REGIONAL_FORECAST)
        .then(pl.col("_regional_index"))
        .when(pl.col("intensity_source") == NATIONAL_ACTUAL)
        .then(pl.col("_national_index"))
        .when((pl.col("intensity_source") == NATIONAL_FORECAST) & ~pl.col("_actual_reported").fill_null(False))
        .then(pl.col("_national_index"))
        .otherwise(None)
    )
    return (
        _readings(readings)
        .join(region_map_frame(mapping).select("region", "neso_region_id"), on="region", how="left")
        .join(reg, on=["interval_start_utc", "neso_region_id"], how="left")
        .join(nat, on="interval_start_utc", how="left")
        .with_columns(
            pl.col("interval_start_utc").dt.convert_time_zone(UK_TZ).dt.date().alias("settlement_date"),
            pl.coalesce("_regional_forecast", "_national_actual", "_national_forecast").alias("intensity_gco2_per_kwh"),
            source.alias("intensity_source"),
        )
        .with_columns(
            index.alias("intensity_index"),
            (pl.col("consumption_kwh") * pl.col("intensity_gco2_per_kwh")).alias("emissions_gco2"),
        )
        .select(list(FOOTPRINT_SCHEMA))
        .cast(dict(FOOTPRINT_SCHEMA))
        .sort("settlement_date", "meterpoint_id", "interval_start_utc")
    )


def _summary_aggs() -> list[pl.Expr]:
    kwh = pl.col("consumption_kwh")
    has_intensity = pl.col("intensity_gco2_per_kwh").is_not_null()
    has_index = pl.col("intensity_index").is_not_null()
    kwh_with_intensity = kwh.filter(has_intensity).sum()
    kwh_with_index = kwh.filter(has_index).sum()
    return [
        pl.col("meterpoint_id").n_unique().cast(pl.Int64).alias("meterpoint_count"),
        pl.len().cast(pl.Int64).alias("reading_count"),
        kwh.sum().alias("total_consumption_kwh"),
        (pl.col("emissions_gco2").sum() / 1000.0).alias("total_emissions_kgco2"),
        pl.when(kwh_with_intensity > 0).then(pl.col("emissions_gco2").sum() / kwh_with_intensity).otherwise(None).alias("avg_intensity_gco2_per_kwh"),
        pl.when(kwh_with_index > 0)
        .then(kwh.filter(pl.col("intensity_index").is_in(list(LOW_CARBON_INDEX))).sum() / kwh_with_index)
        .otherwise(None)
        .alias("low_carbon_consumption_fraction"),
        pl.when(kwh_with_intensity > 0)
        .then(kwh.filter(pl.col("intensity_source") == REGIONAL_FORECAST).sum() / kwh_with_intensity)
        .otherwise(None)
        .alias("regional_intensity_consumption_fraction"),
        kwh.filter(~has_intensity).sum().alias("consumption_without_intensity_kwh"),
    ]


def carbon_per_product_per_day(footprint: pl.DataFrame) -> pl.DataFrame:
    """Per UK day and product (display name and whether it is a variable tariff): kWh, kg CO2, weighted intensity,
    low-carbon fraction. Readings without a covering agreement form their own row (null product)."""
    return (
        footprint.group_by(pl.col("settlement_date").alias("date"), "product_display_name", "is_variable")
        .agg(_summary_aggs())
        .select(list(PER_PRODUCT_SCHEMA))
        .cast(dict(PER_PRODUCT_SCHEMA))
        .sort("date", "product_display_name", "is_variable", nulls_last=True)
    )


def carbon_per_region_per_day(footprint: pl.DataFrame) -> pl.DataFrame:
    """Per UK day and smart-meter region (with its NESO region): the same measures as per product."""
    names = region_map_frame().select("neso_region_id", "neso_region_name")
    return (
        footprint.group_by(pl.col("settlement_date").alias("date"), "region", "neso_region_id")
        .agg(_summary_aggs())
        .join(names, on="neso_region_id", how="left")
        .select(list(PER_REGION_SCHEMA))
        .cast(dict(PER_REGION_SCHEMA))
        .sort("date", "region", nulls_last=True)
    )


def source_counts(footprint: pl.DataFrame) -> dict[str, int]:
    """Readings per intensity source (`none` for readings without any intensity)."""
    counts = footprint.group_by(pl.col("intensity_source").fill_null("none")).len()
    out = {s: 0 for s in (*INTENSITY_SOURCES, "none")}
    out.update({row[0]: int(row[1]) for row in counts.iter_rows()})
    return out
