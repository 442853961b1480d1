"""FrameStream outputs: batches produced one at a time, written in ONE Delta transaction, each batch checked
against the run's partitions before the commit, with the producer's metadata reported."""

import datetime as dt

import polars as pl
import pytest
from dagster import AssetExecutionContext, BackfillPolicy, DagsterInstance, DailyPartitionsDefinition, Output, asset, materialize
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from energy_assets.lake import engine as lake_engine
from energy_assets.lake.io_manager import DeltaLakeIOManager, FrameStream
from energy_assets.lake.resource import LakeResource

days = DailyPartitionsDefinition(start_date="2024-03-28", end_date="2024-04-05", timezone="Europe/London")
RANGE = {"dagster/asset_partition_range_start": "2024-03-30", "dagster/asset_partition_range_end": "2024-04-01"}
SCHEMA = {"day": pl.Date, "value": pl.Int64, "label": pl.String}


def run_days(context: AssetExecutionContext) -> list[dt.date]:
    w = context.partition_time_window
    return [w.start.date() + dt.timedelta(days=i) for i in range((w.end.date() - w.start.date()).days)]


def make_asset(version: dict, calls: list, mode: str = "overwrite"):
    @asset(
        key_prefix="silver",
        partitions_def=days,
        backfill_policy=BackfillPolicy.single_run(),
        metadata={"partition_expr": "day", "write_mode": mode},
    )
    def daily(context: AssetExecutionContext):
        run = run_days(context)

        def batches():
            calls.append(1)
            seen = 0
            for day in run:  # one batch per day, columns deliberately out of order and narrower types
                batch = pl.DataFrame({"label": [f"v{version['v']}"] * 2, "value": [version["v"], version["v"]], "day": [day, day]})
                seen += batch.height
                yield batch.with_columns(pl.col("value").cast(pl.Int32))
            if version.get("stray"):
                yield pl.DataFrame({"day": [dt.date(2024, 4, 4)], "value": [9], "label": ["stray"]})
            if version.get("fail_at_end"):
                raise RuntimeError("producer found an inconsistency after its last batch")
            stream.metadata.clear()
            stream.metadata["rows_produced"] = seen

        stream = FrameStream(schema=SCHEMA, batches=batches)
        yield Output(stream)

    return daily


