"""The shared HTTP session against a real HTTP server on 127.0.0.1 that injects faults."""

import json
import logging
import socket
import time
from pathlib import Path

import pytest
from werkzeug import Response

from energy_assets.http import HttpError, HttpSession, ReplayMissingError, parse_retry_after, replay_path, safe_url


def test_returns_the_response_and_sends_a_descriptive_user_agent(httpserver, fast_http):
    httpserver.expect_oneshot_request("/intensity").respond_with_json({"data": [1]})
    response = fast_http.get(httpserver.url_for("/"), "/intensity", source="neso")
    assert response.status == 200 and response.json() == {"data": [1]}
    request, _ = httpserver.log[0]
    assert request.headers["User-Agent"].startswith("energy_assets/")
    assert response.fetched_at.tzinfo is not None


def test_retries_5xx_and_429_then_succeeds(httpserver, fast_http):
    httpserver.expect_ordered_request("/x").respond_with_data("down", status=503)
    httpserver.expect_ordered_request("/x").respond_with_data("slow down", status=429)
    httpserver.expect_ordered_request("/x").respond_with_json({"ok": True})
    response = fast_http.get(httpserver.url_for("/"), "/x", source="neso")
    assert response.json() == {"ok": True}
    assert response.attempts == 3
    assert len(httpserver.log) == 3


def test_honours_retry_after_seconds(httpserver):
    session = HttpSession(min_interval_s=0, backoff_base_s=0.0, backoff_max_s=0.0, max_total_wait_s=5)
    arrivals = []

    def handler(_request):
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return Response("wait", status=429, headers={"Retry-After": "1"})
        return Response('{"ok": true}', content_type="application/json")

    httpserver.expect_request("/x").respond_with_handler(handler)
    assert session.get(httpserver.url_for("/"), "/x", source="neso").json() == {"ok": True}
    # backoff alone is 0 s here: the gap between the two requests is Retry-After's doing
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.95


def test_retry_after_beyond_the_wait_budget_fails_fast_with_a_clear_error(httpserver):
    session = HttpSession(min_interval_s=0, max_total_wait_s=2)
    httpserver.expect_request("/x").respond_with_response(Response("busy", status=429, headers={"Retry-After": "3600"}))
    with pytest.raises(HttpError) as err:
        session.get(httpserver.url_for("/"), "/x", source="neso")
    assert "HTTP 429" in str(err.value) and "wait budget" in str(err.value)
    assert err.value.status == 429 and err.value.response.text == "busy"
    assert len(httpserver.log) == 1


def test_gives_up_after_max_attempts_naming_the_url_and_status(httpserver, fast_http):
    httpserver.expect_request("/intensity/2021-03-26T00:01Z/2021-03-27T00:01Z").respond_with_json(
        {"error": {"code": "500 Internal Server Error", "message": "boom"}}, status=500
    )
    with pytest.raises(HttpError) as err:
        fast_http.get(httpserver.url_for("/"), "/intensity/2021-03-26T00:01Z/2021-03-27T00:01Z", source="neso")
    message = str(err.value)
    assert "/intensity/2021-03-26T00:01Z/2021-03-27T00:01Z" in message and "HTTP 500" in message
    assert "4 attempt" in message
    assert len(httpserver.log) == fast_http.max_attempts
    assert "boom" in err.value.response.text  # the raw body survives for bronze


def test_client_errors_are_not_retried(httpserver, fast_http):
    httpserver.expect_request("/x").respond_with_json({"error": "Invalid auth-token"}, status=401)
    with pytest.raises(HttpError) as err:
        fast_http.get(httpserver.url_for("/"), "/x", source="electricity_maps", headers={"auth-token": "SENTINEL-KEY"})
    assert err.value.status == 401 and "Invalid auth-token" in str(err.value)
    assert "SENTINEL-KEY" not in str(err.value)
    assert len(httpserver.log) == 1


def test_unusable_200_responses_are_retried_through_retry_if(httpserver, fast_http):
    httpserver.expect_ordered_request("/x").respond_with_data("{}", content_type="application/json")
    httpserver.expect_ordered_request("/x").respond_with_data('{"data": [', content_type="application/json")
    httpserver.expect_ordered_request("/x").respond_with_json({"data": [1]})

    def unusable(response):
        try:
            body = json.loads(response.text)
        except json.JSONDecodeError:
            return "truncated JSON"
        return None if body.get("data") else "empty body"

    response = fast_http.get(httpserver.url_for("/"), "/x", source="neso", retry_if=unusable)
    assert response.json() == {"data": [1]} and response.attempts == 3


