"""Decision backtest: predicted against realised saving, null while references are missing."""

import datetime as dt

import polars as pl

from energy_assets.forecast import backtest
from energy_assets_tests.forecast.test_scheduling import ISSUE, issue
from energy_assets_tests.forecast.test_skill import actuals


def test_realised_saving_uses_final_actuals_and_stays_null_when_one_is_missing():
    values = [180, 180, 60, 60, 150]
    starts = [ISSUE.replace(minute=0) + dt.timedelta(minutes=30 * i) for i in range(5)]
    intensity = actuals([(s, a) for s, a in zip(starts, [170, 190, 90, 70, 150])])
    table = backtest.backtest(issue(values), intensity, durations=(60, 120))
    hour = table.filter(pl.col("duration_minutes") == 60).row(0, named=True)
    assert hour["chosen_start"] == starts[2] and hour["run_now_start"] == starts[0]
    assert hour["predicted_saving_gco2_per_kwh"] == 120.0
    assert hour["realised_window_gco2_per_kwh"] == 80.0 and hour["realised_now_gco2_per_kwh"] == 180.0
    assert hour["realised_saving_gco2_per_kwh"] == 100.0 and hour["realised_saving_fraction"] == 100 / 180
    partial = backtest.backtest(issue(values), intensity.filter(pl.col("period_start") != starts[3]), durations=(60,)).row(0, named=True)
    assert partial["realised_missing_half_hours"] == 1 and partial["realised_saving_gco2_per_kwh"] is None
    assert partial["predicted_saving_gco2_per_kwh"] == 120.0
