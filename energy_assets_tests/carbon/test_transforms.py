import datetime as dt

import polars as pl
import pytest

from energy_assets.carbon import transforms as tr
from energy_assets_tests.carbon.factories import national, readings, regional, t

H1, H2, H3, H4, H5 = (t(f"2021-03-28T{hm}") for hm in ("10:00", "10:30", "11:00", "11:30", "12:00"))


def fallback_case():
    r = readings(
        [
            {"meterpoint_id": "lon", "interval_start_utc": H1, "consumption_kwh": 0.5, "region": "London"},  # regional
            {"meterpoint_id": "lon", "interval_start_utc": H2, "consumption_kwh": 1.0, "region": "London"},  # no regional row -> actual
            {"meterpoint_id": "atl", "interval_start_utc": H1, "consumption_kwh": 2.0, "region": "Atlantis"},  # unmapped -> actual
            {"meterpoint_id": "nul", "interval_start_utc": H1, "consumption_kwh": 1.0, "region": None},  # null region -> actual
            {"meterpoint_id": "lon", "interval_start_utc": H3, "consumption_kwh": 1.0, "region": "Yorkshire"},  # actual null -> forecast
            {"meterpoint_id": "atl", "interval_start_utc": H5, "consumption_kwh": 1.0, "region": "Atlantis"},  # actual 0 flagged -> forecast
            {"meterpoint_id": "atl", "interval_start_utc": H4, "consumption_kwh": 1.0, "region": "Atlantis"},  # nothing at all
        ]
    )
    n = national(
        [
            {"period_start": H1, "forecast_gco2_per_kwh": 210, "actual_gco2_per_kwh": 200, "intensity_index": "moderate"},
            {"period_start": H2, "forecast_gco2_per_kwh": 190, "actual_gco2_per_kwh": 180, "intensity_index": "moderate"},
            {"period_start": H3, "forecast_gco2_per_kwh": 120, "actual_gco2_per_kwh": None, "intensity_index": "low"},
            {"period_start": H5, "forecast_gco2_per_kwh": 150, "actual_gco2_per_kwh": 0, "intensity_index": "very low", "data_quality_flag": "actual_zero"},
        ]
    )
    g = regional([{"period_start": H1, "region_id": 13, "forecast_gco2_per_kwh": 90, "intensity_index": "low"},
                  {"period_start": H1, "region_id": 5, "forecast_gco2_per_kwh": 400, "intensity_index": "very high"}])
    return r, n, g


def test_fallback_order_regional_then_national_actual_then_national_forecast():
    fp = tr.build_footprint(*fallback_case())
    got = {(row["meterpoint_id"], row["interval_start_utc"].strftime("%H:%M")): row for row in fp.iter_rows(named=True)}
    assert (got["lon", "10:00"]["intensity_source"], got["lon", "10:00"]["intensity_gco2_per_kwh"], got["lon", "10:00"]["intensity_index"]) == ("regional_forecast", 90, "low")
    assert (got["lon", "10:30"]["intensity_source"], got["lon", "10:30"]["intensity_gco2_per_kwh"]) == ("national_actual", 180)
    assert (got["atl", "10:00"]["intensity_source"], got["atl", "10:00"]["intensity_gco2_per_kwh"]) == ("national_actual", 200)
    assert got["atl", "10:00"]["neso_region_id"] is None
    assert (got["nul", "10:00"]["intensity_source"], got["nul", "10:00"]["intensity_gco2_per_kwh"]) == ("national_actual", 200)
    # Yorkshire maps (id 5) but there is no regional row at 11:00: national actual is null -> forecast
    assert (got["lon", "11:00"]["intensity_source"], got["lon", "11:00"]["intensity_gco2_per_kwh"], got["lon", "11:00"]["intensity_index"]) == ("national_forecast", 120, "low")
    # an actual of 0 flagged by NESO silver is not trusted: forecast used, and the index (which followed the bad actual) dropped
    assert (got["atl", "12:00"]["intensity_source"], got["atl", "12:00"]["intensity_gco2_per_kwh"], got["atl", "12:00"]["intensity_index"]) == ("national_forecast", 150, None)
    nothing = got["atl", "11:30"]
    assert (nothing["intensity_source"], nothing["intensity_gco2_per_kwh"], nothing["emissions_gco2"]) == (None, None, None)


def test_emissions_are_consumption_times_intensity_and_no_reading_is_lost_or_doubled():
    r, n, g = fallback_case()
    fp = tr.build_footprint(r, n, g)
    assert fp.height == r.height
    assert fp.select(pl.struct("meterpoint_id", "interval_start_utc").is_unique().all()).item()
    lon = fp.filter((pl.col("meterpoint_id") == "lon") & (pl.col("interval_start_utc") == H1)).row(0, named=True)
    assert lon["emissions_gco2"] == pytest.approx(0.5 * 90)
    atl = fp.filter((pl.col("meterpoint_id") == "atl") & (pl.col("interval_start_utc") == H1)).row(0, named=True)
    assert atl["emissions_gco2"] == pytest.approx(2.0 * 200)
    assert tr.source_counts(fp) == {"regional_forecast": 1, "national_actual": 3, "national_forecast": 2, "none": 1}


def test_settlement_date_is_the_uk_local_day():
    # 2021-03-28T23:30Z is 00:30 BST on the 29th
    r = readings([{"meterpoint_id": "a", "interval_start_utc": t("2021-03-28T23:30"), "consumption_kwh": 1.0}])
    fp = tr.build_footprint(r, national([]), regional([]))
    assert fp["settlement_date"].to_list() == [dt.date(2021, 3, 29)]


