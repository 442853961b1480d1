"""Partitioned checks read true per partition after a single-run range (issue 13, item 8).

What the UI shows per partition is the instance's asset-check state (`event_log_storage.get_asset_check_state`,
the status subsets the asset's Checks tab counts: "4 / 4 Passed" or "Skipped (4)").
"""

import shutil

import polars as pl
import pytest
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetSelection,
    BackfillPolicy,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    define_asset_job,
)

from energy_assets import settings
from energy_assets.check_outcome import CheckOutcome
from energy_assets.instance_storage import SqliteEventLogStorage
from energy_assets.jobs import build_jobs
from energy_assets.neso.assets import NESO_ASSETS
from energy_assets.neso.checks import NESO_CHECKS
from energy_assets.partitions import uk_settlement_days
from energy_assets.range_checks import is_range_copy, report

DAYS = ["2021-03-26", "2021-03-27", "2021-03-28", "2021-03-29"]
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}


def statuses(instance, check_key: AssetCheckKey) -> dict[str, list[str]]:
    """{status: partition keys} of a check, as the UI resolves them."""
    state = instance.event_log_storage.get_asset_check_state([(check_key, uk_settlement_days)])[check_key]
    found = {}
    for status, subset in state.subsets.items():
        keys = sorted(subset.subset_value.get_partition_keys())
        if keys:
            found[status.value] = keys
    return found


def check_keys(checks) -> list[AssetCheckKey]:
    return [key for c in checks for key in c.check_keys]


@pytest.fixture(params=["ephemeral", "project"])
def any_instance(request, tmp_path, monkeypatch):
    """Dagster's in-memory instance, and the project's (its SQLite event log stores the copies as one batch)."""
    if request.param == "ephemeral":
        with DagsterInstance.ephemeral() as inst:
            yield inst
        return
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as inst:
        assert isinstance(inst.event_log_storage, SqliteEventLogStorage)
        yield inst


def test_every_neso_check_reads_passed_for_each_day_of_a_range_run(neso_resources, any_instance, monkeypatch):
    from energy_assets import range_checks

    instance = any_instance

    reads = []
    original = range_checks.latest_materializations
    targets = range_checks.latest_materialization_targets
    monkeypatch.setattr(range_checks, "latest_materialization_targets", lambda inst, key, days: reads.append(key) or targets(inst, key, days))
    defs = Definitions(assets=NESO_ASSETS, asset_checks=NESO_CHECKS, resources=neso_resources, jobs=build_jobs(NESO_ASSETS, NESO_CHECKS))
    result = defs.resolve_job_def("uk_days_job").execute_in_process(instance=instance, tags=RANGE)
    assert result.success
    keys = check_keys(NESO_CHECKS)
    # the materialisations a range's copies target are read once per checked asset, not once per check
    assert sorted(reads) == sorted({k.asset_key for k in keys}) and len(keys) > len(reads)
    for key in keys:
        assert statuses(instance, key) == {"SUCCEEDED": DAYS}, key.to_user_string()
    evaluations = result.get_asset_check_evaluations()
    ranged = [e for e in evaluations if not is_range_copy(e)]
    assert len(ranged) == len(keys) and {e.partition for e in ranged} == {None}  # the range result, once per check
    copies = [e for e in evaluations if is_range_copy(e)]
    assert sorted((e.asset_check_key.to_user_string(), e.partition) for e in copies) == sorted(
        (k.to_user_string(), d) for k in keys for d in DAYS
    )
    assert all(e.metadata["evaluated_over_range"].value == f"{DAYS[0]}...{DAYS[-1]}" for e in copies)
    # each copy targets its own partition's materialisation of this run
    latest = {(k, d): original(instance, k, DAYS)[d] for k in {c.asset_key for c in copies} for d in DAYS}
    for copy in copies:
        target = copy.target_materialization_data
        record = latest[(copy.asset_key, copy.partition)]
        assert (target.storage_id, target.run_id) == (record.storage_id, result.run_id) == (record.storage_id, record.run_id)
        assert abs(target.timestamp - record.timestamp) < 1e-5  # the index column's time, to the microsecond


@pytest.mark.parametrize("storage", ["sql", "records"])
def test_the_targets_read_from_the_index_are_the_latest_materialisation_records(probe_defs, any_instance, storage, monkeypatch):
    """latest_materialization_targets (the event log's index columns) against the records Dagster deserialises: a
    partition materialised again by a later run targets the later one, a partition never materialised has none;
    "records" is the fallback for an event log that is not SQL."""
    from energy_assets import range_checks

    instance = any_instance
    job = probe_defs.resolve_job_def("probe_job")
    assert job.execute_in_process(instance=instance, tags=RANGE).success
    again = job.execute_in_process(instance=instance, partition_key=DAYS[1])
    assert again.success
    if storage == "records":
        monkeypatch.setattr(range_checks, "latest_materialization_targets", lambda *args: None)
    else:  # Dagster's SQL storages (the in-memory one, the project's SQLite) are read by their index columns
        assert range_checks.latest_materialization_targets(instance, probe.key, DAYS) is not None
    range_checks._TARGETS.clear()
    wanted = [*DAYS, "2021-04-01"]
    targets = range_checks._targets_in_run(instance, "a-check-run", probe.key, wanted)
    records = range_checks.latest_materializations(instance, probe.key, wanted)
    assert sorted(targets) == sorted(records) == DAYS  # 2021-04-01 was never materialised
    assert targets[DAYS[1]].run_id == again.run_id and targets[DAYS[0]].run_id != again.run_id
    for day, target in targets.items():
        assert (target.storage_id, target.run_id) == (records[day].storage_id, records[day].run_id)
        assert abs(target.timestamp - records[day].timestamp) < 1e-5


