"""Gold and presentation assets of the forecast domain: skill by lead time, greenest windows, decision backtest.

Unpartitioned: each reads the whole archive (and the national actuals) from the lake and is rebuilt whole.
"""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MetadataValue, asset

from energy_assets.column_docs import column_schema_metadata
from energy_assets.forecast import backtest, columns, skill, windows
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
    metadata=column_schema_metadata(columns.GOLD_SKILL),
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


def read_skill(lake: LakeResource) -> pl.DataFrame:
    return lake.lake().read("gold/neso_forecast_skill", schema=skill.SKILL_SCHEMA)


@asset(
    key=AssetKey(["presentation", "greenest_windows"]),
    deps=[ARCHIVE, SKILL],
    group_name=GROUP,
    kinds=KINDS,
    metadata=column_schema_metadata(columns.PRESENTATION_GREENEST_WINDOWS),
    description=(
        "The greenest time to run a load, per region_id (0 national, 1..17, 18 GB) and duration_minutes (30, 60, 120, "
        "240, 480), from each region's newest forecast issue (issued_at) and seen from then: best_start/best_end "
        "(UTC; best_label_uk in UK local time) within the forecast (a window never crosses its horizon), "
        "best_mean_gco2_per_kwh, run_now_gco2_per_kwh (the window starting in the half-hour in progress), "
        "saving_gco2_per_kwh and saving_fraction (null when running now would be 0 g), a 95 % band from the rolling "
        "30-day RMSE at those lead times, and p_not_better_than_now (the chance that the chosen window is not really "
        "greener than now). Half-hours are counted in UTC, so clock-change days need no special case. problem says "
        "why a row has no window."
    ),
)
def presentation_greenest_windows(context: AssetExecutionContext, lake: LakeResource) -> pl.DataFrame:
    table = windows.greenest_windows(read_archive(lake), skill.latest_rolling_rmse(read_skill(lake)))
    context.add_output_metadata(
        {
            "issued_at": MetadataValue.text(str(table["issued_at"].max()) if table.height else "no forecast archived"),
            "rows_without_window": MetadataValue.int(table["problem"].is_not_null().sum()),
        }
    )
    return table


GOLD_ASSETS = [gold_neso_forecast_skill, presentation_greenest_windows]


@asset(
    key=AssetKey(["gold", "carbon_aware_backtest"]),
    deps=[ARCHIVE, INTENSITY],
    group_name=GROUP,
    kinds=KINDS,
    metadata=column_schema_metadata(columns.GOLD_CARBON_AWARE_BACKTEST),
    description=(
        "Every decision the carbon-aware scheduler would have made from the archive: per region_id, issue (issued_at) "
        "and duration_minutes, the greenest start before a 24-hour deadline (chosen_start) against running at once "
        "(run_now_start), predicted and realised window/now intensity and saving. Realised is the final actual "
        "(national) or the final-forecast stand-in (regional, reference column), null while any half-hour of either "
        "window lacks its reference (realised_missing_half_hours counts them). realised_saving_fraction is null when "
        "running now really was 0 g."
    ),
)
def gold_carbon_aware_backtest(context: AssetExecutionContext, lake: LakeResource) -> pl.DataFrame:
    table = backtest.backtest(read_archive(lake), read_intensity(lake))
    done = table.filter(pl.col("realised_saving_gco2_per_kwh").is_not_null())
    context.add_output_metadata(
        {
            "decisions": MetadataValue.int(table.height),
            "decisions_with_realised_intensity": MetadataValue.int(done.height),
            "mean_predicted_saving_gco2_per_kwh": MetadataValue.float(float(done["predicted_saving_gco2_per_kwh"].mean())) if done.height else MetadataValue.text("none realised yet"),
            "mean_realised_saving_gco2_per_kwh": MetadataValue.float(float(done["realised_saving_gco2_per_kwh"].mean())) if done.height else MetadataValue.text("none realised yet"),
        }
    )
    return table


GOLD_ASSETS = [gold_neso_forecast_skill, presentation_greenest_windows, gold_carbon_aware_backtest]
