"""The forecast archive sensor: one run of bronze -> silver archive for today per sensor interval.

The run fetches the forecasts when it starts (the issue time is that fetch time). A tick that finds its
interval's run already requested skips (run_key = the interval slot). Off by default, like the NESO poller:
start it in the UI or with `dagster sensor start neso_forecast_archive_sensor`.
"""

import datetime as dt

from dagster import AssetSelection, DefaultSensorStatus, RunRequest, SensorEvaluationContext, define_asset_job, in_process_executor, sensor

from energy_assets import sensor_cadence, settings
from energy_assets.forecast.assets import ARCHIVE_ASSETS
from energy_assets.neso.client import UTC, uk_today

TRIGGER_TAG = "neso/trigger"

neso_forecast_archive_job = define_asset_job(
    "neso_forecast_archive_job",
    selection=AssetSelection.assets(*ARCHIVE_ASSETS),
    executor_def=in_process_executor,
    description="Fetch the NESO 48-hour forecasts now (national and regional) into bronze and the silver archive; started by the archive sensor.",
)


def interval_seconds() -> int:
    return settings.graph().neso_forecast_sensor_interval_seconds


def archive_run_request(now: dt.datetime, interval: int) -> RunRequest:
    """The run for the sensor interval slot holding `now` (one per slot: the run key is the slot)."""
    slot = dt.datetime.fromtimestamp(int(now.timestamp()) // interval * interval, UTC)
    return RunRequest(
        partition_key=uk_today(now).isoformat(),
        run_key=f"neso-forecast-{slot:%Y-%m-%dT%H:%MZ}",
        tags={TRIGGER_TAG: "forecast_archive", "energy_assets/api": "neso"},
    )


@sensor(
    name="neso_forecast_archive_sensor",
    job=neso_forecast_archive_job,
    minimum_interval_seconds=sensor_cadence.minimum_interval_seconds(interval_seconds()),  # ticks every N s
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Every NESO_FORECAST_SENSOR_INTERVAL_SECONDS (default 1800) runs bronze/neso_forecast -> silver/neso_forecast_archive "
        "for today: the run fetches the national and regional 48-hour forecasts as published then. Off by default; "
        "every missed interval is an issue lost for good (the capture-rate check counts them). "
        f"{sensor_cadence.SAID_IN_DESCRIPTIONS}"
    ),
)
def neso_forecast_archive_sensor(context: SensorEvaluationContext):
    return archive_run_request(dt.datetime.now(UTC), interval_seconds())
