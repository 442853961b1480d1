"""Electricity Maps API v3 client: the requests a partition needs, and errors that say what to do.

- The API key comes from `ELECTRICITY_MAPS_API_KEY` (a Dagster `EnvVar`) and is sent only as the
  `auth-token` header. It is never put in a URL, a log line, an error message or a stored row: every
  message built here passes through `_redact`, and the shared session never shows headers.
- Free tier: `history` (the last 24 h). Paid tier (`ELECTRICITY_MAPS_PAID_TIER=true`): `past-range`
  in windows of at most 10 days (`start` inclusive, `end` exclusive, UTC with `Z`).
- Replay (`ENERGY_ASSETS_SOURCE=replay`) behaves like a paid key with one-day windows, so every
  partition maps to exactly one recorded file (`data/samples/electricity_maps/<kind>/past-range__...`)
  whatever the run's range; no key is needed.
- Transient failures (connection errors, timeouts, 408/429/5xx) are retried by the shared
  `HttpSession`; what is left is turned into a specific `ElectricityMapsError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from dagster import ConfigurableResource
from pydantic import Field

from energy_assets import settings
from energy_assets.http import HttpError, HttpResponse, HttpSession, safe_url

SOURCE = "electricity_maps"
API_KEY_ENV = "ELECTRICITY_MAPS_API_KEY"
PAID_TIER_ENV = "ELECTRICITY_MAPS_PAID_TIER"
BASE_URL_ENV = "ELECTRICITY_MAPS_API_BASE_URL"
DEFAULT_BASE_URL = "https://api.electricitymap.org/v3"
MAX_WINDOW_DAYS = 10  # past-range serves at most 240 hourly rows per request
KINDS = ("carbon-intensity", "power-breakdown")
HOW_TO_SET_KEY = (
    f"set {API_KEY_ENV} to your Electricity Maps API key (free tier keys at https://portal.electricitymaps.com), "
    f"e.g. `export {API_KEY_ENV}=<your key>` in the environment of `dagster dev`/the daemon, "
    "or run with ENERGY_ASSETS_SOURCE=replay to use the bundled sample payloads"
)


# ---------------------------------------------------------------------------------------------- errors
class ElectricityMapsError(RuntimeError):
    """A request to Electricity Maps failed for good; the message names the request and what to do.

    `response` is the last answer (body redacted of the key) when one arrived, `endpoint` the request
    (path and query, never the key), `dates` the days it was for and `fetched` the responses of the same
    call that succeeded before it, so the caller can keep them all in bronze.
    """

    response: HttpResponse | None = None
    endpoint: str | None = None
    dates: tuple[dt.date, ...] = ()
    fetched: tuple = ()


class MissingApiKeyError(ElectricityMapsError):
    pass


class InvalidApiKeyError(ElectricityMapsError):
    pass


class AccessDeniedError(ElectricityMapsError):
    pass


class RouteNotFoundError(ElectricityMapsError):
    pass


class RateLimitedError(ElectricityMapsError):
    pass


class NoRecentDataError(ElectricityMapsError):
    pass


class UnknownZoneError(ElectricityMapsError):
    pass


class HistoryTooOldError(ElectricityMapsError):
    pass


class ResponseFormatError(ElectricityMapsError):
    pass


class RequestFailedError(ElectricityMapsError):
    pass


# ---------------------------------------------------------------------------------------------- helpers
def utc_z(value: dt.datetime) -> str:
    """UTC timestamp with `Z` (a `+00:00` offset in a query string gets mangled)."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint_of(path: str, params: dict[str, str]) -> str:
    """Path plus sorted, non-secret query parameters: what bronze stores as `endpoint`."""
    return path + ("?" + urlencode(sorted(params.items()), safe=":") if params else "")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return start, start + dt.timedelta(days=1)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Fetch:
    """One API response and the (UTC day) partitions of `zone` it is stored for in bronze."""

    kind: str
    zone: str
    request_kind: str  # "history" | "past-range" | "latest"
    endpoint: str
    response: HttpResponse
    dates: tuple[dt.date, ...] = field(default_factory=tuple)

    @property
    def content_hash(self) -> str:
        return content_hash(self.response.text)


