"""The derived jobs: one per partitioning, and a checks job only where there are checks."""

import polars as pl
from dagster import AssetSelection, asset, asset_check

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


def test_a_checks_job_comes_with_the_checks_given():
    without = {job.name for job in build_jobs([lonely, daily])}
    assert without == {"static_job", "uk_days_job"}
    with_checks = {job.name: job for job in build_jobs([lonely, daily], [lonely_has_rows])}
    assert set(with_checks) == {"static_job", "uk_days_job", "static_checks_job"}
    assert with_checks["static_checks_job"].selection == AssetSelection.checks_for_assets(lonely.key)
