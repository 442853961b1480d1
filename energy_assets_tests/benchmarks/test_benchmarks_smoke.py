"""Smoke runs of every benchmark scenario on tiny data: the harness works end to end.

Each scenario runs once (one repetition) through the real machinery (worker processes, a real instance,
a Delta lake on disk, `dagster dev` for freshness, the fake NESO API) into a temporary folder. The tests
check that the result JSON is well formed and that the rows are right (counted independently from the
generated files); they never assert how long anything took: speed belongs to BENCHMARKS.md.
"""

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from benchmarks import report, scenarios
from benchmarks.data import SmartMeterData
from benchmarks.freshness import p95
from benchmarks.harness import summarise

pytestmark = pytest.mark.slow


def options(tmp_path: Path, **kwargs) -> scenarios.Options:
    return scenarios.Options(
        size="tiny", repeat=1, spark_repeat=1, spark=False, workdir=tmp_path / "work", results_dir=tmp_path / "results",
        log=lambda msg: None, **kwargs,
    )  # fmt: skip


def file_rows(folder: Path) -> int:
    """Rows in the reading files, counted with the json module (independent of the pipeline's parser)."""
    return sum(len(json.loads(p.read_text())["data"]) for p in folder.glob("*.json"))


def file_rows_of(paths: list[Path]) -> int:
    return sum(len(json.loads(p.read_text())["data"]) for p in paths)


def assert_well_formed(path: Path, scenario: str) -> dict:
    assert path.name.startswith(f"{scenario}-tiny-") and path.suffix == ".json"
    result = json.loads(path.read_text())
    latest = json.loads((path.parent / f"{scenario}-tiny-latest.json").read_text())
    assert latest == result
    assert result["scenario"] == scenario and result["size"] == "tiny"
    machine = result["machine"]
    assert machine["logical_cores"] >= 1 and machine["ram_bytes"] > 0 and machine["cpu_model"]
    assert machine["versions"]["dagster"] and machine["versions"]["deltalake"] and machine["versions"]["polars"]
    assert set(result["method"]) >= {"wall", "peak_rss", "repetitions", "summary"}
    assert result["targets"], "every scenario states its targets"
    for target in result["targets"]:
        assert set(target) == {"target", "value", "limit", "op", "unit", "met"}
        assert target["op"] in ("<", "<=", ">=")
        assert target["met"] in (True, False, None)
        if target["value"] is not None:
            assert isinstance(target["value"], int | float) and math.isfinite(target["value"])
    return result


def assert_repetition(rep: dict) -> None:
    assert rep["phases"], "a repetition has phases"
    for phase in rep["phases"]:
        assert phase["name"] and phase["wall_s"] > 0 and phase["end_epoch"] > phase["start_epoch"]
        # the worker process is alive in every phase: a zero would mean the sampler missed it
        assert phase["peak_rss_tree_bytes"] > 10 * 2**20, phase
    assert rep["peak_rss_tree_bytes"] > 0 and rep["rss_samples"] > 0
    assert rep["peak_rss_tree_bytes"] >= max(p["peak_rss_tree_bytes"] for p in rep["phases"])


