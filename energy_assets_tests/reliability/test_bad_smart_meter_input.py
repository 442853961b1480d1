"""Bad smart-meter files through a real materialisation: each is quarantined with a reason naming it, the good
files are ingested as usual, and the row accounting balances.

Cases: an empty (0-byte) file, a file that is not JSON, valid JSON of the wrong shape (a list; an object without
`columns`/`data`), a file that vanishes between the folder listing and the reading, and a 1 GiB file.

The 1 GiB file: a reading file is one meterpoint's half-hours (a year is ~1 MB), so a 1 GiB file is not a
plausible delivery. The chosen behaviour is to quarantine it unread, with a reason naming the file and its size,
above a size limit (SMART_METER_MAX_FILE_BYTES, default 256 MiB), instead of parsing it: parsing would need
several GB of memory for one JSON object. The run happens in a child process that reports its own peak RSS
after a control run of the same good files and again after the run with the 1 GiB file; the growth is asserted
to stay far below the file's size (hashing streams the file in 16 MiB pieces; reading it whole would
put the peak above 1 GiB).
"""

import json
import os
import shutil
import subprocess
import sys

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from energy_assets.smart_meter import source
from energy_assets.smart_meter.assets import ASSETS
from energy_assets.smart_meter.checks import CHECKS
from energy_assets_tests.smart_meter.conftest import PRODUCTS, day_rows, drop, sm_resources, write_db, write_readings  # noqa: F401 (fixtures)

DAY = "2021-03-26"
HOME_DAY_NS = 1_616_716_800_000_000_000  # 2021-03-26 00:00 UTC: files without dated rows belong to this day
GOOD = ("aaaaaaaaaa", "bbbbbbbbbb")


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def good_drop(drop):
    write_db(
        drop["db"],
        agreements=[(1, "2020-01-01", None, "FIX-A", "aaaaaaaaaa", "acc1"), (2, "2020-01-01", None, "AGILE", "bbbbbbbbbb", "acc2")],
        products=PRODUCTS,
        meterpoints=[("London", "aaaaaaaaaa"), ("Yorkshire", "bbbbbbbbbb")],
    )
    for mp in GOOD:
        write_readings(drop["readings"], mp, day_rows(mp, DAY))


def bad_file(drop, name: str, content: bytes | None = None, size: int | None = None):
    path = drop["readings"] / name
    with open(path, "wb") as fh:
        if content:
            fh.write(content)
        if size:
            fh.truncate(size)  # sparse: a 1 GiB file in no time
    os.utime(path, ns=(HOME_DAY_NS, HOME_DAY_NS))
    return path


def table(resources, layer, name) -> pl.DataFrame:
    return pl.read_delta(f"{resources['lake'].root_uri}/{layer}/{name}")


def meta(result, key):
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def run_and_check(sm_resources, instance, bad_name: str, reason_part: str):
    result = materialize([*ASSETS, *CHECKS], resources=sm_resources, instance=instance, partition_key=DAY, raise_on_error=False)
    assert result.success, [str(e.event_specific_data.error) for e in result.get_step_failure_events()]
    check_tables(sm_resources, bad_name, reason_part, meta(result, "silver/smart_meter_readings"), meta(result, "raw/smart_meter_readings"))
    return result


def check_tables(sm_resources, bad_name: str, reason_part: str, silver_meta: dict, raw_meta: dict):
    silver = table(sm_resources, "silver", "smart_meter_readings")
    quarantine = table(sm_resources, "silver", "smart_meter_quarantine")
    raw = table(sm_resources, "raw", "smart_meter_readings")
    # the good files are ingested completely
    assert sorted(silver["meterpoint_id"].unique().to_list()) == list(GOOD)
    assert silver.height == 2 * 48
    # the bad file is quarantined once, with a reason naming it
    bad = quarantine.filter(pl.col("source_file") == bad_name)
    assert bad.height == 1, quarantine
    assert bad["reason"][0].startswith("malformed_file") and bad_name in bad["reason"][0] and reason_part in bad["reason"][0], bad["reason"][0]
    # row accounting: every raw row is in silver or the quarantine, and the step's own counts balance
    assert raw.height == silver.height + quarantine.height
    s = silver_meta
    assert s["rows_in"] == s["rows_kept"] + s["duplicates"] + s["quarantined"] == raw.height
    assert [f["file_name"] for f in raw_meta["malformed_files"]] == [bad_name]


