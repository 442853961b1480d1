"""The project's SQLite event log: Dagster's own storage, with its engines and the index's connection kept.

Why: a single-run backfill writes one event per (asset, partition) and step, and Dagster's SQLite event log
builds a new SQLAlchemy engine for every write and disposes of it after (several per event: the run's own
database, then the index database for asset events). A new engine starts with an empty compiled-statement cache,
so every INSERT is compiled again, and closing the last connection of a WAL database checkpoints it (an fsync:
about 3 ms of the ~3.2 ms an event cost on this machine's disk). This class:
- keeps one engine and one open connection per database file (LRU of 16 files): no compile and no checkpoint per
  write (other processes read and write the same files as SQLite's WAL allows; SQLite checkpoints every 1,000
  pages and when a file's last connection closes);
- after a write to a run's own database, touches that file (`os.utime`). The webserver's live view of a run's logs
  watches `<run_id>.db` for a change, which Dagster's way produced with the checkpoint of every close; a write
  into the WAL alone does not change that file, so without the touch the UI's log view would freeze;
- sets `synchronous=NORMAL` (WAL): commits are not fsynced one by one; a power cut can lose the last events,
  never corrupt the database;
- remembers which tables the index has (Dagster asks before each check evaluation, with a new connection);
- holds the per-partition check evaluations a range check records (`held_check_evaluations`, used by
  `energy_assets.range_checks.report`: 366 records per check for a year of NESO) and stores them as one batch when
  the check's loop ends: each was three writes in three transactions (the run's log, the index's copy, the update of
  its planned execution row) and two serialisations of the same event (about 2 ms of the ~3 ms each cost);
- writes a batch of events in one transaction per database (`store_event_batch`) instead of one per event.
  Dagster hands batches to its storage when `DAGSTER_EVENT_BATCH_SIZE` is set (what Dagster+ does; off by
  default in open source because the stock SQLite class would store a batch event by event anyway): the planned
  events of a run (one per asset and partition) and the materialisations of a range step (one per partition) come
  as one batch each. This class sets it (to its default in `settings`) in the process that creates it, unless the
  environment already says otherwise.
The data, the files and the schema are exactly Dagster's: an instance written by either class reads with the other.
`latest_materialization_targets` (used by `energy_assets.range_checks`) reads the latest materialisation of each
partition from the index columns of any of Dagster's SQL event logs, without deserialising the events.

Configured in `dagster_home/dagster.yaml` (`event_log_storage`). It is the one module of the project built on
a Dagster internal (`dagster._core.storage.event_log`): Dagster's storage plugins can only subclass its own
storage classes (its docs configure this very class by that module path). A test runs real runs on it and
reads them back with the stock class.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timezone

from dagster import DagsterEventType, DagsterInstance, EventLogEntry, serialize_value
from dagster._core.storage.event_log import SqlEventLogStorage, SqlEventLogStorageMetadata, SqlEventLogStorageTable
from dagster._core.storage.event_log import SqliteEventLogStorage as DagsterSqliteEventLogStorage
from sqlalchemy import Connection, Engine, and_, bindparam, create_engine, event, func, select
from sqlalchemy.pool import QueuePool

from energy_assets import settings

BUSY_TIMEOUT_SECONDS = 15  # as Dagster's own
INDEX_SHARD = "index"  # Dagster's name for the database of the asset and run-status index
KEPT_ENGINES = 16  # the index database and the databases of the runs this process writes or reads lately
# Dagster's switch for batched event writes (read by the instance at each event). The batches it forms are at most
# this long; a range step's materialisations and a run's planned events are one batch each up to it.
EVENT_BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"  # its default, set when unset: energy_assets/settings.py
# What store_event_batch writes as a batch: asset events mirrored in the index with their tags, and the planned
# checks (Dagster's batches hold only these: planned events of a run, materialisations/observations of a step).
_ASSET_EVENTS = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}
_CHECK_EVENTS = {DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}
_EVALUATION = DagsterEventType.ASSET_CHECK_EVALUATION
# The index's table of check executions (one row per planned check and partition of a run), from the event log's
# schema, and the statuses Dagster writes there (`AssetCheckExecutionRecordStatus`) for an evaluation.
AssetCheckExecutionsTable = SqlEventLogStorageMetadata.tables["asset_check_executions"]
_CHECKS = AssetCheckExecutionsTable.c
_PASSED, _FAILED, _PLANNED = "SUCCEEDED", "FAILED", "PLANNED"
# The update of a planned check execution by its evaluation, as Dagster's `_update_asset_check_evaluation` writes it
# for an evaluation of one partition in a run; compiled once, executed per evaluation with the serialised event.
_UPDATE_PLANNED_EXECUTION = (
    AssetCheckExecutionsTable.update()
    .where(
        and_(
            _CHECKS.asset_key == bindparam("b_asset_key"),
            _CHECKS.check_name == bindparam("b_check_name"),
            _CHECKS.run_id == bindparam("b_run_id"),
            _CHECKS.partition == bindparam("b_partition"),
        )
    )
    .values(
        execution_status=bindparam("execution_status"),
        evaluation_event=bindparam("evaluation_event"),
        evaluation_event_timestamp=bindparam("evaluation_event_timestamp"),
        evaluation_event_storage_id=bindparam("evaluation_event_storage_id"),
        materialization_event_storage_id=bindparam("materialization_event_storage_id"),
    )
)


# The index's copy of a batch of events (check evaluations, asset events): one statement for all of them, the new ids
# returned in the rows' order.
_INSERT_RETURNING_ID = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)


def _partition_evaluation(event: EventLogEntry) -> bool:
    """A check evaluation of one partition in a run (what `holding_check_evaluations` holds)."""
    return event.dagster_event_type == _EVALUATION and bool(event.run_id) and event.dagster_event.event_specific_data.partition is not None


def held_check_evaluations(instance: DagsterInstance) -> AbstractContextManager:
    """A scope in which the instance's event log holds the check evaluations of single partitions and stores them
    as one batch when the scope ends (also on an error); any other event stored meanwhile stores the held ones first,
    so the run's log keeps its order. With another event log (PostgreSQL, Dagster's stock class) it does nothing."""
    storage = instance.event_log_storage
    return storage.holding_check_evaluations() if isinstance(storage, SqliteEventLogStorage) else nullcontext()


# Partition keys per query of `latest_materialization_targets` (SQLite's older builds allow 999 bound parameters).
_PARTITIONS_PER_QUERY = 500


def latest_materialization_targets(instance: DagsterInstance, asset_key, partitions: Sequence[str]) -> dict[str, tuple[int, str, float]] | None:
    """{partition: (storage id, run id, timestamp)} of the latest materialisation of each of `partitions` (partitions
    never materialised are absent), read from the event log's index columns, without deserialising the events (365
    materialisation events took 0.07-0.09 s to deserialise, once per checked asset of a NESO year's range run).
    The timestamp is the index column's, to the microsecond. None when the instance's event log is not one of
    Dagster's SQL storages (SQLite, PostgreSQL, in-memory): the caller then reads the records."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return None
    events = SqlEventLogStorageTable.c
    keys = sorted(set(partitions))
    found: dict[str, tuple[int, str, float]] = {}
    with storage.index_connection() as conn:
        for i in range(0, len(keys), _PARTITIONS_PER_QUERY):
            latest = (
                select(func.max(events.id))
                .where(
                    events.asset_key == asset_key.to_string(),
                    events.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
                    events.partition.in_(keys[i : i + _PARTITIONS_PER_QUERY]),
                )
                .group_by(events.partition)
            )
            rows = conn.execute(select(events.partition, events.id, events.run_id, events.timestamp).where(events.id.in_(latest.scalar_subquery())))
            for partition, storage_id, run_id, at in rows:
                # the column holds the event's UTC time without a zone (Dagster writes utcfromtimestamp)
                found[partition] = (int(storage_id), run_id, at.replace(tzinfo=timezone.utc).timestamp())
    return found


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
        self._tables_found: set[str] = set()
        self._holding = threading.local()  # per thread: the held check evaluations (`holding_check_evaluations`)
        settings.export(EVENT_BATCH_SIZE_VARIABLE, settings.SETTINGS[EVENT_BATCH_SIZE_VARIABLE].default, overwrite=False)
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
        engine = create_engine(
            self.conn_string_for_shard(shard),
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},  # used under self._db_lock
            poolclass=QueuePool,  # one connection kept open: no WAL checkpoint per use
            pool_size=1,
            max_overflow=4,
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
                raw = conn.connection.dbapi_connection
                changes = raw.total_changes
                with conn.begin():
                    yield conn
                if shard != INDEX_SHARD and raw.total_changes != changes:
                    os.utime(self.path_for_shard(shard))  # a watcher of the run's logs hears of it (module doc)

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before storing every check evaluation whether the index has the checks' table, each time
        with a new engine and connection (about 1.4 ms). A table it has found stays: Dagster never drops one."""
        if table_name not in self._tables_found and super().has_table(table_name):
            self._tables_found.add(table_name)
        return table_name in self._tables_found

    @contextmanager
    def holding_check_evaluations(self) -> Iterator[None]:
        """See `held_check_evaluations`. Nested scopes hold until the outermost ends."""
        if getattr(self._holding, "events", None) is not None:
            yield
            return
        self._holding.events = []
        try:
            yield
        finally:
            self._store_held()
            self._holding.events = None

    def _store_held(self) -> None:
        held = getattr(self._holding, "events", None)
        if held:
            self._holding.events = []
            self.store_event_batch(held)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's rows for a check planned over a partition range (one per partition, status PLANNED), with the
        event serialised once rather than once per partition, in one executemany (Dagster builds one INSERT of N
        VALUES and serialises the same event N times: 0.64 s of the 0.87 s a NESO year took before its first step)."""
        planned = event.dagster_event.event_specific_data
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        shared = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": _PLANNED,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**shared, "partition": key} for key in partition_keys])

    def store_event(self, event: EventLogEntry) -> None:
        held = getattr(self._holding, "events", None)
        if held is not None:
            if _partition_evaluation(event):
                held.append(event)
                return
            self._store_held()  # the run's log keeps the order the events came in
        super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The records `store_event` writes for each event, in the same order, in one transaction on the run's
        database and one on the index per stretch of asset events (a planned check between them is mirrored as
        `store_event` does). A batch of other kinds, or of several runs, is stored event by event.
        A failure before the run's database commits stores nothing, and Dagster then stores the batch event by
        event. A failure of the index after it (SQLite busy for 15 s, a full disk) leaves the events in the run's
        log, and Dagster's fallback writes them there a second time: the same partial failure `store_event` has
        between its two databases, widened to a batch."""
        if getattr(self._holding, "events", None):  # held evaluations came first: the run's log keeps the order
            self._store_held()
        kinds = {e.dagster_event_type for e in events}
        if all(_partition_evaluation(e) for e in events):
            return self._store_evaluations(events)
        if len(events) < 2 or not kinds <= _ASSET_EVENTS | _CHECK_EVENTS or len({e.run_id for e in events}) != 1:
            return super().store_event_batch(events)
        rows = [self._event_to_row(e) for e in events]  # what `prepare_insert_event` inserts, serialised once
        with self.run_connection(events[0].run_id) as conn:  # all or nothing: a failure here stores nothing
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        i = 0
        while i < len(events):
            if events[i].dagster_event_type in _CHECK_EVENTS:  # as store_event mirrors it
                with self.index_connection() as conn:
                    event_id = conn.execute(SqlEventLogStorageTable.insert().values(**rows[i])).inserted_primary_key[0]
                self.store_asset_check_event(events[i], event_id)
                i += 1
                continue
            j = i
            while j < len(events) and events[j].dagster_event_type in _ASSET_EVENTS:
                j += 1
            self._mirror_asset_events(events[i:j], rows[i:j])
            i = j

    def _store_evaluations(self, events: Sequence[EventLogEntry]) -> None:
        """Check evaluations of single partitions in runs, with the records `store_event` writes for each: the event
        in its run's log and in the index, and its planned execution row updated (inserted when none was planned, as
        Dagster does), each event serialised once; one transaction per database and run."""
        by_run: dict[str, list[EventLogEntry]] = {}
        for e in events:
            by_run.setdefault(e.run_id, []).append(e)
        for run_id, run_events in by_run.items():
            rows = [self._event_to_row(e) for e in run_events]
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), rows)
            with self.index_transaction() as conn:
                # one INSERT ... RETURNING for every event (ids in the events' order), then one executemany UPDATE
                # of the planned rows and one INSERT of the rows that were never planned
                ids = conn.execute(_INSERT_RETURNING_ID, rows).scalars().all()
                if len(ids) != len(rows) or any(event_id is None for event_id in ids):
                    raise RuntimeError(f"the event log index gave no id to a check evaluation of run {run_id}")
                planned = self._planned_check_partitions(conn, run_id, run_events)
                updates, inserts = [], {}
                for e, row, event_id in zip(run_events, rows, ids, strict=True):
                    evaluation = e.dagster_event.event_specific_data
                    target = evaluation.target_materialization_data
                    values = {
                        "execution_status": _PASSED if evaluation.passed else _FAILED,
                        "evaluation_event": row["event"],
                        "evaluation_event_timestamp": datetime.fromtimestamp(e.timestamp, timezone.utc).replace(tzinfo=None),
                        "evaluation_event_storage_id": event_id,
                        "materialization_event_storage_id": target.storage_id if target else None,
                    }
                    key = (evaluation.asset_key.to_string(), evaluation.check_name, evaluation.partition)
                    if key in planned:
                        updates.append({"b_asset_key": key[0], "b_check_name": key[1], "b_run_id": run_id, "b_partition": key[2], **values})
                    else:  # no planned row: Dagster inserts one, and a later evaluation of it updates that row
                        inserts[key] = {"asset_key": key[0], "check_name": key[1], "run_id": run_id, "partition": key[2], **values}
                if updates:
                    conn.execute(_UPDATE_PLANNED_EXECUTION, updates)
                if inserts:
                    conn.execute(AssetCheckExecutionsTable.insert(), list(inserts.values()))

    @staticmethod
    def _planned_check_partitions(conn: Connection, run_id: str, events: Sequence[EventLogEntry]) -> set[tuple[str, str, str]]:
        """(asset key, check name, partition) of the run's planned check executions among those of `events`."""
        checks = {(e.dagster_event.event_specific_data.asset_key.to_string(), e.dagster_event.event_specific_data.check_name) for e in events}
        found: set[tuple[str, str, str]] = set()
        for asset_key, check_name in checks:
            query = select(_CHECKS.partition).where(
                and_(_CHECKS.run_id == run_id, _CHECKS.asset_key == asset_key, _CHECKS.check_name == check_name, _CHECKS.partition.is_not(None))
            )
            found.update((asset_key, check_name, partition) for partition in conn.execute(query).scalars())
        return found

    def _mirror_asset_events(self, events: Sequence[EventLogEntry], rows: Sequence[dict]) -> None:
        """store_event's index records of asset events, in one transaction: each event, its tags, and the asset's
        row, written once per stretch of one asset and kind with that stretch's last event (each event of a
        stretch overwrites the same columns of that row, so the row ends as store_event leaves it)."""
        with self.index_transaction() as conn:
            ids = conn.execute(_INSERT_RETURNING_ID, rows).scalars().all()  # in the rows' order
            if len(ids) != len(rows) or any(event_id is None for event_id in ids):
                raise RuntimeError(f"the event log index gave no id to an event of run {events[0].run_id}")
            self._store_asset_event_tags(conn, events, ids)
            for n, event in enumerate(events):
                following = events[n + 1] if n + 1 < len(events) else None
                if following is None or (following.dagster_event.asset_key, following.dagster_event_type) != (
                    event.dagster_event.asset_key,
                    event.dagster_event_type,
                ):
                    self._store_asset_event(conn, event, ids[n])

    def _forget_engines(self) -> None:
        while self._engines:
            self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._forget_engines()  # the run files go: a kept engine must not skip creating a new file's schema
        self._tables_found.clear()
        super().wipe()

    def dispose(self) -> None:
        self._forget_engines()
        super().dispose()
