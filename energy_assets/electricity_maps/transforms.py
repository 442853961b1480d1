"""Pure transforms: bronze responses -> silver zone-hours (+ exchanges, quarantine) -> gold ML features.

No Dagster and no I/O here. JSON bodies are unpacked with DuckDB's JSON functions over an in-memory
connection (breakdown maps have open-ended keys: source names and neighbouring zones), everything else is
polars. Every parsed hour is accounted for: it lands in silver, is superseded by a newer revision, belongs
to another partition than the response was stored for, or goes to the quarantine with a reason.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import duckdb
import polars as pl

from energy_assets.bronze import bronze_schema

KNOWN_SOURCES = (
    "nuclear", "geothermal", "biomass", "coal", "wind", "solar", "hydro", "gas", "oil", "unknown",
    "hydro discharge", "battery discharge",
)  # fmt: skip
FLOWS = ("production", "consumption")
EXCHANGE_FLOWS = ("import", "export")
TOTALS = ("consumption", "production", "import", "export")
UTC = "UTC"
TS = pl.Datetime("us", UTC)


def source_column(flow: str, source: str) -> str:
    """`("production", "hydro discharge")` -> `production_hydro_discharge_mw`."""
    return f"{flow}_{normalise(source)}_mw"


def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or "unnamed"


SOURCE_COLUMNS = [source_column(f, s) for f in FLOWS for s in KNOWN_SOURCES]
TOTAL_COLUMNS = [f"{t}_total_mw" for t in TOTALS]
FEATURE_VALUES = ("consumption_total_mw", "production_total_mw", "import_total_mw", "export_total_mw", "carbon_intensity_gco2_per_kwh")

# The one bronze contract (energy_assets/bronze.py), plus `request_kind` (history | past-range | latest).
BRONZE_SCHEMA = {**bronze_schema({"date": pl.Date(), "zone": pl.String()}), "request_kind": pl.String()}
QUARANTINE_SCHEMA = {
    "date": pl.Date,
    "zone": pl.String,
    "source_table": pl.String,
    "request_url": pl.String,
    "content_hash": pl.String,
    "fetched_at": TS,
    "reason": pl.String,
    "raw": pl.String,
}
EXCHANGE_SCHEMA = {
    "date": pl.Date,
    "zone": pl.String,
    "datetime": TS,
    "neighbour_zone": pl.String,
    "direction": pl.String,
    "power_mw": pl.Float64,
    "updated_at": TS,
}


# ---------------------------------------------------------------------------------------------- parsing
_RESPONSES = """
select date, zone, fetched_at, request_url, content_hash, body,
       json_valid(body) as valid
from bronze
"""

_ROWS = """
create temp table rows as
select row_number() over () as row_id, * from (
    select date, zone, fetched_at, request_url, content_hash,
           unnest(coalesce(j->'$.history', j->'$.data', json_array(j))::JSON[]) as r
    from (select *, body::JSON as j from responses where valid)
)
"""

_NUMERIC = "('BIGINT', 'UBIGINT', 'DOUBLE', 'NULL')"


def _num(field_name: str) -> str:
    return f"try_cast(r->>'$.{field_name}' as DOUBLE)"


MAX_ABS_VALUE = 1e9  # no zone reaches a billion MW or gCO2eq/kWh: larger numbers are corrupt, not data


def _bad_num(field_name: str) -> str:
    return f"(coalesce(json_type(r, '$.{field_name}'), 'NULL') not in {_NUMERIC})"


def _bad_val(field_name: str) -> str:
    """A number that is NaN, infinite or absurdly large (e.g. 1e308; 1e400 overflows to inf)."""
    value = _num(field_name)
    return f"coalesce(isnan({value}) or isinf({value}) or abs({value}) > {MAX_ABS_VALUE}, false)"


_CARBON = f"""
select row_id, date, zone, fetched_at, request_url, content_hash, r::VARCHAR as raw,
       r->>'$.zone' as row_zone, r->>'$.datetime' as datetime_text, r->>'$.updatedAt' as updated_at_text,
       {_num('carbonIntensity')} as carbon_intensity_gco2_per_kwh,
       {_bad_num('carbonIntensity')} as bad_number,
       {_bad_val('carbonIntensity')} as bad_value,
       r->>'$.emissionFactorType' as emission_factor_type,
       try_cast(r->>'$.isEstimated' as BOOLEAN) as is_estimated,
       r->>'$.estimationMethod' as estimation_method
