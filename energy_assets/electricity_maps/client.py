"""Electricity Maps API v3 client: the requests a partition needs, and errors that say what to do.

- The API key comes from `ELECTRICITY_MAPS_API_KEY` (a Dagster `EnvVar`) and is sent only as the
  `auth-token` header. It is never put in a URL, a log line, an error message or a stored row: every
  message built here passes through `_redact`, and the shared session never shows headers.
- Free tier: `history` (the last 24 h). Paid tier (`ELECTRICITY_MAPS_PAID_TIER=true`): `past-range`
  in windows of at most 10 days (`start` inclusive, `end` exclusive, UTC with `Z`).
- Replay (`ENERGY_ASSETS_SOURCE=replay`) behaves like a paid key with one-day windows, so every
  partition maps to exactly one recorded file (`data/samples/electricity_maps/<kind>/past-range__...`)
  whatever the run's range; no key is needed.
- Transient failures (connection errors, timeouts, 408/429/5xx, `{}` and non-JSON bodies) are retried by the
  shared `HttpSession` (the resource's nested `http`). Electricity Maps also answers throttling with HTTP 401
  (not only 429): a 401 whose body speaks of a rate limit/quota/too many requests (or that carries
  `Retry-After`) is throttling, backed off and retried here; any other 401 is an invalid key.

The one error model (see energy_assets/bronze.py): an unusable answer comes back as a `Fetch` with `problem`
set, to be kept in bronze (a blocking check then fails the run before silver). Errors about the caller are
raised at once and nothing is written: no key (`MissingApiKeyError`), a rejected key (`InvalidApiKeyError`,
401), no access (`AccessDeniedError`, 403), a wrong base URL (`RouteNotFoundError`, 404 "no Route"), an
unknown zone (`UnknownZoneError`), days a free key cannot reach (`HistoryTooOldError`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from dagster import ConfigurableResource
from pydantic import Field

from energy_assets import settings
from energy_assets.bronze import content_hash
from energy_assets.http import HttpError, HttpResponse, HttpSession, parse_retry_after, safe_url
from energy_assets.resources import http_session

SOURCE = "electricity_maps"
API_KEY_ENV = "ELECTRICITY_MAPS_API_KEY"
PAID_TIER_ENV = "ELECTRICITY_MAPS_PAID_TIER"
BASE_URL_ENV = "ELECTRICITY_MAPS_API_BASE_URL"
DEFAULT_BASE_URL = "https://api.electricitymap.org/v3"
MAX_WINDOW_DAYS = 10  # past-range serves at most 240 hourly rows per request
KINDS = ("carbon-intensity", "power-breakdown")
NO_DATA = "no data"  # how the `problem` of an answer that says "no data for this zone" starts
THROTTLED = re.compile(r"rate.?limit|too many requests|quota|limit exceeded|throttl", re.IGNORECASE)
HOW_TO_SET_KEY = (
    f"set {API_KEY_ENV} to your Electricity Maps API key (free tier keys at https://portal.electricitymaps.com), "
    f"e.g. `export {API_KEY_ENV}=<your key>` in the environment of `dagster dev`/the daemon, "
    "or run with ENERGY_ASSETS_SOURCE=replay to use the bundled sample payloads"
)


# ---------------------------------------------------------------------------------------------- errors
class ElectricityMapsError(RuntimeError):
    """An error about the caller (key, access, configuration): raised, never written. The message names the
    request and what to do, and never holds the key."""


class MissingApiKeyError(ElectricityMapsError):
    pass


class InvalidApiKeyError(ElectricityMapsError):
    pass


class AccessDeniedError(ElectricityMapsError):
    pass


class RouteNotFoundError(ElectricityMapsError):
    pass


class UnknownZoneError(ElectricityMapsError):
    pass


class HistoryTooOldError(ElectricityMapsError):
    pass


# ---------------------------------------------------------------------------------------------- helpers
def utc_z(value: dt.datetime) -> str:
    """UTC timestamp with `Z` (a `+00:00` offset in a query string gets mangled)."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint_of(path: str, params: dict[str, str]) -> str:
    """Path plus sorted, non-secret query parameters: what bronze stores as `request_url` (never the key)."""
    return path + ("?" + urlencode(sorted(params.items()), safe=":") if params else "")


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return start, start + dt.timedelta(days=1)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Fetch:
    """One request as bronze keeps it, with the (UTC day) partitions of `zone` it is stored for.

    `problem` is null when the answer is usable; else why not (HTTP 5xx after the retries, throttled on every
    attempt, `{}`, a body that is not JSON, a missing field, no answer at all, or "no data" for the zone:
    `NO_DATA` starts those). `body` never holds the key (a server echoing headers back is redacted)."""

    kind: str
    zone: str
    request_kind: str  # "history" | "past-range" | "latest"
    request_url: str
    fetched_at: dt.datetime
    http_status: int | None
    body: str
    attempts: int
    problem: str | None = None
    dates: tuple[dt.date, ...] = field(default_factory=tuple)

    @property
    def content_hash(self) -> str:
        return content_hash(self.body)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def json(self):
        return json.loads(self.body)


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
def is_throttled(status: int, text: str, headers) -> bool:
    """Electricity Maps throttles with 401 as well as 429: tell throttling from a bad key by the body."""
    if status == 429:
        return True
    return status == 401 and (bool(THROTTLED.search(text or "")) or "retry-after" in {k.lower() for k in headers})


