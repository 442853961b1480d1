"""Smart-meter worker tasks: a single-run backfill of the whole path, and sensor-driven daily deliveries.

Both go through the project's code location (`energy_assets.definitions`) and its `smart_meter_job` (the
smart-meter group: what the domain's sensor and schedule run, the database included), on a real instance (`DAGSTER_HOME`)
and a real Delta lake (`ENERGY_LAKE_URI`) on disk. Checks of the selected assets run in the same run, as
they do for a user.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks.harness import Phases
from benchmarks.tasks import (
    RANGE_END,
    RANGE_START,
    check_outcomes,
    execute,
    load_definitions,
    materialization_metadata,
    register,
    step_seconds,
    step_windows,
)

GROUP = "smart_meter"
JOB = "smart_meter_job"
SENSOR = "smart_meter_readings_sensor"
PRESENTATION = [
    "presentation/active_agreements",
    "presentation/total_consumption_half_hour",
    "presentation/consumption_per_product_per_day",
    "presentation/gold_aggregate_per_half_hour",
    "presentation/gold_avg_half_hour_by_product",
]


def group_keys(defs) -> list:
    from dagster import AssetSelection

    return sorted(AssetSelection.groups(GROUP).resolve(defs.resolve_asset_graph()), key=lambda k: k.to_user_string())


def _run_facts(defs, instance, result) -> dict[str, Any]:
    meta = materialization_metadata(result)
    silver = meta.get("silver/smart_meter_readings", {})
    checks = check_outcomes(result)
    return {
        "run_id": result.run_id,
        "silver_rows_written": int(silver.get("slice_row_count") or silver.get("rows_kept") or 0),
        "accounting": {k: silver.get(k) for k in ("rows_in", "rows_kept", "duplicates", "quarantined", "readings_without_agreement")},
        "table_rows": {k: v.get("dagster/row_count") for k, v in meta.items()},
        "checks_failed": [c["check"] for c in checks if not c["passed"]],
        "checks_run": len(checks),
        "step_seconds": step_seconds(instance, result.run_id),
        "step_windows": step_windows(instance, result.run_id),
        "total_consumption_kwh": meta.get("presentation/total_consumption_half_hour", {}).get("total_consumption_kwh"),
    }


@register("sm_batch")
def task_batch(params: dict[str, Any], phases: Phases) -> None:
    """Every smart-meter table for days start..end from the files, in one run (a single-run backfill)."""
    defs, instance = load_definitions(phases)
    keys = group_keys(defs)
    label = f"run: files -> every presentation table ({params['start']}...{params['end']}, one run)"
    with phases.phase(label) as rec:
        result = execute(defs, instance, JOB, {RANGE_START: params["start"], RANGE_END: params["end"]}, keys)
    facts = _run_facts(defs, instance, result)
    rec["rows"] = facts["accounting"]["rows_in"] or facts["silver_rows_written"]
    phases.extra.update(facts)
    phases.extra["rows"] = rec["rows"]
    phases.extra["assets"] = [k.to_user_string() for k in keys]


def _deliver(source: Path, readings_dir: Path) -> int:
    """Copy a delivery's files into the watched folder (new versions replace old ones atomically)."""
    readings_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(source.glob("*.json")):
        tmp = readings_dir / f".{path.name}.tmp"
        shutil.copyfile(path, tmp)
        tmp.replace(readings_dir / path.name)
        n += 1
    return n


def _tick_and_run(defs, instance, keys, cursor: str | None, tick_label: str, run_label: str, phases: Phases):
    """One sensor evaluation, then each run it requests (as the daemon would launch them), timed apart."""
    from dagster import build_sensor_context

    sensor_def = defs.get_sensor_def(SENSOR)
    with phases.phase(tick_label) as tick:
        resources = {k: v for k, v in (defs.resources or {}).items() if k in sensor_def.required_resource_keys}
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            outcome = sensor_def(context)
        requests = list(outcome.run_requests or [])
        new_cursor = outcome.cursor
    tick["run_requests"] = [dict(r.tags, partition_key=r.partition_key) for r in requests]
    if not requests:
        raise RuntimeError(f"{SENSOR} requested no run: {outcome.skip_reason}")
    facts = []
    with phases.phase(run_label) as run:
        for request in requests:
            tags = {k: v for k, v in request.tags.items() if k in (RANGE_START, RANGE_END)}
            result = execute(defs, instance, JOB, tags, keys, partition_key=request.partition_key)
            facts.append(_run_facts(defs, instance, result))
    run["rows"] = sum(f["accounting"]["rows_in"] or 0 for f in facts)
    return new_cursor, facts


