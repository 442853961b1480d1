"""The client against a real HTTP server on 127.0.0.1: shapes, windows, tiers, errors and the key."""

import datetime as dt
import json

import pytest

from energy_assets.electricity_maps import client as C
from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.http import HttpSession
from energy_assets_tests.electricity_maps.conftest import API_KEY, day_rows, em_resource, hour

D = dt.date
NOW = dt.datetime(2024, 3, 6, 19, 30, tzinfo=dt.timezone.utc)


def no_key_leak(*texts):
    for text in texts:
        assert API_KEY not in str(text)


# ------------------------------------------------------------------------------------------ shapes
def test_latest_history_and_past_range_shapes_parse_and_send_the_key_only_as_header(api, fast_http, httpserver):
    em = em_resource(api, fast_http).api()
    row = samples.carbon_row("GR", hour("2024-03-06T19:00:00"), estimated=True)
    api.latest("carbon-intensity", "GR", row)
    api.history("power-breakdown", "GR", day_rows("power-breakdown", "GR", "2024-03-06"))
    api.past_range("carbon-intensity", "GR", "2024-03-01", days=3)

    latest = em.latest("carbon-intensity", "GR")
    assert latest.ok and latest.json()["carbonIntensity"] == row["carbonIntensity"]
    assert latest.request_url == "/carbon-intensity/latest?zone=GR"
    history = em.history("power-breakdown", "GR")
    assert history.ok and len(history.json()["history"]) == 24
    past = em.past_range("carbon-intensity", "GR", hour("2024-03-01T00:00:00"), hour("2024-03-04T00:00:00"))
    assert past.ok and len(past.json()["data"]) == 72
    assert past.request_url == "/carbon-intensity/past-range?end=2024-03-04T00:00:00Z&start=2024-03-01T00:00:00Z&zone=GR"
    # the header carried the key (routes demand it); no URL or query ever did
    assert len(httpserver.log) == 3
    for request, _ in httpserver.log:
        assert request.headers["auth-token"] == API_KEY
        no_key_leak(request.url, request.query_string)
    no_key_leak(latest.request_url, history.request_url, past.request_url, repr(em))


def test_a_wrong_key_header_does_not_match_the_route(api, fast_http):
    api.latest("carbon-intensity", "GR", samples.carbon_row("GR", hour("2024-03-06T19:00:00")))
    em = em_resource(api, fast_http, key="some-other-key").api()
    fetch = em.latest("carbon-intensity", "GR")  # the route demands the right header: the server answers 500
    assert fetch.http_status == 500 and "HTTP 500" in fetch.problem


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
    fetches = em_resource(api, fast_http).api().fetch_days("power-breakdown", "GR", days, now=NOW)
    assert [(f.request_kind, len(f.dates)) for f in fetches] == [("history", 1), ("past-range", 10), ("past-range", 2)]
    assert sorted(d for f in fetches for d in f.dates) == sorted(days)


def test_replay_acts_like_a_paid_key_with_one_day_windows_and_needs_no_key(fast_http):
    replay = HttpSession(source_mode="replay", min_interval_s=0.0)
    em = C.ElectricityMapsResource(http=replay, api_key="").api()
    fetches = em.fetch_days("carbon-intensity", "GR", [D(2021, 3, 26), D(2021, 3, 27)], now=NOW)
    assert [f.request_kind for f in fetches] == ["past-range", "past-range"]
    assert [len(f.json()["data"]) for f in fetches] == [24, 24]


# ------------------------------------------------------------------------------------------ errors
ZONE_Q = {"zone": "GR"}
CALLER_ERRORS = [
    (401, {"error": "Invalid auth-token", "message": "Please provide a valid auth-token"}, C.InvalidApiKeyError, "was rejected"),
    (403, "Access denied", C.AccessDeniedError, "ELECTRICITY_MAPS_PAID_TIER"),
    (404, {"message": "no Route matched with those values"}, C.RouteNotFoundError, "ELECTRICITY_MAPS_API_BASE_URL"),
    (400, {"status": "error", "message": "Zone 'GR' does not exist."}, C.UnknownZoneError, "ELECTRICITY_MAPS_ZONES"),
]


def echoing(body):
    """A hostile server echoing the key back must not make it leak."""
    return body.replace("denied", f"denied for {API_KEY}") if isinstance(body, str) else {**body, "echo": API_KEY}


@pytest.mark.parametrize("status,body,error,advice", CALLER_ERRORS, ids=[e[2].__name__ for e in CALLER_ERRORS])
def test_errors_about_the_caller_are_raised_at_once_specific_and_without_the_key(api, fast_http, httpserver, status, body, error, advice):
    api.error("/carbon-intensity/latest", ZONE_Q, status, echoing(body), content_type="text/plain" if isinstance(body, str) else "application/json")
    with pytest.raises(error, match=advice) as err:
        em_resource(api, fast_http).api().latest("carbon-intensity", "GR")
    assert "/carbon-intensity/latest?zone=GR" in str(err.value)
    assert len(httpserver.log) == 1  # not retried
    no_key_leak(str(err.value), repr(err.value))


UNUSABLE = [
    (404, {"error": 'No recent data for zone "GR"'}, "no data: the API said 'No recent data for zone \"GR\""),
    (200, {"error": 'No recent data for zone "GR"'}, "no data: the API said"),
    (200, {"zone": "GR", "history": []}, "no data: the answer's `history` list is empty"),
    (500, {"error": "internal"}, "failed after 4 attempt(s)"),
    (200, {}, "an empty JSON object {}"),
    (200, "<html>maintenance</html>", "a body that is not JSON"),
    (200, {"zone": "GR", "rows": []}, "no `history` field"),
]