from rows
"""

_POWER = f"""
select row_id, date, zone, fetched_at, request_url, content_hash, r::VARCHAR as raw,
       r->>'$.zone' as row_zone, r->>'$.datetime' as datetime_text, r->>'$.updatedAt' as updated_at_text,
       {_num('powerConsumptionTotal')} as consumption_total_mw,
       {_num('powerProductionTotal')} as production_total_mw,
       {_num('powerImportTotal')} as import_total_mw,
       {_num('powerExportTotal')} as export_total_mw,
       {_num('fossilFreePercentage')} / 100 as fossil_free_fraction,
       {_num('renewablePercentage')} / 100 as renewable_fraction,
       ({_bad_num('powerConsumptionTotal')} or {_bad_num('powerProductionTotal')} or {_bad_num('powerImportTotal')}
        or {_bad_num('powerExportTotal')} or {_bad_num('fossilFreePercentage')} or {_bad_num('renewablePercentage')})
         as bad_number,
       ({_bad_val('powerConsumptionTotal')} or {_bad_val('powerProductionTotal')} or {_bad_val('powerImportTotal')} or {_bad_val('powerExportTotal')} or {_bad_val('fossilFreePercentage')} or {_bad_val('renewablePercentage')}) as bad_value,
       try_cast(r->>'$.isEstimated' as BOOLEAN) as is_estimated,
       r->>'$.estimationMethod' as estimation_method
