"""Bronze -> silver -> gold through the real job, a real Delta lake and the local fake API over HTTP."""

import datetime as dt
import json
import time

import polars as pl
import pytest
from dagster import AssetCheckSeverity, Definitions
from werkzeug import Response

from energy_assets.jobs import build_jobs
from energy_assets.lake.store import Lake, LakeTableNotFound
from energy_assets.neso.assets import NESO_ASSETS
from energy_assets.neso.checks import NESO_CHECKS
from energy_assets.neso.client import UTC, NesoClient
from energy_assets_tests.neso.conftest import quick_session

BRONZE_I, BRONZE_G = "bronze/neso_carbon_intensity", "bronze/neso_generation_mix"
SILVER_I, SILVER_G, GOLD = "silver/neso_carbon_intensity", "silver/neso_generation_mix", "gold/neso_carbon_intensity_features"
QUARANTINE = "silver/neso_carbon_intensity_quarantine"
TABLES = (BRONZE_I, BRONZE_G, SILVER_I, SILVER_G, GOLD, QUARANTINE)


def run(resources, instance, start, end=None, raise_on_error=True):
    defs = Definitions(assets=NESO_ASSETS, asset_checks=NESO_CHECKS, resources=resources, jobs=build_jobs(NESO_ASSETS))
    job = defs.get_job_def("uk_days_job")
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end or start}
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=raise_on_error)


def read(root, table) -> pl.DataFrame:
    return Lake(str(root)).read(table)  # raises LakeTableNotFound when absent


def version(root, table):
    """The table's Delta version; None only when the table does not exist in this lake (`Lake.open`)."""
    return Lake(str(root)).version(table)


def absent(root, table) -> bool:
    """The table does not exist, in a lake that does exist and holds at least the intensity bronze (so a
    wrong root or table name cannot pass for "absent")."""
    lake = Lake(str(root))
    assert lake.exists(BRONZE_I), f"no {BRONZE_I} under {root}: wrong lake"
    return not lake.exists(table)


