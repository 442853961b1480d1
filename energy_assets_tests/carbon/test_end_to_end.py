"""The real code location in replay mode, in a separate process with its own lake: NESO (national and regional)
and smart-meter samples -> footprint -> presentation -> the DuckDB serving file, queried by the duckdb CLI."""

import datetime as dt
import os
import subprocess
import sys

import polars as pl

from energy_assets_tests.serving.test_serving import duckdb_cli

SCRIPT = """
from dagster import DagsterInstance
from energy_assets.definitions import defs
instance = DagsterInstance.ephemeral()
uk = defs.get_job_def("uk_days_job").execute_in_process(instance=instance, partition_key="2021-03-28", raise_on_error=False)
failed = [e for e in uk.get_asset_check_evaluations() if not e.passed and e.asset_key.path[0] in ("gold", "presentation")]
assert uk.success, [e.event_specific_data.error.message for e in uk.get_step_failure_events()]
assert not failed, [(e.asset_key.to_user_string(), e.check_name) for e in failed]
static = defs.get_job_def("static_job").execute_in_process(instance=instance, asset_selection=[__import__("dagster").AssetKey(["serving", "duckdb_database"])])
assert static.success
print("ok")
"""


def test_sample_day_flows_from_sources_to_the_serving_file(tmp_path):
    env = {
        **os.environ,
        "ENERGY_LAKE_URI": str(tmp_path / "lake"),
        "ENERGY_ASSETS_SOURCE": "replay",
        "ENERGY_DUCKDB_PATH": str(tmp_path / "energy.duckdb"),
        "DAGSTER_HOME": str(tmp_path),
    }
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-4000:]

    footprint = pl.read_delta(str(tmp_path / "lake" / "gold" / "smart_meter_carbon_footprint"))
    readings = pl.read_delta(str(tmp_path / "lake" / "silver" / "smart_meter_readings"))
    assert footprint.height == readings.height > 0
    assert footprint["settlement_date"].unique().to_list() == [dt.date(2021, 3, 28)]
    # every generated region maps, so every reading uses its region's forecast
    assert footprint["intensity_source"].unique().to_list() == ["regional_forecast"]
    out = subprocess.run(
        [duckdb_cli(), str(tmp_path / "energy.duckdb"), "-csv", "-noheader", "-c",
         "select count(*), round(sum(total_consumption_kwh), 3) from presentation.carbon_per_product_per_day"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    count, kwh = out.stdout.strip().split(",")
    products = footprint.select("product_display_name", "is_variable").unique()
    assert int(count) == products.height == pl.read_delta(str(tmp_path / "lake" / "presentation" / "carbon_per_product_per_day")).height
    assert float(kwh) == round(readings["consumption_kwh"].sum(), 3)
