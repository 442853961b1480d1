"""The lake maintenance job and its nightly schedule.

`lake_maintenance_job` walks every Delta table of the lake (the `lake` resource: a local lake is listed from
the file system, an object-store lake from the asset keys of the code location running the job), compacts,
checkpoints and vacuums each, and records an observation per table (files, bytes and rows before and after)
that shows on the asset's page. A table that cannot be maintained does not stop the others; the run fails
at the end, naming it.
"""

from dagster import (
    AssetKey,
    AssetObservation,
    ConfigurableResource,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

import datetime as dt

from energy_assets.forecast.carbon_aware import CarbonAwareSpec, carbon_aware_sensor
from energy_assets.lake.resource import LakeResource
from energy_assets.maintenance.tables import VacuumSettings, maintain_tables, report_markdown


class LakeMaintenance(ConfigurableResource):
    """How long vacuum keeps unreferenced files (the lake itself is the `lake` resource). Unset fields are
    read from the settings when the run starts, like the lake's root."""

    vacuum_retention_hours: int | None = Field(
        default=None,
        description="Unreferenced files younger than this are kept; unset: ENERGY_LAKE_VACUUM_RETENTION_HOURS (default 168 = 7 days).",
    )
    enforce_retention_duration: bool | None = Field(
        default=None,
        description=(
            "Refuse a retention shorter than a table's delta.deletedFileRetentionDuration; unset: "
            "ENERGY_LAKE_VACUUM_ENFORCE_RETENTION (default true)."
        ),
    )

    def vacuum_settings(self) -> VacuumSettings:
        env = VacuumSettings.from_env() if self.vacuum_retention_hours is None or self.enforce_retention_duration is None else None
        return VacuumSettings(
            self.vacuum_retention_hours if self.vacuum_retention_hours is not None else env.retention_hours,  # type: ignore[union-attr]
            self.enforce_retention_duration if self.enforce_retention_duration is not None else env.enforce_retention_duration,  # type: ignore[union-attr]
        )


def lake_maintenance_resource() -> LakeMaintenance:
    VacuumSettings.from_env()  # a malformed variable fails the code location's load, not the nightly run
    return LakeMaintenance()


@op(
    description=(
        "Compact small files, write a checkpoint and vacuum unreferenced files in every Delta table of the lake; "
        "records files/bytes/rows before and after per table."
    ),
    tags={"energy_assets/maintenance": "lake"},
)
def maintain_lake_tables(context: OpExecutionContext, lake: LakeResource, lake_maintenance: LakeMaintenance) -> None:
    the_lake = lake.lake()
    vacuum = lake_maintenance.vacuum_settings()
    tables = the_lake.tables()
    context.log.info(
        f"{len(tables)} Delta tables under {the_lake.root}; vacuum retention {vacuum.retention_hours} h "
        f"(enforced: {vacuum.enforce_retention_duration})"
    )
    reports, failures = maintain_tables(the_lake, tables, vacuum, log=context.log.warning)
    uris = {ref.name: ref.uri for ref in tables}
    for report in reports:
        layer, table = report.table.split("/")
        context.log_event(
            AssetObservation(
                asset_key=AssetKey([layer, table]),
                description="Lake maintenance: compaction and vacuum",
                metadata={
                    "files_before": report.files_before,
                    "files_after": report.files_after,
                    "bytes_before": report.bytes_before,
                    "bytes_after": report.bytes_after,
                    "rows": report.rows_after,
                    "files_compacted": report.files_compacted,
                    "files_written": report.files_written,
                    "files_vacuumed": report.files_vacuumed,
                    "delta_version": report.version_after,
                    "vacuum_retention_hours": vacuum.retention_hours,
                    "table_uri": MetadataValue.path(uris[report.table]),
                },
            )
        )
        context.log.info(
            f"{report.table}: files {report.files_before} -> {report.files_after}, "
            f"{report.files_vacuumed} unreferenced files vacuumed, {report.rows_after} rows unchanged"
        )
    for name, reason in failures.items():
        context.log.error(f"{name}: maintenance failed: {reason}")
    context.log.info("Lake maintenance summary:\n" + report_markdown(reports, failures))
    if failures:
        raise Failure(
            description=f"Maintenance failed for {len(failures)} of {len(tables)} tables: " + "; ".join(f"{k}: {v}" for k, v in failures.items()),
            metadata={"failed_tables": MetadataValue.json(failures), "summary": MetadataValue.md(report_markdown(reports, failures))},
        )


@job(
    description="Compact and vacuum every Delta table of the lake (scheduled nightly by lake_maintenance_nightly).",
    tags={"energy_assets/maintenance": "lake"},
)
def lake_maintenance_job():
    maintain_lake_tables()


lake_maintenance_nightly = ScheduleDefinition(
    name="lake_maintenance_nightly",
    job=lake_maintenance_job,
    cron_schedule="30 3 * * *",
    execution_timezone="Europe/London",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every night at 03:30 London time: compact small files and vacuum the lake (ENERGY_LAKE_VACUUM_RETENTION_HOURS).",
)

lake_maintenance_carbon_aware = carbon_aware_sensor(
    CarbonAwareSpec(name="lake_maintenance_carbon_aware", region_id=0, duration_minutes=60, earliest=dt.time(0, 0), deadline=dt.time(6, 0)),
    job=lake_maintenance_job,
    description=(
        "Carbon-aware lake maintenance: once a night between 00:00 and 06:00 UK time, at the greenest hour of the newest "
        "national NESO forecast (runs now when forecasts are missing or stale). Off by default: to use it, stop "
        "lake_maintenance_nightly and start this sensor (and neso_forecast_archive_sensor, which keeps the forecasts fresh)."
    ),
)

# The `lake` resource the job uses is the code location's shared one (energy_assets/resources.py).
defs = Definitions(
    jobs=[lake_maintenance_job],
    schedules=[lake_maintenance_nightly],
    sensors=[lake_maintenance_carbon_aware],
    resources={"lake_maintenance": lake_maintenance_resource()},
)