def usability_problem(text: str, expect: str) -> str | None:
    """Why a 2xx body cannot be used (None when it can). `expect` is the member the request's answer holds."""
    try:
        body = json.loads(text)
    except ValueError:
        return f"a body that is not JSON ({_snippet(text, 80)!r}; truncated?)"
    if body == {}:
        return "an empty JSON object {}"
    if isinstance(body, dict) and (body.get("error") or body.get("status") == "error"):
        said = " ".join(str(body.get(k)) for k in ("error", "message") if body.get(k))
        if "no recent data" in said.lower() or "no data" in said.lower():
            return f"{NO_DATA}: the API said {said!r}"
        return f"an error body: {said!r}"
    if not isinstance(body, dict) or expect not in body or (expect != "datetime" and not isinstance(body[expect], list)):
        found = sorted(body)[:10] if isinstance(body, dict) else type(body).__name__
        return f"no `{expect}` field (found {found}); the API may have changed: check {BASE_URL_ENV} points at the v3 API"
    if expect != "datetime" and not body[expect]:
        return f"{NO_DATA}: the answer's `{expect}` list is empty"
    return None


class ElectricityMapsApi:
    """Requests against one base URL through the shared session. Build it with `ElectricityMapsResource.api()`."""

    def __init__(self, http: HttpSession, *, base_url: str, api_key: str, paid_tier: bool, window_days: int = MAX_WINDOW_DAYS):
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
        return self._get(kind, zone, "latest", {"zone": zone}, expect="datetime")

    def history(self, kind: str, zone: str, dates: Sequence[dt.date] = ()) -> Fetch:
        return self._get(kind, zone, "history", {"zone": zone}, expect="history", dates=dates)

    def past_range(self, kind: str, zone: str, start: dt.datetime, end: dt.datetime, dates: Sequence[dt.date] = ()) -> Fetch:
        if end <= start or end - start > dt.timedelta(days=MAX_WINDOW_DAYS):
            raise ValueError(f"past-range window {utc_z(start)}..{utc_z(end)} must be 1 h to {MAX_WINDOW_DAYS} days")
        params = {"zone": zone, "start": utc_z(start), "end": utc_z(end)}
        return self._get(kind, zone, "past-range", params, expect="data", dates=dates)

    def fetch_days(self, kind: str, zone: str, days: Sequence[dt.date], now: dt.datetime | None = None) -> list[Fetch]:
        """Every answer needed for `days` of `zone`, each tagged with the days it is stored for. Unusable
        answers come back with `problem` set (kept in bronze); errors about the caller are raised."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.require_key()
        now = now or dt.datetime.now(dt.timezone.utc)
        fetches = []
        for window in plan_windows(days, now, paid_tier=self.paid_tier, window_days=self.window_days):
            if window.request_kind == "history":
                fetches.append(self.history(kind, zone, window.dates))
            else:
                fetches.append(self.past_range(kind, zone, window.start, window.end, window.dates))
        return fetches

    # -------------------------------------------------------------- internals
    def _redact(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key and text else text

    def _get(self, kind: str, zone: str, request_kind: str, params: dict[str, str], *, expect: str, dates=()) -> Fetch:
        self.require_key()
        path = f"/{kind}/{request_kind}"
        request_url = endpoint_of(path, params)
        request = f"GET {self._redact(request_url)} ({self._redact(safe_url(self._base_url))})"
        headers = {"auth-token": self.__key} if self.__key else {}
        attempts, waited, response, problem = 0, 0.0, None, None
        while True:
            response, problem = self._attempt(path, params, headers, expect)
            attempts += response.attempts if response is not None else self._http.max_attempts
            if response is None or not is_throttled(response.status, response.text, response.headers):
                break
            delay = parse_retry_after(response.headers.get("Retry-After") or response.headers.get("retry-after"))
            if delay is None:
                ceiling = min(self._http.backoff_max_s, self._http.backoff_base_s * 2 ** (attempts - 1))
                delay = random.uniform(ceiling / 2, ceiling)
            if attempts >= self._http.max_attempts or waited + delay > self._http.max_total_wait_s:
                problem = (
                    f"throttled: HTTP {response.status} {self._redact(_snippet(response.text))!r} on every one of {attempts} "
                    f"attempt(s) ({waited:.1f}s of backoff): poll less often (ELECTRICITY_MAPS_SENSOR_INTERVAL_SECONDS) "
                    "or fewer zones, then retry"
                )
                break
            time.sleep(delay)
            waited += delay
        if response is not None and problem is None and not 200 <= response.status < 300:
            self._raise_for_caller_error(request, response, zone)
            problem = f"HTTP {response.status}: {_snippet(response.text)!r}"
        return Fetch(
            kind=kind,
            zone=zone,
            request_kind=request_kind,
            request_url=request_url,
            fetched_at=response.fetched_at if response is not None else dt.datetime.now(dt.timezone.utc),
            http_status=response.status if response is not None else None,
            body=self._redact(response.text) if response is not None else "",
            attempts=attempts,
            problem=f"Electricity Maps: {request}: {self._redact(problem)}" if problem else None,
            dates=tuple(dates),
        )

    def _attempt(self, path: str, params: dict, headers: dict, expect: str) -> tuple[HttpResponse | None, str | None]:
        """One call of the shared session (its own retries included): the last answer and why it is unusable."""
        try:
            response = self._http.get(
                self._base_url, path, source=SOURCE, params=params, headers=headers, raise_for_status=False,
                retry_if=lambda r: usability_problem(r.text, expect),
            )
        except HttpError as exc:  # retries exhausted: 5xx, 429, timeouts, `{}`, truncated bodies, no answer at all
            return exc.response, self._redact(str(exc))
        if 200 <= response.status < 300:
            return response, usability_problem(response.text, expect)
        said = usability_problem(response.text, expect) or ""
        if said.startswith(NO_DATA):  # "No recent data for zone" comes with an error status
            return response, said
        return response, None  # left to `_raise_for_caller_error`, or kept below

    def _raise_for_caller_error(self, request: str, response: HttpResponse, zone: str) -> None:
        """Raise for answers about the caller; every other non-2xx answer is returned as a kept problem."""
        status = response.status
        text = response.text or ""
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        message = " ".join(str(body.get(k)) for k in ("error", "message") if body.get(k)) if isinstance(body, dict) else ""
        said = self._redact(_snippet(message or text))
        if "does not exist" in message.lower() or "unknown zone" in message.lower():
            raise UnknownZoneError(
                f"Electricity Maps: {request}: HTTP {status} {said!r}. Zone {zone!r} is not a zone key: "
                "fix ELECTRICITY_MAPS_ZONES (keys like GR, DE, US-CAR-DUK; the /zones endpoint lists them)"
            )
        if status == 401:
            raise InvalidApiKeyError(
                f"Electricity Maps: {request}: HTTP 401 {said!r}. The key in {API_KEY_ENV} was rejected: it is "
                "invalid or expired (a rate-limited key also gets 401, but with a body about the rate limit; this one "
                "was not, so it is not retried). Check the key in the Electricity Maps portal"
            )
        if status == 403:
            raise AccessDeniedError(
                f"Electricity Maps: {request}: HTTP 403 {said!r}. The key has no access to this endpoint or zone "
                f"(a free key covers `latest` and `history` for one zone): set {PAID_TIER_ENV}=false for a free key, "
                "or use a key whose plan includes this zone and endpoint"
            )
        if status == 404 and "route" in message.lower():
            raise RouteNotFoundError(
                f"Electricity Maps: {request}: HTTP 404 {said!r}. No such route: check {BASE_URL_ENV} "
                f"(default {DEFAULT_BASE_URL}) points at the v3 API"
            )


class ElectricityMapsResource(ConfigurableResource):
    """Electricity Maps settings and the shared HTTP session (nested). The key comes from the
    `ELECTRICITY_MAPS_API_KEY` environment variable (an EnvVar) and travels only in the `auth-token` header."""

    http: HttpSession
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

    def api(self) -> ElectricityMapsApi:
        return ElectricityMapsApi(
            self.http, base_url=self.base_url, api_key=self.api_key, paid_tier=self.paid_tier, window_days=self.window_days
        )


def resource_from_env(http: HttpSession | None = None) -> ElectricityMapsResource:
    """The resource configured from the environment (the key as an EnvVar, so its value never shows)."""
    return ElectricityMapsResource(
        http=http if http is not None else http_session(),
        api_key=settings.env_var(API_KEY_ENV),
        base_url=settings.env_var(BASE_URL_ENV),
        paid_tier=settings.electricity_maps_paid_tier(),
    )
