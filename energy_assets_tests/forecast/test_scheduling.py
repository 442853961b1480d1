"""Carbon-aware decisions on a fixed clock: wait, run at the greenest window, deadline, fallbacks, run tags."""

import datetime as dt
import json

import polars as pl
import pytest
from dagster import DagsterInstance, Definitions, RunRequest, build_sensor_context, job, op

from energy_assets.forecast import scheduling
from energy_assets.forecast.carbon_aware import CarbonAwareSpec, carbon_aware_sensor, evaluate, newest_region_issue
from energy_assets.forecast.archive import ARCHIVE_SCHEMA
from energy_assets.lake.store import Lake

UTC = dt.timezone.utc
# winter: UK time = UTC. Window 00:00-08:00; the forecast is issued at 00:01.
ISSUE = dt.datetime(2024, 1, 10, 0, 1, tzinfo=UTC)
VALUES = [180, 180, 180, 180, 180, 60, 62, 61, 61, 150, 150, 150, 150, 150, 150, 150, 200, 200, 200, 200]  # 00:00..09:30


def issue(values=VALUES, issued=ISSUE, region=0):
    start = issued.replace(minute=0)
    n = len(values)
    return pl.DataFrame(
        {"issue_date": [issued.date()] * n, "issued_at": [issued] * n, "region_id": [region] * n, "region_shortname": ["National"] * n,
         "period_start": [start + dt.timedelta(minutes=30 * i) for i in range(n)], "period_end": [start + dt.timedelta(minutes=30 * i + 30) for i in range(n)],
         "lead_minutes": [30 * i - 1 for i in range(n)], "lead_bucket": list(range(n)), "forecast_gco2_per_kwh": values,
         "intensity_index": ["low"] * n, "source_request_url": ["u"] * n},
    ).cast(dict(ARCHIVE_SCHEMA))


SPEC = CarbonAwareSpec("test_carbon_aware", 0, 120, dt.time(0, 0), dt.time(8, 0))


def at(h, m=0):
    return dt.datetime(2024, 1, 10, h, m, tzinfo=UTC)


def test_waits_for_the_greenest_window_and_says_so():
    d = scheduling.decide(at(0, 10), issue(), 120, dt.time(0), dt.time(8))
    assert d.action == scheduling.WAIT and not d.launch
    assert d.reason == "waiting for 02:30-04:30, 61 g/kWh against 180 now, -66%"


def test_runs_at_the_start_of_the_window_with_tags():
    d = scheduling.decide(at(2, 33), issue(), 120, dt.time(0), dt.time(8), max_forecast_age=dt.timedelta(hours=3))
    assert d.action == scheduling.RUN_GREENEST and d.launch
    tags = d.tags()
    assert tags["carbon_aware/decision"] == "run_greenest"
    assert tags["carbon_aware/window"] == "2024-01-10T02:30:00+00:00/2024-01-10T04:30:00+00:00"
    assert tags["carbon_aware/issued_at"] == ISSUE.isoformat()


def test_runs_now_when_no_full_window_is_left_before_the_deadline():
    d = scheduling.decide(at(6, 45), issue(), 120, dt.time(0), dt.time(8), max_forecast_age=dt.timedelta(hours=8))
    assert d.action == scheduling.RUN_DEADLINE and "no full 120-minute window left before the deadline" in d.reason


def test_falls_back_to_run_now_without_or_with_a_stale_forecast():
    none = scheduling.decide(at(1), issue().clear(), 120, dt.time(0), dt.time(8))
    assert none.action == scheduling.FALLBACK_NO_FORECAST and none.launch
    assert none.reason == "no forecast in the lake: running now (not carbon-aware), to finish by 08:00"
    stale = scheduling.decide(at(3, 30), issue(issued=at(0, 1) - dt.timedelta(hours=1)), 120, dt.time(0), dt.time(8))
    assert stale.action == scheduling.FALLBACK_STALE and stale.launch
    assert "newest forecast is 4.5 h old (issued 2024-01-09 23:01Z, limit 2 h)" in stale.reason
    assert stale.tags()["carbon_aware/decision"] == "fallback_stale_forecast"


def test_outside_the_window_and_overnight_cycles():
    assert scheduling.decide(at(9), issue(), 120, dt.time(0), dt.time(8)).action == scheduling.OUTSIDE
    cycle = scheduling.cycle_at(at(1), dt.time(22), dt.time(7))
    assert cycle.day == dt.date(2024, 1, 9) and cycle.deadline == at(7)


