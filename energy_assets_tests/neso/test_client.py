"""The client's knowledge of the API: day bounds, the boundary shift, chunking, outage handling over real HTTP."""

import datetime as dt
import json
import time

import pytest
from werkzeug import Response

from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.neso.client import (
    GENERATION,
    INTENSITY,
    UTC,
    NesoClient,
    api_time,
    chunk_path,
    request_chunks,
    periods_in_uk_day,
    request_plan,
    uk_day_bounds_utc,
    usability_problem,
)
from energy_assets_tests.neso.conftest import quick_session

D = dt.date


@pytest.mark.parametrize(
    "day,start,end,periods",
    [
        (D(2024, 1, 15), "2024-01-15T00:00Z", "2024-01-16T00:00Z", 48),  # GMT
        (D(2024, 7, 4), "2024-07-03T23:00Z", "2024-07-04T23:00Z", 48),  # BST
        (D(2021, 3, 28), "2021-03-28T00:00Z", "2021-03-28T23:00Z", 46),  # clocks go forward
        (D(2021, 10, 31), "2021-10-30T23:00Z", "2021-10-31T23:59Z", 50),  # clocks go back (end checked below)
    ],
)
def test_uk_day_bounds_and_period_counts(day, start, end, periods):
    s, e = uk_day_bounds_utc(day)
    assert api_time(s) == start
    if day == D(2021, 10, 31):
        assert api_time(e) == "2021-11-01T00:00Z"
    else:
        assert api_time(e) == end
    assert periods_in_uk_day(day) == periods


def test_range_start_is_shifted_one_minute_past_the_boundary():
    assert chunk_path(INTENSITY, [D(2024, 1, 1)]) == "/intensity/2024-01-01T00:01Z/2024-01-02T00:00Z"
    assert chunk_path(GENERATION, [D(2024, 7, 4), D(2024, 7, 5)]) == "/generation/2024-07-03T23:01Z/2024-07-05T23:00Z"


def test_request_chunks_hold_at_most_13_days_and_never_cross_new_year():
    days = [D(2023, 12, 10) + dt.timedelta(days=i) for i in range(40)]  # 2023-12-10 .. 2024-01-18
    chunks = request_chunks(days)
    assert [len(c) for c in chunks] == [13, 9, 13, 5]
    assert chunks[1][-1] == D(2023, 12, 31) and chunks[2][0] == D(2024, 1, 1)
    assert sum(chunks, []) == days
    # a gap starts a new chunk; a single day is one request
    assert request_chunks([D(2024, 3, 1), D(2024, 3, 2), D(2024, 3, 5)]) == [[D(2024, 3, 1), D(2024, 3, 2)], [D(2024, 3, 5)]]
    assert len(request_plan(INTENSITY, [D(2024, 3, 1)])) == 1


def test_a_13_day_chunk_spanning_the_autumn_clock_change_stays_under_14_days():
    days = [D(2021, 10, 25) + dt.timedelta(days=i) for i in range(13)]
    (path, covered), = request_plan(INTENSITY, days)
    start, end = path.split("/")[2:]
    span = dt.datetime.strptime(end, "%Y-%m-%dT%H:%MZ") - dt.datetime.strptime(start, "%Y-%m-%dT%H:%MZ")
    assert dt.timedelta(days=13) < span < dt.timedelta(days=14)
    assert covered == days


@pytest.mark.parametrize(
    "body,endpoint,expected",
    [
        ('{"data":[{"from":"2024-01-01T00:00Z","to":"2024-01-01T00:30Z","intensity":{"forecast":1,"actual":null,"index":"low"}}]}', INTENSITY, None),
        ('{"data":[{"from":"a","to":"b","generationmix":[{"fuel":"gas","perc":1}]}]}', GENERATION, None),
        ("{}", INTENSITY, "empty JSON object {}"),
        ("", INTENSITY, "empty body"),
        ('{"data":[{"from":"2024-01-01T00:00Z","to":"2024', INTENSITY, "invalid JSON"),
        ('{"error":{"code":"500 Internal Server Error","message":"boom"}}', INTENSITY, "API error 500 Internal Server Error: boom"),
        ('{"data":{"from":"a","to":"b","generationmix":[]}}', GENERATION, "'data' is a dict"),
        ('{"data":[]}', INTENSITY, "'data' is an empty list"),
        ('{"data":[{"from":"a","to":"b","generationmix":[]}]}', INTENSITY, "records lack"),
        ("[1,2]", INTENSITY, "JSON list instead of an object"),
    ],
)
def test_usability_problem_names_every_shape(body, endpoint, expected):
    problem = usability_problem(body, endpoint)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected), problem


