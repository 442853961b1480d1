"""Column descriptions of the NESO tables (unit and meaning): one dict per table, the one source of truth used
by the assets' `dagster/column_schema`, the IO manager's reported schema and the DuckDB column comments
(`energy_assets.column_docs`)."""

import polars as pl

from energy_assets.column_docs import UTC_TS, bronze_columns

_SETTLEMENT_DATE = (pl.Date, "UK settlement day (Europe/London calendar day, 00:00 to 00:00 local time); the partition.")
_PERIOD_START = (UTC_TS, "Start of the half-hour (UTC, inclusive).")
_PERIOD_END = (UTC_TS, "End of the half-hour (UTC, exclusive): period_start + 30 minutes.")
_SETTLEMENT_PERIOD = (pl.Int16, "Settlement period of the UK day: 1 = the half-hour from 00:00 local time; 46 / 48 / 50 periods on clock-change and normal days.")
_INDEX = (pl.String, "NESO's intensity band: very low, low, moderate, high or very high.")
_FETCHED_AT = (UTC_TS, "When the bronze answer this row comes from was fetched (UTC); the newest fetch wins.")
_SOURCE_URL = (pl.String, "The request whose answer this row comes from (bronze/request_url).")

BRONZE = bronze_columns({"settlement_date": _SETTLEMENT_DATE})

SILVER_CARBON_INTENSITY = {
    "period_start": _PERIOD_START,
    "period_end": _PERIOD_END,
    "settlement_date": _SETTLEMENT_DATE,
    "settlement_period": _SETTLEMENT_PERIOD,
    "forecast_gco2_per_kwh": (pl.Int32, "National carbon intensity forecast for the half-hour, gCO2/kWh."),
    "actual_gco2_per_kwh": (pl.Int32, "National carbon intensity measured for the half-hour, gCO2/kWh; null until published (0 is kept and flagged actual_zero)."),
    "intensity_index": _INDEX,
    "fetched_at": _FETCHED_AT,
    "data_quality_flag": (pl.String, "Null when the row is fine; actual_zero (actual reported as 0) or actual_missing_for_settled_period (no actual for a half-hour that ended before the fetch)."),
    "source_request_url": _SOURCE_URL,
}

SILVER_CARBON_INTENSITY_QUARANTINE = {
    "settlement_date": _SETTLEMENT_DATE,
    "request_url": (pl.String, "The request whose answer held the record."),
    "fetched_at": (UTC_TS, "When that answer was fetched (UTC)."),
    "content_hash": (pl.String, "SHA-256 of that answer's body (bronze/content_hash)."),
    "record_from": (pl.String, "The record's `from` time, as the API wrote it."),
    "record_to": (pl.String, "The record's `to` time, as the API wrote it."),
    "forecast": (pl.Int64, "The record's forecast, gCO2/kWh, as the API wrote it (null when absent)."),
    "actual": (pl.Int64, "The record's actual, gCO2/kWh, as the API wrote it (null when absent)."),
    "index": (pl.String, "The record's intensity index, as the API wrote it."),
    "reason": (pl.String, "Why silver cannot hold the record (unparseable time, not 30 minutes, forecast missing, unknown index, value outside 0..1000)."),
}

SILVER_GENERATION_MIX = {
    "period_start": _PERIOD_START,
    "settlement_date": _SETTLEMENT_DATE,
    "fuel": (pl.String, "Fuel type: biomass, coal, imports, gas, nuclear, other, hydro, solar or wind."),
    "generation_fraction": (pl.Float64, "Share of GB generation from this fuel in the half-hour, fraction 0..1 (the API's percentage / 100)."),
    "fetched_at": _FETCHED_AT,
}

GOLD_FEATURES = {
    "period_start": _PERIOD_START,
    "period_end": _PERIOD_END,
    "settlement_date": _SETTLEMENT_DATE,
    "settlement_period": _SETTLEMENT_PERIOD,
    "forecast_gco2_per_kwh": (pl.Int32, "National carbon intensity forecast, gCO2/kWh."),
    "actual_gco2_per_kwh": (pl.Int32, "National carbon intensity measured, gCO2/kWh (null until published; 0 is kept as reported)."),
    "intensity_gco2_per_kwh": (pl.Int32, "Best known intensity, gCO2/kWh: the actual when usable (published and not 0), else the forecast."),
    "forecast_error_gco2_per_kwh": (pl.Int32, "actual - forecast, gCO2/kWh; null without a usable actual."),
    "abs_forecast_error_gco2_per_kwh": (pl.Int32, "|actual - forecast|, gCO2/kWh; null without a usable actual."),
    "relative_forecast_error": (pl.Float64, "(actual - forecast) / actual, fraction; null without a usable actual (never divided by 0)."),
    "rolling_24h_mean_gco2_per_kwh": (pl.Float64, "Mean of intensity_gco2_per_kwh over the 24 h ending with this half-hour (reaches into the previous day), gCO2/kWh."),
    "rolling_24h_max_gco2_per_kwh": (pl.Int32, "Maximum of intensity_gco2_per_kwh over the same 24 h, gCO2/kWh."),
    "rolling_24h_period_count": (pl.Int32, "Half-hours with an intensity in that 24 h window (48 when complete)."),
    "low_carbon_share_fraction": (pl.Float64, "Share of generation from nuclear, wind, solar, hydro and biomass, fraction 0..1; null without a generation mix (see mix_missing_reason)."),
    "mix_missing_reason": (pl.String, "Why low_carbon_share_fraction is null (no usable mix for the day, the half-hour missing from it, or not started when the mix was fetched); null when the mix is there."),
    "hour_local": (pl.Int8, "Hour of period_start in UK local time (0..23)."),
    "day_of_week": (pl.Int8, "ISO day of week of period_start in UK local time (1 = Monday .. 7 = Sunday)."),
    "is_weekend": (pl.Boolean, "True on Saturday and Sunday (UK local)."),
    "month": (pl.Int8, "Month of period_start in UK local time (1..12)."),
    "data_quality_flag": (pl.String, "Silver's flag for the half-hour (actual_zero, actual_missing_for_settled_period), null when fine."),
}

SILVER_REGIONAL_INTENSITY = {
    "period_start": _PERIOD_START,
    "period_end": _PERIOD_END,
    "settlement_date": _SETTLEMENT_DATE,
    "settlement_period": _SETTLEMENT_PERIOD,
    "region_id": (pl.Int16, "NESO region: 1..17 the DNO regions, 18 = GB (national)."),
    "region_shortname": (pl.String, "NESO's short name of the region (e.g. North Scotland, London)."),
    "dno_region": (pl.String, "NESO's name of the distribution network operator (DNO) area of the region; GB for region 18."),
    "forecast_gco2_per_kwh": (pl.Int32, "Regional carbon intensity forecast, gCO2/kWh (the regional endpoint publishes no actuals)."),
    "intensity_index": _INDEX,
    "fetched_at": _FETCHED_AT,
    "source_request_url": _SOURCE_URL,
}