def test_naive_utc_timestamps_from_upstream_are_read_as_utc():
    r = readings([{"meterpoint_id": "a", "interval_start_utc": H1, "consumption_kwh": 1.0}]).with_columns(
        pl.col("interval_start_utc").dt.replace_time_zone(None).dt.cast_time_unit("ns")
    )
    n = national([{"period_start": H1, "forecast_gco2_per_kwh": 100, "actual_gco2_per_kwh": 99}])
    fp = tr.build_footprint(r, n, regional([]))
    assert fp["intensity_gco2_per_kwh"].to_list() == [99.0]
    assert fp.schema["interval_start_utc"] == pl.Datetime("us", "UTC")


def summary_case() -> pl.DataFrame:
    rows = [
        # meterpoint, product, variable, region, kWh, intensity, index
        ("a", "Agile Octopus", True, "London", 1.0, 100.0, "low"),
        ("a", "Agile Octopus", True, "London", 3.0, 200.0, "high"),
        ("b", "Octopus 12M Fixed", False, "Yorkshire", 2.0, 50.0, "very low"),
        ("c", "Octopus 12M Fixed", False, "Yorkshire", 2.0, 300.0, "very high"),
        ("d", None, None, "Atlantis", 1.0, None, None),  # no agreement, no intensity
        ("e", "Agile Octopus", True, "London", 0.0, 400.0, "very high"),  # zero consumption weighs nothing
    ]
    df = pl.DataFrame(rows, schema=["meterpoint_id", "product_display_name", "is_variable", "region", "consumption_kwh", "intensity_gco2_per_kwh", "intensity_index"], orient="row")
    return df.with_columns(
        pl.lit(dt.date(2021, 3, 28)).alias("settlement_date"),
        (pl.col("consumption_kwh") * pl.col("intensity_gco2_per_kwh")).alias("emissions_gco2"),
        pl.when(pl.col("region") == "London").then(pl.lit(13)).when(pl.col("region") == "Yorkshire").then(pl.lit(5)).otherwise(None).cast(pl.Int16).alias("neso_region_id"),
        pl.when(pl.col("intensity_gco2_per_kwh").is_null()).then(None).when(pl.col("region") == "London").then(pl.lit("regional_forecast")).otherwise(pl.lit("national_actual")).alias("intensity_source"),
    )


def test_per_product_weighted_average_low_carbon_share_and_totals():
    out = tr.carbon_per_product_per_day(summary_case())
    agile = out.filter(pl.col("product_display_name") == "Agile Octopus").row(0, named=True)
    # weighted by kWh: (1*100 + 3*200 + 0*400) / 4 = 175, not the plain mean of 100, 200, 400
    assert agile["avg_intensity_gco2_per_kwh"] == pytest.approx(175.0)
    assert agile["total_consumption_kwh"] == pytest.approx(4.0)
    assert agile["total_emissions_kgco2"] == pytest.approx(0.7)
    assert agile["low_carbon_consumption_fraction"] == pytest.approx(0.25)  # 1 of 4 kWh in a 'low' half-hour
    assert agile["regional_intensity_consumption_fraction"] == pytest.approx(1.0)
    assert (agile["meterpoint_count"], agile["reading_count"], agile["is_variable"]) == (2, 3, True)
    fixed = out.filter(pl.col("product_display_name") == "Octopus 12M Fixed").row(0, named=True)
    assert fixed["avg_intensity_gco2_per_kwh"] == pytest.approx(175.0)
    assert fixed["low_carbon_consumption_fraction"] == pytest.approx(0.5)  # 'very low' counts as low carbon
    assert fixed["is_variable"] is False
    none = out.filter(pl.col("product_display_name").is_null()).row(0, named=True)
    assert none["total_consumption_kwh"] == 1.0 and none["consumption_without_intensity_kwh"] == 1.0
    assert none["avg_intensity_gco2_per_kwh"] is None and none["low_carbon_consumption_fraction"] is None
    assert out["total_consumption_kwh"].sum() == pytest.approx(summary_case()["consumption_kwh"].sum())


def test_per_region_names_the_neso_region_and_keeps_unmapped_regions():
    out = tr.carbon_per_region_per_day(summary_case())
    assert out.select("region", "neso_region_id", "neso_region_name").to_dicts() == [
        {"region": "Atlantis", "neso_region_id": None, "neso_region_name": None},
        {"region": "London", "neso_region_id": 13, "neso_region_name": "London"},
        {"region": "Yorkshire", "neso_region_id": 5, "neso_region_name": "Yorkshire"},
    ]
    yorkshire = out.filter(pl.col("region") == "Yorkshire").row(0, named=True)
    assert yorkshire["avg_intensity_gco2_per_kwh"] == pytest.approx(175.0)
    assert yorkshire["regional_intensity_consumption_fraction"] == pytest.approx(0.0)


def test_zero_consumption_gives_no_average_rather_than_a_division_error():
    df = summary_case().filter(pl.col("meterpoint_id") == "e").with_columns(pl.lit(0.0).alias("consumption_kwh"), pl.lit(0.0).alias("emissions_gco2"))
    out = tr.carbon_per_product_per_day(df).row(0, named=True)
    assert out["avg_intensity_gco2_per_kwh"] is None and out["low_carbon_consumption_fraction"] is None