def test_cycle_in_summer_time():
    cycle = scheduling.cycle_at(dt.datetime(2024, 6, 12, 6, 30, tzinfo=UTC), dt.time(1), dt.time(8))  # 07:30 BST
    assert cycle.deadline == dt.datetime(2024, 6, 12, 7, 0, tzinfo=UTC)


def test_sensor_tick_launches_once_per_cycle():
    spec = CarbonAwareSpec("s", 0, 120, dt.time(0), dt.time(8), max_forecast_age=dt.timedelta(hours=4), partition_key=lambda day: (day - dt.timedelta(days=1)).isoformat())
    waiting, _ = evaluate(spec, at(0, 10), None, issue(), {})
    assert waiting.skip_reason.skip_message.startswith("waiting for 02:30-04:30")
    launched, _ = evaluate(spec, at(2, 35), None, issue(), {})
    (request,) = launched.run_requests
    assert request.run_key == "s-2024-01-10" and request.partition_key == "2024-01-09"
    assert json.loads(launched.cursor) == {"launched": "2024-01-10"}
    again, _ = evaluate(spec, at(3), launched.cursor, issue(), {})
    assert not again.run_requests and "already launched" in again.skip_reason.skip_message


def test_sensor_reads_the_newest_issue_from_the_lake(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    empty, _ = newest_region_issue(lake, 0, at(1))
    assert empty.is_empty()
    older = issue(issued=ISSUE - dt.timedelta(minutes=30))
    import deltalake

    deltalake.write_deltalake(lake.table_uri("silver/neso_forecast_archive"), pl.concat([older, issue(), issue(region=7)]).to_arrow())
    newest, rmse = newest_region_issue(lake, 0, at(1))
    assert newest["issued_at"].unique().to_list() == [ISSUE] and newest["region_id"].unique().to_list() == [0]
    assert rmse == {}


def test_the_factory_builds_a_working_sensor(tmp_path):
    from energy_assets.lake.resource import LakeResource

    @op
    def noop():
        pass

    @job
    def some_job():
        noop()

    sensor_def = carbon_aware_sensor(SPEC, job=some_job)
    defs = Definitions(jobs=[some_job], sensors=[sensor_def], resources={"lake": LakeResource(root_uri=str(tmp_path / "lake"))})
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(instance=instance, resources={"lake": LakeResource(root_uri=str(tmp_path / "lake"))})
        result = defs.get_sensor_def(SPEC.name)(ctx)
    # an empty lake: outside the window it waits, inside it falls back to running now; both say so
    message = result.skip_reason.skip_message if result.skip_reason else result.run_requests[0].tags["carbon_aware/reason"]
    assert message.startswith(("outside the window", "no forecast in the lake"))


def test_the_smart_meter_batch_waits_for_the_days_files_then_takes_the_greenest_window_left(tmp_path):
    import os

    from energy_assets.forecast.sensors_carbon_aware import files_arrived

    folder = tmp_path / "readings"
    folder.mkdir()
    day = dt.date(2024, 1, 10)  # the cycle opening on the 10th processes the 9th
    old = folder / "0a3628474a.json"
    old.write_text("{}")
    os.utime(old, (at(0).timestamp() - 3600, at(0).timestamp() - 3600))  # written before the 9th ended
    assert files_arrived(folder, day) == f"waiting for the smart-meter files of 2024-01-09 (none written to {folder} since it ended)"
    assert files_arrived(tmp_path / "missing", day).startswith("waiting for the smart-meter files of 2024-01-09")

    arrived: dict[str, str | None] = {"reason": files_arrived(folder, day)}
    spec = CarbonAwareSpec("s", 0, 120, dt.time(0), dt.time(8), max_forecast_age=dt.timedelta(hours=4), ready=lambda d: arrived["reason"])
    waiting, _ = evaluate(spec, at(2, 35), None, issue(), {})
    assert not waiting.run_requests
    assert waiting.skip_reason.skip_message.startswith("waiting for the smart-meter files of 2024-01-09")
    os.utime(old, (at(1).timestamp(), at(1).timestamp()))  # a new version arrives at 01:00
    arrived["reason"] = files_arrived(folder, day)
    assert arrived["reason"] is None
    launched, _ = evaluate(spec, at(2, 35), None, issue(), {})
    assert len(launched.run_requests) == 1
