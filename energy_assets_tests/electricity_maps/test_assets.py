"""Materialising the real assets with a real Dagster instance, a Delta lake in tmp and the loopback API."""

import datetime as dt
import json

import polars as pl
import pytest
from dagster import (
    DailyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    materialize,
)
from deltalake import DeltaTable

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.http import HttpSession
from energy_assets.electricity_maps.assets import build_assets
from energy_assets.electricity_maps.checks import build_checks
from energy_assets.range_checks import is_range_copy
from energy_assets_tests.electricity_maps.conftest import API_KEY, day_rows, em_resource, hour

TWO_ZONES = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1),
        "zone": StaticPartitionsDefinition(["DE", "GR"]),
    }
)
ASSETS = build_assets(TWO_ZONES)
CHECKS = build_checks(TWO_ZONES)


def day_range(zone: str, start: str = "2024-03-05", end: str = "2024-03-06") -> dict:
    """Tags of a single run over days of one zone (the shared IO manager takes one key range per run)."""
    return {"dagster/asset_partition_range_start": f"{start}|{zone}", "dagster/asset_partition_range_end": f"{end}|{zone}"}
TABLES = [
    "bronze/electricity_maps_carbon_intensity",
    "bronze/electricity_maps_power_breakdown",
    "silver/electricity_maps_energy",
    "silver/electricity_maps_exchanges",
    "silver/electricity_maps_quarantine",
    "gold/electricity_maps_ml_features",
]


def run(resources, instance, **kwargs):
    return materialize([*ASSETS, *CHECKS], resources=resources, instance=instance, raise_on_error=False, **kwargs)


def read(lake_root, table) -> pl.DataFrame:
    return pl.read_delta(str(lake_root / table))


def serve_days(api, zones=("DE", "GR"), start="2024-03-05", days=2, overrides=None):
    for zone in zones:
        for kind in ("carbon-intensity", "power-breakdown"):
            rows = [r for i in range(days) for r in day_rows(kind, zone, (dt.date.fromisoformat(start) + dt.timedelta(days=i)).isoformat())]
            for when, change in (overrides or {}).get((zone, kind), {}).items():
                rows = [({**r, **change} if r["datetime"] == samples.iso_ms(hour(when)) else r) for r in rows]
            api.past_range(kind, zone, start, rows=rows, days=days)


def assert_no_key_anywhere(lake_root, instance, *results):
    for table in TABLES:
        path = lake_root / table
        if path.exists():
            frame = pl.read_delta(str(path))
            text = frame.select(pl.all().cast(pl.String)).write_csv()
            assert API_KEY not in text, table
    for result in results:
        for event in instance.all_logs(result.run_id):
            assert API_KEY not in str(event), event.dagster_event_type
        assert API_KEY not in json.dumps(instance.get_run_by_id(result.run_id).run_config, default=str)


def test_single_runs_over_two_days_of_two_zones_build_every_layer_and_pass_every_check(api, lake_root, resources, instance, httpserver):
    serve_days(api)
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    results = [run(resources, instance, tags=day_range(zone)) for zone in ("DE", "GR")]
    for zone, result in zip(("DE", "GR"), results):
        assert result.success
        evaluations = [e for e in result.get_asset_check_evaluations() if not is_range_copy(e)]
        assert len(evaluations) == 9 and all(e.passed for e in evaluations)
        # the range run records each check for each of its two (day, zone) partitions too (see range_checks)
        copies = [e for e in result.get_asset_check_evaluations() if is_range_copy(e)]
        assert len(copies) == 18 and all(e.passed for e in copies)
        assert sorted({str(e.partition) for e in copies}) == [f"2024-03-05|{zone}", f"2024-03-06|{zone}"]
    # one past-range request per zone and kind for the contiguous two days
    assert len(httpserver.log) == 4
    bronze = read(lake_root, "bronze/electricity_maps_power_breakdown")
    assert bronze.height == 4 and sorted(bronze["zone"].unique()) == ["DE", "GR"]
    energy = read(lake_root, "silver/electricity_maps_energy")
    assert energy.group_by("zone").len().sort("zone").rows() == [("DE", 48), ("GR", 48)]
    gold = read(lake_root, "gold/electricity_maps_ml_features")
    for zone in ("DE", "GR"):
        first_of_day_two = gold.filter((pl.col("zone") == zone) & (pl.col("datetime") == hour("2024-03-06T00:00:00"))).row(0, named=True)
        last_of_day_one = energy.filter((pl.col("zone") == zone) & (pl.col("datetime") == hour("2024-03-05T23:00:00"))).row(0, named=True)
        assert first_of_day_two["lag_carbon_intensity_gco2_per_kwh_1h"] == last_of_day_one["carbon_intensity_gco2_per_kwh"]
    # a single-partition run of gold alone still sees the previous day of the same zone
    alone = materialize(
        [*ASSETS, *CHECKS], selection=[ASSETS[3]], resources=resources, instance=instance,
        partition_key=MultiPartitionKey({"date": "2024-03-06", "zone": "GR"}),
    )  # fmt: skip
    assert alone.success
    meta = alone.asset_materializations_for_node("gold__electricity_maps_ml_features")[0].metadata
    assert meta["input_hours_incl_previous_day"].value == 48
    regold = read(lake_root, "gold/electricity_maps_ml_features")
    assert regold.height == 96 and regold.sort("zone", "datetime").equals(gold.sort("zone", "datetime"))
    assert_no_key_anywhere(lake_root, instance, *results, alone)


