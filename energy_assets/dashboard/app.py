"""The live dashboard (a Streamlit script): `energy-assets dashboard` or `streamlit run energy_assets/dashboard/app.py`.

Reads the lake (the lake settings) through delta-rs on every refresh
(`ENERGY_DASHBOARD_REFRESH_SECONDS`, default 30 s):
NESO national intensity (forecast vs actual and their difference), the generation mix, the regional forecast,
the forecast archive (spread across issues, greenest windows, skill by lead time),
Electricity Maps zones side by side, smart-meter consumption and footprint per product and region, and the
freshness of every table. Numbers the page states are in metrics and HTML tables (readable by a browser test).
"""

import datetime as dt

import polars as pl
import streamlit as st

from energy_assets import settings
from energy_assets.dashboard import data
from energy_assets.lake.store import Lake

REFRESH_SECONDS = settings.dashboard_refresh_seconds()

st.set_page_config(page_title="energy_assets: grid carbon and footprint", layout="wide")


def _fmt(value, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "n/a"


def _pd(df: pl.DataFrame):
    return df.to_pandas()


def national_section(lake: Lake) -> None:
    st.header("National carbon intensity (NESO)")
    intensity = data.read_table(lake, "silver/neso_carbon_intensity")
    if intensity is None or intensity.is_empty():
        st.info("silver/neso_carbon_intensity is not materialised yet.")
        return
    now = data.national_latest(intensity)
    latest, settled = now["latest"], now["settled"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"Forecast, newest half-hour ({_time(latest['period_start'])})", _fmt(latest["forecast_gco2_per_kwh"], unit=" gCO2/kWh"))
    if settled:
        diff = settled["actual_gco2_per_kwh"] - settled["forecast_gco2_per_kwh"]
        c2.metric(f"Actual, newest settled half-hour ({_time(settled['period_start'])})", _fmt(settled["actual_gco2_per_kwh"], unit=" gCO2/kWh"))
        c3.metric("Actual minus forecast (same half-hour)", _fmt(diff, unit=" gCO2/kWh"), delta=int(diff), delta_color="inverse")
    else:
        c2.metric("Actual", "n/a")
        c3.metric("Actual minus forecast", "n/a")
    c4.metric("Index (newest half-hour)", latest["intensity_index"] or "n/a")
    recent = data.national_recent(intensity)
    st.caption(f"Last 48 h of data in the lake, to {_time(recent['period_start'].max())}")
    left, right = st.columns(2)
    left.line_chart(_pd(recent), x="period_start", y=["forecast_gco2_per_kwh", "actual_gco2_per_kwh"], y_label="gCO2/kWh")
    right.bar_chart(_pd(recent), x="period_start", y="actual_minus_forecast_gco2_per_kwh", y_label="actual - forecast, gCO2/kWh")


def mix_section(lake: Lake) -> None:
    st.header("Generation mix (GB)")
    mix = data.read_table(lake, "silver/neso_generation_mix")
    if mix is None or mix.is_empty():
        st.info("silver/neso_generation_mix is not materialised yet.")
        return
    latest = data.mix_latest(mix)
    left, right = st.columns([1, 2])
    left.caption(f"Newest half-hour: {_time(latest['period_start'][0])}")
    left.bar_chart(_pd(latest), x="fuel", y="percent_of_generation", y_label="% of generation", horizontal=True)
    right.caption("Last 48 h, % of generation by fuel")
    right.area_chart(_pd(data.mix_recent_wide(mix)), x="period_start", y_label="share of generation (0-1)", stack=True)


def regional_section(lake: Lake) -> None:
    regional = data.read_table(lake, "silver/neso_regional_intensity")
    if regional is None or regional.is_empty():
        return
    st.header("Regional forecast (NESO)")
    latest = data.regional_latest(regional)
    st.caption(f"Newest half-hour: {_time(regional['period_start'].max())}")
    st.bar_chart(_pd(latest), x="region_shortname", y="forecast_gco2_per_kwh", y_label="gCO2/kWh", sort=False)


def forecast_section(lake: Lake) -> None:
    archive = data.read_table(lake, "silver/neso_forecast_archive")
    if archive is None or archive.is_empty():
        return
    st.header("Forecasts: spread across issues, greenest windows, skill by lead time")
    issued = archive["issued_at"].max()
    st.caption(f"{archive['issued_at'].n_unique()} issues archived; newest issued {_time(issued)}")
    spread = data.forecast_spread(archive)
    left, right = st.columns(2)
    left.subheader("National forecast, last issues")
    left.line_chart(_pd(spread), x="period_start", y=[c for c in spread.columns if c != "period_start"], y_label="gCO2/kWh")
    greenest = data.read_table(lake, "presentation/greenest_windows")
    if greenest is not None and not greenest.is_empty():
        right.subheader("Greenest 2-hour window from the newest issue")
        right.table(_pd(data.chosen_windows(greenest)).style.format({"saving_fraction": "{:.0%}", "p_not_better_than_now": "{:.0%}"}, na_rep="n/a"))
    skill = data.read_table(lake, "gold/neso_forecast_skill")
    if skill is not None and not skill.is_empty():
        by_lead = data.skill_by_lead(skill)
        st.subheader("National forecast error by lead time (rolling 30 days, against the final actual)")
        if by_lead.is_empty():
            st.info("No final actuals yet (an actual is final 24 h after its half-hour).")
        else:
            st.line_chart(_pd(by_lead), x="lead_hours", y=["mae_gco2_per_kwh", "rmse_gco2_per_kwh", "bias_gco2_per_kwh"], y_label="gCO2/kWh")


def zones_section(lake: Lake) -> None:
    st.header("Electricity Maps zones")
    energy = data.read_table(lake, "silver/electricity_maps_energy")
    zones = data.zones_recent(energy) if energy is not None else {}
    if not zones:
        st.info("silver/electricity_maps_energy is not materialised yet.")
        return
    columns = st.columns(len(zones))
    for column, (zone, frame) in zip(columns, zones.items(), strict=True):
        last = frame.drop_nulls("carbon_intensity_gco2_per_kwh")
        value = last["carbon_intensity_gco2_per_kwh"][-1] if last.height else None
        column.metric(f"{zone}: carbon intensity ({_time(last['datetime'][-1]) if last.height else 'n/a'})", _fmt(value, unit=" gCO2eq/kWh"))
        column.line_chart(_pd(frame), x="datetime", y="carbon_intensity_gco2_per_kwh", y_label="gCO2eq/kWh")


def footprint_section(lake: Lake) -> None:
    st.header("Smart-meter consumption and its carbon footprint")
    per_product = data.read_table(lake, "presentation/carbon_per_product_per_day")
    per_region = data.read_table(lake, "presentation/carbon_per_region_per_day")
    if per_product is None or per_product.is_empty():
        st.info("presentation/carbon_per_product_per_day is not materialised yet.")
        return
    totals = data.footprint_totals(per_product)
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Consumption ({totals['days']} days)", _fmt(totals["total_consumption_kwh"], 1, " kWh"))
    c2.metric("Emissions", _fmt(totals["total_emissions_kgco2"], 2, " kg CO2"))
    c3.metric("Consumption-weighted intensity", _fmt(totals["avg_intensity_gco2_per_kwh"], 1, " gCO2/kWh"))
    left, right = st.columns(2)
    left.subheader("Per product")
    left.table(
        _pd(data.per_product_totals(per_product)).style.format(
            {"total_consumption_kwh": "{:,.1f}", "total_emissions_kgco2": "{:,.2f}", "avg_intensity_gco2_per_kwh": "{:,.1f}", "low_carbon_consumption_fraction": "{:.1%}"}
        )
    )
    daily = per_product.with_columns(
        pl.col("product_display_name").fill_null("(no agreement)"), pl.col("date").cast(pl.String)
    ).pivot(
        on="product_display_name", index="date", values="total_emissions_kgco2", aggregate_function="sum"
    ).sort("date")
    left.bar_chart(_pd(daily), x="date", y_label="kg CO2 per day")
    if per_region is not None and not per_region.is_empty():
        right.subheader("Per region")
        right.table(
            _pd(data.per_region_totals(per_region)).style.format(
                {"total_consumption_kwh": "{:,.1f}", "total_emissions_kgco2": "{:,.2f}", "avg_intensity_gco2_per_kwh": "{:,.1f}"}, na_rep="n/a"
            )
        )


def freshness_section(lake: Lake) -> None:
    st.header("Freshness of each table")
    fresh = data.freshness(lake)
    if fresh.is_empty():
        st.info(f"No Delta tables under {lake.root} yet: run `energy-assets demo`.")
        return
    st.table(_pd(fresh.with_columns(pl.col("last_commit_utc").dt.strftime("%Y-%m-%d %H:%M:%S UTC"))))


@st.fragment(run_every=REFRESH_SECONDS)
def page() -> None:
    lake = Lake.from_settings()
    st.caption(f"Lake: `{lake.root}` · refreshed {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC · every {REFRESH_SECONDS} s")
    for section in (national_section, mix_section, regional_section, forecast_section, zones_section, footprint_section, freshness_section):
        try:
            section(lake)
        except Exception as exc:  # noqa: BLE001 - one unreadable table must not blank the rest of the page
            st.error(f"{section.__name__.removesuffix('_section')}: cannot read the lake: {type(exc).__name__}: {exc}")


st.title("energy_assets: grid carbon and smart-meter footprint")
page()
