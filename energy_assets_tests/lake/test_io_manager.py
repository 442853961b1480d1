"""Regression tests for the Delta IO manager: the seven behaviours the stock package gets wrong.

Each behaviour runs against our `DeltaLakeIOManager` and against the stock
`dagster_deltalake_polars.DeltaLakePolarsIOManager`. The stock runs are strict xfails: they document
the defect, prove the test detects it, and turn red the day upstream fixes it (then drop our layer).
"""


import datetime as dt

import polars as pl
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MetadataValue,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    materialize,
)
from dagster_deltalake import LocalConfig
from dagster_deltalake_polars import DeltaLakePolarsIOManager
from deltalake import DeltaTable

from energy_assets.lake.io_manager import DeltaLakeIOManager, LakeWriteError

from energy_assets.lake.resource import LakeResource

days = DailyPartitionsDefinition(start_date="2024-03-28", end_date="2024-04-05", timezone="Europe/London")
RANGE_TAGS = {"dagster/asset_partition_range_start": "2024-03-30", "dagster/asset_partition_range_end": "2024-04-01"}


def ours(root):
    return DeltaLakeIOManager(lake=LakeResource(root_uri=str(root)))


def stock(root):
    return DeltaLakePolarsIOManager(root_uri=str(root), storage_options=LocalConfig())


STOCK_DEFECT = pytest.mark.xfail(strict=True, reason="stock dagster-deltalake 0.29.27 defect")
managers = pytest.mark.parametrize(
    "make_io", [pytest.param(ours, id="ours"), pytest.param(stock, id="stock", marks=STOCK_DEFECT)]
)


def day_rows(context: AssetExecutionContext, version: int) -> pl.DataFrame:
    """One row per UK day the run covers, tagged with a version so rewrites are visible."""
    window = context.partition_time_window
    n = (window.end.date() - window.start.date()).days
    dates = [window.start.date() + dt.timedelta(days=i) for i in range(n)]
    return pl.DataFrame({"day": dates, "value": [version] * n}, schema={"day": pl.Date, "value": pl.Int64})


def read(root, layer, table) -> pl.DataFrame:
    return pl.read_delta(str(root / layer / table))


def run(assets, io, instance=None, **kwargs):
    return materialize(assets, resources={"io_manager": io}, instance=instance or DagsterInstance.ephemeral(), **kwargs)


