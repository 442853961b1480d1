"""The project's SQLite event log (energy_assets/instance_storage.py, configured in dagster_home/dagster.yaml):
real runs on it are Dagster's own records, read back the same by Dagster's stock class, and it survives a wipe."""

import os
import shutil
from pathlib import Path

import yaml
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    MaterializeResult,
    AssetSelection,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    asset_check,
    define_asset_job,
    asset,
)
from dagster._core.storage.event_log import SqliteEventLogStorage as StockStorage  # the reference to compare to

from energy_assets import settings
from energy_assets.check_outcome import CheckOutcome
from energy_assets.instance_storage import SqliteEventLogStorage, held_check_evaluations
from energy_assets.range_checks import report

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def daily(context) -> None:
    context.log.info(f"{len(context.partition_keys)} days")


@asset(partitions_def=DAYS, deps=[daily], backfill_policy=BackfillPolicy.single_run())
def downstream(context) -> None:
    return None


def instance_at(home: Path, project_yaml: bool) -> DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    if project_yaml:
        shutil.copy(settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    else:  # Dagster's defaults: the stock SQLite event log in the same folders
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.from_config(str(home))


def test_the_project_instance_uses_it_and_stock_dagster_reads_every_record_back(tmp_path, monkeypatch):
    config = yaml.safe_load((settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert config["event_log_storage"] == {"module": "energy_assets.instance_storage", "class": "SqliteEventLogStorage"}
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    job = define_asset_job("both", AssetSelection.assets(daily, downstream))
    defs = Definitions(assets=[daily, downstream], jobs=[job])
    tags = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-10"}
    with instance_at(home, project_yaml=True) as instance:
        assert type(instance.event_log_storage) is SqliteEventLogStorage
        assert instance.event_log_storage._base_dir == str(home / "history" / "runs")  # where Dagster keeps it
        for _ in range(2):  # the same range twice: the second run writes into kept engines
            assert defs.resolve_job_def("both").execute_in_process(instance=instance, tags=tags).success
        runs = instance.get_runs()
        written = {run.run_id: [(e.dagster_event_type, e.step_key, e.timestamp) for e in instance.all_logs(run.run_id)] for run in runs}
        mine = {key: instance.get_materialized_partitions(AssetKey(key)) for key in ("daily", "downstream")}
        counts = {key: instance.get_latest_materialization_event(AssetKey(key)) is not None for key in mine}

    with instance_at(home, project_yaml=False) as stock:  # the same files, read by Dagster's stock class
        assert type(stock.event_log_storage) is StockStorage
        assert {r.run_id for r in stock.get_runs()} == set(written)
        for run_id, events in written.items():
            assert [(e.dagster_event_type, e.step_key, e.timestamp) for e in stock.all_logs(run_id)] == events
        for key, partitions in mine.items():
            assert stock.get_materialized_partitions(AssetKey(key)) == partitions == set(DAYS.get_partition_keys())
        assert counts == {"daily": True, "downstream": True}
        # one materialisation per partition per run: 10 days x 2 assets x 2 runs
        materialised = [e for events in written.values() for e in events if e[0] and e[0].value == "ASSET_MATERIALIZATION"]
        assert len(materialised) == 10 * 2 * 2


def test_a_wipe_forgets_the_kept_engines_so_new_run_files_get_their_schema(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    job = define_asset_job("one", AssetSelection.assets(daily))
    defs = Definitions(assets=[daily], jobs=[job])
    with instance_at(home, project_yaml=True) as instance:
        assert defs.resolve_job_def("one").execute_in_process(instance=instance, partition_key="2024-01-02").success
        (run,) = instance.get_runs()
        assert run.run_id in instance.event_log_storage._engines  # kept for the next write
        instance.wipe()
        assert run.run_id not in instance.event_log_storage._engines
        assert instance.get_runs() == [] and instance.get_materialized_partitions(AssetKey("daily")) == set()
        assert defs.resolve_job_def("one").execute_in_process(instance=instance, partition_key="2024-01-03").success
        assert instance.get_materialized_partitions(AssetKey("daily")) == {"2024-01-03"}


def test_a_watcher_of_a_run_sees_its_events_as_they_are_stored(tmp_path):
    """The webserver's live view of a run's logs watches `<run_id>.db`: it must hear of every new event."""
    import threading
    import time

    from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
    from dagster._core.events.log import EventLogEntry

    storage = SqliteEventLogStorage(base_dir=str(tmp_path / "runs"))
    run_id = "0" * 8 + "-0000-0000-0000-000000000001"
    seen: list[str] = []
    heard = threading.Event()

    def callback(entry, _cursor):
        seen.append(entry.user_message)
        if len(seen) == 4:
            heard.set()

    def store(message: str) -> None:
        event = DagsterEvent(event_type_value=DagsterEventType.ENGINE_EVENT.value, job_name="job", message=message, event_specific_data=EngineEventData())
        storage.store_event(EventLogEntry(error_info=None, level=20, user_message=message, run_id=run_id, timestamp=time.time(), dagster_event=event))

    store("first")  # the run's database exists before anyone watches it, as for a running run
    try:
        storage.watch(run_id, None, callback)
        for message in ("second", "third", "fourth"):
            store(message)
            time.sleep(0.2)
        assert heard.wait(timeout=20), f"the watcher heard only {seen} (from the start: first, then each new one)"
        assert seen == ["first", "second", "third", "fourth"]
    finally:
        storage.end_watch(run_id, callback)
        storage.dispose()


# ------------------------------------------------------------------ batched writes: the records of event-by-event writes
@asset(
    partitions_def=DAYS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[AssetCheckSpec("positive", asset="checked")],
)
def checked(context) -> MaterializeResult:
    return MaterializeResult(metadata={"days": len(context.partition_keys)}, check_results=[AssetCheckResult(check_name="positive", passed=True)])


@asset_check(asset=checked, name="range_rule", partitions_def=DAYS, blocking=False)
def range_rule(context: AssetCheckExecutionContext) -> AssetCheckResult:
    """A range check recording its result for each partition (`range_checks.report`): passes in the first run, fails
    in the next. A message before and after the records: the one after comes while they are held (the outer scope),
    so it must store them first, and the run's log keeps the order of event-by-event writes."""
    first = len(context.instance.get_run_records()) == 1
    with held_check_evaluations(context.instance):
        context.log.info("before the range's records")
        result = report(context, CheckOutcome(passed=first, checked="the run is the first", found=f"first: {first}"))
        context.log.info("after the range's records")
    return result


@asset(partitions_def=DAYS, deps=[checked], backfill_policy=BackfillPolicy.single_run())
def fails_on_a_range(context) -> None:
    if len(context.partition_keys) > 1:
        raise RuntimeError("this asset fails for any range")


def _what_the_instance_says(instance: DagsterInstance) -> dict:
    """Everything the UI reads about these runs, with run ids replaced by their order."""
    runs = list(reversed(instance.get_runs()))  # oldest first
    order = {run.run_id: n for n, run in enumerate(runs)}
    storage = instance.event_log_storage
    facts: dict = {"runs": [(run.status.value, run.job_name) for run in runs]}
    facts["events"] = [
        [(e.dagster_event_type and e.dagster_event_type.value, e.step_key, e.dagster_event and e.dagster_event.partition) for e in instance.all_logs(run.run_id)]
        for run in runs
    ]
    for name in ("checked", "fails_on_a_range"):
        key = AssetKey(name)
        facts[name] = {
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "failed": sorted(
                (p, order[run_id]) for p, (run_id, _id) in storage.get_latest_asset_partition_materialization_attempts_without_materializations(key).items()
            ),
            "last_run": order.get(instance.get_asset_records([key])[0].asset_entry.last_run_id),
            "latest": (lambda e: e and (e.dagster_event.partition, order[e.run_id]))(instance.get_latest_materialization_event(key)),
            "by_tag": [  # materialisations found through the partition tags the index keeps
                (r.partition_key, order[r.run_id]) for r in instance.fetch_materializations(AssetRecordsFilter(asset_key=key, asset_partitions=["2024-01-05"]), limit=10).records
            ],
            # the index's tag table (the data versions themselves differ from instance to instance)
            "tags": sorted(sorted(t) for t in instance.get_event_tags_for_asset(key)),
        }
    facts["check"] = sorted(
        (r.partition or "", r.status.value, order[r.run_id])
        for r in storage.get_asset_check_execution_history(AssetCheckKey(AssetKey("checked"), "positive"), limit=100)
    )
    range_key = AssetCheckKey(AssetKey("checked"), "range_rule")
    facts["range_check"] = sorted(
        (r.partition or "", r.status.value, order[r.run_id], r.event and r.event.dagster_event.event_specific_data.description)
        for r in storage.get_asset_check_execution_history(range_key, limit=100)
    )
    # what the UI's partition view of the check reads: each partition's latest status, and whether it is current
    facts["range_check_partitions"] = sorted(
        (i.partition_key or "", i.latest_execution_status.value, order[i.latest_planned_run_id], i.is_current)
        for i in storage.get_asset_check_partition_info([range_key])
    )
    facts["range_check_targets"] = sorted(
        (r.partition, order[r.run_id], r.event.dagster_event.event_specific_data.target_materialization_data is not None)
        for r in storage.get_asset_check_execution_history(range_key, limit=100)
        if r.partition and r.event
    )
    return facts


def test_batched_writes_leave_the_records_of_event_by_event_writes(tmp_path, monkeypatch):
    """The same runs (a range that succeeds, then a range whose second step fails) on the project's event log with
    Dagster's batches, and on Dagster's stock class event by event: the UI reads the same runs, events, materialised
    and failed partitions, asset rows, partition tags and check executions from both."""
    job = define_asset_job("both", AssetSelection.assets(checked, fails_on_a_range) | AssetSelection.checks(range_rule))
    defs = Definitions(assets=[checked, fails_on_a_range], asset_checks=[range_rule], jobs=[job])
    tags = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-10"}
    batches: list[list[str]] = []
    original = SqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append(sorted({e.dagster_event_type.value for e in events}))
        return original(self, events)

    monkeypatch.setattr(SqliteEventLogStorage, "store_event_batch", spy)
    said = {}
    for name, project_yaml, batch_size in (("project", True, None), ("stock", False, "0")):
        home = tmp_path / name
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        if batch_size is None:
            monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
        else:
            monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
        with instance_at(home, project_yaml=project_yaml) as instance:
            assert defs.resolve_job_def("both").execute_in_process(instance=instance, tags=tags, asset_selection=[AssetKey("checked")]).success
            assert not defs.resolve_job_def("both").execute_in_process(instance=instance, tags=tags, raise_on_error=False).success
            said[name] = _what_the_instance_says(instance)
        if name == "project":  # the storage switched Dagster's batches on, and they came
            assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == settings.SETTINGS["DAGSTER_EVENT_BATCH_SIZE"].default
            assert ["ASSET_MATERIALIZATION"] in batches
            assert ["ASSET_CHECK_EVALUATION_PLANNED", "ASSET_MATERIALIZATION_PLANNED"] in batches
    assert said["project"] == said["stock"]
    checked_facts = said["stock"]["checked"]
    assert len(checked_facts["materialized"]) == 10 and checked_facts["failed"] == []
    # the failed range marks each of its partitions failed (what the planned events are for)
    assert said["stock"]["fails_on_a_range"]["failed"] == [(day, 1) for day in DAYS.get_partition_keys()[:10]]
    # the check: planned for each day of both runs, its range result recorded once per run
    check = said["stock"]["check"]
    assert [c for c in check if c[0] == ""] == [("", "SUCCEEDED", 0), ("", "SUCCEEDED", 1)]
    assert [c for c in check if c[0] == "2024-01-05"] == [("2024-01-05", "PLANNED", 0), ("2024-01-05", "PLANNED", 1)]
    # the range check: held, then stored as one batch per run, it reads as event-by-event records do: each of the
    # ten days passed in the first run and failed in the second, with the range's description and its target
    assert ["ASSET_CHECK_EVALUATION"] in batches
    ranged = said["stock"]["range_check"]
    assert sorted((r, s) for p, s, r, _ in ranged if p == "2024-01-05") == [(0, "SUCCEEDED"), (1, "FAILED")]
    assert len([r for r in ranged if r[0]]) == 20 and all("recorded for each of its 10 partitions" in r[3] for r in ranged if r[0])
    assert said["stock"]["range_check_targets"] == sorted((day, run, True) for day in DAYS.get_partition_keys()[:10] for run in (0, 1))
    assert [i for i in said["stock"]["range_check_partitions"] if i[0] == "2024-01-05"] == [("2024-01-05", "FAILED", 1, True)]  # current: it targets run 1's materialisation
    messages = [e for e in said["stock"]["events"][1] if e[1] == "checked_range_rule"]
    before, after = messages.index((None, "checked_range_rule", None)), len(messages) - 1 - messages[::-1].index((None, "checked_range_rule", None))
    assert [e[0] for e in messages[before + 1 : after]] == ["ASSET_CHECK_EVALUATION"] * 10  # the records between the two messages
