"""A redesign keeps behaviour: every table has the rows it had before (row counts and content hashes).

The baselines were captured before the architecture redesign (see README.md beside this file). The demo is the
real `energy-assets demo` command (the shared session run, conftest `demo_run`); the benchmark dataset (generated,
crossing the autumn clock change) goes through every smart-meter asset and check in one single-run range.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from energy_assets_tests.behaviour.fingerprints import fingerprint_lake

HERE = Path(__file__).resolve().parent
BENCHMARK_DATA = ["--meterpoints", "300", "--days", "6", "--start", "2021-10-29", "--seed", "11", "--bad-rate", "0.003"]
BENCHMARK_RANGE = "2021-10-28...2021-11-04"


def _assert_same_tables(lake: Path, baseline_file: str) -> None:
    baseline = json.loads((HERE / baseline_file).read_text())
    now = fingerprint_lake(lake)
    missing = sorted(set(baseline) - set(now))
    assert not missing, f"tables of the baseline that the run no longer writes: {missing}"
    differ = {
        name: {"before": baseline[name], "now": now[name]}
        for name in sorted(baseline)
        if (baseline[name]["rows"], baseline[name]["sha256"], baseline[name]["columns"])
        != (now[name]["rows"], now[name]["sha256"], now[name]["columns"])
    }
    assert not differ, "tables whose rows changed (a deliberate change updates the baseline):\n" + json.dumps(differ, indent=1)


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_demo_tables_have_the_rows_they_had_before_the_redesign(demo_run):
    _assert_same_tables(demo_run["lake"], "baseline_demo.json")


@pytest.mark.slow
def test_benchmark_smart_meter_tables_have_the_rows_they_had_before_the_redesign(tmp_path):
    """The generated benchmark dataset through every smart-meter asset and check in one single-run range (in
    process: the same assets, resources and IO manager as the code location, without a process per step)."""
    from dagster import DagsterInstance, materialize
    from dagster_duckdb import DuckDBResource

    from energy_assets.devtools import smart_meter_generator
    from energy_assets.lake.io_manager import DeltaLakeIOManager
    from energy_assets.lake.resource import LakeResource
    from energy_assets.smart_meter.assets import ASSETS
    from energy_assets.smart_meter.checks import CHECKS
    from energy_assets.smart_meter.source import SmartMeterSource

    data = tmp_path / "data"
    assert smart_meter_generator.main([*BENCHMARK_DATA, "--out", str(data)]) == 0
    lake = LakeResource(root_uri=str(tmp_path / "lake"))
    resources = {
        "lake": lake,
        "io_manager": DeltaLakeIOManager(lake=lake),
        "smart_meter": SmartMeterSource(readings_dir=str(data / "readings"), db_path=str(data / "case_study.db")),
        "smart_meter_duckdb": DuckDBResource(database=":memory:"),
    }
    first, last = BENCHMARK_RANGE.split("...")
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*ASSETS, *CHECKS], resources=resources, instance=instance, raise_on_error=False,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        )  # fmt: skip
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
    _assert_same_tables(tmp_path / "lake", "baseline_benchmark.json")


def test_the_fingerprint_sees_a_changed_value(tmp_path):
    """The comparison can fail: one changed cell changes the hash, a dropped row the count."""
    import polars as pl

    from energy_assets_tests.behaviour.fingerprints import fingerprint_frame

    frame = pl.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3], "fetched_at": [1, 2, 3]})
    same = fingerprint_frame(frame.with_columns(pl.col("fetched_at") * 10).reverse())
    assert same == fingerprint_frame(frame)  # order and run times do not matter
    assert fingerprint_frame(frame.with_columns(pl.col("b").replace(0.2, 0.25)))["sha256"] != same["sha256"]
    assert fingerprint_frame(frame.head(2))["rows"] == 2
    # a renamed column with a new unit maps back to the old one
    renamed = frame.rename({"b": "b_fraction"}).with_columns(pl.col("b_fraction") / 100)
    assert fingerprint_frame(renamed, {"b_fraction": ("b", 100)}) == same
