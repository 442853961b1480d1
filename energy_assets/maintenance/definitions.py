"""The lake maintenance job and its nightly schedule.

`lake_maintenance_job` walks every Delta table under `ENERGY_LAKE_URI` (a local lake from the file system;
an object-store lake from the code location's asset keys), compacts, checkpoints and vacuums each, and
records an observation per table (files, bytes and rows before and after) that shows on the asset's page.
A table that cannot be maintained does not stop the others; the run fails at the end, naming it.
"""

from dagster import (
    AssetKey,
    AssetObservation,
    ConfigurableResource,
    DefaultScheduleStatus,
    Definitions,
    EnvVar,
    Failure,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from energy_assets import settings
from energy_assets.lake.io_manager import lake_root, storage_options_from_env
from energy_assets.maintenance.tables import (
    DEFAULT_RETENTION_HOURS,
    VacuumSettings,
    discover_tables,
    is_local,
    maintain_table,
    report_markdown,
)


class LakeMaintenance(ConfigurableResource):
    """Where the lake is and how long vacuum keeps unreferenced files."""

    root_uri: str = Field(default="", description="Root of the Delta lake; empty: ENERGY_LAKE_URI when the run starts.")

    def root(self) -> str:
        return lake_root(self.root_uri)
    vacuum_retention_hours: int = Field(
        default=DEFAULT_RETENTION_HOURS,
        description="Unreferenced files younger than this are kept (LAKE_VACUUM_RETENTION_HOURS, default 168 = 7 days).",
    )
    enforce_retention_duration: bool = Field(
        default=True,
        description="Refuse a retention shorter than a table's delta.deletedFileRetentionDuration (LAKE_VACUUM_ENFORCE_RETENTION).",
    )
    storage_options: dict[str, str] = Field(default_factory=dict, description="Extra delta-rs storage options (no secrets).")

    def vacuum_settings(self) -> VacuumSettings:
        return VacuumSettings(self.vacuum_retention_hours, self.enforce_retention_duration)


def lake_maintenance_resource() -> LakeMaintenance:
    vacuum = VacuumSettings.from_env()  # validates the variables when the code location loads
    return LakeMaintenance(
        vacuum_retention_hours=EnvVar.int("ENERGY_LAKE_VACUUM_RETENTION_HOURS")
        if settings.is_set("ENERGY_LAKE_VACUUM_RETENTION_HOURS")
        else vacuum.retention_hours,
        enforce_retention_duration=vacuum.enforce_retention_duration,
    )


def _known_table_keys(context: OpExecutionContext, root_uri: str) -> list[list[str]]:
    """Asset keys `[layer, table]` of the code location running the job (how an object-store lake is listed)."""
    try:
        keys = context.repository_def.asset_graph.get_all_asset_keys()
    except Exception:  # executed in process, outside a code location
        if is_local(root_uri):
            return []  # the file system lists a local lake
        from energy_assets.definitions import defs  # loaded by now: this op runs inside it

        keys = defs.resolve_all_asset_keys()
    return [list(key.path) for key in keys if len(key.path) == 2]


@op(
    description=(
        "Compact small files, write a checkpoint and vacuum unreferenced files in every Delta table of the lake; "
        "records files/bytes/rows before and after per table."
    ),
    tags={"energy_assets/maintenance": "lake"},
)
def maintain_lake_tables(context: OpExecutionContext, lake_maintenance: LakeMaintenance) -> None:
    options = storage_options_from_env(lake_maintenance.storage_options)
    vacuum = lake_maintenance.vacuum_settings()
    root = lake_maintenance.root()
    tables = discover_tables(root, options, _known_table_keys(context, root))
    context.log.info(
        f"{len(tables)} Delta tables under {root}; vacuum retention {vacuum.retention_hours} h "
        f"(enforced: {vacuum.enforce_retention_duration})"
    )
    reports, failures = [], {}
    for ref in tables:
        try:
            report = maintain_table(ref, options, vacuum, log=context.log.warning)
        except Exception as exc:  # one bad table must not stop the others
            failures[ref.name] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"{ref.name}: maintenance failed: {exc}")
            continue
        reports.append(report)
        context.log_event(
            AssetObservation(
                asset_key=AssetKey([ref.layer, ref.table]),
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
                    "table_uri": MetadataValue.path(ref.uri),
                },
            )
        )
        context.log.info(
            f"{ref.name}: files {report.files_before} -> {report.files_after}, "
            f"{report.files_vacuumed} unreferenced files vacuumed, {report.rows_after} rows unchanged"
        )
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
    description="Every night at 03:30 London time: compact small files and vacuum the lake (LAKE_VACUUM_RETENTION_HOURS).",
)

defs = Definitions(
    jobs=[lake_maintenance_job],
    schedules=[lake_maintenance_nightly],
    resources={"lake_maintenance": lake_maintenance_resource()},
)
