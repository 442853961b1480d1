"""The lake's write engine: one Delta transaction per write, exactly the slice it covers. No Dagster here.

`write(lake, key, data, dimensions, spec)` writes a polars frame (or a `FrameStream`) into the Delta table
`key` of `lake`:

- `overwrite` (default): replace exactly the slice (`dimensions`: half-open time ranges and IN lists, one
  predicate), nothing outside it;
- `merge`: upsert on `merge_keys`, the row with the greatest `merge_order_by` wins (inside the batch too),
  the target restricted to the slice;
- `append` with `merge_keys`: insert-only on the keys (a key already there is left alone);
- `append` without keys: a blind append;
- `replace_if_changed`: a whole (unpartitioned) table, versioned by content: a new Delta version only when the
  rows (compared as a set, with the schema) differ from the table's current rows. For small reference tables
  re-delivered whole (the smart-meter database): their Delta history is then the history of their content.

A `FrameStream` (frames produced batch by batch) is written in ONE transaction through an Arrow
`RecordBatchReader` (overwrite or blind append), each batch conformed to the stream's schema and checked
against the slice before the commit; only one batch (plus delta-rs's open file buffers) is in memory.

Rows outside the slice are refused before anything is written. A missing table is created with a
schema-only commit first, so the data write is always checked against a snapshot (two "first" writes of one
partition would otherwise both land: duplicates). Every write is one Delta transaction: a failed write
leaves the table at its previous version (a process killed mid-write leaves only unreferenced data files,
which readers ignore and `vacuum` removes).

Concurrent writers (deltalake 1.6): blind appends never conflict, and overwrites/merges restricted to
*different* partitions commit side by side; an overwrite or merge racing another writer on the *same*
partition, and two writers creating the same table, fail with `CommitFailedError`. The whole write is then
re-run from a fresh snapshot with bounded exponential backoff and jitter (`RetryPolicy`). Overwrite and merge
are idempotent, so the last writer wins and no row is doubled; a blind append is only retried after a
definite conflict (the failed commit did not land).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from energy_assets.lake.slices import (
    SliceCondition,
    SliceDimension,
    check_identifier,
    conditions_expr,
    conditions_sql,
    describe,
    slice_conditions,
)
from energy_assets.lake.store import Lake

WRITE_MODES = ("overwrite", "merge", "append", "replace_if_changed")

DEFAULT_COMMIT_MAX_ATTEMPTS = 8
DEFAULT_COMMIT_BACKOFF_S = 0.1
DEFAULT_COMMIT_BACKOFF_MAX_S = 5.0

# Rows per Arrow batch handed to delta-rs: a data frame is converted slice by slice, never whole.
WRITE_BATCH_ROWS = 1 << 20
PREVIEW_ROWS = 5

T = TypeVar("T")


class LakeWriteError(RuntimeError):
    """An output cannot be written as asked; the table is left as it was."""


class LakeCommitConflictError(LakeWriteError):
    """Concurrent writers kept winning: the write was retried `max_attempts` times and never committed."""


@dataclass
class FrameStream:
    """An output produced batch by batch and written in ONE Delta transaction (write modes `overwrite` and
    `append` without merge keys).

    - `schema`: the polars schema of the output; every batch is cast to it (column order included).
    - `batches`: a function returning an iterable of polars frames. It is called once per write attempt
      (a commit conflict re-runs the whole write from a fresh snapshot), so it must start afresh each time.
    - `metadata`: anything the producer records while it runs (counts, ...): reported with the output once
      the batches are consumed (the producer should reset what it accumulates at each call of `batches`).

    Each batch is checked against the slice before it is handed to delta-rs; a batch outside it, or an
    exception raised by the producer, aborts the write before the commit: the table is left as it was. The
    producer may therefore validate a whole-output invariant after its last batch.
    """

    schema: Mapping[str, Any]
    batches: Callable[[], Iterable[pl.DataFrame]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=dict(self.schema))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a write is re-run when a concurrent writer wins its commit."""

    max_attempts: int = DEFAULT_COMMIT_MAX_ATTEMPTS
    backoff_s: float = DEFAULT_COMMIT_BACKOFF_S
    backoff_max_s: float = DEFAULT_COMMIT_BACKOFF_MAX_S


