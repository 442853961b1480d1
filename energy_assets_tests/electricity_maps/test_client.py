"""The client against a real HTTP server on 127.0.0.1: shapes, windows, tiers, errors and the key."""

import datetime as dt
import json

import pytest

from energy_assets.electricity_maps import client as C
from energy_assets.electricity_maps import samples
from energy_assets.http import HttpSession
from energy_assets_tests.electricity_maps.conftest import API_KEY, day_rows, em_resource, hour

D = dt.date
NOW = dt.datetime(2024, 3, 6, 19, 30, tzinfo=dt.timezone.utc)


def no_key_leak(*texts):
    for text in texts:
        assert API_KEY not in str(text)


# ------------------------------------------------------------------------------------------ shapes
def test_latest_history_and_past_range_shapes_parse_and_send_the_key_only_as_header(api, fast_http, httpserver):
    em = em_resource(api).api(fast_http)
    row = samples.carbon_row("GR", hour("2024-03-06T19:00:00"), estimated=True)
    api.latest("carbon-intensity", "GR", row)
    api.history("power-breakdown", "GR", day_rows("power-breakdown", "GR", "2024-03-06"))
    api.past_range("carbon-intensity", "GR", "2024-03-01", days=3)

    latest = em.latest("carbon-intensity", "GR")
    assert latest.response.json()["carbonIntensity"] == row["carbonIntensity"]
    assert latest.endpoint == "/carbon-intensity/latest?zone=GR"
    history = em.history("power-breakdown", "GR")
    assert len(history.response.json()["history"]) == 24
    past = em.past_range("carbon-intensity", "GR", hour("2024-03-01T00:00:00"), hour("2024-03-04T00:00:00"))
    assert len(past.response.json()["data"]) == 72
    assert past.endpoint == "/carbon-intensity/past-range?end=2024-03-04T00:00:00Z&start=2024-03-01T00:00:00Z&zone=GR"
    # the header carried the key (routes demand it); no URL or query ever did
    assert len(httpserver.log) == 3
    for request, _ in httpserver.log:
        assert request.headers["auth-token"] == API_KEY
        no_key_leak(request.url, request.query_string)
    no_key_leak(latest.response.url, history.response.url, past.response.url, repr(em))


def test_a_wrong_key_header_does_not_match_the_route(api, fast_http):
    api.latest("carbon-intensity", "GR", samples.carbon_row("GR", hour("2024-03-06T19:00:00")))
    em = em_resource(api, key="some-other-key").api(fast_http)
    with pytest.raises(C.ElectricityMapsError):
        em.latest("carbon-intensity", "GR")


# ------------------------------------------------------------------------------------------ windows and tiers
def test_paid_tier_splits_a_backfill_into_windows_of_at_most_ten_contiguous_days():
    days = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(23)] + [D(2024, 2, 10)]
    windows = C.plan_windows(days, NOW, paid_tier=True)
    assert [w.request_kind for w in windows] == ["past-range"] * 4
    assert [len(w.dates) for w in windows] == [10, 10, 3, 1]
    assert all(w.end - w.start <= dt.timedelta(days=10) for w in windows)
    assert windows[0].start == hour("2024-01-01T00:00:00") and windows[0].end == hour("2024-01-11T00:00:00")
    assert windows[3].dates == (D(2024, 2, 10),)


def test_today_uses_history_on_any_tier_and_future_days_need_no_request():
    for paid in (True, False):
        windows = C.plan_windows([D(2024, 3, 6), D(2024, 3, 7)], NOW, paid_tier=paid)
        assert [(w.request_kind, w.dates) for w in windows] == [("history", (D(2024, 3, 6),))]
    # paid: yesterday comes complete from past-range; free: from history (its last hours only)
    assert [w.request_kind for w in C.plan_windows([D(2024, 3, 5)], NOW, paid_tier=True)] == ["past-range"]
    assert [w.request_kind for w in C.plan_windows([D(2024, 3, 5)], NOW, paid_tier=False)] == ["history"]


def test_free_tier_refuses_days_older_than_24_hours_with_an_actionable_error():
    with pytest.raises(C.HistoryTooOldError) as err:
        C.plan_windows([D(2024, 3, 1), D(2024, 3, 6)], NOW, paid_tier=False)
    assert "2024-03-01" in str(err.value) and "ELECTRICITY_MAPS_PAID_TIER=true" in str(err.value)


def test_fetch_days_tags_each_response_with_the_partitions_it_covers(api, fast_http):
    api.past_range("power-breakdown", "GR", "2024-02-20", days=10)
    api.past_range("power-breakdown", "GR", "2024-03-01", days=2)
    api.history("power-breakdown", "GR", day_rows("power-breakdown", "GR", "2024-03-06"))
    days = [D(2024, 2, 20) + dt.timedelta(days=i) for i in range(12)] + [D(2024, 3, 6)]
    fetches = em_resource(api).api(fast_http).fetch_days("power-breakdown", "GR", days, now=NOW)
    assert [(f.request_kind, len(f.dates)) for f in fetches] == [("history", 1), ("past-range", 10), ("past-range", 2)]
    assert sorted(d for f in fetches for d in f.dates) == sorted(days)


