"""Column descriptions of the carbon tables (unit and meaning): one dict per table, the one source of truth used
by the assets' `dagster/column_schema`, the IO manager's reported schema and the DuckDB column comments
(`energy_assets.column_docs`)."""

import polars as pl

from energy_assets.column_docs import UTC_TS
from energy_assets.smart_meter import columns as smart_meter

_NESO_REGION_ID = (pl.Int16, "NESO region (1..17) the smart-meter region maps to; null when it maps to none (national intensity used).")

FOOTPRINT = {
    "settlement_date": smart_meter.SETTLEMENT_DATE,
    "interval_start_utc": (UTC_TS, "Start of the reading's half-hour (UTC); with meterpoint_id, unique."),
    "meterpoint_id": smart_meter.METERPOINT_ID,
    "region": smart_meter.REGION,
    "neso_region_id": _NESO_REGION_ID,
    "product_id": (pl.String, "Product of the covering agreement; null without one."),
    "product_display_name": (pl.String, "Display name of that product; null without an agreement."),
    "is_variable": (pl.Boolean, "True for a variable-rate product; null without an agreement."),
    "consumption_kwh": (pl.Float64, "Electricity consumed in the half-hour, kWh."),
    "intensity_gco2_per_kwh": (pl.Float64, "Grid carbon intensity applied to the half-hour, gCO2/kWh (see intensity_source); null when none exists."),
    "intensity_source": (pl.String, "Which intensity was applied: regional_forecast, national_actual (not a flagged 0) or national_forecast, in that order of preference; null when none."),
    "intensity_index": (pl.String, "NESO intensity band of the half-hour (very low .. very high) from the same source; null when none."),
    "emissions_gco2": (pl.Float64, "consumption_kwh x intensity_gco2_per_kwh, gCO2; null without an intensity."),
}

_SUMMARY = {
    "meterpoint_count": (pl.Int64, "Distinct meterpoints with readings in the group."),
    "reading_count": (pl.Int64, "Half-hourly readings in the group."),
    "total_consumption_kwh": (pl.Float64, "Total consumption, kWh."),
    "total_emissions_kgco2": (pl.Float64, "Total emissions, kgCO2 (sum of emissions_gco2 / 1000)."),
    "avg_intensity_gco2_per_kwh": (pl.Float64, "Consumption-weighted intensity: total emissions / kWh with an intensity, gCO2/kWh; null when no kWh had one."),
    "low_carbon_consumption_fraction": (pl.Float64, "Share of consumption (kWh with an index) in half-hours whose index is low or very low, fraction 0..1."),
    "regional_intensity_consumption_fraction": (pl.Float64, "Share of consumption with an intensity that was priced at the regional forecast, fraction 0..1."),
    "consumption_without_intensity_kwh": (pl.Float64, "Consumption of readings that got no intensity (not in the emissions), kWh."),
}
_DATE = (pl.Date, "UK settlement day; the partition.")

CARBON_PER_PRODUCT_PER_DAY = {
    "date": _DATE,
    "product_display_name": (pl.String, "Product display name; null for readings without a covering agreement."),
    "is_variable": (pl.Boolean, "True for a variable-rate product; null without an agreement."),
    **_SUMMARY,
}

CARBON_PER_REGION_PER_DAY = {
    "date": _DATE,
    "region": smart_meter.REGION,
    "neso_region_id": _NESO_REGION_ID,
    "neso_region_name": (pl.String, "NESO's short name of that region; null when unmapped."),
    **_SUMMARY,
}
