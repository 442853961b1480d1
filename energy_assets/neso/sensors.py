"""Near-real-time polling of the NESO API: a sensor that requests runs only when the data changed.

Each tick fetches yesterday and today (UK days) from `/intensity` and `/generation` in one range request
each, fingerprints what it saw per settlement day (half-hour values only, so a refetch of identical data is
no change) and compares with its cursor. Changed days get a run of bronze -> silver -> gold for that
partition (run_key = day + fingerprint, so a change is never run twice). API errors skip the tick with the
cursor unchanged: the next tick tries again.
"""

import datetime as dt
import hashlib
import json

import polars as pl
from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from energy_assets import settings
from energy_assets.neso import transforms
from energy_assets.neso.assets import NESO_ASSETS
from energy_assets.neso.client import GENERATION, INTENSITY, NesoClient, uk_today

DEFAULT_INTERVAL_SECONDS = 60


def sensor_interval_seconds() -> int:
    raw = settings.get("NESO_SENSOR_INTERVAL_SECONDS", str(DEFAULT_INTERVAL_SECONDS))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"NESO_SENSOR_INTERVAL_SECONDS must be a whole number of seconds, not {raw!r}") from None
    if value < 1:
        raise ValueError("NESO_SENSOR_INTERVAL_SECONDS must be at least 1")
    return value


def day_fingerprints(intensity_bronze: pl.DataFrame, generation_bronze: pl.DataFrame, days: list[dt.date]) -> dict[str, str]:
    """SHA-256 per UK day of its half-hour values (intensity and mix), independent of fetch time and URL."""
    intensity = transforms.build_silver_intensity(transforms.parse_intensity(intensity_bronze)).select(
        "settlement_date", "period_start", "forecast_gco2_per_kwh", "actual_gco2_per_kwh", "intensity_index"
    )
    mix = transforms.build_silver_mix(generation_bronze).select("settlement_date", "period_start", "fuel", "percentage")
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


def evaluate(neso: NesoClient, cursor: str | None, now: dt.datetime | None = None) -> SensorResult | SkipReason:
    """One tick's decision (the sensor body, callable without Dagster's sensor machinery)."""
    today = uk_today(now)
    days = [today - dt.timedelta(days=1), today]
    responses = {endpoint: neso.fetch_days(endpoint, days) for endpoint in (INTENSITY, GENERATION)}
    failed = [r for rs in responses.values() for r in rs if not r.ok]
    if failed:
        return SkipReason(f"NESO API unusable, cursor kept, retrying next tick: {failed[0].problem}")
    seen = day_fingerprints(
        transforms.bronze_rows(responses[INTENSITY]), transforms.bronze_rows(responses[GENERATION]), days
    )
    previous = read_cursor(cursor)
    changed = [day for day in seen if previous.get(day) != seen[day]]
    new_cursor = json.dumps({"seen": seen}, sort_keys=True)
    if not changed:
        return SensorResult(skip_reason=SkipReason(f"no change for {', '.join(seen)}"), cursor=new_cursor)
    return SensorResult(
        run_requests=[
            RunRequest(partition_key=day, run_key=f"neso-{day}-{seen[day][:16]}", tags={"neso/trigger": "data_changed"})
            for day in changed
        ],
        cursor=new_cursor,
    )


@sensor(
    name="neso_carbon_intensity_poller",
    target=AssetSelection.assets(*NESO_ASSETS),
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Polls the NESO Carbon Intensity API (yesterday and today, UK days) every NESO_SENSOR_INTERVAL_SECONDS "
        "(default 60) and, only when the half-hour values changed, runs bronze -> silver -> gold for the changed "
        "day(s). API errors skip the tick and keep the cursor."
    ),
)
def neso_carbon_intensity_poller(context: SensorEvaluationContext, neso_poller: NesoClient):
    outcome = evaluate(neso_poller, context.cursor)
    if isinstance(outcome, SkipReason):
        context.log.warning(outcome.skip_message)
    return outcome