@pytest.mark.parametrize("status,body,problem", UNUSABLE, ids=[f"{u[0]}-{i}" for i, u in enumerate(UNUSABLE)])
def test_unusable_answers_come_back_with_their_problem_to_be_kept_and_never_the_key(api, fast_http, status, body, problem):
    api.error("/carbon-intensity/history", ZONE_Q, status, echoing(body) if body else body,
              content_type="text/html" if isinstance(body, str) else "application/json")  # fmt: skip
    fetch = em_resource(api, fast_http).api().history("carbon-intensity", "GR", [D(2024, 3, 6)])
    assert problem in fetch.problem
    assert fetch.http_status == status and fetch.dates == (D(2024, 3, 6),)
    assert "/carbon-intensity/history?zone=GR" in fetch.problem
    no_key_leak(fetch.problem, fetch.body, fetch.request_url)


def test_a_401_about_the_rate_limit_is_throttling_backed_off_and_retried_until_it_succeeds(api, fast_http, httpserver):
    throttled = {"error": "Invalid auth-token", "message": "API rate limit exceeded"}
    for _ in range(2):
        api.server.expect_ordered_request("/v3/carbon-intensity/latest", query_string=ZONE_Q).respond_with_json(throttled, status=401)
    row = samples.carbon_row("GR", hour("2024-03-06T19:00:00"))
    api.server.expect_ordered_request("/v3/carbon-intensity/latest", query_string=ZONE_Q).respond_with_json(row)
    fetch = em_resource(api, fast_http).api().latest("carbon-intensity", "GR")
    assert fetch.ok and fetch.http_status == 200 and fetch.attempts == 3
    assert fetch.json()["carbonIntensity"] == row["carbonIntensity"]
    assert len(httpserver.log) == 3


def test_throttling_on_every_attempt_is_kept_as_a_problem_not_raised_as_a_bad_key(api, fast_http, httpserver):
    api.error("/carbon-intensity/latest", ZONE_Q, 401, {"error": "Too many requests", "message": f"slow down {API_KEY}"})
    fetch = em_resource(api, fast_http).api().latest("carbon-intensity", "GR")
    assert fetch.http_status == 401 and fetch.problem.startswith("Electricity Maps: GET /carbon-intensity/latest?zone=GR")
    assert "throttled: HTTP 401" in fetch.problem and f"every one of {fast_http.max_attempts} attempt(s)" in fetch.problem
    assert len(httpserver.log) == fast_http.max_attempts
    no_key_leak(fetch.problem, fetch.body)

    httpserver.clear()  # an "invalid key" 401 is not retried and stays an immediate error
    api.error("/carbon-intensity/latest", ZONE_Q, 401, {"error": "Invalid auth-token", "message": "Please provide a valid auth-token"})
    with pytest.raises(C.InvalidApiKeyError, match="HTTP 401 'Invalid auth-token Please provide a valid auth-token'"):
        em_resource(api, fast_http).api().latest("carbon-intensity", "GR")
    assert len(httpserver.log) == 1


def test_429_and_5xx_are_retried_by_the_session_then_kept(api, fast_http, httpserver):
    api.error("/power-breakdown/latest", ZONE_Q, 429, {"error": "Too many requests"})
    fetch = em_resource(api, fast_http).api().latest("power-breakdown", "GR")
    assert fetch.http_status == 429 and "HTTP 429" in fetch.problem
    assert len(httpserver.log) == fast_http.max_attempts


def test_a_transient_503_is_retried_and_then_succeeds(api, fast_http, httpserver):
    api.server.expect_ordered_request("/v3/carbon-intensity/latest", query_string=ZONE_Q).respond_with_data("busy", status=503)
    api.server.expect_ordered_request("/v3/carbon-intensity/latest", query_string=ZONE_Q).respond_with_json(
        samples.carbon_row("GR", hour("2024-03-06T19:00:00"))
    )
    fetch = em_resource(api, fast_http).api().latest("carbon-intensity", "GR")
    assert fetch.ok and fetch.attempts == 2 and fetch.http_status == 200


def test_no_answer_at_all_is_kept_with_the_request_named_and_without_the_key(fast_http):
    em = C.ElectricityMapsResource(http=fast_http, api_key=API_KEY, base_url="http://127.0.0.1:9/v3").api()
    fetch = em.latest("carbon-intensity", "GR")
    assert fetch.http_status is None and fetch.body == ""
    assert "127.0.0.1:9" in fetch.problem and "connection failed" in fetch.problem
    no_key_leak(fetch.problem)


def test_without_a_key_the_client_says_how_to_set_one(api, fast_http, httpserver):
    with pytest.raises(C.MissingApiKeyError) as err:
        em_resource(api, fast_http, key="").api().fetch_days("carbon-intensity", "GR", [D(2024, 3, 6)], now=NOW)
    assert "export ELECTRICITY_MAPS_API_KEY=" in str(err.value)
    assert len(httpserver.log) == 0


def test_resource_from_env_takes_the_key_as_an_envvar(monkeypatch):
    monkeypatch.setenv("ELECTRICITY_MAPS_API_KEY", API_KEY)
    monkeypatch.setenv("ELECTRICITY_MAPS_PAID_TIER", "true")
    resource = C.resource_from_env(HttpSession())
    assert resource.paid_tier is True
    # the configured value is the variable's name, not the key: nothing to leak in the UI or run config
    no_key_leak(json.dumps(resource._get_non_default_public_field_values(), default=str))
