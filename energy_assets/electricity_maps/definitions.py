"""Electricity Maps domain: assets, checks, the `latest` sensor, the revision schedule, the automation sensor that
recomputes gold after revisions, and the API resource."""

from dagster import AssetSelection, Definitions

from energy_assets.electricity_maps.assets import ASSETS
from energy_assets.electricity_maps.checks import CHECKS
from energy_assets.electricity_maps.client import resource_from_env
from energy_assets.electricity_maps.sensors import build_automation_sensor, build_revision_schedule, build_sensor

GOLD = AssetSelection.assets(*ASSETS) & AssetSelection.key_prefixes("gold")
BRONZE_AND_SILVER = AssetSelection.assets(*ASSETS) - GOLD

latest_sensor = build_sensor(AssetSelection.assets(*ASSETS))
revision_schedule = build_revision_schedule(BRONZE_AND_SILVER)
automation_sensor = build_automation_sensor(GOLD)

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    sensors=[latest_sensor, automation_sensor],
    schedules=[revision_schedule],
    resources={"electricity_maps": resource_from_env()},
)
