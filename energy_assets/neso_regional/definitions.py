"""The NESO regional intensity endpoint: bronze and silver, forecast only."""

from dagster import Definitions

from energy_assets.neso_regional.assets import NESO_REGIONAL_ASSETS
from energy_assets.neso_regional.checks import NESO_REGIONAL_CHECKS
from energy_assets.neso_regional.client import neso_regional_client
from energy_assets.resources import http_session

defs = Definitions(
    assets=NESO_REGIONAL_ASSETS,
    asset_checks=NESO_REGIONAL_CHECKS,
    resources={"neso_regional": neso_regional_client(http_session())},
)