@dataclass(frozen=True)
class WriteSpec:
    """How to write: the mode and its keys, and the physical partitioning of a table created by the write.

    `partition_by=None` partitions a new table by the slice's date and string columns; `[]` not at all.
    `name` names the table in errors and logs (`silver/x`)."""

    name: str
    mode: str = "overwrite"
    merge_keys: Sequence[str] = ()
    merge_order_by: str | None = None
    partition_by: Sequence[str] | None = None

    @classmethod
    def from_metadata(cls, name: str, meta: Mapping[str, Any]) -> WriteSpec:
        """From asset metadata `write_mode`, `merge_keys`, `merge_order_by`, `partition_by` (absent: default)."""
        partition_by = list(meta["partition_by"] or []) if "partition_by" in meta else None
        return cls(
            name=name,
            mode=str(meta.get("write_mode", "overwrite")),
            merge_keys=tuple(meta.get("merge_keys") or ()),
            merge_order_by=meta.get("merge_order_by") or None,
            partition_by=partition_by,
        )

    @property
    def keyed(self) -> bool:
        """A merge or an insert-only append (both run as a Delta merge on the keys)."""
        return self.mode == "merge" or (self.mode == "append" and bool(self.merge_keys))


@dataclass
class WriteResult:
    """What a write did: the table, the slice, the counts (`rows_written` / `rows_inserted` / `rows_updated`,
    `commit_attempts`), the first rows written and the producer's metadata (streams)."""

    uri: str
    mode: str
    conditions: list[SliceCondition]
    stats: dict[str, int]
    preview: pl.DataFrame
    producer_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def slice(self) -> str:
        return describe(self.conditions)


@dataclass(frozen=True)
class TableStats:
    """The table after a write: rows (all and in the slice), schema, size, files and Delta version."""

    uri: str
    version: int
    row_count: int
    slice_row_count: int | None
    size_bytes: int
    num_files: int
    schema: pl.Schema
    # rows of the slice per distinct value of its columns (one column per condition, then `rows`); only when
    # asked for (`table_stats(..., by_slice_values=True)`) and the write has a slice
    slice_value_counts: pl.DataFrame | None = None


# ---------------------------------------------------------------------------------------------- retries
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


# ------------------------------------------------------------------------------------------------ write
def write(
    lake: Lake,
    key: str | Sequence[str],
    data: pl.DataFrame | pl.LazyFrame | FrameStream,
    dimensions: Sequence[SliceDimension] = (),
    spec: WriteSpec | None = None,
    retry: RetryPolicy = RetryPolicy(),
    log: Callable[[str], None] | None = None,
) -> WriteResult:
    """Write `data` into the table `key` of `lake` as `spec` says, exactly over the slice `dimensions`.

    Raises `LakeWriteError` (bad mode, keys or rows outside the slice), `SliceError` (a partition that cannot
    be expressed on the columns) or `LakeCommitConflictError`; the table is then left as it was."""
    uri = lake.table_uri(key)
    spec = spec or WriteSpec(name=lake.ref(key).name)
    if spec.mode not in WRITE_MODES:
        raise LakeWriteError(f"{spec.name}: unknown write_mode {spec.mode!r}; use one of {WRITE_MODES}")
    if isinstance(data, FrameStream):
        return _write_stream(lake, key, data, dimensions, spec, retry, log)
    df = data.collect() if isinstance(data, pl.LazyFrame) else data
    if not isinstance(df, pl.DataFrame):
        raise LakeWriteError(f"{spec.name}: cannot write a {type(df).__name__}; return a polars DataFrame, LazyFrame or FrameStream")

    conditions = slice_conditions(dimensions, df.schema)
    if spec.mode == "replace_if_changed" and conditions:
        raise LakeWriteError(f"{spec.name}: write_mode 'replace_if_changed' replaces a whole table; it cannot write a partition slice ({describe(conditions)})")
    validate_in_slice(df, conditions, spec.name)
    partition_by = _partition_by(spec, conditions, df.schema)
    if spec.keyed:
        df = prepare_merge_source(df, spec)

    def write_once() -> dict[str, int]:
        table = lake.open(key)
        if table is None:
            table = create_table(lake, key, df.schema, partition_by)
        return _write(table, df, spec, conditions)

    stats, attempts = with_commit_retries(
        write_once, f"{spec.name} ({describe(conditions)})", retry.max_attempts, retry.backoff_s, retry.backoff_max_s, log
    )
    stats["commit_attempts"] = attempts
    return WriteResult(uri, spec.mode, conditions, stats, df.head(PREVIEW_ROWS))