def test_read_timeouts_are_retried_and_then_reported(httpserver):
    session = HttpSession(read_timeout_s=0.2, max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01, min_interval_s=0)

    def slow(_request):
        time.sleep(0.6)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(HttpError) as err:
        session.get(httpserver.url_for("/"), "/slow", source="neso")
    assert "timed out" in str(err.value) and "/slow" in str(err.value)
    assert err.value.response is None


def test_refused_connections_are_retried_and_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens there
    session = HttpSession(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01, min_interval_s=0, connect_timeout_s=0.5)
    with pytest.raises(HttpError) as err:
        session.get(f"http://127.0.0.1:{port}", "/intensity", source="neso")
    assert "connection failed" in str(err.value) and f"127.0.0.1:{port}/intensity" in str(err.value)


def test_polite_interval_spaces_requests_to_one_host(httpserver):
    session = HttpSession(min_interval_s=0.3)
    httpserver.expect_request("/x").respond_with_json({})
    started = time.monotonic()
    for _ in range(3):
        session.get(httpserver.url_for("/"), "/x", source="neso")
    # three requests need at least two full intervals between their starts
    assert time.monotonic() - started >= 0.6


_CALLER = """
import sys, time
from pathlib import Path
from energy_assets.http import HttpSession

url, name, count, interval, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5])
session = HttpSession(min_interval_s=interval)
Path(str(go) + "." + name).touch()  # ready
while not go.exists():
    time.sleep(0.005)
for _ in range(count):
    session.get(url, "/x", params={"who": name}, source="neso")
"""


def test_polite_interval_holds_across_processes_calling_one_host_at_once(httpserver, tmp_path):
    """Two processes (as two steps of a launched run are) call one host at the same moment: together they
    keep the interval between request starts, instead of each keeping it for itself."""
    import subprocess
    import sys

    from werkzeug import Request

    interval, count = 0.25, 4
    arrivals: list[tuple[float, str]] = []

    def record(request: Request) -> Response:
        arrivals.append((time.monotonic(), request.args["who"]))
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/x").respond_with_handler(record)
    go = tmp_path / "go"
    callers = [
        subprocess.Popen([sys.executable, "-c", _CALLER, httpserver.url_for("/"), name, str(count), str(interval), str(go)])
        for name in ("a", "b")
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{name}").exists() for name in ("a", "b")):
            assert time.monotonic() < deadline and all(c.poll() is None for c in callers), "a caller did not start"
            time.sleep(0.01)
        go.touch()  # both start their requests now
        assert [c.wait(timeout=60) for c in callers] == [0, 0]
    finally:
        for c in callers:
            if c.poll() is None:
                c.kill()
    assert sorted(who for _, who in arrivals) == ["a"] * count + ["b"] * count
    # both were calling at once: each one's first request came before the other's last
    times = {name: [t for t, who in arrivals if who == name] for name in ("a", "b")}
    assert max(min(ts) for ts in times.values()) < min(max(ts) for ts in times.values()), sorted(arrivals)
    gaps = [b - a for (a, _), (b, _) in zip(sorted(arrivals), sorted(arrivals)[1:])]
    # one interval between every two request starts (less a little for the time a request takes to arrive)
    assert min(gaps) >= interval - 0.05, gaps


def test_a_slot_left_from_before_a_reboot_is_ignored_and_an_unwritable_slot_file_keeps_the_spacing_in_process(tmp_path, caplog):
    from energy_assets.http import _HostThrottle

    shared = _HostThrottle(tmp_path / "slots")
    (tmp_path / "slots").mkdir()
    (tmp_path / "slots" / "api.example_443").write_text(repr(time.monotonic() + 10_000))  # another boot's clock
    started = time.monotonic()
    shared.wait("api.example:443", 0.2)
    assert time.monotonic() - started < 0.15  # not 10,000 s
    shared.wait("api.example:443", 0.2)
    assert time.monotonic() - started >= 0.2  # and the slot it wrote holds the next caller
    assert float((tmp_path / "slots" / "api.example_443").read_text()) < time.monotonic() + 0.3

    (tmp_path / "not_a_directory").write_text("")
    local = _HostThrottle(tmp_path / "not_a_directory")  # the slot files cannot be created
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="energy_assets.http"):
        for _ in range(3):
            local.wait("api.example:443", 0.2)
        local.wait("other.example:443", 0.2)
    assert time.monotonic() - started >= 0.4
    # the fallback is said once per host at warning level, not once per request
    said = [(r.levelno, r.getMessage().split(" kept")[0]) for r in caplog.records if "within this process only" in r.getMessage()]
    assert said == [(logging.WARNING, "HTTP politeness to api.example:443")] + [(logging.DEBUG, "HTTP politeness to api.example:443")] * 2 + [
        (logging.WARNING, "HTTP politeness to other.example:443")
    ]


