"""The forecast archive: lead from the true fetch time, regions 0..18, capture rate, outage, replay."""

import datetime as dt

import polars as pl
import pytest
from dagster import AssetCheckSeverity, Definitions, materialize

from energy_assets.devtools import neso_forecast_samples
from energy_assets.forecast import archive
from energy_assets.forecast.assets import ARCHIVE_ASSETS, PastIssueError, issue_moments
from energy_assets.forecast.checks import ARCHIVE_CHECKS, rule_capture_rate
from energy_assets.forecast.gold import GOLD_ASSETS
from energy_assets.forecast.client import fetch_issue, recorded_issue_times
from energy_assets.http import HttpSession
from energy_assets.lake.store import Lake
from energy_assets.neso.client import INTENSITY, REGIONAL, UTC, FetchedResponse, NesoClient, forecast_path

DAY = dt.date(2024, 6, 12)
T = dt.datetime(2024, 6, 12, 11, 17, 30, tzinfo=UTC)  # 12:17:30 BST


def response(endpoint, fetched_at, issued_for=None, body=None, problem=None):
    path = forecast_path(endpoint, issued_for or fetched_at)
    text = body if body is not None else __import__("json").dumps(neso_forecast_samples.payload_for(path, fetched_at))
    return FetchedResponse(endpoint, "http://x" + path, (DAY,), fetched_at, 200, text, 1, problem)


def test_forecast_path_shifts_from_to_the_half_hour_in_progress():
    assert forecast_path(INTENSITY, T) == "/intensity/2024-06-12T11:01Z/fw48h"
    assert forecast_path(REGIONAL, T.replace(minute=30, second=0)) == "/regional/intensity/2024-06-12T11:31Z/fw48h"
    with pytest.raises(ValueError, match="forecast endpoint must be one of"):
        forecast_path("generation", T)


def test_lead_is_computed_from_the_fetch_time_not_the_request():
    # fetched 40 minutes after the half-hour it asked for: leads count from the fetch, never earlier
    late = T + dt.timedelta(minutes=40)  # 11:57:30
    built, rejected = archive.build_archive(archive.bronze_rows([response(INTENSITY, late, issued_for=T)]))
    assert rejected["reason"].to_list() == ["period ended before the issue's half-hour (not a forecast)"]  # 11:00-11:30
    first = built.row(0, named=True)
    assert first["issued_at"] == late
    assert first["period_start"] == dt.datetime(2024, 6, 12, 11, 30, tzinfo=UTC)
    assert first["lead_minutes"] == -27 and first["lead_bucket"] == 0
    last = built.row(-1, named=True)
    assert last["lead_bucket"] == 95 and last["lead_minutes"] == (last["period_start"] - late).total_seconds() // 60


def test_regions_zero_to_eighteen_one_row_per_issue_region_period():
    built, rejected = archive.build_archive(archive.bronze_rows([response(INTENSITY, T), response(REGIONAL, T)]))
    assert rejected.is_empty()
    assert sorted(built["region_id"].unique().to_list()) == list(range(19))
    assert built.filter(pl.col("region_id") == 0)["region_shortname"].unique().to_list() == ["National"]
    assert built.height == 19 * 97
    assert built["lead_bucket"].min() == 0 and built["lead_bucket"].max() == 96
    assert not built.select("issued_at", "region_id", "period_start").is_duplicated().any()


def test_unusable_answers_are_never_read():
    bad = response(INTENSITY, T + dt.timedelta(minutes=30), body='{"error": {"code": "500"}}', problem="API error 500")
    built, _ = archive.build_archive(archive.bronze_rows([response(INTENSITY, T), bad]))
    assert built["issued_at"].unique().to_list() == [T]


def test_capture_rate_counts_slots_per_uk_day_and_warns_below_90_percent():
    issues = [dt.datetime(2024, 6, 11, 23, 0, tzinfo=UTC) + dt.timedelta(minutes=30 * i) for i in range(48)]  # the BST day
    kept = issues[:20] + issues[26:]  # a 3-hour gap: 42 of 48
    rows = archive.bronze_rows([response(INTENSITY, t) for t in kept])
    rows = rows.with_columns(pl.lit(DAY).alias("issue_date"))
    built, _ = archive.build_archive(rows)
    outcome = rule_capture_rate(built, [DAY], 1800, now=dt.datetime(2024, 6, 13, 12, tzinfo=UTC))
    assert not outcome.passed and outcome.warn_only
    assert "2024-06-12: 42 of 48 (88%)" in outcome.found
    one_missed = archive.build_archive(archive.bronze_rows([response(INTENSITY, t) for t in issues[1:]]))[0]
    full = rule_capture_rate(one_missed, [DAY], 1800, now=dt.datetime(2024, 6, 13, 12, tzinfo=UTC))
    assert full.passed and "47 of 48 (98%)" in full.found
    # today, half past noon: only the slots so far are expected
    part = rule_capture_rate(built.filter(pl.col("issued_at") < T), [DAY], 1800, now=T)
    assert "24 of 24" not in part.found and "2024-06-12: 20 of 24" in part.found


def test_expected_issues_on_clock_change_days():
    assert archive.expected_issues(dt.date(2021, 3, 28), 1800) == 46
    assert archive.expected_issues(dt.date(2021, 10, 31), 1800) == 50


