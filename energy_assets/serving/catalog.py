"""The lake's tables, seen from DuckDB.

Two ways of exposing a Delta table to DuckDB, both reading only the table's *current* files (the snapshot's
add actions, through delta-rs), never a glob of the directory, which would include files that a later
overwrite removed but that stay on disk until `vacuum`:

- `sync_database`: copies every table into a DuckDB database file (`CREATE OR REPLACE TABLE <layer>.<table>
  AS SELECT * FROM <delta-rs arrow dataset>`), skipping tables whose Delta version has not changed since the
  last sync. Used by the serving asset: the file works from the `duckdb` CLI and any BI tool with no Python
  and no DuckDB extension (the delta extension cannot be downloaded here), for local and object-store lakes
  alike, and each table is one consistent Delta snapshot.
- `register_views`: an in-memory connection with one view per table over its arrow dataset: always current,
  nothing copied. Used by the `show` and `sql` commands.

Views over the active parquet file list were rejected for the database file: they go stale (and then fail,
once `vacuum` deletes the listed files) at the next commit until re-synced anyway, need httpfs and
credentials inside the BI tool for object stores, and lose the Delta partition columns, which live in
directory names rather than in the parquet files.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.dataset as pads
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

LAYERS = ("raw", "bronze", "silver", "gold", "presentation")
SYNC_TABLE = "main.lake_tables"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LakeTableNotFound(LookupError):
    """A `layer/table` name that is not a Delta table of the lake."""


@dataclass(frozen=True)
class LakeTable:
    layer: str
    name: str
    uri: str

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def path(self) -> str:
        return f"{self.layer}/{self.name}"


def _uri(root: str, layer: str, name: str) -> str:
    return f"{root.rstrip('/')}/{layer}/{name}"


def discover_tables(root: str, candidates: list[tuple[str, str]] | None = None) -> list[LakeTable]:
    """Every Delta table `<root>/<layer>/<table>` of the lake, sorted by layer then name.

    A local lake is listed from the file system (directories holding a `_delta_log`); for an object-store
    lake pass `candidates` ((layer, table) pairs, e.g. the code location's asset keys): those that exist are kept.
    """
    found: dict[tuple[str, str], LakeTable] = {}
    if "://" not in root or root.startswith("file://"):
        base = Path(root.removeprefix("file://"))
        for layer in LAYERS:
            layer_dir = base / layer
            if not layer_dir.is_dir():
                continue
            for table_dir in layer_dir.iterdir():
                if (table_dir / "_delta_log").is_dir() and _NAME.match(table_dir.name):
                    found[(layer, table_dir.name)] = LakeTable(layer, table_dir.name, str(table_dir))
    for layer, name in candidates or []:
        if layer in LAYERS and _NAME.match(name) and (layer, name) not in found:
            uri = _uri(root, layer, name)
            try:
                DeltaTable(uri)
            except TableNotFoundError:
                continue
            found[(layer, name)] = LakeTable(layer, name, uri)
    return [found[k] for k in sorted(found, key=lambda k: (LAYERS.index(k[0]), k[1]))]


def find_table(root: str, path: str) -> LakeTable:
    """`layer/table` (or `layer.table`) -> the lake table, or `LakeTableNotFound` listing what exists."""
    layer, sep, name = path.replace(".", "/").partition("/")
    tables = discover_tables(root)
    for table in tables:
        if table.layer == layer and table.name == name:
            return table
    if sep and layer in LAYERS and _NAME.match(name or ""):
        uri = _uri(root, layer, name)
        try:
            DeltaTable(uri)
            return LakeTable(layer, name, uri)
        except TableNotFoundError:
            pass
    available = ", ".join(t.path for t in tables) or "none (materialise some assets first)"
    raise LakeTableNotFound(f"no Delta table {path!r} in the lake at {root}; tables: {available}")


def current_dataset(table: LakeTable, storage_options: dict[str, str] | None = None) -> tuple[pads.Dataset, int]:
    """The table's current snapshot as an arrow dataset (only the files of its latest version) and that version."""
    delta = DeltaTable(table.uri, storage_options=storage_options or None)
    return delta.to_pyarrow_dataset(), delta.version()


def register_views(con: duckdb.DuckDBPyConnection, root: str, storage_options: dict[str, str] | None = None) -> list[LakeTable]:
    """One view `<layer>.<table>` per lake table over its current arrow dataset (nothing copied)."""
    tables = discover_tables(root)
    for layer in LAYERS:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
    for table in tables:
        dataset, _ = current_dataset(table, storage_options)
        source = f"__lake__{table.layer}__{table.name}"
        con.register(source, dataset)
        con.execute(f'CREATE OR REPLACE VIEW "{table.layer}"."{table.name}" AS SELECT * FROM "{source}"')
    return tables


@dataclass
class SyncReport:
    copied: list[tuple[str, int, int]]  # (layer.table, delta version, rows)
    unchanged: list[str]
    dropped: list[str]

    @property
    def tables(self) -> int:
        return len(self.copied) + len(self.unchanged)


def sync_database(
    con: duckdb.DuckDBPyConnection,
    root: str,
    storage_options: dict[str, str] | None = None,
    candidates: list[tuple[str, str]] | None = None,
    force: bool = False,
) -> SyncReport:
    """Bring the DuckDB database up to date with the lake, in one DuckDB transaction.

    Each lake table becomes the table `<layer>.<table>` holding the rows of its current Delta version; tables
    whose version is unchanged since the last sync are skipped (unless `force`); tables that left the lake are
    dropped. `main.lake_tables` records, per table, the Delta version copied, its rows and when.
    """
    tables = discover_tables(root, candidates)
    con.execute("BEGIN TRANSACTION")
    try:
        for layer in LAYERS:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SYNC_TABLE} (layer VARCHAR, table_name VARCHAR, delta_version BIGINT, "
            "row_count BIGINT, synced_at TIMESTAMPTZ, source_uri VARCHAR, PRIMARY KEY (layer, table_name))"
        )
        synced = {(r[0], r[1]): r[2] for r in con.execute(f"SELECT layer, table_name, delta_version FROM {SYNC_TABLE}").fetchall()}
        existing = {
            (r[0], r[1])
            for r in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
                f"({', '.join(repr(layer) for layer in LAYERS)}) AND table_type = 'BASE TABLE'"
            ).fetchall()
        }
        report = SyncReport(copied=[], unchanged=[], dropped=[])
        now = dt.datetime.now(dt.timezone.utc)
        for table in tables:
            key = (table.layer, table.name)
            dataset, version = current_dataset(table, storage_options)
            if not force and synced.get(key) == version and key in existing:
                report.unchanged.append(table.qualified)
                continue
            source = f"__sync__{table.layer}__{table.name}"
            con.register(source, dataset)
            try:
                con.execute(f'CREATE OR REPLACE TABLE "{table.layer}"."{table.name}" AS SELECT * FROM "{source}"')
            finally:
                con.unregister(source)
            rows = con.execute(f'SELECT count(*) FROM "{table.layer}"."{table.name}"').fetchall()[0][0]
            con.execute(
                f"INSERT OR REPLACE INTO {SYNC_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                [table.layer, table.name, version, rows, now, table.uri],
            )
            report.copied.append((table.qualified, version, rows))
        current = {(t.layer, t.name) for t in tables}
        for layer, name in sorted(set(synced) - current):
            con.execute(f'DROP TABLE IF EXISTS "{layer}"."{name}"')
            con.execute(f"DELETE FROM {SYNC_TABLE} WHERE layer = ? AND table_name = ?", [layer, name])
            report.dropped.append(f"{layer}.{name}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report
