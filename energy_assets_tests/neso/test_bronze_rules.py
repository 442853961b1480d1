"""The one bronze rule and the auxiliary rule, end to end: a real HTTP server on 127.0.0.1 (pytest-httpserver),
the real job in a real Dagster instance, real Delta tables.

- Every bronze table (national intensity, generation mix, regional intensity) keeps an outage answer, its
  check fails; an answer IDENTICAL to an earlier good one then makes the check pass and silver build (issue 13
  item 1: the regional bronze used to insert only new content, so a failed fetch stayed "newest" forever).
- Issue 15: the generation mix is auxiliary. Empty, 500 or truncated generation answers while the intensity is
  good: the generation bronze check fails (ERROR), gold is still built from the intensity, with the mix columns
  null, `mix_missing_reason` set and a WARN check counting the periods; the mix arriving fills gold next run.
- Issue 13 item 3: each output of the silver intensity multi-asset can be materialised alone.
- Issue 13 item 7: the real `actual: 0` of 2026-08-06 11:00Z stays 0 (not null), is flagged, never divided by.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetCheckSeverity, AssetKey, Definitions, materialize
from werkzeug import Request, Response

from energy_assets.devtools import neso_regional_samples
from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.jobs import build_jobs
from energy_assets.lake.store import Lake
from energy_assets.neso import transforms
from energy_assets.neso.assets import NESO_ASSETS, NESO_REGIONAL_ASSETS
from energy_assets.neso.checks import NESO_CHECKS, NESO_REGIONAL_CHECKS
from energy_assets.neso.client import UTC, NesoClient, chunk_path, parse_api_time, uk_day_bounds_utc

ALL_ASSETS = [*NESO_ASSETS, *NESO_REGIONAL_ASSETS]
ALL_CHECKS = [*NESO_CHECKS, *NESO_REGIONAL_CHECKS]
OBSERVED_AT = dt.datetime(2030, 1, 1, tzinfo=UTC)
REFERENCE_DAY = Path("/work/shared/reference/payloads/neso/intensity_date_2026-08-06.json")


class FakeNeso:
    """Answers every NESO range path with the deterministic sample payload (identical bytes every time),
    unless the endpoint is switched to a fault: "500", "truncated", "empty_data" ({"data": []})."""

    def __init__(self):
        self.mode = {"intensity": "good", "generation": "good", "regional/intensity": "good"}
        self.override: dict[str, str] = {}  # path -> body for the good answer

    @staticmethod
    def endpoint(path: str) -> str:
        return "regional/intensity" if path.startswith("/regional/") else path.strip("/").split("/")[0]

    def good_body(self, path: str) -> str:
        if path in self.override:
            return self.override[path]
        if path.startswith("/regional/"):
            return json.dumps(neso_regional_samples.payload_for(path))
        endpoint, start, end = path.strip("/").split("/")
        starts = synthetic.periods_for_api_range(parse_api_time(start), parse_api_time(end))
        if endpoint == "intensity":  # as seen long after the day: every actual in
            return json.dumps(synthetic.intensity_payload(starts, OBSERVED_AT))
        return json.dumps(synthetic.generation_payload(starts))

    def __call__(self, request: Request) -> Response:
        path = request.path
        mode = self.mode[self.endpoint(path)]
        if mode == "500":
            return Response(json.dumps({"error": {"code": "500 Internal Server Error", "message": "down"}}), status=500)
        if mode == "empty_data":
            return Response('{"data": []}', content_type="application/json")
        body = self.good_body(path)
        if mode == "truncated":
            body = body[: len(body) // 2]
        return Response(body, content_type="application/json")


@pytest.fixture
def fake(httpserver):
    handler = FakeNeso()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)  # every path
    return handler


@pytest.fixture
def run_range(httpserver, resources, instance, fast_http):
    client = NesoClient(http=fast_http, base_url=httpserver.url_for("").rstrip("/"))
    defs = Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS, resources={**resources, "neso": client}, jobs=build_jobs(ALL_ASSETS))
    job = defs.resolve_job_def("uk_days_job")

    def run(start: str, end: str | None = None):
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end or start}
        return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)

    return run


def checks_by_name(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def lake_of(lake_root) -> Lake:
    return Lake(str(lake_root))


# ------------------------------------------------------------------------------ one bronze rule, recovery
# every table once; the two kinds of fault spread over them (both kinds on every table cost 3 more runs and test
# the same rule: the bronze write and the check do not look at what made an answer unusable)
@pytest.mark.parametrize(
    "endpoint,bronze_table,check,silver_table,fault,in_problem",
    [
        ("intensity", "bronze/neso_carbon_intensity", "bronze_neso_carbon_intensity_latest_fetch_usable", "silver/neso_carbon_intensity", "500", "HTTP 500"),
        ("intensity", "bronze/neso_carbon_intensity", "bronze_neso_carbon_intensity_latest_fetch_usable", "silver/neso_carbon_intensity", "truncated", "invalid JSON"),
        ("generation", "bronze/neso_generation_mix", "bronze_neso_generation_mix_latest_fetch_usable", "silver/neso_generation_mix", "truncated", "invalid JSON"),
        ("regional/intensity", "bronze/neso_regional_intensity", "bronze_neso_regional_latest_fetch_usable", "silver/neso_regional_intensity", "500", "HTTP 500"),
    ],
)
def test_an_outage_is_kept_then_an_identical_good_answer_is_newest_again(
    fake, run_range, lake_root, endpoint, bronze_table, check, silver_table, fault, in_problem
):
    lake = lake_of(lake_root)
    day = "2024-07-04"
    assert run_range(day).success
    good = lake.read(bronze_table)
    assert good.height == 1 and good["problem"].null_count() == 1
    silver_first = lake.read(silver_table)
    assert silver_first.height > 0

    fake.mode[endpoint] = fault
    outage = run_range(day)
    evaluation = checks_by_name(outage)[check]
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert in_problem in evaluation.metadata["found"].value
    kept = lake.read(bronze_table).sort("fetched_at")
    assert kept.height == 2 and in_problem in kept["problem"][-1]  # the raw outage answer is kept
    assert kept["body"][-1] != good["body"][0]

    fake.mode[endpoint] = "good"  # the API answers exactly what it said the first time
    recovered = run_range(day)
    assert recovered.success
    assert checks_by_name(recovered)[check].passed
    bronze = lake.read(bronze_table).sort("fetched_at")
    assert bronze.height == 2  # no new row: the identical answer moved its row's fetched_at forward
    newest = bronze.row(-1, named=True)
    assert newest["problem"] is None and newest["content_hash"] == good["content_hash"][0]
    assert newest["fetched_at"] > kept["fetched_at"][-1]
    silver = lake.read(silver_table)
    assert silver.height == silver_first.height
    assert (silver["fetched_at"] == newest["fetched_at"]).all()  # silver rebuilt from the recovered answer


# ------------------------------------------------------------------------------ issue 15: auxiliary mix
@pytest.mark.parametrize("fault,in_problem", [("empty_data", "'data' is an empty list"), ("500", "HTTP 500"), ("truncated", "invalid JSON")])
@pytest.mark.parametrize("start,end", [("2024-07-04", "2024-07-04"), ("2024-07-03", "2024-07-05")])
def test_intensity_features_are_built_without_the_generation_mix_and_filled_when_it_arrives(
    fake, run_range, lake_root, fault, in_problem, start, end
):
    lake = lake_of(lake_root)
    days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days + 1
    periods = 48 * days
    fake.mode["generation"] = fault

    result = run_range(start, end)
    assert result.success  # nothing blocking failed: the intensity is complete and correct
    evaluations = checks_by_name(result)
    mix_bronze = evaluations["bronze_neso_generation_mix_latest_fetch_usable"]
    assert not mix_bronze.passed and mix_bronze.severity == AssetCheckSeverity.ERROR
    assert in_problem in mix_bronze.metadata["found"].value
    assert lake.read("bronze/neso_generation_mix")["problem"].null_count() == 0  # the unusable answer is kept
    assert lake.read("silver/neso_generation_mix").is_empty()  # silver reads usable answers only

    gold = lake.read("gold/neso_carbon_intensity_features")
    assert gold.height == periods
    assert gold["low_carbon_share_fraction"].null_count() == periods
    assert gold["mix_missing_reason"].to_list() == [transforms.MIX_MISSING_DAY] * periods
    assert gold["intensity_gco2_per_kwh"].null_count() == 0
    warn = evaluations["generation_mix_present"]
    assert not warn.passed and warn.severity == AssetCheckSeverity.WARN
    assert warn.metadata["periods_without_mix"].value == periods
    assert f"{periods} of {periods} half-hour(s) on {days} day(s) without a generation mix" in warn.metadata["found"].value
    assert all(e.passed for name, e in evaluations.items() if name not in ("bronze_neso_generation_mix_latest_fetch_usable", "generation_mix_present"))

    fake.mode["generation"] = "good"  # the mix arrives: the next run fills the column
    again = run_range(start, end)
    assert again.success and all(e.passed for e in again.get_asset_check_evaluations())
    gold = lake.read("gold/neso_carbon_intensity_features")
    assert gold.height == periods
    assert gold["low_carbon_share_fraction"].null_count() == 0 and gold["mix_missing_reason"].null_count() == periods
    assert gold["low_carbon_share_fraction"].is_between(0, 1).all()
    assert checks_by_name(again)["generation_mix_present"].metadata["periods_without_mix"].value == 0


def test_build_features_names_a_half_hour_missing_from_an_otherwise_present_mix():
    from energy_assets_tests.neso.test_transforms import LATER, fetched, intensity_body, silver_for

    day = dt.date(2024, 7, 4)
    silver = silver_for(fetched([day], intensity_body([day]), LATER))
    generation = synthetic.generation_payload(synthetic.uk_day_starts(day))
    del generation["data"][5]
    mix = transforms.build_silver_mix(transforms.bronze_rows([fetched([day], generation, LATER, endpoint="generation")]))
    gold = transforms.build_features(silver, mix, [day])
    missing = gold.filter(pl.col("mix_missing_reason").is_not_null())
    assert missing["settlement_period"].to_list() == [6]
    assert missing["mix_missing_reason"].to_list() == [transforms.MIX_MISSING_PERIOD]
    assert missing["low_carbon_share_fraction"].to_list() == [None]
    assert gold["low_carbon_share_fraction"].null_count() == 1


# ------------------------------------------------------------------------------ issue 13 item 3: subsets
@pytest.mark.parametrize(
    "selected,written,not_written",
    [
        ("silver/neso_carbon_intensity", "silver/neso_carbon_intensity", "silver/neso_carbon_intensity_quarantine"),
        ("silver/neso_carbon_intensity_quarantine", "silver/neso_carbon_intensity_quarantine", "silver/neso_carbon_intensity"),
    ],
)
def test_each_output_of_the_silver_intensity_step_can_be_materialised_alone(
    fake, run_range, resources, instance, lake_root, fast_http, httpserver, selected, written, not_written
):
    lake = lake_of(lake_root)
    client = NesoClient(http=fast_http, base_url=httpserver.url_for("").rstrip("/"))
    tags = {"dagster/asset_partition_range_start": "2024-07-04", "dagster/asset_partition_range_end": "2024-07-04"}
    bronze = materialize(ALL_ASSETS, selection=["bronze/neso_carbon_intensity"], resources={**resources, "neso": client}, instance=instance, tags=tags)
    assert bronze.success
    result = materialize(
        ALL_ASSETS + ALL_CHECKS,
        selection=[selected],
        resources={**resources, "neso": client},
        instance=instance,
        tags=tags,
    )
    assert result.success
    keys = {m.asset_key for m in result.asset_materializations_for_node("silver_neso_carbon_intensity")}
    assert keys == {AssetKey(selected.split("/"))}
    assert lake.exists(written) and not lake.exists(not_written)
    assert lake.read(written).height == (48 if written == "silver/neso_carbon_intensity" else 0)


# ------------------------------------------------------------------------------ issue 13 item 7: actual 0
@pytest.mark.skipif(not REFERENCE_DAY.is_file(), reason="reference payload not available")
def test_the_real_zero_actual_of_2026_08_06_stays_zero_is_flagged_and_never_divided_by(fake, run_range, lake_root):
    lake = lake_of(lake_root)
    day = dt.date(2026, 8, 6)
    recorded = json.loads(REFERENCE_DAY.read_text())
    # the recorded /intensity/date answer served at the range path the client asks for (same half-hours)
    start, end = uk_day_bounds_utc(day)
    assert recorded["data"][0]["from"] == f"{start:%Y-%m-%dT%H:%MZ}" and recorded["data"][-1]["to"] == f"{end:%Y-%m-%dT%H:%MZ}"
    fake.override[chunk_path("intensity", [day])] = json.dumps(recorded)

    result = run_range("2026-08-06")
    assert result.success
    silver = lake.read("silver/neso_carbon_intensity").sort("period_start")
    zero = silver.filter(pl.col("period_start") == dt.datetime(2026, 8, 6, 11, 0, tzinfo=UTC)).row(0, named=True)
    assert zero["actual_gco2_per_kwh"] == 0 and zero["forecast_gco2_per_kwh"] == 62
    assert zero["data_quality_flag"] == transforms.FLAG_ACTUAL_ZERO
    nulls = [r["intensity"]["actual"] for r in recorded["data"]].count(None)
    assert silver["actual_gco2_per_kwh"].null_count() == nulls  # 0 is not null, null is not 0
    gold = lake.read("gold/neso_carbon_intensity_features").sort("period_start")
    row = gold.filter(pl.col("period_start") == dt.datetime(2026, 8, 6, 11, 0, tzinfo=UTC)).row(0, named=True)
    assert row["actual_gco2_per_kwh"] == 0 and gold["actual_gco2_per_kwh"].null_count() == nulls
    assert row["relative_forecast_error"] is None and row["forecast_error_gco2_per_kwh"] is None
    assert row["intensity_gco2_per_kwh"] == 62  # the untrusted 0 falls back to the forecast
    assert gold["relative_forecast_error"].is_infinite().sum() == 0 and gold["relative_forecast_error"].is_nan().sum() == 0


# ------------------------------------------------------------------------------ the poller: mix auxiliary too
def test_the_poller_refreshes_the_intensity_when_only_the_generation_mix_fails_and_again_when_it_arrives(fake, httpserver, instance):
    from energy_assets.neso import sensors
    from energy_assets.neso.client import uk_today
    from energy_assets_tests.neso.conftest import quick_session

    poller = NesoClient(http=quick_session(max_attempts=2), base_url=httpserver.url_for("").rstrip("/"))
    today = uk_today()
    days = [(today - dt.timedelta(days=1)).isoformat(), today.isoformat()]
    fake.mode["generation"] = "500"
    first = sensors.evaluate(poller, None)
    assert [r.partition_key for r in first.run_requests] == days

    fake.mode["intensity"] = "500"  # the primary feed failing still skips the tick, cursor kept
    skipped = sensors.evaluate(poller, first.cursor)
    assert "NESO API unusable" in skipped.skip_message and "HTTP 500" in skipped.skip_message

    fake.mode.update(intensity="good", generation="good")  # the mix arrives: a change for both days
    arrived = sensors.evaluate(poller, first.cursor)
    assert [r.partition_key for r in arrived.run_requests] == days
    assert arrived.cursor != first.cursor
