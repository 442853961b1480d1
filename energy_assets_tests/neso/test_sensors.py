"""The polling sensor against the local fake API: cursor, run requests only on change, survival of API errors."""

import datetime as dt
import json

import pytest
from dagster import DefaultSensorStatus, SensorResult, SkipReason, build_sensor_context

from energy_assets import settings
from energy_assets.neso import sensors
from energy_assets.neso.client import NesoClient, uk_today
from energy_assets.neso.sensors import neso_carbon_intensity_poller
from energy_assets_tests.neso.conftest import quick_session


@pytest.fixture
def poller(fake_api):
    return NesoClient(http=quick_session(max_attempts=2), base_url=fake_api)


def tick(poller, instance, cursor=None):
    with build_sensor_context(cursor=cursor, resources={"neso_poller": poller}, instance=instance) as context:
        result = neso_carbon_intensity_poller(context)
    return context, result


def test_first_tick_requests_runs_for_yesterday_and_today_with_a_json_cursor(poller, instance, fake_state):
    _, result = tick(poller, instance)
    assert isinstance(result, SensorResult)
    today = uk_today()
    days = [(today - dt.timedelta(days=1)).isoformat(), today.isoformat()]
    assert [r.partition_key for r in result.run_requests] == days
    assert all(r.run_key.startswith(f"neso-{r.partition_key}-") for r in result.run_requests)
    assert sorted(json.loads(result.cursor)["seen"]) == days
    assert len(fake_state.requests) == 2  # one range request per endpoint covers both days


def test_no_change_no_run_then_a_revision_runs_only_the_changed_day(poller, instance, fake_state):
    _, first = tick(poller, instance)
    _, same = tick(poller, instance, first.cursor)
    assert same.run_requests == [] and same.cursor == first.cursor

    fake_state.manual_revision += 1  # forecasts of today's open periods are revised
    _, changed = tick(poller, instance, same.cursor)
    assert [r.partition_key for r in changed.run_requests] == [uk_today().isoformat()]
    assert changed.cursor != first.cursor
    assert changed.run_requests[0].run_key != first.run_requests[1].run_key


def test_actuals_arriving_trigger_a_run(poller, instance, clock):
    _, first = tick(poller, instance)
    clock.now += dt.timedelta(minutes=31)  # at least one more period gets its actual
    _, later = tick(poller, instance, first.cursor)
    # an actual appears 30 min after a period ends: in 31 min at least one of the two days changes
    assert later.run_requests and later.cursor != first.cursor
    changed = {r.partition_key for r in later.run_requests}
    seen_before, seen_now = json.loads(first.cursor)["seen"], json.loads(later.cursor)["seen"]
    assert changed == {day for day in seen_now if seen_now[day] != seen_before[day]}


@pytest.mark.parametrize("fault", ["500", "empty", "truncated", "429"])
def test_api_errors_skip_the_tick_keep_the_cursor_and_the_next_tick_recovers(poller, instance, fake_state, fault):
    _, first = tick(poller, instance)
    fake_state.set_fault(fault)
    context, failed = tick(poller, instance, first.cursor)
    assert isinstance(failed, SkipReason)
    assert "retrying next tick" in failed.skip_message
    assert context.cursor == first.cursor  # unchanged: Dagster keeps it when the tick returns a SkipReason
    fake_state.set_fault("none")
    _, recovered = tick(poller, instance, first.cursor)
    assert isinstance(recovered, SensorResult) and recovered.run_requests == []


def test_unreachable_api_is_a_skip_not_a_crash(instance):
    dead = NesoClient(http=quick_session(max_attempts=1, connect_timeout_s=0.2), base_url="http://127.0.0.1:9")
    _, result = tick(dead, instance, json.dumps({"seen": {"x": "y"}}))
    assert isinstance(result, SkipReason) and "connection failed" in result.skip_message


def test_an_unreadable_cursor_means_nothing_seen(poller, instance):
    _, result = tick(poller, instance, "not json")
    assert len(result.run_requests) == 2


def test_sensor_is_stopped_by_default_and_targets_all_three_layers():
    assert neso_carbon_intensity_poller.default_status == DefaultSensorStatus.STOPPED
    (target,) = neso_carbon_intensity_poller.targets
    keys = {k.to_user_string() for k in target.resolvable_to_job.selection.resolve(sensors.NESO_ASSETS)}
    assert keys == {
        "bronze/neso_carbon_intensity",
        "bronze/neso_generation_mix",
        "silver/neso_carbon_intensity",
        "silver/neso_carbon_intensity_quarantine",
        "silver/neso_generation_mix",
        "gold/neso_carbon_intensity_features",
    }


@pytest.fixture
def fresh_graph_settings():
    """The sensor interval is a load-time setting (`settings.graph()`, cached): clear the cache around an
    environment change and again after it is undone, so no other test sees the changed value."""
    settings.graph.cache_clear()
    yield
    settings.graph.cache_clear()


def test_interval_setting(monkeypatch, fresh_graph_settings):
    monkeypatch.delenv("NESO_SENSOR_INTERVAL_SECONDS", raising=False)
    assert sensors.sensor_interval_seconds() == 60
    monkeypatch.setenv("NESO_SENSOR_INTERVAL_SECONDS", "10")
    settings.graph.cache_clear()
    assert sensors.sensor_interval_seconds() == 10
    monkeypatch.setenv("NESO_SENSOR_INTERVAL_SECONDS", "soon")
    settings.graph.cache_clear()
    with pytest.raises(ValueError, match="NESO_SENSOR_INTERVAL_SECONDS"):
        sensors.sensor_interval_seconds()


def test_a_day_with_a_queued_refresh_gets_no_second_run(poller, instance):
    today = uk_today().isoformat()
    result = sensors.evaluate(poller, None, pending=frozenset({today}))
    assert [r.partition_key for r in result.run_requests] == [(uk_today() - dt.timedelta(days=1)).isoformat()]
    assert today in json.loads(result.cursor)["seen"]  # the queued run fetches the newest data when it starts


def test_the_refresh_job_runs_in_one_process_and_a_sensor_run_request_refreshes_every_layer(neso_resources, instance, lake_root):
    from dagster import Definitions

    from energy_assets.neso.checks import NESO_CHECKS

    assert sensors.neso_refresh_job.executor_def.name == "in_process"
    import polars as pl

    _, result = tick(neso_resources["neso"], instance)
    defs = Definitions(assets=sensors.NESO_ASSETS, asset_checks=NESO_CHECKS, jobs=[sensors.neso_refresh_job], resources=neso_resources)
    for request in result.run_requests:  # yesterday, then today
        run = defs.resolve_job_def("neso_refresh_job").execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
        assert run.success
        evaluations = {e.check_name: e for e in run.get_asset_check_evaluations()}
        assert all(e.passed for e in evaluations.values()), {k: e.metadata["found"].value for k, e in evaluations.items()}
    # today's freshness check applied (the fake's latest actual is 30-60 min old) and passed
    assert evaluations["fresh_while_polling"].metadata["applicable"].value == "yes"
    gold = pl.read_delta(str(lake_root / "gold" / "neso_carbon_intensity_features"))
    assert sorted(gold["settlement_date"].unique().to_list()) == [uk_today() - dt.timedelta(days=1), uk_today()]
    assert gold.filter(pl.col("settlement_date") == uk_today())["rolling_24h_period_count"].min() == 48
