"""The automation sensor that keeps the DuckDB serving database in step with the lake (on by default)."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

serving_automation_sensor = AutomationConditionSensorDefinition(
    "serving_automation",
    target=AssetSelection.groups("serving"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Re-syncs serving/duckdb_database (at most once a minute) after any lake table it mirrors was updated.",
)
