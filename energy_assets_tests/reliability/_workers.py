"""Code that runs in *other processes* during the reliability tests (spawned, so it must be importable).

- `materialize_day`: one run materialising one partition of a small table through the project's IO
  manager, optionally holding its first Delta commit at a barrier shared with the other workers so that
  every worker has read its snapshot before any of them commits (the worst case for conflicts).
- `python -m energy_assets_tests.reliability._workers crash ...`: a run whose Delta write streams slowly
  and signals the test once data files are being written, so that the test can SIGKILL it mid-write.
"""

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    asset,
    materialize,
)

from energy_assets.lake.resource import LakeResource

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01", timezone="Europe/London")
KEYS_PER_DAY = 10

_hold = {"barrier": None}


def _install_commit_barrier() -> None:
    """Make the first Delta write (or merge) of this process wait at `_hold["barrier"]`."""
    import deltalake

    from energy_assets.lake import engine

    if getattr(engine, "_test_barrier_installed", False):
        return
    original_write = engine.write_deltalake
    original_merge = deltalake.DeltaTable.merge

    def wait_once():
        barrier, _hold["barrier"] = _hold["barrier"], None
        if barrier is not None:
            try:
                barrier.wait(timeout=60)
            except Exception:  # a broken barrier only means less contention, never a hang
                pass

    def write(*args, **kwargs):
        wait_once()
        return original_write(*args, **kwargs)

    def merge(self, *args, **kwargs):
        wait_once()
        return original_merge(self, *args, **kwargs)

    engine.write_deltalake = write
    deltalake.DeltaTable.merge = merge
    engine._test_barrier_installed = True


def day_frame(day: str, value: int) -> pl.DataFrame:
    date = dt.date.fromisoformat(day)
    return pl.DataFrame(
        {"day": [date] * KEYS_PER_DAY, "key": list(range(KEYS_PER_DAY)), "value": [value] * KEYS_PER_DAY, "version": [value] * KEYS_PER_DAY},
        schema={"day": pl.Date, "key": pl.Int64, "value": pl.Int64, "version": pl.Int64},
    )


def table_asset(mode: str):
    metadata = {"partition_expr": "day", "write_mode": mode}
    if mode in ("merge", "append"):
        metadata["merge_keys"] = ["day", "key"]
    if mode == "merge":
        metadata["merge_order_by"] = "version"

    @asset(name="readings", key_prefix="silver", partitions_def=DAYS, metadata=metadata, backfill_policy=BackfillPolicy.single_run())
    def readings(context: AssetExecutionContext) -> pl.DataFrame:
        return day_frame(context.partition_key, int(context.run.tags["value"]))

    return readings


def materialize_day(lake_root: str, mode: str, day: str, value: int, barrier=None) -> dict:
    """One run for one partition; returns whether it succeeded and how many commit attempts it took."""
    from energy_assets.lake.io_manager import DeltaLakeIOManager

    _install_commit_barrier()
    _hold["barrier"] = barrier
    io = DeltaLakeIOManager(lake=LakeResource(root_uri=lake_root), commit_max_attempts=10, commit_backoff_s=0.05, commit_backoff_max_s=0.5)
    result = materialize(
        [table_asset(mode)],
        partition_key=day,
        resources={"io_manager": io},
        instance=DagsterInstance.ephemeral(),
        tags={"value": str(value)},
        raise_on_error=False,
    )
    out = {"success": result.success, "pid": os.getpid(), "error": None, "commit_attempts": None}
    if result.success:
        meta = result.asset_materializations_for_node("silver__readings")[0].metadata
        out["commit_attempts"] = meta["commit_attempts"].value
    else:
        out["error"] = str(result.get_step_failure_events()[0].event_specific_data.error)[:2000]
    return out


# ---------------------------------------------------------------------------------------------- crash
CRASH_ROWS = 400_000
CRASH_BATCH = 20_000