def _intensity_body(day: D) -> str:
    return json.dumps(synthetic.intensity_payload(synthetic.uk_day_starts(day), dt.datetime(2030, 1, 1, tzinfo=UTC)))


def test_fetch_days_requests_exact_paths(httpserver, fast_http):
    day = D(2024, 7, 4)
    httpserver.expect_oneshot_request("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_data(_intensity_body(day))
    client = NesoClient(http=fast_http, base_url=httpserver.url_for(""))
    (resp,) = client.fetch_days(INTENSITY, [day])
    assert resp.ok and resp.http_status == 200 and resp.days == (day,)
    assert resp.request_url.endswith("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z")
    assert len(json.loads(resp.body)["data"]) == 48
    httpserver.check_assertions()


def test_backfill_across_new_year_uses_one_request_per_chunk(neso, fake_state):
    days = [D(2020, 12, 20) + dt.timedelta(days=i) for i in range(22)]  # 12 days of 2020, 10 of 2021
    responses = neso.fetch_days(INTENSITY, days)
    assert [len(r.days) for r in responses] == [12, 10]
    assert all(r.ok for r in responses)
    assert fake_state.requests == ["/intensity/2020-12-20T00:01Z/2021-01-01T00:00Z", "/intensity/2021-01-01T00:01Z/2021-01-11T00:00Z"]
    first = json.loads(responses[1].body)["data"][0]
    assert first["from"] == "2021-01-01T00:00Z"  # the shifted start returns the first period, not the one before


@pytest.mark.parametrize(
    "bad",
    [
        Response(json.dumps({"error": {"code": "500 Internal Server Error", "message": "db down"}}), status=500),
        Response("{}", status=200),
        Response('{"data":[{"from":"2024-07-03T23:00Z","to":"2024-07-0', status=200),
        Response("", status=429, headers={"Retry-After": "0"}),
    ],
    ids=["500", "empty_object", "truncated", "429"],
)
def test_transient_failures_are_retried_then_succeed(httpserver, fast_http, bad):
    day = D(2024, 7, 4)
    path = "/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z"
    httpserver.expect_ordered_request(path).respond_with_response(bad)
    httpserver.expect_ordered_request(path).respond_with_data(_intensity_body(day))
    (resp,) = NesoClient(http=fast_http, base_url=httpserver.url_for("")).fetch_days(INTENSITY, [day])
    assert resp.ok and resp.attempts == 2
    httpserver.check_assertions()


@pytest.mark.parametrize(
    "status,body,in_problem",
    [(500, '{"error":{"code":"500 Internal Server Error","message":"db down"}}', "HTTP 500"), (200, "{}", "empty JSON object"), (200, '{"data":[{"fr', "invalid JSON")],
    ids=["500", "empty_object", "truncated"],
)
def test_persistent_outage_returns_the_last_raw_answer_with_a_clear_problem(httpserver, fast_http, status, body, in_problem):
    httpserver.expect_request("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_data(body, status=status)
    httpserver.expect_request("/intensity/2024-07-04T23:01Z/2024-07-05T23:00Z").respond_with_data("never asked")
    client = NesoClient(http=fast_http, base_url=httpserver.url_for(""), max_days_per_request=1)
    responses = client.fetch_days(INTENSITY, [D(2024, 7, 4), D(2024, 7, 5)])
    assert len(responses) == 1  # stops after the failing chunk
    (resp,) = responses
    assert not resp.ok and resp.body == body and resp.http_status == status
    assert in_problem in resp.problem and "/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z" in resp.problem
    assert resp.attempts == fast_http.max_attempts
    assert len(httpserver.log) == fast_http.max_attempts


def test_timeouts_are_retried_then_reported_without_a_response(httpserver):
    def slow(request):
        time.sleep(0.5)
        return Response("{}")

    httpserver.expect_request("/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z").respond_with_handler(slow)
    client = NesoClient(http=quick_session(read_timeout_s=0.1, max_attempts=2), base_url=httpserver.url_for(""))
    (resp,) = client.fetch_days(INTENSITY, [D(2024, 7, 4)])
    assert not resp.ok and resp.http_status is None and resp.body == ""
    assert "timed out" in resp.problem and "2 attempt" in resp.problem


def test_intensity_for_date_uses_the_uk_local_day(neso, fake_state):
    resp = neso.fetch_intensity_for_date(D(2021, 10, 31))
    data = json.loads(resp.body)["data"]
    assert fake_state.requests == ["/intensity/date/2021-10-31"]
    assert len(data) == 50 and data[0]["from"] == "2021-10-30T23:00Z" and data[-1]["to"] == "2021-11-01T00:00Z"