def test_replay_acts_like_a_paid_key_with_one_day_windows_and_needs_no_key(fast_http):
    replay = HttpSession(source_mode="replay", min_interval_s=0.0)
    em = C.ElectricityMapsResource(api_key="").api(replay)
    fetches = em.fetch_days("carbon-intensity", "GR", [D(2021, 3, 26), D(2021, 3, 27)], now=NOW)
    assert [f.request_kind for f in fetches] == ["past-range", "past-range"]
    assert [len(f.response.json()["data"]) for f in fetches] == [24, 24]


# ------------------------------------------------------------------------------------------ errors
ZONE_Q = {"zone": "GR"}
ERRORS = [
    (401, {"error": "Invalid auth-token", "message": "Please provide a valid auth-token"}, C.InvalidApiKeyError, "rate-limited"),
    (403, "Access denied", C.AccessDeniedError, "ELECTRICITY_MAPS_PAID_TIER"),
    (404, {"message": "no Route matched with those values"}, C.RouteNotFoundError, "ELECTRICITY_MAPS_API_BASE_URL"),
    (404, {"error": 'No recent data for zone "GR"'}, C.NoRecentDataError, "retry later"),
    (400, {"status": "error", "message": "Zone 'GR' does not exist."}, C.UnknownZoneError, "ELECTRICITY_MAPS_ZONES"),
    (200, {"error": 'No recent data for zone "GR"'}, C.NoRecentDataError, "no recent data"),
]


@pytest.mark.parametrize("status,body,error,advice", ERRORS, ids=[e[2].__name__ + str(e[0]) for e in ERRORS])
def test_each_error_is_specific_and_actionable_and_never_shows_the_key(api, fast_http, status, body, error, advice):
    # a hostile server echoing the key must not make it leak either
    echoed = body.replace("denied", f"denied for {API_KEY}") if isinstance(body, str) else {**body, "echo": API_KEY}
    api.error("/carbon-intensity/latest", ZONE_Q, status, echoed, content_type="text/plain" if isinstance(body, str) else "application/json")
    with pytest.raises(error) as err:
        em_resource(api).api(fast_http).latest("carbon-intensity", "GR")
    assert advice in str(err.value)
    assert "/carbon-intensity/latest?zone=GR" in str(err.value)
    no_key_leak(str(err.value), repr(err.value))


def test_401_is_not_retried_while_429_and_5xx_are(api, fast_http, httpserver):
    api.error("/carbon-intensity/latest", ZONE_Q, 401, {"error": "Invalid auth-token"})
    with pytest.raises(C.InvalidApiKeyError):
        em_resource(api).api(fast_http).latest("carbon-intensity", "GR")
    assert len(httpserver.log) == 1

    httpserver.clear()
    api.error("/power-breakdown/latest", ZONE_Q, 429, {"error": "Too many requests"})
    with pytest.raises(C.RateLimitedError) as err:
        em_resource(api).api(fast_http).latest("power-breakdown", "GR")
    assert len(httpserver.log) == fast_http.max_attempts
    no_key_leak(str(err.value))


def test_a_transient_503_is_retried_and_then_succeeds(api, fast_http, httpserver):
    api.server.expect_ordered_request("/v3/carbon-intensity/latest", query_string=ZONE_Q).respond_with_data("busy", status=503)
    api.server.expect_ordered_request("/v3/carbon-intensity/latest", query_string=ZONE_Q).respond_with_json(
        samples.carbon_row("GR", hour("2024-03-06T19:00:00"))
    )
    fetch = em_resource(api).api(fast_http).latest("carbon-intensity", "GR")
    assert fetch.response.attempts == 2 and fetch.response.status == 200


def test_connection_failure_names_the_request_without_the_key(fast_http):
    em = C.ElectricityMapsResource(api_key=API_KEY, base_url="http://127.0.0.1:9/v3").api(fast_http)
    with pytest.raises(C.RequestFailedError) as err:
        em.latest("carbon-intensity", "GR")
    assert "127.0.0.1:9" in str(err.value)
    no_key_leak(str(err.value))


def test_a_body_that_is_not_json_or_lacks_the_expected_field_is_a_format_error(api, fast_http):
    api.error("/carbon-intensity/history", ZONE_Q, 200, "<html>maintenance</html>", content_type="text/html")
    api.error("/power-breakdown/history", ZONE_Q, 200, {"zone": "GR", "rows": []})
    em = em_resource(api).api(fast_http)
    with pytest.raises(C.ResponseFormatError, match="not JSON"):
        em.history("carbon-intensity", "GR")
    with pytest.raises(C.ResponseFormatError, match="`history`"):
        em.history("power-breakdown", "GR")


def test_without_a_key_the_client_says_how_to_set_one(api, fast_http, httpserver):
    with pytest.raises(C.MissingApiKeyError) as err:
        em_resource(api, key="").api(fast_http).fetch_days("carbon-intensity", "GR", [D(2024, 3, 6)], now=NOW)
    assert "export ELECTRICITY_MAPS_API_KEY=" in str(err.value)
    assert len(httpserver.log) == 0


def test_resource_from_env_takes_the_key_as_an_envvar(monkeypatch):
    monkeypatch.setenv("ELECTRICITY_MAPS_API_KEY", API_KEY)
    monkeypatch.setenv("ELECTRICITY_MAPS_PAID_TIER", "true")
    resource = C.resource_from_env()
    assert resource.paid_tier is True
    # the configured value is the variable's name, not the key: nothing to leak in the UI or run config
    no_key_leak(json.dumps(resource._get_non_default_public_field_values(), default=str))
