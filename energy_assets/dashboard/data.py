"""What the dashboard shows, computed from the lake: plain functions of a `Lake`, no Streamlit.

A missing table reads as None so the page renders whatever has been materialised; an unreadable one raises.
"Recent" is relative to the newest half-hour in the lake, so the sample days (2021) show as well as live data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from energy_assets.lake.engine import file_totals
from energy_assets.lake.store import Lake, LakeTableNotFound, TableRef

RECENT = dt.timedelta(hours=48)
TIME_COLUMNS = ("period_start", "interval_start_utc", "datetime", "interval_start", "fetched_at", "date", "settlement_date")


def read_table(lake: Lake, key: str) -> pl.DataFrame | None:
    """The current snapshot of the table `key` (`layer/table`), or None when it does not exist."""
    try:
        return lake.read(key)
    except LakeTableNotFound:
        return None


@dataclass(frozen=True)
class Freshness:
    table: str
    delta_version: int
    last_commit_utc: dt.datetime | None
    minutes_since_commit: int | None
    rows: int
    newest_data: str


def _newest_value(table: DeltaTable, column: str) -> str:
    try:
        value = pc.max(table.to_pyarrow_dataset().to_table(columns=[column])[column]).as_py()
    except (pa.ArrowInvalid, KeyError):
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC" if value.tzinfo else "%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def freshness(lake: Lake, now: dt.datetime | None = None) -> pl.DataFrame:
    """One row per lake table: Delta version, time of (and minutes since) its last commit, rows, newest data point."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = [row for ref in lake.tables() if (row := _table_freshness(lake, ref, now)) is not None]
    return pl.DataFrame(
        [r.__dict__ for r in rows],
        schema={
            "table": pl.String,
            "delta_version": pl.Int64,
            "last_commit_utc": pl.Datetime("us", "UTC"),
            "minutes_since_commit": pl.Int64,
            "rows": pl.Int64,
            "newest_data": pl.String,
        },
        orient="row",
    )


