"""Fixtures for the Electricity Maps tests: a loopback API (pytest-httpserver) serving the project's own
format-faithful payloads (energy_assets.devtools.electricity_maps_samples), and resources pointing at it."""

import datetime as dt
import json

import pytest

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.client import ElectricityMapsResource, day_window, utc_z
from energy_assets.http import HttpSession

# Distinctive, so a leak anywhere (errors, metadata, bronze, logs) is found by a plain substring search.
API_KEY = "emk-TEST-3f9a7c1e-SECRET"
UTC = dt.timezone.utc


def hour(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def day_rows(kind: str, zone: str, day: str, **kwargs) -> list[dict]:
    start, end = day_window(dt.date.fromisoformat(day))
    return [samples.row(kind, zone, h, **kwargs) for h in samples.hours(start, end)]


class FakeApi:
    """Registers Electricity Maps routes on the test server; every route demands the `auth-token` header."""

    def __init__(self, httpserver, key: str = API_KEY):
        self.server = httpserver
        self.key = key
        self.base_url = httpserver.url_for("/v3")

    def _expect(self, path: str, query: dict, headers: dict | None = None):
        return self.server.expect_request(
            f"/v3{path}", method="GET", query_string=query, headers={"auth-token": self.key} if headers is None else headers
        )

    def past_range(self, kind: str, zone: str, day: str, rows: list[dict] | None = None, days: int = 1, **respond):
        start = day_window(dt.date.fromisoformat(day))[0]
        end = start + dt.timedelta(days=days)
        if rows is None:
            rows = [r for i in range(days) for r in day_rows(kind, zone, (start + dt.timedelta(days=i)).date().isoformat())]
        query = {"zone": zone, "start": utc_z(start), "end": utc_z(end)}
        self._expect(f"/{kind}/past-range", query).respond_with_json(samples.past_range_body(kind, zone, rows), **respond)

    def history(self, kind: str, zone: str, rows: list[dict]):
        self._expect(f"/{kind}/history", {"zone": zone}).respond_with_json(samples.history_body(kind, zone, rows))

    def latest(self, kind: str, zone: str, row: dict):
        self._expect(f"/{kind}/latest", {"zone": zone}).respond_with_json(row)

    def error(self, path: str, query: dict, status: int, body, content_type: str = "application/json"):
        text = body if isinstance(body, str) else json.dumps(body)
        self._expect(path, query).respond_with_data(text, status=status, content_type=content_type)


@pytest.fixture
def api(httpserver):
    return FakeApi(httpserver)


def em_resource(api: FakeApi, http: HttpSession, paid_tier: bool = True, key: str = API_KEY, **kwargs) -> ElectricityMapsResource:
    """The resource against the loopback API, with `http` (the test-sized session) nested in it."""
    return ElectricityMapsResource(http=http, api_key=key, base_url=api.base_url, paid_tier=paid_tier, **kwargs)