def _write_stream(
    lake: Lake, key: str | Sequence[str], stream: FrameStream, dimensions: Sequence[SliceDimension], spec: WriteSpec, retry: RetryPolicy, log
) -> WriteResult:
    name = spec.name
    if spec.keyed:
        raise LakeWriteError(
            f"{name}: a FrameStream output can only be written with write_mode 'overwrite' or plain 'append', not {spec.mode!r} with merge keys"
        )
    empty = stream.empty()
    conditions = slice_conditions(dimensions, empty.schema)
    partition_by = _partition_by(spec, conditions, empty.schema)
    first: list[pl.DataFrame] = []

    def frames() -> Iterator[pl.DataFrame]:
        first.clear()
        for batch in stream.batches():
            batch = conform(batch, empty.schema, name)
            validate_in_slice(batch, conditions, name)
            if not first and batch.height:
                first.append(batch.head(PREVIEW_ROWS))
            yield batch

    def write_once() -> dict[str, int]:
        table = lake.open(key)
        if table is None:
            table = create_table(lake, key, empty.schema, partition_by)
        return write_frames(table, frames(), empty.schema, spec.mode, conditions)

    stats, attempts = with_commit_retries(
        write_once, f"{name} ({describe(conditions)})", retry.max_attempts, retry.backoff_s, retry.backoff_max_s, log
    )
    stats["commit_attempts"] = attempts
    return WriteResult(lake.table_uri(key), spec.mode, conditions, stats, first[0] if first else empty, dict(stream.metadata))


def conform(batch: pl.DataFrame, schema: pl.Schema, name: str) -> pl.DataFrame:
    """A stream's batch with exactly the stream's columns, in order and type."""
    if not isinstance(batch, pl.DataFrame):
        raise LakeWriteError(f"{name}: a FrameStream yielded {type(batch).__name__}, not a polars DataFrame")
    missing = [c for c in schema if c not in batch.columns]
    extra = [c for c in batch.columns if c not in schema]
    if missing or extra:
        raise LakeWriteError(f"{name}: a FrameStream batch has columns {batch.columns}, not the stream's {list(schema)} (missing {missing}, extra {extra})")
    return batch.select(list(schema)).cast(dict(schema))  # type: ignore[arg-type]


def validate_in_slice(df: pl.DataFrame, conditions: Sequence[SliceCondition], name: str) -> None:
    """Refuse rows outside the slice (before anything is written), naming the first one."""
    expr = conditions_expr(conditions)
    if expr is None or df.is_empty():
        return
    outside = df.filter(~expr.fill_null(False))
    if outside.height:
        raise LakeWriteError(
            f"{name}: {outside.height} of {df.height} rows lie outside the partition(s) "
            f"being written ({describe(conditions)}); first offending row: {outside.row(0, named=True)}"
        )


def _record_batches(frames: Iterable[pl.DataFrame], failure: list[BaseException]) -> Iterator[pa.RecordBatch]:
    try:
        for frame in frames:
            for offset in range(0, frame.height, WRITE_BATCH_ROWS):
                yield from frame.slice(offset, WRITE_BATCH_ROWS).to_arrow().to_batches()
    except BaseException as exc:  # noqa: BLE001 - re-raised by write_frames after delta-rs gives up
        failure.append(exc)
        raise