@dataclass(frozen=True)
class Window:
    request_kind: str
    dates: tuple[dt.date, ...]
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def contiguous_runs(days: Iterable[dt.date]) -> list[list[dt.date]]:
    runs: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def plan_windows(
    days: Sequence[dt.date], now: dt.datetime, *, paid_tier: bool, window_days: int = MAX_WINDOW_DAYS
) -> list[Window]:
    """The requests that cover `days` for one zone.

    A day whose hours reach into the last 24 h is served by `history` (one request for all such days).
    Older days need `past-range` (paid tier), in windows of at most `window_days` contiguous days; with a
    free key they raise `HistoryTooOldError`. Days entirely in the future need no request.
    """
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window_days must be between 1 and {MAX_WINDOW_DAYS}, not {window_days}")
    now = now.astimezone(dt.timezone.utc)
    today = now.date()
    history_from = now - dt.timedelta(hours=24)
    recent, old = [], []
    for day in sorted(set(days)):
        start, end = day_window(day)
        if start > now:
            continue
        if day >= today:
            recent.append(day)  # today: history covers every hour so far
        elif paid_tier:
            old.append(day)  # a complete past day: past-range gives all of it
        elif end > history_from:
            recent.append(day)  # yesterday on the free tier: history has its last hours only
        else:
            old.append(day)
    if old and not paid_tier:
        shown = ", ".join(d.isoformat() for d in old[:5]) + (" ..." if len(old) > 5 else "")
        raise HistoryTooOldError(
            f"Electricity Maps: {len(old)} day(s) ({shown}) are older than the 24 h the free tier's `history` "
            f"endpoint serves. Backfilling them needs a paid key: set {PAID_TIER_ENV}=true with a key that has "
            "`past-range` access, or materialise only partitions of today and yesterday (the sensor keeps them fresh)"
        )
    windows = [Window("history", tuple(recent))] if recent else []
    for run in contiguous_runs(old):
        for i in range(0, len(run), window_days):
            chunk = tuple(run[i : i + window_days])
            windows.append(Window("past-range", chunk, day_window(chunk[0])[0], day_window(chunk[-1])[1]))
    return windows


