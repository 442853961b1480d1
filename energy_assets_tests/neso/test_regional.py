"""The NESO regional endpoint: client over real HTTP, parsing, silver and the assets in replay mode."""

import datetime as dt
import json

import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from werkzeug import Response

from energy_assets import settings
from energy_assets.http import HttpSession
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.neso.client import UTC, FetchedResponse
from energy_assets.devtools import neso_regional_samples as samples
from energy_assets.neso import regional_transforms
from energy_assets.neso import transforms as neso_transforms
from energy_assets.neso.assets import NESO_REGIONAL_ASSETS
from energy_assets.neso.checks import NESO_REGIONAL_CHECKS
from energy_assets.neso.checks import rule_regional_unique_and_complete as rule_unique_and_complete
from energy_assets.neso.client import REGIONAL, NesoClient, regional_path, regional_usability_problem

D = dt.date


def fetched(path: str, body: str, at: dt.datetime, days, problem=None) -> FetchedResponse:
    return FetchedResponse("regional/intensity", f"https://x{path}", tuple(days), at, 200, body, 1, problem)


def test_path_shifts_the_start_by_one_minute_and_covers_whole_uk_days():
    assert regional_path([D(2021, 3, 28)]) == "/regional/intensity/2021-03-28T00:01Z/2021-03-28T23:00Z"
    assert regional_path([D(2024, 7, 4), D(2024, 7, 5)]) == "/regional/intensity/2024-07-03T23:01Z/2024-07-05T23:00Z"


@pytest.mark.parametrize(
    "body,problem",
    [
        ("", "empty body"),
        ("{}", "empty JSON object {}"),
        ('{"data": [{"from": "2021', "invalid JSON"),
        ('{"error": {"code": "400 Bad Request", "message": "Invalid datetime"}}', "API error 400 Bad Request"),
        ('{"data": {"regionid": 13}}', "'data' is a dict"),
        ('{"data": [{"from": "x", "intensity": {}}]}', "records lack 'from'/'regions'"),
    ],
)
def test_unusable_bodies_are_named(body, problem):
    assert problem in regional_usability_problem(body)


def test_client_requests_13_day_chunks_and_retries_an_empty_body(httpserver, fast_http):
    days = [D(2021, 3, 20) + dt.timedelta(days=i) for i in range(15)]
    first, second = regional_path(days[:13]), regional_path(days[13:])
    httpserver.expect_ordered_request(first).respond_with_data("{}", content_type="application/json")
    httpserver.expect_ordered_request(first).respond_with_json(samples.payload_for(first))
    httpserver.expect_ordered_request(second).respond_with_json(samples.payload_for(second))
    client = NesoClient(http=fast_http, base_url=httpserver.url_for("").rstrip("/"))
    responses = client.fetch_days(REGIONAL, days)
    assert [r.ok for r in responses] == [True, True]
    assert [r.days for r in responses] == [tuple(days[:13]), tuple(days[13:])]
    assert responses[0].attempts == 2  # the {} answer was retried
    httpserver.check_assertions()


def test_a_persistent_outage_comes_back_as_a_problem_and_stops_further_requests(httpserver, fast_http):
    days = [D(2021, 3, 1) + dt.timedelta(days=i) for i in range(20)]
    httpserver.expect_request(regional_path(days[:13])).respond_with_response(
        Response(json.dumps({"error": {"code": "500 Internal Server Error", "message": "down"}}), status=500)
    )
    client = NesoClient(http=fast_http, base_url=httpserver.url_for("").rstrip("/"))
    responses = client.fetch_days(REGIONAL, days)
    assert len(responses) == 1 and not responses[0].ok
    assert responses[0].http_status == 500 and "500" in responses[0].problem


def test_silver_has_18_regions_per_half_hour_of_a_clock_change_day():
    path = regional_path([D(2021, 3, 28)])
    bronze = neso_transforms.bronze_rows([fetched(path, json.dumps(samples.payload_for(path)), dt.datetime(2021, 4, 1, tzinfo=UTC), [D(2021, 3, 28)])])
    silver = regional_transforms.build_silver_regional(regional_transforms.parse_regional(bronze))
    assert silver.height == 46 * 18
    assert silver["settlement_period"].unique().sort().to_list() == list(range(1, 47))
    assert silver["region_id"].unique().sort().to_list() == list(range(1, 19))
    assert silver.filter(pl.col("region_id") == 13)["region_shortname"].unique().to_list() == ["London"]
    assert rule_unique_and_complete(silver).passed
    assert not rule_unique_and_complete(silver.filter(~((pl.col("region_id") == 7) & (pl.col("settlement_period") == 3)))).passed


