"""The lake's write engine without Dagster: each write mode, the slice refusal, commit-conflict retries and
streams, against real Delta tables in a temporary lake."""

import ast
import datetime as dt
import inspect
import subprocess
import sys

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from energy_assets.lake import engine, slices, store
from energy_assets.lake.engine import FrameStream, LakeCommitConflictError, LakeWriteError, RetryPolicy, WriteSpec, read_slice, table_stats, write
from energy_assets.lake.slices import SliceDimension, SliceError, TimeRange
from energy_assets.lake.store import Lake

LONDON = dt.timezone(dt.timedelta(0))  # UTC offset of London in winter: the days below are January days
KEY = ("silver", "daily")
FAST = RetryPolicy(max_attempts=4, backoff_s=0.001, backoff_max_s=0.002)


def days(first: str, count: int) -> SliceDimension:
    start = dt.datetime.fromisoformat(first).replace(tzinfo=LONDON)
    return SliceDimension("day", TimeRange(start, start + dt.timedelta(days=count)))


def frame(first: str, count: int, value: int, keys: int = 2) -> pl.DataFrame:
    start = dt.date.fromisoformat(first)
    rows = [(start + dt.timedelta(days=d), k, value) for d in range(count) for k in range(keys)]
    return pl.DataFrame(rows, schema={"day": pl.Date, "key": pl.Int64, "value": pl.Int64}, orient="row")


def table(lake: Lake, key=KEY) -> pl.DataFrame:
    return lake.read(key).sort("day", "key")


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_the_engine_modules_import_no_dagster():
    for module in (engine, slices, store):
        tree = ast.parse(inspect.getsource(module))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not [m for m in imported if m.split(".")[0].startswith("dagster")], module.__name__


