"""Carbon footprint of smart-meter consumption (cross-domain gold and presentation)."""

from dagster import Definitions

from energy_assets.carbon.assets import CARBON_ASSETS
from energy_assets.carbon.checks import CARBON_CHECKS

defs = Definitions(assets=CARBON_ASSETS, asset_checks=CARBON_CHECKS)
