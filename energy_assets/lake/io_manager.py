"""The project's Delta Lake IO manager: Dagster's partitions in, the lake's write engine out.

`DeltaLakeIOManager(lake=LakeResource(...))` is a thin layer on public Dagster API. It turns an output's or
input's context into a slice (`SliceDimension`s: a half-open time range for a time partition, an IN list for
a static one, both for a day x zone box), calls `energy_assets.lake.engine` (Dagster-free: one Delta
transaction per output, rows outside the slice refused, commit conflicts retried) and reports what was
written. It replaces the stock dagster-deltalake polars handler, whose defects are listed, with
reproductions, in docs/dagster-deltalake-defects.md; each has a regression test in
energy_assets_tests/lake/test_io_manager.py that runs against both.

One step beyond the public API: a run over several partitions gives each partition's materialisation its own
`dagster/partition_row_count` (the count most partitions share goes with the output, the others' own counts per
partition), and the slice's column schema and preview once (on the run's last partition), through
`OutputContext.step_context.add_asset_metadata(..., partition_key=)`, the asset context's public method;
IO managers have no public per-partition metadata (dagster-io/dagster#18123), and output metadata is copied to
every partition. `test_each_partition_of_a_range_run_reports_its_own_row_count` pins it.

Asset metadata understood:

- `partition_expr`: the partition column (or `{dimension: column}` for multi-partitions);
- `write_mode`: `overwrite` (default: replace the slice the run covers), `merge` or `append`;
- `merge_keys`: key columns for `merge` (and for insert-only `append`);
- `merge_order_by`: version column for `merge`; the row with the greatest value wins;
- `partition_by`: physical Delta partition columns (default: the date/string partition columns);
- `schema`: the layer, when it is not the asset key's prefix; `columns` (on an input): the columns to load;
- `dagster/column_schema`: its column descriptions are kept in the schema reported with each output.

Outputs may be polars `DataFrame`s, `LazyFrame`s or `FrameStream`s (batches written in ONE transaction; the
producer's metadata is reported with the output). Inputs load as `DataFrame`s, or `LazyFrame`s when the
input is annotated so. Reads see one snapshot of the table restricted to the input's slice: an unpartitioned
reader sees every partition, an input mapped with offsets every mapped day.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from dagster import (
    ConfigurableIOManager,
    DagsterInvariantViolationError,
    InputContext,
    MetadataValue,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    OutputContext,
    PartitionKeyRange,
    PartitionsDefinition,
    TableColumn,
    TableSchema,
    TimeWindowPartitionsDefinition,
)
from pydantic import Field

from energy_assets.lake import engine
from energy_assets.lake.engine import (  # noqa: F401 - re-exported: the names assets and tests use
    DEFAULT_COMMIT_BACKOFF_MAX_S,
    DEFAULT_COMMIT_BACKOFF_S,
    DEFAULT_COMMIT_MAX_ATTEMPTS,
    WRITE_MODES,
    FrameStream,
    LakeCommitConflictError,
    LakeWriteError,
    RetryPolicy,
    WriteSpec,
    markdown_preview,
    with_commit_retries,
)
from energy_assets.lake.resource import LakeResource
from energy_assets.lake.slices import SliceDimension, TimeRange, column_bound, column_kind


class DeltaLakeIOManager(ConfigurableIOManager):
    """Delta tables at `<lake root>/<layer>/<table>`, written and read as polars frames by delta-rs."""

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

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            raise DagsterInvariantViolationError(
                "Unexpected 'None' output value. If a 'None' value is intentional, set the output"
                " type to None by adding return type annotation '-> None'."
            )
        meta = dict(context.definition_metadata or {})
        key = _table_key(context, meta)
        name = "/".join(key)
        lake = self.lake.lake()
        result = engine.write(
            lake,
            key,
            obj,
            dimensions=_dimensions(context, meta, name),
            spec=WriteSpec.from_metadata(name, meta),
            retry=RetryPolicy(self.commit_max_attempts, self.commit_backoff_s, self.commit_backoff_max_s),
            log=context.log.warning if context.log else None,
        )
        keys = list(context.asset_partition_keys) if context.has_asset_key and context.has_asset_partitions else []
        stats = engine.table_stats(lake, key, result.conditions, by_slice_values=len(keys) > 1)
        metadata: dict[str, Any] = {
            "dagster/row_count": MetadataValue.int(stats.row_count),
            "dagster/column_schema": column_schema(stats.schema, meta.get("dagster/column_schema")),
            "dagster/uri": MetadataValue.path(stats.uri),
            "table_uri": MetadataValue.path(stats.uri),
            "size_bytes": MetadataValue.int(stats.size_bytes),
            "num_files": MetadataValue.int(stats.num_files),
            "delta_version": MetadataValue.int(stats.version),
            "write_mode": MetadataValue.text(result.mode),
            "slice": MetadataValue.text(result.slice),
            "preview": MetadataValue.md(markdown_preview(result.preview)),
            **{k: MetadataValue.int(int(v)) for k, v in result.stats.items()},
        }
        if stats.slice_row_count is not None:
            metadata["slice_row_count"] = MetadataValue.int(stats.slice_row_count)
            if len(keys) == 1:
                metadata["dagster/partition_row_count"] = MetadataValue.int(stats.slice_row_count)
        step = _step_context(context) if len(keys) > 1 and stats.slice_value_counts is not None else None
        if step is None:
            context.add_output_metadata({**metadata, **result.producer_metadata})
            return
        # A run over several partitions (a single-run backfill). Output metadata is copied to every partition's
        # materialisation, and IO managers have no public per-partition metadata (dagster-io/dagster#18123): the
        # step's `add_asset_metadata(partition_key=...)`, public on the asset's context, is reached through the
        # output context's `step_context`. Each partition gets its own row count; the slice's column schema and
        # preview (the same for every partition, ~4 kB) go once, with the run's last partition, which the UI shows
        # as the asset's latest materialisation (about 4 kB less to serialise and store per partition).
        #
        # Dagster builds each partition's metadata as the output's, overridden by the partition's own, and each
        # `add_asset_metadata` call costs in proportion to the partitions already given some (it copies the step's
        # accumulated metadata, and lists the run's partitions to check the key): 730 calls took 0.07 s in a NESO
        # year's silver step. So the count most partitions share goes with the output, and only the partitions
        # whose count differs (clock-change days, days without rows) get a call; each partition's metadata is the same.
        whole_slice = {k: metadata.pop(k) for k in ("dagster/column_schema", "preview")}
        metadata["schema_and_preview"] = MetadataValue.text(
            f"the column schema and a preview of this run's {len(keys)} partitions are on its last partition, {keys[-1]}"
        )
        rows = rows_per_partition(context.asset_partitions_def, keys, meta["partition_expr"], stats.slice_value_counts)
        usual = Counter(rows.values()).most_common(1)[0][0]
        metadata["dagster/partition_row_count"] = MetadataValue.int(usual)
        context.add_output_metadata({**metadata, **result.producer_metadata})
        for partition_key, n in rows.items():
            own = {"dagster/partition_row_count": MetadataValue.int(n)} if n != usual else {}
            if partition_key == keys[-1]:
                own.update(whole_slice)
            if own:
                step.add_asset_metadata(own, asset_key=context.asset_key, partition_key=partition_key)

    def load_input(self, context: InputContext) -> pl.DataFrame | pl.LazyFrame:
        upstream = context.upstream_output
        meta = dict((upstream.definition_metadata if upstream is not None else None) or {})
        key = _table_key(context, meta)
        lf = engine.read_slice(
            self.lake.lake(), key, _dimensions(context, meta, "/".join(key)), (context.definition_metadata or {}).get("columns")
        )
        if context.dagster_type.typing_type == pl.LazyFrame:
            return lf
        return lf.collect()


def column_schema(schema: pl.Schema, defined: Any = None) -> TableSchema:
    """The table's columns and types, with the descriptions (and constraints, tags) of the asset's declared
    `dagster/column_schema` for the columns it declares."""
    declared = getattr(defined, "schema", defined)
    known = {c.name: c for c in declared.columns} if isinstance(declared, TableSchema) else {}
    columns = []
    for name, dtype in schema.items():
        spec = known.get(name)
        if spec is None:
            columns.append(TableColumn(name=name, type=str(dtype)))
        else:
            columns.append(TableColumn(name=name, type=str(dtype), description=spec.description, constraints=spec.constraints, tags=spec.tags))
    return TableSchema(columns=columns)


def _table_key(context: InputContext | OutputContext, meta: Mapping[str, Any]) -> tuple[str, str]:
    """`[layer, table]`: the asset key (the `schema` metadata may name the layer); for an op output without an
    asset key, `schema`/`table` metadata or `public/<output name>`."""
    if context.has_asset_key:
        path = context.asset_key.path
        layer = meta.get("schema") or (path[-2] if len(path) > 1 else "public")
        return str(layer), path[-1]
    return str(meta.get("schema") or "public"), str(meta.get("table") or context.name)


def _dimensions(context: InputContext | OutputContext, meta: Mapping[str, Any], name: str) -> list[SliceDimension]:
    """The slice the step covers, from its partitions (none: the whole table)."""
    if not (context.has_asset_key and context.has_asset_partitions):
        return []
    partition_expr = meta.get("partition_expr")
    if partition_expr is None:
        raise ValueError(
            f"Asset '{name}' has partitions, but no 'partition_expr' metadata value, so we don't know what column it's "
            'partitioned on. To specify a column, set this metadata value. E.g. @asset(metadata={"partition_expr": "your_partition_column"}).'
        )
    pdef = context.asset_partitions_def
    keys = list(context.asset_partition_keys)
    if isinstance(pdef, MultiPartitionsDefinition):
        return _box(pdef, keys, partition_expr, name)
    if isinstance(pdef, TimeWindowPartitionsDefinition):
        if not keys:
            return [SliceDimension(str(partition_expr), [])]
        window = context.asset_partitions_time_window
        return [SliceDimension(str(partition_expr), TimeRange(window.start, window.end))]
    return [SliceDimension(str(partition_expr), [str(k) for k in keys])]


def _step_context(context: OutputContext):
    """The step's context, or None for an output context built outside a run (`build_output_context`), which has
    no step to hold per-partition metadata: its output metadata then stays as for one partition."""
    try:
        return context.step_context
    except DagsterInvariantViolationError:
        return None


def rows_per_partition(pdef: PartitionsDefinition, keys: Sequence[str], partition_expr: Any, counts: pl.DataFrame) -> dict[str, int]:
    """Each of `keys` (the partitions an output covers) with its rows, from the slice's rows per distinct value
    of its columns (`TableStats.slice_value_counts`); a partition without rows counts 0. A time dimension maps a
    value to the window that holds it; a static one maps a value to itself."""
    if isinstance(pdef, MultiPartitionsDefinition):
        dims = [(d.name, d.partitions_def, partition_expr[d.name]) for d in pdef.partitions_defs]
        parts = {k: (k if isinstance(k, MultiPartitionKey) else pdef.get_partition_key_from_str(str(k))).keys_by_dimension for k in keys}
    else:
        dims = [(None, pdef, partition_expr)]
        parts = {k: {None: k} for k in keys}
    locators = []
    for name, dim_def, column in dims:
        own = sorted({p[name] for p in parts.values()})
        if isinstance(dim_def, TimeWindowPartitionsDefinition):
            kind = column_kind(counts.schema[column])
            windows = sorted(
                (column_bound(w.start, kind), column_bound(w.end, kind), k)
                for k in own
                for w in [dim_def.time_window_for_partition_key(k)]
            )
            locators.append((column, _window_locator(windows)))
        else:
            locators.append((column, lambda value, own=frozenset(own): str(value) if str(value) in own else None))
    key_of = {tuple(p[name] for name, _, _ in dims): k for k, p in parts.items()}
    rows = dict.fromkeys(keys, 0)
    for record in counts.iter_rows(named=True):
        located = tuple(locate(record[column]) for column, locate in locators)
        key = key_of.get(located)
        if key is None:  # the slice holds only the output's partitions: a row elsewhere is a bug here
            raise ValueError(f"rows at {record} lie in none of the output's partitions {keys[0]}...{keys[-1]}")
        rows[key] += int(record["rows"])
    return rows


def _window_locator(windows: list[tuple[Any, Any, str]]):
    starts = [w[0] for w in windows]

    def locate(value):
        i = bisect.bisect_right(starts, value) - 1
        return windows[i][2] if i >= 0 and value < windows[i][1] else None

    return locate


def _box(pdef: MultiPartitionsDefinition, keys: Sequence[Any], partition_expr: Any, name: str) -> list[SliceDimension]:
    """A multi-partition run as one box: each dimension gets the set of its values (a time range for the time
    dimension, which must be contiguous), and the run's keys must fill that box. A set of keys that does not
    (say, from a hand-picked backfill) would let an overwrite reach partitions outside the run: refused."""
    values = {d.name: sorted({k.keys_by_dimension[d.name] for k in keys}) for d in pdef.partitions_defs}
    box = 1
    for v in values.values():
        box *= len(v)
    if box != len(set(keys)):
        raise ValueError(
            f"{name}: the run's {len(keys)} partitions are not a full "
            f"day x zone box ({ {k: len(v) for k, v in values.items()} }); run them as separate runs"
        )
    if not isinstance(partition_expr, Mapping):
        raise ValueError(f"{name}: a multi-partitioned asset needs 'partition_expr' as {{dimension: column}}, got {partition_expr!r}")
    dims = []
    for d in pdef.partitions_defs:
        column = partition_expr.get(d.name)
        if column is None:
            raise ValueError(
                f"Asset '{name}' has partition {d.name}, but the 'partition_expr' metadata does not contain a {d.name} entry, "
                f"so we don't know what column to filter it on. Specify which column of the table contains data for the {d.name} partition."
            )
        own = values[d.name]
        if isinstance(d.partitions_def, TimeWindowPartitionsDefinition) and own:
            windows = [d.partitions_def.time_window_for_partition_key(k) for k in own]
            span = d.partitions_def.get_partition_keys_in_range(PartitionKeyRange(own[0], own[-1]))
            if len(windows) != len(span):
                raise ValueError(f"{name}: the run's {d.name} partitions are not contiguous")
            dims.append(SliceDimension(str(column), TimeRange(min(w.start for w in windows), max(w.end for w in windows))))
        else:
            dims.append(SliceDimension(str(column), list(own)))
    return dims


