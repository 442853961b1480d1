"""Gold and presentation assets of the forecast domain: skill by lead time, greenest windows, decision backtest.

Unpartitioned: each reads the whole archive (and the national actuals) from the lake and is rebuilt whole.
"""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MetadataValue, asset

from energy_assets.forecast import skill
from energy_assets.forecast.archive import ARCHIVE_SCHEMA
from energy_assets.lake.resource import LakeResource
from energy_assets.neso.transforms import SILVER_INTENSITY_SCHEMA

GROUP = "neso_forecast"
KINDS = {"delta", "polars"}
ARCHIVE = AssetKey(["silver", "neso_forecast_archive"])
INTENSITY = AssetKey(["silver", "neso_carbon_intensity"])
SKILL = AssetKey(["gold", "neso_forecast_skill"])


def read_archive(lake: LakeResource) -> pl.DataFrame:
    return lake.lake().read("silver/neso_forecast_archive", schema=ARCHIVE_SCHEMA)


def read_intensity(lake: LakeResource) -> pl.DataFrame:
    return lake.lake().read("silver/neso_carbon_intensity", schema=SILVER_INTENSITY_SCHEMA)


@asset(
    key=SKILL,
    deps=[ARCHIVE, INTENSITY],
    group_name=GROUP,
    kinds=KINDS,
    description=(
        "Forecast skill per region_id (0 national, 1..17, 18 GB), lead_bucket (half-hours ahead, 0..96) and UK day "
        "of the forecast half-hour (window 'day') and over the 30 days ending that day (window 'rolling_30d'): n, "
        "mae/rmse/bias in gCO2/kWh, mape_fraction, p_abs_error_ge_50g. reference says what forecasts were compared "
        "with: 'final_actual' (national: the actual last fetched >= 24 h after the half-hour) or "
        "'final_forecast_stand_in' (regional: NESO publishes no regional actuals; the forecast made during the "
        "half-hour stands in). Null actuals (n_reference_null), not-yet-final or absent references "
        "(n_reference_missing) and zero actuals (n_reference_zero, scored but never divided by) are counted apart."
    ),
)
def gold_neso_forecast_skill(context: AssetExecutionContext, lake: LakeResource) -> pl.DataFrame:
    built = skill.build_skill(read_archive(lake), read_intensity(lake))
    national = built.filter((pl.col("region_id") == 0) & (pl.col("window") == skill.DAY))
    n = int(national["n"].sum()) if national.height else 0
    mae = float((national["mae_gco2_per_kwh"].fill_null(0) * national["n"]).sum() / n) if n else None
    context.add_output_metadata(
        {
            "rows": MetadataValue.int(built.height),
            "national_pairs_scored": MetadataValue.int(n),
            "national_mae_all_leads_gco2_per_kwh": MetadataValue.float(mae) if mae is not None else MetadataValue.text("no final actuals yet"),
        }
    )
    return built
