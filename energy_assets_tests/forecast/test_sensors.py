"""The archive sensor's run requests, and one live archive run against the loopback fake API."""

import datetime as dt

import polars as pl
from dagster import materialize

from energy_assets.forecast.assets import ARCHIVE_ASSETS
from energy_assets.forecast.sensors import archive_run_request
from energy_assets.lake.store import Lake
from energy_assets.neso.client import UTC, uk_today


def test_one_run_per_interval_slot_for_the_uk_day_of_issue():
    a = archive_run_request(dt.datetime(2024, 6, 11, 23, 10, tzinfo=UTC), 1800)
    b = archive_run_request(dt.datetime(2024, 6, 11, 23, 29, tzinfo=UTC), 1800)
    c = archive_run_request(dt.datetime(2024, 6, 11, 23, 31, tzinfo=UTC), 1800)
    assert a.run_key == b.run_key == "neso-forecast-2024-06-11T23:00Z" and c.run_key == "neso-forecast-2024-06-11T23:30Z"
    assert a.partition_key == "2024-06-12"  # 00:10 BST: the UK day of issue


def test_a_live_run_archives_the_forecast_as_fetched_now(neso, resources, instance):
    before = dt.datetime.now(UTC)
    today = uk_today(before).isoformat()
    assert materialize(ARCHIVE_ASSETS, partition_key=today, resources={**resources, "neso": neso}, instance=instance).success
    lake = Lake(str(resources["lake"].root_uri))
    bronze = lake.read("bronze/neso_forecast")
    assert bronze.height == 2 and bronze["problem"].is_null().all()
    archive = lake.read("silver/neso_forecast_archive")
    # each answer's own fetch time (national, then regional), never earlier than the fetch
    national, regional = sorted(archive["issued_at"].unique().to_list())
    assert before <= national <= regional <= dt.datetime.now(UTC)
    assert archive.filter(pl.col("region_id") == 0)["issued_at"].unique().to_list() == [national]
    assert archive.filter(pl.col("lead_bucket") == 0)["lead_minutes"].max() <= 0
    assert sorted(archive["region_id"].unique().to_list()) == list(range(19))
