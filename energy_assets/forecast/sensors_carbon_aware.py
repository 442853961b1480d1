"""The project's own carbon-aware sensors (off by default).

- `smart_meter_daily_carbon_aware`: the smart-meter daily batch (the settlement day that just ended) between
  01:00, when the day's files have arrived, and 08:00 UK time, at the greenest 1-hour window of the national
  forecast. An alternative to smart_meter_daily_schedule (08:00 sharp): start one of them, not both.
"""

import datetime as dt

from energy_assets.forecast.carbon_aware import CarbonAwareSpec, carbon_aware_sensor
from energy_assets.forecast.archive import NATIONAL_REGION_ID
from energy_assets.smart_meter.sensors import TARGET as SMART_METER_TARGET

SMART_METER_SPEC = CarbonAwareSpec(
    name="smart_meter_daily_carbon_aware",
    region_id=NATIONAL_REGION_ID,
    duration_minutes=60,
    earliest=dt.time(1, 0),
    deadline=dt.time(8, 0),
    partition_key=lambda day: (day - dt.timedelta(days=1)).isoformat(),  # the settlement day that just ended
)

smart_meter_daily_carbon_aware = carbon_aware_sensor(
    SMART_METER_SPEC,
    target=SMART_METER_TARGET,
    description=(
        "Carbon-aware smart-meter daily batch: processes the settlement day that just ended once between 01:00 (files "
        "arrived) and 08:00 UK time, starting at the greenest hour of the newest national NESO forecast; runs now when "
        "forecasts are missing or stale. Off by default; an alternative to smart_meter_daily_schedule (start one, not both)."
    ),
)
