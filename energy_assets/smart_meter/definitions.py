"""The smart-meter domain's definitions: assets, checks, sensor, schedule and its own resources."""

from dagster import Definitions
from dagster_duckdb import DuckDBResource

from energy_assets.smart_meter.assets import ASSETS
from energy_assets.smart_meter.checks import CHECKS
from energy_assets.smart_meter.sensors import SCHEDULES, SENSORS
from energy_assets.smart_meter.source import default_source


def build_defs() -> Definitions:
    return Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        sensors=SENSORS,
        schedules=SCHEDULES,
        resources={
            "smart_meter": default_source(),
            # in-memory: the presentation aggregates read silver through Arrow, nothing is persisted in DuckDB
            "smart_meter_duckdb": DuckDBResource(database=":memory:"),
        },
    )


defs = build_defs()
