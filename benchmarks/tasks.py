"""What one repetition does, inside a fresh worker process (`python -m benchmarks _worker --task T`).

Each task records its phases (`Phases`), writes `{"phases": [...], ...facts}` as JSON to
`params["result_path"]`, and lets the parent measure the process tree. Environment variables the
project reads (`ENERGY_LAKE_URI`, `DAGSTER_HOME`, `SMART_METER_*`, `NESO_API_BASE_URL`) are set by the
parent before the worker starts, exactly as a user would set them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Phases

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


# ------------------------------------------------------------------------------------------ baselines
def task_spark(params: dict[str, Any], phases: Phases) -> None:
    from benchmarks import spark_baseline

    out = spark_baseline.run(
        Path(params["readings_dir"]), Path(params["db_path"]), Path(params["out_dir"]), phases,
        as_of=params.get("as_of", "2021-01-01"), driver_memory=params.get("driver_memory", spark_baseline.DEFAULT_DRIVER_MEMORY),
    )  # fmt: skip
    phases.extra.update(out)


def task_duckdb(params: dict[str, Any], phases: Phases) -> None:
    from benchmarks import duckdb_reference

    phases.extra.update(duckdb_reference.run(Path(params["readings_dir"]), phases))


def task_script(params: dict[str, Any], phases: Phases) -> None:
    from benchmarks import plain_script

    out = plain_script.run(Path(params["readings_dir"]), Path(params["db_path"]), Path(params["out_dir"]), phases,
                           as_of=params.get("as_of", "2021-01-01"))  # fmt: skip
    phases.extra.update(out)


# --------------------------------------------------------------------------------------------- dagster
def load_definitions(phases: Phases):
    with phases.phase("import and load definitions"):
        from dagster import DagsterInstance

        from energy_assets.definitions import defs

        instance = DagsterInstance.get()
        defs.get_repository_def()  # resolve the whole code location, as a code server would
    return defs, instance


def execute(defs, instance, job_name: str, tags: dict[str, str] | None = None, asset_selection=None, partition_key=None):
    """One run of a job, in process (what `materialize`/the CLI demo do); raises with the first failure."""
    job = defs.get_job_def(job_name)
    kwargs: dict[str, Any] = {}
    if asset_selection is not None:
        kwargs["asset_selection"] = asset_selection
    if partition_key is not None:
        kwargs["partition_key"] = partition_key
    result = job.execute_in_process(instance=instance, tags=tags or {}, raise_on_error=False, **kwargs)
    if not result.success:
        failures = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()[:2000]}" for e in result.get_step_failure_events()
        ]
        raise RuntimeError(f"{job_name} run {result.run_id} failed: " + ("; ".join(failures) or "no step failure recorded"))
    return result


def materialization_metadata(result) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in mat.metadata.items() if k != "preview"}
    return out


def step_windows(instance, run_id: str) -> dict[str, list[float]]:
    """[start, end] epoch seconds per step of a run (step start to success/failure), from the event log."""
    from dagster import DagsterEventType

    starts: dict[str, float] = {}
    out: dict[str, list[float]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and event.step_key in starts:
            out[event.step_key] = [starts[event.step_key], entry.timestamp]
    return out


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds per step of a run."""
    return {step: round(end - start, 3) for step, (start, end) in step_windows(instance, run_id).items()}


def check_outcomes(result) -> list[dict[str, Any]]:
    return [
        {
            "check": f"{e.asset_key.to_user_string()}:{e.check_name}",
            "passed": bool(e.passed),
            "severity": getattr(e.severity, "value", str(e.severity)),
        }
        for e in result.get_asset_check_evaluations()
    ]


def asset_keys(defs, names: list[str]) -> list:
    """The keys of the assets named `layer/table`, with the assets their multi-asset steps must produce alongside."""
    from dagster import AssetKey, AssetSelection

    wanted = AssetSelection.assets(*[AssetKey(name.split("/")) for name in names]).required_multi_asset_neighbors()
    return sorted(wanted.resolve(defs.resolve_asset_graph()), key=lambda k: k.to_user_string())