def _table_freshness(lake: Lake, ref: TableRef, now: dt.datetime) -> Freshness | None:
    table = lake.open(ref.name)
    if table is None:  # removed since it was listed
        return None
    history = table.history(1)
    ts = history[0].get("timestamp") if history else None
    committed = dt.datetime.fromtimestamp(ts / 1000, tz=dt.timezone.utc) if ts else None
    rows = file_totals(table)[1]
    arrow_schema = pa.schema(table.schema().to_arrow())
    temporal = {f.name for f in arrow_schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)}
    column = next((c for c in TIME_COLUMNS if c in temporal), None)
    newest = _newest_value(table, column) if column and rows else ""
    age = int((now - committed).total_seconds() // 60) if committed else None
    return Freshness(ref.name, table.version(), committed, age, rows, newest)


def national_recent(intensity: pl.DataFrame, window: dt.timedelta = RECENT) -> pl.DataFrame:
    """The last `window` of national half-hours: forecast, actual and actual - forecast."""
    if intensity.is_empty():
        return intensity
    newest = intensity["period_start"].max()
    return (
        intensity.filter(pl.col("period_start") > newest - window)
        .sort("period_start")
        .select(
            "period_start",
            "forecast_gco2_per_kwh",
            "actual_gco2_per_kwh",
            (pl.col("actual_gco2_per_kwh") - pl.col("forecast_gco2_per_kwh")).alias("actual_minus_forecast_gco2_per_kwh"),
            "intensity_index",
        )
    )


def national_latest(intensity: pl.DataFrame) -> dict | None:
    """The newest half-hour, and the newest one with an actual (the 'current' numbers)."""
    if intensity.is_empty():
        return None
    s = intensity.sort("period_start")
    latest = s.row(-1, named=True)
    with_actual = s.filter(pl.col("actual_gco2_per_kwh").is_not_null())
    settled = with_actual.row(-1, named=True) if with_actual.height else None
    return {"latest": latest, "settled": settled}


def mix_latest(mix: pl.DataFrame) -> pl.DataFrame:
    """Generation mix of the newest half-hour, largest share first."""
    if mix.is_empty():
        return mix
    newest = mix["period_start"].max()
    latest = mix.filter(pl.col("period_start") == newest).select("period_start", "fuel", (pl.col("generation_fraction") * 100).alias("percent_of_generation"))
    return latest.sort("percent_of_generation", descending=True)


def mix_recent_wide(mix: pl.DataFrame, window: dt.timedelta = RECENT) -> pl.DataFrame:
    """The last `window` of the mix, one column per fuel (for an area chart)."""
    if mix.is_empty():
        return mix
    newest = mix["period_start"].max()
    recent = mix.filter(pl.col("period_start") > newest - window)
    return recent.pivot(on="fuel", index="period_start", values="generation_fraction", aggregate_function="first").sort("period_start")


def zones_recent(energy: pl.DataFrame, window: dt.timedelta = RECENT) -> dict[str, pl.DataFrame]:
    """Per Electricity Maps zone, its last `window` of hourly carbon intensity and fossil-free share."""
    if energy.is_empty() or "zone" not in energy.columns:
        return {}
    cols = [c for c in ("datetime", "carbon_intensity_gco2_per_kwh", "fossil_free_fraction", "renewable_fraction") if c in energy.columns]
    out = {}
    for zone in sorted(energy["zone"].unique().to_list()):
        z = energy.filter(pl.col("zone") == zone).sort("datetime")
        newest = z["datetime"].max()
        out[zone] = z.filter(pl.col("datetime") > newest - window).select(cols)
    return out


def regional_latest(regional: pl.DataFrame) -> pl.DataFrame:
    """The newest half-hour's forecast per NESO region."""
    if regional.is_empty():
        return regional
    newest = regional["period_start"].max()
    return (
        regional.filter(pl.col("period_start") == newest)
        .select("region_id", "region_shortname", "forecast_gco2_per_kwh", "intensity_index")
        .sort("region_id")
    )


def footprint_totals(per_product: pl.DataFrame) -> dict:
    """Overall kWh, kg CO2 and weighted intensity across the per-product table."""
    kwh = float(per_product["total_consumption_kwh"].sum() or 0.0)
    kg = float(per_product["total_emissions_kgco2"].sum() or 0.0)
    with_intensity = kwh - float(per_product["consumption_without_intensity_kwh"].sum() or 0.0)
    return {
        "total_consumption_kwh": kwh,
        "total_emissions_kgco2": kg,
        "avg_intensity_gco2_per_kwh": (kg * 1000.0 / with_intensity) if with_intensity > 0 else None,
        "days": per_product["date"].n_unique(),
    }


def per_product_totals(per_product: pl.DataFrame) -> pl.DataFrame:
    """Across days, per product: kWh, kg CO2, weighted intensity and low-carbon fraction of consumption."""
    if per_product.is_empty():
        return per_product
    with_intensity = pl.col("total_consumption_kwh") - pl.col("consumption_without_intensity_kwh")
    return (
        per_product.with_columns(
            (with_intensity * pl.col("low_carbon_consumption_fraction").fill_null(0)).alias("_low_kwh"),
            with_intensity.alias("_kwh_i"),
        )
        .group_by(pl.col("product_display_name").fill_null("(no agreement)"), "is_variable")
        .agg(
            pl.col("total_consumption_kwh").sum(),
            pl.col("total_emissions_kgco2").sum(),
            (pl.col("total_emissions_kgco2").sum() * 1000 / pl.col("_kwh_i").sum()).alias("avg_intensity_gco2_per_kwh"),
            (pl.col("_low_kwh").sum() / pl.col("_kwh_i").sum()).alias("low_carbon_consumption_fraction"),
        )
        .sort("total_consumption_kwh", descending=True)
    )


def per_region_totals(per_region: pl.DataFrame) -> pl.DataFrame:
    """Across days, per region: kWh, kg CO2 and weighted intensity."""
    if per_region.is_empty():
        return per_region
    with_intensity = pl.col("total_consumption_kwh") - pl.col("consumption_without_intensity_kwh")
    return (
        per_region.with_columns(with_intensity.alias("_kwh_i"))
        .group_by(pl.col("region").fill_null("(unknown)"), "neso_region_name")
        .agg(
            pl.col("total_consumption_kwh").sum(),
            pl.col("total_emissions_kgco2").sum(),
            (pl.col("total_emissions_kgco2").sum() * 1000 / pl.col("_kwh_i").sum()).alias("avg_intensity_gco2_per_kwh"),
        )
        .sort("avg_intensity_gco2_per_kwh", descending=True, nulls_last=True)
    )


# ------------------------------------------------------------------------------------ forecasts
def forecast_spread(archive: pl.DataFrame, region_id: int = 0, issues: int = 6) -> pl.DataFrame:
    """The last `issues` forecasts of a region side by side: one column per issue (`issued HH:MM dd Mon`),
    one row per half-hour, so the chart shows how the forecast moved from issue to issue."""
    rows = archive.filter(pl.col("region_id") == region_id)
    if rows.is_empty():
        return pl.DataFrame(schema={"period_start": pl.Datetime("us", "UTC")})
    newest = rows["issued_at"].unique().sort().tail(issues)
    picked = rows.filter(pl.col("issued_at").is_in(newest.implode()))
    labelled = picked.with_columns(pl.col("issued_at").dt.strftime("issued %d %b %H:%M").alias("issue"))
    return labelled.pivot(on="issue", index="period_start", values="forecast_gco2_per_kwh", sort_columns=True).sort("period_start")


def skill_by_lead(skill: pl.DataFrame, region_id: int = 0) -> pl.DataFrame:
    """MAE, RMSE and bias by lead time (hours) over the newest rolling 30 days of a region."""
    rows = skill.filter((pl.col("region_id") == region_id) & (pl.col("window") == "rolling_30d") & (pl.col("n") > 0))
    if rows.is_empty():
        return pl.DataFrame(schema={"lead_hours": pl.Float64, "n": pl.Int64, "mae_gco2_per_kwh": pl.Float64})
    newest = rows["day"].max()
    return (
        rows.filter(pl.col("day") == newest)
        .select((pl.col("lead_bucket") / 2).alias("lead_hours"), "n", "mae_gco2_per_kwh", "rmse_gco2_per_kwh", "bias_gco2_per_kwh", "reference")
        .sort("lead_hours")
    )


def chosen_windows(greenest: pl.DataFrame, duration_minutes: int = 120) -> pl.DataFrame:
    """The greenest window of `duration_minutes` per region, as a readable table."""
    return (
        greenest.filter(pl.col("duration_minutes") == duration_minutes)
        .sort("region_id")
        .select(
            "region_id",
            "region_shortname",
            pl.col("best_label_uk").alias("window_uk"),
            pl.col("best_mean_gco2_per_kwh").round(0).alias("window_gco2_per_kwh"),
            pl.col("run_now_gco2_per_kwh").round(0).alias("now_gco2_per_kwh"),
            pl.col("saving_fraction").round(3),
            pl.col("p_not_better_than_now").round(3),
            "problem",
        )
    )
