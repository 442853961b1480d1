"""The smart-meter assets through Dagster on a real lake: sample, incremental arrival, changed and malformed
files, idempotent re-runs, and the checks catching what they should."""

import datetime as dt
import os
import shutil

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from energy_assets import settings
from energy_assets.range_checks import is_range_copy
from energy_assets.smart_meter.assets import ASSETS
from energy_assets.smart_meter.checks import CHECKS

from .conftest import PRODUCTS, day_rows, write_db, write_readings

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def run(resources, instance, start, end=None):
    tags = {RANGE[0]: start, RANGE[1]: end} if end else None
    result = materialize(
        [*ASSETS, *CHECKS],
        resources=resources,
        instance=instance,
        partition_key=None if end else start,
        tags=tags,
        raise_on_error=False,
    )
    failed = [(e.asset_key.to_user_string(), e.check_name, {k: v.value for k, v in e.metadata.items()}) for e in result.get_asset_check_evaluations() if not e.passed]
    assert result.success, failed
    assert not failed
    return result


def table(resources, layer, name) -> pl.DataFrame:
    return pl.read_delta(f"{resources['lake'].root_uri}/{layer}/{name}")


def meta(result, key):
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def test_committed_sample_builds_every_table_with_all_checks_passing(tmp_path, sm_resources, instance):
    shutil.copytree(settings.DATA_DIR / "readings", sm_resources["smart_meter"].readings_dir, dirs_exist_ok=True)
    shutil.copy(settings.DATA_DIR / "case_study.db", sm_resources["smart_meter"].db_path)
    result = run(sm_resources, instance, "2021-03-26", "2021-03-29")
    assert len([e for e in result.get_asset_check_evaluations() if not is_range_copy(e)]) == len(CHECKS)
    silver = table(sm_resources, "silver", "smart_meter_readings")
    per_day = dict(silver.group_by("settlement_date").agg(pl.col("interval_start_utc").n_unique()).iter_rows())
    assert sorted(per_day.values()) == [46, 48, 48, 48]  # the spring clock change day has 46 half-hours
    raw = table(sm_resources, "raw", "smart_meter_readings")
    quarantine = table(sm_resources, "silver", "smart_meter_quarantine")
    assert raw.height == silver.height + quarantine.height
    assert set(quarantine["disposition"]) == {"duplicate", "quarantined"}
    for name in ("active_agreements", "total_consumption_half_hour", "consumption_per_product_per_day", "gold_aggregate_per_half_hour", "gold_avg_half_hour_by_product", "readings_without_agreement"):
        assert table(sm_resources, "presentation", name).height > 0, name
    m = meta(result, "silver/smart_meter_readings")
    assert m["rows_in"] == m["rows_kept"] + m["duplicates"] + m["quarantined"]


def small_drop(drop):
    write_db(
        drop["db"],
        agreements=[
            (1, "2020-01-01", "2021-03-27", "FIX-A", "aaaaaaaaaa", "acc1"),
            (2, "2021-03-27", None, "AGILE", "aaaaaaaaaa", "acc1"),  # switch on 2021-03-27
            (3, "2020-01-01", None, "FIX-B", "bbbbbbbbbb", "acc2"),
        ],
        products=PRODUCTS,
        meterpoints=[("London", "aaaaaaaaaa"), ("Yorkshire", "bbbbbbbbbb"), ("London", "cccccccccc")],  # c: no agreement
    )
    for mp in ("aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"):
        write_readings(drop["readings"], mp, day_rows(mp, "2021-03-26") + day_rows(mp, "2021-03-27"))


def test_incremental_arrival_reads_only_the_new_version_and_writes_only_its_days(drop, sm_resources, instance):
    small_drop(drop)
    first = run(sm_resources, instance, "2021-03-26", "2021-03-27")
    assert meta(first, "raw/smart_meter_readings")["files_read"] == 3  # one read per file for the whole range
    raw_before = table(sm_resources, "raw", "smart_meter_readings")

    # a new version of one file: its old days plus a new day
    os.utime(write_readings(drop["readings"], "aaaaaaaaaa", day_rows("aaaaaaaaaa", "2021-03-27", kwh=0.9) + day_rows("aaaaaaaaaa", "2021-03-28")), ns=(1, 1_700_000_000_000_000_000))
    third = run(sm_resources, instance, "2021-03-28")
    m = meta(third, "raw/smart_meter_readings")
    assert (m["files_read"], m["files_not_opened_already_ingested"], m["file_days_replaced"]) == (1, 2, 1)
    raw_after = table(sm_resources, "raw", "smart_meter_readings")
    # other days untouched (same rows, same ingested_at) until their partition runs again
    before_27 = raw_before.filter(pl.col("settlement_date") == pl.date(2021, 3, 27)).sort("source_file", "source_row")
    assert raw_after.filter(pl.col("settlement_date") == pl.date(2021, 3, 27)).sort("source_file", "source_row").equals(before_27)
    assert raw_after.filter(pl.col("settlement_date") == pl.date(2021, 3, 28))["source_file"].unique().to_list() == ["aaaaaaaaaa.json"]

    # the changed file's other day: its rows are replaced by the new version's, other files' rows stay
    again = run(sm_resources, instance, "2021-03-27")
    assert meta(again, "raw/smart_meter_readings")["files_read"] == 1
    silver = table(sm_resources, "silver", "smart_meter_readings").filter(pl.col("settlement_date") == pl.date(2021, 3, 27))
    by_mp = dict(silver.group_by("meterpoint_id").agg(pl.col("consumption_kwh").sum().round(3)).iter_rows())
    assert by_mp == {"aaaaaaaaaa": 43.2, "bbbbbbbbbb": 24.0, "cccccccccc": 24.0}
    # the product switch: a on 2021-03-26 is FIX-A, from 2021-03-27 AGILE
    silver_all = table(sm_resources, "silver", "smart_meter_readings").filter(pl.col("meterpoint_id") == "aaaaaaaaaa")
    products = silver_all.group_by("settlement_date").agg(pl.col("product_id").unique()).sort("settlement_date")
    assert products.rows() == [(dt.date(2021, 3, 26), ["FIX-A"]), (dt.date(2021, 3, 27), ["AGILE"]), (dt.date(2021, 3, 28), ["AGILE"])]
    log = table(sm_resources, "raw", "ingestion_log")
    assert log.filter(pl.col("file_name") == "aaaaaaaaaa.json")["content_hash"].n_unique() == 2
    assert log.select("file_name", "content_hash", "settlement_date").is_duplicated().sum() == 0


