"""Client for the NESO Carbon Intensity API (https://api.carbonintensity.org.uk): national intensity,
generation mix and regional intensity, over the shared session.

What the client knows about the API, so nothing else has to:

- UK settlement days (Europe/London) are 46, 48 or 50 half-hours; `uk_day_bounds_utc` turns a day into its
  UTC range (local midnight to local midnight).
- A `{from}` exactly on :00 or :30 is read as the *end* of the previous period, so range requests add one
  minute to the start (`2024-01-01T00:01Z` starts at the 00:00 period).
- A range request covers at most 14 days and loses data across 1 January: ranges are split into request chunks
  of at most 13 whole UK days that never contain both 31 December and 1 January (`request_chunks`).
- `/intensity/date/{date}` returns the UK local day `{date}`.
- During outages the API answers HTTP 500 with an error body, or HTTP 200 with `{}`, an error object or
  truncated JSON. `usability_problem` names what is wrong with a body; the session retries such answers
  (`retry_if`), and a response that is still unusable comes back with its problem so that bronze can keep
  it verbatim and the run can fail loudly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

from dagster import ConfigurableResource
from pydantic import Field

from energy_assets.bronze import content_hash
from energy_assets.http import HttpError, HttpResponse, HttpSession

SOURCE = "neso"
DEFAULT_BASE_URL = "https://api.carbonintensity.org.uk"
UK = ZoneInfo("Europe/London")
UTC = dt.timezone.utc
PERIOD = dt.timedelta(minutes=30)
BOUNDARY_SHIFT = dt.timedelta(minutes=1)
MAX_DAYS_PER_REQUEST = 13  # the API allows 14; 13 whole UK days (at most 13 d 1 h) always fit

INTENSITY = "intensity"
GENERATION = "generation"
REGIONAL = "regional/intensity"
ENDPOINTS = (INTENSITY, GENERATION, REGIONAL)
FORECAST_ENDPOINTS = (INTENSITY, REGIONAL)  # `/{endpoint}/{from}/fw48h`: the 48-hour forecast
FORECAST_HORIZON = dt.timedelta(hours=48)


# ---------------------------------------------------------------------------------------------- time
def uk_day_bounds_utc(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of the UK settlement day `day` (local midnight to local midnight)."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=UK).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=UK).astimezone(UTC)
    return start, end


def periods_in_uk_day(day: dt.date) -> int:
    """46 on the spring clock change, 50 on the autumn one, else 48."""
    start, end = uk_day_bounds_utc(day)
    return int((end - start) / PERIOD)


def uk_today(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(UTC)).astimezone(UK).date()


def api_time(moment: dt.datetime) -> str:
    """The API's timestamp format: `YYYY-MM-DDThh:mmZ` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def parse_api_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)


def request_chunks(days: Sequence[dt.date], max_days: int = MAX_DAYS_PER_REQUEST) -> list[list[dt.date]]:
    """Consecutive UK days grouped into as few requests as the API allows (a "request chunk": the days one
    range request covers; unrelated to any write or memory chunking elsewhere).

    A request chunk holds at most `max_days` consecutive days and never both 31 December and 1 January;
    a gap in `days` also starts a new chunk.
    """
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    chunks: list[list[dt.date]] = []
    for day in sorted(set(days)):
        current = chunks[-1] if chunks else None
        if (
            current is None
            or len(current) >= max_days
            or day != current[-1] + dt.timedelta(days=1)
            or (day.month == 1 and day.day == 1)
        ):
            chunks.append([day])
        else:
            current.append(day)
    return chunks


def range_path(endpoint: str, start: dt.datetime, end: dt.datetime) -> str:
    """`/{endpoint}/{from}/{to}` for the half-hours starting in [start, end): `from` shifted by one minute."""
    return f"/{endpoint}/{api_time(start + BOUNDARY_SHIFT)}/{api_time(end)}"


def chunk_path(endpoint: str, days: Sequence[dt.date]) -> str:
    start, _ = uk_day_bounds_utc(days[0])
    _, end = uk_day_bounds_utc(days[-1])
    return range_path(endpoint, start, end)


