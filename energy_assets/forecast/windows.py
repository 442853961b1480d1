"""Greenest windows: the best time to run a load of a given duration, from one forecast issue. Pure functions.

A window is `k` consecutive half-hours of the forecast (k = duration / 30 min), all present: periods are
counted in UTC, so a 2-hour window is four half-hours on every day, clock-change days (46 or 50 half-hours)
included, and only its local labels move. A window must end within the forecast (a window crossing the
horizon is not a candidate) and, when a deadline is given, by the deadline.

"Run now" is the window starting at the half-hour in progress at `now`. The uncertainty comes from the skill
table: the rolling-30-day RMSE at each half-hour's lead bucket; a window's standard error is taken as the mean
RMSE of its half-hours (errors of neighbouring half-hours are strongly correlated, so they are not averaged
away), the band is mean +/- 1.96 standard errors, and P(not better than now) = P(true saving <= 0) under normal
errors, treating the two windows' errors as independent (which overstates the doubt rather than hiding it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import polars as pl

from energy_assets.neso.client import PERIOD, UK, UTC

DURATIONS_MINUTES = (30, 60, 120, 240, 480)
Z95 = 1.959964


class WindowError(ValueError):
    """No window can be chosen: the reason names what is missing."""


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    mean_gco2_per_kwh: float
    sd_gco2_per_kwh: float | None  # None: no skill known for some of its lead times

    def label(self) -> str:
        """`02:30-04:30` in UK local time, with the date when the end is on a later day and the zone names
        when the clocks change inside the window (`00:00 GMT-03:00 BST`, `01:00 BST-01:00 GMT`)."""
        a, b = self.start.astimezone(UK), self.end.astimezone(UK)
        fa, fb = ("%H:%M %Z", "%H:%M %Z") if a.utcoffset() != b.utcoffset() else ("%H:%M", "%H:%M")
        if b.date() != a.date() and not (b.time() == dt.time(0) and b.date() == a.date() + dt.timedelta(days=1)):
            fb = "%d %b " + fb
        return f"{a.strftime(fa)}-{b.strftime(fb)}"


@dataclass(frozen=True)
class Choice:
    """The greenest window before the deadline and how it compares with running now."""

    issued_at: dt.datetime
    now: dt.datetime
    duration_minutes: int
    best: Window
    run_now: Window | None  # None: the half-hour in progress is not in the forecast
    p_not_better: float | None

    @property
    def saving_gco2_per_kwh(self) -> float | None:
        return None if self.run_now is None else self.run_now.mean_gco2_per_kwh - self.best.mean_gco2_per_kwh

    @property
    def saving_fraction(self) -> float | None:
        if self.run_now is None or self.run_now.mean_gco2_per_kwh == 0:
            return None  # never divide by a zero intensity
        return self.saving_gco2_per_kwh / self.run_now.mean_gco2_per_kwh

    @property
    def is_now(self) -> bool:
        return self.run_now is not None and self.best.start == self.run_now.start

    def describe(self) -> str:
        """`02:30-04:30, 61 g/kWh against 180 now, -66%`."""
        text = f"{self.best.label()}, {self.best.mean_gco2_per_kwh:.0f} g/kWh"
        if self.run_now is not None:
            text += f" against {self.run_now.mean_gco2_per_kwh:.0f} now"
            if self.saving_fraction is not None:
                text += f", {-self.saving_fraction:+.0%}"
        return text


def half_hour_floor(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 30, second=0, microsecond=0)


def parse_duration(text: str) -> int:
    """Minutes of `30m`, `90min`, `2h`, `1.5h`, `1h30m`, or a plain number of minutes; a multiple of 30."""
    import re

    t = text.strip().lower().replace(" ", "")
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+)(?:m|min)?)?", t)
    if not t or not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"duration {text!r}: use minutes or hours, e.g. 30m, 2h, 1h30m")
    minutes = float(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    if minutes <= 0 or minutes % 30:
        raise ValueError(f"duration {text!r} is {minutes:g} minutes: must be a positive multiple of 30 minutes (forecasts are half-hourly)")
    return int(minutes)


def _sd(buckets: Sequence[int], rmse: Mapping[int, float]) -> float | None:
    values = [rmse.get(b) for b in buckets]
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def choose(
    issue: pl.DataFrame,
    now: dt.datetime,
    duration_minutes: int,
    deadline: dt.datetime | None = None,
    rmse_by_bucket: Mapping[int, float] | None = None,
    earliest: dt.datetime | None = None,
) -> Choice:
    """The greenest window of `duration_minutes` starting at or after the half-hour in progress at `now` (or
    `earliest`, when later) and ending by `deadline` (else within the forecast), from one issue's rows
    (period_start, forecast_gco2_per_kwh, lead_bucket, issued_at) of one region. Raises `WindowError`."""
    if duration_minutes <= 0 or duration_minutes % 30:
        raise WindowError(f"duration {duration_minutes} min is not a positive multiple of 30 minutes")
    if issue.is_empty():
        raise WindowError("no forecast: the issue has no half-hours")
    rmse = rmse_by_bucket or {}
    k = duration_minutes // 30
    rows = issue.sort("period_start").select("period_start", "forecast_gco2_per_kwh", "lead_bucket").rows()
    starts = [r[0] for r in rows]
    index = {s: i for i, s in enumerate(starts)}
    horizon = starts[-1] + PERIOD
    first = half_hour_floor(max(now, earliest) if earliest else now)
    limit = min(deadline, horizon) if deadline else horizon

    def window_at(i: int) -> Window | None:
        if i + k > len(rows) or starts[i + k - 1] - starts[i] != PERIOD * (k - 1):
            return None  # crosses the horizon or a hole in the forecast
        part = rows[i : i + k]
        return Window(starts[i], starts[i] + PERIOD * k, sum(r[1] for r in part) / k, _sd([r[2] for r in part], rmse))

    candidates = [w for i, s in enumerate(starts) if s >= first and (w := window_at(i)) is not None and w.end <= limit]
    if not candidates:
        if first + PERIOD * k > horizon:
            raise WindowError(
                f"no {duration_minutes}-minute window fits between {first:%Y-%m-%d %H:%M}Z and the end of the forecast "
                f"({horizon:%Y-%m-%d %H:%M}Z)"
            )
        raise WindowError(f"no {duration_minutes}-minute window starts at or after {first:%Y-%m-%d %H:%M}Z and ends by {limit:%Y-%m-%d %H:%M}Z")
    best = min(candidates, key=lambda w: (round(w.mean_gco2_per_kwh, 9), w.start))
    now_start = half_hour_floor(now)
    run_now = window_at(index[now_start]) if now_start in index else None
    p = None
    if run_now is not None and best.start != run_now.start and best.sd_gco2_per_kwh is not None and run_now.sd_gco2_per_kwh is not None:
        spread = math.hypot(best.sd_gco2_per_kwh, run_now.sd_gco2_per_kwh)
        diff = run_now.mean_gco2_per_kwh - best.mean_gco2_per_kwh
        p = _normal_cdf(-diff / spread) if spread > 0 else float(diff <= 0)
    issued_at = issue["issued_at"][0] if "issued_at" in issue.columns else now
    return Choice(issued_at, now, duration_minutes, best, run_now, p)


GREENEST_SCHEMA = pl.Schema(
    {
        "region_id": pl.Int16,
        "region_shortname": pl.String,
        "issued_at": pl.Datetime("us", "UTC"),
        "duration_minutes": pl.Int32,
        "best_start": pl.Datetime("us", "UTC"),
        "best_end": pl.Datetime("us", "UTC"),
        "best_label_uk": pl.String,
        "best_mean_gco2_per_kwh": pl.Float64,
        "best_band_low_gco2_per_kwh": pl.Float64,
        "best_band_high_gco2_per_kwh": pl.Float64,
        "run_now_gco2_per_kwh": pl.Float64,
        "saving_gco2_per_kwh": pl.Float64,
        "saving_fraction": pl.Float64,
        "p_not_better_than_now": pl.Float64,
        "uncertainty_basis": pl.String,
        "problem": pl.String,
    }
)


def newest_issue(archive: pl.DataFrame) -> pl.DataFrame:
    """The rows of the newest issue of each region."""
    if archive.is_empty():
        return archive
    newest = archive.group_by("region_id").agg(pl.col("issued_at").max().alias("_newest"))
    return archive.join(newest, on="region_id").filter(pl.col("issued_at") == pl.col("_newest")).drop("_newest")


def greenest_windows(
    archive: pl.DataFrame, rmse: pl.DataFrame, durations: Sequence[int] = DURATIONS_MINUTES, deadline: dt.datetime | None = None
) -> pl.DataFrame:
    """Per region and duration, the greenest window of the newest issue, seen from its issue time."""
    latest = newest_issue(archive)
    rows = []
    for (region_id,), issue in sorted(latest.group_by("region_id"), key=lambda g: g[0]):
        issued = issue["issued_at"][0]
        by_bucket = {b: r for _, b, r in rmse.filter(pl.col("region_id") == region_id).rows()}
        for minutes in durations:
            base = {"region_id": region_id, "region_shortname": issue["region_shortname"][0], "issued_at": issued, "duration_minutes": minutes}
            try:
                c = choose(issue, issued, minutes, deadline, by_bucket)
            except WindowError as exc:
                rows.append({**base, "problem": str(exc)})
                continue
            sd = c.best.sd_gco2_per_kwh
            rows.append(
                {
                    **base,
                    "best_start": c.best.start,
                    "best_end": c.best.end,
                    "best_label_uk": c.best.label(),
                    "best_mean_gco2_per_kwh": c.best.mean_gco2_per_kwh,
                    "best_band_low_gco2_per_kwh": None if sd is None else max(0.0, c.best.mean_gco2_per_kwh - Z95 * sd),
                    "best_band_high_gco2_per_kwh": None if sd is None else c.best.mean_gco2_per_kwh + Z95 * sd,
                    "run_now_gco2_per_kwh": c.run_now.mean_gco2_per_kwh if c.run_now else None,
                    "saving_gco2_per_kwh": c.saving_gco2_per_kwh,
                    "saving_fraction": c.saving_fraction,
                    "p_not_better_than_now": c.p_not_better,
                    "uncertainty_basis": (
                        "no skill yet for these lead times" if sd is None else "rolling 30-day RMSE by lead time"
                    ) if not c.is_now else "the best window is now",
                }
            )
    return pl.DataFrame(rows, schema=GREENEST_SCHEMA)


def choice_record(c: Choice) -> dict:
    """A JSON-ready summary of a choice (CLI, run tags)."""
    out = {
        "issued_at": c.issued_at.isoformat(),
        "duration_minutes": c.duration_minutes,
        "best": {**{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in asdict(c.best).items()}, "label_uk": c.best.label()},
        "run_now_gco2_per_kwh": c.run_now.mean_gco2_per_kwh if c.run_now else None,
        "saving_gco2_per_kwh": c.saving_gco2_per_kwh,
        "saving_fraction": c.saving_fraction,
        "p_not_better_than_now": c.p_not_better,
    }
    return out