@managers
def test_1_single_run_backfill_overwrites_exactly_its_partitions_every_time(tmp_path, make_io):
    version = {"v": 1}

    @asset(key_prefix="silver", partitions_def=days, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
    def daily(context: AssetExecutionContext) -> pl.DataFrame:
        return day_rows(context, version["v"])

    io = make_io(tmp_path)
    assert run([daily], io, partition_key="2024-04-02").success  # a partition outside the range
    for v in (1, 2, 3):
        version["v"] = v
        assert run([daily], io, tags=RANGE_TAGS).success
    table = read(tmp_path, "silver", "daily").sort("day")
    assert table["day"].to_list() == [dt.date(2024, 3, 30), dt.date(2024, 3, 31), dt.date(2024, 4, 1), dt.date(2024, 4, 2)]
    assert table["value"].to_list() == [3, 3, 3, 1]


@managers
def test_2_offset_mapping_loads_both_days(tmp_path, make_io):
    @asset(key_prefix="silver", partitions_def=days, metadata={"partition_expr": "day"})
    def daily(context: AssetExecutionContext) -> pl.DataFrame:
        return day_rows(context, 1)

    seen = {}

    @asset(
        key_prefix="gold",
        partitions_def=days,
        metadata={"partition_expr": "day"},
        ins={"daily": AssetIn(key=["silver", "daily"], partition_mapping=TimeWindowPartitionMapping(start_offset=-1))},
    )
    def with_previous(context: AssetExecutionContext, daily: pl.DataFrame) -> pl.DataFrame:
        seen["days"] = sorted(daily["day"].to_list())
        return day_rows(context, 1)

    io = make_io(tmp_path)
    instance = DagsterInstance.ephemeral()
    for key in ("2024-03-30", "2024-03-31"):
        assert run([daily], io, instance, partition_key=key).success
    assert run([daily, with_previous], io, instance, partition_key="2024-03-31", selection=[with_previous]).success
    assert seen["days"] == [dt.date(2024, 3, 30), dt.date(2024, 3, 31)]


@managers
def test_3_unpartitioned_reader_sees_every_partition(tmp_path, make_io):
    @asset(key_prefix="silver", partitions_def=days, metadata={"partition_expr": "day"})
    def daily(context: AssetExecutionContext) -> pl.DataFrame:
        return day_rows(context, 1)

    seen = {}

    @asset(key_prefix="presentation", ins={"daily": AssetIn(key=["silver", "daily"])})
    def summary(daily: pl.DataFrame) -> pl.DataFrame:
        seen["rows"] = daily.height
        return daily.select(pl.len().alias("days"))

    io = make_io(tmp_path)
    instance = DagsterInstance.ephemeral()
    for key in ("2024-03-29", "2024-03-30", "2024-04-03"):
        assert run([daily], io, instance, partition_key=key).success
    assert run([daily, summary], io, instance, selection=[summary]).success
    assert seen["rows"] == 3


@pytest.mark.parametrize(
    "make_io,column_type",
    [
        pytest.param(ours, "naive_timestamp", id="ours-naive_timestamp"),
        pytest.param(ours, "aware_timestamp", id="ours-aware_timestamp"),
        pytest.param(ours, "date", id="ours-date"),
        # stock handles dates and aware timestamps for one day; naive ones become a full-table overwrite
        pytest.param(stock, "naive_timestamp", id="stock-naive_timestamp", marks=STOCK_DEFECT),
    ],
)
def test_4_partition_overwrite_never_replaces_the_whole_table(tmp_path, make_io, column_type):
    def frame(context, version):
        start = context.partition_time_window.start
        if column_type == "date":
            value = start.date()
        elif column_type == "naive_timestamp":
            value = start.replace(tzinfo=None)
        else:
            value = start.astimezone(dt.timezone.utc)
        return pl.DataFrame({"period": [value], "value": [version]})

    @asset(key_prefix="bronze", partitions_def=days, metadata={"partition_expr": "period", "partition_by": []})
    def periods(context: AssetExecutionContext) -> pl.DataFrame:
        return frame(context, int(context.run.tags.get("version", "1")))

    io = make_io(tmp_path)
    for key in ("2024-03-29", "2024-03-30", "2024-03-31"):
        assert run([periods], io, partition_key=key).success
    assert run([periods], io, partition_key="2024-03-30", tags={"version": "2"}).success
    table = read(tmp_path, "bronze", "periods").sort("period")
    assert table.height == 3
    assert table["value"].to_list() == [1, 2, 1]


@managers
def test_5_outputs_report_row_count_schema_uri_and_size(tmp_path, make_io):
    @asset(key_prefix="silver", partitions_def=days, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
    def daily(context: AssetExecutionContext) -> pl.DataFrame:
        return day_rows(context, 1)

    io = make_io(tmp_path)
    instance = DagsterInstance.ephemeral()
    assert run([daily], io, instance, partition_key="2024-04-02").success
    result = run([daily], io, instance, tags=RANGE_TAGS)
    materializations = result.asset_materializations_for_node("silver__daily")
    assert [m.partition for m in materializations] == ["2024-03-30", "2024-03-31", "2024-04-01"]
    assert [m.metadata["dagster/partition_row_count"].value for m in materializations] == [1, 1, 1]  # each its own
    for m in materializations:
        assert m.metadata["dagster/row_count"].value == 4
        assert m.metadata["slice_row_count"].value == 3  # the run's partitions together
        assert str(m.metadata["dagster/uri"].value).endswith("silver/daily")
        assert m.metadata["size_bytes"].value > 0
    # the slice's schema and preview once, on the run's last partition (the UI's latest materialisation)
    assert ["dagster/column_schema" in m.metadata for m in materializations] == [False, False, True]
    assert ["preview" in m.metadata for m in materializations] == [False, False, True]
    last = materializations[-1].metadata
    assert [c.name for c in last["dagster/column_schema"].schema.columns] == ["day", "value"]
    assert "2024-03-30" in last["preview"].value and "2024-04-01" in last["preview"].value
    assert "2024-04-01" in materializations[0].metadata["schema_and_preview"].value
    single = run([daily], io, instance, partition_key="2024-04-02").asset_materializations_for_node("silver__daily")[0].metadata
    assert {"dagster/column_schema", "preview", "dagster/partition_row_count"} <= set(single)


@managers
def test_6_merge_keeps_the_newest_version_and_append_inserts_only_new_keys(tmp_path, make_io):
    batches = {
        1: pl.DataFrame({"day": [dt.date(2024, 3, 30)] * 3, "period": [1, 2, 3], "forecast": [100, 110, 120], "fetched_at": [1, 1, 1]}),
        # period 2 revised, period 4 new, and a stale copy of period 3 that must lose
        2: pl.DataFrame({"day": [dt.date(2024, 3, 30)] * 3, "period": [2, 4, 3], "forecast": [111, 130, 999], "fetched_at": [2, 2, 0]}),
    }

    @asset(
        key_prefix="silver",
        partitions_def=days,
        metadata={"partition_expr": "day", "write_mode": "merge", "merge_keys": ["period"], "merge_order_by": "fetched_at"},
    )
    def upserted(context: AssetExecutionContext) -> pl.DataFrame:
        return batches[int(context.run.tags["batch"])]

    @asset(key_prefix="bronze", partitions_def=days, metadata={"partition_expr": "day", "write_mode": "append", "merge_keys": ["period", "fetched_at"]})
    def appended(context: AssetExecutionContext) -> pl.DataFrame:
        return batches[int(context.run.tags["batch"])]

    io = make_io(tmp_path)
    for batch in (1, 2, 2):  # the repeat proves idempotency
        assert run([upserted, appended], io, partition_key="2024-03-30", tags={"batch": str(batch)}).success
    merged = read(tmp_path, "silver", "upserted").sort("period")
    assert merged["period"].to_list() == [1, 2, 3, 4]
    assert merged["forecast"].to_list() == [100, 111, 120, 130]
    assert read(tmp_path, "bronze", "appended").height == 6


zones = StaticPartitionsDefinition(["GR", "DE", "FR"])
day_zone = MultiPartitionsDefinition({"date": DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-10"), "zone": zones})
# a single-run asset on days x zones, and a range over the box {2024-01-02, 2024-01-03} x {DE, FR}
BOXED = dict(key_prefix="bronze", partitions_def=day_zone, backfill_policy=BackfillPolicy.single_run(),
             metadata={"partition_expr": {"date": "date", "zone": "zone"}})  # fmt: skip
BOX = {"dagster/asset_partition_range_start": "2024-01-02|DE", "dagster/asset_partition_range_end": "2024-01-03|FR"}


@managers
def test_7_multi_partitions_write_and_read_their_slice(tmp_path, make_io):
    @asset(key_prefix="bronze", partitions_def=day_zone, metadata={"partition_expr": {"date": "date", "zone": "zone"}})
    def readings(context: AssetExecutionContext) -> pl.DataFrame:
        key = context.partition_key.keys_by_dimension
        version = int(context.run.tags.get("version", "1"))
        return pl.DataFrame({"date": [dt.date.fromisoformat(key["date"])] * 2, "zone": [key["zone"]] * 2, "hour": [0, 1], "v": [version] * 2})

    seen = {}

    @asset(key_prefix="presentation", ins={"readings": AssetIn(key=["bronze", "readings"])})
    def all_zones(readings: pl.DataFrame) -> pl.DataFrame:
        seen["pairs"] = sorted(set(zip(readings["date"].to_list(), readings["zone"].to_list(), strict=True)))
        return readings.group_by("zone").len()

    io = make_io(tmp_path)
    instance = DagsterInstance.ephemeral()
    for date in ("2024-01-02", "2024-01-03"):
        for zone in ("GR", "DE"):
            key = MultiPartitionKey({"date": date, "zone": zone})
            assert run([readings], io, instance, partition_key=key).success
    key = MultiPartitionKey({"date": "2024-01-03", "zone": "GR"})
    assert run([readings], io, instance, partition_key=key, tags={"version": "2"}).success
    table = read(tmp_path, "bronze", "readings")
    assert table.height == 8
    assert table.filter(pl.col("v") == 2).select("date", "zone").unique().rows() == [(dt.date(2024, 1, 3), "GR")]
    assert run([readings, all_zones], io, instance, selection=[all_zones]).success
    assert len(seen["pairs"]) == 4


def test_rows_outside_the_partition_are_refused_and_the_table_is_unchanged(tmp_path):
    @asset(key_prefix="silver", partitions_def=days, metadata={"partition_expr": "day"})
    def daily(context: AssetExecutionContext) -> pl.DataFrame:
        frame = day_rows(context, 1)
        if context.run.tags.get("stray"):
            frame = pl.concat([frame, pl.DataFrame({"day": [dt.date(2024, 4, 3)], "value": [9]})])
        return frame

    io = ours(tmp_path)
    assert run([daily], io, partition_key="2024-03-30").success
    version = DeltaTable(str(tmp_path / "silver" / "daily")).version()
    result = run([daily], io, partition_key="2024-03-31", tags={"stray": "1"}, raise_on_error=False)
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "outside the partition" in error and "silver/daily" in error
    assert DeltaTable(str(tmp_path / "silver" / "daily")).version() == version


def test_partition_keys_with_quotes_are_escaped_not_interpolated(tmp_path):
    hostile = StaticPartitionsDefinition(["GR", "x') OR (1=1", "O'Brien"])

    @asset(key_prefix="bronze", partitions_def=hostile, metadata={"partition_expr": "zone"})
    def zoned(context: AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"zone": [context.partition_key], "v": [int(context.run.tags.get("v", "1"))]})

    io = ours(tmp_path)
    instance = DagsterInstance.ephemeral()
    for key in ("GR", "x') OR (1=1", "O'Brien"):
        assert run([zoned], io, instance, partition_key=key).success
    assert run([zoned], io, instance, partition_key="x') OR (1=1", tags={"v": "2"}).success
    table = read(tmp_path, "bronze", "zoned").sort("zone")
    assert dict(zip(table["zone"], table["v"], strict=True)) == {"GR": 1, "O'Brien": 1, "x') OR (1=1": 2}


def test_one_run_over_a_days_by_zones_box_writes_exactly_that_box(tmp_path):
    @asset(**BOXED)
    def boxed(context: AssetExecutionContext) -> pl.DataFrame:
        keys = [k.keys_by_dimension for k in context.partition_keys]
        version = int(context.run.tags.get("version", "1"))
        return pl.DataFrame(
            {"date": [dt.date.fromisoformat(k["date"]) for k in keys], "zone": [k["zone"] for k in keys], "v": [version] * len(keys)}
        )

    io = ours(tmp_path)
    instance = DagsterInstance.ephemeral()
    # a multi-partition range is a box: each dimension spans its own range (zones in definition order GR, DE, FR)
    assert run([boxed], io, instance, partition_key=MultiPartitionKey({"date": "2024-01-02", "zone": "GR"})).success
    for version in ("1", "2"):
        assert run([boxed], io, instance, tags={**BOX, "version": version}).success
    table = read(tmp_path, "bronze", "boxed").sort("date", "zone")
    assert table.select("zone", "v").rows() == [("DE", 2), ("FR", 2), ("GR", 1), ("DE", 2), ("FR", 2)]
    # an overlapping box {GR, DE} x {02, 03} replaces exactly its four partitions and leaves FR alone
    other = {"dagster/asset_partition_range_start": "2024-01-02|GR", "dagster/asset_partition_range_end": "2024-01-03|DE"}
    assert run([boxed], io, instance, tags={**other, "version": "3"}).success
    table = read(tmp_path, "bronze", "boxed").sort("date", "zone")
    assert table.select("zone", "v").rows() == [("DE", 3), ("FR", 2), ("GR", 3), ("DE", 3), ("FR", 2), ("GR", 3)]


def test_the_default_lake_root_is_read_when_a_run_starts(tmp_path, monkeypatch):
    """Resources are built when the code location is imported; the lake they write is decided per run."""

    @asset(key_prefix="silver")
    def plain() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})

    io = DeltaLakeIOManager()  # built before ENERGY_LAKE_URI is set, as the code location's is
    monkeypatch.setenv("ENERGY_LAKE_URI", str(tmp_path / "later"))
    assert run([plain], io).success
    assert read(tmp_path / "later", "silver", "plain")["x"].to_list() == [1]


def test_declared_column_descriptions_are_kept_in_the_reported_schema(tmp_path):
    from dagster import TableColumn, TableSchema

    declared = TableSchema(columns=[TableColumn("day", "date", description="UK settlement day (Europe/London)")])

    @asset(key_prefix="silver", partitions_def=days, metadata={"partition_expr": "day", "dagster/column_schema": declared})
    def described(context: AssetExecutionContext) -> pl.DataFrame:
        return day_rows(context, 1)

    result = run([described], ours(tmp_path), partition_key="2024-03-30")
    columns = result.asset_materializations_for_node("silver__described")[0].metadata["dagster/column_schema"].schema.columns
    assert [(c.name, c.type, c.description) for c in columns] == [
        ("day", "Date", "UK settlement day (Europe/London)"),
        ("value", "Int64", None),
    ]


@pytest.mark.parametrize(
    "keys,message",
    [
        ([("2024-01-02", "GR"), ("2024-01-02", "DE"), ("2024-01-03", "GR")], "the run's 3 partitions are not a full day x zone box"),
        ([("2024-01-02", "GR"), ("2024-01-04", "GR")], "the run's date partitions are not contiguous"),
    ],
    ids=["not-a-box", "gap-in-days"],
)
def test_a_multi_partition_run_that_is_not_one_contiguous_box_is_refused(keys, message):
    from energy_assets.lake.io_manager import _box

    run_keys = [MultiPartitionKey({"date": d, "zone": z}) for d, z in keys]
    with pytest.raises(ValueError, match=message):
        _box(day_zone, run_keys, {"date": "date", "zone": "zone"}, "bronze/readings")


def test_each_partition_of_a_range_run_reports_its_own_row_count(tmp_path):
    """`dagster/partition_row_count` is "the number of rows in the materialized partition": a single-run backfill
    reports each partition's own rows (a day without rows: 0), not the rows of the whole range on every one."""

    @asset(key_prefix="silver", partitions_def=days, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
    def uneven(context: AssetExecutionContext) -> pl.DataFrame:
        window = context.partition_time_window
        # 2024-03-30: 1 row, 2024-03-31 (the clock change): none, 2024-04-01: 3 rows; the run's days only
        dates = [dt.date(2024, 3, 30)] + [dt.date(2024, 4, 1)] * 3
        mine = [d for d in dates if window.start.date() <= d < window.end.date()]
        return pl.DataFrame({"day": mine, "value": range(len(mine))}, schema={"day": pl.Date, "value": pl.Int64})

    result = run([uneven], ours(tmp_path), tags=RANGE_TAGS)
    counts = {m.partition: m.metadata["dagster/partition_row_count"].value for m in result.asset_materializations_for_node("silver__uneven")}
    assert counts == {"2024-03-30": 1, "2024-03-31": 0, "2024-04-01": 3}
    single = run([uneven], ours(tmp_path), partition_key="2024-04-01")
    assert single.asset_materializations_for_node("silver__uneven")[0].metadata["dagster/partition_row_count"].value == 3


def test_each_partition_of_a_day_by_zone_box_reports_its_own_row_count(tmp_path):
    @asset(**BOXED)
    def boxed(context: AssetExecutionContext) -> pl.DataFrame:
        rows = []
        for k in context.partition_keys:
            d = k.keys_by_dimension
            n = {"DE": 1, "FR": 2}[d["zone"]] * (2 if d["date"] == "2024-01-03" else 1)  # DE 1/2, FR 2/4 rows
            rows += [{"date": dt.date.fromisoformat(d["date"]), "zone": d["zone"], "v": i} for i in range(n)]
        return pl.DataFrame(rows, schema={"date": pl.Date, "zone": pl.String, "v": pl.Int64})

    result = run([boxed], ours(tmp_path), tags=BOX)
    counts = {str(m.partition): m.metadata["dagster/partition_row_count"].value for m in result.asset_materializations_for_node("bronze__boxed")}
    assert counts == {"2024-01-02|DE": 1, "2024-01-02|FR": 2, "2024-01-03|DE": 2, "2024-01-03|FR": 4}


def test_an_output_context_built_outside_a_run_over_several_partitions_keeps_its_metadata(tmp_path):
    """`build_output_context` (a unit test of an asset's output) has no step for per-partition metadata: the write
    happens and the output metadata carries the slice's schema and preview, as for one partition."""
    from dagster import PartitionKeyRange, build_output_context

    context = build_output_context(
        asset_key=["silver", "plain"], asset_partition_key_range=PartitionKeyRange("2024-03-30", "2024-03-31"),
        asset_partitions_def=days, definition_metadata={"partition_expr": "day"},
    )  # fmt: skip
    frame = pl.DataFrame({"day": [dt.date(2024, 3, 30), dt.date(2024, 3, 31)], "value": [1, 2]})
    ours(tmp_path).handle_output(context, frame)
    meta = context.get_logged_metadata()
    assert meta["slice_row_count"] == MetadataValue.int(2) and "preview" in meta and "dagster/column_schema" in meta
    assert read(tmp_path, "silver", "plain").height == 2


def test_rows_per_partition_maps_values_to_their_partition_keys_given_as_objects_or_strings():
    from energy_assets.lake.io_manager import rows_per_partition

    counts = pl.DataFrame({"date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)], "zone": ["DE", "DE"], "rows": [5, 7]}, schema_overrides={"rows": pl.UInt32})
    keys = [MultiPartitionKey({"date": d, "zone": z}) for d in ("2024-01-02", "2024-01-03") for z in ("DE", "FR")]
    expected = {"2024-01-02|DE": 5, "2024-01-02|FR": 0, "2024-01-03|DE": 7, "2024-01-03|FR": 0}
    for given in (keys, [str(k) for k in keys]):  # Dagster hands MultiPartitionKey objects; a plain string key reads the same
        got = rows_per_partition(day_zone, given, {"date": "date", "zone": "zone"}, counts)
        assert {str(k): n for k, n in got.items()} == expected
    with pytest.raises(ValueError, match="lie in none of the output's partitions"):
        rows_per_partition(day_zone, keys, {"date": "date", "zone": "zone"}, counts.with_columns(zone=pl.lit("GR")))
