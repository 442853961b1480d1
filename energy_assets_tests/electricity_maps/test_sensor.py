"""The `latest` sensor: cursor, revisions, day boundaries, several zones, no key and API failures."""

import json

from dagster import AssetSelection, SensorResult, SkipReason, build_sensor_context

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.definitions import latest_sensor
from energy_assets.electricity_maps.sensors import build_sensor, plan_requests
from energy_assets_tests.electricity_maps.conftest import API_KEY, em_resource, hour

KINDS = ("carbon-intensity", "power-breakdown")


GR_SENSOR = build_sensor(AssetSelection.all(), zones=["GR"])


def tick(api, fast_http, instance, cursor=None, key=API_KEY, sensor=GR_SENSOR):
    resources = {"electricity_maps": em_resource(api, fast_http, key=key)}
    with build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
        return sensor(context)


def serve_latest(api, zone, when, updated=None, kinds=KINDS):
    for kind in kinds:
        api.latest(kind, zone, samples.row(kind, zone, hour(when), updated_at=updated, estimated=True))


def keys(result):
    return sorted(str(r.partition_key) for r in result.run_requests)


def test_first_poll_requests_the_day_and_the_day_the_trailing_24h_reach(api, fast_http, instance):
    serve_latest(api, "GR", "2024-03-06T19:00:00")
    result = tick(api, fast_http, instance)
    assert isinstance(result, SensorResult)
    assert keys(result) == ["2024-03-05|GR", "2024-03-06|GR"]
    cursor = json.loads(result.cursor)
    assert cursor["GR"]["carbon-intensity"][0] == "2024-03-06T19:00:00.000Z"


def test_an_unchanged_latest_requests_nothing_and_a_revision_requests_again(api, fast_http, instance, httpserver):
    serve_latest(api, "GR", "2024-03-06T00:00:00")
    first = tick(api, fast_http, instance)
    second = tick(api, fast_http, instance, cursor=first.cursor)
    assert second.run_requests == [] or second.run_requests is None
    assert "no new or revised hours" in second.skip_reason.skip_message
    assert second.cursor == first.cursor

    httpserver.clear()
    revised = hour("2024-03-06T07:00:00")
    api.latest("carbon-intensity", "GR", samples.carbon_row("GR", hour("2024-03-06T00:00:00"), estimated=True))
    api.latest("power-breakdown", "GR", samples.power_row("GR", hour("2024-03-06T00:00:00"), updated_at=revised))
    third = tick(api, fast_http, instance, cursor=second.cursor)
    assert keys(third) == ["2024-03-05|GR", "2024-03-06|GR"]  # the trailing 24 h of 00:00 reach back into 2024-03-05
    assert {r.run_key for r in third.run_requests}.isdisjoint({r.run_key for r in first.run_requests})


def test_the_new_day_requests_both_days_and_an_older_answer_is_ignored():
    cursor = {"GR": {k: ["2024-03-06T23:00:00.000Z", "2024-03-07T00:10:00.000Z"] for k in KINDS}}
    requests, new_cursor = plan_requests(cursor, [("GR", k, "2024-03-07T00:00:00.000Z", "2024-03-07T00:50:00.000Z") for k in KINDS])
    assert sorted(str(r.partition_key) for r in requests) == ["2024-03-06|GR", "2024-03-07|GR"]
    assert new_cursor["GR"]["power-breakdown"][0] == "2024-03-07T00:00:00.000Z"
    stale, unchanged = plan_requests(new_cursor, [("GR", "carbon-intensity", "2024-03-06T22:00:00.000Z", "2024-03-07T05:00:00.000Z")])
    assert stale == [] and unchanged == new_cursor


def test_several_zones_are_polled_and_one_failing_zone_does_not_stop_the_others(api, fast_http, instance):
    sensor = build_sensor(AssetSelection.all(), zones=["GR", "DE", "FR"])
    serve_latest(api, "GR", "2024-03-06T23:00:00")  # the trailing 24 h lie within 2024-03-06
    serve_latest(api, "FR", "2024-03-06T23:00:00")
    for kind in KINDS:
        api.error(f"/{kind}/latest", {"zone": "DE"}, 401, {"error": "Invalid auth-token", "message": f"echo {API_KEY}"})
    result = tick(api, fast_http, instance, sensor=sensor)
    assert keys(result) == ["2024-03-06|FR", "2024-03-06|GR"]
    assert set(json.loads(result.cursor)) == {"GR", "FR"}  # DE is retried on the next tick


def test_api_errors_leave_the_sensor_quiet_with_the_reason_and_no_key(api, fast_http, instance):
    for kind in KINDS:
        api.error(f"/{kind}/latest", {"zone": "GR"}, 404, {"error": 'No recent data for zone "GR"', "echo": API_KEY})
    result = tick(api, fast_http, instance, cursor='{"GR": {}}')
    assert not result.run_requests
    assert "No recent data" in result.skip_reason.skip_message
    assert API_KEY not in result.skip_reason.skip_message
    assert json.loads(result.cursor) == {"GR": {}}


def test_without_a_key_the_sensor_stays_quiet_saying_how_to_set_one(api, fast_http, instance, httpserver):
    result = tick(api, fast_http, instance, key="")
    assert isinstance(result, SkipReason)
    assert "ELECTRICITY_MAPS_API_KEY" in result.skip_message and "export" in result.skip_message
    assert len(httpserver.log) == 0


def test_the_default_sensor_polls_the_partitions_zones_and_a_sensor_can_take_its_own_zones_and_interval():
    from energy_assets.partitions import electricity_maps_zones

    assert f"({', '.join(electricity_maps_zones())};" in latest_sensor.description
    other = build_sensor(AssetSelection.all(), zones=["DE", "FR"], interval_seconds=60)
    assert "(DE, FR; every 60 s" in other.description and other.minimum_interval_seconds == 59  # ticks every 60 s (sensor_cadence)


def test_the_sensor_is_stopped_by_default_every_five_minutes():
    assert latest_sensor.default_status.value == "STOPPED"
    assert latest_sensor.minimum_interval_seconds == 299  # ticks every 300 s (sensor_cadence)
