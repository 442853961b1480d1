"""A small lake with known numbers for the dashboard tests (written with delta-rs)."""

import datetime as dt
from pathlib import Path

import polars as pl

from energy_assets.carbon import transforms as carbon
from energy_assets_tests.carbon.factories import day_of_data, national, t

DAY = dt.date(2021, 3, 28)
# National: the newest half-hour (12:30) has a forecast of 250 and no actual yet; the newest settled one
# (12:00) has forecast 180 and actual 187 (actual - forecast = 7).
NATIONAL_ROWS = [
    {"period_start": t("2021-03-28T10:30"), "forecast_gco2_per_kwh": 150, "actual_gco2_per_kwh": 140, "intensity_index": "low"},
    {"period_start": t("2021-03-28T11:00"), "forecast_gco2_per_kwh": 160, "actual_gco2_per_kwh": 171, "intensity_index": "moderate"},
    {"period_start": t("2021-03-28T11:30"), "forecast_gco2_per_kwh": 170, "actual_gco2_per_kwh": 165, "intensity_index": "moderate"},
    {"period_start": t("2021-03-28T12:00"), "forecast_gco2_per_kwh": 180, "actual_gco2_per_kwh": 187, "intensity_index": "moderate"},
    {"period_start": t("2021-03-28T12:30"), "forecast_gco2_per_kwh": 250, "actual_gco2_per_kwh": None, "intensity_index": "high"},
]
ZONES = {"GR": 321.0, "DE": 456.0}  # carbon intensity of each zone's newest hour
MIX = {"wind": 41.5, "gas": 30.0, "nuclear": 16.5, "solar": 12.0}


def write(root: Path, layer: str, name: str, df: pl.DataFrame, mode: str = "overwrite") -> None:
    df.write_delta(str(root / layer / name), mode=mode)


def build(root: Path) -> dict:
    """Write the tables; return the numbers the page must show."""
    write(root, "silver", "neso_carbon_intensity", national(NATIONAL_ROWS))
    starts = [r["period_start"] for r in NATIONAL_ROWS]
    mix = pl.DataFrame(
        [{"period_start": s, "settlement_date": DAY, "fuel": f, "generation_fraction": p / 100} for s in starts for f, p in MIX.items()],
        schema={"period_start": pl.Datetime("us", "UTC"), "settlement_date": pl.Date, "fuel": pl.String, "generation_fraction": pl.Float64},
    )
    write(root, "silver", "neso_generation_mix", mix)
    hours = [t("2021-03-28T09:00") + dt.timedelta(hours=i) for i in range(4)]
    energy = pl.DataFrame(
        [
            {"date": DAY, "zone": z, "datetime": h, "carbon_intensity_gco2_per_kwh": v - 10 * (3 - i), "fossil_free_fraction": 0.5}
            for z, v in ZONES.items()
            for i, h in enumerate(hours)
        ],
        schema={"date": pl.Date, "zone": pl.String, "datetime": pl.Datetime("us", "UTC"), "carbon_intensity_gco2_per_kwh": pl.Float64, "fossil_free_fraction": pl.Float64},
    )
    write(root, "silver", "electricity_maps_energy", energy)
    readings, nat, reg = day_of_data(DAY, {"m1": "London", "m2": "Yorkshire"}, kwh=0.5, national_value=200, regional_value=100)
    write(root, "silver", "neso_regional_intensity", reg.with_columns(pl.lit("London").alias("region_shortname")))
    footprint = carbon.build_footprint(readings, nat, reg)
    write(root, "gold", "smart_meter_carbon_footprint", footprint)
    write(root, "presentation", "carbon_per_product_per_day", carbon.carbon_per_product_per_day(footprint))
    write(root, "presentation", "carbon_per_region_per_day", carbon.carbon_per_region_per_day(footprint))
    kwh = 2 * 46 * 0.5  # two meterpoints, every half-hour of the 46-period clock-change day
    return {
        "forecast_newest": "250 gCO2/kWh",
        "actual_settled": "187 gCO2/kWh",
        "difference": "7 gCO2/kWh",
        "index": "high",
        "zones": {z: f"{v:,.0f} gCO2eq/kWh" for z, v in ZONES.items()},
        "consumption": f"{kwh:,.1f} kWh",
        "emissions": f"{(kwh / 2 * 100 + kwh / 2 * 200) / 1000:,.2f} kg CO2",  # London regional 100 g, Yorkshire national actual 200 g
        "intensity": "150.0 gCO2/kWh",
    }
