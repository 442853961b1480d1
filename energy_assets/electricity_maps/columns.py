"""Column descriptions of the Electricity Maps tables (unit and meaning): one dict per table, the one source of
truth used by the assets' `dagster/column_schema`, the IO manager's reported schema and the DuckDB column
comments (`energy_assets.column_docs`)."""

import polars as pl

from energy_assets.column_docs import UTC_TS, bronze_columns
from energy_assets.electricity_maps.transforms import (
    FEATURE_VALUES,
    FLOWS,
    KNOWN_SOURCES,
    TOTALS,
    UNKNOWN_SOURCES_DTYPE,
    lag_column,
    rolling_column,
    source_column,
)

_DATE = (pl.Date, "UTC day of the hour (00:00 to 24:00 UTC); with zone, the partition.")
_ZONE = (pl.String, "Electricity Maps zone key (e.g. GR, DE, US-CAL-CISO).")
_DATETIME = (UTC_TS, "Start of the hour (UTC); the value covers [datetime, datetime + 1 h).")

BRONZE = bronze_columns(
    {"date": _DATE, "zone": _ZONE},
    {"request_kind": (pl.String, "Which request produced the answer: history (last 24 h), past-range (a day range) or latest.")},
)

_TOTAL_TEXT = {
    "consumption": "Total power consumed in the zone (all sources, imports included), MW averaged over the hour.",
    "production": "Total power produced in the zone (all sources), MW averaged over the hour.",
    "import": "Total power imported from neighbouring zones, MW averaged over the hour.",
    "export": "Total power exported to neighbouring zones, MW averaged over the hour.",
}
_CARBON_TEXT = "Carbon intensity of the electricity consumed in the zone, gCO2eq/kWh (lifecycle by default; see emission_factor_type); null when the API sent null or the feed is missing."
_TOTALS = {f"{t}_total_mw": (pl.Float64, _TOTAL_TEXT[t]) for t in TOTALS}


def _source_text(flow: str, source: str) -> str:
    what = "produced in the zone" if flow == "production" else "consumed in the zone (production plus imports, by origin)"
    note = "; negative when storing (pumping, charging)" if "discharge" in source else ""
    return f"Power from {source} {what}, MW averaged over the hour{note}; null where the zone has no such source or the power feed is missing."


SILVER_ENERGY = {
    "date": _DATE,
    "zone": _ZONE,
    "datetime": _DATETIME,
    "carbon_intensity_gco2_per_kwh": (pl.Float64, _CARBON_TEXT),
    "emission_factor_type": (pl.String, "Emission factors used for the carbon intensity: lifecycle or direct."),
    **_TOTALS,
    "fossil_free_fraction": (pl.Float64, "Share of consumption from fossil-free sources, fraction 0..1 (the API's percentage / 100)."),
    "renewable_fraction": (pl.Float64, "Share of consumption from renewable sources, fraction 0..1 (the API's percentage / 100)."),
    **{source_column(f, s): (pl.Float64, _source_text(f, s)) for f in FLOWS for s in KNOWN_SOURCES},
    "unknown_sources": (UNKNOWN_SOURCES_DTYPE, "Source keys the API sent that have no column here: list of (flow, source, power_mw in MW); empty when none."),
    "has_carbon_intensity": (pl.Boolean, "True when the carbon-intensity feed has a row for the hour."),
    "has_power_breakdown": (pl.Boolean, "True when the power-breakdown feed has a row for the hour."),
    "missing_feed": (pl.String, "The feed with no row for the hour (carbon-intensity or power-breakdown), whose columns are then null; null when both are there."),
    "is_estimated": (pl.Boolean, "True when either feed marks the hour as estimated rather than measured."),
    "estimation_method": (pl.String, "How Electricity Maps estimated the hour (power feed's method, else carbon feed's); null when measured."),
    "updated_at": (UTC_TS, "Latest updatedAt of the two feeds' rows for the hour (UTC): when Electricity Maps last revised it."),
    "carbon_is_estimated": (pl.Boolean, "The carbon-intensity feed's isEstimated for the hour."),
    "power_is_estimated": (pl.Boolean, "The power-breakdown feed's isEstimated for the hour."),
    "carbon_updated_at": (UTC_TS, "The carbon-intensity row's updatedAt (UTC); null when that feed is missing."),
    "power_updated_at": (UTC_TS, "The power-breakdown row's updatedAt (UTC); null when that feed is missing."),
    "carbon_fetched_at": (UTC_TS, "When the carbon-intensity answer kept for the hour was fetched (UTC)."),
    "power_fetched_at": (UTC_TS, "When the power-breakdown answer kept for the hour was fetched (UTC)."),
}

SILVER_EXCHANGES = {
    "date": _DATE,
    "zone": _ZONE,
    "datetime": _DATETIME,
    "neighbour_zone": (pl.String, "The neighbouring zone (or zone pair key) at the other end of the interconnector."),
    "direction": (pl.String, "import (into zone) or export (out of zone)."),
    "power_mw": (pl.Float64, "Power exchanged with the neighbour in that direction, MW averaged over the hour."),
    "updated_at": (UTC_TS, "updatedAt of the power-breakdown row it comes from (UTC)."),
}

SILVER_QUARANTINE = {
    "date": _DATE,
    "zone": _ZONE,
    "source_table": (pl.String, "The bronze table of the answer (bronze/electricity_maps_carbon_intensity or ..._power_breakdown)."),
    "request_url": (pl.String, "The request whose answer held the row."),
    "content_hash": (pl.String, "SHA-256 of that answer's body (bronze/content_hash)."),
    "fetched_at": (UTC_TS, "When that answer was fetched (UTC)."),
    "reason": (pl.String, "Why the row could not be used (missing or unparseable datetime, not on the hour, wrong zone, non-numeric or absurd value, body not JSON)."),
    "raw": (pl.String, "The row (or body) as JSON text, verbatim."),
}

_FEATURE_TEXT = {**{c: text for c, (_, text) in _TOTALS.items()}, "carbon_intensity_gco2_per_kwh": _CARBON_TEXT}
_FEATURE_UNIT = {c: ("gCO2eq/kWh" if c.startswith("carbon") else "MW") for c in FEATURE_VALUES}

GOLD_ML_FEATURES = {
    "date": _DATE,
    "zone": _ZONE,
    "datetime": _DATETIME,
    "hour": (pl.Int8, "Hour of datetime in UTC (0..23)."),
    "day_of_week": (pl.Int8, "ISO day of week of datetime in UTC (1 = Monday .. 7 = Sunday)."),
    "month": (pl.Int8, "Month of datetime in UTC (1..12)."),
    **{c: (pl.Float64, _FEATURE_TEXT[c]) for c in FEATURE_VALUES},
    **{
        name: (pl.Float64, text)
        for c in FEATURE_VALUES
        for name, text in (
            (lag_column(c), f"{c} at exactly datetime - 1 h in the same zone, {_FEATURE_UNIT[c]}; null when that hour is missing."),
            (rolling_column(c), f"Mean of the non-null {c} over (datetime - 24 h, datetime] in the same zone, {_FEATURE_UNIT[c]}."),
        )
    },
    "rolling_hours_24h": (pl.Int32, "Hours present in the 24 h window of the rolling means (24 when complete)."),
    "is_estimated": (pl.Boolean, "True when Electricity Maps estimated the hour (silver's is_estimated)."),
}
