"""A sensor that polls `latest` per zone and requests runs for the (day, zone) partitions that changed, and a
daily schedule that re-fetches the days Electricity Maps may have revised."""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from energy_assets import sensor_cadence, settings
from energy_assets.electricity_maps.client import KINDS, ElectricityMapsError, ElectricityMapsResource, MissingApiKeyError
from energy_assets.partitions import ELECTRICITY_MAPS_START_DATE, electricity_maps_zones

INTERVAL_ENV = "ELECTRICITY_MAPS_SENSOR_INTERVAL_SECONDS"
DEFAULT_INTERVAL_S = 300


def sensor_interval_s() -> int:
    value = settings.graph().electricity_maps_sensor_interval_seconds
    if value < 30:
        raise ValueError(f"{INTERVAL_ENV} must be at least 30 seconds (got {value}); the API has request quotas")
    return value


def parse_cursor(cursor: str | None) -> dict[str, dict[str, list[str]]]:
    """`{zone: {kind: [datetime, updatedAt]}}`; an unreadable cursor starts afresh."""
    try:
        value = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def is_newer(seen: list[str] | None, observed: tuple[str, str]) -> bool:
    """A newer hour, or the same hour with a newer `updatedAt` (a revision)."""
    if not seen:
        return True
    (seen_dt, seen_upd), (obs_dt, obs_upd) = seen, observed
    if _instant(obs_dt) != _instant(seen_dt):
        return _instant(obs_dt) > _instant(seen_dt)
    return _instant(obs_upd) > _instant(seen_upd)


def affected_days(datetime_text: str) -> list[str]:
    """The day of the new hour and, when the trailing 24 h reach into it, the day before (revisions land there)."""
    when = _instant(datetime_text)
    days = {when.date(), (when - dt.timedelta(hours=23)).date()}
    start = dt.date.fromisoformat(ELECTRICITY_MAPS_START_DATE)
    return sorted(d.isoformat() for d in days if d >= start)


def plan_requests(cursor: dict, observations: list[tuple[str, str, str, str]]) -> tuple[list[RunRequest], dict]:
    """From `(zone, kind, datetime, updatedAt)` observations: run requests for changed partitions, new cursor."""
    new_cursor = json.loads(json.dumps(cursor))
    changed: dict[str, list[str]] = {}
    for zone, kind, datetime_text, updated_text in observations:
        seen = cursor.get(zone, {}).get(kind)
        if is_newer(seen, (datetime_text, updated_text)):
            new_cursor.setdefault(zone, {})[kind] = [datetime_text, updated_text]
            for day in affected_days(datetime_text):
                changed.setdefault(f"{day}|{zone}", []).append(f"{kind}@{datetime_text}/{updated_text}")
    requests = []
    for key, reasons in sorted(changed.items()):
        day, zone = key.split("|")
        digest = hashlib.sha256("|".join(sorted(reasons)).encode()).hexdigest()[:16]
        requests.append(
            RunRequest(
                partition_key=MultiPartitionKey({"date": day, "zone": zone}),
                run_key=f"electricity_maps:{key}:{digest}",
                tags={"electricity_maps/trigger": "; ".join(sorted(reasons))[:200]},
            )
        )
    return requests, new_cursor


def build_sensor(selection: AssetSelection, zones: Sequence[str] | None = None, interval_seconds: int | None = None):
    """The `latest` sensor over `zones` (default: the partitions' zones, a load-time setting) polled every
    `interval_seconds` (default: ELECTRICITY_MAPS_SENSOR_INTERVAL_SECONDS, read when the code location loads)."""
    zones = tuple(zones) if zones is not None else tuple(electricity_maps_zones())
    interval = interval_seconds if interval_seconds is not None else sensor_interval_s()

    @sensor(
        name="electricity_maps_latest_sensor",
        minimum_interval_seconds=sensor_cadence.minimum_interval_seconds(interval),  # ticks every `interval` s
        default_status=DefaultSensorStatus.STOPPED,
        asset_selection=selection,
        description=(
            "Polls Electricity Maps `carbon-intensity/latest` and `power-breakdown/latest` for every zone in "
            f"ELECTRICITY_MAPS_ZONES ({', '.join(zones)}; every {interval} s, {INTERVAL_ENV}). When a zone "
            "shows a new hour or a revised `updatedAt`, it requests runs of the (UTC day, zone) partitions the "
            "trailing 24 h touch. Quiet (skips with the reason) without an API key or when the API fails. "
            f"{sensor_cadence.SAID_IN_DESCRIPTIONS}"
        ),
    )
    def electricity_maps_latest_sensor(context: SensorEvaluationContext, electricity_maps: ElectricityMapsResource):
        api = electricity_maps.api()
        try:
            api.require_key()
        except MissingApiKeyError as exc:
            return SkipReason(str(exc))
        cursor = parse_cursor(context.cursor)
        observations, errors = [], []
        for zone in zones:
            for kind in KINDS:
                try:
                    fetch = api.latest(kind, zone)
                    if fetch.problem:
                        errors.append(f"{zone} {kind}: {fetch.problem}")
                        continue
                    body = fetch.json()
                    observations.append((zone, kind, str(body["datetime"]), str(body.get("updatedAt") or body["datetime"])))
                except (ElectricityMapsError, KeyError, TypeError, ValueError) as exc:
                    errors.append(f"{zone} {kind}: {exc}")
        for error in errors:
            context.log.warning(error)
        requests, new_cursor = plan_requests(cursor, observations)
        if not requests:
            reason = "no new or revised hours" + (f"; {len(errors)} request(s) failed: {errors[0]}" if errors else "")
            return SensorResult(skip_reason=reason, cursor=json.dumps(new_cursor, sort_keys=True))
        return SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))

    return electricity_maps_latest_sensor


