"""Forecast skill: references, null/zero/missing actuals, lead buckets, rolling windows."""

import datetime as dt

import polars as pl
import pytest

from energy_assets.forecast import skill
from energy_assets.forecast.archive import ARCHIVE_SCHEMA

UTC = dt.timezone.utc
P0 = dt.datetime(2024, 6, 12, 10, 0, tzinfo=UTC)


def arch(rows):
    """rows: (issued_at, region_id, period_start, forecast)"""
    out = []
    for issued, region, start, forecast in rows:
        lead = int((start - issued).total_seconds() // 60)
        bucket = int((start - issued.replace(minute=issued.minute - issued.minute % 30, second=0)).total_seconds() // 1800)
        out.append(dict(issue_date=issued.date(), issued_at=issued, region_id=region, region_shortname="x", period_start=start,
                        period_end=start + dt.timedelta(minutes=30), lead_minutes=lead, lead_bucket=bucket,
                        forecast_gco2_per_kwh=forecast, intensity_index="low", source_request_url="u"))
    return pl.DataFrame(out, schema=ARCHIVE_SCHEMA)


def actuals(rows, fetched_after=dt.timedelta(hours=30)):
    """rows: (period_start, actual or None)"""
    return pl.DataFrame(
        [dict(period_start=s, period_end=s + dt.timedelta(minutes=30), actual_gco2_per_kwh=a, fetched_at=s + fetched_after) for s, a in rows],
        schema={"period_start": pl.Datetime("us", "UTC"), "period_end": pl.Datetime("us", "UTC"), "actual_gco2_per_kwh": pl.Int32, "fetched_at": pl.Datetime("us", "UTC")},
    )


def one(frame, **where):
    sel = frame.filter(pl.all_horizontal([pl.col(k) == v for k, v in where.items()]))
    assert sel.height == 1, sel
    return sel.row(0, named=True)


def test_national_null_zero_and_missing_actuals_stay_distinct():
    issued = P0 - dt.timedelta(hours=2)  # bucket 4 for P0, 5, 6, 7 for the next ones
    periods = [P0 + dt.timedelta(minutes=30 * i) for i in range(4)]
    a = arch([(issued, 0, p, 120) for p in periods])
    intensity = actuals([(periods[0], 100), (periods[1], 0), (periods[2], None)])  # periods[3]: no final actual
    day = skill.build_skill(a, intensity).filter(pl.col("window") == skill.DAY)
    first = one(day, lead_bucket=4)
    assert (first["n"], first["mae_gco2_per_kwh"], first["bias_gco2_per_kwh"], first["mape_fraction"]) == (1, 20.0, 20.0, 0.2)
    assert first["reference"] == skill.FINAL_ACTUAL and first["p_abs_error_ge_50g"] == 0.0
    zero = one(day, lead_bucket=5)
    assert (zero["n"], zero["n_reference_zero"], zero["n_mape"], zero["mape_fraction"]) == (1, 1, 0, None)
    assert zero["mae_gco2_per_kwh"] == 120.0 and zero["p_abs_error_ge_50g"] == 1.0
    null = one(day, lead_bucket=6)
    assert (null["n"], null["n_reference_null"], null["mae_gco2_per_kwh"]) == (0, 1, None)
    missing = one(day, lead_bucket=7)
    assert (missing["n"], missing["n_reference_missing"], missing["rmse_gco2_per_kwh"]) == (0, 1, None)


def test_an_actual_fetched_less_than_24h_after_the_window_is_not_final():
    a = arch([(P0 - dt.timedelta(hours=1), 0, P0, 150)])
    early = skill.build_skill(a, actuals([(P0, 100)], fetched_after=dt.timedelta(hours=3)))
    assert one(early, window=skill.DAY)["n_reference_missing"] == 1


def test_regional_reference_is_the_final_forecast_and_is_not_scored_against_itself():
    early, final = P0 - dt.timedelta(hours=3), P0 + dt.timedelta(minutes=5)
    a = arch([(early, 7, P0, 200), (final, 7, P0, 170), (early, 7, P0 + dt.timedelta(hours=1), 180)])
    out = skill.build_skill(a, actuals([])).filter(pl.col("window") == skill.DAY)
    assert set(out["reference"]) == {skill.FINAL_FORECAST}
    scored = one(out, lead_bucket=6)
    assert (scored["n"], scored["mae_gco2_per_kwh"], scored["bias_gco2_per_kwh"]) == (1, 30.0, 30.0)
    assert one(out, lead_bucket=8)["n_reference_missing"] == 1  # no issue during that half-hour
    assert out.filter(pl.col("lead_bucket") == 0).is_empty()


def test_rmse_and_rolling_30_days():
    days = [P0 + dt.timedelta(days=d) for d in (0, 1, 40)]
    a = arch([(p - dt.timedelta(hours=1), 0, p, f) for p, f in zip(days, (110, 70, 100))])
    out = skill.build_skill(a, actuals([(p, 100) for p in days]))
    second_day = one(out, window=skill.ROLLING, day=days[1].date())
    assert second_day["n"] == 2 and second_day["rmse_gco2_per_kwh"] == pytest.approx((0.5 * (100 + 900)) ** 0.5)
    assert second_day["bias_gco2_per_kwh"] == -10.0
    assert one(out, window=skill.ROLLING, day=days[2].date())["n"] == 1  # the first two are over 30 days before
    rmse = skill.latest_rolling_rmse(out)
    assert rmse.row(0, named=True) == {"region_id": 0, "lead_bucket": 2, "rmse_gco2_per_kwh": 0.0}