def test_newest_fetch_wins_and_records_go_to_their_own_uk_day():
    days = [D(2021, 3, 27), D(2021, 3, 28)]
    path = regional_path(days)
    payload = samples.payload_for(path)
    revised = json.loads(json.dumps(payload))
    revised["data"][0]["regions"][12]["intensity"]["forecast"] = 999 - 1  # London, first half-hour of the 27th
    old = fetched(path, json.dumps(payload), dt.datetime(2021, 3, 26, 12, tzinfo=UTC), days)
    new = fetched(path, json.dumps(revised), dt.datetime(2021, 3, 26, 13, tzinfo=UTC), days)
    bronze = neso_transforms.bronze_rows([new, old]).filter(pl.col("settlement_date") == D(2021, 3, 27))  # one partition
    silver = regional_transforms.build_silver_regional(regional_transforms.parse_regional(bronze))
    assert silver["settlement_date"].unique().to_list() == [D(2021, 3, 27)]
    assert silver.height == 48 * 18
    first_london = silver.filter((pl.col("region_id") == 13) & (pl.col("settlement_period") == 1)).row(0, named=True)
    assert first_london["forecast_gco2_per_kwh"] == 998


def test_a_value_outside_the_schema_fails_with_the_request_named():
    path = regional_path([D(2021, 3, 28)])
    payload = samples.payload_for(path)
    payload["data"][5]["regions"][0]["intensity"]["index"] = "extreme"
    bronze = neso_transforms.bronze_rows([fetched(path, json.dumps(payload), dt.datetime(2021, 4, 1, tzinfo=UTC), [D(2021, 3, 28)])])
    with pytest.raises(regional_transforms.NesoRegionalDataError, match=r"index not in .* of GET https://x/regional/intensity/2021-03-28T00:01Z"):
        regional_transforms.build_silver_regional(regional_transforms.parse_regional(bronze))


def test_committed_samples_are_what_the_generator_writes(tmp_path):
    written = samples.write_samples(tmp_path)
    for file in written:
        committed = settings.SAMPLES_DIR / file.relative_to(tmp_path)
        assert committed.read_bytes() == file.read_bytes(), f"{committed} is stale: run python -m energy_assets.devtools.neso_regional_samples"


def test_assets_replay_the_sample_days_in_one_request_idempotently(lake_root):
    resources = {
        "io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake_root))),
        "neso": NesoClient(http=HttpSession(source_mode="replay", samples_dir=str(settings.SAMPLES_DIR))),
    }
    tags = {"dagster/asset_partition_range_start": "2021-03-26", "dagster/asset_partition_range_end": "2021-03-29"}
    instance = DagsterInstance.ephemeral()
    for _ in range(2):
        result = materialize(NESO_REGIONAL_ASSETS + NESO_REGIONAL_CHECKS, resources=resources, instance=instance, tags=tags)
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("bronze__neso_regional_intensity")[0].metadata
    assert meta["requests"].value == 1
    bronze = pl.read_delta(str(lake_root / "bronze" / "neso_regional_intensity"))
    assert bronze.height == 4  # one response stored once per day; the identical refetch added nothing
    silver = pl.read_delta(str(lake_root / "silver" / "neso_regional_intensity"))
    assert silver.height == (48 + 48 + 46 + 48) * 18
    assert silver.select(pl.struct("period_start", "region_id").is_unique().all()).item()


def test_regional_bodies_with_nan_infinity_or_overflow_are_unusable():
    record = '{"data": [{"from": "2021-03-26T00:00Z", "to": "2021-03-26T00:30Z", "regions": [{"regionid": 1, "intensity": {"forecast": %s}}]}]}'
    assert regional_usability_problem(record % "45") is None
    for bad in ("NaN", "Infinity", "1e400", str(2**64)):
        assert "invalid JSON" in regional_usability_problem(record % bad), bad


def test_a_record_with_an_unreadable_time_fails_naming_the_request_instead_of_vanishing():
    path = regional_path([D(2021, 3, 28)])
    payload = samples.payload_for(path)
    payload["data"][2]["from"] = "yesterday"
    bronze = neso_transforms.bronze_rows([fetched(path, json.dumps(payload), dt.datetime(2021, 4, 1, tzinfo=UTC), [D(2021, 3, 28)])])
    with pytest.raises(regional_transforms.NesoRegionalDataError, match=r"unparseable from/to timestamp in the record from='yesterday'.* of GET https://x/regional"):
        regional_transforms.build_silver_regional(regional_transforms.parse_regional(bronze))


def test_the_fake_api_serves_the_regional_samples(fake_api):
    import requests

    path = regional_path([D(2024, 7, 4)])
    answer = requests.get(fake_api + path, timeout=5)
    assert answer.status_code == 200 and answer.json() == samples.payload_for(path)
    assert regional_usability_problem(answer.text) is None
