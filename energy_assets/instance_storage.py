"""The project's SQLite event log: Dagster's own storage, with its engines and the index's connection kept.

Why: a single-run backfill writes one event per (asset, partition) and step, and Dagster's SQLite event log
builds a new SQLAlchemy engine for every write and disposes of it after (several per event: the run's own
database, then the index database for asset events). A new engine starts with an empty compiled-statement cache,
so every INSERT is compiled again, and closing the last connection of a WAL database checkpoints it. This class:
- keeps one engine per database file (LRU of 16);
- keeps the index database's connection open (no checkpoint per write; other processes read and write it as
  SQLite's WAL allows), while a run's own database is still closed after each use as Dagster does, because the
  webserver's live log view watches that file for the checkpoint;
- sets `synchronous=NORMAL` (WAL): commits are not fsynced one by one; a power cut can lose the last events,
  never corrupt the database.
The data, the files and the schema are exactly Dagster's: an instance written by either class reads with the other.

Configured in `dagster_home/dagster.yaml` (`event_log_storage`). It is the one module of the project built on
a Dagster internal (`dagster._core.storage.event_log`): Dagster's storage plugins can only subclass its own
storage classes (its docs configure this very class by that module path). A test runs real runs on it and
reads them back with the stock class.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log import SqliteEventLogStorage as DagsterSqliteEventLogStorage
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool, QueuePool

from energy_assets import settings

BUSY_TIMEOUT_SECONDS = 15  # as Dagster's own
INDEX_SHARD = "index"  # Dagster's name for the database of the asset and run-status index
KEPT_ENGINES = 16  # the index database and the databases of the runs this process writes or reads lately


def _wal_without_fsync_per_commit(dbapi_connection, _record) -> None:
    """WAL with synchronous=NORMAL: commits are not fsynced one by one (the WAL is, at checkpoints). A power cut can
    lose the last events written, never corrupt the database (SQLite's documented guarantee for WAL mode)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SqliteEventLogStorage(DagsterSqliteEventLogStorage):
    """Dagster's SQLite event log with a kept engine per shard (database file). `base_dir` defaults to
    `$DAGSTER_HOME/history/runs`, where Dagster's default instance keeps it."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()  # before the parent's init, which may connect
        super().__init__(base_dir or str(settings.dagster_home() / "history" / "runs"), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        from dagster import Field, StringSource

        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        if shard == INDEX_SHARD:  # one connection kept open: no WAL checkpoint per use
            pooling = {"poolclass": QueuePool, "pool_size": 1, "max_overflow": 4}
        else:
            # a run's own database is closed after each use, as Dagster does: closing the last connection
            # checkpoints the WAL into `<run_id>.db`, and the webserver's live view of a run's logs watches that
            # file (not the `-wal` beside it), so a kept connection would freeze the UI's log view
            pooling = {"poolclass": NullPool}
        engine = create_engine(
            self.conn_string_for_shard(shard),
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},  # used under self._db_lock
            **pooling,
        )
        event.listen(engine, "connect", _wal_without_fsync_per_commit)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > KEPT_ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def _forget_engines(self) -> None:
        while self._engines:
            self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._forget_engines()  # the run files go: a kept engine must not skip creating a new file's schema
        super().wipe()

    def dispose(self) -> None:
        self._forget_engines()
        super().dispose()