def crash_assets():
    """`silver/source` (small) feeds `gold/wide` (large enough that its write takes many batches)."""

    @asset(key_prefix="silver", partitions_def=DAYS, metadata={"partition_expr": "day"})
    def source(context: AssetExecutionContext) -> pl.DataFrame:
        return day_frame(context.partition_key, int(context.run.tags["value"]))

    @asset(
        key_prefix="gold",
        partitions_def=DAYS,
        metadata={"partition_expr": "day", "write_mode": os.environ.get("CRASH_GOLD_MODE", "overwrite"), "merge_keys": ["day", "row"], "merge_order_by": "version"},
        ins={"source": AssetIn(key=["silver", "source"])},
    )
    def wide(context: AssetExecutionContext, source: pl.DataFrame) -> pl.DataFrame:
        value = int(source["value"][0])
        n = CRASH_ROWS
        return pl.DataFrame(
            {
                "day": pl.Series([source["day"][0]] * n, dtype=pl.Date),
                "row": pl.int_range(0, n, eager=True),
                "value": pl.int_range(0, n, eager=True) * value,
                "version": pl.Series([value] * n, dtype=pl.Int64),
                "text": pl.Series([f"v{value}-padding-to-make-the-file-bigger"] * n),
            }
        )

    return [source, wide]


def _install_slow_write(marker: Path) -> None:
    """Stream `gold/wide` to delta-rs slowly; after some batches, tell the test we are mid-write and stall."""
    import deltalake

    from energy_assets.lake import engine

    def slow(data):
        table = pa.table(data) if not isinstance(data, pa.Table) else data
        if table.num_rows < CRASH_ROWS:
            return data
        batches = table.to_batches(max_chunksize=CRASH_BATCH)

        def gen():
            for i, batch in enumerate(batches):
                if i == len(batches) // 2:
                    marker.write_text(json.dumps({"pid": os.getpid(), "batches_sent": i}))
                    time.sleep(120)  # the test kills us here
                yield batch

        return pa.RecordBatchReader.from_batches(table.schema, gen())

    original_write = engine.write_deltalake
    original_merge = deltalake.DeltaTable.merge

    def write(table_or_uri, data, **kwargs):
        # small files, so that some are complete on disk when the kill comes
        return original_write(table_or_uri, slow(data), **{**kwargs, "target_file_size": 1_000_000})

    def merge(self, source, *args, **kwargs):
        return original_merge(self, slow(source), *args, **kwargs)

    engine.write_deltalake = write
    deltalake.DeltaTable.merge = merge