@register("sm_sensor_day")
def task_sensor_day(params: dict[str, Any], phases: Phases) -> None:
    """Deliveries into the watched folder, each followed by a sensor tick and the runs it requests.

    The sensor cursor is kept in `params["cursor_path"]` between worker processes, so a history can be
    loaded by one worker and the new day processed by a fresh one (as the daemon launches each run in a
    new process): both days measured then start equally cold.
    """
    defs, instance = load_definitions(phases)
    keys = group_keys(defs)
    readings = Path(params["readings_dir"])
    cursor_path = Path(params["cursor_path"])
    cursor = cursor_path.read_text() if cursor_path.exists() else None
    prefix = params.get("phase_prefix", "day")
    deliveries = []
    for i, folder in enumerate(params["deliveries"], start=1):
        with phases.phase(f"setup: delivery {i} lands in the folder (not timed for the target)") as rec:
            rec["files"] = _deliver(Path(folder), readings)
        cursor, facts = _tick_and_run(
            defs, instance, keys, cursor, f"{prefix}: sensor tick", f"{prefix}: run (sensor -> presentation)", phases
        )
        deliveries.append(facts)
    cursor_path.write_text(cursor or "")
    phases.extra["delivery_runs"] = deliveries
    phases.extra["rows"] = sum(f["accounting"]["rows_in"] or 0 for d in deliveries for f in d)
    phases.extra["cursor_bytes"] = len(cursor or "")


# ------------------------------------------------------------------------------------- one day-bucket
PER_METERPOINT = ["raw/smart_meter_readings", "raw/ingestion_log", "silver/smart_meter_readings", "silver/smart_meter_quarantine"]
DATABASE = ["raw/agreements", "raw/products", "raw/meterpoints"]


def _delta_files(lake: Path, table: str, day: str, bucket: str | None = None) -> int:
    """Data files the table's current snapshot references for the day (and bucket)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(str(lake / table)).get_add_actions(flatten=True)).to_pylist()
    def own(a: dict) -> bool:
        return str(a.get("partition.settlement_date", a.get("partition.date"))) == day and (bucket is None or a.get("partition.meterpoint_bucket") == bucket)
    return sum(1 for a in actions if own(a))


@register("sm_day_bucket")
def task_day_bucket(params: dict[str, Any], phases: Phases) -> None:
    """One UK day of the bucketed smart-meter path as a worker runs it (SMART_METER_BUCKETS > 1 in the environment):
    the day's database snapshot, ONE (day, bucket) run of the per-meterpoint assets (ingest + silver, with their
    checks: the per-worker unit of work), then the day's presentation run, which reads every bucket of the day."""
    import os

    from dagster import AssetKey, MultiPartitionKey

    defs, instance = load_definitions(phases)
    day, bucket = params["day"], params["bucket"]
    lake = Path(os.environ["ENERGY_LAKE_URI"])
    keys = {k.to_user_string(): k for k in group_keys(defs)}
    per_meterpoint = [AssetKey.from_user_string(k) for k in PER_METERPOINT]
    database = [AssetKey.from_user_string(k) for k in DATABASE]
    presentation = [k for name, k in keys.items() if name.startswith("presentation/")]
    with phases.phase("setup: the database (unpartitioned, one small run whenever it may have changed)"):
        execute(defs, instance, "static_job", {}, database)
    with phases.phase(f"bucket run: files -> silver ({day}, bucket {bucket})") as rec:
        result = execute(defs, instance, "smart_meter_buckets_job", {}, per_meterpoint,
                         partition_key=MultiPartitionKey({"date": day, "bucket": bucket}))  # fmt: skip
    facts = _run_facts(defs, instance, result)
    meta = materialization_metadata(result)
    rec["rows"] = facts["accounting"]["rows_in"] or facts["silver_rows_written"]
    with phases.phase(f"day run: every bucket's silver -> presentation ({day})") as pres:
        pres_result = execute(defs, instance, "uk_days_job", {}, [k for k in presentation if k.path[-1] != "active_agreements"], partition_key=day)
    pres_facts = _run_facts(defs, instance, pres_result)
    pres["rows"] = int(sum(v.get("dagster/row_count") or 0 for k, v in materialization_metadata(pres_result).items() if k.startswith("presentation/")))
    phases.extra.update(facts)
    phases.extra["rows"] = rec["rows"]
    phases.extra["bucket_files_read"] = meta.get("raw/smart_meter_readings", {}).get("files_read")
    phases.extra["bucket_files_in_folder_listing"] = meta.get("raw/smart_meter_readings", {}).get("files_in_folder")
    phases.extra["delta_files_written"] = {t: _delta_files(lake, t, day, bucket) for t in PER_METERPOINT}
    phases.extra["delta_files_written"].update({t: _delta_files(lake, t, day) for t in ["presentation/" + k.path[-1] for k in presentation if k.path[-1] != "active_agreements"]})
    # a fresh lake holds only this bucket: the table's size is what the bucket run wrote
    phases.extra["delta_bytes_written"] = {t: meta.get(t, {}).get("size_bytes") for t in PER_METERPOINT}
    phases.extra["presentation_checks_failed"] = pres_facts["checks_failed"]
    phases.extra["presentation_silver_rows_read"] = facts["silver_rows_written"]
