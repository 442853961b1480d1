"""The smart-meter database is not a daily fact: one table per database table, versioned by content (a new Delta
version only when the delivered rows change), joined as of each reading's day; active agreements are one set as
of one chosen date; when bucketed, a new database version does not re-run every day of silver."""

import datetime as dt

import polars as pl
import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    Definitions,
    MultiPartitionKey,
    evaluate_automation_conditions,
    materialize,
)
from dagster_duckdb import DuckDBResource
from deltalake import DeltaTable

from energy_assets.lake.resource import LakeResource
from energy_assets.smart_meter import assets as sm_assets
from energy_assets.smart_meter.source import SmartMeterSource

from .conftest import PRODUCTS, write_db
from .test_assets import meta, run, small_drop, table

AGREEMENTS = "raw/agreements"


def delta_version(resources, name: str) -> int:
    return DeltaTable(f"{resources['lake'].root_uri}/{name}").version()


def data_version(result, key: str) -> str:
    (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    return event.materialization.tags["dagster/data_version"]


def provenance(result, tag: str) -> str:
    """The tag of silver's materialisations in the run (one per day of its range): one value for all of them."""
    (value,) = {m.materialization.tags[tag] for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == "silver/smart_meter_readings"}
    return value


def product_of(resources, meterpoint: str, day: dt.date) -> list[str]:
    silver = table(resources, "silver", "smart_meter_readings")
    return silver.filter((pl.col("meterpoint_id") == meterpoint) & (pl.col("settlement_date") == day))["product_id"].unique().to_list()


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def test_the_database_is_one_version_until_it_changes_and_silver_attributes_with_the_current_one(drop, sm_resources, instance):
    small_drop(drop)
    first = run(sm_resources, instance, "2021-03-26", "2021-03-27")
    agreements = table(sm_resources, "raw", "agreements")
    assert agreements.height == 3 and "snapshot_date" not in agreements.columns  # one copy, not one per day
    assert table(sm_resources, "raw", "meterpoints").height == 3 and table(sm_resources, "raw", "products").height == 3
    assert meta(first, AGREEMENTS)["content_changed"] == 1
    version, dv = delta_version(sm_resources, AGREEMENTS), data_version(first, AGREEMENTS)
    assert dv == meta(first, AGREEMENTS)["content_version"]
    assert product_of(sm_resources, "aaaaaaaaaa", dt.date(2021, 3, 26)) == ["FIX-A"]

    # another day, the same database: no new Delta version, the same data version
    second = run(sm_resources, instance, "2021-03-27")
    assert meta(second, AGREEMENTS)["content_changed"] == 0
    assert (delta_version(sm_resources, AGREEMENTS), data_version(second, AGREEMENTS)) == (version, dv)
    assert meta(second, "presentation/active_agreements")["content_changed"] == 0

    # the utility corrects the switch: AGILE from 2021-03-26. One new version; re-running the day re-attributes it
    write_db(
        drop["db"],
        agreements=[
            (1, "2020-01-01", "2021-03-26", "FIX-A", "aaaaaaaaaa", "acc1"),
            (2, "2021-03-26", None, "AGILE", "aaaaaaaaaa", "acc1"),
            (3, "2020-01-01", None, "FIX-B", "bbbbbbbbbb", "acc2"),
        ],
        products=PRODUCTS,
        meterpoints=[("London", "aaaaaaaaaa"), ("Yorkshire", "bbbbbbbbbb"), ("London", "cccccccccc")],
    )
    third = run(sm_resources, instance, "2021-03-26")
    assert meta(third, AGREEMENTS)["content_changed"] == 1
    assert delta_version(sm_resources, AGREEMENTS) == version + 1
    assert data_version(third, AGREEMENTS) != dv
    assert meta(third, "raw/products")["content_changed"] == 0  # only the table that changed gets a version
    assert product_of(sm_resources, "aaaaaaaaaa", dt.date(2021, 3, 26)) == ["AGILE"]
    # silver's provenance names the database version it read (Dagster records its inputs' data versions)
    read = "dagster/input_data_version/raw/agreements"
    assert provenance(third, read) == data_version(third, AGREEMENTS) != provenance(first, read)
    # the Delta history is the database's history
    before = pl.read_delta(f"{sm_resources['lake'].root_uri}/{AGREEMENTS}", version=version)
    assert before.sort("agreement_id").equals(agreements.sort("agreement_id"))
    # agreement 1, active on 2021-01-01, now ends a day earlier: a new version of active agreements too
    assert meta(third, "presentation/active_agreements")["content_changed"] == 1
    assert table(sm_resources, "presentation", "active_agreements").filter(pl.col("agreement_id") == 1)["agreement_valid_to"].to_list() == [dt.date(2021, 3, 26)]


def test_active_agreements_are_one_set_as_of_the_date_the_run_chooses(drop, sm_resources, instance):
    small_drop(drop)
    run(sm_resources, instance, "2021-03-26")
    assert table(sm_resources, "presentation", "active_agreements")["agreement_id"].sort().to_list() == [1, 3]  # as of 2021-01-01

    def active_as_of(as_of: str):
        return materialize(
            sm_assets.ASSETS, selection=[sm_assets.ACTIVE_AGREEMENTS], resources=sm_resources, instance=instance, raise_on_error=False,
            run_config={"ops": {"smart_meter_active_agreements": {"config": {"as_of_date": as_of}}}},
        )  # fmt: skip

    assert active_as_of("2021-03-28").success
    active = table(sm_resources, "presentation", "active_agreements")
    assert active["agreement_id"].sort().to_list() == [2, 3]  # the switch on 2021-03-27 is in force
    assert active["as_of_date"].unique().to_list() == [dt.date(2021, 3, 28)]
    failed = active_as_of("28/03/2021")
    assert not failed.success
    (failure,) = failed.get_step_failure_events()
    error = failure.event_specific_data.error
    assert "as_of_date must be YYYY-MM-DD, not '28/03/2021'" in (error.cause or error).message
    assert table(sm_resources, "presentation", "active_agreements").equals(active)  # a failed run changes nothing


def test_bucketed_silver_follows_new_readings_and_waits_for_the_database_but_a_new_database_version_alone_reruns_nothing(tmp_path):
    defs = Definitions(
        assets=sm_assets.build_assets(3),
        resources={
            "smart_meter": SmartMeterSource(readings_dir=str(tmp_path), db_path=str(tmp_path / "db")),
            "lake": LakeResource(root_uri=str(tmp_path)),
            "smart_meter_duckdb": DuckDBResource(database=":memory:"),
        },
    )
    key = MultiPartitionKey({"date": "2021-03-26", "bucket": "1"})

    def materialized(asset: AssetKey, partition: str | None = None) -> None:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=asset, partition=partition))

    def silver_requested(cursor):
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        return sorted(result.get_requested_partitions(sm_assets.SILVER_READINGS)), result.cursor

    with DagsterInstance.ephemeral() as instance:
        _, cursor = silver_requested(None)
        for raw in (sm_assets.RAW_READINGS, sm_assets.INGESTION_LOG):
            materialized(raw, str(key))
        requested, cursor = silver_requested(cursor)
        assert requested == []  # the database is missing: silver waits for it
        for db in sm_assets.DATABASE:
            materialized(db)
        requested, cursor = silver_requested(cursor)
        assert requested == [str(key)]  # the readings of (day, bucket) changed and every input exists
        for silver in (sm_assets.SILVER_READINGS, sm_assets.QUARANTINE):
            materialized(silver, str(key))
        requested, cursor = silver_requested(cursor)
        assert requested == []
        # a new version of the database alone: not every day of silver again
        for db in sm_assets.DATABASE:
            materialized(db)
        requested, cursor = silver_requested(cursor)
        assert requested == []
        # new readings for the day: silver again
        materialized(sm_assets.RAW_READINGS, str(key))
        requested, cursor = silver_requested(cursor)
        assert requested == [str(key)]
