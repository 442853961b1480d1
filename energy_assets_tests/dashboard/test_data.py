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
    assert latest["percent_of_generation"].round(6).to_list() == [41.5, 30.0, 16.5, 12.0]  # fractions shown as percent
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


def test_an_unreadable_table_raises_instead_of_reading_as_missing(lake_root):
    pl.DataFrame({"x": [1]}).write_delta(str(lake_root / "silver" / "broken"))
    next((lake_root / "silver" / "broken").glob("*.parquet")).unlink()
    with pytest.raises(FileNotFoundError, match=r"silver/broken/part-.*\.parquet"):
        data.read_table(Lake(str(lake_root)), "silver/broken")


def test_the_launcher_takes_port_and_refresh_from_the_settings(monkeypatch):
    from energy_assets.dashboard import launch

    calls = []
    monkeypatch.setattr(launch.subprocess, "call", lambda cmd, env: calls.append((cmd, env)) or 0)
    monkeypatch.setenv("ENERGY_DASHBOARD_PORT", "8612")
    monkeypatch.setenv("ENERGY_LAKE_URI", "/srv/lake")
    assert launch.main(["--refresh", "7"]) == 0
    cmd, env = calls[0]
    assert cmd[cmd.index("--server.port") + 1] == "8612"
    assert (env["ENERGY_DASHBOARD_REFRESH_SECONDS"], env["ENERGY_LAKE_URI"]) == ("7", "/srv/lake")
    assert launch.main(["--port", "9000"]) == 0
    assert calls[1][0][calls[1][0].index("--server.port") + 1] == "9000"