def test_outage_in_the_middle_of_a_day_against_the_fake_api(neso, fake_state, clock):
    """The sensor's fetches over a UK day at the fake API, with a 3-hour outage: bronze keeps the failed
    answers, the archive holds only real issues, the capture check warns."""
    day = dt.date(2024, 6, 12)
    moments = [dt.datetime(2024, 6, 11, 23, 0, tzinfo=UTC) + dt.timedelta(hours=i) for i in range(24)]
    responses = []
    for i, moment in enumerate(moments):
        clock.now = moment
        fake_state.set_fault("500" if 9 <= i < 12 else "none")
        responses += fetch_issue(neso, moment, recorded=True)
    bronze = archive.bronze_rows(responses)
    assert bronze.filter(pl.col("problem").is_not_null()).height == 6
    assert (bronze["issue_date"] == day).all()
    built, rejected = archive.build_archive(bronze)
    assert rejected.is_empty()
    assert built["issued_at"].n_unique() == 21
    assert not built["issued_at"].is_in(moments[9:12]).any()  # nothing invented for the outage
    outcome = rule_capture_rate(built, [day], 3600, now=dt.datetime(2024, 6, 14, tzinfo=UTC))
    assert not outcome.passed and "21 of 24 (88%)" in outcome.found


def test_past_days_cannot_be_fetched_live(tmp_path):
    with pytest.raises(PastIssueError) as err:
        issue_moments([DAY - dt.timedelta(days=1)], T, "live", tmp_path)
    assert "past days cannot be backfilled" in str(err.value.description)
    assert issue_moments([DAY], T, "live", tmp_path) == ([T], False)


def test_replayed_archive_materialises_with_recorded_issue_times(tmp_path, resources, instance):
    issues = [dt.datetime(2021, 3, 27, 0, 1, tzinfo=UTC) + dt.timedelta(hours=6 * i) for i in range(4)]
    neso_forecast_samples.write_samples(tmp_path / "samples", issues)
    assert recorded_issue_times(tmp_path / "samples", [dt.date(2021, 3, 27)]) == issues
    neso = NesoClient(http=HttpSession(source_mode="replay", samples_dir=str(tmp_path / "samples")), base_url="http://unused")
    result = materialize(
        [*ARCHIVE_ASSETS, *ARCHIVE_CHECKS], partition_key="2021-03-27", resources={**resources, "neso": neso}, instance=instance
    )
    assert result.success
    built = Lake(str(resources["lake"].root_uri)).read("silver/neso_forecast_archive")
    assert sorted(built["issued_at"].unique().to_list()) == issues
    assert built.height == 4 * 19 * 97
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["unique_rows"].passed and checks["latest_fetch_usable"].passed
    assert not checks["capture_rate"].passed and checks["capture_rate"].severity == AssetCheckSeverity.WARN
    assert "2021-03-27: 4 of 48 (8%)" in checks["capture_rate"].metadata["found"].value
    # gold and presentation from the archive (no national actuals in this lake: the skill is regional only)
    assert materialize(GOLD_ASSETS, resources=resources, instance=instance).success
    lake = Lake(str(resources["lake"].root_uri))
    windows = lake.read("presentation/greenest_windows")
    assert windows.height == 19 * 5 and windows["issued_at"].unique().to_list() == [issues[-1]]
    assert windows["problem"].is_null().all()
    skill_rows = lake.read("gold/neso_forecast_skill")
    assert set(skill_rows.filter(pl.col("n") > 0)["reference"]) == {"final_forecast_stand_in"}
    decisions = lake.read("gold/carbon_aware_backtest")
    assert decisions.height == 4 * 19 * 5 and decisions.filter(pl.col("region_id") == 0)["realised_saving_gco2_per_kwh"].is_null().all()


def test_committed_forecast_samples_are_exactly_what_the_generator_writes(tmp_path):
    from energy_assets import settings

    files = neso_forecast_samples.write_samples(tmp_path)
    committed = sorted(p.relative_to(settings.SAMPLES_DIR) for p in (settings.SAMPLES_DIR / "neso").rglob("fw48h.json"))
    assert sorted(p.relative_to(tmp_path) for p in files) == committed and len(committed) == 30
    for rel in committed:
        assert (tmp_path / rel).read_bytes() == (settings.SAMPLES_DIR / rel).read_bytes(), rel
    # the recorder's outage on 2021-03-27 is in the samples: 3 issues that day, not 4
    assert len(recorded_issue_times(settings.SAMPLES_DIR, [dt.date(2021, 3, 27)])) == 3


def test_fake_api_serves_fw48h_as_issued_at_its_clock(fake_api, clock):
    import json
    import urllib.request

    clock.now = dt.datetime(2024, 6, 12, 11, 17, tzinfo=UTC)
    with urllib.request.urlopen(fake_api + "/regional/intensity/2024-06-12T11:01Z/fw48h") as resp:
        body = json.loads(resp.read())
    assert len(body["data"]) == 97 and body["data"][0]["from"] == "2024-06-12T11:00Z"
    assert [r["regionid"] for r in body["data"][0]["regions"]] == list(range(1, 19))
