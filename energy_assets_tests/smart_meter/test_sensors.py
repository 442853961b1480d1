"""The readings-folder sensor (cursor of file versions -> runs for exactly the touched days) and the schedule."""

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

from dagster import DagsterInstance, build_schedule_context, build_sensor_context

from energy_assets.smart_meter.sensors import RANGE_END, RANGE_START, smart_meter_daily_schedule, smart_meter_readings_sensor

from .conftest import day_rows, write_readings


def tick(resources, cursor=None):
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(cursor=cursor, resources={"smart_meter": resources["smart_meter"]}, instance=instance)
        return smart_meter_readings_sensor(ctx)


def requested(result) -> list[tuple[str, str]]:
    out = []
    for r in result.run_requests or []:
        if r.partition_key:
            out.append((r.partition_key, r.partition_key))
        else:
            out.append((r.tags[RANGE_START], r.tags[RANGE_END]))
    return sorted(out)


def test_sensor_requests_exactly_the_days_new_versions_touch_and_remembers_versions(drop, sm_resources):
    folder = drop["readings"]
    write_readings(folder, "aaaaaaaaaa", day_rows("aaaaaaaaaa", "2021-03-26") + day_rows("aaaaaaaaaa", "2021-03-27"))
    write_readings(folder, "bbbbbbbbbb", day_rows("bbbbbbbbbb", "2021-03-27") + day_rows("bbbbbbbbbb", "2021-03-30"))
    first = tick(sm_resources)
    # two contiguous ranges, not one run per file and not the gap days
    assert requested(first) == [("2021-03-26", "2021-03-27"), ("2021-03-30", "2021-03-30")]
    cursor = json.loads(first.cursor)
    assert set(cursor) == {"aaaaaaaaaa.json", "bbbbbbbbbb.json"} and all(len(v[2]) == 64 for v in cursor.values())

    # nothing new: no runs
    assert not tick(sm_resources, first.cursor).run_requests

    # same content rewritten (mtime changes): not a new version
    path = folder / "aaaaaaaaaa.json"
    os.utime(path, ns=(1, 1_800_000_000_000_000_000))
    same = tick(sm_resources, first.cursor)
    assert not same.run_requests

    # a changed file: only its days, with a run key derived from the version
    write_readings(folder, "aaaaaaaaaa", day_rows("aaaaaaaaaa", "2021-03-28", kwh=1.0))
    changed = tick(sm_resources, same.cursor)
    assert requested(changed) == [("2021-03-28", "2021-03-28")]
    again = tick(sm_resources, same.cursor)  # the same tick evaluated twice asks with the same run key
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in changed.run_requests]

    # a new file arrives
    write_readings(folder, "cccccccccc", day_rows("cccccccccc", "2021-03-29"))
    new = tick(sm_resources, changed.cursor)
    assert requested(new) == [("2021-03-29", "2021-03-29")]


def test_sensor_sends_a_malformed_file_to_its_home_day(drop, sm_resources):
    bad = drop["readings"] / "dddddddddd.json"
    bad.write_text('{"columns": [')
    os.utime(bad, ns=(1, int(dt.datetime(2021, 3, 27, 23, 30, tzinfo=dt.UTC).timestamp() * 1e9)))  # 23:30 GMT: still the 27th in the UK
    result = tick(sm_resources)
    assert requested(result) == [("2021-03-27", "2021-03-27")]


def test_schedule_processes_the_uk_day_that_just_ended():
    london = ZoneInfo("Europe/London")
    for when, day in [
        (dt.datetime(2021, 3, 29, 8, 0, tzinfo=london), "2021-03-28"),  # the day after the spring change
        (dt.datetime(2021, 11, 1, 8, 0, tzinfo=london), "2021-10-31"),
        (dt.datetime(2021, 1, 1, 8, 0, tzinfo=london), "2020-12-31"),
    ]:
        ctx = build_schedule_context(scheduled_execution_time=when)
        request = smart_meter_daily_schedule(ctx)
        assert request.partition_key == day
        assert request.run_key == f"smart-meter-daily-{day}"
    assert smart_meter_daily_schedule.cron_schedule == "0 8 * * *"
    assert smart_meter_daily_schedule.execution_timezone == "Europe/London"
