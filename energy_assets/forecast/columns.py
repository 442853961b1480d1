"""Column descriptions of the forecast tables (unit and meaning): one dict per table, the one source of truth used
by the assets' `dagster/column_schema`, the IO manager's reported schema and the DuckDB column comments
(`energy_assets.column_docs`). Types as the tables' schemas write them (`archive.ARCHIVE_SCHEMA`,
`skill.SKILL_SCHEMA`, `windows.GREENEST_SCHEMA`, `backtest.BACKTEST_SCHEMA`)."""

import polars as pl

from energy_assets.column_docs import UTC_TS, bronze_columns

_ISSUE_DATE = (pl.Date, "UK day of issue (Europe/London calendar day of issued_at / fetched_at); the partition.")
_ISSUED_AT = (UTC_TS, "Issue time (UTC): when this forecast was fetched (bronze/fetched_at), never earlier; one issue = one fetch of the 48-hour forecast.")
_REGION_ID = (pl.Int16, "Forecast region: 0 = national (/intensity fw48h), 1..17 = the DNO regions, 18 = GB (the regional endpoint's total).")
_REGION_SHORTNAME = (pl.String, "NESO's short name of the region (e.g. North Scotland, London; National for region 0, GB for 18).")
_LEAD_BUCKET = (pl.Int16, "Lead time in half-hours ahead of the half-hour in progress at the issue: 0 = the half-hour in progress .. 96 = the last of a 48-hour forecast.")
_REFERENCE = (
    pl.String,
    "What forecasts are compared with: final_actual (national: the actual last fetched >= 24 h after the half-hour) or "
    "final_forecast_stand_in (regional: no regional actuals are published; the forecast issued during the half-hour stands in).",
)
_DURATION = (pl.Int32, "Duration of the load to run, minutes (30, 60, 120, 240 or 480; a whole number of half-hours).")

BRONZE = bronze_columns({"issue_date": _ISSUE_DATE})

SILVER_ARCHIVE = {
    "issue_date": _ISSUE_DATE,
    "issued_at": _ISSUED_AT,
    "region_id": _REGION_ID,
    "region_shortname": _REGION_SHORTNAME,
    "period_start": (UTC_TS, "Start of the forecast half-hour (UTC, inclusive)."),
    "period_end": (UTC_TS, "End of the forecast half-hour (UTC, exclusive): period_start + 30 minutes."),
    "lead_minutes": (pl.Int32, "Lead time in minutes: period_start - issued_at (negative, down to -29, for the half-hour in progress at the issue)."),
    "lead_bucket": _LEAD_BUCKET,
    "forecast_gco2_per_kwh": (pl.Int32, "Forecast carbon intensity of the half-hour in the region, gCO2/kWh, as issued."),
    "intensity_index": (pl.String, "NESO's intensity band of the forecast: very low, low, moderate, high or very high."),
    "source_request_url": (pl.String, "The fw48h request whose answer this row comes from (bronze/request_url)."),
}

GOLD_SKILL = {
    "region_id": _REGION_ID,
    "reference": _REFERENCE,
    "window": (pl.String, "Aggregation window: day (the UK day in column day) or rolling_30d (the 30 UK days ending with day)."),
    "day": (pl.Date, "UK day (Europe/London) of the forecast half-hours scored; the last day of the window for rolling_30d."),
    "lead_bucket": _LEAD_BUCKET,
    "n": (pl.Int64, "Forecast/reference pairs scored (count)."),
    "n_reference_null": (pl.Int64, "Pairs not scored: the final actual was published without a value (count)."),
    "n_reference_missing": (pl.Int64, "Pairs not scored: no final reference yet (less than 24 h old, or no issue captured during the half-hour) (count)."),
    "n_reference_zero": (pl.Int64, "Scored pairs whose reference is 0 gCO2/kWh: in MAE/RMSE/bias, never divided by (count)."),
    "n_mape": (pl.Int64, "Scored pairs with a reference above 0, the ones mape_fraction uses (count)."),
    "mae_gco2_per_kwh": (pl.Float64, "Mean absolute error |forecast - reference|, gCO2/kWh; null when n = 0."),
    "rmse_gco2_per_kwh": (pl.Float64, "Root mean square error of forecast - reference, gCO2/kWh; null when n = 0."),
    "bias_gco2_per_kwh": (pl.Float64, "Mean error forecast - reference, gCO2/kWh (positive: forecasts too high); null when n = 0."),
    "mape_fraction": (pl.Float64, "Mean absolute percentage error as a fraction (0.1 = 10 %), over references above 0; null when n_mape = 0."),
    "p_abs_error_ge_50g": (pl.Float64, "Share of scored pairs with |forecast - reference| >= 50 gCO2/kWh, fraction 0..1; null when n = 0."),
}

