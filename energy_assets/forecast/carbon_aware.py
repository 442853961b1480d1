"""Carbon-aware sensors: a factory that launches a job at the greenest window before its deadline.

    from energy_assets.forecast.carbon_aware import CarbonAwareSpec, carbon_aware_sensor

    my_sensor = carbon_aware_sensor(
        CarbonAwareSpec(name="my_job_carbon_aware", region_id=13, duration_minutes=120,
                        earliest=dt.time(22, 0), deadline=dt.time(7, 0)),
        job=my_job,
    )

Every tick reads the newest forecast issue of the region from the lake (silver/neso_forecast_archive, filled by
neso_forecast_archive_sensor) and the skill at each lead time (gold/neso_forecast_skill), and decides with
`energy_assets.forecast.scheduling.decide`. One run per cycle (cursor and run key: the cycle's day); its tags
record the decision (`carbon_aware/*`); skip reasons say what the sensor is waiting for. Missing
or stale forecasts fall back to running now, and the reason and tags say so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from energy_assets.forecast import skill
from energy_assets.forecast.archive import ARCHIVE_SCHEMA
from energy_assets.forecast.scheduling import DEFAULT_MAX_FORECAST_AGE, Decision, decide
from energy_assets.forecast.windows import newest_issue
from energy_assets.lake.resource import LakeResource
from energy_assets.lake.store import Lake
from energy_assets.neso.client import UTC, uk_today


@dataclass(frozen=True)
class CarbonAwareSpec:
    name: str
    region_id: int  # 0 national, 1..17 DNO regions, 18 GB
    duration_minutes: int
    earliest: dt.time  # UK local time the window opens
    deadline: dt.time  # UK local time the job must have finished by (next day when not after `earliest`)
    max_forecast_age: dt.timedelta = DEFAULT_MAX_FORECAST_AGE
    partition_key: Callable[[dt.date], str] | None = None  # the run's partition, from the cycle's day
    # What the job waits for besides the window (say, the day's files): given the cycle's day, None when ready,
    # else what it is waiting for. The greenest window is then chosen from the moment it is ready.
    ready: Callable[[dt.date], str | None] | None = None


def newest_region_issue(lake: Lake, region_id: int, now: dt.datetime) -> tuple[pl.DataFrame, dict[int, float]]:
    """The newest issue's rows of `region_id` issued by `now` (from the last two UK days of issue) and the
    rolling RMSE per lead bucket of that region."""
    today = uk_today(now)
    where = (pl.col("issue_date") >= today - dt.timedelta(days=2)) & (pl.col("region_id") == region_id)
    rows = lake.read("silver/neso_forecast_archive", where=where, schema=ARCHIVE_SCHEMA)
    rows = rows.filter(pl.col("issued_at") <= now)
    rmse_rows = skill.latest_rolling_rmse(lake.read("gold/neso_forecast_skill", where=pl.col("region_id") == region_id, schema=skill.SKILL_SCHEMA))
    return newest_issue(rows), {b: r for _, b, r in rmse_rows.rows()}


def evaluate(spec: CarbonAwareSpec, now: dt.datetime, cursor: str | None, issue: pl.DataFrame, rmse: dict[int, float]) -> tuple[SensorResult, Decision]:
    """One tick (pure): the decision, and the run request or skip reason with the new cursor."""
    launched = json.loads(cursor).get("launched") if cursor else None
    decision = decide(now, issue, spec.duration_minutes, spec.earliest, spec.deadline, spec.max_forecast_age, rmse)
    if decision.cycle is None:
        return SensorResult(skip_reason=SkipReason(decision.reason), cursor=cursor), decision
    day = decision.cycle.day.isoformat()
    if launched == day:
        return SensorResult(skip_reason=SkipReason(f"already launched for the window opening {day}"), cursor=cursor), decision
    waiting_for = spec.ready(decision.cycle.day) if spec.ready else None
    if waiting_for:
        return SensorResult(skip_reason=SkipReason(f"{waiting_for}; then: {decision.reason}"), cursor=cursor), decision
    if not decision.launch:
        return SensorResult(skip_reason=SkipReason(decision.reason), cursor=cursor), decision
    request = RunRequest(
        run_key=f"{spec.name}-{day}",
        tags=decision.tags(),
        partition_key=spec.partition_key(decision.cycle.day) if spec.partition_key else None,
    )
    return SensorResult(run_requests=[request], cursor=json.dumps({"launched": day})), decision


def carbon_aware_sensor(spec: CarbonAwareSpec, *, job=None, target=None, minimum_interval_seconds: int = 300,
                        default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED, description: str | None = None):  # fmt: skip
    """A sensor launching `job` (or `target`) once per daily window at the start of its greenest part."""

    @sensor(
        name=spec.name,
        job=job,
        target=target,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description
        or (
            f"Carbon-aware: launches once per window {spec.earliest:%H:%M}-{spec.deadline:%H:%M} (UK time) at the start of the "
            f"greenest {spec.duration_minutes}-minute window of region {spec.region_id}'s newest NESO forecast; runs now "
            "when forecasts are missing or stale (and says so). Needs neso_forecast_archive_sensor running."
        ),
    )
    def _sensor(context: SensorEvaluationContext, lake: LakeResource):
        now = dt.datetime.now(UTC)
        issue, rmse = newest_region_issue(lake.lake(), spec.region_id, now)
        result, decision = evaluate(spec, now, context.cursor, issue, rmse)
        context.log.info(f"{spec.name}: {decision.action}: {decision.reason}")
        return result

    return _sensor