def test_secret_query_parameters_are_redacted():
    shown = safe_url("https://api.example/v3/x?zone=GR&auth_token=abc", {"api_key": "SENTINEL", "start": "2021-03-26T00:00Z"})
    assert "SENTINEL" not in shown and "abc" not in shown
    assert "zone=GR" in shown and "start=2021-03-26T00:00Z" in shown


@pytest.mark.parametrize(
    "value,expected",
    [("7", 7.0), ("", None), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0)],
)
def test_parse_retry_after(value, expected):
    import email.utils

    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:50 GMT").timestamp()
    assert parse_retry_after(value, now=now) == expected


def test_replay_answers_from_samples_and_names_the_missing_file(tmp_path):
    path = replay_path(tmp_path, "neso", "/intensity/2021-03-26T00:01Z/2021-03-27T00:01Z", None)
    path.parent.mkdir(parents=True)
    path.write_text('{"data": []}')
    session = HttpSession(source_mode="replay", samples_dir=str(tmp_path))
    response = session.get("http://unused.invalid", "/intensity/2021-03-26T00:01Z/2021-03-27T00:01Z", source="neso")
    assert response.json() == {"data": []} and response.status == 200
    with pytest.raises(ReplayMissingError) as err:
        session.get("http://unused.invalid", "/intensity/date/2021-03-30", source="neso")
    assert "intensity/date/2021-03-30.json" in str(err.value)


def test_replay_paths_cannot_escape_the_samples_folder(tmp_path):
    path = replay_path(tmp_path, "../neso", "/../../etc/passwd", {"zone": "../GR"})
    assert tmp_path in path.parents
    assert ".." not in path.relative_to(tmp_path).parts


def test_replay_follows_the_environment_at_request_time_not_at_import(tmp_path, monkeypatch):
    """A session built before ENERGY_ASSETS_SOURCE is set (as a code location's resources are) still replays."""
    session = HttpSession()
    path = replay_path(tmp_path, "neso", "/intensity", None)
    path.parent.mkdir(parents=True)
    path.write_text('{"data": [2]}')
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "replay")
    monkeypatch.setenv("ENERGY_ASSETS_SAMPLES_DIR", str(tmp_path))
    assert session.get("http://127.0.0.1:9", "/intensity", source="neso").json() == {"data": [2]}


def test_the_suite_points_the_real_apis_at_a_closed_local_port():
    import os

    from energy_assets.definitions import defs

    assert os.environ["NESO_API_BASE_URL"].startswith("http://127.0.0.1:")
    assert os.environ["ELECTRICITY_MAPS_API_BASE_URL"].startswith("http://127.0.0.1:")
    from dagster import EnvVar

    # resolved when a run starts, from the environment above, not frozen at import
    base_url = defs.resources["neso"].base_url
    assert isinstance(base_url, EnvVar) and base_url.get_value() == os.environ["NESO_API_BASE_URL"]


def test_politeness_can_be_lowered_from_the_environment_but_never_raised(monkeypatch):
    session = HttpSession(min_interval_s=1.0)
    assert session.politeness_s() == 1.0
    monkeypatch.setenv("ENERGY_ASSETS_HTTP_MIN_INTERVAL_S", "0")
    assert session.politeness_s() == 0.0
    monkeypatch.setenv("ENERGY_ASSETS_HTTP_MIN_INTERVAL_S", "30")
    assert session.politeness_s() == 1.0
    monkeypatch.setenv("ENERGY_ASSETS_HTTP_MIN_INTERVAL_S", "soon")
    with pytest.raises(ValueError, match="ENERGY_ASSETS_HTTP_MIN_INTERVAL_S"):
        session.politeness_s()


@pytest.mark.parametrize("mode", ["replay", "live"])
def test_runs_are_tagged_with_the_source_mode_they_use_also_through_a_nested_session(monkeypatch, mode):
    from dagster import DagsterInstance, asset, materialize

    from energy_assets.http import SOURCE_TAG
    from energy_assets.neso.client import NesoClient

    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", mode)

    @asset
    def uses_the_api(neso: NesoClient) -> int:
        return 1

    with DagsterInstance.ephemeral() as instance:
        result = materialize([uses_the_api], resources={"neso": NesoClient(http=HttpSession())}, instance=instance)
        assert instance.get_run_by_id(result.run_id).tags[SOURCE_TAG] == mode
