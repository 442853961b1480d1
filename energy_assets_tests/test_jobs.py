"""The derived jobs: one per partitioning, and a checks job only where there are checks."""

import polars as pl
from dagster import AssetSelection, Definitions, asset, asset_check

from energy_assets.definitions import defs
from energy_assets.jobs import build_jobs
from energy_assets.partitions import uk_settlement_days, utc_day_by_zone


def test_every_checks_job_of_the_code_location_holds_checks_and_static_has_none():
    graph = defs.resolve_asset_graph()
    jobs = {job.name: job for job in defs.resolve_all_job_defs()}
    assert {"uk_days_job", "electricity_maps_job", "static_job", "uk_days_checks_job", "electricity_maps_checks_job"} <= set(jobs)
    assert "static_checks_job" not in jobs  # no unpartitioned asset has a check
    for name, pdef in (("uk_days_checks_job", uk_settlement_days), ("electricity_maps_checks_job", utc_day_by_zone)):
        checks = jobs[name].asset_layer.asset_graph.asset_check_keys
        expected = {k for k in graph.asset_check_keys if graph.get(k.asset_key).partitions_def == pdef}
        assert checks == expected and checks, name


@asset
def lonely() -> pl.DataFrame:
    return pl.DataFrame({"x": [1]})


@asset(partitions_def=uk_settlement_days, metadata={"partition_expr": "settlement_date"})
def daily() -> pl.DataFrame:
    return pl.DataFrame({"settlement_date": []})


@asset_check(asset=lonely)
def lonely_has_rows(lonely: pl.DataFrame):
    raise AssertionError("never run here")


@asset
def reference() -> pl.DataFrame:
    return pl.DataFrame({"x": [1]})


@asset(deps=[daily])
def summary() -> pl.DataFrame:
    return pl.DataFrame({"x": [1]})


@asset(partitions_def=uk_settlement_days, metadata={"partition_expr": "settlement_date"})
def daily_reading(reference: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"settlement_date": []})


@asset(partitions_def=uk_settlement_days, metadata={"partition_expr": "settlement_date"})
def daily_after_summary(summary: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"settlement_date": []})


def test_a_partitioned_job_loads_the_reference_tables_its_assets_read():
    assets = [lonely, daily, reference, summary, daily_reading, daily_after_summary]
    jobs = {job.name: job for job in build_jobs(assets)}
    selected = jobs["uk_days_job"].selection.resolve(Definitions(assets=assets).resolve_asset_graph())
    # `reference` is read by a daily asset and has nothing partitioned upstream; `summary` is fed by a partitioned
    # asset (it belongs after the days, not in them); `lonely` is read by nothing partitioned
    assert selected == {daily.key, daily_reading.key, daily_after_summary.key, reference.key}
    assert "with the reference tables they read: reference" in jobs["uk_days_job"].description
    # in the code location: the smart-meter database, not active agreements (only the serving file reads it)
    uk = {k.to_user_string() for k in defs.get_job_def("uk_days_job").asset_layer.executable_asset_keys}
    assert {"raw/agreements", "raw/products", "raw/meterpoints"} <= uk and "presentation/active_agreements" not in uk


def test_a_checks_job_comes_with_the_checks_given():
    without = {job.name for job in build_jobs([lonely, daily])}
    assert without == {"static_job", "uk_days_job"}
    with_checks = {job.name: job for job in build_jobs([lonely, daily], [lonely_has_rows])}
    assert set(with_checks) == {"static_job", "uk_days_job", "static_checks_job"}
    assert with_checks["static_checks_job"].selection == AssetSelection.checks_for_assets(lonely.key)