@asset(partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run(), io_manager_key="io_manager", metadata={"partition_expr": "settlement_date"})
def probe(context) -> pl.DataFrame:
    window = context.partition_time_window
    return pl.DataFrame({"settlement_date": pl.date_range(window.start.date(), window.end.date(), closed="left", eager=True), "value": 1})


def _probe_check(name: str, passed: bool, use_report: bool, blocking: bool):
    @asset_check(asset=probe, name=name, partitions_def=uk_settlement_days, blocking=blocking)
    def _check(context: AssetCheckExecutionContext, probe: pl.DataFrame):
        outcome = CheckOutcome(passed, "value is 1", f"{probe.height} rows, value {probe['value'].unique().to_list()}")
        return report(context, outcome) if use_report else outcome.result()

    return _check


@pytest.fixture
def probe_defs(resources):
    checks = [
        _probe_check("plain_result", True, use_report=False, blocking=False),
        _probe_check("reported_pass", True, use_report=True, blocking=False),
        _probe_check("reported_fail", False, use_report=True, blocking=False),
    ]
    return Definitions(assets=[probe], asset_checks=checks, resources=resources, jobs=[define_asset_job("probe_job", selection=AssetSelection.assets(probe))])


def test_dagster_stores_a_range_result_without_partition_so_the_days_read_skipped(probe_defs, instance):
    """The reason for range_checks: a plain AssetCheckResult of a range step leaves every day "Skipped". When a
    Dagster upgrade changes this, range_checks.report can go."""
    result = probe_defs.resolve_job_def("probe_job").execute_in_process(instance=instance, tags=RANGE)
    assert result.success
    key = AssetCheckKey(probe.key, "plain_result")
    assert [e.partition for e in result.get_asset_check_evaluations() if e.check_name == "plain_result"] == [None]
    assert statuses(instance, key) == {"SKIPPED": DAYS}


def test_reported_checks_read_passed_or_failed_per_day_for_ranges_and_single_days(probe_defs, instance):
    job = probe_defs.resolve_job_def("probe_job")
    ranged = job.execute_in_process(instance=instance, tags=RANGE)
    assert ranged.success
    assert statuses(instance, AssetCheckKey(probe.key, "reported_pass")) == {"SUCCEEDED": DAYS}
    assert statuses(instance, AssetCheckKey(probe.key, "reported_fail")) == {"FAILED": DAYS}
    failed = [e for e in ranged.get_asset_check_evaluations() if e.check_name == "reported_fail" and is_range_copy(e)]
    assert [e.description for e in failed] == [
        f"4 rows, value [1] (the run's range {DAYS[0]}...{DAYS[-1]} failed; evaluated once over it, recorded for each of its 4 partitions)"
    ] * 4
    # a later single-day run is recorded by Dagster itself (the step has one partition key): no copies
    single = job.execute_in_process(instance=instance, partition_key=DAYS[1])
    assert single.success
    assert [e.partition for e in single.get_asset_check_evaluations() if e.check_name == "reported_pass"] == [DAYS[1]]
    assert not any(is_range_copy(e) for e in single.get_asset_check_evaluations())
    assert statuses(instance, AssetCheckKey(probe.key, "reported_pass")) == {"SUCCEEDED": DAYS}


def test_the_target_type_taken_from_the_public_signature_is_the_one_dagster_checked_on():
    """range_checks reads the type of AssetCheckEvaluation's public `target_materialization_data` parameter
    from its signature (Dagster 1.13.27 does not export it at the top level). Checked on dagster 1.13.*; a
    Dagster that renames or exports it makes this fail, and the one line in range_checks changes."""
    import dagster

    from energy_assets.range_checks import _TARGET

    assert dagster.__version__.startswith("1.13."), dagster.__version__
    assert _TARGET.__name__ == "AssetCheckEvaluationTargetMaterializationData"
    assert {"storage_id", "run_id", "timestamp"} <= set(_TARGET.__annotations__) | set(getattr(_TARGET, "_fields", ()))


def test_a_second_range_run_targets_its_own_materialisations(probe_defs, instance):
    """The targets are read once per run and asset (range_checks._TARGETS): a new run of the same range reads them
    afresh, so its copies never point at the previous run's materialisations."""
    job = probe_defs.resolve_job_def("probe_job")
    for _ in range(2):
        result = job.execute_in_process(instance=instance, tags=RANGE)
        assert result.success
        copies = [e for e in result.get_asset_check_evaluations() if is_range_copy(e)]
        assert copies and {e.target_materialization_data.run_id for e in copies} == {result.run_id}
    assert statuses(instance, AssetCheckKey(probe.key, "reported_pass")) == {"SUCCEEDED": DAYS}
