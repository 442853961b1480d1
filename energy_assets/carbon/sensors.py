"""The automation sensor that evaluates the carbon assets' conditions (on by default: refreshes need no manual step)."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

carbon_automation_sensor = AutomationConditionSensorDefinition(
    "carbon_automation",
    target=AssetSelection.groups("carbon"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Evaluates the carbon assets' automation condition every 30 s: a UK day whose smart-meter readings or NESO "
        "intensity (national or regional) changed gets its footprint and daily summaries rebuilt, past days included."
    ),
)
