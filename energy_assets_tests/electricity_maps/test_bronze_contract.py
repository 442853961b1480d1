"""The one bronze contract and error model, end to end: real HTTP on 127.0.0.1, real Delta tables, real Dagster.

- An unusable answer is kept in bronze with its `problem` and the blocking bronze check fails the run before
  silver; the next good answer (identical to an earlier one) moves that row's `fetched_at`, so it is the
  newest again: the check passes and silver builds (issue 13 item 1, for each bronze table).
- "No data" from one feed: silver is built from the other (its columns null, `missing_feed` says which feed),
  a non-blocking check warns; "no data" from both fails the run (issue 13 item 2).
"""

import polars as pl
import pytest
from dagster import MultiPartitionKey

from energy_assets_tests.electricity_maps.conftest import day_rows, em_resource, hour
from energy_assets_tests.electricity_maps.test_assets import ASSETS, CHECKS, read, run, serve_days  # noqa: F401

GR = MultiPartitionKey({"date": "2024-03-06", "zone": "GR"})
QUERY = {"zone": "GR", "start": "2024-03-06T00:00:00Z", "end": "2024-03-07T00:00:00Z"}
BRONZE = {"carbon-intensity": "bronze/electricity_maps_carbon_intensity", "power-breakdown": "bronze/electricity_maps_power_breakdown"}
SILVER = "silver/electricity_maps_energy"


def checks_by_name(result) -> dict:
    """`table:check` (the bronze tables share one check name) -> evaluation."""
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def serve(api, kind: str, failure=None):
    """Serve one kind for GR on 2024-03-06: the good day, or `failure` = (status, body)."""
    if failure is None:
        api.past_range(kind, "GR", "2024-03-06")
    else:
        api.error(f"/{kind}/past-range", QUERY, *failure)


@pytest.mark.parametrize("kind", ["carbon-intensity", "power-breakdown"])
def test_a_failed_answer_is_kept_fails_the_check_and_an_identical_good_answer_recovers(kind, api, lake_root, resources, instance, httpserver):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    other = "power-breakdown" if kind == "carbon-intensity" else "carbon-intensity"
    check = f"{BRONZE[kind]}:latest_answer_usable"
    serve(api, kind)
    serve(api, other)
    assert run(resources, instance, partition_key=GR).success
    good = read(lake_root, BRONZE[kind])
    silver_before = read(lake_root, SILVER)
    assert good.height == 1 and good["problem"].to_list() == [None]

    # the API fails for good: the answer is kept with its problem, the blocking check fails, silver is not rebuilt
    httpserver.clear()
    serve(api, kind, failure=(503, '{"error": "upstream timeout"}'))
    serve(api, other)
    failed = run(resources, instance, partition_key=GR)
    assert not failed.success
    evaluation = checks_by_name(failed)[check]
    assert not evaluation.passed
    assert "1 of 1 partition(s) whose newest answer is unusable; first: date=2024-03-06, zone=GR" in evaluation.description
    assert "HTTP 503" in evaluation.description
    assert not failed.asset_materializations_for_node("electricity_maps_silver")
    kept = read(lake_root, BRONZE[kind]).sort("fetched_at")
    assert kept["http_status"].to_list() == [200, 503]
    assert "failed after 4 attempt(s)" in kept["problem"][1] and '{"error": "upstream timeout"}' == kept["body"][1]
    assert read(lake_root, SILVER).equals(silver_before)

    # the next answer is identical to the first good one: no new row, its fetched_at moves, it is the newest again
    httpserver.clear()
    serve(api, kind)
    serve(api, other)
    recovered = run(resources, instance, partition_key=GR)
    assert recovered.success and checks_by_name(recovered)[check].passed
    after = read(lake_root, BRONZE[kind]).sort("fetched_at")
    assert after.height == 2 and after["http_status"].to_list() == [503, 200]
    assert after["content_hash"][1] == good["content_hash"][0] and after["fetched_at"][1] > good["fetched_at"][0]
    assert read(lake_root, SILVER).sort("datetime").drop("carbon_fetched_at", "power_fetched_at").equals(
        silver_before.sort("datetime").drop("carbon_fetched_at", "power_fetched_at")
    )


