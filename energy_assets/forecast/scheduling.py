"""Carbon-aware scheduling: when to start a job of a given duration within a daily window. Pure: the decision is
a function of `now`, the newest forecast issue and the window, so it is tested on a fixed clock.

A *cycle* is one occurrence of the daily window [earliest, deadline) in UK local time (a deadline at or before
the earliest start is on the next day). Within a cycle the job is launched once:

- at the start of the greenest window that ends by the deadline (`run_greenest`);
- now, when no full window is left before the deadline (`run_deadline`);
- now, when the forecast is missing or stale (`fallback_no_forecast`, `fallback_stale_forecast`): a job is never
  held back for want of a forecast, and the decision says so.

Otherwise it waits, and says for what: "waiting for 02:30-04:30, 61 g/kWh against 180 now, -66%".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from energy_assets.forecast.windows import Choice, WindowError, choice_record, choose, half_hour_floor
from energy_assets.neso.client import UK

RUN_GREENEST = "run_greenest"
RUN_DEADLINE = "run_deadline"
FALLBACK_NO_FORECAST = "fallback_no_forecast"
FALLBACK_STALE = "fallback_stale_forecast"
WAIT = "wait"
OUTSIDE = "outside_window"
DEFAULT_MAX_FORECAST_AGE = dt.timedelta(hours=2)
TAG_PREFIX = "carbon_aware"  # Dagster tag keys allow one namespace section


@dataclass(frozen=True)
class Cycle:
    day: dt.date  # the UK day the window opens on
    start: dt.datetime  # UTC
    deadline: dt.datetime  # UTC


@dataclass(frozen=True)
class Decision:
    action: str  # one of the constants above
    reason: str
    cycle: Cycle | None
    choice: Choice | None = None

    @property
    def launch(self) -> bool:
        return self.action in (RUN_GREENEST, RUN_DEADLINE, FALLBACK_NO_FORECAST, FALLBACK_STALE)

    def tags(self) -> dict[str, str]:
        """Run tags recording the decision."""
        tags = {f"{TAG_PREFIX}/decision": self.action, f"{TAG_PREFIX}/reason": self.reason[:200]}
        if self.cycle:
            tags[f"{TAG_PREFIX}/deadline"] = self.cycle.deadline.isoformat()
        if self.choice:
            c = self.choice
            tags.update(
                {
                    f"{TAG_PREFIX}/issued_at": c.issued_at.isoformat(),
                    f"{TAG_PREFIX}/window": f"{c.best.start.isoformat()}/{c.best.end.isoformat()}",
                    f"{TAG_PREFIX}/window_gco2_per_kwh": f"{c.best.mean_gco2_per_kwh:.1f}",
                }
            )
            if c.run_now is not None:
                tags[f"{TAG_PREFIX}/run_now_gco2_per_kwh"] = f"{c.run_now.mean_gco2_per_kwh:.1f}"
        return tags

    def record(self) -> dict:
        return {"action": self.action, "reason": self.reason, "choice": choice_record(self.choice) if self.choice else None}


def cycle_at(now: dt.datetime, earliest: dt.time, deadline: dt.time) -> Cycle | None:
    """The cycle whose window holds `now`, or None outside every window."""
    local = now.astimezone(UK)
    for day in (local.date() - dt.timedelta(days=1), local.date()):
        start = dt.datetime.combine(day, earliest, tzinfo=UK)
        end_day = day + dt.timedelta(days=1) if deadline <= earliest else day
        end = dt.datetime.combine(end_day, deadline, tzinfo=UK)
        if start <= local < end:
            return Cycle(day, start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc))
    return None


def decide(
    now: dt.datetime,
    issue: pl.DataFrame,
    duration_minutes: int,
    earliest: dt.time,
    deadline: dt.time,
    max_forecast_age: dt.timedelta = DEFAULT_MAX_FORECAST_AGE,
    rmse_by_bucket: dict[int, float] | None = None,
) -> Decision:
    """What to do at `now` for one cycle, from `issue` (the newest issue's rows of the job's region)."""
    cycle = cycle_at(now, earliest, deadline)
    if cycle is None:
        return Decision(OUTSIDE, f"outside the window {earliest:%H:%M}-{deadline:%H:%M} (UK time)", None)
    by = f"by {cycle.deadline.astimezone(UK):%H:%M}"
    if issue.is_empty():
        return Decision(FALLBACK_NO_FORECAST, f"no forecast in the lake: running now (not carbon-aware), to finish {by}", cycle)
    issued = issue["issued_at"].max()
    age = now - issued
    if age > max_forecast_age:
        return Decision(
            FALLBACK_STALE,
            f"newest forecast is {age.total_seconds() / 3600:.1f} h old (issued {issued:%Y-%m-%d %H:%M}Z, limit "
            f"{max_forecast_age.total_seconds() / 3600:g} h): running now (not carbon-aware)",
            cycle,
        )
    try:
        choice = choose(issue, now, duration_minutes, cycle.deadline, rmse_by_bucket)
    except WindowError as exc:
        return Decision(RUN_DEADLINE, f"no full {duration_minutes}-minute window left before the deadline ({exc}): running now", cycle)
    if choice.best.start <= half_hour_floor(now):
        return Decision(RUN_GREENEST, f"greenest window is now: {choice.describe()}", cycle, choice)
    return Decision(WAIT, f"waiting for {choice.describe()}", cycle, choice)
