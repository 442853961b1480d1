"""A redesign keeps behaviour: every table has the rows it had before (row counts and content hashes).

The baselines were captured before the architecture redesign (see README.md beside this file). Both runs use
real processes, as a user would: the `energy-assets demo` command, and the smart-meter assets materialised by
`dagster asset materialize` over a generated benchmark dataset that crosses the autumn clock change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from energy_assets import settings
from energy_assets_tests.behaviour.fingerprints import fingerprint_lake

HERE = Path(__file__).resolve().parent
BENCHMARK_DATA = ["--meterpoints", "300", "--days", "6", "--start", "2021-10-29", "--seed", "11", "--bad-rate", "0.003"]
BENCHMARK_RANGE = "2021-10-28...2021-11-04"


def _env(state: Path, **extra: str) -> dict[str, str]:
    home = state / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENERGY_", "SMART_METER_", "ELECTRICITY_MAPS_", "NESO_"))}
    env.update(
        ENERGY_LAKE_URI=str(state / "lake"),
        DAGSTER_HOME=str(home),
        ENERGY_DUCKDB_PATH=str(state / "energy.duckdb"),
        DAGSTER_DISABLE_TELEMETRY="1",
        **extra,
    )
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


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
    data = tmp_path / "data"
    env = _env(tmp_path, SMART_METER_READINGS_DIR=str(data / "readings"), SMART_METER_DB_PATH=str(data / "case_study.db"))
    _run([sys.executable, "-m", "energy_assets.cli", "generate-smart-meter", *BENCHMARK_DATA, "--out", str(data)], env, tmp_path)
    _run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "energy_assets.definitions",
         "--select", "group:smart_meter", "--partition-range", BENCHMARK_RANGE],
        env,
        settings.PROJECT_ROOT,
    )  # fmt: skip
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