def test_one_feed_without_data_builds_silver_from_the_other_and_warns(api, lake_root, resources, instance):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    serve(api, "carbon-intensity")
    serve(api, "power-breakdown", failure=(404, '{"error": "No recent data for zone \\"GR\\""}'))
    result = run(resources, instance, partition_key=GR)
    assert result.success
    checks = checks_by_name(result)
    assert checks[f"{BRONZE['power-breakdown']}:latest_answer_usable"].passed
    assert "1 partition(s) answered \"no data\" while the other feed has data" in checks[f"{BRONZE['power-breakdown']}:latest_answer_usable"].description
    warning = checks[f"{SILVER}:silver_both_feeds_present"]
    assert not warning.passed and warning.severity.value == "WARN"
    assert warning.description == "24 of 24 hour(s) built from one feed: 0 without carbon intensity, 24 without power breakdown"
    energy = read(lake_root, SILVER)
    assert energy.height == 24 and energy["missing_feed"].unique().to_list() == ["power-breakdown"]
    assert energy["carbon_intensity_gco2_per_kwh"].null_count() == 0
    assert energy["consumption_total_mw"].null_count() == 24 and energy["fossil_free_fraction"].null_count() == 24
    power = read(lake_root, BRONZE["power-breakdown"])
    assert power["http_status"].to_list() == [404] and power["problem"][0].count("no data: the API said") == 1


def test_both_feeds_without_data_fail_the_run_before_silver(api, lake_root, resources, instance):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    serve(api, "carbon-intensity", failure=(200, '{"zone": "GR", "data": []}'))
    serve(api, "power-breakdown", failure=(404, '{"error": "No recent data for zone \\"GR\\""}'))
    result = run(resources, instance, partition_key=GR)
    assert not result.success
    checks = checks_by_name(result)
    assert not checks[f"{BRONZE['carbon-intensity']}:latest_answer_usable"].passed and not checks[f"{BRONZE['power-breakdown']}:latest_answer_usable"].passed
    assert "no data: the answer's `data` list is empty" in checks[f"{BRONZE['carbon-intensity']}:latest_answer_usable"].description
    assert not (lake_root / SILVER).exists()


def test_a_null_carbon_intensity_stays_null_through_silver_and_gold(api, lake_root, resources, instance):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    rows = day_rows("carbon-intensity", "GR", "2024-03-06")
    rows[5] = {**rows[5], "carbonIntensity": None}
    api.past_range("carbon-intensity", "GR", "2024-03-06", rows=rows)
    serve(api, "power-breakdown")
    result = run(resources, instance, partition_key=GR)
    assert result.success
    energy = read(lake_root, SILVER)
    five = energy.filter(pl.col("datetime") == hour("2024-03-06T05:00:00")).row(0, named=True)
    assert five["carbon_intensity_gco2_per_kwh"] is None and five["has_carbon_intensity"] and five["missing_feed"] is None
    assert energy["carbon_intensity_gco2_per_kwh"].null_count() == 1
    meta = result.asset_materializations_for_node("electricity_maps_silver")[0].metadata
    assert meta["hours_with_null_carbon_intensity"].value == 1
    plausible = checks_by_name(result)[f"{SILVER}:silver_carbon_intensity_plausible"]
    assert plausible.passed and "1 hour(s) where the API answered carbonIntensity null" in plausible.description
    gold = read(lake_root, "gold/electricity_maps_ml_features")
    six = gold.filter(pl.col("datetime") == hour("2024-03-06T06:00:00")).row(0, named=True)
    assert six["lag_carbon_intensity_gco2_per_kwh_1h"] is None  # not 0
