from dagster import AssetKey

from energy_assets.definitions import defs
from energy_assets.lake.store import LAYERS

SERVING = AssetKey(["serving", "duckdb_database"])


def test_the_serving_database_depends_on_every_lake_table_of_the_code_location():
    graph = defs.resolve_asset_graph()
    lake_tables = {k for k in graph.get_all_asset_keys() if len(k.path) == 2 and k.path[0] in LAYERS}
    assert {"gold/smart_meter_carbon_footprint", "presentation/carbon_per_product_per_day", "silver/neso_regional_intensity"} <= {
        k.to_user_string() for k in lake_tables
    }
    # fails when a domain's line is added after the serving line in energy_assets/definitions.py
    assert set(graph.get(SERVING).parent_keys) == lake_tables
    assert graph.get(SERVING).partitions_def is None


def test_the_serving_asset_reads_the_lake_through_the_shared_lake_resource():
    serving = defs.resolve_assets_def(SERVING)
    assert {"serving_duckdb", "lake"} <= serving.required_resource_keys
    assert "serving_lake" not in defs.resources


def test_automation_sensors_cover_the_carbon_and_serving_assets_and_run_by_default():
    from dagster import DefaultSensorStatus

    sensors = {s.name: s for s in defs.resolve_all_sensor_defs()} if hasattr(defs, "resolve_all_sensor_defs") else {s.name: s for s in defs.sensors}
    graph = defs.resolve_asset_graph()
    carbon = sensors["carbon_automation"]
    serving = sensors["serving_automation"]
    assert carbon.default_status == serving.default_status == DefaultSensorStatus.RUNNING
    assert carbon.asset_selection.resolve(graph) == {
        AssetKey(["gold", "smart_meter_carbon_footprint"]),
        AssetKey(["presentation", "carbon_per_product_per_day"]),
        AssetKey(["presentation", "carbon_per_region_per_day"]),
    }
    assert serving.asset_selection.resolve(graph) == {SERVING}
    electricity_maps = sensors["electricity_maps_automation"]  # gold after the revision re-fetch (bronze + silver)
    assert electricity_maps.default_status == DefaultSensorStatus.RUNNING
    assert electricity_maps.asset_selection.resolve(graph) == {AssetKey(["gold", "electricity_maps_ml_features"])}
