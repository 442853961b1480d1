"""The forecast domain: the archive of NESO's 48-hour forecasts, their skill by lead time, the greenest
windows, carbon-aware scheduling and its backtest. Uses the NESO domain's `neso` client resource."""

from dagster import Definitions

from energy_assets.forecast.assets import ARCHIVE_ASSETS
from energy_assets.forecast.checks import ARCHIVE_CHECKS
from energy_assets.forecast.gold import GOLD_ASSETS
from energy_assets.forecast.sensors import neso_forecast_archive_job, neso_forecast_archive_sensor
from energy_assets.forecast.sensors_carbon_aware import smart_meter_daily_carbon_aware

defs = Definitions(
    assets=[*ARCHIVE_ASSETS, *GOLD_ASSETS],
    asset_checks=[*ARCHIVE_CHECKS],
    sensors=[neso_forecast_archive_sensor, smart_meter_daily_carbon_aware],
    jobs=[neso_forecast_archive_job],
)
