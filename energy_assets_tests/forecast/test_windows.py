"""Greenest windows: best start, run-now, saving, uncertainty, clock changes, the forecast horizon."""

import datetime as dt

import polars as pl
import pytest

from energy_assets.forecast import windows
from energy_assets.forecast.windows import WindowError, choose, parse_duration

UTC = dt.timezone.utc


def issue(start, values, issued=None):
    starts = [start + dt.timedelta(minutes=30 * i) for i in range(len(values))]
    issued = issued or start + dt.timedelta(minutes=1)
    return pl.DataFrame(
        {"issued_at": [issued] * len(values), "region_id": [0] * len(values), "region_shortname": ["National"] * len(values),
         "period_start": starts, "forecast_gco2_per_kwh": values, "lead_bucket": list(range(len(values)))},
        schema_overrides={"issued_at": pl.Datetime("us", "UTC"), "period_start": pl.Datetime("us", "UTC"), "region_id": pl.Int16, "lead_bucket": pl.Int16},
    )


S = dt.datetime(2024, 6, 12, 0, 0, tzinfo=UTC)  # 01:00 BST


def test_best_window_saving_and_reason_text():
    values = [180, 180, 180, 180, 60, 62, 61, 61, 150, 150]
    c = choose(issue(S, values), S + dt.timedelta(minutes=7), 120)
    assert c.best.start == S + dt.timedelta(hours=2) and c.best.mean_gco2_per_kwh == 61.0
    assert c.run_now.mean_gco2_per_kwh == 180.0
    assert c.saving_gco2_per_kwh == 119.0 and c.saving_fraction == pytest.approx(119 / 180)
    assert c.describe() == "03:00-05:00, 61 g/kWh against 180 now, -66%"
    late = choose(issue(S, [100] * 47 + [10] * 4), S, 60)
    assert late.best.label() == "00:30-01:30" and late.best.start == dt.datetime(2024, 6, 12, 23, 30, tzinfo=UTC)


def test_deadline_and_earliest_start_limit_the_candidates():
    values = [100, 100, 90, 90, 20, 20]
    c = choose(issue(S, values), S, 60, deadline=S + dt.timedelta(hours=2))
    assert c.best.start == S + dt.timedelta(hours=1)
    later = choose(issue(S, values), S, 60, earliest=S + dt.timedelta(minutes=95))
    assert later.best.start == S + dt.timedelta(hours=2)


def test_a_window_crossing_the_forecast_horizon_is_not_a_candidate():
    values = [100] * 8 + [10, 10]  # the cheapest 2 h would run past the last half-hour
    c = choose(issue(S, values), S, 120)
    assert c.best.end <= S + dt.timedelta(hours=5) and c.best.start == S + dt.timedelta(hours=3)
    with pytest.raises(WindowError, match="no 360-minute window fits between 2024-06-12 00:00Z and the end of the forecast"):
        choose(issue(S, values), S, 360)


def test_spring_clock_change_day_counts_half_hours_in_utc():
    spring = dt.datetime(2021, 3, 27, 23, 0, tzinfo=UTC)  # 23:00 GMT; clocks go forward at 01:00 UTC
    values = [200, 200, 50, 50, 50, 50, 200, 200]
    c = choose(issue(spring, values), spring, 120)
    assert c.best.start == dt.datetime(2021, 3, 28, 0, 0, tzinfo=UTC) and c.best.end == dt.datetime(2021, 3, 28, 2, 0, tzinfo=UTC)
    assert c.best.label() == "00:00 GMT-03:00 BST"  # two hours of load, three hours of wall clock
    autumn = dt.datetime(2021, 10, 31, 0, 0, tzinfo=UTC)  # 01:00 BST, clocks go back at 01:00 UTC
    c = choose(issue(autumn, [40, 40, 200, 200, 200]), autumn, 60)
    assert c.best.label() == "01:00 BST-01:00 GMT"  # the repeated hour, named unambiguously
    assert c.best.end - c.best.start == dt.timedelta(hours=1)


def test_uncertainty_band_and_probability_not_better():
    values = [120, 120, 100, 100]
    rmse = {0: 10.0, 1: 10.0, 2: 20.0, 3: 20.0}
    c = choose(issue(S, values), S, 60, rmse_by_bucket=rmse)
    assert c.best.sd_gco2_per_kwh == 20.0 and c.run_now.sd_gco2_per_kwh == 10.0
    # saving 20 g, spread sqrt(10^2 + 20^2): P = Phi(-20 / 22.36) = 0.1855
    assert c.p_not_better == pytest.approx(0.1855, abs=1e-3)
    no_skill = choose(issue(S, values), S, 60, rmse_by_bucket={0: 10.0})
    assert no_skill.p_not_better is None and no_skill.best.sd_gco2_per_kwh is None


def test_zero_run_now_intensity_is_not_divided_by():
    c = choose(issue(S, [0, 0, 0]), S, 30)
    assert c.saving_gco2_per_kwh == 0 and c.saving_fraction is None and c.is_now


def test_table_has_every_region_and_duration_and_reports_problems():
    arch = pl.concat([issue(S, [100.0 + i for i in range(97)]), issue(S, [50.0] * 97).with_columns(pl.lit(7, pl.Int16).alias("region_id"))])
    table = windows.greenest_windows(arch, pl.DataFrame(schema={"region_id": pl.Int16, "lead_bucket": pl.Int16, "rmse": pl.Float64}), durations=(30, 120, 60 * 49))
    assert table.height == 6
    assert table.filter(pl.col("duration_minutes") == 2940)["problem"].to_list()[0].startswith("no 2940-minute window fits")
    r0 = table.filter((pl.col("region_id") == 0) & (pl.col("duration_minutes") == 30)).row(0, named=True)
    assert r0["best_start"] == S and r0["uncertainty_basis"] == "the best window is now"


@pytest.mark.parametrize("text,minutes", [("30m", 30), ("2h", 120), ("1h30m", 90), ("1.5h", 90), ("90", 90)])
def test_parse_duration(text, minutes):
    assert parse_duration(text) == minutes


def test_parse_duration_rejects_what_is_not_half_hours():
    with pytest.raises(ValueError, match="must be a positive multiple of 30 minutes"):
        parse_duration("45m")
    with pytest.raises(ValueError, match="use minutes or hours"):
        parse_duration("two hours")
