"""Compacting / vacuuming the lake's Delta tables (delta-rs; no Dagster here). The tables are found by
`Lake.tables(known)`.

Bronze tables grow by one small file per poll and every partition overwrite leaves the replaced files
behind (they stay for time travel). `maintain_table` rewrites each partition's small files into few large
ones (`optimize.compact`, a data-preserving commit, retried on conflicts with concurrent writers like any
other write), writes a checkpoint so the log replays fast, and deletes files no version inside the
retention window references (`vacuum`, full mode, so leftovers of killed writes go too).

Vacuum retention: files younger than the retention are kept, so readers of recent versions and writers in
progress never lose a file. delta-rs refuses a retention shorter than the table's
`delta.deletedFileRetentionDuration` (default 7 days = 168 h) unless `enforce_retention_duration` is off;
we keep it on unless the operator turns it off explicitly (ENERGY_LAKE_VACUUM_ENFORCE_RETENTION=false), and
refuse early with a message naming the table and both durations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from deltalake import DeltaTable

from energy_assets.lake.engine import file_totals, with_commit_retries
from energy_assets.lake.store import Lake, TableRef

DEFAULT_RETENTION_HOURS = 168
DEFAULT_TABLE_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration (1 week)
_UNIT_HOURS = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1, "day": 24, "week": 168}


class MaintenanceError(RuntimeError):
    """A table could not be maintained as configured (the table is left as it was)."""


@dataclass(frozen=True)
class VacuumSettings:
    retention_hours: int = DEFAULT_RETENTION_HOURS
    enforce_retention_duration: bool = True

    @classmethod
    def from_env(cls) -> VacuumSettings:
        """`ENERGY_LAKE_VACUUM_RETENTION_HOURS` (default 168) and `ENERGY_LAKE_VACUUM_ENFORCE_RETENTION` (default true)."""
        from energy_assets import settings  # settings imports Dagster (EnvVar): kept out of this module's imports

        return cls(settings.vacuum_retention_hours(), settings.vacuum_enforce_retention())


@dataclass
class TableReport:
    table: str
    uri: str
    version_before: int
    version_after: int
    rows_before: int
    rows_after: int
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    files_compacted: int
    files_written: int
    files_vacuumed: int
    compact_attempts: int

    def as_dict(self) -> dict:
        return asdict(self)


def table_retention_hours(table: DeltaTable) -> float:
    """The table's `delta.deletedFileRetentionDuration` in hours (Delta's default: 168)."""
    raw = (table.metadata().configuration or {}).get("delta.deletedFileRetentionDuration")
    if not raw:
        return DEFAULT_TABLE_RETENTION_HOURS
    match = re.fullmatch(r"\s*interval\s+(\d+)\s+(second|minute|hour|day|week)s?\s*", raw.lower())
    if not match:
        return DEFAULT_TABLE_RETENTION_HOURS
    return int(match.group(1)) * _UNIT_HOURS[match.group(2)]


def maintain_table(lake: Lake, ref: TableRef, vacuum: VacuumSettings, log: Callable[[str], None] | None = None) -> TableReport:
    """Compact, checkpoint and vacuum one table of `lake`; returns what changed. Raises `MaintenanceError`."""

    def current() -> DeltaTable:
        table = lake.open((ref.layer, ref.table))
        if table is None:
            raise MaintenanceError(f"{ref.name}: the table disappeared from {ref.uri} during maintenance")
        return table

    table = current()
    minimum = table_retention_hours(table)
    if vacuum.enforce_retention_duration and vacuum.retention_hours < minimum:
        raise MaintenanceError(
            f"{ref.name}: vacuum retention {vacuum.retention_hours} h is shorter than the table's "
            f"delta.deletedFileRetentionDuration ({minimum:g} h). Files that readers of recent versions or writers in "
            "progress still need could be deleted. Raise ENERGY_LAKE_VACUUM_RETENTION_HOURS, or set "
            "ENERGY_LAKE_VACUUM_ENFORCE_RETENTION=false if no run or reader can overlap the maintenance job."
        )
    version_before = table.version()
    files_before, rows_before, bytes_before = file_totals(table)

    def compact() -> dict:
        return current().optimize.compact()

    metrics, attempts = with_commit_retries(compact, f"{ref.name} (compaction)", log=log)
    table = current()
    if int(metrics.get("numFilesAdded", 0)) or int(metrics.get("numFilesRemoved", 0)):
        table.create_checkpoint()
    vacuumed = table.vacuum(
        retention_hours=vacuum.retention_hours,
        dry_run=False,  # delta-rs defaults to a dry run
        enforce_retention_duration=vacuum.enforce_retention_duration,
        full=True,  # also files never committed (a killed write), not only those removed by a commit
    )
    table = current()
    files_after, rows_after, bytes_after = file_totals(table)
    if rows_after != rows_before:
        raise MaintenanceError(f"{ref.name}: row count changed from {rows_before} to {rows_after} during maintenance")
    return TableReport(
        table=ref.name,
        uri=ref.uri,
        version_before=version_before,
        version_after=table.version(),
        rows_before=rows_before,
        rows_after=rows_after,
        files_before=files_before,
        files_after=files_after,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        files_compacted=int(metrics.get("numFilesRemoved", 0)),
        files_written=int(metrics.get("numFilesAdded", 0)),
        files_vacuumed=len(vacuumed),
        compact_attempts=attempts,
    )


def maintain_tables(
    lake: Lake, tables: Sequence[TableRef], vacuum: VacuumSettings, log: Callable[[str], None] | None = None
) -> tuple[list[TableReport], dict[str, str]]:
    """Maintain every table; one that fails does not stop the others. Returns the reports and, per failed
    table, the reason."""
    reports, failures = [], {}
    for ref in tables:
        try:
            reports.append(maintain_table(lake, ref, vacuum, log=log))
        except Exception as exc:  # noqa: BLE001 - reported per table; the caller fails at the end
            failures[ref.name] = f"{type(exc).__name__}: {exc}"
    return reports, failures


def report_markdown(reports: Sequence[TableReport], failures: dict[str, str]) -> str:
    lines = [
        "| table | files before | files after | rows | MB before | MB after | vacuumed files |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.table} | {r.files_before} | {r.files_after} | {r.rows_after} | {r.bytes_before / 1e6:.2f} | "
            f"{r.bytes_after / 1e6:.2f} | {r.files_vacuumed} |"
        )
    for name, reason in failures.items():
        lines.append(f"| {name} | failed: {reason.replace('|', '/')} | | | | | |")
    return "\n".join(lines)