def test_rerunning_a_range_is_idempotent_and_reads_nothing_again(drop, sm_resources, instance):
    small_drop(drop)
    run(sm_resources, instance, "2021-03-26", "2021-03-27")
    snapshot = {
        (layer, name): table(sm_resources, layer, name)
        for layer, name in [("raw", "smart_meter_readings"), ("raw", "ingestion_log"), ("raw", "agreements"), ("presentation", "active_agreements"), ("silver", "smart_meter_readings"), ("silver", "smart_meter_quarantine"), ("presentation", "total_consumption_half_hour"), ("presentation", "consumption_per_product_per_day")]
    }
    second = run(sm_resources, instance, "2021-03-26", "2021-03-27")
    assert meta(second, "raw/smart_meter_readings")["files_read"] == 0
    for (layer, name), before in snapshot.items():
        after = table(sm_resources, layer, name)
        cols = before.columns
        assert after.sort(cols).equals(before.sort(cols)), f"{layer}/{name} changed on re-run"
    without = table(sm_resources, "presentation", "readings_without_agreement")
    assert without.select("settlement_date", "meterpoint_id", "reading_count").sort("settlement_date").rows() == [
        (dt.date(2021, 3, 26), "cccccccccc", 48),
        (dt.date(2021, 3, 27), "cccccccccc", 48),
    ]


def test_malformed_and_bad_rows_land_in_quarantine_and_the_run_still_succeeds(drop, sm_resources, instance):
    small_drop(drop)
    bad = drop["readings"] / "dddddddddd.json"
    bad.write_text('{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[["2021-03-26 00:00:00",0.1,')
    os.utime(bad, ns=(1, 1_616_716_800_000_000_000))  # mtime 2021-03-26 00:00 UTC: its home day
    write_readings(drop["readings"], "eeeeeeeeee", [["2021-03-26 00:00:00", -1, "eeeeeeeeee"], ["not a time", 0.1, "eeeeeeeeee"], ["2021-03-26 00:30:00", "x", "eeeeeeeeee"]])
    result = run(sm_resources, instance, "2021-03-26")
    q = table(sm_resources, "silver", "smart_meter_quarantine").filter(pl.col("disposition") == "quarantined").sort("source_file", "source_row")
    reasons = [(f, r.split(":")[0]) for f, r in q.select("source_file", "reason").rows()]
    assert reasons == [
        ("dddddddddd.json", "malformed_file"),
        ("eeeeeeeeee.json", "negative_consumption"),
        ("eeeeeeeeee.json", "bad_timestamp"),
        ("eeeeeeeeee.json", "non_numeric_consumption"),
    ]
    assert "dddddddddd.json" in q["reason"][0]
    m = meta(result, "raw/smart_meter_readings")
    assert [f["file_name"] for f in m["malformed_files"]] == ["dddddddddd.json"]
    s = meta(result, "silver/smart_meter_readings")
    assert s["rows_in"] == s["rows_kept"] + s["duplicates"] + s["quarantined"] and s["quarantined"] == 4


def test_raw_keeps_numbers_as_the_utility_wrote_them(drop, sm_resources, instance):
    """A utility writing fixed decimals (`0.500`) or exponents: raw holds the text as written, silver the value."""
    small_drop(drop)
    rows = ",".join(f'["2021-03-26 {h:02d}:00:00",{v},"cccccccccc"]' for h, v in enumerate(["0.500", "1E-1", "-0", "0.25"]))
    (drop["readings"] / "cccccccccc.json").write_text('{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[' + rows + "]}")
    result = run(sm_resources, instance, "2021-03-26")
    raw = table(sm_resources, "raw", "smart_meter_readings").filter(pl.col("source_file") == "cccccccccc.json").sort("source_row")
    assert raw["consumption_delta"].to_list() == ["0.500", "1E-1", "-0", "0.25"]
    silver = table(sm_resources, "silver", "smart_meter_readings").filter(pl.col("meterpoint_id") == "cccccccccc").sort("interval_start_utc")
    assert silver["consumption_kwh"].to_list() == [0.5, 0.1, 0.0, 0.25]
    assert meta(result, "raw/smart_meter_readings")["files_read"] == 3
