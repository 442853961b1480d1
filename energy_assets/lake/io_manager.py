"""The project's Delta Lake IO manager: dagster-deltalake's machinery with a handler that is correct.

Built on dagster-deltalake (its `DbIOManager` wiring, `DeltaLakeDbClient` connection and table layout
`<root>/<layer>/<table>`), with our own polars type handler in place of the stock one. Against the
stock 0.29.27 handler with deltalake 1.6 this fixes, each with a regression test:

1. multi-partition runs (single-run backfills) overwrite exactly their partitions, repeatedly;
2. inputs mapped with offsets (`TimeWindowPartitionMapping(start_offset=-1)`) hold every mapped day;
3. unpartitioned readers of a partitioned table see all partitions;
4. a partition overwrite never replaces the whole table, whatever the partition column's type;
5. outputs report `dagster/row_count`, `dagster/column_schema`, the table URI, size and a preview;
6. `merge` (upsert on key columns, newest version wins) and `append` (optionally insert-only on a key)
   write modes, chosen per asset with metadata;
7. multi-dimensional partitions (day x zone) read and write the right slice;
8. streams: an output may be a `FrameStream` (frames produced batch by batch, e.g. a chunk of days at a
   time), written in ONE Delta transaction through an Arrow `RecordBatchReader`, each batch validated
   against the run's slice before the commit; metadata the producer gathers while it runs is reported
   with the output. Only one batch (plus delta-rs's open file buffers) is in memory at a time.

Asset metadata understood by the handler:

- `partition_expr`: the partition column (or `{dimension: column}` for multi-partitions), as in
  dagster-deltalake;
- `write_mode`: `overwrite` (default: replace the slice the run covers), `merge` or `append`;
- `merge_keys`: key columns for `merge` (and for insert-only `append`);
- `merge_order_by`: version column for `merge`; the row with the greatest value wins;
- `partition_by`: physical Delta partition columns (default: the date/string partition columns).

Every write is one Delta transaction: a failed run leaves the table at its previous version (a process
killed mid-write leaves only unreferenced data files, which readers ignore and `vacuum` removes).

Concurrent writers (runs for other partitions, or the same partition, committing at the same time): with
deltalake 1.6, blind appends never conflict, and overwrites/merges restricted to *different* partitions
commit side by side; an overwrite or merge racing another writer on the *same* partition, and two writers
creating the same table, fail with `CommitFailedError`. Writes therefore

- create a missing table with a schema-only commit first, so the data write is always checked against a
  snapshot (two "first" writes of one partition would otherwise both land: duplicates);
- re-run the whole write on `CommitFailedError` from a fresh snapshot, with bounded exponential backoff and
  jitter (`commit_max_attempts`, `commit_backoff_s`, `commit_backoff_max_s`). Overwrite and merge are
  idempotent, so the last writer wins and no row is doubled; a blind append is only retried after a
  definite conflict (the failed commit did not land).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MultiPartitionsDefinition,
    PartitionKeyRange,
    TimeWindowPartitionsDefinition,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TablePartitionDimension, TableSlice
from dagster_deltalake.io_manager import DeltaLakeDbClient, TableConnection
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from pydantic import Field

from energy_assets.lake.resource import LakeResource
from energy_assets.lake.slices import (
    SliceCondition,
    check_identifier,
    conditions_expr,
    conditions_sql,
    describe,
    slice_conditions,
)

WRITE_MODES = ("overwrite", "merge", "append")


T = TypeVar("T")

DEFAULT_COMMIT_MAX_ATTEMPTS = 8
DEFAULT_COMMIT_BACKOFF_S = 0.1
DEFAULT_COMMIT_BACKOFF_MAX_S = 5.0


class LakeWriteError(RuntimeError):
    """An output cannot be written as asked; the table is left as it was."""


# Rows per Arrow batch handed to delta-rs: a data frame is converted slice by slice, never whole.
WRITE_BATCH_ROWS = 1 << 20


@dataclass
class FrameStream:
    """An output produced batch by batch and written in ONE Delta transaction (write modes `overwrite` and
    `append` without merge keys).

    - `schema`: the polars schema of the output; every batch is cast to it (column order included).
    - `batches`: a function returning an iterable of polars frames. It is called once per write attempt
      (a commit conflict re-runs the whole write from a fresh snapshot), so it must start afresh each time.
    - `metadata`: anything the producer records while it runs (counts, ...): reported with the output once
      the batches are consumed (the producer should reset what it accumulates at each call of `batches`).

    Each batch is checked against the run's partitions before it is handed to delta-rs; a batch outside
    them, or an exception raised by the producer, aborts the write before the commit: the table is left as
    it was. The producer may therefore validate a whole-output invariant after its last batch.
    """

    schema: Mapping[str, Any]
    batches: Callable[[], Iterable[pl.DataFrame]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=dict(self.schema))


class LakeCommitConflictError(LakeWriteError):
    """Concurrent writers kept winning: the write was retried `max_attempts` times and never committed."""


def with_commit_retries(
    action: Callable[[], T],
    what: str,
    max_attempts: int = DEFAULT_COMMIT_MAX_ATTEMPTS,
    backoff_s: float = DEFAULT_COMMIT_BACKOFF_S,
    backoff_max_s: float = DEFAULT_COMMIT_BACKOFF_MAX_S,
    log: Callable[[str], None] | None = None,
) -> tuple[T, int]:
    """Run `action` (one whole Delta transaction, re-reading the table) until it commits.

    Only `CommitFailedError` is retried: delta-rs raises it when a concurrent transaction conflicts, and
    then nothing of ours was committed. Waits grow exponentially (with +-50% jitter, so racing writers
    spread out) up to `backoff_max_s`. Returns the action's result and the number of attempts.
    """
    attempts = max(1, int(max_attempts))
    for attempt in range(1, attempts + 1):
        try:
            return action(), attempt
        except CommitFailedError as exc:
            reason = str(exc).splitlines()[0]
            if attempt == attempts:
                raise LakeCommitConflictError(
                    f"{what}: gave up after {attempts} attempts, a concurrent writer won every time; last conflict: {reason}"
                ) from exc
            delay = min(backoff_max_s, backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            if log:
                log(f"{what}: commit conflict with a concurrent writer (attempt {attempt}/{attempts}): {reason}; retrying in {delay:.2f} s")
            time.sleep(delay)
    raise AssertionError("unreachable")


def storage_options_from_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """`ENERGY_LAKE_STORAGE_OPTIONS` plus explicit ones (kept for the modules not yet on `LakeResource`)."""
    from energy_assets import settings

    return {**settings.lake_storage_options(), **(extra or {})}


def open_table(uri: str, storage_options: dict[str, str]) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=storage_options or None)
    except TableNotFoundError:
        return None


def scan_table(uri: str, storage_options: dict[str, str]) -> pl.LazyFrame:
    return pl.scan_delta(uri, storage_options=storage_options or None)


def markdown_preview(df: pl.DataFrame, rows: int = 5) -> str:
    head = df.head(rows)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        cells = []
        for v in row:
            s = "" if v is None else str(v)
            s = s.replace("|", "\\|").replace("\n", " ")
            cells.append(s if len(s) <= 60 else s[:57] + "...")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_schema_metadata(schema: pl.Schema) -> TableSchema:
    return TableSchema(columns=[TableColumn(name=name, type=str(dtype)) for name, dtype in schema.items()])


def _add_actions(table: DeltaTable) -> pa.Table:
    return pa.table(table.get_add_actions(flatten=True))


class LakePolarsTypeHandler(DbTypeHandler[pl.DataFrame | pl.LazyFrame]):
    """Writes and reads polars frames as Delta tables, one transaction per output."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pl.DataFrame, pl.LazyFrame, FrameStream]

    # ------------------------------------------------------------------ output
    def handle_output(
        self,
        context: OutputContext,
        table_slice: TableSlice,
        obj: pl.DataFrame | pl.LazyFrame | FrameStream,
        connection: TableConnection,
    ) -> dict[str, Any]:
        meta = context.definition_metadata or {}
        mode = str(meta.get("write_mode", "overwrite"))
        if mode not in WRITE_MODES:
            raise LakeWriteError(f"{context.asset_key.to_user_string()}: unknown write_mode {mode!r}; use one of {WRITE_MODES}")
        if isinstance(obj, FrameStream):
            return self._handle_stream(context, table_slice, obj, connection, meta, mode)
        df = obj.collect() if isinstance(obj, pl.LazyFrame) else obj

        conditions = slice_conditions(table_slice.partition_dimensions, df.schema)
        _validate_in_slice(df, conditions, context)
        uri = connection.table_uri
        options = connection.storage_options
        partition_by = _partition_by(meta, conditions, df.schema)
        name = context.asset_key.to_user_string()
        if mode == "merge" or (mode == "append" and meta.get("merge_keys")):
            df = _prepare_merge_source(df, meta, name, mode)
        retry = dict(connection.table_config or {})

        def write_once() -> dict[str, Any]:
            table = open_table(uri, options)
            if table is None:
                table = _create_table(uri, df, partition_by, options)
            return _write(table, df, mode, meta, conditions)

        stats, attempts = with_commit_retries(
            write_once,
            f"{name} ({describe(conditions)})",
            max_attempts=retry.get("commit_max_attempts", DEFAULT_COMMIT_MAX_ATTEMPTS),
            backoff_s=retry.get("commit_backoff_s", DEFAULT_COMMIT_BACKOFF_S),
            backoff_max_s=retry.get("commit_backoff_max_s", DEFAULT_COMMIT_BACKOFF_MAX_S),
            log=context.log.warning if context.log else None,
        )
        stats["commit_attempts"] = attempts
        return self._output_metadata(uri, options, conditions, df, mode, stats)

    def _handle_stream(
        self, context: OutputContext, table_slice: TableSlice, stream: FrameStream, connection: TableConnection, meta: dict, mode: str
    ) -> dict[str, Any]:
        name = context.asset_key.to_user_string()
        if mode == "merge" or (mode == "append" and meta.get("merge_keys")):
            raise LakeWriteError(f"{name}: a FrameStream output can only be written with write_mode 'overwrite' or plain 'append', not {mode!r} with merge keys")
        empty = stream.empty()
        conditions = slice_conditions(table_slice.partition_dimensions, empty.schema)
        uri, options = connection.table_uri, connection.storage_options
        partition_by = _partition_by(meta, conditions, empty.schema)
        retry = dict(connection.table_config or {})
        first: list[pl.DataFrame] = []

        def frames() -> Iterator[pl.DataFrame]:
            first.clear()
            for batch in stream.batches():
                batch = _conform(batch, empty.schema, name)
                _validate_in_slice(batch, conditions, context)
                if not first and batch.height:
                    first.append(batch.head(5))
                yield batch

        def write_once() -> dict[str, Any]:
            table = open_table(uri, options)
            if table is None:
                table = _create_table(uri, empty, partition_by, options)
            return _write_frames(table, frames(), empty, mode, conditions)

        stats, attempts = with_commit_retries(
            write_once,
            f"{name} ({describe(conditions)})",
            max_attempts=retry.get("commit_max_attempts", DEFAULT_COMMIT_MAX_ATTEMPTS),
            backoff_s=retry.get("commit_backoff_s", DEFAULT_COMMIT_BACKOFF_S),
            backoff_max_s=retry.get("commit_backoff_max_s", DEFAULT_COMMIT_BACKOFF_MAX_S),
            log=context.log.warning if context.log else None,
        )
        stats["commit_attempts"] = attempts
        out = self._output_metadata(uri, options, conditions, first[0] if first else empty, mode, stats)
        return {**out, **stream.metadata}

    def _output_metadata(self, uri, options, conditions, df, mode, stats) -> dict[str, Any]:
        table = DeltaTable(uri, storage_options=options or None)
        actions = _add_actions(table)
        total_rows = int(pa.compute.sum(actions["num_records"]).as_py() or 0) if actions.num_rows else 0
        size_bytes = int(pa.compute.sum(actions["size_bytes"]).as_py() or 0) if actions.num_rows else 0
        lf = pl.scan_delta(uri, storage_options=options or None)
        expr = conditions_expr(conditions)
        slice_rows = total_rows if expr is None else int(lf.filter(expr).select(pl.len()).collect().item())
        schema = lf.collect_schema()
        metadata: dict[str, Any] = {
            "dagster/row_count": MetadataValue.int(total_rows),
            "dagster/column_schema": table_schema_metadata(schema),
            "dagster/uri": MetadataValue.path(uri),
            "table_uri": MetadataValue.path(uri),
            "size_bytes": MetadataValue.int(size_bytes),
            "num_files": MetadataValue.int(actions.num_rows),
            "delta_version": MetadataValue.int(table.version()),
            "write_mode": MetadataValue.text(mode),
            "slice": MetadataValue.text(describe(conditions)),
            "preview": MetadataValue.md(markdown_preview(df)),
            **{k: MetadataValue.int(int(v)) for k, v in stats.items()},
        }
        if conditions:
            metadata["dagster/partition_row_count"] = MetadataValue.int(slice_rows)
        return metadata

    # ------------------------------------------------------------------ input
    def load_input(
        self, context: InputContext, table_slice: TableSlice, connection: TableConnection
    ) -> pl.DataFrame | pl.LazyFrame:
        table = open_table(connection.table_uri, connection.storage_options)
        name = f"{table_slice.schema}/{table_slice.table}"
        if table is None:
            raise FileNotFoundError(
                f"Delta table {name} does not exist at {connection.table_uri}: materialise it before its downstream assets"
            )
        lf = _scan(table, connection)
        conditions = slice_conditions(table_slice.partition_dimensions, lf.collect_schema())
        expr = conditions_expr(conditions)
        if expr is not None:
            lf = lf.filter(expr)
        if table_slice.columns:
            lf = lf.select(table_slice.columns)
        if context.dagster_type.typing_type == pl.LazyFrame:
            return lf
        return lf.collect()