def regional_path(days: Sequence[dt.date]) -> str:
    """`/regional/intensity/{from}/{to}` covering the consecutive UK days `days` (from shifted by one minute)."""
    return chunk_path(REGIONAL, list(days))


def request_plan(endpoint: str, days: Sequence[dt.date]) -> list[tuple[str, list[dt.date]]]:
    """(path, days covered) for every request needed to fetch `days` from `endpoint`."""
    return [(chunk_path(endpoint, chunk), chunk) for chunk in request_chunks(days)]


# ------------------------------------------------------------------------------------------- bodies
def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} overflows a 64-bit float")
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"integer {text[:40]} does not fit 64 bits")
    return value


def data_records(text: str | None, list_hint: str = "un-ranged endpoint?") -> tuple[list | None, str | None]:
    """The `data` records of a NESO body, or why there are none usable: empty, truncated JSON, NaN or
    out-of-range numbers, `{}`, an error object, `data` missing, not a list or empty. Shared by every NESO
    endpoint's client (national, generation, regional)."""
    if text is None or not text.strip():
        return None, "empty body"
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int64)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg} at character {exc.pos} of {len(text)}; truncated body?)"
    except ValueError as exc:  # NaN, Infinity, 1e400, 2**64: Python accepts them, the silver parser does not
        return None, f"invalid JSON ({exc})"
    if not isinstance(payload, dict):
        return None, f"JSON {type(payload).__name__} instead of an object"
    if not payload:
        return None, "empty JSON object {}"
    if "error" in payload:
        err = payload["error"]
        if isinstance(err, dict):
            return None, f"API error {err.get('code', '?')}: {err.get('message', '')}".strip()
        return None, f"API error: {err}"
    data = payload.get("data")
    if data is None:
        return None, "no 'data' member"
    if not isinstance(data, list):
        return None, f"'data' is a {type(data).__name__}, not a list of half-hours ({list_hint})"
    if not data:
        return None, "'data' is an empty list"
    return data, None


def regional_usability_problem(text: str | None) -> str | None:
    """Why a regional body cannot be used (None when it can): the NESO body rules, then the regions
    (regional data is forecast only, never `actual`)."""
    data, problem = data_records(text, list_hint="postcode/region endpoint?")
    if problem:
        return problem
    first = data[0]
    if not isinstance(first, dict) or "from" not in first or not isinstance(first.get("regions"), list):
        return "records lack 'from'/'regions'"
    return None


def usability_problem(text: str | None, endpoint: str = INTENSITY) -> str | None:
    """Why a body of `endpoint` cannot be used (None when it can)."""
    if endpoint == REGIONAL:
        return regional_usability_problem(text)
    data, problem = data_records(text)
    if problem:
        return problem
    member = "intensity" if endpoint == INTENSITY else "generationmix"
    first = data[0]
    if not isinstance(first, dict) or "from" not in first or member not in first:
        return f"records lack 'from'/'{member}'"
    return None


def forecast_from(now: dt.datetime) -> dt.datetime:
    """The `{from}` of a forecast request made at `now`: the start of the half-hour in progress plus the
    one-minute boundary shift, so the first record is the period in progress (and every request within one
    half-hour has the same URL: an identical refetch is the same bronze row)."""
    now = now.astimezone(UTC)
    start = now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0)
    return start + BOUNDARY_SHIFT


def forecast_path(endpoint: str, now: dt.datetime) -> str:
    """`/intensity/{from}/fw48h` or `/regional/intensity/{from}/fw48h` for a request made at `now`."""
    if endpoint not in FORECAST_ENDPOINTS:
        raise ValueError(f"forecast endpoint must be one of {', '.join(map(repr, FORECAST_ENDPOINTS))}, not {endpoint!r}")
    return f"/{endpoint}/{api_time(forecast_from(now))}/fw48h"