def write_frames(table: DeltaTable, frames: Iterable[pl.DataFrame], schema: pl.Schema, mode: str, conditions: Sequence[SliceCondition]) -> dict[str, int]:
    """Frames streamed into one Delta transaction (overwrite of the slice, or a blind append).

    Rows are counted as they pass; if the producer or a slice check raises, delta-rs aborts before the
    commit and that exception is raised here (not delta-rs's wrapper of it)."""
    arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
    failure: list[BaseException] = []
    count = [0]

    def counted() -> Iterator[pa.RecordBatch]:
        for batch in _record_batches(frames, failure):
            count[0] += batch.num_rows
            yield batch.cast(arrow_schema) if batch.schema != arrow_schema else batch

    reader = pa.RecordBatchReader.from_batches(arrow_schema, counted())
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


# Physical (Hive-style) partition values become directory names and exact-match predicates: floats (NaN,
# inf, -0.0) and nested types make no sense there.
_PARTITIONABLE = (pl.Date, pl.String, pl.Categorical, pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)


def _partition_by(spec: WriteSpec, conditions: Sequence[SliceCondition], schema: pl.Schema) -> list[str] | None:
    if spec.partition_by is not None:
        cols = [check_identifier(c) for c in spec.partition_by]
        for col in cols:
            if col not in schema:
                raise LakeWriteError(f"partition_by column {col!r} is not in the output (columns: {list(schema)})")
            if not (schema[col] in _PARTITIONABLE or isinstance(schema[col], pl.Datetime | pl.Enum)):
                raise LakeWriteError(
                    f"partition_by column {col!r} has type {schema[col]}; physical partitions must be dates, timestamps, strings, integers or booleans"
                )
        return cols or None
    cols = [c.column for c in conditions if c.kind in ("date", "string")]
    return cols or None


def create_table(lake: Lake, key: str | Sequence[str], schema: Mapping[str, Any], partition_by: Sequence[str] | None = None) -> DeltaTable:
    """Create the table with a schema-only commit, so that every data write is checked against a snapshot.

    Racing creators: the loser's commit fails (`CommitFailedError`, retried by the caller) or is a harmless
    schema-only commit (`mode="ignore"`); no data is written here. An existing table is returned as it is.
    """
    arrow_schema = pl.DataFrame(schema=dict(schema)).to_arrow().schema
    return DeltaTable.create(
        lake.table_uri(key), schema=arrow_schema, mode="ignore", partition_by=list(partition_by) if partition_by else None,
        storage_options=lake.options,
    )


def _write(table: DeltaTable, df: pl.DataFrame, spec: WriteSpec, conditions: Sequence[SliceCondition]) -> dict[str, int]:
    """One Delta transaction against the snapshot `table`; raises `CommitFailedError` on a conflict."""
    if spec.keyed:
        return _merge(table, df, spec, conditions, update=spec.mode == "merge")
    if spec.mode == "replace_if_changed":
        return _replace_if_changed(table, df, spec)
    if spec.mode == "overwrite":
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


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """The same columns (names and types) and the same rows as a multiset, whatever their order."""
    if a.schema != b.schema or a.height != b.height:
        return False
    cols = a.columns
    return a.sort(cols, nulls_last=True).equals(b.sort(cols, nulls_last=True), null_equal=True)


def _replace_if_changed(table: DeltaTable, df: pl.DataFrame, spec: WriteSpec) -> dict[str, int]:
    """Replace the whole table with `df` unless it already holds exactly these rows (then commit nothing). A table
    of another schema or partitioning (an earlier layout) is replaced with the new schema and no partitions."""
    current = pl.read_delta(table)
    if same_rows(current, df):
        return {"rows_written": 0, "content_changed": 0}
    partitions = list(spec.partition_by or [])
    reshaped = current.schema != df.schema or list(table.metadata().partition_columns) != partitions
    if reshaped:
        write_deltalake(table, df.to_arrow(), mode="overwrite", schema_mode="overwrite", partition_by=partitions)
    else:
        write_deltalake(table, df.to_arrow(), mode="overwrite", partition_by=partitions or None)
    return {"rows_written": df.height, "content_changed": 1}