# ---------------------------------------------------------------------------------------------- revisions
REVISION_ENV = "ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS"
REVISION_CRON = "20 4 * * *"  # daily, after Electricity Maps' own nightly refetches


def revision_lookback_days() -> tuple[int, ...]:
    """`ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS` (e.g. `0,7,30,90`), read when the schedule ticks."""
    text = settings.get(REVISION_ENV) or ""
    try:
        days = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"{REVISION_ENV} must be comma-separated whole days, e.g. 0,7,30,90 (got {text!r})") from None
    if not days or days[0] < 0:
        raise ValueError(f"{REVISION_ENV} must name at least one day, none negative (got {text!r})")
    return days


def revision_requests(today: dt.date, lookback: Sequence[int], zones: Sequence[str], paid_tier: bool) -> list[RunRequest]:
    """One run per (day, zone) to re-fetch: each lookback day and the day before it (Electricity Maps refetches
    48 h windows). A free key reaches only the last 24 h, so it gets today and yesterday only."""
    start = dt.date.fromisoformat(ELECTRICITY_MAPS_START_DATE)
    days = {today - dt.timedelta(days=n + k) for n in lookback for k in (0, 1)}
    days = sorted(d for d in days if d >= start and (paid_tier or (today - d).days <= 1))
    return [
        RunRequest(
            partition_key=MultiPartitionKey({"date": day.isoformat(), "zone": zone}),
            run_key=f"electricity_maps_revision:{today.isoformat()}:{day.isoformat()}|{zone}",
            tags={"electricity_maps/trigger": f"revision re-fetch {(today - day).days} day(s) back"},
        )
        for zone in zones
        for day in days
    ]


def build_revision_schedule(selection: AssetSelection, zones: Sequence[str] | None = None):
    """Daily re-fetch of the lookback days: every revised answer is a new bronze row (new content hash) and the
    newest `updatedAt` wins in silver; an unchanged answer only moves `fetched_at`.

    `selection` is bronze and silver: gold is left to the automation sensor, which recomputes only the days whose
    silver content version changed (see `build_automation_sensor`)."""
    zones = tuple(zones) if zones is not None else tuple(electricity_maps_zones())

    @schedule(
        name="electricity_maps_revision_schedule",
        cron_schedule=REVISION_CRON,
        execution_timezone="UTC",
        target=selection,
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            f"Electricity Maps revises history for about three months: every day re-fetch the days {REVISION_ENV} "
            f"names (default 0,7,30,90 days ago, each with the day before) for {', '.join(zones)}, bronze and silver "
            "only: the electricity_maps_automation sensor then recomputes gold for the days whose silver content "
            "changed. Needs a paid key for days older than 24 h (a free key re-fetches today and yesterday only)."
        ),
    )
    def electricity_maps_revision_schedule(context: ScheduleEvaluationContext):
        today = context.scheduled_execution_time.astimezone(dt.timezone.utc).date()
        requests = revision_requests(today, revision_lookback_days(), zones, settings.electricity_maps_paid_tier())
        return requests or SkipReason("no lookback day falls within the partitions")

    return electricity_maps_revision_schedule


# ---------------------------------------------------------------------------------------------- automation
def build_automation_sensor(selection: AssetSelection) -> AutomationConditionSensorDefinition:
    """Evaluates gold's condition (`recompute_days_whose_input_content_changed`): after the revision schedule
    rebuilt silver, only days whose content version changed (and the day after each) are recomputed."""
    return AutomationConditionSensorDefinition(
        "electricity_maps_automation",
        target=selection,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "Every 30 s: requests gold/electricity_maps_ml_features for each (day, zone) whose silver content "
            "version changed since the last evaluation in a run that did not build gold (the revision schedule's "
            "runs), and for the day after it. A re-fetch that changed nothing requests nothing."
        ),
    )