def test_a_write_and_its_stats_never_import_pandas(tmp_path):
    """Each step process writes and reports its table; importing pandas for that (as `pyarrow.table()` of the add
    actions does) cost 0.12-0.17 s per process. In a fresh interpreter, so that no other test has imported it."""
    script = f"""
import datetime as dt, sys, polars as pl
from energy_assets.lake import engine, slices
from energy_assets.lake.store import Lake
from energy_assets.maintenance import tables  # its file totals too
lake = Lake({str(tmp_path / "lake")!r})
frame = pl.DataFrame({{"day": [dt.date(2024, 1, 2)] * 3, "v": [1, 2, 3]}})
start = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
dims = [slices.SliceDimension("day", slices.TimeRange(start, start + dt.timedelta(days=1)))]
engine.write(lake, ("silver", "t"), frame, dims)
stats = engine.table_stats(lake, ("silver", "t"), slices.slice_conditions(dims, frame.schema), by_slice_values=True)
print(stats.row_count, stats.num_files, stats.size_bytes > 0, "pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3", "1", "True", "False"]


def test_a_new_table_is_created_schema_first_then_written_in_one_commit(lake):
    result = write(lake, KEY, frame("2024-01-02", 1, 1), [days("2024-01-02", 1)])
    operations = [h["operation"] for h in DeltaTable(lake.table_uri(KEY)).history()][::-1]
    assert operations == ["CREATE TABLE", "WRITE"]
    assert DeltaTable(lake.table_uri(KEY)).metadata().partition_columns == ["day"]  # the slice's date column
    assert (result.stats, result.mode, result.slice) == (
        {"rows_written": 2, "commit_attempts": 1},
        "overwrite",
        "(day >= '2024-01-02' AND day < '2024-01-03')",
    )


def test_overwrite_replaces_exactly_the_time_range_it_covers(lake):
    write(lake, KEY, frame("2024-01-01", 5, 1), [days("2024-01-01", 5)])
    write(lake, KEY, frame("2024-01-02", 2, 2, keys=1), [days("2024-01-02", 2)])
    t = table(lake)
    assert t.group_by("day").agg(pl.col("value").max(), pl.len()).sort("day").rows() == [
        (dt.date(2024, 1, 1), 1, 2),
        (dt.date(2024, 1, 2), 2, 1),
        (dt.date(2024, 1, 3), 2, 1),
        (dt.date(2024, 1, 4), 1, 2),
        (dt.date(2024, 1, 5), 1, 2),
    ]
    stats = table_stats(lake, KEY, slices.slice_conditions([days("2024-01-02", 2)], t.schema))
    assert (stats.row_count, stats.slice_row_count, list(stats.schema)) == (8, 2, ["day", "key", "value"])


def test_overwrite_of_a_values_slice_keeps_other_values(lake):
    zones = pl.DataFrame({"zone": ["GR", "DE", "FR"], "v": [1, 1, 1]})
    write(lake, ("bronze", "zoned"), zones, [SliceDimension("zone", ["GR", "DE", "FR"])])
    write(lake, ("bronze", "zoned"), pl.DataFrame({"zone": ["DE"], "v": [2]}), [SliceDimension("zone", ["DE"])])
    assert dict(lake.read(("bronze", "zoned")).iter_rows()) == {"GR": 1, "DE": 2, "FR": 1}


def test_rows_outside_the_slice_are_refused_before_anything_is_written(lake):
    write(lake, KEY, frame("2024-01-02", 1, 1), [days("2024-01-02", 1)])
    version = lake.version(KEY)
    with pytest.raises(LakeWriteError, match=r"silver/daily: 2 of 4 rows lie outside the partition\(s\) being written"):
        write(lake, KEY, frame("2024-01-02", 2, 2), [days("2024-01-02", 1)], WriteSpec("silver/daily"))
    assert lake.version(KEY) == version
    assert table(lake)["value"].to_list() == [1, 1]


def test_a_time_range_on_a_string_column_is_refused(lake):
    with pytest.raises(SliceError, match="time partitions need a date or timestamp column; 'day' is a string"):
        write(lake, KEY, pl.DataFrame({"day": ["2024-01-02"]}), [days("2024-01-02", 1)])
    assert not lake.exists(KEY)


def test_merge_upserts_newest_wins_and_leaves_the_rest_of_the_table_alone(lake):
    spec = WriteSpec("silver/daily", mode="merge", merge_keys=("key",), merge_order_by="version")
    first = pl.DataFrame({"day": [dt.date(2024, 1, 2)] * 3, "key": [1, 2, 3], "value": [10, 20, 30], "version": [1, 1, 1]})
    other_day = pl.DataFrame({"day": [dt.date(2024, 1, 3)], "key": [2], "value": [99], "version": [0]})
    write(lake, KEY, first, [days("2024-01-02", 1)], spec)
    write(lake, KEY, other_day, [days("2024-01-03", 1)], spec)
    # key 2 revised twice in the batch (the newer wins), key 3 stale (loses), key 4 new
    second = pl.DataFrame(
        {"day": [dt.date(2024, 1, 2)] * 4, "key": [2, 2, 3, 4], "value": [22, 21, 0, 40], "version": [3, 2, 0, 2]}
    )
    result = write(lake, KEY, second, [days("2024-01-02", 1)], spec)
    assert (result.stats["rows_inserted"], result.stats["rows_updated"]) == (1, 1)
    t = lake.read(KEY).sort("day", "key")
    assert t.select("day", "key", "value").rows() == [
        (dt.date(2024, 1, 2), 1, 10),
        (dt.date(2024, 1, 2), 2, 22),
        (dt.date(2024, 1, 2), 3, 30),
        (dt.date(2024, 1, 2), 4, 40),
        (dt.date(2024, 1, 3), 2, 99),  # the same key in another partition: outside the merge's target
    ]


def test_append_on_keys_inserts_only_new_keys_and_plain_append_adds_everything(lake):
    keyed = WriteSpec("bronze/keyed", mode="append", merge_keys=("day", "key"))
    for value in (1, 2):
        write(lake, ("bronze", "keyed"), frame("2024-01-02", 1, value, keys=2 + value), [days("2024-01-02", 1)], keyed)
    assert lake.read(("bronze", "keyed")).sort("key").select("key", "value").rows() == [(0, 1), (1, 1), (2, 1), (3, 2)]
    plain = WriteSpec("bronze/plain", mode="append")
    for value in (1, 2):
        result = write(lake, ("bronze", "plain"), frame("2024-01-02", 1, value), [days("2024-01-02", 1)], plain)
    assert result.stats == {"rows_inserted": 2, "commit_attempts": 1}
    assert lake.read(("bronze", "plain")).height == 4


@pytest.mark.parametrize(
    "spec,message",
    [
        (WriteSpec("silver/daily", mode="upsert"), "unknown write_mode 'upsert'"),
        (WriteSpec("silver/daily", mode="merge"), "write_mode 'merge' needs 'merge_keys' metadata"),
        (WriteSpec("silver/daily", mode="merge", merge_keys=("missing",)), r"merge key columns \['missing'\] are not in the output"),
        (WriteSpec("silver/daily", partition_by=("value; DROP",)), "not a plain column name"),
        (WriteSpec("silver/daily", mode="replace_if_changed"), "'replace_if_changed' replaces a whole table"),
    ],
)
def test_bad_specs_are_refused_and_nothing_is_written(lake, spec, message):
    with pytest.raises((LakeWriteError, SliceError), match=message):
        write(lake, KEY, frame("2024-01-02", 1, 1), [days("2024-01-02", 1)], spec)
    assert not lake.exists(KEY)


def test_replace_if_changed_commits_a_version_only_when_the_rows_change(lake):
    key, spec = ("raw", "reference"), WriteSpec("raw/reference", mode="replace_if_changed")
    first = pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"]})
    assert write(lake, key, first, spec=spec).stats == {"rows_written": 3, "content_changed": 1, "commit_attempts": 1}
    version = lake.version(key)
    # the same rows in another order (a null included): no new version
    assert write(lake, key, first.reverse(), spec=spec).stats == {"rows_written": 0, "content_changed": 0, "commit_attempts": 1}
    assert lake.version(key) == version
    # one changed cell, or one row fewer: a new version holding exactly the new rows
    changed = first.with_columns(pl.when(pl.col("id") == 2).then(pl.lit("b")).otherwise(pl.col("name")).alias("name"))
    assert write(lake, key, changed, spec=spec).stats["content_changed"] == 1
    assert write(lake, key, changed.head(2), spec=spec).stats["content_changed"] == 1
    assert lake.version(key) == version + 2
    assert lake.read(key).sort("id").equals(changed.head(2))
    # the Delta history is the content's history: time travel gives each earlier content back
    assert lake.scan(key, version=version).collect().sort("id").equals(first, null_equal=True)
    assert lake.scan(key, version=version + 1).collect().sort("id").equals(changed)
    assert DeltaTable(lake.table_uri(key)).metadata().partition_columns == []


def test_replace_if_changed_replaces_a_table_of_an_earlier_layout(lake):
    """A table written with another schema and partitioning (the smart-meter database as one partitioned copy per
    day, before it was versioned by content) is replaced by the new layout in one commit."""
    key = ("raw", "reference")
    days_ = [dt.date(2021, 1, 1), dt.date(2021, 1, 2)]
    old = pl.DataFrame({"id": [1, 1], "name": ["a", "a"], "snapshot_date": days_})
    write_deltalake(lake.table_uri(key), old.to_arrow(), partition_by=["snapshot_date"])
    new = pl.DataFrame({"id": [1], "name": ["a"]})
    result = write(lake, key, new, spec=WriteSpec("raw/reference", mode="replace_if_changed"))
    assert result.stats["content_changed"] == 1
    assert lake.read(key).equals(new)
    assert DeltaTable(lake.table_uri(key)).metadata().partition_columns == []
    assert write(lake, key, new, spec=WriteSpec("raw/reference", mode="replace_if_changed")).stats["content_changed"] == 0


def test_a_real_commit_conflict_is_retried_from_a_fresh_snapshot(lake, monkeypatch):
    write(lake, KEY, frame("2024-01-02", 1, 0), [days("2024-01-02", 1)])
    original = engine.write_deltalake
    raced = {"left": 1}

    def racing(table, data, **kwargs):
        if raced["left"]:  # another writer commits the same partition after our snapshot was read
            raced["left"] -= 1
            fresh = DeltaTable(lake.table_uri(KEY))
            write_deltalake(fresh, frame("2024-01-02", 1, 9).to_arrow(), mode="overwrite", predicate="day = '2024-01-02'")
        return original(table, data, **kwargs)

    monkeypatch.setattr(engine, "write_deltalake", racing)
    logged = []
    result = write(lake, KEY, frame("2024-01-02", 1, 1), [days("2024-01-02", 1)], retry=FAST, log=logged.append)
    assert result.stats["commit_attempts"] == 2
    assert len(logged) == 1 and "silver/daily" in logged[0] and "attempt 1/4" in logged[0]
    assert table(lake)["value"].to_list() == [1, 1]  # the retry won, no row doubled


def test_conflicts_that_never_end_give_up_with_the_table_named(lake, monkeypatch):
    def always(table, data, **kwargs):
        raise CommitFailedError("simulated: a concurrent transaction deleted the same data")

    monkeypatch.setattr(engine, "write_deltalake", always)
    with pytest.raises(LakeCommitConflictError, match=r"silver/daily \(.*\): gave up after 4 attempts"):
        write(lake, KEY, frame("2024-01-02", 1, 1), [days("2024-01-02", 1)], retry=FAST)


def stream_of(batches, calls=None, metadata_rows=True):
    def produce():
        if calls is not None:
            calls.append(1)
        total = 0
        for batch in batches:
            if isinstance(batch, Exception):
                raise batch
            total += batch.height
            yield batch
        if metadata_rows:
            stream.metadata["rows_produced"] = total

    stream = FrameStream(schema={"day": pl.Date, "key": pl.Int64, "value": pl.Int64}, batches=produce)
    return stream


def test_a_stream_is_written_batch_by_batch_in_one_transaction(lake):
    write(lake, KEY, frame("2024-01-01", 4, 0), [days("2024-01-01", 4)])
    version = lake.version(KEY)
    # columns out of order and narrower types: each batch is conformed to the stream's schema
    batches = [frame(day, 1, 5).select("value", "key", "day").with_columns(pl.col("value").cast(pl.Int32)) for day in ("2024-01-02", "2024-01-03")]
    result = write(lake, KEY, stream_of(batches), [days("2024-01-02", 2)])
    assert lake.version(KEY) == version + 1
    assert result.stats == {"rows_written": 4, "commit_attempts": 1}
    assert result.producer_metadata == {"rows_produced": 4}
    assert result.preview.columns == ["day", "key", "value"]
    assert table(lake).group_by("day").agg(pl.col("value").max()).sort("day")["value"].to_list() == [0, 5, 5, 0]


@pytest.mark.parametrize(
    "failure,error,message",
    [
        (RuntimeError("producer found an inconsistency after its last batch"), RuntimeError, "inconsistency after its last batch"),
        (None, LakeWriteError, "outside the partition"),
    ],
    ids=["producer-raises", "batch-outside-the-slice"],
)
def test_an_aborted_stream_leaves_the_table_at_its_previous_version(lake, failure, error, message):
    write(lake, KEY, frame("2024-01-02", 2, 0), [days("2024-01-02", 2)])
    version, before = lake.version(KEY), table(lake)
    last = failure if failure is not None else frame("2024-01-09", 1, 7)
    with pytest.raises(error, match=message):
        write(lake, KEY, stream_of([frame("2024-01-02", 1, 5), frame("2024-01-03", 1, 5), last]), [days("2024-01-02", 2)])
    assert lake.version(KEY) == version
    assert table(lake).equals(before)


def test_a_stream_refuses_keyed_modes(lake):
    with pytest.raises(LakeWriteError, match="a FrameStream output can only be written with write_mode 'overwrite' or plain 'append'"):
        write(lake, KEY, stream_of([]), [], WriteSpec("silver/daily", mode="merge", merge_keys=("key",)))


def test_a_stream_conflict_reruns_the_producer(lake, monkeypatch):
    write(lake, KEY, frame("2024-01-02", 1, 0), [days("2024-01-02", 1)])
    original = engine.write_deltalake
    conflicts = {"left": 1}

    def conflicting(table, data, **kwargs):
        if conflicts["left"]:
            conflicts["left"] -= 1
            data.read_all()
            raise CommitFailedError("simulated concurrent transaction")
        return original(table, data, **kwargs)

    monkeypatch.setattr(engine, "write_deltalake", conflicting)
    calls: list = []
    result = write(lake, KEY, stream_of([frame("2024-01-02", 1, 3)], calls), [days("2024-01-02", 1)], retry=FAST)
    assert (len(calls), result.stats["commit_attempts"]) == (2, 2)
    assert table(lake)["value"].to_list() == [3, 3]


def test_read_slice_reads_one_snapshot_restricted_to_the_slice(lake):
    write(lake, KEY, frame("2024-01-01", 4, 1), [days("2024-01-01", 4)])
    lf = read_slice(lake, KEY, [days("2024-01-02", 2)], columns=["day", "value"])
    write(lake, KEY, frame("2024-01-02", 1, 2), [days("2024-01-02", 1)])  # committed after the scan was opened
    got = lf.collect().sort("day")
    assert got.columns == ["day", "value"]
    assert got.rows() == [(dt.date(2024, 1, 2), 1)] * 2 + [(dt.date(2024, 1, 3), 1)] * 2
    assert read_slice(lake, KEY).collect().height == 8  # no dimensions: every row of the new snapshot
    with pytest.raises(FileNotFoundError, match="Delta table gold/missing does not exist"):
        read_slice(lake, ("gold", "missing"))
