"""Check rules pass on good silver and fail, with the offending rows, on bad silver."""

import datetime as dt
import json

import polars as pl
import pytest

from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.neso import checks, transforms
from energy_assets.neso.client import UTC, FetchedResponse, chunk_path

D = dt.date
LATER = dt.datetime(2030, 1, 1, tzinfo=UTC)
DAYS = [D(2021, 3, 27), D(2021, 3, 28), D(2021, 10, 31)]  # 48, 46, 50 periods


def silver_of(days, now=LATER) -> pl.DataFrame:
    frames = []
    for day in days:
        body = synthetic.intensity_payload(synthetic.uk_day_starts(day), now)
        resp = FetchedResponse("intensity", "http://127.0.0.1" + chunk_path("intensity", [day]), (day,), now, 200, json.dumps(body), 1, None)
        frames.append(transforms.build_silver_intensity(transforms.parse_intensity(transforms.bronze_rows([resp]))))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def good():
    return silver_of(DAYS)


BLOCKING_RULES = [
    checks.rule_unique_periods,
    checks.rule_complete_days,
    checks.rule_plausible_values,
    checks.rule_index_allowed,
    checks.rule_period_length,
    checks.rule_flagged_share,
]


@pytest.mark.parametrize("rule", BLOCKING_RULES, ids=lambda r: r.__name__)
def test_rules_pass_on_good_data(good, rule):
    outcome = rule(good)
    assert outcome.passed, outcome.found
    result = outcome.result()
    assert result.passed and "checked" in result.metadata and "found" in result.metadata


def test_contiguity_holds_across_days_that_follow_each_other(good):
    assert checks.rule_contiguous(good.filter(pl.col("settlement_date") < D(2021, 10, 1))).passed
    assert not checks.rule_contiguous(good).passed  # March to October is a gap


def test_duplicate_period_fails_unique(good):
    bad = pl.concat([good, good.head(1)])
    outcome = checks.rule_unique_periods(bad)
    assert not outcome.passed and outcome.details["duplicate_rows"] == 2


def test_missing_period_fails_contiguity_and_completeness(good):
    day = good.filter(pl.col("settlement_date") == D(2021, 3, 28))
    holed = day.filter(pl.col("settlement_period") != 10)
    assert not checks.rule_contiguous(holed).passed
    outcome = checks.rule_complete_days(holed)
    assert not outcome.passed
    assert outcome.offending.row(0, named=True)["present"] == 45 and outcome.offending.row(0, named=True)["day_periods"] == 46


def test_the_current_day_needs_only_its_ended_periods():
    now = dt.datetime(2024, 7, 4, 12, 10, tzinfo=UTC)
    today = silver_of([D(2024, 7, 4)], now=now)
    assert checks.rule_complete_days(today).passed  # forecast periods included, day not over
    ended_missing = today.filter(pl.col("settlement_period") != 5)
    assert not checks.rule_complete_days(ended_missing).passed
    future_missing = today.filter(pl.col("settlement_period") != 40)
    assert checks.rule_complete_days(future_missing).passed


def test_values_index_and_length(good):
    bad = good.with_columns(
        pl.when(pl.col("settlement_period") == 3).then(1500).otherwise(pl.col("forecast_gco2_per_kwh")).cast(pl.Int32).alias("forecast_gco2_per_kwh"),
        pl.when(pl.col("settlement_period") == 4).then(pl.lit("extreme")).otherwise(pl.col("intensity_index")).alias("intensity_index"),
        pl.when(pl.col("settlement_period") == 5).then(pl.col("period_start") + pl.duration(minutes=60)).otherwise(pl.col("period_end")).alias("period_end"),
    )
    assert checks.rule_plausible_values(bad).details["implausible_rows"] == len(DAYS)
    assert checks.rule_index_allowed(bad).details["bad_index_rows"] == len(DAYS)
    assert checks.rule_period_length(bad).details["bad_length_rows"] == len(DAYS)
    for rule in (checks.rule_plausible_values, checks.rule_index_allowed, checks.rule_period_length):
        assert not rule(bad).passed
    zero = good.with_columns(pl.lit(0).cast(pl.Int32).alias("actual_gco2_per_kwh"))
    assert checks.rule_plausible_values(zero).passed  # actual 0 is flagged by silver, not failed here


def test_flagged_share_fails_above_five_percent(good):
    flagged = good.with_columns(
        pl.when(pl.col("settlement_period") <= 10).then(pl.lit(transforms.FLAG_ACTUAL_ZERO)).otherwise(None).alias("data_quality_flag")
    )
    outcome = checks.rule_flagged_share(flagged)
    assert not outcome.passed and outcome.details["flagged"] == 30


