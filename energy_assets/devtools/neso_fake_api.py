"""A local fake of the NESO Carbon Intensity API whose data changes as time passes.

    energy-assets fake-neso-api --port 8765 [--revise-every 60] [--fault 500|empty|truncated|429|error200]
    python -m energy_assets.devtools.neso_fake_api --port 8765

Serves, in the real API's format and with its quirks (one-minute boundary rule, UK local days, 14-day limit):
`/intensity`, `/intensity/date/{date}`, `/intensity/{from}/{to}`, `/generation/{from}/{to}`,
`/regional/intensity/{from}/{to}` (the regional forecasts of `neso_regional_samples`, not revised),
`/intensity/{from}/fw48h` and `/regional/intensity/{from}/fw48h` (48-hour forecasts of `neso_forecast_samples`
as issued at the fake's clock, so each fetch is a new issue).
Actuals appear 30 minutes after a period ends and forecasts of open periods are revised every
`--revise-every` seconds, so a poller sees real changes. Faults can be switched at run time:
`GET /_control?fault=500&count=3` (the next 3 data requests fail; count omitted = until switched off),
`GET /_control?fault=none`, `GET /_control?revision=+1` (revise forecasts now). Point the pipeline at it
with `NESO_API_BASE_URL=http://127.0.0.1:8765`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from energy_assets.devtools import neso_forecast_samples, neso_regional_samples
from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.neso.client import UTC, parse_api_time

FAULTS = ("none", "500", "empty", "truncated", "429", "error200")
_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z"


class FakeNesoState:
    """Mutable state of the fake: clock, revision, faults. Thread-safe enough for a test server."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None, revise_every_s: float = 60.0):
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.revise_every_s = revise_every_s
        self.manual_revision = 0
        self.fault = "none"
        self.fault_remaining: int | None = None
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def revision(self) -> int:
        auto = int(self.clock().timestamp() // self.revise_every_s) if self.revise_every_s > 0 else 0
        return auto + self.manual_revision

    def set_fault(self, fault: str, count: int | None = None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        with self._lock:
            self.fault, self.fault_remaining = fault, count

    def take_fault(self) -> str:
        with self._lock:
            if self.fault == "none":
                return "none"
            fault = self.fault
            if self.fault_remaining is not None:
                self.fault_remaining -= 1
                if self.fault_remaining <= 0:
                    self.fault, self.fault_remaining = "none", None
            return fault


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def answer(state: FakeNesoState, path: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a GET of `path` (without query)."""
    now = state.clock()
    state.requests.append(path)
    fault = state.take_fault()
    if fault == "500":
        return 500, {}, error_body("500 Internal Server Error", "Internal Server Error")
    if fault == "429":
        return 429, {"Retry-After": "0"}, error_body("429 Too Many Requests", "Slow down")
    if fault == "empty":
        return 200, {}, "{}"
    if fault == "error200":
        return 200, {}, error_body("400 Bad Request", "Something went wrong")

    status, body = _data(state, path.rstrip("/"), now)
    text = json.dumps(body, indent=2)
    if fault == "truncated" and status == 200:
        text = text[: len(text) // 2]
    return status, {}, text


def _data(state: FakeNesoState, path: str, now: dt.datetime) -> tuple[int, dict]:
    revision = state.revision()
    if path == "/intensity":
        last_settled = synthetic.period_starts(now - dt.timedelta(hours=2), now - synthetic.ACTUAL_DELAY - synthetic.PERIOD)
        return 200, synthetic.intensity_payload(last_settled[-1:], now, revision)
    if m := re.fullmatch(r"/intensity/date/(\d{4}-\d{2}-\d{2})", path):
        try:
            day = dt.date.fromisoformat(m.group(1))
        except ValueError:
            return 400, json.loads(error_body("400 Bad Request", "Please enter a valid date in ISO8601 format YYYY-MM-DD"))
        return 200, synthetic.intensity_payload(synthetic.uk_day_starts(day), now, revision)
    if m := re.fullmatch(rf"/(intensity|generation)/({_TIME})/({_TIME})", path):
        start, end = parse_api_time(m.group(2)), parse_api_time(m.group(3))
        if end - start > dt.timedelta(days=14) or end <= start:
            return 400, json.loads(error_body("400 Bad Request", "Date range must be positive and at most 14 days"))
        starts = synthetic.periods_for_api_range(start, end)
        if m.group(1) == "intensity":
            return 200, synthetic.intensity_payload(starts, now, revision)
        return 200, synthetic.generation_payload([s for s in starts if s <= now])
    if re.fullmatch(rf"(/regional)?/intensity/{_TIME}/fw48h", path):
        return 200, neso_forecast_samples.payload_for(path, issued=now)
    if re.fullmatch(rf"/regional/intensity/{_TIME}/{_TIME}", path):
        return 200, neso_regional_samples.payload_for(path)
    if re.fullmatch(r"/(intensity|generation)/[^/]+/[^/]+", path):
        return 400, json.loads(
            error_body("400 Bad Request", "Please enter a valid datetime in ISO8601 format YYYY-MM-DDThh:mmZ e.g. /intensity/2017-08-25T15:30Z")
        )
    return 404, json.loads(error_body("404 Not Found", f"No route for {path}"))


def make_handler(state: FakeNesoState):
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeNESO/1.0"

        def do_GET(self):  # noqa: N802 (http.server API)
            parts = urlsplit(self.path)
            if parts.path == "/_control":
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                try:
                    if "fault" in query:
                        state.set_fault(query["fault"], int(query["count"]) if "count" in query else None)
                    revision = query.get("revision", "").strip()  # "+1" arrives as " 1" (a + in a query is a space)
                    if revision:
                        state.manual_revision += int(revision.lstrip("+"))
                except ValueError as exc:
                    return self._send(400, {}, error_body("400 Bad Request", str(exc)))
                return self._send(200, {}, json.dumps({"fault": state.fault, "revision": state.revision()}))
            status, headers, body = answer(state, parts.path)
            self._send(status, headers, body)

        def _send(self, status, headers, body):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # quiet unless asked
            if getattr(self.server, "verbose", False):
                super().log_message(fmt, *args)

    return Handler


def serve(state: FakeNesoState, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start the fake in a daemon thread; `server.server_address` holds the port. Stop with `shutdown()`."""
    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fake-neso-api", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="energy-assets fake-neso-api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--revise-every", type=float, default=60.0, help="seconds between forecast revisions")
    parser.add_argument("--fault", choices=FAULTS, default="none", help="start with this fault switched on")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    state = FakeNesoState(revise_every_s=args.revise_every)
    state.set_fault(args.fault)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))
    server.verbose = args.verbose
    print(f"fake NESO API on http://{args.host}:{server.server_address[1]} (NESO_API_BASE_URL); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