def run_crash_scenario(lake_root: str, day: str, value: int, marker: str | None) -> bool:
    from energy_assets.lake.io_manager import DeltaLakeIOManager

    if marker:
        _install_slow_write(Path(marker))
    result = materialize(
        crash_assets(),
        partition_key=day,
        resources={"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=lake_root))},
        instance=DagsterInstance.ephemeral(),
        tags={"value": str(value)},
    )
    return result.success


if __name__ == "__main__":
    # python -m energy_assets_tests.reliability._workers crash LAKE_ROOT DAY VALUE MARKER
    _, command, lake_root, day, value, marker = sys.argv
    assert command == "crash"
    sys.exit(0 if run_crash_scenario(lake_root, day, int(value), marker) else 1)


# ---------------------------------------------------------------------------------------- maintenance
def maintenance_definitions():
    """A code location with one bronze table and the maintenance job, configured from the environment."""
    from dagster import Definitions, in_process_executor

    from energy_assets.lake.io_manager import DeltaLakeIOManager
    from energy_assets.maintenance.definitions import lake_maintenance_job, lake_maintenance_resource
    from energy_assets_tests.lake.test_maintenance import polls

    lake = LakeResource()  # ENERGY_LAKE_URI / ENERGY_LAKE_STORAGE_OPTIONS, read when the run starts
    return Definitions(
        assets=[polls],
        jobs=[lake_maintenance_job],
        resources={"lake": lake, "io_manager": DeltaLakeIOManager(lake=lake), "lake_maintenance": lake_maintenance_resource()},
        executor=in_process_executor,
    )


def run_maintenance_from_code_location(instance):
    """Run `lake_maintenance_job` as a deployment does: reconstructed from its code location."""
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repo = ReconstructableRepository.for_module(__name__, "maintenance_definitions")
    return execute_job(repo.get_reconstructable_job("lake_maintenance_job"), instance=instance)


# ------------------------------------------------------------------------------------- pooled steps
def pooled_asset(pool: str | None, markers: str, expected: int, window_s: float):
    """An 'API call' step: marks itself inside, waits until `expected` steps are inside (or the window
    closes), and reports the most it saw inside at once."""

    @asset(name="api_readings", key_prefix="bronze", partitions_def=DAYS, metadata={"partition_expr": "day"}, pool=pool)
    def api_readings(context: AssetExecutionContext) -> pl.DataFrame:
        mine = Path(markers) / f"{os.getpid()}-{context.partition_key}"
        mine.touch()
        most = 0
        try:
            deadline = time.monotonic() + window_s
            while True:
                most = max(most, len(os.listdir(markers)))
                if most >= expected or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        finally:
            mine.unlink()
        return pl.DataFrame({"day": [dt.date.fromisoformat(context.partition_key)], "most_inside": [most]})

    return api_readings


def materialize_pooled(env: dict, dagster_home: str, lake_root: str, day: str, pool: str | None, markers: str, expected: int, window_s: float, barrier=None) -> dict:
    os.environ.update(env)
    from energy_assets.lake.io_manager import DeltaLakeIOManager

    with DagsterInstance.from_config(dagster_home) as instance:
        if barrier is not None:
            barrier.wait(timeout=60)
        result = materialize(
            [pooled_asset(pool, markers, expected, window_s)],
            partition_key=day,
            resources={"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=lake_root))},
            instance=instance,
            raise_on_error=False,
        )
        return {"success": result.success, "run_id": result.run_id}


# --------------------------------------------------------------------------------- scale-out (steps)
API_TAG = "energy_assets/api"


def _api_step(api: str, name: str):
    @asset(
        name=name,
        key_prefix="bronze",
        partitions_def=DAYS,
        metadata={"partition_expr": "day"},
        op_tags={API_TAG: api},
    )
    def call_api(context: AssetExecutionContext) -> pl.DataFrame:
        """Marks itself inside its run's step directory, waits (bounded) until a step of the *other* API is
        inside too or has already finished, and records the most steps of its own API it saw at once."""
        inside = Path(os.environ["SCALE_OUT_MARKERS"]) / context.run_id
        inside.mkdir(parents=True, exist_ok=True)
        mine = inside / f"{api}--{name}"
        mine.touch()
        most_same, met_other = 0, False
        try:
            deadline = time.monotonic() + 60
            settle_until = None
            while time.monotonic() < deadline:
                names = os.listdir(inside)
                running = [n for n in names if not n.startswith("done--")]
                most_same = max(most_same, sum(n.startswith(api + "--") for n in running))
                if any(not n.startswith(api + "--") for n in running):
                    met_other = True
                    settle_until = settle_until or time.monotonic() + 0.5
                if settle_until and time.monotonic() > settle_until:
                    break
                if any(n.startswith("done--") and not n.startswith(f"done--{api}--") for n in names):
                    break  # the other API's step is already over: nobody left to meet
                time.sleep(0.02)
        finally:
            mine.unlink()
            (inside / f"done--{api}--{name}").touch()
        day = dt.date.fromisoformat(context.partition_key)
        return pl.DataFrame({"day": [day], "api": [api], "most_same_api_inside": [most_same], "met_other_api": [met_other], "pid": [os.getpid()]})

    return call_api


def scale_out_definitions():
    """Two NESO steps and one Electricity Maps step per partition; the multiprocess executor runs steps in
    parallel, at most one step per API at a time (tag_concurrency_limits)."""
    from dagster import Definitions, define_asset_job, multiprocess_executor

    from energy_assets.lake.io_manager import DeltaLakeIOManager

    assets = [_api_step("neso", "neso_intensity"), _api_step("neso", "neso_generation"), _api_step("electricity_maps", "em_intensity")]
    executor = multiprocess_executor.configured(
        {
            "max_concurrent": 3,
            "tag_concurrency_limits": [
                {"key": API_TAG, "value": "neso", "limit": 1},
                {"key": API_TAG, "value": "electricity_maps", "limit": 1},
            ],
        }
    )
    return Definitions(
        assets=assets,
        jobs=[define_asset_job("scale_out_job", partitions_def=DAYS, executor_def=executor)],
        resources={"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=os.environ["SCALE_OUT_LAKE"]))},
    )


def run_scale_out_partition(env: dict, dagster_home: str, day: str, barrier=None) -> dict:
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    os.environ.update(env)
    # the step processes import this module again: from the project root, like a code location would
    repo = ReconstructableRepository.for_module(__name__, "scale_out_definitions", working_directory=str(Path(__file__).resolve().parents[2]))
    with DagsterInstance.local_temp(dagster_home) as instance:
        if barrier is not None:
            barrier.wait(timeout=60)
        result = execute_job(repo.get_reconstructable_job("scale_out_job"), instance=instance, tags={"dagster/partition": day})
        return {"success": result.success, "run_id": result.run_id}
