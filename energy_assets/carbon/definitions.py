"""Carbon footprint of smart-meter consumption (cross-domain gold and presentation)."""

from dagster import Definitions

from energy_assets.carbon.assets import CARBON_ASSETS
from energy_assets.carbon.checks import CARBON_CHECKS
from energy_assets.carbon.sensors import carbon_automation_sensor

defs = Definitions(assets=CARBON_ASSETS, asset_checks=CARBON_CHECKS, sensors=[carbon_automation_sensor])
