"""The DuckDB serving database and the show/sql commands, over real Delta tables."""

import datetime as dt
import io
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from dagster_duckdb import DuckDBResource

from energy_assets.lake.resource import LakeResource
from energy_assets.lake.store import Lake
from energy_assets.serving import catalog, cli
from energy_assets.serving.assets import STORAGE_COMPATIBILITY_VERSION, build_serving_asset

D = dt.date


def write(root: Path, layer: str, name: str, df: pl.DataFrame, mode: str = "append", partition_by=None) -> None:
    df.write_delta(str(root / layer / name), mode=mode, delta_write_options={"partition_by": partition_by} if partition_by else None)


@pytest.fixture
def lake(lake_root):
    write(lake_root, "silver", "intensity", pl.DataFrame({"day": [D(2021, 3, 27), D(2021, 3, 28)], "value": [1, 2]}), partition_by=["day"])
    write(lake_root, "silver", "intensity", pl.DataFrame({"day": [D(2021, 3, 29)], "value": [3]}))
    write(lake_root, "presentation", "carbon_per_product_per_day", pl.DataFrame({"date": [D(2021, 3, 28)] * 2, "product_display_name": ["Agile", "Fixed"], "total_emissions_kgco2": [1.5, 2.25]}))
    write(lake_root, "raw", "notes", pl.DataFrame({"text": ["a|b"]}))
    (lake_root / "gold" / "not_a_table").mkdir(parents=True)  # directories without a _delta_log are ignored
    return lake_root


def test_register_views_exposes_every_delta_table_by_layer(lake):
    con = duckdb.connect()
    tables = catalog.register_views(con, Lake(str(lake)))
    assert [t.name for t in tables] == ["raw/notes", "silver/intensity", "presentation/carbon_per_product_per_day"]
    views = con.execute("select table_schema || '.' || table_name from information_schema.tables where table_type = 'VIEW' and table_schema <> 'main' order by 1").fetchall()
    assert [v[0] for v in views] == ["presentation.carbon_per_product_per_day", "raw.notes", "silver.intensity"]


def test_sync_copies_only_the_current_files_after_an_overwrite(lake, tmp_path):
    # Overwrite the whole table: the old parquet files stay on disk (no vacuum) but are no longer part of it.
    write(lake, "silver", "intensity", pl.DataFrame({"day": [D(2021, 3, 30)], "value": [30]}), mode="overwrite")
    on_disk = list((lake / "silver" / "intensity").rglob("*.parquet"))
    naive = duckdb.execute(f"select count(*) from read_parquet({[str(p) for p in on_disk]}, union_by_name=true)").fetchall()[0][0]
    assert naive == 4  # a glob would serve removed rows
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    report = catalog.sync_database(con, Lake(str(lake)))
    assert con.execute("select day, value from silver.intensity").fetchall() == [(D(2021, 3, 30), 30)]
    assert ("silver.intensity", 2, 1) in report.copied
    assert con.execute("select delta_version, row_count from main.lake_tables where table_name = 'intensity'").fetchall() == [(2, 1)]


def test_sync_keeps_partition_columns_and_types(lake, tmp_path):
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    catalog.sync_database(con, Lake(str(lake)))
    types = dict(con.execute("select column_name, data_type from information_schema.columns where table_schema = 'silver' and table_name = 'intensity'").fetchall())
    assert types == {"day": "DATE", "value": "BIGINT"}  # 'day' lives in directory names, not in the parquet files
    assert con.execute("select sum(value) from silver.intensity").fetchall()[0][0] == 6


def test_resync_skips_unchanged_tables_and_drops_tables_that_left_the_lake(lake, tmp_path):
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    first = catalog.sync_database(con, Lake(str(lake)))
    assert len(first.copied) == 3
    write(lake, "silver", "intensity", pl.DataFrame({"day": [D(2021, 3, 30)], "value": [4]}))
    shutil.rmtree(lake / "raw" / "notes")
    second = catalog.sync_database(con, Lake(str(lake)))
    assert [name for name, _, _ in second.copied] == ["silver.intensity"]
    assert second.unchanged == ["presentation.carbon_per_product_per_day"]
    assert second.dropped == ["raw.notes"]
    assert con.execute("select count(*) from silver.intensity").fetchall()[0][0] == 4
    assert con.execute("select count(*) from information_schema.tables where table_schema = 'raw'").fetchall()[0][0] == 0