@pytest.mark.parametrize(
    "name,content,reason_part",
    [
        ("cccccccccc.json", b"", "empty"),
        ("dddddddddd.json", b"meterpoint,kwh\nx,1\n", "malformed JSON"),
        ("eeeeeeeeee.json", b'[["2021-03-26 00:00:00", 0.1, "eeeeeeeeee"]]', "Expected OBJECT"),
        ("ffffffffff.json", b'{"index": [0], "rows": [["2021-03-26 00:00:00", 0.1, "ffffffffff"]]}', "split orient"),
    ],
    ids=["empty", "not_json", "json_list", "json_wrong_object"],
)
def test_an_unusable_file_is_quarantined_by_name_and_the_good_files_are_ingested(drop, sm_resources, instance, name, content, reason_part):
    good_drop(drop)
    bad_file(drop, name, content)
    run_and_check(sm_resources, instance, name, reason_part)


def test_a_file_that_vanishes_between_listing_and_reading_is_quarantined(drop, sm_resources, instance, monkeypatch):
    good_drop(drop)
    doomed = bad_file(drop, "gggggggggg.json", b'{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[]}')
    listed = source.snapshot_folder

    def list_then_delete(folder):
        snapshot = listed(folder)  # the file is listed...
        doomed.unlink()  # ... and deleted by the utility before it is read
        return snapshot

    monkeypatch.setattr(source, "snapshot_folder", list_then_delete)
    run_and_check(sm_resources, instance, "gggggggggg.json", "vanished")


# The materialisation in a child process: its peak RSS is the memory the ingestion of the folder needed.
CHILD = """
import json, resource, sys
from dagster import DagsterInstance, materialize
from dagster_duckdb import DuckDBResource
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.smart_meter.assets import ASSETS
from energy_assets.smart_meter.checks import CHECKS
from energy_assets.smart_meter.source import SmartMeterSource

db, day, *runs = sys.argv[1:]
for lake_root, readings in zip(runs[::2], runs[1::2]):  # one run per (lake, readings folder), in order
    lake = LakeResource(root_uri=lake_root)
    resources = {"lake": lake, "io_manager": DeltaLakeIOManager(lake=lake), "smart_meter_duckdb": DuckDBResource(database=":memory:"),
                 "smart_meter": SmartMeterSource(readings_dir=readings, db_path=db)}
    with DagsterInstance.ephemeral() as instance:
        result = materialize([*ASSETS, *CHECKS], resources=resources, instance=instance, partition_key=day, raise_on_error=False)

    def meta(key, names):
        mats = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
        return {k: v.value for k, v in mats[-1].materialization.metadata.items() if k in names} if mats else {}

    print(json.dumps({
        "success": result.success,
        "errors": [str(e.event_specific_data.error) for e in result.get_step_failure_events()],
        "silver": meta("silver/smart_meter_readings", ("rows_in", "rows_kept", "duplicates", "quarantined")),
        "raw": meta("raw/smart_meter_readings", ("malformed_files",)),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # the process's peak so far
    }), flush=True)
"""
# Growth of the peak over a control run of the same ingestion without the big file, in the same process (so
# libraries, thread pools and allocator arenas are already there). An absolute bound was flaky: the whole
# process peaked at 387 MiB here and at 857 MiB in one CI run. Measured: control 387 MiB, after the 1 GiB run
# 421 MiB (+34). Reading the file whole would add >= 1,024 MiB.
PEAK_GROWTH_BOUND_MIB = 512


@pytest.mark.slow
def test_a_1_gib_file_is_quarantined_as_too_large_without_being_read_into_memory(drop, sm_resources, tmp_path, capsys):
    good_drop(drop)
    control_readings = tmp_path / "control_readings"
    shutil.copytree(drop["readings"], control_readings)  # the same good files, without the big one
    big = bad_file(drop, "hhhhhhhhhh.json", b'{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[', size=1 << 30)
    assert big.stat().st_size == 1 << 30
    runs = [str(tmp_path / "control_lake"), str(control_readings), sm_resources["lake"].root_uri, str(drop["readings"])]
    child = subprocess.run([sys.executable, "-c", CHILD, str(drop["db"]), DAY, *runs], capture_output=True, text=True, timeout=540, env=os.environ.copy())
    assert child.returncode == 0, child.stderr[-3000:]
    control, report = (json.loads(line) for line in child.stdout.strip().splitlines()[-2:])
    assert control["success"] and report["success"], (control["errors"], report["errors"])
    assert control["raw"] == {"malformed_files": []}  # the control saw no bad file
    check_tables(sm_resources, "hhhhhhhhhh.json", "SMART_METER_MAX_FILE_BYTES", report["silver"], report["raw"])
    control_mib, peak_mib = control["peak_rss_kib"] / 1024, report["peak_rss_kib"] / 1024  # Linux: ru_maxrss in KiB
    with capsys.disabled():
        print(f"\n1 GiB reading file: peak RSS {control_mib:.0f} MiB after the control run, {peak_mib:.0f} MiB after the 1 GiB run")
    assert peak_mib - control_mib < PEAK_GROWTH_BOUND_MIB, f"peak RSS grew {peak_mib - control_mib:.0f} MiB over the control: the 1 GiB file was read into memory?"
