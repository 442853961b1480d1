"""The one HTTP session every API client uses.

`HttpSession` is a Dagster resource over `requests.Session` with:

- connect and read timeouts;
- retries with exponential backoff and full jitter on connection errors, timeouts, 408, 429 and 5xx,
  honouring `Retry-After` (seconds or an HTTP date), and on responses a client declares unusable
  (`retry_if`, e.g. HTTP 200 with an empty `{}` body), all within a bounded total wait;
- a descriptive User-Agent and a polite minimum interval between requests to the same host;
- errors that name the request (URL with secret query parameters redacted; headers are never shown)
  and the status;
- a replay mode (`ENERGY_ASSETS_SOURCE=replay`) answering from recorded-format sample payloads under
  `data/samples/<source>/` instead of the network, so the demo runs offline.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from energy_assets import settings

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger("energy_assets.http")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "energy_assets/0.1 (+https://github.com/energy-assets/energy_assets; Dagster lakehouse)"
_SECRET_PARAM = re.compile(r"(key|token|secret|password|auth)", re.IGNORECASE)
_SECRET_QUERY = re.compile(r"([?&/][^=&?\s/]*(?:key|token|secret|password|auth)[^=&?\s/]*)=[^&\s\"]*", re.IGNORECASE)


class _RedactSecretQuery(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included: mask secret-looking parameters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_QUERY.sub(r"\1=***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSecretQuery())


@dataclass(frozen=True)
class HttpResponse:
    """What came back: enough to store verbatim in bronze. `url` never holds secrets."""

    url: str
    status: int
    text: str
    headers: Mapping[str, str]
    fetched_at: dt.datetime
    attempts: int = 1
    content_type: str = ""

    def json(self):
        import json

        return json.loads(self.text)


class HttpError(RuntimeError):
    """A request failed for good. `response` holds the last response, when one arrived."""

    def __init__(self, message: str, *, url: str, status: int | None = None, response: HttpResponse | None = None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.response = response


class ReplayMissingError(HttpError):
    pass


def safe_url(url: str, params: Mapping[str, object] | None = None) -> str:
    """The URL with query parameters whose names look secret replaced by `***`."""
    pairs = []
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if parts.query:
        for item in parts.query.split("&"):
            name, _, value = item.partition("=")
            pairs.append((name, "***" if _SECRET_PARAM.search(name) else value))
    for name, value in (params or {}).items():
        pairs.append((name, "***" if _SECRET_PARAM.search(name) else str(value)))
    return base + ("?" + urlencode(pairs, safe=":,*") if pairs else "")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def replay_path(samples_dir: Path, source: str, path: str, params: Mapping[str, object] | None) -> Path:
    """Where a recorded payload for this request lives: `<samples>/<source>/<path>[__<query>].json`.

    Characters outside `[A-Za-z0-9._-]` in each path segment and in the query become `_`, so the mapping
    is the same on every file system.
    """
    clean = lambda s: re.sub(r"[^A-Za-z0-9._-]", "_", s)  # noqa: E731
    segments = [clean(s) for s in path.strip("/").split("/") if s and s not in (".", "..")]
    if not segments:
        segments = ["index"]
    name = segments[-1]
    if params:
        name += "__" + clean("&".join(f"{k}={v}" for k, v in sorted(params.items())))
    return samples_dir.joinpath(clean(source), *segments[:-1], name + ".json")


class _HostThrottle:
    """Keeps at least `interval` seconds between the starts of requests to one host, across every process of
    this user on this machine: runs for different partitions execute side by side, and with
    ENERGY_ASSETS_EXECUTOR=multiprocess the steps of one run are processes of their own (a backfill's NESO
    intensity and generation steps call the same host at once), so a per-process spacing would let them make
    two requests a second or more.

    Each host has a small file under `directory` holding the time its next request may start. A caller claims
    the next slot under an exclusive `flock` on that file, moves it on by `interval` and sleeps until its slot
    outside the lock, so callers queue in the order they asked. Threads of one process also take turns on a
    lock of their own (flock is per open file, and every call opens its own). Times are the system-wide
    monotonic clock (`time.monotonic`, the same in every process until a reboot); a slot more than
    `STALE_S` ahead can only come from before a reboot and is ignored. Where `fcntl` does not exist
    (Windows) or the slot file cannot be written, the spacing holds within one process only. Processes on
    other machines are not covered.
    """

    STALE_S = 600.0

    def __init__(self, directory: Path | None = None):
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._directory = directory
        self._said_local: set[str] = set()  # hosts whose fallback to in-process spacing was logged

    def _path(self, host: str) -> Path:
        directory = self._directory or Path(tempfile.gettempdir()) / f"energy_assets-http-{_user_id()}"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return directory / (re.sub(r"[^A-Za-z0-9._-]", "_", host) or "_")

    def _claim(self, host: str, interval: float, now: float) -> float:
        """The start of this caller's slot, the next one moved on by `interval`."""
        if fcntl is not None:
            try:
                return self._claim_shared(host, interval, now)
            except OSError as exc:  # e.g. a read-only temp directory: keep the spacing within this process
                # said once per host and process (a year's backfill makes dozens of requests), then at debug level
                level = logging.DEBUG if host in self._said_local else logging.WARNING
                self._said_local.add(host)
                log.log(level, "HTTP politeness to %s kept within this process only: %s", host, exc)
        start = max(now, self._next.get(host, 0.0))
        self._next[host] = start + interval
        return start

    def _claim_shared(self, host: str, interval: float, now: float) -> float:
        fd = os.open(self._path(host), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                next_at = float(os.pread(fd, 64, 0).decode() or 0.0)
            except ValueError:  # a file cut short by a crash: no slot is held
                next_at = 0.0
            start = now if next_at > now + self.STALE_S else max(now, next_at)
            data = repr(start + interval).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            return start
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def wait(self, host: str, interval: float) -> None:
        if interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = self._claim(host, interval, now)
        if start > now:
            time.sleep(start - now)


def _user_id() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"  # no getuid: no fcntl either, the files are unused


_throttle = _HostThrottle()


SOURCE_TAG = "energy_assets/source"


class HttpSession(ConfigurableResource):
    """Shared HTTP session: timeouts, bounded retries with backoff, politeness, replay."""

    user_agent: str = Field(default=USER_AGENT)
    connect_timeout_s: float = Field(default=5.0)
    read_timeout_s: float = Field(default=30.0)
    max_attempts: int = Field(default=5, description="Attempts per request, the first included.")
    backoff_base_s: float = Field(default=1.0, description="First backoff; doubles each retry, with jitter.")
    backoff_max_s: float = Field(default=30.0, description="Largest single backoff.")
    max_total_wait_s: float = Field(default=120.0, description="Upper bound on the time spent waiting between attempts.")
    min_interval_s: float = Field(default=1.0, description="Minimum time between requests to one host.")
    source_mode: str = Field(
        default="",
        description="'live' or 'replay'; empty (the default): ENERGY_ASSETS_SOURCE at request time, else live.",
    )
    samples_dir: str = Field(
        default="", description="Replay payloads; empty (the default): ENERGY_ASSETS_SAMPLES_DIR at request time, else data/samples."
    )

    _session: requests.Session | None = PrivateAttr(default=None)

    def setup_for_execution(self, context) -> None:
        """Tag the run with the source mode it really uses (`energy_assets/source`: live or replay), so the UI's
        run list shows which runs called the APIs and which answered from the samples."""
        run = getattr(context, "run", None)
        if context.instance is not None and run is not None:
            context.instance.add_run_tags(run.run_id, {SOURCE_TAG: self.mode()})

    def mode(self) -> str:
        """The source mode in force: the configured one, else the process environment's, read now (not at
        import), so a resource built before ENERGY_ASSETS_SOURCE was set still follows it."""
        return self.source_mode or settings.source_mode()

    def politeness_s(self) -> float:
        """`min_interval_s`, lowered (never raised) by `ENERGY_ASSETS_HTTP_MIN_INTERVAL_SECONDS` when set, read now:
        for a local fake API, where politeness protects nobody."""
        lowered = settings.http_min_interval_seconds()
        return self.min_interval_s if lowered is None else max(0.0, min(self.min_interval_s, lowered))

    def replay_dir(self) -> Path:
        return Path(self.samples_dir or settings.samples_dir())

    def _requests(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
            session.headers["Accept"] = "application/json"
            self._session = session
        return self._session

    def get(
        self,
        base_url: str,
        path: str,
        *,
        source: str,
        params: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        retry_if: Callable[[HttpResponse], str | None] | None = None,
        raise_for_status: bool = True,
    ) -> HttpResponse:
        """GET `base_url + path`. Retries transient failures; raises `HttpError` naming the request.

        `retry_if(response)` returns a reason when an HTTP 200 response is unusable but worth retrying.
        With `raise_for_status`, a final non-2xx response raises `HttpError` carrying that response.
        """
        url = base_url.rstrip("/") + "/" + path.lstrip("/")
        shown = safe_url(url, params)
        mode = self.mode()
        if mode == settings.REPLAY:
            return self._replay(source, path, params, shown)
        if mode != settings.LIVE:
            raise ValueError(f"source_mode must be 'live' or 'replay', not {mode!r}")

        host = urlsplit(url).netloc
        started = time.monotonic()
        waited = 0.0
        reason = ""
        last: HttpResponse | None = None
        for attempt in range(1, max(1, self.max_attempts) + 1):
            _throttle.wait(host, self.politeness_s())
            retry_after = None
            try:
                raw = self._requests().get(
                    url, params=params, headers=dict(headers or {}), timeout=(self.connect_timeout_s, self.read_timeout_s)
                )
            except requests.Timeout:
                reason = f"timed out (connect {self.connect_timeout_s}s, read {self.read_timeout_s}s)"
            except requests.ConnectionError as exc:
                reason = f"connection failed ({type(exc).__name__})"
            else:
                last = HttpResponse(
                    url=shown,
                    status=raw.status_code,
                    text=raw.text,
                    headers=dict(raw.headers),
                    fetched_at=dt.datetime.now(dt.timezone.utc),
                    attempts=attempt,
                    content_type=raw.headers.get("Content-Type", ""),
                )
                if raw.status_code in RETRY_STATUSES:
                    reason = f"HTTP {raw.status_code}"
                    retry_after = parse_retry_after(raw.headers.get("Retry-After"))
                elif 200 <= raw.status_code < 300:
                    problem = retry_if(last) if retry_if else None
                    if not problem:
                        return last
                    reason = f"HTTP {raw.status_code} but {problem}"
                else:
                    if raise_for_status:
                        raise HttpError(
                            f"GET {shown} answered HTTP {raw.status_code}: {_snippet(raw.text)}",
                            url=shown,
                            status=raw.status_code,
                            response=last,
                        )
                    return last
            if attempt >= self.max_attempts:
                break
            delay = self._backoff(attempt) if retry_after is None else retry_after
            if waited + delay > self.max_total_wait_s:
                reason += f"; next retry would exceed the {self.max_total_wait_s:.0f}s wait budget"
                break
            log.warning("GET %s: %s; retry %d in %.1fs", shown, reason, attempt, delay)
            time.sleep(delay)
            waited += delay
        elapsed = time.monotonic() - started
        raise HttpError(
            f"GET {shown} failed after {attempt} attempt(s) in {elapsed:.1f}s: {reason}",
            url=shown,
            status=last.status if last else None,
            response=last,
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # jitter keeps pollers from retrying in lockstep

    def _replay(self, source: str, path: str, params, shown: str) -> HttpResponse:
        file = replay_path(self.replay_dir(), source, path, params)
        if not file.is_file():
            raise ReplayMissingError(
                f"replay: no recorded payload for GET {shown} (expected {file}); "
                "unset ENERGY_ASSETS_SOURCE to use the live API",
                url=shown,
            )
        return HttpResponse(
            url=shown,
            status=200,
            text=file.read_text(encoding="utf-8"),
            headers={"Content-Type": "application/json", "X-Replayed-From": file.name},
            fetched_at=dt.datetime.now(dt.timezone.utc),
            content_type="application/json",
        )


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "..."