PRESENTATION_GREENEST_WINDOWS = {
    "region_id": _REGION_ID,
    "region_shortname": _REGION_SHORTNAME,
    "issued_at": (UTC_TS, "Issue time (UTC) of the region's newest forecast, the one the window is chosen from and the moment it is seen from."),
    "duration_minutes": _DURATION,
    "best_start": (UTC_TS, "Start of the greenest window (UTC, inclusive); null when problem is set."),
    "best_end": (UTC_TS, "End of the greenest window (UTC, exclusive): best_start + duration_minutes; within the forecast horizon."),
    "best_label_uk": (pl.String, "The window in UK local time, e.g. 02:30-04:30 (with the date when it ends on a later day, zone names across a clock change)."),
    "best_mean_gco2_per_kwh": (pl.Float64, "Mean forecast carbon intensity of the greenest window, gCO2/kWh."),
    "best_band_low_gco2_per_kwh": (pl.Float64, "Lower end of the 95 % band of that mean (mean - 1.96 x the rolling 30-day RMSE at its lead times, not below 0), gCO2/kWh; null without skill for those lead times."),
    "best_band_high_gco2_per_kwh": (pl.Float64, "Upper end of the 95 % band of that mean (mean + 1.96 x the rolling 30-day RMSE at its lead times), gCO2/kWh; null without skill for those lead times."),
    "run_now_gco2_per_kwh": (pl.Float64, "Mean forecast intensity of the window starting in the half-hour in progress at the issue (running now), gCO2/kWh; null when that half-hour is not in the forecast."),
    "saving_gco2_per_kwh": (pl.Float64, "run_now - best mean, gCO2/kWh (0 when the best window is now); null without a run-now window."),
    "saving_fraction": (pl.Float64, "saving / run_now, fraction 0..1; null when running now would be 0 gCO2/kWh or has no window."),
    "p_not_better_than_now": (pl.Float64, "Probability 0..1 that the chosen window is not really greener than running now (normal errors from the rolling 30-day RMSE); null when the best window is now or skill is unknown."),
    "uncertainty_basis": (pl.String, "Where the band and probability come from: rolling 30-day RMSE by lead time, no skill yet for these lead times, or the best window is now."),
    "problem": (pl.String, "Null when a window was chosen; else why none could be (no forecast, no window of that duration fits before the horizon)."),
}

GOLD_CARBON_AWARE_BACKTEST = {
    "region_id": _REGION_ID,
    "reference": _REFERENCE,
    "issued_at": (UTC_TS, "Issue time (UTC) of the forecast the decision was made from; the decision is made at that moment."),
    "duration_minutes": _DURATION,
    "deadline": (UTC_TS, "Latest end of the load (UTC): issued_at + 24 hours."),
    "chosen_start": (UTC_TS, "Start (UTC) of the greenest window ending by the deadline, as the scheduler would have chosen it."),
    "run_now_start": (UTC_TS, "Start (UTC) of the run-now window: the half-hour in progress at issued_at."),
    "predicted_window_gco2_per_kwh": (pl.Float64, "Forecast mean carbon intensity of the chosen window, gCO2/kWh."),
    "predicted_now_gco2_per_kwh": (pl.Float64, "Forecast mean carbon intensity of the run-now window, gCO2/kWh."),
    "predicted_saving_gco2_per_kwh": (pl.Float64, "predicted now - predicted window, gCO2/kWh."),
    "realised_window_gco2_per_kwh": (pl.Float64, "Mean reference intensity (see reference) of the chosen window, gCO2/kWh; null while any half-hour of either window lacks its reference."),
    "realised_now_gco2_per_kwh": (pl.Float64, "Mean reference intensity of the run-now window, gCO2/kWh; null while any half-hour of either window lacks its reference."),
    "realised_saving_gco2_per_kwh": (pl.Float64, "realised now - realised window, gCO2/kWh; null while a reference is missing."),
    "realised_saving_fraction": (pl.Float64, "realised saving / realised now, fraction; null while a reference is missing or when running now really was 0 gCO2/kWh."),
    "realised_missing_half_hours": (pl.Int32, "Half-hours of the two windows (chosen and run-now, counted separately) without a reference yet (count; 0 = realised columns filled)."),
}
