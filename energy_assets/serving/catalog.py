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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from energy_assets.lake.store import LAYERS, Lake, LakeTableNotFound, TableRef

if TYPE_CHECKING:  # pyarrow.dataset imports pandas (0.4 s): not at every run's start, for an annotation
    import pyarrow.dataset as pads

SYNC_TABLE = "main.lake_tables"


class SyncError(RuntimeError):
    """A lake table could not be copied into the serving database (the database is left as it was)."""


def current_dataset(lake: Lake, table: TableRef) -> tuple[pads.Dataset, int]:
    """The table's current snapshot as an arrow dataset (only the files of its latest version) and that version,
    opened with the lake's storage options."""
    delta = lake.open(table.name)
    if delta is None:
        raise LakeTableNotFound(f"no Delta table {table.name!r} in the lake at {lake.root} (it was removed while being read)")
    return delta.to_pyarrow_dataset(), delta.version()


def register_views(con: duckdb.DuckDBPyConnection, lake: Lake, known: Iterable[str | Sequence[str]] = ()) -> list[TableRef]:
    """One view `<layer>.<table>` per lake table over its current arrow dataset (nothing copied)."""
    tables = lake.tables(known)
    for layer in LAYERS:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
    for table in tables:
        dataset, _ = current_dataset(lake, table)
        source = f"__lake__{table.layer}__{table.table}"
        con.register(source, dataset)
        con.execute(f'CREATE OR REPLACE VIEW "{table.layer}"."{table.table}" AS SELECT * FROM "{source}"')
    return tables


@dataclass
class SyncReport:
    copied: list[tuple[str, int, int]]  # (layer.table, delta version, rows)
    unchanged: list[str]
    dropped: list[str]
    commented: int = 0  # column comments written

    @property
    def tables(self) -> int:
        return len(self.copied) + len(self.unchanged)


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def comment_columns(con: duckdb.DuckDBPyConnection, layer: str, table: str, descriptions: Mapping[str, str]) -> int:
    """`COMMENT ON COLUMN` for each described column the table has (others are ignored); returns how many."""
    present = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?", [layer, table]
        ).fetchall()
    }
    done = 0
    for column, text in descriptions.items():
        if column in present and text:
            con.execute(f'COMMENT ON COLUMN "{layer}"."{table}"."{column}" IS {sql_string(text)}')
            done += 1
    return done


def sync_database(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    known: Iterable[str | Sequence[str]] = (),
    force: bool = False,
    descriptions: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
) -> SyncReport:
    """Bring the DuckDB database up to date with the lake, in one DuckDB transaction.

    Each lake table becomes the table `<layer>.<table>` holding the rows of its current Delta version; tables
    whose version is unchanged since the last sync are skipped (unless `force`); tables that left the lake are
    dropped. `main.lake_tables` records, per table, the Delta version copied, its rows and when. The tables are
    `lake.tables(known)`: every table of the lake, local folder or bucket alike. `descriptions`
    (`{(layer, table): {column: text}}`, from the assets' `dagster/column_schema`) become column comments of
    every table, copied or not, so a changed description reaches the file without a new Delta version.
    """
    tables = lake.tables(known)
    registered: list[str] = []
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
            key = (table.layer, table.table)
            dataset, version = current_dataset(lake, table)
            if not force and synced.get(key) == version and key in existing:
                report.unchanged.append(table.qualified)
                continue
            source = f"__sync__{table.layer}__{table.table}"
            con.register(source, dataset)
            registered.append(source)
            try:
                con.execute(f'CREATE OR REPLACE TABLE "{table.layer}"."{table.table}" AS SELECT * FROM "{source}"')
            except duckdb.Error as exc:
                raise SyncError(
                    f"cannot copy {table.name} (Delta version {version}, {table.uri}) into the serving database: "
                    f"{str(exc).splitlines()[0]}; nothing of this sync was kept"
                ) from exc
            con.unregister(source)
            registered.remove(source)
            rows = con.execute(f'SELECT count(*) FROM "{table.layer}"."{table.table}"').fetchall()[0][0]
            con.execute(
                f"INSERT OR REPLACE INTO {SYNC_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                [table.layer, table.table, version, rows, now, table.uri],
            )
            report.copied.append((table.qualified, version, rows))
        for table in tables:
            report.commented += comment_columns(con, table.layer, table.table, (descriptions or {}).get((table.layer, table.table), {}))
        current = {(t.layer, t.table) for t in tables}
        for layer, name in sorted(set(synced) - current):
            con.execute(f'DROP TABLE IF EXISTS "{layer}"."{name}"')
            con.execute(f"DELETE FROM {SYNC_TABLE} WHERE layer = ? AND table_name = ?", [layer, name])
            report.dropped.append(f"{layer}.{name}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for source in registered:  # after the rollback: an aborted transaction refuses even this
            con.unregister(source)
    return report
