"""Near-real-time polling of the NESO API: a sensor that requests runs only when the data changed.

Each tick fetches yesterday and today (UK days) from `/intensity` and `/generation` in one range request
each, fingerprints what it saw per settlement day (half-hour values only, so a refetch of identical data is
no change) and compares with its cursor. Changed days get a run of bronze -> silver -> gold for that
partition (run_key = day + fingerprint, so a change is never run twice). API errors skip the tick with the
cursor unchanged: the next tick tries again. The generation mix is auxiliary: an unusable mix answer
does not skip the tick (the day's fingerprint then holds no mix, and the mix arriving later is a change).
"""

import datetime as dt
import hashlib
import json

import polars as pl
from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    in_process_executor,
    sensor,
)

from energy_assets import sensor_cadence, settings
from energy_assets.neso import transforms
from energy_assets.neso.assets import NESO_ASSETS
from energy_assets.neso.client import GENERATION, INTENSITY, NesoClient, uk_today

DEFAULT_INTERVAL_SECONDS = 60
TRIGGER_TAG = "neso/trigger"

# Bronze -> silver -> gold of one UK day, run in one process: a refresh is a few seconds of work, and
# a subprocess per step (the default executor) would spend far longer starting Python than working.
neso_refresh_job = define_asset_job(
    "neso_refresh_job",
    selection=AssetSelection.assets(*NESO_ASSETS),
    executor_def=in_process_executor,
    description="Refresh bronze, silver and gold NESO carbon intensity for the changed UK day(s); started by the poller.",
)


def sensor_interval_seconds() -> int:
    return settings.graph().neso_sensor_interval_seconds


def day_fingerprints(intensity_bronze: pl.DataFrame, generation_bronze: pl.DataFrame, days: list[dt.date]) -> dict[str, str]:
    """SHA-256 per UK day of its half-hour values (intensity and mix), independent of fetch time and URL."""
    valid, _ = transforms.split_intensity(transforms.parse_intensity(intensity_bronze))
    intensity = transforms.build_silver_intensity(valid).select(
        "settlement_date", "period_start", "forecast_gco2_per_kwh", "actual_gco2_per_kwh", "intensity_index"
    )
    mix = transforms.build_silver_mix(generation_bronze).select("settlement_date", "period_start", "fuel", "generation_fraction")
    out = {}
    for day in days:  # two days per tick
        digest = hashlib.sha256()
        for frame in (intensity, mix):
            part = frame.filter(pl.col("settlement_date") == day).sort(frame.columns[1:])
            digest.update(part.write_csv().encode())
        out[day.isoformat()] = digest.hexdigest()
    return out


def read_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        seen = json.loads(cursor).get("seen", {})
    except (json.JSONDecodeError, AttributeError):
        return {}  # an unreadable cursor means "seen nothing": the next tick refreshes both days
    return {str(k): str(v) for k, v in seen.items()} if isinstance(seen, dict) else {}


def evaluate(
    neso: NesoClient, cursor: str | None, now: dt.datetime | None = None, pending: frozenset[str] = frozenset()
) -> SensorResult | SkipReason:
    """One tick's decision (the sensor body, callable without Dagster's sensor machinery).

    `pending`: days that already have a refresh run waiting to start; that run will fetch the newest data
    when it starts, so no second run is requested for them.
    """
    today = uk_today(now)
    days = [today - dt.timedelta(days=1), today]
    responses = {endpoint: neso.fetch_days(endpoint, days) for endpoint in (INTENSITY, GENERATION)}
    failed = [r for r in responses[INTENSITY] if not r.ok]
    if failed:
        return SkipReason(f"NESO API unusable, cursor kept, retrying next tick: {failed[0].problem}")
    # The generation mix is auxiliary (energy_assets.bronze.AUXILIARY_RULE): an unusable mix does not hold the
    # intensity refresh back; its unusable answer counts as "no mix" in the fingerprint, so the mix arriving
    # later is a change that triggers a run.
    seen = day_fingerprints(
        transforms.bronze_rows(responses[INTENSITY]), transforms.bronze_rows(responses[GENERATION]), days
    )
    previous = read_cursor(cursor)
    changed = [day for day in seen if previous.get(day) != seen[day]]
    new_cursor = json.dumps({"seen": seen}, sort_keys=True)
    to_run = [day for day in changed if day not in pending]
    if not to_run:
        reason = f"no change for {', '.join(seen)}" if not changed else f"changed {', '.join(changed)}: a refresh is already queued"
        return SensorResult(skip_reason=SkipReason(reason), cursor=new_cursor)
    return SensorResult(
        run_requests=[
            RunRequest(
                partition_key=day,
                run_key=f"neso-{day}-{seen[day][:16]}",
                tags={TRIGGER_TAG: "data_changed", "energy_assets/api": "neso"},
            )
            for day in to_run
        ],
        cursor=new_cursor,
    )


def pending_days(context: SensorEvaluationContext) -> frozenset[str]:
    """Days with a refresh run from this sensor that has not started yet."""
    runs = context.instance.get_runs(
        filters=RunsFilter(
            job_name=neso_refresh_job.name,
            statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED],
            tags={TRIGGER_TAG: "data_changed"},
        ),
        limit=20,
    )
    return frozenset(r.tags.get("dagster/partition", "") for r in runs)


@sensor(
    name="neso_carbon_intensity_poller",
    job=neso_refresh_job,
    minimum_interval_seconds=sensor_cadence.minimum_interval_seconds(sensor_interval_seconds()),  # ticks every N s
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Polls the NESO Carbon Intensity API (yesterday and today, UK days) every NESO_SENSOR_INTERVAL_SECONDS "
        "(default 60) and, only when the half-hour values changed, runs bronze -> silver -> gold for the changed "
        "day(s). Intensity API errors skip the tick and keep the cursor; an unusable generation mix does not (it is auxiliary). "
        f"{sensor_cadence.SAID_IN_DESCRIPTIONS}"
    ),
)
def neso_carbon_intensity_poller(context: SensorEvaluationContext, neso_poller: NesoClient):
    outcome = evaluate(neso_poller, context.cursor, pending=pending_days(context))
    if isinstance(outcome, SkipReason):
        context.log.warning(outcome.skip_message)
    return outcome