def test_smart_meter_batch_counts_every_generated_row(tmp_path):
    path = scenarios.smart_meter_batch(options(tmp_path))
    result = assert_well_formed(path, "smart_meter_batch")
    spec = scenarios.batch_spec("tiny")
    readings = tmp_path / "work" / "data" / spec.key() / "readings"
    n_file_rows = file_rows(readings)

    (rep,) = result["repetitions"]["pipeline"]
    assert_repetition(rep)
    accounting = rep["accounting"]
    assert accounting["rows_in"] == n_file_rows == rep["rows"]
    assert accounting["rows_in"] == accounting["rows_kept"] + accounting["duplicates"] + accounting["quarantined"]
    assert accounting["duplicates"] > 0  # the generator duplicates ~0.5 % of rows
    assert rep["checks_run"] > 0 and rep["checks_failed"] == []
    for table in ("silver/smart_meter_readings", *[f"presentation/{t}" for t in (
        "active_agreements", "total_consumption_half_hour", "consumption_per_product_per_day",
        "gold_aggregate_per_half_hour", "gold_avg_half_hour_by_product")]):  # fmt: skip
        assert rep["table_rows"][table] > 0, table
    # one row per UK half-hour of the three days in the half-hour aggregate
    assert rep["table_rows"]["presentation/total_consumption_half_hour"] == spec.expected_readings // spec.meterpoints
    assert set(rep["step_seconds"]) == set(rep["step_peak_rss_bytes"])

    (duck,) = result["repetitions"]["duckdb"]
    assert_repetition(duck)
    # the reference query deduplicates exactly the duplicates the pipeline counted
    assert duck["deduplicated_readings"] == accounting["rows_in"] - accounting["duplicates"]
    (script,) = result["repetitions"]["script"]
    assert_repetition(script)
    # the plain-script peer ran and wrote the same tables as the pipeline: same row counts (active_agreements is
    # one set in both: the database is versioned by content, not copied per day)
    script_rows, ours = script["table_rows"], rep["table_rows"]
    assert script_rows["silver"] == ours["silver/smart_meter_readings"] == accounting["rows_kept"]
    for table in ("total_consumption_half_hour", "consumption_per_product_per_day", "gold_aggregate_per_half_hour",
                  "gold_avg_half_hour_by_product"):  # fmt: skip
        assert script_rows[table] == ours[f"presentation/{table}"], table
    assert script_rows["active_agreements"] == ours["presentation/active_agreements"]
    assert result["summary"]["ours_over_script_ratio"] > 0
    # the bookkeeping floor: the same days and assets on a handful of meterpoints, every row accounted for
    (floor,) = result["repetitions"]["floor"]
    assert_repetition(floor)
    floor_spec = SmartMeterData(scenarios.FLOOR_METERPOINTS, spec.days, spec.start, spec.seed)
    floor_rows = file_rows(tmp_path / "work" / "data" / floor_spec.key() / "readings")
    assert floor["accounting"]["rows_in"] == floor_rows < accounting["rows_in"] and floor["checks_failed"] == []
    assert set(floor["step_seconds"]) == set(rep["step_seconds"])
    assert result["repetitions"]["spark"] == [] and result["summary"]["spark_over_ours_ratio"] is None
    summary = result["summary"]
    assert summary["pipeline_work_s"]["n"] == 1 and summary["pipeline_peak_rss_tree_bytes"]["median"] == rep["peak_rss_tree_bytes"]
    # the batch taken apart: the product's pieces on the same rows, the ten checks passing, the typed raw faithful
    (parts,) = result["repetitions"]["breakdown"]
    assert_repetition(parts)
    kinds = {ph["name"].split(":")[0] for ph in parts["phases"]}
    assert kinds == {"data work", "lakehouse", "alternative"}
    assert parts["rows"] == accounting["rows_in"] and parts["checks_failed"] == []
    assert parts["typed_raw_faithful"] is True
    silver_phase = next(ph for ph in parts["phases"] if ph["name"] == "data work: write silver (Delta)")
    assert silver_phase["rows"] == accounting["rows_kept"]
    breakdown = summary["breakdown"]
    assert breakdown["typed_raw"]["faithful"] is True and breakdown["checks_failed"] == []
    assert breakdown["data_work_s"] > 0 and breakdown["lakehouse_additions_s"] > 0 and breakdown["data_work_over_script"] > 0
    text = report.table("tiny", tmp_path / "results")
    assert "The batch taken apart" in text and "(faithful: True)" in text


