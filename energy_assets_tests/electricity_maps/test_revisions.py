"""Issue 13 item 5: Electricity Maps revises about three months of history; a daily schedule re-fetches the
lookback days (ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS), every revision is kept in bronze, the newest wins."""

import datetime as dt

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance, MultiPartitionKey, build_schedule_context

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.sensors import build_revision_schedule, revision_lookback_days, revision_requests
from energy_assets.partitions import ELECTRICITY_MAPS_START_DATE
from energy_assets_tests.electricity_maps.conftest import day_rows, em_resource, hour
from energy_assets_tests.electricity_maps.test_assets import read, run

TODAY = dt.date(2024, 6, 30)
SCHEDULE = build_revision_schedule(AssetSelection.all(), zones=["GR", "DE"])


def keys(requests) -> list[str]:
    return sorted(str(r.partition_key) for r in requests)


def test_the_lookback_days_and_the_day_before_each_are_requested_for_every_zone():
    requests = revision_requests(TODAY, (0, 7, 30, 90), ["GR"], paid_tier=True)
    assert keys(requests) == [
        "2024-03-31|GR", "2024-04-01|GR", "2024-05-30|GR", "2024-05-31|GR",
        "2024-06-22|GR", "2024-06-23|GR", "2024-06-29|GR", "2024-06-30|GR",
    ]  # fmt: skip
    assert len({r.run_key for r in requests}) == 8
    # a free key reaches the last 24 h only; days before the partitions start are never requested
    assert keys(revision_requests(TODAY, (0, 7, 30, 90), ["GR"], paid_tier=False)) == ["2024-06-29|GR", "2024-06-30|GR"]
    first = dt.date.fromisoformat(ELECTRICITY_MAPS_START_DATE)
    soon_after = first + dt.timedelta(days=3)
    assert keys(revision_requests(soon_after, (0, 90), ["GR"], paid_tier=True)) == [
        f"{soon_after - dt.timedelta(days=1)}|GR", f"{soon_after}|GR"
    ]


def test_the_lookback_is_a_setting_read_when_the_schedule_ticks(monkeypatch):
    monkeypatch.setenv("ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS", "0, 3")
    monkeypatch.setenv("ELECTRICITY_MAPS_PAID_TIER", "true")
    assert revision_lookback_days() == (0, 3)
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(2024, 6, 30, 4, 20, tzinfo=dt.timezone.utc))
        requests = SCHEDULE(context)
    assert keys(requests) == [f"{d}|{z}" for d in ("2024-06-26", "2024-06-27", "2024-06-29", "2024-06-30") for z in ("DE", "GR")]
    monkeypatch.setenv("ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS", "0,seven")
    with pytest.raises(ValueError, match="ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS must be comma-separated whole days"):
        revision_lookback_days()


def test_a_revised_value_is_kept_as_a_new_bronze_row_and_wins_in_silver_while_unchanged_days_only_move_fetched_at(
    api, lake_root, resources, instance, httpserver
):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    day = "2024-03-31"
    request = next(r for r in revision_requests(TODAY, (90,), ["GR"], paid_tier=True) if r.partition_key.keys_by_dimension["date"] == day)
    for kind in ("carbon-intensity", "power-breakdown"):
        api.past_range(kind, "GR", day)
    assert run(resources, instance, partition_key=request.partition_key, tags=request.tags).success
    first = read(lake_root, "silver/electricity_maps_energy")

    # three months later Electricity Maps has revised one hour of the carbon intensity
    httpserver.clear()
    rows = day_rows("carbon-intensity", "GR", day)
    revised = samples.iso_ms(hour("2024-06-29T01:00:00"))
    rows[10] = {**rows[10], "carbonIntensity": 222, "updatedAt": revised}
    api.past_range("carbon-intensity", "GR", day, rows=rows)
    api.past_range("power-breakdown", "GR", day)
    assert run(resources, instance, partition_key=request.partition_key, tags=request.tags).success

    carbon = read(lake_root, "bronze/electricity_maps_carbon_intensity")
    assert carbon.height == 2 and carbon["content_hash"].n_unique() == 2  # both revisions kept
    power = read(lake_root, "bronze/electricity_maps_power_breakdown")
    assert power.height == 1  # unchanged: the same row, fetched_at moved
    energy = read(lake_root, "silver/electricity_maps_energy")
    ten = energy.filter(pl.col("datetime") == hour(f"{day}T10:00:00")).row(0, named=True)
    assert ten["carbon_intensity_gco2_per_kwh"] == 222 and ten["updated_at"] == hour("2024-06-29T01:00:00")
    others = energy.filter(pl.col("datetime") != hour(f"{day}T10:00:00")).sort("datetime")
    before = first.filter(pl.col("datetime") != hour(f"{day}T10:00:00")).sort("datetime")
    assert others["carbon_intensity_gco2_per_kwh"].equals(before["carbon_intensity_gco2_per_kwh"])
    gold = read(lake_root, "gold/electricity_maps_ml_features")
    eleven = gold.filter(pl.col("datetime") == hour(f"{day}T11:00:00")).row(0, named=True)
    assert eleven["lag_carbon_intensity_gco2_per_kwh_1h"] == 222