from rows
"""

_ENTRIES = """
select row_id, flow, e.key as name, e.value as power_mw from (
    select row_id, flow,
           unnest(map_entries(json_transform(r->('$.' || field), '"MAP(VARCHAR, DOUBLE)"'))) as e
    from rows, (values ('production', 'powerProductionBreakdown'), ('consumption', 'powerConsumptionBreakdown'),
                       ('import', 'powerImportBreakdown'), ('export', 'powerExportBreakdown')) as f(flow, field)
)
"""


def _bronze_frame(bronze: pl.DataFrame) -> pl.DataFrame:
    cols = ["date", "zone", "fetched_at", "request_url", "content_hash", "body"]
    if "problem" in bronze.columns:  # unusable responses are kept in bronze as evidence, never parsed
        bronze = bronze.filter(pl.col("problem").is_null())
    if bronze.is_empty():
        return pl.DataFrame(schema={c: BRONZE_SCHEMA[c] for c in cols})
    return bronze.select(cols)


def _parse_ts(col: str) -> pl.Expr:
    return pl.col(col).str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone=UTC, strict=False)


@dataclass
class Parsed:
    rows: pl.DataFrame  # one row per hour in a response, with row_id
    entries: pl.DataFrame  # power only: (row_id, flow, name, power_mw)
    bad_bodies: pl.DataFrame  # bronze rows whose body is not JSON


def parse_responses(bronze: pl.DataFrame, kind: str) -> Parsed:
    """Unpack bronze bodies (history, past-range or latest shape) into one row per hour."""
    con = duckdb.connect()
    try:
        con.register("bronze", _bronze_frame(bronze).to_arrow())
        con.execute("create temp table responses as " + _RESPONSES)
        bad = con.sql("select date, zone, fetched_at, request_url, content_hash, body as raw from responses where not valid").pl()
        con.execute(_ROWS)
        rows = con.sql(_CARBON if kind == "carbon-intensity" else _POWER).pl()
        if kind == "power-breakdown":
            entries = con.sql(_ENTRIES).pl()
        else:
            entries = pl.DataFrame(schema={"row_id": pl.Int64, "flow": pl.String, "name": pl.String, "power_mw": pl.Float64})
    finally:
        con.close()
    rows = rows.with_columns(
        pl.col("fetched_at").cast(TS),
        _parse_ts("datetime_text").alias("datetime"),
        _parse_ts("updated_at_text").alias("updated_at"),
    )
    return Parsed(rows=rows, entries=entries.with_columns(pl.col("row_id").cast(pl.Int64)), bad_bodies=bad.with_columns(pl.col("fetched_at").cast(TS)))


def _quarantine_reason(rows: pl.DataFrame) -> pl.Expr:
    return (
        pl.when(pl.col("datetime_text").is_null())
        .then(pl.lit("missing datetime"))
        .when(pl.col("datetime").is_null())
        .then(pl.format("unparseable datetime {}", pl.col("datetime_text")))
        .when(pl.col("datetime").dt.truncate("1h") != pl.col("datetime"))
        .then(pl.format("datetime {} is not on the hour (only hourly granularity is supported)", pl.col("datetime_text")))
        .when(pl.col("row_zone").is_not_null() & (pl.col("row_zone") != pl.col("zone")))
        .then(pl.format("row is for zone {} but was fetched for zone {}", pl.col("row_zone"), pl.col("zone")))
        .when(pl.col("bad_number"))
        .then(pl.lit("a numeric field holds a non-number"))
        .when(pl.col("bad_value"))
        .then(pl.lit("a numeric field holds NaN, an infinity or a value beyond 1e9"))
        .otherwise(None)
    )


def _latest_per_hour(rows: pl.DataFrame) -> pl.DataFrame:
    """Newest `updatedAt` wins per (zone, datetime); ties go to the newest fetch."""
    return (
        rows.sort(["zone", "datetime", "updated_at", "fetched_at", "row_id"], nulls_last=False)
        .unique(["zone", "datetime"], keep="last", maintain_order=True)
    )


@dataclass
class Classified:
    kept: pl.DataFrame
    quarantine: pl.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def _classify(parsed: Parsed, source_table: str) -> Classified:
    rows = parsed.rows.with_columns(_quarantine_reason(parsed.rows).alias("reason"))
    bad_rows = rows.filter(pl.col("reason").is_not_null())
    good = rows.filter(pl.col("reason").is_null())
    in_partition = good.filter(pl.col("datetime").dt.date() == pl.col("date"))
    kept = _latest_per_hour(in_partition)
    quarantine = pl.concat(
        [
            bad_rows.select(
                "date", "zone", pl.lit(source_table).alias("source_table"), "request_url", "content_hash", "fetched_at", "reason", "raw"
            ),
            parsed.bad_bodies.select(
                "date", "zone", pl.lit(source_table).alias("source_table"), "request_url", "content_hash", "fetched_at",
                pl.lit("response body is not valid JSON").alias("reason"), "raw",
            ),
        ]
    ).cast(QUARANTINE_SCHEMA)
    stats = {
        "rows_parsed": rows.height,
        "rows_quarantined": bad_rows.height,
        "bodies_quarantined": parsed.bad_bodies.height,
        "rows_for_other_partitions": good.height - in_partition.height,
        "rows_superseded": in_partition.height - kept.height,
        "hours_kept": kept.height,
    }
    return Classified(kept=kept, quarantine=quarantine, stats=stats)


# ---------------------------------------------------------------------------------------------- silver
@dataclass
class Silver:
    energy: pl.DataFrame
    exchanges: pl.DataFrame
    quarantine: pl.DataFrame
    stats: dict[str, int]
    unknown_sources: list[str]


def missing_feed_expr() -> pl.Expr:
    """Which feed has no row for the hour (`carbon-intensity` | `power-breakdown`), null when both have one:
    an hour is built from the feed that answered (AUXILIARY_RULE of energy_assets/bronze.py)."""
    return (
        pl.when(pl.col("carbon_updated_at").is_null())
        .then(pl.lit("carbon-intensity"))
        .when(pl.col("power_updated_at").is_null())
        .then(pl.lit("power-breakdown"))
        .otherwise(None)
    )


UNKNOWN_SOURCES_DTYPE = pl.List(pl.Struct({"flow": pl.String, "source": pl.String, "power_mw": pl.Float64}))


def build_silver(carbon_bronze: pl.DataFrame, power_bronze: pl.DataFrame) -> Silver:
    """One row per (zone, UTC hour) joining carbon intensity and power breakdown, plus tidy exchanges."""
    carbon = _classify(parse_responses(carbon_bronze, "carbon-intensity"), "bronze/electricity_maps_carbon_intensity")
    power_parsed = parse_responses(power_bronze, "power-breakdown")
    power = _classify(power_parsed, "bronze/electricity_maps_power_breakdown")

    entries = power_parsed.entries.join(power.kept.select("row_id", "zone", "datetime", "date", "updated_at"), on="row_id")
    known = {normalise(s) for s in KNOWN_SOURCES}
    sources = entries.filter(pl.col("flow").is_in(FLOWS)).with_columns(
        pl.col("name").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "_").str.strip_chars("_").alias("norm")
    )
    wide = (
        sources.filter(pl.col("norm").is_in(known))
        .with_columns(pl.format("{}_{}_mw", "flow", "norm").alias("column"))
        .pivot(on="column", index="row_id", values="power_mw", aggregate_function="first", on_columns=SOURCE_COLUMNS)
    ) if sources.height else pl.DataFrame(schema={"row_id": pl.Int64})
    missing = [c for c in SOURCE_COLUMNS if c not in wide.columns]
    wide = wide.with_columns([pl.lit(None, pl.Float64).alias(c) for c in missing]).select("row_id", *SOURCE_COLUMNS)
    unknown = sources.filter(~pl.col("norm").is_in(known))
    unknown_lists = unknown.group_by("row_id").agg(
        pl.struct(pl.col("flow"), pl.col("name").alias("source"), pl.col("power_mw")).alias("unknown_sources")
    ).cast({"unknown_sources": UNKNOWN_SOURCES_DTYPE, "row_id": pl.Int64})

    power_wide = (
        power.kept.select(
            "row_id", "date", "zone", "datetime", *TOTAL_COLUMNS, "fossil_free_fraction", "renewable_fraction",
            pl.col("is_estimated").alias("power_is_estimated"), pl.col("estimation_method").alias("power_estimation_method"),
            pl.col("updated_at").alias("power_updated_at"), pl.col("fetched_at").alias("power_fetched_at"),
        )
        .join(wide, on="row_id", how="left")
        .join(unknown_lists, on="row_id", how="left")
        .drop("row_id")
    )
    carbon_cols = carbon.kept.select(
        "date", "zone", "datetime", "carbon_intensity_gco2_per_kwh", "emission_factor_type",
        pl.col("is_estimated").alias("carbon_is_estimated"), pl.col("estimation_method").alias("carbon_estimation_method"),
        pl.col("updated_at").alias("carbon_updated_at"), pl.col("fetched_at").alias("carbon_fetched_at"),
    )
    energy = (
        carbon_cols.join(power_wide, on=["date", "zone", "datetime"], how="full", coalesce=True)
        .with_columns(
            pl.any_horizontal(pl.col("carbon_is_estimated").fill_null(False), pl.col("power_is_estimated").fill_null(False)).alias("is_estimated"),
            pl.coalesce("power_estimation_method", "carbon_estimation_method").alias("estimation_method"),
            pl.max_horizontal("carbon_updated_at", "power_updated_at").alias("updated_at"),
            pl.col("carbon_updated_at").is_not_null().alias("has_carbon_intensity"),
            pl.col("power_updated_at").is_not_null().alias("has_power_breakdown"),
            missing_feed_expr().alias("missing_feed"),
        )
        .select(
            "date", "zone", "datetime", "carbon_intensity_gco2_per_kwh", "emission_factor_type", *TOTAL_COLUMNS,
            "fossil_free_fraction", "renewable_fraction", *SOURCE_COLUMNS, "unknown_sources",
            "has_carbon_intensity", "has_power_breakdown", "missing_feed", "is_estimated", "estimation_method", "updated_at",
            "carbon_is_estimated", "power_is_estimated", "carbon_updated_at", "power_updated_at",
            "carbon_fetched_at", "power_fetched_at",
        )
        .cast({"date": pl.Date, "datetime": TS, "updated_at": TS, "carbon_updated_at": TS, "power_updated_at": TS,
               "carbon_fetched_at": TS, "power_fetched_at": TS, **{c: pl.Float64 for c in [*TOTAL_COLUMNS, *SOURCE_COLUMNS]}})
        .sort("zone", "datetime")
    )
    exchanges = (
        entries.filter(pl.col("flow").is_in(EXCHANGE_FLOWS))
        .select("date", "zone", "datetime", pl.col("name").alias("neighbour_zone"), pl.col("flow").alias("direction"), "power_mw", "updated_at")
        .cast(EXCHANGE_SCHEMA)
        .sort("zone", "datetime", "direction", "neighbour_zone")
    )
    stats = {f"carbon_{k}": v for k, v in carbon.stats.items()} | {f"power_{k}": v for k, v in power.stats.items()}
    stats["zone_hours"] = energy.height
    stats["exchange_rows"] = exchanges.height
    return Silver(
        energy=energy,
        exchanges=exchanges,
        quarantine=pl.concat([carbon.quarantine, power.quarantine]),
        stats=stats,
        unknown_sources=sorted(set(unknown["flow"] + ":" + unknown["name"])) if unknown.height else [],
    )


# ---------------------------------------------------------------------------------------------- gold
def lag_column(col: str) -> str:
    return f"lag_{col}_1h"


def rolling_column(col: str) -> str:
    return f"rolling_avg_{col}_24h"


FEATURE_COLUMNS = [c for v in FEATURE_VALUES for c in (lag_column(v), rolling_column(v))]


def build_features(silver: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """ML features per zone-hour of `targets` (rows of `date`, `zone`), using every hour in `silver`.

    - `lag_<col>_1h`: the value at exactly t - 1 h in the same zone; null when that hour is missing (a gap
      in the series), never the previous row's value.
    - `rolling_avg_<col>_24h`: mean of the non-null values in (t - 24 h, t] of the same zone, by time, not
      by row count; `rolling_hours_24h` says how many hours of the window exist.
    `silver` should hold the previous day too, so features are complete across day boundaries.
    """
    base = silver.select("date", "zone", "datetime", *FEATURE_VALUES, "is_estimated").sort("zone", "datetime")
    previous = base.select(
        "zone", (pl.col("datetime") + pl.duration(hours=1)).alias("datetime"),
        *[pl.col(v).alias(lag_column(v)) for v in FEATURE_VALUES],
    )
    features = (
        base.join(previous, on=["zone", "datetime"], how="left")
        .sort("zone", "datetime")
        .with_columns(
            *[pl.col(v).rolling_mean_by("datetime", window_size="24h").over("zone").alias(rolling_column(v)) for v in FEATURE_VALUES],
            pl.col("datetime").is_not_null().cast(pl.Int32).rolling_sum_by("datetime", window_size="24h").over("zone").alias("rolling_hours_24h"),
        )
        .join(targets.select("date", "zone").unique(), on=["date", "zone"], how="semi")
        .with_columns(
            pl.col("datetime").dt.hour().cast(pl.Int8).alias("hour"),
            pl.col("datetime").dt.weekday().cast(pl.Int8).alias("day_of_week"),
            pl.col("datetime").dt.month().cast(pl.Int8).alias("month"),
        )
    )
    return features.select(
        "date", "zone", "datetime", "hour", "day_of_week", "month", *FEATURE_VALUES, *FEATURE_COLUMNS,
        "rolling_hours_24h", "is_estimated",
    ).sort("zone", "datetime")


def partition_targets(keys: list[tuple[str, str]]) -> pl.DataFrame:
    """(date, zone) pairs as a frame, for `build_features`."""
    return pl.DataFrame(
        {"date": [dt.date.fromisoformat(d) for d, _ in keys], "zone": [z for _, z in keys]},
        schema={"date": pl.Date, "zone": pl.String},
    )