def run(assets, root, **kwargs):
    return materialize(assets, resources={"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(root)))}, instance=DagsterInstance.ephemeral(), **kwargs)


def table(root) -> pl.DataFrame:
    return pl.read_delta(str(root / "silver" / "daily")).sort("day", "value")


def test_a_stream_overwrites_exactly_its_partitions_in_one_transaction_and_reports_metadata(tmp_path):
    version, calls = {"v": 1}, []
    daily = make_asset(version, calls)
    assert run([daily], tmp_path, partition_key="2024-04-02").success  # outside the range: must survive
    for v in (1, 2):
        version["v"] = v
        result = run([daily], tmp_path, tags=RANGE)
        assert result.success
    t = table(tmp_path)
    assert t.schema == pl.Schema(SCHEMA)
    assert t["day"].to_list() == [dt.date(2024, 3, 30)] * 2 + [dt.date(2024, 3, 31)] * 2 + [dt.date(2024, 4, 1)] * 2 + [dt.date(2024, 4, 2)] * 2
    assert t["value"].to_list() == [2] * 6 + [1] * 2  # re-run replaced its days, no duplicates
    dtable = DeltaTable(str(tmp_path / "silver" / "daily"))
    writes = [h for h in dtable.history() if h["operation"] == "WRITE"]
    assert len(writes) == 3  # one commit per run, whatever the number of batches
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["rows_produced"].value == 6
    assert meta["rows_written"].value == 6
    assert meta["dagster/row_count"].value == 8
    assert meta["slice_row_count"].value == 6
    per_day = [m.materialization.metadata["dagster/partition_row_count"].value for m in result.get_asset_materialization_events()]
    assert per_day == [2, 2, 2]
    assert "v2" in result.get_asset_materialization_events()[-1].materialization.metadata["preview"].value


def test_a_batch_outside_the_partitions_is_refused_and_nothing_is_committed(tmp_path):
    version, calls = {"v": 1}, []
    daily = make_asset(version, calls)
    assert run([daily], tmp_path, tags=RANGE).success
    before = DeltaTable(str(tmp_path / "silver" / "daily")).version()
    version.update(v=2, stray=True)
    result = run([daily], tmp_path, tags=RANGE, raise_on_error=False)
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "outside the partition" in error and "silver/daily" in error
    assert DeltaTable(str(tmp_path / "silver" / "daily")).version() == before
    assert table(tmp_path)["value"].to_list() == [1] * 6


def test_a_producer_failing_after_its_last_batch_leaves_the_table_as_it_was(tmp_path):
    version, calls = {"v": 1}, []
    daily = make_asset(version, calls)
    assert run([daily], tmp_path, tags=RANGE).success
    before = DeltaTable(str(tmp_path / "silver" / "daily")).version()
    version.update(v=2, fail_at_end=True)
    result = run([daily], tmp_path, tags=RANGE, raise_on_error=False)
    assert not result.success
    assert "inconsistency after its last batch" in str(result.get_step_failure_events()[0].event_specific_data.error)
    assert DeltaTable(str(tmp_path / "silver" / "daily")).version() == before
    assert table(tmp_path)["value"].to_list() == [1] * 6


def test_a_commit_conflict_reruns_the_stream_from_the_start(tmp_path, monkeypatch):
    version, calls = {"v": 1}, []
    daily = make_asset(version, calls)
    original = lake_engine.write_deltalake
    conflicts = {"left": 1}

    def conflicting(table, data, **kwargs):
        if conflicts["left"]:
            conflicts["left"] -= 1
            data.read_all()  # the batches were consumed, then a concurrent writer won the commit
            raise CommitFailedError("simulated concurrent transaction")
        return original(table, data, **kwargs)

    monkeypatch.setattr(lake_engine, "write_deltalake", conflicting)
    assert run([daily], tmp_path, tags=RANGE).success
    assert len(calls) == 2  # the producer was called again for the second attempt
    assert table(tmp_path)["value"].to_list() == [1] * 6  # all rows, once


def test_an_empty_stream_clears_its_partitions(tmp_path):
    version, calls = {"v": 1}, []
    daily = make_asset(version, calls)
    assert run([daily], tmp_path, tags=RANGE).success

    @asset(key_prefix="silver", name="daily", partitions_def=days, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
    def emptied(context: AssetExecutionContext):
        yield Output(FrameStream(schema=SCHEMA, batches=lambda: iter([])))

    assert run([emptied], tmp_path, partition_key="2024-03-31").success
    assert sorted(set(table(tmp_path)["day"].to_list())) == [dt.date(2024, 3, 30), dt.date(2024, 4, 1)]


def test_a_batch_with_other_columns_is_refused(tmp_path):
    @asset(key_prefix="silver", name="daily", partitions_def=days, metadata={"partition_expr": "day"})
    def wrong(context: AssetExecutionContext):
        yield Output(FrameStream(schema=SCHEMA, batches=lambda: iter([pl.DataFrame({"day": [dt.date(2024, 3, 30)], "value": [1]})])))

    result = run([wrong], tmp_path, partition_key="2024-03-30", raise_on_error=False)
    assert not result.success
    assert "missing ['label']" in str(result.get_step_failure_events()[0].event_specific_data.error)


@pytest.mark.parametrize("mode", ["merge"])
def test_streams_refuse_merge_modes(tmp_path, mode):
    @asset(key_prefix="silver", name="daily", partitions_def=days, metadata={"partition_expr": "day", "write_mode": mode, "merge_keys": ["day"]})
    def merged(context: AssetExecutionContext):
        yield Output(FrameStream(schema=SCHEMA, batches=lambda: iter([])))

    result = run([merged], tmp_path, partition_key="2024-03-30", raise_on_error=False)
    assert not result.success
    assert "FrameStream" in str(result.get_step_failure_events()[0].event_specific_data.error)