def task_neso_backfill(params: dict[str, Any], phases: Phases) -> None:
    """The variant without the politeness delay sets ENERGY_ASSETS_HTTP_MIN_INTERVAL_SECONDS=0 (the scenario's
    environment for the worker): the project's own setting for a local fake API."""
    defs, instance = load_definitions(phases)
    keys = asset_keys(defs, params["assets"])
    phases.extra["assets"] = [k.to_user_string() for k in keys]
    with phases.phase(f"backfill {params['start']}...{params['end']} (one run)") as rec:
        result = execute(defs, instance, "uk_days_job", {RANGE_START: params["start"], RANGE_END: params["end"]}, keys)
    meta = materialization_metadata(result)
    silver = meta.get("silver/neso_carbon_intensity", {})
    rec["rows"] = int(silver.get("slice_row_count", silver.get("dagster/row_count", 0)))
    phases.extra.update(
        {
            "requests_by_asset": {k: v.get("requests") for k, v in meta.items() if "requests" in v},
            "requests_planned_by_asset": {k: v.get("requests_planned") for k, v in meta.items() if "requests_planned" in v},
            "table_rows": {k: v.get("dagster/row_count") for k, v in meta.items()},
            "checks": check_outcomes(result),
            "step_seconds": step_seconds(instance, result.run_id),
            "step_windows": step_windows(instance, result.run_id),
        }
    )


def task_launched(params: dict[str, Any], phases: Phases) -> None:
    """One run of `uk_days_job` launched as the UI, a backfill or a sensor launches it (`execute_job`: the run is
    executed by the job's executor, the one ENERGY_ASSETS_EXECUTOR chose at load), not `execute_in_process`."""
    from dagster import DagsterEventType, execute_job, reconstructable

    # the job rebuilt by name in every process a launched run uses, as the Celery test's backfills do
    from energy_assets_tests.distributed._backfill import QUIET, group_keys, uk_days_job

    defs, instance = load_definitions(phases)
    keys = group_keys(params["groups"]) if params.get("groups") else asset_keys(defs, params["assets"])
    start, end = params["start"], params["end"]
    tags = {"dagster/partition": start} if start == end else {RANGE_START: start, RANGE_END: end}
    with phases.phase(f"launched run {start}...{end} ({params['what']})"):
        result = execute_job(reconstructable(uk_days_job), instance=instance, tags=tags, asset_selection=keys,
                             raise_on_error=False, run_config=QUIET)  # fmt: skip
    if not result.success:
        raise RuntimeError(f"launched run {result.run_id} failed: {[e.step_key for e in result.get_step_failure_events()]}")
    started = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event is not None
               and e.dagster_event.event_type == DagsterEventType.STEP_START]  # fmt: skip
    phases.extra.update(
        {
            "executor_setting": params["executor"],
            "steps": len(started),
            "step_processes": len({e.pid for e in started}),
            "step_seconds": step_seconds(instance, result.run_id),
        }
    )


TASKS: dict[str, Callable[[dict[str, Any], Phases], None]] = {
    "spark": task_spark,
    "duckdb": task_duckdb,
    "script": task_script,
    "neso_backfill": task_neso_backfill,
    "launched": task_launched,
}


def register(name: str):
    def wrap(fn):
        TASKS[name] = fn
        return fn

    return wrap


def main(task: str, params_json: str) -> int:
    # smart-meter tasks live in their own module so a missing domain does not break the others
    from benchmarks import breakdown, smart_meter_tasks  # noqa: F401

    params = json.loads(params_json)
    phases = Phases()
    if task not in TASKS:
        raise SystemExit(f"unknown benchmark task {task!r}; known: {sorted(TASKS)}")
    TASKS[task](params, phases)
    Path(params["result_path"]).write_text(json.dumps(phases.to_json(), indent=2, default=str))
    return 0