# ---------------------------------------------------------------------------------------------- client
class ElectricityMapsApi:
    """Requests against one base URL through the shared session. Build it with `ElectricityMapsResource.api`."""

    def __init__(
        self,
        http: HttpSession,
        *,
        base_url: str,
        api_key: str,
        paid_tier: bool,
        window_days: int = MAX_WINDOW_DAYS,
    ):
        self._http = http
        self._base_url = base_url
        self.__key = api_key or ""
        self.replay = http.mode() == settings.REPLAY
        self.paid_tier = paid_tier or self.replay
        self.window_days = 1 if self.replay else window_days

    def __repr__(self) -> str:  # never show the key
        return f"ElectricityMapsApi(base_url={self._base_url!r}, paid_tier={self.paid_tier}, replay={self.replay})"

    # -------------------------------------------------------------- public
    def require_key(self) -> None:
        if not self.__key and not self.replay:
            raise MissingApiKeyError(f"Electricity Maps: no API key. {HOW_TO_SET_KEY}.")

    def latest(self, kind: str, zone: str) -> Fetch:
        path, params = f"/{kind}/latest", {"zone": zone}
        response = self._get(path, params, expect="datetime")
        return Fetch(kind, zone, "latest", endpoint_of(path, params), response)

    def history(self, kind: str, zone: str) -> Fetch:
        path, params = f"/{kind}/history", {"zone": zone}
        response = self._get(path, params, expect="history")
        return Fetch(kind, zone, "history", endpoint_of(path, params), response)

    def past_range(self, kind: str, zone: str, start: dt.datetime, end: dt.datetime) -> Fetch:
        if end <= start or end - start > dt.timedelta(days=MAX_WINDOW_DAYS):
            raise ValueError(f"past-range window {utc_z(start)}..{utc_z(end)} must be 1 h to {MAX_WINDOW_DAYS} days")
        path, params = f"/{kind}/past-range", {"zone": zone, "start": utc_z(start), "end": utc_z(end)}
        response = self._get(path, params, expect="data")
        return Fetch(kind, zone, "past-range", endpoint_of(path, params), response)

    def fetch_days(self, kind: str, zone: str, days: Sequence[dt.date], now: dt.datetime | None = None) -> list[Fetch]:
        """Every response needed for `days` of `zone`, each tagged with the days it is stored for."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.require_key()
        now = now or dt.datetime.now(dt.timezone.utc)
        fetches = []
        for window in plan_windows(days, now, paid_tier=self.paid_tier, window_days=self.window_days):
            try:
                if window.request_kind == "history":
                    fetch = self.history(kind, zone)
                else:
                    fetch = self.past_range(kind, zone, window.start, window.end)
            except ElectricityMapsError as exc:
                exc.dates, exc.fetched = tuple(window.dates), tuple(fetches)
                raise
            fetches.append(Fetch(fetch.kind, zone, fetch.request_kind, fetch.endpoint, fetch.response, window.dates))
        return fetches

    # -------------------------------------------------------------- internals
    def _redact(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key else text

    def _get(self, path: str, params: dict[str, str], *, expect: str) -> HttpResponse:
        self.require_key()
        arrived: list[HttpResponse] = []
        try:
            return self._get_checked(path, params, expect, arrived)
        except ElectricityMapsError as exc:
            exc.response = arrived[-1] if arrived else None
            exc.endpoint = endpoint_of(path, params)
            raise

    def _clean(self, response: HttpResponse) -> HttpResponse:
        """The response with the key removed from its body (a server may echo request headers back)."""
        if self.__key and self.__key in (response.text or ""):
            return replace(response, text=self._redact(response.text))
        return response

    def _get_checked(self, path: str, params: dict[str, str], expect: str, arrived: list) -> HttpResponse:
        headers = {"auth-token": self.__key} if self.__key else {}
        request = f"GET {self._redact(endpoint_of(path, params))} ({self._redact(safe_url(self._base_url))})"

        def unusable(resp: HttpResponse) -> str | None:  # 200 with a body worth asking again for
            try:
                body = json.loads(resp.text)
            except ValueError:
                return f"a body that is not JSON ({resp.content_type or 'no content type'}; truncated?)"
            return "an empty JSON object {}" if body == {} else None

        try:
            response = self._http.get(
                self._base_url, path, source=SOURCE, params=params, headers=headers, raise_for_status=False,
                retry_if=unusable,
            )
        except HttpError as exc:
            last = exc.response
            if last is not None:
                arrived.append(self._clean(last))
            if last is not None and 200 <= last.status < 300:
                response = last  # still unusable after the retries: say why below (not JSON, `{}`...)
            else:
                self._raise_for_http_error(exc, request)
        response = self._clean(response)
        if not arrived or arrived[-1] is not response:
            arrived.append(response)
        self._raise_for_error(request, response, path, params)

        try:
            body = json.loads(response.text)
        except ValueError:
            raise ResponseFormatError(
                f"Electricity Maps: {request} answered HTTP {response.status} with a body that is not JSON: "
                f"{self._redact(_snippet(response.text))!r}"
            ) from None
        if not isinstance(body, dict) or expect not in body or (expect != "datetime" and not isinstance(body[expect], list)):
            found = sorted(body)[:10] if isinstance(body, dict) else type(body).__name__
            raise ResponseFormatError(
                f"Electricity Maps: {request} answered without the expected `{expect}` field (found {found}); "
                "the API may have changed: check ELECTRICITY_MAPS_API_BASE_URL points at the v3 API"
            )
        return response

    def _raise_for_http_error(self, exc: HttpError, request: str):
        if exc.status == 429:
            raise RateLimitedError(
                f"Electricity Maps: {request} was rate limited (HTTP 429) on every attempt: "
                "lower the poll frequency (ELECTRICITY_MAPS_SENSOR_INTERVAL_S) or the number of zones, then retry"
            ) from None
        raise RequestFailedError(f"Electricity Maps: {self._redact(str(exc))}") from None

    def _raise_for_error(self, request: str, response: HttpResponse, path: str, params: dict[str, str]) -> None:
        text = response.text or ""
        message = ""
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            parts = [str(body.get(k)) for k in ("error", "message") if body.get(k)]
            message = " ".join(parts)
            is_error = "error" in body or body.get("status") == "error"
        else:
            is_error = False
        if 200 <= response.status < 300 and not is_error:
            return
        said = self._redact(_snippet(message or text))
        zone = params.get("zone", "?")
        status = response.status
        if "no recent data" in message.lower():
            raise NoRecentDataError(
                f"Electricity Maps: {request}: HTTP {status} {said!r}. The API has no recent data for zone {zone}: "
                "the zone's data source is down or lagging; retry later, or drop the zone from ELECTRICITY_MAPS_ZONES"
            )
        if "does not exist" in message.lower() or "unknown zone" in message.lower():
            raise UnknownZoneError(
                f"Electricity Maps: {request}: HTTP {status} {said!r}. Zone {zone!r} is not a zone key: "
                "fix ELECTRICITY_MAPS_ZONES (keys like GR, DE, US-CAR-DUK; the /zones endpoint lists them)"
            )
        if status == 401:
            raise InvalidApiKeyError(
                f"Electricity Maps: {request}: HTTP 401 {said!r}. The key in {API_KEY_ENV} was rejected: it is "
                "invalid or expired, or it has exceeded its request quota (the API answers 401, not 429, to a "
                "rate-limited key). Check the key in the Electricity Maps portal; if it is valid, wait and poll less often"
            )
        if status == 403:
            raise AccessDeniedError(
                f"Electricity Maps: {request}: HTTP 403 {said!r}. The key has no access to this endpoint or zone "
                f"(a free key covers `latest` and `history` for one zone): set {PAID_TIER_ENV}=false for a free key, "
                "or use a key whose plan includes this zone and endpoint"
            )
        if status == 404:
            raise RouteNotFoundError(
                f"Electricity Maps: {request}: HTTP 404 {said!r}. No such route: check {BASE_URL_ENV} "
                f"(default {DEFAULT_BASE_URL}) points at the v3 API"
            )
        if status == 429:
            raise RateLimitedError(
                f"Electricity Maps: {request}: HTTP 429 {said!r}. Rate limited: poll less often and retry later"
            )
        raise RequestFailedError(f"Electricity Maps: {request} answered HTTP {status}: {said!r}")


class ElectricityMapsResource(ConfigurableResource):
    """Electricity Maps settings. The key comes from the `ELECTRICITY_MAPS_API_KEY` environment variable."""

    api_key: str = Field(
        default="",
        description=f"API key, sent as the `auth-token` header. Set it with the {API_KEY_ENV} environment variable (EnvVar).",
    )
    base_url: str = Field(default=DEFAULT_BASE_URL, description=f"v3 API root ({BASE_URL_ENV}).")
    paid_tier: bool = Field(
        default=False,
        description=f"True when the key may call past-range ({PAID_TIER_ENV}); free keys only get the last 24 h.",
    )
    window_days: int = Field(default=MAX_WINDOW_DAYS, description="Days per past-range request (at most 10).")

    def api(self, http: HttpSession) -> ElectricityMapsApi:
        return ElectricityMapsApi(
            http, base_url=self.base_url, api_key=self.api_key, paid_tier=self.paid_tier, window_days=self.window_days
        )


def resource_from_env() -> ElectricityMapsResource:
    """The resource configured from the environment (the key as an EnvVar, so its value never shows)."""
    return ElectricityMapsResource(
        api_key=settings.env_var(API_KEY_ENV),
        base_url=settings.env_var(BASE_URL_ENV),
        paid_tier=settings.electricity_maps_paid_tier(),
    )