def prepare_merge_source(df: pl.DataFrame, spec: WriteSpec) -> pl.DataFrame:
    """Check the merge keys and keep one row per key (the newest by `merge_order_by`)."""
    name, mode = spec.name, spec.mode
    keys = [check_identifier(k) for k in spec.merge_keys]
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
    order_by = spec.merge_order_by
    if order_by:
        check_identifier(order_by)
        if order_by not in df.columns:
            raise LakeWriteError(f"{name}: merge_order_by column {order_by!r} is not in the output (columns: {df.columns})")
        # Newest version of each key wins inside the batch too; ties keep the last row delivered.
        return df.with_row_index("__row").sort([order_by, "__row"]).unique(keys, keep="last", maintain_order=True).drop("__row")
    return df.unique(keys, keep="last", maintain_order=True)


def _merge(table: DeltaTable, df: pl.DataFrame, spec: WriteSpec, conditions: Sequence[SliceCondition], update: bool) -> dict[str, int]:
    keys = [check_identifier(k) for k in spec.merge_keys]
    order_by = spec.merge_order_by
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


# ------------------------------------------------------------------------------------------------- read
def read_slice(
    lake: Lake, key: str | Sequence[str], dimensions: Sequence[SliceDimension] = (), columns: Sequence[str] | None = None
) -> pl.LazyFrame:
    """A lazy scan of one snapshot of the table restricted to the slice (no dimensions: every row).

    Raises `FileNotFoundError` naming the table when it does not exist."""
    table = lake.open(key)
    if table is None:
        raise FileNotFoundError(f"Delta table {lake.ref(key).name} does not exist at {lake.table_uri(key)}: materialise it before its downstream assets")
    # Pin the version that was opened: a reader sees one consistent snapshot even while writers commit.
    lf = lake.scan(key, version=table.version())
    expr = conditions_expr(slice_conditions(dimensions, lf.collect_schema()))
    if expr is not None:
        lf = lf.filter(expr)
    if columns:
        lf = lf.select(list(columns))
    return lf


def file_totals(table: DeltaTable) -> tuple[int, int, int]:
    """Data files, rows and bytes of the table's current snapshot, from its add actions. Read through polars (the
    actions' Arrow stream): `pyarrow.table()` of them imports pandas, 0.12-0.17 s in each process that does it."""
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    if actions.height == 0:
        return 0, 0, 0
    rows, size = actions.select(pl.col("num_records").sum(), pl.col("size_bytes").sum()).row(0)
    return actions.height, int(rows or 0), int(size or 0)


def table_stats(lake: Lake, key: str | Sequence[str], conditions: Sequence[SliceCondition] = (), by_slice_values: bool = False) -> TableStats:
    """Rows, rows in the slice, schema, bytes, files and version of the table's current snapshot; with
    `by_slice_values`, also the slice's rows per distinct value of its columns (a run over several partitions
    reports each partition's own count from them)."""
    table = DeltaTable(lake.table_uri(key), storage_options=lake.options)
    num_files, total_rows, size_bytes = file_totals(table)
    lf = pl.scan_delta(lake.table_uri(key), version=table.version(), storage_options=lake.options)
    expr = conditions_expr(conditions)
    slice_rows, value_counts = None, None
    if expr is not None and by_slice_values:
        columns = list(dict.fromkeys(c.column for c in conditions))
        value_counts = lf.filter(expr).group_by(columns).agg(rows=pl.len()).sort(columns).collect()
        slice_rows = int(value_counts["rows"].sum())
    elif expr is not None:
        slice_rows = int(lf.filter(expr).select(pl.len()).collect().item())
    return TableStats(
        uri=lake.table_uri(key),
        version=table.version(),
        row_count=total_rows,
        slice_row_count=slice_rows,
        size_bytes=size_bytes,
        num_files=num_files,
        schema=lf.collect_schema(),
        slice_value_counts=value_counts,
    )


def markdown_preview(df: pl.DataFrame, rows: int = PREVIEW_ROWS) -> str:
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
