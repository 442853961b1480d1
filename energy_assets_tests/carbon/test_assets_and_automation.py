"""The carbon assets in a real Dagster instance over a real Delta lake, and their automation condition."""

import datetime as dt

import polars as pl
from dagster import (
    AssetKey,
    AutomationCondition,
    BackfillPolicy,
    DagsterInstance,
    Definitions,
    asset,
    evaluate_automation_conditions,
    materialize,
)

from energy_assets.carbon.assets import CARBON_ASSETS
from energy_assets.carbon.checks import CARBON_CHECKS
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.partitions import uk_settlement_days
from energy_assets_tests.carbon.factories import day_of_data

DAYS = (dt.date(2021, 3, 27), dt.date(2021, 3, 28))
FOOTPRINT = AssetKey(["gold", "smart_meter_carbon_footprint"])
PER_PRODUCT = AssetKey(["presentation", "carbon_per_product_per_day"])
PER_REGION = AssetKey(["presentation", "carbon_per_region_per_day"])


def upstream_assets(state: dict):
    """Upstream silver tables with the real keys, serving the frames in `state` (day -> (readings, national, regional))."""
    common = dict(partitions_def=uk_settlement_days, backfill_policy=BackfillPolicy.single_run(), metadata={"partition_expr": "settlement_date"})

    def frames(context, i):
        window = context.partition_time_window
        days = [d for d in state if window.start.date() <= d < window.end.date()]
        return pl.concat([state[d][i] for d in days], how="diagonal_relaxed")

    @asset(key=["silver", "smart_meter_readings"], **common)
    def readings(context):
        return frames(context, 0)

    @asset(key=["silver", "neso_carbon_intensity"], **common)
    def national(context):
        return frames(context, 1)

    @asset(key=["silver", "neso_regional_intensity"], **common)
    def regional(context):
        return frames(context, 2)

    return [readings, national, regional]


def make_state(kwh: float = 0.5):
    return {d: day_of_data(d, {"m1": "London", "m2": "Yorkshire", "m3": "Atlantis"}, kwh=kwh) for d in DAYS}


def read(root, layer, name):
    return pl.read_delta(str(root / layer / name))


def test_footprint_and_summaries_for_a_clock_change_day_with_checks_passing_and_idempotent(lake_root):
    state = make_state()
    assets = upstream_assets(state) + CARBON_ASSETS
    io = {"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake_root)))}
    instance = DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": "2021-03-27", "dagster/asset_partition_range_end": "2021-03-28"}
    for _ in range(2):  # the second run must give the same tables
        result = materialize(assets + CARBON_CHECKS, resources=io, instance=instance, tags=tags)
        assert result.success
    evaluations = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert evaluations[("smart_meter_carbon_footprint", "emissions_arithmetic")].passed
    assert evaluations[("carbon_per_product_per_day", "reconciles_with_footprint")].passed
    regions = evaluations[("smart_meter_carbon_footprint", "regions_mapped")]
    assert not regions.passed and "Atlantis" in regions.metadata["found"].value  # reported, not hidden

    fp = read(lake_root, "gold", "smart_meter_carbon_footprint")
    per_day = fp.group_by("settlement_date").len().sort("settlement_date")
    assert per_day.to_dicts() == [{"settlement_date": DAYS[0], "len": 3 * 48}, {"settlement_date": DAYS[1], "len": 3 * 46}]
    by_source = dict(fp.group_by("intensity_source").len().iter_rows())
    # London has a regional forecast; Yorkshire maps but has no regional row here; Atlantis is unmapped
    assert by_source == {"regional_forecast": 94, "national_actual": 188}
    product = read(lake_root, "presentation", "carbon_per_product_per_day").sort("date")
    assert product["total_consumption_kwh"].to_list() == [3 * 48 * 0.5, 3 * 46 * 0.5]
    # 1/3 of the kWh at 100 g (regional), 2/3 at 200 g (national actual)
    assert [round(v, 6) for v in product["avg_intensity_gco2_per_kwh"].to_list()] == [round(500 / 3, 6)] * 2
    assert [round(v, 6) for v in product["low_carbon_consumption_fraction"].to_list()] == [round(1 / 3, 6)] * 2
    region = read(lake_root, "presentation", "carbon_per_region_per_day")
    assert region.height == 6


def test_eager_any_day_refreshes_a_past_day_when_either_side_changes(lake_root):
    state = make_state()
    assets = upstream_assets(state) + CARBON_ASSETS
    io = {"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake_root)))}
    defs = Definitions(assets=assets, resources=io)
    instance = DagsterInstance.ephemeral()
    tags = {"dagster/asset_partition_range_start": "2021-03-27", "dagster/asset_partition_range_end": "2021-03-28"}
    assert materialize(assets, resources=io, instance=instance, tags=tags).success

    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # everything is up to date; the first evaluation never backfills history
    cursor = first.cursor

    # a late smart-meter file changes a past day (2021-03-27): only that day's footprint and summaries
    state[DAYS[0]] = day_of_data(DAYS[0], {"m1": "London", "m2": "Yorkshire", "m3": "Atlantis"}, kwh=0.75)
    assert materialize(assets[:1], resources=io, instance=instance, partition_key="2021-03-27").success
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requested = {key: second.get_requested_partitions(key) for key in (FOOTPRINT, PER_PRODUCT, PER_REGION)}
    assert requested == {FOOTPRINT: {"2021-03-27"}, PER_PRODUCT: {"2021-03-27"}, PER_REGION: {"2021-03-27"}}

    # plain eager() would not have refreshed that past day: it only looks at the latest partition (today)
    @asset(
        key=FOOTPRINT,
        deps=[a.key for a in upstream_assets(state)],
        partitions_def=uk_settlement_days,
        automation_condition=AutomationCondition.eager(),
    )
    def footprint_with_plain_eager():
        raise AssertionError("never run: only its automation condition is evaluated")

    plain = Definitions(assets=upstream_assets(state) + [footprint_with_plain_eager], resources=io)
    plain_eval = evaluate_automation_conditions(defs=plain, instance=instance, cursor=cursor)
    assert plain_eval.get_requested_partitions(FOOTPRINT) == set()

    # once refreshed, nothing more is requested; then a NESO revision of the other day triggers that day
    assert materialize(assets, resources=io, instance=instance, partition_key="2021-03-27", selection=CARBON_ASSETS).success
    third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.get_requested_partitions(FOOTPRINT) == set()
    assert materialize(assets[1:2], resources=io, instance=instance, partition_key="2021-03-28").success
    fourth = evaluate_automation_conditions(defs=defs, instance=instance, cursor=third.cursor)
    assert fourth.get_requested_partitions(FOOTPRINT) == {"2021-03-28"}