def test_rerunning_is_idempotent_and_a_revision_adds_a_bronze_row_and_wins_in_silver(api, lake_root, resources, instance, httpserver):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    gr = MultiPartitionKey({"date": "2024-03-06", "zone": "GR"})
    serve_days(api, zones=("GR",), start="2024-03-06", days=1)
    assert run(resources, instance, partition_key=gr).success
    first = {t: read(lake_root, t) for t in TABLES[:4]}
    assert run(resources, instance, partition_key=gr).success
    when = ["fetched_at", "carbon_fetched_at", "power_fetched_at"]  # an identical refetch only moves these
    for table, frame in first.items():
        again = read(lake_root, table)
        drop = [c for c in when if c in frame.columns]
        keys = [c for c in frame.columns if c not in drop][:3]
        assert again.drop(drop).sort(keys).equals(frame.drop(drop).sort(keys)), table
    for table in TABLES[:2]:
        assert read(lake_root, table)["fetched_at"][0] > first[table]["fetched_at"][0]  # the newest fetch again

    httpserver.clear()
    revised_at = samples.iso_ms(hour("2024-03-07T06:00:00"))
    serve_days(
        api, zones=("GR",), start="2024-03-06", days=1,
        overrides={("GR", "carbon-intensity"): {"2024-03-06T10:00:00": {"carbonIntensity": 444, "updatedAt": revised_at}}},
    )  # fmt: skip
    assert run(resources, instance, partition_key=gr).success
    assert read(lake_root, "bronze/electricity_maps_carbon_intensity").height == 2  # the revision is a new response
    assert read(lake_root, "bronze/electricity_maps_power_breakdown").height == 1  # identical power: a no-op
    energy = read(lake_root, "silver/electricity_maps_energy")
    assert energy.height == 24
    assert energy.filter(pl.col("datetime") == hour("2024-03-06T10:00:00"))["carbon_intensity_gco2_per_kwh"].item() == 444
    unchanged = energy.filter(pl.col("datetime") != hour("2024-03-06T10:00:00")).sort("datetime")
    before = first["silver/electricity_maps_energy"].filter(pl.col("datetime") != hour("2024-03-06T10:00:00")).sort("datetime")
    assert unchanged["carbon_intensity_gco2_per_kwh"].equals(before["carbon_intensity_gco2_per_kwh"])


def test_without_a_key_the_assets_fail_saying_how_to_set_one_and_write_nothing(api, lake_root, resources, instance, httpserver):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"], key="")}
    result = run(resources, instance, partition_key=MultiPartitionKey({"date": "2024-03-06", "zone": "GR"}))
    assert not result.success
    errors = " ".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "ELECTRICITY_MAPS_API_KEY" in errors and "export" in errors
    assert len(httpserver.log) == 0
    assert not any((lake_root / t).exists() for t in TABLES)


def test_an_auth_failure_names_the_problem_leaves_tables_unchanged_and_never_shows_the_key(api, lake_root, resources, instance):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    gr = MultiPartitionKey({"date": "2024-03-06", "zone": "GR"})
    serve_days(api, zones=("GR",), start="2024-03-06", days=1)
    assert run(resources, instance, partition_key=gr).success
    version = DeltaTable(str(lake_root / "bronze/electricity_maps_carbon_intensity")).version()
    query = {"zone": "GR", "start": "2024-03-05T00:00:00Z", "end": "2024-03-06T00:00:00Z"}
    api.error("/carbon-intensity/past-range", query, 401, {"error": "Invalid auth-token", "message": f"bad token {API_KEY}"})
    failed = run(resources, instance, partition_key=MultiPartitionKey({"date": "2024-03-05", "zone": "GR"}))
    assert not failed.success
    errors = " ".join(str(e.event_specific_data.error) for e in failed.get_step_failure_events())
    assert "HTTP 401" in errors and "was rejected" in errors and "InvalidApiKeyError" in errors
    assert DeltaTable(str(lake_root / "bronze/electricity_maps_carbon_intensity")).version() == version
    assert_no_key_anywhere(lake_root, instance, failed)