def test_freshness_applies_to_today_only():
    now = dt.datetime(2024, 7, 4, 12, 10, tzinfo=UTC)
    today = silver_of([D(2024, 7, 4)], now=now)  # actuals up to the period ending 11:30, fetched at 12:10
    assert checks.rule_fresh(today, [D(2024, 7, 4)], now).passed
    stale = checks.rule_fresh(today, [D(2024, 7, 4)], now + dt.timedelta(hours=2))
    assert not stale.passed and stale.details["lag_minutes"] > 60 and stale.details["fetch_age_minutes"] == 120
    assert checks.rule_fresh(today, [D(2024, 7, 3)], now + dt.timedelta(hours=2)).details["applicable"] == "no"
    assert not checks.rule_fresh(today.head(0), [D(2024, 7, 4)], now).passed


def test_freshness_in_the_first_hour_of_the_day_needs_only_a_fresh_fetch():
    midnight = dt.datetime(2024, 7, 3, 23, 0, tzinfo=UTC)  # 00:00 BST on 2024-07-04
    now = midnight + dt.timedelta(minutes=40)
    early = silver_of([D(2024, 7, 4)], now=now)
    assert early["actual_gco2_per_kwh"].null_count() == early.height
    assert checks.rule_fresh(early, [D(2024, 7, 4)], now).passed
    assert not checks.rule_fresh(early, [D(2024, 7, 4)], now + dt.timedelta(minutes=50)).passed


def test_latest_fetch_usable():
    day = D(2024, 7, 4)
    ok = FetchedResponse("intensity", "u", (day,), LATER, 200, "{...}", 1, None)
    bad = FetchedResponse("intensity", "u", (day,), LATER + dt.timedelta(minutes=1), 500, '{"error":{}}', 5, "GET u failed: HTTP 500")
    assert checks.rule_latest_fetch_usable(transforms.bronze_rows([ok]), "bronze/x").passed
    outcome = checks.rule_latest_fetch_usable(transforms.bronze_rows([ok, bad]), "bronze/x")
    assert not outcome.passed and "HTTP 500" in outcome.found and "settlement_date=2024-07-04" in outcome.found
    assert "bronze/x" in outcome.checked


def test_a_begun_day_without_rows_fails_completeness(good):
    march = good.filter(pl.col("settlement_date") == D(2021, 3, 27))
    assert checks.rule_complete_days(march, [D(2021, 3, 27)]).passed
    outcome = checks.rule_complete_days(march, [D(2021, 3, 27), D(2021, 3, 28)])
    assert not outcome.passed and outcome.details["absent_days"] == 1
    future = dt.date.today() + dt.timedelta(days=3)
    assert checks.rule_complete_days(march, [D(2021, 3, 27), future]).passed


def test_mix_present_warns_with_the_count_of_real_gaps_only():
    from energy_assets_tests.neso.test_transforms import LATER, fetched, intensity_body, silver_for

    day = D(2024, 7, 4)
    silver = silver_for(fetched([day], intensity_body([day]), LATER))
    starts = synthetic.uk_day_starts(day)
    generation = synthetic.generation_payload(starts[:20])  # the mix as fetched at 09:00 UTC: 20 half-hours
    del generation["data"][3]  # and one of them missing
    fetched_at = dt.datetime(2024, 7, 4, 9, 0, tzinfo=UTC)
    mix = transforms.build_silver_mix(transforms.bronze_rows([fetched([day], generation, fetched_at, endpoint="generation")]))
    gold = transforms.build_features(silver, mix, [day])
    reasons = gold.group_by("mix_missing_reason").len().drop_nulls()
    assert dict(reasons.iter_rows()) == {transforms.MIX_MISSING_PERIOD: 1, transforms.MIX_NOT_YET: 28}
    outcome = checks.rule_mix_present(gold)
    assert not outcome.passed and outcome.warn_only
    assert outcome.details["periods_without_mix"] == 1 and outcome.details["periods_not_started"] == 28
    assert "1 of 48 half-hour(s) on 1 day(s) without a generation mix" in outcome.found
    assert outcome.result().severity.value == "WARN"
    complete = transforms.build_features(silver, transforms.build_silver_mix(transforms.bronze_rows(
        [fetched([day], synthetic.generation_payload(starts), LATER, endpoint="generation")])), [day])
    assert checks.rule_mix_present(complete).passed
