"""Serving and the dashboard over a lake on object storage (a local S3 server, moto), configured only through the
lake's own storage options: no AWS_* variable is set, so anything that opens a Delta table without the lake's
options cannot reach the bucket."""

import datetime as dt
import io
import json
import os

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster_duckdb import DuckDBResource

from energy_assets.dashboard import data
from energy_assets.lake.resource import LakeResource
from energy_assets.lake.store import Lake
from energy_assets.serving import catalog, cli
from energy_assets.serving.assets import build_serving_asset
from energy_assets_tests.reliability.s3_server import BUCKET, CREDENTIALS, s3_endpoint  # noqa: F401

D = dt.date
INTENSITY = pl.DataFrame(
    {"settlement_date": [D(2021, 3, 28)] * 3, "period": [1, 2, 3], "forecast_gco2_per_kwh": [180, 190, 200]}
)
PER_PRODUCT = pl.DataFrame(
    {"date": [D(2021, 3, 28)] * 2, "product_display_name": ["Agile", "Fixed"], "total_emissions_kgco2": [1.5, 2.25]}
)


@pytest.fixture
def s3(s3_endpoint, monkeypatch, request):  # noqa: F811 - the fixture imported above
    """A fresh prefix of the bucket and the storage options reaching it; the process has no AWS_* variable."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key in ("ENERGY_LAKE_URI", "ENERGY_LAKE_STORAGE_OPTIONS"):
        monkeypatch.delenv(key, raising=False)
    options = {
        "endpoint": s3_endpoint,
        "access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region": CREDENTIALS["AWS_REGION"],
        "allow_http": "true",
    }
    root = f"s3://{BUCKET}/serving-{request.node.name}"[:90]
    INTENSITY.write_delta(f"{root}/silver/neso_carbon_intensity", storage_options=options, delta_write_options={"partition_by": ["settlement_date"]})
    PER_PRODUCT.write_delta(f"{root}/presentation/carbon_per_product_per_day", storage_options=options)
    return root, options


def test_the_serving_asset_copies_an_s3_lake_reached_through_the_lake_resource_options(s3, tmp_path):
    root, options = s3
    db = tmp_path / "energy.duckdb"
    keys = [AssetKey(["silver", "neso_carbon_intensity"]), AssetKey(["presentation", "carbon_per_product_per_day"]), AssetKey(["gold", "never_written"])]
    resources = {"serving_duckdb": DuckDBResource(database=str(db)), "lake": LakeResource(root_uri=root, storage_options=options)}
    result = materialize([build_serving_asset(deps=keys)], resources=resources, instance=DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("serving__duckdb_database")[0].metadata
    assert (meta["tables"].value, meta["tables_copied"].value, meta["rows_copied"].value) == (2, 2, 5)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select sum(forecast_gco2_per_kwh), min(settlement_date) from silver.neso_carbon_intensity").fetchall() == [(570, D(2021, 3, 28))]
        assert con.execute("select layer, table_name, source_uri from main.lake_tables order by 1").fetchall() == [
            ("presentation", "carbon_per_product_per_day", f"{root}/presentation/carbon_per_product_per_day"),
            ("silver", "neso_carbon_intensity", f"{root}/silver/neso_carbon_intensity"),
        ]
    finally:
        con.close()


def test_sql_views_over_an_s3_lake_use_the_lakes_storage_options(s3):
    root, options = s3
    con = duckdb.connect()
    tables = catalog.register_views(con, Lake(root, options))
    assert [t.name for t in tables] == ["silver/neso_carbon_intensity", "presentation/carbon_per_product_per_day"]
    assert con.execute("select sum(total_emissions_kgco2) from presentation.carbon_per_product_per_day").fetchall() == [(3.75,)]


def run(fn, argv):
    out, err = io.StringIO(), io.StringIO()
    code = fn(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_show_and_sql_commands_read_an_s3_lake_with_energy_lake_storage_options(s3, monkeypatch):
    root, options = s3
    monkeypatch.setenv("ENERGY_LAKE_URI", root)
    monkeypatch.setenv("ENERGY_LAKE_STORAGE_OPTIONS", json.dumps(options))
    code, out, err = run(cli.show, ["silver/neso_carbon_intensity", "--order-by", "period", "--limit", "2", "--format", "csv"])
    assert (code, err) == (0, "")
    assert out.splitlines() == ["settlement_date,period,forecast_gco2_per_kwh", "2021-03-28,1,180", "2021-03-28,2,190"]
    code, out, err = run(cli.sql, ["select count(*) as n from silver.neso_carbon_intensity", "--format", "csv"])
    assert (code, out.splitlines(), err) == (0, ["n", "3"], "")
    code, _, err = run(cli.show, ["gold/smart_meter_carbon_footprint"])
    assert code == 2
    assert err.startswith(f"error: no Delta table 'gold/smart_meter_carbon_footprint' in the lake at {root}; tables: silver/neso_carbon_intensity, ")


def test_dashboard_freshness_of_an_s3_lake(s3):
    root, options = s3
    fresh = data.freshness(Lake(root, options), now=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    assert fresh.select("table", "delta_version", "rows", "newest_data").rows() == [
        ("silver/neso_carbon_intensity", 0, 3, "2021-03-28"),
        ("presentation/carbon_per_product_per_day", 0, 2, "2021-03-28"),
    ]
    assert data.read_table(Lake(root, options), "presentation/carbon_per_product_per_day")["total_emissions_kgco2"].sum() == 3.75
