"""The project's own carbon-aware sensors (off by default).

- `smart_meter_daily_carbon_aware`: the smart-meter daily batch (the settlement day that just ended) between
  the arrival of the day's files (a reading file written after the day ended, not before 01:00) and 08:00 UK
  time, at the greenest 1-hour window of the national forecast from arrival on. An alternative to
  smart_meter_daily_schedule (08:00 sharp): start one of them, not both.
"""

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from energy_assets import settings

from energy_assets.forecast.carbon_aware import CarbonAwareSpec, carbon_aware_sensor
from energy_assets.forecast.archive import NATIONAL_REGION_ID
from energy_assets.smart_meter.sensors import TARGET as SMART_METER_TARGET

def files_arrived(folder: Path, cycle_day: dt.date) -> str | None:
    """None when a reading file was written after the settlement day before `cycle_day` ended (00:00 UK time of
    `cycle_day`), else what the sensor waits for."""
    day_end = dt.datetime.combine(cycle_day, dt.time(0), tzinfo=ZoneInfo("Europe/London")).timestamp()
    try:
        newest = max((entry.stat().st_mtime for entry in os.scandir(folder) if entry.name.endswith(".json")), default=None)
    except FileNotFoundError:
        newest = None
    if newest is not None and newest >= day_end:
        return None
    return f"waiting for the smart-meter files of {cycle_day - dt.timedelta(days=1)} (none written to {folder} since it ended)"


SMART_METER_SPEC = CarbonAwareSpec(
    name="smart_meter_daily_carbon_aware",
    region_id=NATIONAL_REGION_ID,
    duration_minutes=60,
    earliest=dt.time(1, 0),
    deadline=dt.time(8, 0),
    partition_key=lambda day: (day - dt.timedelta(days=1)).isoformat(),  # the settlement day that just ended
    ready=lambda day: files_arrived(Path(str(settings.get("SMART_METER_READINGS_DIR"))), day),
)

smart_meter_daily_carbon_aware = carbon_aware_sensor(
    SMART_METER_SPEC,
    target=SMART_METER_TARGET,
    description=(
        "Carbon-aware smart-meter daily batch: processes the settlement day that just ended once between the arrival of "
        "its files (not before 01:00) and 08:00 UK time, starting at the greenest hour of the newest national NESO forecast; runs now when "
        "forecasts are missing or stale. Off by default; an alternative to smart_meter_daily_schedule (start one, not both)."
    ),
)
