"""The forecast domain: the archive of NESO's 48-hour forecasts, their skill by lead time, the greenest
windows, carbon-aware scheduling and its backtest. Uses the NESO domain's `neso` client resource."""

from dagster import Definitions

from energy_assets.forecast.assets import ARCHIVE_ASSETS
from energy_assets.forecast.checks import ARCHIVE_CHECKS
from energy_assets.forecast.gold import GOLD_ASSETS
from energy_assets.forecast.sensors import neso_forecast_archive_job, neso_forecast_archive_sensor
from energy_assets.forecast.sensors_carbon_aware import smart_meter_daily_carbon_aware
from energy_assets.smart_meter.assets import BUCKETS as SMART_METER_BUCKETS

# The carbon-aware smart-meter batch launches ONE run of the whole domain for a day: with meterpoint buckets
# (SMART_METER_BUCKETS > 1) a day is several runs, so it is left out and the 08:00 schedules do the day.
CARBON_AWARE = [smart_meter_daily_carbon_aware] if SMART_METER_BUCKETS == 1 else []

defs = Definitions(
    assets=[*ARCHIVE_ASSETS, *GOLD_ASSETS],
    asset_checks=[*ARCHIVE_CHECKS],
    sensors=[neso_forecast_archive_sensor, *CARBON_AWARE],
    jobs=[neso_forecast_archive_job],
)