@dataclass(frozen=True)
class FetchedResponse:
    """One API answer (or failed request) and the UK days it was asked for: a bronze row per day."""

    endpoint: str
    request_url: str
    days: tuple[dt.date, ...]
    fetched_at: dt.datetime
    http_status: int | None
    body: str
    attempts: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @cached_property
    def content_hash(self) -> str:  # once per answer, not once per day of it (a bronze row each)
        return content_hash(self.body)


def fetch_response(
    http: HttpSession,
    base_url: str,
    endpoint: str,
    path: str,
    days: Sequence[dt.date],
    problem_of: Callable[[str | None], str | None],
) -> FetchedResponse:
    """One NESO request as bronze keeps it. Unusable bodies (`problem_of`) are retried by the session; a
    request that fails for good comes back with `problem` set and whatever response arrived, never raised."""
    verdicts: dict[str | None, str | None] = {}  # body -> its problem: the final body is not parsed a second time

    def judged(text: str | None) -> str | None:
        if text not in verdicts:
            verdicts[text] = problem_of(text)
        return verdicts[text]

    try:
        resp: HttpResponse = http.get(base_url, path, source=SOURCE, retry_if=lambda r: judged(r.text))
    except HttpError as exc:
        last = exc.response
        return FetchedResponse(
            endpoint=endpoint,
            request_url=exc.url,
            days=tuple(days),
            fetched_at=last.fetched_at if last else dt.datetime.now(UTC),
            http_status=last.status if last else None,
            body=last.text if last else "",
            attempts=last.attempts if last else 0,
            problem=str(exc),
        )
    problem = judged(resp.text)  # replay answers are not retried: check them too
    return FetchedResponse(
        endpoint=endpoint,
        request_url=resp.url,
        days=tuple(days),
        fetched_at=resp.fetched_at,
        http_status=resp.status,
        body=resp.text,
        attempts=resp.attempts,
        problem=f"GET {resp.url}: {problem}" if problem else None,
    )


class NesoClient(ConfigurableResource):
    """NESO Carbon Intensity API client for the national intensity, the generation mix and the regional
    intensity: range request chunks, the one-minute shift, outage detection. The HTTP session is a nested
    resource (`http`), configured where the client is built (the poller's client has its own, quicker one)."""

    http: HttpSession = Field(description="The HTTP session (timeouts, retries, politeness, replay).")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API base URL (NESO_API_BASE_URL).")
    max_days_per_request: int = Field(default=MAX_DAYS_PER_REQUEST, description="Days per range request (API max 14).")

    def _get(self, endpoint: str, path: str, days: Sequence[dt.date]) -> FetchedResponse:
        return fetch_response(self.http, self.base_url, endpoint, path, days, lambda text: usability_problem(text, endpoint))

    def fetch_days(self, endpoint: str, days: Sequence[dt.date], stop_on_failure: bool = True) -> list[FetchedResponse]:
        """Every response needed for the UK days `days` from `/intensity`, `/generation` or
        `/regional/intensity` ranges.

        Never raises for an API failure: a failed request comes back with `problem` set (and whatever
        response arrived), so the caller can keep it and fail visibly. With `stop_on_failure` no further
        chunks are requested after a failure.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(map(repr, ENDPOINTS))}, not {endpoint!r}")
        out = []
        for chunk in request_chunks(days, self.max_days_per_request):
            fetched = self._get(endpoint, chunk_path(endpoint, chunk), chunk)
            out.append(fetched)
            if stop_on_failure and not fetched.ok:
                break
        return out

    def fetch_forecast(self, endpoint: str, now: dt.datetime) -> FetchedResponse:
        """The 48-hour forecast (`/{endpoint}/{from}/fw48h`, national or regional) as published at `now`, for
        the UK day of `now`. Never raises for an API failure (the answer comes back with `problem` set)."""
        return self._get(endpoint, forecast_path(endpoint, now), [uk_today(now)])

    def fetch_intensity_for_date(self, day: dt.date) -> FetchedResponse:
        """`/intensity/date/{date}`: the UK local day as 46/48/50 half-hours."""
        return self._get(INTENSITY, f"/intensity/date/{day.isoformat()}", [day])

