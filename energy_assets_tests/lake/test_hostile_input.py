"""Hostile input at the lake layer: partition keys, column names and values that try to escape.

Partition values only ever reach delta-rs as quoted SQL literals (quotes doubled) and as partition
directories that delta-rs percent-encodes; column names are accepted only as plain identifiers; float
values that cannot be compared or partitioned on (NaN, infinities) are refused where they would matter.
"""

import math
import os

import polars as pl
import pytest
from dagster import AssetExecutionContext, DagsterInstance, StaticPartitionsDefinition, asset, materialize
from deltalake import DeltaTable, write_deltalake

from energy_assets.lake.io_manager import DeltaLakeIOManager

from energy_assets.lake.resource import LakeResource
from energy_assets.lake.slices import SliceCondition, SliceError, check_identifier, conditions_sql, sql_literal

HOSTILE_VALUES = [
    "O'Brien",
    "x') OR (1=1",
    "' OR ''='",
    "back\\slash",
    "ends-with\\",
    "\\'",
    "a\\'b",
    "--comment",
    "semi;colon DROP TABLE t",
    "%_like",
    "../../outside",
    "a/b",
    "x zone IN ('GR')",
    "t.zone >= ''",
    "ünï€ode",
    "tab\there",
]


def run(assets, root, key, instance=None, **kwargs):
    return materialize(
        assets,
        partition_key=key,
        resources={"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(root)))},
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
        **kwargs,
    )


def error_text(result) -> str:
    return str(result.get_step_failure_events()[0].event_specific_data.error)


def all_paths(root) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_hostile_value_in_a_predicate_selects_exactly_that_value(tmp_path, value):
    others = ["GR", "DE", "x", "O", "zone"]
    table = tmp_path / "t"
    write_deltalake(str(table), pl.DataFrame({"zone": [value, *others], "v": [0] * (len(others) + 1)}).to_arrow())
    predicate = conditions_sql([SliceCondition("zone", "string", values=(value,))])
    write_deltalake(DeltaTable(str(table)), pl.DataFrame({"zone": [value], "v": [1]}).to_arrow(), mode="overwrite", predicate=predicate)
    result = dict(pl.read_delta(str(table)).select("zone", "v").iter_rows())
    assert result == {value: 1, **dict.fromkeys(others, 0)}


def test_partition_keys_with_sql_and_paths_write_merge_and_stay_inside_the_table(tmp_path):
    keys = ["GR", *[v for v in HOSTILE_VALUES if "\t" not in v]]
    zones = StaticPartitionsDefinition(keys)
    lake = tmp_path / "lake"

    @asset(key_prefix="bronze", partitions_def=zones, metadata={"partition_expr": "zone"})
    def zoned(context: AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"zone": [context.partition_key] * 2, "hour": [0, 1], "v": [int(context.run.tags.get("v", "1"))] * 2})

    @asset(key_prefix="silver", partitions_def=zones, metadata={"partition_expr": "zone", "write_mode": "merge", "merge_keys": ["zone", "hour"], "merge_order_by": "v"})
    def merged(context: AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"zone": [context.partition_key] * 2, "hour": [0, 1], "v": [int(context.run.tags.get("v", "1"))] * 2})

    instance = DagsterInstance.ephemeral()
    for key in keys:
        assert run([zoned, merged], lake, key, instance).success, key
    for key in keys[1:]:  # rewrite every hostile partition: GR must stay untouched
        assert run([zoned, merged], lake, key, instance, tags={"v": "2"}).success, key
    for name in ("bronze/zoned", "silver/merged"):
        table = pl.read_delta(str(lake / name))
        assert table.height == 2 * len(keys), name
        assert table.group_by("zone", "hour").len()["len"].max() == 1, name
        versions = dict(table.group_by("zone").agg(pl.col("v").max()).iter_rows())
        assert versions == {"GR": 1, **dict.fromkeys(keys[1:], 2)}, name
    # partition directories are percent-encoded: nothing was written outside the tables
    tables = [str(lake / "bronze" / "zoned"), str(lake / "silver" / "merged")]
    assert all(any(p.startswith(t + os.sep) for t in tables) for p in all_paths(tmp_path))


