"""Finding the lake's Delta tables and compacting / vacuuming them (delta-rs; no Dagster here).

Bronze tables grow by one small file per poll and every partition overwrite leaves the replaced files
behind (they stay for time travel). `maintain_table` rewrites each partition's small files into few large
ones (`optimize.compact`, a data-preserving commit, retried on conflicts with concurrent writers like any
other write), writes a checkpoint so the log replays fast, and deletes files no version inside the
retention window references (`vacuum`, full mode, so leftovers of killed writes go too).

Vacuum retention: files younger than the retention are kept, so readers of recent versions and writers in
progress never lose a file. delta-rs refuses a retention shorter than the table's
`delta.deletedFileRetentionDuration` (default 7 days = 168 h) unless `enforce_retention_duration` is off;
we keep it on unless the operator turns it off explicitly (LAKE_VACUUM_ENFORCE_RETENTION=false), and
refuse early with a message naming the table and both durations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from energy_assets.lake.io_manager import open_table, with_commit_retries

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
        """`LAKE_VACUUM_RETENTION_HOURS` (default 168) and `LAKE_VACUUM_ENFORCE_RETENTION` (default true)."""
        from energy_assets import settings

        return cls(settings.vacuum_retention_hours(), settings.vacuum_enforce_retention())


@dataclass(frozen=True)
class TableRef:
    layer: str
    table: str
    uri: str

    @property
    def name(self) -> str:
        return f"{self.layer}/{self.table}"


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


def is_local(root_uri: str) -> bool:
    return "://" not in root_uri or root_uri.startswith("file://")


def discover_tables(
    root_uri: str, storage_options: dict[str, str], known: Iterable[Sequence[str]] = ()
) -> list[TableRef]:
    """Every Delta table `<root>/<layer>/<table>`.

    A local lake is listed from the file system (any directory with a `_delta_log`); an object-store lake
    from the `known` asset keys (`[layer, table]`), keeping those whose table exists.
    """
    root = root_uri.rstrip("/")
    found: dict[str, TableRef] = {}
    if is_local(root):
        base = Path(root.removeprefix("file://"))
        if base.is_dir():
            for log_dir in sorted(base.glob("*/*/_delta_log")):
                table_dir = log_dir.parent
                ref = TableRef(table_dir.parent.name, table_dir.name, str(table_dir))
                found[ref.name] = ref
    for key in known:
        if len(key) != 2 or f"{key[0]}/{key[1]}" in found:
            continue
        uri = f"{root}/{key[0]}/{key[1]}"
        if open_table(uri, storage_options) is not None:
            found[f"{key[0]}/{key[1]}"] = TableRef(key[0], key[1], uri)
    return [found[name] for name in sorted(found)]


def _file_stats(table: DeltaTable) -> tuple[int, int, int]:
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0, 0, 0
    rows = int(pc.sum(actions["num_records"]).as_py() or 0)
    size = int(pc.sum(actions["size_bytes"]).as_py() or 0)
    return actions.num_rows, rows, size


def table_retention_hours(table: DeltaTable) -> float:
    """The table's `delta.deletedFileRetentionDuration` in hours (Delta's default: 168)."""
    raw = (table.metadata().configuration or {}).get("delta.deletedFileRetentionDuration")
    if not raw:
        return DEFAULT_TABLE_RETENTION_HOURS
    match = re.fullmatch(r"\s*interval\s+(\d+)\s+(second|minute|hour|day|week)s?\s*", raw.lower())
    if not match:
        return DEFAULT_TABLE_RETENTION_HOURS
    return int(match.group(1)) * _UNIT_HOURS[match.group(2)]


def maintain_table(ref: TableRef, storage_options: dict[str, str], vacuum: VacuumSettings, log=None) -> TableReport:
    """Compact, checkpoint and vacuum one table; returns what changed. Raises `MaintenanceError`."""
    table = DeltaTable(ref.uri, storage_options=storage_options or None)
    minimum = table_retention_hours(table)
    if vacuum.enforce_retention_duration and vacuum.retention_hours < minimum:
        raise MaintenanceError(
            f"{ref.name}: vacuum retention {vacuum.retention_hours} h is shorter than the table's "
            f"delta.deletedFileRetentionDuration ({minimum:g} h). Files that readers of recent versions or writers in "
            "progress still need could be deleted. Raise LAKE_VACUUM_RETENTION_HOURS, or set "
            "LAKE_VACUUM_ENFORCE_RETENTION=false if no run or reader can overlap the maintenance job."
        )
    version_before = table.version()
    files_before, rows_before, bytes_before = _file_stats(table)

    def compact() -> dict:
        return DeltaTable(ref.uri, storage_options=storage_options or None).optimize.compact()

    metrics, attempts = with_commit_retries(compact, f"{ref.name} (compaction)", log=log)
    table = DeltaTable(ref.uri, storage_options=storage_options or None)
    if int(metrics.get("numFilesAdded", 0)) or int(metrics.get("numFilesRemoved", 0)):
        table.create_checkpoint()
    vacuumed = table.vacuum(
        retention_hours=vacuum.retention_hours,
        dry_run=False,  # delta-rs defaults to a dry run
        enforce_retention_duration=vacuum.enforce_retention_duration,
        full=True,  # also files never committed (a killed write), not only those removed by a commit
    )
    table = DeltaTable(ref.uri, storage_options=storage_options or None)
    files_after, rows_after, bytes_after = _file_stats(table)
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