def test_a_failing_sync_leaves_the_database_as_it_was(lake, tmp_path):
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    catalog.sync_database(con, Lake(str(lake)))
    write(lake, "silver", "intensity", pl.DataFrame({"day": [D(2021, 3, 30)], "value": [4]}))
    # a table whose log points at a missing data file: reading it fails half-way through the sync
    write(lake, "silver", "zz_broken", pl.DataFrame({"x": [1]}))
    next((lake / "silver" / "zz_broken").glob("*.parquet")).unlink()
    with pytest.raises(catalog.SyncError, match=r"cannot copy silver/zz_broken \(Delta version 0, .*zz_broken\).*\.parquet not found"):
        catalog.sync_database(con, Lake(str(lake)))
    assert con.execute("select count(*) from silver.intensity").fetchall()[0][0] == 3  # the earlier copy, not half a sync
    assert con.execute("select count(*) from information_schema.tables where table_name = 'zz_broken'").fetchall()[0][0] == 0
    shutil.rmtree(lake / "silver" / "zz_broken")  # the connection stays usable: the next sync copies the change
    assert [name for name, _, _ in catalog.sync_database(con, Lake(str(lake))).copied] == ["silver.intensity"]
    assert con.execute("select count(*) from silver.intensity").fetchall()[0][0] == 4


def duckdb_cli() -> str:
    found = shutil.which("duckdb") or str(Path(sys.executable).parent / "duckdb")
    assert Path(found).exists(), "the duckdb CLI is needed (pip install duckdb-cli): the serving file must open outside Python"
    return found


