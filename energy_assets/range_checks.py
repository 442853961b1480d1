"""Partitioned asset checks that run once over a partition range (single-run backfills) and still read true
per partition in the UI.

Why: Dagster (1.13) plans a partitioned check for every partition of a range run, but an `AssetCheckResult`
yielded by a range step is stored with `partition=None` (it only carries a partition when the step has ONE
partition key). The per-partition rows stay "planned" and, once the run ends, the UI resolves them as
"Skipped" ("0 / N Passed", "Skipped (4)"), while the asset overview shows the range result as passed.

`report(context, outcome)` returns the range result (unchanged: the demo and `energy-assets check` print it,
a blocking failure still stops the run) and, when the step covers a range of a partitioned check, also
records that result for each partition of the range with `context.log_event(AssetCheckEvaluation(...,
partition=key))`, so every partition reads PASSED or FAILED. A per-partition record says it was evaluated
over the range (`evaluated_over_range` metadata; the description names the range): a range that passed
passed for each of its partitions; a range that failed is recorded as failed for each of them, and its
`first_offending_rows` say which rows failed.
"""

from __future__ import annotations

import typing
from collections import OrderedDict
from collections.abc import Sequence

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    EventLogRecord,
    MetadataValue,
)

from energy_assets.check_outcome import CheckOutcome
from energy_assets.instance_storage import held_check_evaluations, latest_materialization_targets

RANGE_METADATA_KEY = "evaluated_over_range"
# The type of AssetCheckEvaluation's public `target_materialization_data` parameter (Dagster 1.13 does not export it
# at the top level; taken from the public signature rather than a private module). A partition's evaluation counts
# as current in the UI only when it targets that partition's latest materialization.
_TARGET = typing.get_args(AssetCheckEvaluation.__annotations__["target_materialization_data"])[0]


def report(
    context: AssetCheckExecutionContext, outcome: CheckOutcome, asset_key: AssetKey | None = None, check_name: str | None = None
) -> AssetCheckResult:
    """The check's result; for a range run also one evaluation per partition of the range (see module doc).
    `asset_key` and `check_name` name the check when one op evaluates several (as in `CheckOutcome.result`)."""
    result = outcome.result(asset_key=asset_key, check_name=check_name)
    if context.has_partition_key or not context.has_partition_key_range:
        return result
    specs = [
        s
        for s in context.check_specs
        if (asset_key is None or s.asset_key == asset_key) and (check_name is None or s.name == check_name)
    ]
    if len(specs) != 1:
        raise ValueError(
            f"{context.op_execution_context.op_def.name}: name the check (asset_key, check_name) among "
            f"{[s.key.to_user_string() for s in context.check_specs]}"
        )
    spec = specs[0]
    if spec.partitions_def is None:
        return result
    keys = list(context.partition_keys)
    span = f"{keys[0]}...{keys[-1]}" if len(keys) > 1 else keys[0]
    verdict = "passed" if outcome.passed else "failed"
    targets = _targets_in_run(context.instance, context.run.run_id, spec.asset_key, keys)
    metadata = {**result.metadata, RANGE_METADATA_KEY: MetadataValue.text(span)}
    description = f"{outcome.found} (the run's range {span} {verdict}; evaluated once over it, recorded for each of its {len(keys)} partitions)"
    with held_check_evaluations(context.instance):  # stored as one batch (energy_assets.instance_storage)
        for key in keys:
            target = targets.get(key)
            context.op_execution_context.log_event(
                AssetCheckEvaluation(
                    asset_key=spec.asset_key,
                    check_name=spec.name,
                    passed=result.passed,
                    metadata=metadata,
                    severity=result.severity,
                    description=description,
                    blocking=spec.blocking,
                    partition=key,
                    target_materialization_data=target,
                )
            )
    return result


# The targets of the range's partitions, per (run, asset, range): an asset's checks (eight on NESO silver) each
# target the same materialisations, which the run made before any of its checks; they are read once (from the event
# log's index columns, `instance_storage.latest_materialization_targets`, or, on an event log that is not SQL, by
# deserialising every partition's materialisation event: 2,920 events per NESO year if read for each check).
# Kept for the last few ranges of this process; a new run (a re-materialisation) reads them afresh.
_TARGETS: OrderedDict[tuple[str, AssetKey, tuple[str, ...]], dict] = OrderedDict()
_TARGETS_KEPT = 8


def _targets_in_run(instance: DagsterInstance, run_id: str, asset_key: AssetKey, keys: Sequence[str]) -> dict:
    """{partition: target of its evaluation} for `keys` (partitions never materialised are absent), read once per
    run, asset and range (see `_TARGETS`)."""
    cached = (run_id, asset_key, tuple(keys))
    if cached not in _TARGETS:
        found = latest_materialization_targets(instance, asset_key, keys)  # index columns only, when the log is SQL
        if found is None:
            found = {k: (r.storage_id, r.run_id, r.timestamp) for k, r in latest_materializations(instance, asset_key, keys).items()}
        _TARGETS[cached] = {k: _TARGET(storage_id=storage_id, run_id=run, timestamp=at) for k, (storage_id, run, at) in found.items()}
        while len(_TARGETS) > _TARGETS_KEPT:
            _TARGETS.popitem(last=False)
    return _TARGETS[cached]


def latest_materializations(instance: DagsterInstance, asset_key: AssetKey, keys: Sequence[str]) -> dict[str, EventLogRecord]:
    """The latest materialization record of each of `keys` (partitions never materialised are absent)."""
    wanted = set(keys)
    found: dict[str, EventLogRecord] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, asset_partitions=sorted(wanted - found.keys())),
            limit=max(100, len(wanted)),
            cursor=cursor,
        )
        for record in page.records:  # newest first
            if record.partition_key in wanted:
                found.setdefault(record.partition_key, record)
        if not page.has_more or found.keys() >= wanted:
            return found
        cursor = page.cursor


def is_range_copy(evaluation: AssetCheckEvaluation) -> bool:
    """True for the per-partition copies `report` records (a summary lists the range result once)."""
    return RANGE_METADATA_KEY in (evaluation.metadata or {})