def test_free_tier_refuses_an_old_partition_with_an_actionable_error(api, resources, instance, httpserver):
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"], paid_tier=False)}
    result = run(resources, instance, partition_key=MultiPartitionKey({"date": "2024-03-05", "zone": "GR"}))
    assert not result.success
    errors = " ".join(str(e.event_specific_data.error) for e in result.get_step_failure_events())
    assert "free tier" in errors and "ELECTRICITY_MAPS_PAID_TIER=true" in errors
    assert len(httpserver.log) == 0


def test_free_tier_today_uses_history(api, lake_root, resources, instance, httpserver):
    now = dt.datetime.now(dt.timezone.utc)
    today = now.date().isoformat()
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=23)
    hours = [start + dt.timedelta(hours=i) for i in range(24)]
    for kind in ("carbon-intensity", "power-breakdown"):
        api.history(kind, "GR", [samples.row(kind, "GR", h, estimated=h == hours[-1]) for h in hours])
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"], paid_tier=False)}
    result = run(resources, instance, partition_key=MultiPartitionKey({"date": today, "zone": "GR"}))
    assert result.success
    assert {r.path for r, _ in httpserver.log} == {"/v3/carbon-intensity/history", "/v3/power-breakdown/history"}
    energy = read(lake_root, "silver/electricity_maps_energy")
    expected = [h for h in hours if h.date() == now.date()]
    assert energy["datetime"].to_list() == expected
    assert energy["is_estimated"].to_list()[-1] is True
    bronze = read(lake_root, "bronze/electricity_maps_carbon_intensity")
    assert bronze["request_url"].to_list() == ["/carbon-intensity/history?zone=GR"]


@pytest.mark.slow
def test_replay_runs_the_sample_days_in_one_run(lake_root, instance, fast_http):
    from energy_assets.electricity_maps.assets import ASSETS as REAL_ASSETS
    from energy_assets.electricity_maps.checks import CHECKS as REAL_CHECKS
    from energy_assets.electricity_maps.client import ElectricityMapsResource
    from energy_assets.lake.io_manager import DeltaLakeIOManager
    from energy_assets.lake.resource import LakeResource

    resources = {
        "io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake_root))),
        "http": HttpSession(source_mode="replay", min_interval_s=0.0),
        "electricity_maps": ElectricityMapsResource(http=HttpSession(source_mode="replay", min_interval_s=0.0), api_key=""),
    }
    tags = {"dagster/asset_partition_range_start": "2021-03-26|GR", "dagster/asset_partition_range_end": "2021-03-29|GR"}
    result = materialize([*REAL_ASSETS, *REAL_CHECKS], resources=resources, instance=instance, tags=tags)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    gold = pl.read_delta(str(lake_root / "gold/electricity_maps_ml_features"))  # the one call a data scientist needs
    assert gold.height == 96 and gold["datetime"].n_unique() == 96
    assert gold.sort("datetime")["datetime"].diff().drop_nulls().unique().to_list() == [dt.timedelta(hours=1)]


def test_one_run_over_days_of_several_zones(api, lake_root, resources, instance):
    serve_days(api)
    resources = {**resources, "electricity_maps": em_resource(api, resources["http"])}
    tags = {"dagster/asset_partition_range_start": "2024-03-05|DE", "dagster/asset_partition_range_end": "2024-03-06|GR"}
    result = run(resources, instance, tags=tags)
    assert result.success
    silver = read(lake_root, "silver/electricity_maps_energy")
    assert silver.height == 96
    assert silver.group_by("zone").len().sort("zone").rows() == [("DE", 48), ("GR", 48)]
    # each (day, zone) materialisation names only the request(s) of its own zone, and counts its own rows
    bronze = {str(m.partition): m.metadata for m in result.asset_materializations_for_node("bronze__electricity_maps_carbon_intensity")}
    assert sorted(bronze) == ["2024-03-05|DE", "2024-03-05|GR", "2024-03-06|DE", "2024-03-06|GR"]
    for key, meta in bronze.items():
        urls = meta["request_urls"].data
        zone = key.split("|")[1]
        assert urls and all(f"zone={zone}" in u for u in urls), (key, urls)
        assert meta["dagster/partition_row_count"].value == 1