def test_incremental_day_processes_exactly_the_delivered_rows(tmp_path):
    path = scenarios.incremental_day(options(tmp_path))
    result = assert_well_formed(path, "incremental_day")
    spec = scenarios.batch_spec("tiny")
    new_day = dt.date.fromisoformat(spec.start) + dt.timedelta(days=spec.days)
    first = tmp_path / "work" / "data" / SmartMeterData(spec.meterpoints, 1, spec.start, spec.seed).key() / "readings"
    nxt = tmp_path / "work" / "data" / SmartMeterData(spec.meterpoints, 1, new_day.isoformat(), spec.seed, with_db=False).key() / "readings"

    (empty,) = result["repetitions"]["first_day"]
    (onto,) = result["repetitions"]["new_day"]
    (setup,) = result["repetitions"]["history_setup"]
    for rep in (empty, onto, setup):
        assert_repetition(rep)
    assert empty["rows"] == file_rows(first)
    assert onto["rows"] == file_rows(nxt)
    (runs,) = onto["delivery_runs"]
    # the sensor asked for exactly the new day, and the run touched only it
    assert [r["accounting"]["rows_in"] for r in runs] == [file_rows(nxt)]
    tick = next(p for p in onto["phases"] if p["name"] == "day: sensor tick")
    assert tick["run_requests"] == [{"partition_key": new_day.isoformat()}]
    history_rows = setup["rows"]
    assert history_rows == file_rows(tmp_path / "work" / "data" / spec.key() / "readings")
    assert result["summary"]["ratio"] is not None and result["summary"]["ratio"] > 0


def test_neso_backfill_uses_the_fewest_requests(tmp_path):
    path = scenarios.neso_backfill(options(tmp_path))
    result = assert_well_formed(path, "neso_backfill")
    days = result["data"]["days"]
    assert days == 14
    for variant in ("as_configured", "no_politeness_delay"):
        (rep,) = result["repetitions"][variant]
        assert_repetition(rep)
        # 2023-03-20..2023-04-02: 13 days of 48 half-hours and the spring clock change (46)
        assert rep["table_rows"]["silver/neso_carbon_intensity"] == 13 * 48 + 46
        assert rep["table_rows"]["silver/neso_generation_mix"] == (13 * 48 + 46) * 9
        # two 13-day-or-less chunks per endpoint, counted at the server
        assert rep["api_requests_served"] == 4 == sum(rep["requests_by_asset"].values())
        assert all(c["passed"] for c in rep["checks"])
    assert result["summary"]["fewest_requests_13_day_chunks"] == 4


def test_launched_runs_use_the_projects_executor_and_a_process_per_step_for_multiprocess(tmp_path):
    path = scenarios.launched_runs(options(tmp_path))
    result = assert_well_formed(path, "launched_runs")
    runs = result["repetitions"]["uk_day"]
    assert set(runs) == set(scenarios.LAUNCHED_EXECUTORS)
    for executor, (rep,) in runs.items():
        assert_repetition(rep)
        assert rep["executor_setting"] == executor
        assert rep["steps"] == 2  # the bronze table and its check
        assert set(rep["step_seconds"]) == {"bronze__neso_carbon_intensity", "bronze__neso_carbon_intensity_bronze_neso_carbon_intensity_latest_fetch_usable"}
    # the project's default runs both steps in the run's process; multiprocess starts one process per step
    assert runs["in_process"][0]["step_processes"] == 1
    assert runs["multiprocess"][0]["step_processes"] == 2


def test_scale_runs_one_range_in_one_run(tmp_path):
    path = scenarios.scale(options(tmp_path))
    result = assert_well_formed(path, "scale")
    spec = scenarios.scale_spec("tiny")
    (rep,) = result["repetitions"]
    assert_repetition(rep)
    assert rep["accounting"]["rows_in"] == file_rows(tmp_path / "work" / "data" / spec.key() / "readings")
    assert [p["name"] for p in rep["phases"] if p["name"].startswith("run:")] == [
        f"run: files -> every presentation table ({spec.start}...2021-01-05, one run)"
    ]


