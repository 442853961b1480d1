"""The dashboard's forecast section data (pure) against the demo-like lake tables."""

import datetime as dt

import polars as pl

from energy_assets.dashboard import data
from energy_assets.forecast import skill, windows
from energy_assets_tests.forecast.test_scheduling import ISSUE, issue


def test_spread_has_one_column_per_issue_and_windows_table_per_region():
    older = issue(values=[100] * 20, issued=ISSUE - dt.timedelta(minutes=30))
    arch = pl.concat([older, issue()])
    spread = data.forecast_spread(arch)
    assert spread.columns == ["period_start", "issued 09 Jan 23:31", "issued 10 Jan 00:01"]
    assert spread.filter(pl.col("period_start") == ISSUE.replace(minute=0)).row(0) [1:] == (100, 180)
    table = windows.greenest_windows(arch, pl.DataFrame(schema={"region_id": pl.Int16, "lead_bucket": pl.Int16, "rmse": pl.Float64}))
    chosen = data.chosen_windows(table)
    assert chosen.row(0, named=True)["window_uk"] == "02:30-04:30" and chosen.height == 1


def test_skill_by_lead_uses_the_newest_rolling_window():
    from energy_assets_tests.forecast.test_skill import actuals, arch as make_arch

    p = dt.datetime(2024, 6, 12, 10, tzinfo=dt.timezone.utc)
    a = make_arch([(p - dt.timedelta(hours=1), 0, p, 130), (p - dt.timedelta(hours=3), 0, p, 160)])
    out = data.skill_by_lead(skill.build_skill(a, actuals([(p, 100)])))
    assert out.select("lead_hours", "mae_gco2_per_kwh").rows() == [(1.0, 30.0), (3.0, 60.0)]
