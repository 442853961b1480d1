import datetime as dt

import polars as pl
import pytest

from energy_assets.dashboard import data
from energy_assets.lake.store import Lake
from energy_assets_tests.dashboard import lake as test_lake


@pytest.fixture
def lake(lake_root):
    test_lake.build(lake_root)
    return lake_root


def test_national_latest_and_recent_difference(lake):
    intensity = data.read_table(Lake(str(lake)), "silver/neso_carbon_intensity")
    now = data.national_latest(intensity)
    assert now["latest"]["forecast_gco2_per_kwh"] == 250 and now["latest"]["actual_gco2_per_kwh"] is None
    assert now["settled"]["actual_gco2_per_kwh"] == 187
    recent = data.national_recent(intensity, window=dt.timedelta(hours=1))
    assert recent["actual_minus_forecast_gco2_per_kwh"].to_list() == [7, None]


def test_mix_and_zones(lake):
    mix = data.read_table(Lake(str(lake)), "silver/neso_generation_mix")
    latest = data.mix_latest(mix)
    assert latest["fuel"].to_list() == ["wind", "gas", "nuclear", "solar"]
    assert data.mix_recent_wide(mix).columns == ["period_start", "wind", "gas", "nuclear", "solar"]
    zones = data.zones_recent(data.read_table(Lake(str(lake)), "silver/electricity_maps_energy"))
    assert list(zones) == ["DE", "GR"]
    assert zones["GR"]["carbon_intensity_gco2_per_kwh"].to_list() == [291.0, 301.0, 311.0, 321.0]


def test_footprint_totals_weight_by_consumption(lake):
    per_product = data.read_table(Lake(str(lake)), "presentation/carbon_per_product_per_day")
    totals = data.footprint_totals(per_product)
    assert totals["total_consumption_kwh"] == pytest.approx(46.0)
    assert totals["avg_intensity_gco2_per_kwh"] == pytest.approx(150.0)
    by_region = data.per_region_totals(data.read_table(Lake(str(lake)), "presentation/carbon_per_region_per_day"))
    assert by_region["region"].to_list() == ["Yorkshire", "London"]
    assert by_region["avg_intensity_gco2_per_kwh"].to_list() == pytest.approx([200.0, 100.0])


def test_freshness_lists_every_table_with_version_rows_and_newest_data(lake):
    pl.DataFrame({"x": [1]}).write_delta(str(lake / "silver" / "neso_generation_mix"), mode="overwrite", delta_write_options={"schema_mode": "overwrite"})
    fresh = data.freshness(Lake(str(lake)), now=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    rows = {r["table"]: r for r in fresh.iter_rows(named=True)}
    assert set(rows) == {
        "silver/neso_carbon_intensity", "silver/neso_generation_mix", "silver/electricity_maps_energy", "silver/neso_regional_intensity",
        "gold/smart_meter_carbon_footprint", "presentation/carbon_per_product_per_day", "presentation/carbon_per_region_per_day",
    }  # fmt: skip
    assert rows["silver/neso_carbon_intensity"]["newest_data"] == "2021-03-28 12:30 UTC"
    assert (rows["silver/neso_generation_mix"]["delta_version"], rows["silver/neso_generation_mix"]["rows"]) == (1, 1)
    assert rows["silver/neso_carbon_intensity"]["minutes_since_commit"] > 60 * 24 * 365


def test_a_missing_table_reads_as_none(lake_root):
    assert data.read_table(Lake(str(lake_root)), "silver/nothing") is None