def test_day_bucket_measures_one_bucket_of_one_day(tmp_path):
    from energy_assets.smart_meter.buckets import file_bucket

    path = scenarios.day_bucket(options(tmp_path))
    result = assert_well_formed(path, "day_bucket")
    spec, buckets = scenarios.day_bucket_spec("tiny")
    readings = tmp_path / "work" / "data" / spec.key() / "readings"
    own = [p for p in readings.glob("*.json") if file_bucket(p.name, buckets) == "0"]
    assert 0 < len(own) < len(list(readings.glob("*.json")))  # the run reads its bucket's files, not all
    (rep,) = result["repetitions"]
    assert_repetition(rep)
    assert rep["bucket_files_read"] == len(own)
    assert rep["rows"] == file_rows_of(own) == rep["accounting"]["rows_in"]
    assert rep["checks_failed"] == [] and rep["presentation_checks_failed"] == []
    summary = result["summary"]
    for field in ("bucket_run_s", "bucket_rows_per_s", "bucket_peak_rss_tree_bytes", "presentation_run_s", "presentation_silver_rows_per_s"):
        assert summary[field]["n"] == 1 and summary[field]["median"] > 0, field
    files = summary["delta_files_written"]
    for table in ("raw/smart_meter_readings", "raw/ingestion_log", "silver/smart_meter_readings", "presentation/total_consumption_half_hour"):
        assert files[table] >= 1, table


def test_freshness_measures_a_change_through_dagster_dev(tmp_path):
    path = scenarios.run("freshness", options(tmp_path, sensor_interval_s=3, changes=1))[0]
    result = assert_well_formed(path, "freshness")
    (m,) = result["measurements"]
    assert m["status"] == ["SUCCESS"], m
    assert m["tick_to_gold_commit_s"] > 0 and m["change_to_commit_s"] > 0, m
    # change -> commit is the tick's offset from the change plus tick -> commit (the tick may have started
    # just before the change and fetched after it)
    assert m["change_to_commit_s"] == pytest.approx(m["tick_start_minus_change_s"] + m["tick_to_gold_commit_s"], abs=1e-3)
    assert m["change_to_tick_s"] == max(0.0, m["tick_start_minus_change_s"])
    assert result["summary"]["peak_rss_tree_bytes"] > 0
    assert result["setup"]["sensor_interval_s"] == 3


def test_summaries_and_percentiles():
    s = summarise([3.0, 1.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["spread_pct"]) == (2.0, 1.0, 3.0, 100.0)
    assert summarise([]) == {"n": 0}
    assert p95([float(i) for i in range(1, 21)]) == 19.0
    assert p95([5.0]) == 5.0 and p95([]) is None


def test_spark_baseline_on_tiny_data(tmp_path):
    pytest.importorskip("pyspark", reason="the Spark baseline needs the optional [bench] extra (pyspark)")
    from benchmarks.data import ensure_smart_meter
    from benchmarks.harness import run_worker

    folder, _ = ensure_smart_meter(tmp_path / "work", SmartMeterData(5, 2))
    rep = run_worker(
        "spark",
        {"readings_dir": str(folder / "readings"), "db_path": str(folder / "case_study.db"), "out_dir": str(tmp_path / "parquet"),
         "result_path": str(tmp_path / "spark.json")},  # fmt: skip
    )
    assert_repetition(rep)
    distinct = {(r[2], r[0]) for p in (folder / "readings").glob("*.json") for r in json.loads(p.read_text())["data"]}
    # dropDuplicates removes the generator's duplicates; the window keeps one agreement per reading
    assert rep["silver_rows"] == len(distinct) < file_rows(folder / "readings")
    assert rep["table_rows"]["total_consumption_half_hour"] == SmartMeterData(5, 2).expected_readings // 5


def test_a_phase_shorter_than_the_sampling_interval_gets_the_nearest_sample():
    from benchmarks.harness import TreeSampler

    sampler = TreeSampler(pids=[], interval_s=1.0)
    sampler.samples = [(10.0, 100), (11.0, 300), (12.0, 200)]
    assert sampler.peak() == 300
    assert sampler.peak(10.5, 12.0) == 300
    assert sampler.peak(11.9, 11.95) == 200  # no sample inside: the nearest one, not 0
    assert TreeSampler(pids=[], interval_s=1.0).peak(1.0, 2.0) == 0  # nothing sampled at all