def test_nul_in_a_partition_key_is_refused():
    with pytest.raises(SliceError, match="NUL"):
        sql_literal("GR\x00' OR 1=1")


@pytest.mark.parametrize("name", ["day; DROP TABLE x", "a b", "zone)", "1day", "t.zone", "", "zone--", "\"quoted\""])
def test_column_names_that_are_not_identifiers_are_refused(name):
    with pytest.raises(SliceError, match="not a plain column name"):
        check_identifier(name)


@pytest.mark.parametrize(
    "metadata,message",
    [
        ({"partition_expr": "zone) OR (1=1"}, "not a plain column name"),
        ({"partition_expr": "zone", "write_mode": "merge", "merge_keys": ["hour OR 1=1"]}, "not a plain column name"),
        ({"partition_expr": "zone", "write_mode": "merge", "merge_keys": ["hour"], "merge_order_by": "v) OR (1=1"}, "not a plain column name"),
        ({"partition_expr": "zone", "partition_by": ["zone; DROP"]}, "not a plain column name"),
        ({"partition_expr": "zone", "write_mode": "merge", "merge_keys": ["missing"]}, "not in the output"),
        ({"partition_expr": "zone", "write_mode": "merge", "merge_keys": ["hour"], "merge_order_by": "missing"}, "not in the output"),
        ({"partition_expr": "reading"}, "partition columns must be date, timestamp or string"),
        ({"partition_expr": "zone", "partition_by": ["reading"]}, "physical partitions must be"),
        ({"partition_expr": "zone", "write_mode": "merge", "merge_keys": ["reading"]}, "NaN or infinite merge key"),
        ({"partition_expr": "zone", "write_mode": "append", "merge_keys": ["zone", "reading"]}, "NaN or infinite merge key"),
    ],
)
def test_hostile_metadata_and_non_finite_values_fail_with_a_clear_error_and_write_nothing(tmp_path, metadata, message):
    zones = StaticPartitionsDefinition(["GR"])
    lake = tmp_path / "lake"

    @asset(name="readings", key_prefix="silver", partitions_def=zones, metadata={"partition_expr": "zone"})
    def good(context: AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"zone": ["GR"], "hour": [0], "v": [1], "reading": [1.0]})

    @asset(name="readings", key_prefix="silver", partitions_def=zones, metadata=metadata)
    def hostile(context: AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"zone": ["GR"] * 3, "hour": [0, 1, 2], "v": [2] * 3, "reading": [1.0, math.nan, math.inf]})

    assert run([good], lake, "GR").success
    before = DeltaTable(str(lake / "silver" / "readings"))
    version, rows = before.version(), pl.read_delta(str(lake / "silver" / "readings"))
    result = run([hostile], lake, "GR")
    assert not result.success
    error = error_text(result)
    assert message in error
    assert DeltaTable(str(lake / "silver" / "readings")).version() == version
    assert pl.read_delta(str(lake / "silver" / "readings")).equals(rows)


def test_nan_and_infinity_as_ordinary_values_round_trip(tmp_path):
    zones = StaticPartitionsDefinition(["GR"])

    @asset(key_prefix="silver", partitions_def=zones, metadata={"partition_expr": "zone"})
    def readings(context: AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"zone": ["GR"] * 3, "reading": [math.nan, math.inf, -math.inf]})

    assert run([readings], tmp_path, "GR").success
    assert run([readings], tmp_path, "GR").success  # idempotent: the partition is replaced, not doubled
    values = pl.read_delta(str(tmp_path / "silver" / "readings"))["reading"].to_list()
    assert len(values) == 3 and math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]