def checks_by_name(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.parametrize("day,periods", [("2021-03-28", 46), ("2021-10-31", 50), ("2024-07-04", 48)])
def test_a_day_lands_in_every_layer_with_checks_passing_and_reruns_change_nothing(neso_resources, instance, lake_root, day, periods):
    result = run(neso_resources, instance, day)
    assert result.success
    evaluations = checks_by_name(result)
    assert len(evaluations) == sum(len(list(c.check_keys)) for c in NESO_CHECKS) == 12 and all(e.passed for e in evaluations.values())
    silver = read(lake_root, SILVER_I)
    assert silver.height == periods and silver["settlement_period"].to_list() == list(range(1, periods + 1))
    assert read(lake_root, GOLD).height == periods
    assert read(lake_root, SILVER_G).height == periods * 9
    snapshot = {t: read(lake_root, t).sort(read(lake_root, t).columns[:2]) for t in TABLES}

    assert run(neso_resources, instance, day).success
    for table in TABLES:
        again = read(lake_root, table).sort(snapshot[table].columns[:2])
        assert again.height == snapshot[table].height, table  # never duplicates
        # identical content: the same table, except that the observation time moved forward
        assert again.drop("fetched_at", strict=False).equals(snapshot[table].drop("fetched_at", strict=False)), table
        if "fetched_at" in again.columns:
            assert (again["fetched_at"] > snapshot[table]["fetched_at"]).all(), table
    assert read(lake_root, BRONZE_I).height == 1  # identical refetch: no new bronze row


def test_revised_forecasts_add_bronze_rows_and_silver_keeps_the_newest(neso_resources, instance, lake_root, clock, fake_state, neso):
    clock.now = dt.datetime(2024, 7, 4, 11, 0, tzinfo=UTC)
    assert run(neso_resources, instance, "2024-07-04").success
    first = read(lake_root, SILVER_I)
    clock.now += dt.timedelta(hours=1)
    fake_state.manual_revision += 1
    assert run(neso_resources, instance, "2024-07-04").success

    bronze = read(lake_root, BRONZE_I)
    assert bronze.height == 2 and bronze["content_hash"].n_unique() == 2
    silver = read(lake_root, SILVER_I)
    assert silver.height == 48 and silver["fetched_at"].n_unique() == 1
    assert silver["fetched_at"][0] == bronze["fetched_at"].max()
    newest = json.loads(bronze.sort("fetched_at")["body"][-1])["data"]
    assert silver.sort("period_start")["forecast_gco2_per_kwh"].to_list() == [r["intensity"]["forecast"] for r in newest]
    assert silver["actual_gco2_per_kwh"].null_count() == first["actual_gco2_per_kwh"].null_count() - 2  # two more settled
    assert silver["forecast_gco2_per_kwh"].to_list() != first["forecast_gco2_per_kwh"].to_list()


@pytest.mark.parametrize("fault,in_problem", [("500", "HTTP 500"), ("empty", "empty JSON object"), ("truncated", "invalid JSON"), ("error200", "API error")])
def test_outage_fails_the_run_keeps_the_raw_answer_and_leaves_silver_and_gold_alone(neso_resources, instance, lake_root, fake_state, fault, in_problem):
    assert run(neso_resources, instance, "2024-07-04").success
    before = {t: version(lake_root, t) for t in (SILVER_I, GOLD)}
    assert None not in before.values()
    silver_before = read(lake_root, SILVER_I)
    mix_before = read(lake_root, SILVER_G)
    fake_state.set_fault(fault)
    fake_state.manual_revision += 1  # even with new data available, nothing unusable may land in silver

    result = run(neso_resources, instance, "2024-07-04", raise_on_error=False)
    assert not result.success
    failed = checks_by_name(result)["bronze_neso_carbon_intensity_latest_fetch_usable"]
    assert not failed.passed and in_problem in failed.metadata["found"].value
    assert "/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z" in failed.metadata["found"].value
    bronze = read(lake_root, BRONZE_I).sort("fetched_at")
    assert bronze.height == 2 and in_problem in bronze["problem"][-1]
    assert bronze["body"][-1] != "" and bronze["attempts"][-1] == 4  # retried, and the last raw answer kept
    assert {t: version(lake_root, t) for t in (SILVER_I, GOLD)} == before
    assert read(lake_root, SILVER_I).equals(silver_before)
    # the generation mix is auxiliary (not blocked): rebuilt from its usable answers only, so unchanged
    assert read(lake_root, SILVER_G).sort("period_start", "fuel").equals(mix_before.sort("period_start", "fuel"))
    mix_check = checks_by_name(result)["bronze_neso_generation_mix_latest_fetch_usable"]
    assert not mix_check.passed and mix_check.severity == AssetCheckSeverity.ERROR

    fake_state.set_fault("none")  # the API recovers: the next run succeeds and silver moves on
    assert run(neso_resources, instance, "2024-07-04").success
    assert read(lake_root, SILVER_I)["fetched_at"][0] > silver_before["fetched_at"][0]


def test_outage_on_the_first_ever_run_writes_no_silver_or_gold(neso_resources, instance, lake_root, fake_state):
    fake_state.set_fault("500")
    result = run(neso_resources, instance, "2024-07-04", raise_on_error=False)
    assert not result.success
    assert read(lake_root, BRONZE_I)["http_status"].to_list() == [500]
    assert absent(lake_root, SILVER_I) and absent(lake_root, GOLD)
    # the generation mix is auxiliary: its unusable answer does not block its silver, which holds no row of it
    assert read(lake_root, SILVER_G).is_empty()
    with pytest.raises(LakeTableNotFound, match="silver/neso_carbon_intensity in the lake"):
        read(lake_root, SILVER_I)


def test_timeouts_fail_the_run_and_record_the_failed_request(httpserver, resources, instance, lake_root):
    def slow(request):
        time.sleep(0.4)
        return Response("{}")

    httpserver.expect_request("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_handler(slow)
    httpserver.expect_request("/generation/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_handler(slow)
    neso = NesoClient(http=quick_session(read_timeout_s=0.1, max_attempts=2), base_url=httpserver.url_for(""))
    result = run({**resources, "neso": neso}, instance, "2024-07-04", raise_on_error=False)
    assert not result.success
    bronze = read(lake_root, BRONZE_I)
    assert bronze["http_status"].to_list() == [None] and "timed out" in bronze["problem"][0]
    assert absent(lake_root, SILVER_I)


def test_backfill_range_uses_as_few_requests_as_the_api_allows(neso_resources, instance, lake_root, fake_state):
    result = run(neso_resources, instance, "2020-12-29", "2021-01-02")
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert sorted(fake_state.requests) == [
        "/generation/2020-12-29T00:01Z/2021-01-01T00:00Z",
        "/generation/2021-01-01T00:01Z/2021-01-03T00:00Z",
        "/intensity/2020-12-29T00:01Z/2021-01-01T00:00Z",
        "/intensity/2021-01-01T00:01Z/2021-01-03T00:00Z",
    ]
    assert read(lake_root, BRONZE_I).height == 5  # one row per day, two distinct responses
    # each day's materialisation names the request that answered for it and counts its own rows
    bronze = {m.partition: m.metadata for m in result.asset_materializations_for_node("bronze__neso_carbon_intensity")}
    assert bronze["2020-12-31"]["request_urls"].value.count("/intensity/") == 1
    assert "/intensity/2020-12-29T00:01Z/2021-01-01T00:00Z" in bronze["2020-12-31"]["request_urls"].value
    assert "/intensity/2021-01-01T00:01Z/2021-01-03T00:00Z" in bronze["2021-01-01"]["request_urls"].value
    rows = {
        (m.asset_key.to_user_string(), m.partition): m.metadata["dagster/partition_row_count"].value
        for m in result.asset_materializations_for_node("silver_neso_carbon_intensity")  # silver and its quarantine
    }
    days = ("2020-12-29", "2020-12-30", "2020-12-31", "2021-01-01", "2021-01-02")
    assert rows == {**{(SILVER_I, d): 48 for d in days}, **{(QUARANTINE, d): 0 for d in days}}
    assert read(lake_root, SILVER_I).height == 5 * 48
    gold = read(lake_root, GOLD)
    assert gold.height == 5 * 48 and gold["rolling_24h_period_count"].max() == 48


def test_gold_reads_the_previous_day_across_the_partition_boundary(neso_resources, instance, lake_root):
    assert run(neso_resources, instance, "2024-07-03").success
    assert run(neso_resources, instance, "2024-07-04").success
    gold = read(lake_root, GOLD).filter(pl.col("settlement_date") == dt.date(2024, 7, 4)).sort("period_start")
    assert gold.height == 48
    assert gold["rolling_24h_period_count"].to_list() == [48] * 48  # full windows from the first period on


def test_a_payload_that_reverts_to_an_earlier_version_wins_again(neso_resources, instance, lake_root, clock, fake_state):
    clock.now = dt.datetime(2024, 7, 4, 11, 0, tzinfo=UTC)
    assert run(neso_resources, instance, "2024-07-04").success
    version_a = read(lake_root, SILVER_I)["forecast_gco2_per_kwh"].to_list()
    fake_state.manual_revision += 1
    assert run(neso_resources, instance, "2024-07-04").success
    assert read(lake_root, SILVER_I)["forecast_gco2_per_kwh"].to_list() != version_a
    fake_state.manual_revision -= 1  # the API goes back to what it said first
    assert run(neso_resources, instance, "2024-07-04").success
    assert read(lake_root, BRONZE_I).height == 2  # two distinct payloads, no duplicate
    assert read(lake_root, SILVER_I)["forecast_gco2_per_kwh"].to_list() == version_a


def test_bad_records_are_quarantined_and_the_hole_they_leave_blocks_gold(httpserver, resources, instance, lake_root, fast_http):
    from energy_assets.devtools import neso_synthetic as synthetic

    day = dt.date(2024, 7, 4)
    starts = synthetic.uk_day_starts(day)
    body = synthetic.intensity_payload(starts, dt.datetime(2030, 1, 1, tzinfo=UTC))
    body["data"][7]["intensity"]["index"] = "apocalyptic"
    httpserver.expect_request("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_json(body)
    httpserver.expect_request("/generation/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_json(synthetic.generation_payload(starts))
    neso = NesoClient(http=fast_http, base_url=httpserver.url_for(""))

    result = run({**resources, "neso": neso}, instance, "2024-07-04", raise_on_error=False)
    assert not result.success
    evaluations = checks_by_name(result)
    assert not evaluations["complete_days"].passed and not evaluations["contiguous_half_hours"].passed
    assert not evaluations["no_quarantined_records"].passed
    quarantine = read(lake_root, QUARANTINE)
    assert quarantine.height == 1 and quarantine["index"][0] == "apocalyptic" and "index not in" in quarantine["reason"][0]
    assert quarantine["request_url"][0].endswith("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z")
    assert read(lake_root, SILVER_I).height == 47  # 47 + 1 quarantined = every record of the payload
    assert absent(lake_root, GOLD)


def test_one_silver_check_runs_alone_from_the_op_that_evaluates_them_together(neso_resources, instance, lake_root):
    """The eight intensity silver checks share one op (one step, one read); the UI can still run any one of them."""
    from dagster import AssetCheckKey

    from energy_assets.neso.assets import SILVER_INTENSITY_KEY
    from energy_assets.neso.checks import SILVER_RULES, silver_intensity_checks

    assert sorted(k.name for k in silver_intensity_checks.check_keys) == sorted(name for name, *_ in SILVER_RULES)
    assert run(neso_resources, instance, "2024-07-04").success
    one = AssetCheckKey(SILVER_INTENSITY_KEY, "complete_days")
    defs = Definitions(assets=NESO_ASSETS, asset_checks=NESO_CHECKS, resources=neso_resources, jobs=build_jobs(NESO_ASSETS))
    job = defs.get_job_def("uk_days_job").get_subset(asset_selection=set(), asset_check_selection={one})  # the UI's "execute" on one check
    result = job.execute_in_process(instance=instance, partition_key="2024-07-04")
    assert result.success
    assert [(e.check_name, e.passed) for e in result.get_asset_check_evaluations()] == [("complete_days", True)]


def test_a_silver_check_that_raises_fails_the_step_by_name_and_the_others_are_still_recorded(neso_resources, instance, monkeypatch):
    from energy_assets.neso import checks

    def broken(ctx, silver):
        raise ValueError("rule bug")

    rules = [(name, broken if name == "index_allowed" else rule, blocking, doc) for name, rule, blocking, doc in checks.SILVER_RULES]
    monkeypatch.setattr(checks, "SILVER_RULES", rules)
    result = run(neso_resources, instance, "2024-07-04", raise_on_error=False)
    assert not result.success
    recorded = {e.check_name for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == SILVER_I}
    assert recorded == {name for name, *_ in rules} - {"index_allowed"}
    failure = next(e for e in result.get_step_failure_events() if e.step_key == "silver_neso_carbon_intensity_checks")
    assert "index_allowed raised: ValueError('rule bug')" in failure.event_specific_data.error.cause.message