# ------------------------------------------------------------------- gold recomputes only the days that changed
def test_after_the_revision_re_fetch_gold_is_recomputed_only_for_days_whose_silver_content_changed(
    api, lake_root, resources, instance, httpserver
):
    from dagster import Definitions, evaluate_automation_conditions, materialize

    from energy_assets.electricity_maps.assets import ASSETS
    from energy_assets.electricity_maps.checks import CHECKS
    from energy_assets.electricity_maps.definitions import BRONZE_AND_SILVER, GOLD, revision_schedule

    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    days = ("2024-03-30", "2024-03-31", "2024-04-01")
    key = {day: f"{day}|GR" for day in days}

    def serve(day, revised_hour=None):
        for kind in ("carbon-intensity", "power-breakdown"):
            rows = day_rows(kind, "GR", day)
            if revised_hour is not None and kind == "carbon-intensity":
                rows[revised_hour] = {**rows[revised_hour], "carbonIntensity": 222, "updatedAt": samples.iso_ms(hour("2024-06-29T01:00:00"))}
            api.past_range(kind, "GR", day, rows=rows)

    def materialise(day, selection=None):
        result = materialize(
            [*ASSETS, *CHECKS], resources=resources, instance=instance, raise_on_error=False,
            partition_key=MultiPartitionKey({"date": day, "zone": "GR"}), selection=selection,
        )  # fmt: skip
        assert result.success, day
        return result

    def evaluate(cursor):
        result = evaluate_automation_conditions(defs=definitions, instance=instance, asset_selection=GOLD, cursor=cursor)
        requested = sorted(str(pk) for r in result.results for pk in r.true_subset.expensively_compute_partition_keys())
        return requested, result.cursor

    # the schedule targets bronze and silver only; gold is left to the automation sensor
    definitions = Definitions(assets=ASSETS, resources=resources)
    schedule_job = revision_schedule.target.resolvable_to_job
    assert {k.to_user_string() for k in schedule_job.selection.resolve(definitions.resolve_asset_graph())} == {  # type: ignore[union-attr]
        "bronze/electricity_maps_carbon_intensity", "bronze/electricity_maps_power_breakdown",
        "silver/electricity_maps_energy", "silver/electricity_maps_exchanges", "silver/electricity_maps_quarantine",
    }  # fmt: skip
    for day in days:  # the days as first built: every asset in one run per day (the sensor and backfills do this)
        serve(day)
        materialise(day)
    requested, cursor = evaluate(None)
    assert requested == []  # the first evaluation requests nothing
    gold_before = read(lake_root, "gold/electricity_maps_ml_features")

    # the revision re-fetch of the first two days: nothing changed upstream
    for day in days[:2]:
        serve(day)
        materialise(day, BRONZE_AND_SILVER)
    requested, cursor = evaluate(cursor)
    assert requested == [], "an unchanged re-fetch must not recompute gold"

    # Electricity Maps revised one hour of the middle day: gold for that day and the next (lags, rolling means)
    httpserver.clear()
    serve(days[1], revised_hour=10)
    silver = materialise(days[1], BRONZE_AND_SILVER)
    versions = [m.materialization.tags.get("dagster/data_version") for m in silver.get_asset_materialization_events()
                if m.asset_key.to_user_string() == "silver/electricity_maps_energy"]  # fmt: skip
    requested, cursor = evaluate(cursor)
    assert requested == [key[days[1]], key[days[2]]], requested
    assert versions and versions[0] is not None

    for day in (days[1], days[2]):
        materialise(day, GOLD)
    requested, cursor = evaluate(cursor)
    assert requested == []  # handled: nothing more until the next change
    gold = read(lake_root, "gold/electricity_maps_ml_features")
    at = hour(f"{days[1]}T11:00:00")
    assert gold.filter(pl.col("datetime") == at)["lag_carbon_intensity_gco2_per_kwh_1h"].to_list() == [222]
    untouched = gold.filter(pl.col("date") == dt.date.fromisoformat(days[0])).sort("datetime")
    assert untouched.equals(gold_before.filter(pl.col("date") == dt.date.fromisoformat(days[0])).sort("datetime"))