def test_serving_asset_writes_a_file_the_duckdb_cli_can_query(lake, tmp_path):
    db = tmp_path / "energy.duckdb"
    resources = {
        "serving_duckdb": DuckDBResource(database=str(db), connection_config={"storage_compatibility_version": STORAGE_COMPATIBILITY_VERSION}),
        "lake": LakeResource(root_uri=str(lake)),
    }
    asset = build_serving_asset(deps=[])
    result = materialize([asset], resources=resources, instance=DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("serving__duckdb_database")[0].metadata
    assert (meta["tables"].value, meta["tables_copied"].value, meta["silver_tables"].value) == (3, 3, 1)
    again = materialize([asset], resources=resources, instance=DagsterInstance.ephemeral())
    assert again.asset_materializations_for_node("serving__duckdb_database")[0].metadata["tables_unchanged"].value == 3
    out = subprocess.run(
        [duckdb_cli(), str(db), "-csv", "-c", "select count(*) as n, sum(total_emissions_kgco2) as kg from presentation.carbon_per_product_per_day"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["n,kg", "2,3.75"]


def run(fn, argv):
    out, err = io.StringIO(), io.StringIO()
    code = fn(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_show_prints_rows_with_where_limit_and_formats(lake):
    code, out, _ = run(cli.show, ["silver/intensity", "--lake", str(lake), "--where", "value >= 2", "--order-by", "value", "--format", "csv"])
    assert code == 0 and out.splitlines() == ["day,value", "2021-03-28,2", "2021-03-29,3"]
    code, out, _ = run(cli.show, ["silver/intensity", "--lake", str(lake), "--limit", "1", "--order-by", "value desc"])
    assert code == 0
    assert "silver/intensity (Delta version 1, 3 matching rows, showing 1)" in out and "2021-03-29" in out and "2021-03-27" not in out


def test_show_without_order_by_prints_rows_sorted_by_partition_then_columns(lake_root):
    # written in three commits, out of order: a plain scan returns them in file order
    write(lake_root, "silver", "mix", pl.DataFrame({"day": [D(2021, 3, 29)] * 2, "fuel": ["wind", "coal"], "share": [0.4, 0.1]}), partition_by=["day"])
    write(lake_root, "silver", "mix", pl.DataFrame({"day": [D(2021, 3, 27)] * 2, "fuel": ["wind", "gas"], "share": [0.3, 0.5]}))
    write(lake_root, "silver", "mix", pl.DataFrame({"day": [D(2021, 3, 28)], "fuel": ["biomass"], "share": [0.2]}))
    expected = ["day,fuel,share", "2021-03-27,gas,0.5", "2021-03-27,wind,0.3", "2021-03-28,biomass,0.2", "2021-03-29,coal,0.1", "2021-03-29,wind,0.4"]
    for _ in range(2):  # the same order every time
        code, out, _err = run(cli.show, ["silver/mix", "--lake", str(lake_root), "--format", "csv"])
        assert code == 0 and out.splitlines() == expected
    # the partition column leads even when it is not the first column
    write(lake_root, "gold", "by_zone", pl.DataFrame({"value": [1, 2, 3], "zone": ["GR", "DE", "DE"]}), partition_by=["zone"])
    code, out, _err = run(cli.show, ["gold/by_zone", "--lake", str(lake_root), "--format", "csv"])
    assert code == 0 and out.splitlines() == ["value,zone", "2,DE", "3,DE", "1,GR"]


def test_sync_writes_column_descriptions_as_comments_the_duckdb_cli_reads(lake, tmp_path):
    db = tmp_path / "energy.duckdb"
    descriptions = {("silver", "intensity"): {"day": "UK day; the partition.", "value": "It's a value, gCO2/kWh.", "gone": "not in the table"}}
    con = duckdb.connect(str(db), config={"storage_compatibility_version": STORAGE_COMPATIBILITY_VERSION})
    report = catalog.sync_database(con, Lake(str(lake)), descriptions=descriptions)
    assert report.commented == 2
    # a later sync with nothing to copy still brings changed descriptions
    again = catalog.sync_database(con, Lake(str(lake)), descriptions={("silver", "intensity"): {"value": "Changed, gCO2/kWh."}})
    con.close()
    assert again.copied == [] and again.commented == 1
    out = subprocess.run(
        [duckdb_cli(), "-readonly", str(db), "-csv", "-c",
         "select column_name, comment from duckdb_columns() where schema_name = 'silver' and table_name = 'intensity' order by column_name"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["column_name,comment", "day,UK day; the partition.", "value,\"Changed, gCO2/kWh.\""]


def test_show_names_the_tables_that_exist_when_asked_for_one_that_does_not(lake):
    code, _, err = run(cli.show, ["silver/nope", "--lake", str(lake)])
    assert code == 2 and "no Delta table 'silver/nope'" in err and "silver/intensity" in err


def test_show_reports_a_bad_where_clause_with_the_table_named(lake):
    code, _, err = run(cli.show, ["silver/intensity", "--lake", str(lake), "--where", "no_such_column = 1"])
    assert code == 1 and err.startswith("error: silver/intensity:") and "no_such_column" in err


def test_sql_joins_tables_across_layers_and_sees_the_latest_version(lake):
    query = "select (select count(*) from silver.intensity) as readings, (select count(*) from presentation.carbon_per_product_per_day) as products"
    code, out, _ = run(cli.sql, [query, "--lake", str(lake), "--format", "json"])
    assert code == 0 and out.strip() == '{"readings":3,"products":2}'
    write(lake, "silver", "intensity", pl.DataFrame({"day": [D(2021, 3, 30)], "value": [9]}), mode="overwrite")
    code, out, _ = run(cli.sql, ["select sum(value) as s from silver.intensity", "--lake", str(lake), "--format", "csv"])
    assert out.splitlines() == ["s", "9"]


def test_sql_against_the_serving_file_and_errors(lake, tmp_path):
    db = tmp_path / "x.duckdb"
    con = duckdb.connect(str(db))
    catalog.sync_database(con, Lake(str(lake)))
    con.close()
    code, out, _ = run(cli.sql, ["select text from raw.notes", "--db", str(db), "--format", "csv"])
    assert code == 0 and out.splitlines() == ["text", "a|b"]
    code, _, err = run(cli.sql, ["select * from gold.missing", "--lake", str(lake)])
    assert code == 1 and "missing" in err
    code, out, _ = run(cli.sql, ["select * from range(250)", "--lake", str(lake)])
    assert code == 0 and out.startswith("(250 rows, showing 100;")


def test_the_serving_database_is_resynced_after_any_upstream_partition_changes_despite_missing_history(lake_root, tmp_path):
    from dagster import BackfillPolicy, Definitions, asset, evaluate_automation_conditions

    from energy_assets.partitions import uk_settlement_days

    @asset(key=["silver", "days"], partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "day"})
    def days(context):
        return pl.DataFrame({"day": [context.partition_time_window.start.date()], "value": [1]})

    from energy_assets.lake.io_manager import DeltaLakeIOManager

    from energy_assets.lake.resource import LakeResource

    serving = build_serving_asset(deps=[days.key])
    resources = {
        "io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake_root))),
        "serving_duckdb": DuckDBResource(database=str(tmp_path / "e.duckdb")),
        "lake": LakeResource(root_uri=str(lake_root)),
    }
    defs = Definitions(assets=[days, serving], resources=resources)
    instance = DagsterInstance.ephemeral()
    # one day of thousands exists: every other partition of the dependency is missing
    assert materialize([days, serving], resources=resources, instance=instance, partition_key="2021-03-28", selection=[days]).success
    assert materialize([days, serving], resources=resources, instance=instance, selection=[serving]).success
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.get_num_requested(serving.key) == 0
    assert materialize([days, serving], resources=resources, instance=instance, partition_key="2019-01-01", selection=[days]).success
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(serving.key) == 1