def _scan(table: DeltaTable, connection: TableConnection) -> pl.LazyFrame:
    # Pin the version that was opened: a reader sees one consistent snapshot even while writers commit.
    return pl.scan_delta(connection.table_uri, version=table.version(), storage_options=connection.storage_options or None)


def _conform(batch: pl.DataFrame, schema: pl.Schema, name: str) -> pl.DataFrame:
    """A stream's batch with exactly the stream's columns, in order and type."""
    if not isinstance(batch, pl.DataFrame):
        raise LakeWriteError(f"{name}: a FrameStream yielded {type(batch).__name__}, not a polars DataFrame")
    missing = [c for c in schema if c not in batch.columns]
    extra = [c for c in batch.columns if c not in schema]
    if missing or extra:
        raise LakeWriteError(f"{name}: a FrameStream batch has columns {batch.columns}, not the stream's {list(schema)} (missing {missing}, extra {extra})")
    return batch.select(list(schema)).cast(dict(schema))  # type: ignore[arg-type]


class _StreamAborted(Exception):
    """Carries the producer's (or the validation's) exception through delta-rs's Arrow stream."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _record_batches(frames: Iterable[pl.DataFrame], failure: list[BaseException]) -> Iterator[pa.RecordBatch]:
    try:
        for frame in frames:
            for offset in range(0, frame.height, WRITE_BATCH_ROWS):
                yield from frame.slice(offset, WRITE_BATCH_ROWS).to_arrow().to_batches()
    except BaseException as exc:  # noqa: BLE001 - re-raised by _write_frames after delta-rs gives up
        failure.append(exc)
        raise


def _write_frames(table: DeltaTable, frames: Iterable[pl.DataFrame], empty: pl.DataFrame, mode: str, conditions: list[SliceCondition]) -> dict[str, Any]:
    """Frames streamed into one Delta transaction (overwrite of the slice, or a blind append).

    Rows are counted as they pass; if the producer or a slice check raises, delta-rs aborts before the
    commit and that exception is raised here (not delta-rs's wrapper of it)."""
    schema = empty.to_arrow().schema
    failure: list[BaseException] = []
    count = [0]

    def counted() -> Iterator[pa.RecordBatch]:
        for batch in _record_batches(frames, failure):
            count[0] += batch.num_rows
            yield batch.cast(schema) if batch.schema != schema else batch

    reader = pa.RecordBatchReader.from_batches(schema, counted())
    try:
        if mode == "overwrite":
            write_deltalake(
                table, reader, mode="overwrite", predicate=conditions_sql(conditions), partition_by=table.metadata().partition_columns or None
            )
        else:
            write_deltalake(table, reader, mode="append")
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    if failure:  # delta-rs committed although the stream failed: cannot happen, but never hide it
        raise LakeWriteError(f"stream failed after the commit: {failure[0]}") from failure[0]
    return {"rows_written" if mode == "overwrite" else "rows_inserted": count[0]}


def _validate_in_slice(df: pl.DataFrame, conditions: list[SliceCondition], context: OutputContext) -> None:
    expr = conditions_expr(conditions)
    if expr is None or df.is_empty():
        return
    outside = df.filter(~expr.fill_null(False))
    if outside.height:
        raise LakeWriteError(
            f"{context.asset_key.to_user_string()}: {outside.height} of {df.height} rows lie outside the partition(s) "
            f"being written ({describe(conditions)}); first offending row: {outside.row(0, named=True)}"
        )


# Physical (Hive-style) partition values become directory names and exact-match predicates: floats (NaN,
# inf, -0.0) and nested types make no sense there.
_PARTITIONABLE = (pl.Date, pl.String, pl.Categorical, pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)


def _partition_by(meta: dict, conditions: list[SliceCondition], schema: pl.Schema | None = None) -> list[str] | None:
    if "partition_by" in meta:
        cols = [check_identifier(c) for c in list(meta["partition_by"] or [])]
        for col in cols:
            if schema is not None and col not in schema:
                raise LakeWriteError(f"partition_by column {col!r} is not in the output (columns: {list(schema)})")
            if schema is not None and not (schema[col] in _PARTITIONABLE or isinstance(schema[col], pl.Datetime | pl.Enum)):
                raise LakeWriteError(
                    f"partition_by column {col!r} has type {schema[col]}; physical partitions must be dates, timestamps, strings, integers or booleans"
                )
        return cols or None
    cols = [c.column for c in conditions if c.kind in ("date", "string")]
    return cols or None


def _create_table(uri: str, df: pl.DataFrame, partition_by: list[str] | None, options: dict[str, str]) -> DeltaTable:
    """Create the table with a schema-only commit, so that every data write is checked against a snapshot.

    Racing creators: the loser's commit fails (`CommitFailedError`, retried by the caller) or is a harmless
    schema-only commit; no data is written here.
    """
    return DeltaTable.create(
        uri, schema=df.head(0).to_arrow().schema, mode="ignore", partition_by=partition_by, storage_options=options or None
    )


def _write(table: DeltaTable, df: pl.DataFrame, mode: str, meta: dict, conditions: list[SliceCondition]) -> dict[str, Any]:
    """One Delta transaction against the snapshot `table`; raises `CommitFailedError` on a conflict."""
    if mode == "merge":
        return _merge(table, df, meta, conditions, update=True)
    if mode == "append" and meta.get("merge_keys"):
        return _merge(table, df, meta, conditions, update=False)
    if mode == "overwrite":
        write_deltalake(
            table,
            df.to_arrow(),
            mode="overwrite",
            predicate=conditions_sql(conditions),
            partition_by=table.metadata().partition_columns or None,
        )
        return {"rows_written": df.height}
    write_deltalake(table, df.to_arrow(), mode="append")
    return {"rows_inserted": df.height}


def _prepare_merge_source(df: pl.DataFrame, meta: dict, name: str, mode: str) -> pl.DataFrame:
    """Check the merge keys and keep one row per key (the newest by `merge_order_by`)."""
    keys = [check_identifier(k) for k in meta.get("merge_keys") or []]
    if not keys:
        raise LakeWriteError(f"{name}: write_mode {mode!r} needs 'merge_keys' metadata")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise LakeWriteError(f"{name}: merge key columns {missing} are not in the output (columns: {df.columns})")
    null_keys = df.filter(pl.any_horizontal(pl.col(keys).is_null()))
    if null_keys.height:
        raise LakeWriteError(f"{name}: {null_keys.height} rows have a null merge key {keys}; first: {null_keys.row(0, named=True)}")
    float_keys = [k for k in keys if df.schema[k].is_float()]
    if float_keys:
        bad = df.filter(pl.any_horizontal([~pl.col(k).is_finite() for k in float_keys]))
        if bad.height:
            raise LakeWriteError(
                f"{name}: {bad.height} rows have a NaN or infinite merge key {float_keys}; first: {bad.row(0, named=True)}"
            )
    order_by = meta.get("merge_order_by")
    if order_by:
        check_identifier(order_by)
        if order_by not in df.columns:
            raise LakeWriteError(f"{name}: merge_order_by column {order_by!r} is not in the output (columns: {df.columns})")
        # Newest version of each key wins inside the batch too; ties keep the last row delivered.
        return df.with_row_index("__row").sort([order_by, "__row"]).unique(keys, keep="last", maintain_order=True).drop("__row")
    return df.unique(keys, keep="last", maintain_order=True)


def _merge(
    table: DeltaTable,
    df: pl.DataFrame,
    meta: dict,
    conditions: list[SliceCondition],
    update: bool,
) -> dict[str, int]:
    keys = [check_identifier(k) for k in meta.get("merge_keys") or []]
    order_by = meta.get("merge_order_by")
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    # Restricting the target to the slice lets delta-rs prune files of other partitions, and keeps merges of
    # different partitions from conflicting with each other.
    target = conditions_sql(conditions, alias="t")
    predicate = f"{on} AND {target}" if target else on
    merger = table.merge(df.to_arrow(), predicate=predicate, source_alias="s", target_alias="t")
    if update:
        merger = merger.when_matched_update_all(predicate=f"s.{order_by} >= t.{order_by}" if order_by else None)
    metrics = merger.when_not_matched_insert_all().execute()
    return {
        "rows_inserted": metrics.get("num_target_rows_inserted", 0),
        "rows_updated": metrics.get("num_target_rows_updated", 0),
    }


def lake_root(configured: str | None = None) -> str:
    """The lake root in force: the configured one, else `ENERGY_LAKE_URI` read now."""
    from energy_assets import settings

    return configured or settings.lake_uri()


class LakeDbClient(DeltaLakeDbClient):
    """dagster-deltalake's client, connecting to tables of the run's lake (the `LakeResource`)."""

    def __init__(self, lake_resource: LakeResource, retry: dict):
        self._lake_resource = lake_resource
        self._retry = retry

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[TableConnection]:
        lake = self._lake_resource.lake()
        yield TableConnection(
            table_uri=lake.table_uri((table_slice.schema, table_slice.table)),
            storage_options=dict(lake.storage_options),
            table_config=dict(self._retry),
        )


class LakeDbIOManager(DbIOManager):
    """DbIOManager whose multi-partition slices come from the run's keys, not from one key range.

    Stock `_get_table_slice` reads `asset_partition_key_range`, which fails when a run covers several
    zones over several days (one key range per zone). Here each dimension gets the set of its values (a
    time window for the time dimension, which must be contiguous) and the run's keys must fill that box:
    a set of keys that does not (say, from a hand-picked backfill) would let an overwrite reach partitions
    outside the run, so it is refused.
    """

    def _get_table_slice(self, context, output_context):
        pdef = context.asset_partitions_def if context.has_asset_partitions else None
        if not isinstance(pdef, MultiPartitionsDefinition):
            return super()._get_table_slice(context, output_context)
        keys = list(context.asset_partition_keys)
        values = {d.name: sorted({k.keys_by_dimension[d.name] for k in keys}) for d in pdef.partitions_defs}
        box = 1
        for v in values.values():
            box *= len(v)
        if box != len(set(keys)):
            raise ValueError(
                f"{context.asset_key.to_user_string()}: the run's {len(keys)} partitions are not a full "
                f"day x zone box ({ {k: len(v) for k, v in values.items()} }); run them as separate runs"
            )
        meta = output_context.definition_metadata or {}
        exprs = meta["partition_expr"]
        dims = []
        for d in pdef.partitions_defs:
            if isinstance(d.partitions_def, TimeWindowPartitionsDefinition):
                windows = [d.partitions_def.time_window_for_partition_key(k) for k in values[d.name]]
                span = d.partitions_def.get_partition_keys_in_range(PartitionKeyRange(values[d.name][0], values[d.name][-1]))
                if len(windows) != len(span):
                    raise ValueError(f"{context.asset_key.to_user_string()}: the run's {d.name} partitions are not contiguous")
                parts = TimeWindow(min(w.start for w in windows), max(w.end for w in windows))
            else:
                parts = values[d.name]
            dims.append(TablePartitionDimension(partition_expr=exprs[d.name], partitions=parts))
        path = context.asset_key.path
        return TableSlice(
            table=path[-1],
            schema=meta.get("schema") or self._schema or (path[-2] if len(path) > 1 else "public"),
            database=self._database,
            partition_dimensions=dims,
            columns=(context.definition_metadata or {}).get("columns"),
        )


class DeltaLakeIOManager(ConfigurableIOManagerFactory):
    """Delta tables at `<root_uri>/<layer>/<table>`, written and read as polars frames by delta-rs."""

    lake: LakeResource = Field(
        default_factory=LakeResource,
        description="The lake the tables live in (root URI and storage options); the same resource every reader uses.",
    )
    commit_max_attempts: int = Field(
        default=DEFAULT_COMMIT_MAX_ATTEMPTS,
        description="How many times a write is tried when concurrent writers make its Delta commit conflict.",
    )
    commit_backoff_s: float = Field(
        default=DEFAULT_COMMIT_BACKOFF_S, description="First wait after a commit conflict (doubles each time, with jitter)."
    )
    commit_backoff_max_s: float = Field(
        default=DEFAULT_COMMIT_BACKOFF_MAX_S, description="Longest wait between two attempts of a conflicting commit."
    )

    def create_io_manager(self, context) -> DbIOManager:
        return LakeDbIOManager(
            db_client=LakeDbClient(
                self.lake,
                {"commit_max_attempts": self.commit_max_attempts, "commit_backoff_s": self.commit_backoff_s,
                 "commit_backoff_max_s": self.commit_backoff_max_s},
            ),
            database="deltalake",
            schema=None,
            type_handlers=[LakePolarsTypeHandler()],
            default_load_type=pl.DataFrame,
            io_manager_name="DeltaLakeIOManager",
        )
